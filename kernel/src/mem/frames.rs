//! The kernel's physical frame allocator: the pure [`FrameBitmap`] from `vessel-kcore`, with its
//! bitmap stored in the first usable RAM large enough, behind one lock.
//!
//! Invariant: frames handed out are usable RAM not used by anything else (the bitmap's own frames
//! are marked in use); the lock is never taken in interrupt context.

use spin::{Mutex, Once};
use vessel_kcore::PAGE_SIZE;
use vessel_kcore::frames::{FrameBitmap, FrameError, words_for};
use vessel_kcore::memmap::{Range, RegionKind, UsableMap};
use vessel_kcore::report::Bytes;

use super::phys_to_virt;

/// Maximum number of separate usable ranges kept; the rest is counted and logged as dropped.
const MAX_RANGES: usize = 64;
/// Memory below 1 MiB is never handed out. Firmware and the bootloader's real-mode stages ran
/// there, and emulators keep that code cached: reusing those frames for hot kernel data made every
/// write take QEMU's self-modifying-code path (context switches ran 2x slower). SMP start-up
/// trampolines will need low memory later anyway.
const LOW_MEMORY_END: u64 = 0x10_0000;

static USABLE: Once<UsableMap<MAX_RANGES>> = Once::new();
static FRAMES: Once<Mutex<FrameBitmap<'static>>> = Once::new();

/// Builds the allocator from the firmware memory map.
pub fn init<I>(regions: I)
where
    I: IntoIterator<Item = (Range, RegionKind)> + Clone,
    I::IntoIter: Clone,
{
    let low = core::iter::once((Range { start: 0, end: LOW_MEMORY_END }, RegionKind::Reserved));
    let usable = USABLE.call_once(|| UsableMap::new(regions.into_iter().chain(low)));
    let words = words_for(usable.max_addr());
    let bytes = (words as u64 * 8).next_multiple_of(PAGE_SIZE);
    let Some(home) = usable.ranges().iter().find(|r| r.len() >= bytes) else {
        panic!("no usable range can hold the {} frame bitmap", Bytes(bytes));
    };
    let storage = Range { start: home.start, end: home.start + bytes };
    // SAFETY: `storage` is usable RAM (from the map), reached through the direct map, and is
    // marked in use in the bitmap below, so no frame allocation ever hands it out again.
    let slice = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(storage.start) as *mut u64, words) };
    let bitmap = FrameBitmap::new(slice, usable.ranges(), &[storage]);
    log::info!(
        "frames: {} free of {} ({} ranges, bitmap {}{})",
        bitmap.free_frames(),
        bitmap.total_frames(),
        usable.ranges().len(),
        Bytes(bytes),
        if usable.dropped_bytes() > 0 { " - some RAM not managed: map too fragmented" } else { "" }
    );
    FRAMES.call_once(|| Mutex::new(bitmap));
}

/// Takes one frame (its physical address), or `None` when memory is exhausted: the kept
/// zeroed frames ([`alloc_zeroed`]) are taken last, since they count as free.
pub fn alloc() -> Option<u64> {
    FRAMES.get()?.lock().alloc().or_else(take_zeroed)
}

/// Takes `count` physically consecutive frames (boot-time use); returns the first address.
pub fn alloc_contiguous(count: u64) -> Option<u64> {
    FRAMES.get()?.lock().alloc_contiguous(count)
}

/// Most frames kept zeroed for [`alloc_zeroed`] (256 KiB).
const ZEROED_MAX: usize = 64;

/// Free frames known to hold only zeroes: page tables an address space emptied as it released
/// them (every entry cleared), handed out again by [`alloc_zeroed`] without zeroing (512
/// `rep stosq` steps a frame; a spawn takes six tables). They count as free.
static ZEROED: Mutex<Zeroed> = Mutex::new(Zeroed { frames: [0; ZEROED_MAX], len: 0 });

struct Zeroed {
    frames: [u64; ZEROED_MAX],
    len: usize,
}

/// Takes one zeroed frame: a kept one if there is one, else a frame zeroed now.
pub fn alloc_zeroed() -> Option<u64> {
    take_zeroed().or_else(|| {
        let frame = FRAMES.get()?.lock().alloc()?;
        zero(frame);
        Some(frame)
    })
}

/// A kept zeroed frame, if there is one.
fn take_zeroed() -> Option<u64> {
    let mut zeroed = ZEROED.lock();
    zeroed.len = zeroed.len.checked_sub(1)?;
    Some(zeroed.frames[zeroed.len])
}

/// How many zeroed frames are kept (for the tests).
#[cfg_attr(not(feature = "ktest"), allow(dead_code))]
pub fn kept_zeroed() -> usize {
    ZEROED.lock().len
}

/// Returns a frame the caller knows holds only zeroes (a page table whose entries it cleared):
/// kept for [`alloc_zeroed`] while there is room, else freed. Refuses a frame already kept.
pub fn free_zeroed(addr: u64) -> Result<(), FrameError> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(FrameError::Misaligned);
    }
    {
        let mut zeroed = ZEROED.lock();
        if zeroed.frames[..zeroed.len].contains(&addr) {
            return Err(FrameError::DoubleFree);
        }
        if zeroed.len < ZEROED_MAX && USABLE.get().is_some_and(|usable| usable.contains(addr)) {
            let len = zeroed.len;
            zeroed.frames[len] = addr;
            zeroed.len += 1;
            return Ok(());
        }
    }
    free(addr)
}

/// Zeroes a frame the caller just allocated (and so owns alone).
pub fn zero(frame: u64) {
    if !USABLE.get().is_some_and(|usable| usable.contains(frame)) {
        return;
    }
    // SAFETY: the frame is usable RAM (checked above), reached through the direct map, and the
    // caller owns it: nothing else references it.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, PAGE_SIZE as usize) };
}

/// Returns a frame; double frees and foreign addresses are refused.
pub fn free(addr: u64) -> Result<(), FrameError> {
    FRAMES.get().map_or(Err(FrameError::NotManaged), |f| f.lock().free(addr))
}

/// (free, total) frame counts; the kept zeroed frames count as free.
pub fn counts() -> (u64, u64) {
    let kept = ZEROED.lock().len as u64;
    FRAMES.get().map_or((0, 0), |f| {
        let f = f.lock();
        (f.free_frames() + kept, f.total_frames())
    })
}
