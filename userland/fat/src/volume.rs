//! [`Volume`]: a FAT12/16/32 file system over a [`Cache`], operated by path.
//!
//! hadris-fat does the directory work (lookups, long names, creating, deleting and renaming
//! entries, allocating and freeing clusters); this module resolves paths, checks what it hands
//! to hadris-fat, and turns its errors into [`FsError`]. The file data path (reading, writing at
//! an offset, truncating) is in `data.rs`. Invariants:
//!
//! - the boot sector passed [`Geometry::parse`] and hadris-fat agrees with it on the FAT type
//!   and cluster count, so a cluster number checked against the geometry lies on the disk;
//! - a directory entry's first cluster is checked (0, or a data cluster of the volume) before
//!   hadris-fat follows or frees its chain, and a directory is only entered through a data
//!   cluster: hadris-fat computes offsets from these numbers unchecked;
//! - every walk is bounded: a directory is entered only if its cluster chain ends within FAT's
//!   2 MiB directory limit, and yields at most [`MAX_DIR_ENTRIES`] entries; a file's chain is
//!   followed at most as many clusters as the volume has;
//! - only operations that change the volume write, and only into the cache: nothing reaches
//!   the disk before [`Volume::sync`] except pages the cache evicts and the syncs around an
//!   operation that frees clusters (see "What an unclean stop loses" in the crate docs).
//!
//! hadris-fat and the volume share the cache through an `Rc<RefCell<_>>`, so a `Volume` is not
//! `Send`: it belongs to the one thread that serves it. Borrows of the cache never overlap (each
//! lasts one transfer); an overlapping one would fail with [`DiskError::Invalid`], not panic.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use hashbrown::HashMap;

use hadris_fat::sync::format::{FatFormatOptions, FatTypeSelection, FatVolumeFormatter};
use hadris_fat::sync::{
    DirectoryEntry, Error as IoError, FatDir, FatType, FatVolume, FileEntry, IoResult, Read, Seek, SeekFrom, Write,
};
use hadris_fat::time::{FatDateTime, TimeProvider};

use crate::boot::{BOOT_SECTOR, Geometry, Root};
use crate::cache::{Cache, CacheStats};
use crate::disk::{Disk, DiskError};
use crate::error::{FsError, from_fat};
use crate::links::FatLayout;
use crate::names::{Found, Listing, Names, Resolved};
use crate::path;

/// Most entries a directory may hold (the FAT limit: 65,536 32-byte slots, 2 MiB).
pub const MAX_DIR_ENTRIES: usize = 65536;

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// A FAT timestamp, broken down (FAT keeps local time to 2 seconds, years 1980 to 2107).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Year, 1980 to 2107.
    pub year: u16,
    /// Month, 1 to 12 (0 on a damaged entry).
    pub month: u8,
    /// Day of the month, 1 to 31 (0 on a damaged entry).
    pub day: u8,
    /// Hour, 0 to 23.
    pub hour: u8,
    /// Minute, 0 to 59.
    pub minute: u8,
    /// Second, even, 0 to 58.
    pub second: u8,
}

impl Timestamp {
    /// 1980-01-01 00:00:00, what entries get when the volume has no clock (and the root's time).
    pub const FAT_EPOCH: Self = Self { year: 1980, month: 1, day: 1, hour: 0, minute: 0, second: 0 };

    /// Decodes FAT's packed date and time.
    pub fn from_fat(t: FatDateTime) -> Self {
        Self {
            year: 1980 + (t.date >> 9),
            month: ((t.date >> 5) & 0x0F) as u8,
            day: (t.date & 0x1F) as u8,
            hour: (t.time >> 11) as u8,
            minute: ((t.time >> 5) & 0x3F) as u8,
            second: ((t.time & 0x1F) * 2) as u8,
        }
    }

    /// Packs into FAT's date and time (fields out of range are clamped or masked).
    pub fn to_fat(self) -> FatDateTime {
        FatDateTime::new(self.year, self.month, self.day, self.hour, self.minute, self.second)
    }
}

/// What [`Volume::stat`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// File or directory.
    pub kind: Kind,
    /// Bytes in a file; 0 for a directory.
    pub size: u64,
    /// Last modification.
    pub modified: Timestamp,
}

/// One entry of [`Volume::read_dir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name if the entry has one, else the 8.3 name as stored (case flags applied).
    pub name: String,
    /// File or directory.
    pub kind: Kind,
    /// Bytes in a file; 0 for a directory.
    pub size: u64,
}

/// A stream handle on the shared cache with its own position: hadris-fat's view of the disk.
pub(crate) struct Stream<D: Disk> {
    cache: Rc<RefCell<Cache<D>>>,
    pos: u64,
}

impl<D: Disk> Stream<D> {
    fn with<T>(
        &mut self,
        op: impl FnOnce(&mut Cache<D>, &mut u64) -> IoResult<T, DiskError>,
    ) -> IoResult<T, DiskError> {
        match self.cache.try_borrow_mut() {
            Ok(mut cache) => op(&mut cache, &mut self.pos),
            Err(_) => Err(IoError::from_source(DiskError::Invalid)),
        }
    }
}

