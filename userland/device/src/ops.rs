//! The device protocol's operations, on the server's state: the registry, the drivers, the
//! consoles and the reads waiting for input (block I/O's own half is in `disks`).
//!
//! Every refusal names the device and the rule (`Cx::refusal` adds the service and the
//! caller's container). A request that must wait (a block request, a read with no input yet)
//! keeps its reply (`Cx::defer`) and is answered from an interrupt or a timeout; if its session
//! was revoked meanwhile, the answer is `Revoked` and no data goes out.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::{
    Active, Bdf, Class, Data, Described, Done, Entries, Entry, Functions, List, Opened, PciFunctions, Plugged, Rights,
    Server, Shared, Time, Written,
};
use vessel_protocol::{Answer, Cx};
use vessel_rt::abi::Error;
use vessel_rt::platform::Platform;
use vessel_rt::proc::Proc;

use crate::blk::{Blk, Op};
use crate::console::Consoles;
use crate::disks::{Buffer, Pending};
use crate::input::{Input, Readers};
use crate::pci::Function;
use crate::registry::{Backend, Device, Registry};
use crate::rng::Rng;
use virtio_drivers::transport::pci::bus::PciRoot;

mod attach;

/// Bytes per block of every block device.
pub const BLOCK: u64 = 512;

/// Everything the server keeps.
pub struct State {
    /// Devices, grants, sessions.
    pub registry: Registry,
    /// The block devices, by `Backend::Blk` number.
    pub disks: Vec<Option<Blk>>,
    /// PCI configuration access (drivers restart through it).
    pub(crate) pci: virtio_drivers::transport::pci::bus::PciRoot<crate::pci::Cam>,
    /// Where the disks' interrupts are delivered: the notification and bits.
    pub(crate) disk_events: (vessel_rt::ipc::Notification, u64),
    /// The PCI functions found at start, and the name of the device driving each.
    pub functions: Vec<(Function, Option<String>)>,
    pub(crate) pending: BTreeMap<u64, Pending>,
    pub(crate) buffers: Vec<Buffer>,
    pub(crate) platform: Platform,
    rtc: Option<crate::rtc::Rtc>,
    /// The virtual consoles and the screen they share.
    consoles: Consoles,
    /// The keyboard.
    kbd: Option<crate::kbd::Kbd>,
    /// The serial port.
    serial: Option<crate::serial::Serial>,
    /// Reads waiting for input.
    readers: Readers,
    /// Terminal sessions armed for Ctrl-C.
    armed: Vec<Armed>,
    /// Consoles shown on terminals.
    attached: Vec<attach::Attachment>,
    pub(crate) next_tag: u64,
    proc: Option<Proc>,
    rng: Option<Rng>,
    /// Where the grants and plugged devices outlive this instance (see `keep`).
    keep: Option<crate::keep::Keep>,
}

/// A terminal session armed for Ctrl-C (`interrupt`).
struct Armed {
    handle: u64,
    /// The process that armed it (its container and pid).
    opener: (u64, u64),
    /// The device's index.
    device: usize,
    notification: vessel_rt::ipc::Notification,
    bits: u64,
}

/// Up to `max` bytes of input from `from`, if some wait (for a read now, or a waiting one).
fn take_input(
    (kbd, serial, consoles): (&mut Option<crate::kbd::Kbd>, &mut Option<crate::serial::Serial>, &mut Consoles),
    from: Input,
    max: usize,
) -> Option<Vec<u8>> {
    match from {
        Input::Keyboard => kbd.as_mut()?.take(max),
        Input::Serial => serial.as_mut()?.take(max),
        Input::Console(n) => consoles.take_input(n, max),
    }
}

pub(crate) fn refuse<R: vessel_protocol::Reply, T>(cx: &Cx<'_, R>, (error, why): (Error, String)) -> Answer<T> {
    Answer::Refuse(cx.refusal(error, why))
}

