//! The `proc` protocol: spawn, wait for, kill and list processes; create, destroy, list and
//! inspect containers; register, look up and supervise system services. One [`protocol!`]
//! declaration gives the labels, the encoding, the [`Client`], the [`Server`] trait and
//! [`dispatch`]; `docs/proc.md` describes the server and `docs/protocols.md` the encoding.
//!
//! `process_info` tells what one process is and uses (its program's path, which `proc`
//! remembers from the `spawn`, and the kernel's `ProcessInfo`), for tools such as `ps`.
//!
//! Names: a process is named by `(container id, pid)`, where the pid is the one it has inside
//! its container (the first process of a container is pid 1). Container 0 means "the caller's
//! own container" (the kernel stamps it on every request). A caller sees and acts only on its
//! own container and its descendants.
//!
//! Capabilities travel beside the words: `spawn` carries up to [`MAX_PASSED_CAPS`] for the
//! child, `register` the service endpoint, and the `lookup` reply a send-only capability to the
//! service.
//!
//! [`protocol!`]: vessel_protocol::protocol
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod kept;

use alloc::vec::Vec;

use vessel_abi::ContainerInfo;
use vessel_protocol::{DecodeError, Field, Reader, Writer};

/// Capabilities a `spawn` may pass to the child (after the `proc` capability, which every
/// child started by `proc` finds first in its handle table).
pub const MAX_PASSED_CAPS: usize = 3;
/// Pages of the memory object every instance of a supervised service gets (the same object
/// across restarts): 16 KiB.
pub const KEPT_PAGES: u64 = 4;
/// Longest service name, in bytes.
pub const MAX_NAME: usize = 32;
/// Most pairs in one list reply (they fill the data area).
pub const MAX_LIST: usize = vessel_protocol::MAX_DATA / 16;
/// Quota resources, in the order of [`Limits`] (pages, processes, threads, objects, cap slots).
pub const RESOURCES: usize = 5;
/// "As much as the parent has left" in [`Limits`].
pub const UNLIMITED: u64 = u64::MAX;

