//! The FAT as the check sees it: one copy's used part in memory, with the repairs `fsck.fat`
//! would make written into it as the walk goes; one-bit-per-cluster bitmaps; and reading the
//! copies as `fsck.fat` does, choosing the one to use.
//!
//! Invariants: entries are read and written through `get`/`set` only, which read 0 and ignore
//! writes past the bytes held (no index from the disk can panic); the copy in memory is at most
//! the used part of one FAT, whose size the boot sector check bounds by the disk; the second
//! copy is compared piece by piece, never held whole.

use alloc::vec;
use alloc::vec::Vec;

use hadris_fat::sync::FatType;

use super::problem::Problem;
use super::reader::Reader;
use super::report::Report;
use crate::boot::Geometry;
use crate::disk::{Disk, DiskError};

/// One FAT copy's used part in memory (the entries of clusters `0..=max`), with the in-memory
/// repairs `fsck.fat` would make written into it.
pub(super) struct Fat {
    bytes: Vec<u8>,
    fat_type: FatType,
    pub(super) max: u32,
}

impl Fat {
    /// Bytes holding the entries of clusters `0..=cluster_count + 1` (what `fsck.fat` reads).
    fn used_bytes(g: &Geometry) -> u64 {
        let bits = match g.fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        ((u64::from(g.cluster_count) + 2) * bits).div_ceil(8)
    }

    /// The top bits every mark shares (`fsck.fat`'s `FAT_EXTD`).
    fn marks(&self) -> u32 {
        match self.fat_type {
            FatType::Fat12 => 0xFF0,
            FatType::Fat16 => 0xFFF0,
            FatType::Fat32 => 0x0FFF_FFF0,
        }
    }

    pub(super) fn bad_mark(&self) -> u32 {
        self.marks() | 7
    }

    pub(super) fn end_mark(&self) -> u32 {
        self.marks() | 0xF
    }

    pub(super) fn is_end(&self, v: u32) -> bool {
        v >= (self.marks() | 8)
    }

    pub(super) fn is_bad(&self, v: u32) -> bool {
        v == self.bad_mark()
    }

    fn byte(&self, at: u64) -> u32 {
        usize::try_from(at).ok().and_then(|i| self.bytes.get(i)).map_or(0, |&b| u32::from(b))
    }

    /// The entry of `cluster` (28 bits on FAT32); 0 past the bytes held. (Offsets wrap rather
    /// than overflow: a wrapped range is empty and reads as 0.)
    pub(super) fn get(&self, cluster: u32) -> u32 {
        let c = cluster as usize;
        let at = |i: usize, n: usize| self.bytes.get(i..i.wrapping_add(n));
        match self.fat_type {
            FatType::Fat12 => match at(c.wrapping_add(c / 2), 2) {
                Some(&[lo, hi]) if c % 2 == 1 => u32::from(lo) >> 4 | u32::from(hi) << 4,
                Some(&[lo, hi]) => u32::from(lo) | (u32::from(hi) & 0x0F) << 8,
                _ => 0,
            },
            FatType::Fat16 => match at(c.wrapping_mul(2), 2) {
                Some(&[lo, hi]) => u32::from(lo) | u32::from(hi) << 8,
                _ => 0,
            },
            FatType::Fat32 => match at(c.wrapping_mul(4), 4) {
                Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) & 0x0FFF_FFFF,
                _ => 0,
            },
        }
    }

    /// Calls `f(cluster, entry)` for every data cluster whose entry is not 0, in order: a
    /// faster [`Fat::get`] loop, skipping zeroes a word at a time.
    pub(super) fn scan_used(&self, mut f: impl FnMut(u32, u32)) {
        // Bytes per step, and entries per step: whole entries in whole words.
        let (step, per_step) = match self.fat_type {
            FatType::Fat12 => (24, 16),
            FatType::Fat16 => (8, 4),
            FatType::Fat32 => (8, 2),
        };
        let mut first = 0u32;
        for chunk in self.bytes.chunks(step) {
            if first > self.max {
                break;
            }
            if chunk == &[0; 24][..chunk.len()] {
                first = first.saturating_add(per_step);
                continue;
            }
            let last = first.saturating_add(per_step - 1).min(self.max);
            for c in first.max(2)..=last {
                let v = self.get(c);
                if v != 0 {
                    f(c, v);
                }
            }
            first = first.saturating_add(per_step);
        }
    }

    fn put(&mut self, at: u64, value: u8) {
        if let Some(b) = usize::try_from(at).ok().and_then(|i| self.bytes.get_mut(i)) {
            *b = value;
        }
    }

    /// Sets the entry of `cluster` (keeping a FAT12 neighbour's nibble and FAT32's top bits).
    pub(super) fn set(&mut self, cluster: u32, value: u32) {
        let c = u64::from(cluster);
        match self.fat_type {
            FatType::Fat12 => {
                let at = c * 3 / 2;
                let (lo, hi) = (self.byte(at), self.byte(at + 1));
                let v = value & 0xFFF;
                if c % 2 == 1 {
                    self.put(at, ((lo & 0x0F) | (v & 0x0F) << 4) as u8);
                    self.put(at + 1, (v >> 4) as u8);
                } else {
                    self.put(at, v as u8);
                    self.put(at + 1, ((hi & 0xF0) | v >> 8) as u8);
                }
            }
            FatType::Fat16 => {
                self.put(c * 2, value as u8);
                self.put(c * 2 + 1, (value >> 8) as u8);
            }
            FatType::Fat32 => {
                let top = self.byte(c * 4 + 3) & 0xF0;
                self.put(c * 4, value as u8);
                self.put(c * 4 + 1, (value >> 8) as u8);
                self.put(c * 4 + 2, (value >> 16) as u8);
                self.put(c * 4 + 3, (top | (value >> 24) & 0x0F) as u8);
            }
        }
    }

    /// Whether entry 0 holds a media mark (`fsck.fat`: all of `FAT_EXTD`'s bits set).
    fn media_ok(&self) -> bool {
        self.get(0) & self.marks() == self.marks()
    }

    /// The cluster after `cluster` in its chain: `None` at an end mark or a value that is not a
    /// data cluster.
    pub(super) fn next(&self, cluster: u32) -> Option<u32> {
        let v = self.get(cluster);
        (2..=self.max).contains(&v).then_some(v)
    }
}

