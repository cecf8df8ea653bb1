//! Files: the client of the `vfs` server (`vessel_vfs_protocol`), with a working directory.
//!
//! ```ignore
//! let mut file = File::create("/tmp/notes.txt")?;
//! file.write_all(b"hello")?;
//! let text = fs::read("/tmp/notes.txt")?;
//! for entry in fs::read_dir("/tmp")? { println!("{}", entry.name); }
//! ```
//!
//! Paths are the caller's container's: `/` is its root, whatever the server mounted there. A
//! relative path starts at the working directory ([`set_current_dir`]; `/` at start). Every
//! error is a [`Refusal`] whose reason says what was refused and why.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use vessel_abi::Error;
use vessel_protocol::Refusal;
use vessel_vfs_protocol::{Client, path};
pub use vessel_vfs_protocol::{
    DirEntry, Kind, MAX_IO, MAX_SHARED_BYTES, Mount, OpenFlags, POSITION, ROOT, Rights, Stat, Whence,
};

use crate::ipc::{Cap, Endpoint, Memory};
use crate::proc::Proc;
use crate::server::Windowed;

/// The `vfs` endpoint once looked up (0: not yet).
static SERVER: AtomicU32 = AtomicU32::new(0);

/// The working directory, behind a spin lock (programs rarely share it between threads).
struct Cwd {
    busy: AtomicBool,
    path: UnsafeCell<Option<String>>,
}

// SAFETY: `path` is only touched between taking and releasing `busy` (see `with_cwd`).
unsafe impl Sync for Cwd {}

static CWD: Cwd = Cwd { busy: AtomicBool::new(false), path: UnsafeCell::new(None) };

fn with_cwd<T>(f: impl FnOnce(&mut Option<String>) -> T) -> T {
    while CWD.busy.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
    }
    // SAFETY: `busy` is held, so this is the only reference to `path` until it is released.
    let result = f(unsafe { &mut *CWD.path.get() });
    CWD.busy.store(false, Ordering::Release);
    result
}

/// The `vfs` server's endpoint (looked up through `proc` on first use).
pub fn server() -> Result<Endpoint, Refusal> {
    let cached = SERVER.load(Ordering::Relaxed);
    if cached != 0 {
        return Ok(Endpoint(Cap(cached)));
    }
    let proc = Proc::get().ok_or_else(|| Refusal::new(Error::NotFound, "vfs: no proc capability to look it up"))?;
    let (endpoint, _) = proc.lookup("vfs")?;
    SERVER.store(endpoint.0.0, Ordering::Relaxed);
    Ok(endpoint)
}

/// The typed client of the `vfs` server.
pub fn client() -> Result<Client<Endpoint>, Refusal> {
    server().map(Client::new)
}

/// Forgets the server (and the buffer shared with it) after it died, so the next call looks
/// the new instance up.
fn check<T>(result: Result<T, Refusal>) -> Result<T, Refusal> {
    if let Err(r) = &result
        && r.error == Error::PeerDied
    {
        let old = SERVER.swap(0, Ordering::Relaxed);
        if old != 0 {
            let _ = Cap(old).delete();
        }
        drop_shared();
    }
    result
}

/// Set once the server refused to share a buffer with this process's container (it can only
/// make one in its own): larger transfers then go in message-sized pieces.
static NO_SHARING: AtomicBool = AtomicBool::new(false);

fn sharing() -> bool {
    !NO_SHARING.load(Ordering::Relaxed)
}

/// Whether `result` says this container gets no shared buffer (and remembers it).
fn no_sharing_here<T>(result: &Result<T, Refusal>) -> bool {
    let refused = result.as_ref().is_err_and(|r| r.error == Error::CrossContainer);
    if refused {
        NO_SHARING.store(true, Ordering::Relaxed);
    }
    refused
}

/// This process's buffer shared with the server (`share`), once made: the memory, where it is
/// mapped, its length. Reads and writes larger than a message go through it.
static SHARED: crate::heap::Lock<Option<(Memory, u64, usize)>> = crate::heap::Lock::new(None);

/// The smallest shared buffer: a transfer just over a message's size does not pay for a
/// megabyte of memory (the buffer's frames are the process's own, charged to its container).
const MIN_SHARED_BYTES: u64 = 64 * 1024;

