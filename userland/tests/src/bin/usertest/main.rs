//! `usertest`: the user-space test suite, run by init in the test image. Every test is real
//! processes on the real kernel. Prints `test user::<name> ... ok|FAILED`, then
//! `N passed, M failed`, then leaves QEMU with the verdict (`DebugExit`).
#![no_std]
#![no_main]

extern crate alloc;

mod containers;
mod ctr_device;
mod device;
mod entry;
mod files;
mod hw;
mod ipc;
mod procwait;
mod replies;
mod systools;
mod threads;
mod tools;
#[path = "../probe/window_commands.rs"]
mod window_commands;
mod windows;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_rt::abi::{Error, Exit, FaultKind, HEAP_START, MapFlags, Priority, SpawnRequest, Syscall};
use vessel_rt::{arch, println, process, sys, time};

vessel_rt::entry!(main);

type TestResult = Result<(), String>;

/// Fails the test with a formatted message unless the condition holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!("{}: {}", stringify!($cond), format_args!($($msg)+)));
        }
    };
}

/// A named test.
type Test = (&'static str, fn() -> TestResult);

const TESTS: &[Test] = &[
    ("syscall::unknown_numbers_refused", unknown_numbers_refused),
    ("syscall::bad_pointers_refused", bad_pointers_refused),
    ("syscall::oversized_lengths_refused", oversized_lengths_refused),
    ("syscall::wait_with_bad_status_pointer_loses_nothing", wait_with_bad_status_pointer_loses_nothing),
    ("syscall::hostile_spawn_requests_refused", hostile_spawn_requests_refused),
    ("syscall::mem_map_rules", mem_map_rules),
    ("syscall::unknown_receive_flags_refused", unknown_receive_flags_refused),
    ("process::only_children_are_visible", only_children_are_visible),
    ("process::exit_codes_and_arguments", exit_codes_and_arguments),
    ("process::killing_a_parent_kills_its_children", killing_a_parent_kills_its_children),
    ("fault::each_class_kills_only_the_faulting_process", each_fault_kills_only_the_faulting_process),
    ("memory::same_address_different_memory", same_address_different_memory),
    ("sched::equal_priorities_share_the_cpu", equal_priorities_share_the_cpu),
    ("sched::higher_priority_runs_first", higher_priority_runs_first),
    ("sched::lower_priority_waits_for_idle_cpu", lower_priority_waits_for_idle_cpu),
    ("fpu::sse_state_survives_context_switches", sse_state_survives_context_switches),
    ("spawn::thousand_spawn_wait_cycles_leak_nothing", thousand_spawn_wait_cycles_leak_nothing),
    ("syscall::random_calls_leave_the_kernel_whole", random_calls_leave_the_kernel_whole),
];

/// `usertest [--only GROUP[,GROUP...]]`: every test, or only those whose name starts with one
/// of the `GROUP::` (which also reaches the groups a plain run leaves out: `blk-persist-write`,
/// `blk-persist-check`, `files-persist-write` and `files-persist-check`, the halves of the
/// reboot test the harness runs on the same disks).
fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().collect();
    let only = match args.get(1..) {
        Some(["--only", group]) => Some(*group),
        _ => None,
    };
    let all = TESTS
        .iter()
        .chain(ipc::TESTS)
        .chain(replies::TESTS)
        .chain(windows::TESTS)
        .chain(hw::TESTS)
        .chain(containers::TESTS)
        .chain(procwait::TESTS)
        .chain(threads::TESTS)
        .chain(entry::TESTS)
        .chain(device::TESTS)
        .chain(ctr_device::TESTS)
        .chain(files::TESTS)
        .chain(tools::TESTS)
        .chain(systools::TESTS)
        .chain(device::PERSIST_TESTS)
        .chain(files::PERSIST_TESTS);
    let chosen: Vec<&crate::Test> = match only {
        Some(groups) => all
            .filter(|(name, _)| {
                groups.split(',').any(|group| name.strip_prefix(group).is_some_and(|r| r.starts_with("::")))
            })
            .collect(),
        None => all.filter(|t| !device::PERSIST_TESTS.iter().chain(files::PERSIST_TESTS).any(|p| p.0 == t.0)).collect(),
    };
    println!("running {} user-space tests", chosen.len());
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in chosen {
        let start = time::now_ns();
        let result = test();
        // Not a verdict line: how long the test took, to find the slow ones in the log.
        println!("took user::{name} {} ms", (time::now_ns() - start) / 1_000_000);
        match result {
            Ok(()) => {
                passed += 1;
                println!("test user::{name} ... ok");
            }
            Err(why) => {
                failed += 1;
                println!("test user::{name} ... FAILED\n    {why}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    let _ = sys::debug_exit(if failed == 0 { 0 } else { 1 });
    if failed == 0 { 0 } else { 1 }
}

pub(crate) fn raw(call: u64, args: [u64; 6]) -> Result<u64, Error> {
    // SAFETY: hostile arguments are the point; none of these calls can end or reshape this
    // process (the tests never pass Exit or MemUnmap of live memory here).
    let (rax, rdx) = unsafe { arch::syscall(call, args) };
    vessel_rt::abi::decode_return(rax, rdx)
}

/// The bad-pointer classes every pointer argument is tried with.
pub(crate) const BAD_POINTERS: [(&str, u64); 5] = [
    ("null", 0),
    ("kernel half", 0xffff_8000_0000_1000),
    ("non-canonical", 0x0000_8000_0000_0000),
    ("wraps around", u64::MAX - 8),
    ("unmapped", 0x0000_0fff_0000_0000),
];

/// A receive's flags are `NONBLOCK` and `TIMEOUT` only; anything else (a meta word in the old
/// place, a stray bit) is refused rather than read as some other flag.
fn unknown_receive_flags_refused() -> TestResult {
    use vessel_rt::ipc::{Endpoint, Notification};
    let ep = Endpoint::create().map_err(|e| format!("endpoint: {e}"))?;
    let n = Notification::create().map_err(|e| format!("notification: {e}"))?;
    // `Recv` writes the message registers back: make it through the stub that says so.
    let recv_raw = |flags: u64| {
        // SAFETY: a receive on our own endpoint; the stub declares every register it writes.
        let out = unsafe { arch::syscall_ipc(Syscall::Recv as u64, [u64::from(ep.0.0), 0, flags, 0, 0, 0]) };
        vessel_rt::abi::decode_return(out[0], out[3])
    };
    for flags in [4, 0x80, 1 << 24, u64::MAX] {
        let recv = recv_raw(flags);
        check!(recv == Err(Error::InvalidArgument), "Recv with flags {flags:#x}: {recv:?}");
        let wait = raw(Syscall::WaitNotification as u64, [u64::from(n.0.0), 0, flags, 0, 0, 0]);
        check!(wait == Err(Error::InvalidArgument), "WaitNotification with flags {flags:#x}: {wait:?}");
    }
    // The valid ones still work (NONBLOCK: nothing there).
    check!(recv_raw(1) == Err(Error::WouldBlock), "NONBLOCK receive");
    check!(raw(Syscall::WaitNotification as u64, [u64::from(n.0.0), 0, 1, 0, 0, 0]) == Ok(0), "poll");
    ep.0.delete().map_err(|e| format!("delete: {e}"))?;
    n.0.delete().map_err(|e| format!("delete: {e}"))?;
    Ok(())
}

fn unknown_numbers_refused() -> TestResult {
    let first_unknown = vessel_rt::abi::Syscall::ALL.len() as u64;
    for number in [first_unknown, first_unknown + 1, 255, 1 << 32, u64::MAX] {
        check!(raw(number, [1, 2, 3, 4, 5, 6]) == Err(Error::InvalidSyscall), "syscall {number:#x}");
    }
    Ok(())
}

fn bad_pointers_refused() -> TestResult {
    // Room for a whole `KernelStats` (a smaller buffer let the kernel write past it).
    let mut out = [0u8; core::mem::size_of::<vessel_rt::abi::KernelStats>()];
    for (what, ptr) in BAD_POINTERS {
        check!(raw(Syscall::DebugWrite as u64, [ptr, 16, 0, 0, 0, 0]) == Err(Error::BadAddress), "debug_write {what}");
        check!(raw(Syscall::Spawn as u64, [ptr, 0, 0, 0, 0, 0]) == Err(Error::BadAddress), "spawn {what}");
        check!(raw(Syscall::KernelStats as u64, [ptr, 0, 0, 0, 0, 0]) == Err(Error::BadAddress), "kernel_stats {what}");
        check!(
            raw(Syscall::ProcessInfo as u64, [sys::process_id(), ptr, 0, 0, 0, 0]) == Err(Error::BadAddress),
            "process_info {what}"
        );
    }
    // Wrong permission: the kernel must not write into this program's read-only code.
    let code = bad_pointers_refused as *const () as u64;
    check!(raw(Syscall::KernelStats as u64, [code, 0, 0, 0, 0, 0]) == Err(Error::BadAddress), "stats into code");
    // A range that starts mapped and runs into unmapped memory (this thread's thread page,
    // then its slot's guard page).
    let page_end = vessel_rt::abi::thread_page_of(0) + 4096 - 8;
    check!(
        raw(Syscall::DebugWrite as u64, [page_end, 64, 0, 0, 0, 0]) == Err(Error::BadAddress),
        "range past the thread page"
    );
    // And the good case still works.
    check!(raw(Syscall::KernelStats as u64, [out.as_mut_ptr() as u64, 0, 0, 0, 0, 0]).is_ok(), "valid pointer refused");
    Ok(())
}

fn oversized_lengths_refused() -> TestResult {
    let buf = [b'x'; 8];
    for len in [1 << 20, 1 << 40, u64::MAX] {
        check!(
            raw(Syscall::DebugWrite as u64, [buf.as_ptr() as u64, len, 0, 0, 0, 0]) == Err(Error::TooLarge),
            "len {len:#x}"
        );
    }
    let long = [b'a'; 300];
    let request =
        SpawnRequest { path_ptr: long.as_ptr() as u64, path_len: long.len() as u64, ..SpawnRequest::default() };
    check!(sys::spawn(&request) == Err(Error::TooLarge), "300-byte path");
    check!(sys::mem_map(1 << 40, MapFlags::WRITE) == Err(Error::InvalidArgument), "2^40 pages");
    Ok(())
}

fn wait_with_bad_status_pointer_loses_nothing() -> TestResult {
    let pid = process::spawn("bin/true", &[]).map_err(|e| format!("spawn: {e}"))?;
    let code = wait_with_bad_status_pointer_loses_nothing as *const () as u64;
    check!(raw(Syscall::Wait as u64, [pid, code, 0, 0, 0, 0]) == Err(Error::BadAddress), "read-only status pointer");
    check!(raw(Syscall::Wait as u64, [pid, 0, 0, 0, 0, 0]) == Err(Error::BadAddress), "null status pointer");
    check!(process::wait(pid) == Ok(Exit::Code(0)), "the child's status was lost");
    check!(process::wait(pid) == Err(Error::NoSuchProcess), "reaped twice");
    Ok(())
}

fn hostile_spawn_requests_refused() -> TestResult {
    check!(process::spawn("bin/does-not-exist", &[]) == Err(Error::NotFound), "missing file");
    check!(process::spawn("etc/boot.plan", &[]) == Err(Error::BadExecutable), "text file as program");
    check!(process::spawn("bin", &[]) == Err(Error::NotFound), "directory as program");
    check!(
        process::spawn_with("bin/true", &[], Priority::Low).and_then(process::wait) == Ok(Exit::Code(0)),
        "low priority"
    );
    let path = "bin/true";
    let mut request = SpawnRequest {
        path_ptr: path.as_ptr() as u64,
        path_len: path.len() as u64,
        priority: 7,
        ..SpawnRequest::default()
    };
    check!(sys::spawn(&request) == Err(Error::InvalidArgument), "priority 7");
    request.priority = 1;
    request.flags = 1;
    check!(sys::spawn(&request) == Err(Error::InvalidArgument), "reserved flags");
    request.flags = 0;
    request.args_ptr = 0xffff_8000_0000_0000;
    request.args_len = 16;
    check!(sys::spawn(&request) == Err(Error::BadAddress), "args in kernel half");
    let bad_utf8 = [0xff, 0xfe];
    let request =
        SpawnRequest { path_ptr: bad_utf8.as_ptr() as u64, path_len: 2, priority: 1, ..SpawnRequest::default() };
    check!(sys::spawn(&request) == Err(Error::InvalidArgument), "non-UTF-8 path");
    Ok(())
}

fn mem_map_rules() -> TestResult {
    check!(sys::mem_map(1, MapFlags::WRITE | MapFlags::EXEC) == Err(Error::InvalidArgument), "W+X mapping");
    check!(sys::mem_map(0, MapFlags::WRITE) == Err(Error::InvalidArgument), "zero pages");
    check!(raw(Syscall::MemMap as u64, [1, 1 << 7, 0, 0, 0, 0]) == Err(Error::InvalidArgument), "unknown flag");
    let addr = sys::mem_map(2, MapFlags::WRITE).map_err(|e| format!("mem_map: {e}"))?;
    check!(addr >= HEAP_START, "address {addr:#x} outside the heap range");
    // SAFETY: the two pages were just mapped for this test and nothing else uses them.
    unsafe {
        core::ptr::write_volatile((addr + 4096) as *mut u64, 77);
        check!(core::ptr::read_volatile((addr + 4096) as *const u64) == 77, "write lost");
        check!(sys::mem_unmap(addr, 2).is_ok(), "unmap");
        check!(sys::mem_unmap(addr, 2) == Err(Error::InvalidArgument), "second unmap");
        check!(sys::mem_unmap(addr + 1, 1) == Err(Error::InvalidArgument), "misaligned unmap");
        check!(sys::mem_unmap(0x1000, 1) == Err(Error::InvalidArgument), "unmap of program memory");
    }
    Ok(())
}

fn only_children_are_visible() -> TestResult {
    check!(process::info(1).is_err(), "init (not a child) is visible");
    check!(process::kill(1) == Err(Error::NoSuchProcess), "could kill init");
    check!(process::wait(1) == Err(Error::NoSuchProcess), "could wait for init");
    check!(process::kill(u64::MAX) == Err(Error::NoSuchProcess), "kill of a bogus id");
    let me = process::info(sys::process_id()).map_err(|e| format!("own info: {e}"))?;
    check!(me.pid == vessel_rt::pid() && me.threads == 1, "own info {me:?}");
    Ok(())
}

fn exit_codes_and_arguments() -> TestResult {
    check!(process::run("bin/probe", &["exit", "42"]) == Ok(Exit::Code(42)), "exit 42");
    check!(process::run("bin/probe", &["exit", "0"]) == Ok(Exit::Code(0)), "exit 0");
    check!(process::run("bin/probe", &["args", "a0", "a1", "a2"]) == Ok(Exit::Code(5)), "arguments");
    Ok(())
}

fn killing_a_parent_kills_its_children() -> TestResult {
    let before = sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    let parent = process::spawn("bin/probe", &["parent"]).map_err(|e| format!("spawn: {e}"))?;
    time::sleep_ms(50); // let it start its child, which spins
    let during = sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    check!(
        during.processes == before.processes + 2,
        "expected parent and child, {} -> {}",
        before.processes,
        during.processes
    );
    process::kill(parent).map_err(|e| format!("kill: {e}"))?;
    check!(process::wait(parent) == Ok(Exit::Killed), "parent not reported killed");
    sys::yield_now();
    let after = sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    check!(
        after.processes == before.processes,
        "grandchild survived: {} processes, was {}",
        after.processes,
        before.processes
    );
    check!(after.threads == before.threads, "threads {} != {}", after.threads, before.threads);
    Ok(())
}

fn each_fault_kills_only_the_faulting_process() -> TestResult {
    let cases = [
        ("null", FaultKind::PageFault, Some(0)),
        ("write-code", FaultKind::PageFault, None),
        ("ud", FaultKind::InvalidOpcode, None),
        ("privileged", FaultKind::GeneralProtection, None),
        ("divide", FaultKind::DivideError, None),
        ("exec-data", FaultKind::ExecuteViolation, None),
        ("stack", FaultKind::StackOverflow, Some(vessel_rt::abi::STACK_GUARD)),
        ("kernel", FaultKind::PageFault, Some(0xffff_8000_0000_0000)),
        ("breakpoint", FaultKind::Breakpoint, None),
    ];
    for (what, kind, address) in cases {
        let exit = process::run("bin/probe", &["fault", what]).map_err(|e| format!("{what}: {e}"))?;
        match exit {
            Exit::Fault { kind: k, address: a, ip } => {
                check!(k == kind, "{what}: reported {k:?}, expected {kind:?}");
                check!(
                    (vessel_rt::abi::PROGRAM_START..vessel_rt::abi::PROGRAM_END).contains(&ip),
                    "{what}: ip {ip:#x}"
                );
                if let Some(expected) = address {
                    // The guard page may be hit anywhere inside it.
                    check!(a & !0xfff == expected & !0xfff, "{what}: address {a:#x}, expected {expected:#x}");
                }
                if kind == FaultKind::ExecuteViolation {
                    check!(a == ip, "{what}: fault address {a:#x} != ip {ip:#x}");
                }
            }
            other => return Err(format!("{what}: ended as {other:?}")),
        }
    }
    // The test process itself and the system are still here.
    check!(process::run("bin/true", &[]) == Ok(Exit::Code(0)), "system unusable after faults");
    Ok(())
}

fn same_address_different_memory() -> TestResult {
    let a = process::spawn("bin/probe", &["isolation", "1111"]).map_err(|e| format!("spawn a: {e}"))?;
    let b = process::spawn("bin/probe", &["isolation", "2222"]).map_err(|e| format!("spawn b: {e}"))?;
    let ea = process::wait(a).map_err(|e| format!("wait a: {e}"))?;
    let eb = process::wait(b).map_err(|e| format!("wait b: {e}"))?;
    check!(matches!(ea, Exit::Code(c) if c >= 10), "probe a saw its memory change: {ea:?}");
    check!(ea == eb, "the probes used different addresses: {ea:?} vs {eb:?}");
    Ok(())
}

fn ticks(pid: u64) -> Result<u64, String> {
    process::info(pid).map(|i| i.cpu_ticks).map_err(|e| format!("info {pid}: {e}"))
}

fn stop(pid: u64) -> TestResult {
    process::kill(pid).map_err(|e| format!("kill {pid}: {e}"))?;
    check!(process::wait(pid) == Ok(Exit::Killed), "{pid} not killed");
    Ok(())
}

fn equal_priorities_share_the_cpu() -> TestResult {
    let a = process::spawn("bin/probe", &["spin"]).map_err(|e| format!("spawn: {e}"))?;
    let b = process::spawn("bin/probe", &["spin"]).map_err(|e| format!("spawn: {e}"))?;
    // While we sleep both spinners are ready; each must get slices.
    let deadline = time::now_ns() + 5_000_000_000;
    while (ticks(a)? < 3 || ticks(b)? < 3) && time::now_ns() < deadline {
        time::sleep_ms(50);
    }
    let (ta, tb) = (ticks(a)?, ticks(b)?);
    stop(a)?;
    stop(b)?;
    check!(ta >= 3 && tb >= 3, "one spinner starved: {ta} and {tb} ticks");
    Ok(())
}

fn higher_priority_runs_first() -> TestResult {
    // The high-priority child preempts us as soon as it exists and runs to its end before we
    // execute another instruction.
    let child =
        process::spawn_with("bin/probe", &["spin", "100"], Priority::High).map_err(|e| format!("spawn: {e}"))?;
    let state = process::info(child).map(|i| i.state).map_err(|e| format!("info: {e}"))?;
    check!(state == 2, "the high-priority child had not finished when we ran again (state {state})");
    check!(process::wait(child) == Ok(Exit::Code(0)), "child status");
    Ok(())
}

fn lower_priority_waits_for_idle_cpu() -> TestResult {
    let low = process::spawn_with("bin/probe", &["spin"], Priority::Low).map_err(|e| format!("spawn: {e}"))?;
    // Keep the CPU busy at normal priority for a while: the low spinner must get nothing.
    let until = time::now_ns() + 100_000_000;
    while time::now_ns() < until {
        core::hint::spin_loop();
    }
    let starved = ticks(low)?;
    // Now leave the CPU idle: the low spinner runs.
    let deadline = time::now_ns() + 5_000_000_000;
    while ticks(low)? < 2 && time::now_ns() < deadline {
        time::sleep_ms(30);
    }
    let ran = ticks(low)?;
    stop(low)?;
    check!(starved == 0, "low priority ran {starved} ticks while normal priority was busy");
    check!(ran >= 2, "low priority never ran on an idle CPU ({ran} ticks)");
    Ok(())
}

fn sse_state_survives_context_switches() -> TestResult {
    arch::set_xmm(0x1000);
    let a = process::spawn("bin/probe", &["fpu", "7000"]).map_err(|e| format!("spawn: {e}"))?;
    let b = process::spawn("bin/probe", &["fpu", "9000"]).map_err(|e| format!("spawn: {e}"))?;
    let mut intact = true;
    for _ in 0..200 {
        sys::yield_now();
        intact &= arch::xmm_intact(0x1000);
    }
    check!(intact, "this process's SSE registers changed across switches");
    check!(process::wait(a) == Ok(Exit::Code(0)), "probe a saw its SSE registers change");
    check!(process::wait(b) == Ok(Exit::Code(0)), "probe b saw its SSE registers change");
    Ok(())
}

fn thousand_spawn_wait_cycles_leak_nothing() -> TestResult {
    for _ in 0..5 {
        process::run("bin/true", &[]).map_err(|e| format!("warm-up: {e}"))?;
    }
    let before = sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    for i in 0..1000 {
        let exit = process::run("bin/true", &[]).map_err(|e| format!("run {i}: {e}"))?;
        check!(exit == Exit::Code(0), "run {i}: {exit:?}");
    }
    let after = sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    check!(
        after.available_frames() == before.available_frames(),
        "frames: {} available before, {} after",
        before.available_frames(),
        after.available_frames()
    );
    check!(
        after.heap_used == before.heap_used,
        "kernel heap: {} bytes before, {} after",
        before.heap_used,
        after.heap_used
    );
    check!(after.processes == before.processes && after.threads == before.threads, "objects: {before:?} -> {after:?}");
    Ok(())
}

/// Runs one fuzzer for at most three seconds; true if it got through all its calls.
fn fuzz_once(seed: u64) -> Result<bool, String> {
    let text = format!("{seed}");
    let pid = process::spawn("bin/probe", &["fuzz", text.as_str(), "3000"]).map_err(|e| format!("spawn: {e}"))?;
    // A fuzzer blocked in a receive or a wait forever is stopped here.
    let deadline = time::now_ns() + 3_000_000_000;
    while process::info(pid).is_ok_and(|i| i.state != 2) && time::now_ns() < deadline {
        time::sleep_ms(20);
    }
    let _ = process::kill(pid);
    let exit = process::wait(pid).map_err(|e| format!("wait {seed}: {e}"))?;
    Ok(exit == Exit::Code(0))
}

fn random_calls_leave_the_kernel_whole() -> TestResult {
    const SEEDS: [u64; 6] = [1, 7, 42, 1234, 99_999, 31_337];
    // A first round lets the kernel's tables reach their working size (capability records and
    // queues are reused, not returned), so the comparison after the second round sees leaks,
    // not growth.
    for seed in SEEDS {
        fuzz_once(seed)?;
    }
    let before = sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    let mut finished = 0;
    for seed in SEEDS {
        if fuzz_once(seed)? {
            finished += 1;
        }
    }
    // The kernel is intact: programs still run and nothing the fuzzers made is left behind.
    check!(process::run("bin/true", &[]) == Ok(Exit::Code(0)), "system unusable after fuzzing");
    sys::yield_now();
    let after = sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    let (frames_before, frames_after) = (before.available_frames(), after.available_frames());
    check!(frames_after == frames_before, "available frames {frames_before} -> {frames_after}");
    // The kernel's work lists (dead threads, ended processes, run queues) keep or drop their
    // spare capacity with the load, so the heap may differ by a little; six fuzzers leaking
    // anything real (a thread, a process record, a capability table) would exceed this.
    let drift = after.heap_used.abs_diff(before.heap_used);
    check!(drift <= 2048, "kernel heap {} -> {}", before.heap_used, after.heap_used);
    check!(
        (after.processes, after.threads, after.objects, after.caps)
            == (before.processes, before.threads, before.objects, before.caps),
        "objects {before:?} -> {after:?}"
    );
    // Most runs must get through all their calls, or the fuzzing is shallower than it looks
    // (a run may still end early, e.g. by waiting for a child it spawned).
    check!(finished >= 4, "only {finished} of 6 fuzz runs completed their 3,000 calls");
    Ok(())
}
