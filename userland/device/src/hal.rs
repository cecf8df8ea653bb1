//! What `virtio-drivers` needs from the OS (its `Hal`): DMA memory with physical addresses,
//! MMIO mappings of BARs, and sharing buffers with a device. This module and `blk`'s request
//! slots are the only places in the server with `unsafe` code.
//!
//! Invariants: a device only ever sees physical addresses inside DMA regions made here. A
//! buffer already in one is shared in place; any other is copied into a bounce region (kept in
//! a pool for reuse) and, for buffers the device writes, copied back by `unshare`. A DMA region
//! is freed only by `dma_dealloc` with the address `dma_alloc` returned.

use alloc::vec::Vec;
use core::cell::RefCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use vessel_rt::platform::{Dma, Platform};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

const PAGE: u64 = 4096;

/// The server's platform capability, set once at start (the `Hal` functions are static).
static PLATFORM: AtomicU32 = AtomicU32::new(0);

/// State the static `Hal` functions share. The server is single-threaded: a `RefCell` in a
/// `static` is enough, with `Sync` asserted for that reason alone.
struct Shared {
    /// Queue memory, the server's own regions, and the shared buffers of sessions.
    dma: RefCell<Vec<Dma>>,
    /// Device register mappings: (first byte, end, virtual address of the first byte).
    mmio: RefCell<Vec<(u64, u64, u64)>>,
    /// Bounce regions lent to a shared buffer.
    lent: RefCell<Vec<Dma>>,
    /// Bounce regions free for reuse.
    pool: RefCell<Vec<Dma>>,
}

// SAFETY: the device server runs one thread; nothing here is touched from another.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    dma: RefCell::new(Vec::new()),
    mmio: RefCell::new(Vec::new()),
    lent: RefCell::new(Vec::new()),
    pool: RefCell::new(Vec::new()),
};

/// Lends a bounce region of at least `len` bytes from the pool (or a new one).
fn lend(len: u64) -> Dma {
    let pages = len.div_ceil(PAGE).max(1);
    let mut pool = SHARED.pool.borrow_mut();
    let dma = match pool.iter().position(|d| d.pages >= pages) {
        Some(i) => pool.swap_remove(i),
        None => match platform().dma(pages) {
            Ok(dma) => dma,
            Err(e) => panic!("device: no DMA memory to bounce {len} bytes: {e}"),
        },
    };
    SHARED.lent.borrow_mut().push(dma);
    dma
}

/// Records the platform capability the `Hal` functions use.
pub fn init(platform: Platform) {
    PLATFORM.store(platform.0.0, Ordering::Relaxed);
}

fn platform() -> Platform {
    Platform(vessel_rt::ipc::Cap(PLATFORM.load(Ordering::Relaxed)))
}

/// Maps `size` bytes of device registers at physical `address` (any alignment); returns the
/// virtual address of `address`. Mappings are kept and reused for the same page range.
pub fn map_mmio(address: u64, size: u64) -> Result<u64, vessel_rt::abi::Error> {
    let start = address & !(PAGE - 1);
    let end = (address + size.max(1)).next_multiple_of(PAGE);
    if let Some(&(s, _, virt)) = SHARED.mmio.borrow().iter().find(|&&(s, e, _)| s <= start && end <= e) {
        return Ok(virt + (address - s));
    }
    let mmio = platform().mmio(start, end - start)?;
    let virt = mmio.map()?;
    SHARED.mmio.borrow_mut().push((start, end, virt));
    Ok(virt + (address - start))
}

/// Makes `dma` (a client's shared buffer, mapped here) a region `share` passes to a device in
/// place.
pub fn register(dma: Dma) {
    SHARED.dma.borrow_mut().push(dma);
}

/// Takes a region `register` added out again (before it is freed).
pub fn unregister(dma: Dma) {
    SHARED.dma.borrow_mut().retain(|d| d.physical != dma.physical);
}

/// The physical address of `virt` if it lies in one of our DMA regions.
fn physical(virt: u64) -> Option<u64> {
    SHARED
        .dma
        .borrow()
        .iter()
        .find(|d| d.address <= virt && virt < d.address + d.pages * PAGE)
        .map(|d| d.physical + (virt - d.address))
}

/// The `Hal` of the virtio drivers.
pub struct VesselHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned, physically contiguous memory that nothing
// else aliases (a fresh DMA memory object mapped only here); `mmio_phys_to_virt` returns a
// mapping of exactly the registers asked for; `share` returns the true physical address of
// memory in our DMA regions (and refuses anything else).
unsafe impl Hal for VesselHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match platform().dma(pages as u64) {
            Ok(dma) => {
                SHARED.dma.borrow_mut().push(dma);
                // The mapping is never at address 0 (user space starts above it).
                (dma.physical, NonNull::new(dma.address as usize as *mut u8).unwrap_or(NonNull::dangling()))
            }
            // The crate has no way to report failure here; a driver without queue memory
            // cannot work, and the supervisor restarts the server.
            Err(e) => panic!("device: no DMA memory for a virtqueue ({pages} pages): {e}"),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        let mut regions = SHARED.dma.borrow_mut();
        match regions.iter().position(|d| d.physical == paddr) {
            Some(i) => {
                regions.swap_remove(i).free();
                0
            }
            None => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        match map_mmio(paddr, size as u64) {
            Ok(virt) => NonNull::new(virt as usize as *mut u8).unwrap_or(NonNull::dangling()),
            Err(e) => panic!("device: cannot map registers at {paddr:#x} ({size} bytes): {e}"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let virt = buffer.as_ptr() as *mut u8 as u64;
        let len = buffer.len() as u64;
        if let Some(phys) = physical(virt).filter(|_| physical(virt + len - 1).is_some()) {
            return phys;
        }
        let bounce = lend(len);
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller promises `buffer` is valid for reads of its length and not
            // touched meanwhile; the bounce region is ours, mapped writable, at least `len` long.
            unsafe {
                core::ptr::copy_nonoverlapping(virt as *const u8, bounce.address as usize as *mut u8, len as usize)
            };
        }
        bounce.physical
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let mut lent = SHARED.lent.borrow_mut();
        let Some(i) = lent.iter().position(|d| d.physical == paddr) else { return };
        let bounce = lent.swap_remove(i);
        if direction != BufferDirection::DriverToDevice {
            let len = buffer.len();
            // SAFETY: the caller promises `buffer` is valid for writes of its length and not
            // touched meanwhile; the device finished writing the bounce region, at least `len`
            // bytes long.
            unsafe {
                core::ptr::copy_nonoverlapping(bounce.address as usize as *const u8, buffer.as_ptr() as *mut u8, len)
            };
        }
        SHARED.pool.borrow_mut().push(bounce);
    }
}
