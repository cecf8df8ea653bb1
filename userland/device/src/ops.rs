//! The device protocol's operations, on the server's state: the registry, the drivers, and the
//! block requests whose replies wait for the disk.
//!
//! Every refusal names the device and the rule (`Cx::refusal` adds the service and the
//! caller's container). A block request is checked whole before anything reaches the disk:
//! range, size, alignment, rights. Its reply is kept (`Cx::defer`) and answered when the disk
//! finishes; if the session was revoked meanwhile, the answer is `Revoked` and the data (of a
//! read) is dropped.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::{
    Bar, Bdf, Class, Data, Described, Done, Entries, Entry, Functions, List, MAX_SHARED_BYTES, Opened, PciFunction,
    PciFunctions, Plugged, Rights, Server, Shared, Time, Written,
};
use vessel_protocol::{Answer, Cx, Deferred, Refusal};
use vessel_rt::abi::{Error, Rights as CapRights};
use vessel_rt::platform::{Dma, Platform};
use vessel_rt::proc::Proc;
use vessel_rt::server::Replies;

use crate::blk::{Blk, Op};
use crate::pci::Function;
use crate::registry::{Backend, Device, Registry};
use crate::rng::Rng;

/// Bytes per block of every block device.
pub const BLOCK: u64 = 512;
/// Bytes per page (shared buffers are whole pages).
const PAGE: u64 = 4096;

/// Where a waiting `read` takes its bytes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// The keyboard (`kbd0`, `console0`).
    Keyboard,
    /// The serial port (`serial0`).
    Serial,
}

/// A `read` waiting for input.
struct Reader {
    from: Input,
    handle: u64,
    max: usize,
    /// When it times out (`u64::MAX`: never), in `time::now_ns` nanoseconds.
    deadline: u64,
    /// The timeout it asked for.
    timeout: u64,
    reply: Deferred<Data>,
}

/// A block request with the disk; its reply waits.
enum Pending {
    Read(u64, Deferred<Data>),
    Done(u64, Deferred<Done>),
    /// A request on a shared buffer (named by its physical address), busy until it returns.
    Shared(u64, Deferred<Done>, u64),
}

/// A session's shared buffer: memory of the client's container, mapped here too, which the disk
/// reads and writes in place.
struct Buffer {
    /// The session it serves.
    handle: u64,
    dma: Dma,
    /// Requests with the disk that use it: it is freed only when none is.
    busy: u32,
    /// Its session closed, was revoked, or took another buffer: freed once not busy.
    retired: bool,
}

/// Everything the server keeps.
pub struct State {
    /// Devices, grants, sessions.
    pub registry: Registry,
    /// The block devices, by `Backend::Blk` number.
    pub disks: Vec<Blk>,
    /// The PCI functions found at start, and the name of the device driving each.
    pub functions: Vec<(Function, Option<String>)>,
    pending: BTreeMap<u64, Pending>,
    buffers: Vec<Buffer>,
    platform: Platform,
    rtc: Option<crate::rtc::Rtc>,
    /// The framebuffer console, once taken (`Err`: the kernel gave no usable framebuffer).
    fb: Option<Result<crate::fb::Fb, Error>>,
    /// The keyboard, and the reads waiting for it in arrival order.
    kbd: Option<crate::kbd::Kbd>,
    /// The serial port.
    serial: Option<crate::serial::Serial>,
    readers: alloc::collections::VecDeque<Reader>,
    next_tag: u64,
    proc: Option<Proc>,
    rng: Option<Rng>,
}

fn refuse<R: vessel_protocol::Reply, T>(cx: &Cx<'_, R>, (error, why): (Error, String)) -> Answer<T> {
    Answer::Refuse(cx.refusal(error, why))
}

impl State {
    /// The state around a registry and the drivers started.
    pub fn new(
        registry: Registry,
        disks: Vec<Blk>,
        functions: Vec<(Function, Option<String>)>,
        platform: Platform,
        (kbd, serial): (Option<crate::kbd::Kbd>, Option<crate::serial::Serial>),
    ) -> State {
        State {
            registry,
            disks,
            functions,
            pending: BTreeMap::new(),
            buffers: Vec::new(),
            platform,
            rtc: crate::rtc::Rtc::new(platform),
            fb: None,
            kbd,
            serial,
            readers: alloc::collections::VecDeque::new(),
            next_tag: 1,
            proc: Proc::get(),
            rng: Rng::from_hardware(),
        }
    }