impl State {
    /// The state around a registry and the drivers started.
    pub fn new(
        registry: Registry,
        (disks, pci, disk_events): (Vec<Blk>, PciRoot<crate::pci::Cam>, (vessel_rt::ipc::Notification, u64)),
        functions: Vec<(Function, Option<String>)>,
        platform: Platform,
        (kbd, serial): (Option<crate::kbd::Kbd>, Option<crate::serial::Serial>),
    ) -> State {
        State {
            registry,
            disks: disks.into_iter().map(Some).collect(),
            pci,
            disk_events,
            functions,
            pending: BTreeMap::new(),
            buffers: Vec::new(),
            platform,
            rtc: crate::rtc::Rtc::new(platform),
            consoles: Consoles::new(platform),
            kbd,
            serial,
            readers: Readers::default(),
            armed: Vec::new(),
            attached: Vec::new(),
            next_tag: 1,
            proc: Proc::get(),
            rng: Rng::from_hardware(),
            keep: crate::keep::Keep::inherited(),
        }
    }

    /// Takes back what an earlier instance kept: the virtual devices plugged into containers
    /// (consoles start empty) and the grants of devices that exist again. The first sweep
    /// forgets the containers that ended meanwhile.
    pub fn restore(&mut self) {
        let Some(keep) = &self.keep else { return };
        let kept = keep.load();
        let (mut plugged, mut granted) = (0, 0);
        for p in kept.plugged {
            if self.registry.devices.iter().any(|d| d.name == p.name) {
                continue;
            }
            let backend = match p.class {
                Class::Null => Backend::Null,
                Class::Zero => Backend::Zero,
                Class::Random => Backend::Random,
                Class::Console => Backend::Console(self.consoles.add()),
                _ => continue,
            };
            let device = Device {
                name: p.name,
                class: p.class,
                backend,
                plugged_for: Some(p.container),
                grants: Vec::new(),
                blocks: 0,
                block_size: 0,
            };
            self.registry.add(device);
            plugged += 1;
        }
        for g in kept.grants {
            let Some(device) = self.registry.devices.iter_mut().find(|d| d.name == g.device) else { continue };
            if device.grants.iter().any(|x| x.to == g.to) {
                continue;
            }
            device.grants.push(crate::registry::Grant {
                to: g.to,
                from: g.from,
                rights: g.rights,
                exclusive: g.exclusive,
            });
            granted += 1;
        }
        if plugged + granted > 0 {
            vessel_rt::println!("device: kept from the last instance: {plugged} plugged devices, {granted} grants");
        }
    }

    /// Writes the grants and plugged devices where the next instance finds them.
    fn save(&mut self) {
        let Some(keep) = &mut self.keep else { return };
        let mut kept = vessel_device_protocol::kept::Kept::default();
        for d in &self.registry.devices {
            if let Some(container) = d.plugged_for.filter(|&c| c != 0) {
                kept.plugged.push(vessel_device_protocol::kept::Plugged {
                    name: d.name.clone(),
                    class: d.class,
                    container,
                });
            }
            for g in &d.grants {
                kept.grants.push(vessel_device_protocol::kept::KeptGrant {
                    device: d.name.clone(),
                    to: g.to,
                    from: g.from,
                    rights: g.rights,
                    exclusive: g.exclusive,
                });
            }
        }
        if !keep.save(&kept) {
            vessel_rt::println!(
                "device: the registry no longer fits the kept memory; a restart loses the newest grants"
            );
        }
    }

    /// The keyboard interrupted: switch consoles on Alt+F1…, hand the keys to whoever reads
    /// them (the holder of an open `kbd0` session, else the active console), answer waiting
    /// reads.
    pub fn on_keyboard_interrupt(&mut self) {
        let Some(kbd) = &mut self.kbd else { return };
        kbd.on_interrupt();
        if let Some(n) = kbd.take_switch() {
            // Alt+F`n+1` for a console that does not exist does nothing.
            let _ = self.consoles.switch(n);
        }
        let grabbed = self
            .registry
            .devices
            .iter()
            .position(|d| d.backend == Backend::Keyboard)
            .is_some_and(|i| self.registry.has_sessions(i));
        if !grabbed && let Some(keys) = kbd.take_all() {
            self.consoles.type_in(&keys);
        }
        self.answer_readers();
    }

