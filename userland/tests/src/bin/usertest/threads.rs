//! Threads: several per process, each with its own IPC buffer; joining, killing, limits, and
//! how a process ends with its threads.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use vessel_rt::abi::{ContainerLimits, Error, Exit, FaultKind, KernelStats, Meta, ObjectKind, Syscall};
use vessel_rt::ipc::{self, Endpoint, Notification};
use vessel_rt::{process, sys, thread};

use crate::containers::{e, stats};
use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("thread::threads_run_and_join_with_their_exit_codes", threads_run_and_join),
    ("thread::each_thread_has_its_own_ipc_buffer", each_thread_has_its_own_ipc_buffer),
    ("thread::killing_a_thread_ends_only_it", killing_a_thread_ends_only_it),
    ("thread::hostile_thread_calls_refused", hostile_thread_calls_refused),
    ("thread::a_process_ends_with_its_threads", a_process_ends_with_its_threads),
    ("thread::slot_and_container_limits", slot_and_container_limits),
    ("thread::detached_threads_free_their_slots", detached_threads_free_their_slots),
    ("thread::another_process_may_wait_for_a_thread", another_process_may_wait_for_a_thread),
    ("thread::destroying_a_container_ends_its_threads", destroying_a_container_ends_its_threads),
    ("thread::the_heap_grows_around_thread_stacks", the_heap_grows_around_thread_stacks),
    ("memory::unmapped_ranges_are_reused_and_guards_kept", unmapped_ranges_are_reused_and_guards_kept),
    ("thread::another_process_cannot_move_our_fs_base", another_process_cannot_move_our_fs_base),
    ("thread::pooled_kernel_stacks_are_counted", pooled_kernel_stacks_are_counted),
    ("sched::ipc_ping_pong_leaves_time_for_others", ipc_ping_pong_leaves_time_for_others),
];

/// Threads, objects, capabilities, processes and available frames are where they were.
fn same_counts(before: &KernelStats) -> TestResult {
    crate::containers::same_counts(before, &stats()?)
}

/// Runs `scenario` once to let the heap and the kernel's tables reach their working size,
/// then again between two counts that must agree.
fn without_leaks(mut scenario: impl FnMut() -> TestResult) -> TestResult {
    scenario()?;
    let before = stats()?;
    scenario()?;
    same_counts(&before)
}

fn own_threads() -> Result<u64, String> {
    sys::process_info(sys::process_id()).map(|i| i.threads).map_err(e("own info"))
}

fn threads_run_and_join() -> TestResult {
    without_leaks(|| {
        static GO: AtomicBool = AtomicBool::new(false);
        GO.store(false, Ordering::SeqCst);
        let mut handles = Vec::new();
        for i in 0..8 {
            let handle = thread::spawn(move || {
                while !GO.load(Ordering::SeqCst) {
                    sys::yield_now();
                }
                // Allocation from several threads at once goes through the shared heap.
                let text = format!("thread {i}");
                text.len() as i32 * 10 + i
            })
            .map_err(e("spawn"))?;
            check!(handle.cap().inspect().is_ok_and(|c| c.kind == ObjectKind::Thread as u32), "thread cap kind");
            handles.push(handle);
        }
        let running = own_threads()?;
        check!(running == 9, "{running} threads while 8 run");
        GO.store(true, Ordering::SeqCst);
        for (i, handle) in handles.into_iter().enumerate() {
            let status = handle.join().map_err(e("join"))?;
            check!(status.exit() == Exit::Code(8 * 10 + i as i64), "thread {i} ended {:?}", status.exit());
        }
        let left = own_threads()?;
        check!(left == 1, "{left} threads after joining");
        Ok(())
    })
}