    /// The disks finished something: answer the kept replies.
    pub fn on_disk_interrupt(&mut self) {
        let mut finished = Vec::new();
        for disk in &mut self.disks {
            disk.on_interrupt();
            finished.extend(disk.completions());
        }
        for done in finished {
            let Some(pending) = self.pending.remove(&done.tag) else { continue };
            let handle = match &pending {
                Pending::Read(h, _) | Pending::Done(h, _) | Pending::Shared(h, _, _) => *h,
            };
            let revoked = self.registry.revoked_reason(handle);
            let refusal = |e: Error, why: String| Refusal::new(e, format!("device: {why}"));
            let result = match (revoked, done.result) {
                (Some(why), _) => Err(refusal(Error::Revoked, why)),
                (None, Err(e)) => Err(refusal(e, String::from("the disk failed the request"))),
                (None, Ok(data)) => Ok(data),
            };
            // A caller that died meanwhile is nobody's loss.
            let _ = match pending {
                Pending::Read(_, reply) => reply.answer(&Replies, result.map(|data| Data { data })),
                Pending::Done(_, reply) => reply.answer(&Replies, result.map(|_| Done)),
                Pending::Shared(_, reply, physical) => {
                    if let Some(b) = self.buffers.iter_mut().find(|b| b.dma.physical == physical) {
                        b.busy -= 1;
                    }
                    reply.answer(&Replies, result.map(|_| Done))
                }
            };
        }
        self.free_buffers();
    }

    /// The keyboard interrupted: take its keys and answer waiting reads, oldest first.
    pub fn on_keyboard_interrupt(&mut self) {
        if let Some(kbd) = &mut self.kbd {
            kbd.on_interrupt();
        }
        self.answer_readers(vessel_rt::time::now_ns());
    }

    /// The serial port interrupted: move its bytes, answer waiting reads.
    pub fn on_serial_interrupt(&mut self) {
        if let Some(serial) = &mut self.serial {
            serial.on_interrupt();
        }
        self.answer_readers(vessel_rt::time::now_ns());
    }

    /// Up to `max` bytes of input from `from`, if some wait.
    fn take_input(&mut self, from: Input, max: usize) -> Option<Vec<u8>> {
        match from {
            Input::Keyboard => self.kbd.as_mut().filter(|k| k.has_input()).map(|k| k.take(max)),
            Input::Serial => self.serial.as_mut().filter(|s| s.has_input()).map(|s| s.take(max)),
        }
    }

    /// Answers the waiting reads that input can serve, and those whose time is up.
    pub fn answer_readers(&mut self, now: u64) {
        let mut waiting = alloc::collections::VecDeque::new();
        while let Some(reader) = self.readers.pop_front() {
            let revoked = self.registry.revoked_reason(reader.handle);
            // Earlier readers of the same source still waiting keep it for themselves.
            let blocked = waiting.iter().any(|w: &Reader| w.from == reader.from);
            let input = if revoked.is_none() && !blocked { self.take_input(reader.from, reader.max) } else { None };
            let result = match (input, revoked) {
                (_, Some(why)) => Err(Refusal::new(Error::Revoked, format!("device: {why}"))),
                (Some(data), None) => Ok(Data { data }),
                _ if now >= reader.deadline => {
                    Err(Refusal::new(Error::TimedOut, format!("device: no input after {} ns", reader.timeout)))
                }
                _ => {
                    waiting.push_back(reader);
                    continue;
                }
            };
            let _ = reader.reply.answer(&Replies, result);
        }
        self.readers = waiting;
    }

    /// Nanoseconds until the first waiting read times out, if one has a timeout.
    pub fn next_timeout(&self, now: u64) -> Option<u64> {
        self.readers.iter().map(|r| r.deadline).filter(|&d| d != u64::MAX).min().map(|d| d.saturating_sub(now).max(1))
    }

    /// Retires the buffers whose sessions no longer work, and frees the retired ones the disk
    /// no longer uses (so it never writes into memory that went back to the system).
    fn free_buffers(&mut self) {
        for b in &mut self.buffers {
            if self.registry.revoked_reason(b.handle).is_some() {
                b.retired = true;
            }
        }
        self.buffers.retain(|b| {
            let done = b.retired && b.busy == 0;
            if done {
                crate::hal::unregister(b.dma);
                b.dma.free();
            }
            !done
        });
    }

