//! Containers: ids, isolation, quotas, cascade destroy, per-container pids and service
//! supervision, with real processes in real containers. usertest runs in the root container and
//! holds a root-container capability (init marks it trusted), so it can drive the kernel calls
//! directly; the `proc` tests go through `proc` like any program.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_proc_protocol::{Ending, Limits};
use vessel_rt::abi::{ContainerLimits, Error, Exit, KernelStats, Meta, ObjectKind, Rights, Syscall, UNLIMITED};
use vessel_rt::container::{self, Container};
use vessel_rt::ipc::{self, Cap, Endpoint, Notification, ProcessHandle, buffer};
use vessel_rt::proc::Proc;
use vessel_rt::{process, sys, time};

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("containers::ids_are_random_unique_and_never_reused", ids_are_random_unique_and_never_reused),
    ("containers::isolation_matrix", isolation_matrix),
    ("containers::cascade_destroy_random_trees", cascade_destroy_random_trees),
    ("containers::fork_bomb_hits_the_process_quota", fork_bomb_hits_the_process_quota),
    ("containers::memory_exhaustion_stays_inside", memory_exhaustion_stays_inside),
    ("containers::object_and_slot_quotas", object_and_slot_quotas),
    ("containers::the_root_quota_keeps_the_kernel_heap_whole", the_root_quota_keeps_the_kernel_heap_whole),
    ("containers::destroying_a_long_process_chain", destroying_a_long_process_chain),
    ("containers::a_thousand_processes_destroyed_and_ten_thousand_copies_revoked", thousand_and_ten_thousand),
    ("containers::a_process_killed_with_its_parent_charges_nothing", a_process_killed_with_its_parent_charges_nothing),
    ("containers::pids_are_per_container_and_listing_is_scoped", pids_are_per_container_and_listing_is_scoped),
    ("containers::crashed_service_restarts_and_clients_recover", crashed_service_restarts_and_clients_recover),
];

pub(crate) fn e<E: core::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{what}: {err}")
}

/// Our root-container capability.
pub(crate) fn root() -> Result<Container, String> {
    vessel_rt::handles()
        .iter()
        .map(|&h| Cap(h))
        .find(|c| c.inspect().is_ok_and(|i| i.kind == ObjectKind::Container as u32))
        .map(Container)
        .ok_or_else(|| String::from("no root container capability (is usertest trusted in the boot plan?)"))
}

fn proc() -> Result<Proc, String> {
    Proc::get().ok_or_else(|| String::from("not started by proc"))
}

/// Kernel counts (the call reaps what ended first).
pub(crate) fn stats() -> Result<KernelStats, String> {
    sys::kernel_stats().map_err(e("stats"))
}

/// Objects, capabilities, processes, threads and available frames are where they were.
pub(crate) fn same_counts(before: &KernelStats, after: &KernelStats) -> TestResult {
    let b = (before.objects, before.caps, before.processes, before.threads, before.available_frames());
    let a = (after.objects, after.caps, after.processes, after.threads, after.available_frames());
    check!(a == b, "(objects, caps, processes, threads, available frames) before {b:?}, after {a:?}");
    Ok(())
}

fn limits(processes: u64, pages: u64) -> ContainerLimits {
    let mut l = ContainerLimits::default();
    l.amounts[ContainerLimits::PROCESSES] = processes;
    l.amounts[ContainerLimits::PAGES] = pages;
    l
}

