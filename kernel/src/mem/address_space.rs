//! User address spaces: one level-4 table per process whose lower half is the process's own and
//! whose upper half repeats the kernel's entries (shared kernel tables).
//!
//! Invariants: every user page is mapped USER_ACCESSIBLE, never writable and executable at once;
//! frames mapped here belong to the address space and are freed with it, except pages marked
//! [`BORROWED`] (such as the boot file system lent to init), which are only unmapped. Intermediate
//! tables of the lower half belong to the address space too.

use x86_64::structures::paging::mapper::TranslateResult;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use super::paging::{MapError, kernel_pml4, slot_generation};
use vessel_kcore::PAGE_SIZE;

use super::{frames, phys_to_virt};

/// Software bit marking a page whose frame the address space does not own.
pub const BORROWED: PageTableFlags = PageTableFlags::BIT_9;

/// Access a user page is mapped with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write.
    ReadWrite,
    /// Read and execute.
    ReadExecute,
}

impl Access {
    fn flags(self) -> PageTableFlags {
        let base = PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE;
        match self {
            Access::Read => base | PageTableFlags::NO_EXECUTE,
            Access::ReadWrite => base | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE,
            Access::ReadExecute => base,
        }
    }
}

struct UserFrames;

// SAFETY: `alloc_zeroed` returns unused, zeroed frames, as page tables need.
unsafe impl FrameAllocator<Size4KiB> for UserFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        frames::alloc_zeroed().map(|a| PhysFrame::containing_address(PhysAddr::new(a)))
    }
}

/// A process's page tables. See the module invariants.
pub struct AddressSpace {
    pml4: u64,
    generation: u64,
    /// User pages mapped with frames this space owns (not page tables, not borrowed pages).
    owned: u64,
    /// Where `release_some` goes on (level-4, level-3, level-2, level-1 index): everything
    /// before it is freed already.
    released_to: [usize; 4],
}

fn table(phys: u64) -> &'static mut PageTable {
    // SAFETY: `phys` is a page-table frame owned by an address space (or the kernel's), reached
    // through the direct map; callers hold the only reference (the scheduler's lock serialises
    // every user address space operation).
    unsafe { &mut *(phys_to_virt(phys) as *mut PageTable) }
}

/// Finds the frames behind user pages mapped writable, for a kernel copy into another address
/// space (the receive windows of IPC). It walks the tables itself and keeps the last level-1
/// table it reached, so each further page under that table costs one entry read.
pub struct WritableWalk {
    pml4: u64,
    /// The 2 MiB region (`virt >> 21`) and the level-1 table that maps it, where the direct map
    /// shows it.
    leaf: Option<(u64, u64)>,
}

/// Entry bits a user page and every table above it must have to be written by the user.
const USER_WRITABLE: u64 = 0b111;
/// Physical address bits of an entry.
const ENTRY_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
/// A level-2 or level-3 entry mapping a huge page (never in a user half).
const HUGE: u64 = 1 << 7;
/// Write-through and cache-disable: how device memory is mapped (`map_device`). Such a page is
/// no window: the kernel would write the device through its cached alias of the frame.
const UNCACHED: u64 = 0b11 << 3;

impl WritableWalk {
    /// A walk of `space`'s tables (which must not change while the walk is used: the table
    /// lock is held).
    pub fn new(space: &AddressSpace) -> Self {
        WritableWalk { pml4: space.pml4, leaf: None }
    }

    /// The frame behind the user page at `virt` if the user may write it and it is ordinary
    /// memory (not a device's registers).
    pub fn frame(&mut self, virt: u64) -> Option<u64> {
        if virt >= vessel_abi::USER_END {
            return None;
        }
        let region = virt >> 21;
        let leaf = match self.leaf {
            Some((r, leaf)) if r == region => leaf,
            _ => {
                let mut at = self.pml4;
                for shift in [39, 30, 21] {
                    let entry = entry(at, (virt >> shift) & 511);
                    if entry & USER_WRITABLE != USER_WRITABLE || entry & HUGE != 0 {
                        return None;
                    }
                    at = entry & ENTRY_ADDRESS;
                }
                let leaf = phys_to_virt(at);
                self.leaf = Some((region, leaf));
                leaf
            }
        };
        let entry = entry_at(leaf, (virt >> 12) & 511);
        (entry & (USER_WRITABLE | UNCACHED) == USER_WRITABLE).then_some(entry & ENTRY_ADDRESS)
    }
}

