//! Kernel randomness: RDSEED/RDRAND when the CPU has them, else a fallback generator seeded from
//! TSC jitter. Container ids and other unguessable values come from here.
//!
//! The fallback is not cryptographic: it mixes timing jitter into a SplitMix64 stream so values
//! are distinct and hard to predict from outside, which is what ids need. The boot log says which
//! source is in use.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::x86_64::{self, cpuid, rdtsc};

static HAS_RDRAND: AtomicBool = AtomicBool::new(false);
static HAS_RDSEED: AtomicBool = AtomicBool::new(false);
static FALLBACK_STATE: AtomicU64 = AtomicU64::new(0);

/// Which hardware sources the CPU offers.
#[derive(Clone, Copy, Debug)]
pub struct Sources {
    /// RDRAND present.
    pub rdrand: bool,
    /// RDSEED present.
    pub rdseed: bool,
}

/// Detects the hardware sources and seeds the fallback.
pub fn init() {
    let (_, ebx7, _, _) = cpuid(7, 0);
    HAS_RDRAND.store(x86_64::detect_rdrand(), Ordering::Relaxed);
    HAS_RDSEED.store(ebx7 & (1 << 18) != 0, Ordering::Relaxed);
    // Jitter: the low bits of TSC deltas around a port read vary with bus and emulator timing.
    let mut seed = rdtsc();
    for _ in 0..64 {
        let before = rdtsc();
        let _ = x86_64::read_post_port();
        seed = mix(seed ^ rdtsc().wrapping_sub(before));
    }
    FALLBACK_STATE.store(seed, Ordering::Relaxed);
    let s = sources();
    log::info!(
        "entropy: RDRAND {}, RDSEED {}{}",
        if s.rdrand { "available" } else { "absent" },
        if s.rdseed { "available" } else { "absent" },
        if s.rdrand || s.rdseed { "" } else { " - using TSC-jitter fallback" }
    );
}

/// The hardware sources found at boot.
pub fn sources() -> Sources {
    Sources { rdrand: HAS_RDRAND.load(Ordering::Relaxed), rdseed: HAS_RDSEED.load(Ordering::Relaxed) }
}

/// SplitMix64's finaliser: a bijective, well-spread mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One value from RDRAND, retrying as Intel recommends; `None` if absent or exhausted.
pub fn rdrand() -> Option<u64> {
    if !HAS_RDRAND.load(Ordering::Relaxed) {
        return None;
    }
    (0..10).find_map(|_| x86_64::rdrand())
}

/// One value from the fallback generator (always available).
pub fn fallback() -> u64 {
    let state = FALLBACK_STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    mix(state ^ rdtsc().rotate_left(32))
}

/// A random 64-bit value from the best source available.
pub fn random_u64() -> u64 {
    rdrand().unwrap_or_else(fallback)
}