/// Runs `f` on this process's shared buffer, which no other thread of the process touches
/// meanwhile. The buffer is made on first use, made again if the server took it back
/// (`StaleHandle`), and replaced by a bigger one when `want` bytes do not fit: a power of two
/// from [`MIN_SHARED_BYTES`] to [`MAX_SHARED_BYTES`], so a process that moves little keeps
/// little.
fn with_shared<T>(
    want: usize,
    mut f: impl FnMut(Client<Endpoint>, &mut [u8]) -> Result<T, Refusal>,
) -> Result<T, Refusal> {
    let client = client()?;
    let size = (want as u64).next_power_of_two().clamp(MIN_SHARED_BYTES, MAX_SHARED_BYTES);
    if SHARED.with(|shared| shared.as_ref().is_some_and(|&(_, _, len)| (len as u64) < size)) {
        drop_shared();
    }
    let mut attempt = 0;
    loop {
        let result = SHARED.with(|shared| {
            if shared.is_none() {
                let cap = client.share(size)?.buffer;
                let memory = Memory(Cap(cap));
                match memory.map(vessel_abi::MapFlags::WRITE) {
                    Ok(address) => *shared = Some((memory, address, size as usize)),
                    Err(e) => {
                        let _ = memory.0.delete();
                        return Err(Refusal::new(e, "vfs: cannot map the shared buffer"));
                    }
                }
            }
            let Some((_, address, len)) = *shared else {
                return Err(Refusal::new(Error::NoMemory, "vfs: no shared buffer"));
            };
            // SAFETY: `len` bytes are mapped writable at `address` until `drop_shared` unmaps
            // them, which takes this lock; the lock makes this the process's only view meanwhile.
            let bytes = unsafe { core::slice::from_raw_parts_mut(address as usize as *mut u8, len) };
            f(client, bytes)
        });
        attempt += 1;
        match result {
            Err(r) if r.error == Error::StaleHandle && attempt == 1 => drop_shared(),
            result => return check(result),
        }
    }
}

/// Unmaps and forgets this process's shared buffer.
fn drop_shared() {
    SHARED.with(|shared| {
        if let Some((memory, address, len)) = shared.take() {
            // SAFETY: nothing borrows the mapping outside `with_shared`, which holds this lock.
            let _ = unsafe { crate::sys::mem_unmap(address, len as u64 / vessel_abi::PAGE_SIZE) };
            let _ = memory.0.delete();
        }
    });
}

/// `path` made absolute against the working directory.
pub fn absolute(path: &str) -> String {
    full(path).into_owned()
}

/// [`absolute`], borrowing a path that already is (no copy on every call that names one).
fn full(path: &str) -> Cow<'_, str> {
    if path.starts_with('/') {
        return Cow::Borrowed(path);
    }
    let mut full = current_dir();
    if !full.ends_with('/') {
        full.push('/');
    }
    full.push_str(path);
    Cow::Owned(full)
}

/// The working directory: `PWD` from the environment until it is changed, else `/`.
pub fn current_dir() -> String {
    with_cwd(|cwd| {
        cwd.clone().unwrap_or_else(|| String::from(crate::var("PWD").filter(|p| p.starts_with('/')).unwrap_or("/")))
    })
}

/// Changes the working directory (which must be a directory); `..` stops at `/`.
pub fn set_current_dir(path: &str) -> Result<(), Refusal> {
    let full = absolute(path);
    let parts =
        path::resolve(&[], &full).map_err(|e| Refusal::new(Error::InvalidArgument, alloc::format!("{path}: {e}")))?;
    let resolved = path::join(&parts);
    let stat = metadata(&resolved)?;
    if stat.kind != Kind::Dir {
        return Err(Refusal::new(Error::NotADirectory, alloc::format!("{path}: not a directory")));
    }
    with_cwd(|cwd| *cwd = Some(resolved));
    Ok(())
}

/// An open file (or directory) of the `vfs` server; closed when dropped.
#[derive(Debug)]
pub struct File {
    server: Endpoint,
    handle: u64,
    stat: Stat,
}

impl File {
    /// Opens `path` with `flags` under directory handle `dir` (`ROOT`: the container's root).
    pub fn open_at(dir: u64, path: &str, flags: OpenFlags) -> Result<File, Refusal> {
        let server = server()?;
        let path = if dir == ROOT { full(path) } else { Cow::Borrowed(path) };
        let opened = check(Client::new(server).open(dir, &path, flags))?;
        Ok(File { server, handle: opened.handle, stat: opened.stat })
    }

    /// Opens `path` with `flags`.
    pub fn open_with(path: &str, flags: OpenFlags) -> Result<File, Refusal> {
        File::open_at(ROOT, path, flags)
    }

    /// Opens the file `path` for reading.
    pub fn open(path: &str) -> Result<File, Refusal> {
        File::open_with(path, OpenFlags::READ)
    }

