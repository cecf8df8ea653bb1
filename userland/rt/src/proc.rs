//! Client of the `proc` server (`vessel_proc_protocol`): processes, containers and services.
//! Every program `proc` starts finds a capability to it first in its handle table; [`Proc::get`]
//! returns it.

use alloc::string::String;
use alloc::vec::Vec;

use vessel_abi::{ContainerInfo, Error, Meta};
use vessel_proc_protocol::{Client, Ending, Limits, command_line};
use vessel_protocol::Refusal;

use crate::ipc::{Cap, Endpoint};

/// A `proc` client: the declared protocol's [`Client`] over the `proc` endpoint, with the
/// replies unpacked into plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc(pub Endpoint);

impl Proc {
    /// The `proc` capability a program started by `proc` receives first.
    pub fn get() -> Option<Proc> {
        crate::handles().first().map(|&h| Proc(Endpoint(Cap(h))))
    }

    /// The typed client of the protocol, for calls this wrapper does not unpack.
    pub fn client(self) -> Client<Endpoint> {
        Client::new(self.0)
    }

    /// Starts `path` in `container` (0: the caller's), passing `caps` (they move). Returns
    /// `(pid, container id)`.
    pub fn spawn(self, container: u64, path: &str, args: &[&str], caps: &[u32]) -> Result<(u64, u64), Refusal> {
        self.spawn_env(container, path, args, &[], caps)
    }

    /// [`Proc::spawn`] with an environment: NUL-terminated `NAME=value` strings.
    pub fn spawn_env(
        self,
        container: u64,
        path: &str,
        args: &[&str],
        env: &[u8],
        caps: &[u32],
    ) -> Result<(u64, u64), Refusal> {
        let spawned = self.client().spawn(container, &command_line(path, args), env, caps)?;
        Ok((spawned.pid, spawned.container))
    }

    /// Waits until the process ends (`proc` keeps the reply until then) and reaps it.
    pub fn wait(self, container: u64, pid: u64) -> Result<Ending, Refusal> {
        self.client().wait(container, pid).map(|e| e.ending)
    }

    /// Like [`wait`](Self::wait), refused with `TimedOut` after `timeout_ns`.
    pub fn wait_timeout(self, container: u64, pid: u64, timeout_ns: u64) -> Result<Ending, Refusal> {
        self.client().wait_timeout(container, pid, timeout_ns).map(|e| e.ending)
    }

    /// How the process ended (reaping it), or `None` while it runs.
    pub fn try_wait(self, container: u64, pid: u64) -> Result<Option<Ending>, Refusal> {
        self.client().try_wait(container, pid).map(|s| s.ending)
    }

    /// Ends a process.
    pub fn kill(self, container: u64, pid: u64) -> Result<(), Refusal> {
        self.client().kill(container, pid).map(|_| ())
    }

    /// `(container id, pid)` of every process `proc` started in `container` and below.
    pub fn processes(self, container: u64) -> Result<Vec<(u64, u64)>, Refusal> {
        self.client().processes(container).map(|l| l.pairs)
    }

    /// What process `pid` of `container` (0: the caller's) runs, its state, threads, memory
    /// and CPU time (a process `proc` started there or below).
    pub fn process_info(self, container: u64, pid: u64) -> Result<vessel_proc_protocol::ProcessDetail, Refusal> {
        self.client().process_info(container, pid)
    }

    /// `(id, parent id)` of the caller's container and everything below it.
    pub fn containers(self) -> Result<Vec<(u64, u64)>, Refusal> {
        self.client().containers().map(|l| l.pairs)
    }

    /// A child container of `parent` (0: the caller's). Returns its id.
    pub fn create(self, parent: u64, limits: Limits) -> Result<u64, Refusal> {
        self.create_named(parent, limits, "")
    }

    /// [`Proc::create`] with a name (unique among its siblings; empty: none).
    pub fn create_named(self, parent: u64, limits: Limits, name: &str) -> Result<u64, Refusal> {
        self.client().create(parent, limits, name).map(|c| c.id)
    }

    /// The name container `container` was created with (empty: none).
    pub fn container_name(self, container: u64) -> Result<String, Refusal> {
        self.client().container_name(container).map(|n| n.name)
    }

    /// Destroys a container below the caller's and everything in it.
    pub fn destroy(self, container: u64) -> Result<(), Refusal> {
        self.client().destroy(container).map(|_| ())
    }

    /// A container's state, limits and usage.
    pub fn info(self, container: u64) -> Result<ContainerInfo, Refusal> {
        self.client().info(container).map(|i| i.container())
    }

    /// Registers `endpoint` as service `name` (root container only). The capability moves.
    pub fn register(self, name: &str, endpoint: Endpoint) -> Result<(), Refusal> {
        self.client().register(name, endpoint.0.0).map(|_| ())
    }

