//! Processes, threads and the scheduler.
//!
//! One global table (`TASKS`) holds every process and thread. It is only touched with interrupts
//! off (system calls run with IF clear, the timer handler too), on Vessel's single CPU, so its
//! lock is never contended; it is held across every context switch and released by the thread
//! switched to (`switch::finish_switch`). The lock is a ticket lock (`vessel_ticket`), first come
//! first served, so that when more CPUs share the table none of them can be starved of it.
//!
//! What belongs to one CPU is not in the table but in its per-CPU block
//! (`arch::x86_64::percpu`, imported as `cpu`): the thread running on it, whether it should
//! reschedule, the ticks left of the slice and the FPU's owner. The end of every system call
//! reads `need_resched` there without the table lock. (Waking a thread on another CPU will need
//! an interrupt to that CPU; with one CPU the waker is always the CPU itself.)
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

mod anon;
mod bindings;
mod caps;
mod container;
mod endpoint;
mod events;
mod fastpath;
mod frame;
mod hardware;
mod loader;
mod memory;
mod msi;
mod notification;
mod objects;
mod platform;
mod process;
mod queue;
#[cfg(feature = "ktest")]
pub use queue::tests::TESTS as QUEUE_TESTS;
mod reaper;
mod reply;
mod sched;
mod switch;
mod thread;
mod threads;
mod transfer;
mod wait;
mod window;

pub use anon::{map_on_demand, mem_map, mem_unmap, user_fault};
pub use caps::{cap_delete, cap_duplicate, cap_inspect, cap_revoke, process_cap, process_kill};
pub use container::{container_create, container_destroy, container_info, container_lookup, service_register};
pub use endpoint::{call, endpoint_create, recv, reply, reply_recv};
pub use events::{notification_bind, process_notify};
pub use fastpath::{fast_call, fast_reply_recv};
pub use hardware::{irq_ack, irq_bind, mmio_map, on_irq, port_read, port_write};
pub use loader::{MAX_STRINGS, Strings};
pub use memory::{dma_address, memory_create, memory_lend, memory_map};
pub use msi::{msi_message, on_msi};
pub use notification::{notification_create, signal, wait_notification};
pub use platform::{
    LogReader, dma_create, dma_quiesce, framebuffer_take, log_bind, log_read, msi_allocate, platform_ecam,
    platform_irq, platform_mmio, platform_ports,
};
pub use process::{bootfs_for_root, kill, process_info, reap_all, require_root, spawn, spawn_image, stats, wait};
pub use reply::{reply_send, reply_take};
#[cfg_attr(feature = "ktest", allow(unused_imports))] // the test kernel starts no processes
pub use sched::idle;
pub use sched::{exit_current, fpu_trap, on_tick, preempt_if_needed, sleep, yield_now};
pub use switch::unlock_after_first_switch;
pub use thread::{Pid, Tid};
pub use threads::{thread_create, thread_detach, thread_exit, thread_kill, thread_wait};
pub use window::window_write;

use crate::arch::x86_64::percpu as cpu;
use alloc::vec::Vec;

use vessel_abi::{Error, Exit, Priority};
use vessel_capspace::{CapSpace, TableId};
use vessel_container::Resource;
use vessel_indexed::Indexed;
use vessel_ticket::TicketLock;

use objects::ObjectRef;
use process::Slot;
pub(crate) use reaper::REAP_WORK;
use reaper::Reaper;
use thread::{State, Thread, WaitFor};
use wait::IpcWait;

/// Timer ticks a thread may run before others of its priority get the CPU.
pub const SLICE_TICKS: u64 = 2;
/// The idle thread's id.
const IDLE: Tid = 0;

