//! A write-back page cache that makes a [`Disk`] a byte stream.
//!
//! [`Cache`] owns the disk and at most `capacity` pages of [`PAGE_SIZE`] bytes. Page `p` mirrors
//! bytes `p * PAGE_SIZE ..` of the disk (the last page may be shorter when the disk is not a
//! whole number of pages). Invariants:
//!
//! - each slot tracks, per disk block, whether it holds that block's current contents (`valid`)
//!   and whether it is newer than the disk (`dirty`); `dirty ⊆ valid`. A write that covers whole
//!   blocks makes them valid without reading the disk; a write into part of a block that is not
//!   valid reads the page first (read-modify-write), and so does a read of blocks not valid;
//! - dirty blocks reach the disk only in [`Cache::sync`] (all of them, in ascending block order,
//!   adjacent ones merged into one request, then [`Disk::flush`]) or when their page is evicted
//!   to make room (clock algorithm: a page used since the hand last passed gets a second chance);
//!   a failed write leaves its blocks dirty; while an operation that frees clusters or makes
//!   directory clusters runs, pages that may not leave yet stay and the cache grows past its
//!   capacity, giving the pages back afterwards ([`Cache::trim`]); such an operation may also
//!   write chosen blocks in its own order ([`Cache::write_blocks`],
//!   [`Cache::write_first_blocks_holding`]);
//! - reads past the end of the disk return 0 bytes; a write that would reach past the end fails
//!   with [`DiskError::OutOfRange`] and changes nothing;
//! - [`Write::flush`] does nothing: only `sync` makes data durable.
//!
//! Every transfer to or from the disk is counted in [`CacheStats`].

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use hadris_fat::sync::{Error as IoError, IoResult, Read, Seek, SeekFrom, Write};

use crate::disk::{Disk, DiskError, valid_block_size};
use crate::links::FatLayout;
use crate::pageindex::PageIndex;

/// Bytes per cache page.
pub const PAGE_SIZE: usize = 4096;

/// Largest single disk request `sync` builds by merging adjacent dirty blocks.
const MAX_WRITE_RUN: usize = 64 * PAGE_SIZE;
/// Most pages one read-ahead brings in when reads go on where the last one ended (256 KiB;
/// never more than half the cache).
const READ_AHEAD: usize = 64;
/// Pages a read-ahead brings in elsewhere (32 KiB: a cluster or a few of metadata).
const READ_AHEAD_RANDOM: usize = 8;

/// What a [`Cache`] has done since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Page lookups served from memory.
    pub hits: u64,
    /// Page lookups that had to take a slot (and maybe read the disk).
    pub misses: u64,
    /// Pages dropped to make room (their dirty blocks written first).
    pub evictions: u64,
    /// [`Disk::read`] calls.
    pub disk_reads: u64,
    /// [`Disk::write`] calls.
    pub disk_writes: u64,
    /// Blocks read from the disk.
    pub blocks_read: u64,
    /// Blocks written to the disk.
    pub blocks_written: u64,
    /// [`Disk::flush`] calls.
    pub flushes: u64,
}

/// One cached page.
struct Slot {
    /// The page held, or `None` for a slot being (re)filled.
    page: Option<u64>,
    data: Box<[u8]>,
    /// Bit `b`: block `b` of the page holds current contents.
    valid: u8,
    /// Bit `b`: block `b` is newer than the disk. Always a subset of `valid`.
    dirty: u8,
    /// Used since the clock hand last passed.
    referenced: bool,
}

/// Where [`Cache::read_to`] hands the bytes it reads: slices of the cache's pages, in order. A
/// sink may keep where they are instead of copying them (a file server has the kernel copy
/// them into a client's memory): they stay as they are until the sink is told to
/// [`flush`](Sink::flush), which comes before the cache changes, and until the read ends.
pub trait Sink {
    /// Takes the next bytes; `false` ends the read before them.
    fn take(&mut self, bytes: &[u8]) -> bool;
    /// Uses everything taken so far, whose memory is about to change; `false` ends the read.
    fn flush(&mut self) -> bool;
}

/// The sink that copies into a buffer ([`Cache::read_at`], [`crate::Volume::read`]).
pub(crate) struct CopyInto<'a> {
    buf: &'a mut [u8],
    done: usize,
}

impl<'a> CopyInto<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        CopyInto { buf, done: 0 }
    }
}

impl Sink for CopyInto<'_> {
    #[inline(always)]
    fn take(&mut self, bytes: &[u8]) -> bool {
        self.buf[self.done..self.done + bytes.len()].copy_from_slice(bytes);
        self.done += bytes.len();
        true
    }

    #[inline(always)]
    fn flush(&mut self) -> bool {
        true
    }
}

/// A bounded write-back cache of 4 KiB pages over a [`Disk`], readable, writable and seekable
/// as one byte stream (`hadris_io::sync::{Read, Write, Seek}`, all with [`DiskError`]).
pub struct Cache<D: Disk> {
    disk: D,
    block_size: usize,
    /// Disk blocks per page: 1, 2, 4 or 8.
    blocks_per_page: usize,
    blocks: u64,
    /// Disk size in bytes.
    len: u64,
    capacity: usize,
    slots: Vec<Slot>,
    /// Page number to slot index, for every slot whose `page` is `Some`.
    index: PageIndex,
    hand: usize,
    /// Stream position for the `Read`/`Write`/`Seek` implementations.
    pos: u64,
    stats: CacheStats,
    /// Last error the stream implementations returned (hadris-fat keeps only its kind).
    last_error: Option<DiskError>,
    /// A write reached the disk since the last `Disk::flush`.
    unflushed: bool,
    /// Staging buffer for merged writes.
    scratch: Vec<u8>,
    /// Staging buffer for page fills (a page, allocated on first use).
    fill_buf: Box<[u8]>,
    /// Staging buffer for read-ahead (as large as the largest read-ahead yet: up to
    /// [`READ_AHEAD`] pages).
    ahead_buf: Box<[u8]>,
    /// The page after the last read-ahead: a miss there reads on sequentially.
    ahead_next: u64,
    /// The page last looked up and its slot (`u64::MAX`: none), checked before the map.
    last_page: u64,
    last_slot: usize,
    /// Pages holding dirty blocks, in order.
    dirty_pages: BTreeSet<u64>,
    /// Blocks written before all others (see [`Cache::set_first_blocks`]).
    first_blocks: core::ops::Range<u64>,
    /// An operation that frees clusters is running (see [`Cache::set_freeing`]).
    freeing: bool,
    /// An operation that may make directory clusters is running (see [`Cache::set_holding`]).
    holding: bool,
    /// While tracing ([`Cache::trace`]): the blocks outside the first blocks that were written,
    /// each once, in the order first written, and whether that first write marked an entry
    /// deleted.
    touched: Option<Vec<(u64, bool)>>,
    /// Where the FATs lie, to find links written out of order (see `links.rs`).
    layout: Option<FatLayout>,
    /// The disk's bytes of each dirty FAT block, kept when it was first made dirty (while a
    /// layout is set).
    shadows: BTreeMap<u64, Box<[u8]>>,
}

