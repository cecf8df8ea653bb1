//! `proc`, the process and container server (DESIGN.md sections 3-4). init starts it with the
//! root container capability and the hardware capabilities, and a receive capability to the
//! `proc` endpoint, which `proc` registers as a system service: every container can call it, and
//! the kernel stamps the caller's container on each request, so `proc` acts within that
//! container and its descendants only. The protocol is `vessel_proc_protocol`; `docs/proc.md`
//! describes it.
//!
//! State: the containers it created (by id: parent, capability), the processes it started (their
//! container, pid there, and a process capability), and the services (name, a send-only
//! endpoint capability, generation, and for supervised ones the command and restarts left).
//! Supervision polls: between requests, and at least every [`POLL_MS`], `proc` looks at each
//! supervised service's process; a dead one is reaped, its endpoint dropped (so clients of the
//! dead instance get `PeerDied` instead of hanging) and a new instance started with a fresh
//! endpoint and the next generation.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_proc_protocol::{Command, Ending, Limits, MAX_LIST, Reply, Request};
use vessel_rt::abi::{ContainerLimits, Error, Exit, Meta, ObjectKind, Rights};
use vessel_rt::container::{self, Container};
use vessel_rt::ipc::{self, Cap, Endpoint, ProcessHandle, buffer};
use vessel_rt::{println, process};

vessel_rt::entry!(main);

/// Longest wait for a message before looking at the supervised services again.
const POLL_MS: u64 = 10;

struct Node {
    id: u64,
    parent: u64,
    cap: Container,
}

struct Record {
    container: u64,
    pid: u64,
    handle: ProcessHandle,
}

struct Service {
    name: String,
    /// Send-only capability, duplicated for every lookup.
    endpoint: Endpoint,
    generation: u64,
    /// Supervised: the command, restarts left, and the running instance's pid.
    supervised: Option<(Vec<u8>, u64, u64)>,
}

struct Server {
    root: Container,
    root_id: u64,
    /// Send-only capability to ourselves, handed to every child first.
    client: Endpoint,
    hardware: Vec<u32>,
    /// By id: visibility checks walk up the tree in O(depth × log n).
    containers: BTreeMap<u64, Node>,
    processes: Vec<Record>,
    services: Vec<Service>,
}

fn main() -> i32 {
    let handles = vessel_rt::handles();
    let kind = |h: u32| Cap(h).inspect().map(|i| i.kind).unwrap_or(0);
    let Some(&ep) = handles.iter().find(|&&h| kind(h) == ObjectKind::Endpoint as u32) else {
        println!("proc: no endpoint to serve");
        return 1;
    };
    let Some(&root) = handles.iter().find(|&&h| kind(h) == ObjectKind::Container as u32) else {
        println!("proc: no root container capability");
        return 1;
    };
    let (endpoint, root) = (Endpoint(Cap(ep)), Container(Cap(root)));
    let hardware = handles.iter().copied().filter(|&h| h != ep && h != root.0.0).collect();
    if let Err(e) = container::register_service(endpoint, root) {
        println!("proc: cannot register its endpoint: {e}");
        return 1;
    }
    let Ok(client) = endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE) else {
        println!("proc: cannot make client capabilities");
        return 1;
    };
    let root_id = root.id().unwrap_or(0);
    println!("proc: serving; root container {root_id:#018x}");
    let mut server = Server {
        root,
        root_id,
        client: Endpoint(client),
        hardware,
        containers: BTreeMap::from([(root_id, Node { id: root_id, parent: 0, cap: root })]),
        processes: Vec::new(),
        services: Vec::new(),
    };
    loop {
        match endpoint.recv_timeout(POLL_MS * 1_000_000) {
            Ok(message) => {
                let (words, meta, sent) = server.handle(&message);
                if ipc::reply(words, meta).is_err() {
                    // The capabilities did not move (the caller died, or its container is out
                    // of capability slots): they must not pile up here.
                    for h in sent {
                        let _ = Cap(h).delete();
                    }
                }
            }
            Err(Error::TimedOut) => {}
            Err(e) => {
                println!("proc: receive failed: {e}");
                return 1;
            }
        }
        server.supervise();
    }
}