/// The task table: what the kernel knows of threads, processes, objects and containers, behind
/// one lock. Each part is a sub-structure with private fields that states and keeps its own
/// invariants; the `impl Tasks` blocks in the modules tie them together (ending a process
/// touches all of them).
struct Tasks {
    /// Process records and the pid and tid counter (`process`).
    processes: process::Processes,
    /// Thread records, by tid (`thread`; the table is `vessel_indexed`, whose two-record borrow
    /// the fast path uses).
    threads: Indexed<Thread>,
    /// Run queues, sleepers and waiters (`sched`).
    sched: sched::Scheduler,
    /// Every process's capability table and the derivation tree (`vessel_capspace`); which
    /// container each table charges is in `containers`.
    caps: CapSpace<ObjectRef>,
    /// Endpoints, notifications, memory objects and kept replies (`objects`).
    objects: objects::Objects,
    /// Where interrupt lines, MSI vectors and the log's "printed" signal are delivered.
    bindings: bindings::Bindings,
    /// Frames of released DMA memory, kept from reuse until `DmaQuiesce`.
    dma_quarantine: memory::DmaQuarantine,
    /// The container tree, its quotas, members, destroys under way, and the container each
    /// capability table charges (`container`).
    containers: container::Containers,
    /// What the reaper still has to free (`reaper`).
    reaper: Reaper,
    /// Messages delivered by the general IPC path (`Tasks::transfer`), for tests and profiling.
    general_messages: u64,
    /// Receives and notification waits with a deadline (`KernelStats::timed_waits`).
    timed_waits: u64,
}

static TASKS: TicketLock<Option<Tasks>> = TicketLock::new(None);
/// The boot file system (validated once at boot), lent to init.
static BOOTFS: spin::Once<BootFs> = spin::Once::new();

/// The boot file system's bytes and its files by path, so that a spawn finds its program by a
/// binary search rather than by parsing every archive header before it (about 400 instructions
/// an entry).
struct BootFs {
    bytes: &'static [u8],
    /// (normalised path, contents) of every regular file, sorted by path; the first entry of a
    /// path wins, as in `Archive::get`.
    files: Vec<(&'static str, &'static [u8])>,
}

impl BootFs {
    /// `bytes` and the files of `archive`, the archive they hold (validated, or `None`).
    fn new(bytes: &'static [u8], archive: Option<vessel_bootfs::Archive<'static>>) -> Self {
        let mut files: Vec<(&'static str, &'static [u8])> =
            archive.iter().flat_map(|a| a.entries()).filter(|e| e.is_file()).map(|e| (e.path, e.data)).collect();
        // Stable: among entries of one path, the first stays first, and `dedup` keeps it.
        files.sort_by(|a, b| a.0.cmp(b.0));
        files.dedup_by(|later, first| later.0 == first.0);
        BootFs { bytes, files }
    }

    /// The contents of the regular file `path` (normalised as the archive's paths are).
    fn file(&self, path: &str) -> Option<&'static [u8]> {
        let path = vessel_bootfs::normalise(path);
        self.files.binary_search_by(|(p, _)| (*p).cmp(path)).ok().map(|i| self.files[i].1)
    }
}

fn with_tasks<R>(f: impl FnOnce(&mut Tasks) -> R) -> Option<R> {
    TASKS.lock().as_mut().map(f)
}

impl Tasks {
    fn priority_of(&self, tid: Tid) -> Option<Priority> {
        if tid == IDLE {
            return None;
        }
        self.threads.get(&tid).map(|th| th.owner.priority)
    }

    /// Makes `tid` ready, last in its priority's run queue. Asks for a reschedule if it outranks
    /// the running one. The caller knows it is on no queue (a thread is on one at most).
    fn make_ready(&mut self, tid: Tid) {
        let Some(priority) = self.mark_ready(tid) else { return };
        self.sched.push(&mut self.threads, priority, tid, false);
        if self.priority_of(cpu::current()).is_none_or(|running| priority > running) {
            cpu::set_need_resched(true);
        }
    }

    /// Like `make_ready`, but at the head of its queue: it runs next (IPC, when a direct switch
    /// is not allowed).
    fn make_ready_front(&mut self, tid: Tid) {
        let Some(priority) = self.mark_ready(tid) else { return };
        self.sched.push(&mut self.threads, priority, tid, true);
        cpu::set_need_resched(true);
    }

