//! Moving a file or directory from one directory entry to another so that a stop at any moment
//! leaves either the old name or the new one owning its clusters, never both (FAT32 only).
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
//! 4. a directory moving to another parent gets its `..` pointed there (while nothing reaches
//!    it), then the new entry is given the old one's first cluster, size, attributes and times;
//! 5. the intent cleared.
//!
//! Mounting a volume whose intent is set runs steps 3 to 5 (the new entry is on the disk), or
//! only 5 (it is not, so nothing else happened). When both entries lie in blocks that one disk
//! request writes (a move within a directory, usually), the move is made in the cache only,
//! without an intent, and reaches the disk whole with the next sync. A stop therefore loses no file when the volume
//! is mounted here again; under another system the file of a move stopped between steps 3 and
//! 4 comes back only as lost clusters (a directory, with everything in it). On FAT12/16, which
//! have no FSInfo, an entry moves in one step, new entry first (see `Volume::making_clusters`):
//! a stop there can leave both entries owning the clusters.

use alloc::vec::Vec;
use core::cell::Cell;

use hadris_fat::sync::{FatDir, FileEntry};

use crate::boot::Root;
use crate::disk::Disk;
use crate::error::FsError;
use crate::volume::{DirId, Stream, Volume};

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
/// The directory attribute bit.
const DIRECTORY: u8 = 0x10;

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
pub(crate) struct Slots {
    pub(crate) at: u64,
    raw: [u8; 32],
    long_name: Vec<u64>,
}

