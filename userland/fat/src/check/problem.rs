//! What the check can find: [`Problem`], the fault kinds its variants carry, which problems an
//! unclean stop may leave ([`Problem::leftover`]), and how each reads (one line, no trailing
//! newline; sizes with binary units).
//!
//! Invariants: a problem owns only its own data (paths as `String`s built by the walk); its
//! `Display` never fails on any value the check can produce, including sizes near `u64::MAX`.

use alloc::string::String;
use core::fmt;

use super::MAX_DEPTH;

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

pub(super) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
