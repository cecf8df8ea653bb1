//! Memory: the physical frame allocator, kernel page tables, the kernel heap and MMIO mappings.
//!
//! All physical memory is reachable at a fixed offset chosen by the bootloader (the "direct
//! map"). Page tables and frames are reached through it. Kernel virtual space for the heap, MMIO
//! windows and tests is taken in whole top-level (512 GiB) slots of the upper half that the
//! bootloader left empty, so nothing the kernel maps can collide with what the bootloader mapped.

pub mod acpi;
pub mod address_space;
pub mod frames;
pub mod heap;
pub mod kstack;
pub mod paging;

use core::sync::atomic::{AtomicU64, Ordering};

use bootloader_api::BootInfo;
use bootloader_api::info::{FrameBuffer, MemoryRegionKind};
use vessel_kcore::memmap::{Range, RegionKind, Summary, UsableMap};
use vessel_kcore::report::Bytes;

pub use paging::map_mmio;

static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Virtual address of physical address `phys` in the direct map.
pub fn phys_to_virt(phys: u64) -> u64 {
    PHYS_OFFSET.load(Ordering::Relaxed) + phys
}

/// What the rest of the boot needs from the boot information.
pub struct BootResources {
    /// The framebuffer, if the firmware set one up.
    pub framebuffer: Option<FrameBuffer>,
    /// The ramdisk the image builder packed (empty if none).
    pub ramdisk: &'static [u8],
    /// Physical address of the ACPI RSDP, if the firmware gave one.
    pub rsdp: Option<acpi::Rsdp>,
}

/// Most separate RAM ranges `is_system_ram` knows; a map more fragmented than this counts the
/// rest as RAM too (see `is_system_ram`).
const MAX_RAM_RANGES: usize = 128;

static SYSTEM_RAM: spin::Once<UsableMap<MAX_RAM_RANGES>> = spin::Once::new();

/// Whether any byte of `start..end` is RAM the system uses, or below 1 MiB, or anything at all
/// when the map was too fragmented to keep whole (the safe answer: refuse).
pub fn is_system_ram(start: u64, end: u64) -> bool {
    let Some(map) = SYSTEM_RAM.get() else { return true };
    start < 0x10_0000 || map.dropped_bytes() > 0 || map.ranges().iter().any(|r| r.start < end && start < r.end)
}

fn kind_of(kind: MemoryRegionKind) -> RegionKind {
    match kind {
        MemoryRegionKind::Usable => RegionKind::Usable,
        MemoryRegionKind::Bootloader => RegionKind::Bootloader,
        _ => RegionKind::Reserved,
    }
}

/// Sets up frames, paging and the heap from the boot information.
pub fn init(boot_info: &'static mut BootInfo) -> BootResources {
    let Some(offset) = boot_info.physical_memory_offset.into_option() else {
        panic!("bootloader did not map physical memory (kernel config requires it)");
    };
    PHYS_OFFSET.store(offset, Ordering::Relaxed);

    let regions = || boot_info.memory_regions.iter().map(|r| (Range { start: r.start, end: r.end }, kind_of(r.kind)));
    let summary = Summary::of(regions());
    log::info!(
        "memory map: {} regions, usable {}, bootloader {}, reserved {}, top {:#x}",
        summary.regions,
        Bytes(summary.usable),
        Bytes(summary.bootloader),
        Bytes(summary.reserved),
        summary.max_addr
    );
    frames::init(regions());
    // The RAM the system uses: usable and bootloader regions (the kernel, its page tables, the
    // boot information and the ramdisk), never handed out as device registers.
    let system = regions().map(|(range, kind)| match kind {
        RegionKind::Reserved => (range, RegionKind::Reserved),
        _ => (range, RegionKind::Usable),
    });
    SYSTEM_RAM.call_once(|| UsableMap::new(system));
    paging::init();
    heap::init();
    kstack::init();

    let ramdisk = match boot_info.ramdisk_addr.into_option() {
        // SAFETY: the bootloader mapped the ramdisk at this address for `ramdisk_len` bytes and
        // nothing else uses that range; it stays mapped for the kernel's life.
        Some(addr) => unsafe { core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize) },
        None => &[],
    };
    BootResources {
        framebuffer: boot_info.framebuffer.take(),
        ramdisk: unpacked(ramdisk),
        rsdp: boot_info.rsdp_addr.into_option().map(acpi::Rsdp::from_boot_info),
    }
}

/// Frames holding the unpacked boot file system (see [`unpacked`]).
static BOOTFS_FRAMES: AtomicU64 = AtomicU64::new(0);

/// How many frames the unpacked boot file system holds (0 if the ramdisk was not packed).
pub fn bootfs_frames() -> u64 {
    BOOTFS_FRAMES.load(Ordering::Relaxed)
}

/// The boot file system in `ramdisk`: the ramdisk itself, or, if the image builder packed it
/// (`vessel_bootfs::pack`), the archive unpacked into physically consecutive frames that stay
/// in use for the kernel's life. A packed ramdisk that cannot be unpacked gives an empty one
/// (and the reason in the log): no programs start, the kernel does not stop.
fn unpacked(ramdisk: &'static [u8]) -> &'static [u8] {
    let len = match vessel_bootfs::unpacked_len(ramdisk) {
        None => return ramdisk,
        Some(Ok(len)) => len,
        Some(Err(e)) => {
            log::error!("{e}");
            return &[];
        }
    };
    let started = crate::time::since_boot_ns();
    let pages = len.div_ceil(vessel_kcore::PAGE_SIZE as usize) as u64;
    let Some(first) = frames::alloc_contiguous(pages) else {
        log::error!("packed bootfs: no {} of consecutive memory to unpack into", Bytes(len as u64));
        return &[];
    };
    // SAFETY: the `pages` frames from `first` were just taken from the allocator and nothing
    // else refers to them; the direct map covers them; they are never given back, so the slice
    // may live for the kernel's life.
    let out = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(first) as *mut u8, len) };
    let mut state = alloc::boxed::Box::new(vessel_bootfs::UnpackState::new());
    match vessel_bootfs::unpack(ramdisk, out, &mut state) {
        Ok(()) => {
            BOOTFS_FRAMES.store(pages, Ordering::Relaxed);
            let us = (crate::time::since_boot_ns() - started) / 1000;
            log::info!("bootfs: unpacked {} from {} in {us} us", Bytes(len as u64), Bytes(ramdisk.len() as u64));
            out
        }
        Err(e) => {
            log::error!("{e}");
            for page in 0..pages {
                let _ = frames::free(first + page * vessel_kcore::PAGE_SIZE);
            }
            &[]
        }
    }
}
