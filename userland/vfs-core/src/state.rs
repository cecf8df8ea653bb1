//! [`Vfs`]: the protocol's rules over the mounted file systems.
//!
//! - **Namespaces**: each container has a list of mount points (a path and a mount); a path is
//!   served by the mount with the longest mount point that is a prefix of it. A container with
//!   nothing mounted at `/` sees nothing at all. A container mounts into its own namespace and
//!   its children's; the root container's is assembled by the program at start.
//! - **Mounts**: every mount is a file system instance of its own (a new `mem`, the FAT volume
//!   of one block device, or of one VSF). A device or VSF is mounted at most once in the whole
//!   server, so two writers never share a FAT without knowing.
//! - **Handles**: a slot and a generation in a `u64` (never 0, which names the root), owned by
//!   the container that opened it; rights only shrink. A handle names its entry by path: `vfs`
//!   moves the paths of open handles along when an entry is renamed, and a handle whose entry
//!   was removed answers `NotFound`.
//! - **Containers that end**: [`Vfs::forget_dead_containers`] (called by the program on a timer
//!   and before mounts) unmounts their namespaces and closes their handles.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use vessel_abi::Error;
use vessel_fat::{Cache, Disk, DiskError, FsError, TimeProvider, Volume};
use vessel_protocol::{Answer, Cx, ReplySender};
use vessel_vfs_protocol::path::Path;
use vessel_vfs_protocol::{
    Data, DirEntries, DirEntry, Done, Kind, Listing, MAX_IO, MAX_MOUNT_TEXT, MAX_MOUNTS, MAX_SHARED_BYTES,
    MAX_SHARED_PER_CONTAINER, Mount, MountList, Mounts, OpenFlags, Opened, POSITION, Piped, Position, ROOT, Rights,
    Server, Shared, Stat, Status, Whence, Written,
};

use crate::bootfs::{BootFs, BootImage};
use crate::fat::FatFs;
use crate::fs::{FileSystem, Meta, Sink};
use crate::kept::KeptMount;
use crate::memfs::MemFs;
use crate::pipe::{Now, Pipe, Ready};

/// Most handles one container may hold open.
pub const MAX_OPEN_PER_CONTAINER: usize = 256;
/// Most handles the server holds (256 containers' worth).
pub const MAX_HANDLES: usize = 256 * MAX_OPEN_PER_CONTAINER;
/// Bytes an in-memory file system (`mem`) may hold.
pub const MEM_LIMIT: u64 = 64 << 20;
/// Cache pages (4 KiB) of a FAT volume on a block device: 24 MiB, the server's page cache for
/// the disk (filled as it is used, never given back: the machine's memory bounds it).
pub const DEVICE_CACHE_PAGES: usize = 6144;
/// Cache pages of a FAT volume in a VSF (whose file's own volume caches it too): 1 MiB.
pub const CACHE_PAGES: usize = 256;
/// Bytes per block of a VSF seen as a disk.
const VSF_BLOCK: usize = 512;
/// Smallest and largest VSF `create_vsf` makes.
const VSF_MIN: u64 = 1 << 20;
const VSF_MAX: u64 = 4 << 30;

/// What the program provides: the kernel's side of things.
pub trait Env {
    /// A block device, as the FAT layer reads it.
    type Disk: Disk + 'static;
    /// The parent of `container`, or `None` if it does not exist (any more).
    fn parent(&mut self, container: u64) -> Option<u64>;
    /// Opens block device `name` for reading and writing; why not, if it cannot.
    fn open_disk(&mut self, name: &str) -> Result<Self::Disk, (Error, String)>;
    /// Seconds since 1970-01-01 UTC (an associated function: in-memory file systems keep it
    /// as their clock).
    fn now() -> u64;
    /// The clock FAT volumes stamp entries with.
    fn clock(&self) -> Option<&'static dyn TimeProvider>;
    /// A buffer shared with a client: the server's view of its bytes (unmapped when dropped).
    type Buffer: AsMut<[u8]>;
    /// Makes a buffer of `bytes` (whole pages, checked) for `container` (its memory, charged to
    /// its quota); the server's view and a capability for the client (read, write, map).
    fn make_buffer(&mut self, bytes: u64, container: u64) -> Result<(Self::Buffer, u32), (Error, String)>;
    /// The receive window of the request being handled.
    type Window: Window;
    /// A sink into the receive window the caller of the request being handled offered.
    fn window(&self) -> Self::Window;
}

/// The receive window the caller of the request being handled offered (`read_window`): the
/// bytes handed to it reach the caller's memory in order from the window's start (the kernel
/// copies them, `WindowWrite`). It may keep only where the pieces are until it is told to flush
/// ([`Sink`]), and must be finished before anything else changes the file system.
pub trait Window: Sink {
    /// Sends what it still holds: the bytes that reached the window in all, or why the copying
    /// stopped (what the caller is then refused with).
    fn finish(&mut self) -> Result<u64, (Error, String)>;
}

type FsRef = Rc<RefCell<dyn FileSystem>>;

/// Where a mount's data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Backing {
    /// In memory.
    Memory,
    /// A block device of the `device` server.
    Device(String),
    /// A file of another mount.
    File { mount: u64, path: Path },
}

struct Mounted {
    fs: FsRef,
    source: String,
    backing: Backing,
    read_only: bool,
    /// The container that asked for it through the protocol (kept across restarts, `kept`);
    /// `None` for the root's tree, which the program assembles at every start.
    asked_by: Option<u64>,
}

/// A mount point of a namespace.
#[derive(Clone, Debug)]
struct MountPoint {
    at: Path,
    mount: u64,
}

struct Handle {
    container: u64,
    mount: u64,
    /// Where it is in the container's namespace (the root of what a directory handle reaches).
    at: Path,
    /// Its path inside the mount's file system, as the file system spells it.
    path: Path,
    kind: Kind,
    rights: Rights,
    position: u64,
    append: bool,
    /// A directory's entries, read at the `readdir` from 0 and paged from here.
    listing: Option<Vec<DirEntry>>,
    /// An end of a pipe: its index, and whether it is the writing end.
    pipe: Option<(usize, bool)>,
}

/// A path resolved in a namespace.
struct Located {
    /// The path in the namespace.
    at: Path,
    /// The mount serving it.
    mount: u64,
    /// Where the mount point ends in `at` (see `Path::cut`): the rest is the path inside the
    /// mount.
    cut: usize,
    rights: Rights,
}

impl Located {
    /// The path inside the mount's file system, as the request spelled it (borrowed from `at`).
    fn path(&self) -> &str {
        self.at.after(self.cut)
    }

    /// Whether it names the mount point itself.
    fn is_mount_point(&self) -> bool {
        self.path() == "/"
    }
}

/// A VSF's file seen as a disk of 512-byte blocks.
pub struct FileDisk {
    fs: FsRef,
    path: Path,
    blocks: u64,
}

impl Disk for FileDisk {
    fn block_size(&self) -> usize {
        VSF_BLOCK
    }

    fn blocks(&self) -> u64 {
        self.blocks
    }

    fn read(&mut self, first_block: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let end = first_block.checked_add((buf.len() / VSF_BLOCK) as u64).ok_or(DiskError::OutOfRange)?;
        if !buf.len().is_multiple_of(VSF_BLOCK) || end > self.blocks {
            return Err(DiskError::OutOfRange);
        }
        let mut fs = self.fs.try_borrow_mut().map_err(|_| DiskError::Invalid)?;
        let mut done = 0;
        while done < buf.len() {
            let offset = first_block * VSF_BLOCK as u64 + done as u64;
            match fs.read(self.path.as_str(), offset, &mut buf[done..]) {
                Ok(0) | Err(_) => return Err(DiskError::Device),
                Ok(n) => done += n,
            }
        }
        Ok(())
    }

