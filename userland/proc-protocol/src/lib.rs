//! The `proc` protocol: spawn, wait, kill and list processes; create, destroy, list and inspect
//! containers; register, look up and supervise system services. See `docs/proc.md`.
//!
//! Names: a process is named by `(container id, pid)`, where the pid is the one it has inside
//! its container (the first process of a container is pid 1). Container 0 means "the caller's
//! own container" (the kernel stamps it on every request). A caller sees and acts only on its
//! own container and its descendants.
//!
//! Capabilities travel beside the words: a `Spawn` may carry up to [`MAX_PASSED_CAPS`]
//! capabilities for the child, a `Register` carries the service endpoint, and a `Service` reply
//! carries a send-only capability to it. The caller stages and reads them in its IPC buffer.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub use vessel_protocol::DecodeError;

/// Capabilities a `Spawn` may pass to the child (after the `proc` endpoint, which every child
/// started by `proc` finds first in its handle table).
pub const MAX_PASSED_CAPS: usize = 3;
/// Longest service name.
pub const MAX_NAME: usize = 32;
/// Most entries in one list reply.
pub const MAX_LIST: usize = 4096 / 16;
/// Quota resources, in the order of [`Limits`] (pages, processes, threads, objects, cap slots).
pub const RESOURCES: usize = 5;
/// "As much as the parent has left" in [`Limits`].
pub const UNLIMITED: u64 = u64::MAX;

mod label {
    pub const SPAWN: u64 = 1;
    pub const WAIT: u64 = 2;
    pub const KILL: u64 = 3;
    pub const PROCESSES: u64 = 4;
    pub const CREATE: u64 = 5;
    pub const DESTROY: u64 = 6;
    pub const CONTAINERS: u64 = 7;
    pub const INFO: u64 = 8;
    pub const REGISTER: u64 = 9;
    pub const LOOKUP: u64 = 10;
    pub const SUPERVISE: u64 = 11;

    pub const SPAWNED: u64 = 0x101;
    pub const EXITED: u64 = 0x102;
    pub const RUNNING: u64 = 0x103;
    pub const DONE: u64 = 0x104;
    pub const LIST: u64 = 0x105;
    pub const CREATED: u64 = 0x106;
    pub const INFO_REPLY: u64 = 0x107;
    pub const SERVICE: u64 = 0x108;
    pub const FAILED: u64 = 0x1ff;
}

/// Quota limits of a new container, indexed like [`RESOURCES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits(pub [u64; RESOURCES]);

impl Default for Limits {
    fn default() -> Self {
        Limits([UNLIMITED; RESOURCES])
    }
}

/// A program and its arguments, NUL-separated (`argv[0]` is the path), as the data part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// `path\0arg\0arg...` without a trailing NUL.
    pub blob: &'a [u8],
}

impl<'a> Command<'a> {
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

/// What a client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Start a program in `container` (0: the caller's); `caps` capabilities come along.
    Spawn {
        /// Target container.
        container: u64,
        /// Program and arguments.
        command: Command<'a>,
    },
    /// How the process ended, or `Running` (never blocks: `proc` serves everyone).
    Wait {
        /// Its container (0: the caller's).
        container: u64,
        /// Its pid there.
        pid: u64,
    },
    /// End a process.
    Kill {
        /// Its container (0: the caller's).
        container: u64,
        /// Its pid there.
        pid: u64,
    },
    /// Processes of a container and its descendants: a `List` of `(container id, pid)`.
    Processes {
        /// The container (0: the caller's).
        container: u64,
    },
    /// A child container of `parent` (0: the caller's).
    Create {
        /// The parent.
        parent: u64,
        /// Its limits.
        limits: Limits,
    },
    /// Destroy a container and everything in and below it.
    Destroy {
        /// The container (never the caller's own).
        container: u64,
    },
    /// Containers at and below the caller's: a `List` of `(id, parent id)`.
    Containers,
    /// A container's state, members, limits and usage.
    Info {
        /// The container (0: the caller's).
        container: u64,
    },
    /// Register the attached endpoint as system service `name` (root container only).
    Register {
        /// Service name.
        name: &'a [u8],
    },
    /// A send-only capability to service `name`, attached to the `Service` reply.
    Lookup {
        /// Service name.
        name: &'a [u8],
    },
    /// Start a program as supervised service `name` in the root container (root only): `proc`
    /// gives it a fresh endpoint (its first handle), registers it, and restarts it (at most
    /// `restarts` times) when it dies.
    Supervise {
        /// How many restarts are allowed.
        restarts: u64,
        /// Length of the name at the start of the data; the command follows it.
        name_len: u64,
        /// `name` then the command.
        data: &'a [u8],
    },
}

