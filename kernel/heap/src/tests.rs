//! Host tests for the class heap, also run under Miri (`cargo +nightly miri test -p vessel-heap`).

use super::*;
use std::collections::BTreeMap;

/// A heap region from the host allocator, aligned like a slab.
struct Arena {
    base: NonNull<u8>,
    layout: Layout,
}

impl Arena {
    fn new(size: usize) -> Arena {
        let layout = Layout::from_size_align(size, SLAB).expect("arena layout");
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { std::alloc::alloc(layout) }).expect("host allocation");
        Arena { base, layout }
    }

    /// A heap over the whole arena; it must be dropped before the arena (declare it after).
    fn heap(&self) -> ClassHeap {
        let mut heap = ClassHeap::empty();
        // SAFETY: the arena is ours, unused, and outlives the heap (the caller declares it later).
        unsafe { heap.init(self.base.as_ptr(), self.layout.size(), 0) };
        heap
    }

    /// A heap that starts with `size` bytes of the arena and may grow into the rest.
    fn growing_heap(&self, size: usize) -> ClassHeap {
        let mut heap = ClassHeap::empty();
        // SAFETY: as in `heap`.
        unsafe { heap.init(self.base.as_ptr(), size, self.layout.size() - size) };
        heap
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("test layout")
}

/// What `used` should charge for `layout`, computed independently of `class_of`.
fn charge(layout: Layout) -> usize {
    let need = layout.size().max(layout.align()).max(16).next_power_of_two();
    if need <= 2048 { need } else { layout.size() }
}

/// Fills a live block with `pattern`.
fn fill(block: NonNull<u8>, size: usize, pattern: u8) {
    // SAFETY: the block is live, ours, and at least `size` bytes.
    unsafe { block.as_ptr().write_bytes(pattern, size) };
}

/// Asserts that a live block still holds `pattern` everywhere.
fn check(block: NonNull<u8>, size: usize, pattern: u8) {
    // SAFETY: the block is live, ours, at least `size` bytes, and was filled by `fill`.
    let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
    // One slice comparison (a `memcmp`) rather than a loop: much faster under Miri.
    assert!(bytes == vec![pattern; size].as_slice(), "block at {block:p} was overwritten");
}

#[test]
fn sizes_map_to_classes() {
    assert_eq!(CLASSES, 8);
    assert_eq!(class_of(layout(0, 1)), Some(0));
    assert_eq!(class_of(layout(1, 1)), Some(0));
    assert_eq!(class_of(layout(16, 8)), Some(0));
    assert_eq!(class_of(layout(17, 1)), Some(1));
    assert_eq!(class_of(layout(1, 64)), Some(2));
    assert_eq!(class_of(layout(100, 4)), Some(3));
    assert_eq!(class_of(layout(2048, 1)), Some(7));
    assert_eq!(class_of(layout(16, 2048)), Some(7));
    assert_eq!(class_of(layout(2049, 1)), None);
    assert_eq!(class_of(layout(1, 4096)), None);
}

#[test]
fn each_class_round_trips() {
    let arena = Arena::new(64 * 1024);
    let mut heap = arena.heap();
    for class in 0..CLASSES {
        let size = class_size(class);
        for request in [size / 2 + 1, size] {
            let l = layout(request, 8);
            let block = heap.allocate(l).expect("class block");
            assert_eq!(heap.used(), size);
            assert_eq!(block.as_ptr().addr() % size, 0, "class block aligned to its size");
            fill(block, request, 0xa5);
            check(block, request, 0xa5);
            // SAFETY: allocated just above with `l`, freed once.
            unsafe { heap.deallocate(block, l) };
            assert_eq!(heap.used(), 0);
        }
    }
    // A zero-sized request takes (and counts) a 16-byte block.
    let block = heap.allocate(layout(0, 1)).expect("zero-sized block");
    assert_eq!(heap.used(), 16);
    // SAFETY: allocated just above with this layout.
    unsafe { heap.deallocate(block, layout(0, 1)) };
    assert_eq!(heap.used(), 0);
}

#[test]
fn big_blocks_round_trip() {
    let arena = Arena::new(1024 * 1024);
    let mut heap = arena.heap();
    let free = heap.free_in_big_heap();
    for size in [2049, 4096, 10_000, 100_000, 500_000] {
        let l = layout(size, 8);
        let block = heap.allocate(l).expect("big block");
        assert_eq!(heap.used(), size);
        fill(block, size, 0x3c);
        check(block, size, 0x3c);
        // SAFETY: allocated just above with `l`, freed once.
        unsafe { heap.deallocate(block, l) };
        assert_eq!(heap.used(), 0);
    }
    assert_eq!(heap.free_in_big_heap(), free, "big blocks go back to the big heap");
}