vessel_protocol::protocol! {
    /// The `proc` server: processes, containers and system services.
    pub protocol "proc" {
        /// Start a program in `container` (0: the caller's). Refused with `TooLarge` if more
        /// than [`MAX_PASSED_CAPS`] capabilities come along.
        1 spawn(
            /// Target container (0: the caller's).
            container: u64,
            /// `path\0arg\0...` without a trailing NUL: see [`encode_command`] and [`Command`].
            path_and_args: bytes,
            /// The child's environment: NUL-terminated `NAME=value` strings (may be empty).
            env: bytes,
            /// Capabilities for the child, after its `proc` capability; they move.
            caps: caps,
        ) -> Spawned {
            /// The new process's pid in its container.
            pid: u64,
            /// Its container's id.
            container: u64,
        };
        /// Wait until the process ends, and reap it. Blocking: `proc` keeps the reply until the
        /// process ends and serves other clients meanwhile. Refused with `AccessDenied` for a
        /// supervised service (only `proc` reaps those).
        2 wait(
            /// Its container (0: the caller's).
            container: u64,
            /// Its pid there.
            pid: u64,
        ) -> Exited {
            /// How it ended.
            ending: Ending,
        };
        /// Like `wait`, but refused with `TimedOut` if the process has not ended after
        /// `timeout_ns` nanoseconds (it keeps running and can be waited for again).
        12 wait_timeout(
            /// Its container (0: the caller's).
            container: u64,
            /// Its pid there.
            pid: u64,
            /// How long to wait, in nanoseconds.
            timeout_ns: u64,
        ) -> Exited;
        /// How the process ended (reaping it), or that it still runs; never blocks.
        13 try_wait(
            /// Its container (0: the caller's).
            container: u64,
            /// Its pid there.
            pid: u64,
        ) -> Status {
            /// `None` while it runs.
            ending: (Option<Ending>),
        };
        /// End a process.
        3 kill(
            /// Its container (0: the caller's).
            container: u64,
            /// Its pid there.
            pid: u64,
        ) -> Done {};
        /// The processes `proc` started in `container` and below it.
        4 processes(
            /// The container (0: the caller's).
            container: u64,
        ) -> List {
            /// `(container id, pid)` for `processes`, `(id, parent id)` for `containers`.
            pairs: pairs,
        };
        /// Create a child container of `parent`.
        5 create(
            /// The parent (0: the caller's).
            parent: u64,
            /// Its quota limits.
            limits: Limits,
            /// Its name (empty: none): at most [`MAX_NAME`] bytes of letters, digits, `-`, `_`
            /// and `.`, not starting with a digit, unique among its siblings (`AlreadyExists`).
            name: str,
        ) -> Created {
            /// The new container's id.
            id: u64,
        };
        /// Destroy a container below the caller's, and everything in and below it.
        6 destroy(
            /// The container (never the caller's own).
            container: u64,
        ) -> Done;
        /// The caller's container and every container below it.
        7 containers() -> List;
        /// A container's state, members, limits and usage ([`Info::container`] reads them).
        8 info(
            /// The container (0: the caller's).
            container: u64,
        ) -> Info {
            /// id, parent, state, depth, children, members, limits[5], usage[5].
            fields: [u64; 16],
        };
        /// Register `endpoint` as system service `name` (root container only).
        9 register(
            /// The service name (1 to [`MAX_NAME`] bytes).
            name: str,
            /// The service's endpoint; it moves to `proc`.
            endpoint: cap,
        ) -> Done;
        /// A send-only capability to service `name`.
        10 lookup(
            /// The service name.
            name: str,
        ) -> Service {
            /// Restarts of the service so far (0 for its first instance).
            generation: u64,
            /// The process serving it now, in the root container (for tools that show or
            /// stop it).
            pid: u64,
            /// A send-only capability to the current instance.
            endpoint: cap,
        };
        /// Start a program as supervised service `name` in the root container (root only):
        /// `proc` gives it `caps` (kept by `proc` and passed again to every restarted
        /// instance), then a memory object of [`KEPT_PAGES`] zeroed pages that is the same for
        /// every instance (where a service keeps what must outlive it: `device` its grants),
        /// then a fresh endpoint as its last capability; it registers the service and restarts
        /// the program (at most `restarts` times) when it dies. Refused with `TooLarge` if more
        /// than [`MAX_PASSED_CAPS`] capabilities come along, `NoMemory`/`QuotaExceeded` if the
        /// kept memory cannot be made.
        11 supervise(
            /// How many restarts are allowed.
            restarts: u64,
            /// The service name (1 to [`MAX_NAME`] bytes).
            name: str,
            /// The program: `path\0arg\0...`, as for `spawn`.
            command: bytes,
            /// Capabilities for every instance (the `device` server's platform capability);
            /// they move to `proc`.
            caps: caps,
        ) -> Spawned;
        /// What one process `proc` started is and uses (for `ps`): its program, state, threads,
        /// memory and CPU time. Refused with `NoSuchContainer` (not the caller's container or
        /// below it) and `NoSuchProcess` (no such process there, or already reaped).
        14 process_info(
            /// Its container (0: the caller's).
            container: u64,
            /// Its pid there.
            pid: u64,
        ) -> ProcessDetail {
            /// The program it runs: the path `spawn` was given (`bin/ps`, `/bin/tool`).
            name: str,
            /// Its container's id.
            container: u64,
            /// Its pid there.
            pid: u64,
            /// Running, blocked, or exited and not yet reaped.
            state: ProcessState,
            /// Live threads.
            threads: u64,
            /// Pages of memory it uses (4 KiB each: image, stack, heap, IPC buffers), as its
            /// container is charged for them.
            pages: u64,
            /// CPU time it used so far, in nanoseconds (counted in timer ticks).
            cpu_ns: u64,
        };
        /// The name a container was created with (empty: none), for the caller's container or
        /// one below it.
        15 container_name(
            /// The container (0: the caller's).
            container: u64,
        ) -> Named {
            /// Its name.
            name: str,
        };
        /// Tie a container below the caller's to the calling process: when that process ends
        /// (however: exit, fault, kill), `proc` destroys the container as `destroy` would, so a
        /// tool such as `ctr run` leaves nothing behind when it is killed. Refused with
        /// `NoSuchContainer` (not below the caller's container), `AccessDenied` (the caller's
        /// own container or the root) and `NoSuchProcess` (a caller `proc` did not start: it
        /// would not see it end).
        16 tie(
            /// The container.
            container: u64,
        ) -> Done;
    }
}

/// What a process is doing (`process_info`). On the wire: a `u8` (0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessState {
    /// Running or ready to run.
    Running,
    /// Every thread waits (for a message, a reply, a notification, a sleep).
    Blocked,
    /// It ended; nobody has waited for it yet.
    Exited,
}

impl ProcessState {
    /// The state from the kernel's `ProcessInfo::state` (0 running, 1 blocked, 2 exited).
    pub fn from_kernel(state: u32) -> ProcessState {
        match state {
            0 => ProcessState::Running,
            1 => ProcessState::Blocked,
            _ => ProcessState::Exited,
        }
    }

    /// The state as one word: `running`, `blocked`, `exited`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Running => "running",
            ProcessState::Blocked => "blocked",
            ProcessState::Exited => "exited",
        }
    }
}

