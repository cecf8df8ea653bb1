//! Archive writer for the build tool (feature `writer`). Output is what GNU `cpio -o -H newc`
//! would accept on input: inodes count up from 1, nlink is 1 for files and 2 for directories,
//! uid, gid, mtime, device numbers and check are 0 (so images are reproducible). Paths are
//! stored normalised, and every path the reader would refuse is refused here first, so a written
//! archive always reads back.

use alloc::vec::Vec;

use crate::{Error, FIELDS, MAGIC, S_IFDIR, S_IFREG, TRAILER, has_dot_dot, normalise};

/// Builds a newc archive in memory.
#[derive(Clone, Debug)]
pub struct Writer {
    bytes: Vec<u8>,
    next_ino: u32,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    /// An empty archive (no trailer yet; [`Writer::finish`] adds it).
    pub fn new() -> Self {
        Writer { bytes: Vec::new(), next_ino: 1 }
    }

    /// Adds a directory with permissions `0o755`. The writer does not add parents itself.
    pub fn add_dir(&mut self, path: &str) -> Result<(), Error> {
        self.add(path, S_IFDIR | 0o755, 2, &[])
    }

    /// Adds a regular file; `mode` gives the permission bits (e.g. `0o755`), anything above
    /// `0o7777` is ignored.
    pub fn add_file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<(), Error> {
        self.add(path, S_IFREG | (mode & 0o7777), 1, data)
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        // GNU cpio writes the trailer with inode 0 and nlink 1.
        self.push_record(TRAILER, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, TRAILER.len() as u32 + 1, 0], &[]);
        self.bytes
    }

    fn add(&mut self, path: &str, mode: u32, nlink: u32, data: &[u8]) -> Result<(), Error> {
        let offset = self.bytes.len();
        let name = normalise(path);
        if name.is_empty() || name == TRAILER || name.contains('\0') || has_dot_dot(name) {
            return Err(Error::BadName { offset });
        }
        let too_large = Error::TooLarge { offset };
        let filesize = u32::try_from(data.len()).map_err(|_| too_large)?;
        let namesize = name.len().checked_add(1).and_then(|size| u32::try_from(size).ok()).ok_or(too_large)?;
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or(too_large)?;
        self.push_record(name, [ino, mode, 0, 0, nlink, 0, filesize, 0, 0, 0, 0, namesize, 0], data);
        Ok(())
    }

    /// Appends header, name, NUL, padding, data and padding; sizes were checked by the caller.
    fn push_record(&mut self, name: &str, fields: [u32; FIELDS.len()], data: &[u8]) {
        self.bytes.extend_from_slice(MAGIC);
        for value in fields {
            for shift in (0..8).rev() {
                let nibble = (value >> (shift * 4)) & 0xf;
                self.bytes.push(b"0123456789ABCDEF"[nibble as usize]);
            }
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    /// Zero-pads to a multiple of 4 from the archive start.
    fn pad(&mut self) {
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
    }
}
