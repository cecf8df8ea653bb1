//! A device server in memory, for the protocol tests: a few devices (a block device, a serial
//! port, a keyboard, a clock, null, zero, random), sessions keyed by container with
//! generations, grants with exclusive holders and recursive revocation, plug, and a PCI list.
//! Containers: [`ROOT`] with children [`CHILD`] and [`OTHER`]; [`GRANDCHILD`] below [`CHILD`].
//! A `read` that must wait is deferred; each idle step delivers one byte of the input queued
//! with [`Devices::type_in`] and times out the waiters whose deadline passed.

use std::collections::VecDeque;

use vessel_protocol::testing::Mailbox;
use vessel_protocol::{Answer, Cx, Deferred, Error, Refusal, Reply};

use crate::*;

/// The root container.
pub const ROOT: u64 = 1;
/// A child of the root.
pub const CHILD: u64 = 7;
/// Another child of the root.
pub const OTHER: u64 = 8;
/// A child of [`CHILD`].
pub const GRANDCHILD: u64 = 9;
/// Bytes per block of `blk0`.
pub const BLOCK_SIZE: u64 = 512;
/// Blocks of `blk0`.
pub const BLOCKS: u64 = 16;
/// Bytes a serial port takes in one `write` (its transmit buffer).
pub const SERIAL_BUFFER: usize = 8;
/// Sessions the server holds at once.
pub const MAX_SESSIONS: usize = 8;
/// Devices the registry holds at once.
pub const MAX_DEVICES: usize = 16;
/// Nanoseconds per idle step.
pub const TICK_NS: u64 = 1_000_000;
/// What `rtc0` reads.
pub const NOW: u64 = 1_780_000_000;

fn parent(container: u64) -> Option<u64> {
    match container {
        CHILD | OTHER => Some(ROOT),
        GRANDCHILD => Some(CHILD),
        _ => None,
    }
}

/// `container` and its ancestors, itself first.
fn ancestry(container: u64) -> Vec<u64> {
    std::iter::successors(Some(container), |&c| parent(c)).collect()
}

struct Grant {
    to: u64,
    from: u64,
    rights: Rights,
    exclusive: bool,
}

/// One device.
pub struct Device {
    name: String,
    class: Class,
    pci: Option<Bdf>,
    plugged_for: Option<u64>,
    grants: Vec<Grant>,
    /// The blocks of a block device.
    pub store: Vec<u8>,
    /// Input that has arrived.
    input: VecDeque<u8>,
    /// Input still to arrive, a byte per idle step.
    arriving: VecDeque<u8>,
    /// What was written.
    pub output: Vec<u8>,
    /// Flushes done.
    pub flushes: usize,
}

impl Device {
    fn new(name: &str, class: Class, pci: Option<Bdf>) -> Device {
        let store = if class == Class::Block { vec![0; (BLOCKS * BLOCK_SIZE) as usize] } else { Vec::new() };
        Device {
            name: name.into(),
            class,
            pci,
            plugged_for: None,
            grants: Vec::new(),
            store,
            input: VecDeque::new(),
            arriving: VecDeque::new(),
            output: Vec::new(),
            flushes: 0,
        }
    }
}

struct Session {
    container: u64,
    device: usize,
    rights: Rights,
    generation: u32,
    revoked: Option<String>,
}

struct Waiter {
    device: usize,
    max: usize,
    deadline: Option<u64>,
    timed_out: Refusal,
    reply: Deferred<Data>,
}

/// The server.
pub struct Devices {
    /// The registry, by index.
    pub devices: Vec<Device>,
    sessions: Vec<Option<Session>>,
    next_generation: u32,
    waiters: Vec<Waiter>,
    /// Idle steps so far.
    pub now: u64,
    /// What `pci` answers.
    pub functions: Vec<PciFunction>,
    random: u64,
    /// Shared buffers: (session handle, the capability handle given out, the bytes).
    pub shared: Vec<(u64, u32, Vec<u8>)>,
    /// The device index of the console shown.
    active_console: usize,
}

