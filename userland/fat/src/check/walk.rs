//! The directory walk, `fsck.fat`'s: the root first, then subdirectories depth first in the
//! order of their entries; every entry of a directory (past an end marker too) is read, checked
//! for a looping chain, and claims its clusters (see `chains`) before any subdirectory is
//! entered. [`Walk`] holds the state the whole check shares: the FAT in memory, who owns which
//! cluster, the directories found and the report.
//!
//! Invariants: a directory is entered only through a cluster its entry's chain owns, so at most
//! `cluster_count` directories are entered; a directory is read one cluster at a time, at most
//! [`MAX_DIR_BYTES`] of it; directories deeper than [`MAX_DEPTH`] are reported, not entered;
//! paths are built from the list of directory names only when a problem names one.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use hadris_fat::sync::FatType;

use super::MAX_DEPTH;
use super::fat::{Bitmap, Fat};
use super::names::{
    ATTR_DIR, ATTR_LONG_NAME, ATTR_VOLUME, Entry, LongName, LongNameEvent, NO_8_3_NAME, bad_short_name, display_short,
    first_cluster, is_free, short_name,
};
use super::problem::{DotEntry, DotFault, Problem};
use super::reader::Reader;
use super::report::Report;
use crate::boot::{Geometry, Root};
use crate::disk::{Disk, DiskError};

/// FAT's limit on a directory: 65,536 entries of 32 bytes.
const MAX_DIR_BYTES: u64 = 2 << 20;

/// A directory found by the walk: enough to build its path and check its `.`/`..`.
pub(super) struct Node {
    /// The directory holding it (`None` for the root).
    parent: Option<u32>,
    name: String,
    /// First cluster (0 for a FAT12/16 root).
    start: u32,
    depth: u32,
}

/// A directory being read: the long name in progress and the entries so far.
struct DirRead {
    /// The root directory (whose first label entry is the volume's label).
    in_root: bool,
    names: LongName,
    events: Vec<LongNameEvent>,
    entries: Vec<Entry>,
}

/// `fsck.fat` stopped (`die`): nothing more is checked.
pub(super) struct Stopped;

/// The check's state from the FAT on: shared by the walk, the chain checks and the closing ones.
pub(super) struct Walk<'r, 'd, D: Disk> {
    pub(super) reader: &'r mut Reader<'d, D>,
    pub(super) g: Geometry,
    pub(super) fat: Fat,
    /// Clusters some entry's chain holds.
    pub(super) owned: Bitmap,
    /// How many clusters `owned` holds.
    pub(super) owned_count: u32,
    /// Clusters of the chain being walked for loops.
    pub(super) marked: Bitmap,
    pub(super) nodes: Vec<Node>,
    pub(super) report: Report,
    /// The root's label entry: the first before the root's first end marker.
    pub(super) label: Option<[u8; 11]>,
    pub(super) cluster_buf: Vec<u8>,
}

/// Where an entry sits, for the checks of its first cluster.
pub(super) struct Place {
    /// The path of the directory holding it.
    pub(super) dir_path: String,
    /// `fsck.fat` knows the directory holding it (false for the FAT12/16 root's entries).
    pub(super) has_parent: bool,
    /// First cluster of the directory holding it, and of that directory's parent (0 for the
    /// root).
    pub(super) parent_start: u32,
    pub(super) grandparent_start: u32,
}

impl Place {
    pub(super) fn path(&self, name: &str) -> String {
        let mut path = String::with_capacity(self.dir_path.len() + 1 + name.len());
        path.push_str(self.dir_path.trim_end_matches('/'));
        path.push('/');
        path.push_str(name);
        path
    }
}

/// The path of `entry` in `place` (`/` for the FAT32 root).
pub(super) fn entry_path(entry: &Entry, place: &Place) -> String {
    if entry.is_root { String::from("/") } else { place.path(&entry.name) }
}

/// What the walk returns: a disk error, or whether `fsck.fat` would have stopped.
pub(super) type Step = Result<Result<(), Stopped>, DiskError>;

impl<D: Disk> Walk<'_, '_, D> {
    pub(super) fn is_fat32(&self) -> bool {
        self.g.fat_type == FatType::Fat32
    }

    fn root_cluster(&self) -> u32 {
        match self.g.root {
            Root::Chain(c) => c,
            Root::Fixed { .. } => 0,
        }
    }

    fn path_of(&self, node: u32) -> String {
        let mut names = Vec::new();
        let mut at = Some(node);
        while let Some(i) = at {
            let Some(n) = self.nodes.get(i as usize) else { break };
            if n.parent.is_some() {
                names.push(n.name.as_str());
            }
            at = n.parent;
            if names.len() > MAX_DEPTH as usize + 1 {
                break;
            }
        }
        if names.is_empty() {
            return String::from("/");
        }
        let mut path = String::new();
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        path
    }

