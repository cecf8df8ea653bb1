//! The front end of the user program loader: parses and validates an ELF64 file before anything
//! is mapped, and hands the kernel a small, fixed-capacity [`Program`] it can map page by page.
//!
//! Only static, non-PIE x86_64 executables are accepted (`e_type == ET_EXEC`): there is no dynamic
//! linker, no relocation and no thread-local storage, so `ET_DYN`, `PT_INTERP` and `PT_TLS` are
//! refused. The file is hostile until proven otherwise: every refusal is a specific [`ElfError`],
//! and no input makes [`Program::parse`] panic.
//!
//! Invariants of a [`Program`] (what the kernel may rely on without checking again):
//! - it holds 1 to [`MAX_SEGMENTS`] segments, sorted by `vaddr`, each with `mem_size > 0` and
//!   `file_size <= mem_size`;
//! - `file_offset + file_size` does not overflow and is at most the file's length, so the file
//!   bytes of a segment can be sliced out without a check;
//! - each segment, rounded out to whole pages, lies inside `[Limits::lowest, Limits::highest)`
//!   without overflow, and no page is shared by two segments (each page gets one segment's
//!   permissions);
//! - no segment is both writable and executable;
//! - the entry point lies inside an executable segment.
//!
//! The raw structures come from `xmas-elf`, but it reads them by casting the input in place and
//! asserts (panics) on a misaligned or short slice, and it indexes with unchecked offsets. So the
//! bounds here are checked first and each header is copied into an 8-byte aligned buffer before
//! `xmas-elf` sees it; the caller's buffer may sit at any address.

use core::fmt;

use xmas_elf::header::{self, Class, Data, HeaderPt1, HeaderPt2, Machine, Type as FileType, Version};
use xmas_elf::program::{ProgramHeader64, Type as SegmentType};

use crate::PAGE_SIZE;

/// Most loadable segments a program may have (the linker emits 2 to 4 for a static program).
pub const MAX_SEGMENTS: usize = 16;

/// Most program headers of any type a file may declare; more is refused as a malformed table.
pub const MAX_PROGRAM_HEADERS: u16 = 64;

/// Size of the ELF64 file header.
const HEADER_SIZE: usize = 64;

/// Size of one ELF64 program header (`e_phentsize`).
const PROGRAM_HEADER_SIZE: usize = 56;

/// Where user programs may live; the kernel passes its address space layout.
///
/// Both bounds should be page aligned: a segment is checked after rounding it out to whole pages.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Lowest address a segment may use (e.g. `0x1000`, keeping page 0 unmapped).
    pub lowest: u64,
    /// Exclusive end of the loadable range.
    pub highest: u64,
}

/// One loadable segment, as the kernel maps it: `mem_size` bytes at `vaddr`, the first
/// `file_size` of which come from the file at `file_offset`, the rest zero (`.bss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// Bytes in memory (never 0).
    pub mem_size: u64,
    /// Where the initialised bytes start in the file.
    pub file_offset: u64,
    /// Initialised bytes (at most `mem_size`).
    pub file_size: u64,
    /// `PF_R`: the program asks to read it.
    pub readable: bool,
    /// `PF_W`: the program asks to write it (never together with `executable`).
    pub writable: bool,
    /// `PF_X`: the program asks to execute it.
    pub executable: bool,
}

impl Segment {
    const EMPTY: Segment = Segment {
        vaddr: 0,
        mem_size: 0,
        file_offset: 0,
        file_size: 0,
        readable: false,
        writable: false,
        executable: false,
    };

    /// One past the last byte in memory (no overflow: checked by [`Program::parse`]).
    fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.mem_size)
    }

    fn contains(&self, addr: u64) -> bool {
        self.vaddr <= addr && addr < self.end()
    }
}

/// A validated static executable: entry point and loadable segments. See the module invariants.
/// (Unused segment slots are always empty, so the derived equality compares programs.)
#[derive(Clone, PartialEq, Eq)]
pub struct Program {
    entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    len: usize,
    span: (u64, u64),
}