    fn write(&mut self, first_block: u64, data: &[u8]) -> Result<(), DiskError> {
        let end = first_block.checked_add((data.len() / VSF_BLOCK) as u64).ok_or(DiskError::OutOfRange)?;
        if !data.len().is_multiple_of(VSF_BLOCK) || end > self.blocks {
            return Err(DiskError::OutOfRange);
        }
        let mut fs = self.fs.try_borrow_mut().map_err(|_| DiskError::Invalid)?;
        match fs.write(self.path.as_str(), first_block * VSF_BLOCK as u64, data) {
            Ok(n) if n == data.len() => Ok(()),
            _ => Err(DiskError::Device),
        }
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        self.fs.try_borrow_mut().map_err(|_| DiskError::Invalid)?.sync().map_err(|_| DiskError::Device)
    }
}

/// The `vfs` server's state.
pub struct Vfs<E: Env> {
    env: E,
    root_container: u64,
    mounts: BTreeMap<u64, Mounted>,
    next_mount: u64,
    namespaces: BTreeMap<u64, Vec<MountPoint>>,
    handles: Vec<Option<Handle>>,
    generations: Vec<u32>,
    /// Shared buffers, by container and process (each in its own cell, so a request can use
    /// one while it has the whole server).
    buffers: BTreeMap<(u64, u64), Rc<RefCell<E::Buffer>>>,
    /// When each buffer was made (a count): the oldest goes first when a container is full.
    shared_when: BTreeMap<(u64, u64), u64>,
    next_share: u64,
    /// The boot file system, once the program handed it over (`boot` mounts share it).
    boot: Option<Rc<BootImage>>,
    /// Pipes, by index (`Handle::pipe`).
    pipes: Vec<Option<Pipe>>,
    /// Answers to kept calls that a request settled, to send after it (`send_ready`).
    ready: Vec<Ready>,
    /// Counts changes of the mounts (`mount_changes`).
    mount_changes: u64,
}

/// The error kind a file system failure is answered with.
fn error_of(e: FsError) -> Error {
    match e {
        FsError::NotFound => Error::NotFound,
        FsError::NotADirectory => Error::NotADirectory,
        FsError::IsADirectory => Error::IsADirectory,
        FsError::AlreadyExists => Error::AlreadyExists,
        FsError::NotEmpty => Error::NotEmpty,
        FsError::InvalidPath | FsError::InvalidName => Error::InvalidArgument,
        FsError::NoSpace | FsError::DirectoryFull => Error::NoSpace,
        FsError::FileTooLarge => Error::TooLarge,
        FsError::BadBootSector(_) | FsError::Corrupt(_) => Error::Corrupt,
        FsError::Disk(_) => Error::DeviceError,
        FsError::FormatRefused(_) => Error::InvalidArgument,
    }
}

/// The page of `entries` from index `start`: as many as fit one reply.
fn page_of(entries: &[DirEntry], start: u64) -> Listing {
    let mut page = DirEntries::default();
    let mut used = 0;
    let mut next = start;
    for entry in entries.iter().skip(usize::try_from(start).unwrap_or(usize::MAX)) {
        if !page.fits(used, entry) {
            break;
        }
        used += entry.wire_bytes();
        page.0.push(entry.clone());
        next += 1;
    }
    Listing { entries: page, next }
}

fn stat_of(meta: Meta, read_only: bool) -> Stat {
    Stat { kind: meta.kind, size: meta.size, modified: meta.modified, read_only }
}

impl<E: Env> Vfs<E> {
    /// What `stat` says of a pipe's end: a file of the bytes waiting, read-only on the reading
    /// end.
    fn pipe_stat(&self, p: usize, write: bool) -> Stat {
        let size = self.pipes.get(p).and_then(Option::as_ref).map_or(0, |pipe| pipe.len() as u64);
        Stat { kind: Kind::File, size, modified: 0, read_only: !write }
    }

    fn pipe_read(&mut self, cx: &mut Cx<'_, Data>, token: u64, p: usize, write: bool, max: u64) -> Answer<Data> {
        if write {
            return answer(cx, Err((Error::MissingRights, format!("handle {token:#x} is a pipe's writing end"))));
        }
        if max == 0 {
            return answer(cx, Err((Error::InvalidArgument, String::from("a read of 0 bytes"))));
        }
        let Some(Some(pipe)) = self.pipes.get_mut(p) else {
            return answer(cx, Err((Error::InvalidHandle, format!("handle {token:#x}: no such pipe"))));
        };
        let max = (max as usize).min(MAX_IO);
        match pipe.read(max) {
            Now::Done(data) => {
                pipe.settle(p, &mut self.ready);
                Answer::Reply(Data { data })
            }
            Now::Wait => match cx.defer() {
                Ok(reply) => {
                    pipe.wait_read(max, reply);
                    Answer::Later
                }
                Err(refusal) => Answer::Refuse(refusal),
            },
        }
    }

    fn pipe_write(
        &mut self,
        cx: &mut Cx<'_, Written>,
        token: u64,
        p: usize,
        write: bool,
        data: &[u8],
    ) -> Answer<Written> {
        if !write {
            return answer(cx, Err((Error::MissingRights, format!("handle {token:#x} is a pipe's reading end"))));
        }
        if data.len() > MAX_IO {
            return answer(cx, Err((Error::TooLarge, format!("{} bytes, at most {MAX_IO} a write", data.len()))));
        }
        if data.is_empty() {
            return Answer::Reply(Written { count: 0 });
        }
        let container = cx.caller().container;
        let Some(Some(pipe)) = self.pipes.get_mut(p) else {
            return answer(cx, Err((Error::InvalidHandle, format!("handle {token:#x}: no such pipe"))));
        };
        match pipe.write(container, data) {
            Ok(Now::Done(count)) => {
                pipe.settle(p, &mut self.ready);
                Answer::Reply(Written { count: count as u64 })
            }
            Ok(Now::Wait) => match cx.defer() {
                Ok(reply) => {
                    pipe.wait_write(container, data.to_vec(), reply);
                    Answer::Later
                }
                Err(refusal) => Answer::Refuse(refusal),
            },
            Err(refusal) => Answer::Refuse(refusal),
        }
    }

    /// A server with no mounts; `root_container` is the container that may mount devices.
    pub fn new(env: E, root_container: u64) -> Vfs<E> {
        Vfs {
            env,
            root_container,
            mounts: BTreeMap::new(),
            next_mount: 1,
            namespaces: BTreeMap::new(),
            handles: Vec::new(),
            generations: Vec::new(),
            buffers: BTreeMap::new(),
            shared_when: BTreeMap::new(),
            next_share: 0,
            boot: None,
            pipes: Vec::new(),
            ready: Vec::new(),
            mount_changes: 0,
        }
    }

    /// Hands over the boot file system, which `boot` mounts then serve (read-only).
    pub fn set_boot_image(&mut self, image: Rc<BootImage>) {
        self.boot = Some(image);
    }

    /// How many pipes exist (for tests and diagnostics).
    pub fn pipes_open(&self) -> usize {
        self.pipes.iter().flatten().count()
    }

    /// How many shared buffers the server holds (for tests and diagnostics).
    pub fn shared_buffers(&self) -> usize {
        self.buffers.len()
    }

    /// The environment.
    pub fn env(&mut self) -> &mut E {
        &mut self.env
    }

    /// Mounts `source` at `at` in `container`'s namespace for `caller` (who names a VSF by a
    /// path of its own namespace, and must be the root container to mount a block device).
    /// The program assembles the root container's tree with it.
    pub fn mount_in(&mut self, caller: u64, container: u64, at: &str, source: &str) -> Result<(), (Error, String)> {
        self.mount_as(caller, container, at, source, false)
    }