impl Devices {
    /// The machine: `blk0` (PCI 00:03.0), `serial0`, `kbd0`, `rtc0`, `null0`, `zero0`, `random0`.
    pub fn new() -> Devices {
        let blk = Bdf { bus: 0, device: 3, function: 0 };
        let devices = vec![
            Device::new("blk0", Class::Block, Some(blk)),
            Device::new("serial0", Class::Serial, None),
            Device::new("kbd0", Class::Keyboard, None),
            Device::new("rtc0", Class::Clock, None),
            Device::new("null0", Class::Null, None),
            Device::new("zero0", Class::Zero, None),
            Device::new("random0", Class::Random, None),
        ];
        let virtio = PciFunction {
            bdf: blk,
            vendor: 0x1af4,
            device: 0x1001,
            class: 1,
            irq_line: 11,
            bars: [
                Bar::Io { port: 0xc000, size: 64 },
                Bar::Mem32 { address: 0xfebd_1000, size: 4096, prefetchable: false },
                Bar::None,
                Bar::None,
                Bar::Mem64 { address: 0xfe00_0000, size: 1 << 14, prefetchable: true },
                Bar::None,
            ],
            capabilities: vec![0x11, 0x09, 0x09],
            driver: Some("virtio-blk".into()),
            ..PciFunction::default()
        };
        let host = PciFunction { vendor: 0x8086, device: 0x29c0, class: 6, ..PciFunction::default() };
        Devices {
            devices,
            sessions: Vec::new(),
            next_generation: 1,
            waiters: Vec::new(),
            now: 0,
            functions: vec![host, virtio],
            random: 0x2545_f491_4f6c_dd1d,
            shared: Vec::new(),
            active_console: usize::MAX,
        }
    }

    /// Queues `text` as input of device `name`, arriving a byte per idle step.
    pub fn type_in(&mut self, name: &str, text: &str) {
        if let Some(device) = self.devices.iter_mut().find(|d| d.name == name) {
            device.arriving.extend(text.bytes());
        }
    }

    /// The device named `name`.
    pub fn device(&self, name: &str) -> &Device {
        self.devices.iter().find(|d| d.name == name).unwrap()
    }

    /// Sessions open (revoked ones included).
    pub fn open_sessions(&self) -> usize {
        self.sessions.iter().flatten().count()
    }

    /// One idle step: a byte of input arrives on each device, waiters with input are answered,
    /// waiters whose deadline passed are refused.
    pub fn idle(&mut self, mailbox: &Mailbox) {
        self.now += 1;
        for device in &mut self.devices {
            if let Some(byte) = device.arriving.pop_front() {
                device.input.push_back(byte);
            }
        }
        for waiter in std::mem::take(&mut self.waiters) {
            let input = &mut self.devices[waiter.device].input;
            if !input.is_empty() {
                let n = waiter.max.min(input.len());
                let data = input.drain(..n).collect();
                waiter.reply.answer(mailbox, Ok(Data { data })).unwrap();
            } else if waiter.deadline.is_some_and(|d| self.now >= d) {
                waiter.reply.answer(mailbox, Err(waiter.timed_out)).unwrap();
            } else {
                self.waiters.push(waiter);
            }
        }
    }

    /// How `container` may use device `index`: its rights and access.
    fn usage(&self, container: u64, index: usize) -> Option<(Rights, Access)> {
        let device = self.devices.get(index)?;
        match device.plugged_for {
            Some(owner) if owner == container => Some((Rights::READ_WRITE, Access::Owner)),
            None if container == ROOT => Some((Rights::READ_WRITE, Access::Owner)),
            _ => device
                .grants
                .iter()
                .find(|g| g.to == container)
                .map(|g| (g.rights, if g.exclusive { Access::Exclusive } else { Access::Shared })),
        }
    }

    /// The container holding device `index` exclusively, or 0.
    fn holder(&self, index: usize) -> u64 {
        self.devices[index].grants.iter().find(|g| g.exclusive).map_or(0, |g| g.to)
    }

