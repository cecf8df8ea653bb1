//! The kernel heap: a linked-list allocator over a fixed region in its own kernel slot, mapped
//! at boot. Allocation failure is reported by `alloc` as null (the kernel's fallible paths use
//! `try_reserve`-style APIs); the heap never grows into anything else's mapping.

use linked_list_allocator::LockedHeap;
use vessel_kcore::report::Bytes;
use x86_64::structures::paging::PageTableFlags;

use super::{frames, paging};

/// Size of the kernel heap. The root container's quotas (`task::container::ROOT_LIMITS`) keep
/// kernel records well inside it, so user space cannot exhaust it.
pub const HEAP_SIZE: u64 = 16 * 1024 * 1024;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Maps the heap region and hands it to the allocator.
pub fn init() {
    let Some(base) = paging::claim_slot() else { panic!("no free kernel slot for the heap") };
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    for offset in (0..HEAP_SIZE).step_by(4096) {
        let Some(frame) = frames::alloc() else { panic!("out of memory while mapping the kernel heap") };
        if let Err(e) = paging::map(base + offset, frame, flags) {
            panic!("mapping the kernel heap: {e:?}");
        }
    }
    // SAFETY: the range was just mapped writable, belongs to nothing else, and `init` runs once.
    unsafe { HEAP.lock().init(base as *mut u8, HEAP_SIZE as usize) };
    log::info!("heap: {} at {base:#x}", Bytes(HEAP_SIZE));
}

/// Bytes currently allocated from the heap.
pub fn used() -> usize {
    HEAP.lock().used()
}