/// Client threads and a server thread of one process talk through one endpoint, each with
/// 256 bytes of data per message. With a buffer shared by the process, a queued client's data
/// would be overwritten by the next client before the server read it.
fn each_thread_has_its_own_ipc_buffer() -> TestResult {
    const CLIENTS: u32 = 4;
    const CALLS: u32 = 100;
    const LEN: usize = 256;
    without_leaks(|| {
        let ep = Endpoint::create().map_err(e("endpoint"))?;
        let me = sys::process_id();
        let server = thread::spawn(move || {
            let error = ep.serve(|m| {
                // SAFETY: read and answered before the next IPC of this thread.
                let buffer = unsafe { ipc::buffer() };
                if buffer.sender_pid != me {
                    return ([0; 4], Meta::default());
                }
                for b in &mut buffer.data[..usize::from(m.meta.data_len)] {
                    *b = b.wrapping_add(1);
                }
                ([m.words[0] + 1, 0, 0, 0], m.meta)
            });
            error as i32
        })
        .map_err(e("server"))?;
        let mut clients = Vec::new();
        for k in 0..CLIENTS {
            clients.push(
                thread::spawn(move || {
                    let mut wrong = 0;
                    for i in 0..CALLS {
                        let seed = (k * 1000 + i) as u8;
                        {
                            // SAFETY: staged before the call, read after it, by this thread only.
                            let buffer = unsafe { ipc::buffer() };
                            for (j, b) in buffer.data[..LEN].iter_mut().enumerate() {
                                *b = seed.wrapping_add(j as u8).wrapping_mul(k as u8 + 3);
                            }
                        }
                        // Let the other clients stage their own data before this one is served.
                        sys::yield_now();
                        let meta = Meta { data_len: LEN as u16, ..Meta::default() };
                        let reply = ep.call([u64::from(i), 0, 0, 0], meta);
                        // SAFETY: as above.
                        let buffer = unsafe { ipc::buffer() };
                        let good = reply.is_ok_and(|r| r.words[0] == u64::from(i) + 1)
                            && buffer.data[..LEN].iter().enumerate().all(|(j, &b)| {
                                b == seed.wrapping_add(j as u8).wrapping_mul(k as u8 + 3).wrapping_add(1)
                            });
                        wrong += i32::from(!good);
                    }
                    wrong
                })
                .map_err(e("client"))?,
            );
        }
        for (k, client) in clients.into_iter().enumerate() {
            let status = client.join().map_err(e("join client"))?;
            check!(status.exit() == Exit::Code(0), "client {k}: {:?} wrong replies", status.exit());
        }
        // SAFETY: the server is blocked in a receive, holding nothing.
        unsafe { server.kill() }.map_err(e("kill server"))?;
        check!(server.join().map_err(e("join server"))?.exit() == Exit::Killed, "server not killed");
        ep.0.delete().map_err(e("delete endpoint"))
    })
}

/// Counts threads that are about to block (set just before the blocking call).
static ABOUT_TO_BLOCK: AtomicU32 = AtomicU32::new(0);

/// Waits until `count` threads said they are about to block, then lets them get there (on one
/// CPU, a few yields run each of them into its blocking call).
fn until_blocked(count: u32) {
    while ABOUT_TO_BLOCK.load(Ordering::SeqCst) < count {
        sys::yield_now();
    }
    for _ in 0..8 {
        sys::yield_now();
    }
}

fn killing_a_thread_ends_only_it() -> TestResult {
    without_leaks(|| {
        ABOUT_TO_BLOCK.store(0, Ordering::SeqCst);
        let n = Notification::create().map_err(e("notification"))?;
        let ep = Endpoint::create().map_err(e("endpoint"))?;
        let served = Endpoint::create().map_err(e("endpoint"))?;
        let blocked = |f: fn(Notification, Endpoint, Endpoint) -> i32| {
            thread::spawn(move || {
                ABOUT_TO_BLOCK.fetch_add(1, Ordering::SeqCst);
                f(n, ep, served)
            })
        };
        let waiter = blocked(|n, _, _| n.wait().map_or(2, |_| 1)).map_err(e("waiter"))?;
        let receiver = blocked(|_, ep, _| ep.recv().map_or(2, |_| 1)).map_err(e("receiver"))?;
        let sleeper = blocked(|_, _, _| {
            vessel_rt::time::sleep_ms(60_000);
            1
        })
        .map_err(e("sleeper"))?;
        // A caller whose call the main thread has taken and not answered yet.
        let caller =
            blocked(|_, _, served| served.call([7, 0, 0, 0], Meta::default()).map_or(2, |_| 1)).map_err(e("caller"))?;
        until_blocked(4);
        check!(served.recv().is_ok_and(|m| m.words[0] == 7), "the caller's call");
        for (what, handle) in [("waiter", waiter), ("receiver", receiver), ("sleeper", sleeper), ("caller", caller)] {
            let cap = handle.cap();
            // SAFETY: each is blocked (in a wait, a receive, a sleep, a call), holding nothing.
            unsafe { handle.kill() }.map_err(e(what))?;
            check!(sys::thread_kill(cap.0) == Err(Error::NotFound), "{what}: second kill");
            check!(handle.join().map_err(e(what))?.exit() == Exit::Killed, "{what} not killed");
        }
        // The answer to the dead caller is refused, and nothing dead is left in any queue.
        check!(ipc::reply([0; 4], Meta::default()) == Err(Error::PeerDied), "reply to a killed caller");
        n.signal(4).map_err(e("signal"))?;
        check!(n.poll() == Ok(4), "notification after the kill");
        check!(ep.try_call([0; 4], Meta::default()) == Err(Error::WouldBlock), "a killed receiver still listed");
        let left = own_threads()?;
        check!(left == 1, "{left} threads left");
        for cap in [n.0, ep.0, served.0] {
            cap.delete().map_err(e("delete"))?;
        }
        Ok(())
    })
}

