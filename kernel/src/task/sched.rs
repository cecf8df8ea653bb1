//! The scheduler: picking the next thread and switching to it (the switch itself is
//! `switch`), the idle loop, timer ticks, sleeping and reaping what died.

use super::queue::Queue;
use super::thread::Thread;
use crate::arch::x86_64::percpu as cpu;
use alloc::vec::Vec;
use vessel_indexed::Indexed;

use vessel_abi::{Exit, Priority};

use super::switch::{finish_switch, prepare_switch};
use super::thread::{State, Tid, WaitFor};
use super::{IDLE, SLICE_TICKS, TASKS, Tasks, reaper, with_tasks};

/// Switches to the best ready thread, if that is not the running one. Interrupts must be off.
pub fn schedule() {
    // No reaper pass here: one follows the switch (`finish_switch`), and two in one
    // interrupts-off stretch would double its length; the idle loop reaps when nothing runs.
    let mut guard = TASKS.lock();
    let pair = {
        let Some(t) = guard.as_mut() else { return };
        cpu::set_need_resched(false);
        cpu::set_slice_left(SLICE_TICKS);
        let current = cpu::current();
        let running = t.threads.get(&current).is_some_and(|th| th.state == State::Running);
        if running && current != IDLE {
            t.make_ready(current);
            cpu::set_need_resched(false);
        }
        let next = match t.pop_ready() {
            Some(next) => next,
            None if running => return,
            None => IDLE,
        };
        if next == current {
            if let Some(th) = t.threads.get_mut(&current) {
                th.state = State::Running;
            }
            return;
        }
        prepare_switch(t, current, next)
    };
    finish_switch(guard, pair);
}

/// The IPC direct switch: the running thread has just blocked in IPC and `next`, woken by it
/// and in no run queue, runs at once, with no pass through the run queues. Only when nothing
/// ready outranks `next` ([`Scheduler::may_switch_directly`]), so priorities hold as with `schedule`.
pub(super) fn direct_switch(next: Tid) {
    let mut guard = TASKS.lock();
    let pair = {
        let Some(t) = guard.as_mut() else { return };
        cpu::set_need_resched(false);
        // The woken thread runs on what is left of the slice (no fresh one): two threads
        // trading messages share one slice, and when it ends the tick's pass lets the other
        // ready threads of their priority run.
        let current = cpu::current();
        prepare_switch(t, current, next)
    };
    finish_switch(guard, pair);
}

/// Who runs next and who waits for time or for an end: the run queues (one FIFO of ready
/// threads per priority), the threads with a wake-up deadline, and those blocked in `Wait` or
/// `ThreadWait`.
///
/// Invariants (the fields are private):
/// - A thread is on a run queue exactly while its state is `Ready`, and then on the queue of its
///   process's priority, once; the running thread and blocked ones are on none. Threads get on
///   through `Tasks::make_ready` and off through [`Scheduler::pop`] or [`Scheduler::remove`].
/// - `sleepers` holds each thread with a deadline (`Thread::wake_at`) once: blocked in `Sleep`,
///   or in a receive or notification wait with a timeout.
/// - `waiters` holds each thread blocked in `Wait` or `ThreadWait` once (its `waiting_for`
///   says what for).
pub(super) struct Scheduler {
    ready: [Queue; Priority::LEVELS],
    sleepers: Vec<Tid>,
    waiters: Vec<Tid>,
}

impl Scheduler {
    /// No thread ready, asleep or waiting.
    pub(super) const fn new() -> Self {
        Scheduler { ready: [const { Queue::new() }; Priority::LEVELS], sleepers: Vec::new(), waiters: Vec::new() }
    }

    /// `tid` now has a wake-up deadline (`Thread::wake_at`, set by the caller).
    pub(super) fn add_sleeper(&mut self, tid: Tid) {
        self.sleepers.push(tid);
    }

