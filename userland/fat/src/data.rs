//! File contents: reading, writing at an offset, truncating.
//!
//! hadris-fat writes a file only from its start or its end (`FileWriter`), and its reader walks
//! the cluster chain from the start on each seek, so bytes inside a file are moved here: the
//! cluster holding an offset is found with hadris-fat's FAT decoder (`Fat::next_cluster`, which
//! refuses cluster numbers outside the volume), resuming from the last position looked up, and
//! the bytes are copied through the cache. Whatever needs new clusters (writing past the end,
//! growing with `truncate`) goes through `FileWriter::new_append`, which allocates, links and
//! updates the entry's size and time; an empty file first gets its first cluster here (found
//! from where the last search ended, written into its 8.3 entry), because hadris-fat would
//! search for it from cluster 2, reading every FAT entry of the volume's used part each time.
//! The first write into an empty file at its start (a file just created and written) does all
//! of it here: clusters, links, bytes, and the entry's cluster, size and time.
//! Invariants:
//!
//! - a chain walk takes at most as many steps as the volume has clusters, and a chain that comes
//!   back to a cluster it passed is reported as corrupt, so a looping chain neither spins nor
//!   reads a file's clusters twice;
//! - a file's chain is remembered as runs (`Volume::chains`, by first cluster) and followed only
//!   as far as the file's size; an append extends its runs, cutting forgets them, and removing,
//!   renaming or creating entries forgets them all (freed clusters may start another chain);
//! - before appending, the chain must end at the cluster holding the file's last byte: a longer
//!   chain (or a damaged link past the end: what an unclean stop leaves) is cut there first, or
//!   hadris-fat would append after clusters no entry counts.
//!
//! - hadris-fat's free-cluster count (FAT32's FSInfo) misses the first clusters given here:
//!   `Volume::own_allocated` counts them (less those given back) and the volume subtracts it
//!   whenever hadris-fat writes the FSInfo sector.
//!
//! A write that fails part-way (no space, disk error) may leave the bytes written in place so
//! far; the entry's size changes only when the append completes, and an empty file whose first
//! write failed names no cluster again.

use hadris_fat::sync::write::FileWriter;
use hadris_fat::sync::{Fat, FatVolumeWriteExt, FileEntry};

use crate::cache::{CopyInto, Sink};
use crate::disk::Disk;
use crate::error::FsError;
use crate::volume::{DirId, MAX_CHAINS, Run, Volume};
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;

/// FAT stores sizes in 32 bits.
pub const MAX_FILE_SIZE: u64 = u32::MAX as u64;

/// Bytes of zeros written per call when a file grows past a gap.
const ZERO_CHUNK: usize = 4096;

/// The 8.3 entry's disk offset and the cluster an empty file was just given, if it was.
type Given = Option<(u64, u64)>;