impl<D: Disk> Cache<D> {
    /// A cache of at most `capacity_pages` pages (at least one) over `disk`. Fails with
    /// [`DiskError::Invalid`] if the disk's block size is not a power of two from 512 to 4096.
    pub fn new(disk: D, capacity_pages: usize) -> Result<Self, DiskError> {
        let block_size = disk.block_size();
        if !valid_block_size(block_size) {
            return Err(DiskError::Invalid);
        }
        let blocks = disk.blocks();
        let len = blocks.checked_mul(block_size as u64).ok_or(DiskError::Invalid)?;
        Ok(Self {
            disk,
            block_size,
            blocks_per_page: PAGE_SIZE / block_size,
            blocks,
            len,
            capacity: capacity_pages.max(1),
            slots: Vec::new(),
            index: PageIndex::new(),
            hand: 0,
            pos: 0,
            stats: CacheStats::default(),
            last_error: None,
            unflushed: false,
            scratch: Vec::new(),
            fill_buf: Box::default(),
            ahead_buf: Box::default(),
            ahead_next: u64::MAX,
            last_page: u64::MAX,
            last_slot: 0,
            dirty_pages: BTreeSet::new(),
            first_blocks: 0..0,
            freeing: false,
            holding: false,
            touched: None,
            layout: None,
            shadows: BTreeMap::new(),
        })
    }

    /// Size of the disk in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the disk has no blocks.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most pages held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Pages in memory now: at most the capacity, except while an operation that frees clusters
    /// or makes directory clusters runs ([`Cache::trim`]).
    pub fn pages(&self) -> usize {
        self.slots.len()
    }

    /// Counts of lookups and disk transfers so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Pages holding data not yet on the disk.
    pub fn dirty_pages(&self) -> usize {
        self.dirty_pages.len()
    }

    /// Whether the disk holds everything: no dirty block, and no write since the last flush.
    pub fn is_synced(&self) -> bool {
        self.dirty_pages.is_empty() && !self.unflushed
    }

    /// The disk underneath (for inspection; writes to it would bypass the cache).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Syncs and gives the disk back.
    pub fn into_disk(mut self) -> Result<D, DiskError> {
        self.sync()?;
        Ok(self.disk)
    }

    /// The last error the stream methods returned, taken (the FAT layer sees only its kind).
    pub(crate) fn take_error(&mut self) -> Option<DiskError> {
        self.last_error.take()
    }

    /// Forgets the recorded stream error.
    pub(crate) fn clear_error(&mut self) {
        self.last_error = None;
    }