    /// `tid` has no deadline any more. The scan alone (no out-of-line `retain`) is what the IPC
    /// path usually pays: the receiver it wakes rarely has a timeout.
    #[inline(always)]
    pub(super) fn remove_sleeper(&mut self, tid: Tid) {
        // `iter().any` rather than `contains`, which calls an out-of-line slice search (a code
        // page of its own on the IPC path).
        #[allow(clippy::manual_contains)]
        let asleep = self.sleepers.iter().any(|&s| s == tid);
        if asleep {
            self.sleepers.retain(|&s| s != tid);
        }
    }

    /// Takes off the sleepers whose deadline is `now` or earlier, and returns them.
    pub(super) fn take_due(&mut self, threads: &Indexed<Thread>, now: u64) -> Vec<Tid> {
        let due = |tid: &Tid| threads.get(tid).and_then(|th| th.wake_at).is_some_and(|w| w <= now);
        if !self.sleepers.iter().any(due) {
            return Vec::new();
        }
        let (due, later) = self.sleepers.iter().partition(|tid| due(tid));
        self.sleepers = later;
        due
    }

    /// `tid` blocks in `Wait` or `ThreadWait` (its `waiting_for` set by the caller).
    pub(super) fn add_waiter(&mut self, tid: Tid) {
        self.waiters.push(tid);
    }

    /// `tid` waits no more (it died).
    pub(super) fn remove_waiter(&mut self, tid: Tid) {
        self.waiters.retain(|&t| t != tid);
    }

    /// Takes off the waiters whose `waiting_for` satisfies `ended` (or that have no record),
    /// and returns them.
    pub(super) fn take_waiters(&mut self, threads: &Indexed<Thread>, ended: impl Fn(WaitFor) -> bool) -> Vec<Tid> {
        let (woken, still) = self.waiters.iter().partition(|t| threads.get(t).is_none_or(|th| ended(th.waiting_for)));
        self.waiters = still;
        woken
    }

    /// Puts `tid` last on its priority's queue (`front`: first).
    #[inline(always)]
    pub(super) fn push(&mut self, threads: &mut Indexed<Thread>, priority: Priority, tid: Tid, front: bool) {
        let queue = &mut self.ready[priority as usize];
        if front {
            queue.push_front(threads, tid);
        } else {
            queue.push_back(threads, tid);
        }
    }

    /// Takes the first thread of the highest priority that has one.
    pub(super) fn pop(&mut self, threads: &mut Indexed<Thread>) -> Option<Tid> {
        self.ready.iter_mut().rev().find_map(|queue| queue.pop_front(threads))
    }

    /// Takes `tid` off whichever queue it is on.
    pub(super) fn remove(&mut self, threads: &mut Indexed<Thread>, tid: Tid) {
        // Only a ready thread is on one, that of its priority, which never changes.
        let Some(th) = threads.get(&tid).filter(|th| th.state == State::Ready) else { return };
        let priority = th.owner.priority;
        self.ready[priority as usize].remove(threads, tid);
    }

    /// True if a thread of `priority` may run next without a pass through the run queues: no
    /// ready thread has a higher priority (the running one is blocked, so it does not count).
    #[inline(always)]
    pub(super) fn may_switch_directly(&self, priority: Priority) -> bool {
        self.ready[priority as usize + 1..].iter().all(Queue::is_empty)
    }
}

#[inline(always)]
pub(super) fn reap() {
    if !reaper::pending() {
        return;
    }
    let spaces = with_tasks(Tasks::reap).unwrap_or_default();
    // Dropping an address space frees frames; done outside the table lock.
    drop(spaces);
}

