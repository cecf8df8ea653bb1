//! The `vfs` protocol: files and directories in per-container namespaces. One [`protocol!`]
//! declaration gives the labels, the encoding, the [`Client`], the [`Server`] trait and
//! [`dispatch`]; `docs/vfs.md` describes the server, `docs/protocols.md` the encoding.
//!
//! Names: every container has its own namespace, a tree of mounts kept by `vfs` and keyed by the
//! container the kernel stamps on every request. A request names an entry by a directory handle
//! (0: the namespace's root, with every right) and a path below it, resolved by
//! [`path::resolve`]: `..` never climbs above the handle's directory, so a directory handle is a
//! true root. An open file or directory is a handle: a `u64` token made by the server (a slot
//! and a generation), meaningful only to the container that opened it; another container's,
//! a closed or a made-up one is refused with `InvalidHandle`. Its [`Rights`] only shrink: what
//! is opened through a directory handle and what `duplicate` makes never has a right the source
//! lacks.
//!
//! Mount sources: `mem` (a new, empty in-memory file system), `boot` (the read-only boot file
//! system), `blk:<device>` (the FAT file system on a block device, root container only) and
//! `vsf:<path>` (a virtual storage file: the FAT image in the file at `<path>` of the caller's
//! namespace). A container mounts into its own namespace and its children's, never its parent's.
//!
//! Errors: every refusal carries the reason (`vfs.open: container 0x…: /a/b: no such file or
//! directory`); the error kinds are the kernel's (`NotFound`, `AlreadyExists`, `NotADirectory`,
//! `IsADirectory`, `NotEmpty`, `NoSpace`, `ReadOnly`, `MissingRights`, `InvalidHandle`,
//! `InvalidArgument`, `TooLarge`, `QuotaExceeded`, `Busy`, `DeviceError`, `Corrupt`).
//!
//! [`protocol!`]: vessel_protocol::protocol
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod flags;
pub mod path;
mod stat;

pub use flags::{OpenFlags, Rights};
pub use stat::{
    DIR_PAGE_BYTES, DirEntries, DirEntry, Kind, MAX_DIR_PAGE, MAX_MOUNT_TEXT, MAX_MOUNTS, Mount, Mounts, Stat, Whence,
};

use vessel_protocol::MAX_DATA;

/// Most bytes one `read` or `pread` answers, and one `write` or `pwrite` carries: one message's
/// data area, less room for the length.
pub const MAX_IO: usize = MAX_DATA - 16;
/// The namespace root, as a directory handle.
pub const ROOT: u64 = 0;
/// The largest shared buffer (`share`): 1 MiB.
pub const MAX_SHARED_BYTES: u64 = 1 << 20;
/// Most shared buffers the processes of one container hold at once.
pub const MAX_SHARED_PER_CONTAINER: usize = 8;
/// `offset` of `read_shared` and `write_shared` meaning "at the handle's position, which
/// moves past the bytes" (as `read` and `write` do).
pub const POSITION: u64 = u64::MAX;