fn hostile_thread_calls_refused() -> TestResult {
    // The runtime keeps a joined thread's stack for the next: have one before counting.
    thread::spawn(|| 0).map_err(e("warm-up"))?.join().map_err(e("warm-up join"))?;
    let before = stats()?;
    let raw = |call: Syscall, args: [u64; 3]| crate::raw(call as u64, [args[0], args[1], args[2], 0, 0, 0]);
    for (what, entry) in crate::BAD_POINTERS.iter().take(4) {
        check!(raw(Syscall::ThreadCreate, [*entry, 0x1000, 0]) == Err(Error::BadAddress), "entry {what}");
    }
    check!(
        raw(Syscall::ThreadCreate, [0x20_0000, 0xffff_8000_0000_0000, 0]) == Err(Error::BadAddress),
        "kernel-half stack"
    );
    let n = Notification::create().map_err(e("notification"))?;
    check!(sys::thread_wait(n.0.0) == Err(Error::WrongObject), "wait on a notification");
    check!(sys::thread_kill(n.0.0) == Err(Error::WrongObject), "kill a notification");
    check!(sys::thread_detach(n.0.0) == Err(Error::WrongObject), "detach a notification");
    check!(sys::thread_wait(4000) == Err(Error::InvalidHandle), "wait on an empty slot");

    // A thread waiting for itself is refused.
    static OWN: AtomicU32 = AtomicU32::new(0);
    OWN.store(0, Ordering::SeqCst);
    let selfish = thread::spawn(|| {
        while OWN.load(Ordering::SeqCst) == 0 {
            sys::yield_now();
        }
        match sys::thread_wait(OWN.load(Ordering::SeqCst)) {
            Err(Error::InvalidArgument) => 0,
            _ => 1,
        }
    })
    .map_err(e("spawn"))?;
    OWN.store(selfish.cap().0, Ordering::SeqCst);

    // A bad status pointer loses nothing: the slot is still there to wait for.
    for (what, ptr) in crate::BAD_POINTERS {
        let got = crate::raw(Syscall::ThreadWait as u64, [u64::from(selfish.cap().0), ptr, 0, 0, 0, 0]);
        check!(got == Err(Error::BadAddress), "wait with {what} status pointer: {got:?}");
    }
    // Another process may hold the capability but may not kill the thread.
    let copy = selfish.cap().duplicate(vessel_rt::abi::Rights::all()).map_err(e("duplicate"))?;
    let pid = process::spawn_with_caps("bin/probe", &["thread-kill-cap"], &[copy.0]).map_err(e("spawn probe"))?;
    check!(process::wait(pid) == Ok(Exit::Code(0)), "foreign kill not refused with AccessDenied");
    copy.delete().map_err(e("delete copy"))?;
    let spare = selfish.cap().duplicate(vessel_rt::abi::Rights::all()).map_err(e("duplicate"))?;
    check!(selfish.join().map_err(e("join"))?.exit() == Exit::Code(0), "self-wait not refused");
    // Its slot is gone: a copy of the capability finds nothing to wait for, or to kill.
    check!(sys::thread_wait(spare.0) == Err(Error::NotFound), "second wait");
    check!(sys::thread_kill(spare.0) == Err(Error::NotFound), "kill after the end");
    spare.delete().map_err(e("delete spare"))?;
    n.0.delete().map_err(e("delete"))?;
    same_counts(&before)
}

