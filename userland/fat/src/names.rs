//! [`Names`]: what the volume has learned of its directories' entries, so a lookup in a
//! directory already read is a map lookup rather than a scan of its entries (a scan of 1,000
//! entries read through the cache costs milliseconds under emulation).
//!
//! A directory's [`Listing`] is made by one full scan and keyed the way lookups match names:
//! long names by their Unicode uppercase, 8.3 names by their ASCII uppercase (`BASE.EXT`). A
//! name that is not in a listing is looked up by scanning again (so a miss answers exactly what
//! an uncached lookup would); what the listing holds is what the directory held at the scan.
//!
//! Every change to the volume forgets what it may have changed: removing or renaming an entry
//! forgets every listing (entries move, clusters are freed); creating a file adds it to its
//! directory's listing, creating a directory forgets that listing; writing or cutting a file
//! forgets the listing of the directory holding it (its size and time changed).
//! The checks of directory chains are remembered and forgotten the same way.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;

use hadris_fat::sync::FileEntry;

use crate::volume::DirId;

/// Most entries remembered over all directories (beyond, everything is forgotten).
const MAX_REMEMBERED: usize = 65536;

/// One directory's entries by name.
#[derive(Default)]
pub(crate) struct Listing {
    long: BTreeMap<String, FileEntry>,
    short: BTreeMap<String, FileEntry>,
}

impl Listing {
    /// Adds `entry` under its names (the first entry of a name keeps it).
    pub(crate) fn add(&mut self, entry: &FileEntry) {
        if let Some(long) = entry.long_name() {
            let key: String = long.chars().flat_map(char::to_uppercase).collect();
            self.long.entry(key).or_insert_with(|| entry.clone());
        }
        if let Some(key) = short_key(&entry.short_name().raw_bytes()) {
            self.short.entry(key).or_insert_with(|| entry.clone());
        }
    }

    fn len(&self) -> usize {
        self.long.len() + self.short.len()
    }

    fn find(&self, name: &str) -> Option<&FileEntry> {
        let long: String = name.chars().flat_map(char::to_uppercase).collect();
        self.long.get(&long).or_else(|| self.short.get(&name.to_ascii_uppercase()))
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

/// The listings and checked chains of one volume.
#[derive(Default)]
pub(crate) struct Names {
    dirs: BTreeMap<DirId, Listing>,
    remembered: usize,
    checked: BTreeSet<u64>,
}

impl Names {
    /// The entry called `name` in directory `dir`, if its listing is here and holds it.
    pub(crate) fn find(&self, dir: DirId, name: &str) -> Option<FileEntry> {
        self.dirs.get(&dir)?.find(name).cloned()
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
        if let Some(listing) = self.dirs.get_mut(&dir) {
            let before = listing.len();
            listing.add(entry);
            self.remembered += listing.len() - before;
        }
    }

    /// Forgets the listing of `dir` (a file in it changed).
    pub(crate) fn forget_dir(&mut self, dir: DirId) {
        if let Some(old) = self.dirs.remove(&dir) {
            self.remembered -= old.len();
        }
    }

    /// Forgets everything (entries were created, removed or moved).
    pub(crate) fn forget_all(&mut self) {
        self.dirs.clear();
        self.checked.clear();
        self.remembered = 0;
    }
}