impl fmt::Debug for Program {
    /// Shows the used segments only, not the empty slots.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("entry", &self.entry)
            .field("segments", &self.segments())
            .field("span", &self.span)
            .finish()
    }
}

/// Why a file is not a program the kernel will load. `index` is the position of the offending
/// header in the file's program header table (as `readelf -l` numbers them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The file is shorter than the 64-byte ELF64 header.
    TooShort,
    /// The file does not start with the ELF magic.
    NotElf,
    /// Not `ELFCLASS64`.
    Not64Bit,
    /// Not `ELFDATA2LSB`.
    NotLittleEndian,
    /// `e_ident[EI_VERSION]` or `e_version` is not `EV_CURRENT`.
    BadVersion,
    /// `e_type` is not `ET_EXEC` (position-independent and shared objects are unsupported).
    NotExecutable,
    /// `e_machine` is not `EM_X86_64`.
    WrongMachine,
    /// The program header table has the wrong entry size, too many entries, or lies outside the file.
    BadProgramHeaders,
    /// More than [`MAX_SEGMENTS`] non-empty loadable segments.
    TooManySegments,
    /// No loadable segment with a non-zero memory size.
    NoLoadableSegment,
    /// The segment's file bytes lie outside the file.
    FileRangeOutOfBounds {
        /// Program header index.
        index: usize,
    },
    /// The segment has more file bytes than memory bytes.
    FileSizeExceedsMemSize {
        /// Program header index.
        index: usize,
    },
    /// The segment's end, or its end rounded up to a page, wraps past `u64::MAX`.
    AddressOverflow {
        /// Program header index.
        index: usize,
    },
    /// The segment's pages are not all inside the user range given by [`Limits`].
    OutsideUserSpace {
        /// Program header index.
        index: usize,
    },
    /// `p_align` is not a power of two, or `p_vaddr` and `p_offset` disagree modulo it.
    Misaligned {
        /// Program header index.
        index: usize,
    },
    /// Two segments share a page.
    Overlap {
        /// Lower program header index.
        first: usize,
        /// Higher program header index.
        second: usize,
    },
    /// The segment asks to be both writable and executable.
    WritableAndExecutable {
        /// Program header index.
        index: usize,
    },
    /// The entry point is not inside an executable segment.
    EntryNotExecutable,
    /// The file asks for an interpreter (`PT_INTERP`): dynamic linking is unsupported.
    Interpreter,
    /// The file has a `PT_TLS` segment: thread-local storage is unsupported.
    ThreadLocalStorage,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::TooShort => write!(f, "file is shorter than an ELF64 header"),
            ElfError::NotElf => write!(f, "not an ELF file (bad magic)"),
            ElfError::Not64Bit => write!(f, "not a 64-bit ELF file"),
            ElfError::NotLittleEndian => write!(f, "not a little-endian ELF file"),
            ElfError::BadVersion => write!(f, "unsupported ELF version"),
            ElfError::NotExecutable => write!(f, "not a static executable (ET_EXEC); PIE is unsupported"),
            ElfError::WrongMachine => write!(f, "not an x86_64 program"),
            ElfError::BadProgramHeaders => write!(f, "malformed program header table"),
            ElfError::TooManySegments => write!(f, "more than {MAX_SEGMENTS} loadable segments"),
            ElfError::NoLoadableSegment => write!(f, "no loadable segment"),
            ElfError::FileRangeOutOfBounds { index } => write!(f, "segment {index}: file bytes outside the file"),
            ElfError::FileSizeExceedsMemSize { index } => write!(f, "segment {index}: file size exceeds memory size"),
            ElfError::AddressOverflow { index } => write!(f, "segment {index}: address range overflows"),
            ElfError::OutsideUserSpace { index } => write!(f, "segment {index}: outside user space"),
            ElfError::Misaligned { index } => write!(f, "segment {index}: bad alignment"),
            ElfError::Overlap { first, second } => write!(f, "segments {first} and {second} share a page"),
            ElfError::WritableAndExecutable { index } => write!(f, "segment {index}: writable and executable"),
            ElfError::EntryNotExecutable => write!(f, "entry point is not in an executable segment"),
            ElfError::Interpreter => write!(f, "needs an interpreter (dynamic linking is unsupported)"),
            ElfError::ThreadLocalStorage => write!(f, "has thread-local storage (unsupported)"),
        }
    }
}

