//! Client of the `proc` server (`vessel_proc_protocol`): processes, containers and services.
//! Every program `proc` starts finds a capability to it first in its handle table; [`Proc::get`]
//! returns it.

use alloc::vec::Vec;

use vessel_abi::{ContainerInfo, Error, Meta};
use vessel_proc_protocol::{Command, Ending, Limits, MAX_PASSED_CAPS, MAX_REQUEST_DATA, Reply, Request};

use crate::ipc::{Cap, Endpoint, buffer};

/// How long [`Proc::wait`] sleeps between polls.
const WAIT_POLL_MS: u64 = 2;

/// A `proc` client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc(pub Endpoint);

/// What a request returned, with its list data copied out.
struct Answer {
    words: [u64; 4],
    data: Vec<u8>,
    caps: Vec<u32>,
}

impl Proc {
    /// The `proc` capability a program started by `proc` receives first.
    pub fn get() -> Option<Proc> {
        crate::handles().first().map(|&h| Proc(Endpoint(Cap(h))))
    }

    fn ask(self, request: &Request<'_>, caps: &[u32]) -> Result<Answer, Error> {
        if caps.len() > MAX_PASSED_CAPS {
            return Err(Error::TooLarge);
        }
        let mut words = [0; 4];
        // SAFETY: the request is staged here and the reply read back before any other IPC.
        let buf = unsafe { buffer() };
        let len = request.write(&mut words, &mut buf.data[..MAX_REQUEST_DATA]);
        for (slot, &h) in buf.caps.iter_mut().zip(caps) {
            *slot = h;
        }
        let meta = Meta { data_len: len as u16, cap_count: caps.len() as u8, flags: 0 };
        let reply = self.0.call(words, meta)?;
        // SAFETY: as above.
        let buf = unsafe { buffer() };
        let n = usize::from(reply.meta.data_len).min(buf.data.len());
        let got = usize::from(reply.meta.cap_count).min(buf.caps.len());
        Ok(Answer { words: reply.words, data: buf.data[..n].to_vec(), caps: buf.caps[..got].to_vec() })
    }

    /// Asks, turning a `Failed` reply into its error.
    fn ask_ok(self, request: &Request<'_>, caps: &[u32]) -> Result<Answer, Error> {
        let answer = self.ask(request, caps)?;
        if let Ok(Reply::Failed { code }) = Reply::parse(&answer.words, &answer.data) {
            return Err(Error::from_code(code));
        }
        Ok(answer)
    }