vessel_protocol::protocol! {
    /// The `vfs` server: files, directories and mount namespaces.
    pub protocol "vfs" {
        /// Open the entry at `path` under directory handle `dir` (0: the root). Refused with
        /// `InvalidHandle` (no such directory handle here), `MissingRights` (rights the
        /// directory handle lacks, or CREATE/TRUNCATE without WRITE), `InvalidArgument` (a bad
        /// path, no rights asked, or a directory opened for writing), `NotFound`,
        /// `AlreadyExists` (CREATE and EXCLUSIVE), `NotADirectory` (DIRECTORY on a file),
        /// `IsADirectory` (a directory without DIRECTORY), `ReadOnly` (writing on a read-only
        /// file system), `QuotaExceeded` (the container has its most open handles).
        1 open(
            /// The directory handle the path starts from (0: the root).
            dir: u64,
            /// The path below it (a leading `/` means `dir` itself).
            path: str,
            /// How to open (a `u64`; unknown bits do not decode).
            flags: OpenFlags,
        ) -> Opened {
            /// The new handle.
            handle: u64,
            /// What it names.
            stat: Stat,
        };
        /// Close a handle. Refused with `InvalidHandle`.
        2 close(
            /// The handle.
            handle: u64,
        ) -> Done {};
        /// Read at most `max` bytes (and [`MAX_IO`]) from the handle's position, which moves
        /// past them; empty data at the end of the file. Refused with `InvalidHandle`,
        /// `MissingRights`, `IsADirectory`, `DeviceError`, `Corrupt`.
        3 read(
            /// A file handle with READ.
            handle: u64,
            /// The most bytes wanted.
            max: u64,
        ) -> Data {
            /// The bytes read.
            data: bytes,
        };
        /// Write at the handle's position (at the end with APPEND), which moves past the bytes.
        /// Refused with `InvalidHandle`, `MissingRights`, `IsADirectory`, `NoSpace`,
        /// `TooLarge` (past the file system's largest file), `DeviceError`, `Corrupt`.
        4 write(
            /// A file handle with WRITE.
            handle: u64,
            /// The bytes (at most [`MAX_IO`]).
            data: bytes,
        ) -> Written {
            /// How many were written (all of them unless the refusal says otherwise).
            count: u64,
        };
        /// Read at `offset` without moving the position. Refused as `read`.
        5 pread(
            /// A file handle with READ.
            handle: u64,
            /// Where to read from.
            offset: u64,
            /// The most bytes wanted.
            max: u64,
        ) -> Data;
        /// Write at `offset` without moving the position (a gap reads as zeros). Refused as
        /// `write`.
        6 pwrite(
            /// A file handle with WRITE.
            handle: u64,
            /// Where to write.
            offset: u64,
            /// The bytes (at most [`MAX_IO`]).
            data: bytes,
        ) -> Written;
        /// Move the handle's position. Refused with `InvalidHandle`, `IsADirectory`,
        /// `InvalidArgument` (a position before the start or past `u64`).
        7 seek(
            /// A file handle.
            handle: u64,
            /// Where to count from.
            whence: Whence,
            /// How far (may be negative).
            offset: i64,
        ) -> Position {
            /// The new position.
            offset: u64,
        };
        /// What `path` under `dir` names (an empty path: `dir` itself). Refused with
        /// `InvalidHandle`, `MissingRights` (`dir` lacks READ), `InvalidArgument`, `NotFound`.
        8 stat(
            /// A handle (0: the root).
            dir: u64,
            /// The path below it, or empty.
            path: str,
        ) -> Status {
            /// What it names.
            stat: Stat,
        };
        /// A page of the directory's entries from index `start` on (`.` and `..` are not
        /// listed). Refused with `InvalidHandle`, `MissingRights`, `NotADirectory`.
        9 readdir(
            /// A directory handle with READ (0: the root).
            dir: u64,
            /// Index of the first entry wanted (0, then `next`).
            start: u64,
        ) -> Listing {
            /// The entries (empty once `start` is past the last one).
            entries: DirEntries,
            /// The index to ask for next.
            next: u64,
        };
        /// Make a directory. Refused with `InvalidHandle`, `MissingRights` (`dir` lacks
        /// WRITE), `InvalidArgument`, `NotFound` (no parent), `AlreadyExists`, `ReadOnly`,
        /// `NoSpace`.
        10 mkdir(
            /// A directory handle with WRITE (0: the root).
            dir: u64,
            /// The new directory's path below it.
            path: str,
        ) -> Done;
        /// Remove a file or an empty directory. Refused with `InvalidHandle`, `MissingRights`,
        /// `InvalidArgument` (a mount point or `dir` itself), `NotFound`, `NotEmpty`, `Busy`
        /// (a VSF that is mounted), `ReadOnly`.
        11 remove(
            /// A directory handle with WRITE (0: the root).
            dir: u64,
            /// What to remove, below it.
            path: str,
        ) -> Done;
        /// Rename or move an entry within one file system (replacing a file or an empty
        /// directory at `to`). Refused as `remove`, and with `InvalidArgument` across mounts
        /// or into itself.
        12 rename(
            /// A directory handle with WRITE (0: the root).
            dir: u64,
            /// What to move, below `dir`.
            from: str,
            /// Where to, below `dir`.
            to: str,
        ) -> Done;
        /// Set the file's length (cutting it or growing it with zeros). Refused with
        /// `InvalidHandle`, `MissingRights`, `IsADirectory`, `NoSpace`, `TooLarge`.
        13 truncate(
            /// A file handle with WRITE.
            handle: u64,
            /// The new length.
            len: u64,
        ) -> Done;
        /// Write what the handle's file system holds in memory to its disk and flush the disk
        /// (0: every file system of the caller's namespace; from the root container, every file
        /// system the server holds, VSFs first). Refused with `InvalidHandle`, `DeviceError`.
        14 sync(
            /// A handle, or 0.
            handle: u64,
        ) -> Done;
        /// A second handle on the same entry with `rights` (no more than the handle has) and
        /// its own position. Refused with `InvalidHandle`, `MissingRights`, `QuotaExceeded`.
        15 duplicate(
            /// The handle.
            handle: u64,
            /// The rights the copy gets (a `u64`; unknown bits do not decode).
            rights: Rights,
        ) -> Opened;
        /// Mount `source` at `path` in `container`'s namespace (0: the caller's; else a child
        /// of the caller's). The mount point must be a directory unless it is `/`. Refused with
        /// `NoSuchContainer` (not the caller's or a child), `InvalidArgument` (bad source or
        /// path, either longer than [`MAX_MOUNT_TEXT`] bytes), `AlreadyExists` (something is mounted there), `AccessDenied` (`blk:` outside
        /// the root container), `NotFound` (no such device or file), `Busy` (the device or VSF
        /// is mounted already), `Corrupt` (not a FAT volume: the reason says why),
        /// `QuotaExceeded` (the namespace has [`MAX_MOUNTS`] mounts).
        16 mount(
            /// The container (0: the caller's).
            container: u64,
            /// Where, as an absolute path in that namespace.
            path: str,
            /// What: `mem`, `boot`, `blk:<device>` or `vsf:<path>` (see the crate docs).
            source: str,
        ) -> Done;
        /// Sync and detach what is mounted at `path` in `container`'s namespace; its handles
        /// are closed (their next use is refused with `InvalidHandle`). Refused with
        /// `NoSuchContainer`, `InvalidArgument`, `NotFound` (nothing mounted there), `Busy`
        /// (something is mounted below it).
        17 unmount(
            /// The container (0: the caller's).
            container: u64,
            /// The mount point.
            path: str,
        ) -> Done;
        /// The mounts of `container`'s namespace. Refused with `NoSuchContainer`.
        18 mounts(
            /// The container (0: the caller's).
            container: u64,
        ) -> MountList {
            /// The mounts, shortest path first.
            mounts: Mounts,
        };
        /// Create a virtual storage file: a new file of `bytes` bytes at `path` under `dir`,
        /// formatted FAT32 (FAT16 below 33 MiB) in place. Refused as `open` with CREATE and
        /// EXCLUSIVE, and with `InvalidArgument` (a size FAT cannot format: under 1 MiB or
        /// over 4 GiB, or not a multiple of 512), `NoSpace`.
        19 create_vsf(
            /// A directory handle with WRITE (0: the root).
            dir: u64,
            /// The new file's path below it.
            path: str,
            /// Its size.
            bytes: u64,
        ) -> Done;
        /// Give the calling process a buffer shared with the server, of `bytes` (whole pages, at
        /// most [`MAX_SHARED_BYTES`]): `read_shared` and `write_shared` move file data through
        /// it, up to its size per request instead of one message's. It replaces the process's
        /// earlier one (which the process should unmap); its memory is the caller's container's
        /// (charged to its quota). When the container's processes hold
        /// [`MAX_SHARED_PER_CONTAINER`] buffers, the oldest goes (the server never learns that
        /// a process ended); its process is refused with `StaleHandle` and shares again.
        /// Refused with `InvalidArgument` (0, not whole pages, or over the limit),
        /// `QuotaExceeded` (the container's memory), `NoMemory`.
        20 share(
            /// The buffer's size.
            bytes: u64,
        ) -> Shared {
            /// The buffer: a memory capability to map (read and write).
            buffer: cap,
        };
        /// Read up to `len` bytes of the file at `offset` ([`POSITION`]: the handle's position,
        /// which moves) into the process's shared buffer at byte `at`; fewer at the end of the
        /// file. Refused as `read`, with `StaleHandle` when the process has no shared buffer
        /// (never made, or taken back), and with `InvalidArgument` when `at + len` passes its
        /// end.
        21 read_shared(
            /// A file handle with READ.
            handle: u64,
            /// Where in the file ([`POSITION`]: the handle's position).
            offset: u64,
            /// The most bytes wanted.
            len: u64,
            /// Where in the shared buffer they go.
            at: u64,
        ) -> Written;
        /// Write `len` bytes from the process's shared buffer at byte `at` into the file at
        /// `offset` ([`POSITION`]: the handle's position, or its end with APPEND; the position
        /// moves). Refused as `write` and `read_shared`.
        22 write_shared(
            /// A file handle with WRITE.
            handle: u64,
            /// Where in the file ([`POSITION`]: the handle's position).
            offset: u64,
            /// How many bytes.
            len: u64,
            /// Where in the shared buffer they come from.
            at: u64,
        ) -> Written;
        /// Open the file at `path` of `container`'s namespace (the caller's or one below it)
        /// for reading; the handle is the caller's. `proc` reads the programs a container runs
        /// from its own files with it. Refused as `open`, and with `NoSuchContainer` (not the
        /// caller's or below it), `InvalidArgument` (flags other than READ).
        23 open_in(
            /// The container whose namespace `path` is in (0: the caller's).
            container: u64,
            /// An absolute path there.
            path: str,
            /// [`OpenFlags::READ`] only.
            flags: OpenFlags,
        ) -> Opened;
        /// A pipe: two new handles of the caller's container, `read` (READ) and `write`
        /// (WRITE), joined by a 64 KiB queue. A `read` of an empty pipe waits for a write, and
        /// answers the end of the data (empty) once every handle on the writing end is closed; a
        /// `write` to a full pipe waits for a read, and is refused with `PeerDied` once every
        /// handle on the reading end is closed. `duplicate`, `stat` and `close` work on its
        /// ends; other file operations are refused with `WrongObject`. Refused with
        /// `QuotaExceeded` (the container's handles).
        24 pipe() -> Piped {
            /// The reading end.
            read: u64,
            /// The writing end.
            write: u64,
        };
        /// Read up to `len` bytes (at most [`MAX_SHARED_BYTES`]) of the file at `offset`
        /// ([`POSITION`]: the handle's position, which moves past them) straight into the
        /// receive window the call offers (`vessel_rt::server::Windowed`), from the window's
        /// start: the kernel copies each byte once, from the server's cache. Refused as `read`
        /// (`WrongObject` for a pipe), and as the kernel refuses the copy (`AccessDenied`: the
        /// call offered no window; `TooLarge`: `len` passes the window's end; `BadAddress`: a
        /// window page is not mapped writable), leaving the position where it was.
        25 read_window(
            /// A file handle with READ.
            handle: u64,
            /// Where in the file ([`POSITION`]: the handle's position).
            offset: u64,
            /// The most bytes wanted.
            len: u64,
        ) -> Written;
    }
}

#[cfg(test)]
mod tests;
