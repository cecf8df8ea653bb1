//! Process lifecycle on top of the task table: spawning from the boot file system, exit and
//! wait, kill, process information and the kernel's counts (a process's own memory and its
//! faults are `anon`).

use crate::arch::x86_64::percpu as cpu;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_abi::{Error, Exit, ExitStatus, KernelStats, Priority, ProcessInfo};
use vessel_abi::{HEAP_END, HEAP_START};
use vessel_capspace::TableId;
use vessel_container::{Index, Resource};

use super::objects::ObjectRef;
use super::sched::{reap, schedule};
use super::thread::{self, Pid, State, Thread, Tid};
use super::{BOOTFS, REAP_WORK, Tasks, caps, container, loader, reaper, with_tasks};
use crate::mem::address_space::AddressSpace;
use crate::mem::{frames, heap};

/// A process.
pub(super) struct Process {
    pub(super) parent: Pid,
    /// Its container, fixed for life.
    pub(super) container: Index,
    /// Its pid inside that container (what user space sees).
    pub(super) vpid: u64,
    /// Pages of its own memory charged to its container (image, stack, heap, IPC buffers and
    /// thread pages).
    pub(super) pages: u64,
    pub(super) name: String,
    pub(super) space: Option<AddressSpace>,
    pub(super) threads: Vec<Tid>,
    pub(super) children: Vec<Pid>,
    pub(super) exit: Option<Exit>,
    pub(super) priority: Priority,
    pub(super) cpu_ticks: u64,
    /// Address space of the `MemMap` area (also used by `MemoryMap` and `MmioMap`).
    pub(super) vspace: vessel_kcore::vrange::VirtualRanges,
    /// Guard pages below `MemMap` mappings made with `GUARD`, reserved until those go.
    pub(super) guards: Vec<u64>,
    /// Its capability table.
    pub(super) table: TableId,
    /// Memory objects mapped into it: (object, address, pages).
    pub(super) mappings: Vec<(u64, u64, u64)>,
    /// Its thread slots, by slot number (at most `vessel_abi::MAX_THREADS`).
    pub(super) slots: Vec<Slot>,
    /// Slots (a bit each) whose thread nobody will wait for: freed as soon as it ends. Slot 0,
    /// whose thread has no capability, starts detached.
    pub(super) detached: u64,
    /// Notifications (and bits) to signal when it ends (`ProcessNotify`).
    pub(super) exit_events: Vec<(u64, u64)>,
}

/// One thread slot of a process: the place of a thread's IPC buffer and thread page, and how
/// it ended until somebody waits for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    /// Unused.
    Free,
    /// A live thread.
    Live(Tid),
    /// A thread that ended and was not waited for yet.
    Ended(Tid, Exit),
}

/// The records of processes, live and ended (zombies), by pid; and the one counter pids and
/// tids come from.
///
/// Invariants (the fields are private): an id is drawn once and never again, as a pid or a tid
/// (the counter only goes up; one lost to a failed spawn is skipped, never reused); a record
/// stays from spawn until the process is waited for or, ended with nobody left to wait, freed
/// by the reaper (`Tasks::remove_process`, the one caller of [`Processes::remove`]).
pub(super) struct Processes {
    records: BTreeMap<Pid, Process>,
    /// The last id drawn.
    last_id: u64,
}

impl Processes {
    /// No process yet; the first id drawn is 1 (0 is the idle thread and "no process").
    pub(super) const fn new() -> Self {
        Processes { records: BTreeMap::new(), last_id: 0 }
    }

    /// Draws an id for a new process or thread.
    pub(super) fn new_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// The record of process `pid`.
    #[inline(always)]
    pub(super) fn get(&self, pid: Pid) -> Option<&Process> {
        self.records.get(&pid)
    }

    /// The record of process `pid`, to change.
    #[inline(always)]
    pub(super) fn get_mut(&mut self, pid: Pid) -> Option<&mut Process> {
        self.records.get_mut(&pid)
    }

    /// Whether `pid` has a record (live or a zombie).
    pub(super) fn contains(&self, pid: Pid) -> bool {
        self.records.contains_key(&pid)
    }

    /// Adds the record of a new process (`pid` drawn by [`Processes::new_id`]).
    pub(super) fn insert(&mut self, pid: Pid, process: Process) {
        self.records.insert(pid, process);
    }