impl<D: Disk> Read for Stream<D> {
    type Error = DiskError;
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize, DiskError> {
        self.with(|cache, pos| cache.stream_read(pos, buf))
    }
}

impl<D: Disk> Write for Stream<D> {
    type Error = DiskError;
    fn write(&mut self, buf: &[u8]) -> IoResult<usize, DiskError> {
        self.with(|cache, pos| cache.stream_write(pos, buf))
    }
    fn flush(&mut self) -> IoResult<(), DiskError> {
        Ok(())
    }
}

impl<D: Disk> Seek for Stream<D> {
    type Error = DiskError;
    fn seek(&mut self, to: SeekFrom) -> IoResult<u64, DiskError> {
        self.with(|cache, pos| cache.stream_seek(pos, to))
    }
}

/// Which directory an entry lives in: the root, or the directory starting at this cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DirId {
    Root,
    Cluster(u64),
}

/// A run of a file's clusters: file clusters `index .. index + count` are disk clusters
/// `cluster .. cluster + count`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub index: u64,
    pub cluster: u64,
    pub count: u64,
}

/// Most files whose chains are remembered as runs at once (all are forgotten beyond): enough
/// for a directory of 1,000 files read in turn; a small file's runs take a few dozen bytes.
pub(crate) const MAX_CHAINS: usize = 1024;

/// A mounted FAT volume. Changes live in the cache until [`Volume::sync`].
pub struct Volume<D: Disk> {
    pub(crate) fs: FatVolume<Stream<D>>,
    pub(crate) cache: Rc<RefCell<Cache<D>>>,
    pub(crate) geometry: Geometry,
    /// Files' cluster chains as runs, by first cluster, walked once until the volume changes
    /// them (see `data.rs`).
    pub(crate) chains: RefCell<HashMap<u64, Rc<[Run]>>>,
    /// Directory listings and chain checks already made (see `names.rs`).
    pub(crate) names: RefCell<Names>,
    /// Clusters this volume allocated itself (a file's first one, see `data.rs`) less those it
    /// gave back: hadris-fat's free count does not know them, so it is that much too high.
    pub(crate) own_allocated: Cell<i64>,
    /// Where the next search for a free cluster starts.
    pub(crate) next_free: Cell<u64>,
    /// Disk offset of FAT32's FSInfo sector.
    pub(crate) fsinfo_at: Option<u64>,
}

impl<D: Disk> Volume<D> {
    /// Mounts the FAT12/16/32 volume on the cache's disk, refusing a boot sector that does not
    /// describe a consistent volume that fits on the disk. `clock` stamps created and modified
    /// entries; without one they get 1980-01-01.
    pub fn open(cache: Cache<D>, clock: Option<&'static dyn TimeProvider>) -> Result<Self, FsError> {
        let cache = Rc::new(RefCell::new(cache));
        let mut sector = [0u8; BOOT_SECTOR];
        let geometry = {
            let mut c = cache.try_borrow_mut().map_err(|_| DiskError::Invalid)?;
            if c.read_at(0, &mut sector)? < BOOT_SECTOR {
                return Err(FsError::BadBootSector("the disk is smaller than a boot sector"));
            }
            Geometry::parse(&sector, c.len())?
        };
        let mut builder = FatVolume::builder(Stream { cache: Rc::clone(&cache), pos: 0 });
        if let Some(clock) = clock {
            builder = builder.time_provider(clock);
        }
        let fs = match builder.open() {
            Ok(fs) => fs,
            Err(e) => {
                let disk = cache.try_borrow_mut().ok().and_then(|mut c| c.take_error());
                return Err(from_fat(e, disk));
            }
        };
        if fs.fat_type() != geometry.fat_type || fs.fat().max_cluster() != geometry.max_cluster() {
            return Err(FsError::BadBootSector("hadris-fat reads the boot sector differently"));
        }
        if let Ok(mut c) = cache.try_borrow_mut() {
            // The FATs go to the disk before whatever points into them (see `free_safely`).
            let block = c.disk().block_size() as u64;
            let end = geometry.fat_start + geometry.fat_size * u64::from(geometry.fat_count);
            c.set_first_blocks(geometry.fat_start / block..end.div_ceil(block));
            let entry = match geometry.fat_type {
                FatType::Fat12 => 0,
                FatType::Fat16 => 2,
                FatType::Fat32 => 4,
            };
            c.set_fat_layout(FatLayout {
                start: geometry.fat_start,
                size: geometry.fat_size,
                copies: geometry.fat_count,
                entry,
                max_cluster: geometry.max_cluster(),
            });
        }
        // FAT32's FSInfo sector number is at byte 48 of the boot sector.
        let fsinfo_at = match geometry.fat_type {
            FatType::Fat32 => {
                Some(u64::from(u16::from_le_bytes([sector[48], sector[49]])) * u64::from(geometry.bytes_per_sector))
            }
            _ => None,
        };
        let next_free = fs.next_free_cluster_hint().map_or(2, u64::from);
        let volume = Self {
            fs,
            cache,
            geometry,
            chains: RefCell::default(),
            names: RefCell::new(Names::default()),
            own_allocated: Cell::new(0),
            next_free: Cell::new(next_free),
            fsinfo_at,
        };
        // A move a stop interrupted is finished before anything reads the directories.
        volume.finish_interrupted_move()?;
        Ok(volume)
    }