    /// Takes the screen for the consoles and follows the kernel's output on console 0: what
    /// it printed so far now, the rest as `bits` of `events` say it comes (`on_log`).
    pub fn follow_log(&mut self, events: vessel_rt::ipc::Notification, bits: u64) {
        if let Err(e) = self.platform.log_bind(events, bits) {
            vessel_rt::println!("device: the kernel's log stays off the console: {e}");
            return;
        }
        self.consoles.show_log();
    }

    /// The kernel printed: show it on console 0.
    pub fn on_log(&mut self) {
        self.consoles.show_log();
    }

    /// `restart` of device `index` (the root container asked): its driver alone starts again,
    /// as after a crash of it. Sessions, grants and waiting reads stay; what the driver held
    /// goes (a disk's requests fail with `DeviceError`; bytes queued in the serial port or the
    /// keyboard are dropped). A virtual device has no driver of its own.
    pub(crate) fn restart_driver(&mut self, index: usize) -> Result<(), (Error, String)> {
        let name = self.registry.devices[index].name.clone();
        let gone =
            |what: &str| (Error::DeviceError, format!("{name}: {what} did not answer when its driver restarted"));
        let dropped = match self.registry.devices[index].backend {
            Backend::Blk(_) => return self.restart_disk(index),
            Backend::Serial => self.serial.as_mut().ok_or_else(|| gone("the UART"))?.restart(),
            Backend::Keyboard => self.kbd.as_mut().ok_or_else(|| gone("the controller"))?.restart(),
            Backend::Clock => self.rtc.as_ref().ok_or_else(|| gone("the clock"))?.restart().map(|()| 0),
            Backend::Null | Backend::Zero | Backend::Random | Backend::Console(_) => {
                return Err((Error::WrongObject, format!("{name}: a virtual device has no driver to restart")));
            }
        };
        let dropped =
            dropped.map_err(|e| (e, format!("{name}: its hardware did not answer when its driver restarted")))?;
        match dropped {
            0 => vessel_rt::println!("device: {name}: driver restarted"),
            n => vessel_rt::println!("device: {name}: driver restarted ({n} queued bytes dropped)"),
        }
        // Waiting reads go on: input from the new driver answers them.
        self.answer_readers();
        Ok(())
    }

    /// The serial port interrupted: move its bytes, answer waiting reads.
    pub fn on_serial_interrupt(&mut self) {
        if let Some(serial) = &mut self.serial {
            serial.on_interrupt();
        }
        self.answer_readers();
    }

    /// Answers the waiting reads that input, a revoke or their timeout settles.
    pub fn answer_readers(&mut self) {
        // Typed input first goes where attachments send it, so a Ctrl-C reaches the console a
        // terminal shows, not the terminal's own armed session.
        self.route_input();
        self.deliver_interrupts();
        loop {
            let (kbd, serial, consoles, registry) =
                (&mut self.kbd, &mut self.serial, &mut self.consoles, &self.registry);
            let take = |from: Input, max: usize| take_input((kbd, serial, consoles), from, max);
            let undelivered = self.readers.answer(vessel_rt::time::now_ns(), take, |h| registry.revoked_reason(h));
            if undelivered.is_empty() {
                return;
            }
            // Each dead reader left the queue: this ends.
            for (from, bytes) in undelivered.iter().rev() {
                self.give_back(*from, bytes);
            }
        }
    }

    /// Puts bytes back at the front of an input queue.
    fn give_back(&mut self, from: Input, bytes: &[u8]) {
        match from {
            Input::Keyboard => {
                if let Some(kbd) = &mut self.kbd {
                    kbd.give_back(bytes);
                }
            }
            Input::Serial => {
                if let Some(serial) = &mut self.serial {
                    serial.give_back(bytes);
                }
            }
            Input::Console(n) => self.consoles.give_back(n, bytes),
        }
    }