impl<D: Disk> Volume<D> {
    /// Moves `entry` (a file, or a directory not above `dir`) of the directory `from` to `name`
    /// in the directory `dir` (whose id is `to`), where no entry has that name, through an
    /// intent (module docs). `Ok(false)` without doing anything if the volume keeps no FSInfo.
    pub(crate) fn move_through_intent(
        &self,
        entry: &FileEntry,
        from: DirId,
        dir: &FatDir<'_, Stream<D>>,
        to: DirId,
        name: &str,
    ) -> Result<bool, FsError> {
        let cluster = |dir| self.first_dir_cluster(dir).and_then(|c| u32::try_from(c).ok());
        let (Some(_), Some(from_dir), Some(to_dir)) = (self.fsinfo_at, cluster(from), cluster(to)) else {
            return Ok(false);
        };
        let short = entry.short_name().raw_bytes();
        let old = self.find_entry(from, &short)?.ok_or(FsError::NotFound)?;
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
                let new = self.find_entry(to, &to_name)?.ok_or(FsError::NotFound)?;
                let mut blocks: Vec<u64> = [old.at, new.at]
                    .into_iter()
                    .chain(self.dotdot(&intent))
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
            self.point_dotdot(&intent, false)?;
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
        let dir = |first: u32| {
            let first = u64::from(first);
            let inside = self.geometry.is_data_cluster(first);
            inside
                .then_some(DirId::Cluster(first))
                .ok_or(FsError::Corrupt("FSInfo records a move from or to a directory outside the volume"))
        };
        if let Some(new) = self.find_entry(dir(intent.to_dir)?, &intent.to_name)? {
            let mut old_name = [0u8; 11];
            old_name.copy_from_slice(&intent.entry[..11]);
            let from = dir(intent.from_dir)?;
            let moving = match self.find_entry(from, &old_name)? {
                // 3.
                Some(old) if old.raw == intent.entry => self.delete_slots(&old, true).map(|()| true)?,
                // Done before the stop, or (an intent that does not describe this volume)
                // never: nothing is linked to clusters no deleted entry owned.
                _ => self.holds_deleted(from, &intent.entry)?,
            };
            // 4: a directory's `..` first, while nothing reaches it.
            if moving && self.in_use(cluster)? {
                self.point_dotdot(intent, true)?;
                self.link(&new, intent, true)?;
            }
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

    /// Where the `..` entry of a directory moving to another parent lies (the second slot of
    /// its first cluster); `None` for a file or a move within a directory.
    fn dotdot(&self, intent: &Intent) -> Option<u64> {
        let directory = intent.entry[11] & DIRECTORY != 0;
        let first = u64::from(first_cluster(&intent.entry));
        if !directory || intent.from_dir == intent.to_dir {
            return None;
        }
        self.geometry.cluster_offset(first).map(|at| at + 32)
    }

    /// Points a moved directory's `..` at its new parent (cluster 0 for FAT32's root, as the
    /// specification says); if `flush`, writes its block and flushes it.
    fn point_dotdot(&self, intent: &Intent, flush: bool) -> Result<(), FsError> {
        let Some(at) = self.dotdot(intent) else { return Ok(()) };
        let parent = match self.geometry.root {
            Root::Chain(root) if root == intent.to_dir => 0,
            _ => intent.to_dir,
        };
        let high = ((parent >> 16) as u16).to_le_bytes();
        let low = (parent as u16).to_le_bytes();
        let block = self.block_size()?;
        self.with_cache(|c| {
            c.write_at(at + 20, &high)?;
            c.write_at(at + 26, &low)?;
            if flush { c.write_blocks(&[at / block]) } else { Ok(()) }
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

    /// The live 8.3 entry called `name` (as hadris-fat gives it: a leading 0xE5 is stored as
    /// 0x05) in the directory `dir`, read from the disk's bytes (through the cache), with its
    /// long-name slots.
    pub(crate) fn find_entry(&self, dir: DirId, name: &[u8; 11]) -> Result<Option<Slots>, FsError> {
        let mut name = *name;
        if name[0] == DELETED {
            name[0] = 0x05;
        }
        let sum = name_checksum(&name);
        let mut long_name: Vec<u64> = Vec::new();
        self.scan(dir, |at, slot| {
            match slot[0] {
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
                _ if slot[11] & LABEL == 0 && slot[..11] == name => {
                    let mut long_name = core::mem::take(&mut long_name);
                    long_name.reverse();
                    return Some(Slots { at, raw: *slot, long_name });
                }
                _ => long_name.clear(),
            }
            None
        })
    }

    /// Whether the directory `dir` holds `raw` as a step 3 of a move left it: marked deleted,
    /// every other byte as it was.
    fn holds_deleted(&self, dir: DirId, raw: &[u8; 32]) -> Result<bool, FsError> {
        let found = self.scan(dir, |_, slot| (slot[0] == DELETED && slot[1..] == raw[1..]).then_some(()))?;
        Ok(found.is_some())
    }

    /// Calls `visit` with each 32-byte slot of the directory `dir` and its disk offset, up to
    /// the first never-used slot, until it returns something. The walk is bounded as every
    /// other: along the directory's chain of data clusters, to its end.
    fn scan<T>(&self, dir: DirId, mut visit: impl FnMut(u64, &[u8; 32]) -> Option<T>) -> Result<Option<T>, FsError> {
        let pieces = match (dir, self.geometry.root) {
            (DirId::Root, Root::Fixed { start, size }) => alloc::vec![(start, size)],
            (DirId::Root, Root::Chain(first)) => self.dir_pieces(u64::from(first))?,
            (DirId::Cluster(first), _) => self.dir_pieces(first)?,
        };
        let mut slot = [0u8; 32];
        for (start, size) in pieces {
            for at in (start..start + size).step_by(32) {
                if self.with_cache(|c| c.read_at(at, &mut slot))? < 32 {
                    return Err(FsError::Corrupt("a directory lies past the end of the disk"));
                }
                if slot[0] == 0 {
                    return Ok(None);
                }
                if let Some(found) = visit(at, &slot) {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// Whether `cluster` is marked in use in the first FAT (0, no cluster, counts as in use).
    fn in_use(&self, cluster: u32) -> Result<bool, FsError> {
        if cluster == 0 {
            return Ok(true);
        }
        if !self.geometry.is_data_cluster(u64::from(cluster)) {
            return Ok(false);
        }
        let Some((at, _)) = self.geometry.fat_entry_spans(u64::from(cluster)).next() else { return Ok(false) };
        let mut entry = [0u8; 4];
        self.with_cache(|c| c.read_at(at, &mut entry))?;
        Ok(u32::from_le_bytes(entry) & 0x0FFF_FFFF != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cache, MemDisk};

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

    /// A volume whose FSInfo records a move `intent`, after `prepare` ran on it.
    fn recorded(intent: &Intent, prepare: impl FnOnce(&mut Volume<MemDisk>)) -> Vec<u8> {
        let disk = MemDisk::new(512, 80 * 2048).expect("disk");
        let mut vol = Volume::format(Cache::new(disk, 64).expect("cache"), "", None).expect("format");
        prepare(&mut vol);
        vol.sync().expect("sync");
        let at = (vol.fsinfo_at.expect("FAT32") + INTENT_OFFSET) as usize;
        let mut image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
        image[at..at + INTENT_LEN].copy_from_slice(&intent.encode());
        image
    }

    fn mount(image: Vec<u8>) -> Result<Volume<MemDisk>, FsError> {
        Volume::open(Cache::new(MemDisk::from_bytes(image, 512).expect("image"), 64).expect("cache"), None)
    }

    /// Hostile intents: one naming a directory outside the volume refuses the mount, saying
    /// why; one naming entries that are not there changes nothing and is cleared; damaged bytes
    /// are no intent at all.
    #[test]
    fn recorded_moves_that_do_not_fit_the_volume_change_nothing() {
        let outside = Intent { from_dir: 2, to_dir: 0x0FFF_FFF0, entry: [0x41; 32], to_name: *b"B          " };
        assert_eq!(
            mount(recorded(&outside, |_| {})).err(),
            Some(FsError::Corrupt("FSInfo records a move from or to a directory outside the volume"))
        );
        let mut entry = [0u8; 32];
        entry[..11].copy_from_slice(b"A       TXT");
        entry[26] = 9;
        entry[28] = 100;
        let absent = Intent { from_dir: 2, to_dir: 2, entry, to_name: *b"KEEP    TXT" };
        let image = recorded(&absent, |v| {
            v.create("/keep.txt").expect("create");
            v.create("/a.txt").expect("create");
            assert_eq!(v.write("/a.txt", 0, b"contents"), Ok(8));
        });
        let vol = mount(image).expect("mount");
        assert_eq!(vol.stat("/keep.txt").map(|m| m.size), Ok(0), "an entry the intent names is linked");
        assert_eq!(vol.stat("/a.txt").map(|m| m.size), Ok(8));
        let at = vol.fsinfo_at.expect("FAT32") + INTENT_OFFSET;
        let mut bytes = [0u8; INTENT_LEN];
        vol.with_cache(|c| c.read_at(at, &mut bytes)).expect("read");
        assert_eq!(bytes, [0; INTENT_LEN], "the intent is cleared");
        let mut damaged = recorded(&absent, |_| {});
        let fsinfo = 512 * usize::from(u16::from_le_bytes([damaged[48], damaged[49]]));
        damaged[fsinfo + INTENT_OFFSET as usize + 20] ^= 0xFF;
        assert!(mount(damaged).is_ok());
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