fn ids_are_random_unique_and_never_reused() -> TestResult {
    let root = root()?;
    let root_info = root.info().map_err(e("root info"))?;
    check!(root_info.id != 0 && root_info.parent == 0 && root_info.depth == 0, "root {root_info:?}");
    check!(container::own().map(|i| i.id) == Ok(root_info.id), "we are in the root container");
    let before = stats()?;
    let mut ids = Vec::new();
    for _ in 0..64 {
        let child = root.create_child(&ContainerLimits::default()).map_err(e("create"))?;
        let info = child.info().map_err(e("info"))?;
        check!(info.parent == root_info.id && info.depth == 1 && info.state == 0, "child {info:?}");
        check!(child.id() == Ok(info.id), "inspect and info agree");
        ids.push((info.id, child));
    }
    let mut sorted: Vec<u64> = ids.iter().map(|(id, _)| *id).collect();
    sorted.sort_unstable();
    sorted.dedup();
    check!(sorted.len() == 64 && sorted[0] != 0, "64 distinct non-zero ids");
    // Random, not counted: the high bit is set in some ids and clear in others.
    check!(sorted.iter().any(|id| id >> 63 == 1) && sorted.iter().any(|id| id >> 63 == 0), "ids spread {sorted:x?}");
    let destroyed: Vec<u64> = ids.iter().map(|(id, _)| *id).collect();
    for (_, child) in &ids {
        child.destroy().map_err(e("destroy"))?;
        check!(child.info() == Err(Error::NoSuchContainer), "a destroyed container answers NoSuchContainer");
        check!(child.destroy() == Err(Error::NoSuchContainer), "destroying twice");
        check!(child.create_child(&ContainerLimits::default()).is_err(), "no children of the dead");
        child.0.delete().map_err(e("delete"))?;
    }
    for _ in 0..64 {
        let child = root.create_child(&ContainerLimits::default()).map_err(e("create"))?;
        let id = child.id().map_err(e("id"))?;
        check!(!destroyed.contains(&id), "id {id:#x} reused");
        child.destroy().map_err(e("destroy"))?;
        child.0.delete().map_err(e("delete"))?;
    }
    check!(root.destroy() == Err(Error::AccessDenied), "the root container cannot be destroyed");
    // Hostile arguments: every bad pointer, and handles that name no container.
    for (what, bad) in crate::BAD_POINTERS {
        let create = crate::raw(Syscall::ContainerCreate as u64, [u64::from(root.0.0), bad, 0, 0, 0, 0]);
        check!(create == Err(Error::BadAddress), "create with limits at {what}: {create:?}");
        let info = crate::raw(Syscall::ContainerInfo as u64, [0, bad, 0, 0, 0, 0]);
        check!(info == Err(Error::BadAddress), "info into {what}: {info:?}");
    }
    for handle in [0u64, 0xdead, u64::MAX] {
        let destroy = crate::raw(Syscall::ContainerDestroy as u64, [handle, 0, 0, 0, 0, 0]);
        check!(destroy.is_err(), "destroy of handle {handle:#x}: {destroy:?}");
    }
    same_counts(&before, &stats()?)
}

/// The relay: a system-service endpoint every container may call. Answers the `xc` probes.
struct Relay {
    receive: Endpoint,
    send: Endpoint,
    private: Endpoint,
}

impl Relay {
    fn new(root: Container) -> Result<Relay, String> {
        let receive = Endpoint::create().map_err(e("endpoint"))?;
        container::register_service(receive, root).map_err(e("register"))?;
        let send = receive.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE).map_err(e("dup"))?;
        let private = Endpoint::create().map_err(e("private endpoint"))?;
        Ok(Relay { receive, send: Endpoint(send), private })
    }

    /// Answers one request; `Err` describes a wrong outcome.
    fn answer(&self, message: &ipc::Received, root_id: u64) -> TestResult {
        // SAFETY: read before the reply, which is the next IPC.
        let buf = unsafe { buffer() };
        let (sender, pid) = (buf.sender_container, buf.sender_pid);
        let received: Vec<u32> = buf.caps[..usize::from(message.meta.cap_count).min(4)].to_vec();
        for h in received {
            let _ = Cap(h).delete();
        }
        match message.words[0] {
            HELLO | GIVE => ipc::reply([sender, pid, 0, 0], Meta::default()).map_err(e("reply")),
            TAKE => {
                let n = Notification::create().map_err(e("notification"))?;
                // SAFETY: staged right before the reply.
                unsafe { buffer() }.caps[0] = n.0.0;
                let result = ipc::reply([0; 4], Meta { cap_count: 1, ..Meta::default() });
                if result.is_err() {
                    let _ = n.0.delete();
                }
                let expected = if sender == root_id { Ok(()) } else { Err(Error::CrossContainer) };
                check!(result == expected, "reply with a capability to {sender:#x}: {result:?}");
                Ok(())
            }
            GUESS => ipc::reply([u64::from(self.private.0.0), 0, 0, 0], Meta::default()).map_err(e("reply")),
            other => {
                let _ = ipc::reply([0; 4], Meta::default());
                Err(format!("unexpected relay request {other}"))
            }
        }
    }

    fn delete(self) {
        for c in [self.receive.0, self.send.0, self.private.0] {
            let _ = c.delete();
        }
    }
}

