//! Probe roles for the container tests (`usertest/containers.rs` drives them).
//!
//! - `xc ROOT [ID EXPECT]...`: the isolation script, run in some container with the relay
//!   service as its last capability (and `proc` first when `proc` started it). `ROOT` is 1 when
//!   it runs in the relay's (root) container. Each `ID EXPECT` pair says whether `proc` must let
//!   it inspect container `ID`. Exit code: a bit mask of the checks that failed (0: all held).
//! - `blocked`: wait on an own endpoint forever.
//! - `ipc-pair`: start `ipc-pair-child` (same container) that calls us; take the call and never
//!   answer, so both sit in IPC.
//! - `spawner`: start and wait for `bin/true` forever.
//! - `call-service`: call the last capability (a service endpoint) and wait for the answer.
//! - `forkbomb`: spawn blocked probes until refused; if the refusal was `QuotaExceeded` after
//!   31 children (a container limited to 32 processes), block forever, else exit 255.
//! - `chain N`: a chain of N processes, each the parent of the next; the last one blocks.
//! - `kill-own-parent-host`: start `kill-parent-then-map` with a capability to ourselves.
//! - `kill-parent-then-map`: kill our parent (and so ourselves), then try to map 1,000 pages.
//! - `objhold`: create notifications until refused: on `TableFull` hold them all (block), on
//!   `QuotaExceeded` exit with how many it made, on anything else exit with minus the error code.
//! - `memhog`: map 16 pages at a time until refused; exit 0 if the refusal was `QuotaExceeded`.
//! - `ps-check ID...`: `proc` lists of processes and containers must show only our container and
//!   those below it, never the given ids; exit 0 if so.
//! - `echo-service`: serve the endpoint `proc` gave (last capability): answer `w0 + 1`;
//!   `w0 = 7` is held forever (clients wait).
//! - `service-client`: call service `echo` with 7 (held), expect the restarted-generation error
//!   once the service is killed, then a normal answer from the new instance; exit 0 if so.

use alloc::vec::Vec;

use vessel_rt::abi::{Error, MapFlags, Meta};
use vessel_rt::container;
use vessel_rt::ipc::{Cap, Endpoint, Notification, buffer};
use vessel_rt::proc::{Proc, Service, ServiceError};
use vessel_rt::{process, sys, time};

/// Relay requests (usertest's relay service understands these).
pub const HELLO: u64 = 1;
/// Carries a capability.
pub const GIVE: u64 = 2;
/// Asks the relay to answer with a capability.
pub const TAKE: u64 = 3;
/// Asks the relay for the handle value of its private endpoint.
pub const GUESS: u64 = 4;

fn last_cap() -> Cap {
    Cap(vessel_rt::handles().last().copied().unwrap_or(0))
}

fn call_with_cap(relay: Endpoint, label: u64, cap: Cap) -> Result<(), Error> {
    // SAFETY: staged right before the call, nothing else uses the buffer meanwhile.
    unsafe { buffer() }.caps[0] = cap.0;
    relay.call([label, 0, 0, 0], Meta { cap_count: 1, ..Meta::default() }).map(|_| ())
}