    /// Starts `path` in `container` (0: the caller's), passing `caps`. Returns `(pid, container id)`.
    pub fn spawn(self, container: u64, path: &str, args: &[&str], caps: &[u32]) -> Result<(u64, u64), Error> {
        let mut blob = [0u8; MAX_REQUEST_DATA];
        let len = vessel_proc_protocol::encode_command(path, args, &mut blob).ok_or(Error::TooLarge)?;
        let a = self.ask_ok(&Request::Spawn { container, command: Command { blob: &blob[..len] } }, caps)?;
        match Reply::parse(&a.words, &a.data) {
            Ok(Reply::Spawned { pid, container }) => Ok((pid, container)),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// How the process ended, or `None` while it runs.
    pub fn try_wait(self, container: u64, pid: u64) -> Result<Option<Ending>, Error> {
        let a = self.ask_ok(&Request::Wait { container, pid }, &[])?;
        match Reply::parse(&a.words, &a.data) {
            Ok(Reply::Exited(ending)) => Ok(Some(ending)),
            Ok(Reply::Running) => Ok(None),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Waits (polling: `proc` never blocks for one client) until the process ends.
    pub fn wait(self, container: u64, pid: u64) -> Result<Ending, Error> {
        loop {
            if let Some(ending) = self.try_wait(container, pid)? {
                return Ok(ending);
            }
            crate::time::sleep_ms(WAIT_POLL_MS);
        }
    }

    /// Ends a process.
    pub fn kill(self, container: u64, pid: u64) -> Result<(), Error> {
        self.ask_ok(&Request::Kill { container, pid }, &[]).map(|_| ())
    }

    /// `(container id, pid)` of every process `proc` started in `container` and below.
    pub fn processes(self, container: u64) -> Result<Vec<(u64, u64)>, Error> {
        self.list(&Request::Processes { container })
    }

    /// `(id, parent id)` of the caller's container and everything below it.
    pub fn containers(self) -> Result<Vec<(u64, u64)>, Error> {
        self.list(&Request::Containers)
    }

    fn list(self, request: &Request<'_>) -> Result<Vec<(u64, u64)>, Error> {
        let answer = self.ask_ok(request, &[])?;
        let Ok(Reply::List { count, .. }) = Reply::parse(&answer.words, &answer.data) else {
            return Err(Error::InvalidArgument);
        };
        Ok((0..count as usize).filter_map(|i| vessel_proc_protocol::list_entry(&answer.data, i)).collect())
    }

    /// A child container of `parent` (0: the caller's). Returns its id.
    pub fn create(self, parent: u64, limits: Limits) -> Result<u64, Error> {
        let a = self.ask_ok(&Request::Create { parent, limits }, &[])?;
        match Reply::parse(&a.words, &a.data) {
            Ok(Reply::Created { id }) => Ok(id),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Destroys a container below the caller's and everything in it.
    pub fn destroy(self, container: u64) -> Result<(), Error> {
        self.ask_ok(&Request::Destroy { container }, &[]).map(|_| ())
    }

    /// A container's state, limits and usage.
    pub fn info(self, container: u64) -> Result<ContainerInfo, Error> {
        let answer = self.ask_ok(&Request::Info { container }, &[])?;
        match Reply::parse(&answer.words, &answer.data) {
            Ok(Reply::Info { fields: f }) => Ok(ContainerInfo {
                id: f[0],
                parent: f[1],
                state: f[2] as u32,
                depth: f[3] as u32,
                children: f[4],
                members: f[5],
                limits: [f[6], f[7], f[8], f[9], f[10]],
                usage: [f[11], f[12], f[13], f[14], f[15]],
            }),
            Ok(Reply::Failed { code }) => Err(Error::from_code(code)),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Registers `endpoint` as service `name` (root container only). The capability moves.
    pub fn register(self, name: &str, endpoint: Endpoint) -> Result<(), Error> {
        self.ask_ok(&Request::Register { name: name.as_bytes() }, &[endpoint.0.0]).map(|_| ())
    }

    /// A send-only capability to service `name`, and the service's generation (restarts).
    pub fn lookup(self, name: &str) -> Result<(Endpoint, u64), Error> {
        let a = self.ask_ok(&Request::Lookup { name: name.as_bytes() }, &[])?;
        match (Reply::parse(&a.words, &a.data), a.caps.first()) {
            (Ok(Reply::Service { generation }), Some(&h)) => Ok((Endpoint(Cap(h)), generation)),
            (_, Some(_)) => {
                for &h in &a.caps {
                    let _ = Cap(h).delete();
                }
                Err(Error::InvalidArgument)
            }
            _ => Err(Error::InvalidArgument),
        }
    }

    /// Starts `path` as supervised service `name` (root container only), restarted at most
    /// `restarts` times. Returns its pid.
    pub fn supervise(self, name: &str, restarts: u64, path: &str, args: &[&str]) -> Result<u64, Error> {
        let mut data = [0u8; MAX_REQUEST_DATA];
        let n = name.len();
        data.get_mut(..n).ok_or(Error::TooLarge)?.copy_from_slice(name.as_bytes());
        let len = vessel_proc_protocol::encode_command(path, args, &mut data[n..]).ok_or(Error::TooLarge)?;
        let request = Request::Supervise { restarts, name_len: n as u64, data: &data[..n + len] };
        let a = self.ask_ok(&request, &[])?;
        match Reply::parse(&a.words, &a.data) {
            Ok(Reply::Spawned { pid, .. }) => Ok(pid),
            _ => Err(Error::InvalidArgument),
        }
    }
}

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
    pub fn connect(proc: Proc, name: &'static str) -> Result<Service, Error> {
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
                // Wait for `proc` to notice the death and start the next instance.
                for _ in 0..2000 {
                    match self.proc.lookup(self.name) {
                        Ok((endpoint, generation)) if generation != self.generation => {
                            let _ = self.endpoint.0.delete();
                            self.endpoint = endpoint;
                            self.generation = generation;
                            return Err(ServiceError::Restarted(generation));
                        }
                        // Still the dead instance: drop the copy and look again soon.
                        Ok((endpoint, _)) => {
                            let _ = endpoint.0.delete();
                        }
                        Err(_) => {}
                    }
                    crate::time::sleep_ms(WAIT_POLL_MS);
                }
                Err(ServiceError::Ipc(Error::PeerDied))
            }
            Err(e) => Err(ServiceError::Ipc(e)),
        }
    }
}
