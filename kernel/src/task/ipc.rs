//! Capabilities and IPC on top of the task table: capability operations, endpoints (call,
//! receive, reply, with a direct switch from caller to receiver), notifications and memory
//! objects. Every operation resolves its handle through the caller's capability table first and
//! checks the right it needs; a refused operation changes nothing.
//!
//! A message is four words in registers plus, optionally, data and capabilities in the IPC
//! buffer (`vessel_abi::IpcBuffer`). The kernel copies between the two processes' buffer frames
//! through the direct map, so no user pointer is involved, and stamps the sender's badge (in
//! `rdi`), process id and container id (in the receiver's buffer). A blocked thread's user
//! registers are in the trap frame at the top of its kernel stack; results are written there.
//!
//! Register-only `Call` and `ReplyRecv` with the partner already waiting usually never get here:
//! `fastpath` handles them in one pass and declines, changing nothing, whatever else comes.
//!
//! Layout: everything the call / reply-receive round trip runs (syscall entry, dispatch, the fast
//! path, the functions here, the scheduler's switch) is tagged `.text.hot.*` and linked
//! contiguously (`kernel/build.rs`, `kernel/hot.ld`); error and rare paths stay out of line. Keep
//! new code on that path tagged, its cold branches in untagged functions.

use alloc::vec::Vec;

use vessel_abi::{
    Error, IPC_CAPS_OFFSET, IPC_DATA_OFFSET, IPC_SENDER_OFFSET, MAX_MESSAGE_CAPS, MAX_MESSAGE_DATA, Meta, NONBLOCK,
    PAGE_SIZE, Rights, SyscallArgs, TIMEOUT, args,
};
use vessel_capspace::{Cap, CapError, Handle, TableId};
use vessel_container::{Index, Resource};
use vessel_kcore::report::TrapFrame;

use super::objects::{IpcWait, ObjectRef};
use super::thread::{Owner, State, Tid};
use super::{Tasks, schedule, with_tasks};
use crate::mem::address_space::Access;
use crate::mem::{frames, phys_to_virt};

/// Capability slots per process.
pub const TABLE_CAPACITY: usize = vessel_capspace::MAX_TABLE_CAPACITY;

/// The ABI error for a capability-table error.
pub(super) fn cap_error(e: CapError) -> Error {
    match e {
        CapError::InvalidHandle | CapError::NoTable => Error::InvalidHandle,
        CapError::Stale => Error::StaleHandle,
        CapError::TableFull => Error::TableFull,
        CapError::MissingRights => Error::MissingRights,
        CapError::AlreadyBadged => Error::InvalidArgument,
    }
}

pub(super) fn handle(value: u64) -> Result<Handle, Error> {
    u32::try_from(value).map(Handle).map_err(|_| Error::InvalidHandle)
}

/// The kernel-written start of an IPC buffer (the layout of `vessel_abi::IpcBuffer`).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Header {
    caps: [u32; MAX_MESSAGE_CAPS],
    sender_pid: u64,
    sender_container: u64,
    badge: u64,
}

const _: () = assert!(core::mem::offset_of!(Header, caps) == IPC_CAPS_OFFSET);
const _: () = assert!(core::mem::offset_of!(Header, sender_pid) == IPC_SENDER_OFFSET);
const _: () = assert!(core::mem::offset_of!(Header, badge) == core::mem::offset_of!(vessel_abi::IpcBuffer, badge));

impl Header {
    /// The header of a message without capabilities from a thread of process `sender`.
    #[inline(always)]
    pub(super) fn stamped(sender: &Owner, badge: u64) -> Header {
        Header { caps: [0; MAX_MESSAGE_CAPS], sender_pid: sender.vpid, sender_container: sender.container_id, badge }
    }
}

/// The trap frame of a thread that is blocked in (or running) a system call.
#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
fn frame_of(t: &Tasks, tid: Tid) -> Option<&'static mut TrapFrame> {
    trap_frame_at(t.threads.get(&tid)?.kernel_stack_top())
}

