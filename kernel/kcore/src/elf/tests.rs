//! Tests of ELF validation: one per refusal, truncations, and a mutation fuzz.

use super::*;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const R: u32 = 4;
const W: u32 = 2;
const X: u32 = 1;

// Field offsets, for targeted damage.
const E_TYPE: usize = 16;
const E_MACHINE: usize = 18;
const E_VERSION: usize = 20;
const E_ENTRY: usize = 24;
const E_PHOFF: usize = 32;
const E_PHENTSIZE: usize = 54;
const E_PHNUM: usize = 56;
const P_TYPE: usize = 0;
const P_FLAGS: usize = 4;
const P_OFFSET: usize = 8;
const P_VADDR: usize = 16;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;
const P_ALIGN: usize = 48;

const LIMITS: Limits = Limits { lowest: 0x1000, highest: 0x8000_0000_0000 };

/// One program header as the builder writes it.
#[derive(Clone, Copy)]
struct Ph {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph { kind: PT_LOAD, flags, offset, vaddr, filesz, memsz, align: 0x1000 }
}

fn other(kind: u32) -> Ph {
    Ph { kind, flags: R, offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 8 }
}

fn put(file: &mut [u8], at: usize, bytes: &[u8]) {
    file[at..at + bytes.len()].copy_from_slice(bytes);
}

fn ph_at(index: usize) -> usize {
    HEADER_SIZE + index * PROGRAM_HEADER_SIZE
}

