//! The `vfs` server: every container's files. `proc` supervises it and hands it its endpoint
//! last; it finds the `device` server through `proc`. The rules live in `vessel_vfs_core`
//! (host-tested); this program gives them the kernel's side through [`Env`]: block devices of
//! the `device` server ([`BlkDisk`], zero-copy through a shared buffer), container parents
//! asked of the kernel (`ContainerLookup`: never of `proc`, which calls this server to read
//! programs), and a clock read once from `rtc0` and run on from the kernel's monotonic
//! time.
//!
//! At start it assembles the root container's tree: an in-memory `/`, an in-memory `/tmp`,
//! `/boot` (the boot file system, read-only: indexed once, read from the kernel as needed) and
//! `/data`, the FAT file system of the first block device that holds one (a disk whose
//! first sector is not a FAT boot sector is left alone, its session closed); arguments change
//! that: `--no-data` leaves `/data` out, `--memory AT` (repeatable) mounts another in-memory
//! file system at AT (the image spec's `root` table). After a request,
//! at most once a second, it asks the kernel which containers with files or mounts have ended, and
//! closes what they had (an idle server never wakes: nothing polls).
//! See `docs/vfs.md`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use vessel_abi::{Error, MAX_WINDOW_PIECES, MAX_WINDOW_WRITE, MapFlags, ObjectKind, Rights};
use vessel_device_protocol::{Class, Rights as DeviceRights};
use vessel_fat::{Disk, DiskError, FatDateTime, Sink, TimeProvider};
use vessel_protocol::{Dispatched, Refusal};
use vessel_rt::device::{Device, Devices, SharedBuffer};
use vessel_rt::ipc::{Cap, Endpoint, Memory};
use vessel_rt::println;
use vessel_rt::proc::KeptMemory;
use vessel_rt::server::{Incoming, Keeper, Server, Staged};
use vessel_vfs_core::bootfs::{BootImage, BootSource};
use vessel_vfs_core::{Env, Vfs, Window, kept};

vessel_rt::entry!(main);

/// Bytes of each disk's shared buffer: the most one transfer moves.
const SHARED_BYTES: u64 = 256 << 10;
/// How often, at most, ended containers are looked for (after a request), in nanoseconds.
const SWEEP_NS: u64 = 1_000_000_000;
/// Time-stamp counter ticks between two looks at the clock (a few milliseconds at the rates
/// processors count at): requests in between do not ask it.
const LOOK_CYCLES: u64 = 1 << 23;

/// The clock: seconds at boot of the `rtc0` reading, and the monotonic time then.
static CLOCK_BASE_S: AtomicU64 = AtomicU64::new(0);
static CLOCK_BASE_NS: AtomicU64 = AtomicU64::new(0);

fn seconds_now() -> u64 {
    let elapsed = vessel_rt::time::now_ns().saturating_sub(CLOCK_BASE_NS.load(Ordering::Relaxed));
    CLOCK_BASE_S.load(Ordering::Relaxed) + elapsed / 1_000_000_000
}

/// The FAT clock (hadris-fat asks it for every entry it stamps).
#[derive(Debug)]
struct Clock;

impl TimeProvider for Clock {
    fn now(&self) -> FatDateTime {
        vessel_vfs_core::fat::fat_time(seconds_now())
    }
}

static FAT_CLOCK: Clock = Clock;

/// A block device of the `device` server, as the FAT layer reads it. If the `device` server
/// restarts, the session is gone: the disk opens a new one and tries again, once.
struct BlkDisk {
    name: String,
    device: Device,
    buffer: SharedBuffer,
}

/// Whether a refusal means the session is gone (the `device` server restarted).
fn session_lost(r: &Refusal) -> bool {
    matches!(r.error, Error::PeerDied | Error::InvalidHandle)
}

impl BlkDisk {
    /// Opens `name` for reading and writing, with a shared buffer.
    fn open(name: &str) -> Result<BlkDisk, Refusal> {
        let devices = Devices::connect()?;
        let device = devices.open(name, DeviceRights::READ_WRITE)?;
        if device.block_size == 0 {
            let _ = device.close();
            return Err(Refusal::new(Error::WrongObject, format!("{name} is not a block device")));
        }
        match device.share(SHARED_BYTES) {
            Ok(buffer) => Ok(BlkDisk { name: String::from(name), device, buffer }),
            Err(r) => {
                let _ = device.close();
                Err(r)
            }
        }
    }

