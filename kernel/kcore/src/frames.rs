//! Physical frame bookkeeping: one bit per 4 KiB frame, set when the frame is free.
//!
//! Invariants of [`FrameBitmap`]: a bit is set only for a frame inside the usable map; `free`
//! equals the number of set bits; a frame is handed out at most once until it is returned;
//! returning a frame that is not allocated (double free) or not usable RAM is refused with an
//! error and changes nothing. The bitmap's storage is lent by the caller, so this works before
//! any heap exists.

use crate::PAGE_SIZE;
use crate::memmap::Range;

/// Why a frame could not be returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not page aligned.
    Misaligned,
    /// The address is not usable RAM managed by this bitmap.
    NotManaged,
    /// The frame is already free.
    DoubleFree,
}

/// Free/used state of every usable frame. See the module invariants.
pub struct FrameBitmap<'a> {
    words: &'a mut [u64],
    usable: &'a [Range],
    total: u64,
    free: u64,
    cursor: usize,
}

/// Number of `u64` words needed to cover physical addresses below `max_addr`.
pub fn words_for(max_addr: u64) -> usize {
    let frames = max_addr.div_ceil(PAGE_SIZE);
    usize::try_from(frames.div_ceil(64)).unwrap_or(usize::MAX)
}

impl<'a> FrameBitmap<'a> {
    /// Creates the bitmap with every frame of `usable` free, except those in `in_use` (for example
    /// the frames that hold the bitmap itself). Frames above what `words` can cover are not
    /// managed.
    pub fn new(words: &'a mut [u64], usable: &'a [Range], in_use: &[Range]) -> Self {
        words.fill(0);
        let mut bitmap = FrameBitmap { words, usable, total: 0, free: 0, cursor: 0 };
        for range in usable {
            for frame in range.start / PAGE_SIZE..range.end / PAGE_SIZE {
                let addr = frame * PAGE_SIZE;
                if in_use.iter().any(|r| r.contains(addr)) {
                    if bitmap.covers(frame) {
                        bitmap.total += 1;
                    }
                } else if bitmap.set(frame) {
                    bitmap.total += 1;
                    bitmap.free += 1;
                }
            }
        }
        bitmap
    }

    fn covers(&self, frame: u64) -> bool {
        usize::try_from(frame / 64).is_ok_and(|w| w < self.words.len())
    }

    /// Marks a frame free; false if the bitmap does not cover it.
    fn set(&mut self, frame: u64) -> bool {
        let Ok(word) = usize::try_from(frame / 64) else {
            return false;
        };
        match self.words.get_mut(word) {
            Some(w) => {
                *w |= 1 << (frame % 64);
                true
            }
            None => false,
        }
    }