    /// Turns a typed Ctrl-C into a signal for the armed session that is its terminal's
    /// newest (dropping the input before it); forgets armed sessions that were closed.
    fn deliver_interrupts(&mut self) {
        let registry = &self.registry;
        self.armed.retain(|a| {
            let open = registry.revoked_reason(a.handle).is_none();
            if !open {
                let _ = a.notification.0.delete();
            }
            open
        });
        for armed in &self.armed {
            if self.registry.newest_session(armed.device) != Some(armed.handle) {
                continue;
            }
            let typed = match self.registry.devices[armed.device].backend {
                Backend::Serial => self.serial.as_mut().is_some_and(crate::serial::Serial::cut_at_interrupt),
                Backend::Console(n) => self.consoles.cut_at_interrupt(n),
                _ => false,
            };
            if typed {
                let _ = armed.notification.signal(armed.bits);
            }
        }
    }

    /// Nanoseconds until the first waiting read times out, if one has a timeout.
    pub fn next_timeout(&self, now: u64) -> Option<u64> {
        self.readers.next_timeout(now)
    }

    /// Forgets what containers that ended held (their grants, plugged devices, sessions and
    /// lent buffers), and what ended processes asked of terminals (attachments, armed
    /// sessions); the server runs it every second that requests come.
    pub fn sweep(&mut self) {
        self.forget_dead_containers();
        self.forget_dead_openers();
    }

