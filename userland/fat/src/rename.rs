//! Moving a file from one directory entry to another so that a stop at any moment leaves either
//! the old name or the new one owning the file's clusters, never both (FAT32 only).
//!
//! FAT has no atomic rename: the new entry and the old one lie in different blocks (often in
//! different directories), so some moment has one written and not the other. Written new
//! first, both entries own the clusters; `fsck.fat` calls that files sharing clusters, and a
//! driver that later deletes either name frees clusters the other still uses. Written old
//! first, the file is lost. So a move goes through an *intent*, a record of the move kept in
//! the reserved bytes of FAT32's FSInfo sector (bytes 4 to 483, which the FAT specification
//! reserves and `fsck.fat` ignores), and every step is flushed before the next:
//!
//! 1. the intent: the old entry's 32 bytes, both directories and the new 8.3 name;
//! 2. the new entry, with its long name, as an empty file (first cluster 0, size 0), and with
//!    it everything changed before: a stop leaves an extra empty file, and the intent;
//! 3. the old entry marked deleted, its 8.3 slot first, then its long-name slots: a stop leaves
//!    the file's clusters lost (owned by no entry; `fsck.fat` frees them), and the intent;
//! 4. the new entry given the old one's first cluster, size, attributes and times;
//! 5. the intent cleared.
//!
//! Mounting a volume whose intent is set runs steps 3 to 5 (the new entry is on the disk), or
//! only 5 (it is not, so nothing else happened). When both entries lie in blocks that one disk
//! request writes (a move within a directory, usually), the move is made in the cache only,
//! without an intent, and reaches the disk whole with the next sync. A stop therefore loses no file when the volume
//! is mounted here again; under another system the file of a move stopped between steps 3 and
//! 4 comes back only as lost clusters. Directories move in one step as before (see
//! `Volume::making_clusters`), and so does everything on FAT12/16, which have no FSInfo.

use alloc::vec::Vec;
use core::cell::Cell;

use hadris_fat::sync::{FatDir, FileEntry};

use crate::boot::Root;
use crate::disk::Disk;
use crate::error::FsError;
use crate::volume::{DirId, MAX_DIR_ENTRIES, Stream, Volume};

/// The intent's first bytes.
const MAGIC: [u8; 8] = *b"VSLMOVE1";
/// Where the intent starts in the FSInfo sector (after the lead signature).
const INTENT_OFFSET: u64 = 4;
/// The intent's length: magic, two directory clusters, the old entry, the new 8.3 name and a
/// checksum.
const INTENT_LEN: usize = 8 + 4 + 4 + 32 + 11 + 4;
/// A deleted slot's first byte.
const DELETED: u8 = 0xE5;
/// A long-name slot's attribute byte.
const LONG_NAME: u8 = 0x0F;
/// The volume-label attribute bit.
const LABEL: u8 = 0x08;

/// A move in progress, as recorded in FSInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Intent {
    /// First cluster of the directory holding the old entry.
    from_dir: u32,
    /// First cluster of the directory holding the new entry.
    to_dir: u32,
    /// The old entry's 32 bytes as they were.
    entry: [u8; 32],
    /// The new entry's 8.3 name.
    to_name: [u8; 11],
}

