//! The IPC fast path: `Call` and `ReplyRecv` with a message without capabilities whose data (if
//! any) lies in the first page of the IPC buffer, when the partner is already waiting, done in
//! one pass under the table lock and ended by a direct switch (the idea of seL4's fastpath).
//!
//! The general path (`endpoint.rs`) handles every case, step by step: resolve, queue work, transfer,
//! then decide how to switch, each step a call of its own and most of them looking the same
//! threads up again. This path handles only the common case of a client and a server trading
//! small messages (registers, and at most 4,032 data bytes copied between the two buffers'
//! first frames), checks everything it needs first with shared lookups, and then
//! commits it all and switches. Under an emulator every distinct return site and every page
//! touched after an address-space switch is paid again on every round trip, so it is written as
//! one straight function that looks each thing up once.
//!
//! Invariant: the fast path changes nothing unless every check passed; when one fails it returns
//! `None` and the general path runs from the start, with the same result it always had. Its
//! effects are exactly those of the general path for the same case: the same registers and
//! stamped header for the receiver, the same thread states and wait records, the same queue
//! order, the same time-slice and priority rule for the direct switch.

use crate::arch::x86_64::percpu as cpu;
use core::ptr::NonNull;

use vessel_abi::Rights;
use vessel_capspace::{CapSpace, Handle};
use vessel_kcore::report::TrapFrame;

use super::frame::{FIRST_FRAME_DATA, copy_first_frame_data, trap_frame_at, write_header};
use super::objects::ObjectRef;
use super::sched::Scheduler;
use super::switch::{Switch, enter, finish_switch};
use super::thread::{Owner, State, Thread};
use super::transfer::Header;
use super::wait::IpcWait;
use super::{TASKS, Tasks};

/// Meta bits that must be zero for the fast path: no capabilities. (The flags, bits 24-31,
/// change nothing here: `NONBLOCK` matters only when nobody waits, and `ReplyRecv` ignores both
/// flags.)
const CAP_BITS: u64 = 0xff_0000;
/// Meta bits of the data length.
const DATA_BITS: u64 = 0xffff;

/// `Call` on the fast path. Returns false, having changed nothing, if this call needs the
/// general path. Inlined into the trap dispatcher: under emulation, a return from a call here
/// would be one more translation-block lookup after every CR3 write.
#[inline(always)]
pub fn fast_call(frame: &mut TrapFrame) -> bool {
    match payload(frame) {
        Payload::None => run(frame, Tasks::fast_call::<false>),
        Payload::FirstFrame => run(frame, Tasks::fast_call::<true>),
        Payload::More => false,
    }
}

/// `ReplyRecv` on the fast path; like [`fast_call`].
#[inline(always)]
pub fn fast_reply_recv(frame: &mut TrapFrame) -> bool {
    match payload(frame) {
        Payload::None => run(frame, Tasks::fast_reply_recv::<false>),
        Payload::FirstFrame => run(frame, Tasks::fast_reply_recv::<true>),
        Payload::More => false,
    }
}

/// What a message carries besides its registers, as the fast path sees it.
enum Payload {
    /// Nothing: registers only.
    None,
    /// Data within the first frame of the IPC buffer, no capabilities: one copy between two
    /// known frames.
    FirstFrame,
    /// Capabilities, or more data: the general path.
    More,
}

/// Tells from the meta word, without taking the lock. The register-only case is its own
/// instance of each fast path (`DATA = false`), with no data work in it.
#[inline(always)]
fn payload(frame: &TrapFrame) -> Payload {
    if frame.r9 & (CAP_BITS | DATA_BITS) == 0 {
        Payload::None
    } else if frame.r9 & CAP_BITS == 0 && frame.r9 & DATA_BITS <= FIRST_FRAME_DATA as u64 {
        Payload::FirstFrame
    } else {
        Payload::More
    }
}

/// Runs one of the fast paths under the table lock and, if it was taken, switches once the
/// lock is dropped.
#[inline(always)]
fn run(frame: &mut TrapFrame, fast: impl FnOnce(&mut Tasks, &mut TrapFrame) -> Option<Switch>) -> bool {
    let mut guard = TASKS.lock();
    let Some(pair) = guard.as_mut().and_then(|t| fast(t, frame)) else { return false };
    finish_switch(guard, Some(pair));
    true
}

/// A blocked partner of the running thread, ready for the direct switch.
struct Partner<'a> {
    /// The first frame of its IPC buffer, where the header goes.
    header_frame: u64,
    /// Its trap frame, where the message's registers go.
    frame: &'a mut TrapFrame,
}

/// What the direct switch needs of `record`, the partner of the running thread: it has no
/// receive deadline pending (a thread with one is in `sleepers`, which the general path takes it
/// out of), nothing ready outranks it, and its IPC buffer's header page is mapped.
#[inline(always)]
fn partner<'a>(record: &Thread, sched: &Scheduler) -> Option<Partner<'a>> {
    if record.wake_at.is_some() || !sched.may_switch_directly(record.owner.priority) {
        return None;
    }
    let header_frame = record.ipc_frames[0]?;
    let frame = trap_frame_at(record.kernel_stack_top())?;
    Some(Partner { header_frame, frame })
}

