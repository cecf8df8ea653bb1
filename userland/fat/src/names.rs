//! [`Names`]: what the volume has learned of its directories' entries, so a lookup in a
//! directory already read is a map lookup rather than a scan of its entries (a scan of 1,000
//! entries read through the cache costs milliseconds under emulation).
//!
//! A directory's [`Listing`] is made by one full scan (a lookup that misses, or a listing of
//! the directory), holds its entries in order, and is keyed the way lookups match names:
//! long names by their Unicode uppercase, 8.3 names by their ASCII uppercase (`BASE.EXT`). A
//! listing is a whole directory, so a name it lacks is not there (except a name ending with a
//! dot, which 8.3 matching drops: such a miss scans again); what the listing holds is what the
//! directory held at the scan, plus the entries created since.
//!
//! Every change to the volume forgets what it may have changed: removing or renaming an entry
//! forgets every listing (entries move, clusters are freed); creating a file adds it to its
//! directory's listing, creating a directory forgets that listing; writing or cutting a file
//! marks its entry in the listing of the directory holding it as changed (its size, time or
//! first cluster), to be read again when next found.
//! The checks of directory chains are remembered and forgotten the same way. Paths resolved
//! (up to 1,024; a handle's path is resolved on each read, and `stat` resolves a path each
//! time) are remembered with their entries and forgotten on any change at all; their
//! spellings (`Volume::canonical`, asked on every open; up to 1,024) are forgotten only when
//! entries are added, removed or moved.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use hadris_fat::sync::FileEntry;
use hashbrown::HashMap;

use crate::volume::{DirEntry, DirId};

/// Most entries remembered over all directories (beyond, everything is forgotten).
const MAX_REMEMBERED: usize = 65536;

/// Paths whose resolution is remembered (beyond, they are all forgotten).
const MAX_RESOLVED: usize = 1024;

/// Names of at most this many bytes are folded on the stack when they are ASCII.
const SHORT_KEY: usize = 64;

/// One directory's entries by name.
#[derive(Default)]
pub(crate) struct Listing {
    entries: Vec<Rc<FileEntry>>,
    /// Long names (Unicode uppercase) to their entry's index.
    long: BTreeMap<Box<str>, u32>,
    /// 8.3 names (`BASE.EXT`, ASCII uppercase) to their entry's index.
    short: BTreeMap<Box<str>, u32>,
    /// An entry was added after the scan: `entries` is no longer in the directory's order.
    unordered: bool,
    /// Entries that changed on the disk since they were read (a file written: its size, time
    /// or first cluster): found by name, they must be read again.
    stale: BTreeSet<u32>,
    /// The entries as `Volume::read_dir` answers them, made at the first listing since the
    /// scan (decoding a name costs more than copying it); dropped when an entry is added or
    /// changes.
    listed: Option<Vec<DirEntry>>,
}

/// What a remembered listing says of a name.
pub(crate) enum Found {
    /// No listing of the directory is remembered.
    Unknown,
    /// The directory has no entry of that name.
    Missing,
    /// The entry, as it is.
    Entry(Rc<FileEntry>),
    /// The entry with these 8.3 bytes changed since it was read: read it again.
    Stale([u8; 11]),
}

impl Listing {
    /// Adds `entry` (the next in the directory's order) under its names (the first entry of a
    /// name keeps it).
    pub(crate) fn add(&mut self, entry: &FileEntry) {
        let index = self.entries.len() as u32;
        if let Some(long) = entry.long_name() {
            let key: String = long.chars().flat_map(char::to_uppercase).collect();
            self.long.entry(key.into_boxed_str()).or_insert(index);
        }
        if let Some(key) = short_key(&entry.short_name().raw_bytes()) {
            self.short.entry(key.into_boxed_str()).or_insert(index);
        }
        self.entries.push(Rc::new(entry.clone()));
        self.listed = None;
    }

    /// The entries as last listed, if nothing was added or changed since (whatever adds or
    /// changes an entry drops them, and they are kept only for an ordered, current listing).
    pub(crate) fn listed(&self) -> Option<&[DirEntry]> {
        self.listed.as_deref()
    }

