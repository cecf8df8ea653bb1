//! Example values of every field type, edge cases included (0, the maximum, empty, long,
//! non-ASCII). The generated checks call each operation with the examples of round `k`
//! ([`pick`]), so a protocol crate's own field types implement [`Example`] in its tests.

use alloc::string::String;
use alloc::vec::Vec;

/// Rounds the generated checks run: every operation is called once per round.
pub const ROUNDS: usize = 12;

/// Example values of a field type (at least one).
pub trait Example: Sized {
    /// The examples.
    fn examples() -> Vec<Self>;
}

/// The example of round `round` (cycling through the examples).
pub fn pick<T: Example>(round: usize) -> T {
    let mut all = T::examples();
    if all.is_empty() {
        panic!("{} has no examples", core::any::type_name::<T>());
    }
    let i = round % all.len();
    all.swap_remove(i)
}

macro_rules! examples {
    ($($t:ty => [$($v:expr),* $(,)?];)*) => {$(
        impl Example for $t {
            fn examples() -> Vec<Self> {
                alloc::vec![$($v),*]
            }
        }
    )*};
}

const fn pattern<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let mut i = 0;
    while i < N {
        bytes[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    bytes
}

const fn pairs<const N: usize>() -> [(u64, u64); N] {
    let mut pairs = [(0u64, 0u64); N];
    let mut i = 0;
    while i < N {
        pairs[i] = (i as u64, u64::MAX - i as u64);
        i += 1;
    }
    pairs
}

static LONG_BYTES: [u8; 300] = pattern();
static LONG_PAIRS: [(u64, u64); 40] = pairs();
const LONG_TEXT: &str = "a longer text, repeated: ünïcödé ✓ 漢字 — ünïcödé ✓ 漢字 — ünïcödé ✓ 漢字 — ünïcödé ✓ 漢字";

examples! {
    u64 => [0, 1, 0x0123_4567_89ab_cdef, u64::MAX];
    i64 => [0, -1, i64::MIN, i64::MAX];
    u32 => [0, 7, u32::MAX];
    u16 => [0, 0x1234, u16::MAX];
    u8 => [0, 0x5a, u8::MAX];
    bool => [false, true];
    &'static [u8] => [b"", b"hello", &LONG_BYTES];
    &'static str => ["", "x", LONG_TEXT];
    &'static [(u64, u64)] => [&[], &[(1, 2)], &LONG_PAIRS];
    &'static [u32] => [&[], &[11], &[21, 22, 23]];
}

impl Example for Vec<u8> {
    fn examples() -> Vec<Self> {
        <&[u8]>::examples().into_iter().map(<[u8]>::to_vec).collect()
    }
}

impl Example for String {
    fn examples() -> Vec<Self> {
        <&str>::examples().into_iter().map(String::from).collect()
    }
}

impl Example for Vec<(u64, u64)> {
    fn examples() -> Vec<Self> {
        <&[(u64, u64)]>::examples().into_iter().map(<[(u64, u64)]>::to_vec).collect()
    }
}

impl Example for Vec<u32> {
    fn examples() -> Vec<Self> {
        <&[u32]>::examples().into_iter().map(<[u32]>::to_vec).collect()
    }
}

impl<const N: usize> Example for [u64; N] {
    fn examples() -> Vec<Self> {
        alloc::vec![[0; N], [u64::MAX; N], core::array::from_fn(|i| (i as u64 + 1) * 0x0101_0101_0101)]
    }
}

impl<T: Example> Example for Option<T> {
    fn examples() -> Vec<Self> {
        let mut all = alloc::vec![None];
        all.extend(T::examples().into_iter().map(Some));
        all
    }
}
