//! Kept replies, bound notifications and process exit events: the kernel pieces that let a
//! server keep callers waiting while it serves others, and wake for interrupts, timers and
//! deaths from its one receive loop, without polling.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use alloc::sync::Arc;
use vessel_rt::abi::{Error, Exit, Meta, ObjectKind, Rights};
use vessel_rt::ipc::{Cap, Endpoint, Notification, ProcessHandle, ReplyCap};
use vessel_rt::{process, sys, thread, time};

use crate::ipc::{counts, e, finished};
use crate::{TestResult, check};

/// What `probe keep-replies` and `call-expect` add to the caller's word in an answer.
const ANSWER_OFFSET: u64 = 1000;

pub const TESTS: &[crate::Test] = &[
    ("reply::thirty_two_kept_replies_answered_in_reverse", thirty_two_kept_replies_answered_in_reverse),
    ("reply::answered_later_by_another_thread", answered_later_by_another_thread),
    ("reply::misuse_gives_defined_errors", misuse_gives_defined_errors),
    ("reply::server_killed_holding_replies_fails_every_caller", server_killed_holding_replies_fails_every_caller),
    ("notification::bound_notification_ends_a_receive", bound_notification_ends_a_receive),
    ("notification::rtc_interrupt_wakes_a_bound_receiver", rtc_interrupt_wakes_a_bound_receiver),
    ("process::exit_events_signal_a_notification", exit_events_signal_a_notification),
];

/// Waits (up to 5 s) until the kernel holds `objects` objects: how a test knows a server has
/// kept all its callers' replies.
pub(crate) fn objects_reach(objects: u64) -> TestResult {
    let deadline = time::now_ns() + 5_000_000_000;
    loop {
        let now = sys::kernel_stats().map_err(e("stats"))?.objects;
        if now == objects {
            return Ok(());
        }
        check!(time::now_ns() < deadline, "objects stayed at {now}, expected {objects}");
        time::sleep_ms(2);
    }
}

fn spawn_callers(ep: Endpoint, count: u64) -> Result<Vec<u64>, String> {
    (0..count)
        .map(|i| process::spawn_with_caps("bin/probe", &["call-expect", &format!("{i}")], &[ep.0.0]))
        .collect::<Result<_, _>>()
        .map_err(e("spawn caller"))
}

