//! [`PageIndex`]: the cache's map from page number to slot, looked up for every page a read or
//! write touches.
//!
//! A `BTreeMap` cost a warm 64 KiB read about 500 instructions a page (two lookups each walking
//! nodes of a tree of thousands of pages). This is open addressing with linear probing over a
//! power-of-two table: a page number is multiplied by the 64-bit golden ratio and its high bits
//! pick the first bucket, so consecutive pages spread over the table. Invariants: the table is
//! never more than half full (so a probe ends at an empty bucket within a few steps); every key
//! is reachable from its home bucket without crossing an empty bucket (deletion shifts later
//! entries back instead of leaving tombstones).

use alloc::vec;
use alloc::vec::Vec;

/// Marks an empty bucket. No page has this number: pages are disk offsets over 4096.
const EMPTY: u64 = u64::MAX;
/// Buckets of a new table.
const FIRST_BUCKETS: usize = 64;

/// Page number to slot index.
pub(crate) struct PageIndex {
    /// The page of each bucket, or [`EMPTY`].
    pages: Vec<u64>,
    /// The slot of each bucket that holds a page.
    slots: Vec<u32>,
    /// Buckets in use.
    len: usize,
    /// 64 less log2 of the bucket count: the hash's high bits are the bucket.
    shift: u32,
}

impl PageIndex {
    /// An empty index.
    pub(crate) fn new() -> PageIndex {
        PageIndex {
            pages: vec![EMPTY; FIRST_BUCKETS],
            slots: vec![0; FIRST_BUCKETS],
            len: 0,
            shift: 64 - FIRST_BUCKETS.trailing_zeros(),
        }
    }

    fn home(&self, page: u64) -> usize {
        (page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn mask(&self) -> usize {
        self.pages.len() - 1
    }

    /// The bucket holding `page`, if any.
    fn find(&self, page: u64) -> Option<usize> {
        let mut i = self.home(page);
        loop {
            match self.pages[i] {
                p if p == page => return Some(i),
                EMPTY => return None,
                _ => i = (i + 1) & self.mask(),
            }
        }
    }

    /// The slot holding `page`.
    #[inline]
    pub(crate) fn get(&self, page: u64) -> Option<usize> {
        self.find(page).map(|i| self.slots[i] as usize)
    }

    /// Whether `page` is held.
    pub(crate) fn contains(&self, page: u64) -> bool {
        self.find(page).is_some()
    }

    /// Records that `slot` holds `page` (replacing what was recorded for it).
    pub(crate) fn insert(&mut self, page: u64, slot: usize) {
        debug_assert!(page != EMPTY);
        if let Some(i) = self.find(page) {
            self.slots[i] = slot as u32;
            return;
        }
        if 2 * (self.len + 1) > self.pages.len() {
            self.grow();
        }
        let mut i = self.home(page);
        while self.pages[i] != EMPTY {
            i = (i + 1) & self.mask();
        }
        self.pages[i] = page;
        self.slots[i] = slot as u32;
        self.len += 1;
    }

    /// Forgets `page`.
    pub(crate) fn remove(&mut self, page: u64) {
        let Some(mut hole) = self.find(page) else { return };
        self.len -= 1;
        // Shift back every later entry of the run that may no longer be reached past the hole.
        let mut i = hole;
        loop {
            i = (i + 1) & self.mask();
            let p = self.pages[i];
            if p == EMPTY {
                break;
            }
            // The entry at `i` stays if its home lies cyclically in (hole, i].
            let home = self.home(p);
            let stays = if hole < i { hole < home && home <= i } else { hole < home || home <= i };
            if !stays {
                self.pages[hole] = p;
                self.slots[hole] = self.slots[i];
                hole = i;
            }
        }
        self.pages[hole] = EMPTY;
    }

    /// Doubles the table.
    fn grow(&mut self) {
        let buckets = 2 * self.pages.len();
        let old_pages = core::mem::replace(&mut self.pages, vec![EMPTY; buckets]);
        let old_slots = core::mem::replace(&mut self.slots, vec![0; buckets]);
        self.shift -= 1;
        self.len = 0;
        for (page, slot) in old_pages.into_iter().zip(old_slots).filter(|&(p, _)| p != EMPTY) {
            self.insert(page, slot as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PageIndex;
    use std::collections::BTreeMap;

    /// Random inserts, replacements and removals, checked against a `BTreeMap` after each.
    #[test]
    fn agrees_with_a_map_through_growth_and_removals() {
        let mut index = PageIndex::new();
        let mut model = BTreeMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Small keys collide a lot; a few far apart ones as well; runs of consecutive pages.
            let page = match x % 4 {
                0 => x % 512,
                1 => x >> 20,
                _ => (x >> 8) % 4096,
            };
            if x.is_multiple_of(3) {
                index.remove(page);
                model.remove(&page);
            } else {
                index.insert(page, step as usize);
                model.insert(page, step as usize);
            }
            if step.is_multiple_of(1000) {
                for probe in 0..4096u64 {
                    assert_eq!(index.get(probe), model.get(&probe).copied(), "page {probe} at step {step}");
                }
            }
            assert_eq!(index.get(page), model.get(&page).copied());
            assert_eq!(index.len, model.len());
        }
        for (&page, &slot) in &model {
            assert_eq!(index.get(page), Some(slot));
            assert!(index.contains(page));
        }
        assert!(2 * index.len <= index.pages.len());
    }
}
