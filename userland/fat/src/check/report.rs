//! What [`check`](super::check) returns: a [`Report`] of counts and problems, judged as a
//! [`Verdict`], and its summary for people.
//!
//! Invariants: `problems` never holds more than [`MAX_PROBLEMS`] (further ones are counted in
//! [`Omitted`] by kind, so the verdict still sees them); the verdict is a function of the
//! problems alone.

use alloc::vec::Vec;
use core::fmt;

use hadris_fat::sync::FatType;

use super::MAX_PROBLEMS;
use super::problem::{Problem, plural};

/// The overall judgement of a [`Report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No problem.
    Clean,
    /// Only what an unclean stop may leave (see "What an unclean stop loses" in the crate docs):
    /// every problem is [`Problem::leftover`].
    Leftovers,
    /// Something an unclean stop of this crate does not leave.
    Damaged,
}

/// Problems past [`MAX_PROBLEMS`], counted by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    /// Leftovers not listed.
    pub leftovers: u64,
    /// Other problems not listed.
    pub damage: u64,
}

/// What [`check`](super::check) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The FAT type, `None` if the boot sector was refused.
    pub fat_type: Option<FatType>,
    /// Entries that are neither directories nor volume labels.
    pub files: u64,
    /// Directory entries (not the root, nor `.` and `..`).
    pub directories: u64,
    /// Volume label entries.
    pub labels: u64,
    /// Clusters an entry's chain holds (up to its file's size), plus clusters marked bad: what
    /// `fsck.fat` counts as used once it has repaired the volume (lost clusters and the part of
    /// a chain past its file's end are free to it).
    pub clusters_used: u64,
    /// Data clusters of the volume.
    pub clusters_total: u64,
    /// The problems, in the order found (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems found beyond [`MAX_PROBLEMS`].
    pub omitted: Omitted,
}

impl Report {
    pub(super) fn new() -> Self {
        Self {
            fat_type: None,
            files: 0,
            directories: 0,
            labels: 0,
            clusters_used: 0,
            clusters_total: 0,
            problems: Vec::new(),
            omitted: Omitted::default(),
        }
    }

    pub(super) fn push(&mut self, problem: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else if problem.leftover() {
            self.omitted.leftovers += 1;
        } else {
            self.omitted.damage += 1;
        }
    }

    /// Clean, only leftovers of an unclean stop, or damaged.
    pub fn verdict(&self) -> Verdict {
        if self.problems.iter().any(|p| !p.leftover()) || self.omitted.damage > 0 {
            Verdict::Damaged
        } else if self.problems.is_empty() && self.omitted.leftovers == 0 {
            Verdict::Clean
        } else {
            Verdict::Leftovers
        }
    }

    /// The `N` of `fsck.fat`'s `N files`: every entry it reads except the root, `.` and `..`
    /// (files, directories and volume labels alike).
    pub fn fsck_files(&self) -> u64 {
        self.files + self.directories + self.labels
    }
}

fn fat_name(t: FatType) -> &'static str {
    match t {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    }
}

impl fmt::Display for Report {
    /// A summary line (`clean: 51 files, 3 directories, 4/68528 clusters used`), then one line
    /// per problem and a count of the ones not listed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict() {
            Verdict::Clean => "clean",
            Verdict::Leftovers => "leftovers of an unclean stop",
            Verdict::Damaged => "damaged",
        };
        write!(f, "{verdict}: ")?;
        match self.fat_type {
            None => f.write_str("not a usable FAT volume")?,
            Some(t) => write!(
                f,
                "{}, {} file{}, {} director{}, {}/{} clusters used",
                fat_name(t),
                self.files,
                plural(self.files),
                self.directories,
                if self.directories == 1 { "y" } else { "ies" },
                self.clusters_used,
                self.clusters_total
            )?,
        }
        for problem in &self.problems {
            write!(f, "\n{problem}")?;
        }
        let more = self.omitted.leftovers + self.omitted.damage;
        if more > 0 {
            write!(f, "\nand {more} more problem{}", plural(more))?;
        }
        Ok(())
    }
}
