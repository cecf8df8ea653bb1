//! Platform discovery from the firmware's ACPI tables (through the `acpi` crate): CPUs and
//! interrupt controllers from the MADT, the HPET if there is one, PCI's memory-mapped
//! configuration space from the MCFG if there is one, and (through `power`) how to switch the
//! machine off and reset it from the FADT and DSDT.
//!
//! The tables are reached through `mem::acpi`. They are firmware input: a missing or corrupt
//! table is logged and the kernel continues with what it found.

use acpi::HpetInfo;
use acpi::madt::{Madt, MadtEntry};
use acpi::mcfg::Mcfg;
use spin::Once;

use crate::mem::acpi::{Rsdp, tables as acpi_tables};

/// What the kernel learnt about the machine.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    /// Enabled processors (local APICs) listed in the MADT.
    pub cpus: usize,
    /// Number of I/O APICs.
    pub io_apics: usize,
    /// Physical address of the first I/O APIC.
    pub io_apic_addr: Option<u64>,
    /// Physical address of the local APIC registers, per the MADT.
    pub local_apic_addr: u64,
    /// Physical address of the HPET registers, if present.
    pub hpet_addr: Option<u64>,
    /// PCI segment 0's memory-mapped configuration space (ECAM) from the MCFG, if present:
    /// (physical address of its first bus, first bus, last bus).
    pub ecam: Option<(u64, u8, u8)>,
    /// ISA IRQ → (global system interrupt, MPS flags) from the MADT's source overrides; an
    /// entry with gsi 0xffff_ffff means "identity, ISA defaults" (edge, active high).
    pub isa_overrides: [(u32, u16); 16],
}

impl Platform {
    /// The global system interrupt an ISA IRQ arrives on, and whether it is level triggered
    /// and active low.
    pub fn isa_irq(&self, irq: u8) -> (u32, bool, bool) {
        match self.isa_overrides.get(usize::from(irq)) {
            Some(&(gsi, flags)) if gsi != u32::MAX => (gsi, flags & 0b1100 == 0b1100, flags & 0b11 == 0b11),
            _ => (u32::from(irq), false, false),
        }
    }
}

impl Default for Platform {
    fn default() -> Self {
        Platform {
            cpus: 0,
            io_apics: 0,
            io_apic_addr: None,
            local_apic_addr: 0,
            hpet_addr: None,
            ecam: None,
            isa_overrides: [(u32::MAX, 0); 16],
        }
    }
}

static PLATFORM: Once<Platform> = Once::new();

/// The platform found at boot (defaults if ACPI was unusable).
pub fn get() -> Platform {
    PLATFORM.get().copied().unwrap_or_default()
}

/// Reads the ACPI tables from the RSDP the bootloader found.
pub fn init(rsdp: Option<Rsdp>) {
    let Some(rsdp) = rsdp else {
        log::warn!("acpi: no RSDP from the firmware; assuming one CPU, no I/O APIC");
        PLATFORM.call_once(Platform::default);
        return;
    };
    let tables = match acpi_tables(rsdp) {
        Ok(tables) => tables,
        Err(e) => {
            log::warn!("acpi: unusable tables at {:#x}: {e:?}", rsdp.addr());
            PLATFORM.call_once(Platform::default);
            return;
        }
    };
    let mut platform = Platform::default();
    match tables.find_table::<Madt>() {
        Ok(madt) => {
            platform.local_apic_addr = u64::from(madt.get().local_apic_address);
            for entry in madt.get().entries() {
                match entry {
                    MadtEntry::LocalApic(lapic) if lapic.flags & 1 != 0 => platform.cpus += 1,
                    MadtEntry::LocalX2Apic(x2) if x2.flags & 1 != 0 => platform.cpus += 1,
                    MadtEntry::IoApic(io) => {
                        platform.io_apics += 1;
                        platform.io_apic_addr.get_or_insert(u64::from(io.io_apic_address));
                    }
                    MadtEntry::InterruptSourceOverride(iso) if iso.bus == 0 => {
                        let (irq, gsi, flags) = (iso.irq, iso.global_system_interrupt, iso.flags);
                        if let Some(slot) = platform.isa_overrides.get_mut(usize::from(irq)) {
                            *slot = (gsi, flags);
                        }
                    }
                    _ => {}
                }
            }
        }
        Err(e) => log::warn!("acpi: no MADT ({e:?})"),
    }
    crate::power::init(&tables);
    platform.hpet_addr = HpetInfo::new(&tables).ok().map(|h| h.base_address as u64);
    platform.ecam = tables.find_table::<Mcfg>().ok().and_then(|mcfg| {
        let table = mcfg.get();
        table
            .entries()
            .iter()
            .find(|e| e.pci_segment_group == 0 && e.bus_number_start <= e.bus_number_end)
            .map(|e| (e.base_address, e.bus_number_start, e.bus_number_end))
    });
    if let Some((base, first, last)) = platform.ecam {
        log::info!("acpi: PCI configuration space (ECAM) at {base:#x}, buses {first}-{last}");
    }
    log::info!(
        "acpi: {} CPU(s), {} I/O APIC(s){}, local APIC {:#x}, HPET {}",
        platform.cpus,
        platform.io_apics,
        IoApicAt(platform.io_apic_addr.unwrap_or(0)),
        platform.local_apic_addr,
        HpetAt(platform.hpet_addr.unwrap_or(0))
    );
    PLATFORM.call_once(|| platform);
}

/// Formats " (first at 0x...)" for an I/O APIC address, or nothing for 0.
struct IoApicAt(u64);

impl core::fmt::Display for IoApicAt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 != 0 { write!(f, " (first at {:#x})", self.0) } else { Ok(()) }
    }
}

/// Formats an HPET address or "absent".
struct HpetAt(u64);

impl core::fmt::Display for HpetAt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 != 0 { write!(f, "at {:#x}", self.0) } else { f.write_str("absent") }
    }
}
