//! The boot file system: a cpio "newc" archive (what `cpio -o -H newc` writes), packed by the
//! build tool into the bootloader's ramdisk and read by the kernel and `init`.
//!
//! Each entry is a 110-byte ASCII header (magic `070701`, then 13 fields of 8 hex digits: ino,
//! mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize,
//! check), the name (`namesize` bytes including its NUL), zero padding so the data starts at a
//! multiple of 4 from the archive start, then `filesize` bytes of data padded to a multiple of 4.
//! An entry named `TRAILER!!!` ends the archive; bytes after it (ramdisk padding) are ignored.
//!
//! Invariants: the archive bytes are untrusted, so [`Archive::new`] checks every header, name and
//! size once, with checked arithmetic, before handing out anything; after that every [`Entry`]
//! borrows a slice that lies inside the input, and no function here panics on any input. Names
//! must be NUL-terminated UTF-8 without interior NULs or `..` components. The crc variant
//! (`070702`) is rejected: nothing here computes its checksum, and accepting it unchecked would
//! pretend to an integrity check that does not happen.
//!
//! The ramdisk may hold the archive packed (`packed.rs`: zlib behind a 16-byte header), which
//! the kernel unpacks at boot with [`unpack`].
//!
//! The `writer` feature adds `Writer` and [`pack`] (need `alloc`) for the build tool; the
//! kernel builds without it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "writer"))]
extern crate alloc;

mod packed;
#[cfg(any(test, feature = "writer"))]
mod writer;
#[cfg(any(test, feature = "writer"))]
pub use packed::pack;
pub use packed::{PACKED_MAGIC, UnpackError, UnpackState, unpack, unpacked_len};
#[cfg(any(test, feature = "writer"))]
pub use writer::Writer;

#[cfg(test)]
mod tests;

use core::fmt;

const MAGIC: &[u8] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";
const FIELDS: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];
const MODE: usize = 1;
const FILESIZE: usize = 6;
const NAMESIZE: usize = 11;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;

/// Why an archive (or, for the writer, a path or file) was refused. `offset` is the byte offset
/// of the offending entry's header from the archive start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The header, name or data (with its padding) runs past the end of the bytes, or its end
    /// does not fit in `usize`.
    Truncated {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// The header does not start with `070701`.
    BadMagic {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// A header field is not 8 hex digits.
    BadNumber {
        /// Offset of the entry's header.
        offset: usize,
        /// Name of the field, e.g. `"filesize"`.
        field: &'static str,
    },
    /// The name is empty, lacks its NUL, has an interior NUL, is not UTF-8 or has a `..`
    /// component (the writer also refuses empty and `TRAILER!!!` paths).
    BadName {
        /// Offset of the entry's header.
        offset: usize,
    },
    /// The bytes end before the `TRAILER!!!` entry.
    MissingTrailer,
    /// Writer only: the data or name does not fit newc's 32-bit size fields.
    TooLarge {
        /// Offset the entry's header would have had.
        offset: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { offset } => write!(f, "bootfs: entry at byte {offset} is truncated"),
            Error::BadMagic { offset } => write!(f, "bootfs: header at byte {offset} lacks the newc magic 070701"),
            Error::BadNumber { offset, field } => {
                write!(f, "bootfs: header at byte {offset} has a {field} field that is not 8 hex digits")
            }
            Error::BadName { offset } => write!(f, "bootfs: entry at byte {offset} has an invalid name"),
            Error::MissingTrailer => write!(f, "bootfs: archive ends without a TRAILER!!! entry"),
            Error::TooLarge { offset } => write!(f, "bootfs: entry at byte {offset} is too large for newc"),
        }
    }
}

/// One file or directory in the archive, borrowing from the archive bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path with any leading `./` and `/` removed; the root (`.`) reads as `""`.
    pub path: &'a str,
    /// File type and permission bits, as in `st_mode`.
    pub mode: u32,
    /// File contents (empty for directories).
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// Whether the entry is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether the entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// A validated newc archive; borrows the bytes, allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    /// Offset of the trailer's header: entries lie in `bytes[..end]`.
    end: usize,
    len: usize,
}

impl<'a> Archive<'a> {
    /// Validates the whole archive up front: every header, name and size in bounds, ending with
    /// the `TRAILER!!!` entry. Bytes after the trailer are ignored.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut offset = 0;
        let mut len = 0;
        loop {
            if offset >= bytes.len() {
                return Err(Error::MissingTrailer);
            }
            match parse_record(bytes, offset)? {
                Record::Trailer => return Ok(Archive { bytes, end: offset, len }),
                Record::Entry(_, next) => {
                    offset = next;
                    // Cannot overflow: every entry takes at least HEADER_LEN bytes.
                    len += 1;
                }
            }
        }
    }

    /// The entries in archive order, without the trailer.
    pub fn entries(&self) -> Entries<'a> {
        Entries { bytes: self.bytes, offset: 0, end: self.end, remaining: self.len }
    }

    /// The first entry whose path equals `path`; both sides are normalised (leading `./` and `/`
    /// removed), so `"./x"`, `"/x"` and `"x"` find the same entry.
    pub fn get(&self, path: &str) -> Option<Entry<'a>> {
        let path = normalise(path);
        self.entries().find(|entry| entry.path == path)
    }

    /// Number of entries, not counting the trailer.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the archive holds nothing but the trailer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Iterator over an [`Archive`]'s entries, in archive order.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    bytes: &'a [u8],
    offset: usize,
    end: usize,
    remaining: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.offset >= self.end {
            return None;
        }
        // `Archive::new` already parsed every record before `end`, so this never fails; if it
        // somehow did, ending the iteration is the safe answer.
        match parse_record(self.bytes, self.offset).ok()? {
            Record::Entry(entry, next) => {
                self.offset = next;
                self.remaining = self.remaining.saturating_sub(1);
                Some(entry)
            }
            Record::Trailer => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// One parsed header: an entry and the offset of the next header, or the trailer.
enum Record<'a> {
    Entry(Entry<'a>, usize),
    Trailer,
}

/// Parses and checks the record whose header starts at `offset`.
fn parse_record(bytes: &[u8], offset: usize) -> Result<Record<'_>, Error> {
    let truncated = Error::Truncated { offset };
    let rest = bytes.get(offset..).ok_or(truncated)?;
    let header = parse_header(rest).map_err(|e| e.at(offset))?;
    let data_start = offset.checked_add(header.data_start).ok_or(truncated)?;
    if header.trailer {
        // The trailer's own padding must be present, so a cut archive is never mistaken for a
        // whole one; its size and data are ignored.
        return if data_start <= bytes.len() { Ok(Record::Trailer) } else { Err(truncated) };
    }
    let data_end = data_start.checked_add(header.size).ok_or(truncated)?;
    let data = bytes.get(data_start..data_end).ok_or(truncated)?;
    let next = align4(data_end).ok_or(truncated)?;
    Ok(Record::Entry(Entry { path: header.path, mode: header.mode, data }, next))
}