    /// Copies up to `buf.len()` bytes from disk offset `offset`; fewer (maybe 0) at the end of
    /// the disk.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, DiskError> {
        let len = buf.len();
        self.read_with(offset, len, &mut CopyInto::new(buf))
    }

    /// Hands up to `len` bytes from disk offset `offset` to `sink`, in order, as slices of the
    /// cache's own pages (fewer, maybe 0, at the end of the disk); before the cache reads the
    /// disk or takes a page, the sink is told to use what it holds ([`Sink::flush`]). Returns
    /// the bytes the sink took: fewer than asked also when it stopped the read.
    pub fn read_to(&mut self, offset: u64, len: usize, sink: &mut dyn Sink) -> Result<usize, DiskError> {
        self.read_with(offset, len, sink)
    }

    /// [`Cache::read_at`] and [`Cache::read_to`]: one instance each, so a copy (the metadata
    /// reads of the FAT layer, a few bytes each) pays no call per page.
    #[inline(always)]
    fn read_with<S: Sink + ?Sized>(&mut self, offset: u64, len: usize, sink: &mut S) -> Result<usize, DiskError> {
        if offset >= self.len {
            return Ok(0);
        }
        let n = len.min(usize::try_from(self.len - offset).unwrap_or(usize::MAX));
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let page = pos / PAGE_SIZE as u64;
            let in_page = (pos % PAGE_SIZE as u64) as usize;
            let take = (PAGE_SIZE - in_page).min(n - done);
            let wanted = if take == PAGE_SIZE { bits(0, self.blocks_per_page) } else { self.block_mask(in_page, take) };
            // Most reads stay in the page of the one before (FAT entries, directory entries):
            // no map lookup.
            let known = if page == self.last_page { Some(self.last_slot) } else { self.index.get(page) };
            let slot = match known {
                Some(slot) if self.slots[slot].valid & wanted == wanted => self.hit(page, slot),
                _ => {
                    // The cache changes from here on: what the sink holds must be used first.
                    if !sink.flush() {
                        return Ok(done);
                    }
                    let slot = match known {
                        Some(slot) => self.hit(page, slot),
                        None => {
                            self.read_ahead(page)?;
                            self.slot_for(page)?
                        }
                    };
                    if self.slots[slot].valid & wanted != wanted {
                        self.fill(slot, page)?;
                    }
                    slot
                }
            };
            if !sink.take(&self.slots[slot].data[in_page..in_page + take]) {
                return Ok(done);
            }
            done += take;
        }
        Ok(n)
    }

    /// Writes all of `data` at disk offset `offset` into the cache (not yet to the disk). Fails
    /// with [`DiskError::OutOfRange`], writing nothing, if it would reach past the end.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<usize, DiskError> {
        let end = offset.checked_add(data.len() as u64).ok_or(DiskError::OutOfRange)?;
        if end > self.len {
            return Err(DiskError::OutOfRange);
        }
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let page = pos / PAGE_SIZE as u64;
            let in_page = (pos % PAGE_SIZE as u64) as usize;
            let take = (PAGE_SIZE - in_page).min(data.len() - done);
            let slot = self.slot_for(page)?;
            let covered = self.block_mask(in_page, take);
            // Blocks only partly overwritten must first hold what the disk has.
            let whole = self.whole_block_mask(in_page, take);
            if self.slots[slot].valid & (covered & !whole) != covered & !whole {
                self.fill(slot, page)?;
            }
            if self.touched.is_some() {
                // hadris-fat deletes an entry by writing the one byte 0xE5 over each of its slots.
                self.note_touched(page, covered, data == [0xE5]);
            }
            self.keep_shadows(slot, page, covered);
            let s = &mut self.slots[slot];
            s.data[in_page..in_page + take].copy_from_slice(&data[done..done + take]);
            s.valid |= covered;
            s.dirty |= covered;
            self.dirty_pages.insert(page);
            done += take;
        }
        Ok(data.len())
    }

    /// Writes every dirty block to the disk: the first blocks (highest page first), a flush,
    /// then the others in ascending block order (adjacent blocks merged into one request), a
    /// flush. On error the blocks not yet written stay dirty.
    pub fn sync(&mut self) -> Result<(), DiskError> {
        let first = self.first_blocks.clone();
        self.write_first_blocks_descending()?;
        self.flush_written()?;
        self.write_dirty(|block| !first.contains(&block))?;
        self.flush_written()
    }

    /// Like [`Cache::sync`], but the other blocks go to the disk (flushed) before the first
    /// blocks ([`Cache::set_first_blocks`]): the order that makes freeing safe (an entry stops
    /// pointing at clusters before the FAT frees them). Of the first blocks, the dirty ones in
    /// `early` (those ending a chain a cut keeps) go out, flushed, before the rest (those
    /// freeing what follows): no stop leaves a kept chain running into a freed cluster.
    pub fn sync_others_first(&mut self, early: &[u64]) -> Result<(), DiskError> {
        let first = self.first_blocks.clone();
        self.write_dirty(|block| !first.contains(&block))?;
        self.flush_written()?;
        let per = self.blocks_per_page as u64;
        let pages: BTreeSet<u64> = early.iter().map(|b| b / per).collect();
        let pages: Vec<u64> = pages.into_iter().collect();
        self.write_dirty_in(&pages, |block| first.contains(&block) && early.contains(&block))?;
        self.flush_written()?;
        self.write_first_blocks_descending()?;
        self.flush_written()
    }

    /// Names the blocks written before all others (`first`: the FATs, so that a cluster is
    /// marked in use on the disk before any entry or chain that points at it is written):
    /// [`Cache::sync`] writes them first and flushes between, and a dirty page outside them is
    /// evicted only once they are on the disk.
    pub fn set_first_blocks(&mut self, first: core::ops::Range<u64>) {
        self.first_blocks = first;
    }

    /// Writes the dirty first blocks (the FATs) one page at a time from the highest down: a
    /// chain usually grows towards higher clusters, so a new cluster's end mark reaches the disk
    /// before the link that points at it, and a stop in between leaves a lost cluster rather
    /// than a link to a free one.
    fn write_first_blocks_descending(&mut self) -> Result<(), DiskError> {
        // Links to clusters whose entries lie in lower blocks wait for a second pass (see
        // `links.rs`): the first writes them as the disk has them, and flushes.
        let held = self.wrapped_links();
        if !held.is_empty() {
            let held: Vec<(u64, &[u8])> = held.iter().map(|(at, bytes)| (*at, &bytes[..])).collect();
            self.write_first_blocks_holding(&held)?;
        }
        let first = self.first_blocks.clone();
        let per = self.blocks_per_page as u64;
        let pages: Vec<u64> =
            self.dirty_pages.range(first.start / per..first.end.div_ceil(per)).rev().copied().collect();
        for page in pages {
            self.write_dirty_in(&[page], |block| first.contains(&block))?;
        }
        self.shadows.clear();
        Ok(())
    }

    /// Names where the FATs lie (FAT16 and FAT32), so that [`Cache::sync`] and evictions hold
    /// back links written out of order (see `links.rs`).
    pub(crate) fn set_fat_layout(&mut self, layout: FatLayout) {
        self.layout = Some(layout);
    }

    /// Keeps the disk's bytes of the FAT blocks of `covered` in `slot` (holding `page`) that
    /// are about to become dirty and are held whole.
    fn keep_shadows(&mut self, slot: usize, page: u64, covered: u8) {
        let base = page * self.blocks_per_page as u64;
        // Data and directory writes (most writes) touch no FAT block: nothing to look at.
        let outside = base >= self.first_blocks.end || base + self.blocks_per_page as u64 <= self.first_blocks.start;
        if self.layout.is_none() || outside {
            return;
        }
        for b in 0..self.blocks_per_page {
            let block = base + b as u64;
            let s = &self.slots[slot];
            let bit = 1u8 << b;
            if covered & bit != 0 && s.dirty & bit == 0 && s.valid & bit != 0 && self.first_blocks.contains(&block) {
                let bytes = s.data[b * self.block_size..(b + 1) * self.block_size].into();
                self.shadows.insert(block, bytes);
            }
        }
    }

    /// The held links of every dirty FAT block with a shadow (see `links.rs`).
    fn wrapped_links(&self) -> Vec<(u64, Vec<u8>)> {
        let Some(layout) = self.layout else { return Vec::new() };
        let per = self.blocks_per_page as u64;
        let bs = self.block_size as u64;
        // A link to a lower block matters only if that block is dirty too (the new cluster's
        // end mark not yet on the disk): the lowest dirty block of each FAT copy holds none.
        // So with one dirty block a copy (a file growing within one block), nothing is read.
        let copy_of = |block: u64| ((block * bs).saturating_sub(layout.start) / layout.size.max(1)) as usize;
        let first = self.first_blocks.clone();
        let mut lowest = [u64::MAX; 2];
        for &page in self.dirty_pages.range(first.start / per..first.end.div_ceil(per)) {
            let Some(slot) = self.index.get(page) else { continue };
            let dirty = self.slots[slot].dirty;
            for b in (0..self.blocks_per_page).filter(|b| dirty & (1 << b) != 0) {
                let block = page * per + b as u64;
                if first.contains(&block)
                    && let Some(low) = lowest.get_mut(copy_of(block))
                {
                    *low = (*low).min(block);
                }
            }
        }
        let mut out = Vec::new();
        for (&block, old) in &self.shadows {
            if lowest.get(copy_of(block)).is_none_or(|&low| block <= low) {
                continue;
            }
            let Some(slot) = self.index.get(block / per) else { continue };
            let b = (block % per) as usize;
            if self.slots[slot].dirty & (1 << b) == 0 {
                continue;
            }
            let new = &self.slots[slot].data[b * self.block_size..(b + 1) * self.block_size];
            out.extend(layout.wrapped_links(block * self.block_size as u64, old, new));
        }
        out
    }

    /// Writes the dirty blocks `pick` chooses, in ascending order, adjacent ones merged.
    fn write_dirty(&mut self, pick: impl Fn(u64) -> bool) -> Result<(), DiskError> {
        let pages: Vec<u64> = self.dirty_pages.iter().copied().collect();
        self.write_dirty_in(&pages, pick)
    }

    /// Writes the dirty blocks `pick` chooses of `pages` (ascending), adjacent ones merged.
    fn write_dirty_in(&mut self, pages: &[u64], pick: impl Fn(u64) -> bool) -> Result<(), DiskError> {
        let mut run = Run::default();
        for &page in pages {
            let Some(slot) = self.index.get(page) else { continue };
            let base = page * self.blocks_per_page as u64;
            let mut mask = self.slots[slot].dirty;
            for b in 0..self.blocks_per_page {
                if mask & (1 << b) != 0 && !pick(base + b as u64) {
                    mask &= !(1 << b);
                }
            }
            while mask != 0 {
                let lo = mask.trailing_zeros() as usize;
                let len = (!(mask >> lo)).trailing_zeros() as usize;
                let bits = (((1u16 << len) - 1) << lo) as u8;
                mask &= !bits;
                let block = base + lo as u64;
                let bytes = len * self.block_size;
                if !run.extends(block, bytes) {
                    self.write_run(&mut run)?;
                }
                if run.bytes == 0 {
                    run.first_block = block;
                }
                let start = lo * self.block_size;
                self.scratch.truncate(run.bytes);
                self.scratch.extend_from_slice(&self.slots[slot].data[start..start + bytes]);
                run.bytes += bytes;
                run.blocks += len as u64;
                run.parts.push((slot, bits));
            }
        }
        self.write_run(&mut run)
    }

    /// Writes a merged run staged in `scratch` and marks its blocks clean.
    fn write_run(&mut self, run: &mut Run) -> Result<(), DiskError> {
        if run.bytes == 0 {
            return Ok(());
        }
        self.disk.write(run.first_block, &self.scratch[..run.bytes])?;
        self.stats.disk_writes += 1;
        self.stats.blocks_written += run.blocks;
        self.unflushed = true;
        for &(slot, bits) in &run.parts {
            self.slots[slot].dirty &= !bits;
            if self.slots[slot].dirty == 0
                && let Some(page) = self.slots[slot].page
            {
                self.dirty_pages.remove(&page);
            }
        }
        *run = Run::default();
        self.scratch.clear();
        Ok(())
    }

    /// Bits of the blocks touched by bytes `in_page .. in_page + len` of a page.
    fn block_mask(&self, in_page: usize, len: usize) -> u8 {
        if len == 0 {
            return 0;
        }
        let first = in_page / self.block_size;
        let last = (in_page + len - 1) / self.block_size;
        bits(first, last + 1)
    }

    /// Bits of the blocks wholly covered by bytes `in_page .. in_page + len` of a page.
    fn whole_block_mask(&self, in_page: usize, len: usize) -> u8 {
        let first = in_page.div_ceil(self.block_size);
        let end = (in_page + len) / self.block_size;
        if end > first { bits(first, end) } else { 0 }
    }

    /// Blocks of `page` that exist on the disk.
    fn page_blocks(&self, page: u64) -> usize {
        let first = page * self.blocks_per_page as u64;
        self.blocks.saturating_sub(first).min(self.blocks_per_page as u64) as usize
    }

    /// Notes a lookup of `page` found in `slot`; returns the slot.
    fn hit(&mut self, page: u64, slot: usize) -> usize {
        self.stats.hits += 1;
        self.slots[slot].referenced = true;
        (self.last_page, self.last_slot) = (page, slot);
        slot
    }

    /// The slot holding `page`, taking one (evicting if full) on a miss. A new slot holds no
    /// valid blocks.
    fn slot_for(&mut self, page: u64) -> Result<usize, DiskError> {
        if let Some(slot) = self.index.get(page) {
            return Ok(self.hit(page, slot));
        }
        self.stats.misses += 1;
        let slot = if self.slots.len() < self.capacity { self.new_slot() } else { self.evict()? };
        let s = &mut self.slots[slot];
        s.page = Some(page);
        s.valid = 0;
        s.dirty = 0;
        s.referenced = true;
        self.index.insert(page, slot);
        (self.last_page, self.last_slot) = (page, slot);
        Ok(slot)
    }

    /// A new, empty slot.
    fn new_slot(&mut self) -> usize {
        self.slots.push(Slot {
            page: None,
            data: vec![0; PAGE_SIZE].into_boxed_slice(),
            valid: 0,
            dirty: 0,
            referenced: false,
        });
        self.slots.len() - 1
    }

    /// Frees a slot by the clock algorithm, writing its dirty blocks first.
    fn evict(&mut self) -> Result<usize, DiskError> {
        // The first sweep clears every reference bit it passes, so the second finds a victim.
        for _ in 0..2 * self.slots.len() {
            let slot = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            if self.slots[slot].referenced {
                self.slots[slot].referenced = false;
                continue;
            }
            if self.slots[slot].dirty != 0 {
                if self.holding {
                    // A directory cluster being made may not yet be on the disk: nothing that
                    // may point at it (an entry, a FAT link) leaves before it (see `slot_for`).
                    continue;
                }
                if self.freeing {
                    // Freeing: no FAT block may reach the disk before the entry that stops
                    // pointing at its clusters, which may not even be changed yet: such a page
                    // stays, and the cache grows past its capacity for this operation instead
                    // (see `slot_for`).
                    if !self.only_other_blocks_dirty(slot) {
                        continue;
                    }
                } else if !self.only_other_blocks_dirty(slot) || !self.only_first_blocks_dirty(slot) {
                    // FAT blocks go out together, highest first (as `sync` writes them), and
                    // entries and data only after the FAT blocks they rely on.
                    self.write_dirty_first_blocks()?;
                }
            }
            self.write_back(slot)?;
            if let Some(page) = self.slots[slot].page.take() {
                self.dirty_pages.remove(&page);
                self.index.remove(page);
                if page == self.last_page {
                    self.last_page = u64::MAX;
                }
            }
            self.stats.evictions += 1;
            return Ok(slot);
        }
        if self.freeing || self.holding {
            // Every page holds blocks that may not leave yet: one more page, beyond the
            // capacity, for this operation.
            return Ok(self.new_slot());
        }
        Err(DiskError::Invalid)
    }

    /// Whether every dirty block of `slot` is one of the first blocks.
    fn only_first_blocks_dirty(&self, slot: usize) -> bool {
        let Some(page) = self.slots[slot].page else { return true };
        let base = page * self.blocks_per_page as u64;
        (0..self.blocks_per_page)
            .filter(|b| self.slots[slot].dirty & (1 << b) != 0)
            .all(|b| self.first_blocks.contains(&(base + b as u64)))
    }

    /// Whether every dirty block of `slot` is outside the first blocks.
    fn only_other_blocks_dirty(&self, slot: usize) -> bool {
        let Some(page) = self.slots[slot].page else { return true };
        let base = page * self.blocks_per_page as u64;
        (0..self.blocks_per_page)
            .filter(|b| self.slots[slot].dirty & (1 << b) != 0)
            .all(|b| !self.first_blocks.contains(&(base + b as u64)))
    }

    /// Flushes the disk if anything was written since the last flush.
    fn flush_written(&mut self) -> Result<(), DiskError> {
        if self.unflushed {
            self.disk.flush()?;
            self.stats.flushes += 1;
            self.unflushed = false;
        }
        Ok(())
    }

    /// While `freeing` (an operation that frees clusters runs), evictions write the other
    /// blocks first and the first blocks (FATs) last, as [`Cache::sync_others_first`] does.
    pub fn set_freeing(&mut self, freeing: bool) {
        self.freeing = freeing;
    }

    /// While `holding` (an operation that may make directory clusters runs), no dirty page is
    /// evicted: the cache grows past its capacity for the operation instead, so the operation
    /// can then write what it changed in an order of its choosing.
    pub fn set_holding(&mut self, holding: bool) {
        self.holding = holding;
    }

    /// Gives back the pages an operation took beyond the capacity (while freeing or holding),
    /// as far as the last ones are clean; a dirty one stays until a later call.
    pub fn trim(&mut self) {
        while self.slots.len() > self.capacity {
            let last = self.slots.len() - 1;
            if self.slots[last].dirty != 0 {
                return;
            }
            if let Some(page) = self.slots[last].page {
                self.index.remove(page);
                self.dirty_pages.remove(&page);
            }
            if self.last_slot == last {
                self.last_page = u64::MAX;
            }
            self.slots.pop();
            self.hand %= self.slots.len().max(1);
        }
    }

    /// Starts noting the blocks outside the first blocks that are written (forgetting any noted
    /// before), until [`Cache::take_trace`].
    pub fn trace(&mut self) {
        self.touched = Some(Vec::new());
    }

    /// Stops noting and gives the blocks written since [`Cache::trace`], each once, in the order
    /// first written, each with whether that first write marked an entry deleted.
    pub fn take_trace(&mut self) -> Vec<(u64, bool)> {
        self.touched.take().unwrap_or_default()
    }

    /// Notes the blocks `mask` of `page` that are outside the first blocks, if not yet noted.
    fn note_touched(&mut self, page: u64, mask: u8, deleting: bool) {
        let base = page * self.blocks_per_page as u64;
        let first = self.first_blocks.clone();
        let Some(touched) = self.touched.as_mut() else { return };
        for b in 0..self.blocks_per_page {
            let block = base + b as u64;
            if mask & (1 << b) != 0 && !first.contains(&block) && !touched.iter().any(|&(t, _)| t == block) {
                touched.push((block, deleting));
            }
        }
    }

    /// Writes those of `blocks` that are dirty, in the order given, each stretch of neighbours
    /// in ascending order as one request and followed by a flush (so no disk reorders them).
    pub fn write_blocks(&mut self, blocks: &[u64]) -> Result<(), DiskError> {
        let per = self.blocks_per_page as u64;
        let mut i = 0;
        while i < blocks.len() {
            // A stretch of ascending neighbours goes out as one merged write.
            let mut end = i + 1;
            while end < blocks.len() && blocks[end] == blocks[end - 1] + 1 {
                end += 1;
            }
            let stretch = blocks[i]..blocks[end - 1] + 1;
            let pages: Vec<u64> = (stretch.start / per..stretch.end.div_ceil(per)).collect();
            self.write_dirty_in(&pages, |block| stretch.contains(&block))?;
            self.flush_written()?;
            i = end;
        }
        Ok(())
    }

    /// Writes every dirty first block (the FATs), highest page first, except that the bytes of
    /// each `held` span (a disk offset and the bytes the disk should keep there for now) are
    /// written as given and their blocks stay dirty; then flushes. A later
    /// [`Cache::sync`] (or this with nothing held) writes what was held back.
    pub fn write_first_blocks_holding(&mut self, held: &[(u64, &[u8])]) -> Result<(), DiskError> {
        if held.is_empty() {
            return self.write_dirty_first_blocks();
        }
        let bs = self.block_size as u64;
        let overlaps =
            |block: u64| held.iter().any(|&(at, bytes)| at < (block + 1) * bs && at + bytes.len() as u64 > block * bs);
        // The blocks holding none of the spans go out as usual.
        let first = self.first_blocks.clone();
        let per = self.blocks_per_page as u64;
        let pages: Vec<u64> =
            self.dirty_pages.range(first.start / per..first.end.div_ceil(per)).rev().copied().collect();
        for &page in &pages {
            self.write_dirty_in(&[page], |block| first.contains(&block) && !overlaps(block))?;
        }
        // Those holding one: a copy with the held bytes in place, the cache's block still dirty.
        for &page in &pages {
            let Some(slot) = self.index.get(page) else { continue };
            for b in (0..self.blocks_per_page).rev() {
                let block = page * per + b as u64;
                if self.slots[slot].dirty & (1 << b) == 0 || !first.contains(&block) || !overlaps(block) {
                    continue;
                }
                let start = b * self.block_size;
                let mut copy = self.slots[slot].data[start..start + self.block_size].to_vec();
                for &(at, bytes) in held {
                    for (k, &byte) in bytes.iter().enumerate() {
                        let pos = at + k as u64;
                        if pos / bs == block {
                            copy[(pos % bs) as usize] = byte;
                        }
                    }
                }
                self.disk.write(block, &copy)?;
                self.stats.disk_writes += 1;
                self.stats.blocks_written += 1;
                self.unflushed = true;
            }
        }
        self.flush_written()
    }

    /// Writes and flushes every dirty first block (before a page outside them leaves).
    fn write_dirty_first_blocks(&mut self) -> Result<(), DiskError> {
        if self.first_blocks.is_empty() {
            return Ok(());
        }
        self.write_first_blocks_descending()?;
        self.flush_written()
    }

    /// Writes a slot's dirty blocks (one request per run of adjacent ones).
    fn write_back(&mut self, slot: usize) -> Result<(), DiskError> {
        let Some(page) = self.slots[slot].page else {
            return Ok(());
        };
        while self.slots[slot].dirty != 0 {
            let mask = self.slots[slot].dirty;
            let lo = mask.trailing_zeros() as usize;
            let len = (!(mask >> lo)).trailing_zeros() as usize;
            let start = lo * self.block_size;
            let end = start + len * self.block_size;
            let block = page * self.blocks_per_page as u64 + lo as u64;
            self.disk.write(block, &self.slots[slot].data[start..end])?;
            self.stats.disk_writes += 1;
            self.stats.blocks_written += len as u64;
            self.unflushed = true;
            self.slots[slot].dirty &= !bits(lo, lo + len);
        }
        Ok(())
    }

    /// Reads the blocks of `page` the slot does not hold yet (one request spanning them), keeping
    /// the blocks it does hold.
    fn fill(&mut self, slot: usize, page: u64) -> Result<(), DiskError> {
        let all = bits(0, self.page_blocks(page));
        let missing = all & !self.slots[slot].valid;
        if missing == 0 {
            return Ok(());
        }
        let lo = missing.trailing_zeros() as usize;
        let hi = 8 - missing.leading_zeros() as usize;
        let bytes = (hi - lo) * self.block_size;
        if self.fill_buf.is_empty() {
            self.fill_buf = vec![0; PAGE_SIZE].into_boxed_slice();
        }
        let block = page * self.blocks_per_page as u64 + lo as u64;
        self.disk.read(block, &mut self.fill_buf[..bytes])?;
        self.stats.disk_reads += 1;
        self.stats.blocks_read += (hi - lo) as u64;
        let s = &mut self.slots[slot];
        for b in lo..hi {
            if missing & (1 << b) != 0 {
                let src = (b - lo) * self.block_size;
                let dst = b * self.block_size;
                s.data[dst..dst + self.block_size].copy_from_slice(&self.fill_buf[src..src + self.block_size]);
            }
        }
        s.valid |= missing;
        Ok(())
    }

    /// Reads `page` and the pages after it that are not cached either (at most
    /// [`READ_AHEAD`] in all, never past the disk or more than half the cache) with one disk
    /// request, into slots of their own: a file or directory read in order then costs one
    /// request per 256 KiB instead of one per page (32 KiB when the miss does not continue the
    /// last read-ahead).
    fn read_ahead(&mut self, page: u64) -> Result<(), DiskError> {
        let last_page = self.blocks.div_ceil(self.blocks_per_page as u64);
        let window = if page == self.ahead_next { READ_AHEAD } else { READ_AHEAD_RANDOM };
        let limit = window.min(self.capacity / 2).max(1) as u64;
        let mut count = 0;
        while count < limit && page + count < last_page && !self.index.contains(page + count) {
            count += 1;
        }
        self.ahead_next = page + count;
        if count <= 1 {
            return Ok(());
        }
        let first_block = page * self.blocks_per_page as u64;
        let blocks = (self.blocks - first_block).min(count * self.blocks_per_page as u64);
        let bytes = blocks as usize * self.block_size;
        let mut buf = core::mem::take(&mut self.ahead_buf);
        if buf.len() < bytes {
            // Only as large as this read-ahead: a new cache's first one is a random one (32
            // KiB), and zeroing the whole 256 KiB cost a mounted VSF 28k instructions.
            buf = vec![0; bytes].into_boxed_slice();
        }
        let read = self.disk.read(first_block, &mut buf[..bytes]);
        let result = read.and_then(|()| {
            self.stats.disk_reads += 1;
            self.stats.blocks_read += blocks;
            for i in 0..count {
                let at = i as usize * PAGE_SIZE;
                if at >= bytes {
                    break;
                }
                let slot = self.slot_for(page + i)?;
                let valid = bits(0, self.page_blocks(page + i));
                let end = (at + PAGE_SIZE).min(bytes);
                let s = &mut self.slots[slot];
                s.data[..end - at].copy_from_slice(&buf[at..end]);
                s.valid = valid;
            }
            Ok(())
        });
        self.ahead_buf = buf;
        result
    }

    /// Records a stream error for [`Cache::take_error`] and returns it in hadris-io's shape.
    fn record(&mut self, error: DiskError) -> IoError<DiskError> {
        self.last_error = Some(error);
        IoError::from_source(error)
    }
}