    /// The whole tree, root first (`fsck.fat`'s `scan_root`).
    pub(super) fn tree(&mut self) -> Step {
        let root_start = self.root_cluster();
        self.nodes.push(Node { parent: None, name: String::new(), start: root_start, depth: 0 });
        if let Root::Chain(cluster) = self.g.root {
            // FAT32: the root is checked as an entry of its own first.
            let mut raw = [0u8; 32];
            raw[..11].fill(b' ');
            raw[11] = ATTR_DIR;
            raw[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
            raw[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
            let mut root =
                Entry { raw, name: String::new(), has_long_name: false, start: cluster, dropped: false, is_root: true };
            let place = Place { dir_path: String::new(), has_parent: false, parent_start: 0, grandparent_start: 0 };
            if self.loops(&mut root, &place).is_err() || self.check_entry(&mut root, &place).is_err() {
                return Ok(Err(Stopped));
            }
            if let Some(node) = self.nodes.get_mut(0) {
                node.start = root.start;
            }
        }
        let mut stack = vec![0u32];
        while let Some(node) = stack.pop() {
            let children = match self.directory(node)? {
                Ok(children) => children,
                Err(Stopped) => return Ok(Err(Stopped)),
            };
            stack.extend(children.into_iter().rev());
        }
        Ok(Ok(()))
    }

    /// Reads, checks and claims one directory's entries (`fsck.fat`'s `scan_dir`), returning
    /// its subdirectories to enter.
    fn directory(&mut self, node: u32) -> Result<Result<Vec<u32>, Stopped>, DiskError> {
        let Some(n) = self.nodes.get(node as usize) else { return Ok(Ok(Vec::new())) };
        let (start, depth, parent) = (n.start, n.depth, n.parent);
        let is_root = parent.is_none();
        let grandparent_start = match parent.and_then(|p| self.nodes.get(p as usize)) {
            Some(p) if self.is_fat32() && p.start == self.root_cluster() => 0,
            Some(p) => p.start,
            None => 0,
        };
        let place = Place {
            dir_path: self.path_of(node),
            has_parent: !is_root || self.is_fat32(),
            parent_start: start,
            grandparent_start,
        };
        let mut dir = DirRead { in_root: is_root, names: LongName::new(), events: Vec::new(), entries: Vec::new() };
        match (self.g.root, is_root) {
            (Root::Fixed { start: at, size }, true) => {
                let mut bytes = vec![0u8; size as usize];
                self.reader.read(at, &mut bytes)?;
                self.read_slots(&bytes, &place, &mut dir);
            }
            _ => {
                let mut cluster = Some(start).filter(|&c| self.g.is_data_cluster(u64::from(c)));
                let mut read = 0u64;
                while let Some(c) = cluster {
                    if read >= MAX_DIR_BYTES {
                        self.report.push(Problem::DirectoryTooLarge { path: place.dir_path.clone() });
                        break;
                    }
                    let offset = self.g.cluster_offset(u64::from(c)).unwrap_or(0);
                    let mut buf = core::mem::take(&mut self.cluster_buf);
                    let got = self.reader.read(offset, &mut buf);
                    if got.is_ok() {
                        let mut skip = 0;
                        if read == 0 && !is_root {
                            self.dots(&buf, node, &place.dir_path);
                            skip = 64;
                        }
                        self.read_slots(buf.get(skip..).unwrap_or(&[]), &place, &mut dir);
                    }
                    self.cluster_buf = buf;
                    got?;
                    read += u64::from(self.g.cluster_size);
                    cluster = self.fat.next(c);
                }
            }
        }
        dir.names.orphan(&mut dir.events);
        self.long_name_events(&mut dir.events, &place);
        let mut entries = dir.entries;
        self.names(&entries, &place);
        for entry in &mut entries {
            if self.check_entry(entry, &place).is_err() {
                return Ok(Err(Stopped));
            }
        }
        let mut children = Vec::new();
        for entry in entries {
            if entry.dropped || !entry.is_dir() || entry.start == 0 {
                continue;
            }
            if depth >= MAX_DEPTH {
                self.report.push(Problem::TooDeep { path: place.path(&entry.name) });
                continue;
            }
            children.push(self.nodes.len() as u32);
            self.nodes.push(Node { parent: Some(node), name: entry.name, start: entry.start, depth: depth + 1 });
        }
        Ok(Ok(children))
    }

    /// Reports what the long-name reader found.
    fn long_name_events(&mut self, events: &mut Vec<LongNameEvent>, place: &Place) {
        for event in events.drain(..) {
            let dir = place.dir_path.clone();
            self.report.push(match event {
                LongNameEvent::Fault(fault) => Problem::BadLongName { dir, fault },
                LongNameEvent::Orphaned(name) => Problem::OrphanedLongName { dir, name },
            });
        }
    }

    /// Reads the 32-byte slots of `bytes` (`fsck.fat`'s `add_file` for each): every slot of the
    /// directory, past an end marker too. Each entry's chain is checked for a loop as it is
    /// read (`fsck.fat`'s `test_file`), before any entry of the directory claims clusters.
    fn read_slots(&mut self, bytes: &[u8], place: &Place, dir: &mut DirRead) {
        for chunk in bytes.chunks_exact(32) {
            let mut raw = [0u8; 32];
            raw.copy_from_slice(chunk);
            if is_free(&raw) {
                if raw[0] == 0 && dir.in_root {
                    self.label.get_or_insert([0; 11]);
                }
                dir.names.orphan(&mut dir.events);
                self.long_name_events(&mut dir.events, place);
                continue;
            }
            if raw[11] == ATTR_LONG_NAME {
                dir.names.slot(&raw, &mut dir.events);
                self.long_name_events(&mut dir.events, place);
                continue;
            }
            let long = dir.names.take(&raw, &mut dir.events);
            self.long_name_events(&mut dir.events, place);
            let attr = raw[11];
            if dir.in_root && attr & ATTR_VOLUME != 0 && self.label.is_none() {
                self.label = Some(short_name(&raw));
            }
            if attr & ATTR_DIR != 0 {
                self.report.directories += 1;
            } else if attr & ATTR_VOLUME != 0 {
                self.report.labels += 1;
            } else {
                self.report.files += 1;
            }
            let mut entry = Entry {
                raw,
                has_long_name: long.is_some(),
                name: long.unwrap_or_else(|| display_short(&raw)),
                start: first_cluster(&raw, self.is_fat32()),
                dropped: false,
                is_root: false,
            };
            // Only the FAT32 root (not read here) stops the check on a loop.
            let _ = self.loops(&mut entry, place);
            dir.entries.push(entry);
        }
    }

    /// The `.` and `..` slots of a directory's first cluster (`fsck.fat`'s `handle_dot`).
    fn dots(&mut self, cluster: &[u8], node: u32, dir_path: &str) {
        let Some(n) = self.nodes.get(node as usize) else { return };
        let dot = n.start;
        let dotdot = match n.parent.and_then(|p| self.nodes.get(p as usize)) {
            Some(p) if p.start == self.root_cluster() => 0,
            Some(p) => p.start,
            None => 0,
        };
        let fat32 = self.is_fat32();
        for (slot, (entry, name, want)) in
            [(DotEntry::Dot, b".          ", dot), (DotEntry::DotDot, b"..         ", dotdot)].into_iter().enumerate()
        {
            let mut raw = [0u8; 32];
            if let Some(bytes) = cluster.get(slot * 32..slot * 32 + 32) {
                raw.copy_from_slice(bytes);
            }
            let named = &raw[..11] == name;
            let valid = raw[11] & ATTR_DIR != 0 && first_cluster(&raw, fat32) == want && named;
            let fault = if valid || named {
                if !valid {
                    self.report.push(Problem::BadDotEntry {
                        path: String::from(dir_path),
                        entry,
                        fault: DotFault::Wrong,
                    });
                }
                (raw[12] & NO_8_3_NAME != 0).then_some(DotFault::NoNameFlag)
            } else if is_free(&raw) {
                Some(DotFault::Missing)
            } else {
                Some(DotFault::Displaced)
            };
            if let Some(fault) = fault {
                self.report.push(Problem::BadDotEntry { path: String::from(dir_path), entry, fault });
            }
        }
    }

    /// Checks the names of a directory's entries (`fsck.fat`'s `check_dir`).
    fn names(&mut self, entries: &[Entry], place: &Place) {
        let bad = entries.iter().filter(|e| bad_short_name(&e.raw, e.has_long_name)).count();
        let total = entries.len();
        if place.has_parent && total > 4 && bad > (total - bad) / 2 {
            let path = place.dir_path.clone();
            self.report.push(Problem::ManyBadEntries { path, bad: bad as u32, total: total as u32 });
        }
        let mut seen = BTreeSet::new();
        for e in entries.iter().filter(|e| e.attr() & ATTR_VOLUME == 0) {
            if bad_short_name(&e.raw, e.has_long_name) {
                self.report.push(Problem::BadShortName { path: place.path(&e.name) });
            } else if !seen.insert(short_name(&e.raw)) {
                self.report.push(Problem::DuplicateName { path: place.path(&e.name) });
            }
        }
    }
}
