//! Pure kernel logic that does not touch hardware, so it builds for the host and is unit tested
//! there with plain `cargo test` (STYLE habit 2).
//!
//! The kernel feeds these types with what the firmware and bootloader hand over (memory map, boot
//! arguments) and with hardware state (trap frames); every input is treated as untrusted: no
//! function here panics on bad input.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod acpi_s5;
pub mod bootargs;
pub mod elf;
pub mod frames;
pub mod memmap;
pub mod report;
pub mod vrange;

/// Size of a base page and of a physical frame, in bytes.
pub const PAGE_SIZE: u64 = 4096;
