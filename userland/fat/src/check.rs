//! A read-only consistency check of a FAT volume: [`check`] reads the boot sector, the FATs and
//! every directory itself (not through hadris-fat, which may refuse or misread a damaged volume)
//! and reports, as typed [`Problem`]s, what `fsck.fat -n` (dosfstools 4.2) complains of.
//!
//! It follows `fsck.fat`'s order and mirrors the repairs `fsck.fat` makes in memory as it goes
//! (a chain cut where it loops or runs into a free or shared cluster, a file's chain cut to its
//! size, an out-of-range FAT entry read as an end mark, a directory entry pointing at the root
//! dropped), on its own copy of the FAT, so one fault does not cascade into others that
//! `fsck.fat` would not report. The walk is `fsck.fat`'s: every entry of a directory (after an
//! end marker too) is read, checked and claims its clusters before any subdirectory is entered,
//! subdirectories depth first in the order of their entries. Counts follow `fsck.fat`'s last
//! line (`N files, A/B clusters`): see [`Report::fsck_files`] and [`Report::clusters_used`].
//!
//! Invariants, for any bytes on the disk:
//!
//! - the disk is only read (never written or flushed); a disk error ends the check with it;
//! - nothing panics: disk-derived indices go through `get`, arithmetic on disk values is done
//!   in `u64` from `u32` fields or checked;
//! - work is bounded: one FAT copy is held in memory (its used part: at most the FAT size the
//!   boot sector checks bounded by the disk), the other compared piece by piece; ownership is
//!   two bitmaps of clusters; every chain walk takes at most `cluster_count` steps, and a cluster
//!   is owned once, so the directories entered (each through a cluster it owns) are at most
//!   `cluster_count`; a directory is read one cluster at a time and at most 2 MiB of it
//!   ([`Problem::DirectoryTooLarge`] past that); directories nested more than [`MAX_DEPTH`]
//!   deep are not entered; the walk keeps a list of directory names (not per-cluster paths) to
//!   build a path only when a problem names it; at most [`MAX_PROBLEMS`] problems are kept, the
//!   rest only counted.
//!
//! Where it knowingly differs from `fsck.fat`: a boot sector [`crate::Volume::open`] would refuse
//! (`Geometry::parse`: e.g. clusters that are not a power of two of sectors, or larger than 32
//! KiB) is [`Problem::BootInvalid`] here and may be accepted there; a directory over 2 MiB or
//! nested over [`MAX_DEPTH`] deep is a problem here and not there; a shared cluster names only
//! the entry whose chain is cut (the second), not the earlier owner; an entry `fsck.fat` would
//! move out of a `.`/`..` slot is not then checked in its new place. And one on purpose: a
//! file whose chain runs, past the file's end, into clusters an earlier entry holds is only "a
//! chain longer than its file" to `fsck.fat` (a leftover), whose repair then frees the other
//! entry's clusters; here it is damage as well ([`Problem::TailCrossLinked`]). An unclean stop of
//! [`crate::Volume`] does not leave it (it never leaves a chain into a freed cluster).

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hadris_fat::sync::FatType;

use crate::boot::{BOOT_SECTOR, Geometry, Root};
use crate::disk::{Disk, DiskError};

/// Most problems a [`Report`] lists; further ones are only counted ([`Report::omitted`]).
pub const MAX_PROBLEMS: usize = 1000;

/// Deepest directory the check enters (the root is depth 0).
pub const MAX_DEPTH: u32 = 64;

/// FAT's limit on a directory: 65,536 entries of 32 bytes.
const MAX_DIR_BYTES: u64 = 2 << 20;

/// Bytes read from the disk in one request, at most.
const MAX_REQUEST: usize = 1 << 20;

/// What `fsck.fat` prints for a boot sector without a label.
const NO_NAME: [u8; 11] = *b"NO NAME    ";

const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_LONG_NAME: u8 = 0x0F;
/// `lcase` bit some tools set on entries that have only a long name.
const NO_8_3_NAME: u8 = 0x20;

// ---------------------------------------------------------------------------------------------
// The report.
// ---------------------------------------------------------------------------------------------

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

/// Which of a directory's first two entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotEntry {
    /// `.`, the first entry, pointing at the directory itself.
    Dot,
    /// `..`, the second, pointing at the parent (0 for the root).
    DotDot,
}

/// What is wrong with a `.` or `..` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotFault {
    /// Its slot is free.
    Missing,
    /// It is there but not a directory pointing where it should.
    Wrong,
    /// Another entry occupies its slot.
    Displaced,
    /// It carries the "no 8.3 name" flag.
    NoNameFlag,
}

/// What is wrong with a long name's slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongNameFault {
    /// A slot without the start bit where no long name is in progress.
    Fragment,
    /// A new long name starts before the one in progress is complete.
    Restarted,
    /// A slot's sequence number is not the one expected.
    Sequence,
    /// A slot's checksum differs from the first slot's.
    SlotChecksum,
    /// Slots whose checksum does not match the 8.3 entry after them.
    Checksum,
    /// An 8.3 entry follows an incomplete long name.
    Unfinished,
    /// A slot's reserved byte or cluster field is not 0.
    SlotFields,
}

/// Why an entry's first cluster is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFault {
    /// A directory starting at cluster 0, which means the root.
    Root,
    /// A directory starting at the cluster of the directory holding it.
    OwnDirectory,
    /// A directory starting at the cluster of its directory's parent.
    ParentDirectory,
    /// Cluster 1, which is reserved.
    ClusterOne,
    /// Past the last cluster of the volume.
    BeyondEnd,
}

/// What is wrong with the backup boot sector (FAT32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackupFault {
    /// The boot sector names none.
    Missing,
    /// It lies past the end of the volume.
    OutsideVolume,
    /// It differs from the boot sector.
    Differs {
        /// Offset of the first byte that differs.
        first: u16,
        /// Bytes that differ.
        count: u16,
    },
}