impl Intent {
    fn encode(&self) -> [u8; INTENT_LEN] {
        let mut out = [0u8; INTENT_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&self.from_dir.to_le_bytes());
        out[12..16].copy_from_slice(&self.to_dir.to_le_bytes());
        out[16..48].copy_from_slice(&self.entry);
        out[48..59].copy_from_slice(&self.to_name);
        let sum = checksum(&out[..59]);
        out[59..].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// The intent in `bytes`, or `None` if they hold none (zeroes, or anything whose magic or
    /// checksum does not match: another system's use of reserved bytes is not ours to act on).
    fn decode(bytes: &[u8; INTENT_LEN]) -> Option<Self> {
        if bytes[..8] != MAGIC || bytes[59..] != checksum(&bytes[..59]).to_le_bytes() {
            return None;
        }
        let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let mut entry = [0u8; 32];
        entry.copy_from_slice(&bytes[16..48]);
        let mut to_name = [0u8; 11];
        to_name.copy_from_slice(&bytes[48..59]);
        Some(Self { from_dir: word(8), to_dir: word(12), entry, to_name })
    }
}

/// FNV-1a over `bytes`.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811C_9DC5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The checksum a long-name slot holds of its 8.3 name.
fn name_checksum(name: &[u8]) -> u8 {
    name.iter().fold(0u8, |sum, &c| sum.rotate_right(1).wrapping_add(c))
}

/// An entry's first cluster, from its 32 bytes.
fn first_cluster(raw: &[u8; 32]) -> u32 {
    u32::from(u16::from_le_bytes([raw[20], raw[21]])) << 16 | u32::from(u16::from_le_bytes([raw[26], raw[27]]))
}

/// An 8.3 entry found on the disk: where its slot is, its bytes, and where the slots of its
/// long name are, nearest first.
struct Slots {
    at: u64,
    raw: [u8; 32],
    long_name: Vec<u64>,
}

impl<D: Disk> Volume<D> {
    /// Moves the file `entry` of the directory `from` to `name` in the directory `dir` (whose
    /// id is `to`), where no entry has that name, through an intent (module docs). `Ok(false)`
    /// without doing anything if the volume keeps no FSInfo.
    pub(crate) fn move_file(
        &self,
        entry: &FileEntry,
        from: DirId,
        dir: &FatDir<'_, Stream<D>>,
        to: DirId,
        name: &str,
    ) -> Result<bool, FsError> {
        let (Some(_), Some(from_dir), Some(to_dir)) = (self.fsinfo_at, self.dir_cluster(from), self.dir_cluster(to))
        else {
            return Ok(false);
        };
        let short = entry.short_name().raw_bytes();
        let old = self.find_entry(from_dir, &short)?.ok_or(FsError::NotFound)?;
        let block = self.block_size()?;
        // 1 and 2: the new entry, empty, made in the cache; then, unless both entries reach
        // the disk in one request, the intent goes out before the new entry can.
        let created = Cell::new(None);
        let mut made = None;
        self.making_clusters_after(
            to,
            || {
                let entry = self.fs.create_file(dir, name).map_err(|e| self.fat_error(e))?;
                created.set(Some(entry.short_name().raw_bytes()));
                Ok(None)
            },
            || {
                let to_name = created.get().ok_or(FsError::NotFound)?;
                let intent = Intent { from_dir, to_dir, entry: old.raw, to_name };
                let new = self.find_entry(to_dir, &to_name)?.ok_or(FsError::NotFound)?;
                let mut blocks: Vec<u64> = [old.at, new.at]
                    .into_iter()
                    .chain(old.long_name.iter().copied())
                    .chain(new.long_name.iter().copied())
                    .map(|at| at / block)
                    .collect();
                blocks.sort_unstable();
                blocks.dedup();
                let together = self.one_request(&blocks)?;
                if !together {
                    self.write_intent(Some(&intent))?;
                }
                made = Some((intent, new, together));
                Ok(())
            },
        )?;
        let (intent, new, together) = made.ok_or(FsError::NotFound)?;
        if together {
            // Both entries go to the disk in one request, whenever that is.
            self.delete_slots(&old, false)?;
            return self.link(&new, &intent, false).map(|()| true);
        }
        // The new entry, and everything before it, on the disk; then 3 to 5, as a mount would
        // run them.
        self.sync_fat()?;
        self.with_cache(|c| c.sync())?;
        self.finish_move(&intent)?;
        Ok(true)
    }

    /// Finishes a move a stop interrupted, if FSInfo records one: called when mounting.
    pub(crate) fn finish_interrupted_move(&self) -> Result<(), FsError> {
        let Some(at) = self.fsinfo_at else { return Ok(()) };
        let mut bytes = [0u8; INTENT_LEN];
        self.with_cache(|c| c.read_at(at + INTENT_OFFSET, &mut bytes))?;
        match Intent::decode(&bytes) {
            Some(intent) => self.finish_move(&intent),
            None => Ok(()),
        }
    }

    /// Steps 3 to 5 of a move whose intent is on the disk, each flushed; only 5 if the new entry
    /// is not on the disk. Steps already done are not repeated.
    fn finish_move(&self, intent: &Intent) -> Result<(), FsError> {
        let cluster = first_cluster(&intent.entry);
        if let Some(new) = self.find_entry(intent.to_dir, &intent.to_name)? {
            let mut old_name = [0u8; 11];
            old_name.copy_from_slice(&intent.entry[..11]);
            if let Some(old) = self.find_entry(intent.from_dir, &old_name)?
                && first_cluster(&old.raw) == cluster
            {
                // 3.
                self.delete_slots(&old, true)?;
            }
            // 4.
            self.link(&new, intent, true)?;
        }
        // 5.
        self.write_intent(None)
    }

    /// Marks an entry's slots deleted, its 8.3 slot first; if `flush`, writes each block as
    /// it is done and flushes it.
    fn delete_slots(&self, entry: &Slots, flush: bool) -> Result<(), FsError> {
        let block = self.block_size()?;
        let mut blocks = Vec::new();
        for at in core::iter::once(entry.at).chain(entry.long_name.iter().copied()) {
            self.with_cache(|c| c.write_at(at, &[DELETED]))?;
            if !blocks.contains(&(at / block)) {
                blocks.push(at / block);
            }
        }
        if flush {
            self.with_cache(|c| blocks.iter().try_for_each(|&b| c.write_blocks(&[b])))?;
        }
        Ok(())
    }