    /// Marks `tid` ready and returns its priority, unless it is the idle thread or has no record.
    #[inline(always)]
    fn mark_ready(&mut self, tid: Tid) -> Option<Priority> {
        let thread = self.threads.get_mut(&tid).filter(|_| tid != IDLE)?;
        thread.state = State::Ready;
        thread.wake_at = None;
        Some(thread.owner.priority)
    }

    /// Whether thread `tid` is blocked waiting in `wait` (e.g. for the reply of a given server
    /// thread or kept reply): the check before anything answers it.
    #[inline(always)]
    fn blocked_in(&self, tid: Tid, wait: IpcWait) -> bool {
        self.threads.get(&tid).is_some_and(|th| th.ipc == wait && th.state == State::Blocked)
    }

    /// Blocks the running thread in IPC (the caller then calls `schedule`).
    #[inline(always)]
    fn block_current(&mut self, wait: IpcWait) {
        let current = cpu::current();
        if let Some(th) = self.threads.get_mut(&current) {
            th.state = State::Blocked;
            th.ipc = wait;
        }
    }

    /// Adds a wake-up deadline to a blocked thread.
    fn sleep_until(&mut self, tid: Tid, deadline: u64) {
        if let Some(th) = self.threads.get_mut(&tid) {
            th.wake_at = Some(deadline);
            self.sched.add_sleeper(tid);
        }
    }

    /// Drops `tid`'s wake-up deadline, if it has one.
    #[inline(always)]
    fn unsleep(&mut self, tid: Tid) {
        self.sched.remove_sleeper(tid);
    }

    fn pop_ready(&mut self) -> Option<Tid> {
        self.sched.pop(&mut self.threads)
    }

    /// Ends a process and all its descendants (parents first, with an explicit work list: a
    /// long chain of processes must not overflow the kernel stack). Safe on an ended one.
    fn terminate(&mut self, pid: Pid, exit: Exit) {
        let mut work = alloc::vec![(pid, exit)];
        while let Some((pid, exit)) = work.pop() {
            for child in self.end_one(pid, exit) {
                work.push((child, Exit::Killed));
                // An already-ended child (a zombie) is now an orphan: the reaper must look at it.
                self.reaper.push_ended(child);
            }
        }
    }

    /// Ends one process: its threads, IPC, capabilities, mappings and quota charges (all but
    /// the process count, which its record holds until it is reaped). Returns its children.
    fn end_one(&mut self, pid: Pid, exit: Exit) -> Vec<Pid> {
        let Some(process) = self.processes.get_mut(pid) else { return Vec::new() };
        if process.exit.is_some() {
            return Vec::new();
        }
        process.exit = Some(exit);
        let (container, pages) = (process.container, core::mem::take(&mut process.pages));
        let threads = core::mem::take(&mut process.threads);
        let thread_count = threads.len() as u64;
        let children = process.children.clone();
        let parent = process.parent;
        let table = process.table;
        let mappings = core::mem::take(&mut process.mappings);
        let exit_events = core::mem::take(&mut process.exit_events);
        for slot in &mut process.slots {
            if let Slot::Live(tid) = *slot {
                *slot = Slot::Ended(tid, exit);
            }
        }
        self.reaper.push_ended(pid);
        for &tid in &threads {
            self.cancel_ipc(tid);
        }
        self.release_table(table);
        for (object, _, _) in mappings {
            if let Some(m) = self.objects.memory_mut(object) {
                m.mappings = m.mappings.saturating_sub(1);
            }
            self.release_memory_if_unused(object);
        }
        for &tid in &threads {
            self.retire_thread(tid);
        }
        self.containers.uncharge(container, Resource::Pages, pages);
        self.containers.uncharge(container, Resource::Threads, thread_count);
        self.containers.remove_member(container, pid);
        // Wake the parent's threads waiting for a child, and whoever waits for one of its
        // threads (in any process holding a capability to it); they look again.
        self.wake_waiters(|w| w == WaitFor::Child(parent) || matches!(w, WaitFor::Thread(t) if threads.contains(&t)));
        self.fire_exit_events(&exit_events);
        if pid == 1 {
            log::warn!("init (pid 1) ended: {exit:?}");
        }
        children
    }

