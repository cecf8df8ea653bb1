//! The kernel's page tables (the ones the bootloader built, extended in place) and the kernel
//! virtual-space slots.
//!
//! Invariants: all edits go through [`KERNEL_PAGE_TABLE`]'s lock; the TLB entry of every changed
//! page is flushed before the lock is released; kernel slots are whole level-4 entries of the
//! upper half that were empty at boot, handed out once each. One more range is handed out once:
//! the rest of the kernel image's gigabyte above the image ([`claim_image_tail`]), if the
//! bootloader left it empty (the direct map follows it from the next gigabyte, in the same
//! level-4 entry; every other bootloader mapping has level-4 entries of its own).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Mutex;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::mapper::{MapToError, TranslateResult, UnmapError};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use super::{frames, phys_to_virt};

/// Serialises every change to the kernel page tables.
static KERNEL_PAGE_TABLE: Mutex<()> = Mutex::new(());
/// Which upper-half level-4 entries (256..512) the kernel has claimed, as a bitmap.
static CLAIMED_SLOTS: Mutex<[u64; 4]> = Mutex::new([0; 4]);
/// Next free address in the MMIO slot (0 until `init`).
static MMIO_NEXT: AtomicU64 = AtomicU64::new(0);
/// Physical address of the kernel's level-4 table (the boot one); user address spaces copy its
/// upper half.
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);
/// Bumped whenever a kernel slot is claimed, so address spaces know to refresh their upper half.
static SLOT_GENERATION: AtomicU64 = AtomicU64::new(0);

/// The current kernel-slot generation.
pub fn slot_generation() -> u64 {
    SLOT_GENERATION.load(Ordering::Relaxed)
}

/// Errors from mapping calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// No frame left for a page table.
    OutOfFrames,
    /// The page is already mapped.
    AlreadyMapped,
    /// The page is not mapped.
    NotMapped,
    /// A huge page is in the way.
    HugePage,
}

impl<S: x86_64::structures::paging::PageSize> From<MapToError<S>> for MapError {
    fn from(e: MapToError<S>) -> MapError {
        match e {
            MapToError::FrameAllocationFailed => MapError::OutOfFrames,
            MapToError::PageAlreadyMapped(_) => MapError::AlreadyMapped,
            MapToError::ParentEntryHugePage => MapError::HugePage,
        }
    }
}

struct KernelFrames;

// SAFETY: `frames::alloc_zeroed` returns frames that are unused and zeroed, as page tables need.
unsafe impl FrameAllocator<Size4KiB> for KernelFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        frames::alloc_zeroed().map(|a| PhysFrame::containing_address(PhysAddr::new(a)))
    }
}

/// The kernel's level-4 table (physical address).
pub fn kernel_pml4() -> u64 {
    KERNEL_PML4.load(Ordering::Relaxed)
}