    /// Makes a new, empty file system over the whole disk and mounts it: FAT32 when the disk
    /// holds enough clusters for it (about 33 MiB and up), else FAT16 (from 4 MiB), else FAT12.
    /// `label` (up to 11 characters: letters, digits, space and ``!#$%&'()-@^_`{}~``; empty for
    /// none) names the volume. The new file system is synced before it is mounted.
    pub fn format(cache: Cache<D>, label: &str, clock: Option<&'static dyn TimeProvider>) -> Result<Self, FsError> {
        let mut options = FatFormatOptions::new(cache.len());
        if !label.is_empty() {
            let valid = |c: char| c.is_ascii_alphanumeric() || " !#$%&'()-@^_`{}~".contains(c);
            if label.len() > 11 || !label.chars().all(valid) {
                return Err(FsError::InvalidName);
            }
            options = options.volume_label(label);
        }
        if let Some(clock) = clock {
            let now = clock.now();
            options = options.volume_id((now.date as u32) << 16 | now.time as u32);
        }
        let fat_type = [FatTypeSelection::Fat32, FatTypeSelection::Fat16, FatTypeSelection::Fat12]
            .into_iter()
            .find(|&t| FatVolumeFormatter::calculate_params(&options.clone().fat_type(t)).is_ok())
            .ok_or(FsError::FormatRefused("no FAT type fits the disk's size"))?;
        let cache = Rc::new(RefCell::new(cache));
        let stream = Stream { cache: Rc::clone(&cache), pos: 0 };
        match FatVolumeFormatter::format(stream, options.fat_type(fat_type)) {
            Ok(fs) => drop(fs.into_inner()),
            Err(e) => {
                let disk = cache.try_borrow_mut().ok().and_then(|mut c| c.take_error());
                return Err(from_fat(e, disk));
            }
        }
        let mut cache = Rc::try_unwrap(cache).map_err(|_| DiskError::Invalid)?.into_inner();
        cache.sync()?;
        Self::open(cache, clock)
    }

    /// FAT12, FAT16 or FAT32.
    pub fn fat_type(&self) -> FatType {
        self.geometry.fat_type
    }

    /// Bytes per cluster (the allocation unit).
    pub fn cluster_size(&self) -> u32 {
        self.geometry.cluster_size
    }

