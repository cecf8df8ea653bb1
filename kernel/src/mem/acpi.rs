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
