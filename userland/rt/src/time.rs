//! Time: the kernel's monotonic clock and sleeping.

/// Nanoseconds since boot.
pub fn now_ns() -> u64 {
    crate::sys::clock_ns()
}

/// Sleeps for at least `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    crate::sys::sleep_ns(ms.saturating_mul(1_000_000));
}
