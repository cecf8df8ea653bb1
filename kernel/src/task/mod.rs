//! Processes, threads and the scheduler.
//!
//! One global table (`TASKS`) holds every process and thread. It is only touched with interrupts
//! off (system calls run with IF clear, the timer handler too), on Vessel's single CPU, so its
//! lock is never contended; it is released before every context switch.
//!
//! Scheduling: strict priorities (`Priority::High` > `Normal` > `Low`), round robin inside a
//! priority with a time slice of [`SLICE_TICKS`] timer ticks. A woken thread of higher priority
//! than the running one preempts it at once (at the end of the current system call or tick).
//! The boot thread becomes the idle thread, which halts until an interrupt.
//!
//! Lifetimes: a process ends by `Exit`, by a fault, or by `Kill` (from its parent, or because its
//! parent ended: children never outlive their parent). Its threads die at once; its address space
//! and kernel stacks are freed by `reap` once none of them is on the CPU. The process record stays
//! as a zombie until its parent waits for it (or at once if the parent is gone).

mod hardware;
mod ipc;
mod loader;
mod objects;
mod switch;
mod thread;

pub use hardware::{irq_ack, irq_bind, mmio_map, on_irq, port_read, port_write};
pub use ipc::{
    call, cap_delete, cap_duplicate, cap_inspect, cap_revoke, endpoint_create, memory_create, memory_map,
    notification_create, process_cap, process_kill, recv, reply, reply_recv, signal, wait_notification,
};

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use objects::{IpcWait, ObjectRef};
use spin::Mutex;
use vessel_abi::{Error, Exit, ExitStatus, FaultKind, KernelStats, MapFlags, Priority, ProcessInfo};
use vessel_abi::{HEAP_END, HEAP_START, PAGE_SIZE, STACK_GUARD, STACK_SIZE, STACK_TOP};
use vessel_capspace::{CapSpace, TableId};
use vessel_kcore::report::{FaultReport, TrapFrame};

use crate::arch::x86_64::gdt;
use crate::mem::address_space::{Access, AddressSpace};
use crate::mem::{frames, heap};
pub use thread::{Pid, Tid};
use thread::{State, Thread};

/// Timer ticks a thread may run before others of its priority get the CPU.
pub const SLICE_TICKS: u32 = 2;
/// The idle thread's id.
const IDLE: Tid = 0;

/// A process.
struct Process {
    parent: Pid,
    name: String,
    space: Option<AddressSpace>,
    threads: Vec<Tid>,
    children: Vec<Pid>,
    exit: Option<Exit>,
    priority: Priority,
    cpu_ticks: u64,
    /// Next free address for `MemMap`.
    heap_next: u64,
    /// Its capability table.
    table: TableId,
    /// Memory objects mapped into it: (object, address, pages).
    mappings: Vec<(u64, u64, u64)>,
    /// Frames behind its IPC buffer pages, once mapped (the range can never be unmapped).
    ipc_frames: [Option<u64>; 2],
}

struct Tasks {
    processes: BTreeMap<Pid, Process>,
    threads: BTreeMap<Tid, Box<Thread>>,
    ready: [VecDeque<Tid>; Priority::LEVELS],
    /// Threads blocked in `Sleep`.
    sleepers: Vec<Tid>,
    /// Threads blocked in `Wait`.
    waiters: Vec<Tid>,
    /// Dead threads not yet freed.
    dead: Vec<Tid>,
    /// Ended processes whose memory or record the reaper still has to free.
    ended: Vec<Pid>,
    current: Tid,
    next_id: u64,
    slice_left: u32,
    need_resched: bool,
    caps: CapSpace<ObjectRef>,
    endpoints: BTreeMap<u64, objects::Endpoint>,
    notifications: BTreeMap<u64, objects::Notification>,
    memories: BTreeMap<u64, objects::Memory>,
    next_object: u64,
    /// ISA interrupt line → (notification, bits) it is delivered to.
    irq_bindings: [Option<(u64, u64)>; 16],
    /// The thread whose state is in the FPU/SSE registers (IDLE: none).
    fpu_owner: Tid,
}

static TASKS: Mutex<Option<Tasks>> = Mutex::new(None);
/// The boot file system (validated once at boot), lent to init.
static BOOTFS: spin::Once<(&'static [u8], Option<vessel_bootfs::Archive<'static>>)> = spin::Once::new();