fn thirty_two_kept_replies_answered_in_reverse() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = process::spawn_with_caps("bin/probe", &["keep-replies", "32"], &[ep.0.0]).map_err(e("spawn"))?;
    let callers = spawn_callers(ep, 32)?;
    for (i, pid) in callers.into_iter().enumerate() {
        let exit = process::wait(pid).map_err(e("wait caller"))?;
        check!(exit == Exit::Code(0), "caller {i} ended {exit:?} (1: another caller's answer)");
    }
    check!(process::wait(server) == Ok(Exit::Code(0)), "the server could not answer every kept reply");
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn answered_later_by_another_thread() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let caller = process::spawn_with_caps("bin/probe", &["call-expect", "5"], &[ep.0.0]).map_err(e("spawn"))?;
    // A second thread receives the call and keeps the reply; this thread answers it.
    let kept = Arc::new(AtomicU32::new(u32::MAX));
    let shared = kept.clone();
    let receiver = thread::spawn(move || {
        let Ok(message) = ep.recv() else { return 1 };
        let Ok(reply) = ReplyCap::take() else { return 2 };
        shared.store(reply.0.0, Ordering::Release);
        message.words[0] as i32
    })
    .map_err(e("thread"))?;
    let status = receiver.join().map_err(e("join"))?;
    check!(status.exit() == Exit::Code(5), "the receiving thread ended {:?}", status.exit());
    let reply = ReplyCap(Cap(kept.load(Ordering::Acquire)));
    check!(reply.0.inspect().map(|i| i.kind) == Ok(ObjectKind::Reply as u32), "kept reply {:?}", reply.0.inspect());
    reply.send([5 + ANSWER_OFFSET, 0, 0, 0], Meta::default()).map_err(e("answer"))?;
    check!(process::wait(caller) == Ok(Exit::Code(0)), "the caller did not get the later answer");
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn misuse_gives_defined_errors() -> TestResult {
    let before = counts()?;
    check!(ReplyCap::take() == Err(Error::InvalidArgument), "a reply kept with no call received");
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    // Dropped: the caller learns nobody will answer.
    let caller = process::spawn_with_caps("bin/probe", &["call-expect", "1"], &[ep.0.0]).map_err(e("spawn"))?;
    ep.recv().map_err(e("recv"))?;
    let reply = ReplyCap::take().map_err(e("take"))?;
    check!(ReplyCap::take() == Err(Error::InvalidArgument), "the same reply kept twice");
    // It cannot be copied, minted or sent to another process.
    check!(reply.0.duplicate(Rights::SEND) == Err(Error::MissingRights), "a reply capability duplicated");
    check!(reply.0.mint(Rights::SEND, 3) == Err(Error::WrongObject), "a reply capability minted");
    check!(reply.0.inspect().map(|i| i.rights) == Ok(Rights::SEND.bits()), "rights {:?}", reply.0.inspect());
    check!(
        process::spawn_with_caps("bin/probe", &["hold"], &[reply.0.0]) == Err(Error::MissingRights),
        "a reply capability handed to another process"
    );
    let other = Endpoint::create().map_err(e("endpoint"))?;
    let echo = process::spawn_with_caps("bin/probe", &["echo-server"], &[other.0.0]).map_err(e("spawn echo"))?;
    // SAFETY: staging only.
    unsafe { vessel_rt::ipc::buffer() }.caps[0] = reply.0.0;
    let with_reply = Meta { cap_count: 1, ..Meta::default() };
    check!(other.call([0; 4], with_reply) == Err(Error::MissingRights), "a reply capability sent in a message");
    check!(reply.0.inspect().is_ok(), "a refused message lost the reply capability");
    check!(other.call([u64::MAX, 0, 0, 0], Meta::default()).is_ok(), "stopping the echo server");
    check!(process::wait(echo) == Ok(Exit::Code(0)), "echo server");
    other.0.delete().map_err(e("delete"))?;
    reply.0.delete().map_err(e("delete"))?;
    check!(process::wait(caller) == Ok(Exit::Code(3)), "the caller of a dropped reply did not get PeerDied");
    // Single use: the second answer finds a stale handle.
    let caller = process::spawn_with_caps("bin/probe", &["call-expect", "2"], &[ep.0.0]).map_err(e("spawn"))?;
    ep.recv().map_err(e("recv"))?;
    let reply = ReplyCap::take().map_err(e("take"))?;
    reply.send([2 + ANSWER_OFFSET, 0, 0, 0], Meta::default()).map_err(e("answer"))?;
    check!(reply.send([0; 4], Meta::default()) == Err(Error::StaleHandle), "a reply answered twice");
    check!(process::wait(caller) == Ok(Exit::Code(0)), "the caller did not get its answer");
    // The caller was killed before the answer: `PeerDied`, and the capability is gone anyway.
    let caller = process::spawn_with_caps("bin/probe", &["call-expect", "3"], &[ep.0.0]).map_err(e("spawn"))?;
    ep.recv().map_err(e("recv"))?;
    let reply = ReplyCap::take().map_err(e("take"))?;
    // `CapInspect` tells whether the caller still waits (detail 1), so a server can drop the
    // replies of callers that died.
    check!(reply.0.inspect().map(|i| i.detail) == Ok(1), "a waiting caller: {:?}", reply.0.inspect());
    process::kill(caller).map_err(e("kill"))?;
    check!(process::wait(caller) == Ok(Exit::Killed), "caller");
    check!(reply.0.inspect().map(|i| i.detail) == Ok(0), "a dead caller: {:?}", reply.0.inspect());
    check!(reply.send([0; 4], Meta::default()) == Err(Error::PeerDied), "an answer to a dead caller");
    check!(reply.0.inspect() == Err(Error::StaleHandle), "the used reply capability stayed");
    // Not a reply capability at all.
    check!(ReplyCap(ep.0).send([0; 4], Meta::default()) == Err(Error::WrongObject), "an endpoint as a reply");
    check!(ReplyCap(Cap(0xffff)).send([0; 4], Meta::default()).is_err(), "a bogus handle as a reply");
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn server_killed_holding_replies_fails_every_caller() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server =
        process::spawn_with_caps("bin/probe", &["keep-replies", "8", "hang"], &[ep.0.0]).map_err(e("spawn"))?;
    let callers = spawn_callers(ep, 8)?;
    // The endpoint, then one reply object per caller.
    objects_reach(before.0 + 1 + 8)?;
    process::kill(server).map_err(e("kill"))?;
    check!(process::wait(server) == Ok(Exit::Killed), "server");
    for (i, pid) in callers.into_iter().enumerate() {
        let exit = process::wait(pid).map_err(e("wait caller"))?;
        check!(exit == Exit::Code(3), "caller {i} ended {exit:?}, not with PeerDied");
    }
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn bound_notification_ends_a_receive() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let n = Notification::create().map_err(e("notification"))?;
    // A server thread bound to `n` receives four times and reports how each receive ended.
    let outcomes = Arc::new([const { AtomicU32::new(0) }; 4]);
    let report = outcomes.clone();
    let server = thread::spawn(move || {
        if n.bind().is_err() {
            return 1;
        }
        for slot in report.iter() {
            let value = match ep.recv() {
                Ok(m) => match m.notified() {
                    Some(bits) => 0x1_0000 | bits as u32,
                    None => {
                        let _ = vessel_rt::ipc::reply([m.words[0] + 1, 0, 0, 0], Meta::default());
                        0x2_0000 | m.words[0] as u32
                    }
                },
                Err(_) => 0xdead,
            };
            slot.store(value, Ordering::Release);
        }
        0
    })
    .map_err(e("thread"))?;
    // 1. A signal wakes the thread blocked in receive.
    time::sleep_ms(20);
    n.signal(0b1010).map_err(e("signal"))?;
    // 2. A call wakes it too.
    let answer = ep.call([7, 0, 0, 0], Meta::default()).map_err(e("call"))?;
    check!(answer.words[0] == 8, "answer {:?}", answer.words);
    // 3. Bits pending before the receive end it at once (signal while it handles the call's
    // aftermath is racy, so: signal twice and let the next receives take them).
    time::sleep_ms(20);
    n.signal(0b1).map_err(e("signal"))?;
    time::sleep_ms(20);
    let answer = ep.call([9, 0, 0, 0], Meta::default()).map_err(e("call"))?;
    check!(answer.words[0] == 10, "answer {:?}", answer.words);
    let status = server.join().map_err(e("join"))?;
    check!(status.exit() == Exit::Code(0), "server thread {:?}", status.exit());
    let got: Vec<u32> = outcomes.iter().map(|o| o.load(Ordering::Acquire)).collect();
    check!(got == [0x1_000a, 0x2_0007, 0x1_0001, 0x2_0009], "receives ended as {got:x?}");
    // The server thread's end dropped its binding; a notification binds one thread at a time.
    n.bind().map_err(e("bind after the bound thread ended"))?;
    let other = thread::spawn(move || match n.bind() {
        Err(Error::AccessDenied) => 0,
        _ => 1,
    })
    .map_err(e("thread"))?;
    check!(other.join().map(|s| s.exit()) == Ok(Exit::Code(0)), "a second binding was not refused");
    // A signal of no bits leaves a bound receive alone.
    n.signal(0).map_err(e("signal 0"))?;
    check!(ep.recv_timeout(20_000_000) == Err(Error::TimedOut), "a bound receive woke for no bits");
    // An unbound thread's receive ignores the notification.
    Notification::unbind_current().map_err(e("unbind"))?;
    n.signal(1).map_err(e("signal"))?;
    check!(ep.recv_timeout(20_000_000) == Err(Error::TimedOut), "an unbound receive woke for a signal");
    check!(n.poll() == Ok(1), "the bits were taken by an unbound receive");
    // Hostile: bad flags, the wrong kind, no RECEIVE right.
    check!(sys_bind(n.0.0, 7) == Err(Error::InvalidArgument), "bind flags 7");
    check!(Notification(ep.0).bind() == Err(Error::WrongObject), "binding an endpoint");
    let no_recv = Notification(n.0.duplicate(Rights::SEND).map_err(e("dup"))?);
    check!(no_recv.bind() == Err(Error::MissingRights), "binding without RECEIVE");
    for cap in [no_recv.0, n.0, ep.0] {
        cap.delete().map_err(e("delete"))?;
    }
    finished(before)
}

