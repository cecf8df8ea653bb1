//! Capability operations and object creation: inspect, duplicate, mint, delete, revoke;
//! endpoints, notifications, memory objects (create and map) and process handles. Every call
//! resolves its handle in the caller's table and checks the right it needs first.

use alloc::vec::Vec;

use vessel_abi::{CapInfo, Error, MapFlags, ObjectKind, PAGE_SIZE, Rights};
use vessel_capspace::Cap;
use vessel_container::Resource;

use super::ipc::{cap_error, handle};
use super::objects::{Endpoint, Memory, Notification, ObjectRef};
use super::{TableId, Tasks, with_tasks};
use crate::mem::address_space::Access;
use crate::mem::frames;

/// Largest memory object, in pages.
const MAX_MEMORY_PAGES: u64 = 1024;

/// Puts a capability with all rights to a new object into the caller's table; if that fails, the
/// object (which nobody can reach) goes again.
pub(super) fn create(t: &mut Tasks, object: ObjectRef) -> Result<u64, Error> {
    create_with(t, object, Rights::all())
}

/// Like [`create`], with only `rights`.
pub(super) fn create_with(t: &mut Tasks, object: ObjectRef, rights: Rights) -> Result<u64, Error> {
    let table = t.table_of(t.current)?;
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
            // Nobody can reach the object: drop it again.
            match object {
                ObjectRef::Endpoint(id) => {
                    if let Some(e) = t.endpoints.remove(&id) {
                        t.containers.uncharge(e.container, Resource::Objects, 1);
                    }
                }
                ObjectRef::Notification(id) => {
                    if let Some(n) = t.notifications.remove(&id) {
                        t.containers.uncharge(n.container, Resource::Objects, 1);
                    }
                }
                ObjectRef::Memory(id) => t.release_memory_if_unused(id),
                // Its caller still waits on this thread's implicit reply, which stays owed.
                ObjectRef::Reply(id) => t.reply_removed(id),
                ObjectRef::IoPorts(..)
                | ObjectRef::Irq(_)
                | ObjectRef::Mmio(..)
                | ObjectRef::Process(_)
                | ObjectRef::Container(_)
                | ObjectRef::Thread(..) => {}
            }
            Err(e)
        }
    }
}

