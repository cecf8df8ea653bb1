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
//!
//! The pieces, each owning one concern:
//!
//! - `problem`: [`Problem`] and the fault kinds it names, and how each reads;
//! - `report`: [`Report`], its [`Verdict`] and summary;
//! - `reader`: byte-addressed reads over the [`Disk`] and little-endian fields;
//! - `fat`: the FAT copy held in memory (with `fsck.fat`'s in-memory repairs), the cluster
//!   bitmaps, and reading and choosing between the FAT copies;
//! - `names`: directory entries, 8.3 names, labels and the long-name reader;
//! - `walk`: the directory tree, directory by directory;
//! - `chains`: each entry's cluster chain (loops, sharing, length against the size);
//! - `volume`: FAT32's own sectors before the walk, the label and the closing counts after it.

use alloc::vec;
use alloc::vec::Vec;

use crate::boot::{BOOT_SECTOR, Geometry};
use crate::disk::{Disk, DiskError};

use fat::{Bitmap, read_fat};
use reader::{Reader, le16};
use volume::check_fat32_sectors;
use walk::{Stopped, Walk};

mod chains;
mod fat;
mod names;
mod problem;
mod reader;
mod report;
mod volume;
mod walk;

pub use problem::{BackupFault, DotEntry, DotFault, LabelFault, LongNameFault, Problem, StartFault};
pub use report::{Omitted, Report, Verdict};

/// Most problems a [`Report`] lists; further ones are only counted ([`Report::omitted`]).
pub const MAX_PROBLEMS: usize = 1000;

/// Deepest directory the check enters (the root is depth 0).
pub const MAX_DEPTH: u32 = 64;

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