/// Entry `index` (< 512) of the page table at `phys`.
fn entry(phys: u64, index: u64) -> u64 {
    entry_at(phys_to_virt(phys), index)
}

/// Entry `index` (< 512) of the page table whose frame the direct map shows at `table`.
#[inline(always)]
fn entry_at(table: u64, index: u64) -> u64 {
    debug_assert!(index < 512);
    // SAFETY: `table` is a page-table frame of an address space, reached through the direct map
    // and read under the table lock, which serialises every change to the tables; `index` < 512.
    unsafe { core::ptr::read((table + index * 8) as *const u64) }
}

impl AddressSpace {
    /// An empty address space (kernel half only).
    pub fn new() -> Result<Self, MapError> {
        let pml4 = frames::alloc_zeroed().ok_or(MapError::OutOfFrames)?;
        let mut space = AddressSpace { pml4, generation: 0, owned: 0, released_to: [0; 4] };
        space.sync_kernel_half();
        Ok(space)
    }

    // Out of line: `activate` (on every switch) needs it only after a kernel slot was claimed.
    #[cold]
    #[inline(never)]
    fn sync_kernel_half(&mut self) {
        let kernel = table(kernel_pml4());
        let own = table(self.pml4);
        for i in 256..512 {
            own[i] = kernel[i].clone();
        }
        self.generation = slot_generation();
    }