fn with_tasks<R>(f: impl FnOnce(&mut Tasks) -> R) -> Option<R> {
    TASKS.lock().as_mut().map(f)
}

impl Tasks {
    fn priority_of(&self, tid: Tid) -> Option<Priority> {
        if tid == IDLE {
            return None;
        }
        let pid = self.threads.get(&tid)?.pid;
        self.processes.get(&pid).map(|p| p.priority)
    }

    fn make_ready(&mut self, tid: Tid) {
        let Some(priority) = self.priority_of(tid) else { return };
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.state = State::Ready;
            thread.wake_at = None;
            self.ready[priority as usize].push_back(tid);
        }
        if self.priority_of(self.current).is_none_or(|running| priority > running) {
            self.need_resched = true;
        }
    }

    /// Like `make_ready`, but at the head of its queue: it runs next (IPC direct switch).
    fn make_ready_front(&mut self, tid: Tid) {
        let Some(priority) = self.priority_of(tid) else { return };
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.state = State::Ready;
            thread.wake_at = None;
            self.ready[priority as usize].push_front(tid);
        }
        self.need_resched = true;
    }

    /// Blocks the running thread in IPC (the caller then calls `schedule`).
    fn block_current(&mut self, wait: IpcWait) {
        let current = self.current;
        if let Some(th) = self.threads.get_mut(&current) {
            th.state = State::Blocked;
            th.ipc = wait;
        }
    }

    /// Adds a wake-up deadline to a blocked thread.
    fn sleep_until(&mut self, tid: Tid, deadline: u64) {
        if let Some(th) = self.threads.get_mut(&tid) {
            th.wake_at = Some(deadline);
            self.sleepers.push(tid);
        }
    }

    fn next_object(&mut self) -> u64 {
        self.next_object += 1;
        self.next_object
    }

    fn pop_ready(&mut self) -> Option<Tid> {
        self.ready.iter_mut().rev().find_map(VecDeque::pop_front)
    }

    /// Ends a process and, first, all its descendants. Safe to call on an ended one.
    fn terminate(&mut self, pid: Pid, exit: Exit) {
        let Some(process) = self.processes.get_mut(&pid) else { return };
        if process.exit.is_some() {
            return;
        }
        process.exit = Some(exit);
        self.ended.push(pid);
        let threads = core::mem::take(&mut process.threads);
        let children = process.children.clone();
        let parent = process.parent;
        let table = process.table;
        let mappings = core::mem::take(&mut process.mappings);
        for &tid in &threads {
            self.cancel_ipc(tid);
        }
        if let Ok(removed) = self.caps.destroy_table(table) {
            for cap in removed {
                self.cap_removed(&cap);
            }
        }
        for (object, _, _) in mappings {
            if let Some(m) = self.memories.get_mut(&object) {
                m.mappings = m.mappings.saturating_sub(1);
            }
            self.release_memory_if_unused(object);
        }
        for tid in threads {
            if let Some(thread) = self.threads.get_mut(&tid) {
                thread.state = State::Dead;
            }
            if self.fpu_owner == tid {
                // Its registers are garbage now; nobody needs them saved.
                self.fpu_owner = IDLE;
            }
            for queue in &mut self.ready {
                queue.retain(|&t| t != tid);
            }
            self.sleepers.retain(|&t| t != tid);
            self.waiters.retain(|&t| t != tid);
            self.dead.push(tid);
        }
        for child in children {
            self.terminate(child, Exit::Killed);
            // An already-ended child (a zombie) is now an orphan: the reaper must look at it.
            self.ended.push(child);
        }
        // Wake the parent's threads waiting for a child; they look again.
        let waiting: Vec<Tid> =
            self.waiters.iter().copied().filter(|t| self.threads.get(t).is_some_and(|th| th.pid == parent)).collect();
        self.waiters.retain(|t| !waiting.contains(t));
        for tid in waiting {
            self.make_ready(tid);
        }
        if pid == 1 {
            log::warn!("init (pid 1) ended: {exit:?}");
        }
    }

    /// Frees dead threads that are off the CPU, address spaces of ended processes, and zombies
    /// nobody can wait for any more.
    fn reap(&mut self) -> Vec<AddressSpace> {
        let mut freed = Vec::new();
        // The common case (every context switch): nothing to do, and nothing touched.
        if self.dead.is_empty() && self.ended.is_empty() {
            return freed;
        }
        let current = self.current;
        let dead = core::mem::take(&mut self.dead);
        for tid in dead {
            if tid == current {
                self.dead.push(tid);
            } else {
                self.threads.remove(&tid);
            }
        }
        let running_pid = self.threads.get(&current).map_or(0, |t| t.pid);
        let ended = core::mem::take(&mut self.ended);
        for pid in ended {
            if !self.processes.contains_key(&pid) {
                continue; // already waited for
            }
            if pid != running_pid
                && let Some(space) = self.processes.get_mut(&pid).and_then(|p| p.space.take())
            {
                freed.push(space);
            }
            let orphan = self
                .processes
                .get(&pid)
                .is_some_and(|p| self.processes.get(&p.parent).is_none_or(|parent| parent.exit.is_some()));
            if orphan && pid != running_pid {
                self.remove_process(pid);
            } else if pid == running_pid || self.processes.get(&pid).is_some_and(|p| p.space.is_some()) {
                // Still on the CPU, or a zombie whose parent may yet wait: look again later.
                self.ended.push(pid);
            }
        }
        freed
    }

    fn remove_process(&mut self, pid: Pid) {
        if let Some(process) = self.processes.remove(&pid)
            && let Some(parent) = self.processes.get_mut(&process.parent)
        {
            parent.children.retain(|&c| c != pid);
        }
    }
}