/// One bit per cluster number `0..=max`.
pub(super) struct Bitmap(pub(super) Vec<u64>);

impl Bitmap {
    pub(super) fn new(max: u32) -> Self {
        Self(vec![0; (max as usize) / 64 + 1])
    }

    pub(super) fn get(&self, i: u32) -> bool {
        self.0.get(i as usize / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    pub(super) fn set(&mut self, i: u32, on: bool) {
        if let Some(w) = self.0.get_mut(i as usize / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

/// Reads the FATs as `fsck.fat` does: the first copy whole (its used part), the second
/// compared piece by piece, and picks the one to use. `None` if neither is usable.
pub(super) fn read_fat<D: Disk>(
    reader: &mut Reader<'_, D>,
    g: &Geometry,
    report: &mut Report,
) -> Result<Option<Fat>, DiskError> {
    let len = Fat::used_bytes(g).min(g.fat_size);
    let Ok(len) = usize::try_from(len) else {
        report.push(Problem::BootInvalid { reason: "the FAT is too large to check in memory" });
        return Ok(None);
    };
    let mut bytes = Vec::new();
    if bytes.try_reserve_exact(len).is_err() {
        report.push(Problem::BootInvalid { reason: "the FAT is too large to check in memory" });
        return Ok(None);
    }
    while bytes.len() < len {
        let n = (len - bytes.len()).min(4096);
        bytes.extend_from_slice(&[0; 4096][..n]);
    }
    reader.read(g.fat_start, &mut bytes)?;
    let mut fat = Fat { bytes, fat_type: g.fat_type, max: g.max_cluster() };
    let first_ok = fat.media_ok();
    if g.fat_count < 2 {
        if !first_ok {
            report.push(Problem::FatUnusable);
            return Ok(None);
        }
        return Ok(Some(fat));
    }
    let second = g.fat_start + g.fat_size;
    let mut piece = vec![0u8; len.min(64 << 10)];
    let mut differ = false;
    let mut second_head = [0u8; 4];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(piece.len());
        let Some(buf) = piece.get_mut(..n) else { break };
        reader.read(second + at as u64, buf)?;
        if at == 0 {
            for (d, s) in second_head.iter_mut().zip(buf.iter()) {
                *d = *s;
            }
        }
        differ |= fat.bytes.get(at..at + n) != Some(&*buf);
        at += n;
    }
    let second_ok = {
        let head = Fat { bytes: second_head.to_vec(), fat_type: g.fat_type, max: 0 };
        head.media_ok()
    };
    match (differ, first_ok, second_ok) {
        (false, true, _) => Ok(Some(fat)),
        (true, true, true) => {
            report.push(Problem::FatsDiffer);
            Ok(Some(fat))
        }
        (true, true, false) => {
            report.push(Problem::FatCopyCorrupt { copy: 1 });
            Ok(Some(fat))
        }
        (true, false, true) => {
            report.push(Problem::FatCopyCorrupt { copy: 0 });
            reader.read(second, &mut fat.bytes)?;
            Ok(Some(fat))
        }
        (_, false, _) => {
            report.push(Problem::FatUnusable);
            Ok(None)
        }
    }
}
