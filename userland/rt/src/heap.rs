//! The global allocator: size classes (`vessel_heap::SizeClasses`, O(1) for blocks up to 2 KiB,
//! as in the kernel) in front of linked-list heaps over regions mapped with `MemMap`, starting
//! empty and growing when an allocation does not fit. A first-fit list walks every free block on
//! each allocation and free; a server holding thousands of small blocks (the `vfs` server's
//! directory listings) paid microseconds per allocation for it. New pages that continue the last region extend it;
//! pages elsewhere (something else, such as a thread stack, used `MemMap` in between) start a new
//! region, each new region at least as big as all before it, so a few regions cover any heap.
//! Programs that never allocate never map a page.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use vessel_abi::{MapFlags, PAGE_SIZE};
use vessel_heap::SizeClasses;

/// Smallest growth step.
const GROW_MIN: u64 = 64 * 1024;

/// Regions a heap may have (each at least doubling the total: far beyond any address space).
const MAX_REGIONS: usize = 24;

/// The regions in use, first to last: big blocks and the classes' slabs.
struct Big {
    heaps: [Heap; MAX_REGIONS],
    used: usize,
}

/// The heap: the classes in front, the regions behind.
struct Regions {
    big: Big,
    classes: SizeClasses,
}

struct GrowingHeap(spin_free::Lock<Regions>);

pub(crate) use spin_free::Lock;

mod spin_free {
    //! A minimal lock that keeps `GlobalAlloc`'s `&self` sound. A thread that finds it taken
    //! yields: on one CPU the holder can only finish if it runs.
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicBool, Ordering};

    pub struct Lock<T> {
        taken: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: access to `value` is serialised by `taken`.
    unsafe impl<T: Send> Sync for Lock<T> {}

    impl<T> Lock<T> {
        pub const fn new(value: T) -> Self {
            Lock { taken: AtomicBool::new(false), value: UnsafeCell::new(value) }
        }

        pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            while self.taken.swap(true, Ordering::Acquire) {
                crate::sys::yield_now();
            }
            // SAFETY: `taken` is held, so this is the only reference.
            let result = f(unsafe { &mut *self.value.get() });
            self.taken.store(false, Ordering::Release);
            result
        }
    }
}

#[global_allocator]
static HEAP: GrowingHeap = GrowingHeap(spin_free::Lock::new(Regions {
    big: Big { heaps: [const { Heap::empty() }; MAX_REGIONS], used: 0 },
    classes: SizeClasses::new(),
}));

impl Big {
    /// A block for `layout` from the last region that has room, growing the heap if none has.
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        for heap in self.heaps[..self.used].iter_mut().rev() {
            if let Ok(p) = heap.allocate_first_fit(layout) {
                return Some(p);
            }
        }
        let region = self.grow(layout)?;
        self.heaps[region].allocate_first_fit(layout).ok()
    }

    /// Maps pages for `layout` and adds them: to the last region if they continue it, else as
    /// a new region. Returns the region that grew.
    fn grow(&mut self, layout: Layout) -> Option<usize> {
        let total: usize = self.heaps[..self.used].iter().map(Heap::size).sum();
        let need = (layout.size() + layout.align()) as u64 + 64;
        let bytes = need.max(GROW_MIN).next_multiple_of(PAGE_SIZE);
        let addr = crate::sys::mem_map(bytes / PAGE_SIZE, MapFlags::WRITE).ok()?;
        if let Some(last) = self.used.checked_sub(1)
            && self.heaps[last].top() as u64 == addr
        {
            // SAFETY: the new pages continue the last region exactly.
            unsafe { self.heaps[last].extend(bytes as usize) };
            return Some(last);
        }
        if bytes as usize >= total {
            return self.add_region(addr, bytes);
        }
        // A new region as big as the whole heap so far, so that regions stay few.
        // SAFETY: nothing refers to the pages just mapped.
        let _ = unsafe { crate::sys::mem_unmap(addr, bytes / PAGE_SIZE) };
        let bigger = (total as u64).next_multiple_of(PAGE_SIZE);
        let addr = crate::sys::mem_map(bigger / PAGE_SIZE, MapFlags::WRITE).ok()?;
        self.add_region(addr, bigger)
    }

    fn add_region(&mut self, addr: u64, bytes: u64) -> Option<usize> {
        if self.used == MAX_REGIONS {
            // SAFETY: nothing refers to the pages just mapped.
            let _ = unsafe { crate::sys::mem_unmap(addr, bytes / PAGE_SIZE) };
            return None;
        }
        let region = self.used;
        // SAFETY: the pages were just mapped writable for this region alone.
        unsafe { self.heaps[region].init(addr as *mut u8, bytes as usize) };
        self.used += 1;
        Some(region)
    }

    /// The region that holds `ptr`.
    fn holding(&mut self, ptr: *mut u8) -> Option<&mut Heap> {
        self.heaps[..self.used].iter_mut().find(|h| h.bottom() <= ptr && ptr < h.top())
    }
}

// SAFETY: allocation and deallocation are delegated to `linked_list_allocator::Heap` under a
// lock; growth only adds fresh memory.
unsafe impl GlobalAlloc for GrowingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.with(|regions| {
            let block = if SizeClasses::serves(layout) {
                let big = &mut regions.big;
                // SAFETY: slabs come from the regions, which are never unmapped, and are never
                // freed, so each is the classes' alone for good.
                unsafe { regions.classes.allocate(layout, |slab| big.allocate(slab)) }
            } else {
                regions.big.allocate(layout)
            };
            block.map_or(core::ptr::null_mut(), NonNull::as_ptr)
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            self.0.with(|regions| {
                if SizeClasses::serves(layout) {
                    // SAFETY: class layouts came from the classes (GlobalAlloc contract: same
                    // layout), and the block is no longer used.
                    unsafe { regions.classes.deallocate(ptr, layout) };
                    return;
                }
                if let Some(heap) = regions.big.holding(ptr.as_ptr()) {
                    // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc contract), out
                    // of the region that holds it.
                    unsafe { heap.deallocate(ptr, layout) };
                }
            });
        }
    }
}