/// Sets up the task tables with the running boot thread as the idle thread.
#[cfg_attr(feature = "ktest", allow(dead_code))] // the test kernel starts no processes
pub fn init(bootfs: &'static [u8]) {
    BOOTFS.call_once(|| (bootfs, vessel_bootfs::Archive::new(bootfs).ok()));
    let mut threads = BTreeMap::new();
    threads.insert(IDLE, Box::new(Thread::idle()));
    *TASKS.lock() = Some(Tasks {
        processes: BTreeMap::new(),
        threads,
        ready: Default::default(),
        sleepers: Vec::new(),
        waiters: Vec::new(),
        dead: Vec::new(),
        ended: Vec::new(),
        current: IDLE,
        next_id: 1,
        slice_left: SLICE_TICKS,
        need_resched: false,
        caps: CapSpace::new(),
        endpoints: BTreeMap::new(),
        notifications: BTreeMap::new(),
        memories: BTreeMap::new(),
        next_object: 0,
        irq_bindings: [None; 16],
        fpu_owner: IDLE,
    });
}

/// Starts a program from the boot file system as a child of `parent` (0: none, for init), giving
/// it copies of the parent's capabilities `caps` (each needs TRANSFER and DUPLICATE; the copies
/// are derived from the parent's, so revoking those takes them back).
pub fn spawn(parent: Pid, path: &str, args: &[u8], priority: Priority, caps: &[u32]) -> Result<Pid, Error> {
    let (bootfs, archive) = BOOTFS.get().copied().ok_or(Error::NotFound)?;
    let file = archive.and_then(|a| a.get(path)).filter(|e| e.is_file()).ok_or(Error::NotFound)?;
    let (pid, tid) = with_tasks(|t| {
        let pid = t.next_id;
        t.next_id += 2;
        (pid, pid + 1)
    })
    .ok_or(Error::NoMemory)?;
    // Build the image with the table unlocked: it allocates and copies, and touches no task.
    let mut space = AddressSpace::new().map_err(|_| Error::NoMemory)?;
    let entry = loader::load_elf(&mut space, file.data)?;
    let bootfs_len = if parent == 0 {
        loader::map_bootfs(&mut space, bootfs)?;
        bootfs.len() as u64
    } else {
        0
    };
    // Check the capabilities first so a refusal leaves nothing behind.
    with_tasks(|t| {
        let Some(from) = t.processes.get(&parent).map(|p| p.table) else { return Ok(()) };
        for &h in caps {
            let cap = t.caps.get(from, vessel_capspace::Handle(h)).map_err(ipc::cap_error)?;
            if !cap.rights.contains(vessel_abi::Rights::TRANSFER | vessel_abi::Rights::DUPLICATE) {
                return Err(Error::MissingRights);
            }
        }
        Ok(())
    })
    .ok_or(Error::NoSuchProcess)??;
    let (table, handles, count) = with_tasks(|t| {
        let table = t.caps.create_table(ipc::TABLE_CAPACITY).map_err(ipc::cap_error)?;
        let mut handles = [0u32; vessel_abi::MAX_SPAWN_CAPS as usize];
        let mut count = caps.len();
        if parent == 0 {
            // init: the hardware capabilities, roots of their derivation trees.
            count = 0;
            for object in hardware::boot_objects().into_iter().take(handles.len()) {
                let cap = vessel_capspace::Cap { object, rights: vessel_abi::Rights::all(), badge: 0 };
                if let Ok(h) = t.caps.insert(table, cap) {
                    handles[count] = h.0;
                    count += 1;
                }
            }
        }
        if let Some(from) = t.processes.get(&parent).map(|p| p.table) {
            for (i, &h) in caps.iter().enumerate() {
                if let Ok(new) = t.caps.duplicate(from, vessel_capspace::Handle(h), table, vessel_abi::Rights::all()) {
                    handles[i] = new.0;
                    if let Ok(cap) = t.caps.get(table, new) {
                        t.cap_added(&cap);
                    }
                }
            }
        }
        Ok::<_, Error>((table, handles, count))
    })
    .ok_or(Error::NoSuchProcess)??;
    let (rsp, info) = match loader::setup_stack(&mut space, pid, args, bootfs_len, &handles[..count]) {
        Ok(v) => v,
        Err(e) => {
            drop_table(table);
            return Err(e);
        }
    };
    let Some(thread) = Thread::new_user(pid, entry, rsp, info) else {
        drop_table(table);
        return Err(Error::NoMemory);
    };
    with_tasks(|t| {
        if parent != 0 && t.processes.get(&parent).is_none_or(|p| p.exit.is_some()) {
            if let Ok(removed) = t.caps.destroy_table(table) {
                for cap in removed {
                    t.cap_removed(&cap);
                }
            }
            return Err(Error::NoSuchProcess);
        }
        t.processes.insert(
            pid,
            Process {
                parent,
                name: String::from(path),
                space: Some(space),
                threads: alloc::vec![tid],
                children: Vec::new(),
                exit: None,
                priority,
                cpu_ticks: 0,
                heap_next: HEAP_START,
                table,
                mappings: Vec::new(),
                ipc_frames: [None; 2],
            },
        );
        if let Some(p) = t.processes.get_mut(&parent) {
            p.children.push(pid);
        }
        t.threads.insert(tid, Box::new(thread));
        t.make_ready(tid);
        Ok(pid)
    })
    .ok_or(Error::NoMemory)?
}