/// A copy of a header, aligned so that `xmas-elf`'s in-place cast of it cannot fail.
#[repr(C, align(8))]
struct Aligned<const N: usize>([u8; N]);

impl<const N: usize> Aligned<N> {
    /// Copies `file[offset..offset + N]`, or `None` if that is not inside the file.
    fn copy_from(file: &[u8], offset: u64) -> Option<Self> {
        let start = usize::try_from(offset).ok()?;
        let bytes = file.get(start..start.checked_add(N)?)?;
        let mut copy = Aligned([0; N]);
        copy.0.copy_from_slice(bytes);
        Some(copy)
    }
}

fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

fn page_up(addr: u64) -> Option<u64> {
    addr.checked_add(PAGE_SIZE - 1).map(page_down)
}

impl Program {
    /// Parses and validates `file` as a static x86_64 executable whose segments must fit in
    /// `limits`. Never panics; see the module invariants for what an `Ok` guarantees.
    pub fn parse(file: &[u8], limits: &Limits) -> Result<Program, ElfError> {
        let header_copy = Aligned::<HEADER_SIZE>::copy_from(file, 0).ok_or(ElfError::TooShort)?;
        // Identification first, so each failure gets its own error: `parse_header` folds a bad
        // magic and a bad class into one string, and reads a 32-bit header as such.
        let ident: &HeaderPt1 = zero::read(&header_copy.0);
        if ident.magic != header::MAGIC {
            return Err(ElfError::NotElf);
        }
        if ident.class() != Class::SixtyFour {
            return Err(ElfError::Not64Bit);
        }
        if ident.data() != Data::LittleEndian {
            return Err(ElfError::NotLittleEndian);
        }
        if ident.version() != Version::Current {
            return Err(ElfError::BadVersion);
        }
        let header = header::parse_header(&header_copy.0).map_err(|_| ElfError::NotElf)?;
        let HeaderPt2::Header64(fields) = header.pt2 else {
            return Err(ElfError::Not64Bit);
        };
        if fields.version != 1 {
            return Err(ElfError::BadVersion);
        }
        if fields.type_.as_type() != FileType::Executable {
            return Err(ElfError::NotExecutable);
        }
        if header.pt2.machine().as_machine() != Machine::X86_64 {
            return Err(ElfError::WrongMachine);
        }

        let count = fields.ph_count;
        if usize::from(fields.ph_entry_size) != PROGRAM_HEADER_SIZE || count > MAX_PROGRAM_HEADERS {
            return Err(ElfError::BadProgramHeaders);
        }
        let table_end = (PROGRAM_HEADER_SIZE as u64 * u64::from(count)).checked_add(fields.ph_offset);
        if table_end.is_none_or(|end| end > file.len() as u64) {
            return Err(ElfError::BadProgramHeaders);
        }

        // Collected unsorted with their header index, for error reports; sorted below.
        let mut found = [(0usize, Segment::EMPTY); MAX_SEGMENTS];
        let mut len = 0;
        for index in 0..usize::from(count) {
            // Cannot fail after the table check above; checked anyway rather than argued.
            let copy = fields
                .ph_offset
                .checked_add((index * PROGRAM_HEADER_SIZE) as u64)
                .and_then(|offset| Aligned::<PROGRAM_HEADER_SIZE>::copy_from(file, offset))
                .ok_or(ElfError::BadProgramHeaders)?;
            let ph: &ProgramHeader64 = zero::read(&copy.0);
            match ph.get_type() {
                Ok(SegmentType::Load) => {}
                Ok(SegmentType::Interp) => return Err(ElfError::Interpreter),
                Ok(SegmentType::Tls) => return Err(ElfError::ThreadLocalStorage),
                // Notes, stack flags, RELRO, PHDR, EH frame, PT_DYNAMIC of a static executable,
                // and unknown types describe nothing the loader must map.
                _ => continue,
            }
            let Some(segment) = check_load(ph, index, file.len() as u64, limits)? else {
                continue;
            };
            let slot = found.get_mut(len).ok_or(ElfError::TooManySegments)?;
            *slot = (index, segment);
            len += 1;
        }
        let found = found.get_mut(..len).unwrap_or_default();
        if found.is_empty() {
            return Err(ElfError::NoLoadableSegment);
        }
        found.sort_unstable_by_key(|(_, segment)| segment.vaddr);

        // Sorted by start, so a page shared by any two segments is shared by two neighbours.
        for pair in found.windows(2) {
            if let [(a, low), (b, high)] = pair {
                // `page_up` succeeded in `check_load`.
                let low_end = page_up(low.end()).unwrap_or(u64::MAX);
                if low_end > page_down(high.vaddr) {
                    return Err(ElfError::Overlap { first: *a.min(b), second: *a.max(b) });
                }
            }
        }

        let entry = fields.entry_point;
        if !found.iter().any(|(_, segment)| segment.executable && segment.contains(entry)) {
            return Err(ElfError::EntryNotExecutable);
        }

        let mut program = Program { entry, segments: [Segment::EMPTY; MAX_SEGMENTS], len, span: (0, 0) };
        for (slot, (_, segment)) in program.segments.iter_mut().zip(found.iter()) {
            *slot = *segment;
        }
        let lowest = found.first().map_or(0, |(_, segment)| page_down(segment.vaddr));
        let highest = found.last().map_or(0, |(_, segment)| page_up(segment.end()).unwrap_or(u64::MAX));
        program.span = (lowest, highest);
        Ok(program)
    }