    /// Gives the new entry, if still empty, the moved file: the old entry's bytes with the new
    /// 8.3 name and case bits; if `flush`, writes its block and flushes it.
    fn link(&self, new: &Slots, intent: &Intent, flush: bool) -> Result<(), FsError> {
        let mut linked = intent.entry;
        linked[..11].copy_from_slice(&new.raw[..11]);
        linked[12] = new.raw[12];
        let empty = first_cluster(&new.raw) == 0 && new.raw[28..32] == [0; 4];
        if !empty || new.raw == linked {
            return Ok(());
        }
        let block = self.block_size()?;
        self.with_cache(|c| {
            c.write_at(new.at, &linked)?;
            if flush { c.write_blocks(&[new.at / block]) } else { Ok(()) }
        })
    }

    /// Writes the intent (or zeroes) into FSInfo and flushes it.
    fn write_intent(&self, intent: Option<&Intent>) -> Result<(), FsError> {
        let at = self.fsinfo_at.ok_or(FsError::NotFound)? + INTENT_OFFSET;
        let bytes = intent.map_or([0u8; INTENT_LEN], Intent::encode);
        let block = self.block_size()?;
        self.with_cache(|c| {
            c.write_at(at, &bytes)?;
            c.write_blocks(&[at / block])
        })
    }

    /// The first cluster of a directory's chain (`None` for a FAT12/16 root).
    fn dir_cluster(&self, dir: DirId) -> Option<u32> {
        match (dir, self.geometry.root) {
            (DirId::Cluster(first), _) => u32::try_from(first).ok(),
            (DirId::Root, Root::Chain(first)) => Some(first),
            (DirId::Root, _) => None,
        }
    }

    /// The live 8.3 entry called `name` in the directory starting at `first`, read from the
    /// disk's bytes (through the cache), with its long-name slots. The walk is bounded as
    /// every other: at most FAT's 2 MiB of entries, along a chain of data clusters.
    fn find_entry(&self, first: u32, name: &[u8]) -> Result<Option<Slots>, FsError> {
        let cluster_size = u64::from(self.geometry.cluster_size);
        let limit = (MAX_DIR_ENTRIES as u64 * 32).div_ceil(cluster_size);
        let sum = name_checksum(name);
        let mut stream = self.stream();
        let mut cluster = u64::from(first);
        let mut bytes = alloc::vec![0u8; cluster_size as usize];
        let mut long_name: Vec<u64> = Vec::new();
        for _ in 0..limit {
            let start =
                self.geometry.cluster_offset(cluster).ok_or(FsError::Corrupt("directory chain leaves the volume"))?;
            self.with_cache(|c| c.read_at(start, &mut bytes))?;
            for (i, slot) in bytes.chunks_exact(32).enumerate() {
                let at = start + i as u64 * 32;
                match slot[0] {
                    0 => return Ok(None),
                    DELETED => long_name.clear(),
                    _ if slot[11] == LONG_NAME => {
                        // A name's last part comes first on the disk and starts its slots.
                        if slot[0] & 0x40 != 0 || slot[13] != sum {
                            long_name.clear();
                        }
                        if slot[13] == sum {
                            long_name.push(at);
                        }
                    }
                    _ if slot[11] & LABEL == 0 && &slot[..11] == name => {
                        let mut raw = [0u8; 32];
                        raw.copy_from_slice(slot);
                        long_name.reverse();
                        return Ok(Some(Slots { at, raw, long_name }));
                    }
                    _ => long_name.clear(),
                }
            }
            match self.fs.fat().next_cluster(&mut stream, cluster as usize) {
                Ok(Some(next)) if self.geometry.is_data_cluster(next as u64) => cluster = next as u64,
                Ok(Some(_)) => return Err(FsError::Corrupt("directory chain leaves the volume")),
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.fat_error(e)),
            }
        }
        Err(FsError::Corrupt("directory larger than 2 MiB (or its cluster chain loops)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intent_reads_back_and_damage_reads_as_none() {
        let intent = Intent { from_dir: 2, to_dir: 0x0123_4567, entry: [7; 32], to_name: *b"NEW     TXT" };
        let bytes = intent.encode();
        assert_eq!(Intent::decode(&bytes), Some(intent));
        assert_eq!(Intent::decode(&[0; INTENT_LEN]), None);
        for i in 0..INTENT_LEN {
            let mut bad = bytes;
            bad[i] ^= 1;
            assert_eq!(Intent::decode(&bad), None, "byte {i} flipped");
        }
    }

    #[test]
    fn long_name_checksum_matches_the_specification() {
        // The FAT specification's algorithm: rotate right one bit, add the next byte.
        let name = b"FILENA~1TXT";
        let mut sum = 0u8;
        for &c in name {
            sum = (if sum & 1 != 0 { 0x80 } else { 0 }) + (sum >> 1);
            sum = sum.wrapping_add(c);
        }
        assert_eq!(name_checksum(name), sum);
    }
}