/// Relay requests of the `xc` probe role (`probe/containers.rs`).
const HELLO: u64 = 1;
const GIVE: u64 = 2;
const TAKE: u64 = 3;
const GUESS: u64 = 4;

fn hex(id: u64) -> String {
    format!("{id:x}")
}

/// The matrix below, twice, counting around the second: the first run may find services that
/// make what they keep for good on their first use (when this group runs first after boot), and
/// what one run leaves behind shows in the second all the same.
fn isolation_matrix() -> TestResult {
    matrix_once()?;
    let before = stats()?;
    matrix_once()?;
    same_counts(&before, &stats()?)
}

fn matrix_once() -> TestResult {
    let (root, proc) = (root()?, proc()?);
    let root_id = root.id().map_err(e("root id"))?;
    let relay = Relay::new(root)?;
    // The tree: A below the root, C (self) and S (sibling) below A, K (child) below C.
    let create = |parent: u64| proc.create(parent, Limits::default()).map_err(e("create"));
    let a = create(0)?;
    let c = create(a)?;
    let s = create(a)?;
    let k = create(c)?;
    // Refused: a capability of ours into another container at spawn (only service endpoints),
    // by the kernel directly and through proc (which received the capability in our request).
    let own_note = Notification::create().map_err(e("notification"))?;
    let jail = root.create_child(&ContainerLimits::default()).map_err(e("create jail"))?;
    check!(
        process::spawn_in(jail.0, "bin/true", &[], &[own_note.0.0]).map(|_| ()) == Err(Error::CrossContainer),
        "spawn into a child container with a root notification"
    );
    check!(own_note.0.inspect().is_ok(), "the refused notification is still ours");
    check!(jail.info().map(|i| i.usage) == Ok([0; 5]), "the refused spawn left nothing in the jail");
    jail.destroy().map_err(e("destroy jail"))?;
    jail.0.delete().map_err(e("delete jail"))?;
    check!(
        proc.spawn(c, "bin/true", &[], &[own_note.0.0]).map_err(|r| r.error) == Err(Error::CrossContainer),
        "spawn through proc into a child container with a root notification"
    );
    // One probe per container; each checks every other container's visibility through proc.
    let all = [("self", c), ("sibling", s), ("parent", a), ("child", k), ("root", root_id)];
    let mut probes = Vec::new();
    for &(name, at) in &all {
        let mut args: Vec<String> =
            alloc::vec![String::from("xc"), String::from(if at == root_id { "1" } else { "0" })];
        for &(_, other) in &all {
            // Visible: the probe's own container and those below it.
            let below =
                other == at || (at == c && other == k) || (at == a && [c, s, k].contains(&other)) || at == root_id;
            args.push(hex(other));
            args.push(String::from(if below { "1" } else { "0" }));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let target = if at == root_id { 0 } else { at };
        // Capabilities sent to proc move there: send a copy.
        let copy = relay.send.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE).map_err(e("dup"))?;
        let (pid, _) = proc.spawn(target, "bin/probe", &refs, &[copy.0]).map_err(e("spawn xc"))?;
        probes.push((name, target, pid));
    }
    // Serve the relay until every probe has ended.
    let mut endings = Vec::new();
    let mut problems = Vec::new();
    let deadline = time::now_ns() + 60_000_000_000;
    while endings.len() < probes.len() && time::now_ns() < deadline {
        match relay.receive.recv_timeout(5_000_000) {
            Ok(message) => {
                if let Err(problem) = relay.answer(&message, root_id) {
                    problems.push(problem);
                }
            }
            Err(Error::TimedOut) => {}
            Err(err) => return Err(format!("relay: {err}")),
        }
        for &(name, target, pid) in &probes {
            if !endings.iter().any(|(n, _)| *n == name)
                && let Ok(Some(ending)) = proc.try_wait(target, pid)
            {
                endings.push((name, ending));
            }
        }
    }
    check!(problems.is_empty(), "relay saw {problems:?}");
    for (name, ending) in &endings {
        check!(*ending == Ending::Code(0), "probe in the {name} container: failed checks {ending:?} (bit mask)");
    }
    check!(endings.len() == probes.len(), "only {} of {} probes ended", endings.len(), probes.len());
    check!(relay.private.try_recv() == Err(Error::WouldBlock), "a guessed handle reached the relay's private endpoint");
    proc.destroy(a).map_err(e("destroy"))?;
    check!(proc.info(c).map_err(|r| r.error) == Err(Error::NoSuchContainer), "C went with A");
    relay.delete();
    Ok(())
}

