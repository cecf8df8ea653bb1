//! The `random` device's generator: ChaCha20 keyed from the CPU's hardware generator (RDRAND)
//! and re-keyed from its own output after every block it hands out, so a later compromise of
//! the server's memory does not reveal bytes already given away.

/// A ChaCha20 key stream.
pub struct Rng {
    key: [u32; 8],
    counter: u64,
}

impl Rng {
    /// Keyed from RDRAND; `None` if the CPU has none or it keeps failing.
    pub fn from_hardware() -> Option<Rng> {
        let mut key = [0u32; 8];
        for pair in key.chunks_mut(2) {
            let word = hardware_word()?;
            pair[0] = word as u32;
            pair[1] = (word >> 32) as u32;
        }
        Some(Rng { key, counter: 0 })
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(64) {
            let block = self.block();
            for (o, b) in chunk.iter_mut().zip(block.iter().flat_map(|w| w.to_le_bytes())) {
                *o = b;
            }
        }
        // Fast key erasure: the next key is fresh output, never handed out.
        let next = self.block();
        self.key.copy_from_slice(&next[..8]);
    }

    fn block(&mut self) -> [u32; 16] {
        let mut state = [0u32; 16];
        state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
        state[4..12].copy_from_slice(&self.key);
        state[12] = self.counter as u32;
        state[13] = (self.counter >> 32) as u32;
        self.counter += 1;
        let mut x = state;
        for _ in 0..10 {
            for [a, b, c, d] in [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]] {
                quarter(&mut x, a, b, c, d);
            }
            for [a, b, c, d] in [[0, 5, 10, 15], [1, 6, 11, 12], [2, 7, 8, 13], [3, 4, 9, 14]] {
                quarter(&mut x, a, b, c, d);
            }
        }
        for (o, s) in x.iter_mut().zip(state) {
            *o = o.wrapping_add(s);
        }
        x
    }
}

fn quarter(x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(16);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(12);
    x[a] = x[a].wrapping_add(x[b]);
    x[d] = (x[d] ^ x[a]).rotate_left(8);
    x[c] = x[c].wrapping_add(x[d]);
    x[b] = (x[b] ^ x[c]).rotate_left(7);
}

/// One 64-bit word from RDRAND (a few tries, as Intel advises), if the CPU has it.
fn hardware_word() -> Option<u64> {
    // CPUID leaf 1, ECX bit 30: RDRAND.
    let has = core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0;
    if !has {
        return None;
    }
    for _ in 0..10 {
        let mut word = 0u64;
        // SAFETY: the CPU has RDRAND (checked above); the intrinsic only writes `word`.
        if unsafe { rdrand(&mut word) } == 1 {
            return Some(word);
        }
    }
    None
}

/// # Safety
/// The CPU must have RDRAND.
#[target_feature(enable = "rdrand")]
unsafe fn rdrand(out: &mut u64) -> i32 {
    core::arch::x86_64::_rdrand64_step(out)
}