    /// Drops the record of a reaped process.
    pub(super) fn remove(&mut self, pid: Pid) -> Option<Process> {
        self.records.remove(&pid)
    }

    /// How many records there are (zombies included).
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }
}

/// Starts a program from the boot file system as a child of `parent` (0: none, for init), giving
/// it copies of the parent's capabilities `caps` (each needs TRANSFER and DUPLICATE; the copies
/// are derived from the parent's, so revoking those takes them back). `container` 0 puts it in
/// the parent's container and returns its pid there; a container capability (MANAGE) puts it in
/// that container and returns a process capability.
pub fn spawn(
    parent: Pid,
    path: &str,
    strings: loader::Strings<'_>,
    priority: Priority,
    caps: &[u32],
    container: u64,
) -> Result<u64, Error> {
    let boot = BOOTFS.get().ok_or(Error::NotFound)?;
    let file = boot.file(path).ok_or(Error::NotFound)?;
    start(parent, path, file, boot.bytes, strings, priority, caps, container)
}

/// The boot file system, for a caller in the root container (`BootfsRead`).
pub fn bootfs_for_root() -> Result<&'static [u8], Error> {
    require_root()?;
    BOOTFS.get().map(|boot| boot.bytes).ok_or(Error::NotFound)
}

/// `Ok` if the caller is a process of the root container, else `AccessDenied`: the gate of the
/// calls only the system's own programs may make (`BootfsRead`, `Power`, `LogCopy`).
pub fn require_root() -> Result<(), Error> {
    let root =
        with_tasks(|t| t.current_container().map(|c| c == t.containers.root())).unwrap_or(Err(Error::NoSuchProcess))?;
    if root { Ok(()) } else { Err(Error::AccessDenied) }
}

/// `Spawn` with `SPAWN_IMAGE`: starts the ELF `image` (copied from the caller) as `name`.
#[allow(clippy::too_many_arguments)]
pub fn spawn_image(
    parent: Pid,
    name: &str,
    image: &[u8],
    strings: loader::Strings<'_>,
    priority: Priority,
    caps: &[u32],
    container: u64,
) -> Result<u64, Error> {
    let bootfs = BOOTFS.get().ok_or(Error::NotFound)?.bytes;
    start(parent, name, image, bootfs, strings, priority, caps, container)
}

/// Starts the ELF `elf` as process `path` (its name): the common part of the spawns.
#[allow(clippy::too_many_arguments)]
fn start(
    parent: Pid,
    path: &str,
    elf: &[u8],
    bootfs: &'static [u8],
    strings: loader::Strings<'_>,
    priority: Priority,
    caps: &[u32],
    container: u64,
) -> Result<u64, Error> {
    // Check everything and reserve the quota first, so a refusal leaves nothing behind.
    let (pid, tid, target, vpid) = with_tasks(|t| {
        let target = match (container, t.container_of(parent)) {
            (0, Some(own)) => own,
            (0, None) => t.containers.root(),
            (handle, _) => t.resolve_container(handle, vessel_abi::Rights::MANAGE)?,
        };
        if let Some(from) = t.processes.get(parent).map(|p| p.table) {
            for &h in caps {
                let cap = t.caps.get(from, vessel_capspace::Handle(h)).map_err(caps::cap_error)?;
                if !cap.rights.contains(vessel_abi::Rights::TRANSFER | vessel_abi::Rights::DUPLICATE) {
                    return Err(Error::MissingRights);
                }
                if !t.may_enter(cap.object, cap.rights, target) {
                    return Err(Error::CrossContainer);
                }
            }
        }
        t.reserve_process(target)?;
        let vpid = match t.containers.alloc_pid(target) {
            Ok(v) => v,
            Err(e) => {
                t.unreserve_process(target);
                return Err(container::container_error(e));
            }
        };
        let pid = t.processes.new_id();
        let tid = t.processes.new_id();
        Ok((pid, tid, target, vpid))
    })
    .ok_or(Error::NoSuchProcess)??;
    let built = build_process(parent, elf, bootfs, strings, caps, (pid, vpid, target, priority));
    with_tasks(|t| {
        let (space, table, thread) = match built {
            Ok(v) => v,
            Err(e) => {
                t.unreserve_process(target);
                return Err(e);
            }
        };
        let pages = space.owned_pages();
        let parent_gone = parent != 0 && t.processes.get(parent).is_none_or(|p| p.exit.is_some());
        let refused = if parent_gone { Err(Error::NoSuchProcess) } else { t.charge(target, Resource::Pages, pages) };
        if let Err(e) = refused {
            t.unreserve_process(target);
            t.release_table(table);
            return Err(e);
        }
        t.processes.insert(
            pid,
            Process {
                parent,
                container: target,
                vpid,
                pages,
                name: String::from(path),
                space: Some(space),
                threads: alloc::vec![tid],
                children: Vec::new(),
                exit: None,
                priority,
                cpu_ticks: 0,
                vspace: vessel_kcore::vrange::VirtualRanges::new(HEAP_START, HEAP_END),
                guards: Vec::new(),
                table,
                mappings: Vec::new(),
                slots: alloc::vec![Slot::Live(tid)],
                detached: 1,
                exit_events: Vec::new(),
            },
        );
        t.containers.add_member(target, pid);
        if let Some(p) = t.processes.get_mut(parent) {
            p.children.push(pid);
        }
        t.threads.insert(tid, thread);
        t.make_ready(tid);
        if container == 0 {
            return Ok(vpid);
        }
        // The parent names a child in another container only through this capability: without
        // it, the child must not run.
        let handle = caps::create(t, ObjectRef::Process(pid));
        if handle.is_err() {
            // It never ran: end it and drop its record at once (nobody could wait for it).
            t.terminate(pid, Exit::Killed);
            let space = t.processes.get_mut(pid).and_then(|p| p.space.take());
            t.remove_process(pid);
            drop(space);
        }
        handle
    })
    .ok_or(Error::NoMemory)?
}