    /// Containers that hold grants but no longer exist lose them (asked of `proc`).
    fn forget_dead_containers(&mut self) {
        let Some(proc) = self.proc else { return };
        for container in self.registry.grantees() {
            if proc.info(container).is_err_and(|r| r.error == Error::NoSuchContainer) {
                self.registry.forget_container(container);
            }
        }
        self.free_buffers();
    }

    /// Whether `child` is a child container of `parent` (asked of `proc`).
    fn is_child(&self, parent: u64, child: u64) -> bool {
        self.proc.and_then(|p| p.info(child).ok()).is_some_and(|info| info.parent == parent && child != parent)
    }

    /// The registry entry of device `index` as `container` sees it.
    fn entry(&self, container: u64, index: usize) -> Option<Entry> {
        let device = &self.registry.devices[index];
        let usage = self.registry.usage(container, index)?;
        let holder = device.grants.iter().find(|g| g.exclusive).map_or(0, |g| g.to);
        let pci = match device.backend {
            Backend::Blk(n) => {
                self.disks.get(n).map(|d| d.at).map(|at| Bdf { bus: at.bus, device: at.device, function: at.function })
            }
            _ => None,
        };
        Some(Entry {
            name: device.name.clone(),
            class: device.class,
            rights: usage.rights,
            access: usage.access,
            holder,
            blocks: device.blocks,
            block_size: device.block_size,
            pci,
        })
    }

    /// The open session `handle` of the caller, with `needs` rights, on a device of a class
    /// `fits` accepts: (device index, backend).
    fn session<R: vessel_protocol::Reply>(
        &self,
        cx: &Cx<'_, R>,
        handle: u64,
        needs: Rights,
        fits: impl Fn(Class) -> bool,
    ) -> Result<(usize, Backend), (Error, String)> {
        let session = self.registry.session(cx.caller().container, handle)?;
        let device = &self.registry.devices[session.device];
        if !fits(device.class) {
            return Err((Error::WrongObject, format!("{} is a {} device", device.name, device.class.as_str())));
        }
        if !session.rights.contains(needs) {
            return Err((
                Error::MissingRights,
                format!("{} was opened {}, {} needed", device.name, session.rights, needs),
            ));
        }
        Ok((session.device, device.backend))
    }

    /// Hands a checked request to the disk behind device `index`; returns its tag.
    fn submit(&mut self, index: usize, op: Op) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        if let Backend::Blk(n) = self.registry.devices[index].backend {
            self.disks[n].submit(tag, op);
        }
        tag
    }
}

impl Server for State {
    fn list(&mut self, cx: &mut Cx<'_, List>) -> Answer<List> {
        let container = cx.caller().container;
        let entries = (0..self.registry.devices.len()).filter_map(|i| self.entry(container, i)).collect();
        Answer::Reply(List { entries: Entries::new(entries) })
    }

    fn info(&mut self, cx: &mut Cx<'_, Described>, name: &str) -> Answer<Described> {
        let container = cx.caller().container;
        match self.registry.find(container, name).and_then(|(i, _)| self.entry(container, i)) {
            Some(entry) => Answer::Reply(Described { entry }),
            None => refuse(cx, (Error::NotFound, format!("no device {name:?} in this container"))),
        }
    }

    fn open(&mut self, cx: &mut Cx<'_, Opened>, name: &str, rights: Rights) -> Answer<Opened> {
        let container = cx.caller().container;
        if rights.is_empty() {
            return refuse(cx, (Error::InvalidArgument, format!("{name}: no rights asked")));
        }
        self.forget_dead_containers();
        let Some((index, _)) = self.registry.find(container, name) else {
            return refuse(cx, (Error::NotFound, format!("no device {name:?} in this container")));
        };
        match self.registry.open(container, index, rights) {
            Ok(handle) => {
                let d = &self.registry.devices[index];
                Answer::Reply(Opened { handle, blocks: d.blocks, block_size: d.block_size })
            }
            Err(e) => refuse(cx, e),
        }
    }