    /// Runs `op` on the session; on a lost session, once more on a new one.
    fn retrying(&mut self, mut op: impl FnMut(&mut BlkDisk) -> Result<(), Refusal>) -> Result<(), DiskError> {
        match op(self) {
            Ok(()) => Ok(()),
            Err(r) if session_lost(&r) => {
                let fresh = BlkDisk::open(&self.name).map_err(|_| DiskError::Device)?;
                let old = core::mem::replace(self, fresh);
                old.buffer.free();
                println!("vfs: {}: new session after the device server restarted", self.name);
                op(self).map_err(|_| DiskError::Device)
            }
            Err(_) => Err(DiskError::Device),
        }
    }

    /// Moves `len` bytes from `first_block` on in pieces of the shared buffer: `each(disk,
    /// block, count, byte offset)`.
    fn transfer(
        &mut self,
        first_block: u64,
        len: usize,
        mut each: impl FnMut(&mut Self, u64, u64, usize) -> Result<(), DiskError>,
    ) -> Result<(), DiskError> {
        let bs = self.device.block_size as usize;
        if bs == 0 || !len.is_multiple_of(bs) {
            return Err(DiskError::Invalid);
        }
        let blocks = (len / bs) as u64;
        if first_block.checked_add(blocks).is_none_or(|end| end > self.device.blocks) {
            return Err(DiskError::OutOfRange);
        }
        let per = SHARED_BYTES / bs as u64;
        let mut done = 0;
        while done < blocks {
            let count = per.min(blocks - done);
            each(self, first_block + done, count, (done as usize) * bs)?;
            done += count;
        }
        Ok(())
    }
}

impl Disk for BlkDisk {
    fn block_size(&self) -> usize {
        self.device.block_size as usize
    }

    fn blocks(&self) -> u64 {
        self.device.blocks
    }

    fn read(&mut self, first_block: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let bs = self.device.block_size as usize;
        self.transfer(first_block, buf.len(), |d, block, count, at| {
            d.retrying(|d| d.device.read_shared(&mut d.buffer, block, count, 0))?;
            let n = count as usize * bs;
            buf[at..at + n].copy_from_slice(&d.buffer.as_slice()[..n]);
            Ok(())
        })
    }

    fn write(&mut self, first_block: u64, data: &[u8]) -> Result<(), DiskError> {
        let bs = self.device.block_size as usize;
        self.transfer(first_block, data.len(), |d, block, count, at| {
            let n = count as usize * bs;
            d.retrying(|d| {
                d.buffer.as_mut_slice()[..n].copy_from_slice(&data[at..at + n]);
                d.device.write_shared(&d.buffer, block, count, 0)
            })
        })
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        self.retrying(|d| d.device.flush())
    }
}

/// A buffer shared with a client, mapped here.
struct SharedMemory {
    memory: Memory,
    address: u64,
    len: usize,
}

impl AsMut<[u8]> for SharedMemory {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes are mapped writable at `address` from `make_buffer` until `drop`;
        // `&mut self` makes this the server's only view (the client may write its own mapping
        // meanwhile: the bytes are data, never trusted as anything else).
        unsafe { core::slice::from_raw_parts_mut(self.address as usize as *mut u8, self.len) }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: no slice of the mapping outlives the `as_mut` borrow that made it.
        let _ = unsafe { vessel_rt::sys::mem_unmap(self.address, self.len as u64 / vessel_abi::PAGE_SIZE) };
        let _ = self.memory.0.delete();
    }
}

/// Pieces a [`KernelWindow`] holds at most: one per cache page of the most the kernel copies at
/// once. Fewer than the kernel would take, as the array is made afresh for every read.
const WINDOW_PIECES: usize = (MAX_WINDOW_WRITE / vessel_abi::PAGE_SIZE) as usize;
const _: () = assert!(WINDOW_PIECES <= MAX_WINDOW_PIECES);

