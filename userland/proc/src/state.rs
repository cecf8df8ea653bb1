//! What `proc` keeps: the containers it created (by id: parent, capability), the processes it
//! started (container, pid there, process capability, the path it ran: the kernel keeps no
//! name `proc` could ask for), the services (name, a send-only
//! endpoint capability, generation, and for supervised ones the command and restarts left),
//! and the waits whose replies it keeps.
//!
//! Invariants: every process in `processes` has an exit event on `events`; a wait in `waits`
//! names a process in `processes` (it is answered, and removed, when that process is reaped or
//! its container destroyed); only `proc` reaps a supervised service's instance.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_proc_protocol::{Command, Ending, Exited, ProcessDetail, ProcessState};
use vessel_protocol::{Deferred, Refusal};
use vessel_rt::abi::{Error, Exit, Rights};
use vessel_rt::container::{self, Container};
use vessel_rt::ipc::{Cap, Endpoint, Notification, ProcessHandle};
use vessel_rt::server::Replies;
use vessel_rt::{println, process, sys, time};

/// The exit-event bit of every process (one bit: a wake-up tells `proc` to look at its
/// processes, it need not say which one ended).
const EXIT_BIT: u64 = 1;
/// `ProcessInfo::state` of an ended process.
const ENDED: u32 = 2;

/// A container `proc` created (or the root).
pub struct Node {
    pub id: u64,
    pub parent: u64,
    pub cap: Container,
    /// Its name (empty: none), unique among its siblings.
    pub name: String,
    /// The process it is tied to (`tie`: its container and pid): when that one ends, this
    /// container is destroyed.
    pub tied: Option<(u64, u64)>,
}

/// A process `proc` started.
pub struct Record {
    pub container: u64,
    pub pid: u64,
    pub handle: ProcessHandle,
    /// The path it was started from (`process_info`'s name).
    pub name: String,
}

/// A system service.
pub struct Service {
    pub name: String,
    /// Send-only capability, duplicated for every lookup.
    pub endpoint: Endpoint,
    pub generation: u64,
    /// The process serving it now: the running instance of a supervised service, the
    /// registering process of one that registered itself (root-container pids).
    pub pid: u64,
    /// Supervised: how to start it again.
    pub supervised: Option<Supervised>,
}

/// What `proc` keeps of a supervised service.
pub struct Supervised {
    /// `path\0arg...`.
    pub command: Vec<u8>,
    /// Capabilities every instance gets (before its endpoint); `proc` owns them.
    pub caps: Vec<u32>,
    /// Restarts left.
    pub restarts: u64,
}

impl Supervised {
    /// Gives the kept capabilities up (the service will not start again).
    pub fn release(self) {
        for h in self.caps {
            let _ = Cap(h).delete();
        }
    }
}

/// A caller waiting for a process to end.
pub struct Wait {
    container: u64,
    pid: u64,
    reply: Deferred<Exited>,
    /// When a `wait_timeout` gives up (nanoseconds since boot).
    deadline: Option<u64>,
    /// The caller's container, for the reason of a refusal.
    caller: u64,
}

/// Everything `proc` knows.
pub struct State {
    pub root: Container,
    pub root_id: u64,
    /// Send-only capability to ourselves, handed to every child first.
    pub client: Endpoint,
    /// By id: visibility checks walk up the tree in O(depth × log n).
    pub containers: BTreeMap<u64, Node>,
    pub processes: Vec<Record>,
    pub services: Vec<Service>,
    /// Bound to the receiving thread; every process's exit event lands here.
    events: Notification,
    waits: Vec<Wait>,
    /// Nanoseconds per timer tick (the kernel counts CPU time in ticks).
    tick_ns: u64,
}

impl State {
    pub fn new(root: Container, root_id: u64, client: Endpoint, events: Notification) -> State {
        State {
            root,
            root_id,
            client,
            containers: BTreeMap::from([(
                root_id,
                Node { id: root_id, parent: 0, cap: root, name: String::new(), tied: None },
            )]),
            processes: Vec::new(),
            services: Vec::new(),
            events,
            waits: Vec::new(),
            tick_ns: 1_000_000_000 / sys::kernel_stats().map_or(100, |s| s.tick_hz).max(1),
        }
    }

