//! The sleep type of ACPI's soft-off state, read from AML bytes without an interpreter.
//!
//! Entering S5 means writing `SLP_TYP << 10 | SLP_EN` to the PM1 control registers, where
//! `SLP_TYPa` and `SLP_TYPb` are the first two elements of the DSDT's `\_S5_` package. Firmware
//! almost always declares that package statically (`Name (_S5, Package () { 5, 5, 0, 0 })`), so
//! the usual minimal approach is a byte search: find `_S5_` after a `NameOp` (0x08, perhaps
//! with a root prefix `\`), check a `PackageOp` (0x12) follows, skip its length, and read the
//! two integers. An `_S5_` defined any other way (a method) is not found: the caller reports
//! that rather than guessing.
//!
//! Everything here is firmware input: no function panics or reads out of bounds on any bytes.

/// `NameOp`.
const NAME_OP: u8 = 0x08;
/// `PackageOp`.
const PACKAGE_OP: u8 = 0x12;
/// The root prefix `\`.
const ROOT_PREFIX: u8 = b'\\';
/// SLP_EN in a PM1 control register.
pub const SLP_EN: u16 = 1 << 13;
/// Where SLP_TYP sits in a PM1 control register (three bits).
const SLP_TYP_SHIFT: u16 = 10;
const SLP_TYP_MASK: u16 = 0b111 << SLP_TYP_SHIFT;

/// `(SLP_TYPa, SLP_TYPb)` of the `\_S5_` package in `aml` (a table's AML, header or not), or
/// `None` if no statically declared `_S5_` package is there. A package of one element gives
/// the same type for both registers.
pub fn s5_sleep_types(aml: &[u8]) -> Option<(u8, u8)> {
    let mut from = 0;
    while let Some(at) = find(aml.get(from..)?, b"_S5_").map(|i| i + from) {
        from = at + 1;
        let named = match at.checked_sub(1).and_then(|i| aml.get(i)) {
            Some(&NAME_OP) => true,
            Some(&ROOT_PREFIX) => at.checked_sub(2).and_then(|i| aml.get(i)) == Some(&NAME_OP),
            _ => false,
        };
        if !named {
            continue;
        }
        if let Some(types) = package_types(aml.get(at + 4..)?) {
            return Some(types);
        }
    }
    None
}

/// The PM1 control value that enters the sleep state of type `slp_typ` from the register's
/// `current` value: the other bits kept, SLP_TYP replaced, SLP_EN set.
pub fn pm1_sleep_value(current: u16, slp_typ: u8) -> u16 {
    (current & !SLP_TYP_MASK) | ((u16::from(slp_typ) << SLP_TYP_SHIFT) & SLP_TYP_MASK) | SLP_EN
}

/// The first two integers of the package starting at `bytes` (`PackageOp` first).
fn package_types(bytes: &[u8]) -> Option<(u8, u8)> {
    let (&op, rest) = bytes.split_first()?;
    if op != PACKAGE_OP {
        return None;
    }
    // PkgLength: bits 6-7 of the lead byte say how many bytes follow it.
    let (&lead, _) = rest.split_first()?;
    let rest = rest.get(1 + usize::from(lead >> 6)..)?;
    let (&count, rest) = rest.split_first()?;
    if count == 0 {
        return None;
    }
    let (a, used) = integer(rest)?;
    let b = if count > 1 { integer(rest.get(used..)?)?.0 } else { a };
    Some((sleep_type(a), sleep_type(b)))
}

/// SLP_TYP is three bits: a larger value keeps its low three (as the register would).
fn sleep_type(value: u64) -> u8 {
    (value & 0b111) as u8
}

/// An AML integer at the start of `bytes` and how many bytes it took: `ZeroOp`, `OneOp`,
/// `OnesOp`, or a byte, word, dword or qword constant.
fn integer(bytes: &[u8]) -> Option<(u64, usize)> {
    let (&op, rest) = bytes.split_first()?;
    let wide = |n: usize| -> Option<(u64, usize)> {
        let raw = rest.get(..n)?;
        let value = raw.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b));
        Some((value, 1 + n))
    };
    match op {
        0x00 => Some((0, 1)),
        0x01 => Some((1, 1)),
        0xff => Some((u64::MAX, 1)),
        0x0a => wide(1),
        0x0b => wide(2),
        0x0c => wide(4),
        0x0e => wide(8),
        _ => None,
    }
}