/// What is wrong with the volume label (`fsck.fat` compares the boot sector's with the root
/// directory's label entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelFault {
    /// The boot sector's label has characters a label may not have (or no label field at all).
    BootInvalid,
    /// The boot sector has a label and the root directory no label entry.
    NoEntry,
    /// The root directory's label entry has characters a label may not have.
    EntryInvalid,
    /// The root directory has a label entry and the boot sector none.
    NotInBoot,
    /// The two labels differ.
    Differ,
}

/// One thing wrong with a volume. Paths are absolute, built from long names where present (8.3
/// names as `NAME.EXT`, bytes above 0x7F read as Latin-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The boot sector does not describe a volume this crate can use; the check stops there.
    BootInvalid {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// FAT32: the backup boot sector is missing or differs.
    BackupBootSector {
        /// How.
        fault: BackupFault,
    },
    /// FAT32: the FSInfo sector's signatures are wrong.
    FsInfoInvalid,
    /// FAT32 with fewer clusters than FAT32 requires (65,525).
    FewClustersForFat32 {
        /// The volume's data clusters.
        clusters: u32,
    },
    /// The volume label.
    Label {
        /// What is wrong with it.
        fault: LabelFault,
    },
    /// No FAT copy starts with a valid media entry; the check stops there.
    FatUnusable,
    /// The FAT copies differ and one does not start with a media entry: the other is used.
    FatCopyCorrupt {
        /// The corrupt copy, 0 or 1.
        copy: u8,
    },
    /// The FAT copies differ, both intact: the first is used (a stop between writing them).
    FatsDiffer,
    /// A FAT entry that is neither free, a cluster of the volume, a bad mark nor an end mark.
    FatEntryOutOfRange {
        /// The cluster whose entry it is.
        cluster: u32,
        /// The entry.
        value: u32,
    },
    /// An entry's chain comes back to one of its own clusters.
    ChainLoops {
        /// The entry's path.
        path: String,
        /// Clusters before the one that closes the loop.
        clusters: u32,
    },
    /// An entry's chain runs into a cluster marked free or bad.
    ChainBroken {
        /// The entry's path.
        path: String,
        /// The free or bad cluster.
        cluster: u32,
        /// Marked bad (not free).
        bad: bool,
    },
    /// An entry's chain runs into a cluster an earlier entry's chain holds.
    SharedCluster {
        /// The path of the later entry (whose chain `fsck.fat` cuts).
        path: String,
        /// The first cluster both hold.
        cluster: u32,
    },
    /// A file's chain has clusters past what its size needs.
    ChainTooLong {
        /// The file's path.
        path: String,
        /// The file's size in bytes.
        size: u32,
        /// Clusters past the end of the file.
        extra_clusters: u32,
        /// Their bytes.
        extra_bytes: u64,
    },
    /// The part of a file's chain past its end runs into a cluster an earlier entry's chain
    /// holds: `fsck.fat` reports only [`Problem::ChainTooLong`], and its repair (freeing the
    /// tail) would free that entry's clusters too.
    TailCrossLinked {
        /// The file's path.
        path: String,
        /// The first cluster of the other entry's chain it runs into.
        cluster: u32,
    },
    /// A file's chain holds fewer bytes than its size.
    ChainTooShort {
        /// The file's path.
        path: String,
        /// The file's size in bytes.
        size: u32,
        /// Bytes the chain holds.
        chain_bytes: u64,
    },
    /// An entry's first cluster is not usable.
    BadStart {
        /// The entry's path.
        path: String,
        /// Its first cluster.
        cluster: u32,
        /// Why not.
        fault: StartFault,
    },
    /// A directory entry with a non-zero size.
    DirectoryHasSize {
        /// The directory's path.
        path: String,
        /// The size its entry records.
        size: u32,
    },
    /// A directory whose `.` or `..` is missing or wrong.
    BadDotEntry {
        /// The directory's path.
        path: String,
        /// Which of the two.
        entry: DotEntry,
        /// What is wrong with it.
        fault: DotFault,
    },
    /// Long-name slots that do not form a name.
    BadLongName {
        /// The path of the directory holding them.
        dir: String,
        /// What is wrong with them.
        fault: LongNameFault,
    },
    /// The slots of a long name whose 8.3 entry never came.
    OrphanedLongName {
        /// The path of the directory holding them.
        dir: String,
        /// The name, as far as its slots go.
        name: String,
    },
    /// An 8.3 name with characters FAT does not allow (a garbage entry?).
    BadShortName {
        /// The entry's path.
        path: String,
    },
    /// An entry whose 8.3 name an earlier entry in the same directory has.
    DuplicateName {
        /// The later entry's path.
        path: String,
    },
    /// A directory most of whose entries have invalid names (garbage read as a directory?).
    ManyBadEntries {
        /// The directory's path.
        path: String,
        /// Entries with invalid names.
        bad: u32,
        /// All its entries.
        total: u32,
    },
    /// A directory longer than FAT's 2 MiB limit (read that far).
    DirectoryTooLarge {
        /// The directory's path.
        path: String,
    },
    /// A directory nested deeper than [`MAX_DEPTH`] (not entered).
    TooDeep {
        /// The directory's path.
        path: String,
    },
    /// Clusters marked in use that no entry's chain holds.
    LostClusters {
        /// How many.
        clusters: u32,
        /// Their bytes.
        bytes: u64,
    },
    /// The volume is marked as not cleanly unmounted (boot sector flag or FAT entry 1).
    DirtyBit,
    /// FAT32: the FSInfo free-cluster count is not the real one.
    FreeCountWrong {
        /// The count recorded (`None`: "unknown", 0xFFFFFFFF).
        recorded: Option<u32>,
        /// Clusters no entry holds and not marked bad.
        actual: u32,
    },
}