/// `EndpointCreate`.
pub fn endpoint_create() -> Result<u64, Error> {
    with_tasks(|t| {
        let container = t.current_container()?;
        t.charge(container, Resource::Objects, 1)?;
        let id = t.next_object();
        t.endpoints.insert(id, Endpoint::new(container));
        create(t, ObjectRef::Endpoint(id))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `NotificationCreate`.
pub fn notification_create() -> Result<u64, Error> {
    with_tasks(|t| {
        let container = t.current_container()?;
        t.charge(container, Resource::Objects, 1)?;
        let id = t.next_object();
        t.notifications.insert(id, Notification::new(container));
        create(t, ObjectRef::Notification(id))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `MemoryCreate`: `pages` zeroed frames.
pub fn memory_create(pages: u64) -> Result<u64, Error> {
    if pages == 0 || pages > MAX_MEMORY_PAGES {
        return Err(Error::InvalidArgument);
    }
    // Charge first, so a container over its quota allocates nothing.
    let container = with_tasks(|t| {
        let container = t.current_container()?;
        t.charge(container, Resource::Pages, pages)?;
        if let Err(e) = t.charge(container, Resource::Objects, 1) {
            t.containers.uncharge(container, Resource::Pages, pages);
            return Err(e);
        }
        Ok(container)
    })
    .unwrap_or(Err(Error::NoSuchProcess))?;
    let refund = || {
        with_tasks(|t| {
            t.containers.uncharge(container, Resource::Pages, pages);
            t.containers.uncharge(container, Resource::Objects, 1);
        });
    };
    let mut list = Vec::new();
    if list.try_reserve_exact(pages as usize).is_err() {
        refund();
        return Err(Error::NoMemory);
    }
    for _ in 0..pages {
        match frames::alloc_zeroed() {
            Some(f) => list.push(f),
            None => {
                for f in list {
                    let _ = frames::free(f);
                }
                refund();
                return Err(Error::NoMemory);
            }
        }
    }
    with_tasks(|t| {
        let id = t.next_object();
        t.memories.insert(id, Memory { container, caps: 0, mappings: 0, frames: list });
        create(t, ObjectRef::Memory(id))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `MemoryMap`: maps a memory object into the caller; returns the address.
pub fn memory_map(value: u64, flags: MapFlags) -> Result<u64, Error> {
    if flags.intersects(MapFlags::EXEC | MapFlags::GUARD) {
        return Err(Error::InvalidArgument);
    }
    let writable = flags.contains(MapFlags::WRITE);
    let needs = Rights::MAP | Rights::READ | if writable { Rights::WRITE } else { Rights::empty() };
    with_tasks(|t| {
        let id = match t.resolve(value, needs)?.object {
            ObjectRef::Memory(id) => id,
            _ => return Err(Error::WrongObject),
        };
        if t.memories.get(&id).is_some_and(|m| Some(m.container) != t.current_container().ok()) {
            return Err(Error::CrossContainer);
        }
        let frames_list = t.memories.get(&id).map(|m| m.frames.clone()).ok_or(Error::PeerDied)?;
        let pid = t.threads.get(&t.current).map(|th| th.pid).ok_or(Error::NoSuchProcess)?;
        let process = t.processes.get_mut(&pid).ok_or(Error::NoSuchProcess)?;
        let pages = frames_list.len() as u64;
        let base = process.vspace.take(pages * PAGE_SIZE).ok_or(Error::NoMemory)?;
        let space = process.space.as_mut().ok_or(Error::NoSuchProcess)?;
        let access = if writable { Access::ReadWrite } else { Access::Read };
        for (i, &frame) in frames_list.iter().enumerate() {
            if space.map(base + i as u64 * PAGE_SIZE, frame, access, false).is_err() {
                for undo in 0..i as u64 {
                    let _ = space.unmap(base + undo * PAGE_SIZE);
                }
                process.vspace.give(base, pages * PAGE_SIZE);
                return Err(Error::NoMemory);
            }
        }
        process.mappings.push((id, base, pages));
        if let Some(m) = t.memories.get_mut(&id) {
            m.mappings += 1;
        }
        Ok(base)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

impl Tasks {
    /// A capability to `object` left `table`: if it was that process's last capability to a
    /// memory object, its mappings of the object go too (a process keeps a mapping only while
    /// it holds a capability to the memory; touching the range afterwards faults).
    pub(super) fn access_maybe_lost(&mut self, table: TableId, object: ObjectRef) {
        let ObjectRef::Memory(id) = object else { return };
        if self.caps.holds(table, object) {
            return;
        }
        let Some(&(_, pid)) = self.table_owner.get(&table) else { return };
        let Some(process) = self.processes.get_mut(&pid) else { return };
        let mut lost = 0;
        let mut i = 0;
        while i < process.mappings.len() {
            let (object, addr, pages) = process.mappings[i];
            if object != id {
                i += 1;
                continue;
            }
            process.mappings.swap_remove(i);
            if let Some(space) = process.space.as_mut() {
                for page in 0..pages {
                    let _ = space.unmap(addr + page * PAGE_SIZE);
                }
            }
            process.vspace.give(addr, pages * PAGE_SIZE);
            lost += 1;
        }
        if lost > 0 {
            if let Some(m) = self.memories.get_mut(&id) {
                m.mappings = m.mappings.saturating_sub(lost);
            }
            self.release_memory_if_unused(id);
        }
    }
}

/// `ProcessCap`: a capability to the caller or one of its children.
pub fn process_cap(pid: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let caller = t.threads.get(&t.current).map(|th| th.pid).ok_or(Error::NoSuchProcess)?;
        let pid = super::process::self_or_child(t, caller, pid)?;
        if t.processes.get(&pid).is_none_or(|p| p.exit.is_some()) {
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
        let Some(target) = t.processes.get(&pid).filter(|p| p.exit.is_none()).map(|p| p.container) else {
            return Err(Error::NoSuchProcess);
        };
        // Authority reaches down the container tree, never up or sideways.
        if !t.containers.is_ancestor_or_self(t.current_container()?, target) {
            return Err(Error::CrossContainer);
        }
        let caller = t.threads.get(&t.current).map_or(0, |th| th.pid);
        t.terminate(pid, vessel_abi::Exit::Killed);
        // The caller ended too if it was the target or one of its descendants.
        Ok(t.processes.get(&caller).is_none_or(|p| p.exit.is_some()))
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
            ObjectRef::Process(pid) => (ObjectKind::Process, t.processes.get(&pid).map_or(0, |p| p.vpid)),
            ObjectRef::Container(c) => (ObjectKind::Container, t.containers.get(c).map_or(0, |c| c.id())),
            ObjectRef::Thread(pid, tid) => (ObjectKind::Thread, thread_slot(t, pid, tid)),
            ObjectRef::Reply(id) => (ObjectKind::Reply, u64::from(t.kept_caller_waits(id))),
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
        let table = t.table_of(t.current)?;
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
        let table = t.table_of(t.current)?;
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
            let table = t.table_of(t.current)?;
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
