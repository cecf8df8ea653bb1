//! Capability operations: resolving a handle in the caller's table, putting the first
//! capability to a new object there, inspect, duplicate, mint, delete, revoke, and process
//! handles. Every call resolves its handle in the caller's table and checks the right it needs
//! first; a refused operation changes nothing.
//!
//! Invariants: each capability slot in use is charged to the container that owns its table
//! (`charge_slots`), and every capability that appears or goes is reported to its object's kind
//! (`Tasks::cap_added`, `Tasks::cap_removed`), exactly once.

use crate::arch::x86_64::percpu as cpu;
use vessel_abi::{CapInfo, Error, ObjectKind, Rights};
use vessel_capspace::{Cap, CapError, Handle, TableId};

use super::objects::ObjectRef;
use super::thread::{Owner, Tid};
use super::{Tasks, with_tasks};

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

impl Tasks {
    pub(super) fn table_of(&self, tid: Tid) -> Result<TableId, Error> {
        self.threads.get(&tid).map(|th| th.owner.table).ok_or(Error::NoSuchProcess)
    }

    pub(super) fn resolve(&self, value: u64, needs: Rights) -> Result<Cap<ObjectRef>, Error> {
        self.resolve_with_owner(value, needs).map(|(cap, _)| cap)
    }

    /// Like `resolve`, also returning the running thread's process facts (one lookup for both).
    #[inline(always)]
    pub(super) fn resolve_with_owner(&self, value: u64, needs: Rights) -> Result<(Cap<ObjectRef>, Owner), Error> {
        let owner = self.threads.get(&cpu::current()).map(|th| th.owner).ok_or(Error::NoSuchProcess)?;
        let cap = self.caps.get(owner.table, handle(value)?).map_err(cap_error)?;
        if !cap.rights.contains(needs) {
            return Err(Error::MissingRights);
        }
        Ok((cap, owner))
    }
}

/// Puts a capability with all rights to a new object into the caller's table; if that fails, the
/// object (which nobody can reach) goes again.
pub(super) fn create(t: &mut Tasks, object: ObjectRef) -> Result<u64, Error> {
    create_with(t, object, Rights::all())
}

/// Like [`create`], with only `rights`.
pub(super) fn create_with(t: &mut Tasks, object: ObjectRef, rights: Rights) -> Result<u64, Error> {
    let table = t.table_of(cpu::current())?;
    let cap = Cap { object, rights, badge: 0 };
    let inserted = t.charge_slots(table, 1).and_then(|()| {
        t.caps.insert(table, cap).map_err(|e| {
            t.uncharge_slots(table, 1);
            cap_error(e)
        })
    });
    match inserted {
        Ok(h) => {
            t.cap_added(&cap);
            Ok(u64::from(h.0))
        }
        Err(e) => {
            // Nobody can reach the object: a capability that could not be made is one that went,
            // and the object goes again with it (a kept reply's caller still waits on this
            // thread's implicit reply, which stays owed).
            t.cap_removed(&cap);
            Err(e)
        }
    }
}

