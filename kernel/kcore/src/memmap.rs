//! The physical memory map as the kernel uses it: the firmware's list of regions reduced to
//! page-aligned, sorted, non-overlapping usable ranges.
//!
//! Invariants of [`UsableMap`]: ranges are page aligned, non-empty, sorted by start, disjoint and
//! not adjacent (adjacent ranges are merged), never include physical page 0 (so a frame address is
//! never confused with null), and never overlap any region the firmware reported as not usable,
//! even when the firmware's own map overlaps itself. Capacity is fixed (no heap exists yet when
//! this runs); ranges that do not fit are counted in [`UsableMap::dropped_bytes`], never silently
//! lost.

use crate::PAGE_SIZE;

/// A half-open physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// Length in bytes (0 for an empty or inverted range).
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `addr` lies inside the range.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// How the firmware classified a region, reduced to what the kernel cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Free RAM the kernel may hand out.
    Usable,
    /// RAM holding the kernel, page tables, boot info or ramdisk, set up by the bootloader.
    Bootloader,
    /// Anything else: firmware, ACPI, MMIO holes, bad memory.
    Reserved,
}

/// Byte totals per kind, for the boot log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of regions the firmware reported.
    pub regions: usize,
    /// Bytes reported usable (before alignment and overlap trimming).
    pub usable: u64,
    /// Bytes in use by the bootloader and kernel image.
    pub bootloader: u64,
    /// Bytes reserved for firmware or hardware.
    pub reserved: u64,
    /// Highest end address of any region.
    pub max_addr: u64,
}

impl Summary {
    /// Summarises a firmware memory map.
    pub fn of(regions: impl IntoIterator<Item = (Range, RegionKind)>) -> Self {
        let mut summary = Summary::default();
        for (range, kind) in regions {
            summary.regions += 1;
            summary.max_addr = summary.max_addr.max(range.end);
            match kind {
                RegionKind::Usable => summary.usable += range.len(),
                RegionKind::Bootloader => summary.bootloader += range.len(),
                RegionKind::Reserved => summary.reserved += range.len(),
            }
        }
        summary
    }
}

/// The usable RAM, as page-aligned disjoint ranges. See the module invariants.
#[derive(Clone, Debug)]
pub struct UsableMap<const N: usize> {
    ranges: [Range; N],
    len: usize,
    dropped: u64,
}

