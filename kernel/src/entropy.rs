//! Kernel randomness: RDSEED/RDRAND when the CPU has them, else a fallback generator seeded from
//! TSC jitter. Container ids and other unguessable values come from here.
//!
//! The fallback is not cryptographic: it mixes timing jitter into a SplitMix64 stream so values
//! are distinct and hard to predict from outside, which is what ids need. The boot log says which
//! source is in use.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::x86_64::{cpuid, rdtsc};

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
    let (_, _, ecx1, _) = cpuid(1, 0);
    let (_, ebx7, _, _) = cpuid(7, 0);
    HAS_RDRAND.store(ecx1 & (1 << 30) != 0, Ordering::Relaxed);
    HAS_RDSEED.store(ebx7 & (1 << 18) != 0, Ordering::Relaxed);
    // Jitter: the low bits of TSC deltas around a port read vary with bus and emulator timing.
    let mut seed = rdtsc();
    for _ in 0..64 {
        let before = rdtsc();
        // SAFETY: port 0x80 is the POST diagnostic port; reading it has no effect.
        let _ = unsafe { x86_64::instructions::port::PortReadOnly::<u8>::new(0x80).read() };
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
    for _ in 0..10 {
        let mut value = 0;
        // SAFETY: CPUID reported RDRAND, so the instruction exists.
        if unsafe { rdrand_step(&mut value) } == 1 {
            return Some(value);
        }
    }
    None
}

#[target_feature(enable = "rdrand")]
fn rdrand_step(value: &mut u64) -> i32 {
    core::arch::x86_64::_rdrand64_step(value)
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