/// A static x86_64 executable: header, program headers right after it, then a payload
/// pattern up to `len` bytes.
fn build(entry: u64, phdrs: &[Ph], len: usize) -> Vec<u8> {
    let mut file: Vec<u8> = (0..len.max(ph_at(phdrs.len()))).map(|i| i as u8).collect();
    put(&mut file, 0, &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put(&mut file, E_TYPE, &2u16.to_le_bytes());
    put(&mut file, E_MACHINE, &62u16.to_le_bytes());
    put(&mut file, E_VERSION, &1u32.to_le_bytes());
    put(&mut file, E_ENTRY, &entry.to_le_bytes());
    put(&mut file, E_PHOFF, &(HEADER_SIZE as u64).to_le_bytes());
    put(&mut file, 40, &0u64.to_le_bytes()); // e_shoff
    put(&mut file, 48, &0u32.to_le_bytes()); // e_flags
    put(&mut file, 52, &(HEADER_SIZE as u16).to_le_bytes());
    put(&mut file, E_PHENTSIZE, &(PROGRAM_HEADER_SIZE as u16).to_le_bytes());
    put(&mut file, E_PHNUM, &(phdrs.len() as u16).to_le_bytes());
    put(&mut file, 58, &[0; 6]); // no section headers
    for (i, ph) in phdrs.iter().enumerate() {
        let at = ph_at(i);
        put(&mut file, at + P_TYPE, &ph.kind.to_le_bytes());
        put(&mut file, at + P_FLAGS, &ph.flags.to_le_bytes());
        put(&mut file, at + P_OFFSET, &ph.offset.to_le_bytes());
        put(&mut file, at + P_VADDR, &ph.vaddr.to_le_bytes());
        put(&mut file, at + 24, &ph.vaddr.to_le_bytes()); // p_paddr
        put(&mut file, at + P_FILESZ, &ph.filesz.to_le_bytes());
        put(&mut file, at + P_MEMSZ, &ph.memsz.to_le_bytes());
        put(&mut file, at + P_ALIGN, &ph.align.to_le_bytes());
    }
    file
}

const ENTRY: u64 = 0x40_0110;
const FILE_LEN: usize = 0x1c0;

fn text() -> Ph {
    load(R | X, 0x100, 0x40_0100, 0x80, 0x80)
}

/// `.data` (0x40 bytes) followed by `.bss`.
fn data() -> Ph {
    load(R | W, 0x180, 0x40_1180, 0x40, 0x2000)
}

/// The valid two-segment program: text, data + bss, and a stack note to ignore.
fn valid() -> Vec<u8> {
    build(ENTRY, &[text(), data(), other(PT_GNU_STACK)], FILE_LEN)
}

fn parse(file: &[u8]) -> Result<Program, ElfError> {
    Program::parse(file, &LIMITS)
}

fn with(phdrs: &[Ph], entry: u64) -> Result<Program, ElfError> {
    parse(&build(entry, phdrs, FILE_LEN))
}

#[test]
fn parses_two_segment_program() {
    let program = parse(&valid()).unwrap();
    assert_eq!(program.entry(), ENTRY);
    assert_eq!(
        program.segments(),
        &[
            Segment {
                vaddr: 0x40_0100,
                mem_size: 0x80,
                file_offset: 0x100,
                file_size: 0x80,
                readable: true,
                writable: false,
                executable: true,
            },
            Segment {
                vaddr: 0x40_1180,
                mem_size: 0x2000,
                file_offset: 0x180,
                file_size: 0x40,
                readable: true,
                writable: true,
                executable: false,
            },
        ]
    );
    assert_eq!(program.span(), (0x40_0000, 0x40_4000));
}

#[test]
fn sorts_segments_by_address_and_skips_empty_and_ignored_headers() {
    let empty = load(R, 0, 0x50_0000, 0, 0);
    let program = with(
        &[
            other(PT_PHDR),
            data(),
            other(PT_NOTE),
            empty,
            other(PT_GNU_RELRO),
            other(PT_DYNAMIC),
            text(),
            other(0x6474_e550),
            other(0x1234_5678),
        ],
        ENTRY,
    )
    .unwrap();
    let addrs: Vec<u64> = program.segments().iter().map(|s| s.vaddr).collect();
    assert_eq!(addrs, [0x40_0100, 0x40_1180]);
}

#[test]
fn parses_from_every_buffer_alignment() {
    // xmas-elf casts in place and asserts alignment: a misaligned buffer must still parse.
    let file = valid();
    for shift in 0..8 {
        let mut buffer = vec![0u8; shift];
        buffer.extend_from_slice(&file);
        let program = parse(&buffer[shift..]).unwrap();
        assert_eq!(program, parse(&file).unwrap());
    }
}

#[test]
fn too_short() {
    assert_eq!(parse(&[]), Err(ElfError::TooShort));
    assert_eq!(parse(&valid()[..HEADER_SIZE - 1]), Err(ElfError::TooShort));
}

#[test]
fn not_elf() {
    let mut file = valid();
    file[1] = b'X';
    assert_eq!(parse(&file), Err(ElfError::NotElf));
}

#[test]
fn not_64_bit() {
    let mut file = valid();
    file[4] = 1;
    assert_eq!(parse(&file), Err(ElfError::Not64Bit));
    file[4] = 0;
    assert_eq!(parse(&file), Err(ElfError::Not64Bit));
}

#[test]
fn not_little_endian() {
    let mut file = valid();
    file[5] = 2;
    assert_eq!(parse(&file), Err(ElfError::NotLittleEndian));
}

#[test]
fn bad_version() {
    let mut file = valid();
    file[6] = 0;
    assert_eq!(parse(&file), Err(ElfError::BadVersion));
    let mut file = valid();
    put(&mut file, E_VERSION, &2u32.to_le_bytes());
    assert_eq!(parse(&file), Err(ElfError::BadVersion));
}

#[test]
fn not_executable() {
    for e_type in [0u16, 1, 3, 4, 0xfe00] {
        let mut file = valid();
        put(&mut file, E_TYPE, &e_type.to_le_bytes());
        assert_eq!(parse(&file), Err(ElfError::NotExecutable), "e_type {e_type}");
    }
}

#[test]
fn host_pie_binary_is_not_executable() {
    // The host's /bin/true is a PIE (ET_DYN) with PT_INTERP; the type check refuses it first.
    let Ok(file) = std::fs::read("/bin/true") else {
        eprintln!("no /bin/true on this host; skipped");
        return;
    };
    assert_eq!(parse(&file), Err(ElfError::NotExecutable));
}

#[test]
fn wrong_machine() {
    let mut file = valid();
    put(&mut file, E_MACHINE, &3u16.to_le_bytes());
    assert_eq!(parse(&file), Err(ElfError::WrongMachine));
}

#[test]
fn bad_program_headers() {
    let mut entry_size = valid();
    put(&mut entry_size, E_PHENTSIZE, &32u16.to_le_bytes());
    let mut too_many = valid();
    put(&mut too_many, E_PHNUM, &(MAX_PROGRAM_HEADERS + 1).to_le_bytes());
    let mut past_end = valid();
    put(&mut past_end, E_PHOFF, &(FILE_LEN as u64 - 2 * PROGRAM_HEADER_SIZE as u64).to_le_bytes());
    let mut wraps = valid();
    put(&mut wraps, E_PHOFF, &(u64::MAX - 8).to_le_bytes());
    for file in [entry_size, too_many, past_end, wraps] {
        assert_eq!(parse(&file), Err(ElfError::BadProgramHeaders));
    }
}

#[test]
fn too_many_segments() {
    let pages: Vec<Ph> =
        (0..=MAX_SEGMENTS as u64).map(|i| load(R | X, 0x100, 0x40_0100 + i * 0x1000, 0x20, 0x20)).collect();
    assert_eq!(with(&pages, ENTRY), Err(ElfError::TooManySegments));
    assert!(with(&pages[..MAX_SEGMENTS], ENTRY).is_ok());
}

#[test]
fn no_loadable_segment() {
    assert_eq!(with(&[], ENTRY), Err(ElfError::NoLoadableSegment));
    assert_eq!(with(&[other(PT_GNU_STACK), other(PT_NOTE)], ENTRY), Err(ElfError::NoLoadableSegment));
    assert_eq!(with(&[load(R | X, 0x100, 0x40_0100, 0, 0)], ENTRY), Err(ElfError::NoLoadableSegment));
}

#[test]
fn file_range_out_of_bounds() {
    let past_end = load(R | W, 0x180, 0x40_1180, FILE_LEN as u64 - 0x17f, 0x2000);
    assert_eq!(with(&[text(), past_end], ENTRY), Err(ElfError::FileRangeOutOfBounds { index: 1 }));
    let wraps = Ph { offset: u64::MAX, filesz: 1, align: 0, ..data() };
    assert_eq!(with(&[text(), wraps], ENTRY), Err(ElfError::FileRangeOutOfBounds { index: 1 }));
    let bss_only_past_end = Ph { offset: FILE_LEN as u64 + 1, filesz: 0, align: 0, ..data() };
    assert_eq!(with(&[text(), bss_only_past_end], ENTRY), Err(ElfError::FileRangeOutOfBounds { index: 1 }));
}

#[test]
fn file_size_exceeds_mem_size() {
    let bigger = Ph { filesz: 0x81, ..text() };
    assert_eq!(with(&[bigger, data()], ENTRY), Err(ElfError::FileSizeExceedsMemSize { index: 0 }));
}

#[test]
fn address_overflow() {
    let wraps = Ph { vaddr: u64::MAX - 0x10, align: 0, ..data() };
    assert_eq!(with(&[text(), wraps], ENTRY), Err(ElfError::AddressOverflow { index: 1 }));
    // The end fits in a u64 but its page does not.
    let last_page = Ph { vaddr: u64::MAX - 0x20, memsz: 0x10, filesz: 0, align: 0, ..data() };
    assert_eq!(with(&[text(), last_page], ENTRY), Err(ElfError::AddressOverflow { index: 1 }));
}

#[test]
fn outside_user_space() {
    let page_zero = Ph { vaddr: 0x180, ..data() };
    assert_eq!(with(&[text(), page_zero], ENTRY), Err(ElfError::OutsideUserSpace { index: 1 }));
    let straddles = Ph { vaddr: LIMITS.highest - 0x1000 + 0x180, ..data() };
    assert_eq!(with(&[text(), straddles], ENTRY), Err(ElfError::OutsideUserSpace { index: 1 }));
    let kernel_half = Ph { vaddr: 0xffff_8000_0000_0180, ..data() };
    assert_eq!(with(&[text(), kernel_half], ENTRY), Err(ElfError::OutsideUserSpace { index: 1 }));
}

#[test]
fn misaligned() {
    let not_power_of_two = Ph { align: 0x3000, ..data() };
    assert_eq!(with(&[text(), not_power_of_two], ENTRY), Err(ElfError::Misaligned { index: 1 }));
    let not_congruent = Ph { vaddr: 0x40_1100, ..data() };
    assert_eq!(with(&[text(), not_congruent], ENTRY), Err(ElfError::Misaligned { index: 1 }));
    // Alignment 0 and 1 mean "no constraint".
    for align in [0, 1] {
        assert!(with(&[text(), Ph { vaddr: 0x40_1100, align, ..data() }], ENTRY).is_ok());
    }
}

#[test]
fn overlap_at_page_granularity() {
    // Data starts in the page where text ends, though the byte ranges are disjoint.
    let same_page = Ph { vaddr: 0x40_0180, ..data() };
    assert_eq!(with(&[same_page, text()], ENTRY), Err(ElfError::Overlap { first: 0, second: 1 }));
    let inside = Ph { vaddr: 0x40_0180, memsz: 0x40, align: 0, ..data() };
    let big = load(R | X, 0x100, 0x40_0100, 0x80, 0x10_0000);
    assert_eq!(with(&[big, other(PT_NOTE), inside], ENTRY), Err(ElfError::Overlap { first: 0, second: 2 }));
}

#[test]
fn writable_and_executable() {
    let rwx = Ph { flags: R | W | X, ..data() };
    assert_eq!(with(&[text(), rwx], ENTRY), Err(ElfError::WritableAndExecutable { index: 1 }));
}

#[test]
fn entry_not_executable() {
    assert_eq!(with(&[text(), data()], 0x40_1180), Err(ElfError::EntryNotExecutable));
    assert_eq!(with(&[text(), data()], 0x40_0180), Err(ElfError::EntryNotExecutable));
    assert_eq!(with(&[text(), data()], 0), Err(ElfError::EntryNotExecutable));
}

#[test]
fn interpreter() {
    assert_eq!(with(&[other(PT_INTERP), text(), data()], ENTRY), Err(ElfError::Interpreter));
}

#[test]
fn thread_local_storage() {
    assert_eq!(with(&[text(), data(), other(PT_TLS)], ENTRY), Err(ElfError::ThreadLocalStorage));
}

#[test]
fn errors_display_as_one_line() {
    let errors = [
        ElfError::TooShort,
        ElfError::NotElf,
        ElfError::Not64Bit,
        ElfError::NotLittleEndian,
        ElfError::BadVersion,
        ElfError::NotExecutable,
        ElfError::WrongMachine,
        ElfError::BadProgramHeaders,
        ElfError::TooManySegments,
        ElfError::NoLoadableSegment,
        ElfError::FileRangeOutOfBounds { index: 3 },
        ElfError::FileSizeExceedsMemSize { index: 3 },
        ElfError::AddressOverflow { index: 3 },
        ElfError::OutsideUserSpace { index: 3 },
        ElfError::Misaligned { index: 3 },
        ElfError::Overlap { first: 1, second: 3 },
        ElfError::WritableAndExecutable { index: 3 },
        ElfError::EntryNotExecutable,
        ElfError::Interpreter,
        ElfError::ThreadLocalStorage,
    ];
    for error in errors {
        let text = error.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "{error:?}: {text:?}");
        if matches!(error, ElfError::Overlap { .. }) {
            assert!(text.contains('1') && text.contains('3'), "{text}");
        } else if text.contains("segment ") {
            assert!(text.contains('3'), "{text}");
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let file = valid();
    for len in 0..file.len() {
        assert!(parse(&file[..len]).is_err(), "prefix of {len} bytes accepted");
    }
}

/// Checks everything an `Ok` promises, without trusting the parser's own arithmetic.
fn assert_invariants(file: &[u8], limits: &Limits, program: &Program) {
    let segments = program.segments();
    assert!(!segments.is_empty() && segments.len() <= MAX_SEGMENTS);
    let page = |addr: u64| addr / PAGE_SIZE;
    let mut span = (u64::MAX, 0);
    for (i, s) in segments.iter().enumerate() {
        assert!(s.mem_size > 0 && s.file_size <= s.mem_size, "{s:?}");
        let file_end = s.file_offset.checked_add(s.file_size).unwrap();
        assert!(file_end <= file.len() as u64, "{s:?}");
        let end = s.vaddr.checked_add(s.mem_size).unwrap();
        let (first_page, end_page) = (page(s.vaddr), page(end - 1) + 1);
        assert!(first_page.checked_mul(PAGE_SIZE).unwrap() >= limits.lowest, "{s:?}");
        assert!(end_page.checked_mul(PAGE_SIZE).unwrap() <= limits.highest, "{s:?}");
        assert!(!(s.writable && s.executable), "{s:?}");
        for t in &segments[i + 1..] {
            assert!(s.vaddr < t.vaddr, "not sorted");
            assert!(end_page <= page(t.vaddr), "{s:?} shares a page with {t:?}");
        }
        span = (span.0.min(first_page * PAGE_SIZE), span.1.max(end_page * PAGE_SIZE));
        // Each segment is one of the file's PT_LOAD headers, read back independently.
        let read = |at: usize| u64::from_le_bytes(file[at..at + 8].try_into().unwrap());
        let phoff = read(E_PHOFF) as usize;
        let count = u16::from_le_bytes([file[E_PHNUM], file[E_PHNUM + 1]]) as usize;
        assert!((0..count).any(|k| {
            let at = phoff + k * PROGRAM_HEADER_SIZE;
            file[at..at + 4] == PT_LOAD.to_le_bytes()
                && read(at + P_VADDR) == s.vaddr
                && read(at + P_MEMSZ) == s.mem_size
                && read(at + P_OFFSET) == s.file_offset
                && read(at + P_FILESZ) == s.file_size
        }));
    }
    assert_eq!(program.span(), span);
    let entry = program.entry();
    assert!(segments.iter().any(|s| s.executable && s.vaddr <= entry && entry - s.vaddr < s.mem_size));
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn extreme(&mut self, file_len: usize) -> u64 {
        let values = [
            0,
            1,
            8,
            55,
            56,
            64,
            65,
            0xfff,
            0x1000,
            0x1001,
            0x40_0000,
            0x40_1000,
            file_len as u64,
            file_len as u64 + 1,
            LIMITS.highest,
            LIMITS.highest - 1,
            1 << 63,
            (1 << 63) - 1,
            u64::MAX - 0x1000,
            u64::MAX - 0xfff,
            u64::MAX - 55,
            u64::MAX,
        ];
        if self.below(4) == 0 { self.next() } else { values[self.below(values.len())] }
    }
}

/// A plausible program of up to `MAX_SEGMENTS + 2` headers, mostly loads laid out upwards
/// in whole pages with an occasional step back, so that accepted programs with many segments,
/// page overlaps, permission mixes and the segment limit all come up often.
fn random_layout(rng: &mut XorShift) -> Vec<u8> {
    let kinds = [PT_LOAD, PT_LOAD, PT_LOAD, PT_LOAD, PT_LOAD, PT_LOAD, PT_NOTE, PT_GNU_STACK, PT_PHDR];
    let flags = [R | X, R | X, R | X, R, R, R | W, R | W, R | W, X, 0, 0x70_0000 | R, R | W | X];
    let count = rng.below(MAX_SEGMENTS + 3);
    let len = 0x400 + rng.below(0x2000);
    let mut page = 0x400u64;
    let mut entries = Vec::new();
    let phdrs: Vec<Ph> = (0..count)
        .map(|_| {
            if rng.below(16) == 0 {
                page = page.saturating_sub(1 + rng.below(3) as u64);
            }
            let offset = rng.below(len) as u64;
            let memsz = 1 + rng.below(0x2800) as u64;
            let vaddr = page * PAGE_SIZE + offset % PAGE_SIZE;
            page += (offset % PAGE_SIZE + memsz).div_ceil(PAGE_SIZE) + rng.below(2) as u64;
            let flags = flags[rng.below(flags.len())];
            if flags & X != 0 {
                entries.push(vaddr + rng.below(memsz as usize + 8) as u64);
            }
            Ph {
                kind: kinds[rng.below(kinds.len())],
                flags,
                offset,
                vaddr,
                filesz: memsz.min(rng.below(len - offset as usize + 1) as u64),
                memsz,
                align: [0x1000, 0x1000, 0x1000, 0x1000, 0x1000, 0x1000, 0, 1, 8, 3][rng.below(10)],
            }
        })
        .collect();
    let entry = if entries.is_empty() { ENTRY } else { entries[rng.below(entries.len())] };
    build(entry, &phdrs, len)
}

#[test]
fn mutants_never_panic_and_accepted_ones_hold_every_invariant() {
    const MUTANTS: usize = 100_000;
    let header_fields = [(E_ENTRY, 8), (E_PHOFF, 8), (E_PHNUM, 2), (E_PHENTSIZE, 2), (E_TYPE, 2)];
    let ph_fields = [(P_OFFSET, 8), (P_FILESZ, 8), (P_VADDR, 8), (P_MEMSZ, 8), (P_ALIGN, 8), (P_FLAGS, 4)];
    let limit_choices = [
        LIMITS,
        Limits { lowest: 0, highest: u64::MAX },
        Limits { lowest: 0x40_1000, highest: 0x40_4000 },
        Limits { lowest: 0x40_0000, highest: 0x40_0000 },
        Limits { lowest: u64::MAX, highest: 0 },
    ];
    let base = valid();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for _ in 0..MUTANTS {
        // Fresh layouts are damaged less, so that many of them still parse.
        let (mut file, damage) =
            if rng.below(4) == 0 { (random_layout(&mut rng), rng.below(3)) } else { (base.clone(), 1 + rng.below(3)) };
        for _ in 0..damage {
            let len = file.len();
            match rng.below(6) {
                0 | 1 if len > 0 => {
                    let at = rng.below(len);
                    file[at] ^= 1 + rng.below(255) as u8;
                }
                2 => {
                    let (at, size) = header_fields[rng.below(header_fields.len())];
                    let value = rng.extreme(len).to_le_bytes();
                    if at + size <= len {
                        file[at..at + size].copy_from_slice(&value[..size]);
                    }
                }
                3 => {
                    let (field, size) = ph_fields[rng.below(ph_fields.len())];
                    let at = ph_at(rng.below(4)) + field;
                    let value = rng.extreme(len).to_le_bytes();
                    if at + size <= len {
                        file[at..at + size].copy_from_slice(&value[..size]);
                    }
                }
                4 => {
                    let kinds = [PT_LOAD, PT_INTERP, PT_TLS, PT_NOTE, PT_GNU_STACK, 0, 0xffff_ffff];
                    let at = ph_at(rng.below(4)) + P_TYPE;
                    if at + 4 <= len {
                        file[at..at + 4].copy_from_slice(&kinds[rng.below(kinds.len())].to_le_bytes());
                    }
                }
                _ => {
                    let new_len = rng.below(len + 64);
                    // Shrinks more often than it grows: truncation is the interesting case.
                    file.resize(new_len, 0xa5);
                }
            }
        }
        let limits = if rng.below(2) == 0 { LIMITS } else { limit_choices[rng.below(limit_choices.len())] };
        if let Ok(program) = Program::parse(&file, &limits) {
            assert_invariants(&file, &limits, &program);
            accepted += 1;
        }
    }
    // The loop must reach the accepting path often, or it proves little.
    assert!(accepted > MUTANTS / 20, "only {accepted} of {MUTANTS} mutants accepted");
}
