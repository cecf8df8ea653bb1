//! The log ring: the last `CAPACITY` bytes of everything the kernel printed (its log and the
//! programs' debug output), for the `device` server to show on its console (`LogRead`), and a
//! flag the timer tick turns into a notification (`LogBind`) so the reader never polls.
//!
//! Invariants: bytes are numbered from boot (`written` counts them all); the ring holds bytes
//! `written - CAPACITY.min(written) .. written`; the lock is taken only with interrupts off (as
//! the logger's), so an interrupt handler that logs cannot deadlock against it.

use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;

/// Bytes the ring keeps.
pub const CAPACITY: usize = 64 * 1024;

struct Ring {
    bytes: [u8; CAPACITY],
    written: u64,
}

static RING: Mutex<Ring> = Mutex::new(Ring { bytes: [0; CAPACITY], written: 0 });

/// Bytes were added since the tick last looked.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Appends `bytes`. Callers hold interrupts off (the logger does).
pub fn append(bytes: &[u8]) {
    let mut ring = RING.lock();
    for &b in bytes {
        let at = (ring.written % CAPACITY as u64) as usize;
        ring.bytes[at] = b;
        ring.written += 1;
    }
    PENDING.store(true, Ordering::Release);
}

/// `core::fmt::Write` into the ring, for formatted kernel output.
pub struct Writer;

impl core::fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        append(s.as_bytes());
        Ok(())
    }
}

/// Copies bytes from number `from` on into `out` (from the oldest kept if `from` is older);
/// returns the number of the first byte copied and how many were copied.
pub fn read(from: u64, out: &mut [u8]) -> (u64, usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let ring = RING.lock();
        let oldest = ring.written.saturating_sub(CAPACITY as u64);
        let first = from.clamp(oldest, ring.written);
        let count = out.len().min((ring.written - first) as usize);
        for (i, slot) in out[..count].iter_mut().enumerate() {
            *slot = ring.bytes[((first + i as u64) % CAPACITY as u64) as usize];
        }
        (first, count)
    })
}

/// Whether bytes were added since the last call (the timer tick asks, then signals the bound
/// notification).
pub fn take_pending() -> bool {
    PENDING.swap(false, Ordering::Acquire)
}