    /// Every entry, in the directory's order (`.` and `..` included); `None` once an entry
    /// was added after the scan (its place in the directory is not known here) or changed.
    pub(crate) fn ordered_entries(&self) -> Option<&[Rc<FileEntry>]> {
        (!self.unordered && self.stale.is_empty()).then_some(&self.entries[..])
    }

    /// The index of the entry whose 8.3 bytes are `raw`.
    fn index_of(&self, raw: &[u8; 11]) -> Option<u32> {
        let index = *self.short.get(short_key(raw)?.as_str())?;
        let entry = self.entries.get(index as usize)?;
        (entry.short_name().raw_bytes() == *raw).then_some(index)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn find(&self, name: &str) -> Found {
        match self.find_index(name) {
            None => Found::Missing,
            Some(i) if self.stale.contains(&i) => match self.entries.get(i as usize) {
                Some(e) => Found::Stale(e.short_name().raw_bytes()),
                None => Found::Unknown,
            },
            Some(i) => self.entries.get(i as usize).map_or(Found::Unknown, |e| Found::Entry(Rc::clone(e))),
        }
    }

    fn find_index(&self, name: &str) -> Option<u32> {
        let index = if name.len() <= SHORT_KEY && name.is_ascii() {
            // ASCII folds the same way both ways: no allocation.
            let mut buf = [0u8; SHORT_KEY];
            let key = &mut buf[..name.len()];
            key.copy_from_slice(name.as_bytes());
            key.make_ascii_uppercase();
            let key = core::str::from_utf8(key).ok()?;
            self.long.get(key).or_else(|| self.short.get(key))
        } else {
            let long: String = name.chars().flat_map(char::to_uppercase).collect();
            self.long.get(long.as_str()).or_else(|| self.short.get(name.to_ascii_uppercase().as_str()))
        };
        index.copied()
    }
}

/// `BASE.EXT` (or `BASE`) in ASCII uppercase from the 11 stored bytes; `None` if not UTF-8.
fn short_key(raw: &[u8; 11]) -> Option<String> {
    let trim = |b: &[u8]| -> usize { b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1) };
    let (base, ext) = raw.split_at(8);
    let (base, ext) = (&base[..trim(base)], &ext[..trim(ext)]);
    let base = core::str::from_utf8(base).ok()?;
    let ext = core::str::from_utf8(ext).ok()?;
    let mut key = base.to_ascii_uppercase();
    if !ext.is_empty() {
        key.push('.');
        key.push_str(&ext.to_ascii_uppercase());
    }
    Some(key)
}

/// What a path resolved to: its entry and the directory holding it (`None`: the root).
pub(crate) type Resolved = Option<(Rc<FileEntry>, DirId)>;

/// The listings and checked chains of one volume, and the paths resolved since the last change.
#[derive(Default)]
pub(crate) struct Names {
    dirs: BTreeMap<DirId, Listing>,
    remembered: usize,
    checked: BTreeSet<u64>,
    /// Paths as asked and the entry each named; forgotten with any change.
    resolved: HashMap<Box<str>, (Rc<FileEntry>, DirId)>,
    /// Paths as asked and as the volume spells them (`Volume::canonical`, which `vfs` asks on
    /// every open); forgotten when entries are added, removed or moved, not when a file's size
    /// or times change.
    canonical: HashMap<Box<str>, Box<str>>,
}

impl Names {
    /// What `path` resolved to when last asked, if nothing changed since.
    pub(crate) fn resolved(&self, path: &str) -> Option<Resolved> {
        self.resolved.get(path).map(|(entry, dir)| Some((Rc::clone(entry), *dir)))
    }

    /// Remembers the entry `path` names now, and the directory holding it.
    pub(crate) fn remember_resolved(&mut self, path: &str, entry: &Rc<FileEntry>, dir: DirId) {
        if self.resolved.len() == MAX_RESOLVED {
            self.resolved.clear();
        }
        self.resolved.insert(Box::from(path), (Rc::clone(entry), dir));
    }

