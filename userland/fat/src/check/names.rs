//! Directory entries as `fsck.fat` reads them: 8.3 names (display, checksum, validity), volume
//! labels, the long-name reader that collects slots until their 8.3 entry, and [`Entry`], one
//! entry with the repairs the check makes to it in memory.
//!
//! Invariants: every function takes a whole 32-byte slot (or an 11-byte name) and reads it only
//! through fixed indices or `get`; a long name is at most [`LONG_NAME_UNITS`] UTF-16 units, held
//! in a fixed array, so no slot sequence can grow it; the reader reports what is wrong as
//! [`LongNameEvent`]s and never fails.

use alloc::string::String;
use alloc::vec::Vec;

use super::problem::LongNameFault;
use super::reader::{le16, le32};

pub(super) const ATTR_VOLUME: u8 = 0x08;
pub(super) const ATTR_DIR: u8 = 0x10;
pub(super) const ATTR_LONG_NAME: u8 = 0x0F;
/// `lcase` bit some tools set on entries that have only a long name.
pub(super) const NO_8_3_NAME: u8 = 0x20;

/// A free slot: `fsck.fat`'s `IS_FREE` (0x00 end marker or 0xE5 deleted).
pub(super) fn is_free(raw: &[u8; 32]) -> bool {
    raw[0] == 0 || raw[0] == 0xE5
}

/// The 11 bytes of an 8.3 name.
pub(super) fn short_name(raw: &[u8; 32]) -> [u8; 11] {
    let mut name = [0u8; 11];
    name.copy_from_slice(&raw[..11]);
    name
}

/// An 8.3 name for display: `NAME.EXT`, lower-cased as its flags say, bytes above 0x7F as
/// Latin-1.
pub(super) fn display_short(raw: &[u8; 32]) -> String {
    let lower = |b: u8, on: bool| if on { b.to_ascii_lowercase() } else { b };
    let mut out = String::new();
    let base_end = raw[..8].iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    for (i, &b) in raw[..base_end].iter().enumerate() {
        let b = if i == 0 && b == 0x05 { 0xE5 } else { b };
        out.push(char::from(lower(b, raw[12] & 0x08 != 0)));
    }
    let ext_end = raw[8..11].iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    if ext_end > 0 {
        out.push('.');
        for &b in &raw[8..8 + ext_end] {
            out.push(char::from(lower(b, raw[12] & 0x10 != 0)));
        }
    }
    out
}

