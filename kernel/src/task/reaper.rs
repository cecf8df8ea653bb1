//! The reaper: what died and is not freed yet, and the bounded passes that free it.
//!
//! Threads and processes end at once (`Tasks::terminate`), but what they leave (kernel stacks,
//! address spaces, zombie records nobody can wait for) is freed here, after each context switch
//! (`sched::reap`), in the idle loop, and to completion before a call that needs memory
//! (`process::reap_all`). Each pass does one kind of bounded work, since passes run with
//! interrupts off.
//!
//! Invariant: [`REAP_PENDING`] is set whenever a list here is non-empty or a dying container
//! still has members: every way onto a list ([`Reaper::push_dead`], [`Reaper::push_ended`],
//! [`Reaper::retire`]) sets it, and only a pass clears it (setting it again for what it leaves).
//! The fields are private to this module: nothing else adds to or takes from the lists.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use super::thread::{Pid, Tid};
use super::{Tasks, container};
use crate::arch::x86_64::percpu as cpu;
use crate::mem::address_space::AddressSpace;

/// Dead threads one reaper pass frees (each its kernel stack): reaping is interrupts-off work,
/// so it goes in bounded passes, one after each context switch until nothing is left.
const REAP_THREADS: usize = 1;
/// Ended processes one reaper pass looks at (each a few map lookups, and its address space
/// queued for `retiring`).
const REAP_ENDED: usize = 8;
/// Work one reaper pass spends freeing the address spaces of ended processes (`retiring`; `Wait`
/// too, for the zombie it reaps), in `AddressSpace::release_some` units: 64 frames freed, or
/// eight tables looked through.
pub(crate) const REAP_WORK: usize = 32;

/// Set whenever the reaper has work (see the module invariant), cleared by a pass that finds
/// none: lets the `reap` after every context switch skip the table lock when there is
/// nothing to free (the common case). Written under the table lock; read without it, which is
/// enough on one CPU with interrupts off.
static REAP_PENDING: AtomicBool = AtomicBool::new(false);
/// Whether the reaper has work (read without the table lock).
#[inline(always)]
pub(super) fn pending() -> bool {
    REAP_PENDING.load(Ordering::Relaxed)
}

/// Notes work the reaper finds without a list: a dying container's members.
pub(super) fn note_work() {
    REAP_PENDING.store(true, Ordering::Relaxed);
}

/// What the reaper still has to free; see the module invariant.
pub(super) struct Reaper {
    /// Dead threads not yet freed.
    dead: Vec<Tid>,
    /// Ended processes whose memory or record is still to be freed.
    ended: Vec<Pid>,
    /// Address spaces of ended processes being freed, a bounded amount per pass.
    retiring: Vec<AddressSpace>,
}

impl Reaper {
    /// Nothing to free.
    pub(super) const fn new() -> Self {
        Reaper { dead: Vec::new(), ended: Vec::new(), retiring: Vec::new() }
    }

    /// Whether every list is empty.
    pub(super) fn is_empty(&self) -> bool {
        self.dead.is_empty() && self.ended.is_empty() && self.retiring.is_empty()
    }

    /// Puts a dead thread on the reaper's list (the only way onto it: see `REAP_PENDING`).
    pub(super) fn push_dead(&mut self, tid: Tid) {
        self.dead.push(tid);
        REAP_PENDING.store(true, Ordering::Relaxed);
    }

    /// Puts an ended process on the reaper's list (the only way onto it: see `REAP_PENDING`).
    pub(super) fn push_ended(&mut self, pid: Pid) {
        self.ended.push(pid);
        REAP_PENDING.store(true, Ordering::Relaxed);
    }

    /// Takes up to [`REAP_THREADS`] dead threads off the list, the last ones: the rest stay
    /// where they are (taking the first ones moved every other entry, a thousand after a
    /// container's destroy, with interrupts off).
    fn take_dead(&mut self) -> Vec<Tid> {
        let batch = self.dead.split_off(self.dead.len().saturating_sub(REAP_THREADS));
        if !self.dead.is_empty() {
            REAP_PENDING.store(true, Ordering::Relaxed);
        }
        batch
    }

    /// Takes up to [`REAP_ENDED`] ended processes off the list, as [`Reaper::take_dead`] does.
    fn take_ended(&mut self) -> Vec<Pid> {
        let batch = self.ended.split_off(self.ended.len().saturating_sub(REAP_ENDED));
        if !self.ended.is_empty() {
            REAP_PENDING.store(true, Ordering::Relaxed);
        }
        batch
    }

