//! Byte-addressed reads over a [`Disk`], and little-endian fields of the bytes read.
//!
//! Invariants: a read is only ever a read (never a write or flush); every disk request is whole
//! blocks, at most [`MAX_REQUEST`] bytes; a range past the disk's end is
//! [`DiskError::OutOfRange`], never a panic; field reads past a slice's end read as 0.

use alloc::vec;
use alloc::vec::Vec;

use crate::disk::{Disk, DiskError};

/// Bytes read from the disk in one request, at most.
const MAX_REQUEST: usize = 1 << 20;

/// Byte-addressed reads over a [`Disk`], in whole blocks of at most [`MAX_REQUEST`] bytes.
pub(super) struct Reader<'d, D: Disk> {
    disk: &'d mut D,
    block: u64,
    pub(super) bytes: u64,
    scratch: Vec<u8>,
}

impl<'d, D: Disk> Reader<'d, D> {
    pub(super) fn new(disk: &'d mut D) -> Result<Self, DiskError> {
        let block = disk.block_size();
        if !block.is_power_of_two() || block > MAX_REQUEST {
            return Err(DiskError::Invalid);
        }
        let block = block as u64;
        let bytes = disk.blocks().checked_mul(block).ok_or(DiskError::Invalid)?;
        Ok(Self { disk, block, bytes, scratch: Vec::new() })
    }

    /// Fills `out` from byte `offset` of the disk.
    pub(super) fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), DiskError> {
        let end = offset.checked_add(out.len() as u64).ok_or(DiskError::OutOfRange)?;
        if end > self.bytes {
            return Err(DiskError::OutOfRange);
        }
        if offset.is_multiple_of(self.block) && (out.len() as u64).is_multiple_of(self.block) {
            let mut block = offset / self.block;
            for piece in out.chunks_mut(MAX_REQUEST) {
                self.disk.read(block, piece)?;
                block += piece.len() as u64 / self.block;
            }
            return Ok(());
        }
        let mut at = offset;
        let mut done = 0;
        while done < out.len() {
            let first = at / self.block;
            let skip = (at - first * self.block) as usize;
            let want = (out.len() - done).min(MAX_REQUEST - skip);
            let span = (skip + want).div_ceil(self.block as usize) * self.block as usize;
            if self.scratch.len() < span {
                self.scratch = vec![0; span];
            }
            let Some(blocks) = self.scratch.get_mut(..span) else { return Err(DiskError::Invalid) };
            self.disk.read(first, blocks)?;
            let (Some(dst), Some(src)) = (out.get_mut(done..done + want), self.scratch.get(skip..skip + want)) else {
                return Err(DiskError::Invalid);
            };
            dst.copy_from_slice(src);
            done += want;
            at += want as u64;
        }
        Ok(())
    }
}

pub(super) fn le16(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u32::from(u16::from_le_bytes([x, y])),
        _ => 0,
    }
}

pub(super) fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}