fn failed(e: Error) -> Reply<'static> {
    Reply::Failed { code: e as u64 }
}

impl Server {
    /// Answers one request; the reply (and any capability) is staged in the IPC buffer. Also
    /// returns the capabilities staged, which stay ours if the reply fails.
    fn handle(&mut self, message: &ipc::Received) -> ([u64; 4], Meta, Vec<u32>) {
        // SAFETY: the request is read, and the reply staged, before the next IPC.
        let buf = unsafe { buffer() };
        let caller = buf.sender_container;
        let received = usize::from(message.meta.cap_count).min(buf.caps.len());
        let caps: Vec<u32> = buf.caps[..received].to_vec();
        let len = usize::from(message.meta.data_len).min(buf.data.len());
        let data: Vec<u8> = buf.data[..len].to_vec();
        let mut out_caps: Vec<u32> = Vec::new();
        let mut list: Vec<(u64, u64)> = Vec::new();
        let reply = match Request::parse(&message.words, &data) {
            Ok(request) => self.answer(caller, request, &caps, &mut out_caps, &mut list),
            Err(_) => failed(Error::InvalidArgument),
        };
        // Capabilities that came with the request and were not kept go now.
        for &h in &caps {
            if !self.keeps(h) {
                let _ = Cap(h).delete();
            }
        }
        // SAFETY: as above.
        let buf = unsafe { buffer() };
        let mut words = [0; 4];
        let n = if let Reply::List { .. } = reply {
            let mut bytes = Vec::with_capacity(list.len() * 16);
            for (a, b) in list.iter().take(MAX_LIST) {
                bytes.extend_from_slice(&a.to_le_bytes());
                bytes.extend_from_slice(&b.to_le_bytes());
            }
            Reply::List { count: list.len().min(MAX_LIST) as u64, data: &bytes }.write(&mut words, &mut buf.data)
        } else {
            reply.write(&mut words, &mut buf.data)
        };
        for (slot, &h) in buf.caps.iter_mut().zip(&out_caps) {
            *slot = h;
        }
        (words, Meta { data_len: n as u16, cap_count: out_caps.len() as u8, flags: 0 }, out_caps)
    }

    fn keeps(&self, handle: u32) -> bool {
        self.services.iter().any(|s| s.endpoint.0.0 == handle)
    }