    fn mapper(&mut self) -> OffsetPageTable<'static> {
        // SAFETY: the direct map covers all physical memory at this offset.
        unsafe { OffsetPageTable::new(table(self.pml4), VirtAddr::new(phys_to_virt(0))) }
    }

    /// Maps the user page at `virt` to `frame`. `owned` false marks it [`BORROWED`].
    pub fn map(&mut self, virt: u64, frame: u64, access: Access, owned: bool) -> Result<(), MapError> {
        let flags = if owned { access.flags() } else { access.flags() | BORROWED };
        self.map_with(virt, frame, flags)?;
        self.owned += u64::from(owned);
        Ok(())
    }

    /// User pages backed by frames this space owns (what its container is charged for).
    pub fn owned_pages(&self) -> u64 {
        self.owned
    }

    /// Maps device registers at `virt`: user read/write, uncached, never executable, and
    /// borrowed (the frame is not RAM this space owns).
    pub fn map_device(&mut self, virt: u64, phys: u64) -> Result<(), MapError> {
        let uncached = PageTableFlags::NO_CACHE | PageTableFlags::WRITE_THROUGH;
        self.map_with(virt, phys, Access::ReadWrite.flags() | uncached | BORROWED)
    }

    fn map_with(&mut self, virt: u64, frame: u64, flags: PageTableFlags) -> Result<(), MapError> {
        let page = Page::<Size4KiB>::from_start_address(VirtAddr::new(virt)).map_err(|_| MapError::NotMapped)?;
        let frame = PhysFrame::containing_address(PhysAddr::new(frame));
        let parents = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::USER_ACCESSIBLE;
        // SAFETY: `virt` is a lower-half page of this address space; `frame` is owned by it, or
        // lent or device memory and then marked BORROWED so teardown never frees it. No Rust
        // reference depends on the mapping.
        let flush = unsafe { self.mapper().map_to_with_table_flags(page, frame, flags, parents, &mut UserFrames) }
            .map_err(MapError::from)?;
        flush.flush();
        Ok(())
    }

    /// Allocates a zeroed frame and maps it at `virt`; returns the frame.
    pub fn map_new(&mut self, virt: u64, access: Access) -> Result<u64, MapError> {
        let frame = frames::alloc_zeroed().ok_or(MapError::OutOfFrames)?;
        if let Err(e) = self.map(virt, frame, access, true) {
            let _ = frames::free(frame);
            return Err(e);
        }
        Ok(frame)
    }

    /// Like [`map_new`](Self::map_new), with `value` written at the start of the new page.
    pub fn map_new_value<T: Copy>(&mut self, virt: u64, access: Access, value: T) -> Result<u64, MapError> {
        const { assert!(size_of::<T>() <= PAGE_SIZE as usize && align_of::<T>() <= PAGE_SIZE as usize) };
        let frame = self.map_new(virt, access)?;
        // SAFETY: the frame was just allocated for this page alone and is reached through the
        // physical-memory map; no Rust reference points into it; a `T` fits in the page and the
        // page's start is aligned for it (both checked at compile time).
        unsafe { core::ptr::write(phys_to_virt(frame) as *mut T, value) };
        Ok(frame)
    }

    /// Unmaps a user page and frees its frame unless it was borrowed.
    pub fn unmap(&mut self, virt: u64) -> Result<(), MapError> {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
        let flags = self.translate(virt).map(|(_, f)| f).ok_or(MapError::NotMapped)?;
        let (frame, flush) = self.mapper().unmap(page).map_err(|_| MapError::NotMapped)?;
        flush.flush();
        if !flags.contains(BORROWED) {
            self.owned = self.owned.saturating_sub(1);
            let _ = frames::free(frame.start_address().as_u64());
        }
        Ok(())
    }

    /// The frame and flags `virt` maps to.
    pub fn translate(&mut self, virt: u64) -> Option<(u64, PageTableFlags)> {
        match self.mapper().translate(VirtAddr::new(virt)) {
            TranslateResult::Mapped { frame, offset, flags } => Some((frame.start_address().as_u64() + offset, flags)),
            _ => None,
        }
    }

    /// Physical address of its level-4 table (what CR3 holds while it is active).
    pub fn root(&self) -> u64 {
        self.pml4
    }

    /// Makes this the active address space.
    #[inline(always)]
    pub fn activate(&mut self) {
        if self.generation != slot_generation() {
            self.sync_kernel_half();
        }
        load_cr3(self.pml4);
    }

    /// Frees the lower half's frames and tables in bounded steps: at most `budget` units of work
    /// per call, where freeing a frame (a page or a table) costs 1 and looking through a table's
    /// 512 entries [`SCAN_COST`]; returns whether the lower half is empty now. Entries are
    /// cleared as their frames go and the walk resumes where it stopped. The space must not be
    /// active: if it is, the kernel's own table is loaded first.
    pub fn release_some(&mut self, budget: usize) -> bool {
        if current_cr3() == self.pml4 {
            load_cr3(kernel_pml4());
        }
        let mut left = budget;
        // The first piece of work of a call is done whatever it costs, so every call gets on.
        let mut fresh = true;
        let pml4 = table(self.pml4);
        let [from4, from3, from2, from1] = self.released_to;
        // The walk first goes back down the path to where the last call stopped.
        let mut resuming = true;
        for l4 in Used::new(self.pml4, from4, 256) {
            // Only entries in use come up: the path back is the one the last call left, unless
            // its entry is gone.
            resuming &= l4 == from4;
            let Some(pdpt) = present_table(pml4, l4) else {
                resuming = false;
                continue;
            };
            let start3 = if resuming { from3 } else { 0 };
            // A table on the way back to where the last call stopped was paid for then.
            if !resuming && !take(&mut left, SCAN_COST, &mut fresh) {
                self.released_to = [l4, 0, 0, 0];
                return false;
            }
            for l3 in Used::new(pdpt, start3, 512) {
                resuming &= l3 == from3;
                let Some(pd) = present_table(table(pdpt), l3) else {
                    resuming = false;
                    continue;
                };
                let start2 = if resuming { from2 } else { 0 };
                if !resuming && !take(&mut left, SCAN_COST, &mut fresh) {
                    self.released_to = [l4, l3, 0, 0];
                    return false;
                }
                for l2 in Used::new(pd, start2, 512) {
                    resuming &= l2 == from2;
                    let Some(pt) = present_table(table(pd), l2) else {
                        resuming = false;
                        continue;
                    };
                    let start1 = if resuming { from1 } else { 0 };
                    if !resuming && !take(&mut left, SCAN_COST, &mut fresh) {
                        self.released_to = [l4, l3, l2, 0];
                        return false;
                    }
                    resuming = false;
                    let entries = table(pt);
                    for l1 in Used::new(pt, start1, 512) {
                        let entry = &mut entries[l1];
                        let flags = entry.flags();
                        if !flags.contains(PageTableFlags::PRESENT) {
                            continue;
                        }
                        if !flags.contains(BORROWED) {
                            if !take(&mut left, 1, &mut fresh) {
                                self.released_to = [l4, l3, l2, l1];
                                return false;
                            }
                            let _ = frames::free(entry.addr().as_u64());
                            self.owned = self.owned.saturating_sub(1);
                        }
                        entry.set_unused();
                    }
                    // Every entry of a released table is clear now (only present ones were
                    // ever set): it goes back as a zeroed frame, as do the tables above it.
                    let _ = frames::free_zeroed(pt);
                    table(pd)[l2].set_unused();
                }
                let _ = frames::free_zeroed(pd);
                table(pdpt)[l3].set_unused();
            }
            let _ = frames::free_zeroed(pdpt);
            pml4[l4].set_unused();
            resuming = false;
        }
        true
    }
}

