//! Time: the kernel's monotonic clock and sleeping.

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
    crate::sys::clock_ns()
}

/// The processor's time-stamp counter: a count that only grows, read without a system call
/// (one instruction), in ticks of no fixed length. For deciding cheaply whether enough has
/// passed to ask [`now_ns`] (a system call) again, never as a duration itself.
pub fn cycles() -> u64 {
    // SAFETY: `rdtsc` only reads the counter; the kernel leaves it readable in user mode.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Sleeps for at least `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    crate::sys::sleep_ns(ms.saturating_mul(1_000_000));
}