    fn close(&mut self, cx: &mut Cx<'_, Done>, handle: u64) -> Answer<Done> {
        match self.registry.close(cx.caller().container, handle) {
            Ok(()) => {
                self.free_buffers();
                Answer::Reply(Done)
            }
            Err(e) => refuse(cx, e),
        }
    }

    fn read_blocks(&mut self, cx: &mut Cx<'_, Data>, handle: u64, block: u64, count: u64) -> Answer<Data> {
        let index = match self.session(cx, handle, Rights::READ, |c| c == Class::Block) {
            Ok((index, _)) => index,
            Err(e) => return refuse(cx, e),
        };
        let op = Op::Read { sector: block, sectors: count };
        self.start(cx, index, handle, block, count, op, Pending::Read)
    }

    fn write_blocks(&mut self, cx: &mut Cx<'_, Done>, handle: u64, block: u64, data: &[u8]) -> Answer<Done> {
        let index = match self.session(cx, handle, Rights::WRITE, |c| c == Class::Block) {
            Ok((index, _)) => index,
            Err(e) => return refuse(cx, e),
        };
        if data.is_empty() || !(data.len() as u64).is_multiple_of(BLOCK) {
            return refuse(
                cx,
                (Error::InvalidArgument, format!("{} bytes is not a whole number of {BLOCK}-byte blocks", data.len())),
            );
        }
        let count = data.len() as u64 / BLOCK;
        let op = Op::Write { sector: block, data: data.to_vec() };
        self.start(cx, index, handle, block, count, op, Pending::Done)
    }

    fn flush(&mut self, cx: &mut Cx<'_, Done>, handle: u64) -> Answer<Done> {
        let (index, backend) = match self.session(cx, handle, Rights::WRITE, |c| c == Class::Block) {
            Ok(found) => found,
            Err(e) => return refuse(cx, e),
        };
        if !matches!(backend, Backend::Blk(_)) {
            return refuse(
                cx,
                (Error::WrongObject, format!("{} is not a block device", self.registry.devices[index].name)),
            );
        }
        let reply = match cx.defer() {
            Ok(reply) => reply,
            Err(refusal) => return Answer::Refuse(refusal),
        };
        let tag = self.submit(index, Op::Flush);
        self.pending.insert(tag, Pending::Done(handle, reply));
        Answer::Later
    }

    fn read(&mut self, cx: &mut Cx<'_, Data>, handle: u64, max: u64, timeout_ns: u64) -> Answer<Data> {
        let backend = match self.session(cx, handle, Rights::READ, Class::is_byte_device) {
            Ok((_, backend)) => backend,
            Err(e) => return refuse(cx, e),
        };
        if max == 0 {
            return refuse(cx, (Error::InvalidArgument, String::from("a read of 0 bytes")));
        }
        let len = (max as usize).min(vessel_device_protocol::MAX_READ);
        match backend {
            Backend::Null => Answer::Reply(Data { data: Vec::new() }),
            Backend::Zero => Answer::Reply(Data { data: alloc::vec![0; len] }),
            Backend::Random => match &mut self.rng {
                Some(rng) => {
                    let mut data = alloc::vec![0; len];
                    rng.fill(&mut data);
                    Answer::Reply(Data { data })
                }
                None => refuse(cx, (Error::DeviceError, String::from("this CPU has no hardware random generator"))),
            },
            Backend::Console | Backend::Keyboard | Backend::Serial => {
                let from = if backend == Backend::Serial { Input::Serial } else { Input::Keyboard };
                let present = match from {
                    Input::Keyboard => self.kbd.is_some(),
                    Input::Serial => self.serial.is_some(),
                };
                if !present {
                    return refuse(cx, (Error::DeviceError, String::from("the device did not answer at start")));
                }
                if !self.readers.iter().any(|r| r.from == from)
                    && let Some(data) = self.take_input(from, len)
                {
                    return Answer::Reply(Data { data });
                }
                if timeout_ns == 0 {
                    return refuse(cx, (Error::WouldBlock, String::from("no input")));
                }
                let reply = match cx.defer() {
                    Ok(reply) => reply,
                    Err(refusal) => return Answer::Refuse(refusal),
                };
                let deadline = vessel_rt::time::now_ns().saturating_add(timeout_ns);
                self.readers.push_back(Reader { from, handle, max: len, deadline, timeout: timeout_ns, reply });
                Answer::Later
            }
            Backend::Blk(_) | Backend::Clock => {
                refuse(cx, (Error::WrongObject, String::from("a block device reads blocks; a clock tells the time")))
            }
        }
    }