#[test]
fn alignment_is_honoured() {
    let arena = Arena::new(1024 * 1024);
    let mut heap = arena.heap();
    let sizes = [0, 1, 3, 8, 15, 16, 17, 100, 1000, 2047, 2048, 2049, 4096, 5000];
    let mut live = Vec::new();
    let mut expected = 0;
    for size in sizes {
        for align in (0..=12).map(|shift| 1usize << shift) {
            let l = layout(size, align);
            let block = heap.allocate(l).expect("aligned block");
            assert_eq!(block.as_ptr().addr() % align, 0, "size {size} align {align}");
            fill(block, size, live.len() as u8);
            expected += charge(l);
            live.push((block, l));
        }
    }
    assert_eq!(heap.used(), expected);
    for (i, &(block, l)) in live.iter().enumerate() {
        check(block, l.size(), i as u8);
        // SAFETY: each block was allocated above with its layout and is freed once.
        unsafe { heap.deallocate(block, l) };
    }
    assert_eq!(heap.used(), 0);
}

#[test]
fn freed_blocks_are_reused() {
    let arena = Arena::new(64 * 1024);
    let mut heap = arena.heap();
    for class in 0..CLASSES {
        let size = class_size(class);
        let l = layout(size, 1);
        let a = heap.allocate(l).expect("first block");
        // SAFETY: allocated just above with `l`.
        unsafe { heap.deallocate(a, l) };
        // Any request of the same class gets the block back, whatever its exact size.
        let smaller = layout(size / 2 + 1, 1);
        let b = heap.allocate(smaller).expect("second block");
        assert_eq!(a, b, "class {size}");
        // SAFETY: allocated just above with `smaller`.
        unsafe { heap.deallocate(b, smaller) };
    }
    // The free list is LIFO.
    let l = layout(48, 16);
    let (a, b) = (heap.allocate(l).expect("a"), heap.allocate(l).expect("b"));
    // SAFETY: both allocated just above with `l`, each freed once.
    unsafe {
        heap.deallocate(a, l);
        heap.deallocate(b, l);
    }
    assert_eq!(heap.allocate(l), Some(b));
    assert_eq!(heap.allocate(l), Some(a));
}

#[test]
fn a_slab_serves_a_page_of_blocks() {
    let arena = Arena::new(64 * 1024);
    let mut heap = arena.heap();
    let free = heap.free_in_big_heap();
    let l = layout(16, 16);
    let blocks: Vec<_> = (0..SLAB / 16).map(|_| heap.allocate(l).expect("block")).collect();
    assert_eq!(heap.free_in_big_heap(), free - SLAB, "one slab for a page of 16-byte blocks");
    assert_eq!(heap.used(), SLAB);
    let extra = heap.allocate(l).expect("block from a second slab");
    assert_eq!(heap.free_in_big_heap(), free - 2 * SLAB);
    for block in blocks.into_iter().chain([extra]) {
        // SAFETY: each allocated above with `l`, freed once.
        unsafe { heap.deallocate(block, l) };
    }
    assert_eq!(heap.used(), 0);
    assert_eq!(heap.free_in_big_heap(), free - 2 * SLAB, "slabs stay with their class");
}

#[test]
fn exhaustion_fails_without_panicking() {
    let arena = Arena::new(64 * 1024);
    let mut heap = arena.heap();
    let small = layout(64, 8);
    let mut blocks = Vec::new();
    while let Some(block) = heap.allocate(small) {
        blocks.push(block);
    }
    assert!(blocks.len() >= 15 * SLAB / 64, "most of the region went to 64-byte blocks");
    assert_eq!(heap.allocate(layout(2048, 8)), None, "no slab left for another class");
    assert_eq!(heap.allocate(layout(8192, 8)), None, "no room for a big block");
    for &block in &blocks {
        // SAFETY: each allocated above with `small`, freed once.
        unsafe { heap.deallocate(block, small) };
    }
    assert_eq!(heap.used(), 0);
    // The same blocks come back from the free list, without new slabs.
    let again = (0..blocks.len()).filter_map(|_| heap.allocate(small)).count();
    assert_eq!(again, blocks.len());
    assert_eq!(heap.allocate(small), None);

    // Big blocks exhaust the big heap the same way.
    let arena = Arena::new(64 * 1024);
    let mut heap = arena.heap();
    let big = layout(10_000, 8);
    let mut count = 0;
    while heap.allocate(big).is_some() {
        count += 1;
    }
    assert_eq!(count, 6);
    assert_eq!(heap.used(), 6 * 10_000);
}