/// The receive window of the request being handled, through the kernel: it keeps where the
/// pieces are (the cache's pages) and has the kernel copy them into the caller's window
/// (`WindowWrite`) when full and when told to flush, each byte once.
struct KernelWindow {
    pieces: [[u64; 2]; WINDOW_PIECES],
    count: usize,
    /// Bytes in the pieces held.
    held: u64,
    /// Where the last piece held ends.
    end: u64,
    /// Bytes the window has received.
    sent: u64,
    refused: Option<Error>,
}

impl KernelWindow {
    /// Has the kernel copy the pieces held; false (remembering why) if it refused.
    fn send(&mut self) -> bool {
        if self.count == 0 {
            return true;
        }
        match vessel_rt::ipc::window_write(None, self.sent, &self.pieces[..self.count]) {
            Ok(n) => {
                self.sent += n;
                (self.count, self.held) = (0, 0);
                true
            }
            Err(e) => {
                self.refused = Some(e);
                false
            }
        }
    }

    /// [`Sink::take`] of bytes that start a piece, sending what is held first when full. Out of
    /// line, so the usual case saves no registers.
    #[inline(never)]
    fn take_apart(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if (self.count == WINDOW_PIECES || self.held == MAX_WINDOW_WRITE) && !self.send() {
                return false;
            }
            let n = (bytes.len() as u64).min(MAX_WINDOW_WRITE - self.held);
            let at = bytes.as_ptr() as u64;
            if self.count == 0 || self.end != at {
                self.pieces[self.count] = [at, 0];
                self.count += 1;
            }
            self.grow(at, n);
            bytes = &bytes[n as usize..];
        }
        true
    }

    /// Adds the `n` bytes at `at`, which follow the last piece held, to it.
    #[inline(always)]
    fn grow(&mut self, at: u64, n: u64) {
        self.pieces[self.count - 1][1] += n;
        (self.held, self.end) = (self.held + n, at + n);
    }
}

impl Sink for KernelWindow {
    fn take(&mut self, bytes: &[u8]) -> bool {
        let (at, n) = (bytes.as_ptr() as u64, bytes.len() as u64);
        // The usual case: the next page of the file lies right after the last one in memory
        // (the cache takes its pages in order), so the piece grows.
        if self.count > 0 && self.end == at && self.held + n <= MAX_WINDOW_WRITE {
            self.grow(at, n);
            return true;
        }
        self.take_apart(bytes)
    }

    fn flush(&mut self) -> bool {
        self.send()
    }
}

impl Window for KernelWindow {
    fn finish(&mut self) -> Result<u64, (Error, String)> {
        if self.refused.is_none() && self.send() {
            return Ok(self.sent);
        }
        let e = self.refused.unwrap_or(Error::InvalidArgument);
        Err((e, format!("cannot copy into the caller's window after {} bytes: {e}", self.sent)))
    }
}

/// The kernel's side of the server.
struct System;

impl Env for System {
    type Disk = BlkDisk;

    fn parent(&mut self, container: u64) -> Option<u64> {
        // From the kernel, not `proc`: `proc` calls this server (to read programs), so calling
        // it back could leave both waiting on each other. A container being destroyed counts
        // as gone.
        vessel_rt::container::lookup(container).ok().filter(|info| info.state == 0).map(|info| info.parent)
    }

    fn open_disk(&mut self, name: &str) -> Result<BlkDisk, (Error, String)> {
        BlkDisk::open(name).map_err(|r| (r.error, r.reason))
    }

    fn now() -> u64 {
        seconds_now()
    }

