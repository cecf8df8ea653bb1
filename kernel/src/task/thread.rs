//! Threads: a kernel stack, the saved stack pointer of a switched-out thread, and FPU/SSE state.
//!
//! Invariants: a thread that is not running has its user registers in the trap frame at the top
//! of its kernel stack and its kernel registers saved below `saved_rsp`; its FPU state is in
//! `fpu`, unless it is the FPU owner (lazy switching: the state then stays in the registers). A dead thread is never switched to
//! again and is freed only when it is not running. A thread's `fs` base is its thread page
//! (`vessel_abi::thread_page_of(slot)`), loaded by the scheduler.

use alloc::boxed::Box;

use vessel_kcore::report::TrapFrame;

use vessel_abi::Priority;
use vessel_capspace::TableId;
use vessel_container::Index;

use super::wait::IpcWait;
use crate::arch::x86_64::context;
use crate::arch::x86_64::fpu::FpuState;
use crate::arch::x86_64::gdt::{USER_CODE, USER_DATA};
use crate::mem::kstack::KernelStack;

/// Kernel-wide thread id.
pub type Tid = u64;
/// Kernel-wide process id.
pub type Pid = u64;

/// A thread's process, as IPC and capability calls see it.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    /// The process's pid inside its container.
    pub vpid: u64,
    /// Its container.
    pub container: Index,
    /// That container's public id.
    pub container_id: u64,
    /// Its capability table.
    pub table: TableId,
    /// Its scheduling priority.
    pub priority: Priority,
}

impl Default for Owner {
    /// The idle thread's: no process (table 0 is never a valid table id).
    fn default() -> Self {
        Owner { vpid: 0, container: Index::default(), container_id: 0, table: TableId(0), priority: Priority::Low }
    }
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting in a ready queue.
    Ready,
    /// On the CPU.
    Running,
    /// Waiting for an event (child exit, sleep deadline).
    Blocked,
    /// Finished; to be freed.
    Dead,
}

/// A thread. See the module invariants.
pub struct Thread {
    /// Its process (0: the kernel's idle thread).
    pub pid: Pid,
    /// What the IPC and capability paths need of its process, fixed for the process's life
    /// and kept here so each is one lookup: pid in its container, container, and table.
    pub owner: Owner,
    /// Scheduling state.
    pub state: State,
    /// Stack pointer saved by the last switch away from it.
    pub saved_rsp: u64,
    /// Its kernel stack (`None` for the boot/idle thread, which runs on the boot stack).
    pub stack: Option<KernelStack>,
    /// FPU/SSE registers while switched out.
    pub fpu: Box<FpuState>,
    /// When a sleeping thread should wake (nanoseconds since boot).
    pub wake_at: Option<u64>,
    /// What it waits for in IPC.
    pub ipc: IpcWait,
    /// The caller this (server) thread owes a reply.
    pub replying_to: Option<Tid>,
    /// The notification bound to it (`NotificationBind`), which also ends its receives.
    pub bound: Option<u64>,
    /// Its slot in its process: where its IPC buffer and thread page are (see
    /// `vessel_abi::ipc_buffer_of`).
    pub slot: u64,
    /// Frames behind its IPC buffer pages, once mapped (the range can never be unmapped while
    /// the thread lives, so these stay true).
    pub ipc_frames: [Option<u64>; 2],
    /// While blocked in `Wait` or `ThreadWait`: what ends it.
    pub waiting_for: WaitFor,
    /// Its process's address space as of its last switch in: the level-4 table and the kernel
    /// slot generation it was synced to (the scheduler's shortcut; `None`: look it up).
    pub space: Option<(u64, u64)>,
    /// Its successor on the one queue it may be on (`queue::END`: it is the last; `queue::NONE`:
    /// it is on none).
    pub queue_next: Tid,
    /// Its predecessor on that queue, kept only while it is not the first (`queue` module).
    pub queue_prev: Tid,
    /// While queued as a caller on an endpoint: the badge of the capability it called with.
    pub send_badge: u64,
}

/// What a thread blocked in `Wait` or `ThreadWait` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitFor {
    /// Nothing.
    #[default]
    Nothing,
    /// The end of a child of this process.
    Child(Pid),
    /// The end of this thread.
    Thread(Tid),
}

impl Thread {
    /// The boot thread, which becomes the idle thread.
    pub fn idle() -> Self {
        Thread {
            pid: 0,
            owner: Owner::default(),
            state: State::Running,
            saved_rsp: 0,
            stack: None,
            fpu: Box::new(FpuState::new()),
            wake_at: None,
            ipc: IpcWait::None,
            replying_to: None,
            bound: None,
            slot: 0,
            ipc_frames: [None; 2],
            waiting_for: WaitFor::Nothing,
            space: None,
            queue_next: super::queue::NONE,
            queue_prev: super::queue::NONE,
            send_badge: 0,
        }
    }

    /// A thread in slot `slot` of process `pid` that will enter user mode at `entry` with stack
    /// `user_rsp` and `rdi = arg`.
    pub fn new_user(pid: Pid, owner: Owner, slot: u64, entry: u64, user_rsp: u64, arg: u64) -> Option<Self> {
        let mut stack = KernelStack::new()?;
        let frame = TrapFrame {
            rdi: arg,
            rip: entry,
            cs: USER_CODE,
            rflags: 0x202, // IF set, reserved bit 1
            rsp: user_rsp,
            ss: USER_DATA,
            ..TrapFrame::default()
        };
        let saved_rsp = context::prepare_first_switch(&mut stack, frame);
        Some(Thread {
            pid,
            owner,
            state: State::Ready,
            saved_rsp,
            stack: Some(stack),
            fpu: Box::new(FpuState::new()),
            wake_at: None,
            ipc: IpcWait::None,
            replying_to: None,
            bound: None,
            slot,
            ipc_frames: [None; 2],
            waiting_for: WaitFor::Nothing,
            space: None,
            queue_next: super::queue::NONE,
            queue_prev: super::queue::NONE,
            send_badge: 0,
        })
    }

    /// Top of its kernel stack (0 for the idle thread, which never enters user mode).
    pub fn kernel_stack_top(&self) -> u64 {
        self.stack.as_ref().map_or(0, KernelStack::top)
    }
}