    /// The container `id` names for a caller in `caller` (0: the caller's own), if the caller
    /// may act on it: its own or a descendant.
    pub fn visible(&self, caller: u64, id: u64) -> Result<&Node, Error> {
        let id = if id == 0 { caller } else { id };
        let mut at = id;
        loop {
            let node = self.containers.get(&at).ok_or(Error::NoSuchContainer)?;
            if node.id == caller {
                return self.containers.get(&id).ok_or(Error::NoSuchContainer);
            }
            if node.parent == 0 {
                return Err(Error::NoSuchContainer);
            }
            at = node.parent;
        }
    }

    /// Whether container `id` is `top` or below it.
    pub fn below(&self, top: u64, id: u64) -> bool {
        let mut at = id;
        loop {
            if at == top {
                return true;
            }
            match self.containers.get(&at) {
                Some(node) if node.parent != 0 => at = node.parent,
                _ => return false,
            }
        }
    }

    /// The index of process `pid` of `container` (as the caller names it) in `processes`.
    pub fn find(&self, caller: u64, container: u64, pid: u64) -> Result<usize, Error> {
        let id = self.visible(caller, container)?.id;
        self.processes.iter().position(|r| r.container == id && r.pid == pid).ok_or(Error::NoSuchProcess)
    }

    /// Whether `pid` of the root container is a supervised service's running instance.
    pub fn is_supervised(&self, container: u64, pid: u64) -> bool {
        container == self.root_id && self.services.iter().any(|s| s.supervised.is_some() && s.pid == pid)
    }

    /// Starts a program in `container` with the `proc` capability and `caps`, and registers
    /// its exit event.
    pub fn spawn(
        &mut self,
        container: u64,
        cap: Container,
        command: Command<'_>,
        env: &[u8],
        caps: &[u32],
    ) -> Result<u64, Error> {
        let parts: Vec<&str> = command.parts().collect();
        let (path, args) = parts.split_first().ok_or(Error::InvalidArgument)?;
        let mut passed = alloc::vec![self.client.0.0];
        // The caller's capabilities come last, so a program finds them from the end.
        passed.extend_from_slice(caps);
        let handle = if path.starts_with('/') {
            // A file of the container's own namespace, read through `vfs`.
            let image = self.read_program(container, path)?;
            process::spawn_image_in(cap.0, &image, path, args, env, &passed)?
        } else {
            process::spawn_in_env(cap.0, path, args, env, &passed)?
        };
        let pid = handle.0.inspect().map(|i| i.detail);
        let watched = pid.and_then(|pid| handle.notify_on_exit(self.events, EXIT_BIT).map(|()| pid));
        match watched {
            Ok(pid) => {
                self.processes.push(Record { container, pid, handle, name: String::from(*path) });
                Ok(pid)
            }
            Err(e) => {
                // Unwatched, it could never be reaped: undo the start.
                let _ = handle.kill();
                let _ = process::wait_handle(handle);
                let _ = handle.0.delete();
                Err(e)
            }
        }
    }

    /// The program file `path` of `container`'s namespace, read through `vfs` (`open_in`: the
    /// root container may read below itself). `NotFound` without a `vfs`; `TooLarge` past
    /// `MAX_IMAGE`; the server's refusal otherwise.
    fn read_program(&self, container: u64, path: &str) -> Result<Vec<u8>, Error> {
        use vessel_vfs_protocol::{Client, MAX_IO, OpenFlags};
        let vfs = self.services.iter().find(|s| s.name == "vfs").ok_or(Error::NotFound)?;
        let client = Client::new(vfs.endpoint);
        let opened = client.open_in(container, path, OpenFlags::READ).map_err(|r| r.error)?;
        let read = (|| {
            if opened.stat.size > vessel_rt::abi::MAX_IMAGE {
                return Err(Error::TooLarge);
            }
            let mut image = Vec::new();
            image.try_reserve_exact(opened.stat.size as usize).map_err(|_| Error::NoMemory)?;
            loop {
                let data = client.read(opened.handle, MAX_IO as u64).map_err(|r| r.error)?.data;
                if data.is_empty() {
                    return Ok(image);
                }
                if image.len() + data.len() > vessel_rt::abi::MAX_IMAGE as usize {
                    return Err(Error::TooLarge);
                }
                image.extend_from_slice(&data);
            }
        })();
        let _ = client.close(opened.handle);
        read
    }

    /// Reaps the ended process at `index`, forgets it, and answers every wait kept for it
    /// (whichever request or event reaps it: a wait must never outlive its process's record).
    fn reap(&mut self, index: usize) -> Ending {
        let Record { container, pid, handle, .. } = self.processes.swap_remove(index);
        let exit = process::wait_handle(handle);
        let _ = handle.0.delete();
        let ending = match exit {
            Ok(Exit::Code(code)) => Ending::Code(code),
            Ok(Exit::Fault { .. }) => Ending::Fault,
            // Killed, or its record already gone (ended with its container).
            Ok(Exit::Killed) | Err(_) => Ending::Killed,
        };
        self.answer_waits(container, pid, |_| Ok(Exited { ending }));
        ending
    }