#[test]
fn big_heap_serves_large_requests_after_many_small_ones() {
    let arena = Arena::new(1024 * 1024);
    let mut heap = arena.heap();
    let layouts: Vec<_> = (0..2_000).map(|i| layout(16 + (i * 37) % 240, 8)).collect();
    let mut blocks: Vec<_> = layouts.iter().map(|&l| heap.allocate(l).expect("small")).collect();
    for (&block, &l) in blocks.iter().zip(&layouts) {
        // SAFETY: each allocated above with its layout, freed once.
        unsafe { heap.deallocate(block, l) };
    }
    assert_eq!(heap.used(), 0);
    let free = heap.free_in_big_heap();
    let large = layout(512 * 1024, 4096);
    let block = heap.allocate(large).expect("large block after many small ones");
    fill(block, large.size(), 0x77);
    // The small blocks come back from their classes' free lists, not from new slabs.
    blocks = layouts.iter().map(|&l| heap.allocate(l).expect("small again")).collect();
    assert_eq!(heap.free_in_big_heap(), free - large.size());
    check(block, large.size(), 0x77);
    // SAFETY: allocated above with `large`.
    unsafe { heap.deallocate(block, large) };
    for (&block, &l) in blocks.iter().zip(&layouts) {
        // SAFETY: each allocated above with its layout, freed once.
        unsafe { heap.deallocate(block, l) };
    }
    assert_eq!(heap.used(), 0);
}

/// A live block in the random test.
struct Live {
    block: NonNull<u8>,
    layout: Layout,
    pattern: u8,
}

#[test]
fn random_sequences_keep_blocks_apart() {
    // Miri is much slower: fewer steps, and a smaller region so that they still exhaust it.
    const STEPS: usize = if cfg!(miri) { 3_000 } else { 20_000 };
    const REGION: usize = if cfg!(miri) { 128 * 1024 } else { 512 * 1024 };
    const BIG_MAX: u64 = 32 * 1024;
    let arena = Arena::new(REGION);
    let mut heap = arena.heap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move |bound: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut live: Vec<Live> = Vec::new();
    // Start address -> end address of every live block (its whole class block for small ones).
    let mut ranges = BTreeMap::new();
    let (mut expected, mut failures) = (0, 0);
    for step in 0..STEPS {
        // Grow for the first half (running into exhaustion), shrink for the second.
        let alloc_percent = if step < STEPS / 2 { 65 } else { 35 };
        if live.is_empty() || rand(100) < alloc_percent {
            let size = match rand(10) {
                0 => 2049 + rand(BIG_MAX - 2049),
                1 => rand(17),
                _ => 1 + rand(2048),
            } as usize;
            let align = 1 << if rand(20) == 0 { rand(13) } else { rand(5) };
            let l = layout(size, align);
            let Some(block) = heap.allocate(l) else {
                failures += 1;
                continue;
            };
            assert_eq!(block.as_ptr().addr() % align, 0);
            let (start, end) = (block.as_ptr().addr(), block.as_ptr().addr() + charge(l).max(1));
            if let Some((_, &prev_end)) = ranges.range(..=start).next_back() {
                assert!(prev_end <= start, "block at {start:#x} overlaps the one before it");
            }
            if let Some((&next_start, _)) = ranges.range(start..).next() {
                assert!(end <= next_start, "block at {start:#x} overlaps the one after it");
            }
            ranges.insert(start, end);
            let pattern = step as u8 | 1;
            fill(block, size, pattern);
            expected += charge(l);
            live.push(Live { block, layout: l, pattern });
        } else {
            let victim = live.swap_remove(rand(live.len() as u64) as usize);
            check(victim.block, victim.layout.size(), victim.pattern);
            ranges.remove(&victim.block.as_ptr().addr());
            // SAFETY: a live block, allocated with its layout and freed once.
            unsafe { heap.deallocate(victim.block, victim.layout) };
            expected -= charge(victim.layout);
        }
        assert_eq!(heap.used(), expected);
    }
    assert!(failures > 0, "the test should run the heap out of memory at some point");
    for victim in live.drain(..) {
        check(victim.block, victim.layout.size(), victim.pattern);
        // SAFETY: a live block, allocated with its layout and freed once.
        unsafe { heap.deallocate(victim.block, victim.layout) };
    }
    assert_eq!(heap.used(), 0);
    // Whatever went to slabs, the rest of the region still serves big requests.
    let rest = layout(heap.free_in_big_heap() / 2, 8);
    let block = heap.allocate(rest).expect("a big block after the random run");
    // SAFETY: allocated just above with `rest`.
    unsafe { heap.deallocate(block, rest) };
}

