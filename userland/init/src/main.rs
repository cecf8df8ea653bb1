//! `init`, the first user process. The kernel starts it with the boot file system mapped and
//! the initial capabilities (the platform capability and the root container). It starts `proc`
//! first, handing it the root container and the `proc` endpoint; from then on every program
//! starts through `proc`. It asks `proc` to supervise `device`, the one program that gets the
//! platform capability, then `vfs`, the file server. It reads `etc/init.conf` and asks `proc` to run each listed program in
//! turn, reporting how each one ended. Then it stays alive (sleeping), as the root of the
//! process tree must.
//!
//! `etc/init.conf`: one program per line, `path arg...`; blank lines and `#` comments ignored.
//! A line starting with `!` marks a trusted system program: it also gets a capability to the
//! root container (tests and benchmarks that drive the kernel's container calls directly). A
//! line starting with `!!` also gets a platform capability (test images only: tests of the
//! kernel's hardware objects); no shipped image has one.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_rt::abi::{ObjectKind, Rights};
use vessel_rt::ipc::{Cap, Endpoint};
use vessel_rt::platform::Platform;
use vessel_rt::proc::Proc;
use vessel_rt::{println, process};

vessel_rt::entry!(main);

/// How often `proc` restarts a `device` server that died.
const DEVICE_RESTARTS: u64 = 16;

/// How often `proc` restarts a `vfs` server that died.
const VFS_RESTARTS: u64 = 16;

/// Longest argument list a config line may have.
const MAX_ARGS: usize = 32;

fn main() -> i32 {
    println!("init: started as process {}", vessel_rt::pid());
    let Some(bootfs) = vessel_rt::bootfs() else {
        println!("init: the kernel gave no boot file system");
        return 1;
    };
    let archive = match vessel_bootfs::Archive::new(bootfs) {
        Ok(archive) => archive,
        Err(e) => {
            println!("init: {e}");
            return 1;
        }
    };
    let Some(conf) = archive.get("etc/init.conf") else {
        println!("init: no etc/init.conf in the boot file system");
        return 1;
    };
    let root = vessel_rt::handles()
        .iter()
        .copied()
        .find(|&h| Cap(h).inspect().is_ok_and(|i| i.kind == ObjectKind::Container as u32));
    let Some(proc) = start_proc(root) else { return 1 };
    let platform = Platform::inherited();
    start_device(proc, platform);
    if let Err(e) = proc.supervise("vfs", VFS_RESTARTS, "bin/vfs", &[]) {
        println!("init: cannot start the vfs server: {e}");
    }
    let text = core::str::from_utf8(conf.data).unwrap_or("");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (trusted, hardware, line) = match (line.strip_prefix("!!"), line.strip_prefix('!')) {
            (Some(rest), _) => (true, true, rest.trim_start()),
            (None, Some(rest)) => (true, false, rest.trim_start()),
            (None, None) => (false, false, line),
        };
        let mut words = line.split_whitespace();
        let Some(path) = words.next() else { continue };
        let mut args = [""; MAX_ARGS];
        let mut count = 0;
        for word in words.by_ref().take(MAX_ARGS) {
            args[count] = word;
            count += 1;
        }
        if words.next().is_some() {
            println!("init: {path}: more than {MAX_ARGS} arguments; not started");
            continue;
        }
        let mut passed = alloc::vec::Vec::new();
        let copies = [(trusted, root), (hardware, platform.map(|p| p.0.0))];
        for (wanted, cap) in copies {
            if let (true, Some(cap)) = (wanted, cap)
                && let Ok(copy) = Cap(cap).duplicate(Rights::all())
            {
                passed.push(copy.0);
            }
        }
        let result = proc.spawn(0, path, &args[..count], &passed).and_then(|(pid, _)| proc.wait(0, pid));
        match result {
            Ok(ending) => println!("init: {path} {ending}"),
            Err(e) => println!("init: cannot run {path}: {e}"),
        }
    }
    // Nothing else may get hardware from here on.
    if let Some(platform) = platform {
        let _ = platform.0.delete();
    }
    println!("init: all programs finished");
    loop {
        vessel_rt::time::sleep_ms(60_000);
    }
}

/// Asks `proc` to supervise `device` with a copy of the platform capability.
fn start_device(proc: Proc, platform: Option<Platform>) {
    let Some(platform) = platform else {
        println!("init: the kernel gave no platform capability; no device server");
        return;
    };
    let copy = match platform.0.duplicate(Rights::all()) {
        Ok(copy) => copy,
        Err(e) => {
            println!("init: cannot copy the platform capability: {e}");
            return;
        }
    };
    if let Err(e) = proc.supervise_with("device", DEVICE_RESTARTS, "bin/device", &[], &[copy.0]) {
        println!("init: cannot start the device server: {e}");
    }
}

/// Starts `proc` with the root container and the receiving side of a new endpoint; keeps a
/// send-only capability to it.
fn start_proc(root: Option<u32>) -> Option<Proc> {
    let endpoint = match Endpoint::create() {
        Ok(e) => e,
        Err(e) => {
            println!("init: cannot create the proc endpoint: {e}");
            return None;
        }
    };
    let client = endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE).ok()?;
    let mut caps = alloc::vec![endpoint.0.0];
    caps.extend(root);
    if let Err(e) = process::spawn_with_caps("bin/proc", &[], &caps) {
        println!("init: cannot start proc: {e}");
        return None;
    }
    // Only proc may receive on it: when proc dies, callers get PeerDied rather than waiting.
    let _ = endpoint.0.delete();
    Some(Proc(Endpoint(client)))
}
