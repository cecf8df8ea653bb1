//! [`BootFs`]: the boot file system (the cpio archive the kernel was booted with) as a
//! read-only [`FileSystem`], mounted as `boot` (the root container's `/boot`).
//!
//! The index (paths, and where each file's bytes lie) is built once from the archive's headers;
//! file data is read from the kernel (`BootfsRead`) when asked, so the server holds no copy. Directories are those the archive lists and those its paths imply. Every
//! change is refused by `vfs` before it reaches here (the mount is read-only); the methods that
//! would change something answer `InvalidPath` all the same.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use vessel_fat::FsError;
use vessel_vfs_protocol::path::split_last;
use vessel_vfs_protocol::{DirEntry, Kind};

use crate::fs::{FileSystem, Meta};

/// Where the archive's bytes come from: the program reads them from the kernel (`BootfsRead`)
/// when asked, so the server keeps only the index, never a copy of the archive.
pub trait BootSource {
    /// Copies bytes from `offset` on into `buf`; how many (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize;
}

/// The archive in memory (tests).
impl BootSource for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        n
    }
}

/// Bytes of the window a header and its name are read through (a longer name is refused).
const WINDOW: usize = 4096;
/// Most entries indexed.
const MAX_ENTRIES: usize = 65536;

/// The archive's index (and where to read it), shared by every `boot` mount.
pub struct BootImage {
    source: Box<dyn BootSource>,
    /// Files by absolute path (`/a/b`), and where their bytes lie.
    files: BTreeMap<String, Range<u64>>,
    /// Directories by absolute path (`/` for the root).
    dirs: BTreeSet<String>,
}

impl BootImage {
    /// Indexes the archive `source` holds, reading its headers only; why not, if it is not a
    /// valid boot file system.
    pub fn new(source: Box<dyn BootSource>) -> Result<Rc<BootImage>, String> {
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::from([String::from("/")]);
        let mut window = alloc::vec![0u8; WINDOW];
        let mut offset = 0u64;
        for _ in 0..MAX_ENTRIES {
            let n = source.read_at(offset, &mut window);
            let header = vessel_bootfs::parse_header(&window[..n])
                .map_err(|e| alloc::format!("{}", e.at(usize::try_from(offset).unwrap_or(usize::MAX))))?;
            if header.trailer {
                return Ok(Rc::new(BootImage { source, files, dirs }));
            }
            // The entry's absolute path; every directory on the way there exists.
            let mut path = String::new();
            for name in header.path.split('/').filter(|p| !p.is_empty()) {
                if !path.is_empty() {
                    dirs.insert(path.clone());
                }
                path.push('/');
                path.push_str(name);
            }
            if !path.is_empty() {
                if header.is_dir() {
                    dirs.insert(path);
                } else if header.is_file() {
                    let start = offset + header.data_start as u64;
                    files.insert(path, start..start + header.size as u64);
                }
            }
            let next = header.next().ok_or_else(|| String::from("bootfs: an entry's size overflows"))?;
            offset = offset.checked_add(next as u64).ok_or_else(|| String::from("bootfs: offsets overflow"))?;
        }
        Err(alloc::format!("bootfs: more than {MAX_ENTRIES} entries"))
    }
}

/// The name of the entry `path` if it lies directly in directory `dir`.
fn name_in<'p>(path: &'p str, dir: &str) -> Option<&'p str> {
    split_last(path).filter(|&(parent, _)| parent == dir).map(|(_, name)| name)
}

/// A read-only view of the boot file system.
pub struct BootFs {
    image: Rc<BootImage>,
}

impl BootFs {
    /// A mount of `image`.
    pub fn new(image: Rc<BootImage>) -> BootFs {
        BootFs { image }
    }
}

impl FileSystem for BootFs {
    fn stat(&mut self, path: &str) -> Result<Meta, FsError> {
        if let Some(range) = self.image.files.get(path) {
            return Ok(Meta { kind: Kind::File, size: range.end - range.start, modified: 0 });
        }
        if self.image.dirs.contains(path) {
            return Ok(Meta { kind: Kind::Dir, size: 0, modified: 0 });
        }
        Err(FsError::NotFound)
    }

    fn read(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let Some(range) = self.image.files.get(path) else {
            return Err(if self.image.dirs.contains(path) { FsError::IsADirectory } else { FsError::NotFound });
        };
        let len = range.end - range.start;
        let start = offset.min(len);
        let n = (buf.len() as u64).min(len - start) as usize;
        let got = self.image.source.read_at(range.start + start, &mut buf[..n]);
        if got < n {
            return Err(FsError::Corrupt("the boot file system ends inside a file"));
        }
        Ok(n)
    }

    fn write(&mut self, _: &str, _: u64, _: &[u8]) -> Result<usize, FsError> {
        Err(FsError::InvalidPath)
    }

    fn truncate(&mut self, _: &str, _: u64) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn create(&mut self, _: &str) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn mkdir(&mut self, _: &str) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn remove(&mut self, _: &str) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn rename(&mut self, _: &str, _: &str) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        if !self.image.dirs.contains(path) {
            return Err(if self.image.files.contains_key(path) { FsError::NotADirectory } else { FsError::NotFound });
        }
        let dirs = self.image.dirs.iter().filter_map(|p| Some((name_in(p, path)?, Kind::Dir, 0)));
        let files = self.image.files.iter().filter_map(|(p, r)| Some((name_in(p, path)?, Kind::File, r.end - r.start)));
        Ok(dirs.chain(files).map(|(name, kind, size)| DirEntry { name: String::from(name), kind, size }).collect())
    }

    fn sync(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}
