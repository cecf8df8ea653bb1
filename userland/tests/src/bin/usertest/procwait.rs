//! `proc` without polling: `Wait` keeps the caller's reply until the child ends (told by an
//! exit event), with a timeout variant; waits on a destroyed container are refused; many
//! waiters each get their own child's status; supervision restarts a crashed service by event.
//! `KernelStats::timed_waits` shows whether anything (proc) waited with a timeout meanwhile.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_proc_protocol::{Ending, Limits};
use vessel_rt::abi::{Error, Meta};
use vessel_rt::ipc::Notification;
use vessel_rt::proc::Proc;
use vessel_rt::{sys, time};

use crate::containers::e as r;
use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("proc::wait_blocks_until_the_child_ends_without_polling", wait_blocks_until_the_child_ends_without_polling),
    ("proc::wait_timeout_and_try_wait", wait_timeout_and_try_wait),
    ("proc::sixty_four_waiters_each_get_their_own_child", sixty_four_waiters_each_get_their_own_child),
    ("proc::waits_into_a_destroyed_container_are_refused", waits_into_a_destroyed_container_are_refused),
    ("proc::supervision_restarts_by_event", supervision_restarts_by_event),
    ("proc::hostile_messages_are_answered", hostile_messages_are_answered),
    ("proc::a_dead_waiter_leaves_nothing_kept", a_dead_waiter_leaves_nothing_kept),
];

fn proc() -> Result<Proc, String> {
    Proc::get().ok_or_else(|| String::from("not started by proc"))
}

fn timed_waits() -> Result<u64, String> {
    sys::kernel_stats().map(|s| s.timed_waits).map_err(r("stats"))
}

fn wait_blocks_until_the_child_ends_without_polling() -> TestResult {
    let proc = proc()?;
    let (pid, _) = proc.spawn(0, "bin/probe", &["sleep-exit", "150", "7"], &[]).map_err(r("spawn"))?;
    let (before, start) = (timed_waits()?, time::now_ns());
    let ending = proc.wait(0, pid).map_err(r("wait"))?;
    let (after, waited) = (timed_waits()?, time::now_ns() - start);
    check!(ending == Ending::Code(7), "ending {ending:?}");
    check!(waited >= 100_000_000, "the wait returned after {waited} ns, before the child ended");
    // Nobody (proc included) waited with a timeout while we were blocked for 150 ms.
    check!(after == before, "{} timed waits happened while proc was idle", after - before);
    // The process is gone now.
    check!(proc.wait(0, pid).map_err(|e| e.error) == Err(Error::NoSuchProcess), "waited for twice");
    Ok(())
}

fn wait_timeout_and_try_wait() -> TestResult {
    let proc = proc()?;
    let (pid, _) = proc.spawn(0, "bin/probe", &["spin"], &[]).map_err(r("spawn"))?;
    check!(proc.try_wait(0, pid).map_err(r("try_wait"))?.is_none(), "a spinning child reads as ended");
    let start = time::now_ns();
    let timed = proc.wait_timeout(0, pid, 30_000_000).map_err(|e| e.error);
    check!(timed == Err(Error::TimedOut), "timed wait on a running child: {timed:?}");
    check!(time::now_ns() - start >= 25_000_000, "the timed wait ended early");
    // A timed wait whose child ends first answers at once with the ending.
    proc.kill(0, pid).map_err(r("kill"))?;
    let ending = proc.wait_timeout(0, pid, 5_000_000_000).map_err(r("wait_timeout"))?;
    check!(ending == Ending::Killed, "ending {ending:?}");
    check!(proc.try_wait(0, 99_999).map_err(|e| e.error) == Err(Error::NoSuchProcess), "try_wait of nothing");
    Ok(())
}