/// Bits `from .. to` of a block mask (`to` at most 8).
fn bits(from: usize, to: usize) -> u8 {
    (((1u16 << to) - 1) & !((1u16 << from) - 1)) as u8
}

/// Dirty blocks staged in `scratch` for one merged disk write.
#[derive(Default)]
struct Run {
    first_block: u64,
    blocks: u64,
    bytes: usize,
    /// Slot and block bits each piece came from, to mark clean once written.
    parts: Vec<(usize, u8)>,
}

impl Run {
    /// Whether `bytes` starting at `block` can be appended to this run.
    fn extends(&self, block: u64, bytes: usize) -> bool {
        self.bytes == 0 || (self.first_block + self.blocks == block && self.bytes + bytes <= MAX_WRITE_RUN)
    }
}

impl<D: Disk> Cache<D> {
    /// `Read::read` at stream position `pos`, which it advances.
    pub(crate) fn stream_read(&mut self, pos: &mut u64, buf: &mut [u8]) -> IoResult<usize, DiskError> {
        match self.read_at(*pos, buf) {
            Ok(n) => {
                *pos += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.record(e)),
        }
    }

    /// `Write::write` at stream position `pos`, which it advances.
    pub(crate) fn stream_write(&mut self, pos: &mut u64, buf: &[u8]) -> IoResult<usize, DiskError> {
        match self.write_at(*pos, buf) {
            Ok(n) => {
                *pos += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.record(e)),
        }
    }

