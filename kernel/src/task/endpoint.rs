//! Endpoints: synchronous IPC rendezvous points. `Call` sends a message and waits for the
//! reply, `Recv` waits for a message, `Reply` answers it, and `ReplyRecv` answers and waits for
//! the next one, switching straight from caller to receiver and back when it may (`wait`'s
//! [`Then`]). What moves with a message is `transfer`'s.
//!
//! `Call` and `ReplyRecv` without capabilities and with data only in the IPC buffer's first page,
//! with the partner already waiting, usually never get here:
//! `fastpath` handles them in one pass and declines, changing nothing, whatever else comes.
//!
//! Invariants: an endpoint belongs to the container of the process that created it (its quota
//! pays for it), and only that container may use it, except that any container may call (not
//! receive on) an endpoint registered as a system service. It lives while at least one
//! capability refers to it (`caps > 0`); `receivers` counts the capabilities with RECEIVE, and
//! when it reaches 0 nobody can ever answer, so every caller queued on it, and every later
//! caller, gets `PeerDied`. `senders` holds only threads blocked in `IpcWait::Send` on it,
//! `waiting` only threads blocked in `IpcWait::Receive` on it. A server thread owes a reply to
//! at most one caller (`replying_to`), which waits in `IpcWait::Reply` for that thread.
//!
//! Layout: what the call / reply-receive round trip runs out of line (syscall entry, dispatch,
//! the switch, the general path here) is linked contiguously by the list in `kernel/hot.ld`;
//! error and rare paths stay out of line (`#[cold]`). A new function on that path goes on the
//! list, or the build says which listed name it no longer finds.

use crate::arch::x86_64::percpu as cpu;
use alloc::vec::Vec;

use vessel_abi::{Error, MAX_MESSAGE_CAPS, MAX_MESSAGE_DATA, Meta, NONBLOCK, Rights, SyscallArgs, TIMEOUT, args};
use vessel_capspace::Cap;
use vessel_container::{Index, Resource};
use vessel_kcore::report::TrapFrame;

use super::caps::create;
use super::frame::frame_of;
use super::objects::{Lifecycle, ObjectRef};
use super::queue::Queue;
use super::sched::preempt_if_needed;
use super::thread::Tid;
use super::wait::{IpcWait, Then, add_timeout, fail_thread, finish, receive_flags, registers};
use super::{Tasks, with_tasks};

/// A synchronous IPC rendezvous point.
pub struct Endpoint {
    /// The container it belongs to.
    pub container: Index,
    /// Registered as a system-service endpoint: callable from every container.
    pub service: bool,
    /// Capabilities referring to it.
    pub caps: u32,
    /// Capabilities with RECEIVE.
    pub receivers: u32,
    /// Callers waiting for a receiver (each with the badge it called with in its record).
    pub senders: Queue,
    /// Receivers waiting for a caller.
    pub waiting: Queue,
}

impl Endpoint {
    /// A new endpoint of `container`, with no capability yet.
    pub fn new(container: Index) -> Self {
        Endpoint { container, service: false, caps: 0, receivers: 0, senders: Queue::new(), waiting: Queue::new() }
    }
}

impl Lifecycle for Endpoint {
    fn cap_added(t: &mut Tasks, id: u64, rights: Rights) {
        if let Some(ep) = t.objects.endpoint_mut(id) {
            ep.caps += 1;
            ep.receivers += u32::from(rights.contains(Rights::RECEIVE));
        }
    }

    fn cap_removed(t: &mut Tasks, id: u64, rights: Rights) {
        let Some(ep) = t.objects.endpoint_mut(id) else { return };
        ep.caps = ep.caps.saturating_sub(1);
        if rights.contains(Rights::RECEIVE) {
            ep.receivers = ep.receivers.saturating_sub(1);
        }
        let mut doomed: Vec<Tid> = Vec::new();
        if ep.receivers == 0 {
            doomed.extend(ep.senders.drain(&mut t.threads));
        }
        if ep.caps == 0 {
            doomed.extend(ep.waiting.drain(&mut t.threads));
            let container = ep.container;
            t.objects.remove_endpoint(id);
            t.containers.uncharge(container, Resource::Objects, 1);
        }
        for tid in doomed {
            fail_thread(t, tid, Error::PeerDied);
        }
    }
}

