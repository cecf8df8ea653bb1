//! Threads blocked in IPC, whatever they wait on: what each waits for ([`IpcWait`]), what a call
//! does once the table lock is dropped ([`Then`]: return, block, or switch straight to the
//! thread it woke), and how a wait ends without its partner: failure, timeout, cancellation
//! when the thread dies.
//!
//! Invariants: a thread's `ipc` names the one queue or partner it waits on; the wait queues (an
//! endpoint's `senders` and `waiting`, a notification's `waiters`) hold only threads blocked on
//! that object with `ipc` naming it. Every way out of a wait resets `ipc` to `None` and writes
//! the result into the thread's trap frame before it runs again.

use vessel_abi::{Error, NONBLOCK, TIMEOUT};
use vessel_kcore::report::TrapFrame;

use super::Tasks;
use super::frame::frame_of;
use super::sched::{direct_switch, preempt_if_needed, schedule};
use super::thread::{State, Tid};

/// What a thread is blocked on in IPC, so death and timeouts can undo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IpcWait {
    /// Not in IPC.
    #[default]
    None,
    /// Queued as a caller on an endpoint.
    Send(u64),
    /// Queued as a receiver on an endpoint.
    Receive(u64),
    /// Waiting for the reply of this server thread.
    Reply(Tid),
    /// Waiting on a notification.
    Notification(u64),
    /// Waiting for the answer to a call whose reply the server kept: this reply object.
    Kept(u64),
}

/// Writes an error result into a blocked thread's frame and makes it ready.
pub(super) fn fail_thread(t: &mut Tasks, tid: Tid, error: Error) {
    if let Some(frame) = frame_of(t, tid) {
        frame.rax = error as u64;
        frame.rdx = 0;
    }
    if let Some(th) = t.threads.get_mut(&tid) {
        th.ipc = IpcWait::None;
    }
    t.unsleep(tid);
    t.make_ready(tid);
}

impl Tasks {
    /// Undoes a dying thread's IPC: leaves wait queues, and fails the caller it owed a reply.
    pub(super) fn cancel_ipc(&mut self, tid: Tid) {
        let Some(th) = self.threads.get_mut(&tid) else { return };
        let wait = core::mem::take(&mut th.ipc);
        let owed = th.replying_to.take();
        match wait {
            IpcWait::Send(ep) => {
                if let Some(e) = self.objects.endpoint_mut(ep) {
                    e.senders.remove(&mut self.threads, tid);
                }
            }
            IpcWait::Receive(ep) => {
                if let Some(e) = self.objects.endpoint_mut(ep) {
                    e.waiting.remove(&mut self.threads, tid);
                }
            }
            IpcWait::Notification(n) => {
                if let Some(n) = self.objects.notification_mut(n) {
                    n.waiters.remove(&mut self.threads, tid);
                }
            }
            // A kept reply stays with its holder, who gets `PeerDied` when answering it.
            IpcWait::Reply(_) | IpcWait::Kept(_) | IpcWait::None => {}
        }
        if let Some(caller) = owed
            && self.threads.get(&caller).is_some_and(|c| c.ipc == IpcWait::Reply(tid) && c.state != State::Dead)
        {
            fail_thread(self, caller, Error::PeerDied);
        }
    }

    /// A sleeping thread's deadline passed while it waited in IPC: it gets `TimedOut`.
    pub(super) fn ipc_timed_out(&mut self, tid: Tid) -> bool {
        let waiting = self.threads.get(&tid).map(|th| th.ipc);
        match waiting {
            Some(IpcWait::Receive(_) | IpcWait::Notification(_)) => {
                self.cancel_ipc(tid);
                fail_thread(self, tid, Error::TimedOut);
                true
            }
            _ => false,
        }
    }
}

pub(super) fn set_error(frame: &mut TrapFrame, error: Error) {
    frame.rax = error as u64;
    frame.rdx = 0;
}

/// What to do after the table lock is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Return to the caller now.
    Return,
    /// The caller blocked: run something else.
    Block,
    /// The caller blocked, and this thread (woken by it, in no run queue) runs next at once.
    SwitchTo(Tid),
}

impl Tasks {
    /// What follows when the running thread has blocked in IPC and woke `next` (blocked until
    /// now, in no run queue): the direct switch to it, or, if something ready outranks it, a
    /// place at the head of its run queue and a normal pass.
    #[inline(always)]
    pub(super) fn run_next(&mut self, next: Tid) -> Then {
        match self.priority_of(next) {
            Some(priority) if self.sched.may_switch_directly(priority) => Then::SwitchTo(next),
            _ => {
                self.make_ready_front(next);
                Then::Block
            }
        }
    }
}

pub(super) fn finish(then: Result<Then, Error>, frame: &mut TrapFrame) {
    match then {
        Ok(then) => after(then),
        Err(e) => {
            set_error(frame, e);
            // A failure may still have woken someone (a caller told its call failed).
            preempt_if_needed();
        }
    }
}

/// Runs what follows a successful IPC call. Kept apart from the error case, and tested in a
/// chain: one `match` over all four outcomes becomes a jump table in read-only data, one more
/// page to refill after every address-space switch.
#[inline(never)]
fn after(then: Then) {
    if let Then::SwitchTo(next) = then {
        direct_switch(next);
    } else if then == Then::Block {
        schedule();
    } else {
        // Returning at once, but maybe after waking a thread that outranks this one (a replied
        // caller when the next message was already queued).
        preempt_if_needed();
    }
}

/// Gives a thread that just blocked a deadline `ns` from now. Out of line: the IPC fast path
/// rarely has a timeout, and reading the clock is long code.
#[cold]
#[inline(never)]
pub(super) fn add_timeout(t: &mut Tasks, tid: Tid, ns: u64) {
    t.timed_waits += 1;
    t.sleep_until(tid, crate::time::since_boot_ns().saturating_add(ns));
}

/// The argument registers of the call in `frame` (`rdi, rsi, rdx, r10, r8, r9`).
#[inline(always)]
pub(super) fn registers(frame: &TrapFrame) -> [u64; 6] {
    [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9]
}

/// The flags of a receive (`Recv`, `WaitNotification`): `NONBLOCK` and `TIMEOUT`, nothing else.
#[inline(always)]
pub(super) fn receive_flags(flags: u64) -> Result<u8, Error> {
    // One test: no bit outside the two flags (so the value fits a `u8`).
    if flags & !u64::from(NONBLOCK | TIMEOUT) != 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(flags as u8)
}