    /// How the volume spells `path`, if asked since the last change of entries.
    pub(crate) fn canonical(&self, path: &str) -> Option<&str> {
        self.canonical.get(path).map(|c| &**c)
    }

    /// Remembers how the volume spells `path`.
    pub(crate) fn remember_canonical(&mut self, path: &str, canonical: &str) {
        if self.canonical.len() == MAX_RESOLVED {
            self.canonical.clear();
        }
        self.canonical.insert(Box::from(path), Box::from(canonical));
    }

    /// The entry called `name` in directory `dir`, if its listing is here and holds it.
    /// What the listing of `dir` says of `name`.
    pub(crate) fn find(&self, dir: DirId, name: &str) -> Found {
        self.dirs.get(&dir).map_or(Found::Unknown, |l| l.find(name))
    }

    /// The entry with 8.3 bytes `raw` in `dir` changed on the disk (a file was written): it is
    /// read again when next found (or the whole listing, if it is not in it as expected).
    pub(crate) fn changed(&mut self, dir: DirId, raw: &[u8; 11]) {
        self.resolved.clear();
        if let Some(listing) = self.dirs.get_mut(&dir) {
            match listing.index_of(raw) {
                Some(index) => {
                    listing.stale.insert(index);
                    listing.listed = None;
                }
                None => self.forget_dir(dir),
            }
        }
    }

    /// `entry` as read again (it was [`Found::Stale`]).
    pub(crate) fn refresh(&mut self, dir: DirId, entry: &FileEntry) {
        let raw = entry.short_name().raw_bytes();
        if let Some(listing) = self.dirs.get_mut(&dir)
            && let Some(index) = listing.index_of(&raw)
            && let Some(slot) = listing.entries.get_mut(index as usize)
        {
            *slot = Rc::new(entry.clone());
            listing.stale.remove(&index);
            listing.listed = None;
        }
    }

    /// The listing of `dir`, if it is here.
    pub(crate) fn listing(&self, dir: DirId) -> Option<&Listing> {
        self.dirs.get(&dir)
    }

    /// Remembers `entries` as the listing of `dir` answers them (see [`Listing::listed`]).
    pub(crate) fn keep_listed(&mut self, dir: DirId, entries: &[DirEntry]) {
        if let Some(listing) = self.dirs.get_mut(&dir)
            && !listing.unordered
            && listing.stale.is_empty()
        {
            listing.listed = Some(entries.to_vec());
        }
    }

    /// Keeps the listing of `dir`.
    pub(crate) fn keep(&mut self, dir: DirId, listing: Listing) {
        if self.remembered + listing.len() > MAX_REMEMBERED {
            self.dirs.clear();
            self.remembered = 0;
        }
        self.remembered += listing.len();
        if let Some(old) = self.dirs.insert(dir, listing) {
            self.remembered -= old.len();
        }
    }

    /// Whether the chain of the directory starting at `first` was checked.
    pub(crate) fn checked(&self, first: u64) -> bool {
        self.checked.contains(&first)
    }

    /// Remembers that the chain starting at `first` passed its check.
    pub(crate) fn mark_checked(&mut self, first: u64) {
        self.checked.insert(first);
    }

    /// Adds a new entry to the listing of `dir`, if it has one.
    pub(crate) fn add_to(&mut self, dir: DirId, entry: &FileEntry) {
        self.resolved.clear();
        self.canonical.clear();
        if let Some(listing) = self.dirs.get_mut(&dir) {
            let before = listing.len();
            listing.add(entry);
            listing.unordered = true;
            self.remembered += listing.len() - before;
        }
    }

    /// Forgets the listing of `dir` (a file in it changed).
    pub(crate) fn forget_dir(&mut self, dir: DirId) {
        self.resolved.clear();
        self.canonical.clear();
        if let Some(old) = self.dirs.remove(&dir) {
            self.remembered -= old.len();
        }
    }

    /// Forgets everything (entries were created, removed or moved).
    pub(crate) fn forget_all(&mut self) {
        self.resolved.clear();
        self.canonical.clear();
        self.dirs.clear();
        self.checked.clear();
        self.remembered = 0;
    }
}