/// Drops a table made for a spawn that failed.
fn drop_table(table: TableId) {
    with_tasks(|t| {
        if let Ok(removed) = t.caps.destroy_table(table) {
            for cap in removed {
                t.cap_removed(&cap);
            }
        }
    });
}

/// The running process (0 for the kernel itself).
pub fn current_pid() -> Pid {
    with_tasks(|t| t.threads.get(&t.current).map_or(0, |th| th.pid)).unwrap_or(0)
}

/// Switches to the best ready thread, if that is not the running one. Interrupts must be off.
pub fn schedule() {
    reap();
    let (save, load) = {
        let mut guard = TASKS.lock();
        let Some(t) = guard.as_mut() else { return };
        t.need_resched = false;
        t.slice_left = SLICE_TICKS;
        let current = t.current;
        let running = t.threads.get(&current).is_some_and(|th| th.state == State::Running);
        if running && current != IDLE {
            t.make_ready(current);
            t.need_resched = false;
        }
        let next = match t.pop_ready() {
            Some(next) => next,
            None if running => return,
            None => IDLE,
        };
        if next == current {
            if let Some(th) = t.threads.get_mut(&current) {
                th.state = State::Running;
            }
            return;
        }
        let Some(next_pid) = t.threads.get(&next).map(|th| th.pid) else { return };
        // Lazy FPU switching: the registers stay with their owner; the next thread traps (#NM)
        // on its first FPU/SSE instruction unless it is the owner already.
        crate::arch::x86_64::fpu::set_trap_on_use(t.fpu_owner != next);
        match t.processes.get_mut(&next_pid).and_then(|p| p.space.as_mut()) {
            Some(space) => space.activate(),
            None => crate::mem::address_space::load_cr3(crate::mem::paging::kernel_pml4()),
        }
        let Some(th) = t.threads.get_mut(&next) else { return };
        th.state = State::Running;
        gdt::set_kernel_stack(th.kernel_stack_top());
        let load = th.saved_rsp;
        t.current = next;
        let save = t.threads.get_mut(&current).map_or(core::ptr::null_mut(), |th| &raw mut th.saved_rsp);
        (save, load)
    };
    if save.is_null() {
        return;
    }
    // SAFETY: interrupts are off; `save` points into a boxed thread that is freed only by `reap`
    // after it is off the CPU, i.e. not before this switch completes; `load` was saved by a
    // switch or prepared by `Thread::new_user`.
    unsafe { switch::switch_to(save, load) };
    // Back on this thread: free what died while we were away.
    reap();
}

