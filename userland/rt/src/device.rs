//! Client of the `device` server (`vessel_device_protocol`): the devices this container may
//! use, opened by name, and the grants a container makes to its children.
//!
//! ```ignore
//! let disk = Devices::connect()?.open("blk0", Rights::READ_WRITE)?;
//! let sector = disk.read_blocks(0, 1)?;
//! // Bulk I/O without copies: the disk fills a buffer shared with this process.
//! let mut buffer = disk.share(1 << 20)?;
//! disk.read_shared(&mut buffer, 0, 2048, 0)?;
//! let first_mib: &[u8] = buffer.as_slice();
//! ```

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use vessel_device_protocol::{Client, Entry, PciFunction, Rights};
use vessel_protocol::Refusal;

use crate::ipc::{Cap, Endpoint, Memory};
use crate::proc::Proc;

/// A connection to the `device` server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Devices(pub Endpoint);

/// An open device: a session of the `device` server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    server: Endpoint,
    /// The session handle (refused if used from another container).
    pub handle: u64,
    /// Blocks (0 for a byte device).
    pub blocks: u64,
    /// Bytes per block (0 for a byte device).
    pub block_size: u64,
}

/// A block session's shared buffer (`Device::share`), mapped into this process: the disk reads
/// into it and writes from it in place. Its memory is this container's (and counts against its
/// quota).
#[derive(Debug, PartialEq, Eq)]
pub struct SharedBuffer {
    memory: Memory,
    address: u64,
    len: u64,
}

impl SharedBuffer {
    /// Its bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes are mapped at `address` from `share` until `free` (which takes
        // `self`); the disk writes them only during `read_shared`, which borrows `self` mutably.
        unsafe { core::slice::from_raw_parts(self.address as usize as *const u8, self.len as usize) }
    }

    /// Its bytes, to fill before `write_shared`.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.address as usize as *mut u8, self.len as usize) }
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it has no bytes (never: `share` refuses 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Unmaps it and drops this process's capability (the server lets its own go when the
    /// session closes or shares another buffer).
    pub fn free(self) {
        // SAFETY: `self` goes with the mapping; no slice of it outlives the borrow that made it.
        let _ = unsafe { crate::sys::mem_unmap(self.address, self.len / vessel_abi::PAGE_SIZE) };
        let _ = self.memory.0.delete();
    }
}

/// The `device` endpoint [`Devices::get`] looked up (0: not yet).
static SERVER: AtomicU32 = AtomicU32::new(0);

impl Devices {
    /// Looks the service up through `proc`.
    pub fn connect() -> Result<Devices, Refusal> {
        let proc = Proc::get().ok_or_else(|| Refusal::new(vessel_abi::Error::NotFound, "no proc capability"))?;
        proc.lookup("device").map(|(endpoint, _)| Devices(endpoint))
    }

    /// The service, looked up once and remembered (for the standard streams).
    pub fn get() -> Result<Devices, Refusal> {
        let cached = SERVER.load(Ordering::Relaxed);
        if cached != 0 {
            return Ok(Devices(Endpoint(Cap(cached))));
        }
        let devices = Devices::connect()?;
        SERVER.store(devices.0.0.0, Ordering::Relaxed);
        Ok(devices)
    }

    /// The typed client, for calls this wrapper does not unpack.
    pub fn client(self) -> Client<Endpoint> {
        Client::new(self.0)
    }

    /// The devices this container may use.
    pub fn list(self) -> Result<Vec<Entry>, Refusal> {
        self.client().list().map(|l| l.entries.0)
    }

    /// One device's registry entry.
    pub fn info(self, name: &str) -> Result<Entry, Refusal> {
        self.client().info(name).map(|d| d.entry)
    }

    /// Opens `name` with `rights`.
    pub fn open(self, name: &str, rights: Rights) -> Result<Device, Refusal> {
        let o = self.client().open(name, rights)?;
        Ok(Device { server: self.0, handle: o.handle, blocks: o.blocks, block_size: o.block_size })
    }

    /// Grants `name` to child container `container`.
    pub fn grant(self, container: u64, name: &str, rights: Rights, exclusive: bool) -> Result<(), Refusal> {
        self.client().grant(container, name, rights, exclusive).map(|_| ())
    }

    /// Takes back what this container granted `container`.
    pub fn revoke(self, container: u64, name: &str) -> Result<(), Refusal> {
        self.client().revoke(container, name).map(|_| ())
    }

    /// Plugs a virtual device (`null`, `zero`, `random`) into `container` (0: this one);
    /// returns its name there.
    pub fn plug(self, container: u64, kind: &str) -> Result<alloc::string::String, Refusal> {
        self.client().plug(container, kind).map(|p| p.name)
    }

    /// Every PCI function (root container only).
    pub fn pci(self) -> Result<Vec<PciFunction>, Refusal> {
        self.client().pci().map(|f| f.functions.0)
    }
}

impl Device {
    fn client(self) -> Client<Endpoint> {
        Client::new(self.server)
    }

    /// Reads `count` blocks from `block`.
    pub fn read_blocks(self, block: u64, count: u64) -> Result<Vec<u8>, Refusal> {
        self.client().read_blocks(self.handle, block, count).map(|d| d.data)
    }

    /// Writes whole blocks at `block`.
    pub fn write_blocks(self, block: u64, data: &[u8]) -> Result<(), Refusal> {
        self.client().write_blocks(self.handle, block, data).map(|_| ())
    }

    /// Gives the session a shared buffer of `bytes` (whole pages) and maps it here; it
    /// replaces the session's previous one, which should be freed.
    pub fn share(self, bytes: u64) -> Result<SharedBuffer, Refusal> {
        let memory = Memory(Cap(self.client().share(self.handle, bytes)?.buffer));
        match memory.map(vessel_abi::MapFlags::WRITE) {
            Ok(address) => Ok(SharedBuffer { memory, address, len: bytes }),
            Err(e) => {
                let _ = memory.0.delete();
                Err(Refusal::new(e, "device: cannot map the shared buffer"))
            }
        }
    }

    /// Reads `count` blocks from `block` into `buffer` at byte `offset`.
    pub fn read_shared(self, _buffer: &mut SharedBuffer, block: u64, count: u64, offset: u64) -> Result<(), Refusal> {
        self.client().read_shared(self.handle, block, count, offset).map(|_| ())
    }

    /// Writes `count` blocks at `block` from `buffer` at byte `offset`.
    pub fn write_shared(self, _buffer: &SharedBuffer, block: u64, count: u64, offset: u64) -> Result<(), Refusal> {
        self.client().write_shared(self.handle, block, count, offset).map(|_| ())
    }

    /// Makes what was written durable.
    pub fn flush(self) -> Result<(), Refusal> {
        self.client().flush(self.handle).map(|_| ())
    }

    /// Reads at most `max` bytes of a byte device.
    pub fn read(self, max: u64) -> Result<Vec<u8>, Refusal> {
        self.client().read(self.handle, max, vessel_device_protocol::NO_TIMEOUT).map(|d| d.data)
    }

    /// Writes bytes to a byte device; returns how many it took.
    pub fn write(self, data: &[u8]) -> Result<u64, Refusal> {
        self.client().write(self.handle, data).map(|w| w.count)
    }

    /// A clock's time, in seconds since 1970-01-01 UTC.
    pub fn time(self) -> Result<u64, Refusal> {
        self.client().time(self.handle).map(|t| t.unix_seconds)
    }

    /// Closes the session.
    pub fn close(self) -> Result<(), Refusal> {
        self.client().close(self.handle).map(|_| ())
    }
}