    /// Marks a thread dead (its IPC already cancelled): out of every queue, never run again,
    /// freed by the reaper once it is off the CPU.
    fn retire_thread(&mut self, tid: Tid) {
        self.unbind(tid);
        // While its state still says whether it is on a run queue.
        self.sched.remove(&mut self.threads, tid);
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.state = State::Dead;
            thread.ipc_frames = [None; 2];
        }
        if cpu::fpu_owner() == tid {
            // Its registers are garbage now; nobody needs them saved.
            cpu::set_fpu_owner(IDLE);
        }
        self.unsleep(tid);
        self.sched.remove_waiter(tid);
        self.reaper.push_dead(tid);
    }

    /// The slot of thread `tid` in process `pid`, live or ended.
    fn slot_of(&self, pid: Pid, tid: Tid) -> Result<usize, Error> {
        let process = self.processes.get(pid).ok_or(Error::NoSuchProcess)?;
        process
            .slots
            .iter()
            .position(|s| matches!(*s, Slot::Live(x) | Slot::Ended(x, _) if x == tid))
            .ok_or(Error::NotFound) // waited for (or detached and ended) already
    }

    /// Makes the threads blocked in `Wait` or `ThreadWait` for something `ended` says has
    /// ended look again.
    fn wake_waiters(&mut self, ended: impl Fn(WaitFor) -> bool) {
        for tid in self.sched.take_waiters(&self.threads, ended) {
            if let Some(th) = self.threads.get_mut(&tid) {
                th.waiting_for = WaitFor::Nothing;
            }
            self.make_ready(tid);
        }
    }

    /// Drops an ended process's record. Its container counted it until now (a zombie is a
    /// process slot, so spawning without ever waiting cannot escape the process quota).
    fn remove_process(&mut self, pid: Pid) {
        let Some(process) = self.processes.remove(pid) else { return };
        if let Some(parent) = self.processes.get_mut(process.parent) {
            parent.children.retain(|&c| c != pid);
        }
        self.containers.uncharge(process.container, Resource::Processes, 1);
        self.containers.remove_dead();
    }
}

/// Sets up the task tables with the running boot thread as the idle thread. `bootfs` is the
/// boot file system's bytes, `archive` the archive they hold as the boot validated it (`None`:
/// none, no programs start).
#[cfg_attr(feature = "ktest", allow(dead_code))] // the test kernel starts no processes
pub fn init(bootfs: &'static [u8], archive: Option<vessel_bootfs::Archive<'static>>) {
    BOOTFS.call_once(|| BootFs::new(bootfs, archive));
    let seed = core::array::from_fn(|_| crate::entropy::random_u64());
    let mut threads = Indexed::new();
    threads.insert(IDLE, Thread::idle());
    // This CPU runs the idle thread, which owns no FPU state, with a fresh slice.
    cpu::set_current(IDLE);
    cpu::set_fpu_owner(IDLE);
    cpu::set_slice_left(SLICE_TICKS);
    cpu::set_need_resched(false);
    *TASKS.lock() = Some(Tasks {
        processes: process::Processes::new(),
        threads,
        sched: sched::Scheduler::new(),
        caps: CapSpace::new(),
        objects: objects::Objects::new(),
        bindings: bindings::Bindings::new(),
        dma_quarantine: memory::DmaQuarantine::new(),
        containers: container::Containers::new(vessel_container::IdGenerator::new(seed)),
        reaper: Reaper::new(),
        general_messages: 0,
        timed_waits: 0,
    });
}

/// The running process's pid inside its container (what user space calls its pid).
pub fn current_vpid() -> u64 {
    with_tasks(|t| t.threads.get(&cpu::current()).map_or(0, |th| th.owner.vpid)).unwrap_or(0)
}

/// The running process's kernel id (0 for the kernel itself).
pub fn current_pid() -> Pid {
    with_tasks(|t| t.threads.get(&cpu::current()).map_or(0, |th| th.pid)).unwrap_or(0)
}