    /// `Seek::seek` of stream position `pos`. Positions past the end are allowed (reads there
    /// return 0 bytes, writes fail); before the start they are not.
    pub(crate) fn stream_seek(&mut self, pos: &mut u64, to: SeekFrom) -> IoResult<u64, DiskError> {
        match seek_target(*pos, self.len, to) {
            Some(target) => {
                *pos = target;
                Ok(target)
            }
            None => Err(self.record(DiskError::Invalid)),
        }
    }
}

impl<D: Disk> Read for Cache<D> {
    type Error = DiskError;

    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize, DiskError> {
        let mut pos = self.pos;
        let result = self.stream_read(&mut pos, buf);
        self.pos = pos;
        result
    }
}

impl<D: Disk> Write for Cache<D> {
    type Error = DiskError;

    fn write(&mut self, buf: &[u8]) -> IoResult<usize, DiskError> {
        let mut pos = self.pos;
        let result = self.stream_write(&mut pos, buf);
        self.pos = pos;
        result
    }

    /// Does nothing: data reaches the disk only through [`Cache::sync`] or eviction.
    fn flush(&mut self) -> IoResult<(), DiskError> {
        Ok(())
    }
}

impl<D: Disk> Seek for Cache<D> {
    type Error = DiskError;

    fn seek(&mut self, to: SeekFrom) -> IoResult<u64, DiskError> {
        let mut pos = self.pos;
        let result = self.stream_seek(&mut pos, to);
        self.pos = pos;
        result
    }
}