fn reap() {
    let spaces = with_tasks(Tasks::reap).unwrap_or_default();
    // Dropping an address space frees frames; done outside the table lock.
    drop(spaces);
}

/// Runs the idle loop on the boot thread: schedule whatever is ready, else halt.
#[cfg_attr(feature = "ktest", allow(dead_code))] // the test kernel starts no processes
pub fn idle() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        schedule();
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// Timer tick: CPU accounting, sleepers, time slices. Called from the interrupt handler.
pub fn on_tick(_from_user: bool) {
    let resched = {
        let Some(mut guard) = TASKS.try_lock() else { return };
        let Some(t) = guard.as_mut() else { return };
        let now = crate::time::since_boot_ns();
        if let Some(pid) = t.threads.get(&t.current).map(|th| th.pid)
            && let Some(p) = t.processes.get_mut(&pid)
        {
            p.cpu_ticks += 1;
        }
        let due: Vec<Tid> = t
            .sleepers
            .iter()
            .copied()
            .filter(|tid| t.threads.get(tid).and_then(|th| th.wake_at).is_some_and(|w| w <= now))
            .collect();
        if !due.is_empty() {
            t.sleepers.retain(|tid| !due.contains(tid));
            for tid in due {
                if !t.ipc_timed_out(tid) {
                    t.make_ready(tid);
                }
            }
        }
        t.slice_left = t.slice_left.saturating_sub(1);
        if t.slice_left == 0 {
            t.need_resched = true;
        }
        t.need_resched
    };
    if resched {
        schedule();
    }
}

/// Reschedules if a wake-up asked for it (end of a system call).
pub fn preempt_if_needed() {
    if with_tasks(|t| t.need_resched).unwrap_or(false) {
        schedule();
    }
}

/// Gives up the CPU.
pub fn yield_now() {
    schedule();
}

/// Ends the calling process. Never returns.
pub fn exit_current(exit: Exit) -> ! {
    with_tasks(|t| {
        let pid = t.threads.get(&t.current).map_or(0, |th| th.pid);
        t.terminate(pid, exit);
    });
    schedule();
    unreachable_after_exit()
}

fn unreachable_after_exit() -> ! {
    // A dead thread is never switched back to; if it were, stop rather than run on.
    log::error!("a dead thread was resumed");
    crate::arch::x86_64::halt_forever()
}

/// Blocks the caller for `ns` nanoseconds.
pub fn sleep(ns: u64) {
    with_tasks(|t| {
        let current = t.current;
        if let Some(th) = t.threads.get_mut(&current) {
            th.state = State::Blocked;
            th.wake_at = Some(crate::time::since_boot_ns().saturating_add(ns));
            t.sleepers.push(current);
        }
    });
    schedule();
}

fn child_of(t: &Tasks, caller: Pid, pid: Pid) -> Result<(), Error> {
    match t.processes.get(&pid) {
        Some(p) if p.parent == caller => Ok(()),
        _ => Err(Error::NoSuchProcess),
    }
}