/// How a process ended, as `proc` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It called exit with this code.
    Code(i64),
    /// A CPU fault ended it.
    Fault,
    /// It was killed (or its container destroyed).
    Killed,
}

/// What `proc` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The new process's pid in its container.
    Spawned {
        /// Its pid.
        pid: u64,
        /// Its container's id.
        container: u64,
    },
    /// The process ended (and is gone now).
    Exited(Ending),
    /// The process still runs.
    Running,
    /// Done.
    Done,
    /// Pairs of words (see the request); `data` holds `count` little-endian pairs.
    List {
        /// Number of pairs.
        count: u64,
        /// The pairs.
        data: &'a [u8],
    },
    /// The new container's id.
    Created {
        /// Its id.
        id: u64,
    },
    /// A container: `ContainerInfo` fields in the data (see `vessel_abi::ContainerInfo`).
    Info {
        /// Raw `u64` fields: id, parent, state, depth, children, members, limits[5], usage[5].
        fields: [u64; 16],
    },
    /// A capability to the service is attached; `generation` counts its restarts.
    Service {
        /// Restarts so far (0 for the first instance).
        generation: u64,
    },
    /// Refused, with a `vessel_abi::Error` code.
    Failed {
        /// The error code.
        code: u64,
    },
}

/// Largest request data: a command line, or a service name and a command line.
pub const MAX_REQUEST_DATA: usize = 512;

fn name(data: &[u8]) -> Result<&[u8], DecodeError> {
    if data.is_empty() || data.len() > MAX_NAME {
        return Err(DecodeError::BadLength);
    }
    Ok(data)
}

fn command(data: &[u8]) -> Result<Command<'_>, DecodeError> {
    if data.is_empty() || core::str::from_utf8(data).is_err() {
        return Err(DecodeError::BadValue);
    }
    Ok(Command { blob: data })
}

impl<'a> Request<'a> {
    /// Reads a request; any words and bytes give an answer, never a panic.
    pub fn parse(words: &[u64; 4], data: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match words[0] {
            label::SPAWN => Request::Spawn { container: words[1], command: command(data)? },
            label::WAIT => Request::Wait { container: words[1], pid: words[2] },
            label::KILL => Request::Kill { container: words[1], pid: words[2] },
            label::PROCESSES => Request::Processes { container: words[1] },
            label::CREATE => {
                if data.len() != 8 * RESOURCES {
                    return Err(DecodeError::BadLength);
                }
                let mut limits = [0u64; RESOURCES];
                for (i, chunk) in data.chunks_exact(8).enumerate() {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(chunk);
                    limits[i] = u64::from_le_bytes(b);
                }
                Request::Create { parent: words[1], limits: Limits(limits) }
            }
            label::DESTROY => Request::Destroy { container: words[1] },
            label::CONTAINERS => Request::Containers,
            label::INFO => Request::Info { container: words[1] },
            label::REGISTER => Request::Register { name: name(data)? },
            label::LOOKUP => Request::Lookup { name: name(data)? },
            label::SUPERVISE => {
                let name_len = usize::try_from(words[2]).map_err(|_| DecodeError::BadLength)?;
                let (n, rest) = data.split_at_checked(name_len).ok_or(DecodeError::BadLength)?;
                name(n)?;
                command(rest)?;
                Request::Supervise { restarts: words[1], name_len: words[2], data }
            }
            other => return Err(DecodeError::UnknownLabel(other)),
        })
    }

    /// Writes the request; the data length used (0 if the data does not fit `out`).
    pub fn write(&self, words: &mut [u64; 4], out: &mut [u8]) -> usize {
        let put = |out: &mut [u8], bytes: &[u8]| match out.get_mut(..bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                bytes.len()
            }
            None => 0,
        };
        match *self {
            Request::Spawn { container, command } => {
                *words = [label::SPAWN, container, 0, 0];
                put(out, command.blob)
            }
            Request::Wait { container, pid } => {
                *words = [label::WAIT, container, pid, 0];
                0
            }
            Request::Kill { container, pid } => {
                *words = [label::KILL, container, pid, 0];
                0
            }
            Request::Processes { container } => {
                *words = [label::PROCESSES, container, 0, 0];
                0
            }
            Request::Create { parent, limits } => {
                *words = [label::CREATE, parent, 0, 0];
                let mut bytes = [0u8; 8 * RESOURCES];
                for (i, v) in limits.0.iter().enumerate() {
                    bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
                }
                put(out, &bytes)
            }
            Request::Destroy { container } => {
                *words = [label::DESTROY, container, 0, 0];
                0
            }
            Request::Containers => {
                *words = [label::CONTAINERS, 0, 0, 0];
                0
            }
            Request::Info { container } => {
                *words = [label::INFO, container, 0, 0];
                0
            }
            Request::Register { name } => {
                *words = [label::REGISTER, 0, 0, 0];
                put(out, name)
            }
            Request::Lookup { name } => {
                *words = [label::LOOKUP, 0, 0, 0];
                put(out, name)
            }
            Request::Supervise { restarts, name_len, data } => {
                *words = [label::SUPERVISE, restarts, name_len, 0];
                put(out, data)
            }
        }
    }
}

