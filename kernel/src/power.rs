//! Switching the machine off and resetting it: the `Power` call, which only processes of the
//! root container reach (`task::require_root`; syncing disks first is user space's job).
//!
//! What the firmware says is read once at boot ([`init`], from the FADT and the DSDT) and kept:
//! the PM1a (and PM1b) control registers, S5's sleep types (`vessel_kcore::acpi_s5`, a byte
//! search of the DSDT's AML: the kernel has no AML interpreter), the reset register when the
//! FADT says it works, and how to hand ACPI from the firmware to the OS. Power off writes
//! `SLP_TYP | SLP_EN`; reset tries the FADT's reset register, then the chipset's 0xCF9, then the
//! keyboard controller.
//!
//! Invariants: both calls log a line before touching the hardware (on the serial line, written
//! synchronously, so it is the last thing a host sees); they return only when the machine is
//! still running well after the write, with the error the call reports.

use acpi::address::{AddressSpace, GenericAddress};
use acpi::fadt::Fadt;
use acpi::{AcpiTable, AcpiTables};
use spin::Once;
use vessel_abi::Error;
use vessel_kcore::acpi_s5::{SLP_EN, pm1_sleep_value, s5_sleep_types};

use crate::arch::x86_64::power as ports;
use crate::mem::acpi::{KernelAcpi, with_table_bytes};

/// SCI_EN in PM1 control: ACPI belongs to the OS (not to the firmware's SMM code).
const SCI_EN: u16 = 1;
/// How long to wait for the firmware to hand ACPI over, and for the machine to go off or reset
/// after the write, before reporting failure.
const SETTLE_NS: u64 = 1_000_000_000;

/// What the firmware's tables say about switching off and resetting.
#[derive(Clone, Copy, Debug, Default)]
struct PowerControl {
    /// The PM1a control register's port.
    pm1a: Option<u16>,
    /// The PM1b control register's port, on machines that have one.
    pm1b: Option<u16>,
    /// `(SLP_TYPa, SLP_TYPb)` of S5.
    s5: Option<(u8, u8)>,
    /// The FADT's reset register (I/O space) and value, when its flag says it works.
    reset: Option<(u16, u8)>,
    /// The SMI command port and the value that hands ACPI to the OS (0: nothing to hand over).
    acpi_enable: Option<(u16, u8)>,
}

static CONTROL: Once<PowerControl> = Once::new();

/// A register's port, if the address is an I/O port.
fn io_port(address: &GenericAddress) -> Option<u16> {
    match address.address_space {
        AddressSpace::SystemIo => u16::try_from(address.address).ok().filter(|&p| p != 0),
        _ => None,
    }
}

/// Reads the power registers from the FADT and S5's sleep types from the DSDT (boot only).
pub fn init(tables: &AcpiTables<KernelAcpi>) {
    let mut control = PowerControl::default();
    match tables.find_table::<Fadt>() {
        Ok(fadt) => {
            let fadt = fadt.get();
            control.pm1a = fadt.pm1a_control_block().ok().as_ref().and_then(io_port);
            control.pm1b = fadt.pm1b_control_block().ok().flatten().as_ref().and_then(io_port);
            // The reset register exists from FADT revision 2 on; before, its bytes are others'.
            let flags = { fadt.flags };
            if fadt.header().revision >= 2 && flags.supports_system_reset_via_fadt() {
                let value = { fadt.reset_value };
                control.reset = fadt.reset_register().ok().as_ref().and_then(io_port).map(|port| (port, value));
            }
            let (smi, enable) = ({ fadt.smi_cmd_port }, { fadt.acpi_enable });
            control.acpi_enable = u16::try_from(smi).ok().filter(|&p| p != 0 && enable != 0).map(|p| (p, enable));
        }
        Err(e) => log::warn!("acpi: no FADT ({e:?}): power off is not available"),
    }
    control.s5 = tables
        .dsdt()
        .ok()
        .and_then(|dsdt| with_table_bytes(dsdt.address, dsdt.length as usize, s5_sleep_types).flatten());
    match (control.pm1a, control.s5) {
        (Some(port), Some((a, b))) => log::info!("acpi: power off through PM1a {port:#x} (S5 sleep type {a}/{b})"),
        (None, _) => log::warn!("acpi: no PM1a control block in I/O space: power off is not available"),
        (_, None) => log::warn!("acpi: no _S5_ package in the DSDT: power off is not available"),
    }
    match control.reset {
        Some((port, value)) => {
            log::info!("acpi: reset through the FADT's reset register: {value:#x} to port {port:#x}")
        }
        None => log::info!("acpi: no usable reset register in the FADT: reset through port 0xcf9, else the 8042"),
    }
    CONTROL.call_once(|| control);
}

/// Spins until `ns` have passed (interrupts stay as they are).
fn settle(ns: u64) {
    let start = crate::time::since_boot_ns();
    while crate::time::since_boot_ns().saturating_sub(start) < ns {
        core::hint::spin_loop();
    }
}

/// Hands ACPI from the firmware to the OS if the firmware still holds it (SCI_EN clear), as the
/// specification asks before the PM1 registers are used; bounded by [`SETTLE_NS`].
fn enable_acpi(control: &PowerControl, pm1a: u16) {
    let Some((port, value)) = control.acpi_enable else { return };
    if ports::pm1_read(pm1a) & SCI_EN != 0 {
        return;
    }
    ports::firmware_port_write(port, value);
    let start = crate::time::since_boot_ns();
    while ports::pm1_read(pm1a) & SCI_EN == 0 && crate::time::since_boot_ns().saturating_sub(start) < SETTLE_NS {
        core::hint::spin_loop();
    }
}

/// `Power(POWER_OFF)`: enters S5. Returns only if that failed: `NotFound` when the tables gave
/// no way, `DeviceError` when the machine is still on a while after the write.
pub fn switch_off() -> Error {
    let control = CONTROL.get().copied().unwrap_or_default();
    let (Some(pm1a), Some((typ_a, typ_b))) = (control.pm1a, control.s5) else {
        return Error::NotFound;
    };
    log::info!("power: switching off");
    enable_acpi(&control, pm1a);
    let registers = [(Some(pm1a), typ_a), (control.pm1b, typ_b)];
    // As the specification orders it (and Linux does): the sleep types first, then SLP_EN.
    let values = registers.map(|(port, typ)| port.map(|p| (p, pm1_sleep_value(ports::pm1_read(p), typ))));
    for (port, value) in values.iter().flatten() {
        ports::pm1_write(*port, value & !SLP_EN);
    }
    for (port, value) in values.iter().flatten() {
        ports::pm1_write(*port, *value);
    }
    settle(SETTLE_NS);
    log::warn!("power: the machine is still on");
    Error::DeviceError
}

/// `Power(POWER_REBOOT)`: resets the machine through the FADT's reset register, else the
/// chipset's reset control register, else the keyboard controller. Returns `DeviceError` only
/// if the machine is still running after all three.
pub fn reset() -> Error {
    let control = CONTROL.get().copied().unwrap_or_default();
    log::info!("power: resetting");
    if let Some((port, value)) = control.reset {
        ports::firmware_port_write(port, value);
        settle(SETTLE_NS / 10);
    }
    ports::reset_control();
    settle(SETTLE_NS / 10);
    ports::pulse_8042_reset();
    settle(SETTLE_NS);
    log::warn!("power: the machine did not reset");
    Error::DeviceError
}
