//! Cluster chains, as `fsck.fat` checks them: FAT entries that name no cluster, a chain that
//! loops back into itself, an entry's first cluster, and the chain it claims (running into a
//! free, bad or already owned cluster, longer or shorter than its file), with `fsck.fat`'s
//! in-memory repairs (a chain cut, a start cleared, an entry dropped) so one fault does not
//! cascade into others `fsck.fat` would not report.
//!
//! Invariants: every chain walk takes at most `cluster_count + 1` steps; a cluster is owned by
//! one entry at most (`owned`), and `marked` is all clear between entries; only the in-memory
//! FAT is changed, never the disk.

use super::names::Entry;
use super::problem::{Problem, StartFault};
use super::walk::{Place, Stopped, Walk, entry_path};
use crate::disk::Disk;

impl<D: Disk> Walk<'_, '_, D> {
    /// FAT entries that name no cluster: `fsck.fat` reports each and reads it as an end mark.
    /// (They are gathered in `marked`, free before the walk, then rewritten.)
    pub(super) fn out_of_range(&mut self) {
        let Self { fat, marked, report, .. } = self;
        let (max, bad) = (fat.max, fat.bad_mark());
        let mut any = false;
        fat.scan_used(|cluster, value| {
            if value == 1 || (value > max && value < bad) {
                report.push(Problem::FatEntryOutOfRange { cluster, value });
                marked.set(cluster, true);
                any = true;
            }
        });
        if !any {
            return;
        }
        let end = fat.end_mark();
        for (i, word) in marked.0.iter_mut().enumerate().filter(|(_, w)| **w != 0) {
            for bit in 0..64 {
                if *word >> bit & 1 == 1 {
                    fat.set((i * 64 + bit) as u32, end);
                }
            }
            *word = 0;
        }
    }

    /// Walks an entry's chain for a loop back into itself (`fsck.fat`'s `test_file`), cutting
    /// it before the cluster that closes the loop. Chains held by earlier entries stop it.
    pub(super) fn loops(&mut self, entry: &mut Entry, place: &Place) -> Result<(), Stopped> {
        let first = entry.start;
        let mut walk = first;
        let mut prev = None;
        let mut count = 0u32;
        let mut stopped = Ok(());
        while (2..=self.fat.max).contains(&walk) && !self.owned.get(walk) {
            let v = self.fat.get(walk);
            if self.marked.get(walk) {
                self.report.push(Problem::ChainLoops { path: entry_path(entry, place), clusters: count });
                match prev {
                    Some(p) => self.fat.set(p, self.fat.end_mark()),
                    None if entry.is_root => stopped = Err(Stopped),
                    None => entry.start = 0,
                }
                break;
            }
            if self.fat.is_bad(v) || count > self.g.cluster_count {
                break;
            }
            self.marked.set(walk, true);
            prev = Some(walk);
            count += 1;
            walk = if self.fat.is_end(v) { 0 } else { v };
        }
        let mut walk = first;
        for _ in 0..count {
            if !self.marked.get(walk) {
                break;
            }
            self.marked.set(walk, false);
            match self.fat.next(walk) {
                Some(next) => walk = next,
                None => break,
            }
        }
        stopped
    }

    /// Checks an entry's first cluster and claims its chain (`fsck.fat`'s `check_file`).
    pub(super) fn check_entry(&mut self, entry: &mut Entry, place: &Place) -> Result<(), Stopped> {
        if entry.dropped {
            return Ok(());
        }
        let size = entry.size();
        let cluster_size = u64::from(self.g.cluster_size);
        if entry.is_dir() {
            if size != 0 {
                self.report.push(Problem::DirectoryHasSize { path: entry_path(entry, place), size });
            }
            let drop_for = if entry.start == 0 {
                Some(StartFault::Root)
            } else if place.has_parent && entry.start == place.parent_start {
                Some(StartFault::OwnDirectory)
            } else if place.has_parent && entry.start == place.grandparent_start {
                Some(StartFault::ParentDirectory)
            } else {
                None
            };
            if let Some(fault) = drop_for {
                self.report.push(Problem::BadStart { path: entry_path(entry, place), cluster: entry.start, fault });
                entry.dropped = true;
                return Ok(());
            }
        }
        for (bad, fault) in
            [(entry.start == 1, StartFault::ClusterOne), (entry.start > self.fat.max, StartFault::BeyondEnd)]
        {
            if bad {
                self.report.push(Problem::BadStart { path: entry_path(entry, place), cluster: entry.start, fault });
                if entry.is_root {
                    return Err(Stopped);
                }
                entry.start = 0;
            }
        }
        let mut clusters = 0u32;
        let mut prev = None;
        let mut curr = Some(entry.start).filter(|&c| c != 0);
        while let Some(c) = curr {
            let v = self.fat.get(c);
            if v == 0 || self.fat.is_bad(v) {
                self.report.push(Problem::ChainBroken { path: entry_path(entry, place), cluster: c, bad: v != 0 });
                match prev {
                    Some(p) => self.fat.set(p, self.fat.end_mark()),
                    None if entry.is_root => return Err(Stopped),
                    None => entry.start = 0,
                }
                break;
            }
            if !entry.is_dir() && u64::from(size) <= u64::from(clusters) * cluster_size {
                let (extra, crossed) = self.cut(entry, clusters);
                self.report.push(Problem::ChainTooLong {
                    path: entry_path(entry, place),
                    size,
                    extra_clusters: extra,
                    extra_bytes: u64::from(extra) * cluster_size,
                });
                if let Some(cluster) = crossed {
                    self.report.push(Problem::TailCrossLinked { path: entry_path(entry, place), cluster });
                }
                break;
            }
            if self.owned.get(c) {
                self.report.push(Problem::SharedCluster { path: entry_path(entry, place), cluster: c });
                match prev {
                    Some(p) => self.fat.set(p, self.fat.end_mark()),
                    None => entry.start = 0,
                }
                break;
            }
            self.owned.set(c, true);
            self.owned_count += 1;
            clusters += 1;
            prev = Some(c);
            curr = if self.fat.is_end(v) || clusters > self.g.cluster_count { None } else { Some(v) };
        }
        let chain_bytes = u64::from(clusters) * cluster_size;
        if !entry.is_dir() && u64::from(size) > chain_bytes {
            self.report.push(Problem::ChainTooShort { path: entry_path(entry, place), size, chain_bytes });
        }
        Ok(())
    }

    /// Cuts an entry's chain to `keep` clusters as `fsck.fat`'s `truncate_file` does (the rest
    /// marked free, along whatever chain it runs into), returning how many clusters it freed and
    /// the first of them an earlier entry holds, if any.
    fn cut(&mut self, entry: &mut Entry, keep: u32) -> (u32, Option<u32>) {
        let mut walk = entry.start;
        let mut deleting = keep == 0;
        if deleting {
            entry.start = 0;
        }
        let mut left = keep;
        let mut freed = 0;
        let mut crossed = None;
        for _ in 0..=self.g.cluster_count {
            if !(2..=self.fat.max).contains(&walk) {
                break;
            }
            let v = self.fat.get(walk);
            let next = if self.fat.is_end(v) { 0 } else { v };
            if deleting {
                if crossed.is_none() && self.owned.get(walk) {
                    crossed = Some(walk);
                }
                self.fat.set(walk, 0);
                freed += 1;
            } else {
                left -= 1;
                if left == 0 {
                    deleting = true;
                    self.fat.set(walk, self.fat.end_mark());
                }
            }
            walk = next;
        }
        (freed, crossed)
    }
}
