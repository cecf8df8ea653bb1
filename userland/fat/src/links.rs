//! Which new FAT links must wait for a second write of the FATs.
//!
//! A chain grows by two FAT changes: the new cluster's entry becomes an end mark, and the old
//! last cluster's entry stops being one and links to it. [`Cache::sync`](crate::Cache::sync)
//! writes the FAT blocks highest first, so when the new cluster lies after the old one (the
//! usual case: allocation moves forward) its end mark reaches the disk first, and a stop in
//! between leaves only a lost cluster. When allocation has wrapped round to the start of the
//! volume, the new cluster's entry lies in a *lower* block, written after the link: a stop
//! there leaves a chain running into a free cluster, which a later allocation would hand to a
//! second file. Such links are held back: the FATs are written once with them as they are on
//! the disk (end marks), flushed, then written whole.

use alloc::vec::Vec;

/// Where the FATs lie and how their entries read (FAT16 and FAT32: FAT12's entries straddle
/// blocks, and FAT12 volumes are not written this way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FatLayout {
    /// Disk offset of the first FAT.
    pub start: u64,
    /// Bytes per FAT.
    pub size: u64,
    /// FAT copies.
    pub copies: u8,
    /// Bytes per entry: 2 (FAT16) or 4 (FAT32).
    pub entry: u8,
    /// Highest valid cluster number.
    pub max_cluster: u32,
}

impl FatLayout {
    /// Whether `value` (masked) is an end-of-chain mark.
    fn is_end(&self, value: u32) -> bool {
        match self.entry {
            2 => value >= 0xFFF8,
            _ => value >= 0x0FFF_FFF8,
        }
    }

    /// The entry's value at `at` in `bytes`.
    fn value(&self, bytes: &[u8], at: usize) -> u32 {
        match self.entry {
            2 => u32::from(u16::from_le_bytes([bytes[at], bytes[at + 1]])),
            _ => u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) & 0x0FFF_FFFF,
        }
    }

    /// The links in the FAT block at disk offset `offset` (`len` bytes) that changed from an
    /// end mark (`old`, as on the disk) to a link (`new`, as in the cache) to a cluster whose
    /// entry in the same FAT copy lies in a lower block: each as its disk offset and the bytes
    /// the disk holds there now.
    pub fn wrapped_links(&self, offset: u64, old: &[u8], new: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let len = old.len().min(new.len()) as u64;
        let end = self.start + self.size * u64::from(self.copies);
        if !matches!(self.entry, 2 | 4) || offset < self.start || offset + len > end {
            return out;
        }
        let copy = (offset - self.start) / self.size;
        let base = self.start + copy * self.size;
        let entry = usize::from(self.entry);
        // Entries never straddle blocks (the FATs start on a sector and entries divide one),
        // and a block starts on a multiple of 8 bytes: 8 bytes hold whole entries. Most of a
        // dirty block did not change: 8 equal bytes are skipped at once.
        let first = ((offset - base) as usize).next_multiple_of(entry) - (offset - base) as usize;
        let len = len as usize;
        let changed = (first..len).step_by(8).filter(|&at| at + 8 > len || old[at..at + 8] != new[at..at + 8]);
        let entries = changed.flat_map(|at| (at..(at + 8).min(len)).step_by(entry));
        for at in entries {
            if at + entry > len {
                break;
            }
            let (was, now) = (self.value(old, at), self.value(new, at));
            if !self.is_end(was) || !(2..=self.max_cluster).contains(&now) {
                continue;
            }
            let target = base + u64::from(now) * u64::from(self.entry);
            if target / (len as u64) < offset / (len as u64) {
                out.push((offset + at as u64, old[at..at + entry].to_vec()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAT32: FatLayout = FatLayout { start: 16384, size: 8192, copies: 2, entry: 4, max_cluster: 2000 };

    fn block_with(entries: &[(usize, u32)]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        for &(i, v) in entries {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn only_an_end_mark_turned_into_a_link_to_a_lower_block_is_held() {
        // Block 2 of the first FAT (clusters 256..384); cluster 300 was the end of a chain.
        let offset = FAT32.start + 1024;
        let old = block_with(&[(300 - 256, 0x0FFF_FFFF), (301 - 256, 0x0FFF_FFF8), (302 - 256, 0)]);
        // 300 now links to 5 (block 0: held), 301 to 370 (same block: not held), 302 was free.
        let new = block_with(&[(300 - 256, 5), (301 - 256, 370), (302 - 256, 6)]);
        let held = FAT32.wrapped_links(offset, &old, &new);
        assert_eq!(held, vec![(offset + 44 * 4, vec![0xFF, 0xFF, 0xFF, 0x0F])]);
        // The same in the second copy: its own lower block.
        let held = FAT32.wrapped_links(offset + FAT32.size, &old, &new);
        assert_eq!(held, vec![(offset + FAT32.size + 44 * 4, vec![0xFF, 0xFF, 0xFF, 0x0F])]);
        // Outside the FATs, or FAT12: nothing.
        assert!(FAT32.wrapped_links(0, &old, &new).is_empty());
        assert!(FatLayout { entry: 0, ..FAT32 }.wrapped_links(offset, &old, &new).is_empty());
    }
}
