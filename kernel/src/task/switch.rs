//! The scheduler's side of a context switch: making `next` the running thread (FPU trap, kernel
//! stack, `fs`, address space) under the table lock, and the switch itself once the lock is
//! dropped. The register and stack work is `arch::x86_64::context`.
//!
//! Invariant: a [`Switch`] is made only by [`enter`], from the records of two live threads under
//! the table lock, and done by [`finish_switch`] with the lock still held, handed over to the
//! thread switched to, which releases it; the record its `save`
//! points into is freed only by `reap`, after its thread is off the CPU. This module and the
//! fast path reach thread records through raw pointers (two records of one table at once, with
//! the rest of the table in use); see each `SAFETY` line.

pub use crate::arch::x86_64::context::Switch;

use super::sched::reap;
use super::thread::{State, Thread, Tid};
use super::{IDLE, TASKS, Tasks};
use crate::arch::x86_64::percpu as cpu;
use crate::arch::x86_64::{context, gdt};
use vessel_ticket::TicketGuard;

/// Switches stacks as `prepare_switch` arranged, holding the table lock (`guard`) across the
/// switch: the thread switched to releases it (here, where it resumes, or in
/// [`unlock_after_first_switch`] if it is new), so no other CPU can take the table between the
/// decision and the switch and run the thread being left while it is still on its stack. Back
/// on this thread, frees what died while it was away. With no switch arranged the guard just
/// drops.
#[inline(always)]
pub(super) fn finish_switch(guard: TicketGuard<'static, Option<Tasks>>, pair: Option<Switch>) {
    let Some(arranged) = pair else { return };
    TicketGuard::hand_over(guard);
    // SAFETY: interrupts are off; `save` points into a thread record that is freed only by `reap`
    // after it is off the CPU, i.e. not before this switch completes; `load` was saved by a
    // switch or prepared by `Thread::new_user`; `root` is the table of `next`'s process, which
    // is freed only once all its threads are dead and off the CPU, with the kernel half `enter`
    // checked.
    unsafe { context::switch_to(arranged) };
    // SAFETY: whoever switched to this thread handed the table lock over (above, or the same
    // in another thread) and uses it no more; this releases it once.
    unsafe { TASKS.unlock_handed_over() };
    reap();
}

/// A new thread's first code: the thread that switched to it handed the table lock over
/// (`finish_switch`); it is released here, before the trap return path enters user mode
/// (`arch::x86_64::context` points the first switch here).
pub extern "C" fn unlock_after_first_switch() {
    // SAFETY: as in `finish_switch`: the switching thread handed the lock over.
    unsafe { TASKS.unlock_handed_over() };
}

/// Everything a switch from `current` to `next` needs before the switch itself: FPU trap,
/// kernel stack, `fs`, and the address space to load; `next` becomes the running thread.
/// Returns the switch (`None`, changing nothing, if either thread has no record).
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
    crate::arch::x86_64::fpu::set_trap_on_use(cpu::fpu_owner() != next);
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
        context::set_fs_base(vessel_abi::thread_page_of(slot));
    }
    cpu::set_current(next);
    Switch { save, load, root }
}

/// Activates the address space of `next`'s process (syncing its kernel half if a kernel slot
/// was claimed since) and remembers it in the thread for the next switch.
#[cold]
#[inline(never)]
fn activate_space(t: &mut Tasks, next: Tid) {
    let pid = t.threads.get(&next).map_or(0, |th| th.pid);
    let space = match t.processes.get_mut(pid).and_then(|p| p.space.as_mut()) {
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