    /// Creates `path` (or cuts it to 0 bytes) and opens it for reading and writing.
    pub fn create(path: &str) -> Result<File, Refusal> {
        File::open_with(path, OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE)
    }

    /// Opens the directory `path` (for listing, and as a root for paths below it).
    pub fn open_dir(path: &str, rights: Rights) -> Result<File, Refusal> {
        let mut flags = OpenFlags::DIRECTORY;
        if rights.contains(Rights::READ) {
            flags = flags | OpenFlags::READ;
        }
        if rights.contains(Rights::WRITE) {
            flags = flags | OpenFlags::WRITE;
        }
        File::open_with(path, flags)
    }

    /// A file of this container opened elsewhere (by the parent that passed its handle on):
    /// it is closed when dropped, unless given back with [`File::into_handle`].
    pub fn from_handle(handle: u64) -> Result<File, Refusal> {
        let server = server()?;
        let stat = check(Client::new(server).stat(handle, ""))?.stat;
        Ok(File { server, handle, stat })
    }

    /// The handle, left open.
    pub fn into_handle(self) -> u64 {
        let handle = self.handle;
        core::mem::forget(self);
        handle
    }

    fn client(&self) -> Client<Endpoint> {
        Client::new(self.server)
    }

    /// The server's handle (for `open_at` and the protocol's other calls).
    pub fn handle(&self) -> u64 {
        self.handle
    }

    /// What the entry was when it was opened.
    pub fn opened_stat(&self) -> Stat {
        self.stat
    }

    /// Reads into `buf` from the position; 0 at the end. A buffer larger than a message is
    /// offered to the server as the call's receive window, which the kernel fills straight from
    /// the server's cache (up to [`MAX_SHARED_BYTES`] a call).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Refusal> {
        self.read_from(POSITION, buf)
    }

    /// Reads at `offset` ([`POSITION`]: the position, which moves).
    fn read_from(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Refusal> {
        if buf.len() > MAX_IO {
            let want = buf.len().min(MAX_SHARED_BYTES as usize);
            let window = &mut buf[..want];
            let read = Client::new(Windowed::new(self.server, window)).read_window(self.handle, offset, want as u64);
            return Ok((check(read)?.count as usize).min(want));
        }
        let len = buf.len().min(MAX_IO);
        let buf = &mut buf[..len];
        let data = if offset == POSITION {
            check(self.client().read(self.handle, buf.len() as u64))?.data
        } else {
            check(self.client().pread(self.handle, offset, buf.len() as u64))?.data
        };
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    /// Reads from the position to the end: straight into `out`, a message's worth first, then
    /// twice as much each time up to what one read moves ([`MAX_SHARED_BYTES`]), so a small
    /// file does not cost a megabyte of `out`.
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> Result<usize, Refusal> {
        let start = out.len();
        let mut chunk = MAX_IO;
        loop {
            let at = out.len();
            out.resize(at + chunk, 0);
            let n = self.read(&mut out[at..]);
            out.truncate(at + *n.as_ref().unwrap_or(&0));
            if n? == 0 {
                return Ok(out.len() - start);
            }
            chunk = (chunk * 2).min(MAX_SHARED_BYTES as usize);
        }
    }

    /// Reads at `offset`, leaving the position.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Refusal> {
        self.read_from(offset, buf)
    }

    /// Writes at the position (through the shared buffer when `data` is larger than a message,
    /// up to [`MAX_SHARED_BYTES`] a call); how many were written.
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Refusal> {
        self.write_to(POSITION, data)
    }

    /// Writes at `offset` ([`POSITION`]: the position, which moves).
    fn write_to(&self, offset: u64, data: &[u8]) -> Result<usize, Refusal> {
        if data.len() > MAX_IO && sharing() {
            let handle = self.handle;
            let shared = with_shared(data.len(), |client, shared| {
                let n = data.len().min(shared.len());
                shared[..n].copy_from_slice(&data[..n]);
                Ok(client.write_shared(handle, offset, n as u64, 0)?.count as usize)
            });
            if !no_sharing_here(&shared) {
                return shared;
            }
        }
        let data = &data[..data.len().min(MAX_IO)];
        let count = if offset == POSITION {
            check(self.client().write(self.handle, data))?.count
        } else {
            check(self.client().pwrite(self.handle, offset, data))?.count
        };
        Ok(count as usize)
    }

    /// Writes all of `data` at the position.
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<(), Refusal> {
        while !data.is_empty() {
            let n = self.write(data)?;
            if n == 0 {
                return Err(Refusal::new(Error::NoSpace, "vfs: the write took no bytes"));
            }
            data = &data[n..];
        }
        Ok(())
    }

    /// Writes at `offset`, leaving the position.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<usize, Refusal> {
        self.write_to(offset, data)
    }

    /// Moves the position; the new one.
    pub fn seek(&mut self, whence: Whence, offset: i64) -> Result<u64, Refusal> {
        Ok(check(self.client().seek(self.handle, whence, offset))?.offset)
    }

    /// What the entry is now.
    pub fn metadata(&self) -> Result<Stat, Refusal> {
        Ok(check(self.client().stat(self.handle, ""))?.stat)
    }

    /// Sets the file's length.
    pub fn set_len(&self, len: u64) -> Result<(), Refusal> {
        check(self.client().truncate(self.handle, len)).map(|_| ())
    }

    /// Makes what was written durable.
    pub fn sync(&self) -> Result<(), Refusal> {
        check(self.client().sync(self.handle)).map(|_| ())
    }

    /// A second handle with `rights` (no more than this one's).
    pub fn duplicate(&self, rights: Rights) -> Result<File, Refusal> {
        let opened = check(self.client().duplicate(self.handle, rights))?;
        Ok(File { server: self.server, handle: opened.handle, stat: opened.stat })
    }

    /// The entries of this directory.
    pub fn entries(&self) -> Result<Vec<DirEntry>, Refusal> {
        list(self.client(), self.handle)
    }

    /// Closes it, reporting a refusal (dropping closes too, silently).
    pub fn close(self) -> Result<(), Refusal> {
        let result = check(self.client().close(self.handle)).map(|_| ());
        core::mem::forget(self);
        result
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = self.client().close(self.handle);
    }
}