/// Runs `f` on the kernel's level-4 table with the page-table lock held. Kernel mappings live
/// below upper-half level-4 entries that every address space shares, so edits show everywhere.
fn with_table<R>(f: impl FnOnce(&mut OffsetPageTable<'static>) -> R) -> R {
    let _guard = KERNEL_PAGE_TABLE.lock();
    let offset = VirtAddr::new(phys_to_virt(0));
    // SAFETY: KERNEL_PML4 is the boot level-4 table, reachable through the direct map; the lock
    // makes this the only live reference to it.
    let table = unsafe { &mut *(phys_to_virt(kernel_pml4()) as *mut PageTable) };
    // SAFETY: the direct map covers all physical memory at `offset`.
    let mut mapper = unsafe { OffsetPageTable::new(table, offset) };
    f(&mut mapper)
}

/// Claims one empty upper-half level-4 slot and returns its base address. The slot's
/// level-3 table is created at once, so the level-4 entry never changes again and address spaces
/// created later share it.
pub fn claim_slot() -> Option<u64> {
    with_table(|mapper| {
        let mut claimed = CLAIMED_SLOTS.lock();
        let level4 = mapper.level_4_table_mut();
        let index = (256..512).find(|&i| level4[i].is_unused() && claimed[(i - 256) / 64] & (1 << (i % 64)) == 0)?;
        let table = frames::alloc_zeroed()?;
        level4[index].set_addr(PhysAddr::new(table), PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
        claimed[(index - 256) / 64] |= 1 << (index % 64);
        SLOT_GENERATION.fetch_add(1, Ordering::Relaxed);
        // Sign-extend: upper-half addresses have bits 48..64 set.
        Some(0xffff_0000_0000_0000 | (index as u64) << 39)
    })
}

/// Whether [`claim_image_tail`] handed its range out already.
static IMAGE_TAIL_CLAIMED: AtomicBool = AtomicBool::new(false);

/// Claims the part of the kernel image's 1 GiB above the image and returns it as (start, end):
/// from the first page past the image if the rest of the image's last level-1 table is empty,
/// else from the next 2 MiB boundary. `None` if taken already or if any of it is mapped.
///
/// Mappings there share the image's level-3 and level-2 tables (the first ones even its level-1
/// table). Kernel stacks live there: under emulators without PCID every CR3 write flushes the
/// TLB, and each page table the IPC round trip walks is one more refill (a slot of their own cost
/// three more tables per switch).
pub fn claim_image_tail() -> Option<(u64, u64)> {
    const GIB: u64 = 1 << 30;
    const LARGE_PAGE: u64 = 2 << 20;
    unsafe extern "C" {
        /// End of the kernel image (defined by the linker).
        static _end: u8;
    }
    let image_end = (&raw const _end) as u64;
    let first_page = image_end.next_multiple_of(4096);
    let end = (image_end & !(GIB - 1)) + GIB;
    if first_page >= end {
        return None;
    }
    let present = |entry: &x86_64::structures::paging::page_table::PageTableEntry| {
        let flags = entry.flags();
        (flags.contains(PageTableFlags::PRESENT) && !flags.contains(PageTableFlags::HUGE_PAGE))
            .then(|| entry.addr().as_u64())
    };
    with_table(|mapper| {
        let addr = VirtAddr::new(first_page);
        let pdpt = present(&mapper.level_4_table()[addr.p4_index()])?;
        // SAFETY: a present, non-huge entry of the kernel's tables points at a page table, reached
        // through the direct map; the page-table lock is held.
        let pdpt = unsafe { &*(phys_to_virt(pdpt) as *const PageTable) };
        let pd = present(&pdpt[addr.p3_index()])?;
        // SAFETY: as above.
        let pd = unsafe { &*(phys_to_virt(pd) as *const PageTable) };
        let index = usize::from(u16::from(addr.p2_index()));
        // The level-1 table the image ends in, if any: are its entries past the image empty?
        let shared_table_free = match present(&pd[index]) {
            // SAFETY: as above.
            Some(pt) => unsafe { &*(phys_to_virt(pt) as *const PageTable) }
                .iter()
                .skip(usize::from(u16::from(addr.p1_index())))
                .all(|e| e.is_unused()),
            None => pd[index].is_unused(),
        };
        let start = if shared_table_free { first_page } else { (first_page & !(LARGE_PAGE - 1)) + LARGE_PAGE };
        if start >= end
            || pd.iter().skip(index + 1).any(|e| !e.is_unused())
            || IMAGE_TAIL_CLAIMED.swap(true, Ordering::Relaxed)
        {
            return None;
        }
        // One page short: the direct map begins at `end`, and the last stack keeps an unmapped
        // page above it as every other stack has the next one's guard page.
        Some((start, end - 4096))
    })
}

/// Maps one 4 KiB page.
pub fn map(virt: u64, phys: u64, flags: PageTableFlags) -> Result<(), MapError> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let frame = PhysFrame::containing_address(PhysAddr::new(phys));
    with_table(|mapper| {
        // Intermediate tables get the widest rights; the leaf entry decides.
        let parents = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
        // SAFETY: the caller owns `virt` (a claimed kernel slot) and `phys`; mapping them creates
        // no alias that Rust code relies on.
        let flush = unsafe { mapper.map_to_with_table_flags(page, frame, flags, parents, &mut KernelFrames) }?;
        flush.flush();
        Ok(())
    })
}

/// Unmaps one page and returns the frame it pointed at (not freed: the caller owns it).
pub fn unmap(virt: u64) -> Result<u64, MapError> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    with_table(|mapper| match mapper.unmap(page) {
        Ok((frame, flush)) => {
            flush.flush();
            Ok(frame.start_address().as_u64())
        }
        Err(UnmapError::ParentEntryHugePage) => Err(MapError::HugePage),
        Err(_) => Err(MapError::NotMapped),
    })
}

/// Changes the flags of a mapped page.
pub fn protect(virt: u64, flags: PageTableFlags) -> Result<(), MapError> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    with_table(|mapper| {
        // SAFETY: only the flags of a page the caller owns change.
        match unsafe { mapper.update_flags(page, flags) } {
            Ok(flush) => {
                flush.flush();
                Ok(())
            }
            Err(_) => Err(MapError::NotMapped),
        }
    })
}

/// The physical address and flags `virt` maps to, if any.
pub fn translate(virt: u64) -> Option<(u64, PageTableFlags)> {
    with_table(|mapper| match mapper.translate(VirtAddr::new(virt)) {
        TranslateResult::Mapped { frame, offset, flags } => Some((frame.start_address().as_u64() + offset, flags)),
        _ => None,
    })
}

/// Records the kernel's level-4 table and claims the MMIO slot.
pub fn init() {
    KERNEL_PML4.store(Cr3::read().0.start_address().as_u64(), Ordering::Relaxed);
    match claim_slot() {
        Some(base) => MMIO_NEXT.store(base, Ordering::Relaxed),
        None => log::error!("paging: no free kernel slot for MMIO"),
    }
}

/// Maps a device register range uncached and returns its virtual address.
pub fn map_mmio(phys: u64, size: u64) -> Option<u64> {
    let first = phys & !0xfff;
    let pages = (phys + size - first).div_ceil(4096);
    let base = MMIO_NEXT.fetch_add(pages * 4096, Ordering::Relaxed);
    if base == 0 {
        return None;
    }
    let flags = PageTableFlags::PRESENT
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_CACHE
        | PageTableFlags::WRITE_THROUGH
        | PageTableFlags::NO_EXECUTE;
    for i in 0..pages {
        map(base + i * 4096, first + i * 4096, flags).ok()?;
    }
    Some(base + (phys - first))
}