    /// The cache's counts of lookups and disk transfers.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.try_borrow().map(|c| c.stats()).unwrap_or_default()
    }

    /// Writes everything changed so far to the disk (FAT32's free-cluster count first, then the
    /// cache's dirty blocks in ascending order) and flushes the disk. With nothing changed since
    /// the last sync it does nothing (the free count changes only with the FATs).
    pub fn sync(&mut self) -> Result<(), FsError> {
        self.begin();
        if self.with_cache(|c| Ok(c.is_synced()))? {
            return Ok(());
        }
        self.sync_fat()?;
        self.with_cache(|c| c.sync())
    }

    /// Syncs and gives the cache back (its disk: [`Cache::into_disk`]).
    pub fn unmount(mut self) -> Result<Cache<D>, FsError> {
        self.sync()?;
        let Self { fs, cache, .. } = self;
        drop(fs.into_inner());
        Ok(Rc::try_unwrap(cache).map_err(|_| DiskError::Invalid)?.into_inner())
    }

    /// Kind, size and modification time of what `path` names.
    pub fn stat(&self, path: &str) -> Result<Meta, FsError> {
        self.begin();
        Ok(match self.resolve(path)? {
            None => Meta { kind: Kind::Dir, size: 0, modified: Timestamp::FAT_EPOCH },
            Some((entry, _)) => Meta {
                kind: kind_of(&entry),
                size: if entry.is_directory() { 0 } else { entry.len() },
                modified: Timestamp::from_fat(entry.modified()),
            },
        })
    }

    /// `path` with each name as the volume stores it (the long name, else the 8.3 name with
    /// its case flags), so two spellings of one entry (`/A/b.TXT`, `/a/B.txt`, an 8.3 alias)
    /// give the same path. Fails as [`Volume::stat`] for a path that names nothing.
    pub fn canonical(&self, path: &str) -> Result<String, FsError> {
        self.begin();
        if let Some(known) = self.names.try_borrow().ok().and_then(|n| n.canonical(path).map(String::from)) {
            return Ok(known);
        }
        let canonical = self.spell(path)?;
        if let Ok(mut names) = self.names.try_borrow_mut() {
            names.remember_canonical(path, &canonical);
        }
        Ok(canonical)
    }

    /// [`Volume::canonical`] worked out from the directories.
    fn spell(&self, path: &str) -> Result<String, FsError> {
        let parts = path::components(path)?;
        let Some((last, leading)) = parts.split_last() else {
            return Ok(String::from("/"));
        };
        let mut out = String::new();
        let (dir, id) = self.walk_dirs_in(leading, |entry| {
            out.push('/');
            out.push_str(&entry.name());
        })?;
        let entry = self.lookup(&dir, id, last)?.ok_or(FsError::NotFound)?;
        out.push('/');
        out.push_str(&entry.name());
        Ok(out)
    }

    /// The entries of the directory `path`, in on-disk order, without `.` and `..`.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        self.begin();
        let parts = path::components(path)?;
        let (dir, id) = self.open_dir(&parts)?;
        let remembered = self.names.try_borrow().ok().and_then(|n| {
            let listing = n.listing(id)?;
            match listing.listed() {
                Some(entries) => Some((entries.to_vec(), true)),
                None => listing.ordered_entries().map(|entries| (listed(entries), false)),
            }
        });
        if let Some((out, memo)) = remembered {
            if !memo && let Ok(mut names) = self.names.try_borrow_mut() {
                names.keep_listed(id, &out);
            }
            return Ok(out);
        }
        let mut listing = Listing::default();
        for item in dir.entries() {
            let DirectoryEntry::Entry(entry) = item.map_err(|e| self.fat_error(e))?;
            if listing.len() == MAX_DIR_ENTRIES {
                return Err(FsError::Corrupt("directory with more than 65536 entries"));
            }
            listing.add(&entry);
        }
        let out = listing.ordered_entries().map(listed).unwrap_or_default();
        if let Ok(mut names) = self.names.try_borrow_mut() {
            names.keep(id, listing);
            names.keep_listed(id, &out);
        }
        Ok(out)
    }

    /// Creates the empty file `path` in an existing directory.
    pub fn create(&mut self, path: &str) -> Result<(), FsError> {
        self.create_entry(path, false)
    }

    /// Creates the empty directory `path` in an existing directory.
    pub fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        self.create_entry(path, true)
    }

    /// Removes the file or empty directory `path`.
    pub fn remove(&mut self, path: &str) -> Result<(), FsError> {
        self.changing(|v| v.remove_entry(path))
    }

    /// Moves `from` to `to`, across directories too. An existing file at `to` is replaced by a
    /// file, an existing empty directory by a directory; a directory cannot move into itself.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        self.changing(|v| v.move_entry(from, to))
    }

    /// Runs a change of entries, then forgets the listings it may have made stale (whether it
    /// succeeded or not: a failure may have changed part of a directory).
    fn changing(&mut self, op: impl FnOnce(&mut Self) -> Result<(), FsError>) -> Result<(), FsError> {
        self.begin();
        let result = op(self);
        if let Ok(mut names) = self.names.try_borrow_mut() {
            names.forget_all();
        }
        self.forget_chains();
        result
    }

    /// Creates a file or directory. Only the parent's listing changes (a new entry; its chain
    /// may grow, still ending where it should): a new file joins the listing, a new directory
    /// (or a failure) makes it forgotten.
    fn create_entry(&mut self, path: &str, directory: bool) -> Result<(), FsError> {
        self.begin();
        let (parent, name) = path::split_last(path)?;
        let (dir, id) = self.open_dir(&parent)?;
        self.making_clusters(id, || {
            let created = if directory {
                self.fs.create_dir(&dir, name).map(|_| None)
            } else {
                self.fs.create_file(&dir, name).map(Some)
            };
            let created = created.map_err(|e| self.fat_error(e));
            if let Ok(mut names) = self.names.try_borrow_mut() {
                match &created {
                    Ok(Some(entry)) => names.add_to(id, entry),
                    _ => names.forget_dir(id),
                }
            }
            let made = match &created {
                Ok(None) => self.lookup(&dir, id, name)?.map(|e| e.cluster().0 as u64),
                _ => None,
            };
            created.map(|_| made)
        })?;
        Ok(())
    }

    /// Runs `op`, which adds an entry to the directory `parent` (growing it by a cluster when
    /// it is full) and may make a new directory (whose first cluster it returns), so that no
    /// stop leaves a directory cluster reachable before its contents are on the disk, nor part
    /// of a long name without its start. The cache holds every dirty page while `op` runs and
    /// notes what `op` wrote; if `op` made clusters, or wrote entries that one disk request
    /// cannot hold (blocks not neighbours in one page), they go out in this order, each step
    /// flushed:
    ///
    /// 1. the new clusters (zeroes, `.` and `..`, entries): free on the disk, so unreachable;
    /// 2. the FATs, marking them in use, but with the parent's old last cluster still ending
    ///    its chain (a stop leaves lost clusters);
    /// 3. the entry blocks outside the new clusters, in the order `op` wrote them: a long
    ///    name's first slots before its last ones and its 8.3 entry, so a stop leaves at most
    ///    an orphaned start of a name, which `fsck.fat` deletes;
    /// 4. the link from the parent's old last cluster to the new one.
    ///
    /// Otherwise (an entry in one block, or neighbouring blocks of one page, of an existing
    /// cluster: the common case) the changes stay in the cache, as any other.
    pub(crate) fn making_clusters(
        &self,
        parent: DirId,
        op: impl FnOnce() -> Result<Option<u64>, FsError>,
    ) -> Result<Option<u64>, FsError> {
        self.making_clusters_after(parent, op, || Ok(()))
    }

    /// [`Volume::making_clusters`], running `first` after `op` succeeds and before anything
    /// `op` wrote can reach the disk (what `first` writes and flushes itself goes out before).
    pub(crate) fn making_clusters_after(
        &self,
        parent: DirId,
        op: impl FnOnce() -> Result<Option<u64>, FsError>,
        first: impl FnOnce() -> Result<(), FsError>,
    ) -> Result<Option<u64>, FsError> {
        let last = self.last_dir_cluster(parent)?;
        // The FAT entries ending the parent's chain, as they are: held back in step 2.
        let mut ends = Vec::new();
        if let Some(last) = last {
            for (at, len) in self.geometry.fat_entry_spans(last) {
                let mut bytes = [0u8; 4];
                self.with_cache(|c| c.read_at(at, &mut bytes[..len]))?;
                ends.push((at, bytes, len));
            }
        }
        self.with_cache(|c| {
            c.trace();
            c.set_holding(true);
            Ok(())
        })?;
        let result = op().and_then(|made| first().map(|()| made));
        let trace = self.with_cache(|c| {
            c.set_holding(false);
            Ok(c.take_trace())
        })?;
        let mut grown = Vec::new();
        if let Some(last) = last {
            // The parent's chain past its old end (FAT's limit: 2 MiB, at least 4 KiB a cluster).
            let mut stream = self.stream();
            let mut cluster = last;
            while grown.len() < 512
                && let Ok(Some(next)) = self.fs.fat().next_cluster(&mut stream, cluster as usize)
            {
                cluster = next as u64;
                grown.push(cluster);
            }
        }
        let made = match &result {
            Ok(Some(made)) => Some(*made),
            _ => None,
        };
        let block = self.block_size()?;
        let cluster_blocks = u64::from(self.geometry.cluster_size) / block;
        let mut new_blocks: Vec<u64> = grown
            .iter()
            .chain(made.iter())
            .filter_map(|&c| self.geometry.cluster_offset(c))
            .flat_map(|at| at / block..at / block + cluster_blocks)
            .collect();
        new_blocks.sort_unstable();
        let entries = self.entry_order(trace, &new_blocks)?;
        if new_blocks.is_empty() && self.one_request(&entries)? {
            self.with_cache(|c| {
                c.trim();
                Ok(())
            })?;
            return result;
        }
        let held: Vec<(u64, &[u8])> =
            if grown.is_empty() { Vec::new() } else { ends.iter().map(|(at, b, len)| (*at, &b[..*len])).collect() };
        let written = self.with_cache(|c| {
            c.write_blocks(&new_blocks)?;
            c.write_first_blocks_holding(&held)?;
            c.write_blocks(&entries)?;
            c.write_first_blocks_holding(&[])?;
            c.trim();
            Ok(())
        });
        let made = result?;
        written?;
        Ok(made)
    }

    /// The directory blocks of a trace ([`Cache::take_trace`]) outside `new_blocks` (sorted), in
    /// the order that keeps every long name whole or an orphaned start at each stop: blocks
    /// where entries were added in the order written (hadris-fat writes a name's slots in
    /// directory order, its first slots first), then blocks where entries were only deleted in
    /// the reverse order (the 8.3 entry's side first).
    fn entry_order(&self, trace: Vec<(u64, bool)>, new_blocks: &[u64]) -> Result<Vec<u64>, FsError> {
        let block = self.block_size()?;
        // Directory blocks lie past the FATs (FAT32's FSInfo sector, before them, is no entry).
        let fats_end = self.geometry.fat_start + self.geometry.fat_size * u64::from(self.geometry.fat_count);
        let entries = trace.iter().filter(|&&(b, _)| b * block >= fats_end && new_blocks.binary_search(&b).is_err());
        let mut order: Vec<u64> = entries.clone().filter(|&&(_, deleting)| !deleting).map(|&(b, _)| b).collect();
        order.extend(entries.rev().filter(|&&(_, deleting)| deleting).map(|&(b, _)| b));
        Ok(order)
    }

    /// Whether the cache writes `blocks` in one request, by sync or eviction alike: neighbours
    /// in ascending order within one page.
    pub(crate) fn one_request(&self, blocks: &[u64]) -> Result<bool, FsError> {
        let block = self.block_size()?;
        let per_page = crate::PAGE_SIZE as u64 / block;
        Ok(blocks.windows(2).all(|w| w[1] == w[0] + 1 && w[0] / per_page == w[1] / per_page))
    }

    /// The first cluster of a directory's chain (`None` for a FAT12/16 root, which is not a
    /// chain).
    pub(crate) fn first_dir_cluster(&self, dir: DirId) -> Option<u64> {
        match (dir, self.geometry.root) {
            (DirId::Cluster(first), _) => Some(first),
            (DirId::Root, Root::Chain(first)) => Some(u64::from(first)),
            (DirId::Root, Root::Fixed { .. }) => None,
        }
    }

    /// The last cluster of a directory's chain (`None` for a FAT12/16 root, which is not a
    /// chain). The chain was checked when the directory was opened.
    fn last_dir_cluster(&self, dir: DirId) -> Result<Option<u64>, FsError> {
        let Some(first) = self.first_dir_cluster(dir) else { return Ok(None) };
        let limit = (MAX_DIR_ENTRIES as u64 * 32).div_ceil(self.geometry.cluster_size as u64);
        let mut stream = self.stream();
        let mut cluster = first;
        for _ in 0..limit {
            match self.fs.fat().next_cluster(&mut stream, cluster as usize) {
                Ok(None) => return Ok(Some(cluster)),
                Ok(Some(next)) => cluster = next as u64,
                Err(e) => return Err(self.fat_error(e)),
            }
        }
        Err(FsError::Corrupt("directory larger than 2 MiB (or its cluster chain loops)"))
    }
    fn remove_entry(&mut self, path: &str) -> Result<(), FsError> {
        let Some((entry, _)) = self.resolve(path)? else {
            return Err(FsError::InvalidPath);
        };
        self.check_chain_start(&entry)?;
        self.free_safely(|v| v.fs.delete(&entry).map_err(|e| v.fat_error(e)))
    }

    /// Runs `op`, which frees clusters, so that no stop can leave an entry pointing at a freed
    /// cluster (which a later allocation would hand to another file): everything earlier is
    /// synced first (FATs first, as always), then `op`'s changes go out entries first and FATs
    /// last. A stop in between leaves lost clusters, which `fsck.fat` frees.
    pub(crate) fn free_safely(&self, op: impl FnOnce(&Self) -> Result<(), FsError>) -> Result<(), FsError> {
        self.free_safely_ending(None, op)
    }

    /// [`Volume::free_safely`] for an operation that cuts a chain at `end` (the cluster that
    /// becomes its last): the FAT blocks holding `end`'s entry reach the disk before those
    /// freeing the clusters after it.
    pub(crate) fn free_safely_ending(
        &self,
        end: Option<u64>,
        op: impl FnOnce(&Self) -> Result<(), FsError>,
    ) -> Result<(), FsError> {
        self.sync_fat()?;
        self.with_cache(|c| {
            c.sync()?;
            c.trace();
            c.set_freeing(true);
            c.set_holding(true);
            Ok(())
        })?;
        let result = op(self);
        let trace = self.with_cache(|c| {
            c.set_freeing(false);
            c.set_holding(false);
            Ok(c.take_trace())
        })?;
        let entries = self.entry_order(trace, &[])?;
        let ordered = !self.one_request(&entries)?;
        let block = self.block_size()?;
        let mut early: Vec<u64> = end
            .into_iter()
            .flat_map(|c| self.geometry.fat_entry_spans(c).collect::<Vec<_>>())
            .flat_map(|(at, len)| [at / block, (at + len as u64 - 1) / block])
            .collect();
        early.sort_unstable();
        early.dedup();
        let synced = self.sync_fat().and_then(|()| {
            self.with_cache(|c| {
                if ordered {
                    c.write_blocks(&entries)?;
                }
                c.sync_others_first(&early)?;
                c.trim();
                Ok(())
            })
        });
        result.and(synced)
    }

    fn move_entry(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let Some((entry, from_parent)) = self.resolve(from)? else {
            return Err(FsError::InvalidPath);
        };
        self.check_chain_start(&entry)?;
        let (to_parts, name) = path::split_last(to)?;
        let moved = entry.cluster().0 as u64;
        let mut inside = false;
        let (dir, to_parent) = self.walk_dirs_in(&to_parts, |d| inside |= d.cluster().0 as u64 == moved)?;
        if entry.is_directory() && (inside || to_parent == DirId::Cluster(moved)) {
            return Err(FsError::InvalidPath);
        }
        let mut same = false;
        if let Some(existing) = self.lookup(&dir, to_parent, name)? {
            same = from_parent == to_parent && existing.short_name().raw_bytes() == entry.short_name().raw_bytes();
            if !same {
                match (entry.is_directory(), existing.is_directory()) {
                    (false, true) => return Err(FsError::IsADirectory),
                    (true, false) => return Err(FsError::NotADirectory),
                    _ => {}
                }
                self.check_chain_start(&existing)?;
                self.free_safely(|v| v.fs.delete(&existing).map_err(|e| v.fat_error(e)))?;
            }
        }
        // An entry moves through an intent (`rename.rs`) unless it only changes the case of its
        // name, or the volume is FAT12/16.
        if !same && self.move_through_intent(&entry, from_parent, &dir, to_parent, name)? {
            return Ok(());
        }
        self.making_clusters(to_parent, || {
            self.fs.rename(&entry, &dir, name).map(|_| None).map_err(|e| self.fat_error(e))
        })?;
        Ok(())
    }

    /// Has hadris-fat write FAT32's FSInfo sector (into the cache), with the free count less the
    /// clusters this volume allocated itself, which hadris-fat did not count.
    pub(crate) fn sync_fat(&self) -> Result<(), FsError> {
        self.fs.sync().map_err(|e| self.fat_error(e))?;
        let own = self.own_allocated.get();
        if let (Some(at), Some(count)) = (self.fsinfo_at, self.fs.free_cluster_count())
            && own != 0
        {
            let free = (i64::from(count) - own).clamp(0, i64::from(self.geometry.cluster_count)) as u32;
            // The free count is at byte 488 of the sector.
            self.with_cache(|c| c.write_at(at + 488, &free.to_le_bytes()))?;
        }
        Ok(())
    }

    /// Bytes per block of the disk.
    pub(crate) fn block_size(&self) -> Result<u64, FsError> {
        self.with_cache(|c| Ok(c.disk().block_size() as u64))
    }

    /// Starts an operation: forgets any disk error recorded by an earlier one.
    pub(crate) fn begin(&self) {
        if let Ok(mut cache) = self.cache.try_borrow_mut() {
            cache.clear_error();
        }
    }

    /// Runs `op` on the cache.
    pub(crate) fn with_cache<T>(&self, op: impl FnOnce(&mut Cache<D>) -> Result<T, DiskError>) -> Result<T, FsError> {
        let mut cache = self.cache.try_borrow_mut().map_err(|_| DiskError::Invalid)?;
        Ok(op(&mut cache)?)
    }

    /// A fresh stream on the cache, for hadris-fat calls made outside its volume handle.
    pub(crate) fn stream(&self) -> Stream<D> {
        Stream { cache: Rc::clone(&self.cache), pos: 0 }
    }

    /// Maps a hadris-fat error, recovering the disk error behind an I/O failure.
    pub(crate) fn fat_error(&self, e: hadris_fat::Error) -> FsError {
        let disk = self.cache.try_borrow_mut().ok().and_then(|mut c| c.take_error());
        from_fat(e, disk)
    }

    /// Refuses an entry whose first cluster is neither 0 nor a data cluster of this volume.
    pub(crate) fn check_chain_start(&self, entry: &FileEntry) -> Result<(), FsError> {
        let first = entry.cluster().0 as u64;
        if first == 0 || self.geometry.is_data_cluster(first) {
            Ok(())
        } else {
            Err(FsError::Corrupt("entry's first cluster is outside the volume"))
        }
    }

    /// Walks `parts` from the root; every one must be a directory whose chain is sound.
    pub(crate) fn open_dir(&self, parts: &[&str]) -> Result<(FatDir<'_, Stream<D>>, DirId), FsError> {
        self.walk_dirs_in(parts, |_| {})
    }

    /// [`Volume::open_dir`], calling `each` with the entry of every directory entered.
    fn walk_dirs_in(
        &self,
        parts: &[&str],
        mut each: impl FnMut(&FileEntry),
    ) -> Result<(FatDir<'_, Stream<D>>, DirId), FsError> {
        let mut dir = self.fs.root_dir();
        let mut id = DirId::Root;
        if let Root::Chain(first) = self.geometry.root {
            self.check_dir_chain(first as u64)?;
        }
        for name in parts {
            let entry = self.lookup(&dir, id, name)?.ok_or(FsError::NotFound)?;
            if !entry.is_directory() {
                return Err(FsError::NotADirectory);
            }
            let first = entry.cluster().0 as u64;
            if !self.geometry.is_data_cluster(first) {
                return Err(FsError::Corrupt("directory's first cluster is outside the volume"));
            }
            self.check_dir_chain(first)?;
            each(&entry);
            dir = self.fs.open_dir_entry(&entry).map_err(|e| self.fat_error(e))?;
            id = DirId::Cluster(first);
        }
        Ok((dir, id))
    }

    /// Refuses a directory whose cluster chain does not end within FAT's 2 MiB limit for a
    /// directory (a looping chain never ends). Following the FAT is much cheaper than reading
    /// the entries, which hadris-fat would otherwise repeat until its own loop bound (as many
    /// clusters as the volume has).
    fn check_dir_chain(&self, first: u64) -> Result<(), FsError> {
        if self.names.try_borrow().is_ok_and(|n| n.checked(first)) {
            return Ok(());
        }
        let limit = (MAX_DIR_ENTRIES as u64 * 32).div_ceil(self.geometry.cluster_size as u64);
        let mut stream = self.stream();
        let mut cluster = first;
        for _ in 0..limit {
            match self.fs.fat().next_cluster(&mut stream, cluster as usize) {
                Ok(None) => {
                    if let Ok(mut names) = self.names.try_borrow_mut() {
                        names.mark_checked(first);
                    }
                    return Ok(());
                }
                Ok(Some(next)) => cluster = next as u64,
                Err(e) => return Err(self.fat_error(e)),
            }
        }
        Err(FsError::Corrupt("directory larger than 2 MiB (or its cluster chain loops)"))
    }

    /// The entry `path` names and the directory holding it; `None` for the root.
    pub(crate) fn resolve(&self, path: &str) -> Result<Resolved, FsError> {
        if let Some(resolved) = self.names.try_borrow().ok().and_then(|n| n.resolved(path)) {
            return Ok(resolved);
        }
        let mut parts = path::components(path)?;
        let Some(name) = parts.pop() else {
            return Ok(None);
        };
        let (dir, parent) = self.open_dir(&parts)?;
        let entry = self.lookup(&dir, parent, name)?.ok_or(FsError::NotFound)?;
        if let Ok(mut names) = self.names.try_borrow_mut() {
            names.remember_resolved(path, &entry, parent);
        }
        Ok(Some((entry, parent)))
    }

    /// The entry called `name` in `dir` (whose id is `id`), matched as hadris-fat matches
    /// names: an exact long name first, else the first long or 8.3 name equal ignoring case.
    /// `.` and `..` never reach here (paths are resolved lexically). A directory scanned once
    /// is remembered (`names.rs`) until the volume changes, and answers misses too.
    pub(crate) fn lookup(
        &self,
        dir: &FatDir<'_, Stream<D>>,
        id: DirId,
        name: &str,
    ) -> Result<Option<Rc<FileEntry>>, FsError> {
        let found = self.names.try_borrow().map_or(Found::Unknown, |n| n.find(id, name));
        match found {
            Found::Entry(entry) => return Ok(Some(entry)),
            // A remembered listing is the whole directory: a name it lacks is not there,
            // unless the name ends with a dot, which 8.3 matching drops (`A.` names `A`).
            Found::Missing if !name.ends_with('.') => return Ok(None),
            Found::Stale(raw) => {
                // Read that one entry again (its 8.3 name is unique in the directory).
                for (seen, item) in dir.entries().enumerate() {
                    if seen == MAX_DIR_ENTRIES {
                        return Err(FsError::Corrupt("directory with more than 65536 entries"));
                    }
                    let DirectoryEntry::Entry(entry) = item.map_err(|e| self.fat_error(e))?;
                    if entry.short_name().raw_bytes() == raw {
                        if let Ok(mut names) = self.names.try_borrow_mut() {
                            names.refresh(id, &entry);
                        }
                        return Ok(Some(Rc::new(entry)));
                    }
                }
                // Gone: what the listing says cannot be trusted; read the whole directory.
                if let Ok(mut names) = self.names.try_borrow_mut() {
                    names.forget_dir(id);
                }
            }
            Found::Missing | Found::Unknown => {}
        }
        let mut exact = None;
        let mut fallback = None;
        let mut listing = Listing::default();
        for (seen, item) in dir.entries().enumerate() {
            if seen == MAX_DIR_ENTRIES {
                return Err(FsError::Corrupt("directory with more than 65536 entries"));
            }
            let DirectoryEntry::Entry(entry) = item.map_err(|e| self.fat_error(e))?;
            listing.add(&entry);
            if exact.is_some() {
                continue;
            }
            if let Some(long) = entry.long_name() {
                if long.eq_str(name) {
                    exact = Some(entry);
                    continue;
                }
                let folded = long.chars().flat_map(char::to_uppercase);
                if fallback.is_none() && folded.eq(name.chars().flat_map(char::to_uppercase)) {
                    fallback = Some(entry);
                    continue;
                }
            }
            if fallback.is_none() && entry.short_name().matches(name) {
                fallback = Some(entry);
            }
        }
        if let Ok(mut names) = self.names.try_borrow_mut() {
            names.keep(id, listing);
        }
        Ok(exact.or(fallback).map(Rc::new))
    }
}

/// What [`Volume::read_dir`] reports of a directory's entries: all but `.` and `..`.
fn listed(entries: &[Rc<FileEntry>]) -> Vec<DirEntry> {
    entries
        .iter()
        .filter(|e| !(e.is_directory() && matches!(&*e.name(), "." | "..")))
        .map(|e| DirEntry {
            name: e.name().into_owned(),
            kind: kind_of(e),
            size: if e.is_directory() { 0 } else { e.len() },
        })
        .collect()
}

/// File or directory, from the entry's attributes.
fn kind_of(entry: &FileEntry) -> Kind {
    if entry.is_directory() { Kind::Dir } else { Kind::File }
}