/// `EndpointCreate`.
pub fn endpoint_create() -> Result<u64, Error> {
    with_tasks(|t| {
        let container = t.current_container()?;
        t.charge(container, Resource::Objects, 1)?;
        let id = t.objects.add_endpoint(Endpoint::new(container));
        create(t, ObjectRef::Endpoint(id))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

impl Tasks {
    /// Resolves an endpoint capability and applies the isolation rule: only its own container
    /// may use an endpoint, except that anyone may call a system-service endpoint.
    fn resolve_endpoint(&self, value: u64, needs: Rights) -> Result<(u64, u64), Error> {
        let (id, badge, owner) = match self.resolve_with_owner(value, needs)? {
            (Cap { object: ObjectRef::Endpoint(id), badge, .. }, owner) => (id, badge, owner),
            _ => return Err(Error::WrongObject),
        };
        let endpoint = self.objects.endpoint(id).ok_or(Error::PeerDied)?;
        let open = endpoint.service && !needs.contains(Rights::RECEIVE);
        if !open && endpoint.container != owner.container {
            return Err(Error::CrossContainer);
        }
        Ok((id, badge))
    }
}

fn words_of(frame: &TrapFrame) -> [u64; 4] {
    [frame.rsi, frame.rdx, frame.r10, frame.r8]
}

/// `Call`: send and wait for the reply.
#[inline(never)]
pub fn call(frame: &mut TrapFrame) {
    let meta = Meta::from_word(frame.r9);
    let then = with_tasks(|t| {
        let (ep, badge) = t.resolve_endpoint(frame.rdi, Rights::SEND)?;
        let me = cpu::current();
        let endpoint = t.objects.endpoint_mut(ep).ok_or(Error::PeerDied)?;
        if endpoint.receivers == 0 {
            return Err(Error::PeerDied);
        }
        if usize::from(meta.data_len) > MAX_MESSAGE_DATA || usize::from(meta.cap_count) > MAX_MESSAGE_CAPS {
            return Err(Error::TooLarge);
        }
        if let Some(receiver) = endpoint.waiting.pop_front(&mut t.threads) {
            if let Err(e) = t.transfer(me, receiver, badge, words_of(frame), meta) {
                if let Some(endpoint) = t.objects.endpoint_mut(ep) {
                    endpoint.waiting.push_front(&mut t.threads, receiver);
                }
                return Err(e);
            }
            t.unsleep(receiver);
            if let Some(r) = t.threads.get_mut(&receiver) {
                r.ipc = IpcWait::None;
                r.replying_to = Some(me);
            }
            t.block_current(IpcWait::Reply(receiver));
            return Ok(t.run_next(receiver));
        }
        if meta.flags & NONBLOCK != 0 {
            return Err(Error::WouldBlock);
        }
        endpoint.senders.push_back(&mut t.threads, me);
        if let Some(th) = t.threads.get_mut(&me) {
            th.send_badge = badge;
        }
        t.block_current(IpcWait::Send(ep));
        Ok(Then::Block)
    })
    .unwrap_or(Err(Error::NoSuchProcess));
    finish(then, frame);
}

/// Takes the first queued caller of `ep` into the current thread (which is receiving).
fn take_sender(t: &mut Tasks, ep: u64) -> Result<bool, Error> {
    let me = cpu::current();
    loop {
        let Some(caller) = t.objects.endpoint_mut(ep).and_then(|e| e.senders.pop_front(&mut t.threads)) else {
            return Ok(false);
        };
        let badge = t.threads.get(&caller).map_or(0, |c| c.send_badge);
        let Some(caller_frame) = frame_of(t, caller) else { continue };
        let (words, meta) = (words_of(caller_frame), Meta::from_word(caller_frame.r9));
        match t.transfer(caller, me, badge, words, meta) {
            Ok(()) => {
                if let Some(c) = t.threads.get_mut(&caller) {
                    c.ipc = IpcWait::Reply(me);
                }
                if let Some(m) = t.threads.get_mut(&me) {
                    m.replying_to = Some(caller);
                }
                return Ok(true);
            }
            // The caller's message cannot be delivered (e.g. our table is full): it fails, we
            // keep waiting for the next one.
            Err(e) => fail_thread(t, caller, e),
        }
    }
}

fn receive(t: &mut Tasks, ep_handle: u64, timeout: u64, flags: u8) -> Result<Then, Error> {
    let (ep, _) = t.resolve_endpoint(ep_handle, Rights::RECEIVE)?;
    let me = cpu::current();
    // A receiver that never answered its last caller abandons it.
    if let Some(old) = t.threads.get_mut(&me).and_then(|m| m.replying_to.take())
        && t.threads.get(&old).is_some_and(|c| c.ipc == IpcWait::Reply(me))
    {
        fail_thread(t, old, Error::PeerDied);
    }
    if t.take_bound_bits(me) {
        return Ok(Then::Return);
    }
    if take_sender(t, ep)? {
        return Ok(Then::Return);
    }
    if flags & NONBLOCK != 0 {
        return Err(Error::WouldBlock);
    }
    if let Some(e) = t.objects.endpoint_mut(ep) {
        e.waiting.push_back(&mut t.threads, me);
    }
    t.block_current(IpcWait::Receive(ep));
    if flags & TIMEOUT != 0 {
        add_timeout(t, me, timeout);
    }
    Ok(Then::Block)
}

/// `Recv`: wait for a message.
#[inline(never)]
pub fn recv(frame: &mut TrapFrame) {
    let a = args::Recv::from_registers(&registers(frame));
    let then = receive_flags(a.flags).and_then(|flags| {
        with_tasks(|t| receive(t, a.endpoint, a.timeout_ns, flags)).unwrap_or(Err(Error::NoSuchProcess))
    });
    finish(then, frame);
}

/// Sends the reply in `frame` to the caller the current thread owes one. Returns the caller.
fn send_reply(t: &mut Tasks, frame: &TrapFrame) -> Result<Tid, Error> {
    let me = cpu::current();
    let caller = t.threads.get_mut(&me).and_then(|m| m.replying_to.take()).ok_or(Error::InvalidArgument)?;
    if !t.blocked_in(caller, IpcWait::Reply(me)) {
        return Err(Error::PeerDied);
    }
    let meta = Meta::from_word(frame.r9);
    if let Err(e) = t.transfer(me, caller, 0, words_of(frame), meta) {
        // The caller learns its call failed; the replier's capabilities stay where they were.
        fail_thread(t, caller, e);
        return Err(e);
    }
    if let Some(c) = t.threads.get_mut(&caller) {
        c.ipc = IpcWait::None;
    }
    Ok(caller)
}

/// `Reply`: answer the last message received.
#[inline(never)]
pub fn reply(frame: &mut TrapFrame) {
    let result = with_tasks(|t| {
        let caller = send_reply(t, frame)?;
        t.make_ready(caller);
        Ok(Then::Return)
    })
    .unwrap_or(Err(Error::NoSuchProcess));
    if result.is_ok() {
        frame.rax = 0;
        frame.rdx = 0;
    }
    finish(result, frame);
    preempt_if_needed();
}

/// `ReplyRecv`: answer, then wait for the next message; switches straight to the caller when
/// nothing else is queued.
#[inline(never)]
pub fn reply_recv(frame: &mut TrapFrame) {
    let then = with_tasks(|t| {
        // A failed reply (caller gone) does not stop the server from taking the next message.
        let caller = send_reply(t, frame).ok();
        let flags = Meta::from_word(frame.r9).flags & !NONBLOCK;
        let next = receive(t, frame.rdi, 0, flags & !TIMEOUT);
        match (caller, next) {
            (Some(caller), Ok(Then::Block)) => Ok(t.run_next(caller)),
            (Some(caller), next) => {
                t.make_ready(caller);
                next
            }
            (None, next) => next,
        }
    })
    .unwrap_or(Err(Error::NoSuchProcess));
    finish(then, frame);
}