/// Builds a new process's image, capability table and first thread, with the task table
/// unlocked except for the table work (loading allocates and copies, and touches no task).
fn build_process(
    parent: Pid,
    elf: &[u8],
    bootfs: &'static [u8],
    strings: loader::Strings<'_>,
    caps: &[u32],
    (pid, vpid, container, priority): (Pid, u64, Index, Priority),
) -> Result<(AddressSpace, TableId, Thread), Error> {
    let mut space = AddressSpace::new().map_err(|_| Error::NoMemory)?;
    let entry = loader::load_elf(&mut space, elf)?;
    super::threads::map_thread_page(&mut space, 0)?;
    let bootfs_len = if parent == 0 {
        loader::map_bootfs(&mut space, bootfs)?;
        bootfs.len() as u64
    } else {
        0
    };
    let (table, handles, count, container_id) = with_tasks(|t| {
        let container_id = t.containers.get(container).map_or(0, |c| c.id());
        let table = t.caps.create_table(caps::TABLE_CAPACITY).map_err(caps::cap_error)?;
        t.containers.add_table(table, container, pid);
        let mut handles = [0u32; vessel_abi::MAX_SPAWN_CAPS as usize];
        let mut count = caps.len();
        // init: the platform capability (for the `device` server) and the root container
        // (init hands it to `proc`).
        let boot: alloc::vec::Vec<ObjectRef> = if parent == 0 {
            let root = ObjectRef::Container(t.containers.root());
            super::platform::boot_objects().into_iter().chain([root]).take(handles.len()).collect()
        } else {
            alloc::vec::Vec::new()
        };
        // The child's container pays for the slots its initial capabilities take.
        if let Err(e) = t.charge_slots(table, (caps.len() + boot.len()) as u64) {
            t.release_table(table);
            return Err(e);
        }
        if parent == 0 {
            count = 0;
            for object in boot {
                let cap = vessel_capspace::Cap { object, rights: vessel_abi::Rights::all(), badge: 0 };
                match t.caps.insert(table, cap) {
                    Ok(h) => {
                        handles[count] = h.0;
                        count += 1;
                    }
                    Err(_) => t.uncharge_slots(table, 1),
                }
            }
        }
        if let Some(from) = t.processes.get(parent).map(|p| p.table) {
            for (i, &h) in caps.iter().enumerate() {
                match t.caps.duplicate(from, vessel_capspace::Handle(h), table, vessel_abi::Rights::all()) {
                    Ok(new) => {
                        handles[i] = new.0;
                        if let Ok(cap) = t.caps.get(table, new) {
                            t.cap_added(&cap);
                        }
                    }
                    Err(_) => t.uncharge_slots(table, 1),
                }
            }
        }
        Ok::<_, Error>((table, handles, count, container_id))
    })
    .ok_or(Error::NoSuchProcess)??;
    let info = match loader::setup_stack(&mut space, vpid, strings, bootfs_len, &handles[..count]) {
        Ok(v) => v,
        Err(e) => {
            drop_table(table);
            return Err(e);
        }
    };
    let owner = thread::Owner { vpid, container, container_id, table, priority };
    let Some(thread) = Thread::new_user(pid, owner, 0, entry, info, info) else {
        drop_table(table);
        return Err(Error::NoMemory);
    };
    Ok((space, table, thread))
}