    /// [`Vfs::mount_in`], remembering the asker if the mount is to be kept across restarts.
    fn mount_as(
        &mut self,
        caller: u64,
        container: u64,
        at: &str,
        source: &str,
        keep: bool,
    ) -> Result<(), (Error, String)> {
        let at = Path::root().resolve(at).map_err(|e| (Error::InvalidArgument, format!("{at}: {e}")))?;
        if at.as_str().len() > MAX_MOUNT_TEXT || source.len() > MAX_MOUNT_TEXT {
            return Err((
                Error::InvalidArgument,
                format!("mount paths and sources are at most {MAX_MOUNT_TEXT} bytes"),
            ));
        }
        let points = self.namespaces.get(&container).map_or(0, Vec::len);
        if points >= MAX_MOUNTS {
            return Err((Error::QuotaExceeded, format!("the namespace has {MAX_MOUNTS} mounts already")));
        }
        if self.namespaces.get(&container).is_some_and(|ns| ns.iter().any(|p| p.at == at)) {
            return Err((Error::AlreadyExists, format!("something is mounted at {at} already")));
        }
        if !at.is_root() {
            // The mount point must be a directory of what is mounted above it.
            let located = self.locate_in(container, at.clone())?;
            let fs = self.fs(located.mount)?;
            let stat = fs.borrow_mut().stat(located.path());
            match stat {
                Ok(m) if m.kind == Kind::Dir => {}
                Ok(_) => return Err((Error::NotADirectory, format!("{at}: not a directory"))),
                Err(e) => return Err((error_of(e), format!("{at}: {e}"))),
            }
        }
        let mut mounted = self.make_fs(caller, source)?;
        mounted.asked_by = keep.then_some(caller);
        self.mount_changes += 1;
        let id = self.next_mount;
        self.next_mount += 1;
        self.mounts.insert(id, mounted);
        let ns = self.namespaces.entry(container).or_default();
        ns.push(MountPoint { at, mount: id });
        ns.sort_by_key(|p| p.at.depth());
        Ok(())
    }

    /// A new file system for `source`, as `caller` names it.
    fn make_fs(&mut self, caller: u64, source: &str) -> Result<Mounted, (Error, String)> {
        let mut read_only = false;
        let (fs, backing): (FsRef, Backing) = if source == "mem" {
            let mut fs = MemFs::new(MEM_LIMIT);
            fs.set_clock(E::now);
            (Rc::new(RefCell::new(fs)), Backing::Memory)
        } else if source == "boot" {
            let image =
                self.boot.clone().ok_or((Error::NotFound, String::from("the server has no boot file system")))?;
            read_only = true;
            (Rc::new(RefCell::new(BootFs::new(image))), Backing::Memory)
        } else if let Some(name) = source.strip_prefix("blk:") {
            if caller != self.root_container {
                return Err((Error::AccessDenied, String::from("only the root container mounts block devices")));
            }
            if self.mounts.values().any(|m| matches!(&m.backing, Backing::Device(n) if n == name)) {
                return Err((Error::Busy, format!("{name} is mounted already")));
            }
            let disk = self.env.open_disk(name)?;
            let volume = self.volume(disk, name, DEVICE_CACHE_PAGES)?;
            (Rc::new(RefCell::new(FatFs::new(volume))), Backing::Device(name.to_string()))
        } else if let Some(file) = source.strip_prefix("vsf:") {
            let at = Path::root().resolve(file).map_err(|e| (Error::InvalidArgument, format!("{file}: {e}")))?;
            let located = self.locate_in(caller, at)?;
            let path = self.canonical(&located)?;
            if self.vsf_under(located.mount, &path) {
                return Err((Error::Busy, format!("{file} is mounted already")));
            }
            if self.open_for_writing(located.mount, &path) {
                return Err((Error::Busy, format!("{file} is open for writing")));
            }
            let backing = Backing::File { mount: located.mount, path: path.clone() };
            let fs = Rc::clone(self.fs(located.mount)?);
            let stat = fs.borrow_mut().stat(path.as_str());
            let size = match stat {
                Ok(m) if m.kind == Kind::File => m.size,
                Ok(_) => return Err((Error::IsADirectory, format!("{file}: is a directory"))),
                Err(e) => return Err((error_of(e), format!("{file}: {e}"))),
            };
            let disk = FileDisk { fs, path, blocks: size / VSF_BLOCK as u64 };
            let volume = self.volume(disk, file, CACHE_PAGES)?;
            (Rc::new(RefCell::new(FatFs::new(volume))), backing)
        } else {
            return Err((
                Error::InvalidArgument,
                format!("unknown source {source:?}: mem, boot, blk:<device> or vsf:<path>"),
            ));
        };
        Ok(Mounted { fs, source: source.to_string(), backing, read_only, asked_by: None })
    }

    /// Mounts the FAT volume on `disk`.
    fn volume<D: Disk>(&self, disk: D, name: &str, pages: usize) -> Result<Volume<D>, (Error, String)> {
        let cache = Cache::new(disk, pages).map_err(|e| (Error::DeviceError, format!("{name}: {e}")))?;
        Volume::open(cache, self.env.clock()).map_err(|e| (error_of(e), format!("{name}: {e}")))
    }

    /// The file system of mount `id`.
    fn fs(&self, id: u64) -> Result<&FsRef, (Error, String)> {
        self.mounts.get(&id).map(|m| &m.fs).ok_or_else(|| (Error::NotFound, String::from("the mount is gone")))
    }

    /// Whether a handle has the file `path` of mount `mount` open for writing.
    fn open_for_writing(&self, mount: u64, path: &Path) -> bool {
        self.handles.iter().flatten().any(|h| h.mount == mount && h.path == *path && h.rights.contains(Rights::WRITE))
    }

    /// Which mount serves `at` (resolved, from the root) in `container`'s namespace (with every
    /// right: the caller narrows them). `at` is kept as it is: the path inside the mount is a
    /// view of it.
    fn locate_in(&self, container: u64, at: Path) -> Result<Located, (Error, String)> {
        let points = self.namespaces.get(&container).map_or(&[][..], Vec::as_slice);
        let Some((cut, mount)) = points.iter().rev().find_map(|p| Some((at.cut(&p.at)?, p.mount))) else {
            return Err((Error::NotFound, format!("{at}: nothing is mounted there in this container")));
        };
        Ok(Located { at, mount, cut, rights: Rights::READ_WRITE })
    }

    /// Resolves `path` under directory handle `dir` of `container` (one allocation: the
    /// resolved path).
    fn locate(&self, container: u64, dir: u64, path: &str) -> Result<Located, (Error, String)> {
        let root = Path::root();
        let (base, rights) = if dir == ROOT {
            (&root, Rights::READ_WRITE)
        } else {
            let h = self.handle(container, dir)?;
            if h.kind != Kind::Dir {
                return Err((Error::NotADirectory, format!("handle {dir:#x} is a file")));
            }
            (&h.at, h.rights)
        };
        let at = base.resolve(path).map_err(|e| (Error::InvalidArgument, format!("{path}: {e}")))?;
        let mut located = self.locate_in(container, at)?;
        located.rights = rights;
        Ok(located)
    }

    /// The path of `located`'s entry as its file system spells it (see `FileSystem::canonical`).
    fn canonical(&self, located: &Located) -> Result<Path, (Error, String)> {
        let fs = self.fs(located.mount)?;
        let canonical = fs.borrow_mut().canonical(located.path());
        canonical.map_err(|e| (error_of(e), format!("{}: {e}", located.at)))
    }

    /// The open handle `token` of `container`.
    fn handle(&self, container: u64, token: u64) -> Result<&Handle, (Error, String)> {
        self.slot(container, token)
            .and_then(|i| self.handles.get(i).and_then(Option::as_ref).ok_or((Error::InvalidHandle, String::new())))
    }

    fn handle_mut(&mut self, container: u64, token: u64) -> Result<&mut Handle, (Error, String)> {
        let i = self.slot(container, token)?;
        self.handles.get_mut(i).and_then(Option::as_mut).ok_or((Error::InvalidHandle, String::new()))
    }

    /// The slot of `token` if it is an open handle of `container`.
    fn slot(&self, container: u64, token: u64) -> Result<usize, (Error, String)> {
        let refuse = || (Error::InvalidHandle, format!("{token:#x} is no open handle of this container"));
        let index = (token & 0xFFFF_FFFF).checked_sub(1).ok_or_else(refuse)? as usize;
        let generation = (token >> 32) as u32;
        match (self.handles.get(index), self.generations.get(index)) {
            (Some(Some(h)), Some(&g)) if g == generation && h.container == container => Ok(index),
            _ => Err(refuse()),
        }
    }

