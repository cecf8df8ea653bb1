//! Probe roles for the kept-reply and event tests: servers that keep their callers' replies,
//! and callers that check what they get back.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use vessel_rt::abi::{Error, Meta};
use vessel_rt::ipc::{Cap, Endpoint, Notification, ReplyCap};
use vessel_rt::{thread, time};

use crate::cap;

/// What a kept answer adds to the caller's word.
pub const ANSWER_OFFSET: u64 = 1000;

/// `keep-replies N [hang]`: receive N calls on endpoint 0 and keep each reply; then answer
/// them in reverse order with `w0 + 1000` (exit 0 if every answer went out), or, with `hang`,
/// never answer (the test kills us).
pub fn keep_replies(count: u64, hang: bool) -> i32 {
    let ep = Endpoint(cap(0));
    let mut kept: Vec<(ReplyCap, u64)> = Vec::new();
    for _ in 0..count {
        let Ok(message) = ep.recv() else { return 1 };
        let Ok(reply) = ReplyCap::take() else { return 2 };
        kept.push((reply, message.words[0]));
    }
    if hang {
        loop {
            time::sleep_ms(1000);
        }
    }
    for (reply, word) in kept.into_iter().rev() {
        if reply.send([word + ANSWER_OFFSET, 0, 0, 0], Meta::default()).is_err() {
            return 3;
        }
    }
    0
}

/// `call-expect V`: call endpoint 0 with `V`; exit 0 if the answer is `V + 1000`, 3 if the
/// call failed with `PeerDied`, 1 for a wrong answer, 2 for another error.
pub fn call_expect(value: u64) -> i32 {
    match Endpoint(cap(0)).call([value, 0, 0, 0], Meta::default()) {
        Ok(reply) if reply.words[0] == value + ANSWER_OFFSET => 0,
        Ok(_) => 1,
        Err(Error::PeerDied) => 3,
        Err(_) => 2,
    }
}

/// `deferred-server`: serve endpoint 0 from two threads: this one receives each call and keeps
/// its reply, a second one answers it (echoing the words) when told through a notification.
/// The partner of the `deferred_reply_roundtrip` benchmark.
pub fn deferred_server() -> i32 {
    let ep = Endpoint(cap(0));
    let Ok(wake) = Notification::create() else { return 1 };
    let handoff = Arc::new((AtomicU32::new(0), [const { AtomicU64::new(0) }; 4]));
    let shared = handoff.clone();
    let answerer = thread::spawn(move || {
        loop {
            if wake.wait().is_err() {
                return 1;
            }
            let reply = ReplyCap(Cap(shared.0.load(Ordering::Acquire)));
            let words = core::array::from_fn(|i| shared.1[i].load(Ordering::Relaxed));
            let _ = reply.send(words, Meta::default());
        }
    });
    if answerer.is_err() {
        return 2;
    }
    loop {
        let Ok(message) = ep.recv() else { return 3 };
        let Ok(reply) = ReplyCap::take() else { return 4 };
        for (slot, word) in handoff.1.iter().zip(message.words) {
            slot.store(word, Ordering::Relaxed);
        }
        handoff.0.store(reply.0.0, Ordering::Release);
        if wake.signal(1).is_err() {
            return 5;
        }
    }
}

/// `sleep-exit MS CODE`: sleep MS milliseconds (no timed receive), then exit with CODE.
pub fn sleep_exit(ms: u64, code: u64) -> i32 {
    time::sleep_ms(ms);
    code as i32
}

/// `proc-wait CONTAINER PID` (container in hex, 0: ours): wait for the process through `proc`;
/// exit with its code, 200 if killed, 201 if it faulted, 202 if the wait was refused with
/// `NoSuchContainer`, 203 for another refusal.
pub fn proc_wait(container: &str, pid: u64) -> i32 {
    let Some(proc) = vessel_rt::proc::Proc::get() else { return 204 };
    let container = u64::from_str_radix(container, 16).unwrap_or(0);
    match proc.wait(container, pid) {
        Ok(vessel_proc_protocol::Ending::Code(code)) => code as i32,
        Ok(vessel_proc_protocol::Ending::Killed) => 200,
        Ok(vessel_proc_protocol::Ending::Fault) => 201,
        Err(refusal) if refusal.error == Error::NoSuchContainer => 202,
        Err(_) => 203,
    }
}

/// `exit-clock MS`: sleep MS milliseconds, then exit with the clock reading (nanoseconds since
/// boot) as a 64-bit exit code: the partner of `proc_wait_latency`, whose waiter subtracts it
/// from the time its wait returned.
pub fn exit_clock(ms: u64) -> ! {
    time::sleep_ms(ms);
    let now = time::now_ns();
    // SAFETY: `Exit` does not return; nothing of this process runs afterwards.
    let _ = unsafe { vessel_rt::arch::syscall(vessel_rt::abi::Syscall::Exit as u64, [now, 0, 0, 0, 0, 0]) };
    loop {
        vessel_rt::arch::provoke(vessel_rt::arch::Fault::InvalidOpcode);
    }
}