    fn clock(&self) -> Option<&'static dyn TimeProvider> {
        Some(&FAT_CLOCK)
    }

    type Buffer = SharedMemory;

    fn make_buffer(&mut self, bytes: u64, container: u64) -> Result<(SharedMemory, u32), (Error, String)> {
        let fail = |e: Error| (e, format!("cannot make a shared buffer of {bytes} bytes: {e}"));
        // The client's memory, charged to its container, which this server may map too.
        let memory = Memory::lend(bytes / vessel_abi::PAGE_SIZE, container).map_err(fail)?;
        let address = match memory.map(MapFlags::WRITE) {
            Ok(address) => address,
            Err(e) => {
                let _ = memory.0.delete();
                return Err(fail(e));
            }
        };
        let buffer = SharedMemory { memory, address, len: bytes as usize };
        let client = memory.0.duplicate(Rights::READ | Rights::WRITE | Rights::MAP | Rights::TRANSFER).map_err(fail)?;
        Ok((buffer, client.0))
    }

    type Window = KernelWindow;

    fn window(&self) -> KernelWindow {
        KernelWindow { pieces: [[0; 2]; WINDOW_PIECES], count: 0, held: 0, end: 0, sent: 0, refused: None }
    }
}

/// Sets the clock from `rtc0` (left at 0 without one).
fn set_clock(devices: Option<Devices>) {
    let Some(devices) = devices else { return };
    let Ok(rtc) = devices.open("rtc0", DeviceRights::READ) else { return };
    if let Ok(t) = rtc.time() {
        CLOCK_BASE_S.store(t, Ordering::Relaxed);
        CLOCK_BASE_NS.store(vessel_rt::time::now_ns(), Ordering::Relaxed);
    }
    let _ = rtc.close();
}

/// Whether block device `name` holds a FAT volume (read-only look, before a read-write mount).
fn holds_fat(devices: Devices, name: &str) -> bool {
    let Ok(disk) = devices.open(name, DeviceRights::READ) else { return false };
    let sector = disk.read_blocks(0, 1);
    let _ = disk.close();
    let Ok(sector) = sector else { return false };
    vessel_fat::is_fat_volume(&sector, disk.blocks * disk.block_size)
}

/// The boot file system, read from the kernel as it is needed.
struct KernelBootfs;