    /// What `process_info` answers for the process at `index`: its name from the record, the
    /// rest from the kernel (it is our child).
    pub fn detail(&self, index: usize) -> Result<ProcessDetail, Error> {
        let record = &self.processes[index];
        let info = sys::process_info_handle(record.handle.0.0)?;
        Ok(ProcessDetail {
            name: record.name.clone(),
            container: record.container,
            pid: record.pid,
            state: ProcessState::from_kernel(info.state),
            threads: info.threads,
            pages: info.pages,
            cpu_ns: info.cpu_ticks.saturating_mul(self.tick_ns),
        })
    }

    /// Whether the process at `index` has ended.
    fn ended(&self, index: usize) -> bool {
        // No answer counts as ended: better reaped than never.
        sys::process_info_handle(self.processes[index].handle.0.0).map_or(true, |info| info.state == ENDED)
    }

    /// How process `index` ended, reaped, if it has; `None` while it runs.
    pub fn reap_if_ended(&mut self, index: usize) -> Option<Ending> {
        self.ended(index).then(|| self.reap(index))
    }

    /// Keeps `reply` until process `pid` of `container` ends (or until `deadline`).
    pub fn keep_wait(&mut self, caller: u64, container: u64, pid: u64, reply: Deferred<Exited>, deadline: Option<u64>) {
        self.prune_waits();
        self.waits.push(Wait { container, pid, reply, deadline, caller });
    }

    /// Drops the kept waits whose caller no longer waits (it died, or its container was
    /// destroyed): the kernel says so in the reply capability's `detail`. Without this, a
    /// waiter killed while its process runs on would leave its reply (a kernel object charged
    /// to `proc`'s container) here until that process ends, perhaps never.
    fn prune_waits(&mut self) {
        let mut i = 0;
        while i < self.waits.len() {
            let waits = Cap(self.waits[i].reply.handle()).inspect().is_ok_and(|info| info.detail != 0);
            if waits {
                i += 1;
            } else {
                let _ = Cap(self.waits.swap_remove(i).reply.into_handle()).delete();
            }
        }
    }

    /// The receive timeout: until the earliest kept wait's deadline, if any has one.
    pub fn next_timeout(&self) -> Option<u64> {
        let deadline = self.waits.iter().filter_map(|w| w.deadline).min()?;
        Some(deadline.saturating_sub(time::now_ns()).max(1))
    }

    /// Refuses the kept waits whose deadline passed.
    pub fn expire_waits(&mut self) {
        if self.waits.iter().all(|w| w.deadline.is_none()) {
            return;
        }
        let now = time::now_ns();
        let mut i = 0;
        while i < self.waits.len() {
            if self.waits[i].deadline.is_some_and(|d| d <= now) {
                let w = self.waits.swap_remove(i);
                let why = alloc::format!("process {} still runs after its timeout", w.pid);
                let _ = w.reply.answer(&Replies, Err(Refusal::in_container("proc", w.caller, Error::TimedOut, why)));
            } else {
                i += 1;
            }
        }
    }

    /// Answers every kept wait for process `pid` of `container`.
    fn answer_waits(&mut self, container: u64, pid: u64, result: impl Fn(&Wait) -> Result<Exited, Refusal>) {
        let mut i = 0;
        while i < self.waits.len() {
            if self.waits[i].container == container && self.waits[i].pid == pid {
                let w = self.waits.swap_remove(i);
                let answer = result(&w);
                // The waiter may have died meanwhile: nothing to do then.
                let _ = w.reply.answer(&Replies, answer);
            } else {
                i += 1;
            }
        }
    }

    /// Exit events arrived: reap the processes that ended and have a waiter, and restart the
    /// supervised services that died. Processes nobody waits for stay as they are (a later
    /// `wait` reaps them at once).
    pub fn on_exits(&mut self) {
        // A waiter may be among the dead.
        self.prune_waits();
        let mut i = 0;
        while i < self.processes.len() {
            let (container, pid) = (self.processes[i].container, self.processes[i].pid);
            let wanted = self.is_supervised(container, pid)
                || self.waits.iter().any(|w| w.container == container && w.pid == pid);
            if !wanted || !self.ended(i) {
                i += 1;
                continue;
            }
            let supervised = self.is_supervised(container, pid);
            let ending = self.reap(i);
            if supervised {
                self.restart(pid, ending);
            }
        }
        self.destroy_untied();
    }