/// A record's header and name, read on their own: what a reader that fetches the archive piece
/// by piece (the `vfs` server, through the kernel) needs to find each file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The entry's path (normalised as [`Entry::path`]).
    pub path: &'a str,
    /// File type and permission bits.
    pub mode: u32,
    /// Where the data starts, from the header's first byte.
    pub data_start: usize,
    /// Bytes of data.
    pub size: usize,
    /// Whether this is the trailer (the archive ends here).
    pub trailer: bool,
}

impl Header<'_> {
    /// Where the next header starts, from this one's first byte.
    pub fn next(&self) -> Option<usize> {
        align4(self.data_start.checked_add(self.size)?)
    }

    /// Whether the entry is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether the entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// Parses the header and name at the start of `window` (errors name offset 0: add the
/// window's own offset with [`Error::at`]). The data need not be in the window.
pub fn parse_header(window: &[u8]) -> Result<Header<'_>, Error> {
    let truncated = Error::Truncated { offset: 0 };
    let header = window.get(..HEADER_LEN).ok_or(truncated)?;
    if header.get(..MAGIC.len()) != Some(MAGIC) {
        return Err(Error::BadMagic { offset: 0 });
    }
    let mut fields = [0u32; FIELDS.len()];
    for (index, (value, field)) in fields.iter_mut().zip(FIELDS).enumerate() {
        let start = MAGIC.len() + index * 8;
        let digits = header.get(start..start + 8).ok_or(truncated)?;
        *value = parse_hex(digits).ok_or(Error::BadNumber { offset: 0, field })?;
    }
    let name_end = HEADER_LEN.checked_add(fields[NAMESIZE] as usize).ok_or(truncated)?;
    let raw_name = window.get(HEADER_LEN..name_end).ok_or(truncated)?;
    let name = parse_name(raw_name).ok_or(Error::BadName { offset: 0 })?;
    let data_start = align4(name_end).ok_or(truncated)?;
    Ok(Header {
        path: normalise(name),
        mode: fields[MODE],
        data_start,
        size: fields[FILESIZE] as usize,
        trailer: name == TRAILER,
    })
}

impl Error {
    /// The same error, its offset moved on by `base` (for [`parse_header`] on a window).
    pub fn at(self, base: usize) -> Error {
        let add = |offset: usize| offset.saturating_add(base);
        match self {
            Error::Truncated { offset } => Error::Truncated { offset: add(offset) },
            Error::BadMagic { offset } => Error::BadMagic { offset: add(offset) },
            Error::BadNumber { offset, field } => Error::BadNumber { offset: add(offset), field },
            Error::BadName { offset } => Error::BadName { offset: add(offset) },
            Error::TooLarge { offset } => Error::TooLarge { offset: add(offset) },
            Error::MissingTrailer => Error::MissingTrailer,
        }
    }
}

/// Reads exactly 8 ASCII hex digits (either case).
fn parse_hex(digits: &[u8]) -> Option<u32> {
    if digits.len() != 8 {
        return None;
    }
    digits.iter().try_fold(0u32, |value, &digit| Some(value << 4 | char::from(digit).to_digit(16)?))
}

/// Checks a raw name (with its NUL) and returns it without the NUL.
fn parse_name(raw: &[u8]) -> Option<&str> {
    let (&nul, name) = raw.split_last()?;
    if nul != 0 || name.contains(&0) {
        return None;
    }
    let name = core::str::from_utf8(name).ok()?;
    if has_dot_dot(name) { None } else { Some(name) }
}

/// Whether any `/`-separated component is `..` (it could climb out of the extraction root).
fn has_dot_dot(path: &str) -> bool {
    path.split('/').any(|component| component == "..")
}

/// Strips leading `./` and `/` (repeatedly); `.` alone is the root, `""`.
/// `path` as entries' paths are kept: any leading `./` and `/` removed, `.` as `""` (what
/// [`Archive::get`] compares, for callers that index the entries themselves).
pub fn normalise(mut path: &str) -> &str {
    loop {
        if let Some(rest) = path.strip_prefix("./") {
            path = rest;
        } else if let Some(rest) = path.strip_prefix('/') {
            path = rest;
        } else if path == "." {
            return "";
        } else {
            return path;
        }
    }
}

/// Rounds up to a multiple of 4, or `None` on overflow.
fn align4(offset: usize) -> Option<usize> {
    offset.checked_add(3).map(|end| end & !3)
}
