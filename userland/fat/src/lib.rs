//! FAT file systems over a block device: the `vfs` server's FAT layer.
//!
//! Three layers, each usable alone, and a check of what they leave on the disk:
//!
//! - [`Disk`]: a block device (`read`/`write` whole blocks, `flush`), with [`MemDisk`] for
//!   images held in memory;
//! - [`Cache`]: a bounded write-back cache of 4 KiB pages that makes a disk one byte stream,
//!   the `Read + Write + Seek` that hadris-fat needs under it;
//! - [`Volume`]: a FAT12/16/32 file system (hadris-fat 2.5, long names, any Unicode name) run
//!   by path: [`Volume::stat`], [`Volume::read`], [`Volume::read_dir`], [`Volume::create`],
//!   [`Volume::write`], [`Volume::truncate`], [`Volume::mkdir`], [`Volume::remove`],
//!   [`Volume::rename`], [`Volume::sync`], and [`Volume::format`] to make a new one. Paths are
//!   absolute (`/a/b/c`); `.` and `..` are resolved from the root and cannot leave it;
//! - [`check`]: a read-only consistency check of a volume on a [`Disk`] that reads the raw
//!   structures itself and reports what `fsck.fat -n` would, as a typed [`Report`] whose
//!   [`Verdict`] tells an unclean stop's leftovers from damage.
//!
//! Damaged volumes are data from outside: a boot sector that does not describe a consistent
//! volume fitting on the disk is refused when mounting ([`FsError::BadBootSector`]), and damage
//! found later (looping or out-of-range cluster chains, files longer than their chains,
//! malformed entries) fails the operation with [`FsError::Corrupt`]; nothing panics, and every
//! walk over disk structures is bounded.
//!
//! # What an unclean stop loses
//!
//! The cache is write-back: a change lives only in memory until [`Volume::sync`] (or until the
//! cache evicts its page to make room), except that an operation that frees clusters (removing
//! a file or directory, cutting a file, renaming over an entry) syncs everything before it and
//! itself right after. Writes go out in an order that keeps every stop recoverable by
//! `fsck.fat` without damage:
//!
//! - the FATs first (by [`Cache::sync`], and before any other dirty page is evicted), flushed,
//!   then entries and data: a cluster is marked in use on the disk before anything that points
//!   at it. Within the FATs, blocks go highest first, so a growing chain's new end mark reaches
//!   the disk before the link to it; a link to a cluster whose entry lies in a lower block
//!   (allocation wrapped round) is first written as the end mark it was, flushed, and only
//!   then as the link (FAT16/32; FAT12's entries straddle blocks);
//! - when freeing, the other way round: the entry stops pointing at the clusters (flushed)
//!   before the FAT frees them; a cut that keeps clusters writes the FAT block ending the kept
//!   chain (flushed) before the blocks freeing the rest;
//! - a new directory cluster (a new directory's zeroes, `.` and `..`, or the cluster a full
//!   directory grows by) goes out before the FATs and before the entry or FAT link that makes
//!   it reachable, at once (`mkdir`, and any create or rename that grows a directory);
//! - an entry whose slots lie on blocks that one disk request cannot hold (a long name split
//!   across clusters) is written first slots first when added and 8.3 entry first when deleted,
//!   flushing between, so a stop leaves at most the orphaned start of a name;
//! - an entry moved where one request cannot write the old and new entries together goes
//!   through an intent recorded in FAT32's FSInfo sector (`rename.rs`): the new entry empty,
//!   the old one deleted, a directory's `..` repointed, the new one given the file, each
//!   flushed; mounting finishes a move a stop interrupted. On FAT12/16 an entry moves in one
//!   step, new entry first, and a stop there can leave two entries sharing the clusters.
//!
//! So a stop loses the changes since the last sync that were not evicted, and can leave *lost
//! clusters* (marked in use, owned by no entry, or past the end of a file whose new size did not
//! reach the disk), which `fsck.fat` frees and this crate cuts off a file's chain before the
//! file grows; the orphaned first slots of a long name whose entry did not reach the disk
//! (`fsck.fat` deletes them); the empty new entry of a move, or the moved file's clusters
//! lost until the next mount finishes the move; a grown file's new bytes may read as the old contents of its clusters if the
//! entry reached the disk and the data did not (no fsck finds that). It never leaves an entry
//! pointing at a freed cluster, which a later allocation would hand to a second file. The
//! FSInfo free count may be stale (`fsck.fat` reports and fixes it). Dropping a [`Volume`]
//! without [`Volume::sync`] or [`Volume::unmount`] discards what is unsynced.
//!
//! # How the `vfs` server uses it
//!
//! For each FAT disk the `device` server exposes (or each VSF), `vfs` wraps its block client in a
//! type implementing [`Disk`], builds a [`Cache`] sized from its memory budget and mounts it with
//! [`Volume::open`] and a clock built on the `rtc0` device (a leaked, `Sync` implementation of
//! hadris-fat's [`TimeProvider`]). An open file or directory capability keeps the path of its
//! entry inside the volume; a client path is resolved against the handle's path by `vfs` first
//! (a directory handle is a true root, so its `..` stops there), and each request becomes one
//! `Volume` call whose [`FsError`] is the answer. `vfs` updates the paths its handles hold when it
//! renames. It calls [`Volume::sync`] when a client asks (`fsync`), on a timer, and before it
//! unmounts or the system stops. A `Volume` is not `Send`: one server thread owns it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod boot;
mod cache;
mod check;
mod data;
mod disk;
mod error;
mod links;
mod names;
mod pageindex;
mod path;
mod rename;
mod volume;

#[cfg(test)]
mod tests;

pub use boot::is_fat_volume;
pub use cache::{Cache, CacheStats, PAGE_SIZE, Sink};
pub use check::{
    BackupFault, DotEntry, DotFault, LabelFault, LongNameFault, MAX_DEPTH, MAX_PROBLEMS, Omitted, Problem, Report,
    StartFault, Verdict, check,
};
pub use data::MAX_FILE_SIZE;
pub use disk::{Disk, DiskError, MemDisk};
pub use error::FsError;
pub use hadris_fat::sync::FatType;
pub use hadris_fat::time::{FatDateTime, TimeProvider};
pub use path::MAX_PATH;
pub use volume::{DirEntry, Kind, MAX_DIR_ENTRIES, Meta, Timestamp, Volume};
