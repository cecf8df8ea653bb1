//! Notifications: asynchronous signal words. `Signal` ORs bits in without blocking;
//! `WaitNotification` takes every pending bit, waiting for some unless it polls. A notification
//! may also be bound to a thread (`events`) and receive interrupt lines (`hardware`) and process
//! exit events.
//!
//! Invariants: a notification belongs to the container of the process that created it, and only
//! that container may use it. It lives while at least one capability refers to it (`caps > 0`);
//! when the last goes, its waiters fail with `PeerDied`, its binding is cleared and interrupt
//! lines delivered to it are masked and unbound. `waiters` holds only threads blocked in
//! `IpcWait::Notification` on it, and is empty whenever bits are pending (a signal with a waiter
//! hands it every pending bit at once).

use crate::arch::x86_64::percpu as cpu;
use alloc::vec::Vec;

use vessel_abi::{Error, NONBLOCK, Rights, SyscallArgs, TIMEOUT, args};
use vessel_capspace::Cap;
use vessel_container::{Index, Resource};
use vessel_kcore::report::TrapFrame;

use super::caps::create;
use super::frame::frame_of;
use super::objects::{Lifecycle, ObjectRef};
use super::queue::Queue;
use super::sched::preempt_if_needed;
use super::thread::Tid;
use super::wait::{IpcWait, Then, add_timeout, fail_thread, finish, receive_flags, registers, set_error};
use super::{Tasks, with_tasks};

/// An asynchronous signal word.
pub struct Notification {
    /// The container it belongs to.
    pub container: Index,
    /// Capabilities referring to it.
    pub caps: u32,
    /// Pending bits.
    pub word: u64,
    /// Threads blocked waiting for bits.
    pub waiters: Queue,
    /// The thread it is bound to (`NotificationBind`): a signal with no waiter wakes that
    /// thread if it is blocked receiving on an endpoint.
    pub bound: Option<Tid>,
}

impl Notification {
    /// A new notification of `container`, with no capability yet.
    pub fn new(container: Index) -> Self {
        Notification { container, caps: 0, word: 0, waiters: Queue::new(), bound: None }
    }
}

impl Lifecycle for Notification {
    fn cap_added(t: &mut Tasks, id: u64, _rights: Rights) {
        if let Some(n) = t.objects.notification_mut(id) {
            n.caps += 1;
        }
    }

    fn cap_removed(t: &mut Tasks, id: u64, _rights: Rights) {
        let Some(n) = t.objects.notification_mut(id) else { return };
        n.caps = n.caps.saturating_sub(1);
        if n.caps == 0 {
            let waiters: Vec<Tid> = n.waiters.drain(&mut t.threads);
            let (container, bound) = (n.container, n.bound);
            t.objects.remove_notification(id);
            if let Some(th) = bound.and_then(|tid| t.threads.get_mut(&tid)) {
                th.bound = None;
            }
            t.containers.uncharge(container, Resource::Objects, 1);
            // Events delivered to it go quiet.
            t.bindings.forget(id);
            for tid in waiters {
                fail_thread(t, tid, Error::PeerDied);
            }
        }
    }
}

/// `NotificationCreate`.
pub fn notification_create() -> Result<u64, Error> {
    with_tasks(|t| {
        let container = t.current_container()?;
        t.charge(container, Resource::Objects, 1)?;
        let id = t.objects.add_notification(Notification::new(container));
        create(t, ObjectRef::Notification(id))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

impl Tasks {
    /// Resolves a notification capability; only its own container may use a notification,
    /// except that the root container's processes (the system services) may signal one a
    /// client gave them (see `may_enter`).
    #[inline(always)]
    pub(super) fn resolve_notification(&self, value: u64, needs: Rights) -> Result<u64, Error> {
        let (id, owner) = match self.resolve_with_owner(value, needs)? {
            (Cap { object: ObjectRef::Notification(id), .. }, owner) => (id, owner),
            _ => return Err(Error::WrongObject),
        };
        let n = self.objects.notification(id).ok_or(Error::PeerDied)?;
        let signal_from_root = needs == Rights::SEND && owner.container == self.containers.root();
        if n.container != owner.container && !signal_from_root {
            return Err(Error::CrossContainer);
        }
        Ok(id)
    }

    /// ORs `bits` into a notification, waking one waiter with everything pending.
    #[inline(always)]
    pub(super) fn signal_notification(&mut self, id: u64, bits: u64) -> Result<(), Error> {
        let n = self.objects.notification_mut(id).ok_or(Error::PeerDied)?;
        n.word |= bits;
        if let Some(waiter) = n.waiters.pop_front(&mut self.threads) {
            let pending = core::mem::take(&mut n.word);
            if let Some(f) = frame_of(self, waiter) {
                f.rax = 0;
                f.rdx = pending;
            }
            if let Some(w) = self.threads.get_mut(&waiter) {
                w.ipc = IpcWait::None;
            }
            self.unsleep(waiter);
            self.make_ready(waiter);
        } else if let Some(tid) = n.bound {
            self.wake_bound(tid);
        }
        Ok(())
    }
}

/// `Signal`: set bits on a notification.
#[inline(never)]
pub fn signal(frame: &mut TrapFrame) {
    let result = with_tasks(|t| {
        let id = t.resolve_notification(frame.rdi, Rights::SEND)?;
        t.signal_notification(id, frame.rsi)
    })
    .unwrap_or(Err(Error::NoSuchProcess));
    match result {
        Ok(()) => {
            frame.rax = 0;
            frame.rdx = 0;
        }
        Err(e) => set_error(frame, e),
    }
    preempt_if_needed();
}

/// `WaitNotification`: take the pending bits, waiting for some unless `NONBLOCK` (poll).
#[inline(never)]
pub fn wait_notification(frame: &mut TrapFrame) {
    let a = args::WaitNotification::from_registers(&registers(frame));
    let then = receive_flags(a.flags).and_then(|flags| {
        with_tasks(|t| {
            let id = t.resolve_notification(a.notification, Rights::RECEIVE)?;
            let me = cpu::current();
            let n = t.objects.notification_mut(id).ok_or(Error::PeerDied)?;
            if n.word != 0 || flags & NONBLOCK != 0 {
                frame.rax = 0;
                frame.rdx = core::mem::take(&mut n.word);
                return Ok(Then::Return);
            }
            n.waiters.push_back(&mut t.threads, me);
            t.block_current(IpcWait::Notification(id));
            if flags & TIMEOUT != 0 {
                add_timeout(t, me, a.timeout_ns);
            }
            Ok(Then::Block)
        })
        .unwrap_or(Err(Error::NoSuchProcess))
    });
    finish(then, frame);
}
