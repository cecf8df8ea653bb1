//! The global allocator: a linked-list heap that starts empty and grows by mapping pages with
//! `MemMap` when an allocation does not fit. Programs that never allocate never map a page.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use vessel_abi::{MapFlags, PAGE_SIZE};

/// Smallest growth step.
const GROW_MIN: u64 = 64 * 1024;

struct GrowingHeap(spin_free::Lock<Heap>);

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
static HEAP: GrowingHeap = GrowingHeap(spin_free::Lock::new(Heap::empty()));

fn grow(heap: &mut Heap, layout: Layout) -> bool {
    let need = (layout.size() + layout.align()) as u64 + 64;
    let bytes = need.max(GROW_MIN).next_multiple_of(PAGE_SIZE);
    let Ok(addr) = crate::sys::mem_map(bytes / PAGE_SIZE, MapFlags::WRITE) else { return false };
    if heap.size() == 0 {
        // SAFETY: the pages were just mapped writable for this heap alone.
        unsafe { heap.init(addr as *mut u8, bytes as usize) };
        true
    } else if heap.top() as u64 == addr {
        // SAFETY: the new pages continue the heap exactly.
        unsafe { heap.extend(bytes as usize) };
        true
    } else {
        // Someone else used MemMap in between; the pages are not contiguous with the heap.
        false
    }
}

// SAFETY: allocation and deallocation are delegated to `linked_list_allocator::Heap` under a
// lock; growth only adds fresh memory.
unsafe impl GlobalAlloc for GrowingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.with(|heap| {
            if let Ok(p) = heap.allocate_first_fit(layout) {
                return p.as_ptr();
            }
            if grow(heap, layout)
                && let Ok(p) = heap.allocate_first_fit(layout)
            {
                return p.as_ptr();
            }
            core::ptr::null_mut()
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc contract).
            self.0.with(|heap| unsafe { heap.deallocate(ptr, layout) });
        }
    }
}