pub fn cross_container(args: &[&str]) -> i32 {
    let in_root = args.first() == Some(&"1");
    let relay = Endpoint(last_cap());
    let own = container::own().map(|i| i.id).unwrap_or(0);
    let mut fails = 0;
    // A system service answers from any container and sees our container, stamped.
    if !relay.call([HELLO, 0, 0, 0], Meta::default()).is_ok_and(|r| r.words[0] == own && own != 0) {
        fails |= 1;
    }
    let (Ok(e), Ok(n)) = (Endpoint::create(), Notification::create()) else { return 255 };
    // Our objects may not leave the container; a refused transfer loses nothing.
    for (bit, cap) in [(2, e.0), (4, n.0)] {
        let result = call_with_cap(relay, GIVE, cap);
        let held = cap.inspect().is_ok();
        let right = if in_root { result.is_ok() && !held } else { result == Err(Error::CrossContainer) && held };
        if !right {
            vessel_rt::println!("xc in {own:#x}: giving capability {bit}: {result:?}, still held {held}");
            fails |= bit;
        }
    }
    // Nor may the relay's objects come in.
    let taken = relay.call([TAKE, 0, 0, 0], Meta::default());
    let right = if in_root { taken.is_ok_and(|r| r.meta.cap_count == 1) } else { taken == Err(Error::CrossContainer) };
    if !right {
        fails |= 8;
    }
    // A guessed handle names only our own table: it never reaches the relay's private endpoint
    // (the relay checks that nothing arrived there).
    if let Ok(reply) = relay.call([GUESS, 0, 0, 0], Meta::default()) {
        let guessed = Endpoint(Cap(reply.words[0] as u32));
        let _ = guessed.try_call([0xbad, 0, 0, 0], Meta::default());
    } else {
        fails |= 16;
    }
    // Inside the container everything works: a sibling process gets our capabilities at spawn,
    // is signalled, and answers calls.
    let (Ok(e), Ok(n)) = (Endpoint::create(), Notification::create()) else { return 255 };
    match process::spawn_with_caps("bin/probe", &["signal", "64"], &[n.0.0]).and_then(process::wait) {
        Ok(vessel_rt::abi::Exit::Code(0)) if n.wait_timeout(1_000_000_000) == Ok(64) => {}
        _ => fails |= 32,
    }
    match process::spawn_with_caps("bin/probe", &["echo-server"], &[e.0.0]) {
        Ok(pid) => {
            if !e.call([5, 0, 0, 0], Meta::default()).is_ok_and(|r| r.words[0] == 6) {
                fails |= 64;
            }
            let _ = e.call([u64::MAX, 0, 0, 0], Meta::default());
            let _ = process::wait(pid);
        }
        Err(_) => fails |= 64,
    }
    // `proc` lets us see our own container and those below it, nothing else.
    if let Some(proc) = Proc::get().filter(|_| vessel_rt::handles().len() > 1) {
        for pair in args[1..].chunks_exact(2) {
            let id = u64::from_str_radix(pair[0], 16).unwrap_or(0);
            if proc.info(id).is_ok() != (pair[1] == "1") {
                fails |= 128;
            }
            if proc.info(id).is_err() && proc.destroy(id).is_ok() {
                fails |= 256;
            }
        }
    }
    fails
}

pub fn blocked() -> i32 {
    match Endpoint::create() {
        Ok(e) => {
            let _ = e.recv();
            1
        }
        Err(_) => 2,
    }
}

pub fn ipc_pair() -> i32 {
    let Ok(e) = Endpoint::create() else { return 2 };
    if process::spawn_with_caps("bin/probe", &["ipc-pair-child"], &[e.0.0]).is_err() {
        return 3;
    }
    let _ = e.recv();
    // Never answer: take the next (there is none) instead.
    let _ = e.recv();
    1
}

pub fn ipc_pair_child() -> i32 {
    let _ = Endpoint(Cap(vessel_rt::handles().first().copied().unwrap_or(0))).call([1, 0, 0, 0], Meta::default());
    1
}

pub fn spawner() -> i32 {
    loop {
        let _ = process::run("bin/true", &[]);
    }
}

pub fn call_service() -> i32 {
    let _ = Endpoint(last_cap()).call([HELLO, 0, 0, 0], Meta::default());
    1
}

pub fn forkbomb() -> i32 {
    let mut started = 0;
    loop {
        match process::spawn("bin/probe", &["blocked"]) {
            Ok(_) => started += 1,
            Err(Error::QuotaExceeded) if started == 31 => return blocked(),
            Err(_) => return 255,
        }
    }
}

pub fn chain(length: u64) -> i32 {
    if length <= 1 {
        return blocked();
    }
    let rest = alloc::format!("{}", length - 1);
    match process::spawn("bin/probe", &["chain", &rest]) {
        Ok(child) => {
            let _ = process::wait(child);
            1
        }
        Err(_) => 2,
    }
}

