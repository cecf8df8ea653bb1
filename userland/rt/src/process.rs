//! Starting and waiting for programs.

use alloc::vec::Vec;

use vessel_abi::{Error, Exit, Priority, ProcessInfo, SpawnRequest};

use crate::ipc::{Cap, ProcessHandle};

/// Starts `path` from the boot file system with `args` (`argv[0]` is the path) at `priority`.
pub fn spawn_with(path: &str, args: &[&str], priority: Priority) -> Result<u64, Error> {
    spawn_full(path, args, priority, &[])
}

/// Starts `path` handing it copies of the capabilities `caps` (see `vessel_rt::handles`).
pub fn spawn_with_caps(path: &str, args: &[&str], caps: &[u32]) -> Result<u64, Error> {
    spawn_full(path, args, Priority::Normal, caps)
}

fn spawn_full(path: &str, args: &[&str], priority: Priority, caps: &[u32]) -> Result<u64, Error> {
    let blob = arg_blob(path, args);
    let mut request = request(path.as_bytes(), &blob, &[], caps);
    request.priority = priority as u32;
    crate::sys::spawn(&request)
}

/// Starts `path` in the container a container capability names (needs MANAGE; every cap must
/// belong to that container or be a service endpoint). Returns a process capability: pids
/// name processes only inside their own container.
pub fn spawn_in(container: Cap, path: &str, args: &[&str], caps: &[u32]) -> Result<ProcessHandle, Error> {
    spawn_in_env(container, path, args, &[], caps)
}

/// [`spawn_in`] with the environment `env`: NUL-terminated `NAME=value` strings.
pub fn spawn_in_env(
    container: Cap,
    path: &str,
    args: &[&str],
    env: &[u8],
    caps: &[u32],
) -> Result<ProcessHandle, Error> {
    spawn_there(container, path.as_bytes(), path, args, env, caps, 0)
}

/// Waits for a child placed in another container.
pub fn wait_handle(child: ProcessHandle) -> Result<Exit, Error> {
    crate::sys::wait_handle(child.0.0).map(|s| s.exit())
}

/// Starts the ELF `image` (a program read from a file; named `path`, its `argv[0]`) in the
/// container a container capability names, as [`spawn_in`] does for boot file system paths.
pub fn spawn_image_in(
    container: Cap,
    image: &[u8],
    path: &str,
    args: &[&str],
    env: &[u8],
    caps: &[u32],
) -> Result<ProcessHandle, Error> {
    spawn_there(container, image, path, args, env, caps, vessel_abi::SPAWN_IMAGE)
}

/// Spawns in another container: `program` is the path or the image, as `flags` says.
fn spawn_there(
    container: Cap,
    program: &[u8],
    path: &str,
    args: &[&str],
    env: &[u8],
    caps: &[u32],
    flags: u32,
) -> Result<ProcessHandle, Error> {
    let blob = arg_blob(path, args);
    let mut request = request(program, &blob, env, caps);
    request.flags = flags;
    request.container = u64::from(container.0);
    crate::sys::spawn(&request).map(|h| ProcessHandle(Cap(h as u32)))
}

/// A request for `path` (or an image), its argument blob, environment and capabilities, at
/// normal priority in the caller's container.
fn request(path: &[u8], args: &[u8], env: &[u8], caps: &[u32]) -> SpawnRequest {
    SpawnRequest {
        path_ptr: path.as_ptr() as u64,
        path_len: path.len() as u64,
        args_ptr: args.as_ptr() as u64,
        args_len: args.len() as u64,
        priority: Priority::Normal as u32,
        flags: 0,
        caps_ptr: caps.as_ptr() as u64,
        caps_len: caps.len() as u64,
        container: 0,
        env_ptr: env.as_ptr() as u64,
        env_len: env.len() as u64,
    }
}

/// `path\0arg\0...\0`: the argument blob of a `SpawnRequest`.
fn arg_blob(path: &str, args: &[&str]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(path.len() + 1 + args.iter().map(|a| a.len() + 1).sum::<usize>());
    for part in core::iter::once(&path).chain(args) {
        blob.extend_from_slice(part.as_bytes());
        blob.push(0);
    }
    blob
}

/// Starts `path` with `args` at normal priority.
pub fn spawn(path: &str, args: &[&str]) -> Result<u64, Error> {
    spawn_with(path, args, Priority::Normal)
}

/// Waits for a child and returns how it ended.
pub fn wait(pid: u64) -> Result<Exit, Error> {
    crate::sys::wait(pid).map(|s| s.exit())
}

/// Runs a program to completion.
pub fn run(path: &str, args: &[&str]) -> Result<Exit, Error> {
    wait(spawn(path, args)?)
}

/// Ends a child.
pub fn kill(pid: u64) -> Result<(), Error> {
    crate::sys::kill(pid)
}

/// A child's (or our own) state and CPU use.
pub fn info(pid: u64) -> Result<ProcessInfo, Error> {
    crate::sys::process_info(pid)
}
