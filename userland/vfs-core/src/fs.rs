//! [`FileSystem`]: what `vfs` needs of a mounted file system, by path. Every file system `vfs`
//! serves implements it: the in-memory one ([`crate::memfs::MemFs`]) and FAT
//! ([`crate::fat::FatFs`], on a block device or a virtual storage file).
//!
//! A path is an absolute path from the file system's root, as text: `/` for the root, `/a/b`
//! below it (the form the FAT layer takes, so it is handed on as it is). `vfs` has resolved it
//! already: no `.`, `..` or empty components, no trailing `/`, no component longer than
//! `vessel_vfs_protocol::path::MAX_NAME` bytes or holding NUL. It is borrowed from the request
//! or the handle, never copied to make the call; `vessel_vfs_protocol::path::components` and
//! `split_last` take it apart. Failures are [`FsError`]s, shared with the FAT layer.

use alloc::string::String;
use alloc::vec::Vec;

pub use vessel_fat::{FsError, Sink};

/// Bytes of the bounce buffer [`FileSystem::read_to`] reads through by default.
const BOUNCE: usize = 64 * 1024;
use vessel_vfs_protocol::path::Path;
use vessel_vfs_protocol::{DirEntry, Kind};

/// What [`FileSystem::stat`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// File or directory.
    pub kind: Kind,
    /// Bytes of a file (0 for a directory).
    pub size: u64,
    /// Last modification, in seconds since 1970-01-01 UTC (0 if the file system keeps none).
    pub modified: u64,
}

/// A mounted file system, driven by path.
pub trait FileSystem {
    /// What `path` names.
    fn stat(&mut self, path: &str) -> Result<Meta, FsError>;
    /// Reads from byte `offset` of the file into `buf`; returns how many bytes (0 at or past
    /// the end).
    fn read(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;
    /// Hands up to `len` bytes from byte `offset` of the file to `sink`, in order (see
    /// [`Sink`]: what it is given stays as it is until it is told to flush, or until the caller,
    /// which flushes it right after, is done with the read); returns how many it took: 0 at or
    /// past the end, fewer than asked at the end or when the sink ended the read. File systems
    /// that hold the bytes in memory hand over their own; this default reads through a
    /// bounce buffer.
    fn read_to(&mut self, path: &str, offset: u64, len: usize, sink: &mut dyn Sink) -> Result<usize, FsError> {
        let mut bounce = alloc::vec![0; len.min(BOUNCE)];
        let mut done = 0;
        while done < len {
            let want = (len - done).min(bounce.len());
            let n = self.read(path, offset + done as u64, &mut bounce[..want])?;
            if n == 0 || !sink.take(&bounce[..n]) || !sink.flush() {
                break;
            }
            done += n;
        }
        Ok(done)
    }
    /// Writes `data` at byte `offset` of the file, growing it (a gap reads as zeros); returns
    /// how many bytes were written.
    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<usize, FsError>;
    /// Sets the file's length (cutting it, or growing it with zeros).
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), FsError>;
    /// Creates an empty file (`AlreadyExists` if the name is taken, `NotFound` if the parent
    /// is missing).
    fn create(&mut self, path: &str) -> Result<(), FsError>;
    /// Creates an empty directory (errors as `create`).
    fn mkdir(&mut self, path: &str) -> Result<(), FsError>;
    /// Removes a file or an empty directory (`NotEmpty` otherwise; `InvalidPath` for the root).
    fn remove(&mut self, path: &str) -> Result<(), FsError>;
    /// Moves `from` to `to`, replacing a file or an empty directory there (`InvalidPath` for
    /// the root or a directory into itself).
    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError>;
    /// The entries of a directory, in the file system's order (no `.` or `..`).
    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError>;
    /// Writes everything held in memory to the disk and flushes it.
    fn sync(&mut self) -> Result<(), FsError>;
    /// `path` spelled as the file system stores it, so that two spellings of one entry (FAT
    /// matches names ignoring case, and by their 8.3 aliases) compare equal. Fails for a path
    /// that names nothing. The default: names are matched exactly, so a path is its own.
    fn canonical(&mut self, path: &str) -> Result<Path, FsError> {
        self.stat(path).map(|_| Path::from_absolute(String::from(path)))
    }
}