impl BootSource for KernelBootfs {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            match vessel_rt::sys::bootfs_read(offset + done as u64, &mut buf[done..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        done
    }
}

/// The boot file system's index.
fn boot_image() -> Result<alloc::rc::Rc<BootImage>, String> {
    BootImage::new(alloc::boxed::Box::new(KernelBootfs))
}

/// Assembles the root container's tree.
fn assemble(vfs: &mut Vfs<System>, root: u64, devices: Option<Devices>) {
    match boot_image() {
        Ok(image) => vfs.set_boot_image(image),
        Err(why) => println!("vfs: no boot file system: {why}"),
    }
    let steps: [(&str, &str); 3] = [("/", "mem"), ("/tmp", "mem"), ("/boot", "boot")];
    for (i, (at, source)) in steps.iter().enumerate() {
        if i > 0 {
            vfs.make_dir(root, at);
        }
        if let Err((e, why)) = vfs.mount_in(root, root, at, source) {
            println!("vfs: cannot mount {source} at {at}: {e}: {why}");
        }
    }
    // `--memory AT`: more in-memory file systems (the image spec's `root.memory`).
    let args: alloc::vec::Vec<&str> = vessel_rt::args().skip(1).collect();
    for pair in args.windows(2).filter(|w| w[0] == "--memory") {
        vfs.make_dir(root, pair[1]);
        if let Err((e, why)) = vfs.mount_in(root, root, pair[1], "mem") {
            println!("vfs: cannot mount mem at {}: {e}: {why}", pair[1]);
        }
    }
    // `--no-data`: no disk at /data (the image spec's `root.data = false`).
    if args.contains(&"--no-data") {
        return;
    }
    vfs.make_dir(root, "/data");
    let Some(devices) = devices else { return };
    let disks = devices.list().unwrap_or_default();
    for entry in disks.iter().filter(|e| e.class == Class::Block) {
        if !holds_fat(devices, &entry.name) {
            continue;
        }
        match vfs.mount_in(root, root, "/data", &format!("blk:{}", entry.name)) {
            Ok(()) => {
                println!("vfs: /data is the FAT file system on {}", entry.name);
                return;
            }
            Err((e, why)) => println!("vfs: {}: not mounted: {e}: {why}", entry.name),
        }
    }
    println!("vfs: no FAT disk; /data is empty");
}

/// Makes the mounts the last instance kept again (`vessel_vfs_core::kept`), one at a time,
/// and says which could not be, and why. Before each, the record is written without it: a
/// mount that brings `vfs` down (a VSF changed while no server held it) is then not tried
/// again by the next instance, which would go down the same way. Afterwards the record holds
/// what is mounted.
fn restore(vfs: &mut Vfs<System>, memory: &mut KeptMemory) {
    let Some(record) = vessel_proc_protocol::kept::load(memory.bytes()) else { return };
    let mounts = kept::decode(record);
    let mut made = 0;
    for (i, mount) in mounts.iter().enumerate() {
        let mut without = vfs.kept_mounts();
        without.extend_from_slice(&mounts[i + 1..]);
        keep_these(&without, memory);
        match vfs.restore(core::slice::from_ref(mount)).pop() {
            None => made += 1,
            Some((m, e, why)) => {
                println!("vfs: kept mount {} at {} of container {:#x}: {e}: {why}", m.source, m.at, m.container);
            }
        }
    }
    println!("vfs: {made} of {} kept mounts made again", mounts.len());
    keep(vfs, memory);
}

/// Keeps the mounts made through the protocol for the next instance, as many as fit.
fn keep(vfs: &Vfs<System>, memory: &mut KeptMemory) {
    keep_these(&vfs.kept_mounts(), memory);
}

/// Keeps `mounts` for the next instance, as many as fit (oldest first).
fn keep_these(mounts: &[kept::KeptMount], memory: &mut KeptMemory) {
    let (record, held) = kept::encode(mounts, vessel_proc_protocol::kept::capacity(memory.bytes()));
    if !vessel_proc_protocol::kept::save(memory.bytes_mut(), &record) || held < mounts.len() {
        println!("vfs: only {held} of {} mounts are kept across a restart (no room)", mounts.len());
    }
}

fn main() -> i32 {
    let Some(Cap(ep)) = vessel_rt::handles_of(ObjectKind::Endpoint).next_back() else {
        println!("vfs: no endpoint to serve");
        return 1;
    };
    let devices = Devices::connect().ok();
    set_clock(devices);
    let root = vessel_rt::container::own().map_or(0, |c| c.id);
    let mut vfs = Vfs::new(System, root);
    assemble(&mut vfs, root, devices);
    let mut kept = KeptMemory::inherited();
    if let Some(memory) = &mut kept {
        restore(&mut vfs, memory);
    }
    let mut kept_at = vfs.mount_changes();
    println!("vfs: serving");
    let mut server = Server::new(Endpoint(Cap(ep)));
    let mut next_sweep = vessel_rt::time::now_ns() + SWEEP_NS;
    let mut next_look = vessel_rt::time::cycles() + LOOK_CYCLES;
    let mut reply = None;
    loop {
        // The reply to the last request goes with the next receive, after everything that
        // request started (answers to kept pipe calls, the sweep), which use the IPC buffer.
        let incoming = match reply.take() {
            Some(staged) => server.answer_then_next(staged, None),
            None => server.next(None),
        };
        match incoming {
            Ok(Incoming::Request { caller, mut message }) => {
                if vessel_vfs_protocol::dispatch(&mut vfs, caller, &mut Keeper, &mut message) == Dispatched::Reply {
                    reply = Some(Staged::of(&message));
                }
                // Kept pipe reads and writes this request settled.
                vfs.send_ready(&vessel_rt::server::Replies);
                // Requests drive the sweep: an idle server never wakes. The clock (a system
                // call) is asked only once the counter says a little time went by.
                let cycles = vessel_rt::time::cycles();
                if cycles >= next_look {
                    next_look = cycles + LOOK_CYCLES;
                    let now = vessel_rt::time::now_ns();
                    if now >= next_sweep {
                        vfs.forget_dead_containers();
                        next_sweep = now + SWEEP_NS;
                    }
                }
                if vfs.mount_changes() != kept_at
                    && let Some(memory) = &mut kept
                {
                    keep(&vfs, memory);
                    kept_at = vfs.mount_changes();
                }
            }
            Ok(Incoming::Notified(_) | Incoming::TimedOut) => {}
            Err(e) => {
                println!("vfs: receive failed: {e}");
                return 1;
            }
        }
    }
}
