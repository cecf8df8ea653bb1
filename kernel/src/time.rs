//! Kernel time: a monotonic clock from the TSC, calibrated once against the legacy PIT, and the
//! tick count driven by the local APIC timer.
//!
//! Invariants: `since_boot_ns` is monotonic and counts from the bootloader's hand-over (the first
//! instruction of `kernel_main`); before calibration finishes it reads 0. Ticks only increase.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86_64::{apic, pit, rdtsc};

/// Timer interrupts per second.
pub const TICK_HZ: u64 = 100;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Records the hand-over instant and calibrates the TSC (about 5 ms of PIT time).
pub fn init_early() {
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
    let khz = pit::measure_tsc_khz();
    TSC_KHZ.store(khz.max(1), Ordering::Relaxed);
}

/// TSC frequency in kHz as calibrated at boot.
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Converts a TSC delta to nanoseconds.
pub fn tsc_to_ns(delta: u64) -> u64 {
    let khz = TSC_KHZ.load(Ordering::Relaxed);
    if khz == 0 {
        return 0;
    }
    u64::try_from(u128::from(delta) * 1_000_000 / u128::from(khz)).unwrap_or(u64::MAX)
}

/// Nanoseconds since the bootloader handed over to the kernel.
pub fn since_boot_ns() -> u64 {
    tsc_to_ns(rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed)))
}

/// Starts the periodic APIC timer at [`TICK_HZ`].
pub fn start_ticks() {
    let per_tick = apic::start_timer(TICK_HZ);
    log::info!("timer: local APIC periodic at {TICK_HZ} Hz ({per_tick} counts/tick), TSC {} MHz", tsc_khz() / 1000);
}

/// Called by the timer interrupt.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Timer interrupts taken since the timer started.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