/// A transfer between a file and memory.
enum Transfer<'a> {
    /// This many bytes of the file, handed to the sink.
    Read(&'a mut dyn Sink, usize),
    Write(&'a [u8]),
}

impl<D: Disk> Volume<D> {
    /// Reads from the file `path` at `offset` into `buf`; returns the bytes read, 0 at or past
    /// the end of the file.
    pub fn read(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let len = buf.len();
        self.read_to(path, offset, len, &mut CopyInto::new(buf))
    }

    /// Hands up to `len` bytes of the file `path` from `offset` to `sink`, in order, as slices
    /// of the cache's pages (see [`Sink`]); returns how many it took: 0 at or past the end of
    /// the file, fewer than asked at the end or when the sink ended the read.
    pub fn read_to(&self, path: &str, offset: u64, len: usize, sink: &mut dyn Sink) -> Result<usize, FsError> {
        self.begin();
        let (entry, _) = self.file(path)?;
        let size = entry.len();
        if offset >= size || len == 0 {
            return Ok(0);
        }
        let n = (size - offset).min(len as u64) as usize;
        self.transfer(&entry, offset, Transfer::Read(sink, n))
    }

    /// Writes `data` into the file `path` at `offset`, growing it if it ends past the end (a
    /// gap between the old end and `offset` reads as zeros); returns `data.len()`.
    pub fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        self.begin();
        let (entry, parent) = self.file(path)?;
        if data.is_empty() {
            return Ok(0);
        }
        if offset == 0 && entry.cluster().0 == 0 && entry.is_empty() {
            let result = self.first_write(&entry, parent, data);
            self.entry_changed(parent, &entry);
            return result;
        }
        let (entry, given) = self.with_first_cluster(path, entry, parent)?;
        let result = self.write_entry(&entry, offset, data);
        self.settle_first_cluster(path, given, result.is_ok());
        self.entry_changed(parent, &entry);
        result
    }

    fn write_entry(&mut self, entry: &FileEntry, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        if data.is_empty() {
            return Ok(0);
        }
        let end =
            offset.checked_add(data.len() as u64).filter(|&end| end <= MAX_FILE_SIZE).ok_or(FsError::FileTooLarge)?;
        let size = entry.len();
        let in_place = if offset < size { (end.min(size) - offset) as usize } else { 0 };
        let (inside, beyond) = data.split_at(in_place);
        if !inside.is_empty() {
            self.transfer(entry, offset, Transfer::Write(inside))?;
        }
        if end <= size {
            let now = self.fs.time_provider().now();
            self.fs.set_times(entry, Some(now), None, None).map_err(|e| self.fat_error(e))?;
        } else {
            self.append(entry, offset.saturating_sub(size), beyond)?;
        }
        Ok(data.len())
    }

    /// Sets the size of the file `path`: cuts it (freeing clusters no longer needed) or grows it
    /// with zeros.
    pub fn truncate(&mut self, path: &str, len: u64) -> Result<(), FsError> {
        self.begin();
        let (entry, parent) = self.file(path)?;
        let (entry, given) = if len > 0 { self.with_first_cluster(path, entry, parent)? } else { (entry, None) };
        let result = self.truncate_entry(&entry, len);
        self.settle_first_cluster(path, given, result.is_ok());
        self.entry_changed(parent, &entry);
        result
    }

    /// The entry of the file `path` (`entry`, in `parent`) with a first cluster: an empty file
    /// without one gets it here, with the cluster it names, so that hadris-fat appends from
    /// there. (hadris-fat would search for a file's first cluster from cluster 2 on, reading
    /// every FAT entry of the used part of the volume each time; this search starts where the
    /// last one ended.)
    fn with_first_cluster(
        &self,
        path: &str,
        entry: Rc<FileEntry>,
        parent: DirId,
    ) -> Result<(Rc<FileEntry>, Given), FsError> {
        if entry.cluster().0 != 0 || !entry.is_empty() {
            return Ok((entry, None));
        }
        let slot = self.short_entry_at(parent, &entry)?;
        let cluster = self.allocate_cluster()?;
        if let Err(e) = self.set_entry_start(slot, cluster, None) {
            self.free_own_cluster(cluster);
            return Err(e);
        }
        self.entry_changed(parent, &entry);
        let (entry, _) = self.file(path)?;
        Ok((entry, Some((slot, cluster))))
    }

    /// The first write into an empty file (no cluster), at its start: the clusters it needs are
    /// taken and linked here, the bytes written through the cache, and the 8.3 entry given the
    /// first cluster, the size and the time. hadris-fat's append would search for the first
    /// cluster from cluster 2, and its `FileEntry` naming the new cluster could only be had by
    /// scanning the directory again; the directory's listing marks the entry changed instead,
    /// to be read again when next looked up. On failure every cluster taken is given back and
    /// the entry is left as it was (its cluster and size are written last).
    fn first_write(&self, entry: &FileEntry, parent: DirId, data: &[u8]) -> Result<usize, FsError> {
        let len = data.len() as u64;
        if len > MAX_FILE_SIZE {
            return Err(FsError::FileTooLarge);
        }
        let slot = self.short_entry_at(parent, entry)?;
        let first = self.allocate_cluster()?;
        let filled = (|| {
            let mut end = first;
            for _ in 1..len.div_ceil(u64::from(self.geometry.cluster_size)) {
                let next = self.allocate_cluster()?;
                if let Err(e) = self.point_fat(end, next) {
                    self.free_own_cluster(next);
                    return Err(e);
                }
                end = next;
            }
            self.transfer_in(first, len, 0, Transfer::Write(data))?;
            let now = self.fs.time_provider().now();
            self.fs.set_times(entry, Some(now), None, None).map_err(|e| self.fat_error(e))?;
            self.set_entry_start(slot, first, Some(len as u32))
        })();
        if let Err(e) = filled {
            // The entry names no cluster and holds no byte again (if a piece of it was
            // written), and the clusters are free.
            let _ = self.set_entry_start(slot, 0, Some(0));
            self.forget_chain(first);
            self.free_own_cluster(first);
            return Err(e);
        }
        Ok(data.len())
    }

    /// Writes the first cluster (and the size, if given) into the 8.3 entry at disk offset
    /// `slot`: the cluster's high half at byte 20, its low half at 26, the size at 28.
    fn set_entry_start(&self, slot: u64, cluster: u64, size: Option<u32>) -> Result<(), FsError> {
        let (high, low) = ((cluster >> 16) as u16, cluster as u16);
        self.with_cache(|c| {
            c.write_at(slot + 20, &high.to_le_bytes())?;
            c.write_at(slot + 26, &low.to_le_bytes())?;
            match size {
                Some(size) => c.write_at(slot + 28, &size.to_le_bytes()).map(|_| ()),
                None => Ok(()),
            }
        })
    }

    /// Points FAT entry `from` (in every FAT) at cluster `to`.
    fn point_fat(&self, from: u64, to: u64) -> Result<(), FsError> {
        let mut stream = self.stream();
        let linked = match self.fs.fat() {
            Fat::Fat12(f) => f.write_clus(&mut stream, from as usize, to as u16),
            Fat::Fat16(f) => f.write_clus(&mut stream, from as usize, to as u16),
            Fat::Fat32(f) => f.write_clus(&mut stream, from as usize, to as u32),
        };
        linked.map_err(|e| self.fat_error(e))
    }

    /// After a write or growth that began by giving an empty file its first cluster
    /// ([`Volume::with_first_cluster`]): if the file is still empty (it failed), the entry
    /// names no cluster again and the cluster is free.
    fn settle_first_cluster(&self, path: &str, given: Given, succeeded: bool) {
        let Some((slot, cluster)) = given else { return };
        if succeeded {
            return;
        }
        if let Ok(mut names) = self.names.try_borrow_mut() {
            names.forget_all();
        }
        let still_empty = self.resolve(path).ok().flatten().is_some_and(|(e, _)| e.is_empty());
        if still_empty && self.set_entry_start(slot, 0, None).is_ok() {
            if let Ok(mut names) = self.names.try_borrow_mut() {
                names.forget_all();
            }
            self.forget_chain(cluster);
            self.free_own_cluster(cluster);
        }
    }

    /// Finds a free cluster from [`Volume::next_free`] or hadris-fat's hint on (wrapping round) and marks it as a
    /// chain's end in every FAT; counted in [`Volume::own_allocated`].
    fn allocate_cluster(&self) -> Result<u64, FsError> {
        // hadris-fat's own hint (FAT32) follows the clusters it allocated to grow files.
        let hint = self.next_free.get().max(self.fs.next_free_cluster_hint().map_or(0, u64::from));
        let mut stream = self.stream();
        let found = match self.fs.fat() {
            Fat::Fat12(f) => f.allocate_cluster(&mut stream, hint as u16).map(u64::from),
            Fat::Fat16(f) => f.allocate_cluster(&mut stream, hint as u16).map(u64::from),
            Fat::Fat32(f) => f.allocate_cluster(&mut stream, hint as u32).map(u64::from),
        };
        let cluster = found.map_err(|e| self.fat_error(e))?;
        if !self.geometry.is_data_cluster(cluster) {
            return Err(FsError::Corrupt("a free cluster outside the volume"));
        }
        self.own_allocated.set(self.own_allocated.get() + 1);
        self.next_free.set(if cluster >= u64::from(self.geometry.max_cluster()) { 2 } else { cluster + 1 });
        Ok(cluster)
    }

    /// Frees the chain from `cluster`, which this volume allocated itself.
    fn free_own_cluster(&self, cluster: u64) {
        if let Ok(freed) = self.fs.fat().free_chain(&mut self.stream(), cluster as usize) {
            self.own_allocated.set(self.own_allocated.get() - i64::from(freed));
        }
    }

    /// Disk offset of the 8.3 entry of `entry` (a file) in the directory `dir`, found by its
    /// name (unique in a directory).
    fn short_entry_at(&self, dir: DirId, entry: &FileEntry) -> Result<u64, FsError> {
        Ok(self.find_entry(dir, &entry.short_name().raw_bytes())?.ok_or(FsError::NotFound)?.at)
    }

    /// The clusters of the directory starting at `first`, as (disk offset, bytes).
    pub(crate) fn dir_pieces(&self, first: u64) -> Result<Vec<(u64, u64)>, FsError> {
        let clusters = self.walk(Vec::new(), Run { index: 0, cluster: first, count: 1 }, u64::MAX)?;
        let size = u64::from(self.geometry.cluster_size);
        let mut pieces = Vec::new();
        for run in clusters.iter() {
            let at =
                self.geometry.cluster_offset(run.cluster).ok_or(FsError::Corrupt("directory outside the volume"))?;
            pieces.push((at, run.count * size));
        }
        Ok(pieces)
    }

    fn truncate_entry(&mut self, entry: &FileEntry, len: u64) -> Result<(), FsError> {
        if len > MAX_FILE_SIZE {
            return Err(FsError::FileTooLarge);
        }
        let size = entry.len();
        if len < size {
            // The cluster that ends what the cut keeps (none for a cut to nothing).
            let first = entry.cluster().0 as u64;
            let cluster_size = u64::from(self.geometry.cluster_size);
            let end = match len.div_ceil(cluster_size) {
                0 => None,
                keep => Some(self.cluster_at(first, keep - 1, size.div_ceil(cluster_size))?),
            };
            self.forget_chain(first);
            let len = usize::try_from(len).map_err(|_| FsError::FileTooLarge)?;
            self.free_safely_ending(end, |v| v.fs.truncate(entry, len).map_err(|e| v.fat_error(e)))
        } else if len > size {
            self.append(entry, len - size, &[])
        } else {
            Ok(())
        }
    }

    /// The entry of `entry` (in `dir`) changed on the disk: its size, time or first cluster.
    fn entry_changed(&self, dir: DirId, entry: &FileEntry) {
        if let Ok(mut names) = self.names.try_borrow_mut() {
            names.changed(dir, &entry.short_name().raw_bytes());
        }
    }

    /// The entry of the regular file `path`, its first cluster checked, and its directory.
    fn file(&self, path: &str) -> Result<(Rc<FileEntry>, DirId), FsError> {
        match self.resolve(path)? {
            Some((entry, parent)) if !entry.is_directory() => {
                self.check_chain_start(&entry)?;
                Ok((entry, parent))
            }
            _ => Err(FsError::IsADirectory),
        }
    }

    /// Appends `zeros` zero bytes, then `data`, to the file.
    fn append(&self, entry: &FileEntry, zeros: u64, data: &[u8]) -> Result<(), FsError> {
        let size = entry.len();
        let first = entry.cluster().0 as u64;
        let known = if size > 0 {
            let clusters = size.div_ceil(self.geometry.cluster_size as u64);
            let runs = self.runs(first, clusters)?;
            let last = self.cluster_at(first, clusters - 1, clusters)?;
            match self.fs.fat().next_cluster(&mut self.stream(), last as usize) {
                Ok(None) => Some(runs),
                Ok(Some(_)) | Err(_) => {
                    // Clusters past the file's end (or a damaged link there): what a stop leaves
                    // when the FAT reached the disk and the entry's new size did not (the FAT
                    // goes first). No entry counts them, so they are cut off before the file
                    // grows.
                    self.fs.fat().truncate_chain(&mut self.stream(), last as usize).map_err(|e| self.fat_error(e))?;
                    self.forget_chain(first);
                    Some(self.runs(first, clusters)?)
                }
            }
        } else {
            None
        };
        let appended = (|| {
            let mut writer = FileWriter::new_append(&self.fs, entry).map_err(|e| self.fat_error(e))?;
            let chunk = [0u8; ZERO_CHUNK];
            let mut left = zeros;
            while left > 0 {
                let n = left.min(ZERO_CHUNK as u64) as usize;
                writer.write(&chunk[..n]).map_err(|e| self.fat_error(e))?;
                left -= n as u64;
            }
            if !data.is_empty() {
                writer.write(data).map_err(|e| self.fat_error(e))?;
            }
            writer.finish().map_err(|e| self.fat_error(e))
        })();
        // The chain grew at its end: follow it on from the old last cluster only (no other
        // file's chain changed). A failure, or a file that had no cluster, is walked afresh.
        match (known, &appended) {
            (Some(runs), Ok(())) => {
                let mut runs = runs.to_vec();
                match runs.pop() {
                    Some(last) => match self.walk(runs, last, u64::MAX) {
                        Ok(runs) => self.remember(first, &runs),
                        Err(_) => self.forget_chain(first),
                    },
                    None => self.forget_chain(first),
                }
            }
            _ => self.forget_chain(first),
        }
        appended
    }

    /// Copies between the file and memory, starting at byte `offset` of the file; the range
    /// lies within the file's size. Returns the bytes moved: all of them, unless a sink ended
    /// the read.
    fn transfer(&self, entry: &FileEntry, offset: u64, op: Transfer<'_>) -> Result<usize, FsError> {
        self.transfer_in(entry.cluster().0 as u64, entry.len(), offset, op)
    }

    /// [`Volume::transfer`] for the file whose chain starts at `first` and which holds `size`
    /// bytes.
    fn transfer_in(&self, first: u64, size: u64, offset: u64, mut op: Transfer<'_>) -> Result<usize, FsError> {
        let cluster_size = self.geometry.cluster_size as u64;
        let clusters = size.div_ceil(cluster_size);
        let len = match &op {
            Transfer::Read(_, len) => *len,
            Transfer::Write(data) => data.len(),
        };
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let (cluster, contiguous) = self.locate_cluster(first, pos / cluster_size, clusters)?;
            let in_cluster = pos % cluster_size;
            let span = contiguous.saturating_mul(cluster_size) - in_cluster;
            let take = usize::try_from(span).unwrap_or(usize::MAX).min(len - done);
            let at =
                self.geometry.cluster_offset(cluster).ok_or(FsError::Corrupt("cluster number outside the volume"))?
                    + in_cluster;
            match &mut op {
                Transfer::Read(sink, _) => {
                    let got = self.with_cache(|c| {
                        let inside = at.checked_add(take as u64).is_some_and(|end| end <= c.len());
                        if inside { c.read_to(at, take, &mut **sink).map(Some) } else { Ok(None) }
                    })?;
                    match got {
                        None => return Err(FsError::Corrupt("file data lies past the end of the disk")),
                        Some(got) if got < take => return Ok(done + got),
                        Some(_) => {}
                    }
                }
                Transfer::Write(data) => {
                    let piece = &data[done..done + take];
                    self.with_cache(|c| c.write_at(at, piece))?;
                }
            }
            done += take;
        }
        Ok(len)
    }

    /// The `index`th cluster (from 0) of the chain starting at cluster `first`.
    /// The file has `clusters` clusters: the chain is followed no further.
    pub(crate) fn cluster_at(&self, first: u64, index: u64, clusters: u64) -> Result<u64, FsError> {
        self.locate_cluster(first, index, clusters).map(|(cluster, _)| cluster)
    }

    /// Disk cluster `index` of the file starting at `first` (which has `clusters` clusters),
    /// and how many clusters from it on are contiguous on the disk (so one transfer can cover
    /// them).
    fn locate_cluster(&self, first: u64, index: u64, clusters: u64) -> Result<(u64, u64), FsError> {
        let runs = self.runs(first, clusters)?;
        let at = runs.partition_point(|r| r.index + r.count <= index);
        match runs.get(at) {
            Some(r) if r.index <= index => Ok((r.cluster + (index - r.index), r.count - (index - r.index))),
            _ => Err(FsError::Corrupt("cluster chain ends before the file does")),
        }
    }

    /// The runs of the first `clusters` clusters (at least) of the chain starting at `first`:
    /// remembered, or walked now. What lies past them is never read: a file is its size, and a
    /// chain damaged only past it (what a stop can leave) still reads.
    fn runs(&self, first: u64, clusters: u64) -> Result<Rc<[Run]>, FsError> {
        if !self.geometry.is_data_cluster(first) {
            return Err(FsError::Corrupt("file data starts outside the data region"));
        }
        let covered = |runs: &Rc<[Run]>| runs.last().is_some_and(|r| r.index + r.count >= clusters);
        if let Some(runs) = self.chains.try_borrow().ok().and_then(|c| c.get(&first).cloned())
            && covered(&runs)
        {
            return Ok(runs);
        }
        let runs = self.walk(Vec::new(), Run { index: 0, cluster: first, count: 1 }, clusters)?;
        self.remember(first, &runs);
        Ok(runs)
    }

    /// Follows the chain on from the last cluster of `run` (the end of `runs`), adding runs,
    /// until it ends or `limit` clusters are known.
    fn walk(&self, mut runs: Vec<Run>, mut run: Run, limit: u64) -> Result<Rc<[Run]>, FsError> {
        let mut cluster = run.cluster + run.count - 1;
        let mut stream = self.stream();
        let mut steps = run.index + run.count;
        // The disk clusters of the runs so far, by first cluster: a chain that comes back to
        // one of them loops (a file would read its own clusters again).
        let mut seen: BTreeMap<u64, u64> = runs.iter().map(|r| (r.cluster, r.count)).collect();
        let inside = |seen: &BTreeMap<u64, u64>, c: u64| {
            seen.range(..=c).next_back().is_some_and(|(&start, &count)| c < start + count)
        };
        while run.index + run.count < limit {
            let next = match self.fs.fat().next_cluster(&mut stream, cluster as usize) {
                Ok(Some(next)) => next as u64,
                Ok(None) => break,
                Err(e) => return Err(self.fat_error(e)),
            };
            steps += 1;
            let in_run = (run.cluster..run.cluster + run.count).contains(&next);
            if steps > self.geometry.cluster_count as u64 || in_run || inside(&seen, next) {
                return Err(FsError::Corrupt("cluster chain loops"));
            }
            if !self.geometry.is_data_cluster(next) {
                return Err(FsError::Corrupt("cluster chain leaves the data region"));
            }
            if next == cluster + 1 {
                run.count += 1;
            } else {
                seen.insert(run.cluster, run.count);
                runs.push(run);
                run = Run { index: run.index + run.count, cluster: next, count: 1 };
            }
            cluster = next;
        }
        runs.push(run);
        Ok(runs.into())
    }

    /// Remembers the runs of the chain starting at `first`.
    fn remember(&self, first: u64, runs: &Rc<[Run]>) {
        if let Ok(mut chains) = self.chains.try_borrow_mut() {
            if chains.len() >= MAX_CHAINS && !chains.contains_key(&first) {
                chains.clear();
            }
            chains.insert(first, Rc::clone(runs));
        }
    }

    /// Forgets the runs of the chain starting at `first` (it was cut).
    fn forget_chain(&self, first: u64) {
        if let Ok(mut chains) = self.chains.try_borrow_mut() {
            chains.remove(&first);
        }
    }

    /// Forgets every remembered chain (one changed: clusters were added, cut or freed).
    pub(crate) fn forget_chains(&self) {
        if let Ok(mut chains) = self.chains.try_borrow_mut() {
            chains.clear();
        }
    }
}
