//! More than one thread per process: `ThreadCreate`, `ThreadExit`, `ThreadWait`, `ThreadKill`.
//!
//! A process has up to `MAX_THREADS` slots. Slot `k` places a thread's IPC buffer and its
//! thread page (`vessel_abi::ipc_buffer_of(k)`, `thread_page_of(k)`); the thread page is mapped
//! and written when the thread is made, so the runtime finds its own IPC buffer through `fs`.
//!
//! Invariants: a process's `threads` lists exactly its live threads, and each of them has a
//! `Slot::Live` naming it; its container is charged one thread for each. A slot stays
//! `Ended` (holding how its thread ended) until somebody waits for it, like a zombie process,
//! unless the thread was detached (`ThreadDetach`; the first thread always is, as no capability
//! names it): then the slot is freed when the thread ends. The pages of an ended thread's slot
//! are unmapped and uncharged when it ends. A thread capability names (process, thread); both
//! ids are never reused, so a stale one answers `NoSuchProcess` or `NotFound`.

use crate::arch::x86_64::percpu as cpu;
use vessel_abi::{MAX_THREADS, ThreadPage, USER_END, thread_page_of};

use vessel_abi::{Error, Exit, ExitStatus, PAGE_SIZE};
use vessel_container::Resource;

use super::anon::mem_unmap;
use super::objects::ObjectRef;
use super::process::Slot;
use super::sched::{self, exit_current, schedule};
use super::thread::{Pid, State, Thread, Tid, WaitFor};
use super::{Tasks, caps, with_tasks};
use crate::mem::address_space::{Access, AddressSpace};

impl Tasks {
    /// Ends thread `tid` of process `pid`, which keeps running with its other threads. False
    /// (and nothing done) if it is the process's last live thread: the caller ends the process.
    fn end_thread(&mut self, pid: Pid, tid: Tid, exit: Exit) -> bool {
        let Some(process) = self.processes.get(pid) else { return false };
        if process.exit.is_some() || process.threads.len() <= 1 || !process.threads.contains(&tid) {
            return false;
        }
        self.cancel_ipc(tid);
        let Some(slot) = self.threads.get(&tid).map(|th| th.slot) else { return false };
        let Some(process) = self.processes.get_mut(pid) else { return false };
        process.threads.retain(|&t| t != tid);
        let detached = process.detached & (1 << slot) != 0;
        process.detached &= !(1 << slot);
        if let Some(entry) = process.slots.get_mut(slot as usize) {
            *entry = if detached { Slot::Free } else { Slot::Ended(tid, exit) };
        }
        // Its IPC buffer and thread page go; a later thread in this slot starts clean.
        let mut freed = 0;
        if let Some(space) = process.space.as_mut() {
            let before = space.owned_pages();
            let first = vessel_abi::ipc_buffer_of(slot);
            for page in (first..thread_page_of(slot) + PAGE_SIZE).step_by(PAGE_SIZE as usize) {
                if space.translate(page).is_some() {
                    let _ = space.unmap(page);
                }
            }
            freed = before - space.owned_pages();
        }
        process.pages -= freed;
        let container = process.container;
        self.containers.uncharge(container, Resource::Pages, freed);
        self.containers.uncharge(container, Resource::Threads, 1);
        self.retire_thread(tid);
        self.wake_waiters(|w| w == WaitFor::Thread(tid));
        true
    }
}

/// Maps and writes the thread page of `slot` in `space`.
pub(super) fn map_thread_page(space: &mut AddressSpace, slot: u64) -> Result<(), Error> {
    let at = thread_page_of(slot);
    let page = ThreadPage { this: at, ipc_buffer: vessel_abi::ipc_buffer_of(slot), slot };
    space.map_new_value(at, Access::ReadWrite, page).map_err(|_| Error::NoMemory)?;
    Ok(())
}