    /// Address of the first instruction (inside an executable segment).
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The loadable segments, sorted by address, never overlapping at page granularity.
    pub fn segments(&self) -> &[Segment] {
        self.segments.get(..self.len).unwrap_or_default()
    }

    /// Lowest page-aligned address and highest page-aligned end over all segments: every page
    /// the program maps is in `[span.0, span.1)`, which lies inside the [`Limits`] it was parsed with.
    pub fn span(&self) -> (u64, u64) {
        self.span
    }
}

/// Checks one `PT_LOAD` header; `Ok(None)` for an empty segment, which is skipped.
fn check_load(ph: &ProgramHeader64, index: usize, file_len: u64, limits: &Limits) -> Result<Option<Segment>, ElfError> {
    if ph.file_size > ph.mem_size {
        return Err(ElfError::FileSizeExceedsMemSize { index });
    }
    if ph.mem_size == 0 {
        return Ok(None);
    }
    // Checked even when `file_size` is 0, so the kernel can always slice the file bytes.
    if ph.offset.checked_add(ph.file_size).is_none_or(|end| end > file_len) {
        return Err(ElfError::FileRangeOutOfBounds { index });
    }
    let end = ph.virtual_addr.checked_add(ph.mem_size).and_then(page_up).ok_or(ElfError::AddressOverflow { index })?;
    // The kernel maps whole pages, so the rounded-out range is what must stay inside the limits.
    if page_down(ph.virtual_addr) < limits.lowest || end > limits.highest {
        return Err(ElfError::OutsideUserSpace { index });
    }
    if ph.align > 1 && (!ph.align.is_power_of_two() || ph.virtual_addr % ph.align != ph.offset % ph.align) {
        return Err(ElfError::Misaligned { index });
    }
    let segment = Segment {
        vaddr: ph.virtual_addr,
        mem_size: ph.mem_size,
        file_offset: ph.offset,
        file_size: ph.file_size,
        readable: ph.flags.is_read(),
        writable: ph.flags.is_write(),
        executable: ph.flags.is_execute(),
    };
    if segment.writable && segment.executable {
        return Err(ElfError::WritableAndExecutable { index });
    }
    Ok(Some(segment))
}

#[cfg(test)]
mod tests;