    /// The exclusive holder keeping `container` out of device `index` (it is not at or below it).
    fn kept_out_by(&self, container: u64, index: usize) -> Option<u64> {
        let holder = self.holder(index);
        (holder != 0 && !ancestry(container).contains(&holder)).then_some(holder)
    }

    fn entry(&self, container: u64, index: usize) -> Option<Entry> {
        let (rights, access) = self.usage(container, index)?;
        let device = &self.devices[index];
        let (blocks, block_size) = if device.class == Class::Block { (BLOCKS, BLOCK_SIZE) } else { (0, 0) };
        let (name, class, holder, pci) = (device.name.clone(), device.class, self.holder(index), device.pci);
        Some(Entry { name, class, rights, access, holder, blocks, block_size, pci })
    }

    /// The device named `name` that the caller may use.
    fn find<R: Reply>(&self, cx: &Cx<'_, R>, name: &str) -> Result<usize, Refusal> {
        if !valid_name(name) {
            return Err(cx.refusal(Error::InvalidArgument, format!("{name:?} is not a device name")));
        }
        let container = cx.caller().container;
        (0..self.devices.len())
            .find(|&i| self.devices[i].name == name && self.usage(container, i).is_some())
            .ok_or_else(|| cx.refusal(Error::NotFound, format!("no device {name}")))
    }

    /// The device of the caller's session `handle`, if it may do `need` on a device of a class
    /// `fits` accepts.
    fn session<R: Reply>(
        &self,
        cx: &Cx<'_, R>,
        handle: u64,
        need: Rights,
        fits: fn(Class) -> bool,
    ) -> Result<usize, Refusal> {
        let container = cx.caller().container;
        let session = usize::try_from(handle >> 32)
            .ok()
            .and_then(|slot| self.sessions.get(slot))
            .and_then(Option::as_ref)
            .filter(|s| s.generation == handle as u32 && s.container == container)
            .ok_or_else(|| {
                cx.refusal(Error::InvalidHandle, format!("handle {handle:#x} names no open device of this container"))
            })?;
        if let Some(why) = &session.revoked {
            return Err(cx.refusal(Error::Revoked, why));
        }
        let device = &self.devices[session.device];
        if !fits(device.class) {
            return Err(cx.refusal(Error::WrongObject, format!("{} is a {} device", device.name, device.class)));
        }
        if !session.rights.contains(need) {
            return Err(
                cx.refusal(Error::MissingRights, format!("{} is open {}, {need} needed", device.name, session.rights))
            );
        }
        Ok(session.device)
    }

    /// The byte range of `count` blocks from `block`, if on the device and small enough.
    fn blocks<R: Reply>(&self, cx: &Cx<'_, R>, block: u64, count: u64) -> Result<std::ops::Range<usize>, Refusal> {
        if count == 0 {
            return Err(cx.refusal(Error::InvalidArgument, "no blocks"));
        }
        if count > max_blocks_per_request(BLOCK_SIZE) {
            let why = format!("{count} blocks, at most {} per request", max_blocks_per_request(BLOCK_SIZE));
            return Err(cx.refusal(Error::TooLarge, why));
        }
        match block.checked_add(count) {
            Some(end) if end <= BLOCKS => Ok((block * BLOCK_SIZE) as usize..(end * BLOCK_SIZE) as usize),
            _ => Err(cx.refusal(
                Error::InvalidArgument,
                format!("{count} blocks from {block} pass the end ({BLOCKS} blocks)"),
            )),
        }
    }

    fn child<R: Reply>(cx: &Cx<'_, R>, container: u64) -> Result<(), Refusal> {
        match parent(container) == Some(cx.caller().container) {
            true => Ok(()),
            false => Err(cx
                .refusal(Error::NoSuchContainer, format!("container {container:#x} is not a child of this container"))),
        }
    }

    fn next_random(&mut self) -> u8 {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random as u8
    }
}

fn answer<R>(result: Result<R, Refusal>) -> Answer<R> {
    match result {
        Ok(reply) => Answer::Reply(reply),
        Err(refusal) => Answer::Refuse(refusal),
    }
}