impl Tasks {
    /// Charges a new process and its thread to `container`.
    fn reserve_process(&mut self, container: Index) -> Result<(), Error> {
        self.charge(container, Resource::Processes, 1)?;
        if let Err(e) = self.charge(container, Resource::Threads, 1) {
            self.containers.uncharge(container, Resource::Processes, 1);
            return Err(e);
        }
        Ok(())
    }

    /// Returns what `reserve_process` charged.
    fn unreserve_process(&mut self, container: Index) {
        self.containers.uncharge(container, Resource::Processes, 1);
        self.containers.uncharge(container, Resource::Threads, 1);
    }
}

/// Drops a table made for a spawn that failed.
fn drop_table(table: TableId) {
    with_tasks(|t| t.release_table(table));
}

/// The kernel id of the caller itself or of its child with pid `pid` in the caller's container
/// (children placed in other containers are reached through process capabilities).
pub(super) fn self_or_child(t: &Tasks, caller: Pid, pid: u64) -> Result<Pid, Error> {
    let me = t.processes.get(caller).ok_or(Error::NoSuchProcess)?;
    if me.vpid == pid {
        return Ok(caller);
    }
    me.children
        .iter()
        .copied()
        .find(|&c| t.processes.get(c).is_some_and(|p| p.vpid == pid && p.container == me.container))
        .ok_or(Error::NoSuchProcess)
}

/// The caller's child named by `pid` (a pid in the caller's container, or with
/// `BY_CAPABILITY` a process capability naming one of its children anywhere).
fn child(t: &Tasks, caller: Pid, pid: u64, flags: u64) -> Result<Pid, Error> {
    let kernel_pid = if flags & vessel_abi::BY_CAPABILITY != 0 {
        match t.resolve(pid, vessel_abi::Rights::empty())?.object {
            ObjectRef::Process(p) => p,
            _ => return Err(Error::WrongObject),
        }
    } else {
        self_or_child(t, caller, pid)?
    };
    match t.processes.get(kernel_pid) {
        Some(p) if p.parent == caller => Ok(kernel_pid),
        _ => Err(Error::NoSuchProcess),
    }
}

/// Waits for the caller's child `pid` to end, hands `deliver` how it ended, and reaps it once
/// that succeeded (so a status pointer that fails, even one a sibling thread unmapped while this
/// one waited, loses nothing: the child can be waited for again).
pub fn wait(
    caller: Pid,
    pid: u64,
    flags: u64,
    deliver: impl FnOnce(&ExitStatus) -> Result<(), Error>,
) -> Result<(), Error> {
    loop {
        let done = with_tasks(|t| {
            let pid = child(t, caller, pid, flags)?;
            if let Some(exit) = t.processes.get(pid).and_then(|p| p.exit) {
                return Ok::<_, Error>(Some((pid, ExitStatus::from_exit(exit))));
            }
            let current = cpu::current();
            if let Some(th) = t.threads.get_mut(&current) {
                th.state = State::Blocked;
                th.waiting_for = thread::WaitFor::Child(caller);
            }
            t.sched.add_waiter(current);
            Ok(None)
        })
        .ok_or(Error::NoSuchProcess)??;
        if let Some((pid, status)) = done {
            deliver(&status)?;
            let space = with_tasks(|t| {
                // Another thread of the caller may have reaped it meanwhile.
                if t.processes.get(pid).is_some_and(|p| p.exit.is_some() && p.parent == caller) {
                    // The child is off the CPU (the caller is on it), so its memory can go now;
                    // its kernel stacks wait for the reaper.
                    let space = t.processes.get_mut(pid).and_then(|p| p.space.take());
                    t.remove_process(pid);
                    space
                } else {
                    None
                }
            });
            if let Some(mut space) = space.flatten() {
                // In bounded steps with interrupts let in between (even a small space has
                // thousands of page-table entries to look at); nothing else can reach it now.
                while !space.release_some(REAP_WORK) {
                    crate::arch::x86_64::preemption_point();
                }
            }
            return Ok(());
        }
        schedule();
    }
}