    /// Queues an ended process's address space to be freed in bounded passes.
    pub(super) fn retire(&mut self, space: AddressSpace) {
        self.retiring.push(space);
        REAP_PENDING.store(true, Ordering::Relaxed);
    }
}

impl Tasks {
    /// Frees dead threads that are off the CPU, address spaces of ended processes, and zombies
    /// nobody can wait for any more.
    pub(super) fn reap(&mut self) -> Vec<AddressSpace> {
        // The common case (every context switch): nothing to do, and nothing touched.
        if self.reaper.is_empty() && !self.containers.destroying() {
            // Nothing left: no pass is pending any more (`reap_all` waits for this).
            REAP_PENDING.store(false, Ordering::Relaxed);
            return Vec::new();
        }
        self.reap_slow()
    }

    /// The work of `reap` when something did die; out of line, so the switch path stays short.
    /// One kind of work per pass, the first there is, in bounded amounts (a pass runs with
    /// interrupts off): a member of a dying container ends, or a few dead threads are freed, or
    /// a few ended processes are looked at, or one page table of an ended process's address
    /// space is freed. Whatever is left sets `REAP_PENDING` for the next pass.
    #[cold]
    #[inline(never)]
    fn reap_slow(&mut self) -> Vec<AddressSpace> {
        // Set again below if something has to wait for a later pass.
        REAP_PENDING.store(false, Ordering::Relaxed);
        if self.containers.destroying() {
            // A destroy whose caller died goes on here, a member at a time.
            let (ended, more) = self.destroy_step(container::DESTROY_STEP);
            if more {
                REAP_PENDING.store(true, Ordering::Relaxed);
            }
            if ended > 0 {
                return self.more_later();
            }
            self.containers.remove_dead();
        }
        if !self.reaper.dead.is_empty() && self.reap_threads() {
            return self.more_later();
        }
        if !self.reaper.ended.is_empty() && self.reap_processes() {
            return self.more_later();
        }
        let Some(space) = self.reaper.retiring.last_mut() else { return Vec::new() };
        let mut freed = Vec::new();
        if space.release_some(REAP_WORK) {
            // Only its level-4 table is left: dropped outside the lock.
            freed.extend(self.reaper.retiring.pop());
        }
        if !self.reaper.retiring.is_empty() {
            REAP_PENDING.store(true, Ordering::Relaxed);
        }
        freed
    }

    /// Ends a pass early: the next pass does what is left.
    fn more_later(&self) -> Vec<AddressSpace> {
        if !self.reaper.is_empty() {
            REAP_PENDING.store(true, Ordering::Relaxed);
        }
        Vec::new()
    }

    /// Frees up to [`REAP_THREADS`] dead threads that are off the CPU; the rest stay for later
    /// passes. Returns whether it freed any.
    fn reap_threads(&mut self) -> bool {
        let current = cpu::current();
        let dead = self.reaper.take_dead();
        let mut freed = false;
        for tid in dead {
            if tid == current {
                self.reaper.push_dead(tid);
            } else {
                freed |= self.threads.remove(&tid).is_some();
            }
        }
        freed
    }

    /// Looks at up to [`REAP_ENDED`] ended processes: queues their address spaces for freeing
    /// (`retiring`), drops the records nobody can wait for; the rest stay for later passes.
    /// Returns whether it looked at any.
    fn reap_processes(&mut self) -> bool {
        let running_pid = self.threads.get(&cpu::current()).map_or(0, |t| t.pid);
        let ended = self.reaper.take_ended();
        let looked = !ended.is_empty();
        for pid in ended {
            if !self.processes.contains(pid) {
                continue; // already waited for
            }
            if pid != running_pid
                && let Some(space) = self.processes.get_mut(pid).and_then(|p| p.space.take())
            {
                self.reaper.retire(space);
            }
            let orphan = self
                .processes
                .get(pid)
                .is_some_and(|p| self.processes.get(p.parent).is_none_or(|parent| parent.exit.is_some()));
            if orphan && pid != running_pid {
                self.remove_process(pid);
            } else if pid == running_pid || self.processes.get(pid).is_some_and(|p| p.space.is_some()) {
                // Still on the CPU, or a zombie whose parent may yet wait: look again later.
                self.reaper.push_ended(pid);
            }
        }
        looked
    }
}
