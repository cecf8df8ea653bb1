//! `init`, the first user process. The kernel starts it with the boot file system mapped and
//! the initial capabilities (hardware objects and the root container). It starts `proc` first,
//! handing it those capabilities and the `proc` endpoint; from then on every program starts
//! through `proc`. It reads `etc/init.conf` and asks `proc` to run each listed program in turn,
//! reporting how each one ended. Then it stays alive (sleeping), as the root of the process tree
//! must.
//!
//! `etc/init.conf`: one program per line, `path arg...`; blank lines and `#` comments ignored.
//! A line starting with `!` marks a trusted system program: it also gets a capability to the
//! root container (tests and benchmarks that drive the kernel's container calls directly).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_rt::abi::{ObjectKind, Rights};
use vessel_rt::ipc::{Cap, Endpoint};
use vessel_rt::proc::Proc;
use vessel_rt::{println, process};

vessel_rt::entry!(main);

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
    let Some(proc) = start_proc() else { return 1 };
    let root = vessel_rt::handles()
        .iter()
        .copied()
        .find(|&h| Cap(h).inspect().is_ok_and(|i| i.kind == ObjectKind::Container as u32));
    let text = core::str::from_utf8(conf.data).unwrap_or("");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (trusted, line) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, line),
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
        let mut caps = [0u32; 1];
        let passed = match (trusted, root) {
            (true, Some(root)) => match Cap(root).duplicate(Rights::all()) {
                Ok(copy) => {
                    caps[0] = copy.0;
                    &caps[..1]
                }
                Err(_) => &caps[..0],
            },
            _ => &caps[..0],
        };
        let result = proc.spawn(0, path, &args[..count], passed).and_then(|(pid, _)| proc.wait(0, pid));
        match result {
            Ok(ending) => println!("init: {path} {ending}"),
            Err(e) => println!("init: cannot run {path}: {e}"),
        }
    }
    println!("init: all programs finished");
    loop {
        vessel_rt::time::sleep_ms(60_000);
    }
}

/// Starts `proc` with every capability init holds plus the receiving side of a new endpoint;
/// keeps a send-only capability to it.
fn start_proc() -> Option<Proc> {
    let endpoint = match Endpoint::create() {
        Ok(e) => e,
        Err(e) => {
            println!("init: cannot create the proc endpoint: {e}");
            return None;
        }
    };
    let client = endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE).ok()?;
    let mut caps = alloc::vec![endpoint.0.0];
    caps.extend_from_slice(vessel_rt::handles());
    if let Err(e) = process::spawn_with_caps("bin/proc", &[], &caps) {
        println!("init: cannot start proc: {e}");
        return None;
    }
    // Only proc may receive on it: when proc dies, callers get PeerDied rather than waiting.
    let _ = endpoint.0.delete();
    Some(Proc(Endpoint(client)))
}
