//! Volatile access to mapped device registers (MSI-X tables, virtio configuration, ECAM).

/// Writes a 32-bit register at `address`, a mapping made by `hal::map_mmio`.
pub fn write32(address: u64, value: u32) {
    // SAFETY: callers pass addresses inside a live uncached register mapping from
    // `hal::map_mmio`, 4-byte aligned (MSI-X entries are 16-byte aligned, fields 4).
    unsafe { core::ptr::write_volatile(address as usize as *mut u32, value) }
}

/// Writes a 16-bit register at `address` (a `hal::map_mmio` mapping, 2-byte aligned).
pub fn write16(address: u64, value: u16) {
    // SAFETY: as in `write32`, for 2-byte aligned fields of the virtio common configuration.
    unsafe { core::ptr::write_volatile(address as usize as *mut u16, value) }
}

/// Reads a 16-bit register at `address` (a `hal::map_mmio` mapping, 2-byte aligned).
pub fn read16(address: u64) -> u16 {
    // SAFETY: as in `write16`.
    unsafe { core::ptr::read_volatile(address as usize as *const u16) }
}

/// Reads a 32-bit register at `address` (a 4-byte aligned field of a register mapping: ECAM).
pub fn read32(address: u64) -> u32 {
    // SAFETY: as in `write32`; ECAM addresses come from `pci::Ecam::address`, inside the mapping
    // `PlatformEcam` gave and 4-byte aligned.
    unsafe { core::ptr::read_volatile(address as usize as *const u32) }
}
