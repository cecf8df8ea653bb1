//! Client of the `device` server (`vessel_device_protocol`): the devices this container may
//! use, opened by name, and the grants a container makes to its children.
//!
//! ```ignore
//! let disk = Devices::connect()?.open("blk0", Rights::READ_WRITE)?;
//! let sector = disk.read_blocks(0, 1)?;
//! ```

use alloc::vec::Vec;

use vessel_device_protocol::{Client, Entry, PciFunction, Rights};
use vessel_protocol::Refusal;

use crate::ipc::Endpoint;
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

impl Devices {
    /// Looks the service up through `proc`.
    pub fn connect() -> Result<Devices, Refusal> {
        let proc = Proc::get().ok_or_else(|| Refusal::new(vessel_abi::Error::NotFound, "no proc capability"))?;
        proc.lookup("device").map(|(endpoint, _)| Devices(endpoint))
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

    /// Closes the session.
    pub fn close(self) -> Result<(), Refusal> {
        self.client().close(self.handle).map(|_| ())
    }
}
