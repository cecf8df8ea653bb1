//! Kept replies (seL4-MCS reply objects): a server thread turns the reply it owes the caller of
//! the message it just received into a capability (`ReplyTake`), goes on receiving, and any
//! thread of its process answers it later (`ReplySend`).
//!
//! Invariants: a reply object names one caller thread; while that caller waits for it, the
//! caller's `ipc` is `IpcWait::Kept(id)` and nothing else can answer it. The object has exactly
//! one capability (right SEND only: it cannot be duplicated, minted or sent), and lives as long
//! as that capability: answering consumes both; deleting the capability (or the server's whole
//! table, when the server dies) fails a still-waiting caller with `PeerDied`. A caller that
//! dies first leaves the object behind until the server answers (`PeerDied`) or drops it.
//! Each object is charged as one kernel object to the server's container.

use crate::arch::x86_64::percpu as cpu;
use vessel_abi::{Error, Rights};
use vessel_container::{Index, Resource};

use super::caps::{cap_error, create_with, handle};
use super::objects::{Lifecycle, ObjectRef};
use super::thread::Tid;
use super::wait::{IpcWait, fail_thread};
use super::{Tasks, with_tasks};

/// A kept reply.
pub struct ReplyObject {
    /// The container of the server that kept it (its quota pays for it).
    pub container: Index,
    /// The caller waiting for the answer (thread ids are never reused).
    pub caller: Tid,
}

impl Lifecycle for ReplyObject {
    /// A reply object has exactly one capability, made with it: nothing to count.
    fn cap_added(_t: &mut Tasks, _id: u64, _rights: Rights) {}

    fn cap_removed(t: &mut Tasks, id: u64, _rights: Rights) {
        t.reply_removed(id);
    }
}

/// `ReplyTake`: the running thread's pending reply becomes a reply capability.
pub fn reply_take() -> Result<u64, Error> {
    with_tasks(|t| {
        let me = cpu::current();
        let caller = t.threads.get(&me).and_then(|th| th.replying_to).ok_or(Error::InvalidArgument)?;
        if !t.blocked_in(caller, IpcWait::Reply(me)) {
            // The caller died after its message arrived: nothing to keep.
            if let Some(th) = t.threads.get_mut(&me) {
                th.replying_to = None;
            }
            return Err(Error::PeerDied);
        }
        let container = t.current_container()?;
        t.charge(container, Resource::Objects, 1)?;
        let id = t.objects.add_reply(ReplyObject { container, caller });
        // `create` drops the object again if the capability cannot be made; the caller is
        // still owed its reply by this thread then.
        let value = create_with(t, ObjectRef::Reply(id), Rights::SEND)?;
        if let Some(th) = t.threads.get_mut(&me) {
            th.replying_to = None;
        }
        if let Some(c) = t.threads.get_mut(&caller) {
            c.ipc = IpcWait::Kept(id);
        }
        Ok(value)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `ReplySend`: answers kept reply `value` with `words` and `meta` (data and capabilities from
/// the running thread's IPC buffer); the capability is used up.
pub fn reply_send(value: u64, words: [u64; 4], meta: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let table = t.table_of(cpu::current())?;
        let h = handle(value)?;
        let cap = t.caps.get(table, h).map_err(cap_error)?;
        let ObjectRef::Reply(id) = cap.object else { return Err(Error::WrongObject) };
        if !cap.rights.contains(Rights::SEND) {
            return Err(Error::MissingRights);
        }
        let caller = t.objects.reply(id).map(|r| r.caller).ok_or(Error::PeerDied)?;
        let sent = if t.kept_caller_waits(id) {
            t.transfer(cpu::current(), caller, 0, words, vessel_abi::Meta::from_word(meta)).map(|()| {
                if let Some(c) = t.threads.get_mut(&caller) {
                    c.ipc = IpcWait::None;
                }
                t.make_ready(caller);
            })
        } else {
            Err(Error::PeerDied)
        };
        // Single use: the capability and the object go whatever happened. A caller still
        // waiting after a failed transfer learns its call failed (as with `Reply`); the
        // replier's capabilities stay where they were.
        if let Ok(removed) = t.caps.delete(table, h) {
            t.uncharge_slots(table, 1);
            if let Err(e) = sent {
                t.fail_kept(id, e);
            }
            t.cap_removed(&removed);
        }
        sent.map(|()| 0)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

impl Tasks {
    /// Whether the caller of kept reply `id` still waits for it (what `CapInspect` reports in
    /// `detail`, so a server can drop the replies of callers that died).
    pub(super) fn kept_caller_waits(&self, id: u64) -> bool {
        self.objects.reply(id).is_some_and(|r| self.blocked_in(r.caller, IpcWait::Kept(id)))
    }

    /// Fails the caller still waiting on kept reply `id` with `error` (before the object goes).
    fn fail_kept(&mut self, id: u64, error: Error) {
        if self.kept_caller_waits(id)
            && let Some(caller) = self.objects.reply(id).map(|r| r.caller)
        {
            fail_thread(self, caller, error);
        }
    }

    /// The capability of kept reply `id` is gone: the object goes, and a caller still waiting
    /// for it learns that nobody will answer.
    fn reply_removed(&mut self, id: u64) {
        self.fail_kept(id, Error::PeerDied);
        if let Some(r) = self.objects.remove_reply(id) {
            self.containers.uncharge(r.container, Resource::Objects, 1);
        }
    }
}