    /// Stores a new handle; its token.
    fn insert(&mut self, handle: Handle) -> Result<u64, (Error, String)> {
        self.room_for(handle.container)?;
        let index = match self.handles.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.handles.push(None);
                self.generations.push(0);
                self.handles.len() - 1
            }
        };
        self.handles[index] = Some(handle);
        Ok((u64::from(self.generations[index]) << 32) | (index as u64 + 1))
    }

    /// Whether `container` may open one more handle (its quota, and the server's).
    fn room_for(&self, container: u64) -> Result<(), (Error, String)> {
        let held = self.handles.iter().flatten().filter(|h| h.container == container).count();
        if held >= MAX_OPEN_PER_CONTAINER {
            return Err((Error::QuotaExceeded, format!("the container has {MAX_OPEN_PER_CONTAINER} handles open")));
        }
        if self.handles.len() >= MAX_HANDLES && self.handles.iter().all(Option::is_some) {
            return Err((Error::QuotaExceeded, format!("the server holds {MAX_HANDLES} handles")));
        }
        Ok(())
    }

    fn remove_slot(&mut self, index: usize) {
        if let (Some(slot), Some(g)) = (self.handles.get_mut(index), self.generations.get_mut(index)) {
            let pipe = slot.take().and_then(|h| h.pipe);
            *g = g.wrapping_add(1);
            if let Some((p, write)) = pipe {
                self.pipe_end_closed(p, write);
            }
        }
    }

    /// A handle on an end of pipe `p` closed: what waits on the other end may be settled; a
    /// pipe nothing refers to goes.
    fn pipe_end_closed(&mut self, p: usize, write: bool) {
        let Some(Some(pipe)) = self.pipes.get_mut(p) else { return };
        if write {
            pipe.writers -= 1;
        } else {
            pipe.readers -= 1;
        }
        pipe.settle(p, &mut self.ready);
        if pipe.unused() {
            self.pipes[p] = None;
        }
    }

    /// Sends the answers that requests settled (kept reads and writes of pipes). Input taken for
    /// a reader that died meanwhile goes back to its pipe for the next one.
    pub fn send_ready(&mut self, sender: &impl ReplySender) {
        while !self.ready.is_empty() {
            for ready in core::mem::take(&mut self.ready) {
                match ready {
                    Ready::Write(reply, result) => {
                        let _ = reply.answer(sender, result);
                    }
                    Ready::Read(p, reply, result) => {
                        let data = result.as_ref().map(|d| d.data.clone()).unwrap_or_default();
                        if reply.answer(sender, result).is_err()
                            && !data.is_empty()
                            && let Some(Some(pipe)) = self.pipes.get_mut(p)
                        {
                            pipe.give_back(&data);
                            pipe.settle(p, &mut self.ready);
                        }
                    }
                }
            }
        }
    }

    /// The pipe end `token` names, if it is one.
    fn pipe_of(&self, container: u64, token: u64) -> Result<Option<(usize, bool)>, (Error, String)> {
        self.handle(container, token).map(|h| h.pipe)
    }

    /// Ends what dead containers had: their handles close and their namespaces are unmounted
    /// (VSFs synced first). Returns how many containers were forgotten.
    pub fn forget_dead_containers(&mut self) -> usize {
        let mut containers: Vec<u64> = self.namespaces.keys().copied().collect();
        containers.extend(self.handles.iter().flatten().map(|h| h.container));
        containers.sort_unstable();
        containers.dedup();
        let mut forgotten = 0;
        for c in containers {
            if c != self.root_container && self.env.parent(c).is_none() {
                self.forget(c);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// Closes `container`'s handles, drops its shared buffers and unmounts its namespace, last
    /// mount first.
    fn forget(&mut self, container: u64) {
        self.buffers.retain(|&(c, _), _| c != container);
        self.shared_when.retain(|&(c, _), _| c != container);
        for i in 0..self.handles.len() {
            if self.handles[i].as_ref().is_some_and(|h| h.container == container) {
                self.remove_slot(i);
            }
        }
        let points = self.namespaces.remove(&container).unwrap_or_default();
        for point in points.iter().rev() {
            self.detach(point.mount);
        }
    }

    /// Syncs mount `id` and drops it, closing every handle on it (and what is mounted from its
    /// files, first).
    fn detach(&mut self, id: u64) {
        let users: Vec<u64> = self
            .mounts
            .iter()
            .filter(|(_, m)| matches!(m.backing, Backing::File { mount, .. } if mount == id))
            .map(|(&k, _)| k)
            .collect();
        for user in users {
            for ns in self.namespaces.values_mut() {
                ns.retain(|p| p.mount != user);
            }
            self.detach(user);
        }
        for i in 0..self.handles.len() {
            if self.handles[i].as_ref().is_some_and(|h| h.mount == id) {
                self.remove_slot(i);
            }
        }
        if let Some(m) = self.mounts.remove(&id) {
            self.mount_changes += 1;
            if let Ok(mut fs) = m.fs.try_borrow_mut() {
                let _ = fs.sync();
            }
        }
    }

    /// How many times the mounts changed since the server started: the program keeps them
    /// again ([`Vfs::kept_mounts`]) when this moves.
    pub fn mount_changes(&self) -> u64 {
        self.mount_changes
    }

    /// The mounts made through the protocol, oldest first (a VSF's mount comes after the one
    /// holding its file): what a restarted server makes again with [`Vfs::restore`].
    pub fn kept_mounts(&self) -> Vec<KeptMount> {
        let mut kept: Vec<(u64, KeptMount)> = self
            .namespaces
            .iter()
            .flat_map(|(&container, points)| points.iter().map(move |p| (container, p)))
            .filter_map(|(container, p)| {
                let m = self.mounts.get(&p.mount)?;
                let caller = m.asked_by?;
                let at = String::from(p.at.as_str());
                Some((p.mount, KeptMount { caller, container, at, source: m.source.clone() }))
            })
            .collect();
        kept.sort_unstable_by_key(|&(id, _)| id);
        kept.into_iter().map(|(_, m)| m).collect()
    }

    /// Makes `kept` mounts again, in order, each as its asker could make it now (an asker or a
    /// target container that ended, or a file that is gone, refuses it); returns the ones
    /// refused, with why.
    pub fn restore(&mut self, kept: &[KeptMount]) -> Vec<(KeptMount, Error, String)> {
        let mut refused = Vec::new();
        for m in kept {
            // A live request's asker is alive; a record's may have ended since.
            let asker_ended = m.caller != self.root_container && self.env.parent(m.caller).is_none();
            let result = if asker_ended {
                Err((Error::NoSuchContainer, format!("{:#x} has ended", m.caller)))
            } else {
                self.target(m.caller, m.container)
            };
            let result = result.and_then(|target| self.mount_as(m.caller, target, &m.at, &m.source, true));
            if let Err((e, why)) = result {
                refused.push((m.clone(), e, why));
            }
        }
        refused
    }

    /// Syncs every mounted file system (before the system stops); the first failure.
    pub fn sync_all(&mut self) -> Result<(), FsError> {
        let mut first = Ok(());
        // VSFs first: their writes land in the file systems holding them.
        let mut ids: Vec<(bool, u64)> =
            self.mounts.iter().map(|(&id, m)| (!matches!(m.backing, Backing::File { .. }), id)).collect();
        ids.sort_unstable();
        for (_, id) in ids {
            if let Some(m) = self.mounts.get(&id)
                && let Ok(mut fs) = m.fs.try_borrow_mut()
                && let Err(e) = fs.sync()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// Whether `container` is the caller's own (0 or its id) or one of its children; the
    /// container id to act on.
    fn target(&mut self, caller: u64, container: u64) -> Result<u64, (Error, String)> {
        if container == 0 || container == caller {
            return Ok(caller);
        }
        match self.env.parent(container) {
            Some(parent) if parent == caller => Ok(container),
            _ => Err((Error::NoSuchContainer, format!("{container:#x} is not this container or a child of it"))),
        }
    }

    /// Whether `container` is `ancestor` or below it (asked of the environment, up to 64 levels).
    fn is_below(&mut self, ancestor: u64, container: u64) -> bool {
        let mut at = container;
        for _ in 0..64 {
            if at == ancestor {
                return true;
            }
            match self.env.parent(at) {
                Some(parent) if parent != at => at = parent,
                _ => return false,
            }
        }
        false
    }

    /// Whether a mounted VSF is mount `mount`'s entry `path` or lies below it.
    fn vsf_under(&self, mount: u64, path: &Path) -> bool {
        self.mounts
            .values()
            .any(|m| matches!(&m.backing, Backing::File { mount: b, path: p } if *b == mount && p.starts_with(path)))
    }

    /// Opens `path` under `dir` for `container`.
    fn do_open(&mut self, container: u64, dir: u64, path: &str, flags: OpenFlags) -> Result<Opened, (Error, String)> {
        let rights = flags.rights();
        let shown = || String::from(path);
        if rights.is_empty() {
            return Err((Error::InvalidArgument, format!("{}: no rights asked (READ, WRITE)", shown())));
        }
        let wants_write = rights.contains(Rights::WRITE);
        let needs_write = flags.intersection(OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::APPEND);
        if !needs_write.is_empty() && !wants_write {
            return Err((Error::MissingRights, format!("{}: CREATE, TRUNCATE and APPEND need WRITE", shown())));
        }
        // Refused for the quota before anything is created or cut.
        self.room_for(container)?;
        let located = self.locate(container, dir, path)?;
        if !located.rights.contains(rights) {
            return Err((
                Error::MissingRights,
                format!("{}: the directory handle is {}, {rights} asked", shown(), located.rights),
            ));
        }
        let read_only = self.mounts.get(&located.mount).is_some_and(|m| m.read_only);
        if wants_write && read_only {
            return Err((Error::ReadOnly, format!("{}: the file system is read-only", shown())));
        }
        let fs = self.fs(located.mount)?;
        let mut fs = fs.borrow_mut();
        let meta = match fs.stat(located.path()) {
            Ok(_) if flags.contains(OpenFlags::CREATE | OpenFlags::EXCLUSIVE) => {
                return Err((Error::AlreadyExists, format!("{}: already exists", shown())));
            }
            Ok(meta) => meta,
            Err(FsError::NotFound) if flags.contains(OpenFlags::CREATE) && !flags.contains(OpenFlags::DIRECTORY) => {
                fs.create(located.path()).map_err(|e| (error_of(e), format!("{}: {e}", shown())))?;
                fs.stat(located.path()).map_err(|e| (error_of(e), format!("{}: {e}", shown())))?
            }
            Err(e) => return Err((error_of(e), format!("{}: {e}", shown()))),
        };
        match meta.kind {
            Kind::Dir if !flags.contains(OpenFlags::DIRECTORY) => {
                return Err((Error::IsADirectory, format!("{}: is a directory (open it with DIRECTORY)", shown())));
            }
            Kind::File if flags.contains(OpenFlags::DIRECTORY) => {
                return Err((Error::NotADirectory, format!("{}: not a directory", shown())));
            }
            _ => {}
        }
        let mut meta = meta;
        // The entry as the file system spells it: handles and mounted VSFs compare by it.
        let canonical = fs.canonical(located.path()).map_err(|e| (error_of(e), format!("{}: {e}", shown())))?;
        if meta.kind == Kind::File && wants_write {
            if self.vsf_under(located.mount, &canonical) {
                return Err((Error::Busy, format!("{}: a mounted virtual storage file", shown())));
            }
            if flags.contains(OpenFlags::TRUNCATE) && meta.size > 0 {
                fs.truncate(canonical.as_str(), 0).map_err(|e| (error_of(e), format!("{}: {e}", shown())))?;
                meta.size = 0;
            }
        }
        drop(fs);
        let handle = Handle {
            container,
            mount: located.mount,
            at: located.at,
            path: canonical,
            kind: meta.kind,
            rights,
            position: 0,
            append: flags.contains(OpenFlags::APPEND),
            listing: None,
            pipe: None,
        };
        let token = self.insert(handle)?;
        Ok(Opened { handle: token, stat: stat_of(meta, read_only) })
    }

    /// The file handle `token` of `container` with `right`, and its mount's file system (both
    /// borrowed: the handle's path is used where it is, and its position is set afterwards).
    fn file(&self, container: u64, token: u64, right: Rights) -> Result<(&Handle, &FsRef), (Error, String)> {
        let h = self.handle(container, token)?;
        if h.pipe.is_some() {
            return Err((Error::WrongObject, format!("handle {token:#x} is a pipe: only read, write and close")));
        }
        if h.kind == Kind::Dir {
            return Err((Error::IsADirectory, format!("handle {token:#x} is a directory")));
        }
        if !h.rights.contains(right) {
            return Err((Error::MissingRights, format!("handle {token:#x} is {}, {right} needed", h.rights)));
        }
        Ok((h, self.fs(h.mount)?))
    }

    fn do_read(&mut self, container: u64, token: u64, offset: Option<u64>, max: u64) -> Result<Data, (Error, String)> {
        let mut data = vec![0; (max.min(MAX_IO as u64)) as usize];
        let n = self.read_into(container, token, offset, &mut data)?;
        data.truncate(n);
        Ok(Data { data })
    }

    /// Reads from the file `token` at `offset` (or its position, which moves) into `buf`.
    fn read_into(
        &mut self,
        container: u64,
        token: u64,
        offset: Option<u64>,
        buf: &mut [u8],
    ) -> Result<usize, (Error, String)> {
        let (h, fs) = self.file(container, token, Rights::READ)?;
        let at = offset.unwrap_or(h.position);
        let n =
            fs.borrow_mut().read(h.path.as_str(), at, buf).map_err(|e| (error_of(e), format!("{}: {e}", h.path)))?;
        if offset.is_none() {
            self.handle_mut(container, token)?.position = at + n as u64;
        }
        Ok(n)
    }

    fn do_write(
        &mut self,
        container: u64,
        token: u64,
        offset: Option<u64>,
        data: &[u8],
    ) -> Result<Written, (Error, String)> {
        self.file(container, token, Rights::WRITE)?;
        if data.len() > MAX_IO {
            return Err((Error::TooLarge, format!("{} bytes, at most {MAX_IO} a write", data.len())));
        }
        self.write_from(container, token, offset, data).map(|n| Written { count: n as u64 })
    }

    /// Writes `data` into the file `token` at `offset` (or its position, or its end with
    /// APPEND; the position moves).
    fn write_from(
        &mut self,
        container: u64,
        token: u64,
        offset: Option<u64>,
        data: &[u8],
    ) -> Result<usize, (Error, String)> {
        let (h, fs) = self.file(container, token, Rights::WRITE)?;
        let path = h.path.as_str();
        let mut fs = fs.borrow_mut();
        let at = match (offset, h.append) {
            (Some(at), _) => at,
            (None, true) => fs.stat(path).map_err(|e| (error_of(e), format!("{path}: {e}")))?.size,
            (None, false) => h.position,
        };
        let n = fs.write(path, at, data).map_err(|e| (error_of(e), format!("{path}: {e}")))?;
        drop(fs);
        if offset.is_none() {
            self.handle_mut(container, token)?.position = at + n as u64;
        }
        Ok(n)
    }

    /// Reads from the file `token` at `offset` (or its position, which moves) straight into
    /// the caller's receive window: the cache's pages go to the kernel, which copies them.
    fn window_read(
        &mut self,
        container: u64,
        token: u64,
        offset: Option<u64>,
        len: u64,
    ) -> Result<Written, (Error, String)> {
        let (h, fs) = self.file(container, token, Rights::READ)?;
        let at = offset.unwrap_or(h.position);
        let len = usize::try_from(len.min(MAX_SHARED_BYTES)).unwrap_or(usize::MAX);
        let mut window = self.env.window();
        let read = fs.borrow_mut().read_to(h.path.as_str(), at, len, &mut window);
        let sent = window.finish();
        let n = read.map_err(|e| (error_of(e), format!("{}: {e}", h.path)))?;
        sent?;
        if offset.is_none() {
            self.handle_mut(container, token)?.position = at + n as u64;
        }
        Ok(Written { count: n as u64 })
    }

    /// Runs `op` on bytes `at .. at + len` of the calling process's shared buffer (checked);
    /// the count it answers.
    fn through_buffer(
        &mut self,
        container: u64,
        pid: u64,
        len: u64,
        at: u64,
        op: impl FnOnce(&mut Self, &mut [u8]) -> Result<usize, (Error, String)>,
    ) -> Result<Written, (Error, String)> {
        // Its own reference while `op`, which needs the whole server, uses it.
        let buffer = self
            .buffers
            .get(&(container, pid))
            .map(Rc::clone)
            .ok_or_else(|| (Error::StaleHandle, String::from("this process has no shared buffer (share first)")))?;
        let mut buffer = buffer.borrow_mut();
        let size = buffer.as_mut().len() as u64;
        let result = match at.checked_add(len) {
            Some(end) if end <= size => op(self, &mut buffer.as_mut()[at as usize..end as usize]),
            _ => Err((
                Error::InvalidArgument,
                format!("{len} bytes at {at} pass the end of the {size}-byte shared buffer"),
            )),
        };
        result.map(|n| Written { count: n as u64 })
    }
}

/// Answers a result, its error refused with the reason.
fn answer<R: vessel_protocol::Reply, T>(cx: &Cx<'_, R>, result: Result<T, (Error, String)>) -> Answer<T> {
    match result {
        Ok(t) => Answer::Reply(t),
        Err((error, why)) => Answer::Refuse(cx.refusal(error, why)),
    }
}

impl<E: Env> Server for Vfs<E> {
    fn open(&mut self, cx: &mut Cx<'_, Opened>, dir: u64, path: &str, flags: OpenFlags) -> Answer<Opened> {
        let container = cx.caller().container;
        let result = self.do_open(container, dir, path, flags);
        answer(cx, result)
    }

    fn close(&mut self, cx: &mut Cx<'_, Done>, handle: u64) -> Answer<Done> {
        let result = self.slot(cx.caller().container, handle).map(|i| self.remove_slot(i)).map(|()| Done);
        answer(cx, result)
    }

    fn read(&mut self, cx: &mut Cx<'_, Data>, handle: u64, max: u64) -> Answer<Data> {
        match self.pipe_of(cx.caller().container, handle) {
            Ok(Some((p, write))) => return self.pipe_read(cx, handle, p, write, max),
            Err(e) => return answer(cx, Err(e)),
            Ok(None) => {}
        }
        let result = self.do_read(cx.caller().container, handle, None, max);
        answer(cx, result)
    }

    fn write(&mut self, cx: &mut Cx<'_, Written>, handle: u64, data: &[u8]) -> Answer<Written> {
        match self.pipe_of(cx.caller().container, handle) {
            Ok(Some((p, write))) => return self.pipe_write(cx, handle, p, write, data),
            Err(e) => return answer(cx, Err(e)),
            Ok(None) => {}
        }
        let result = self.do_write(cx.caller().container, handle, None, data);
        answer(cx, result)
    }

    fn pipe(&mut self, cx: &mut Cx<'_, Piped>) -> Answer<Piped> {
        let container = cx.caller().container;
        let result = (|| {
            let p = match self.pipes.iter().position(Option::is_none) {
                Some(p) => p,
                None => {
                    self.pipes.push(None);
                    self.pipes.len() - 1
                }
            };
            let end = |write: bool| Handle {
                container,
                mount: 0,
                at: Path::root(),
                path: Path::root(),
                kind: Kind::File,
                rights: if write { Rights::WRITE } else { Rights::READ },
                position: 0,
                append: false,
                listing: None,
                pipe: Some((p, write)),
            };
            let read = self.insert(end(false))?;
            let write = match self.insert(end(true)) {
                Ok(write) => write,
                Err(e) => {
                    // Not a pipe yet: the first end goes without settling anything.
                    if let Ok(i) = self.slot(container, read) {
                        self.handles[i] = None;
                    }
                    return Err(e);
                }
            };
            self.pipes[p] = Some(Pipe::new());
            Ok(Piped { read, write })
        })();
        answer(cx, result)
    }

    fn pread(&mut self, cx: &mut Cx<'_, Data>, handle: u64, offset: u64, max: u64) -> Answer<Data> {
        let result = self.do_read(cx.caller().container, handle, Some(offset), max);
        answer(cx, result)
    }

    fn pwrite(&mut self, cx: &mut Cx<'_, Written>, handle: u64, offset: u64, data: &[u8]) -> Answer<Written> {
        let result = self.do_write(cx.caller().container, handle, Some(offset), data);
        answer(cx, result)
    }

    fn seek(&mut self, cx: &mut Cx<'_, Position>, handle: u64, whence: Whence, offset: i64) -> Answer<Position> {
        let container = cx.caller().container;
        let result = (|| {
            let h = self.handle(container, handle)?;
            if h.kind == Kind::Dir {
                return Err((Error::IsADirectory, format!("handle {handle:#x} is a directory")));
            }
            if h.pipe.is_some() {
                return Err((Error::WrongObject, format!("handle {handle:#x} is a pipe: only read, write and close")));
            }
            let from = match whence {
                Whence::Start => 0,
                Whence::Current => h.position,
                Whence::End => {
                    let fs = self.fs(h.mount)?;
                    let stat = fs.borrow_mut().stat(h.path.as_str());
                    stat.map_err(|e| (error_of(e), format!("{}: {e}", h.path)))?.size
                }
            };
            let to = from.checked_add_signed(offset).ok_or_else(|| {
                (Error::InvalidArgument, format!("position {from} {offset:+} is outside the file's range"))
            })?;
            self.handle_mut(container, handle)?.position = to;
            Ok(Position { offset: to })
        })();
        answer(cx, result)
    }

    fn stat(&mut self, cx: &mut Cx<'_, Status>, dir: u64, path: &str) -> Answer<Status> {
        let container = cx.caller().container;
        let result = (|| {
            if dir != ROOT && path.is_empty() {
                // The handle itself, file or directory (or pipe).
                let h = self.handle(container, dir)?;
                if let Some((p, write)) = h.pipe {
                    return Ok(Status { stat: self.pipe_stat(p, write) });
                }
                let read_only = self.mounts.get(&h.mount).is_some_and(|m| m.read_only);
                let fs = self.fs(h.mount)?;
                let stat = fs.borrow_mut().stat(h.path.as_str());
                let meta = stat.map_err(|e| (error_of(e), format!("{}: {e}", h.at)))?;
                return Ok(Status { stat: stat_of(meta, read_only) });
            }
            let located = self.locate(container, dir, path)?;
            if !located.rights.contains(Rights::READ) && dir != ROOT {
                return Err((Error::MissingRights, format!("{path}: the directory handle lacks READ")));
            }
            let read_only = self.mounts.get(&located.mount).is_some_and(|m| m.read_only);
            let fs = self.fs(located.mount)?;
            let meta =
                fs.borrow_mut().stat(located.path()).map_err(|e| (error_of(e), format!("{}: {e}", located.at)))?;
            Ok(Status { stat: stat_of(meta, read_only) })
        })();
        answer(cx, result)
    }

    fn readdir(&mut self, cx: &mut Cx<'_, Listing>, dir: u64, start: u64) -> Answer<Listing> {
        let container = cx.caller().container;
        let result = (|| {
            if dir == ROOT {
                let located = self.locate(container, ROOT, "")?;
                let fs = self.fs(located.mount)?;
                let entries = fs.borrow_mut().read_dir(located.path()).map_err(|e| (error_of(e), format!("/: {e}")))?;
                return Ok(page_of(&entries, start));
            }
            let h = self.handle(container, dir)?;
            if h.kind != Kind::Dir {
                return Err((Error::NotADirectory, format!("handle {dir:#x} is a file")));
            }
            if !h.rights.contains(Rights::READ) {
                return Err((Error::MissingRights, format!("handle {dir:#x} is {}, r- needed", h.rights)));
            }
            // A listing from the start reads the directory afresh; later pages come from it.
            if start == 0 || h.listing.is_none() {
                let located = self.locate(container, dir, "")?;
                let fs = self.fs(located.mount)?;
                let listing = fs
                    .borrow_mut()
                    .read_dir(located.path())
                    .map_err(|e| (error_of(e), format!("{}: {e}", located.at)))?;
                self.handle_mut(container, dir)?.listing = Some(listing);
            }
            let h = self.handle(container, dir)?;
            Ok(page_of(h.listing.as_deref().unwrap_or(&[]), start))
        })();
        answer(cx, result)
    }

    fn mkdir(&mut self, cx: &mut Cx<'_, Done>, dir: u64, path: &str) -> Answer<Done> {
        let container = cx.caller().container;
        let result = self.change(container, dir, path, |fs, p| fs.mkdir(p));
        answer(cx, result)
    }

    fn remove(&mut self, cx: &mut Cx<'_, Done>, dir: u64, path: &str) -> Answer<Done> {
        let container = cx.caller().container;
        let result = (|| {
            let located = self.locate(container, dir, path)?;
            let own = dir != ROOT && self.handle(container, dir).is_ok_and(|h| h.at == located.at);
            if located.is_mount_point() || own {
                return Err((
                    Error::InvalidArgument,
                    format!("{}: a mount point or the handle's own directory", located.at),
                ));
            }
            let canonical = self.canonical(&located)?;
            if self.vsf_under(located.mount, &canonical) {
                return Err((Error::Busy, format!("{}: a mounted virtual storage file", located.at)));
            }
            self.change(container, dir, path, |fs, p| fs.remove(p))?;
            // Handles on it answer `NotFound` from now on (their path names nothing).
            Ok(Done)
        })();
        answer(cx, result)
    }

    fn rename(&mut self, cx: &mut Cx<'_, Done>, dir: u64, from: &str, to: &str) -> Answer<Done> {
        let container = cx.caller().container;
        let result = (|| {
            let a = self.locate(container, dir, from)?;
            let b = self.locate(container, dir, to)?;
            if !a.rights.contains(Rights::WRITE) {
                return Err((Error::MissingRights, format!("{from}: the directory handle lacks WRITE")));
            }
            if a.mount != b.mount {
                return Err((Error::InvalidArgument, format!("{from} -> {to}: across file systems")));
            }
            if a.is_mount_point() || b.is_mount_point() {
                return Err((Error::InvalidArgument, format!("{from} -> {to}: a mount point cannot move")));
            }
            if self.mounts.get(&a.mount).is_some_and(|m| m.read_only) {
                return Err((Error::ReadOnly, format!("{from}: the file system is read-only")));
            }
            let from_path = self.canonical(&a)?;
            // What `to` replaces, if it exists.
            let replaced = self.canonical(&b).ok();
            let holds_mount = self
                .namespaces
                .get(&container)
                .is_some_and(|ns| ns.iter().any(|p| p.at.starts_with(&a.at) && p.at != a.at));
            if self.vsf_under(a.mount, &from_path)
                || replaced.as_ref().is_some_and(|r| self.vsf_under(a.mount, r))
                || holds_mount
            {
                return Err((Error::Busy, format!("{from} -> {to}: moves or replaces a mount or a mounted VSF")));
            }
            let fs = self.fs(a.mount)?;
            fs.borrow_mut()
                .rename(from_path.as_str(), b.path())
                .map_err(|e| (error_of(e), format!("{from} -> {to}: {e}")))?;
            let to_path = self.canonical(&b)?;
            // Handles on a replaced entry close; handles on the moved one follow it.
            if let Some(replaced) = replaced.filter(|r| *r != from_path) {
                for i in 0..self.handles.len() {
                    if self.handles[i].as_ref().is_some_and(|h| h.mount == a.mount && h.path.starts_with(&replaced)) {
                        self.remove_slot(i);
                    }
                }
            }
            for h in self.handles.iter_mut().flatten().filter(|h| h.mount == a.mount) {
                if let (Some(path), Some(at)) = (h.path.rebase(&from_path, &to_path), h.path.rebase(&from_path, &b.at))
                {
                    h.path = path;
                    h.at = at;
                }
            }
            Ok(Done)
        })();
        answer(cx, result)
    }

    fn truncate(&mut self, cx: &mut Cx<'_, Done>, handle: u64, len: u64) -> Answer<Done> {
        let result = self.file(cx.caller().container, handle, Rights::WRITE).and_then(|(h, fs)| {
            fs.borrow_mut()
                .truncate(h.path.as_str(), len)
                .map(|()| Done)
                .map_err(|e| (error_of(e), format!("{}: {e}", h.path)))
        });
        answer(cx, result)
    }

    fn sync(&mut self, cx: &mut Cx<'_, Done>, handle: u64) -> Answer<Done> {
        let container = cx.caller().container;
        // The root container's `sync(ROOT)` (before a power-off) writes back everything the
        // server holds, the children's VSFs first.
        if handle == ROOT && container == self.root_container {
            let result = self.sync_all().map(|()| Done).map_err(|e| (error_of(e), format!("sync: {e}")));
            return answer(cx, result);
        }
        let result = (|| {
            let mounts: Vec<u64> = if handle == ROOT {
                self.namespaces.get(&container).map(|ns| ns.iter().map(|p| p.mount).collect()).unwrap_or_default()
            } else {
                match self.handle(container, handle)? {
                    // A pipe has nothing to write back.
                    h if h.pipe.is_some() => Vec::new(),
                    h => vec![h.mount],
                }
            };
            for id in mounts {
                let fs = self.fs(id)?;
                fs.borrow_mut().sync().map_err(|e| (error_of(e), format!("sync: {e}")))?;
            }
            Ok(Done)
        })();
        answer(cx, result)
    }

    fn duplicate(&mut self, cx: &mut Cx<'_, Opened>, handle: u64, rights: Rights) -> Answer<Opened> {
        let container = cx.caller().container;
        let result = (|| {
            let h = self.handle(container, handle)?;
            if !h.rights.contains(rights) {
                return Err((Error::MissingRights, format!("handle {handle:#x} is {}, {rights} asked", h.rights)));
            }
            if rights.is_empty() {
                return Err((Error::InvalidArgument, String::from("no rights asked")));
            }
            if let Some((p, write)) = h.pipe {
                let copy = Handle { rights, listing: None, at: Path::root(), path: Path::root(), ..*h };
                let stat = self.pipe_stat(p, write);
                let token = self.insert(copy)?;
                if let Some(Some(pipe)) = self.pipes.get_mut(p) {
                    if write {
                        pipe.writers += 1;
                    } else {
                        pipe.readers += 1;
                    }
                }
                return Ok(Opened { handle: token, stat });
            }
            let read_only = self.mounts.get(&h.mount).is_some_and(|m| m.read_only);
            let fs = self.fs(h.mount)?;
            let meta = fs.borrow_mut().stat(h.path.as_str()).map_err(|e| (error_of(e), format!("{}: {e}", h.at)))?;
            let copy = Handle {
                container,
                mount: h.mount,
                at: h.at.clone(),
                path: h.path.clone(),
                kind: h.kind,
                rights,
                position: h.position,
                append: h.append,
                listing: None,
                pipe: None,
            };
            let token = self.insert(copy)?;
            Ok(Opened { handle: token, stat: stat_of(meta, read_only) })
        })();
        answer(cx, result)
    }

    fn mount(&mut self, cx: &mut Cx<'_, Done>, container: u64, path: &str, source: &str) -> Answer<Done> {
        let caller = cx.caller().container;
        self.forget_dead_containers();
        let result =
            self.target(caller, container).and_then(|target| self.mount_as(caller, target, path, source, true));
        answer(cx, result.map(|()| Done))
    }

    fn unmount(&mut self, cx: &mut Cx<'_, Done>, container: u64, path: &str) -> Answer<Done> {
        let caller = cx.caller().container;
        let result = self.target(caller, container).and_then(|target| {
            let at = Path::root().resolve(path).map_err(|e| (Error::InvalidArgument, format!("{path}: {e}")))?;
            let ns = self.namespaces.get(&target).map_or(&[][..], Vec::as_slice);
            let Some(point) = ns.iter().find(|p| p.at == at).cloned() else {
                return Err((Error::NotFound, format!("nothing is mounted at {at}")));
            };
            if ns.iter().any(|p| p.at != at && p.at.starts_with(&at)) {
                return Err((Error::Busy, format!("something is mounted below {at}")));
            }
            if let Some(ns) = self.namespaces.get_mut(&target) {
                ns.retain(|p| p.mount != point.mount);
            }
            self.detach(point.mount);
            Ok(Done)
        });
        answer(cx, result)
    }

    fn mounts(&mut self, cx: &mut Cx<'_, MountList>, container: u64) -> Answer<MountList> {
        let caller = cx.caller().container;
        let result = self.target(caller, container).map(|target| {
            let ns = self.namespaces.get(&target).map_or(&[][..], Vec::as_slice);
            let mounts = ns
                .iter()
                .filter_map(|p| {
                    let m = self.mounts.get(&p.mount)?;
                    Some(Mount { path: String::from(p.at.as_str()), source: m.source.clone(), read_only: m.read_only })
                })
                .collect();
            MountList { mounts: Mounts(mounts) }
        });
        answer(cx, result)
    }

    fn share(&mut self, cx: &mut Cx<'_, Shared>, bytes: u64) -> Answer<Shared> {
        let (container, pid) = (cx.caller().container, cx.caller().pid);
        let result = (|| {
            if bytes == 0 || bytes > MAX_SHARED_BYTES || !bytes.is_multiple_of(4096) {
                return Err((
                    Error::InvalidArgument,
                    format!("{bytes} bytes: a shared buffer is whole pages, at most {MAX_SHARED_BYTES} bytes"),
                ));
            }
            // A container's processes come and go unseen (the server never learns a process
            // ended): when they hold the most, the oldest buffer goes; a process still using it
            // is refused with `StaleHandle` and shares again.
            let held: Vec<(u64, u64)> =
                self.buffers.keys().filter(|&&(c, p)| c == container && p != pid).copied().collect();
            if held.len() >= MAX_SHARED_PER_CONTAINER
                && let Some(oldest) = held.iter().min_by_key(|k| self.shared_when.get(k).copied().unwrap_or(0))
            {
                self.buffers.remove(oldest);
                self.shared_when.remove(oldest);
            }
            let (buffer, cap) = self.env.make_buffer(bytes, container)?;
            self.buffers.insert((container, pid), Rc::new(RefCell::new(buffer)));
            self.next_share += 1;
            self.shared_when.insert((container, pid), self.next_share);
            Ok(Shared { buffer: cap })
        })();
        answer(cx, result)
    }

    fn read_shared(
        &mut self,
        cx: &mut Cx<'_, Written>,
        handle: u64,
        offset: u64,
        len: u64,
        at: u64,
    ) -> Answer<Written> {
        let (container, pid) = (cx.caller().container, cx.caller().pid);
        let result = self.through_buffer(container, pid, len, at, |vfs, bytes| {
            vfs.read_into(container, handle, (offset != POSITION).then_some(offset), bytes)
        });
        answer(cx, result)
    }

    fn write_shared(
        &mut self,
        cx: &mut Cx<'_, Written>,
        handle: u64,
        offset: u64,
        len: u64,
        at: u64,
    ) -> Answer<Written> {
        let (container, pid) = (cx.caller().container, cx.caller().pid);
        let result = self.through_buffer(container, pid, len, at, |vfs, bytes| {
            vfs.write_from(container, handle, (offset != POSITION).then_some(offset), bytes)
        });
        answer(cx, result)
    }

    fn read_window(&mut self, cx: &mut Cx<'_, Written>, handle: u64, offset: u64, len: u64) -> Answer<Written> {
        let container = cx.caller().container;
        let result = self.window_read(container, handle, (offset != POSITION).then_some(offset), len);
        answer(cx, result)
    }

    fn open_in(&mut self, cx: &mut Cx<'_, Opened>, container: u64, path: &str, flags: OpenFlags) -> Answer<Opened> {
        let caller = cx.caller().container;
        let result = (|| {
            if flags != OpenFlags::READ {
                return Err((Error::InvalidArgument, String::from("open_in opens files for reading only")));
            }
            let target = if container == 0 { caller } else { container };
            if !self.is_below(caller, target) {
                return Err((Error::NoSuchContainer, format!("{container:#x} is not this container or below it")));
            }
            // Opened in the target's namespace; the handle moves to the caller.
            let opened = self.do_open(target, ROOT, path, flags)?;
            let i = self.slot(target, opened.handle)?;
            if let Some(h) = self.handles.get_mut(i).and_then(Option::as_mut) {
                h.container = caller;
            }
            Ok(opened)
        })();
        answer(cx, result)
    }

    fn create_vsf(&mut self, cx: &mut Cx<'_, Done>, dir: u64, path: &str, bytes: u64) -> Answer<Done> {
        let container = cx.caller().container;
        let result = (|| {
            if !(VSF_MIN..=VSF_MAX).contains(&bytes) || !bytes.is_multiple_of(VSF_BLOCK as u64) {
                return Err((
                    Error::InvalidArgument,
                    format!("{bytes} bytes: a VSF is 1 MiB to 4 GiB, a multiple of {VSF_BLOCK}"),
                ));
            }
            let opened =
                self.do_open(container, dir, path, OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE)?;
            let made = (|| {
                let (h, fs) = self.file(container, opened.handle, Rights::WRITE)?;
                let (fs, file) = (Rc::clone(fs), h.path.clone());
                let fail = |e: FsError| (error_of(e), format!("{path}: {e}"));
                fs.borrow_mut().truncate(file.as_str(), bytes).map_err(fail)?;
                let disk = FileDisk { fs: Rc::clone(&fs), path: file, blocks: bytes / VSF_BLOCK as u64 };
                let cache = Cache::new(disk, CACHE_PAGES).map_err(|e| (Error::DeviceError, format!("{path}: {e}")))?;
                let volume = Volume::format(cache, "VESSEL", self.env.clock()).map_err(fail)?;
                volume.unmount().map_err(fail)?;
                fs.borrow_mut().sync().map_err(fail)
            })();
            if let Ok(i) = self.slot(container, opened.handle) {
                self.remove_slot(i);
            }
            if made.is_err() {
                let _ = self.change(container, dir, path, |fs, p| fs.remove(p));
            }
            made.map(|()| Done)
        })();
        answer(cx, result)
    }
}

impl<E: Env> Vfs<E> {
    /// Makes directory `path` in `container`'s namespace (the program's own set-up); whether it
    /// exists now.
    pub fn make_dir(&mut self, container: u64, path: &str) -> bool {
        match self.change(container, ROOT, path, |fs, p| fs.mkdir(p)) {
            Ok(Done) => true,
            Err((e, _)) => e == Error::AlreadyExists,
        }
    }

    /// Applies a change below directory handle `dir` (which needs WRITE) on a writable mount.
    fn change(
        &mut self,
        container: u64,
        dir: u64,
        path: &str,
        op: impl FnOnce(&mut dyn FileSystem, &str) -> Result<(), FsError>,
    ) -> Result<Done, (Error, String)> {
        let located = self.locate(container, dir, path)?;
        if !located.rights.contains(Rights::WRITE) {
            return Err((
                Error::MissingRights,
                format!("{path}: the directory handle is {}, -w needed", located.rights),
            ));
        }
        if self.mounts.get(&located.mount).is_some_and(|m| m.read_only) {
            return Err((Error::ReadOnly, format!("{path}: the file system is read-only")));
        }
        let fs = self.fs(located.mount)?;
        let mut fs = fs.borrow_mut();
        op(&mut *fs, located.path()).map(|()| Done).map_err(|e| (error_of(e), format!("{}: {e}", located.at)))
    }
}