fn a_process_ends_with_its_threads() -> TestResult {
    let before = stats()?;
    check!(process::run("bin/probe", &["threads-exit-main", "5"]) == Ok(Exit::Code(5)), "first thread's return");
    check!(process::run("bin/probe", &["threads-last-code"]) == Ok(Exit::Code(9)), "last thread's code");
    let faulted = process::run("bin/probe", &["thread-fault"]);
    check!(
        matches!(faulted, Ok(Exit::Fault { kind: FaultKind::PageFault, .. })),
        "fault in a second thread: {faulted:?}"
    );
    same_counts(&before)
}

fn slot_and_container_limits() -> TestResult {
    let before = stats()?;
    let max = vessel_rt::abi::MAX_THREADS as i64;
    let slots = process::run("bin/probe", &["thread-hog"]);
    check!(slots == Ok(Exit::Code(max - 1)), "slots: {slots:?}");
    let root = crate::containers::root()?;
    let mut limits = ContainerLimits::default();
    limits.amounts[ContainerLimits::THREADS] = 4;
    let c = root.create_child(&limits).map_err(e("create"))?;
    let hog = process::spawn_in(c.0, "bin/probe", &["thread-hog"], &[]).map_err(e("spawn"))?;
    let exit = process::wait_handle(hog);
    check!(exit == Ok(Exit::Code(3)), "a 4-thread container let the hog start {exit:?} more");
    c.destroy().map_err(e("destroy"))?;
    hog.0.delete().map_err(e("delete"))?;
    c.0.delete().map_err(e("delete"))?;
    same_counts(&before)
}

fn detached_threads_free_their_slots() -> TestResult {
    without_leaks(|| {
        static DONE: AtomicU32 = AtomicU32::new(0);
        DONE.store(0, Ordering::SeqCst);
        // More threads than a process has slots, one after another, never joined: each slot
        // comes back when its detached thread ends.
        let total = vessel_rt::abi::MAX_THREADS as u32 + 16;
        for i in 0..total {
            let handle = thread::spawn(|| {
                DONE.fetch_add(1, Ordering::SeqCst);
                0
            })
            .map_err(|err| format!("thread {i}: {err}"))?;
            drop(handle); // detaches
            while DONE.load(Ordering::SeqCst) <= i {
                sys::yield_now();
            }
        }
        sys::yield_now();
        let left = own_threads()?;
        check!(left == 1, "{left} threads left");
        // Detaching a thread that already ended frees its slot at once: waiting finds nothing.
        let handle = thread::spawn(|| 0).map_err(e("spawn"))?;
        let copy = handle.cap().duplicate(vessel_rt::abi::Rights::all()).map_err(e("duplicate"))?;
        while own_threads()? != 1 {
            sys::yield_now();
        }
        drop(handle);
        check!(sys::thread_wait(copy.0) == Err(Error::NotFound), "wait after detach");
        copy.delete().map_err(e("delete"))?;
        Ok(())
    })
}

/// An ended thread's kernel stack goes to the kernel's pool (up to 8 stay mapped for the next
/// thread), not back to the free frames. `pooled_frames` counts it, so the leak checks, which
/// compare `available_frames`, hold whatever the pool held when they began.
fn pooled_kernel_stacks_are_counted() -> TestResult {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    /// Lets the parked threads end however the test leaves (an early `?` detaches them).
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            RELEASE.store(true, Ordering::SeqCst);
        }
    }
    RELEASE.store(false, Ordering::SeqCst);
    let _release = Release;
    let park = || {
        thread::spawn(|| {
            while !RELEASE.load(Ordering::SeqCst) {
                sys::yield_now();
            }
            0
        })
        .map_err(e("spawn"))
    };
    // Nine threads run and end together, so the runtime keeps nine user stacks for reuse and
    // the kernel's pool is full.
    let warm: Vec<_> = (0..9).map(|_| park()).collect::<Result<_, _>>()?;
    RELEASE.store(true, Ordering::SeqCst);
    for handle in warm {
        handle.join().map_err(e("join"))?;
    }
    // Eight live threads take every pooled stack.
    RELEASE.store(false, Ordering::SeqCst);
    let parked: Vec<_> = (0..8).map(|_| park()).collect::<Result<_, _>>()?;
    let before = stats()?;
    // One more thread gets a new kernel stack, which the pool keeps when it ends.
    thread::spawn(|| 0).map_err(e("spawn"))?.join().map_err(e("join"))?;
    let after = stats()?;
    RELEASE.store(true, Ordering::SeqCst);
    for handle in parked {
        handle.join().map_err(e("join"))?;
    }
    check!(
        after.pooled_frames > before.pooled_frames,
        "pooled frames {} -> {}: the ended thread's stack was not pooled",
        before.pooled_frames,
        after.pooled_frames
    );
    crate::containers::same_counts(&before, &after)
}

