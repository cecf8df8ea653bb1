//! The local APIC (xAPIC, memory mapped): enabled at boot with a spurious vector, and its timer
//! run periodically as the kernel tick, calibrated against the TSC.
//!
//! Invariant: the register window is mapped uncached once by `init`; before that every function
//! here is a no-op.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::model_specific::Msr;

use super::rdtsc;
use super::trap::{SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::mem;

const IA32_APIC_BASE: u32 = 0x1b;
const REG_ID: u64 = 0x20;
const REG_EOI: u64 = 0xb0;
const REG_SPURIOUS: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
const TIMER_PERIODIC: u32 = 1 << 17;
const LVT_MASKED: u32 = 1 << 16;

/// Virtual address of the register window (0 until mapped).
static BASE: AtomicU64 = AtomicU64::new(0);

fn read(reg: u64) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return 0;
    }
    // SAFETY: `base` maps the 4 KiB APIC register page uncached; `reg` is a register offset.
    unsafe { core::ptr::read_volatile((base + reg) as *const u32) }
}

fn write(reg: u64, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile((base + reg) as *mut u32, value) }
}

/// Maps and software-enables the local APIC; returns its id.
pub fn init() -> u8 {
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let msr = unsafe { Msr::new(IA32_APIC_BASE).read() };
    let phys = msr & 0x000f_ffff_ffff_f000;
    let Some(virt) = mem::map_mmio(phys, 4096) else {
        log::error!("apic: cannot map registers at {phys:#x}; no timer");
        return 0;
    };
    BASE.store(virt, Ordering::Relaxed);
    write(REG_SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    let id = (read(REG_ID) >> 24) as u8;
    log::info!("apic: local APIC id {id} at {phys:#x}");
    id
}

/// This CPU's local APIC id (0 before `init`).
pub fn id() -> u8 {
    (read(REG_ID) >> 24) as u8
}

/// Where an MSI for `vector` on this CPU must be written: (address, data). Fixed delivery,
/// edge-triggered, physical destination this CPU's APIC id.
pub fn msi_message(vector: u8) -> (u32, u32) {
    (0xfee0_0000 | u32::from(id()) << 12, u32::from(vector))
}

/// Signals end of interrupt.
pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Calibrates the timer against the TSC over about 2 ms, then starts it periodic at `hz`.
/// Returns the timer count per tick.
pub fn start_timer(hz: u64) -> u32 {
    write(REG_TIMER_DIVIDE, 0b0011); // divide by 16
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, u32::MAX);
    let start = rdtsc();
    let window = crate::time::tsc_khz() * 2; // 2 ms of TSC
    while rdtsc() - start < window {
        core::hint::spin_loop();
    }
    let elapsed = u64::from(u32::MAX - read(REG_TIMER_CURRENT));
    let per_tick = u32::try_from(elapsed * 500 / hz.max(1)).unwrap_or(u32::MAX).max(1);
    write(REG_LVT_TIMER, TIMER_PERIODIC | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, per_tick);
    per_tick
}