    fn write(&mut self, cx: &mut Cx<'_, Written>, handle: u64, data: &[u8]) -> Answer<Written> {
        match self.session(cx, handle, Rights::WRITE, |c| c.is_byte_device() && c != Class::Keyboard) {
            Ok((_, Backend::Serial)) => match &mut self.serial {
                Some(serial) => Answer::Reply(Written { count: serial.write(data) as u64 }),
                None => refuse(cx, (Error::DeviceError, String::from("the serial port did not answer at start"))),
            },
            Ok((_, Backend::Console)) => {
                let platform = self.platform;
                let taken = self.fb.get_or_insert_with(|| {
                    let fb = crate::fb::Fb::take(platform);
                    if let Ok(fb) = &fb {
                        let (w, h, columns, rows) = fb.geometry();
                        vessel_rt::println!("device: console0: the framebuffer ({w}x{h}, {columns}x{rows} cells)");
                    }
                    fb
                });
                match taken {
                    Ok(fb) => {
                        fb.write(data);
                        Answer::Reply(Written { count: data.len() as u64 })
                    }
                    Err(e) => refuse(cx, (*e, String::from("no framebuffer this console can draw on"))),
                }
            }
            // null, zero and random swallow what they are given.
            Ok(_) => Answer::Reply(Written { count: data.len() as u64 }),
            Err(e) => refuse(cx, e),
        }
    }

    fn grant(
        &mut self,
        cx: &mut Cx<'_, Done>,
        container: u64,
        name: &str,
        rights: Rights,
        exclusive: bool,
    ) -> Answer<Done> {
        let from = cx.caller().container;
        if rights.is_empty() {
            return refuse(cx, (Error::InvalidArgument, format!("{name}: a grant of no rights")));
        }
        if !self.is_child(from, container) {
            return refuse(
                cx,
                (Error::AccessDenied, format!("container {container:#x} is not a child of this container")),
            );
        }
        self.forget_dead_containers();
        let Some((index, _)) = self.registry.find(from, name) else {
            return refuse(cx, (Error::NotFound, format!("no device {name:?} in this container")));
        };
        match self.registry.grant(from, container, index, rights, exclusive) {
            Ok(()) => Answer::Reply(Done),
            Err(e) => refuse(cx, e),
        }
    }

    fn revoke(&mut self, cx: &mut Cx<'_, Done>, container: u64, name: &str) -> Answer<Done> {
        let from = cx.caller().container;
        let Some((index, _)) = self.registry.find(from, name) else {
            return refuse(cx, (Error::NotFound, format!("no device {name:?} in this container")));
        };
        match self.registry.revoke(from, container, index) {
            Ok(_) => {
                self.free_buffers();
                Answer::Reply(Done)
            }
            Err(e) => refuse(cx, e),
        }
    }

    fn plug(&mut self, cx: &mut Cx<'_, Plugged>, container: u64, kind: &str) -> Answer<Plugged> {
        let caller = cx.caller().container;
        let target = if container == 0 { caller } else { container };
        if target != caller && !self.is_child(caller, target) {
            return refuse(cx, (Error::AccessDenied, format!("container {target:#x} is neither this one nor a child")));
        }
        let (class, backend) = match kind {
            "null" => (Class::Null, Backend::Null),
            "zero" => (Class::Zero, Backend::Zero),
            "random" => (Class::Random, Backend::Random),
            _ => {
                return refuse(
                    cx,
                    (Error::InvalidArgument, format!("no virtual device kind {kind:?} (null, zero, random)")),
                );
            }
        };
        let name = self.registry.next_name(kind);
        let device = Device {
            name: name.clone(),
            class,
            backend,
            plugged_for: Some(target),
            grants: Vec::new(),
            blocks: 0,
            block_size: 0,
        };
        self.registry.add(device);
        Answer::Reply(Plugged { name })
    }