impl<'a> Reply<'a> {
    /// Reads a reply; any words and bytes give an answer, never a panic.
    pub fn parse(words: &[u64; 4], data: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match words[0] {
            label::SPAWNED => Reply::Spawned { pid: words[1], container: words[2] },
            label::EXITED => Reply::Exited(match words[1] {
                0 => Ending::Code(words[2] as i64),
                1 => Ending::Fault,
                2 => Ending::Killed,
                _ => return Err(DecodeError::BadValue),
            }),
            label::RUNNING => Reply::Running,
            label::DONE => Reply::Done,
            label::LIST => {
                let count = words[1];
                let bytes =
                    usize::try_from(count).ok().and_then(|c| c.checked_mul(16)).ok_or(DecodeError::BadLength)?;
                if count as usize > MAX_LIST {
                    return Err(DecodeError::BadLength);
                }
                Reply::List { count, data: data.get(..bytes).unwrap_or(data) }
            }
            label::CREATED => Reply::Created { id: words[1] },
            label::INFO_REPLY => {
                if data.len() != 16 * 8 {
                    return Err(DecodeError::BadLength);
                }
                let mut fields = [0u64; 16];
                for (i, chunk) in data.chunks_exact(8).enumerate() {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(chunk);
                    fields[i] = u64::from_le_bytes(b);
                }
                Reply::Info { fields }
            }
            label::SERVICE => Reply::Service { generation: words[1] },
            label::FAILED => Reply::Failed { code: words[1] },
            other => return Err(DecodeError::UnknownLabel(other)),
        })
    }

    /// Writes the reply; the data length used.
    pub fn write(&self, words: &mut [u64; 4], out: &mut [u8]) -> usize {
        match *self {
            Reply::Spawned { pid, container } => {
                *words = [label::SPAWNED, pid, container, 0];
                0
            }
            Reply::Exited(ending) => {
                *words = match ending {
                    Ending::Code(code) => [label::EXITED, 0, code as u64, 0],
                    Ending::Fault => [label::EXITED, 1, 0, 0],
                    Ending::Killed => [label::EXITED, 2, 0, 0],
                };
                0
            }
            Reply::Running => {
                *words = [label::RUNNING, 0, 0, 0];
                0
            }
            Reply::Done => {
                *words = [label::DONE, 0, 0, 0];
                0
            }
            Reply::List { count, data } => {
                let n = data.len().min(out.len());
                out[..n].copy_from_slice(&data[..n]);
                *words = [label::LIST, count.min((n / 16) as u64), 0, 0];
                n
            }
            Reply::Created { id } => {
                *words = [label::CREATED, id, 0, 0];
                0
            }
            Reply::Info { fields } => {
                *words = [label::INFO_REPLY, 0, 0, 0];
                let mut n = 0;
                for (i, f) in fields.iter().enumerate() {
                    if let Some(dst) = out.get_mut(i * 8..i * 8 + 8) {
                        dst.copy_from_slice(&f.to_le_bytes());
                        n = i * 8 + 8;
                    }
                }
                n
            }
            Reply::Service { generation } => {
                *words = [label::SERVICE, generation, 0, 0];
                0
            }
            Reply::Failed { code } => {
                *words = [label::FAILED, code, 0, 0];
                0
            }
        }
    }
}

/// Reads pair `i` of a list reply's data.
pub fn list_entry(data: &[u8], i: usize) -> Option<(u64, u64)> {
    let at = i.checked_mul(16)?;
    let chunk = data.get(at..at + 16)?;
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&chunk[..8]);
    b.copy_from_slice(&chunk[8..]);
    Some((u64::from_le_bytes(a), u64::from_le_bytes(b)))
}

#[cfg(test)]
mod tests;