impl core::fmt::Display for ProcessState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Field for ProcessState {
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(match self {
            ProcessState::Running => 0,
            ProcessState::Blocked => 1,
            ProcessState::Exited => 2,
        });
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(ProcessState::Running),
            1 => Ok(ProcessState::Blocked),
            2 => Ok(ProcessState::Exited),
            _ => Err(DecodeError::BadValue),
        }
    }
}

/// How a process ended. On the wire: a `u8` tag (0 code, 1 fault, 2 killed), then for a code
/// the `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It called exit with this code.
    Code(i64),
    /// A CPU fault ended it.
    Fault,
    /// It was killed (or its container destroyed).
    Killed,
}

impl core::fmt::Display for Ending {
    /// How it ended, for people: "exited with code 0", "was killed by a fault", "was killed".
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Ending::Code(code) => write!(f, "exited with code {code}"),
            Ending::Fault => f.write_str("was killed by a fault"),
            Ending::Killed => f.write_str("was killed"),
        }
    }
}

impl Field for Ending {
    fn put(&self, w: &mut Writer<'_>) {
        match *self {
            Ending::Code(code) => {
                w.u8(0);
                code.put(w);
            }
            Ending::Fault => w.u8(1),
            Ending::Killed => w.u8(2),
        }
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Ending::Code(i64::take(r)?)),
            1 => Ok(Ending::Fault),
            2 => Ok(Ending::Killed),
            _ => Err(DecodeError::BadValue),
        }
    }
}

/// Quota limits of a new container, indexed like [`RESOURCES`]. On the wire: five `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits(pub [u64; RESOURCES]);

impl Default for Limits {
    fn default() -> Self {
        Limits([UNLIMITED; RESOURCES])
    }
}

impl Field for Limits {
    fn put(&self, w: &mut Writer<'_>) {
        self.0.put(w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        <[u64; RESOURCES]>::take(r).map(Limits)
    }
}

impl Info {
    /// The fields as the kernel's [`ContainerInfo`].
    pub fn container(&self) -> ContainerInfo {
        let f = &self.fields;
        ContainerInfo {
            id: f[0],
            parent: f[1],
            state: f[2] as u32,
            depth: f[3] as u32,
            children: f[4],
            members: f[5],
            limits: [f[6], f[7], f[8], f[9], f[10]],
            usage: [f[11], f[12], f[13], f[14], f[15]],
        }
    }

    /// The reply describing `info`.
    pub fn from_container(info: &ContainerInfo) -> Info {
        let mut fields = [0u64; 16];
        fields[..6].copy_from_slice(&[
            info.id,
            info.parent,
            u64::from(info.state),
            u64::from(info.depth),
            info.children,
            info.members,
        ]);
        fields[6..11].copy_from_slice(&info.limits);
        fields[11..16].copy_from_slice(&info.usage);
        Info { fields }
    }
}

/// A program and its arguments, NUL-separated (`argv[0]` is the path): the `path_and_args` of
/// `spawn` and the `command` of `supervise`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// `path\0arg\0arg...` without a trailing NUL.
    pub blob: &'a [u8],
}

impl<'a> Command<'a> {
    /// A command from its bytes; `None` if empty or not UTF-8 (a server refuses those).
    pub fn parse(blob: &'a [u8]) -> Option<Command<'a>> {
        (!blob.is_empty() && core::str::from_utf8(blob).is_ok()).then_some(Command { blob })
    }

    /// The program's path.
    pub fn path(&self) -> &'a str {
        self.parts().next().unwrap_or("")
    }

    /// Path, then arguments.
    pub fn parts(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.blob.split(|&b| b == 0).map(|p| core::str::from_utf8(p).unwrap_or(""))
    }
}

/// Writes `path` and `args` NUL-separated into `out`; the length used, or `None` if too long.
pub fn encode_command(path: &str, args: &[&str], out: &mut [u8]) -> Option<usize> {
    let mut at = 0;
    for (i, part) in core::iter::once(&path).chain(args).enumerate() {
        if i > 0 {
            *out.get_mut(at)? = 0;
            at += 1;
        }
        out.get_mut(at..at + part.len())?.copy_from_slice(part.as_bytes());
        at += part.len();
    }
    Some(at)
}

/// `path` and `args` NUL-separated, as `spawn` and `supervise` carry them.
pub fn command_line(path: &str, args: &[&str]) -> Vec<u8> {
    let mut blob = Vec::from(path.as_bytes());
    for arg in args {
        blob.push(0);
        blob.extend_from_slice(arg.as_bytes());
    }
    blob
}

/// Whether `name` can name a container: empty (no name), or at most [`MAX_NAME`] bytes of ASCII
/// letters, digits, `-`, `_` and `.`, not starting with a digit (so it never reads as an id).
pub fn valid_container_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `name` is a valid service name (1 to [`MAX_NAME`] bytes).
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
}

#[cfg(test)]
mod tests;