    fn pci(&mut self, cx: &mut Cx<'_, Functions>) -> Answer<Functions> {
        if cx.caller().container != self.registry.root {
            return refuse(cx, (Error::AccessDenied, String::from("only the root container lists PCI functions")));
        }
        let functions = self.functions.iter().map(|(f, driver)| describe(f, driver.clone())).collect();
        Answer::Reply(Functions { functions: PciFunctions::new(functions) })
    }

    fn share(&mut self, cx: &mut Cx<'_, Shared>, handle: u64, bytes: u64) -> Answer<Shared> {
        if let Err(e) = self.session(cx, handle, Rights::NONE, |c| c == Class::Block) {
            return refuse(cx, e);
        }
        if bytes == 0 || !bytes.is_multiple_of(PAGE) || bytes > MAX_SHARED_BYTES {
            return refuse(
                cx,
                (
                    Error::InvalidArgument,
                    format!("a shared buffer of {bytes} bytes; whole pages up to {MAX_SHARED_BYTES} bytes"),
                ),
            );
        }
        let container = cx.caller().container;
        let dma = match self.platform.dma_for(bytes / PAGE, container) {
            Ok(dma) => dma,
            Err(e) => return refuse(cx, (e, format!("no shared buffer of {bytes} bytes for this container"))),
        };
        // The client's copy: no MANAGE (it cannot learn where the memory is), no DUPLICATE.
        let lent = CapRights::READ | CapRights::WRITE | CapRights::MAP | CapRights::TRANSFER;
        let buffer = match dma.memory.0.duplicate(lent) {
            Ok(cap) => cap.0,
            Err(e) => {
                dma.free();
                return refuse(cx, (e, String::from("cannot copy the shared buffer's capability")));
            }
        };
        for old in self.buffers.iter_mut().filter(|b| b.handle == handle) {
            old.retired = true;
        }
        crate::hal::register(dma);
        self.buffers.push(Buffer { handle, dma, busy: 0, retired: false });
        self.free_buffers();
        Answer::Reply(Shared { buffer })
    }

    fn read_shared(&mut self, cx: &mut Cx<'_, Done>, handle: u64, block: u64, count: u64, offset: u64) -> Answer<Done> {
        self.shared_io(cx, handle, block, count, offset, false)
    }

    fn write_shared(
        &mut self,
        cx: &mut Cx<'_, Done>,
        handle: u64,
        block: u64,
        count: u64,
        offset: u64,
    ) -> Answer<Done> {
        self.shared_io(cx, handle, block, count, offset, true)
    }

    fn time(&mut self, cx: &mut Cx<'_, Time>, handle: u64) -> Answer<Time> {
        if let Err(e) = self.session(cx, handle, Rights::READ, |c| c == Class::Clock) {
            return refuse(cx, e);
        }
        match self.rtc.as_ref().map(crate::rtc::Rtc::unix_seconds) {
            Some(Ok(unix_seconds)) => Answer::Reply(Time { unix_seconds }),
            Some(Err(e)) => refuse(cx, (e, String::from("the clock holds no valid date"))),
            None => refuse(cx, (Error::DeviceError, String::from("no clock answers"))),
        }
    }
}

impl State {
    /// `read_shared` and `write_shared`: checked whole (session, rights, the range on the disk
    /// and in the buffer), then handed to the disk with the buffer marked busy.
    fn shared_io(
        &mut self,
        cx: &mut Cx<'_, Done>,
        handle: u64,
        block: u64,
        count: u64,
        offset: u64,
        write: bool,
    ) -> Answer<Done> {
        let needs = if write { Rights::WRITE } else { Rights::READ };
        let index = match self.session(cx, handle, needs, |c| c == Class::Block) {
            Ok((index, _)) => index,
            Err(e) => return refuse(cx, e),
        };
        let Some(at) = self.buffers.iter().position(|b| b.handle == handle && !b.retired) else {
            return refuse(
                cx,
                (Error::InvalidArgument, String::from("this session has no shared buffer (share first)")),
            );
        };
        let size = self.buffers[at].dma.pages * PAGE;
        let fits = offset.is_multiple_of(BLOCK)
            && count.checked_mul(BLOCK).and_then(|len| len.checked_add(offset)).is_some_and(|end| end <= size);
        if count == 0 || !fits {
            return refuse(
                cx,
                (
                    Error::InvalidArgument,
                    format!("{count} blocks at offset {offset} do not fit the {size}-byte shared buffer"),
                ),
            );
        }
        // The range on the disk, as for a request carrying its data.
        if let Err(e) = self.disk_range_check(index, block, count, write) {
            return refuse(cx, e);
        }
        let reply = match cx.defer() {
            Ok(reply) => reply,
            Err(refusal) => return Answer::Refuse(refusal),
        };
        let buffer = &mut self.buffers[at];
        buffer.busy += 1;
        let (address, physical) = (buffer.dma.address + offset, buffer.dma.physical);
        let tag = self.submit(index, Op::Shared { sector: block, sectors: count, address, write });
        self.pending.insert(tag, Pending::Shared(handle, reply, physical));
        Answer::Later
    }

