//! How a supervised service keeps a record across its restarts in the memory `proc` hands every
//! instance ([`KEPT_PAGES`](crate::KEPT_PAGES)): what the record holds is the service's
//! (`device` its grants, `vfs` its mounts); this is the layer that makes a write that was cut
//! short harmless.
//!
//! Layout: two slots of half the memory each, so a server killed in the middle of a write loses
//! at most that write: each slot is a header (`MAGIC`, a sequence number, the record's length
//! and its checksum) then the record. A write goes to the slot not holding the newest record,
//! header last; a read takes the newest slot whose header and checksum hold. The memory is read
//! like hostile input: it may hold anything.

use core::sync::atomic::{Ordering, compiler_fence as fence};

/// Marks a written slot ("VSLKEPT1").
const MAGIC: u64 = 0x3154_5045_4b4c_5356;
/// Header bytes: magic, sequence, length, checksum.
pub const HEADER: usize = 32;

/// Slot `n` of `bytes` (its half).
fn slot(bytes: &[u8], n: usize) -> &[u8] {
    let half = bytes.len() / 2;
    &bytes[n * half..(n + 1) * half]
}

/// Slot `n`'s sequence and record, if its header and checksum hold.
fn read_slot(bytes: &[u8], n: usize) -> Option<(u64, &[u8])> {
    let slot = slot(bytes, n);
    if slot.len() < HEADER {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(slot[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (magic, sequence, len, sum) = (word(0), word(1), word(2), word(3));
    let len = usize::try_from(len).ok().filter(|&l| l <= slot.len() - HEADER)?;
    let record = &slot[HEADER..HEADER + len];
    (magic == MAGIC && checksum(record) == sum).then_some((sequence, record))
}

/// Whether sequence `a` is newer than `b`: a write adds 1, wrapping, so they are compared as
/// serial numbers (memory that held something else may carry any value, `u64::MAX` included).
fn newer(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

/// Which slot holds the newest record that reads whole, with its sequence and record. Of two
/// equal sequences, slot 1 (and `save` then writes slot 0).
fn newest(bytes: &[u8]) -> Option<(usize, u64, &[u8])> {
    match (read_slot(bytes, 0), read_slot(bytes, 1)) {
        (Some((a, first)), Some((b, _))) if newer(a, b) => Some((0, a, first)),
        (_, Some((b, second))) => Some((1, b, second)),
        (Some((a, first)), None) => Some((0, a, first)),
        (None, None) => None,
    }
}

/// The newest record in `bytes` that reads whole (`None`: nothing kept yet).
pub fn load(bytes: &[u8]) -> Option<&[u8]> {
    newest(bytes).map(|(_, _, record)| record)
}

/// The most record bytes `bytes` can keep.
pub fn capacity(bytes: &[u8]) -> usize {
    (bytes.len() / 2).saturating_sub(HEADER)
}

/// Writes `record` over the older slot of `bytes`; false if it does not fit (the older record
/// stays, and the newest with it).
pub fn save(bytes: &mut [u8], record: &[u8]) -> bool {
    let half = bytes.len() / 2;
    if half < HEADER || record.len() > half - HEADER {
        return false;
    }
    // The target is the slot not holding the newest record.
    let (target, next) = match newest(bytes) {
        Some((at, sequence, _)) => (1 - at, sequence.wrapping_add(1)),
        None => (0, 1),
    };
    let slot = &mut bytes[target * half..(target + 1) * half];
    // Invalidate first, then the record, then the header that makes it count. The fences keep
    // the compiler to that order: a service can be killed between any two stores.
    slot[..8].fill(0);
    fence(Ordering::SeqCst);
    slot[HEADER..HEADER + record.len()].copy_from_slice(record);
    slot[8..16].copy_from_slice(&next.to_le_bytes());
    slot[16..24].copy_from_slice(&(record.len() as u64).to_le_bytes());
    slot[24..32].copy_from_slice(&checksum(record).to_le_bytes());
    fence(Ordering::SeqCst);
    slot[..8].copy_from_slice(&MAGIC.to_le_bytes());
    true
}

/// FNV-1a over the record.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A cursor over a kept record for the services' decoders: every read checks what is left.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// The next little-endian `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }

    /// The next text of at most `max` bytes: a `u16` length, then UTF-8.
    pub fn text(&mut self, max: usize) -> Option<&'a str> {
        let len = usize::from(self.u16()?);
        if len > max {
            return None;
        }
        core::str::from_utf8(self.take(len)?).ok()
    }
}

/// Appends `text` as [`Cursor::text`] reads it (the caller keeps it under 64 KiB).
pub fn put_text(out: &mut alloc::vec::Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn record(n: u8) -> Vec<u8> {
        (0..40 + n).map(|i| i ^ n).collect()
    }

    #[test]
    fn what_was_saved_loads_back_and_the_newest_wins() {
        let mut memory = vec![0u8; 16 * 1024];
        assert_eq!(load(&memory), None, "zeroed memory keeps nothing");
        for n in 0..5 {
            assert!(save(&mut memory, &record(n)));
            assert_eq!(load(&memory), Some(&record(n)[..]));
        }
        assert!(save(&mut memory, &[]));
        assert_eq!(load(&memory), Some(&[][..]));
    }

    #[test]
    fn a_write_cut_short_leaves_the_record_before_it() {
        let mut memory = vec![0u8; 16 * 1024];
        assert!(save(&mut memory, &record(1)));
        assert!(save(&mut memory, &record(2)));
        // Cut the newest write at every byte: the reader gets it whole or the one before.
        let half = memory.len() / 2;
        let newest = [0, 1].into_iter().max_by_key(|&n| read_slot(&memory, n).map(|(s, _)| s)).unwrap();
        for cut in 0..HEADER + 64 {
            let mut torn = memory.clone();
            torn[newest * half + cut..(newest + 1) * half].fill(0xa5);
            let got = load(&torn);
            assert!(got == Some(&record(2)[..]) || got == Some(&record(1)[..]), "cut at {cut}: {got:?}");
        }
    }

    #[test]
    fn every_write_goes_to_the_older_slot() {
        // Records in turn: a stop in the middle of each write leaves the one just before it,
        // never an older one (a write over the newest slot would lose both).
        let mut memory = vec![0u8; 16 * 1024];
        let mut before_it: Option<Vec<u8>> = None;
        for n in 0..6 {
            let before = memory.clone();
            assert!(save(&mut memory, &record(n)));
            let half = memory.len() / 2;
            let written =
                (0..2).find(|&slot| memory[slot * half..(slot + 1) * half] != before[slot * half..(slot + 1) * half]);
            let Some(written) = written else { panic!("save {n} wrote nothing") };
            let mut torn = memory.clone();
            torn[written * half..written * half + 8].fill(0);
            assert_eq!(load(&torn), before_it.as_deref(), "save {n} torn: not the record before it");
            assert_eq!(load(&memory), Some(&record(n)[..]));
            before_it = Some(record(n));
        }
    }

    #[test]
    fn a_record_too_big_is_refused_and_the_old_one_stays() {
        let mut memory = vec![0u8; 512];
        assert_eq!(capacity(&memory), 256 - HEADER);
        assert!(save(&mut memory, &record(3)));
        assert!(!save(&mut memory, &[7; 256 - HEADER + 1]));
        assert_eq!(load(&memory), Some(&record(3)[..]));
        assert!(save(&mut memory, &[7; 256 - HEADER]), "exactly the capacity fits");
    }

    #[test]
    fn damaged_memory_never_panics_and_yields_only_records_that_were_saved() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut base = vec![0u8; 2048];
        assert!(save(&mut base, &record(4)));
        assert!(save(&mut base, &record(5)));
        for round in 0..20_000 {
            let mut memory = base.clone();
            for _ in 0..1 + round % 8 {
                let at = (next() as usize) % memory.len();
                memory[at] = next() as u8;
            }
            let got = load(&memory);
            assert!(
                got.is_none() || got == Some(&record(4)[..]) || got == Some(&record(5)[..]),
                "round {round}: {got:?}"
            );
        }
    }

    #[test]
    fn sequences_at_their_end_or_equal_still_leave_the_newest_record() {
        // Memory that held something else may carry any sequence: at u64::MAX the next save
        // starts again and must still be what loads; two equal sequences must not make a save
        // overwrite the record a load would take.
        let forge = |memory: &mut [u8], n: usize, sequence: u64, record: &[u8]| {
            let half = memory.len() / 2;
            let slot = &mut memory[n * half..(n + 1) * half];
            slot[HEADER..HEADER + record.len()].copy_from_slice(record);
            slot[..8].copy_from_slice(&MAGIC.to_le_bytes());
            slot[8..16].copy_from_slice(&sequence.to_le_bytes());
            slot[16..24].copy_from_slice(&(record.len() as u64).to_le_bytes());
            slot[24..32].copy_from_slice(&checksum(record).to_le_bytes());
        };
        for (first, second) in [(u64::MAX, 3), (3, u64::MAX), (7, 7), (u64::MAX, u64::MAX), (u64::MAX - 1, u64::MAX)] {
            let mut memory = vec![0u8; 1024];
            forge(&mut memory, 0, first, &record(1));
            forge(&mut memory, 1, second, &record(2));
            for n in 3..6 {
                let before = memory.clone();
                let newest = load(&before).map(<[u8]>::to_vec);
                assert!(save(&mut memory, &record(n)));
                assert_eq!(load(&memory), Some(&record(n)[..]), "sequences {first}, {second}, save {n}");
                // Cut short, the save leaves the record that was newest before it.
                let half = memory.len() / 2;
                let written = (0..2).find(|&s| memory[s * half..(s + 1) * half] != before[s * half..(s + 1) * half]);
                let Some(written) = written else { panic!("save {n} wrote nothing") };
                let mut torn = memory.clone();
                torn[written * half..written * half + 8].fill(0);
                assert_eq!(load(&torn).map(<[u8]>::to_vec), newest, "sequences {first}, {second}, save {n} torn");
            }
        }
    }

    #[test]
    fn the_cursor_refuses_what_is_not_there() {
        let mut out = Vec::new();
        put_text(&mut out, "/data/x.vsf");
        out.push(9);
        let mut at = Cursor(&out);
        assert_eq!(at.text(64), Some("/data/x.vsf"));
        assert_eq!(at.u8(), Some(9));
        assert_eq!(at.u8(), None);
        assert_eq!(Cursor(&out).text(4), None, "longer than allowed");
        assert_eq!(Cursor(&out[..5]).text(64), None, "cut short");
        assert_eq!(Cursor(&[2, 0, 0xff, 0xfe]).text(64), None, "not UTF-8");
    }
}
