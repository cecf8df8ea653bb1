//! [`FsError`]: every way a volume operation can fail, and the mapping from hadris-fat's errors.
//!
//! The mapping keeps the distinction the `vfs` server needs to answer its clients: a request
//! that cannot be done on a healthy volume (not found, exists, not empty, bad name, no space)
//! versus a volume that is damaged ([`FsError::Corrupt`], [`FsError::BadBootSector`]) versus a
//! device that failed ([`FsError::Disk`]). hadris-fat keeps only the kind of an I/O error, so the
//! precise [`DiskError`] is recovered from the cache, which records the last one it returned.

use core::fmt;

use hadris_fat::sync::ErrorKind;

use crate::boot::BootError;
use crate::disk::DiskError;

/// Why a [`Volume`](crate::Volume) operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No entry has that name.
    NotFound,
    /// A path component, or the target of a directory operation, is a file.
    NotADirectory,
    /// A file operation named a directory.
    IsADirectory,
    /// The name is taken.
    AlreadyExists,
    /// A directory to remove (or to rename over) still has entries.
    NotEmpty,
    /// The path is not absolute or too long, or the operation cannot apply to the root (or move
    /// a directory into itself).
    InvalidPath,
    /// FAT cannot store this name (empty, longer than 255 UTF-16 units, or holding one of
    /// `"*/:<>?\|` or a control character).
    InvalidName,
    /// No free cluster left.
    NoSpace,
    /// The FAT12/16 root directory has no free entry left (its size is fixed at format time).
    DirectoryFull,
    /// FAT files hold less than 4 GiB.
    FileTooLarge,
    /// The boot sector was refused, for this reason.
    BadBootSector(&'static str),
    /// An on-disk structure is inconsistent (a cluster chain that loops or leaves the volume, a
    /// file longer than its chain, a malformed entry): what was found.
    Corrupt(&'static str),
    /// The disk failed.
    Disk(DiskError),
    /// The disk cannot be formatted (too small or too large for FAT): why.
    FormatRefused(&'static str),
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such file or directory"),
            Self::NotADirectory => f.write_str("not a directory"),
            Self::IsADirectory => f.write_str("is a directory"),
            Self::AlreadyExists => f.write_str("already exists"),
            Self::NotEmpty => f.write_str("directory not empty"),
            Self::InvalidPath => f.write_str("invalid path"),
            Self::InvalidName => f.write_str("name not allowed on FAT"),
            Self::NoSpace => f.write_str("no space left on the volume"),
            Self::DirectoryFull => f.write_str("root directory full"),
            Self::FileTooLarge => f.write_str("file too large for FAT"),
            Self::BadBootSector(why) => write!(f, "not a usable FAT volume: {why}"),
            Self::Corrupt(what) => write!(f, "corrupt file system: {what}"),
            Self::Disk(e) => write!(f, "disk: {e}"),
            Self::FormatRefused(why) => write!(f, "cannot format: {why}"),
        }
    }
}

impl core::error::Error for FsError {}

impl From<BootError> for FsError {
    fn from(e: BootError) -> Self {
        Self::BadBootSector(e.0)
    }
}

impl From<DiskError> for FsError {
    fn from(e: DiskError) -> Self {
        Self::Disk(e)
    }
}

/// Maps a hadris-fat error; `disk` is the error the cache last returned, if any.
pub(crate) fn from_fat(e: hadris_fat::Error, disk: Option<DiskError>) -> FsError {
    use hadris_fat::Error as E;
    match e {
        E::Io(io) | E::IoContext { source: io, .. } => match disk {
            Some(d) => FsError::Disk(d),
            None if io.kind() == ErrorKind::UnexpectedEof => {
                FsError::Corrupt("a structure lies past the end of the disk")
            }
            None => FsError::Corrupt("unexpected I/O error"),
        },
        E::InvalidBootSignature { .. } => FsError::BadBootSector("no boot signature"),
        E::InvalidFsInfoSignature { .. } => FsError::BadBootSector("bad FAT32 FSInfo signature"),
        E::UnsupportedFatType(what) => FsError::BadBootSector(what),
        E::CorruptFilesystem { context } => FsError::Corrupt(context),
        E::InvalidShortFilename => FsError::Corrupt("directory entry with an invalid short name"),
        E::ClusterOutOfBounds { .. } => FsError::Corrupt("cluster number outside the volume"),
        E::BadCluster { .. } => FsError::Corrupt("cluster chain runs into a bad cluster"),
        E::UnexpectedEndOfChain { .. } => FsError::Corrupt("cluster chain ends before the file does"),
        E::ClusterLoop { .. } => FsError::Corrupt("cluster chain loops"),
        E::NotAFile => FsError::IsADirectory,
        E::NotADirectory => FsError::NotADirectory,
        E::EntryNotFound => FsError::NotFound,
        E::InvalidPath => FsError::InvalidPath,
        E::NoFreeSpace => FsError::NoSpace,
        E::DirectoryFull => FsError::DirectoryFull,
        E::InvalidFilename => FsError::InvalidName,
        E::AlreadyExists => FsError::AlreadyExists,
        E::DirectoryNotEmpty => FsError::NotEmpty,
        E::VolumeTooSmall { .. } => FsError::FormatRefused("disk too small for FAT"),
        E::VolumeTooLarge { .. } => FsError::FormatRefused("disk too large for FAT"),
        E::InvalidFormatOption { reason, .. } => FsError::FormatRefused(reason),
        E::StaleEntry => FsError::Corrupt("directory entry changed during the operation"),
        // Writer conflicts and attribute changes cannot arise from this crate's calls; a
        // feature enabled elsewhere in the build may add variants too.
        _ => FsError::Corrupt("unexpected file system error"),
    }
}