impl Problem {
    /// Whether this is something an unclean stop of this crate's [`crate::Volume`] may leave
    /// (crate docs, "What an unclean stop loses"; `vessel_test_harness::fsck::acceptable`):
    /// lost clusters, a chain longer than its file, a wrong FSInfo free count, intact FAT
    /// copies that differ, the dirty bit, the orphaned start of a long name.
    pub fn leftover(&self) -> bool {
        matches!(
            self,
            Self::LostClusters { .. }
                | Self::ChainTooLong { .. }
                | Self::FreeCountWrong { .. }
                | Self::FatsDiffer
                | Self::DirtyBit
                | Self::OrphanedLongName { .. }
        )
    }
}

/// Problems past [`MAX_PROBLEMS`], counted by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    /// Leftovers not listed.
    pub leftovers: u64,
    /// Other problems not listed.
    pub damage: u64,
}

/// What [`check`] found.
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
    fn new() -> Self {
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

    fn push(&mut self, problem: Problem) {
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

/// A byte count with a binary unit: `512 bytes`, `12 KiB`, `1.5 MiB`.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        let Some(&(unit, scale)) = UNITS.iter().find(|&&(_, scale)| self.0 >= scale) else {
            return write!(f, "{} bytes", self.0);
        };
        let tenths = self.0.saturating_mul(10) / scale;
        match tenths % 10 {
            0 => write!(f, "{} {unit}", tenths / 10),
            d => write!(f, "{}.{d} {unit}", tenths / 10),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BootInvalid { reason } => write!(f, "boot sector: {reason}"),
            Self::BackupBootSector { fault: BackupFault::Missing } => {
                f.write_str("boot sector: FAT32 without a backup boot sector")
            }
            Self::BackupBootSector { fault: BackupFault::OutsideVolume } => {
                f.write_str("boot sector: the backup boot sector lies outside the volume")
            }
            Self::BackupBootSector { fault: BackupFault::Differs { first, count } } => write!(
                f,
                "boot sector: the backup differs from it in {count} byte{}, the first at offset {first}",
                plural(u64::from(*count))
            ),
            Self::FsInfoInvalid => f.write_str("FSInfo sector: bad signatures"),
            Self::FewClustersForFat32 { clusters } => {
                write!(f, "boot sector: FAT32 with {clusters} clusters, fewer than the 65525 FAT32 needs")
            }
            Self::Label { fault } => f.write_str(match fault {
                LabelFault::BootInvalid => "label: the boot sector's label is not a valid label",
                LabelFault::NoEntry => "label: in the boot sector but not in the root directory",
                LabelFault::EntryInvalid => "label: the root directory's label entry is not a valid label",
                LabelFault::NotInBoot => "label: in the root directory but not in the boot sector",
                LabelFault::Differ => "label: the boot sector's and the root directory's differ",
            }),
            Self::FatUnusable => f.write_str("FAT: no copy starts with a valid media entry"),
            Self::FatCopyCorrupt { copy } => {
                write!(f, "FAT: the copies differ and copy {copy} does not start with a media entry")
            }
            Self::FatsDiffer => f.write_str("FAT: the copies differ (both intact; the first is used)"),
            Self::FatEntryOutOfRange { cluster, value } => {
                write!(f, "FAT: cluster {cluster} links to {value:#x}, which is not a cluster of the volume")
            }
            Self::ChainLoops { path, clusters } => {
                write!(f, "{path}: cluster chain loops back into itself after {clusters} clusters")
            }
            Self::ChainBroken { path, cluster, bad } => {
                let kind = if *bad { "bad" } else { "free" };
                write!(f, "{path}: cluster chain runs into {kind} cluster {cluster}")
            }
            Self::SharedCluster { path, cluster } => {
                write!(f, "{path}: cluster chain runs into cluster {cluster}, which an earlier entry holds")
            }
            Self::ChainTooLong { path, extra_clusters, extra_bytes, .. } => write!(
                f,
                "{path}: cluster chain is {extra_clusters} cluster{} longer than the file ({} lost)",
                plural(u64::from(*extra_clusters)),
                Size(*extra_bytes)
            ),
            Self::TailCrossLinked { path, cluster } => write!(
                f,
                "{path}: past the end of the file its cluster chain runs into cluster {cluster}, which an \
                 earlier entry holds (cutting the chain would free that entry's clusters)"
            ),
            Self::ChainTooShort { path, size, chain_bytes } => write!(
                f,
                "{path}: the file's size is {} but its cluster chain holds only {}",
                Size(u64::from(*size)),
                Size(*chain_bytes)
            ),
            Self::BadStart { path, cluster, fault } => {
                let why = match fault {
                    StartFault::Root => "0, the root directory",
                    StartFault::OwnDirectory => "the directory holding it",
                    StartFault::ParentDirectory => "the parent of the directory holding it",
                    StartFault::ClusterOne => "reserved",
                    StartFault::BeyondEnd => "past the end of the volume",
                };
                write!(f, "{path}: first cluster {cluster} is {why}")
            }
            Self::DirectoryHasSize { path, size } => {
                write!(f, "{path}: a directory whose entry has a size ({})", Size(u64::from(*size)))
            }
            Self::BadDotEntry { path, entry, fault } => {
                let name = match entry {
                    DotEntry::Dot => "\".\"",
                    DotEntry::DotDot => "\"..\"",
                };
                let what = match fault {
                    DotFault::Missing => "is missing",
                    DotFault::Wrong => "does not point where it should",
                    DotFault::Displaced => "is replaced by another entry",
                    DotFault::NoNameFlag => "carries the no-8.3-name flag",
                };
                write!(f, "{path}: {name} {what}")
            }
            Self::BadLongName { dir, fault } => {
                let what = match fault {
                    LongNameFault::Fragment => "a long-name slot outside any long name (its start is missing)",
                    LongNameFault::Restarted => "a long name starts inside another",
                    LongNameFault::Sequence => "a long-name slot out of sequence",
                    LongNameFault::SlotChecksum => "long-name slots with different checksums",
                    LongNameFault::Checksum => "a long name whose checksum does not match its 8.3 entry",
                    LongNameFault::Unfinished => "an 8.3 entry after an incomplete long name",
                    LongNameFault::SlotFields => "a long-name slot with non-zero reserved fields",
                };
                write!(f, "{dir}: {what}")
            }
            Self::OrphanedLongName { dir, name } => {
                write!(f, "{dir}: the start of a long name (\"{name}\") without its entry")
            }
            Self::BadShortName { path } => write!(f, "{path}: invalid characters in its 8.3 name"),
            Self::DuplicateName { path } => write!(f, "{path}: an earlier entry has the same 8.3 name"),
            Self::ManyBadEntries { path, bad, total } => {
                write!(f, "{path}: {bad} of its {total} entries have invalid names")
            }
            Self::DirectoryTooLarge { path } => write!(f, "{path}: a directory larger than FAT's 2 MiB limit"),
            Self::TooDeep { path } => write!(f, "{path}: nested more than {MAX_DEPTH} directories deep (not read)"),
            Self::LostClusters { clusters, bytes } => write!(
                f,
                "{clusters} cluster{} ({}) marked in use but in no entry's chain (lost)",
                plural(u64::from(*clusters)),
                Size(*bytes)
            ),
            Self::DirtyBit => f.write_str("the volume is marked dirty (not cleanly unmounted)"),
            Self::FreeCountWrong { recorded: Some(n), actual } => {
                write!(f, "FSInfo: the free cluster count is {n}, really {actual}")
            }
            Self::FreeCountWrong { recorded: None, actual } => {
                write!(f, "FSInfo: the free cluster count is not set (really {actual})")
            }
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
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

// ---------------------------------------------------------------------------------------------
// Reading the disk.
// ---------------------------------------------------------------------------------------------

/// Byte-addressed reads over a [`Disk`], in whole blocks of at most [`MAX_REQUEST`] bytes.
struct Reader<'d, D: Disk> {
    disk: &'d mut D,
    block: u64,
    bytes: u64,
    scratch: Vec<u8>,
}

impl<'d, D: Disk> Reader<'d, D> {
    fn new(disk: &'d mut D) -> Result<Self, DiskError> {
        let block = disk.block_size();
        if !block.is_power_of_two() || block > MAX_REQUEST {
            return Err(DiskError::Invalid);
        }
        let block = block as u64;
        let bytes = disk.blocks().checked_mul(block).ok_or(DiskError::Invalid)?;
        Ok(Self { disk, block, bytes, scratch: Vec::new() })
    }

    /// Fills `out` from byte `offset` of the disk.
    fn read(&mut self, offset: u64, out: &mut [u8]) -> Result<(), DiskError> {
        let end = offset.checked_add(out.len() as u64).ok_or(DiskError::OutOfRange)?;
        if end > self.bytes {
            return Err(DiskError::OutOfRange);
        }
        if offset.is_multiple_of(self.block) && (out.len() as u64).is_multiple_of(self.block) {
            let mut block = offset / self.block;
            for piece in out.chunks_mut(MAX_REQUEST) {
                self.disk.read(block, piece)?;
                block += piece.len() as u64 / self.block;
            }
            return Ok(());
        }
        let mut at = offset;
        let mut done = 0;
        while done < out.len() {
            let first = at / self.block;
            let skip = (at - first * self.block) as usize;
            let want = (out.len() - done).min(MAX_REQUEST - skip);
            let span = (skip + want).div_ceil(self.block as usize) * self.block as usize;
            if self.scratch.len() < span {
                self.scratch = vec![0; span];
            }
            let Some(blocks) = self.scratch.get_mut(..span) else { return Err(DiskError::Invalid) };
            self.disk.read(first, blocks)?;
            let (Some(dst), Some(src)) = (out.get_mut(done..done + want), self.scratch.get(skip..skip + want)) else {
                return Err(DiskError::Invalid);
            };
            dst.copy_from_slice(src);
            done += want;
            at += want as u64;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The FAT and cluster bitmaps.
// ---------------------------------------------------------------------------------------------

/// One FAT copy's used part in memory (the entries of clusters `0..=max`), with the in-memory
/// repairs `fsck.fat` would make written into it.
struct Fat {
    bytes: Vec<u8>,
    fat_type: FatType,
    max: u32,
}

impl Fat {
    /// Bytes holding the entries of clusters `0..=cluster_count + 1` (what `fsck.fat` reads).
    fn used_bytes(g: &Geometry) -> u64 {
        let bits = match g.fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        ((u64::from(g.cluster_count) + 2) * bits).div_ceil(8)
    }

    /// The top bits every mark shares (`fsck.fat`'s `FAT_EXTD`).
    fn marks(&self) -> u32 {
        match self.fat_type {
            FatType::Fat12 => 0xFF0,
            FatType::Fat16 => 0xFFF0,
            FatType::Fat32 => 0x0FFF_FFF0,
        }
    }

    fn bad_mark(&self) -> u32 {
        self.marks() | 7
    }

    fn end_mark(&self) -> u32 {
        self.marks() | 0xF
    }

    fn is_end(&self, v: u32) -> bool {
        v >= (self.marks() | 8)
    }

    fn is_bad(&self, v: u32) -> bool {
        v == self.bad_mark()
    }

    fn byte(&self, at: u64) -> u32 {
        usize::try_from(at).ok().and_then(|i| self.bytes.get(i)).map_or(0, |&b| u32::from(b))
    }

    /// The entry of `cluster` (28 bits on FAT32); 0 past the bytes held. (Offsets wrap rather
    /// than overflow: a wrapped range is empty and reads as 0.)
    fn get(&self, cluster: u32) -> u32 {
        let c = cluster as usize;
        let at = |i: usize, n: usize| self.bytes.get(i..i.wrapping_add(n));
        match self.fat_type {
            FatType::Fat12 => match at(c.wrapping_add(c / 2), 2) {
                Some(&[lo, hi]) if c % 2 == 1 => u32::from(lo) >> 4 | u32::from(hi) << 4,
                Some(&[lo, hi]) => u32::from(lo) | (u32::from(hi) & 0x0F) << 8,
                _ => 0,
            },
            FatType::Fat16 => match at(c.wrapping_mul(2), 2) {
                Some(&[lo, hi]) => u32::from(lo) | u32::from(hi) << 8,
                _ => 0,
            },
            FatType::Fat32 => match at(c.wrapping_mul(4), 4) {
                Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) & 0x0FFF_FFFF,
                _ => 0,
            },
        }
    }

    /// Calls `f(cluster, entry)` for every data cluster whose entry is not 0, in order: a
    /// faster [`Fat::get`] loop, skipping zeroes a word at a time.
    fn scan_used(&self, mut f: impl FnMut(u32, u32)) {
        // Bytes per step, and entries per step: whole entries in whole words.
        let (step, per_step) = match self.fat_type {
            FatType::Fat12 => (24, 16),
            FatType::Fat16 => (8, 4),
            FatType::Fat32 => (8, 2),
        };
        let mut first = 0u32;
        for chunk in self.bytes.chunks(step) {
            if first > self.max {
                break;
            }
            if chunk == &[0; 24][..chunk.len()] {
                first = first.saturating_add(per_step);
                continue;
            }
            let last = first.saturating_add(per_step - 1).min(self.max);
            for c in first.max(2)..=last {
                let v = self.get(c);
                if v != 0 {
                    f(c, v);
                }
            }
            first = first.saturating_add(per_step);
        }
    }

    fn put(&mut self, at: u64, value: u8) {
        if let Some(b) = usize::try_from(at).ok().and_then(|i| self.bytes.get_mut(i)) {
            *b = value;
        }
    }

    /// Sets the entry of `cluster` (keeping a FAT12 neighbour's nibble and FAT32's top bits).
    fn set(&mut self, cluster: u32, value: u32) {
        let c = u64::from(cluster);
        match self.fat_type {
            FatType::Fat12 => {
                let at = c * 3 / 2;
                let (lo, hi) = (self.byte(at), self.byte(at + 1));
                let v = value & 0xFFF;
                if c % 2 == 1 {
                    self.put(at, ((lo & 0x0F) | (v & 0x0F) << 4) as u8);
                    self.put(at + 1, (v >> 4) as u8);
                } else {
                    self.put(at, v as u8);
                    self.put(at + 1, ((hi & 0xF0) | v >> 8) as u8);
                }
            }
            FatType::Fat16 => {
                self.put(c * 2, value as u8);
                self.put(c * 2 + 1, (value >> 8) as u8);
            }
            FatType::Fat32 => {
                let top = self.byte(c * 4 + 3) & 0xF0;
                self.put(c * 4, value as u8);
                self.put(c * 4 + 1, (value >> 8) as u8);
                self.put(c * 4 + 2, (value >> 16) as u8);
                self.put(c * 4 + 3, (top | (value >> 24) & 0x0F) as u8);
            }
        }
    }

    /// Whether entry 0 holds a media mark (`fsck.fat`: all of `FAT_EXTD`'s bits set).
    fn media_ok(&self) -> bool {
        self.get(0) & self.marks() == self.marks()
    }

    /// The cluster after `cluster` in its chain: `None` at an end mark or a value that is not a
    /// data cluster.
    fn next(&self, cluster: u32) -> Option<u32> {
        let v = self.get(cluster);
        (2..=self.max).contains(&v).then_some(v)
    }
}

/// One bit per cluster number `0..=max`.
struct Bitmap(Vec<u64>);

impl Bitmap {
    fn new(max: u32) -> Self {
        Self(vec![0; (max as usize) / 64 + 1])
    }

    fn get(&self, i: u32) -> bool {
        self.0.get(i as usize / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn set(&mut self, i: u32, on: bool) {
        if let Some(w) = self.0.get_mut(i as usize / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Directory entries and long names.
// ---------------------------------------------------------------------------------------------

fn le16(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u32::from(u16::from_le_bytes([x, y])),
        _ => 0,
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

/// A free slot: `fsck.fat`'s `IS_FREE` (0x00 end marker or 0xE5 deleted).
fn is_free(raw: &[u8; 32]) -> bool {
    raw[0] == 0 || raw[0] == 0xE5
}

/// The 11 bytes of an 8.3 name.
fn short_name(raw: &[u8; 32]) -> [u8; 11] {
    let mut name = [0u8; 11];
    name.copy_from_slice(&raw[..11]);
    name
}

/// An 8.3 name for display: `NAME.EXT`, lower-cased as its flags say, bytes above 0x7F as
/// Latin-1.
fn display_short(raw: &[u8; 32]) -> String {
    let lower = |b: u8, on: bool| if on { b.to_ascii_lowercase() } else { b };
    let mut out = String::new();
    let base_end = raw[..8].iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    for (i, &b) in raw[..base_end].iter().enumerate() {
        let b = if i == 0 && b == 0x05 { 0xE5 } else { b };
        out.push(char::from(lower(b, raw[12] & 0x08 != 0)));
    }
    let ext_end = raw[8..11].iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    if ext_end > 0 {
        out.push('.');
        for &b in &raw[8..8 + ext_end] {
            out.push(char::from(lower(b, raw[12] & 0x10 != 0)));
        }
    }
    out
}

/// The checksum of an 8.3 name that its long-name slots carry.
fn name_checksum(name: &[u8; 11]) -> u8 {
    name.iter().fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// Whether `fsck.fat` calls an 8.3 name bad (its `bad_name`, without `-S`).
fn bad_short_name(raw: &[u8; 32], has_long_name: bool) -> bool {
    if raw[12] & NO_8_3_NAME != 0 {
        return !has_long_name;
    }
    let bad_byte = |(i, &b): (usize, &u8)| {
        (b < 0x20 && !(i == 0 && b == 0x05))
            || matches!(b, 0x7F | b'*' | b'?' | b'<' | b'>' | b'|' | b'"' | b'\\' | b'/' | b':' | b'.')
    };
    raw[..11].iter().enumerate().any(bad_byte) || raw[0] == b' '
}

/// Whether `fsck.fat` calls a label invalid (its `validate_volume_label` without the lowercase
/// bit; it reads the bytes as signed `char`s, so any byte above 0x7F is invalid too).
fn bad_label(label: &[u8; 11]) -> bool {
    let bad_byte = |&b: &u8| {
        !(0x20..0x80).contains(&b) || matches!(b, 0x22 | 0x2A..=0x2C | 0x2E | 0x2F | 0x3A..=0x3F | 0x5B..=0x5D | 0x7C)
    };
    label.iter().any(bad_byte) || label.iter().all(|&b| b == b' ') || label[0] == b' '
}

/// Characters a long name can have: 31 slots of 13.
const LONG_NAME_UNITS: usize = 31 * 13;

/// `fsck.fat`'s long-name reader: slots collect here until the 8.3 entry they belong to.
struct LongName {
    /// Slots still expected (`fsck.fat`'s `lfn_slot`): `None` when no long name is in progress,
    /// `Some(0)` when one is complete.
    left: Option<u8>,
    checksum: u8,
    parts: u8,
    units: [u16; LONG_NAME_UNITS],
}

/// What a long-name slot or entry did.
enum LongNameEvent {
    Fault(LongNameFault),
    Orphaned(String),
}

impl LongName {
    fn new() -> Self {
        Self { left: None, checksum: 0, parts: 0, units: [0; LONG_NAME_UNITS] }
    }

    fn reset(&mut self) {
        self.left = None;
        self.parts = 0;
    }

    /// The name collected so far (the slots read, from the last one back).
    fn so_far(&self) -> String {
        let from = usize::from(self.left.unwrap_or(0)) * 13;
        let to = (from + usize::from(self.parts) * 13).min(LONG_NAME_UNITS);
        let units = self.units.get(from..to).unwrap_or(&[]);
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        char::decode_utf16(units.iter().take(end).copied()).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
    }

    /// A free slot, or the end of the directory: a long name in progress is orphaned.
    fn orphan(&mut self, events: &mut Vec<LongNameEvent>) {
        if self.left.is_some() {
            events.push(LongNameEvent::Orphaned(self.so_far()));
            self.reset();
        }
    }

    /// A long-name slot (`fsck.fat`'s `lfn_add_slot`).
    fn slot(&mut self, raw: &[u8; 32], events: &mut Vec<LongNameEvent>) {
        let id = raw[0];
        let number = id & 0x1F;
        let first = id & 0x40 != 0;
        if self.left == Some(0) {
            self.orphan(events);
        }
        if first && number != 0 {
            if self.left.is_some() {
                events.push(LongNameEvent::Fault(LongNameFault::Restarted));
            }
            self.left = Some(number);
            self.checksum = raw[13];
            self.parts = 0;
            self.units = [0; LONG_NAME_UNITS];
        } else if self.left.is_none() && number != 0 {
            events.push(LongNameEvent::Fault(LongNameFault::Fragment));
            self.reset();
            return;
        } else if self.left != Some(number) {
            events.push(LongNameEvent::Fault(LongNameFault::Sequence));
            self.reset();
            return;
        }
        if raw[13] != self.checksum {
            events.push(LongNameEvent::Fault(LongNameFault::SlotChecksum));
        }
        if let Some(left) = self.left {
            let left = left.saturating_sub(1);
            self.left = Some(left);
            let at = usize::from(left) * 13;
            let chars = (1..11).step_by(2).chain((14..26).step_by(2)).chain((28..32).step_by(2));
            for (i, pos) in chars.enumerate() {
                if let Some(u) = self.units.get_mut(at + i) {
                    *u = le16(raw, pos) as u16;
                }
            }
            self.parts = self.parts.saturating_add(1);
        }
        if raw[12] != 0 || le16(raw, 26) != 0 {
            events.push(LongNameEvent::Fault(LongNameFault::SlotFields));
        }
    }

    /// An 8.3 entry: the long name it ends, if any (`fsck.fat`'s `lfn_get`).
    fn take(&mut self, raw: &[u8; 32], events: &mut Vec<LongNameEvent>) -> Option<String> {
        match self.left {
            None => None,
            Some(0) => {
                if name_checksum(&short_name(raw)) != self.checksum {
                    events.push(LongNameEvent::Fault(LongNameFault::Checksum));
                }
                let name = self.so_far();
                self.reset();
                Some(name)
            }
            Some(_) => {
                events.push(LongNameEvent::Fault(LongNameFault::Unfinished));
                self.reset();
                None
            }
        }
    }
}

/// An entry read from a directory, with the repairs `fsck.fat` would make to it in memory.
struct Entry {
    raw: [u8; 32],
    name: String,
    has_long_name: bool,
    /// First cluster (`fsck.fat`'s `FSTART`: the high half only on FAT32).
    start: u32,
    /// Marked deleted by a repair.
    dropped: bool,
    /// The FAT32 root directory (no entry of its own).
    is_root: bool,
}

impl Entry {
    fn attr(&self) -> u8 {
        self.raw[11]
    }

    fn is_dir(&self) -> bool {
        self.attr() & ATTR_DIR != 0
    }

    fn size(&self) -> u32 {
        le32(&self.raw, 28)
    }
}

fn first_cluster(raw: &[u8; 32], fat32: bool) -> u32 {
    le16(raw, 26) | if fat32 { le16(raw, 20) << 16 } else { 0 }
}

// ---------------------------------------------------------------------------------------------
// The walk.
// ---------------------------------------------------------------------------------------------

/// A directory found by the walk: enough to build its path and check its `.`/`..`.
struct Node {
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
struct Stopped;

struct Walk<'r, 'd, D: Disk> {
    reader: &'r mut Reader<'d, D>,
    g: Geometry,
    fat: Fat,
    /// Clusters some entry's chain holds.
    owned: Bitmap,
    /// How many clusters `owned` holds.
    owned_count: u32,
    /// Clusters of the chain being walked for loops.
    marked: Bitmap,
    nodes: Vec<Node>,
    report: Report,
    /// The root's label entry: the first before the root's first end marker.
    label: Option<[u8; 11]>,
    cluster_buf: Vec<u8>,
}

/// Checks the FAT volume on `disk` without writing to it; `Err` only for a disk that fails a
/// read (damage of any kind is a [`Problem`] in the report).
pub fn check<D: Disk>(disk: &mut D) -> Result<Report, DiskError> {
    let mut reader = Reader::new(disk)?;
    let mut report = Report::new();
    if reader.bytes < BOOT_SECTOR as u64 {
        report.push(Problem::BootInvalid { reason: "the disk is smaller than a boot sector" });
        return Ok(report);
    }
    let mut boot = [0u8; BOOT_SECTOR];
    reader.read(0, &mut boot)?;
    let g = match Geometry::parse(&boot, reader.bytes) {
        Ok(g) => g,
        Err(e) => {
            report.push(Problem::BootInvalid { reason: e.0 });
            return Ok(report);
        }
    };
    if !le16(&boot, 17).is_multiple_of(16) {
        report.push(Problem::BootInvalid { reason: "the root directory does not fill whole 512-byte sectors" });
        return Ok(report);
    }
    report.fat_type = Some(g.fat_type);
    report.clusters_total = u64::from(g.cluster_count);
    let free_recorded = check_fat32_sectors(&mut reader, &g, &boot, &mut report)?;
    let Some(fat) = read_fat(&mut reader, &g, &mut report)? else {
        return Ok(report);
    };
    let mut walk = Walk {
        reader: &mut reader,
        g,
        owned: Bitmap::new(fat.max),
        owned_count: 0,
        marked: Bitmap::new(fat.max),
        fat,
        nodes: Vec::new(),
        report,
        label: None,
        cluster_buf: vec![0; g.cluster_size as usize],
    };
    walk.out_of_range();
    match walk.tree() {
        Ok(Ok(())) => {}
        Ok(Err(Stopped)) => return Ok(walk.report),
        Err(e) => return Err(e),
    }
    walk.check_label(&boot);
    walk.finish(&boot, free_recorded);
    Ok(walk.report)
}

/// FAT32's own sectors: the cluster count, the backup boot sector, FSInfo. Returns the FSInfo
/// free count `fsck.fat` would compare (`Some(None)`: "unknown"), or `None` on FAT12/16.
fn check_fat32_sectors<D: Disk>(
    reader: &mut Reader<'_, D>,
    g: &Geometry,
    boot: &[u8; BOOT_SECTOR],
    report: &mut Report,
) -> Result<Option<Option<u32>>, DiskError> {
    if g.fat_type != FatType::Fat32 {
        return Ok(None);
    }
    if g.cluster_count < 65525 {
        report.push(Problem::FewClustersForFat32 { clusters: g.cluster_count });
    }
    let sector = u64::from(g.bytes_per_sector);
    let backup = u64::from(le16(boot, 50)) * sector;
    if backup == 0 {
        report.push(Problem::BackupBootSector { fault: BackupFault::Missing });
    } else if backup + BOOT_SECTOR as u64 > g.volume_bytes {
        report.push(Problem::BackupBootSector { fault: BackupFault::OutsideVolume });
    } else {
        let mut copy = [0u8; BOOT_SECTOR];
        reader.read(backup, &mut copy)?;
        let differ = boot.iter().zip(&copy).enumerate().filter(|(_, (a, b))| a != b);
        let (mut first, mut count) = (None, 0u16);
        for (i, _) in differ {
            first.get_or_insert(i as u16);
            count += 1;
        }
        if let Some(first) = first {
            report.push(Problem::BackupBootSector { fault: BackupFault::Differs { first, count } });
        }
    }
    let mut info = [0u8; BOOT_SECTOR];
    reader.read(u64::from(le16(boot, 48)) * sector, &mut info)?;
    let valid = le32(&info, 0) == 0x4161_5252 && le32(&info, 484) == 0x6141_7272 && le32(&info, 508) == 0xAA55_0000;
    if !valid {
        // `fsck.fat` rewrites it (in memory) with an unknown free count.
        report.push(Problem::FsInfoInvalid);
        return Ok(Some(None));
    }
    Ok(Some(match le32(&info, 488) {
        0xFFFF_FFFF => None,
        n => Some(n),
    }))
}

/// Reads the FATs as `fsck.fat` does: the first copy whole (its used part), the second
/// compared piece by piece, and picks the one to use. `None` if neither is usable.
fn read_fat<D: Disk>(reader: &mut Reader<'_, D>, g: &Geometry, report: &mut Report) -> Result<Option<Fat>, DiskError> {
    let len = Fat::used_bytes(g).min(g.fat_size);
    let Ok(len) = usize::try_from(len) else {
        report.push(Problem::BootInvalid { reason: "the FAT is too large to check in memory" });
        return Ok(None);
    };
    let mut bytes = Vec::new();
    if bytes.try_reserve_exact(len).is_err() {
        report.push(Problem::BootInvalid { reason: "the FAT is too large to check in memory" });
        return Ok(None);
    }
    while bytes.len() < len {
        let n = (len - bytes.len()).min(4096);
        bytes.extend_from_slice(&[0; 4096][..n]);
    }
    reader.read(g.fat_start, &mut bytes)?;
    let mut fat = Fat { bytes, fat_type: g.fat_type, max: g.max_cluster() };
    let first_ok = fat.media_ok();
    if g.fat_count < 2 {
        if !first_ok {
            report.push(Problem::FatUnusable);
            return Ok(None);
        }
        return Ok(Some(fat));
    }
    let second = g.fat_start + g.fat_size;
    let mut piece = vec![0u8; len.min(64 << 10)];
    let mut differ = false;
    let mut second_head = [0u8; 4];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(piece.len());
        let Some(buf) = piece.get_mut(..n) else { break };
        reader.read(second + at as u64, buf)?;
        if at == 0 {
            for (d, s) in second_head.iter_mut().zip(buf.iter()) {
                *d = *s;
            }
        }
        differ |= fat.bytes.get(at..at + n) != Some(&*buf);
        at += n;
    }
    let second_ok = {
        let head = Fat { bytes: second_head.to_vec(), fat_type: g.fat_type, max: 0 };
        head.media_ok()
    };
    match (differ, first_ok, second_ok) {
        (false, true, _) => Ok(Some(fat)),
        (true, true, true) => {
            report.push(Problem::FatsDiffer);
            Ok(Some(fat))
        }
        (true, true, false) => {
            report.push(Problem::FatCopyCorrupt { copy: 1 });
            Ok(Some(fat))
        }
        (true, false, true) => {
            report.push(Problem::FatCopyCorrupt { copy: 0 });
            reader.read(second, &mut fat.bytes)?;
            Ok(Some(fat))
        }
        (_, false, _) => {
            report.push(Problem::FatUnusable);
            Ok(None)
        }
    }
}

/// Where an entry sits, for the checks of its first cluster.
struct Place {
    /// The path of the directory holding it.
    dir_path: String,
    /// `fsck.fat` knows the directory holding it (false for the FAT12/16 root's entries).
    has_parent: bool,
    /// First cluster of the directory holding it, and of that directory's parent (0 for the
    /// root).
    parent_start: u32,
    grandparent_start: u32,
}

impl Place {
    fn path(&self, name: &str) -> String {
        let mut path = String::with_capacity(self.dir_path.len() + 1 + name.len());
        path.push_str(self.dir_path.trim_end_matches('/'));
        path.push('/');
        path.push_str(name);
        path
    }
}

/// The path of `entry` in `place` (`/` for the FAT32 root).
fn entry_path(entry: &Entry, place: &Place) -> String {
    if entry.is_root { String::from("/") } else { place.path(&entry.name) }
}

type Step = Result<Result<(), Stopped>, DiskError>;

impl<D: Disk> Walk<'_, '_, D> {
    fn is_fat32(&self) -> bool {
        self.g.fat_type == FatType::Fat32
    }

    fn root_cluster(&self) -> u32 {
        match self.g.root {
            Root::Chain(c) => c,
            Root::Fixed { .. } => 0,
        }
    }

    /// FAT entries that name no cluster: `fsck.fat` reports each and reads it as an end mark.
    /// (They are gathered in `marked`, free before the walk, then rewritten.)
    fn out_of_range(&mut self) {
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
    fn tree(&mut self) -> Step {
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

    /// Walks an entry's chain for a loop back into itself (`fsck.fat`'s `test_file`), cutting
    /// it before the cluster that closes the loop. Chains held by earlier entries stop it.
    fn loops(&mut self, entry: &mut Entry, place: &Place) -> Result<(), Stopped> {
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
    fn check_entry(&mut self, entry: &mut Entry, place: &Place) -> Result<(), Stopped> {
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

    /// The boot sector's label against the root's label entry (`fsck.fat`'s `check_label`).
    fn check_label(&mut self, boot: &[u8; BOOT_SECTOR]) {
        let (sig, at) = if self.is_fat32() { (66, 71) } else { (38, 43) };
        let mut in_boot = [0u8; 11];
        if boot[sig] == 0x29 {
            in_boot.copy_from_slice(&boot[at..at + 11]);
        }
        let mut entry = self.label.filter(|l| l != &[0; 11]);
        if entry.is_none() && in_boot != NO_NAME {
            let fault = if bad_label(&in_boot) { LabelFault::BootInvalid } else { LabelFault::NoEntry };
            self.report.push(Problem::Label { fault });
            in_boot = NO_NAME;
        }
        if let Some(label) = entry.as_mut() {
            if label[0] == 0x05 {
                label[0] = 0xE5;
            }
            if bad_label(label) {
                self.report.push(Problem::Label { fault: LabelFault::EntryInvalid });
                entry = None;
            }
        }
        if let Some(label) = entry {
            if in_boot == NO_NAME && label != NO_NAME {
                self.report.push(Problem::Label { fault: LabelFault::NotInBoot });
            } else if in_boot != NO_NAME && in_boot != label {
                self.report.push(Problem::Label { fault: LabelFault::Differ });
            }
        }
    }

    /// Lost clusters, the dirty bit, the free count and the used count.
    fn finish(&mut self, boot: &[u8; BOOT_SECTOR], free_recorded: Option<Option<u32>>) {
        // Free: neither held by an entry nor marked bad (held clusters are never bad).
        let mut lost = 0u32;
        let mut bad_clusters = 0u32;
        let bad = self.fat.bad_mark();
        let owned = &self.owned;
        self.fat.scan_used(|c, v| {
            if v == bad {
                bad_clusters += 1;
            } else if !owned.get(c) {
                lost += 1;
            }
        });
        let free = self.g.cluster_count.saturating_sub(self.owned_count).saturating_sub(bad_clusters);
        if lost > 0 {
            let bytes = u64::from(lost) * u64::from(self.g.cluster_size);
            self.report.push(Problem::LostClusters { clusters: lost, bytes });
        }
        let flags = match self.g.fat_type {
            FatType::Fat32 => boot[0x41],
            _ => boot[0x25],
        };
        let clean_mark = match self.g.fat_type {
            FatType::Fat12 => true,
            FatType::Fat16 => self.fat.get(1) & 0x8000 != 0,
            FatType::Fat32 => self.fat.get(1) & 0x0800_0000 != 0,
        };
        if flags & 1 != 0 || !clean_mark {
            self.report.push(Problem::DirtyBit);
        }
        if let Some(recorded) = free_recorded
            && recorded != Some(free)
        {
            self.report.push(Problem::FreeCountWrong { recorded, actual: free });
        }
        self.report.clusters_used = u64::from(self.g.cluster_count - free.min(self.g.cluster_count));
    }
}