/// Work units of looking through one table's 512 entries in [`AddressSpace::release_some`]
/// (freeing a frame is 1): a scan costs about what freeing a handful of frames does.
pub const SCAN_COST: usize = 8;

/// Takes `cost` from `left` if there is that much left, or if nothing was taken yet (`fresh`):
/// a call of `release_some` always does at least one piece of work.
fn take(left: &mut usize, cost: usize, fresh: &mut bool) -> bool {
    match left.checked_sub(cost) {
        Some(rest) => *left = rest,
        None if *fresh => *left = 0,
        None => return false,
    }
    *fresh = false;
    true
}

/// The physical address of the next-level table under entry `i`, if present (huge pages are not
/// used in user space).
/// The indices below `end`, from `from` on, of a table's entries that are not all zero: the
/// only ones that can map anything, since a table starts zeroed and `release_some` clears what
/// it frees. Eight entries are looked at together while they are all zero: most of freeing a
/// small process's address space was stepping through empty entries of its seven tables
/// (about 3,300 entries, five instructions each).
struct Used {
    /// The table, where the direct map shows it (its entries are read one by one through
    /// [`entry_at`], never borrowed: the loop bodies clear entries of the tables being walked).
    table: u64,
    next: usize,
    end: usize,
}

impl Used {
    fn new(table: u64, from: usize, end: usize) -> Used {
        // Translated once: each entry read is then one load.
        Used { table: phys_to_virt(table), next: from, end: end.min(512) }
    }

    #[inline(always)]
    fn at(&self, i: usize) -> u64 {
        entry_at(self.table, i as u64)
    }
}

impl Iterator for Used {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let mut i = self.next;
        while i < self.end {
            if i.is_multiple_of(8)
                && i + 8 <= self.end
                && (self.at(i)
                    | self.at(i + 1)
                    | self.at(i + 2)
                    | self.at(i + 3)
                    | self.at(i + 4)
                    | self.at(i + 5)
                    | self.at(i + 6)
                    | self.at(i + 7))
                    == 0
            {
                i += 8;
                continue;
            }
            if self.at(i) != 0 {
                self.next = i + 1;
                return Some(i);
            }
            i += 1;
        }
        self.next = self.end;
        None
    }
}

fn present_table(table: &PageTable, i: usize) -> Option<u64> {
    let entry = &table[i];
    let flags = entry.flags();
    (flags.contains(PageTableFlags::PRESENT) && !flags.contains(PageTableFlags::HUGE_PAGE))
        .then(|| entry.addr().as_u64())
}

impl Drop for AddressSpace {
    /// Frees what `release_some` has not freed yet, then the level-4 table.
    fn drop(&mut self) {
        self.release_some(usize::MAX);
        let _ = frames::free(self.pml4);
    }
}

#[inline(always)]
fn current_cr3() -> u64 {
    x86_64::registers::control::Cr3::read().0.start_address().as_u64()
}

/// `pml4` if the CPU is not using it already, else 0: the table a switch (`task::switch`) loads
/// (a reload flushes the TLB, so it is skipped when nothing changes).
#[inline(always)]
pub fn root_to_load(pml4: u64) -> u64 {
    if current_cr3() != pml4 { pml4 } else { 0 }
}

/// Loads CR3 if it differs (a reload flushes the TLB, so skip it when nothing changes).
#[inline(always)]
pub fn load_cr3(pml4: u64) {
    if root_to_load(pml4) != 0 {
        let frame = PhysFrame::containing_address(PhysAddr::new(pml4));
        // SAFETY: `pml4` is a valid level-4 table whose upper half maps the kernel exactly as the
        // current one does, so the running code and stack stay mapped.
        unsafe { x86_64::registers::control::Cr3::write(frame, x86_64::registers::control::Cr3Flags::empty()) };
    }
}