/// A tiny deterministic generator for the random trees.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

struct Node {
    cap: Container,
    parent: Option<usize>,
    members: Vec<ProcessHandle>,
}

fn cascade_destroy_random_trees() -> TestResult {
    let root = root()?;
    let relay = Relay::new(root)?;
    let before = stats()?;
    let mut rng = Rng(0x5eed_0fc0_de00 ^ time::now_ns());
    let roles: [&[&str]; 5] = [&["spin"], &["blocked"], &["ipc-pair"], &["spawner"], &["call-service"]];
    for tree in 0..100 {
        // A random tree: depth at most 5, at most 4 children per node, at most 12 nodes.
        let mut nodes: Vec<Node> = Vec::new();
        let top = root.create_child(&ContainerLimits::default()).map_err(e("create"))?;
        nodes.push(Node { cap: top, parent: None, members: Vec::new() });
        let mut depth = alloc::vec![0u32];
        let mut i = 0;
        while i < nodes.len() && nodes.len() < 12 {
            if depth[i] < 4 {
                for _ in 0..rng.below(5) {
                    if nodes.len() >= 12 {
                        break;
                    }
                    let cap = nodes[i].cap.create_child(&ContainerLimits::default()).map_err(e("create child"))?;
                    nodes.push(Node { cap, parent: Some(i), members: Vec::new() });
                    depth.push(depth[i] + 1);
                }
            }
            i += 1;
        }
        // Members: busy, blocked in IPC, mid-spawn, calling a service in the root.
        for node in nodes.iter_mut() {
            for _ in 0..rng.below(3) {
                let role = roles[rng.below(roles.len() as u64) as usize];
                let caps: &[u32] = if role[0] == "call-service" { &[relay.send.0.0] } else { &[] };
                let handle = process::spawn_in(node.cap.0, "bin/probe", role, caps).map_err(e("spawn member"))?;
                node.members.push(handle);
            }
        }
        time::sleep_ms(2);
        // Take one service call, if any came: its caller may die before we answer.
        let pending = relay.receive.try_recv().is_ok();
        let victim = rng.below(nodes.len() as u64) as usize;
        let doomed: Vec<bool> = (0..nodes.len())
            .map(|mut at| {
                loop {
                    if at == victim {
                        break true;
                    }
                    match nodes[at].parent {
                        Some(p) => at = p,
                        None => break false,
                    }
                }
            })
            .collect();
        nodes[victim].cap.destroy().map_err(e("destroy"))?;
        for (node, &gone) in nodes.iter().zip(&doomed) {
            let info = node.cap.info();
            check!(info.is_err() == gone, "tree {tree}: node destroyed {gone}, info {info:?}");
            for member in &node.members {
                let state = sys::process_info_handle(member.0.0).map(|i| i.state);
                check!((state == Ok(2)) == gone, "tree {tree}: member state {state:?}, destroyed {gone}");
            }
        }
        if pending {
            // The caller is gone (PeerDied) or alive (answered): never a hang.
            let result = ipc::reply([0; 4], Meta::default());
            check!(matches!(result, Ok(()) | Err(Error::PeerDied)), "tree {tree}: reply {result:?}");
        }
        // Now everything else, then reap.
        nodes[0].cap.destroy().or_else(|err| if victim == 0 { Ok(()) } else { Err(err) }).map_err(e("destroy top"))?;
        for node in &nodes {
            for &member in &node.members {
                let exit = process::wait_handle(member).map_err(e("wait member"))?;
                check!(exit == Exit::Killed || matches!(exit, Exit::Code(_)), "member ended {exit:?}");
                member.0.delete().map_err(e("delete member cap"))?;
            }
            node.cap.0.delete().map_err(e("delete container cap"))?;
        }
        // Calls queued on the relay by members of destroyed containers were withdrawn.
        check!(relay.receive.try_recv() == Err(Error::WouldBlock), "tree {tree}: a dead caller's call survived");
    }
    same_counts(&before, &stats()?)?;
    relay.delete();
    Ok(())
}

