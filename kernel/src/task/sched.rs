//! The scheduler: picking the next thread, switching to it (address space, kernel stack, lazy
//! FPU), the idle loop, timer ticks, sleeping and reaping what died.

use super::switch::Switch;
use super::*;

/// Switches to the best ready thread, if that is not the running one. Interrupts must be off.
#[unsafe(link_section = ".text.hot.sched")]
pub fn schedule() {
    reap();
    let pair = {
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
        prepare_switch(t, current, next)
    };
    finish_switch(pair);
}

/// Switches stacks as `prepare_switch` arranged (with the table lock released), then, back on
/// this thread, frees what died while it was away.
#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
pub(super) fn finish_switch(pair: Option<Switch>) {
    let Some(arranged) = pair else { return };
    // SAFETY: interrupts are off; `save` points into a thread record that is freed only by `reap`
    // after it is off the CPU, i.e. not before this switch completes; `load` was saved by a
    // switch or prepared by `Thread::new_user`; `root` is the table of `next`'s process, which
    // is freed only once all its threads are dead and off the CPU, with the kernel half `enter`
    // checked.
    unsafe { switch::switch_to(arranged) };
    reap();
}

/// The IPC direct switch: the running thread has just blocked in IPC and `next`, woken by it
/// and in no run queue, runs at once, with no pass through the run queues. Only when nothing
/// ready outranks `next` ([`Tasks::may_switch_directly`]), so priorities hold as with `schedule`.
#[unsafe(link_section = ".text.hot.ipc")]
pub(super) fn direct_switch(next: Tid) {
    let pair = {
        let mut guard = TASKS.lock();
        let Some(t) = guard.as_mut() else { return };
        t.need_resched = false;
        // The woken thread runs on what is left of the slice (no fresh one): two threads
        // trading messages share one slice, and when it ends the tick's pass lets the other
        // ready threads of their priority run.
        let current = t.current;
        prepare_switch(t, current, next)
    };
    finish_switch(pair);
}

impl Tasks {
    /// True if a thread of `priority` may run next without a pass through the run queues: no
    /// ready thread has a higher priority (the running one is blocked, so it does not count).
    #[inline(always)]
    pub(super) fn may_switch_directly(&self, priority: Priority) -> bool {
        may_switch_directly(&self.ready, priority)
    }
}

/// [`Tasks::may_switch_directly`] on the run queues alone (for code holding other fields).
#[inline(always)]
pub(super) fn may_switch_directly(ready: &[VecDeque<Tid>], priority: Priority) -> bool {
    ready[priority as usize + 1..].iter().all(VecDeque::is_empty)
}

/// Everything a switch from `current` to `next` needs before the switch itself: FPU trap,
/// kernel stack, `fs`, and the address space to load; `next` becomes the running thread.
/// Returns the switch (`None`, changing nothing, if either thread has no record).
#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
pub(super) fn prepare_switch(t: &mut Tasks, current: Tid, next: Tid) -> Option<Switch> {
    // One lookup of each thread: the records stay put while the table lock is held and no
    // thread is added or removed.
    let save = &raw mut t.threads.get_mut(&current)?.saved_rsp;
    let th = t.threads.get_ptr(&next)?;
    // SAFETY: `th` is `next`'s record, just looked up, and no reference to it is in use.
    Some(unsafe { enter(t, next, th, save) })
}