fn sixty_four_waiters_each_get_their_own_child() -> TestResult {
    let proc = proc()?;
    // 64 children ending in a different order than they started, with 64 exit codes, and one
    // waiter process for each, all blocked in proc at once.
    let mut pairs = Vec::new();
    for i in 0..64u64 {
        let ms = format!("{}", 50 + (i * 37) % 64);
        let code = format!("{}", i + 1);
        let (child, _) = proc.spawn(0, "bin/probe", &["sleep-exit", &ms, &code], &[]).map_err(r("spawn child"))?;
        let (waiter, _) =
            proc.spawn(0, "bin/probe", &["proc-wait", "0", &format!("{child}")], &[]).map_err(r("spawn waiter"))?;
        pairs.push((i + 1, waiter));
    }
    for (code, waiter) in pairs {
        let ending = proc.wait(0, waiter).map_err(r("wait waiter"))?;
        check!(ending == Ending::Code(code as i64), "waiter for the child exiting {code} saw {ending:?}");
    }
    Ok(())
}

fn waits_into_a_destroyed_container_are_refused() -> TestResult {
    let proc = proc()?;
    let before = sys::kernel_stats().map_err(r("stats"))?;
    let jail = proc.create(0, Limits::default()).map_err(r("create"))?;
    let (member, _) = proc.spawn(jail, "bin/probe", &["spin"], &[]).map_err(r("spawn member"))?;
    // One waiter outside the container, one inside it (waiting on its sibling).
    let (outside, _) = proc
        .spawn(0, "bin/probe", &["proc-wait", &format!("{jail:x}"), &format!("{member}")], &[])
        .map_err(r("spawn waiter"))?;
    proc.spawn(jail, "bin/probe", &["proc-wait", "0", &format!("{member}")], &[]).map_err(r("spawn inner"))?;
    time::sleep_ms(30);
    proc.destroy(jail).map_err(r("destroy"))?;
    let ending = proc.wait(0, outside).map_err(r("wait waiter"))?;
    check!(ending == Ending::Code(202), "the waiter outside saw {ending:?} (202: NoSuchContainer)");
    // proc answered the dead inner waiter's kept reply without trouble and still serves.
    serves_and_kept_nothing(proc, &before)
}

fn supervision_restarts_by_event() -> TestResult {
    let proc = proc()?;
    let pid = proc.supervise("echo-event", 2, "bin/probe", &["echo-service"]).map_err(r("supervise"))?;
    let (echo, generation) = proc.lookup("echo-event").map_err(r("lookup"))?;
    check!(generation == 0, "first generation {generation}");
    let answer = echo.call([1, 0, 0, 0], Meta::default()).map_err(r("call"))?;
    check!(answer.words[0] == 2, "echo answered {:?}", answer.words);
    let before = timed_waits()?;
    proc.kill(0, pid).map_err(r("kill"))?;
    // proc hears of the death as an event before it takes our next request: the very next
    // lookup already finds the new instance (a polling supervisor would still show the old).
    let (echo2, generation) = proc.lookup("echo-event").map_err(r("lookup"))?;
    check!(generation == 1, "generation right after the crash: {generation}");
    check!(echo.call([1, 0, 0, 0], Meta::default()) == Err(Error::PeerDied), "the dead instance answered");
    let answer = echo2.call([5, 0, 0, 0], Meta::default()).map_err(r("call new"))?;
    check!(answer.words[0] == 6, "new instance answered {:?}", answer.words);
    let after = timed_waits()?;
    check!(after == before, "{} timed waits during the restart", after - before);
    for cap in [echo.0, echo2.0] {
        cap.delete().map_err(r("delete"))?;
    }
    Ok(())
}