fn fork_bomb_hits_the_process_quota() -> TestResult {
    let root = root()?;
    let before = stats()?;
    let jail = root.create_child(&limits(32, UNLIMITED)).map_err(e("create"))?;
    let bomb = process::spawn_in(jail.0, "bin/probe", &["forkbomb"], &[]).map_err(e("spawn bomb"))?;
    // While it runs, the root container is unaffected.
    let probe = process::run("bin/true", &[]);
    check!(probe == Ok(Exit::Code(0)), "a probe in the root container: {probe:?}");
    // The bomb is process 1 of 32 and starts 31 children; its next spawn (the 33rd process) is
    // refused with QuotaExceeded, and then it blocks (any other outcome ends it).
    let deadline = time::now_ns() + 20_000_000_000;
    let mut info = jail.info().map_err(e("info"))?;
    while info.usage[ContainerLimits::PROCESSES] < 32 && time::now_ns() < deadline {
        time::sleep_ms(5);
        info = jail.info().map_err(e("info"))?;
    }
    check!(info.usage[ContainerLimits::PROCESSES] == 32 && info.members == 32, "the jail holds {info:?}");
    time::sleep_ms(20);
    let state = sys::process_info_handle(bomb.0.0).map(|i| i.state);
    check!(state == Ok(1), "the bomb was refused with QuotaExceeded and waits (state {state:?})");
    check!(
        process::spawn_in(jail.0, "bin/true", &[], &[]).map(|_| ()) == Err(Error::QuotaExceeded),
        "the jail is full"
    );
    check!(process::run("bin/true", &[]) == Ok(Exit::Code(0)), "root still spawns");
    jail.destroy().map_err(e("destroy"))?;
    check!(process::wait_handle(bomb) == Ok(Exit::Killed), "the bomb went with its container");
    bomb.0.delete().map_err(e("delete"))?;
    jail.0.delete().map_err(e("delete"))?;
    same_counts(&before, &stats()?)
}

fn memory_exhaustion_stays_inside() -> TestResult {
    let root = root()?;
    let before = stats()?;
    let jail = root.create_child(&limits(UNLIMITED, 600)).map_err(e("create"))?;
    let hog = process::spawn_in(jail.0, "bin/probe", &["memhog"], &[]).map_err(e("spawn"))?;
    let exit = process::wait_handle(hog).map_err(e("wait"))?;
    check!(exit == Exit::Code(0), "memhog ended {exit:?} (0: refused with QuotaExceeded)");
    // A child's limit can never exceed what its parent has left.
    let mut too_big = ContainerLimits::default();
    too_big.amounts[ContainerLimits::PAGES] = 601;
    check!(jail.create_child(&too_big).map(|_| ()) == Err(Error::QuotaExceeded), "child over parent");
    // The parent (root) allocates as usual.
    let addr = sys::mem_map(64, vessel_rt::abi::MapFlags::WRITE).map_err(e("parent mem_map"))?;
    // SAFETY: nothing refers to the pages just mapped here.
    unsafe { sys::mem_unmap(addr, 64) }.map_err(e("unmap"))?;
    jail.destroy().map_err(e("destroy"))?;
    hog.0.delete().map_err(e("delete"))?;
    jail.0.delete().map_err(e("delete"))?;
    same_counts(&before, &stats()?)
}

