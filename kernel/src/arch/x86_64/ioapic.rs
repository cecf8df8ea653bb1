//! The I/O APIC: routes device interrupt lines to vectors on this CPU. ISA IRQ `n` arrives as
//! vector [`IRQ_BASE`]` + n`; every line starts masked and is unmasked only while a user-space
//! driver has it bound to a notification (see `task::irq`).
//!
//! Invariant: the register window is mapped once by `init`; without an I/O APIC (none in the
//! MADT) every call is a no-op and no line ever fires.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use crate::mem;
use crate::platform;

/// Vector of ISA IRQ 0.
pub const IRQ_BASE: u8 = 0x30;
/// ISA IRQ lines routed.
pub const ISA_LINES: u8 = 16;

static BASE: AtomicU64 = AtomicU64::new(0);
/// Serialises the select/data register pair.
static LOCK: Mutex<()> = Mutex::new(());

fn write(reg: u32, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    let _guard = LOCK.lock();
    // SAFETY: `base` maps the I/O APIC's select (0x00) and data (0x10) registers uncached.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::write_volatile((base + 0x10) as *mut u32, value);
    }
}

fn read(reg: u32) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return 0;
    }
    let _guard = LOCK.lock();
    // SAFETY: as in `write`.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::read_volatile((base + 0x10) as *const u32)
    }
}

/// Maps the first I/O APIC and routes every ISA line, masked, to its vector.
pub fn init(apic_id: u8) {
    let p = platform::get();
    let Some(phys) = p.io_apic_addr else {
        log::warn!("ioapic: none in the MADT; device interrupts unavailable");
        return;
    };
    let Some(virt) = mem::map_mmio(phys, 0x20) else {
        log::error!("ioapic: cannot map registers at {phys:#x}");
        return;
    };
    BASE.store(virt, Ordering::Relaxed);
    let entries = ((read(1) >> 16) & 0xff) + 1;
    for irq in 0..ISA_LINES {
        let (gsi, level, low) = p.isa_irq(irq);
        if gsi >= entries {
            continue;
        }
        let mut low_word = u32::from(IRQ_BASE + irq) | 1 << 16; // masked
        if low {
            low_word |= 1 << 13;
        }
        if level {
            low_word |= 1 << 15;
        }
        write(0x10 + 2 * gsi, low_word);
        write(0x11 + 2 * gsi, u32::from(apic_id) << 24);
    }
    log::info!("ioapic: {entries} inputs at {phys:#x}, ISA IRQs on vectors {IRQ_BASE:#x}..");
}

fn set_mask(irq: u8, masked: bool) {
    if irq >= ISA_LINES {
        return;
    }
    let (gsi, _, _) = platform::get().isa_irq(irq);
    let low = read(0x10 + 2 * gsi);
    write(0x10 + 2 * gsi, if masked { low | 1 << 16 } else { low & !(1 << 16) });
}

/// Stops an ISA line from interrupting.
pub fn mask(irq: u8) {
    set_mask(irq, true);
}

/// Lets an ISA line interrupt again.
pub fn unmask(irq: u8) {
    set_mask(irq, false);
}