    /// The container `id` names for a caller in `caller` (0: the caller's own), if the caller
    /// may act on it: its own or a descendant.
    fn visible(&self, caller: u64, id: u64) -> Result<&Node, Error> {
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

    fn below(&self, top: u64, id: u64) -> bool {
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

    fn answer(
        &mut self,
        caller: u64,
        request: Request<'_>,
        caps: &[u32],
        out_caps: &mut Vec<u32>,
        list: &mut Vec<(u64, u64)>,
    ) -> Reply<'static> {
        let result = match request {
            Request::Spawn { container, command } => {
                self.visible(caller, container).map(|n| (n.id, n.cap)).and_then(|(id, cap)| {
                    self.spawn(id, cap, command, caps).map(|pid| Reply::Spawned { pid, container: id })
                })
            }
            Request::Wait { container, pid } => self.wait(caller, container, pid),
            Request::Kill { container, pid } => self.find(caller, container, pid).and_then(|i| {
                let handle = self.processes[i].handle;
                handle.kill().map(|()| Reply::Done)
            }),
            Request::Processes { container } => self.visible(caller, container).map(|n| n.id).map(|top| {
                list.extend(
                    self.processes.iter().filter(|r| self.below(top, r.container)).map(|r| (r.container, r.pid)),
                );
                Reply::List { count: 0, data: &[] }
            }),
            Request::Create { parent, limits } => self.create(caller, parent, limits),
            Request::Destroy { container } => self.destroy(caller, container),
            Request::Containers => {
                list.extend(self.containers.values().filter(|n| self.below(caller, n.id)).map(|n| (n.id, n.parent)));
                Ok(Reply::List { count: 0, data: &[] })
            }
            Request::Info { container } => self.visible(caller, container).and_then(|n| n.cap.info()).map(|i| {
                let mut fields = [
                    i.id,
                    i.parent,
                    u64::from(i.state),
                    u64::from(i.depth),
                    i.children,
                    i.members,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ];
                fields[6..11].copy_from_slice(&i.limits);
                fields[11..16].copy_from_slice(&i.usage);
                Reply::Info { fields }
            }),
            Request::Register { name } => self.register(caller, name, caps),
            Request::Lookup { name } => self.lookup(name, out_caps),
            Request::Supervise { restarts, name_len, data } => {
                let (name, command) = data.split_at(name_len as usize);
                self.start_supervised(caller, name, restarts, command)
            }
        };
        result.unwrap_or_else(failed)
    }

    fn spawn(&mut self, container: u64, cap: Container, command: Command<'_>, caps: &[u32]) -> Result<u64, Error> {
        let parts: Vec<&str> = command.parts().collect();
        let (path, args) = parts.split_first().ok_or(Error::InvalidArgument)?;
        let mut passed = alloc::vec![self.client.0.0];
        // Only the system's own programs (the root container) see the hardware.
        if container == self.root_id {
            passed.extend_from_slice(&self.hardware);
        }
        // The caller's capabilities come last, so a program finds them from the end.
        passed.extend_from_slice(caps);
        let handle = process::spawn_in(cap.0, path, args, &passed)?;
        let pid = handle.0.inspect().map(|i| i.detail)?;
        self.processes.push(Record { container, pid, handle });
        Ok(pid)
    }

    fn find(&self, caller: u64, container: u64, pid: u64) -> Result<usize, Error> {
        let id = self.visible(caller, container)?.id;
        self.processes.iter().position(|r| r.container == id && r.pid == pid).ok_or(Error::NoSuchProcess)
    }

    fn wait(&mut self, caller: u64, container: u64, pid: u64) -> Result<Reply<'static>, Error> {
        let i = self.find(caller, container, pid)?;
        // A supervised service is reaped (and restarted) by proc alone.
        if self.processes[i].container == self.root_id
            && self.services.iter().any(|s| s.supervised.as_ref().is_some_and(|&(_, _, p)| p == pid))
        {
            return Err(Error::AccessDenied);
        }
        let handle = self.processes[i].handle;
        if vessel_rt::sys::process_info_handle(handle.0.0)?.state != 2 {
            return Ok(Reply::Running);
        }
        let exit = process::wait_handle(handle)?;
        let _ = handle.0.delete();
        self.processes.swap_remove(i);
        Ok(Reply::Exited(match exit {
            Exit::Code(code) => Ending::Code(code),
            Exit::Fault { .. } => Ending::Fault,
            Exit::Killed => Ending::Killed,
        }))
    }

