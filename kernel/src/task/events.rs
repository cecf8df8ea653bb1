//! Events that end a receive or reach a waiting server without polling: bound notifications
//! (seL4's, so one thread serves its endpoint and its interrupts or timers from one loop) and
//! process exit events (a holder of a process capability learns of its end as notification
//! bits).
//!
//! Invariants: a notification is bound to at most one thread and a thread to at most one
//! notification, and the two records name each other (`Notification::bound`,
//! `Thread::bound`); either going clears the other's side. A thread queued as a receiver on an
//! endpoint has no pending bits on its bound notification: a signal with no waiter wakes the
//! bound receiver at once, and a receive takes pending bits before it would block. A process's
//! exit events are signalled exactly once, when it ends (or at registration, if it has).

use crate::arch::x86_64::percpu as cpu;
use vessel_abi::{Error, MAX_EXIT_EVENTS, NOTIFIED, Rights, UNBIND};
use vessel_kcore::report::TrapFrame;

use super::frame::trap_frame_at;
use super::objects::ObjectRef;
use super::thread::Tid;
use super::wait::IpcWait;
use super::{Tasks, with_tasks};

/// Writes "woken by the bound notification, these bits" into a receiver's registers.
fn deliver_bits(frame: &mut TrapFrame, bits: u64) {
    frame.rax = 0;
    frame.rdi = 0;
    frame.rsi = bits;
    frame.rdx = 0;
    frame.r10 = 0;
    frame.r8 = 0;
    frame.r9 = vessel_abi::Meta { flags: NOTIFIED, ..Default::default() }.to_word();
}

impl Tasks {
    /// A notification bound to `tid` was signalled with nobody waiting on it: if `tid` is
    /// blocked receiving, it wakes with the bits (taken from the notification).
    pub(super) fn wake_bound(&mut self, tid: Tid) {
        let Some(IpcWait::Receive(ep)) = self.threads.get(&tid).map(|th| th.ipc) else { return };
        if !self.take_bound_bits(tid) {
            return;
        }
        if let Some(e) = self.objects.endpoint_mut(ep) {
            e.waiting.remove(&mut self.threads, tid);
        }
        if let Some(th) = self.threads.get_mut(&tid) {
            th.ipc = IpcWait::None;
        }
        self.unsleep(tid);
        self.make_ready(tid);
    }

    /// If thread `tid`'s bound notification has bits pending, takes them and writes them into
    /// its frame as the end of its receive; false (nothing changed) otherwise. The test is
    /// inline; the rest is out of line and cold: most receivers have no bound notification.
    #[inline(always)]
    pub(super) fn take_bound_bits(&mut self, tid: Tid) -> bool {
        match self.threads.get(&tid).and_then(|th| th.bound) {
            Some(id) => self.take_bound_bits_slow(tid, id),
            None => false,
        }
    }

    #[cold]
    #[inline(never)]
    fn take_bound_bits_slow(&mut self, tid: Tid, id: u64) -> bool {
        // No bits (a signal of none, or taken already) is nothing to deliver.
        let Some(bits) =
            self.objects.notification_mut(id).filter(|n| n.word != 0).map(|n| core::mem::take(&mut n.word))
        else {
            return false;
        };
        let top = self.threads.get(&tid).map_or(0, |th| th.kernel_stack_top());
        if let Some(frame) = trap_frame_at(top) {
            deliver_bits(frame, bits);
        }
        true
    }

    /// Drops thread `tid`'s binding, if any (it unbinds, or dies).
    pub(super) fn unbind(&mut self, tid: Tid) {
        let Some(id) = self.threads.get_mut(&tid).and_then(|th| th.bound.take()) else { return };
        if let Some(n) = self.objects.notification_mut(id)
            && n.bound == Some(tid)
        {
            n.bound = None;
        }
    }

    /// Signals the exit events of process `pid`, which just ended.
    pub(super) fn fire_exit_events(&mut self, events: &[(u64, u64)]) {
        for &(id, bits) in events {
            // A notification gone since has nobody to tell.
            let _ = self.signal_notification(id, bits);
        }
    }
}

/// `NotificationBind`.
pub fn notification_bind(value: u64, flags: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let me = cpu::current();
        match flags {
            0 => {}
            UNBIND => {
                t.unbind(me);
                return Ok(0);
            }
            _ => return Err(Error::InvalidArgument),
        }
        let id = t.resolve_notification(value, Rights::RECEIVE)?;
        let n = t.objects.notification_mut(id).ok_or(Error::PeerDied)?;
        match n.bound {
            Some(other) if other != me => return Err(Error::AccessDenied),
            _ => n.bound = Some(me),
        }
        let old = t.threads.get_mut(&me).and_then(|th| th.bound.replace(id));
        if let Some(old) = old.filter(|&old| old != id)
            && let Some(n) = t.objects.notification_mut(old)
        {
            n.bound = None;
        }
        Ok(0)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `ProcessNotify`.
pub fn process_notify(process: u64, notification: u64, bits: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let pid = match t.resolve(process, Rights::READ)?.object {
            ObjectRef::Process(pid) => pid,
            _ => return Err(Error::WrongObject),
        };
        let id = t.resolve_notification(notification, Rights::SEND)?;
        if bits == 0 {
            return Err(Error::InvalidArgument);
        }
        let Tasks { processes, objects, .. } = &mut *t;
        let p = processes.get_mut(pid).ok_or(Error::NoSuchProcess)?;
        if p.exit.is_some() {
            t.signal_notification(id, bits)?;
            return Ok(0);
        }
        // Entries whose notification is gone free their place.
        p.exit_events.retain(|(n, _)| objects.notification(*n).is_some());
        if let Some(entry) = p.exit_events.iter_mut().find(|(n, _)| *n == id) {
            entry.1 |= bits;
        } else if p.exit_events.len() < MAX_EXIT_EVENTS {
            p.exit_events.push((id, bits));
        } else {
            return Err(Error::TooLarge);
        }
        Ok(0)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}