/// The part of `prepare_switch` that follows the lookups, for callers that hold the records
/// already (the IPC fast path). Returns the switch, saving the running thread's stack pointer
/// at `save`.
///
/// # Safety
/// `th` must point at the record of `next` in `t.threads`, with no other reference to it in
/// use.
#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
pub(super) unsafe fn enter(t: &mut Tasks, next: Tid, th: core::ptr::NonNull<Thread>, save: *mut u64) -> Switch {
    // SAFETY: the caller's promise; the reference is not used after `activate_space`, which
    // reaches the record through the table.
    let th = unsafe { &mut *th.as_ptr() };
    th.state = State::Running;
    th.wake_at = None;
    let (stack_top, slot, load, space) = (th.kernel_stack_top(), th.slot, th.saved_rsp, th.space);
    // Lazy FPU switching: the registers stay with their owner; the next thread traps (#NM) on
    // its first FPU/SSE instruction unless it is the owner already.
    crate::arch::x86_64::fpu::set_trap_on_use(t.fpu_owner != next);
    // The address space the thread last ran in, if the kernel half has not changed since: no
    // lookup of its process, and `switch_to` loads it. Otherwise it is activated here.
    let root = match space {
        Some((root, generation)) if generation == crate::mem::paging::slot_generation() => {
            crate::mem::address_space::root_to_load(root)
        }
        _ => {
            activate_space(t, next);
            0
        }
    };
    gdt::set_kernel_stack(stack_top);
    if next != IDLE {
        set_fs_base(vessel_abi::thread_page_of(slot));
    }
    t.current = next;
    Switch { save, load, root }
}

/// Activates the address space of `next`'s process (syncing its kernel half if a kernel slot
/// was claimed since) and remembers it in the thread for the next switch.
#[cold]
#[inline(never)]
fn activate_space(t: &mut Tasks, next: Tid) {
    let pid = t.threads.get(&next).map_or(0, |th| th.pid);
    let space = match t.processes.get_mut(&pid).and_then(|p| p.space.as_mut()) {
        Some(space) => {
            space.activate();
            Some((space.root(), crate::mem::paging::slot_generation()))
        }
        None => {
            crate::mem::address_space::load_cr3(crate::mem::paging::kernel_pml4());
            None
        }
    };
    if let Some(th) = t.threads.get_mut(&next) {
        th.space = space;
    }
}

/// Points `fs` at a thread's thread page, where its runtime finds its IPC buffer. Checked on
/// every switch: user code can change the base itself (`mov fs, <selector>` is allowed at
/// CPL 3), so no remembered value can be trusted to still be in the register. Written only if
/// it differs: threads in the same slot of different processes share the address, and the
/// write (unlike the read) ends the emulator's translation block, one more lookup per switch.
#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
fn set_fs_base(base: u64) {
    use x86_64::registers::model_specific::FsBase;
    // SAFETY: reading FS.base has no side effects.
    if unsafe { FsBase::MSR.read() } != base {
        // Thread pages are canonical user addresses: no check needed.
        FsBase::write(x86_64::VirtAddr::new_truncate(base));
    }
}

#[unsafe(link_section = ".text.hot.ipc")]
#[inline(always)]
pub(super) fn reap() {
    if !REAP_PENDING.load(core::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let spaces = with_tasks(Tasks::reap).unwrap_or_default();
    // Dropping an address space frees frames; done outside the table lock.
    drop(spaces);
}

/// Runs the idle loop on the boot thread: schedule whatever is ready, else halt.
#[cfg_attr(feature = "ktest", allow(dead_code))] // the test kernel starts no processes
pub fn idle() -> ! {
    crate::arch::x86_64::disable_interrupts();
    loop {
        schedule();
        crate::arch::x86_64::wait_for_interrupt();
    }
}

/// Timer tick: CPU accounting, sleepers, time slices. Called from the interrupt handler, which
/// says whether it may switch threads here (`preempt`): it does for user code, not for the
/// kernel's own preemption points and idle halt, whose interrupts are let in only to be handled
/// (the idle loop schedules next anyway; long kernel work goes on, and what the tick made ready
/// runs when that work's call returns).
pub fn on_tick(preempt: bool) {
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
    if resched && preempt {
        schedule();
    }
}

/// Reschedules if a wake-up asked for it (end of a system call).
#[unsafe(link_section = ".text.hot.sched")]
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

pub(super) fn unreachable_after_exit() -> ! {
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