fn align_up(value: u64) -> Option<u64> {
    value.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

fn align_down(value: u64) -> u64 {
    value & !(PAGE_SIZE - 1)
}

impl<const N: usize> UsableMap<N> {
    /// Builds the usable map from the firmware's regions, in any order, possibly overlapping.
    /// The same iterator is walked twice (usable regions, then everything else to cut out).
    pub fn new<I>(regions: I) -> Self
    where
        I: IntoIterator<Item = (Range, RegionKind)> + Clone,
    {
        let mut map = UsableMap { ranges: [Range::default(); N], len: 0, dropped: 0 };
        for (range, kind) in regions.clone() {
            if kind != RegionKind::Usable {
                continue;
            }
            // Usable memory shrinks inward to whole pages; page 0 is never handed out.
            let Some(start) = align_up(range.start.max(PAGE_SIZE)) else {
                continue;
            };
            let end = align_down(range.end);
            if start < end {
                map.insert(Range { start, end });
            }
        }
        for (range, kind) in regions {
            if kind == RegionKind::Usable {
                continue;
            }
            // Anything not usable grows outward to whole pages and is cut out.
            let start = align_down(range.start);
            let end = align_up(range.end).unwrap_or(!(PAGE_SIZE - 1));
            map.remove(Range { start, end });
        }
        map
    }

    /// The usable ranges, sorted by address.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges[..self.len]
    }

    /// Total usable bytes.
    pub fn total_bytes(&self) -> u64 {
        self.ranges().iter().map(Range::len).sum()
    }

    /// End of the highest usable range (0 when there is none).
    pub fn max_addr(&self) -> u64 {
        self.ranges().last().map_or(0, |r| r.end)
    }

    /// Bytes of usable memory left out because the map was full.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// Whether the physical address lies in usable RAM.
    pub fn contains(&self, addr: u64) -> bool {
        // Sorted and disjoint: binary search for the last range starting at or below `addr`.
        let ranges = self.ranges();
        let idx = ranges.partition_point(|r| r.start <= addr);
        idx > 0 && ranges[idx - 1].contains(addr)
    }

    /// Adds a range, merging with overlapping or adjacent ones.
    fn insert(&mut self, mut new: Range) {
        let mut i = 0;
        while i < self.len {
            let r = self.ranges[i];
            if r.start <= new.end && new.start <= r.end {
                new = Range { start: r.start.min(new.start), end: r.end.max(new.end) };
                self.delete_at(i);
            } else {
                i += 1;
            }
        }
        if self.len == N {
            self.dropped += new.len();
            return;
        }
        let pos = self.ranges[..self.len].partition_point(|r| r.start < new.start);
        self.ranges.copy_within(pos..self.len, pos + 1);
        self.ranges[pos] = new;
        self.len += 1;
    }

    /// Cuts a range out of every usable range it overlaps.
    fn remove(&mut self, cut: Range) {
        let mut i = 0;
        while i < self.len {
            let r = self.ranges[i];
            if cut.end <= r.start || r.end <= cut.start {
                i += 1;
                continue;
            }
            let left = Range { start: r.start, end: cut.start.max(r.start) };
            let right = Range { start: cut.end.min(r.end), end: r.end };
            self.delete_at(i);
            // Re-inserting keeps the order; the pieces cannot overlap anything else.
            for piece in [left, right] {
                if !piece.is_empty() {
                    self.insert(piece);
                }
            }
            // Pieces land at or after position i only if they start after earlier ranges; restart
            // conservatively from i, which at worst re-checks ranges that no longer overlap `cut`.
        }
    }

    fn delete_at(&mut self, i: usize) {
        self.ranges.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    #[test]
    fn aligns_sorts_and_merges() {
        let map = UsableMap::<8>::new([
            (r(0x20_0000, 0x30_0000), RegionKind::Usable),
            (r(0x1001, 0x9_f000), RegionKind::Usable),
            (r(0x9_f000, 0x10_0000), RegionKind::Usable),
            (r(0x10_0000, 0x20_0000), RegionKind::Usable),
        ]);
        assert_eq!(map.ranges(), &[r(0x2000, 0x30_0000)]);
        assert_eq!(map.total_bytes(), 0x30_0000 - 0x2000);
    }

    #[test]
    fn never_hands_out_page_zero() {
        let map = UsableMap::<4>::new([(r(0, 0x10_000), RegionKind::Usable)]);
        assert_eq!(map.ranges(), &[r(0x1000, 0x10_000)]);
        assert!(!map.contains(0));
    }

    #[test]
    fn reserved_overlap_is_cut_out_even_if_listed_first() {
        let map = UsableMap::<8>::new([
            (r(0x8000, 0x9800), RegionKind::Reserved),
            (r(0x1000, 0x20_000), RegionKind::Usable),
            (r(0x1f_f00, 0x30_000), RegionKind::Bootloader),
        ]);
        assert_eq!(map.ranges(), &[r(0x1000, 0x8000), r(0xa000, 0x1f_000)]);
        assert!(map.contains(0x7fff));
        assert!(!map.contains(0x8000));
        assert!(!map.contains(0x9fff));
        assert!(map.contains(0xa000));
    }

    #[test]
    fn tiny_and_inverted_regions_are_ignored() {
        let map = UsableMap::<4>::new([
            (r(0x5001, 0x5fff), RegionKind::Usable),
            (r(0x9000, 0x3000), RegionKind::Usable),
            (r(u64::MAX - 10, u64::MAX), RegionKind::Usable),
        ]);
        assert!(map.ranges().is_empty());
        assert_eq!(map.max_addr(), 0);
    }

    #[test]
    fn overflow_is_counted_not_lost_silently() {
        let map = UsableMap::<2>::new([
            (r(0x1000, 0x2000), RegionKind::Usable),
            (r(0x4000, 0x5000), RegionKind::Usable),
            (r(0x8000, 0xa000), RegionKind::Usable),
        ]);
        assert_eq!(map.ranges().len(), 2);
        assert_eq!(map.dropped_bytes(), 0x2000);
    }

    #[test]
    fn reserved_region_reaching_the_top_of_memory() {
        let map = UsableMap::<4>::new([
            (r(0x1000, 0x10_000), RegionKind::Usable),
            (r(0x8000, u64::MAX), RegionKind::Reserved),
        ]);
        assert_eq!(map.ranges(), &[r(0x1000, 0x8000)]);
    }

    #[test]
    fn summary_counts_kinds() {
        let s = Summary::of([
            (r(0, 0x1000), RegionKind::Reserved),
            (r(0x1000, 0x3000), RegionKind::Usable),
            (r(0x3000, 0x4000), RegionKind::Bootloader),
        ]);
        assert_eq!(s, Summary { regions: 3, usable: 0x2000, bootloader: 0x1000, reserved: 0x1000, max_addr: 0x4000 });
    }

    #[test]
    fn randomised_against_a_page_model() {
        // A tiny deterministic generator; the model is a plain per-page boolean array.
        let mut seed = 0x1234_5678_9abc_def0_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let mut regions = Vec::new();
            for _ in 0..(next() % 8) {
                let start = next() % 0x40_000;
                let len = next() % 0x10_000;
                let kind = match next() % 3 {
                    0 => RegionKind::Usable,
                    1 => RegionKind::Reserved,
                    _ => RegionKind::Bootloader,
                };
                regions.push((r(start, start + len), kind));
            }
            let map = UsableMap::<64>::new(regions.iter().copied());
            for page in 0..(0x50_000 / PAGE_SIZE) {
                let (lo, hi) = (page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
                let usable = page != 0
                    && regions.iter().any(|(g, k)| *k == RegionKind::Usable && g.start <= lo && hi <= g.end)
                    && !regions.iter().any(|(g, k)| *k != RegionKind::Usable && g.start < hi && lo < g.end);
                assert_eq!(map.contains(lo), usable, "page {page:#x} in {regions:?} -> {:?}", map.ranges());
            }
            assert!(map.ranges().windows(2).all(|w| w[0].end < w[1].start));
        }
    }
}