/// `ProcessCap`: a capability to the caller or one of its children.
pub fn process_cap(pid: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let caller = t.threads.get(&cpu::current()).map(|th| th.pid).ok_or(Error::NoSuchProcess)?;
        let pid = super::process::self_or_child(t, caller, pid)?;
        if t.processes.get(pid).is_none_or(|p| p.exit.is_some()) {
            return Err(Error::NoSuchProcess);
        }
        create(t, ObjectRef::Process(pid))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `ProcessKill`: ends the process a capability names, whoever holds it. True if that was the
/// caller itself (it must then leave the CPU for good).
pub fn process_kill(value: u64) -> Result<bool, Error> {
    with_tasks(|t| {
        let pid = match t.resolve(value, Rights::MANAGE)?.object {
            ObjectRef::Process(pid) => pid,
            _ => return Err(Error::WrongObject),
        };
        let Some(target) = t.processes.get(pid).filter(|p| p.exit.is_none()).map(|p| p.container) else {
            return Err(Error::NoSuchProcess);
        };
        // Authority reaches down the container tree, never up or sideways.
        if !t.containers.is_ancestor_or_self(t.current_container()?, target) {
            return Err(Error::CrossContainer);
        }
        let caller = t.threads.get(&cpu::current()).map_or(0, |th| th.pid);
        t.terminate(pid, vessel_abi::Exit::Killed);
        // The caller ended too if it was the target or one of its descendants.
        Ok(t.processes.get(caller).is_none_or(|p| p.exit.is_some()))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// The slot of a thread (what `CapInspect` shows of it), or `u64::MAX` once it was waited for.
fn thread_slot(t: &Tasks, pid: u64, tid: u64) -> u64 {
    t.slot_of(pid, tid).map_or(u64::MAX, |i| i as u64)
}

/// `CapInspect`.
pub fn cap_inspect(value: u64) -> Result<CapInfo, Error> {
    with_tasks(|t| {
        let cap = t.resolve(value, Rights::empty())?;
        let (kind, detail) = match cap.object {
            ObjectRef::Endpoint(_) => (ObjectKind::Endpoint, 0),
            ObjectRef::Notification(_) => (ObjectKind::Notification, 0),
            ObjectRef::Memory(_) => (ObjectKind::Memory, 0),
            ObjectRef::IoPorts(first, last) => (ObjectKind::IoPorts, u64::from(first) | u64::from(last) << 16),
            ObjectRef::Irq(line) => (ObjectKind::Irq, u64::from(line)),
            ObjectRef::Mmio(phys, _) => (ObjectKind::Mmio, phys),
            ObjectRef::Process(pid) => (ObjectKind::Process, t.processes.get(pid).map_or(0, |p| p.vpid)),
            ObjectRef::Container(c) => (ObjectKind::Container, t.containers.get(c).map_or(0, |c| c.id())),
            ObjectRef::Thread(pid, tid) => (ObjectKind::Thread, thread_slot(t, pid, tid)),
            ObjectRef::Reply(id) => (ObjectKind::Reply, u64::from(t.kept_caller_waits(id))),
            ObjectRef::Platform => (ObjectKind::Platform, 0),
            ObjectRef::Msi(vector) => (ObjectKind::Msi, u64::from(vector)),
        };
        Ok(CapInfo { kind: kind as u32, rights: cap.rights.bits(), badge: cap.badge, detail })
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

fn rights_mask(value: u64) -> Result<Rights, Error> {
    u32::try_from(value).ok().and_then(Rights::from_bits).ok_or(Error::InvalidArgument)
}

/// `CapDuplicate` and `CapMint` (`badge` given).
pub fn cap_duplicate(value: u64, mask: u64, badge: Option<u64>) -> Result<u64, Error> {
    let mask = rights_mask(mask)?;
    with_tasks(|t| {
        let table = t.table_of(cpu::current())?;
        let h = handle(value)?;
        t.charge_slots(table, 1)?;
        let new = match badge {
            None => t.caps.duplicate(table, h, table, mask).map_err(cap_error),
            Some(b) => match t.caps.get(table, h).map_err(cap_error)?.object {
                ObjectRef::Endpoint(_) => t.caps.mint(table, h, table, mask, b).map_err(cap_error),
                _ => Err(Error::WrongObject),
            },
        };
        let new = match new {
            Ok(new) => new,
            Err(e) => {
                t.uncharge_slots(table, 1);
                return Err(e);
            }
        };
        let cap = t.caps.get(table, new).map_err(cap_error)?;
        t.cap_added(&cap);
        Ok(u64::from(new.0))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `CapDelete`.
pub fn cap_delete(value: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let table = t.table_of(cpu::current())?;
        let cap = t.caps.delete(table, handle(value)?).map_err(cap_error)?;
        t.uncharge_slots(table, 1);
        t.cap_removed(&cap);
        t.access_maybe_lost(table, cap.object);
        Ok(0)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// Capabilities `CapRevoke` removes between two preemption points: about 350 instructions
/// each, so a step stays well under the 50,000-instruction bound on interrupts-off work.
const REVOKE_STEP: usize = 64;

/// `CapRevoke`: deletes everything derived from the capability, in every process, in steps of
/// [`REVOKE_STEP`] with interrupts let in between (`preemption_point`). Others may run between
/// steps; what they derive from a copy not yet removed is removed too. If the capability itself
/// goes meanwhile (another thread deleted it), the call ends with what it removed so far; if the
/// caller dies, the rest stays (like an interrupted revoke in seL4, it is not atomic).
pub fn cap_revoke(value: u64) -> Result<u64, Error> {
    let handle = handle(value)?;
    let mut count = 0;
    loop {
        let step = with_tasks(|t| {
            let table = t.table_of(cpu::current())?;
            let (removed, more) = t.caps.revoke_some(table, handle, REVOKE_STEP).map_err(cap_error)?;
            for &(from, cap) in &removed {
                t.uncharge_slots(from, 1);
                t.cap_removed(&cap);
                t.access_maybe_lost(from, cap.object);
            }
            Ok((removed.len() as u64, more))
        })
        .unwrap_or(Err(Error::NoSuchProcess));
        match step {
            Ok((removed, more)) => {
                count += removed;
                if !more {
                    return Ok(count);
                }
            }
            // The first step reports a bad handle; a later one means it went while we paused.
            Err(e) if count == 0 => return Err(e),
            Err(_) => return Ok(count),
        }
        crate::arch::x86_64::preemption_point();
    }
}