    fn create(&mut self, caller: u64, parent: u64, limits: Limits) -> Result<Reply<'static>, Error> {
        let node = self.visible(caller, parent)?;
        let (parent_id, parent_cap) = (node.id, node.cap);
        let cap = parent_cap.create_child(&ContainerLimits { amounts: limits.0 })?;
        let id = cap.id()?;
        self.containers.insert(id, Node { id, parent: parent_id, cap });
        Ok(Reply::Created { id })
    }

    fn destroy(&mut self, caller: u64, container: u64) -> Result<Reply<'static>, Error> {
        let node = self.visible(caller, container)?;
        if node.id == caller || node.id == self.root_id {
            return Err(Error::AccessDenied);
        }
        let top = node.id;
        node.cap.destroy()?;
        // Everything in and below it ended: reap the processes, forget the containers.
        let mut i = 0;
        while i < self.processes.len() {
            if self.below(top, self.processes[i].container) {
                let handle = self.processes.swap_remove(i).handle;
                let _ = process::wait_handle(handle);
                let _ = handle.0.delete();
            } else {
                i += 1;
            }
        }
        let doomed: Vec<u64> = self.containers.keys().copied().filter(|&id| self.below(top, id)).collect();
        for id in doomed {
            if let Some(node) = self.containers.remove(&id) {
                let _ = node.cap.0.delete();
            }
        }
        Ok(Reply::Done)
    }

    fn register(&mut self, caller: u64, name: &[u8], caps: &[u32]) -> Result<Reply<'static>, Error> {
        if caller != self.root_id {
            return Err(Error::AccessDenied);
        }
        let &[handle] = caps else { return Err(Error::InvalidArgument) };
        let name = core::str::from_utf8(name).map_err(|_| Error::InvalidArgument)?;
        if self.services.iter().any(|s| s.name == name) {
            return Err(Error::InvalidArgument);
        }
        let endpoint = Endpoint(Cap(handle));
        container::register_service(endpoint, self.root)?;
        let send = endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE)?;
        let _ = endpoint.0.delete();
        self.services.push(Service {
            name: String::from(name),
            endpoint: Endpoint(send),
            generation: 0,
            supervised: None,
        });
        Ok(Reply::Done)
    }

    fn lookup(&self, name: &[u8], out_caps: &mut Vec<u32>) -> Result<Reply<'static>, Error> {
        let service = self.services.iter().find(|s| s.name.as_bytes() == name).ok_or(Error::NotFound)?;
        let copy = service.endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER)?;
        out_caps.push(copy.0);
        Ok(Reply::Service { generation: service.generation })
    }

    fn start_supervised(
        &mut self,
        caller: u64,
        name: &[u8],
        restarts: u64,
        command: &[u8],
    ) -> Result<Reply<'static>, Error> {
        if caller != self.root_id {
            return Err(Error::AccessDenied);
        }
        let name = core::str::from_utf8(name).map_err(|_| Error::InvalidArgument)?;
        if self.services.iter().any(|s| s.name == name) {
            return Err(Error::InvalidArgument);
        }
        let (endpoint, pid) = self.start_instance(command)?;
        self.services.push(Service {
            name: String::from(name),
            endpoint,
            generation: 0,
            supervised: Some((command.to_vec(), restarts, pid)),
        });
        Ok(Reply::Spawned { pid, container: self.root_id })
    }

    /// Starts one instance of a service: a fresh endpoint (the service gets the receiving
    /// copy as its second handle; `proc` keeps only a send-only one).
    fn start_instance(&mut self, command: &[u8]) -> Result<(Endpoint, u64), Error> {
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
        let spawned = self.spawn(self.root_id, self.root, Command { blob: command }, &[endpoint.0.0]);
        let _ = endpoint.0.delete();
        match spawned {
            Ok(pid) => Ok((Endpoint(send), pid)),
            Err(e) => {
                let _ = send.delete();
                Err(e)
            }
        }
    }

    /// Restarts supervised services whose instance died.
    fn supervise(&mut self) {
        for s in 0..self.services.len() {
            let Some((_, _, pid)) = self.services[s].supervised else { continue };
            // No record, or no answer about it, counts as dead: restart rather than never.
            let exit = match self.processes.iter().position(|r| r.container == self.root_id && r.pid == pid) {
                Some(i) => {
                    let handle = self.processes[i].handle;
                    if vessel_rt::sys::process_info_handle(handle.0.0).is_ok_and(|info| info.state != 2) {
                        continue;
                    }
                    let exit = process::wait_handle(handle);
                    let _ = handle.0.delete();
                    self.processes.swap_remove(i);
                    exit
                }
                None => Err(Error::NoSuchProcess),
            };
            // Dropping our send copy leaves the dead endpoint with no receiver: every client of
            // this instance gets PeerDied.
            let _ = self.services[s].endpoint.0.delete();
            let service = &mut self.services[s];
            let Some((command, left, _)) = service.supervised.take() else { continue };
            println!("proc: service {} (generation {}) ended: {exit:?}", service.name, service.generation);
            if left == 0 {
                println!("proc: service {} has no restarts left", service.name);
                self.services.swap_remove(s);
                return;
            }
            match self.start_instance(&command) {
                Ok((endpoint, pid)) => {
                    let service = &mut self.services[s];
                    service.endpoint = endpoint;
                    service.generation += 1;
                    service.supervised = Some((command, left - 1, pid));
                    println!("proc: service {} restarted as generation {}", service.name, service.generation);
                }
                Err(e) => {
                    println!("proc: cannot restart service {}: {e}", self.services[s].name);
                    self.services.swap_remove(s);
                    return;
                }
            }
        }
    }
}