/// Random messages to `proc` (labels, words, data lengths and bytes, capabilities attached or
/// not): each is answered, a malformed one with a refusal; capabilities that came with a
/// refused message are not kept; `proc` serves normally afterwards.
fn hostile_messages_are_answered() -> TestResult {
    let proc = proc()?;
    let before = sys::kernel_stats().map_err(r("stats"))?;
    let mut state = 0x5eed_1234_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut refused, mut answered) = (0, 0);
    for _ in 0..2000 {
        let label = match next() % 4 {
            0 => next() % 16,
            1 => vessel_protocol::REFUSED | (next() % 16),
            _ => next(),
        };
        let words = [label, next() % 8, next(), next() % 3];
        let data_len = (next() % 300) as usize;
        let with_cap = next() % 4 == 0;
        {
            // SAFETY: staged here, read back right after the call.
            let buffer = unsafe { vessel_rt::ipc::buffer() };
            for b in &mut buffer.data[..data_len] {
                *b = next() as u8;
            }
            if with_cap {
                buffer.caps[0] = Notification::create().map_err(r("notification"))?.0.0;
            }
        }
        let meta = Meta { data_len: data_len as u16, cap_count: u8::from(with_cap), flags: 0 };
        // Requests that would block or change the system stay out: wait on a random pid of
        // ours is harmless (no such process), kill/destroy/spawn/supervise of random targets
        // are refused (nothing of ours is named); create may succeed and is undone.
        let reply = proc.0.call(words, meta).map_err(r("call"))?;
        if reply.words[0] == vessel_protocol::REFUSED {
            refused += 1;
        } else {
            answered += 1;
            if reply.words[0] == vessel_protocol::reply_label(vessel_proc_protocol::label::create) {
                proc.destroy(reply.words[1]).map_err(r("undo create"))?;
            }
            // SAFETY: read right after the call.
            let buffer = unsafe { vessel_rt::ipc::buffer() };
            for &handle in &buffer.caps[..usize::from(reply.meta.cap_count)] {
                let _ = vessel_rt::ipc::Cap(handle).delete();
            }
        }
    }
    check!(refused > 1500, "only {refused} of 2000 random messages refused ({answered} answered)");
    // Still serving, and nothing kept from the garbage.
    serves_and_kept_nothing(proc, &before)
}

/// `proc` still creates and destroys a container, and the kernel's objects, capabilities and
/// processes are back to `before`.
fn serves_and_kept_nothing(proc: Proc, before: &vessel_rt::abi::KernelStats) -> TestResult {
    let id = proc.create(0, Limits::default()).map_err(r("create"))?;
    proc.destroy(id).map_err(r("destroy"))?;
    sys::yield_now();
    let after = sys::kernel_stats().map_err(r("stats"))?;
    check!(
        (after.objects, after.caps, after.processes) == (before.objects, before.caps, before.processes),
        "objects, caps, processes {:?} -> {:?}",
        (before.objects, before.caps, before.processes),
        (after.objects, after.caps, after.processes)
    );
    Ok(())
}

/// A waiter killed while the process it waits for runs on: `proc` drops the kept reply when it
/// hears of the death, not only when (if ever) the process ends.
fn a_dead_waiter_leaves_nothing_kept() -> TestResult {
    let proc = proc()?;
    let before = sys::kernel_stats().map_err(r("stats"))?;
    let (target, _) = proc.spawn(0, "bin/probe", &["spin"], &[]).map_err(r("spawn target"))?;
    let (waiter, _) =
        proc.spawn(0, "bin/probe", &["proc-wait", "0", &format!("{target}")], &[]).map_err(r("spawn waiter"))?;
    // The waiter's wait is kept: one reply object more.
    crate::replies::objects_reach(before.objects + 1)?;
    proc.kill(0, waiter).map_err(r("kill waiter"))?;
    crate::replies::objects_reach(before.objects)?;
    check!(proc.wait(0, waiter).map_err(r("wait waiter"))? == Ending::Killed, "the waiter was not killed");
    proc.kill(0, target).map_err(r("kill target"))?;
    check!(proc.wait(0, target).map_err(r("wait target"))? == Ending::Killed, "the target was not killed");
    serves_and_kept_nothing(proc, &before)
}
