//! What the protocol says about entries: [`Kind`], [`Stat`], directory listings
//! ([`DirEntry`], [`DirEntries`]), the mount table ([`Mount`], [`Mounts`]) and [`Whence`].
//!
//! Lists are a `u16` count then the items; the reader refuses a count above the list's limit
//! before reading an item, so a hostile count costs nothing.

use alloc::string::String;
use alloc::vec::Vec;

use vessel_protocol::{DecodeError, Field, MAX_DATA, Reader, Writer};

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// A `u8`: 1 file, 2 directory.
impl Field for Kind {
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(match self {
            Kind::File => 1,
            Kind::Dir => 2,
        });
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Kind::File),
            2 => Ok(Kind::Dir),
            _ => Err(DecodeError::BadValue),
        }
    }
}

/// What `stat` and `open` say of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// File or directory.
    pub kind: Kind,
    /// Bytes of a file (0 for a directory).
    pub size: u64,
    /// Last modification, in seconds since 1970-01-01 00:00:00 UTC (0 when the file system
    /// keeps none).
    pub modified: u64,
    /// Whether the file system it lives on is read-only.
    pub read_only: bool,
}

/// Kind, size, modified, read_only.
impl Field for Stat {
    fn put(&self, w: &mut Writer<'_>) {
        self.kind.put(w);
        w.u64(self.size);
        w.u64(self.modified);
        self.read_only.put(w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Stat { kind: Kind::take(r)?, size: r.u64()?, modified: r.u64()?, read_only: bool::take(r)? })
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name (not a path).
    pub name: String,
    /// File or directory.
    pub kind: Kind,
    /// Bytes of a file (0 for a directory).
    pub size: u64,
}

impl DirEntry {
    /// Bytes this entry takes in a message's data area (its name, the length and the scalars
    /// spill there once the registers are full).
    pub fn wire_bytes(&self) -> usize {
        self.name.len() + 2 + 1 + 8
    }
}

/// Name, kind, size.
impl Field for DirEntry {
    fn put(&self, w: &mut Writer<'_>) {
        w.str(&self.name);
        self.kind.put(w);
        w.u64(self.size);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DirEntry { name: String::from(r.str()?), kind: Kind::take(r)?, size: r.u64()? })
    }
}

/// A page of a directory listing: at most [`MAX_DIR_PAGE`] entries, and no more than fit in a
/// reply ([`DirEntries::fits`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirEntries(pub Vec<DirEntry>);

/// Most entries in one `readdir` reply.
pub const MAX_DIR_PAGE: usize = 256;

/// Bytes of a listing page a server may fill (what is left of the data area once the count and
/// `next` are written, with room to spare).
pub const DIR_PAGE_BYTES: usize = MAX_DATA - 64;

impl DirEntries {
    /// Whether `entry` still fits after `used` bytes of entries (and below [`MAX_DIR_PAGE`]).
    pub fn fits(&self, used: usize, entry: &DirEntry) -> bool {
        self.0.len() < MAX_DIR_PAGE && used + entry.wire_bytes() <= DIR_PAGE_BYTES
    }
}

impl Field for DirEntries {
    fn put(&self, w: &mut Writer<'_>) {
        put_list(&self.0, w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        take_list(r, MAX_DIR_PAGE).map(DirEntries)
    }
}

/// One mount of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Where, in the namespace (`/`, `/data`).
    pub path: String,
    /// What is mounted there, as `mount` was asked (`mem`, `boot`, `blk:blk1`, `vsf:/c.vsf`).
    pub source: String,
    /// Whether it is read-only.
    pub read_only: bool,
}

/// Path, source, read-only.
impl Field for Mount {
    fn put(&self, w: &mut Writer<'_>) {
        w.str(&self.path);
        w.str(&self.source);
        self.read_only.put(w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Mount { path: String::from(r.str()?), source: String::from(r.str()?), read_only: bool::take(r)? })
    }
}

/// A namespace's mounts (at most [`MAX_MOUNTS`], each path and source at most
/// [`MAX_MOUNT_TEXT`] bytes, so a full table fits in one reply).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mounts(pub Vec<Mount>);

/// Most mounts in one namespace.
pub const MAX_MOUNTS: usize = 16;
/// Longest mount path, and longest source, in bytes (`mount` refuses longer ones).
pub const MAX_MOUNT_TEXT: usize = 120;

const _: () = assert!(MAX_MOUNTS * (2 * (MAX_MOUNT_TEXT + 2) + 1) + 2 <= MAX_DATA);

impl Field for Mounts {
    fn put(&self, w: &mut Writer<'_>) {
        put_list(&self.0, w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        take_list(r, MAX_MOUNTS).map(Mounts)
    }
}

/// Where `seek` counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    /// From the start of the file.
    Start,
    /// From the handle's position.
    Current,
    /// From the end of the file.
    End,
}

/// A `u8`: 0 start, 1 current, 2 end.
impl Field for Whence {
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(match self {
            Whence::Start => 0,
            Whence::Current => 1,
            Whence::End => 2,
        });
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Whence::Start),
            1 => Ok(Whence::Current),
            2 => Ok(Whence::End),
            _ => Err(DecodeError::BadValue),
        }
    }
}

fn put_list<T: Field>(items: &[T], w: &mut Writer<'_>) {
    w.u16(u16::try_from(items.len()).unwrap_or(u16::MAX));
    for item in items {
        item.put(w);
    }
}

fn take_list<T: Field>(r: &mut Reader<'_>, max: usize) -> Result<Vec<T>, DecodeError> {
    let count = usize::from(r.u16()?);
    if count > max {
        return Err(DecodeError::TooLong);
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(T::take(r)?);
    }
    Ok(items)
}
