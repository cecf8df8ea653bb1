//! Kernel stacks for threads: 16 KiB each, with an unmapped guard page below each so an overflow
//! faults (and reaches the double-fault stack) instead of corrupting a neighbour. Up to [`POOL`]
//! freed stacks stay mapped for the next thread (creating a thread is on the spawn path); beyond
//! that they are unmapped and their address ranges reused.
//!
//! Where: in the kernel image's gigabyte above the image (`paging::claim_image_tail`), so a
//! switch walks the image's upper page tables it walks anyway, not two more; else in a kernel
//! slot of their own. Stacks are never handed out past the end of that range.

use alloc::vec::Vec;

use spin::Mutex;
use x86_64::structures::paging::PageTableFlags;

use super::{frames, paging};
use vessel_kcore::PAGE_SIZE;

/// Usable bytes of a kernel stack.
pub const STACK_SIZE: u64 = 16 * 1024;
const STRIDE: u64 = STACK_SIZE + PAGE_SIZE;
/// Freed stacks kept mapped for reuse.
pub const POOL: usize = 8;

struct Slots {
    base: u64,
    /// End (exclusive) of the range stacks are carved from.
    end: u64,
    next: u64,
    /// Unmapped ranges.
    free: Vec<u64>,
    /// Still-mapped stacks ready for reuse.
    pool: Vec<u64>,
}

static SLOTS: Mutex<Option<Slots>> = Mutex::new(None);

/// Claims the range for kernel stacks. Must run before the first address space is created.
pub fn init() {
    const SLOT_SIZE: u64 = 1 << 39;
    let range = paging::claim_image_tail().or_else(|| paging::claim_slot().map(|base| (base, base + SLOT_SIZE)));
    match range {
        Some((base, end)) => *SLOTS.lock() = Some(Slots { base, end, next: 0, free: Vec::new(), pool: Vec::new() }),
        None => log::error!("kstack: no kernel address range; no threads can be created"),
    }
}

/// A mapped kernel stack; unmapped and freed on drop.
pub struct KernelStack {
    bottom: u64,
}

impl KernelStack {
    /// Maps a new stack, or `None` when frames or address space run out.
    pub fn new() -> Option<Self> {
        let bottom = {
            let mut guard = SLOTS.lock();
            let slots = guard.as_mut()?;
            if let Some(bottom) = slots.pool.pop() {
                return Some(KernelStack { bottom });
            }
            match slots.free.pop() {
                Some(bottom) => bottom,
                None => {
                    // Skip one guard page first.
                    let bottom = slots.base + slots.next * STRIDE + PAGE_SIZE;
                    if bottom + STACK_SIZE > slots.end {
                        return None;
                    }
                    slots.next += 1;
                    bottom
                }
            }
        };
        let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
        for page in (0..STACK_SIZE).step_by(PAGE_SIZE as usize) {
            let mapped = frames::alloc().map(|frame| (frame, paging::map(bottom + page, frame, flags)));
            if !matches!(mapped, Some((_, Ok(_)))) {
                if let Some((frame, Err(_))) = mapped {
                    let _ = frames::free(frame);
                }
                // A half-mapped stack must never reach the pool (a thread given it would fault
                // on its own stack): unmap what was mapped and keep only the address range.
                release(bottom);
                return None;
            }
        }
        Some(KernelStack { bottom })
    }

    /// The initial stack pointer (one past the highest byte).
    pub fn top(&self) -> u64 {
        self.bottom + STACK_SIZE
    }
}

/// Frames held by the pool of freed stacks (`KernelStats::pooled_frames`).
pub fn pooled_frames() -> u64 {
    SLOTS.lock().as_ref().map_or(0, |slots| slots.pool.len() as u64 * (STACK_SIZE / PAGE_SIZE))
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        if let Some(slots) = SLOTS.lock().as_mut()
            && slots.pool.len() < POOL
        {
            slots.pool.push(self.bottom);
            return;
        }
        release(self.bottom);
    }
}

/// Unmaps whatever is mapped of the stack at `bottom`, frees its frames, and keeps its address
/// range for a later stack.
fn release(bottom: u64) {
    for page in (0..STACK_SIZE).step_by(PAGE_SIZE as usize) {
        if let Ok(frame) = paging::unmap(bottom + page) {
            let _ = frames::free(frame);
        }
    }
    if let Some(slots) = SLOTS.lock().as_mut() {
        slots.free.push(bottom);
    }
}
