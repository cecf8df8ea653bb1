//! The virtio-blk driver: requests go in without waiting, the device's MSI-X interrupt says
//! some are done, and each finished one comes back tagged to whoever asked.
//!
//! Invariants: a request's buffers (`Request`) stay where they are from submission until the
//! device hands them back (they are boxed and owned by `in_flight`); at most `MAX_IN_FLIGHT`
//! are with the device, the rest wait in order in `waiting`; every request submitted comes back
//! exactly once through `completions`.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use vessel_rt::abi::Error;
use vessel_rt::ipc::Notification;
use vessel_rt::platform::{Msi, Platform};
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};

use crate::hal::VesselHal;
use crate::pci::{self, Cam, Function};

/// Requests with the device at once (each takes three of the queue's 16 descriptors).
const MAX_IN_FLIGHT: usize = 4;
/// Offset of `queue_msix_vector` in the virtio common configuration.
const QUEUE_MSIX_VECTOR: u64 = 0x1a;
/// Offset of `queue_select`.
const QUEUE_SELECT: u64 = 0x16;

/// What a request asks.
#[derive(Debug)]
pub enum Op {
    /// Read `sectors` sectors from `sector`.
    Read { sector: u64, sectors: u64 },
    /// Write `data` (whole sectors) at `sector`.
    Write { sector: u64, data: Vec<u8> },
    /// Move `sectors` sectors at `sector` between the disk and a client's shared buffer at
    /// `address` in this process (a region `hal::register` made known), in place.
    Shared { sector: u64, sectors: u64, address: u64, write: bool },
    /// Make everything written before it durable (waits until the device has nothing else).
    Flush,
}

/// A finished request: its tag and the data read (empty for a write), or the error.
pub struct Completion {
    /// What the submitter tagged it with.
    pub tag: u64,
    /// The outcome.
    pub result: Result<Vec<u8>, Error>,
}

/// A request's memory, boxed so it does not move while the device uses it.
struct Request {
    req: BlkReq,
    resp: BlkResp,
    data: Vec<u8>,
    /// A shared buffer's bytes instead of `data`: (address, length).
    shared: Option<(u64, usize)>,
    write: bool,
    tag: u64,
}

impl Request {
    /// The bytes the device reads or fills.
    ///
    /// # Safety
    /// A shared range must be mapped in this process for as long as the slice is used (the
    /// server keeps a busy buffer mapped until the request comes back). The client may write
    /// the same memory meanwhile; the device and the client see bytes, never Rust values, so
    /// that race can only garble the client's own data.
    unsafe fn buffer(&mut self) -> &mut [u8] {
        match self.shared {
            // SAFETY: the caller's promise above.
            Some((address, len)) => unsafe { core::slice::from_raw_parts_mut(address as usize as *mut u8, len) },
            None => &mut self.data,
        }
    }
}

/// One virtio-blk disk.
pub struct Blk {
    dev: VirtIOBlk<VesselHal, PciTransport>,
    /// Device sectors.
    pub sectors: u64,
    /// The device refuses writes.
    pub readonly: bool,
    /// Its PCI function.
    pub at: DeviceFunction,
    in_flight: Vec<(u16, Box<Request>)>,
    waiting: VecDeque<(u64, Op)>,
    done: Vec<Completion>,
    /// Its interrupt (kept: deleting it would free the vector).
    _msi: Msi,
}

impl Blk {
    /// Drives the virtio-blk function `function`, its interrupt delivered as `bits` on
    /// `events`.
    pub fn new(
        root: &mut PciRoot<Cam>,
        function: &Function,
        platform: Platform,
        events: Notification,
        bits: u64,
    ) -> Result<Blk, Error> {
        pci::enable(root, function.at);
        let transport = PciTransport::new::<VesselHal, Cam>(root, function.at).map_err(|_| Error::DeviceError)?;
        let mut dev = VirtIOBlk::<VesselHal, _>::new(transport).map_err(|_| Error::DeviceError)?;
        let msi = platform.msi()?;
        msi.bind(events, bits)?;
        let (address, data) = msi.message()?;
        pci::msix_route(function, 0, address, data)?;
        route_queue_to_entry(function, 0)?;
        dev.enable_interrupts();
        let (sectors, readonly) = (dev.capacity(), dev.readonly());
        Ok(Blk {
            dev,
            sectors,
            readonly,
            at: function.at,
            in_flight: Vec::new(),
            waiting: VecDeque::new(),
            done: Vec::new(),
            _msi: msi,
        })
    }

    /// Queues a request; it comes back through `completions` with `tag`.
    pub fn submit(&mut self, tag: u64, op: Op) {
        self.waiting.push_back((tag, op));
        self.start_waiting();
    }