fn list(client: Client<Endpoint>, dir: u64) -> Result<Vec<DirEntry>, Refusal> {
    let mut all = Vec::new();
    let mut start = 0;
    loop {
        let page = check(client.readdir(dir, start))?;
        if page.entries.0.is_empty() {
            return Ok(all);
        }
        start = page.next;
        all.extend(page.entries.0);
    }
}

/// The entries of directory `path`.
pub fn read_dir(path: &str) -> Result<Vec<DirEntry>, Refusal> {
    let dir = File::open_dir(path, Rights::READ)?;
    dir.entries()
}

/// What `path` names.
pub fn metadata(path: &str) -> Result<Stat, Refusal> {
    Ok(check(client()?.stat(ROOT, &full(path)))?.stat)
}

/// Makes directory `path`.
pub fn create_dir(path: &str) -> Result<(), Refusal> {
    check(client()?.mkdir(ROOT, &full(path))).map(|_| ())
}

/// Removes the file or empty directory `path`.
pub fn remove(path: &str) -> Result<(), Refusal> {
    check(client()?.remove(ROOT, &full(path))).map(|_| ())
}

/// Moves `from` to `to` (within one file system).
pub fn rename(from: &str, to: &str) -> Result<(), Refusal> {
    check(client()?.rename(ROOT, &full(from), &full(to))).map(|_| ())
}

/// The whole file `path`.
pub fn read(path: &str) -> Result<Vec<u8>, Refusal> {
    let mut file = File::open(path)?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// Replaces the file `path` with `data` (creating it).
pub fn write(path: &str, data: &[u8]) -> Result<(), Refusal> {
    File::create(path)?.write_all(data)
}

/// Syncs every file system of this container.
pub fn sync_all() -> Result<(), Refusal> {
    check(client()?.sync(ROOT)).map(|_| ())
}

/// Mounts `source` (`mem`, `blk:<device>`, `vsf:<path>`) at `path` in `container` (0: this
/// one; else a child). A `vsf:` path is one of this container's.
pub fn mount(container: u64, path: &str, source: &str) -> Result<(), Refusal> {
    let source = match source.strip_prefix("vsf:") {
        Some(file) => alloc::format!("vsf:{}", absolute(file)),
        None => String::from(source),
    };
    check(client()?.mount(container, path, &source)).map(|_| ())
}

/// Unmounts what is mounted at `path` in `container`.
pub fn unmount(container: u64, path: &str) -> Result<(), Refusal> {
    check(client()?.unmount(container, path)).map(|_| ())
}

/// The mounts of `container` (0: this one).
pub fn mounts(container: u64) -> Result<Vec<Mount>, Refusal> {
    Ok(check(client()?.mounts(container))?.mounts.0)
}

/// Creates a virtual storage file of `bytes` bytes at `path`, formatted FAT.
pub fn create_vsf(path: &str, bytes: u64) -> Result<(), Refusal> {
    check(client()?.create_vsf(ROOT, &full(path), bytes)).map(|_| ())
}