    /// Takes one free frame and returns its physical address, or `None` when memory is exhausted.
    pub fn alloc(&mut self) -> Option<u64> {
        let n = self.words.len();
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let word = self.words[i];
            if word != 0 {
                let bit = u64::from(word.trailing_zeros());
                self.words[i] = word & (word - 1);
                self.cursor = i;
                self.free -= 1;
                return Some((i as u64 * 64 + bit) * PAGE_SIZE);
            }
        }
        None
    }

    /// Takes `count` free frames at consecutive physical addresses (the lowest such run) and
    /// returns the first one's address, or `None` if no run is long enough. A linear scan: meant
    /// for boot-time allocations, not hot paths. Each frame is freed on its own with `free`.
    pub fn alloc_contiguous(&mut self, count: u64) -> Option<u64> {
        if count == 0 {
            return None;
        }
        let frames = self.words.len() as u64 * 64;
        let (mut start, mut len) = (0, 0);
        for frame in 0..frames {
            if self.is_free(frame * PAGE_SIZE) {
                if len == 0 {
                    start = frame;
                }
                len += 1;
                if len == count {
                    for f in start..start + count {
                        self.words[(f / 64) as usize] &= !(1 << (f % 64));
                    }
                    self.free -= count;
                    return Some(start * PAGE_SIZE);
                }
            } else {
                len = 0;
            }
        }
        None
    }

    /// Returns a frame taken with [`alloc`](Self::alloc) or [`alloc_contiguous`](Self::alloc_contiguous).
    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(FrameError::Misaligned);
        }
        let frame = addr / PAGE_SIZE;
        if !self.usable.iter().any(|r| r.contains(addr)) || !self.covers(frame) {
            return Err(FrameError::NotManaged);
        }
        if self.is_free(addr) {
            return Err(FrameError::DoubleFree);
        }
        self.set(frame);
        self.free += 1;
        Ok(())
    }

    /// Whether the frame at `addr` is currently free.
    pub fn is_free(&self, addr: u64) -> bool {
        let frame = addr / PAGE_SIZE;
        usize::try_from(frame / 64).ok().and_then(|w| self.words.get(w)).is_some_and(|w| w & (1 << (frame % 64)) != 0)
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames managed (free or allocated).
    pub fn total_frames(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const USABLE: [Range; 2] = [Range { start: 0x1000, end: 0x5000 }, Range { start: 0x10_000, end: 0x12_000 }];

    #[test]
    fn hands_out_every_usable_frame_once_then_exhausts() {
        let mut words = vec![0; words_for(0x12_000)];
        let mut bitmap = FrameBitmap::new(&mut words, &USABLE, &[]);
        assert_eq!(bitmap.total_frames(), 6);
        let mut seen = HashSet::new();
        while let Some(addr) = bitmap.alloc() {
            assert!(USABLE.iter().any(|r| r.contains(addr)), "{addr:#x} is not usable");
            assert!(seen.insert(addr), "{addr:#x} handed out twice");
        }
        assert_eq!(seen.len(), 6);
        assert_eq!(bitmap.free_frames(), 0);
        assert_eq!(bitmap.alloc(), None);
    }

    #[test]
    fn free_round_trip_and_refusals() {
        let mut words = vec![0; words_for(0x12_000)];
        let mut bitmap = FrameBitmap::new(&mut words, &USABLE, &[]);
        let a = bitmap.alloc().expect("a frame");
        assert_eq!(bitmap.free_frames(), 5);
        assert_eq!(bitmap.free(a + 1), Err(FrameError::Misaligned));
        assert_eq!(bitmap.free(0x8000), Err(FrameError::NotManaged));
        assert_eq!(bitmap.free(0x100_0000), Err(FrameError::NotManaged));
        assert_eq!(bitmap.free(a), Ok(()));
        assert_eq!(bitmap.free(a), Err(FrameError::DoubleFree));
        assert_eq!(bitmap.free_frames(), 6);
    }

    #[test]
    fn in_use_frames_are_counted_but_never_handed_out() {
        let mut words = vec![0; words_for(0x12_000)];
        let in_use = [Range { start: 0x2000, end: 0x4000 }];
        let mut bitmap = FrameBitmap::new(&mut words, &USABLE, &in_use);
        assert_eq!((bitmap.total_frames(), bitmap.free_frames()), (6, 4));
        while let Some(addr) = bitmap.alloc() {
            assert!(!in_use[0].contains(addr));
        }
    }

    #[test]
    fn contiguous_runs_skip_holes_and_used_frames() {
        let mut words = vec![0; words_for(0x12_000)];
        let mut bitmap = FrameBitmap::new(&mut words, &USABLE, &[]);
        // 0x1000..0x5000 holds 4 frames; take one in the middle so only 2 and 1 remain in a row.
        let _ = bitmap.alloc(); // 0x1000
        let _ = bitmap.alloc(); // 0x2000
        assert_eq!(bitmap.alloc_contiguous(3), None);
        assert_eq!(bitmap.alloc_contiguous(2), Some(0x3000));
        assert_eq!(bitmap.free_frames(), 2);
        assert_eq!(bitmap.alloc_contiguous(2), Some(0x10_000));
        assert_eq!(bitmap.alloc_contiguous(1), None);
        assert_eq!(bitmap.alloc_contiguous(0), None);
        assert_eq!(bitmap.free(0x3000), Ok(()));
        assert_eq!(bitmap.free(0x4000), Ok(()));
        assert_eq!(bitmap.free(0x4000), Err(FrameError::DoubleFree));
        assert_eq!(bitmap.free_frames(), 2);
    }

    #[test]
    fn frames_beyond_the_bitmap_are_not_managed() {
        let mut words = vec![0; 1]; // covers 64 frames = 0x40_000 bytes
        let usable = [Range { start: 0x3f_000, end: 0x42_000 }];
        let mut bitmap = FrameBitmap::new(&mut words, &usable, &[]);
        assert_eq!(bitmap.total_frames(), 1);
        assert_eq!(bitmap.free(0x40_000), Err(FrameError::NotManaged));
    }
}