/// Waits for the caller's child `pid` to end, reaps it and returns how it ended.
pub fn wait(caller: Pid, pid: Pid) -> Result<ExitStatus, Error> {
    loop {
        let done = with_tasks(|t| {
            child_of(t, caller, pid)?;
            if let Some(exit) = t.processes.get(&pid).and_then(|p| p.exit) {
                // The child is off the CPU (the caller is on it), so its memory can go now; its
                // kernel stacks wait for the reaper.
                let space = t.processes.get_mut(&pid).and_then(|p| p.space.take());
                t.remove_process(pid);
                drop(space);
                return Ok::<_, Error>(Some(ExitStatus::from_exit(exit)));
            }
            let current = t.current;
            if let Some(th) = t.threads.get_mut(&current) {
                th.state = State::Blocked;
            }
            t.waiters.push(current);
            Ok(None)
        })
        .ok_or(Error::NoSuchProcess)??;
        if let Some(status) = done {
            return Ok(status);
        }
        schedule();
    }
}

/// Ends the caller's child `pid`.
pub fn kill(caller: Pid, pid: Pid) -> Result<(), Error> {
    with_tasks(|t| {
        child_of(t, caller, pid)?;
        t.terminate(pid, Exit::Killed);
        Ok(())
    })
    .ok_or(Error::NoSuchProcess)?
}

/// State of the caller itself or one of its children.
pub fn process_info(caller: Pid, pid: Pid) -> Result<ProcessInfo, Error> {
    with_tasks(|t| {
        if pid != caller {
            child_of(t, caller, pid)?;
        }
        let p = t.processes.get(&pid).ok_or(Error::NoSuchProcess)?;
        let blocked = p.threads.iter().all(|tid| t.threads.get(tid).is_some_and(|th| th.state == State::Blocked));
        Ok(ProcessInfo {
            pid,
            parent: p.parent,
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
        })
    })
    .ok_or(Error::NoSuchProcess)?
}

/// Counts for leak tests and tools.
pub fn stats() -> KernelStats {
    let (free_frames, total_frames) = frames::counts();
    let (processes, threads, objects, caps) = with_tasks(|t| {
        let objects = t.endpoints.len() + t.notifications.len() + t.memories.len();
        (t.processes.len() as u64, t.threads.len() as u64 - 1, objects as u64, t.caps.total() as u64)
    })
    .unwrap_or((0, 0, 0, 0));
    KernelStats {
        free_frames,
        total_frames,
        heap_used: heap::used() as u64,
        processes,
        threads,
        tick_hz: crate::time::TICK_HZ,
        objects,
        caps,
    }
}

fn with_current_process<R>(f: impl FnOnce(&mut Process) -> Result<R, Error>) -> Result<R, Error> {
    with_tasks(|t| {
        let pid = t.threads.get(&t.current).map_or(0, |th| th.pid);
        t.processes.get_mut(&pid).ok_or(Error::NoSuchProcess).and_then(f)
    })
    .ok_or(Error::NoSuchProcess)?
}

/// Maps `pages` zeroed pages into the caller and returns their address.
pub fn mem_map(pages: u64, flags: MapFlags) -> Result<u64, Error> {
    if flags.contains(MapFlags::WRITE | MapFlags::EXEC) {
        return Err(Error::InvalidArgument);
    }
    let access = if flags.contains(MapFlags::EXEC) {
        Access::ReadExecute
    } else if flags.contains(MapFlags::WRITE) {
        Access::ReadWrite
    } else {
        Access::Read
    };
    let bytes = pages.checked_mul(PAGE_SIZE).filter(|&b| b > 0 && b <= 1 << 32).ok_or(Error::InvalidArgument)?;
    with_current_process(|p| {
        let base = p.heap_next;
        let end = base.checked_add(bytes).filter(|&e| e <= HEAP_END).ok_or(Error::NoMemory)?;
        let space = p.space.as_mut().ok_or(Error::NoSuchProcess)?;
        for page in (base..end).step_by(PAGE_SIZE as usize) {
            if let Err(e) = space.map_new(page, access) {
                for undo in (base..page).step_by(PAGE_SIZE as usize) {
                    let _ = space.unmap(undo);
                }
                log::debug!("mem_map: {e:?}");
                return Err(Error::NoMemory);
            }
        }
        p.heap_next = end;
        Ok(base)
    })
}

