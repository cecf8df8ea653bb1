//! The IPC fast path: `Call` and `ReplyRecv` with a register-only message, when the partner is
//! already waiting, done in one pass under the table lock and ended by a direct switch (the idea
//! of seL4's fastpath).
//!
//! The general path (`endpoint.rs`) handles every case, step by step: resolve, queue work, transfer,
//! then decide how to switch, each step a call of its own and most of them looking the same
//! threads up again. This path handles only the common case of a client and a server trading
//! register-only messages, checks everything it needs first with shared lookups, and then
//! commits it all and switches. Under an emulator every distinct return site and every page
//! touched after an address-space switch is paid again on every round trip, so it is written as
//! one straight function that looks each thing up once.
//!
//! Invariant: the fast path changes nothing unless every check passed; when one fails it returns
//! `None` and the general path runs from the start, with the same result it always had. Its
//! effects are exactly those of the general path for the same case: the same registers and
//! stamped header for the receiver, the same thread states and wait records, the same queue
//! order, the same time-slice and priority rule for the direct switch.

use alloc::collections::VecDeque;
use core::ptr::NonNull;

use vessel_abi::Rights;
use vessel_capspace::{CapSpace, Handle};
use vessel_indexed::Indexed;
use vessel_kcore::report::TrapFrame;

use super::frame::trap_frame_at;
use super::objects::ObjectRef;
use super::sched::may_switch_directly;
use super::switch::{Switch, enter, finish_switch};
use super::thread::{Owner, State, Thread, Tid};
use super::transfer::Header;
use super::wait::IpcWait;
use super::{TASKS, Tasks};
use crate::mem::phys_to_virt;

/// Meta bits that must be zero for the fast path: no data, no capabilities. (The flags, bits
/// 24-31, change nothing here: `NONBLOCK` matters only when nobody waits, and `ReplyRecv`
/// ignores both flags.)
const PAYLOAD_BITS: u64 = 0xff_ffff;

/// `Call` on the fast path. Returns false, having changed nothing, if this call needs the
/// general path. Inlined into the trap dispatcher: under emulation, a return from a call here
/// would be one more translation-block lookup after every CR3 write.
#[inline(always)]
pub fn fast_call(frame: &mut TrapFrame) -> bool {
    run(frame, Tasks::fast_call)
}

/// `ReplyRecv` on the fast path; like [`fast_call`].
#[inline(always)]
pub fn fast_reply_recv(frame: &mut TrapFrame) -> bool {
    run(frame, Tasks::fast_reply_recv)
}

/// Runs one of the fast paths under the table lock and, if it was taken, switches once the
/// lock is dropped.
#[inline(always)]
fn run(frame: &mut TrapFrame, fast: impl FnOnce(&mut Tasks, &mut TrapFrame) -> Option<Switch>) -> bool {
    // Messages with data or capabilities never qualify: tell without taking the lock.
    if frame.r9 & PAYLOAD_BITS != 0 {
        return false;
    }
    let pair = {
        let mut guard = TASKS.lock();
        match guard.as_mut().and_then(|t| fast(t, frame)) {
            Some(pair) => pair,
            None => return false,
        }
    };
    finish_switch(Some(pair));
    true
}

/// The running thread's record.
///
/// # Safety
/// The caller holds the table lock, does not add or remove threads while it uses the result,
/// and makes no other reference to this record meanwhile.
#[inline(always)]
unsafe fn running<'a>(threads: &mut Indexed<Thread>, me: Tid) -> Option<&'a mut Thread> {
    // SAFETY: the record is live (it is in the table), and the caller's promise makes this the
    // only reference to it.
    threads.get_ptr(&me).map(|at| unsafe { &mut *at.as_ptr() })
}

/// A blocked partner of the running thread, ready for the direct switch.
struct Partner<'a> {
    /// Its record, for the switch.
    at: NonNull<Thread>,
    /// The same record, to update.
    record: &'a mut Thread,
    /// The first frame of its IPC buffer, where the header goes.
    header_frame: u64,
    /// Its trap frame, where the message's registers go.
    frame: &'static mut TrapFrame,
}

/// Thread `tid`, the partner of the running thread `me`, if the fast path may switch to it at
/// once: it is not `me`, has no receive deadline pending (a thread with one is in `sleepers`,
/// which the general path takes it out of), nothing ready outranks it, and its IPC buffer's
/// header page is mapped.
///
/// # Safety
/// As for [`running`], for `tid`'s record.
#[inline(always)]
unsafe fn partner<'a>(
    threads: &mut Indexed<Thread>,
    ready: &[VecDeque<Tid>],
    me: Tid,
    tid: Tid,
) -> Option<Partner<'a>> {
    // A partner is blocked, so never the running thread; checked anyway, as two references to
    // one record would be unsound.
    if tid == me {
        return None;
    }
    let at = threads.get_ptr(&tid)?;
    // SAFETY: a record other than the running thread's (checked above), live, and the caller's
    // promise makes this the only reference to it.
    let record = unsafe { &mut *at.as_ptr() };
    if record.wake_at.is_some() || !may_switch_directly(ready, record.owner.priority) {
        return None;
    }
    let header_frame = record.ipc_frames[0]?;
    let frame = trap_frame_at(record.kernel_stack_top())?;
    Some(Partner { at, record, header_frame, frame })
}