/// Ends the caller's child `pid`.
pub fn kill(caller: Pid, pid: u64) -> Result<(), Error> {
    with_tasks(|t| {
        let pid = child(t, caller, pid, 0)?;
        t.terminate(pid, Exit::Killed);
        Ok(())
    })
    .ok_or(Error::NoSuchProcess)?
}

/// State of the caller itself or one of its children.
pub fn process_info(caller: Pid, pid: u64, flags: u64) -> Result<ProcessInfo, Error> {
    with_tasks(|t| {
        let me = t.processes.get(caller).ok_or(Error::NoSuchProcess)?;
        let pid = if flags == 0 && me.vpid == pid { caller } else { child(t, caller, pid, flags)? };
        let p = t.processes.get(pid).ok_or(Error::NoSuchProcess)?;
        let parent = t.processes.get(p.parent).filter(|q| q.container == p.container).map_or(0, |q| q.vpid);
        let blocked = p.threads.iter().all(|tid| t.threads.get(tid).is_some_and(|th| th.state == State::Blocked));
        Ok(ProcessInfo {
            pid: p.vpid,
            parent,
            state: if p.exit.is_some() {
                2
            } else if blocked {
                1
            } else {
                0
            },
            priority: p.priority as u32,
            cpu_ticks: p.cpu_ticks,
            threads: p.threads.len() as u64,
            container: t.containers.get(p.container).map_or(0, |c| c.id()),
            pages: p.pages,
        })
    })
    .ok_or(Error::NoSuchProcess)?
}

/// Reaper passes `reap_all` makes at most (a pass that cannot finish, such as one waiting for
/// the running process to leave the CPU, leaves the flag set).
const MAX_REAP_PASSES: usize = 100_000;

/// Frees everything that died and can be freed now, pass after bounded pass with interrupts let
/// in between: what a call that is about to need memory (`Spawn`, `MemMap`, …) or to count it
/// (`KernelStats`) does first, since otherwise the reaper frees only a little after each switch
/// and a burst of spawns could run out of memory that is merely waiting to be freed.
pub fn reap_all() {
    for _ in 0..MAX_REAP_PASSES {
        if !reaper::pending() {
            break;
        }
        reap();
        crate::arch::x86_64::preemption_point();
    }
}
/// Counts for leak tests and tools.
pub fn stats() -> KernelStats {
    // Free what already died first, so counts never include threads merely awaiting the reaper.
    reap_all();
    let (free_frames, total_frames) = frames::counts();
    let irqs_off = crate::arch::x86_64::percpu::longest_irqs_off();
    let ((processes, threads, objects, caps), (ipc_general, timed_waits, dma_quarantined)) = with_tasks(|t| {
        // Containers other than the root count as objects too.
        let objects = t.objects.len() + t.containers.len() - 1;
        let (processes, threads) = (t.processes.len() as u64, t.threads.len() as u64 - 1);
        (
            (processes, threads, objects as u64, t.caps.total() as u64),
            (t.general_messages, t.timed_waits, t.dma_quarantine.held() as u64),
        )
    })
    .unwrap_or(((0, 0, 0, 0), (0, 0, 0)));
    KernelStats {
        free_frames,
        total_frames,
        heap_used: heap::used() as u64,
        processes,
        threads,
        tick_hz: crate::time::TICK_HZ,
        objects,
        caps,
        pooled_frames: crate::mem::kstack::pooled_frames(),
        ipc_general,
        timed_waits,
        irqs_off_longest_ns: crate::time::tsc_to_ns(irqs_off.0),
        irqs_off_longest_call: irqs_off.1,
        idle_ns: super::sched::IDLE_NS.load(core::sync::atomic::Ordering::Relaxed),
        dma_quarantined,
        heap_held_frames: heap::held_frames(),
        bootfs_frames: crate::mem::bootfs_frames(),
    }
}