    /// Checks and starts a block request, keeping its reply.
    #[allow(clippy::too_many_arguments)]
    fn start<R: vessel_protocol::Reply>(
        &mut self,
        cx: &mut Cx<'_, R>,
        index: usize,
        handle: u64,
        block: u64,
        count: u64,
        op: Op,
        pending: fn(u64, Deferred<R>) -> Pending,
    ) -> Answer<R> {
        // Checked before the reply is kept, so a refusal goes back at once.
        let check = self.block_request_check(index, block, count, &op);
        if let Err(e) = check {
            return refuse(cx, e);
        }
        let reply = match cx.defer() {
            Ok(reply) => reply,
            Err(refusal) => return Answer::Refuse(refusal),
        };
        let tag = self.submit(index, op);
        self.pending.insert(tag, pending(handle, reply));
        Answer::Later
    }

    /// Whether a block request carrying its data in the message may go to the disk: size (one
    /// message), then `disk_range_check`.
    fn block_request_check(&self, index: usize, block: u64, count: u64, op: &Op) -> Result<(), (Error, String)> {
        let limit = vessel_device_protocol::max_blocks_per_request(BLOCK);
        if count == 0 || count > limit {
            return Err((Error::TooLarge, format!("{count} blocks asked; 1 to {limit} per request")));
        }
        self.disk_range_check(index, block, count, matches!(op, Op::Write { .. }))
    }

    /// Whether `count` blocks at `block` lie on the disk behind device `index`, and it takes
    /// writes if `write`.
    fn disk_range_check(&self, index: usize, block: u64, count: u64, write: bool) -> Result<(), (Error, String)> {
        let device = &self.registry.devices[index];
        let Backend::Blk(n) = device.backend else {
            return Err((Error::WrongObject, format!("{} is not a block device", device.name)));
        };
        if block.checked_add(count).is_none_or(|end| end > device.blocks) {
            return Err((
                Error::InvalidArgument,
                format!(
                    "blocks {block}..{} are past the end of {} ({} blocks)",
                    block.saturating_add(count),
                    device.name,
                    device.blocks
                ),
            ));
        }
        if write && self.disks[n].readonly {
            return Err((Error::AccessDenied, format!("{} is read-only", device.name)));
        }
        Ok(())
    }
}

/// The protocol's description of a PCI function.
fn describe(f: &Function, driver: Option<String>) -> PciFunction {
    use virtio_drivers::transport::pci::bus::{BarInfo, MemoryBarType};
    let mut bars = [Bar::None; 6];
    for (slot, bar) in f.bars.iter().enumerate() {
        bars[slot] = match bar {
            None => Bar::None,
            Some(BarInfo::IO { address, size }) => Bar::Io { port: *address, size: *size },
            Some(BarInfo::Memory { address_type: MemoryBarType::Width64, prefetchable, address, size }) => {
                Bar::Mem64 { address: *address, size: *size, prefetchable: *prefetchable }
            }
            Some(BarInfo::Memory { prefetchable, address, size, .. }) => {
                Bar::Mem32 { address: *address as u32, size: *size as u32, prefetchable: *prefetchable }
            }
        };
    }
    PciFunction {
        bdf: Bdf { bus: f.at.bus, device: f.at.device, function: f.at.function },
        vendor: f.info.vendor_id,
        device: f.info.device_id,
        class: f.info.class,
        subclass: f.info.subclass,
        prog_if: f.info.prog_if,
        revision: f.info.revision,
        irq_line: f.irq_line,
        bars,
        capabilities: f.capabilities.iter().copied().take(vessel_device_protocol::MAX_CAPABILITIES).collect(),
        driver,
    }
}