/// Unmaps pages obtained with [`mem_map`].
pub fn mem_unmap(addr: u64, pages: u64) -> Result<(), Error> {
    let bytes = pages.checked_mul(PAGE_SIZE).ok_or(Error::InvalidArgument)?;
    let end = addr.checked_add(bytes).ok_or(Error::InvalidArgument)?;
    if !addr.is_multiple_of(PAGE_SIZE) || addr < HEAP_START || end > HEAP_END {
        return Err(Error::InvalidArgument);
    }
    let released = with_current_process(|p| {
        // A memory-object mapping is unmapped whole or not at all.
        let object = match p.mappings.iter().position(|&(_, a, n)| a < end && addr < a + n * PAGE_SIZE) {
            Some(i) if p.mappings[i].1 == addr && p.mappings[i].2 == pages => Some(p.mappings.remove(i).0),
            Some(_) => return Err(Error::InvalidArgument),
            None => None,
        };
        let space = p.space.as_mut().ok_or(Error::NoSuchProcess)?;
        for page in (addr..end).step_by(PAGE_SIZE as usize) {
            space.unmap(page).map_err(|_| Error::InvalidArgument)?;
        }
        Ok(object)
    })?;
    if let Some(object) = released {
        with_tasks(|t| {
            if let Some(m) = t.memories.get_mut(&object) {
                m.mappings = m.mappings.saturating_sub(1);
            }
            t.release_memory_if_unused(object);
        });
    }
    Ok(())
}

/// Maps a stack page on first touch. True if `addr` was in the running process's stack range
/// and is now mapped.
pub fn map_on_demand(addr: u64) -> bool {
    let ipc = vessel_abi::IPC_BUFFER..vessel_abi::IPC_BUFFER + vessel_abi::IPC_BUFFER_SIZE;
    if !(STACK_TOP - STACK_SIZE..STACK_TOP).contains(&addr) && !ipc.contains(&addr) {
        return false;
    }
    with_current_process(|p| {
        let space = p.space.as_mut().ok_or(Error::NoSuchProcess)?;
        space.map_new(addr & !(PAGE_SIZE - 1), Access::ReadWrite).map_err(|_| Error::NoMemory)
    })
    .is_ok()
}

fn fault_kind(frame: &TrapFrame, cr2: u64) -> FaultKind {
    match frame.vector {
        14 if (STACK_GUARD..STACK_GUARD + PAGE_SIZE).contains(&cr2) => FaultKind::StackOverflow,
        14 if frame.error_code & 0x10 != 0 => FaultKind::ExecuteViolation,
        14 => FaultKind::PageFault,
        13 => FaultKind::GeneralProtection,
        6 => FaultKind::InvalidOpcode,
        0 => FaultKind::DivideError,
        3 => FaultKind::Breakpoint,
        16 | 19 => FaultKind::FloatingPoint,
        _ => FaultKind::Other,
    }
}

/// A CPU exception in user mode: report it, end the process, run something else.
pub fn user_fault(frame: &TrapFrame, cr2: u64) -> ! {
    let kind = fault_kind(frame, cr2);
    let address = if frame.vector == 14 { cr2 } else { 0 };
    let (pid, name) = with_tasks(|t| {
        let pid = t.threads.get(&t.current).map_or(0, |th| th.pid);
        (pid, t.processes.get(&pid).map(|p| p.name.clone()).unwrap_or_default())
    })
    .unwrap_or_default();
    log::warn!("process {pid} ({name}) killed by {kind:?}: {}", FaultReport { frame, cr2 });
    exit_current(Exit::Fault { kind, address, ip: frame.rip })
}

/// #NM: the running thread used the FPU/SSE while another thread's state was in the registers.
/// Saves that state to its owner, loads the running thread's, and makes it the owner.
pub fn fpu_trap() {
    crate::arch::x86_64::fpu::set_trap_on_use(false);
    with_tasks(|t| {
        let current = t.current;
        if t.fpu_owner == current {
            return;
        }
        let owner = t.fpu_owner;
        if let Some(th) = t.threads.get_mut(&owner).filter(|th| th.state != State::Dead) {
            th.fpu.save();
        }
        if let Some(th) = t.threads.get_mut(&current) {
            th.fpu.restore();
        }
        t.fpu_owner = current;
    });
}