#[test]
fn locked_heap_as_global_alloc() {
    let arena = Arena::new(64 * 1024);
    let heap = Locked::empty();
    let l = layout(100, 8);
    // SAFETY: a valid non-zero-sized layout.
    assert!(unsafe { heap.alloc(l) }.is_null(), "an empty heap fails");
    // SAFETY: the arena is ours, unused, and outlives `heap` (dropped after it).
    unsafe { heap.init(arena.base.as_ptr(), arena.layout.size(), 0) };
    // SAFETY: a valid non-zero-sized layout.
    let block = unsafe { heap.alloc(l) };
    assert!(!block.is_null());
    assert_eq!(heap.used(), 128);
    // SAFETY: from `alloc` with `l`, freed once.
    unsafe { heap.dealloc(block, l) };
    assert_eq!(heap.used(), 0);
    // SAFETY: a valid non-zero-sized layout.
    assert!(unsafe { heap.alloc(layout(1024 * 1024, 8)) }.is_null(), "exhaustion gives null");
}

#[test]
fn the_heap_grows_into_what_it_holds_only_when_needed() {
    let arena = Arena::new(256 * 1024);
    let mut heap = arena.growing_heap(16 * 1024);
    assert_eq!((heap.grown(), heap.held()), (16 * 1024, 240 * 1024));
    // Small blocks fit in the first slabs: no growth.
    let small = layout(64, 8);
    let blocks: Vec<_> = (0..100).map(|_| heap.allocate(small).expect("a small block")).collect();
    assert_eq!(heap.grown(), 16 * 1024, "grew for blocks that fit");
    // A big block that does not fit: the heap doubles (or grows by what the block needs).
    let big = layout(20 * 1024, 8);
    let first = heap.allocate(big).expect("a big block after growing");
    fill(first, big.size(), 0xa5);
    assert!(heap.grown() > 16 * 1024 && heap.grown() <= 64 * 1024, "grew to {}", heap.grown());
    assert_eq!(heap.grown() + heap.held(), 256 * 1024, "bytes lost while growing");
    // Growing until everything held is used; then allocation fails, and nothing is overwritten.
    let mut live = vec![(first, 0xa5u8)];
    let mut pattern = 1u8;
    while let Some(block) = heap.allocate(big) {
        fill(block, big.size(), pattern);
        live.push((block, pattern));
        pattern = pattern.wrapping_add(1);
    }
    assert_eq!(heap.held(), 0);
    assert_eq!(heap.grown(), 256 * 1024);
    assert!(live.len() >= 10, "only {} blocks of 20 KiB in 256 KiB", live.len());
    for &(block, pattern) in &live {
        check(block, big.size(), pattern);
    }
    for (block, _) in live {
        // SAFETY: allocated above with `big`, freed once.
        unsafe { heap.deallocate(block, big) };
    }
    for block in blocks {
        // SAFETY: allocated above with `small`, freed once.
        unsafe { heap.deallocate(block, small) };
    }
    assert_eq!(heap.used(), 0);
    // Freed space is reused without growing further (there is nothing left to grow into).
    assert!(heap.allocate(layout(128 * 1024, 8)).is_some());
}

#[test]
fn a_block_bigger_than_the_heap_grows_it_by_what_it_needs() {
    let arena = Arena::new(1024 * 1024);
    let mut heap = arena.growing_heap(8 * 1024);
    let huge = layout(512 * 1024, 4096);
    let block = heap.allocate(huge).expect("the heap grows by what a block needs");
    assert_eq!(block.as_ptr() as usize % 4096, 0);
    fill(block, huge.size(), 7);
    assert!(heap.grown() >= 8 * 1024 + 512 * 1024 && heap.grown() < 540 * 1024, "grew to {}", heap.grown());
    // More than is held: refused, and the heap keeps what it has.
    let before = (heap.grown(), heap.held());
    assert!(heap.allocate(layout(2 * 1024 * 1024, 8)).is_none());
    assert_eq!((heap.grown(), heap.held()), before, "grew for a block that cannot fit");
    assert_eq!(before.0 + before.1, 1024 * 1024);
    check(block, huge.size(), 7);
}