fn sys_bind(handle: u32, flags: u64) -> Result<u64, Error> {
    crate::raw(vessel_rt::abi::Syscall::NotificationBind as u64, [u64::from(handle), flags, 0, 0, 0, 0])
}

fn rtc_interrupt_wakes_a_bound_receiver() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let n = Notification::create().map_err(e("notification"))?;
    n.bind().map_err(e("bind"))?;
    let woke = crate::hw::with_rtc_periodic(n, || ep.recv_timeout(2_000_000_000))?;
    Notification::unbind_current().map_err(e("unbind"))?;
    let woke = woke.map_err(e("receive"))?;
    check!(woke.notified() == Some(1 << 8), "the receive ended with {woke:?}");
    for cap in [n.0, ep.0] {
        cap.delete().map_err(e("delete"))?;
    }
    finished(before)
}

fn exit_events_signal_a_notification() -> TestResult {
    let before = counts()?;
    let n = Notification::create().map_err(e("notification"))?;
    let child = process::spawn("bin/probe", &["spin"]).map_err(e("spawn"))?;
    let handle = ProcessHandle::of(child).map_err(e("process cap"))?;
    handle.notify_on_exit(n, 0b100).map_err(e("notify"))?;
    handle.notify_on_exit(n, 0b001).map_err(e("notify again"))?;
    check!(n.wait_timeout(20_000_000) == Err(Error::TimedOut), "signalled while the child runs");
    process::kill(child).map_err(e("kill"))?;
    check!(n.wait_timeout(2_000_000_000) == Ok(0b101), "no exit event");
    // Registered after the end (a zombie): signalled at once.
    handle.notify_on_exit(n, 0b10).map_err(e("notify a zombie"))?;
    check!(n.poll() == Ok(0b10), "no event for an ended process");
    check!(process::wait(child) == Ok(Exit::Killed), "child");
    handle.0.delete().map_err(e("delete"))?;
    // Hostile: no READ, zero bits, the wrong kinds, too many notifications.
    let child = process::spawn("bin/probe", &["spin"]).map_err(e("spawn"))?;
    let handle = ProcessHandle::of(child).map_err(e("process cap"))?;
    let weak = ProcessHandle(handle.0.duplicate(Rights::all() - Rights::READ).map_err(e("dup"))?);
    check!(weak.notify_on_exit(n, 1) == Err(Error::MissingRights), "notify without READ");
    check!(handle.notify_on_exit(n, 0) == Err(Error::InvalidArgument), "zero bits");
    check!(ProcessHandle(n.0).notify_on_exit(n, 1) == Err(Error::WrongObject), "a notification as the process");
    check!(handle.notify_on_exit(Notification(handle.0), 1) == Err(Error::WrongObject), "a process as notification");
    let many: Vec<Notification> = (0..vessel_rt::abi::MAX_EXIT_EVENTS)
        .map(|_| Notification::create())
        .collect::<Result<_, _>>()
        .map_err(e("n"))?;
    for m in &many[1..] {
        handle.notify_on_exit(*m, 1).map_err(e("notify"))?;
    }
    handle.notify_on_exit(n, 1).map_err(e("notify the last one"))?;
    check!(handle.notify_on_exit(many[0], 1) == Err(Error::TooLarge), "more exit events than allowed");
    // A notification deleted before the end frees its place, and is skipped at the end.
    many[1].0.delete().map_err(e("delete"))?;
    handle.notify_on_exit(many[0], 1).map_err(e("notify in the freed place"))?;
    process::kill(child).map_err(e("kill"))?;
    check!(process::wait(child) == Ok(Exit::Killed), "child");
    check!(n.poll() == Ok(1), "the event did not reach the last notification");
    for m in many.iter().filter(|m| **m != many[1]) {
        check!(m.poll() == Ok(1), "an event missing");
    }
    for cap in [weak.0, handle.0, many[0].0, n.0] {
        cap.delete().map_err(e("delete"))?;
    }
    for m in &many[2..] {
        m.0.delete().map_err(e("delete"))?;
    }
    finished(before)
}
