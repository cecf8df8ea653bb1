//! [`BootFs`]: the boot file system (the cpio archive the kernel was booted with) as a
//! read-only [`FileSystem`], mounted as `boot` (the root container's `/boot`).
//!
//! The program copies the archive out of the kernel once (`BootfsRead`) and every `boot` mount
//! shares that copy. Directories are those the archive lists and those its paths imply. Every
//! change is refused by `vfs` before it reaches here (the mount is read-only); the methods that
//! would change something answer `InvalidPath` all the same.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use vessel_fat::FsError;
use vessel_vfs_protocol::{DirEntry, Kind};

use crate::fs::{FileSystem, Meta};

/// The archive and its index, shared by every `boot` mount.
pub struct BootImage {
    bytes: Vec<u8>,
    files: BTreeMap<Vec<String>, Range<usize>>,
    dirs: BTreeSet<Vec<String>>,
}

impl BootImage {
    /// Indexes the archive `bytes`; why not, if it is not a valid boot file system.
    pub fn new(bytes: Vec<u8>) -> Result<Rc<BootImage>, String> {
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::from([Vec::new()]);
        {
            let archive = vessel_bootfs::Archive::new(&bytes).map_err(|e| alloc::format!("{e}"))?;
            let base = bytes.as_ptr() as usize;
            for entry in archive.entries() {
                let parts: Vec<String> = entry.path.split('/').filter(|p| !p.is_empty()).map(String::from).collect();
                if parts.is_empty() {
                    continue;
                }
                for depth in 1..parts.len() {
                    dirs.insert(parts[..depth].to_vec());
                }
                if entry.is_dir() {
                    dirs.insert(parts);
                } else if entry.is_file() {
                    let start = entry.data.as_ptr() as usize - base;
                    files.insert(parts, start..start + entry.data.len());
                }
            }
        }
        Ok(Rc::new(BootImage { bytes, files, dirs }))
    }
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
    fn stat(&mut self, path: &[String]) -> Result<Meta, FsError> {
        if let Some(range) = self.image.files.get(path) {
            return Ok(Meta { kind: Kind::File, size: range.len() as u64, modified: 0 });
        }
        if self.image.dirs.contains(path) {
            return Ok(Meta { kind: Kind::Dir, size: 0, modified: 0 });
        }
        Err(FsError::NotFound)
    }

    fn read(&mut self, path: &[String], offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let Some(range) = self.image.files.get(path) else {
            return Err(if self.image.dirs.contains(path) { FsError::IsADirectory } else { FsError::NotFound });
        };
        let data = &self.image.bytes[range.clone()];
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write(&mut self, _: &[String], _: u64, _: &[u8]) -> Result<usize, FsError> {
        Err(FsError::InvalidPath)
    }

    fn truncate(&mut self, _: &[String], _: u64) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn create(&mut self, _: &[String]) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn mkdir(&mut self, _: &[String]) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn remove(&mut self, _: &[String]) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn rename(&mut self, _: &[String], _: &[String]) -> Result<(), FsError> {
        Err(FsError::InvalidPath)
    }

    fn read_dir(&mut self, path: &[String]) -> Result<Vec<DirEntry>, FsError> {
        if !self.image.dirs.contains(path) {
            return Err(if self.image.files.contains_key(path) { FsError::NotADirectory } else { FsError::NotFound });
        }
        let child = |p: &Vec<String>| p.len() == path.len() + 1 && p.starts_with(path);
        let dirs = self.image.dirs.iter().filter(|p| child(p)).map(|p| (p, Kind::Dir, 0));
        let files = self.image.files.iter().filter(|(p, _)| child(p)).map(|(p, r)| (p, Kind::File, r.len() as u64));
        Ok(dirs
            .chain(files)
            .filter_map(|(p, kind, size)| Some(DirEntry { name: p.last()?.clone(), kind, size }))
            .collect())
    }

    fn sync(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}
