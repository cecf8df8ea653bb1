//! Reaching the firmware's ACPI tables: the `acpi` crate's mapping hooks, and the one entry point
//! that starts from the RSDP the bootloader found. Tables live in RAM the direct map covers; a
//! table outside it is mapped on demand like MMIO (boot only, never unmapped).
//!
//! Invariant: an [`Rsdp`] is made only from the bootloader's boot information, so the address
//! [`tables`] starts from is the checksummed RSDP the bootloader found.

use core::ptr::NonNull;

use acpi::{AcpiError, AcpiHandler, AcpiTables, PhysicalMapping};

use super::{paging, phys_to_virt};

/// The physical address of the ACPI RSDP, as the bootloader reported it.
#[derive(Clone, Copy, Debug)]
pub struct Rsdp(u64);

impl Rsdp {
    /// Wraps the address from the boot information (`mem::init` only).
    pub(super) fn from_boot_info(addr: u64) -> Self {
        Rsdp(addr)
    }

    /// The physical address.
    pub fn addr(self) -> u64 {
        self.0
    }
}

/// Maps ACPI tables for the `acpi` crate through the direct map.
#[derive(Clone, Copy)]
pub struct KernelAcpi;

impl AcpiHandler for KernelAcpi {
    unsafe fn map_physical_region<T>(&self, phys: usize, size: usize) -> PhysicalMapping<Self, T> {
        let phys64 = phys as u64;
        let direct = phys_to_virt(phys64);
        let last = direct + size.max(1) as u64 - 1;
        let virt = if paging::translate(direct).is_some() && paging::translate(last).is_some() {
            direct
        } else {
            paging::map_mmio(phys64, size as u64).unwrap_or(0)
        };
        let Some(ptr) = NonNull::new(virt as *mut T) else {
            panic!("ACPI: cannot map table at {phys:#x}");
        };
        // SAFETY: `ptr` maps `size` bytes starting at `phys`, as `PhysicalMapping` requires.
        unsafe { PhysicalMapping::new(phys, ptr, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {
        // Direct-map addresses stay mapped; the rare on-demand mapping is kept (boot only).
    }
}

/// The ACPI tables the RSDP leads to (checked by the `acpi` crate: firmware input).
pub fn tables(rsdp: Rsdp) -> Result<AcpiTables<KernelAcpi>, AcpiError> {
    // SAFETY: the address came from the bootloader, which found and checksummed the RSDP
    // (`Rsdp` is made from nothing else).
    unsafe { AcpiTables::from_rsdp(KernelAcpi, rsdp.0 as usize) }
}

/// Largest firmware table [`with_table_bytes`] reads whole (real DSDTs are tens of KiB).
const MAX_TABLE_BYTES: usize = 4 << 20;

/// Calls `f` with the `length` bytes of firmware memory at physical `address`: the AML of a
/// table the `acpi` crate located (`AcpiTables::dsdt`). `None` for an empty or oversized
/// region.
pub fn with_table_bytes<R>(address: usize, length: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    if length == 0 || length > MAX_TABLE_BYTES {
        return None;
    }
    // SAFETY: the region is part of an ACPI table the crate found through the RSDP (firmware
    // memory, which the kernel never hands out while booting); the mapping covers it whole.
    let mapping = unsafe { KernelAcpi.map_physical_region::<u8>(address, length) };
    // SAFETY: `mapping` maps `length` readable bytes at its virtual start, and nothing writes
    // firmware tables while `f` reads them.
    let bytes = unsafe { core::slice::from_raw_parts(mapping.virtual_start().as_ptr(), length) };
    Some(f(bytes))
}
