//! The kernel heap: size classes in front of a linked-list allocator (`vessel_heap`) over a
//! fixed region set up at boot. Blocks up to 2 KiB come from per-class free lists in O(1): a
//! linked-list allocator alone walks its free list on every call, which with a thousand
//! processes' records freed cost up to 60,000 instructions for one `Box` (all with interrupts
//! off). Allocation failure is reported by `alloc` as null (the kernel's fallible paths use
//! `try_reserve`-style APIs); the heap never grows beyond its region.
//!
//! The region is set aside whole at boot, but the heap starts with [`HEAP_START`] of it and
//! grows into the rest only when an allocation does not fit (doubling). The part not grown into
//! holds nothing: it is reported apart (`KernelStats::heap_held_frames`), so the memory in use
//! counts what the kernel's records take, while no other use can take those frames, so the
//! kernel can always grow to the bound the root container's quotas were set against. At the
//! shell's prompt the kernel's records take about 25 KiB.
//!
//! The region is physically contiguous RAM used through the direct map, which the bootloader
//! maps with 2 MiB pages: heap accesses then share those few page tables (which the IPC path
//! walks anyway to reach IPC buffers) instead of needing three more of their own. That matters
//! under emulators that flush the TLB on every address-space switch. Only if no contiguous run
//! is free does the heap fall back to 4 KiB pages in its own kernel slot.

use vessel_kcore::report::Bytes;
use x86_64::structures::paging::PageTableFlags;

use super::{frames, paging, phys_to_virt};

/// Size of the kernel heap. The root container's quotas (`task::container::ROOT_LIMITS`) keep
/// kernel records well inside it, so user space cannot exhaust it.
pub const HEAP_SIZE: u64 = 16 * 1024 * 1024;
/// What the heap starts with; it doubles as it needs, up to [`HEAP_SIZE`].
pub const HEAP_START: u64 = 64 * 1024;

#[global_allocator]
static HEAP: vessel_heap::Locked = vessel_heap::Locked::empty();

/// Picks (or maps) the heap region and hands it to the allocator.
pub fn init() {
    let base = match frames::alloc_contiguous(HEAP_SIZE / 4096) {
        // The frames are marked used for good; the direct map covers them.
        Some(phys) => phys_to_virt(phys),
        None => map_own_slot(),
    };
    // SAFETY: the range is mapped writable (direct map or just mapped), belongs to nothing else
    // (frames taken from the allocator for good), and `init` runs once.
    unsafe { HEAP.init(base as *mut u8, HEAP_START as usize, (HEAP_SIZE - HEAP_START) as usize) };
    log::info!("heap: {} at {base:#x}, grows to {}", Bytes(HEAP_START), Bytes(HEAP_SIZE));
}

/// Maps the heap with 4 KiB pages in a kernel slot of its own; returns its base.
fn map_own_slot() -> u64 {
    let Some(base) = paging::claim_slot() else { panic!("no free kernel slot for the heap") };
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    for offset in (0..HEAP_SIZE).step_by(4096) {
        let Some(frame) = frames::alloc() else { panic!("out of memory while mapping the kernel heap") };
        if let Err(e) = paging::map(base + offset, frame, flags) {
            panic!("mapping the kernel heap: {e:?}");
        }
    }
    base
}

/// Bytes currently allocated from the heap.
pub fn used() -> usize {
    HEAP.used()
}

/// Whole frames of the heap's region it has not grown into yet (set aside for it, holding
/// nothing).
pub fn held_frames() -> u64 {
    HEAP.extent().1 as u64 / 4096
}