/// `ThreadCreate`: a new thread in the caller's process; returns a capability to it.
pub fn thread_create(entry: u64, stack_top: u64, arg: u64) -> Result<u64, Error> {
    if entry >= USER_END || stack_top >= USER_END || entry == 0 {
        return Err(Error::BadAddress);
    }
    with_tasks(|t| {
        let (pid, owner) = t.threads.get(&cpu::current()).map(|th| (th.pid, th.owner)).ok_or(Error::NoSuchProcess)?;
        let process = t.processes.get(pid).filter(|p| p.exit.is_none()).ok_or(Error::NoSuchProcess)?;
        let container = process.container;
        let slot = match process.slots.iter().position(|s| *s == Slot::Free) {
            Some(free) => free as u64,
            None if (process.slots.len() as u64) < MAX_THREADS => process.slots.len() as u64,
            None => return Err(Error::QuotaExceeded),
        };
        t.charge(container, Resource::Threads, 1)?;
        if let Err(e) = t.charge(container, Resource::Pages, 1) {
            t.containers.uncharge(container, Resource::Threads, 1);
            return Err(e);
        }
        let undo = |t: &mut Tasks| {
            t.containers.uncharge(container, Resource::Threads, 1);
            t.containers.uncharge(container, Resource::Pages, 1);
        };
        let tid = t.processes.new_id();
        let Some(thread) = Thread::new_user(pid, owner, slot, entry, stack_top, arg) else {
            undo(t);
            return Err(Error::NoMemory);
        };
        let Some(space) = t.processes.get_mut(pid).and_then(|p| p.space.as_mut()) else {
            undo(t);
            return Err(Error::NoSuchProcess);
        };
        if let Err(e) = map_thread_page(space, slot) {
            undo(t);
            return Err(e);
        }
        let handle = match caps::create(t, ObjectRef::Thread(pid, tid)) {
            Ok(handle) => handle,
            Err(e) => {
                if let Some(space) = t.processes.get_mut(pid).and_then(|p| p.space.as_mut()) {
                    let _ = space.unmap(thread_page_of(slot));
                }
                undo(t);
                return Err(e);
            }
        };
        let Some(process) = t.processes.get_mut(pid) else { return Err(Error::NoSuchProcess) };
        process.pages += 1;
        process.threads.push(tid);
        match process.slots.get_mut(slot as usize) {
            Some(entry) => *entry = Slot::Live(tid),
            None => process.slots.push(Slot::Live(tid)),
        }
        t.threads.insert(tid, thread);
        t.make_ready(tid);
        Ok(handle)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `ThreadExit`, and the end of a thread killed by itself: ends the running thread, or its
/// whole process if it was the last live one. Then unmaps `(addr, pages)` of its process, if
/// `pages` > 0: a thread cannot unmap its own stack while it runs on it.
pub fn thread_exit(exit: Exit, (addr, pages): (u64, u64)) -> ! {
    let ended = with_tasks(|t| {
        let current = cpu::current();
        let pid = t.threads.get(&current).map_or(0, |th| th.pid);
        t.end_thread(pid, current, exit)
    });
    if ended != Some(true) {
        exit_current(exit);
    }
    if pages > 0 {
        // The thread is dead, but its process lives and this still runs on the thread's own
        // kernel stack; the range is the process's memory, checked like any `MemUnmap`.
        let _ = mem_unmap(addr, pages);
    }
    schedule();
    sched::unreachable_after_exit()
}

/// The process and thread a thread capability names, checked for `rights`.
fn thread_of(t: &Tasks, handle: u64, rights: vessel_abi::Rights) -> Result<(Pid, Tid), Error> {
    match t.resolve(handle, rights)?.object {
        ObjectRef::Thread(pid, tid) => Ok((pid, tid)),
        _ => Err(Error::WrongObject),
    }
}

/// A thread of the caller's own process, named by a capability with MANAGE (kill, detach).
fn own_thread(t: &Tasks, handle: u64) -> Result<(Pid, Tid), Error> {
    let (pid, tid) = thread_of(t, handle, vessel_abi::Rights::MANAGE)?;
    if t.threads.get(&cpu::current()).map(|th| th.pid) != Some(pid) {
        return Err(Error::AccessDenied);
    }
    Ok((pid, tid))
}

/// `ThreadWait`: blocks until the thread has ended, hands `deliver` how it ended, and frees its
/// slot once that succeeded (a failed delivery loses nothing: it can be waited for again).
pub fn thread_wait(handle: u64, deliver: impl FnOnce(&ExitStatus) -> Result<(), Error>) -> Result<(), Error> {
    loop {
        let done = with_tasks(|t| {
            let (pid, tid) = thread_of(t, handle, vessel_abi::Rights::READ)?;
            let current = cpu::current();
            if tid == current {
                return Err(Error::InvalidArgument);
            }
            let at = t.slot_of(pid, tid)?;
            match t.processes.get(pid).map(|p| p.slots[at]) {
                Some(Slot::Ended(_, exit)) => Ok(Some((pid, tid, at, ExitStatus::from_exit(exit)))),
                _ => {
                    if let Some(th) = t.threads.get_mut(&current) {
                        th.state = State::Blocked;
                        th.waiting_for = WaitFor::Thread(tid);
                    }
                    t.sched.add_waiter(current);
                    Ok(None)
                }
            }
        })
        .ok_or(Error::NoSuchProcess)??;
        if let Some((pid, tid, at, status)) = done {
            deliver(&status)?;
            with_tasks(|t| {
                // Another waiter may have freed it meanwhile (and a new thread taken it).
                if let Some(slot) = t.processes.get_mut(pid).and_then(|p| p.slots.get_mut(at))
                    && matches!(*slot, Slot::Ended(x, _) if x == tid)
                {
                    *slot = Slot::Free;
                }
            });
            return Ok(());
        }
        schedule();
    }
}

/// `ThreadDetach`: the thread's slot is freed when it ends (at once if it has).
pub fn thread_detach(handle: u64) -> Result<(), Error> {
    with_tasks(|t| {
        let (pid, tid) = own_thread(t, handle)?;
        let at = t.slot_of(pid, tid)?;
        let process = t.processes.get_mut(pid).ok_or(Error::NoSuchProcess)?;
        match process.slots[at] {
            Slot::Ended(..) => process.slots[at] = Slot::Free,
            _ => process.detached |= 1 << at,
        }
        Ok(())
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `ThreadKill`: ends a thread of the caller's own process. Ending the caller itself does not
/// return.
pub fn thread_kill(handle: u64) -> Result<(), Error> {
    let target = with_tasks(|t| {
        let (pid, tid) = own_thread(t, handle)?;
        let current = cpu::current();
        let live = t.processes.get(pid).is_some_and(|p| p.threads.contains(&tid));
        if !live {
            return Err(Error::NotFound);
        }
        if tid == current {
            return Ok(true);
        }
        // The caller is another live thread of the same process, so this is never the last.
        t.end_thread(pid, tid, Exit::Killed);
        Ok(false)
    })
    .ok_or(Error::NoSuchProcess)??;
    if target {
        thread_exit(Exit::Killed, (0, 0));
    }
    Ok(())
}