    /// A send-only capability to service `name`, and the service's generation (restarts).
    pub fn lookup(self, name: &str) -> Result<(Endpoint, u64), Refusal> {
        self.client().lookup(name).map(|s| (Endpoint(Cap(s.endpoint)), s.generation))
    }

    /// The pid (in the root container) of the process serving `name` now.
    pub fn service_pid(self, name: &str) -> Result<u64, Refusal> {
        let service = self.client().lookup(name)?;
        let _ = Cap(service.endpoint).delete();
        Ok(service.pid)
    }

    /// Starts `path` as supervised service `name` (root container only), restarted at most
    /// `restarts` times. Returns its pid.
    pub fn supervise(self, name: &str, restarts: u64, path: &str, args: &[&str]) -> Result<u64, Refusal> {
        self.supervise_with(name, restarts, path, args, &[])
    }

    /// Like [`supervise`](Self::supervise), handing `caps` (which move to `proc`) to every
    /// instance before its endpoint.
    pub fn supervise_with(
        self,
        name: &str,
        restarts: u64,
        path: &str,
        args: &[&str],
        caps: &[u32],
    ) -> Result<u64, Refusal> {
        self.client().supervise(restarts, name, &command_line(path, args), caps).map(|s| s.pid)
    }
}

/// Lookups a [`Service`] makes after its instance died before it gives up.
const RESTART_LOOKUPS: usize = 8;

/// A client of a supervised service that survives restarts: a call to a dead instance fails
/// with [`ServiceError::Restarted`] carrying the new generation, and the next call goes to the
/// new instance (Hubris-style generations).
#[derive(Clone, Copy, Debug)]
pub struct Service {
    proc: Proc,
    name: &'static str,
    endpoint: Endpoint,
    generation: u64,
}

/// Why a service call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// The instance called died; the service now runs as this generation. Call again.
    Restarted(u64),
    /// Another failure.
    Ipc(Error),
}

impl Service {
    /// Looks the service up.
    pub fn connect(proc: Proc, name: &'static str) -> Result<Service, Refusal> {
        let (endpoint, generation) = proc.lookup(name)?;
        Ok(Service { proc, name, endpoint, generation })
    }

    /// The generation this client talks to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Calls the service with words only.
    pub fn call(&mut self, words: [u64; 4]) -> Result<[u64; 4], ServiceError> {
        match self.endpoint.call(words, Meta::default()) {
            Ok(reply) => Ok(reply.words),
            Err(Error::PeerDied | Error::StaleHandle | Error::InvalidHandle) => {
                // `proc` hears of an instance's death as an event and restarts it before it
                // answers the next request, so one lookup normally finds the new generation;
                // a few more cover a death that is still being torn down.
                for _ in 0..RESTART_LOOKUPS {
                    match self.proc.lookup(self.name) {
                        Ok((endpoint, generation)) if generation != self.generation => {
                            let _ = self.endpoint.0.delete();
                            self.endpoint = endpoint;
                            self.generation = generation;
                            return Err(ServiceError::Restarted(generation));
                        }
                        // Still the dead instance: drop the copy and look again.
                        Ok((endpoint, _)) => {
                            let _ = endpoint.0.delete();
                        }
                        Err(_) => break,
                    }
                    crate::sys::yield_now();
                }
                Err(ServiceError::Ipc(Error::PeerDied))
            }
            Err(e) => Err(ServiceError::Ipc(e)),
        }
    }
}

/// The memory `proc` hands every instance of a supervised service, the same object across
/// restarts ([`vessel_proc_protocol::KEPT_PAGES`]), mapped: where a service keeps what must
/// outlive it, through [`vessel_proc_protocol::kept`].
pub struct KeptMemory {
    bytes: &'static mut [u8],
}

impl KeptMemory {
    /// The kept memory among this process's handles, mapped; `None` if `proc` gave none. It is
    /// the last memory object a service is given (after the capabilities its start named).
    pub fn inherited() -> Option<KeptMemory> {
        use vessel_abi::{MapFlags, ObjectKind, PAGE_SIZE};
        let memory = crate::handles_of(ObjectKind::Memory).next_back().map(crate::ipc::Memory)?;
        let address = memory.map(MapFlags::WRITE).ok()?;
        let len = (vessel_proc_protocol::KEPT_PAGES * PAGE_SIZE) as usize;
        // SAFETY: `len` bytes are mapped writable at `address` for the rest of the process's
        // life (nothing unmaps them), and only this `KeptMemory` refers to them.
        let bytes = unsafe { core::slice::from_raw_parts_mut(address as usize as *mut u8, len) };
        Some(KeptMemory { bytes })
    }

    /// The memory, to read what the last instance kept.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// The memory, to keep something for the next instance.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}