    /// Hands waiting requests to the device while it has room.
    fn start_waiting(&mut self) {
        while self.in_flight.len() < MAX_IN_FLIGHT {
            if matches!(self.waiting.front(), Some((_, Op::Flush))) && !self.in_flight.is_empty() {
                return;
            }
            let Some((tag, op)) = self.waiting.pop_front() else { return };
            let (sector, data, shared, write) = match op {
                Op::Read { sector, sectors } => (sector, vec![0; (sectors as usize) * SECTOR_SIZE], None, false),
                Op::Write { sector, data } => (sector, data, None, true),
                Op::Shared { sector, sectors, address, write } => {
                    (sector, Vec::new(), Some((address, sectors as usize * SECTOR_SIZE)), write)
                }
                Op::Flush => {
                    // Nothing else is with the device: the crate's waiting flush is safe here.
                    let result = self.dev.flush().map(|()| Vec::new()).map_err(|_| Error::DeviceError);
                    self.done.push(Completion { tag, result });
                    continue;
                }
            };
            let mut request =
                Box::new(Request { req: BlkReq::default(), resp: BlkResp::default(), data, shared, write, tag });
            // SAFETY: the request is boxed and kept in `in_flight` until `complete` takes it back
            // after the device used it; nothing in this process touches its buffers meanwhile; a
            // shared buffer stays mapped while a request uses it (`Request::buffer`).
            let token = unsafe {
                let data: *mut [u8] = request.buffer();
                let Request { req, resp, .. } = &mut *request;
                if write {
                    self.dev.write_blocks_nb(sector as usize, req, &*data, resp)
                } else {
                    self.dev.read_blocks_nb(sector as usize, req, &mut *data, resp)
                }
            };
            match token {
                Ok(token) => self.in_flight.push((token, request)),
                Err(_) => self.done.push(Completion { tag, result: Err(Error::DeviceError) }),
            }
        }
    }

    /// The device interrupted: collect what it finished, start what waits.
    pub fn on_interrupt(&mut self) {
        let _ = self.dev.ack_interrupt();
        while let Some(token) = self.dev.peek_used() {
            let Some(i) = self.in_flight.iter().position(|(t, _)| *t == token) else { break };
            let (_, mut request) = self.in_flight.swap_remove(i);
            let (write, tag) = (request.write, request.tag);
            // SAFETY: the same buffers as at submission, which the device has now finished with.
            let result = unsafe {
                let data: *mut [u8] = request.buffer();
                let Request { req, resp, .. } = &mut *request;
                if write {
                    self.dev.complete_write_blocks(token, req, &*data, resp)
                } else {
                    self.dev.complete_read_blocks(token, req, &mut *data, resp)
                }
            };
            let result = match result {
                Ok(()) if write || request.shared.is_some() => Ok(Vec::new()),
                Ok(()) => Ok(core::mem::take(&mut request.data)),
                Err(_) => Err(Error::DeviceError),
            };
            self.done.push(Completion { tag, result });
        }
        self.start_waiting();
    }

    /// Requests finished since the last call.
    pub fn completions(&mut self) -> Vec<Completion> {
        core::mem::take(&mut self.done)
    }

    /// Ends this driver as a crash of it would, then drives the device afresh: the device is
    /// reset (dropping its transport) before the requests' buffers and the queue's memory go,
    /// so it writes into neither afterwards; what was with it or waiting comes back failed with
    /// `DeviceError`, for the caller to answer. `None` if the device does not come back.
    pub fn restart(
        self,
        root: &mut PciRoot<Cam>,
        function: &Function,
        platform: Platform,
        (events, bits): (Notification, u64),
    ) -> (Option<Blk>, Vec<Completion>) {
        let Blk { dev, in_flight, waiting, mut done, _msi, .. } = self;
        drop(dev);
        for (_, request) in in_flight {
            done.push(Completion { tag: request.tag, result: Err(Error::DeviceError) });
        }
        for (tag, _) in waiting {
            done.push(Completion { tag, result: Err(Error::DeviceError) });
        }
        // The old vector goes back to the kernel (the reset device raises nothing meanwhile).
        let _ = _msi.0.delete();
        (Blk::new(root, function, platform, events, bits).ok(), done)
    }
}

/// Points virtqueue 0's interrupt at MSI-X entry `entry` (the driver crate leaves it unset, and
/// with MSI-X on, an unset queue never interrupts).
fn route_queue_to_entry(function: &Function, entry: u16) -> Result<(), Error> {
    let common = crate::virtio::common_config(function).ok_or(Error::DeviceError)?;
    crate::mmio::write16(common + QUEUE_SELECT, 0);
    crate::mmio::write16(common + QUEUE_MSIX_VECTOR, entry);
    if crate::mmio::read16(common + QUEUE_MSIX_VECTOR) != entry {
        return Err(Error::DeviceError);
    }
    Ok(())
}
