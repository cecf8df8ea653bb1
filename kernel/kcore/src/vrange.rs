//! The virtual address ranges a process's `MemMap` area hands out: first fit among ranges that
//! were given back, else from the untouched part above them. Without reuse, a program that maps
//! and unmaps in a loop (thread stacks, buffers) would walk through its address space and keep
//! building page tables for it.
//!
//! Invariants: given-back ranges are disjoint, page aligned, non-empty, never adjacent (they are
//! merged), and all lie below `next`; a range given back that ends at `next` lowers `next`
//! instead. Nothing here panics: a range that is not page aligned, overlaps a free one, or lies
//! outside the area is ignored.

extern crate alloc;

use alloc::collections::BTreeMap;

use crate::PAGE_SIZE;

/// See the module documentation.
#[derive(Debug)]
pub struct VirtualRanges {
    start: u64,
    next: u64,
    end: u64,
    /// Start → length in bytes.
    free: BTreeMap<u64, u64>,
}

impl VirtualRanges {
    /// An area `start..end` with nothing handed out.
    pub fn new(start: u64, end: u64) -> Self {
        VirtualRanges { start, next: start, end, free: BTreeMap::new() }
    }

    /// `bytes` (a positive multiple of the page size) of address space, or `None` if no room.
    pub fn take(&mut self, bytes: u64) -> Option<u64> {
        if bytes == 0 || !bytes.is_multiple_of(PAGE_SIZE) {
            return None;
        }
        if let Some((&at, &len)) = self.free.iter().find(|&(_, &len)| len >= bytes) {
            self.free.remove(&at);
            if len > bytes {
                self.free.insert(at + bytes, len - bytes);
            }
            return Some(at);
        }
        let at = self.next;
        self.next = at.checked_add(bytes).filter(|&e| e <= self.end)?;
        Some(at)
    }

    /// Gives back `bytes` at `at`, which were handed out and are unmapped now.
    pub fn give(&mut self, at: u64, bytes: u64) {
        let Some(end) = at.checked_add(bytes) else { return };
        if bytes == 0 || !at.is_multiple_of(PAGE_SIZE) || !bytes.is_multiple_of(PAGE_SIZE) {
            return;
        }
        if at < self.start || end > self.next || self.overlaps_free(at, end) {
            return;
        }
        let (mut at, mut end) = (at, end);
        if let Some((&before, &len)) = self.free.range(..at).next_back()
            && before + len == at
        {
            self.free.remove(&before);
            at = before;
        }
        if let Some(len) = self.free.remove(&end) {
            end += len;
        }
        if end == self.next {
            self.next = at;
        } else {
            self.free.insert(at, end - at);
        }
    }

    fn overlaps_free(&self, at: u64, end: u64) -> bool {
        let before = self.free.range(..end).next_back();
        before.is_some_and(|(&s, &len)| s + len > at)
    }

    /// Bytes handed out and not given back.
    pub fn in_use(&self) -> u64 {
        self.next - self.start - self.free.values().sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = PAGE_SIZE;

    #[test]
    fn reuses_given_back_ranges_first_fit_and_merges() {
        let mut v = VirtualRanges::new(0x10000, 0x10000 + 100 * P);
        let a = v.take(4 * P).unwrap();
        let b = v.take(2 * P).unwrap();
        let c = v.take(3 * P).unwrap();
        assert_eq!((a, b, c), (0x10000, 0x10000 + 4 * P, 0x10000 + 6 * P));
        v.give(a, 4 * P);
        assert_eq!(v.take(P), Some(a)); // first fit, split
        v.give(b, 2 * P); // merges with a's rest
        assert_eq!(v.take(5 * P), Some(a + P));
        v.give(c, 3 * P); // ends at the top: the top comes down
        assert_eq!(v.take(3 * P), Some(c));
        assert_eq!(v.in_use(), 9 * P);
    }

    #[test]
    fn refuses_what_does_not_fit_and_ignores_bad_gifts() {
        let mut v = VirtualRanges::new(0, 10 * P);
        assert_eq!(v.take(0), None);
        assert_eq!(v.take(P + 1), None);
        assert_eq!(v.take(11 * P), None);
        let a = v.take(10 * P).unwrap();
        assert_eq!(v.take(P), None);
        v.give(a + 1, P); // unaligned
        v.give(a, 0); // empty
        v.give(u64::MAX - P + 1, 2 * P); // wraps
        v.give(10 * P, P); // never handed out
        assert_eq!(v.in_use(), 10 * P);
        v.give(a, P);
        v.give(a, P); // twice
        assert_eq!(v.in_use(), 9 * P);
    }

    /// A random model check: handed-out ranges never overlap, and everything given back is
    /// found again.
    #[test]
    fn random_take_and_give_never_overlap() {
        let mut v = VirtualRanges::new(0x1000, 0x1000 + 4096 * P);
        let mut live: alloc::vec::Vec<(u64, u64)> = alloc::vec::Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            if live.is_empty() || next() % 3 != 0 {
                let bytes = (1 + next() % 17) * P;
                if let Some(at) = v.take(bytes) {
                    assert!(live.iter().all(|&(s, l)| at + bytes <= s || s + l <= at), "overlap at {at:#x}");
                    live.push((at, bytes));
                }
            } else {
                let (at, bytes) = live.swap_remove((next() % live.len() as u64) as usize);
                v.give(at, bytes);
            }
            assert_eq!(v.in_use(), live.iter().map(|&(_, l)| l).sum::<u64>());
        }
        for (at, bytes) in live.drain(..) {
            v.give(at, bytes);
        }
        assert_eq!(v.in_use(), 0);
        assert_eq!(v.take(4096 * P), Some(0x1000));
    }
}