/// Blocks the running thread (`current`, its record) in `wait` for the direct switch; returns
/// where the switch saves its stack pointer.
#[inline(always)]
fn block(current: &mut Thread, wait: IpcWait) -> *mut u64 {
    current.state = State::Blocked;
    current.ipc = wait;
    &raw mut current.saved_rsp
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

/// The first frame of the sender's IPC buffer, when the message carries data (`DATA`): `None`
/// (the general path) if the sender never touched its buffer, whose data then reads as zeros.
#[inline(always)]
fn data_source<const DATA: bool>(sender: &Thread) -> Option<u64> {
    if DATA { sender.ipc_frames[0] } else { Some(0) }
}

/// Writes a message without capabilities into a blocked thread's trap frame, its data (with
/// `DATA`, from `source`, the sender's first buffer frame) and its stamped header into its IPC
/// buffer: what `Tasks::transfer` writes for such a message.
#[inline(always)]
fn deliver<const DATA: bool>(
    to: &mut TrapFrame,
    header_frame: u64,
    sender: &Owner,
    badge: u64,
    words: &TrapFrame,
    source: u64,
) {
    if DATA {
        copy_first_frame_data(source, header_frame, (words.r9 & DATA_BITS) as usize);
    }
    write_header(header_frame, Header::stamped(sender, badge));
    to.rax = 0;
    to.rdi = badge;
    to.rsi = words.rsi;
    to.rdx = words.rdx;
    to.r10 = words.r10;
    to.r8 = words.r8;
    to.r9 = if DATA { words.r9 & DATA_BITS } else { 0 };
}

impl Tasks {
    /// The fast path's `Call`: the endpoint has a receiver waiting, with no deadline and its
    /// header page mapped, and nothing ready outranks it.
    #[inline(always)]
    fn fast_call<const DATA: bool>(&mut self, frame: &mut TrapFrame) -> Option<Switch> {
        let me = cpu::current();
        let Tasks { threads, caps, objects, sched, .. } = self;
        let owner = threads.get(&me)?.owner;
        let (id, badge) = endpoint_of(caps, &owner, frame.rdi, Rights::SEND)?;
        let endpoint = objects.endpoint_mut(id)?;
        // The isolation rule of `resolve_endpoint`: only its own container, or a service.
        if !(endpoint.service || endpoint.container == owner.container) || endpoint.receivers == 0 {
            return None;
        }
        let receiver = endpoint.waiting.front()?;
        // A partner is blocked, so never the running thread: `get2_mut` refuses that anyway.
        let (current, record) = threads.get2_mut(&me, &receiver)?;
        let r = partner(record, sched)?;
        let source = data_source::<DATA>(current)?;

        // Every check passed: commit.
        endpoint.waiting.unlink_front(record);
        record.ipc = IpcWait::None;
        record.replying_to = Some(me);
        deliver::<DATA>(r.frame, r.header_frame, &owner, badge, frame, source);
        let save = block(current, IpcWait::Reply(receiver));
        let next = NonNull::from(record);
        cpu::set_need_resched(false);
        // SAFETY: `next` is `receiver`'s record, and neither record is used any more here.
        Some(unsafe { enter(self, receiver, next, save) })
    }

    /// The fast path's `ReplyRecv`: the caller owed a reply is blocked waiting for it, nothing
    /// ready outranks it, and no other caller is queued on the endpoint (that case returns at
    /// once with the next message, on the general path).
    #[inline(always)]
    fn fast_reply_recv<const DATA: bool>(&mut self, frame: &mut TrapFrame) -> Option<Switch> {
        let me = cpu::current();
        let Tasks { threads, caps, objects, sched, .. } = self;
        let running = threads.get(&me)?;
        let (owner, caller) = (running.owner, running.replying_to?);
        // Bits pending on a bound notification end the receive at once: the general path.
        if running.bound.is_some_and(|id| objects.notification(id).is_some_and(|n| n.word != 0)) {
            return None;
        }
        let (id, _) = endpoint_of(caps, &owner, frame.rdi, Rights::RECEIVE)?;
        let endpoint = objects.endpoint_mut(id)?;
        // Receiving: only its own container, service or not.
        if endpoint.container != owner.container || !endpoint.senders.is_empty() {
            return None;
        }
        let (current, record) = threads.get2_mut(&me, &caller)?;
        let c = partner(record, sched)?;
        if record.ipc != IpcWait::Reply(me) || record.state != State::Blocked {
            return None;
        }
        let source = data_source::<DATA>(current)?;

        // Every check passed: commit. The reply carries badge 0, as on the general path.
        record.ipc = IpcWait::None;
        deliver::<DATA>(c.frame, c.header_frame, &owner, 0, frame, source);
        current.replying_to = None;
        let save = block(current, IpcWait::Receive(id));
        let next = NonNull::from(record);
        endpoint.waiting.push_back(threads, me);
        cpu::set_need_resched(false);
        // SAFETY: `next` is `caller`'s record, and neither record is used any more here.
        Some(unsafe { enter(self, caller, next, save) })
    }
}