/// The index of the first `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU's DSDT (q35 and pc) declares `Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero })`
    /// inside a scope: `08 5F 53 35 5F 12 06 04 00 00 00 00`.
    const QEMU: &[u8] =
        &[0x10, 0x20, b'_', b'S', b'B', b'_', 0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0];

    #[test]
    fn qemu_s5_is_type_zero() {
        assert_eq!(s5_sleep_types(QEMU), Some((0, 0)));
    }

    #[test]
    fn byte_prefixed_values_and_root_prefix() {
        // `Name (\_S5, Package () { 0x05, 0x07 })`, as many real machines declare it.
        let aml = [0x5b, 0x80, b'\\', 0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x02, 0x0a, 5, 0x0a, 7];
        // The first `\` is not after a NameOp; the `\_S5_` after `08` is.
        assert_eq!(s5_sleep_types(&aml), Some((5, 7)));
        let one_op = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x05, 0x02, 0x01, 0x0a, 0x0d];
        assert_eq!(s5_sleep_types(&one_op), Some((1, 5)), "0x0d keeps its low three bits");
    }

    #[test]
    fn long_package_lengths_and_wide_constants() {
        // A two-byte PkgLength (lead byte 0x41) and word and dword constants.
        let aml = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x41, 0x00, 0x02, 0x0b, 6, 0, 0x0c, 3, 0, 0, 0];
        assert_eq!(s5_sleep_types(&aml), Some((6, 3)));
        // One element: both registers take it.
        let single = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x03, 0x01, 0x0a, 0x02];
        assert_eq!(s5_sleep_types(&single), Some((2, 2)));
    }

    #[test]
    fn references_and_methods_are_not_the_package() {
        // `_S5_` as a reference (no NameOp) before the real declaration.
        let aml = [0x70, b'_', b'S', b'5', b'_', 0x60, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x02, 0x00, 0x01];
        assert_eq!(s5_sleep_types(&aml), Some((0, 1)));
        // A method named _S5_ (0x14 MethodOp): not found.
        assert_eq!(s5_sleep_types(&[0x14, 0x05, b'_', b'S', b'5', b'_', 0x00]), None);
        // A name that is not a package.
        assert_eq!(s5_sleep_types(&[0x08, b'_', b'S', b'5', b'_', 0x0a, 0x05]), None);
    }

    #[test]
    fn truncated_or_hostile_bytes_never_panic() {
        for cut in 0..QEMU.len() {
            let _ = s5_sleep_types(&QEMU[..cut]);
        }
        assert_eq!(s5_sleep_types(&[]), None);
        assert_eq!(s5_sleep_types(b"_S5_"), None);
        // An empty package, an unknown element, a PkgLength that runs off the end.
        assert_eq!(s5_sleep_types(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x02, 0x00]), None);
        assert_eq!(s5_sleep_types(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x03, 0x02, 0x99]), None);
        assert_eq!(s5_sleep_types(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0xc0]), None);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut bytes = QEMU.to_vec();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state % bytes.len() as u64) as usize;
            bytes[i] = (state >> 32) as u8;
            bytes.truncate(6 + (state >> 40) as usize % (bytes.len() - 5));
            let _ = s5_sleep_types(&bytes);
        }
    }

    #[test]
    fn the_control_value_keeps_other_bits() {
        // SCI_EN (bit 0) stays; an old SLP_TYP goes.
        assert_eq!(pm1_sleep_value(0x0001, 0), 0x2001);
        assert_eq!(pm1_sleep_value(0x1c01, 5), 0x3401);
        assert_eq!(pm1_sleep_value(0, 0xff), 0x3c00);
    }
}
