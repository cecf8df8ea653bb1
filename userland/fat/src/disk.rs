//! The block device under a file system: the [`Disk`] trait, its error, and [`MemDisk`].
//!
//! A disk is `blocks()` blocks of `block_size()` bytes, addressed by block number from 0. Every
//! transfer is a whole number of blocks starting at a block boundary; the [`Cache`](crate::Cache)
//! above it turns byte-addressed access into such transfers. Invariants an implementation keeps:
//!
//! - `block_size()` is a power of two from 512 to 4096 (so a 4 KiB cache page holds a whole
//!   number of blocks) and never changes, nor does `blocks()`;
//! - a request that reaches past `blocks()` fails with [`DiskError::OutOfRange`] and transfers
//!   nothing; a buffer that is not a whole number of blocks fails with [`DiskError::Invalid`];
//! - `write` may stay in a volatile write cache of the device until `flush` returns.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Why a disk (or the [`Cache`](crate::Cache) over it) refused or failed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The device failed the request (media, transport or controller error).
    Device,
    /// The request reaches past the last block (through the cache: past the end of the disk).
    OutOfRange,
    /// The request is malformed: a buffer that is not a whole number of blocks, a seek before
    /// the start of the disk, or a block size the cache cannot use.
    Invalid,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Device => "device error",
            Self::OutOfRange => "past the end of the disk",
            Self::Invalid => "malformed disk request",
        })
    }
}

impl core::error::Error for DiskError {}

impl embedded_io::Error for DiskError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Self::Device => embedded_io::ErrorKind::Other,
            Self::OutOfRange | Self::Invalid => embedded_io::ErrorKind::InvalidInput,
        }
    }
}

/// A block device: what the `vfs` server's virtio-blk client (or a RAM disk) provides.
pub trait Disk {
    /// Bytes per block: a power of two from 512 to 4096.
    fn block_size(&self) -> usize;
    /// Number of blocks.
    fn blocks(&self) -> u64;
    /// Reads `buf.len() / block_size()` blocks starting at block `first_block` into `buf`.
    fn read(&mut self, first_block: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Writes `data` (a whole number of blocks) starting at block `first_block`.
    fn write(&mut self, first_block: u64, data: &[u8]) -> Result<(), DiskError>;
    /// Returns once every completed write is on stable storage.
    fn flush(&mut self) -> Result<(), DiskError>;
}

/// Checks a request against a disk's geometry and returns its byte range.
pub(crate) fn request_range(
    block_size: usize,
    blocks: u64,
    first_block: u64,
    len: usize,
) -> Result<core::ops::Range<usize>, DiskError> {
    if block_size == 0 || !len.is_multiple_of(block_size) {
        return Err(DiskError::Invalid);
    }
    let count = (len / block_size) as u64;
    let end_block = first_block.checked_add(count).ok_or(DiskError::OutOfRange)?;
    if end_block > blocks {
        return Err(DiskError::OutOfRange);
    }
    let start =
        usize::try_from(first_block).ok().and_then(|b| b.checked_mul(block_size)).ok_or(DiskError::OutOfRange)?;
    let end = start.checked_add(len).ok_or(DiskError::OutOfRange)?;
    Ok(start..end)
}

/// A disk held in memory: for tests, and for images built or inspected in RAM.
#[derive(Clone, Debug)]
pub struct MemDisk {
    bytes: Vec<u8>,
    block_size: usize,
}

impl MemDisk {
    /// A zeroed disk of `blocks` blocks of `block_size` bytes (a power of two, 512 to 4096).
    pub fn new(block_size: usize, blocks: u64) -> Result<Self, DiskError> {
        let len = usize::try_from(blocks).ok().and_then(|b| b.checked_mul(block_size)).ok_or(DiskError::Invalid)?;
        Self::from_bytes(vec![0; len], block_size)
    }

    /// A disk holding `bytes` (an image), whose length must be a whole number of blocks.
    pub fn from_bytes(bytes: Vec<u8>, block_size: usize) -> Result<Self, DiskError> {
        if !valid_block_size(block_size) || !bytes.len().is_multiple_of(block_size) {
            return Err(DiskError::Invalid);
        }
        Ok(Self { bytes, block_size })
    }

    /// The disk's contents.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The disk's contents, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Whether the cache can work over blocks of this size.
pub(crate) fn valid_block_size(block_size: usize) -> bool {
    block_size.is_power_of_two() && (512..=4096).contains(&block_size)
}

impl Disk for MemDisk {
    fn block_size(&self) -> usize {
        self.block_size
    }

    fn blocks(&self) -> u64 {
        (self.bytes.len() / self.block_size) as u64
    }

    fn read(&mut self, first_block: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let range = request_range(self.block_size, self.blocks(), first_block, buf.len())?;
        let src = self.bytes.get(range).ok_or(DiskError::OutOfRange)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, first_block: u64, data: &[u8]) -> Result<(), DiskError> {
        let range = request_range(self.block_size, self.blocks(), first_block, data.len())?;
        let dst = self.bytes.get_mut(range).ok_or(DiskError::OutOfRange)?;
        dst.copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_disk_checks_requests() {
        let mut disk = MemDisk::new(512, 4).expect("disk");
        assert_eq!(disk.blocks(), 4);
        assert_eq!(disk.write(3, &[7; 512]), Ok(()));
        assert_eq!(disk.write(3, &[7; 1024]), Err(DiskError::OutOfRange));
        assert_eq!(disk.write(u64::MAX, &[7; 512]), Err(DiskError::OutOfRange));
        assert_eq!(disk.write(0, &[7; 100]), Err(DiskError::Invalid));
        let mut buf = [0; 512];
        assert_eq!(disk.read(3, &mut buf), Ok(()));
        assert_eq!(buf, [7; 512]);
        assert_eq!(disk.read(4, &mut buf), Err(DiskError::OutOfRange));
        assert!(MemDisk::from_bytes(vec![0; 1000], 512).is_err());
        assert!(MemDisk::from_bytes(vec![0; 1024], 256).is_err());
    }
}