/// Where a seek from `current` on a stream of `len` bytes lands, or `None` before 0 / overflow.
fn seek_target(current: u64, len: u64, pos: SeekFrom) -> Option<u64> {
    match pos {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::End(delta) => len.checked_add_signed(delta),
        SeekFrom::Current(delta) => current.checked_add_signed(delta),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemDisk;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// What the disk under test was asked to do.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Op {
        Read(u64, usize),
        Write(u64, usize),
        Flush,
    }

    /// A disk that logs every request and can be told to fail writes.
    struct LogDisk {
        inner: MemDisk,
        log: Rc<RefCell<Vec<Op>>>,
        fail_writes: Rc<RefCell<bool>>,
    }

    impl Disk for LogDisk {
        fn block_size(&self) -> usize {
            self.inner.block_size()
        }
        fn blocks(&self) -> u64 {
            self.inner.blocks()
        }
        fn read(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
            self.log.borrow_mut().push(Op::Read(first, buf.len() / self.block_size()));
            self.inner.read(first, buf)
        }
        fn write(&mut self, first: u64, data: &[u8]) -> Result<(), DiskError> {
            if *self.fail_writes.borrow() {
                return Err(DiskError::Device);
            }
            self.log.borrow_mut().push(Op::Write(first, data.len() / self.block_size()));
            self.inner.write(first, data)
        }
        fn flush(&mut self) -> Result<(), DiskError> {
            self.log.borrow_mut().push(Op::Flush);
            Ok(())
        }
    }

    struct Rig {
        cache: Cache<LogDisk>,
        log: Rc<RefCell<Vec<Op>>>,
        fail_writes: Rc<RefCell<bool>>,
    }

    /// A cache of `pages` pages over a disk of `blocks` blocks whose byte `i` is `i % 251`.
    fn rig(block_size: usize, blocks: u64, pages: usize) -> Rig {
        let bytes = (0..blocks as usize * block_size).map(|i| (i % 251) as u8).collect();
        let log = Rc::new(RefCell::new(Vec::new()));
        let fail_writes = Rc::new(RefCell::new(false));
        let disk = LogDisk {
            inner: MemDisk::from_bytes(bytes, block_size).expect("disk"),
            log: log.clone(),
            fail_writes: fail_writes.clone(),
        };
        Rig { cache: Cache::new(disk, pages).expect("cache"), log, fail_writes }
    }

    fn pattern(offset: usize, len: usize) -> Vec<u8> {
        (offset..offset + len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn read_past_end_returns_nothing_and_write_past_end_fails() {
        let mut r = rig(512, 9, 4); // 4608 bytes: one full page and a 512-byte one
        let mut buf = [0u8; 100];
        assert_eq!(r.cache.read_at(4608, &mut buf), Ok(0));
        assert_eq!(r.cache.read_at(u64::MAX, &mut buf), Ok(0));
        assert_eq!(r.cache.read_at(4558, &mut buf), Ok(50));
        assert_eq!(&buf[..50], &pattern(4558, 50)[..]);
        assert_eq!(r.cache.write_at(4600, &[1; 9]), Err(DiskError::OutOfRange));
        assert_eq!(r.cache.write_at(u64::MAX, &[1]), Err(DiskError::OutOfRange));
        assert_eq!(r.cache.write_at(4600, &[1; 8]), Ok(8));
        // Through the stream traits: a read at the end gives 0, a write past it an error.
        r.cache.seek(SeekFrom::End(0)).expect("seek");
        assert_eq!(Read::read(&mut r.cache, &mut buf).ok(), Some(0));
        assert!(Write::write(&mut r.cache, &[1]).is_err());
        assert_eq!(r.cache.take_error(), Some(DiskError::OutOfRange));
        assert!(r.cache.seek(SeekFrom::Current(-1_000_000)).is_err());
    }

    #[test]
    fn partial_page_write_reads_once_and_reaches_disk_only_on_sync() {
        let mut r = rig(512, 64, 8);
        r.cache.write_at(10, b"hello").expect("write");
        // The partly written block had to be read: the page is read in one request.
        assert_eq!(*r.log.borrow(), vec![Op::Read(0, 8)]);
        let mut buf = [0u8; 20];
        r.cache.read_at(5, &mut buf).expect("read");
        assert_eq!(&buf[..5], &pattern(5, 5)[..]);
        assert_eq!(&buf[5..10], b"hello");
        assert_eq!(&buf[10..], &pattern(15, 10)[..]);
        assert_eq!(r.cache.stats().disk_writes, 0);
        assert_eq!(r.cache.dirty_pages(), 1);
        r.cache.sync().expect("sync");
        assert_eq!(*r.log.borrow(), vec![Op::Read(0, 8), Op::Write(0, 1), Op::Flush]);
        assert_eq!(&r.cache.disk().inner.as_bytes()[10..15], b"hello");
        // Nothing dirty: a second sync writes and flushes nothing.
        r.cache.sync().expect("sync");
        assert_eq!(r.log.borrow().len(), 3);
    }

    #[test]
    fn whole_block_writes_need_no_read() {
        let mut r = rig(512, 64, 8);
        r.cache.write_at(512, &[9; 1024]).expect("write");
        assert!(r.log.borrow().is_empty());
        // Reading a block the page does not hold fills it without touching the written ones.
        let mut buf = [0u8; 2048];
        r.cache.read_at(0, &mut buf).expect("read");
        assert_eq!(&buf[..512], &pattern(0, 512)[..]);
        assert_eq!(&buf[512..1536], &[9; 1024][..]);
        assert_eq!(&buf[1536..], &pattern(1536, 512)[..]);
        assert_eq!(*r.log.borrow(), vec![Op::Read(0, 8)]);
        let stats = r.cache.stats();
        assert_eq!((stats.disk_reads, stats.blocks_read, stats.disk_writes), (1, 8, 0));
    }

    #[test]
    fn sync_writes_in_ascending_order_merging_neighbours() {
        let mut r = rig(512, 256, 64);
        // Dirty pages 9, 2, 3 (fully) and two separate blocks of page 20, written out of order.
        r.cache.write_at(9 * 4096, &[1; 4096]).expect("write");
        r.cache.write_at(3 * 4096, &[3; 4096]).expect("write");
        r.cache.write_at(2 * 4096, &[2; 4096]).expect("write");
        r.cache.write_at(20 * 4096 + 3 * 512, &[4; 512]).expect("write");
        r.cache.write_at(20 * 4096, &[5; 512]).expect("write");
        assert!(r.log.borrow().is_empty());
        r.cache.sync().expect("sync");
        assert_eq!(
            *r.log.borrow(),
            vec![Op::Write(16, 16), Op::Write(72, 8), Op::Write(160, 1), Op::Write(163, 1), Op::Flush]
        );
        let disk = r.cache.disk().inner.as_bytes();
        assert!(disk[2 * 4096..3 * 4096].iter().all(|&b| b == 2));
        assert!(disk[3 * 4096..4 * 4096].iter().all(|&b| b == 3));
        assert_eq!(disk[20 * 4096 + 512], pattern(20 * 4096 + 512, 1)[0]);
    }

    #[test]
    fn eviction_writes_back_only_the_victims() {
        let mut r = rig(512, 512, 2);
        for page in 0..5u64 {
            r.cache.write_at(page * 4096, &[page as u8 + 1; 4096]).expect("write");
        }
        // Two pages stay cached; the three evicted were written, nothing was flushed.
        let stats = r.cache.stats();
        assert_eq!(stats.evictions, 3);
        assert_eq!(stats.disk_writes, 3);
        assert_eq!(stats.flushes, 0);
        assert_eq!(r.cache.dirty_pages(), 2);
        assert!(!r.log.borrow().contains(&Op::Flush));
        let mut buf = [0u8; 4096];
        for page in 0..5u64 {
            r.cache.read_at(page * 4096, &mut buf).expect("read");
            assert!(buf.iter().all(|&b| b == page as u8 + 1), "page {page}");
        }
        r.cache.sync().expect("sync");
        let disk = r.cache.disk().inner.as_bytes();
        for page in 0..5usize {
            assert!(disk[page * 4096..(page + 1) * 4096].iter().all(|&b| b == page as u8 + 1));
        }
    }

    #[test]
    fn failed_writes_keep_data_dirty() {
        let mut r = rig(4096, 16, 4);
        r.cache.write_at(100, b"abc").expect("write");
        *r.fail_writes.borrow_mut() = true;
        assert_eq!(r.cache.sync(), Err(DiskError::Device));
        assert_eq!(r.cache.dirty_pages(), 1);
        *r.fail_writes.borrow_mut() = false;
        r.cache.sync().expect("sync");
        assert_eq!(&r.cache.disk().inner.as_bytes()[100..103], b"abc");
        // An eviction that cannot write back fails the access that needed the room.
        let mut r = rig(4096, 16, 1);
        r.cache.write_at(0, &[1; 10]).expect("write");
        *r.fail_writes.borrow_mut() = true;
        let mut buf = [0u8; 10];
        assert_eq!(r.cache.read_at(8192, &mut buf), Err(DiskError::Device));
        *r.fail_writes.borrow_mut() = false;
        assert_eq!(r.cache.read_at(0, &mut buf), Ok(10));
        assert_eq!(buf, [1; 10]);
    }

    /// Random reads, writes and syncs against a plain byte vector, with tiny caches, odd disk
    /// sizes and every block size: the cache must always read what was written.
    #[test]
    fn matches_a_plain_buffer_under_random_access() {
        let mut seed = 0x5EED_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for &(block_size, blocks, pages) in &[(512, 37, 1), (512, 100, 3), (1024, 21, 2), (2048, 9, 3), (4096, 7, 2)] {
            let mut r = rig(block_size, blocks, pages);
            let len = block_size * blocks as usize;
            let mut model = pattern(0, len);
            for _ in 0..3000 {
                let offset = (next() % (len as u64 + 600)) as usize;
                let size = (next() % 9000) as usize;
                match next() % 8 {
                    0..=3 => {
                        let data: Vec<u8> = (0..size).map(|_| next() as u8).collect();
                        let result = r.cache.write_at(offset as u64, &data);
                        if offset + size <= len {
                            assert_eq!(result, Ok(size));
                            model[offset..offset + size].copy_from_slice(&data);
                        } else {
                            assert_eq!(result, Err(DiskError::OutOfRange));
                        }
                    }
                    4..=6 => {
                        let mut buf = vec![0u8; size];
                        let n = r.cache.read_at(offset as u64, &mut buf).expect("read");
                        let want = size.min(len.saturating_sub(offset));
                        assert_eq!(n, want);
                        if n > 0 {
                            assert_eq!(&buf[..n], &model[offset..offset + n]);
                        }
                    }
                    _ => r.cache.sync().expect("sync"),
                }
            }
            r.cache.sync().expect("sync");
            assert_eq!(r.cache.disk().inner.as_bytes(), &model[..]);
            assert!(r.cache.stats().evictions > 0);
        }
    }

    #[test]
    fn stream_traits_follow_the_position() {
        let mut r = rig(512, 16, 2);
        r.cache.seek(SeekFrom::Start(1000)).expect("seek");
        Write::write_all(&mut r.cache, b"0123456789").expect("write");
        assert_eq!(r.cache.seek(SeekFrom::Current(-5)).ok(), Some(1005));
        let mut buf = [0u8; 5];
        Read::read_exact(&mut r.cache, &mut buf).expect("read");
        assert_eq!(&buf, b"56789");
        assert_eq!(r.cache.seek(SeekFrom::End(-8192)).ok(), Some(0));
        Write::flush(&mut r.cache).expect("flush");
        assert_eq!(r.cache.stats().disk_writes, 0, "flush must not write");
    }
}