pub fn kill_own_parent_host() -> i32 {
    let Ok(me) = vessel_rt::ipc::ProcessHandle::of(sys::process_id()) else { return 2 };
    match process::spawn_with_caps("bin/probe", &["kill-parent-then-map"], &[me.0.0]) {
        Ok(child) => {
            let _ = process::wait(child);
            3
        }
        Err(_) => 4,
    }
}

pub fn kill_parent_then_map() -> i32 {
    let parent = vessel_rt::ipc::ProcessHandle(super::cap(0));
    let _ = parent.kill();
    // We went with our parent: nothing below may run, let alone be charged. A survivor would
    // keep its 1,000 pages and its place in the container, which the test sees.
    let _ = sys::mem_map(1000, MapFlags::WRITE);
    blocked()
}

pub fn objhold() -> i32 {
    let mut made = 0;
    loop {
        match Notification::create() {
            Ok(_) => made += 1,
            // Our table is full: hold everything (the test ends us).
            Err(Error::TableFull) => loop {
                time::sleep_ms(1000);
            },
            Err(Error::QuotaExceeded) => return made,
            Err(e) => return -(e as i32),
        }
    }
}

pub fn memhog() -> i32 {
    for _ in 0..100_000 {
        match sys::mem_map(16, MapFlags::WRITE) {
            Ok(_) => {}
            Err(Error::QuotaExceeded) => return 0,
            Err(_) => return 2,
        }
    }
    1
}

pub fn ps_check(forbidden: &[&str]) -> i32 {
    let Some(proc) = Proc::get() else { return 2 };
    let own = container::own().map(|i| i.id).unwrap_or(0);
    let forbidden: Vec<u64> = forbidden.iter().filter_map(|w| u64::from_str_radix(w, 16).ok()).collect();
    let (Ok(processes), Ok(containers)) = (proc.processes(0), proc.containers()) else { return 3 };
    let visible: Vec<u64> = containers.iter().map(|&(id, _)| id).collect();
    let me = sys::process_id();
    if !visible.contains(&own) || !processes.contains(&(own, me)) {
        return 4;
    }
    if processes.iter().any(|(c, _)| !visible.contains(c)) || visible.iter().any(|c| forbidden.contains(c)) {
        return 5;
    }
    0
}

pub fn echo_service() -> i32 {
    let e = Endpoint(last_cap());
    let mut message = match e.recv() {
        Ok(m) => m,
        Err(_) => return 2,
    };
    loop {
        if message.words[0] == 7 {
            // Hold this client until we are killed.
            loop {
                time::sleep_ms(1000);
            }
        }
        message = match e.reply_recv([message.words[0] + 1, 0, 0, 0], Meta::default()) {
            Ok(m) => m,
            Err(_) => return 3,
        };
    }
}

pub fn service_client() -> i32 {
    let Some(proc) = Proc::get() else { return 2 };
    let Ok(mut service) = Service::connect(proc, "echo") else { return 3 };
    let first = service.generation();
    match service.call([7, 0, 0, 0]) {
        Err(ServiceError::Restarted(generation)) if generation > first => {}
        _ => return 4,
    }
    match service.call([1, 0, 0, 0]) {
        Ok(words) if words[0] == 2 => 0,
        _ => 5,
    }
}

/// `dup-hold N`: make N copies of capability 0 (a notification), signal it with a bit of our
/// own (pid mod 60: siblings started one after another differ), so the parent can count the
/// children ready, then wait until the copies are revoked. Exit 0 once they all went, 1 if one
/// is still there after 20 s, 2 if copying failed.
pub fn dup_hold(count: u64) -> i32 {
    let original = vessel_rt::ipc::Notification(crate::cap(0));
    let mut copies = Vec::new();
    for _ in 0..count {
        match original.0.duplicate(vessel_rt::abi::Rights::all()) {
            Ok(copy) => copies.push(copy),
            Err(_) => return 2,
        }
    }
    let _ = original.signal(1 << (vessel_rt::sys::process_id() % 60));
    let deadline = time::now_ns() + 20_000_000_000;
    while time::now_ns() < deadline {
        if original.0.inspect().is_err() && copies.iter().all(|c| c.inspect().is_err()) {
            return 0;
        }
        time::sleep_ms(10);
    }
    1
}