/// Runs the idle loop on the boot thread: schedule whatever is ready, else halt.
#[cfg_attr(feature = "ktest", allow(dead_code))] // the test kernel starts no processes
pub fn idle() -> ! {
    crate::arch::x86_64::disable_interrupts();
    loop {
        schedule();
        // Nothing to run: the reaper's deferred work, a pass at a time, before halting.
        if reaper::pending() {
            reap();
            crate::arch::x86_64::preemption_point();
            continue;
        }
        let halted = crate::time::since_boot_ns();
        crate::arch::x86_64::wait_for_interrupt();
        IDLE_NS.fetch_add(crate::time::since_boot_ns().saturating_sub(halted), core::sync::atomic::Ordering::Relaxed);
    }
}

/// Time spent halted in `idle` (`KernelStats::idle_ns`).
pub static IDLE_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Timer tick: CPU accounting, sleepers, time slices. Called from the interrupt handler, which
/// says whether it may switch threads here (`preempt`): it does for user code, not for the
/// kernel's own preemption points and idle halt, whose interrupts are let in only to be handled
/// (the idle loop schedules next anyway; long kernel work goes on, and what the tick made ready
/// runs when that work's call returns).
pub fn on_tick(preempt: bool) {
    let resched = {
        let Some(mut guard) = TASKS.try_lock() else { return };
        let Some(t) = guard.as_mut() else { return };
        let now = crate::time::since_boot_ns();
        if let Some(pid) = t.threads.get(&cpu::current()).map(|th| th.pid)
            && let Some(p) = t.processes.get_mut(pid)
        {
            p.cpu_ticks += 1;
        }
        for tid in t.sched.take_due(&t.threads, now) {
            if !t.ipc_timed_out(tid) {
                t.make_ready(tid);
            }
        }
        // The kernel printed since the last tick: tell the log's reader.
        let mut followers = t.bindings.log_followers().peekable();
        if followers.peek().is_some() && crate::klog::take_pending() {
            for (id, bits) in followers {
                let _ = t.signal_notification(id, bits);
            }
        }
        cpu::set_slice_left(cpu::slice_left().saturating_sub(1));
        if cpu::slice_left() == 0 {
            cpu::set_need_resched(true);
        }
        cpu::need_resched()
    };
    if resched && preempt {
        schedule();
    }
}

/// Reschedules if a wake-up asked for it (end of a system call).
pub fn preempt_if_needed() {
    if cpu::need_resched() {
        schedule();
    }
}

/// Gives up the CPU.
pub fn yield_now() {
    schedule();
}

/// Ends the calling process. Never returns.
pub fn exit_current(exit: Exit) -> ! {
    with_tasks(|t| {
        let pid = t.threads.get(&cpu::current()).map_or(0, |th| th.pid);
        t.terminate(pid, exit);
    });
    schedule();
    unreachable_after_exit()
}

pub(super) fn unreachable_after_exit() -> ! {
    // A dead thread is never switched back to; if it were, stop rather than run on.
    log::error!("a dead thread was resumed");
    crate::arch::x86_64::halt_forever()
}

/// Blocks the caller for `ns` nanoseconds.
pub fn sleep(ns: u64) {
    with_tasks(|t| {
        let current = cpu::current();
        if let Some(th) = t.threads.get_mut(&current) {
            th.state = State::Blocked;
            th.wake_at = Some(crate::time::since_boot_ns().saturating_add(ns));
            t.sched.add_sleeper(current);
        }
    });
    schedule();
}

/// #NM: the running thread used the FPU/SSE while another thread's state was in the registers.
/// Saves that state to its owner, loads the running thread's, and makes it the owner.
pub fn fpu_trap() {
    crate::arch::x86_64::fpu::set_trap_on_use(false);
    with_tasks(|t| {
        let current = cpu::current();
        if cpu::fpu_owner() == current {
            return;
        }
        let owner = cpu::fpu_owner();
        if let Some(th) = t.threads.get_mut(&owner).filter(|th| th.state != State::Dead) {
            th.fpu.save();
        }
        if let Some(th) = t.threads.get_mut(&current) {
            th.fpu.restore();
        }
        cpu::set_fpu_owner(current);
    });
}