    /// Containers that hold grants but no longer exist lose them (asked of `proc`).
    fn forget_dead_containers(&mut self) {
        let Some(proc) = self.proc else { return };
        let mut forgot = false;
        for container in self.registry.grantees() {
            if proc.info(container).is_err_and(|r| r.error == Error::NoSuchContainer) {
                for device in &self.registry.devices {
                    if let (Backend::Console(n), Some(c)) = (device.backend, device.plugged_for)
                        && c == container
                    {
                        self.consoles.retire(n);
                    }
                }
                self.registry.forget_container(container);
                forgot = true;
            }
        }
        if forgot {
            self.save();
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
            Backend::Blk(n) => self.disks.get(n).and_then(Option::as_ref).map(|d| d.at).map(|at| Bdf {
                bus: at.bus,
                device: at.device,
                function: at.function,
            }),
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
    pub(crate) fn session<R: vessel_protocol::Reply>(
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
        if let Err(e) = self.disk_range_check(index, 0, 0, false) {
            return refuse(cx, e);
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
            Backend::Console(_) | Backend::Keyboard | Backend::Serial => {
                let from = match backend {
                    Backend::Serial => Input::Serial,
                    Backend::Console(n) => Input::Console(n),
                    _ => Input::Keyboard,
                };
                let present = match from {
                    Input::Keyboard => self.kbd.is_some(),
                    Input::Serial => self.serial.is_some(),
                    Input::Console(_) => true,
                };
                if !present {
                    return refuse(cx, (Error::DeviceError, String::from("the device did not answer at start")));
                }
                self.route_input();
                if !self.readers.waiting_on(from)
                    && let Some(data) = take_input((&mut self.kbd, &mut self.serial, &mut self.consoles), from, len)
                {
                    return Answer::Reply(Data { data });
                }
                if timeout_ns == 0 {
                    return refuse(cx, (Error::WouldBlock, String::from("no input")));
                }
                match cx.defer() {
                    Ok(reply) => {
                        self.readers.push(from, handle, len, timeout_ns, reply);
                        Answer::Later
                    }
                    Err(refusal) => Answer::Refuse(refusal),
                }
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
            Ok((index, Backend::Console(_))) => match self.write_console(index, data) {
                Ok(count) => Answer::Reply(Written { count: count as u64 }),
                Err(e) => refuse(cx, (e, String::from("no framebuffer this console can draw on"))),
            },
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
            Ok(()) => {
                self.save();
                Answer::Reply(Done)
            }
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
                self.save();
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
            "console" => (Class::Console, Backend::Console(self.consoles.add())),
            _ => {
                return refuse(
                    cx,
                    (Error::InvalidArgument, format!("no virtual device kind {kind:?} (null, zero, random, console)")),
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
        self.save();
        Answer::Reply(Plugged { name })
    }

    fn pci(&mut self, cx: &mut Cx<'_, Functions>) -> Answer<Functions> {
        if cx.caller().container != self.registry.root {
            return refuse(cx, (Error::AccessDenied, String::from("only the root container lists PCI functions")));
        }
        let functions = self.functions.iter().map(|(f, driver)| crate::pci::describe(f, driver.clone())).collect();
        Answer::Reply(Functions { functions: PciFunctions::new(functions) })
    }

    fn share(&mut self, cx: &mut Cx<'_, Shared>, handle: u64, bytes: u64) -> Answer<Shared> {
        self.share_buffer(cx, handle, bytes)
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
        if cx.caller().container != self.registry.root {
            return refuse(cx, (Error::AccessDenied, String::from("only the root container switches consoles")));
        }
        self.forget_dead_containers();
        if !name.is_empty() {
            let found = self.registry.devices.iter().find(|d| d.name == name && d.plugged_for != Some(0));
            let Some(Backend::Console(n)) = found.map(|d| d.backend) else {
                return refuse(cx, (Error::NotFound, format!("no console {name:?}")));
            };
            if let Err(e) = self.consoles.switch(n) {
                return refuse(cx, (e, format!("cannot show {name}")));
            }
        }
        let active = self.consoles.active();
        let shown = self.registry.devices.iter().find(|d| d.backend == Backend::Console(active));
        Answer::Reply(Active { name: shown.map_or_else(String::new, |d| d.name.clone()) })
    }

    fn interrupt(&mut self, cx: &mut Cx<'_, Done>, handle: u64, bits: u64, notification: &[u32]) -> Answer<Done> {
        let checked = match (notification, bits) {
            (_, _) if notification.len() > 1 => {
                Err((Error::InvalidArgument, String::from("more than one notification")))
            }
            ([], b) if b != 0 => Err((Error::InvalidArgument, String::from("bits to signal but no notification"))),
            _ => self.session(cx, handle, Rights::READ, |c| matches!(c, Class::Serial | Class::Console)),
        };
        let device = match checked {
            Ok((device, _)) => device,
            Err(e) => {
                for &cap in notification {
                    cx.drop_cap(cap);
                }
                return refuse(cx, e);
            }
        };
        // Re-arming replaces; disarming only removes.
        if let Some(at) = self.armed.iter().position(|a| a.handle == handle) {
            let _ = self.armed.remove(at).notification.0.delete();
        }
        match notification {
            [cap] if bits != 0 => {
                let notification = vessel_rt::ipc::Notification(vessel_rt::ipc::Cap(*cap));
                let opener = (cx.caller().container, cx.caller().pid);
                self.armed.push(Armed { handle, opener, device, notification, bits });
                // A Ctrl-C typed after the shell stopped reading and before it armed (while it
                // started the program) is meant for the program: it interrupts too.
                self.deliver_interrupts();
            }
            [cap] => cx.drop_cap(*cap),
            _ => {}
        }
        Answer::Reply(Done)
    }

    fn attach(&mut self, cx: &mut Cx<'_, Done>, handle: u64, console: &str) -> Answer<Done> {
        self.attach_console(cx, handle, console)
    }

    fn restart(&mut self, cx: &mut Cx<'_, Done>, name: &str) -> Answer<Done> {
        if cx.caller().container != self.registry.root {
            return refuse(cx, (Error::AccessDenied, String::from("only the root container restarts drivers")));
        }
        let Some((index, _)) = self.registry.find(self.registry.root, name) else {
            return refuse(cx, (Error::NotFound, format!("no device {name:?}")));
        };
        match self.restart_driver(index) {
            Ok(()) => Answer::Reply(Done),
            Err(e) => refuse(cx, e),
        }
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