/// The first capability handle `share` gives out.
pub const FIRST_BUFFER_CAP: u32 = 0x500;

impl Devices {
    /// `read_shared` and `write_shared`.
    fn shared_io(
        &mut self,
        cx: &Cx<'_, Done>,
        handle: u64,
        block: u64,
        count: u64,
        offset: u64,
        write: bool,
    ) -> Answer<Done> {
        let need = if write { Rights::WRITE } else { Rights::READ };
        let device = match self.session(cx, handle, need, |c| c == Class::Block) {
            Ok(device) => device,
            Err(refusal) => return refusal.into(),
        };
        let Some(at) = self.shared.iter().position(|s| s.0 == handle) else {
            return cx.refusal(Error::InvalidArgument, "no shared buffer").into();
        };
        let size = self.shared[at].2.len() as u64;
        let end = count.checked_mul(BLOCK_SIZE).and_then(|n| n.checked_add(offset));
        if count == 0 || !offset.is_multiple_of(BLOCK_SIZE) || end.is_none_or(|end| end > size) {
            return cx.refusal(Error::InvalidArgument, format!("{count} blocks at {offset} do not fit")).into();
        }
        if block.checked_add(count).is_none_or(|end| end > BLOCKS) {
            return cx.refusal(Error::InvalidArgument, format!("{count} blocks from {block} pass the end")).into();
        }
        let disk = (block * BLOCK_SIZE) as usize..((block + count) * BLOCK_SIZE) as usize;
        let mem = offset as usize..offset as usize + disk.len();
        if write {
            let data = self.shared[at].2[mem].to_vec();
            self.devices[device].store[disk].copy_from_slice(&data);
        } else {
            let data = self.devices[device].store[disk].to_vec();
            self.shared[at].2[mem].copy_from_slice(&data);
        }
        Answer::Reply(Done)
    }
}

impl Server for Devices {
    fn list(&mut self, cx: &mut Cx<'_, List>) -> Answer<List> {
        let container = cx.caller().container;
        let entries = (0..self.devices.len()).filter_map(|i| self.entry(container, i)).collect();
        Answer::Reply(List { entries: Entries::new(entries) })
    }

    fn info(&mut self, cx: &mut Cx<'_, Described>, name: &str) -> Answer<Described> {
        let container = cx.caller().container;
        answer(self.find(cx, name).map(|i| Described { entry: self.entry(container, i).unwrap() }))
    }