fn object_and_slot_quotas() -> TestResult {
    let root = root()?;
    let before = stats()?;
    for (resource, limit) in [(ContainerLimits::OBJECTS, 5), (ContainerLimits::CAP_SLOTS, 3)] {
        let mut l = ContainerLimits::default();
        l.amounts[resource] = limit;
        let jail = root.create_child(&l).map_err(e("create"))?;
        let hog = process::spawn_in(jail.0, "bin/probe", &["objhold"], &[]).map_err(e("spawn"))?;
        let exit = process::wait_handle(hog).map_err(e("wait"))?;
        check!(exit == Exit::Code(limit as i64), "limit {limit} on resource {resource}: hog ended {exit:?}");
        // The same call still works outside.
        let n = Notification::create().map_err(e("root notification"))?;
        n.0.delete().map_err(e("delete"))?;
        check!(jail.info().map(|i| i.usage) == Ok([0; 5]), "everything returned to the jail");
        jail.destroy().map_err(e("destroy"))?;
        hog.0.delete().map_err(e("delete"))?;
        jail.0.delete().map_err(e("delete"))?;
    }
    same_counts(&before, &stats()?)
}

fn the_root_quota_keeps_the_kernel_heap_whole() -> TestResult {
    let root = root()?;
    let limit = root.info().map_err(e("info"))?.limits[ContainerLimits::OBJECTS];
    check!(limit != UNLIMITED, "the root container bounds kernel objects");
    let before = stats()?;
    // Processes each fill their table with notifications and hold them, until the root's
    // object quota (not the kernel heap) says no.
    let mut holders = Vec::new();
    let mut refused = None;
    for _ in 0..limit / 4000 + 2 {
        let pid = process::spawn("bin/probe", &["objhold"]).map_err(e("spawn"))?;
        let deadline = time::now_ns() + 30_000_000_000;
        let mut state = 0;
        while state == 0 && time::now_ns() < deadline {
            time::sleep_ms(5);
            state = process::info(pid).map_err(e("info"))?.state;
        }
        if state == 2 {
            let exit = process::wait(pid).map_err(e("wait"))?;
            // It made this many before QuotaExceeded (a negative code is another error).
            let Exit::Code(made @ 0..) = exit else { return Err(format!("the last holder ended {exit:?}")) };
            refused = Some(made as u64);
            break;
        }
        holders.push(pid);
    }
    let Some(made) = refused else {
        return Err(format!("{} holders never met the object quota of {limit}", holders.len()));
    };
    // The refused holder freed its own when it ended; with them, the quota was reached.
    let during = stats()?;
    check!(during.objects + made >= limit - 64, "objects at the refusal: {} + {made} of {limit}", during.objects);
    for pid in holders {
        process::kill(pid).map_err(e("kill"))?;
        process::wait(pid).map_err(e("wait"))?;
    }
    let n = Notification::create().map_err(e("notification after"))?;
    n.0.delete().map_err(e("delete"))?;
    same_counts(&before, &stats()?)
}

fn destroying_a_long_process_chain() -> TestResult {
    // The first chain raises the kernel-stack high-water mark (page tables for the stack
    // range are kept once made); the second must then leave every count where it found it.
    chain_in_a_container()?;
    let before = stats()?;
    chain_in_a_container()?;
    same_counts(&before, &stats()?)
}

/// The two largest single kernel operations the suite makes: destroying a container that holds
/// 1,000 processes, and revoking a capability with over 10,000 copies derived from it in four
/// processes. Both return every count to where it was (the time each takes with interrupts
/// off is a benchmark's business, not this test's).
fn thousand_and_ten_thousand() -> TestResult {
    // The first thousand raises the kernel-stack high-water mark (the page tables of the stack
    // range are kept once made, as in `destroying_a_long_process_chain`); the second must then
    // leave every count where it found it.
    thousand_in_a_container()?;
    let before = stats()?;
    thousand_in_a_container()?;
    same_counts(&before, &stats()?)?;
    ten_thousand_copies_revoked()?;
    same_counts(&before, &stats()?)
}

fn thousand_in_a_container() -> TestResult {
    const PROCESSES: usize = 1000;
    let root = root()?;
    let jail = root.create_child(&ContainerLimits::default()).map_err(e("create"))?;
    let mut members = Vec::with_capacity(PROCESSES);
    for i in 0..PROCESSES {
        match process::spawn_in(jail.0, "bin/probe", &["blocked"], &[]) {
            Ok(handle) => members.push(handle),
            Err(err) => {
                let _ = jail.destroy();
                return Err(format!("process {i} of {PROCESSES} refused: {err}"));
            }
        }
    }
    jail.destroy().map_err(e("destroy"))?;
    for member in members {
        let ended = process::wait_handle(member);
        check!(ended == Ok(Exit::Killed), "a member outlived its container: {ended:?}");
        member.0.delete().map_err(e("delete"))?;
    }
    jail.0.delete().map_err(e("delete"))
}