fn another_process_may_wait_for_a_thread() -> TestResult {
    thread::spawn(|| 0).map_err(e("warm-up"))?.join().map_err(e("warm-up join"))?;
    let before = stats()?;
    let handle = thread::spawn(|| {
        vessel_rt::time::sleep_ms(20);
        7
    })
    .map_err(e("spawn"))?;
    let copy = handle
        .cap()
        .duplicate(vessel_rt::abi::Rights::READ | vessel_rt::abi::Rights::TRANSFER | vessel_rt::abi::Rights::DUPLICATE)
        .map_err(e("duplicate"))?;
    let pid = process::spawn_with_caps("bin/probe", &["thread-wait-cap"], &[copy.0]).map_err(e("spawn probe"))?;
    check!(process::wait(pid) == Ok(Exit::Code(7)), "the other process saw the thread end");
    copy.delete().map_err(e("delete"))?;
    // The slot went to the other waiter; joining still gives the stack back.
    check!(handle.join() == Err(Error::NotFound), "join after another waited");
    same_counts(&before)
}

fn destroying_a_container_ends_its_threads() -> TestResult {
    let before = stats()?;
    let root = crate::containers::root()?;
    let mut limits = ContainerLimits::default();
    limits.amounts[ContainerLimits::THREADS] = 6;
    let c = root.create_child(&limits).map_err(e("create"))?;
    let hog = process::spawn_in(c.0, "bin/probe", &["thread-hog", "park"], &[]).map_err(e("spawn"))?;
    // Until all six of its threads run (the first, five more).
    let mut threads = 0;
    for _ in 0..500 {
        threads = sys::process_info_handle(hog.0.0).map_err(e("info"))?.threads;
        if threads == 6 {
            break;
        }
        vessel_rt::time::sleep_ms(2);
    }
    check!(threads == 6, "the member has {threads} threads");
    c.destroy().map_err(e("destroy"))?;
    check!(process::wait_handle(hog) == Ok(Exit::Killed), "member not killed");
    hog.0.delete().map_err(e("delete"))?;
    c.0.delete().map_err(e("delete"))?;
    same_counts(&before)
}