    fn open(&mut self, cx: &mut Cx<'_, Opened>, name: &str, rights: Rights) -> Answer<Opened> {
        let container = cx.caller().container;
        let index = match self.find(cx, name) {
            Ok(index) => index,
            Err(refusal) => return refusal.into(),
        };
        let (granted, _) = self.usage(container, index).unwrap();
        if rights.is_empty() {
            return cx.refusal(Error::InvalidArgument, "no rights asked").into();
        }
        if !granted.contains(rights) {
            return cx
                .refusal(Error::MissingRights, format!("{name} is granted {granted} here, {rights} asked"))
                .into();
        }
        if let Some(holder) = self.kept_out_by(container, index) {
            return cx.refusal(Error::Busy, format!("{name} is granted exclusively to container {holder:#x}")).into();
        }
        let slot = match self.sessions.iter().position(Option::is_none) {
            Some(slot) => slot,
            None if self.sessions.len() < MAX_SESSIONS => {
                self.sessions.push(None);
                self.sessions.len() - 1
            }
            None => return cx.refusal(Error::QuotaExceeded, format!("{MAX_SESSIONS} devices open already")).into(),
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        self.sessions[slot] = Some(Session { container, device: index, rights, generation, revoked: None });
        let handle = (slot as u64) << 32 | u64::from(generation);
        let (blocks, block_size) =
            if self.devices[index].class == Class::Block { (BLOCKS, BLOCK_SIZE) } else { (0, 0) };
        Answer::Reply(Opened { handle, blocks, block_size })
    }

    fn close(&mut self, cx: &mut Cx<'_, Done>, handle: u64) -> Answer<Done> {
        let container = cx.caller().container;
        let slot = usize::try_from(handle >> 32).ok().and_then(|slot| self.sessions.get_mut(slot));
        match slot {
            Some(s) if s.as_ref().is_some_and(|s| s.generation == handle as u32 && s.container == container) => {
                *s = None;
                Answer::Reply(Done)
            }
            _ => cx
                .refusal(Error::InvalidHandle, format!("handle {handle:#x} names no open device of this container"))
                .into(),
        }
    }

    fn read_blocks(&mut self, cx: &mut Cx<'_, Data>, handle: u64, block: u64, count: u64) -> Answer<Data> {
        let result = self.session(cx, handle, Rights::READ, |c| c == Class::Block).and_then(|device| {
            let range = self.blocks(cx, block, count)?;
            Ok(Data { data: self.devices[device].store[range].to_vec() })
        });
        answer(result)
    }

    fn write_blocks(&mut self, cx: &mut Cx<'_, Done>, handle: u64, block: u64, data: &[u8]) -> Answer<Done> {
        let device = match self.session(cx, handle, Rights::WRITE, |c| c == Class::Block) {
            Ok(device) => device,
            Err(refusal) => return refusal.into(),
        };
        if data.is_empty() || !(data.len() as u64).is_multiple_of(BLOCK_SIZE) {
            return cx.refusal(Error::InvalidArgument, format!("{} bytes are not whole blocks", data.len())).into();
        }
        match self.blocks(cx, block, data.len() as u64 / BLOCK_SIZE) {
            Ok(range) => {
                self.devices[device].store[range].copy_from_slice(data);
                Answer::Reply(Done)
            }
            Err(refusal) => refusal.into(),
        }
    }

    fn flush(&mut self, cx: &mut Cx<'_, Done>, handle: u64) -> Answer<Done> {
        let result = self.session(cx, handle, Rights::WRITE, |c| c == Class::Block);
        answer(result.map(|device| {
            self.devices[device].flushes += 1;
            Done
        }))
    }

    fn read(&mut self, cx: &mut Cx<'_, Data>, handle: u64, max: u64, timeout_ns: u64) -> Answer<Data> {
        let device = match self.session(cx, handle, Rights::READ, Class::is_byte_device) {
            Ok(device) => device,
            Err(refusal) => return refusal.into(),
        };
        if max == 0 {
            return cx.refusal(Error::InvalidArgument, "max 0").into();
        }
        let max = usize::try_from(max).unwrap_or(MAX_READ).min(MAX_READ);
        let data = match self.devices[device].class {
            Class::Null => Vec::new(),
            Class::Zero => vec![0; max],
            Class::Random => (0..max).map(|_| self.next_random()).collect(),
            _ if !self.devices[device].input.is_empty() => {
                let input = &mut self.devices[device].input;
                input.drain(..max.min(input.len())).collect()
            }
            _ if timeout_ns == 0 => return cx.refusal(Error::WouldBlock, "no input").into(),
            _ => {
                let name = &self.devices[device].name;
                let timed_out = cx.refusal(Error::TimedOut, format!("no input on {name} after {timeout_ns} ns"));
                let deadline = (timeout_ns != NO_TIMEOUT).then(|| self.now + timeout_ns.div_ceil(TICK_NS));
                return match cx.defer() {
                    Ok(reply) => {
                        self.waiters.push(Waiter { device, max, deadline, timed_out, reply });
                        Answer::Later
                    }
                    Err(refusal) => refusal.into(),
                };
            }
        };
        Answer::Reply(Data { data })
    }

    fn write(&mut self, cx: &mut Cx<'_, Written>, handle: u64, data: &[u8]) -> Answer<Written> {
        let writable = |c: Class| c.is_byte_device() && c != Class::Keyboard;
        let device = match self.session(cx, handle, Rights::WRITE, writable) {
            Ok(device) => &mut self.devices[device],
            Err(refusal) => return refusal.into(),
        };
        let taken = match device.class {
            Class::Serial | Class::Console => data.len().min(SERIAL_BUFFER),
            _ => data.len(),
        };
        if matches!(device.class, Class::Serial | Class::Console) {
            device.output.extend_from_slice(&data[..taken]);
        }
        Answer::Reply(Written { count: taken as u64 })
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
        let index = match Self::child(cx, container).and_then(|()| self.find(cx, name)) {
            Ok(index) => index,
            Err(refusal) => return refusal.into(),
        };
        let (held, _) = self.usage(from, index).unwrap();
        let refused = if rights.is_empty() {
            Some((Error::InvalidArgument, String::from("no rights to grant")))
        } else if !held.contains(rights) {
            Some((Error::MissingRights, format!("{name}: this container holds {held} and cannot grant {rights}")))
        } else if let Some(holder) = self.kept_out_by(from, index) {
            Some((Error::Busy, format!("{name} is granted exclusively to container {holder:#x}")))
        } else if self.devices[index].grants.iter().any(|g| g.to == container) {
            Some((Error::Busy, format!("{name} is already granted to container {container:#x}")))
        } else if exclusive
            && (self.devices[index].grants.iter().any(|g| g.from == from)
                || self.sessions.iter().flatten().any(|s| s.device == index && s.revoked.is_none()))
        {
            Some((Error::Busy, format!("{name} is in use or granted elsewhere")))
        } else {
            None
        };
        if let Some((error, why)) = refused {
            return cx.refusal(error, why).into();
        }
        self.devices[index].grants.push(Grant { to: container, from, rights, exclusive });
        Answer::Reply(Done)
    }

    fn revoke(&mut self, cx: &mut Cx<'_, Done>, container: u64, name: &str) -> Answer<Done> {
        let from = cx.caller().container;
        if !valid_name(name) {
            return cx.refusal(Error::InvalidArgument, format!("{name:?} is not a device name")).into();
        }
        if let Err(refusal) = Self::child(cx, container) {
            return refusal.into();
        }
        let granted = |d: &Device| d.name == name && d.grants.iter().any(|g| g.from == from && g.to == container);
        let Some(index) = self.devices.iter().position(granted) else {
            let why = format!("this container granted {name} to no container {container:#x}");
            return cx.refusal(Error::NotFound, why).into();
        };
        let mut lost = vec![container];
        let mut at = 0;
        while let Some(&to) = lost.get(at) {
            lost.extend(self.devices[index].grants.iter().filter(|g| g.from == to).map(|g| g.to));
            at += 1;
        }
        self.devices[index].grants.retain(|g| !lost.contains(&g.to));
        let why = format!("{name} was revoked by container {from:#x}");
        for session in self.sessions.iter_mut().flatten() {
            if session.device == index && lost.contains(&session.container) {
                session.revoked.get_or_insert_with(|| why.clone());
            }
        }
        Answer::Reply(Done)
    }

    fn plug(&mut self, cx: &mut Cx<'_, Plugged>, container: u64, kind: &str) -> Answer<Plugged> {
        let target = if container == 0 { cx.caller().container } else { container };
        if container != 0
            && let Err(refusal) = Self::child(cx, container)
        {
            return refusal.into();
        }
        let Some(class) = Class::from_name(kind).filter(|c| c.pluggable()) else {
            return cx
                .refusal(Error::InvalidArgument, format!("cannot plug {kind:?}: null, zero, random or console"))
                .into();
        };
        if self.devices.len() >= MAX_DEVICES {
            return cx.refusal(Error::QuotaExceeded, format!("{MAX_DEVICES} devices already")).into();
        }
        let prefix = class.name_prefix();
        let name = (0..).map(|n| format!("{prefix}{n}")).find(|n| self.devices.iter().all(|d| &d.name != n)).unwrap();
        let mut device = Device::new(&name, class, None);
        device.plugged_for = Some(target);
        self.devices.push(device);
        Answer::Reply(Plugged { name })
    }

    fn pci(&mut self, cx: &mut Cx<'_, Functions>) -> Answer<Functions> {
        if cx.caller().container != ROOT {
            return cx.refusal(Error::AccessDenied, "only the root container lists PCI functions").into();
        }
        Answer::Reply(Functions { functions: PciFunctions::new(self.functions.clone()) })
    }

    fn share(&mut self, cx: &mut Cx<'_, Shared>, handle: u64, bytes: u64) -> Answer<Shared> {
        if let Err(refusal) = self.session(cx, handle, Rights::NONE, |c| c == Class::Block) {
            return refusal.into();
        }
        if bytes == 0 || !bytes.is_multiple_of(4096) || bytes > MAX_SHARED_BYTES {
            return cx.refusal(Error::InvalidArgument, format!("a shared buffer of {bytes} bytes")).into();
        }
        self.shared.retain(|s| s.0 != handle);
        let buffer = FIRST_BUFFER_CAP + self.shared.len() as u32;
        self.shared.push((handle, buffer, vec![0; bytes as usize]));
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

    fn console(&mut self, cx: &mut Cx<'_, Active>, name: &str) -> Answer<Active> {
        if cx.caller().container != ROOT {
            return cx.refusal(Error::AccessDenied, "only the root container switches consoles").into();
        }
        if !name.is_empty() {
            match self.devices.iter().position(|d| d.name == name && d.class == Class::Console) {
                Some(i) => self.active_console = i,
                None => return cx.refusal(Error::NotFound, format!("no console {name:?}")).into(),
            }
        }
        let active = self.devices.get(self.active_console).map_or_else(String::new, |d| d.name.clone());
        Answer::Reply(Active { name: active })
    }

    fn interrupt(&mut self, cx: &mut Cx<'_, Done>, handle: u64, bits: u64, notification: &[u32]) -> Answer<Done> {
        for &cap in notification {
            cx.drop_cap(cap);
        }
        if notification.len() > 1 || (notification.is_empty() && bits != 0) {
            return cx.refusal(Error::InvalidArgument, "one notification with bits, or none").into();
        }
        answer(self.session(cx, handle, Rights::READ, |c| matches!(c, Class::Serial | Class::Console)).map(|_| Done))
    }

    fn attach(&mut self, cx: &mut Cx<'_, Done>, handle: u64, console: &str) -> Answer<Done> {
        let terminal =
            match self.session(cx, handle, Rights::READ_WRITE, |c| matches!(c, Class::Serial | Class::Console)) {
                Ok(terminal) => terminal,
                Err(refusal) => return refusal.into(),
            };
        if console.is_empty() {
            return Answer::Reply(Done);
        }
        let caller = cx.caller().container;
        let below = |c: Option<u64>| c.is_some_and(|c| c != caller && ancestry(c).contains(&caller));
        let found = (0..self.devices.len()).find(|&i| {
            let d = &self.devices[i];
            d.name == console && d.class == Class::Console && (self.usage(caller, i).is_some() || below(d.plugged_for))
        });
        match found {
            None => cx.refusal(Error::NotFound, format!("no console {console:?} for this container")).into(),
            Some(i) if i == terminal => cx.refusal(Error::InvalidArgument, "a console cannot show on itself").into(),
            Some(_) => Answer::Reply(Done),
        }
    }

    fn restart(&mut self, cx: &mut Cx<'_, Done>, name: &str) -> Answer<Done> {
        if cx.caller().container != ROOT {
            return cx.refusal(Error::AccessDenied, "only the root container restarts drivers").into();
        }
        match self.find(cx, name) {
            Ok(i) if self.devices[i].class == Class::Block => Answer::Reply(Done),
            Ok(_) => {
                cx.refusal(Error::WrongObject, format!("{name}: only a block device's driver restarts alone")).into()
            }
            Err(refusal) => refusal.into(),
        }
    }

    fn time(&mut self, cx: &mut Cx<'_, Time>, handle: u64) -> Answer<Time> {
        answer(self.session(cx, handle, Rights::READ, |c| c == Class::Clock).map(|_| Time { unix_seconds: NOW }))
    }
}