/// The checksum of an 8.3 name that its long-name slots carry.
fn name_checksum(name: &[u8; 11]) -> u8 {
    name.iter().fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// Whether `fsck.fat` calls an 8.3 name bad (its `bad_name`, without `-S`).
pub(super) fn bad_short_name(raw: &[u8; 32], has_long_name: bool) -> bool {
    if raw[12] & NO_8_3_NAME != 0 {
        return !has_long_name;
    }
    let bad_byte = |(i, &b): (usize, &u8)| {
        (b < 0x20 && !(i == 0 && b == 0x05))
            || matches!(b, 0x7F | b'*' | b'?' | b'<' | b'>' | b'|' | b'"' | b'\\' | b'/' | b':' | b'.')
    };
    raw[..11].iter().enumerate().any(bad_byte) || raw[0] == b' '
}

/// Whether `fsck.fat` calls a label invalid (its `validate_volume_label` without the lowercase
/// bit; it reads the bytes as signed `char`s, so any byte above 0x7F is invalid too).
pub(super) fn bad_label(label: &[u8; 11]) -> bool {
    let bad_byte = |&b: &u8| {
        !(0x20..0x80).contains(&b) || matches!(b, 0x22 | 0x2A..=0x2C | 0x2E | 0x2F | 0x3A..=0x3F | 0x5B..=0x5D | 0x7C)
    };
    label.iter().any(bad_byte) || label.iter().all(|&b| b == b' ') || label[0] == b' '
}

/// Characters a long name can have: 31 slots of 13.
pub(super) const LONG_NAME_UNITS: usize = 31 * 13;

/// `fsck.fat`'s long-name reader: slots collect here until the 8.3 entry they belong to.
pub(super) struct LongName {
    /// Slots still expected (`fsck.fat`'s `lfn_slot`): `None` when no long name is in progress,
    /// `Some(0)` when one is complete.
    left: Option<u8>,
    checksum: u8,
    parts: u8,
    units: [u16; LONG_NAME_UNITS],
}

/// What a long-name slot or entry did.
pub(super) enum LongNameEvent {
    /// Slots that do not form a name.
    Fault(LongNameFault),
    /// The slots of a name whose 8.3 entry never came: the name so far.
    Orphaned(String),
}

impl LongName {
    pub(super) fn new() -> Self {
        Self { left: None, checksum: 0, parts: 0, units: [0; LONG_NAME_UNITS] }
    }

    fn reset(&mut self) {
        self.left = None;
        self.parts = 0;
    }

    /// The name collected so far (the slots read, from the last one back).
    fn so_far(&self) -> String {
        let from = usize::from(self.left.unwrap_or(0)) * 13;
        let to = (from + usize::from(self.parts) * 13).min(LONG_NAME_UNITS);
        let units = self.units.get(from..to).unwrap_or(&[]);
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        char::decode_utf16(units.iter().take(end).copied()).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
    }

    /// A free slot, or the end of the directory: a long name in progress is orphaned.
    pub(super) fn orphan(&mut self, events: &mut Vec<LongNameEvent>) {
        if self.left.is_some() {
            events.push(LongNameEvent::Orphaned(self.so_far()));
            self.reset();
        }
    }

    /// A long-name slot (`fsck.fat`'s `lfn_add_slot`).
    pub(super) fn slot(&mut self, raw: &[u8; 32], events: &mut Vec<LongNameEvent>) {
        let id = raw[0];
        let number = id & 0x1F;
        let first = id & 0x40 != 0;
        if self.left == Some(0) {
            self.orphan(events);
        }
        if first && number != 0 {
            if self.left.is_some() {
                events.push(LongNameEvent::Fault(LongNameFault::Restarted));
            }
            self.left = Some(number);
            self.checksum = raw[13];
            self.parts = 0;
            self.units = [0; LONG_NAME_UNITS];
        } else if self.left.is_none() && number != 0 {
            events.push(LongNameEvent::Fault(LongNameFault::Fragment));
            self.reset();
            return;
        } else if self.left != Some(number) {
            events.push(LongNameEvent::Fault(LongNameFault::Sequence));
            self.reset();
            return;
        }
        if raw[13] != self.checksum {
            events.push(LongNameEvent::Fault(LongNameFault::SlotChecksum));
        }
        if let Some(left) = self.left {
            let left = left.saturating_sub(1);
            self.left = Some(left);
            let at = usize::from(left) * 13;
            let chars = (1..11).step_by(2).chain((14..26).step_by(2)).chain((28..32).step_by(2));
            for (i, pos) in chars.enumerate() {
                if let Some(u) = self.units.get_mut(at + i) {
                    *u = le16(raw, pos) as u16;
                }
            }
            self.parts = self.parts.saturating_add(1);
        }
        if raw[12] != 0 || le16(raw, 26) != 0 {
            events.push(LongNameEvent::Fault(LongNameFault::SlotFields));
        }
    }

    /// An 8.3 entry: the long name it ends, if any (`fsck.fat`'s `lfn_get`).
    pub(super) fn take(&mut self, raw: &[u8; 32], events: &mut Vec<LongNameEvent>) -> Option<String> {
        match self.left {
            None => None,
            Some(0) => {
                if name_checksum(&short_name(raw)) != self.checksum {
                    events.push(LongNameEvent::Fault(LongNameFault::Checksum));
                }
                let name = self.so_far();
                self.reset();
                Some(name)
            }
            Some(_) => {
                events.push(LongNameEvent::Fault(LongNameFault::Unfinished));
                self.reset();
                None
            }
        }
    }
}

/// An entry read from a directory, with the repairs `fsck.fat` would make to it in memory.
pub(super) struct Entry {
    pub(super) raw: [u8; 32],
    pub(super) name: String,
    pub(super) has_long_name: bool,
    /// First cluster (`fsck.fat`'s `FSTART`: the high half only on FAT32).
    pub(super) start: u32,
    /// Marked deleted by a repair.
    pub(super) dropped: bool,
    /// The FAT32 root directory (no entry of its own).
    pub(super) is_root: bool,
}

impl Entry {
    pub(super) fn attr(&self) -> u8 {
        self.raw[11]
    }

    pub(super) fn is_dir(&self) -> bool {
        self.attr() & ATTR_DIR != 0
    }

    pub(super) fn size(&self) -> u32 {
        le32(&self.raw, 28)
    }
}

pub(super) fn first_cluster(raw: &[u8; 32], fat32: bool) -> u32 {
    le16(raw, 26) | if fat32 { le16(raw, 20) << 16 } else { 0 }
}