fn the_heap_grows_around_thread_stacks() -> TestResult {
    for round in 0..2 {
        // More threads than the runtime keeps spare stacks: fresh stacks land right after the
        // heap's last pages, so the heap's next growth cannot continue them.
        // They keep writing their stacks while the heap grows next to them, and until the
        // allocation has been checked: an overlap would show in `big`.
        static GO: AtomicBool = AtomicBool::new(false);
        GO.store(false, Ordering::SeqCst);
        let handles = (0..thread::SPARE_STACKS + 4)
            .map(|_| {
                thread::spawn(|| {
                    let mut scribble = [0u8; 4096];
                    while !GO.load(Ordering::SeqCst) {
                        scribble.fill(0x55);
                        core::hint::black_box(&mut scribble);
                        sys::yield_now();
                    }
                    0
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(e("spawn"))?;
        let big: Vec<u8> = alloc::vec![7u8; 2 * 1024 * 1024];
        for _ in 0..4 {
            sys::yield_now(); // let every thread scribble once more
        }
        check!(big.iter().all(|&b| b == 7), "round {round}: the heap overlapped a thread stack");
        GO.store(true, Ordering::SeqCst);
        for handle in handles {
            handle.join().map_err(e("join"))?;
        }
    }
    Ok(())
}

fn unmapped_ranges_are_reused_and_guards_kept() -> TestResult {
    use vessel_rt::abi::{MapFlags, PAGE_SIZE};
    let before = stats()?;
    let map = |pages, flags| sys::mem_map(pages, flags).map_err(e("map"));
    let unmap = |addr, pages| {
        // SAFETY: every unmap below is of pages mapped here that nothing refers to.
        unsafe { sys::mem_unmap(addr, pages) }.map_err(e("unmap"))
    };
    let a = map(4, MapFlags::WRITE)?;
    unmap(a, 4)?;
    check!(map(4, MapFlags::WRITE)? == a, "an unmapped range is not handed out again");
    unmap(a, 4)?;
    // A guarded mapping keeps its guard page out of every later mapping, until it goes.
    let stack = map(3, MapFlags::WRITE | MapFlags::GUARD)?;
    let mut small = Vec::new();
    for _ in 0..8 {
        let page = map(1, MapFlags::WRITE)?;
        check!(page != stack - PAGE_SIZE, "a mapping landed on a guard page");
        small.push(page);
    }
    for page in small {
        unmap(page, 1)?;
    }
    unmap(stack, 3)?;
    check!(map(4, MapFlags::WRITE)? == stack - PAGE_SIZE, "the guard did not come back with its mapping");
    unmap(stack - PAGE_SIZE, 4)?;
    let memory = vessel_rt::ipc::Memory::create(1).map_err(e("memory"))?;
    let refused = memory.map(MapFlags::WRITE | MapFlags::GUARD);
    memory.0.delete().map_err(e("delete"))?;
    check!(refused == Err(Error::InvalidArgument), "a guard on a memory object's mapping: {refused:?}");
    same_counts(&before)
}

/// A process that reloads `fs` (allowed in user mode) between switches must not leave its base
/// to this process: every IPC call here reads the buffer address through `fs`.
fn another_process_cannot_move_our_fs_base() -> TestResult {
    let pid = process::spawn("bin/probe", &["fs-clobber", "400"]).map_err(e("spawn"))?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = thread::spawn(move || ep.serve(|m| (m.words, m.meta)) as i32).map_err(e("server"))?;
    for i in 0..400u64 {
        sys::yield_now(); // let the clobberer run in between
        let reply = ep.call([i, 0, 0, 0], Meta::default());
        check!(reply.is_ok_and(|r| r.words[0] == i), "call {i}: {reply:?}");
    }
    check!(process::wait(pid) == Ok(Exit::Code(0)), "the clobbering probe failed");
    // SAFETY: the server is blocked in a receive, holding nothing.
    unsafe { server.kill() }.map_err(e("kill"))?;
    server.join().map_err(e("join"))?;
    ep.0.delete().map_err(e("delete"))
}

/// Two threads trading messages (each call switches straight to the other) must not keep a
/// third ready thread of their priority off the CPU: they share one time slice.
fn ipc_ping_pong_leaves_time_for_others() -> TestResult {
    static RAN: AtomicBool = AtomicBool::new(false);
    RAN.store(false, Ordering::SeqCst);
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = thread::spawn(move || ep.serve(|m| (m.words, m.meta)) as i32).map_err(e("server"))?;
    check!(ep.call([0; 4], Meta::default()).is_ok(), "first call");
    let other = thread::spawn(|| {
        RAN.store(true, Ordering::SeqCst);
        0
    })
    .map_err(e("other"))?;
    // A liveness bound, not a timing measurement: slices are 20 ms.
    let deadline = vessel_rt::time::now_ns() + 3_000_000_000;
    let mut calls = 0u64;
    while !RAN.load(Ordering::SeqCst) && vessel_rt::time::now_ns() < deadline {
        check!(ep.call([calls, 0, 0, 0], Meta::default()).is_ok(), "call {calls}");
        calls += 1;
    }
    check!(RAN.load(Ordering::SeqCst), "a ready thread never ran during {calls} round trips");
    other.join().map_err(e("join other"))?;
    // SAFETY: the server is blocked in a receive, holding nothing.
    unsafe { server.kill() }.map_err(e("kill"))?;
    server.join().map_err(e("join server"))?;
    ep.0.delete().map_err(e("delete"))
}