/// The endpoint and badge behind the capability `handle` of process `owner`, if it holds
/// `right` (a wrong kind, a bad handle or a missing right: `None`, for the general path to
/// report).
#[inline(always)]
fn endpoint_of(caps: &CapSpace<ObjectRef>, owner: &Owner, handle: u64, right: Rights) -> Option<(u64, u64)> {
    let cap = caps.get(owner.table, Handle(u32::try_from(handle).ok()?)).ok()?;
    match cap.object {
        ObjectRef::Endpoint(id) if cap.rights.contains(right) => Some((id, cap.badge)),
        _ => None,
    }
}

/// Writes a register-only message into a blocked thread's trap frame and its stamped header
/// into its IPC buffer: what `Tasks::transfer` writes for such a message.
#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
fn deliver(to: &mut TrapFrame, header_frame: u64, sender: &Owner, badge: u64, words: &TrapFrame) {
    // SAFETY: `header_frame` is the first frame of the receiver's IPC buffer (user memory no
    // Rust reference points into), reached through the physical map; the header fits in it.
    unsafe { core::ptr::write_unaligned(phys_to_virt(header_frame) as *mut Header, Header::stamped(sender, badge)) };
    to.rax = 0;
    to.rdi = badge;
    to.rsi = words.rsi;
    to.rdx = words.rdx;
    to.r10 = words.r10;
    to.r8 = words.r8;
    to.r9 = 0;
}

impl Tasks {
    /// The fast path's `Call`: the endpoint has a receiver waiting, with no deadline and its
    /// header page mapped, and nothing ready outranks it.
    #[unsafe(link_section = ".text.hot.ipc")]
    #[inline(always)]
    fn fast_call(&mut self, frame: &mut TrapFrame) -> Option<Switch> {
        let me = self.current;
        let Tasks { threads, caps, endpoints, ready, .. } = self;
        // SAFETY: the only reference to the running thread's record until the switch.
        let current = unsafe { running(threads, me) }?;
        let owner = current.owner;
        let (id, badge) = endpoint_of(caps, &owner, frame.rdi, Rights::SEND)?;
        let endpoint = endpoints.get_mut(&id)?;
        // The isolation rule of `resolve_endpoint`: only its own container, or a service.
        if !(endpoint.service || endpoint.container == owner.container) || endpoint.receivers == 0 {
            return None;
        }
        let receiver = *endpoint.waiting.front()?;
        // SAFETY: the only reference to the receiver's record until the switch.
        let r = unsafe { partner(threads, ready, me, receiver) }?;

        // Every check passed: commit.
        endpoint.waiting.pop_front();
        r.record.ipc = IpcWait::None;
        r.record.replying_to = Some(me);
        deliver(r.frame, r.header_frame, &owner, badge, frame);
        // SAFETY: `r.at` is `receiver`'s record and `r.record` is not used any more.
        Some(unsafe { self.block_and_switch(current, IpcWait::Reply(receiver), receiver, r.at) })
    }

    /// The fast path's `ReplyRecv`: the caller owed a reply is blocked waiting for it, nothing
    /// ready outranks it, and no other caller is queued on the endpoint (that case returns at
    /// once with the next message, on the general path).
    #[unsafe(link_section = ".text.hot.ipc")]
    #[inline(always)]
    fn fast_reply_recv(&mut self, frame: &mut TrapFrame) -> Option<Switch> {
        let me = self.current;
        let Tasks { threads, caps, endpoints, ready, notifications, .. } = self;
        // SAFETY: the only reference to the running thread's record until the switch.
        let current = unsafe { running(threads, me) }?;
        let (owner, caller) = (current.owner, current.replying_to?);
        // Bits pending on a bound notification end the receive at once: the general path.
        if current.bound.is_some_and(|id| notifications.get(&id).is_some_and(|n| n.word != 0)) {
            return None;
        }
        let (id, _) = endpoint_of(caps, &owner, frame.rdi, Rights::RECEIVE)?;
        let endpoint = endpoints.get_mut(&id)?;
        // Receiving: only its own container, service or not.
        if endpoint.container != owner.container || !endpoint.senders.is_empty() {
            return None;
        }
        // SAFETY: the only reference to the caller's record until the switch.
        let c = unsafe { partner(threads, ready, me, caller) }?;
        if c.record.ipc != IpcWait::Reply(me) || c.record.state != State::Blocked {
            return None;
        }

        // Every check passed: commit. The reply carries badge 0, as on the general path.
        c.record.ipc = IpcWait::None;
        deliver(c.frame, c.header_frame, &owner, 0, frame);
        endpoint.waiting.push_back(me);
        current.replying_to = None;
        // SAFETY: `c.at` is `caller`'s record and `c.record` is not used any more.
        Some(unsafe { self.block_and_switch(current, IpcWait::Receive(id), caller, c.at) })
    }

    /// Blocks the running thread (`current`, its record) in `wait` and does the direct switch's
    /// bookkeeping (`sched::direct_switch`) to `next`, counted.
    ///
    /// # Safety
    /// As `sched::enter`: `th` is `next`'s record, with no other reference to it in use.
    #[unsafe(link_section = ".text.hot.ipc")]
    #[inline(always)]
    unsafe fn block_and_switch(
        &mut self,
        current: &mut Thread,
        wait: IpcWait,
        next: Tid,
        th: NonNull<Thread>,
    ) -> Switch {
        current.state = State::Blocked;
        current.ipc = wait;
        let save = &raw mut current.saved_rsp;
        self.need_resched = false;
        // SAFETY: forwarded.
        unsafe { enter(self, next, th, save) }
    }
}