fn ten_thousand_copies_revoked() -> TestResult {
    const OWN_COPIES: usize = 3000;
    const CHILD_COPIES: usize = 2400;
    // 3,000 copies here and 2,401 in each of three children, all derived from one capability.
    let n = Notification::create().map_err(e("notification"))?;
    let mut copies = Vec::with_capacity(OWN_COPIES);
    for _ in 0..OWN_COPIES {
        copies.push(n.0.duplicate(Rights::all()).map_err(e("duplicate"))?);
    }
    let count = format!("{CHILD_COPIES}");
    let children: Vec<u64> = (0..3)
        .map(|_| process::spawn_with_caps("bin/probe", &["dup-hold", &count], &[copies[0].0]))
        .collect::<Result<_, _>>()
        .map_err(e("spawn"))?;
    // Each child signals once it holds its copies.
    let mut ready = 0;
    let deadline = time::now_ns() + 20_000_000_000;
    while ready < 3 && time::now_ns() < deadline {
        ready += n.wait_timeout(1_000_000_000).map_or(0, |bits| bits.count_ones());
    }
    check!(ready >= 3, "{ready} of 3 children made their copies");
    let removed = n.0.revoke().map_err(e("revoke"))?;
    let expected = (OWN_COPIES + 3 * (CHILD_COPIES + 1)) as u64;
    check!(removed == expected, "revoke removed {removed} capabilities, expected {expected}");
    for child in children {
        check!(process::wait(child) == Ok(Exit::Code(0)), "a child kept a revoked copy");
    }
    n.0.delete().map_err(e("delete"))
}

fn chain_in_a_container() -> TestResult {
    const LENGTH: u64 = 200;
    let root = root()?;
    let jail = root.create_child(&ContainerLimits::default()).map_err(e("create"))?;
    let head = process::spawn_in(jail.0, "bin/probe", &["chain", "200"], &[]).map_err(e("spawn"))?;
    let deadline = time::now_ns() + 30_000_000_000;
    while jail.info().map_or(0, |i| i.members) < LENGTH && time::now_ns() < deadline {
        time::sleep_ms(10);
    }
    let info = jail.info().map_err(e("info"))?;
    check!(info.members == LENGTH, "chain built to {} of {LENGTH}", info.members);
    // Ending 200 nested processes must not need 200 nested kernel frames.
    jail.destroy().map_err(e("destroy"))?;
    check!(process::wait_handle(head) == Ok(Exit::Killed), "the head went with its container");
    head.0.delete().map_err(e("delete"))?;
    jail.0.delete().map_err(e("delete"))
}

fn a_process_killed_with_its_parent_charges_nothing() -> TestResult {
    let root = root()?;
    let before = stats()?;
    let jail = root.create_child(&ContainerLimits::default()).map_err(e("create"))?;
    let host = process::spawn_in(jail.0, "bin/probe", &["kill-own-parent-host"], &[]).map_err(e("spawn"))?;
    check!(process::wait_handle(host) == Ok(Exit::Killed), "the host was killed by its child");
    // The orphaned child is reaped by the kernel; nothing it tried after dying stays charged.
    let deadline = time::now_ns() + 5_000_000_000;
    let mut usage = jail.info().map_err(e("info"))?.usage;
    while usage != [0; 5] && time::now_ns() < deadline {
        time::sleep_ms(5);
        let _ = stats()?; // reaps
        usage = jail.info().map_err(e("info"))?.usage;
    }
    check!(usage == [0; 5], "the jail still carries {usage:?}");
    jail.destroy().map_err(e("destroy"))?;
    host.0.delete().map_err(e("delete"))?;
    jail.0.delete().map_err(e("delete"))?;
    same_counts(&before, &stats()?)
}