    /// Destroys the containers whose tied process ended (or is gone): what `destroy` does,
    /// with nobody to answer.
    fn destroy_untied(&mut self) {
        let tied: Vec<(u64, (u64, u64))> = self.containers.values().filter_map(|n| n.tied.map(|t| (n.id, t))).collect();
        for (id, (container, pid)) in tied {
            let alive = self
                .processes
                .iter()
                .position(|r| r.container == container && r.pid == pid)
                .is_some_and(|i| !self.ended(i));
            if alive {
                continue;
            }
            let Some(node) = self.containers.get(&id) else { continue };
            match node.cap.destroy() {
                Ok(()) => {
                    println!("proc: container {id:#018x} destroyed: process {pid} it was tied to ended");
                    self.forget_below(id);
                }
                Err(e) => println!("proc: cannot destroy container {id:#018x} after its process ended: {e}"),
            }
        }
    }

    /// Forgets everything in and below container `top`, which was just destroyed: its
    /// processes are reaped and their waits refused, its containers dropped.
    pub fn forget_below(&mut self, top: u64) {
        let mut i = 0;
        while i < self.processes.len() {
            let (container, pid) = (self.processes[i].container, self.processes[i].pid);
            if !self.below(top, container) {
                i += 1;
                continue;
            }
            // Refused first: the reap then finds no wait left to answer with "killed".
            self.answer_waits(container, pid, |w| {
                let why =
                    alloc::format!("container {container:#018x} was destroyed while process {pid} was waited for");
                Err(Refusal::in_container("proc", w.caller, Error::NoSuchContainer, why))
            });
            self.reap(i);
        }
        let doomed: Vec<u64> = self.containers.keys().copied().filter(|&id| self.below(top, id)).collect();
        for id in doomed {
            if let Some(node) = self.containers.remove(&id) {
                let _ = node.cap.0.delete();
            }
        }
    }

    /// Starts one instance of a service: a fresh endpoint (the service gets the receiving
    /// copy as its last handle; `proc` keeps only a send-only one).
    pub fn start_instance(&mut self, command: &[u8], caps: &[u32]) -> Result<(Endpoint, u64), Error> {
        let command = Command::parse(command).ok_or(Error::InvalidArgument)?;
        let endpoint = Endpoint::create()?;
        let send = match container::register_service(endpoint, self.root)
            .and_then(|()| endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE))
        {
            Ok(send) => send,
            Err(e) => {
                let _ = endpoint.0.delete();
                return Err(e);
            }
        };
        let mut passed = caps.to_vec();
        passed.push(endpoint.0.0);
        let spawned = self.spawn(self.root_id, self.root, command, &[], &passed);
        let _ = endpoint.0.delete();
        match spawned {
            Ok(pid) => Ok((Endpoint(send), pid)),
            Err(e) => {
                let _ = send.delete();
                Err(e)
            }
        }
    }

    /// The supervised instance `pid` ended: drop its endpoint (its clients get `PeerDied`)
    /// and start the next generation, while restarts are left.
    fn restart(&mut self, pid: u64, ending: Ending) {
        let Some(s) = self.services.iter().position(|s| s.supervised.is_some() && s.pid == pid) else {
            return;
        };
        // Dropping our send copy leaves the dead endpoint with no receiver: every client of
        // this instance gets PeerDied.
        let _ = self.services[s].endpoint.0.delete();
        let service = &mut self.services[s];
        let Some(mut kept) = service.supervised.take() else { return };
        println!("proc: service {} (generation {}) {ending}", service.name, service.generation);
        if kept.restarts == 0 {
            println!("proc: service {} has no restarts left", service.name);
            kept.release();
            self.services.swap_remove(s);
            return;
        }
        match self.start_instance(&kept.command, &kept.caps) {
            Ok((endpoint, pid)) => {
                let service = &mut self.services[s];
                service.endpoint = endpoint;
                service.generation += 1;
                service.pid = pid;
                kept.restarts -= 1;
                service.supervised = Some(kept);
                println!("proc: service {} restarted as generation {}", service.name, service.generation);
            }
            Err(e) => {
                println!("proc: cannot restart service {}: {e}", self.services[s].name);
                kept.release();
                self.services.swap_remove(s);
            }
        }
    }
}