/// The trap frame at the top of the kernel stack that ends at `top` (0: the idle thread, which
/// has none). The caller must hold the table lock and the thread must not be running.
#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
pub(super) fn trap_frame_at(top: u64) -> Option<&'static mut TrapFrame> {
    if top == 0 {
        return None;
    }
    let at = top - core::mem::size_of::<TrapFrame>() as u64;
    // SAFETY: every user thread's kernel stack holds its trap frame at the top while it is in
    // the kernel (syscall entry and user interrupts build it there); the table lock serialises
    // access and the thread is not running while another thread writes it.
    Some(unsafe { &mut *(at as *mut TrapFrame) })
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
    #[unsafe(link_section = ".text.hot.ipc")]
    pub(super) fn table_of(&self, tid: Tid) -> Result<TableId, Error> {
        self.threads.get(&tid).map(|th| th.owner.table).ok_or(Error::NoSuchProcess)
    }

    pub(super) fn resolve(&self, value: u64, needs: Rights) -> Result<Cap<ObjectRef>, Error> {
        self.resolve_with_owner(value, needs).map(|(cap, _)| cap)
    }

    /// Like `resolve`, also returning the running thread's process facts (one lookup for both).
    #[unsafe(link_section = ".text.hot.ipc")]
    #[inline(always)]
    fn resolve_with_owner(&self, value: u64, needs: Rights) -> Result<(Cap<ObjectRef>, Owner), Error> {
        let owner = self.threads.get(&self.current).map(|th| th.owner).ok_or(Error::NoSuchProcess)?;
        let cap = self.caps.get(owner.table, handle(value)?).map_err(cap_error)?;
        if !cap.rights.contains(needs) {
            return Err(Error::MissingRights);
        }
        Ok((cap, owner))
    }

    /// Resolves an endpoint capability and applies the isolation rule: only its own container
    /// may use an endpoint, except that anyone may call a system-service endpoint.
    #[unsafe(link_section = ".text.hot.ipc")]
    fn resolve_endpoint(&self, value: u64, needs: Rights) -> Result<(u64, u64), Error> {
        let (id, badge, owner) = match self.resolve_with_owner(value, needs)? {
            (Cap { object: ObjectRef::Endpoint(id), badge, .. }, owner) => (id, badge, owner),
            _ => return Err(Error::WrongObject),
        };
        let endpoint = self.endpoints.get(&id).ok_or(Error::PeerDied)?;
        let open = endpoint.service && !needs.contains(Rights::RECEIVE);
        if !open && endpoint.container != owner.container {
            return Err(Error::CrossContainer);
        }
        Ok((id, badge))
    }

    /// Resolves a notification capability; only its own container may use a notification.
    #[inline(always)]
    pub(super) fn resolve_notification(&self, value: u64, needs: Rights) -> Result<u64, Error> {
        let (id, owner) = match self.resolve_with_owner(value, needs)? {
            (Cap { object: ObjectRef::Notification(id), .. }, owner) => (id, owner),
            _ => return Err(Error::WrongObject),
        };
        let n = self.notifications.get(&id).ok_or(Error::PeerDied)?;
        if n.container != owner.container {
            return Err(Error::CrossContainer);
        }
        Ok(id)
    }

    /// Accounts a capability that now exists.
    pub(super) fn cap_added(&mut self, cap: &Cap<ObjectRef>) {
        match cap.object {
            ObjectRef::Endpoint(id) => {
                if let Some(ep) = self.endpoints.get_mut(&id) {
                    ep.caps += 1;
                    ep.receivers += u32::from(cap.rights.contains(Rights::RECEIVE));
                }
            }
            ObjectRef::Notification(id) => {
                if let Some(n) = self.notifications.get_mut(&id) {
                    n.caps += 1;
                }
            }
            ObjectRef::Memory(id) => {
                if let Some(m) = self.memories.get_mut(&id) {
                    m.caps += 1;
                }
            }
            ObjectRef::IoPorts(..)
            | ObjectRef::Irq(_)
            | ObjectRef::Mmio(..)
            | ObjectRef::Process(_)
            | ObjectRef::Container(_)
            | ObjectRef::Thread(..)
            | ObjectRef::Reply(_) => {}
        }
    }

    /// Accounts a capability that is gone; destroys objects nobody can reach any more and fails
    /// the waiters that can never be answered.
    pub(super) fn cap_removed(&mut self, cap: &Cap<ObjectRef>) {
        match cap.object {
            ObjectRef::Endpoint(id) => {
                let Some(ep) = self.endpoints.get_mut(&id) else { return };
                ep.caps = ep.caps.saturating_sub(1);
                if cap.rights.contains(Rights::RECEIVE) {
                    ep.receivers = ep.receivers.saturating_sub(1);
                }
                let mut doomed: Vec<Tid> = Vec::new();
                if ep.receivers == 0 {
                    doomed.extend(ep.senders.drain(..).map(|(tid, _)| tid));
                }
                if ep.caps == 0 {
                    doomed.extend(ep.waiting.drain(..));
                    let container = ep.container;
                    self.endpoints.remove(&id);
                    self.containers.uncharge(container, Resource::Objects, 1);
                }
                for tid in doomed {
                    fail_thread(self, tid, Error::PeerDied);
                }
            }
            ObjectRef::Notification(id) => {
                let Some(n) = self.notifications.get_mut(&id) else { return };
                n.caps = n.caps.saturating_sub(1);
                if n.caps == 0 {
                    let waiters: Vec<Tid> = n.waiters.drain(..).collect();
                    let (container, bound) = (n.container, n.bound);
                    self.notifications.remove(&id);
                    if let Some(th) = bound.and_then(|tid| self.threads.get_mut(&tid)) {
                        th.bound = None;
                    }
                    self.containers.uncharge(container, Resource::Objects, 1);
                    // Interrupt lines delivered to it go quiet.
                    for (line, binding) in self.irq_bindings.iter_mut().enumerate() {
                        if binding.is_some_and(|(n, _)| n == id) {
                            *binding = None;
                            crate::arch::x86_64::ioapic::mask(line as u8);
                        }
                    }
                    for tid in waiters {
                        fail_thread(self, tid, Error::PeerDied);
                    }
                }
            }
            ObjectRef::Memory(id) => {
                let Some(m) = self.memories.get_mut(&id) else { return };
                m.caps = m.caps.saturating_sub(1);
                self.release_memory_if_unused(id);
            }
            // A reply object has exactly one capability.
            ObjectRef::Reply(id) => self.reply_removed(id),
            ObjectRef::IoPorts(..)
            | ObjectRef::Irq(_)
            | ObjectRef::Mmio(..)
            | ObjectRef::Process(_)
            | ObjectRef::Container(_)
            | ObjectRef::Thread(..) => {}
        }
    }

    /// ORs `bits` into a notification, waking one waiter with everything pending.
    #[inline(always)]
    pub(super) fn signal_notification(&mut self, id: u64, bits: u64) -> Result<(), Error> {
        let n = self.notifications.get_mut(&id).ok_or(Error::PeerDied)?;
        n.word |= bits;
        if let Some(waiter) = n.waiters.pop_front() {
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

    pub(super) fn release_memory_if_unused(&mut self, id: u64) {
        if self.memories.get(&id).is_some_and(|m| m.caps == 0 && m.mappings == 0)
            && let Some(m) = self.memories.remove(&id)
        {
            self.containers.uncharge(m.container, Resource::Pages, m.frames.len() as u64);
            self.containers.uncharge(m.container, Resource::Objects, 1);
            for frame in m.frames {
                let _ = frames::free(frame);
            }
        }
    }

    /// Undoes a dying thread's IPC: leaves wait queues, and fails the caller it owed a reply.
    pub(super) fn cancel_ipc(&mut self, tid: Tid) {
        let Some(th) = self.threads.get_mut(&tid) else { return };
        let wait = core::mem::take(&mut th.ipc);
        let owed = th.replying_to.take();
        match wait {
            IpcWait::Send(ep) => {
                if let Some(e) = self.endpoints.get_mut(&ep) {
                    e.senders.retain(|&(t, _)| t != tid);
                }
            }
            IpcWait::Receive(ep) => {
                if let Some(e) = self.endpoints.get_mut(&ep) {
                    e.waiting.retain(|&t| t != tid);
                }
            }
            IpcWait::Notification(n) => {
                if let Some(n) = self.notifications.get_mut(&n) {
                    n.waiters.retain(|&t| t != tid);
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

    /// The frame behind page `page` of a thread's IPC buffer, mapped on demand if `create`.
    /// Inline, as every message writes the receiver's header page: the usual case (the frame is
    /// known) costs no call.
    #[inline(always)]
    fn ipc_frame(&mut self, tid: Tid, page: u64, create: bool) -> Result<Option<u64>, Error> {
        let known = self
            .threads
            .get(&tid)
            .zip(usize::try_from(page).ok().filter(|&p| p < 2))
            .and_then(|(thread, index)| thread.ipc_frames[index]);
        match known {
            Some(frame) => Ok(Some(frame)),
            None => self.ipc_frame_slow(tid, page, create),
        }
    }

    /// `ipc_frame` when the frame is not known yet: errors, looking it up, mapping it.
    #[inline(never)]
    fn ipc_frame_slow(&mut self, tid: Tid, page: u64, create: bool) -> Result<Option<u64>, Error> {
        let index = usize::try_from(page).ok().filter(|&p| p < 2).ok_or(Error::TooLarge)?;
        let thread = self.threads.get(&tid).ok_or(Error::PeerDied)?;
        if let Some(frame) = thread.ipc_frames[index] {
            return Ok(Some(frame));
        }
        let (pid, addr) = (thread.pid, vessel_abi::ipc_buffer_of(thread.slot) + page * PAGE_SIZE);
        let process = self.processes.get_mut(&pid).ok_or(Error::PeerDied)?;
        let space = process.space.as_mut().ok_or(Error::PeerDied)?;
        let frame = match space.translate(addr) {
            Some((frame, _)) => frame,
            None if create => {
                let container = process.container;
                self.containers.charge(container, Resource::Pages, 1).map_err(super::container::container_error)?;
                let process = self.processes.get_mut(&pid).ok_or(Error::PeerDied)?;
                let space = process.space.as_mut().ok_or(Error::PeerDied)?;
                match space.map_new(addr, Access::ReadWrite) {
                    Ok(frame) => {
                        process.pages += 1;
                        frame
                    }
                    Err(_) => {
                        self.containers.uncharge(container, Resource::Pages, 1);
                        return Err(Error::NoMemory);
                    }
                }
            }
            None => return Ok(None),
        };
        // A live thread's IPC buffer can never be unmapped (MemUnmap refuses the range), so this
        // stays true for its life.
        self.threads.get_mut(&tid).ok_or(Error::PeerDied)?.ipc_frames[index] = Some(frame);
        Ok(Some(frame))
    }

    /// Copies `len` bytes at `offset` of one IPC buffer to the same place in another. A page the
    /// sender never touched reads as zeros.
    fn copy_buffer(&mut self, from: Tid, to: Tid, offset: usize, len: usize) -> Result<(), Error> {
        let mut done = 0;
        while done < len {
            let at = (offset + done) as u64;
            let page = at / PAGE_SIZE;
            let in_page = at % PAGE_SIZE;
            let n = ((PAGE_SIZE - in_page) as usize).min(len - done);
            let src = self.ipc_frame(from, page, false)?;
            let dst = self.ipc_frame(to, page, true)?.ok_or(Error::NoMemory)?;
            let dst_ptr = (phys_to_virt(dst) + in_page) as *mut u8;
            // SAFETY: both frames belong to IPC buffers (user memory the kernel may write, not
            // referenced by Rust code); `in_page + n` stays inside each page.
            unsafe {
                match src {
                    Some(src) => core::ptr::copy((phys_to_virt(src) + in_page) as *const u8, dst_ptr, n),
                    None => core::ptr::write_bytes(dst_ptr, 0, n),
                }
            }
            done += n;
        }
        Ok(())
    }

    fn read_buffer_words<const N: usize>(&mut self, tid: Tid, offset: usize) -> Result<[u32; N], Error> {
        let mut out = [0u32; N];
        if let Some(frame) = self.ipc_frame(tid, 0, false)? {
            for (i, slot) in out.iter_mut().enumerate() {
                // SAFETY: offset + 4*N is inside the first buffer page (checked by layout tests).
                *slot =
                    unsafe { core::ptr::read_volatile((phys_to_virt(frame) as usize + offset + 4 * i) as *const u32) };
            }
        }
        Ok(out)
    }

    /// Moves a message from `from` to `to`: data, capabilities, the stamped identity, and the
    /// registers. All checks happen before anything moves.
    #[unsafe(link_section = ".text.hot.ipc")]
    pub(super) fn transfer(
        &mut self,
        from: Tid,
        to: Tid,
        badge: u64,
        words: [u64; 4],
        meta: Meta,
    ) -> Result<(), Error> {
        let data_len = usize::from(meta.data_len);
        let cap_count = usize::from(meta.cap_count);
        if data_len > MAX_MESSAGE_DATA || cap_count > MAX_MESSAGE_CAPS {
            return Err(Error::TooLarge);
        }
        // One lookup per thread (the same errors as `table_of`); nothing below changes owners.
        let sender = self.threads.get(&from).map(|th| th.owner).ok_or(Error::NoSuchProcess)?;
        let (receiver, header_frame) =
            self.threads.get(&to).map(|th| (th.owner, th.ipc_frames[0])).ok_or(Error::NoSuchProcess)?;
        let (from_table, to_table, to_container) = (sender.table, receiver.table, receiver.container);
        // Registers-only messages (the common case) skip the payload work, which could not fail
        // or change anything for them.
        let moved = if cap_count > 0 || data_len > 0 {
            self.transfer_payload(from, to, (from_table, to_table, to_container), cap_count, data_len)?
        } else {
            [0u32; MAX_MESSAGE_CAPS]
        };
        // The stamped header: new handles, sender pid, container id, badge (`IpcBuffer`'s first
        // 40 bytes).
        let header = Header { caps: moved, ..Header::stamped(&sender, badge) };
        let header_frame = match header_frame {
            Some(frame) => frame,
            None => self.ipc_frame(to, 0, true)?.ok_or(Error::NoMemory)?,
        };
        // SAFETY: the header lies at the start of the receiver's IPC buffer frame (reached through
        // the physical map; user memory no Rust reference points into).
        unsafe { core::ptr::write_unaligned(phys_to_virt(header_frame) as *mut Header, header) };
        let frame = frame_of(self, to).ok_or(Error::PeerDied)?;
        frame.rax = 0;
        frame.rdi = badge;
        frame.rsi = words[0];
        frame.rdx = words[1];
        frame.r10 = words[2];
        frame.r8 = words[3];
        frame.r9 = Meta { flags: 0, ..meta }.to_word();
        self.general_messages += 1;
        Ok(())
    }

    /// The part of `transfer` that moves data and capabilities: checks everything, then moves,
    /// and returns the receiver's handles of the moved capabilities. Out of line and not in the
    /// hot text: register-only messages never come here.
    #[inline(never)]
    fn transfer_payload(
        &mut self,
        from: Tid,
        to: Tid,
        (from_table, to_table, to_container): (TableId, TableId, Index),
        cap_count: usize,
        data_len: usize,
    ) -> Result<[u32; MAX_MESSAGE_CAPS], Error> {
        let handles: [u32; MAX_MESSAGE_CAPS] =
            if cap_count > 0 { self.read_buffer_words(from, IPC_CAPS_OFFSET)? } else { [0; MAX_MESSAGE_CAPS] };
        // What each capability names, kept from the checks for after the move.
        let mut objects = [None; MAX_MESSAGE_CAPS];
        for (i, &h) in handles[..cap_count].iter().enumerate() {
            // The same capability twice would move once and then fail half-way.
            if handles[..i].contains(&h) {
                return Err(Error::InvalidArgument);
            }
            let cap = self.caps.get(from_table, Handle(h)).map_err(cap_error)?;
            objects[i] = Some(cap.object);
            if !cap.rights.contains(Rights::TRANSFER) {
                return Err(Error::MissingRights);
            }
            if !self.may_enter(cap.object, cap.rights, to_container) {
                return Err(Error::CrossContainer);
            }
        }
        if self.caps.free_slots(to_table) < cap_count {
            return Err(Error::TableFull);
        }
        // The receiver's header page must exist before a capability moves (mapping it may fail).
        if cap_count > 0 {
            self.ipc_frame(to, 0, true)?;
        }
        // The receiver's container pays for the slots the capabilities take there.
        self.charge_slots(to_table, cap_count as u64)?;
        if data_len > 0
            && let Err(e) = self.copy_buffer(from, to, IPC_DATA_OFFSET, data_len)
        {
            self.uncharge_slots(to_table, cap_count as u64);
            return Err(e);
        }
        let mut moved = [0u32; MAX_MESSAGE_CAPS];
        for (i, &h) in handles[..cap_count].iter().enumerate() {
            match self.caps.transfer(from_table, Handle(h), to_table, Rights::all()) {
                Ok(new) => {
                    moved[i] = new.0;
                    self.uncharge_slots(from_table, 1);
                    if let Some(object) = objects[i] {
                        self.access_maybe_lost(from_table, object);
                    }
                }
                Err(e) => {
                    // Checked above, so not expected; the slots not used go back.
                    self.uncharge_slots(to_table, (cap_count - i) as u64);
                    return Err(cap_error(e));
                }
            }
        }
        Ok(moved)
    }
}

#[unsafe(link_section = ".text.hot.ipc")]
fn words_of(frame: &TrapFrame) -> [u64; 4] {
    [frame.rsi, frame.rdx, frame.r10, frame.r8]
}

fn set_error(frame: &mut TrapFrame, error: Error) {
    frame.rax = error as u64;
    frame.rdx = 0;
}

/// What to do after the table lock is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
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
    fn run_next(&mut self, next: Tid) -> Then {
        match self.priority_of(next) {
            Some(priority) if self.may_switch_directly(priority) => Then::SwitchTo(next),
            _ => {
                self.make_ready_front(next);
                Then::Block
            }
        }
    }
}

#[unsafe(link_section = ".text.hot.ipc")]
fn finish(then: Result<Then, Error>, frame: &mut TrapFrame) {
    match then {
        Ok(then) => after(then),
        Err(e) => {
            set_error(frame, e);
            // A failure may still have woken someone (a caller told its call failed).
            super::sched::preempt_if_needed();
        }
    }
}

/// Runs what follows a successful IPC call. Kept apart from the error case, and tested in a
/// chain: one `match` over all four outcomes becomes a jump table in read-only data, one more
/// page to refill after every address-space switch.
#[inline(never)]
#[unsafe(link_section = ".text.hot.ipc")]
fn after(then: Then) {
    if let Then::SwitchTo(next) = then {
        super::sched::direct_switch(next);
    } else if then == Then::Block {
        schedule();
    } else {
        // Returning at once, but maybe after waking a thread that outranks this one (a replied
        // caller when the next message was already queued).
        super::sched::preempt_if_needed();
    }
}

/// `Call`: send and wait for the reply.
#[inline(never)]
#[unsafe(link_section = ".text.hot.ipc")]
pub fn call(frame: &mut TrapFrame) {
    let meta = Meta::from_word(frame.r9);
    let then = with_tasks(|t| {
        let (ep, badge) = t.resolve_endpoint(frame.rdi, Rights::SEND)?;
        let me = t.current;
        let endpoint = t.endpoints.get_mut(&ep).ok_or(Error::PeerDied)?;
        if endpoint.receivers == 0 {
            return Err(Error::PeerDied);
        }
        if usize::from(meta.data_len) > MAX_MESSAGE_DATA || usize::from(meta.cap_count) > MAX_MESSAGE_CAPS {
            return Err(Error::TooLarge);
        }
        if let Some(receiver) = endpoint.waiting.pop_front() {
            if let Err(e) = t.transfer(me, receiver, badge, words_of(frame), meta) {
                if let Some(endpoint) = t.endpoints.get_mut(&ep) {
                    endpoint.waiting.push_front(receiver);
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
        endpoint.senders.push_back((me, badge));
        t.block_current(IpcWait::Send(ep));
        Ok(Then::Block)
    })
    .unwrap_or(Err(Error::NoSuchProcess));
    finish(then, frame);
}

/// Takes the first queued caller of `ep` into the current thread (which is receiving).
#[unsafe(link_section = ".text.hot.ipc")]
fn take_sender(t: &mut Tasks, ep: u64) -> Result<bool, Error> {
    let me = t.current;
    loop {
        let Some((caller, badge)) = t.endpoints.get_mut(&ep).and_then(|e| e.senders.pop_front()) else {
            return Ok(false);
        };
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

#[unsafe(link_section = ".text.hot.ipc")]
fn receive(t: &mut Tasks, ep_handle: u64, timeout: u64, flags: u8) -> Result<Then, Error> {
    let (ep, _) = t.resolve_endpoint(ep_handle, Rights::RECEIVE)?;
    let me = t.current;
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
    if let Some(e) = t.endpoints.get_mut(&ep) {
        e.waiting.push_back(me);
    }
    t.block_current(IpcWait::Receive(ep));
    if flags & TIMEOUT != 0 {
        add_timeout(t, me, timeout);
    }
    Ok(Then::Block)
}

/// Gives a thread that just blocked a deadline `ns` from now. Out of line: the IPC fast path
/// rarely has a timeout, and reading the clock is long code.
#[cold]
#[inline(never)]
fn add_timeout(t: &mut Tasks, tid: Tid, ns: u64) {
    t.timed_waits += 1;
    t.sleep_until(tid, crate::time::since_boot_ns().saturating_add(ns));
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

/// The argument registers of the call in `frame` (`rdi, rsi, rdx, r10, r8, r9`).
#[inline(always)]
pub(super) fn registers(frame: &TrapFrame) -> [u64; 6] {
    [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9]
}

/// The flags of a receive (`Recv`, `WaitNotification`): `NONBLOCK` and `TIMEOUT`, nothing else.
#[inline(always)]
fn receive_flags(flags: u64) -> Result<u8, Error> {
    // One test: no bit outside the two flags (so the value fits a `u8`).
    if flags & !u64::from(NONBLOCK | TIMEOUT) != 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(flags as u8)
}

/// Sends the reply in `frame` to the caller the current thread owes one. Returns the caller.
#[unsafe(link_section = ".text.hot.ipc")]
fn send_reply(t: &mut Tasks, frame: &TrapFrame) -> Result<Tid, Error> {
    let me = t.current;
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
    super::preempt_if_needed();
}

/// `ReplyRecv`: answer, then wait for the next message; switches straight to the caller when
/// nothing else is queued.
#[inline(never)]
#[unsafe(link_section = ".text.hot.ipc")]
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

/// `Signal`: set bits on a notification.
#[inline(never)]
#[unsafe(link_section = ".text.hot.notify")]
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
    super::preempt_if_needed();
}

/// `WaitNotification`: take the pending bits, waiting for some unless `NONBLOCK` (poll).
#[inline(never)]
#[unsafe(link_section = ".text.hot.notify")]
pub fn wait_notification(frame: &mut TrapFrame) {
    let a = args::WaitNotification::from_registers(&registers(frame));
    let then = receive_flags(a.flags).and_then(|flags| {
        with_tasks(|t| {
            let id = t.resolve_notification(a.notification, Rights::RECEIVE)?;
            let me = t.current;
            let n = t.notifications.get_mut(&id).ok_or(Error::PeerDied)?;
            if n.word != 0 || flags & NONBLOCK != 0 {
                frame.rax = 0;
                frame.rdx = core::mem::take(&mut n.word);
                return Ok(Then::Return);
            }
            n.waiters.push_back(me);
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