fn pids_are_per_container_and_listing_is_scoped() -> TestResult {
    let proc = proc()?;
    let a = proc.create(0, Limits::default()).map_err(e("create a"))?;
    let b = proc.create(0, Limits::default()).map_err(e("create b"))?;
    let a1 = proc.create(a, Limits::default()).map_err(e("create a1"))?;
    let (pid_a, _) = proc.spawn(a, "bin/probe", &["blocked"], &[]).map_err(e("spawn a"))?;
    let (pid_b, _) = proc.spawn(b, "bin/probe", &["blocked"], &[]).map_err(e("spawn b"))?;
    check!(pid_a == 1 && pid_b == 1, "first processes: pid {pid_a} in A, pid {pid_b} in B");
    let (pid_a2, _) = proc.spawn(a, "bin/probe", &["blocked"], &[]).map_err(e("spawn a2"))?;
    check!(pid_a2 == 2, "second process of A is pid {pid_a2}");
    proc.spawn(a1, "bin/probe", &["blocked"], &[]).map_err(e("spawn a1"))?;
    // From inside A: only A and A1, never B or the root.
    let root_id = container::own().map_err(e("own"))?.id;
    let (checker, _) = proc.spawn(a, "bin/probe", &["ps-check", &hex(b), &hex(root_id)], &[]).map_err(e("spawn"))?;
    let ending = proc.wait(a, checker).map_err(e("wait checker"))?;
    check!(ending == Ending::Code(0), "listing from inside A: {ending:?}");
    let listed = proc.processes(a).map_err(e("list"))?;
    check!(listed.iter().all(|(c, _)| *c == a || *c == a1) && listed.len() == 3, "A's processes {listed:?}");
    proc.destroy(a).map_err(e("destroy a"))?;
    proc.destroy(b).map_err(e("destroy b"))?;
    for id in [a, b, a1] {
        check!(proc.info(id).map_err(|r| r.error) == Err(Error::NoSuchContainer), "destroyed {id:#x} still answers");
        check!(proc.spawn(id, "bin/true", &[], &[]).is_err(), "spawn into destroyed {id:#x}");
        check!(proc.destroy(id).is_err(), "destroy destroyed {id:#x}");
    }
    for _ in 0..20 {
        let id = proc.create(0, Limits::default()).map_err(e("create"))?;
        check!(![a, b, a1].contains(&id), "id {id:#x} reused");
        proc.destroy(id).map_err(e("destroy"))?;
    }
    Ok(())
}

fn crashed_service_restarts_and_clients_recover() -> TestResult {
    let proc = proc()?;
    let pid = proc.supervise("echo", 3, "bin/probe", &["echo-service"]).map_err(e("supervise"))?;
    let (echo, generation) = proc.lookup("echo").map_err(e("lookup"))?;
    check!(generation == 0, "first generation {generation}");
    let reply = echo.call([41, 0, 0, 0], Meta::default()).map_err(e("call"))?;
    check!(reply.words[0] == 42, "echo answered {:?}", reply.words);
    // Two clients, one in a child container (services serve every container), block in calls
    // the service holds.
    let jail = proc.create(0, Limits::default()).map_err(e("create"))?;
    let clients = [
        (0, proc.spawn(0, "bin/probe", &["service-client"], &[]).map_err(e("spawn client"))?.0),
        (jail, proc.spawn(jail, "bin/probe", &["service-client"], &[]).map_err(e("spawn client"))?.0),
    ];
    time::sleep_ms(50);
    proc.kill(0, pid).map_err(e("kill service"))?;
    for (container, client) in clients {
        let ending = proc.wait(container, client).map_err(e("wait client"))?;
        check!(ending == Ending::Code(0), "client in {container:#x} ended {ending:?}");
    }
    check!(echo.call([1, 0, 0, 0], Meta::default()) == Err(Error::PeerDied), "old instance's capability");
    let (echo2, generation) = proc.lookup("echo").map_err(e("lookup"))?;
    check!(generation == 1, "generation after one crash: {generation}");
    let reply = echo2.call([9, 0, 0, 0], Meta::default()).map_err(e("call new"))?;
    check!(reply.words[0] == 10, "new instance answered {:?}", reply.words);
    proc.destroy(jail).map_err(e("destroy"))?;
    let _ = echo.0.delete();
    let _ = echo2.0.delete();
    Ok(())
}
