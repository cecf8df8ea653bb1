//! Wait queues threaded through the thread records: the run queues, an endpoint's callers and
//! receivers, a notification's waiters. A [`Queue`] is a head and a tail; each queued thread's
//! record holds its successor (`Thread::queue_next`), so putting a thread on a queue never
//! allocates, which the IPC path must not do under the table lock.
//!
//! Invariants: a thread is on at most one queue at a time (its state and `ipc` say which: ready,
//! or blocked in `Send`, `Receive` or `Notification` on that object); its `queue_next` is [`NONE`]
//! exactly when it is on none, [`END`] when it is the last of one; `head == NONE` exactly when
//! `tail == NONE`. Putting a thread that is on a queue already on one changes nothing, so no
//! slip elsewhere can link a queue into a loop. Removing from the middle walks from the head (cancelling a wait, a thread's
//! death), as the `retain` of a `VecDeque` did; the common operations are O(1): push at either
//! end, pop at the front, and pop of a front whose record the caller holds already (the fast
//! path).

use alloc::vec::Vec;

use vessel_indexed::Indexed;

use super::thread::{Thread, Tid};

/// "No thread": an empty queue's head and tail, and the `queue_next` of a thread on no queue.
/// Thread 0 is the idle thread, which is never queued.
pub const NONE: Tid = 0;
/// The `queue_next` of the last thread of a queue (no thread has this id).
pub const END: Tid = u64::MAX;

/// A FIFO of threads; see the module invariants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queue {
    head: Tid,
    tail: Tid,
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

impl Queue {
    /// An empty queue.
    pub const fn new() -> Self {
        Queue { head: NONE, tail: NONE }
    }

    /// Whether no thread is queued.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.head == NONE
    }

    /// The first thread, if any.
    #[inline(always)]
    pub fn front(&self) -> Option<Tid> {
        (self.head != NONE).then_some(self.head)
    }

    /// Queues `tid` last (unless it has no record or is on a queue already).
    #[inline(always)]
    pub fn push_back(&mut self, threads: &mut Indexed<Thread>, tid: Tid) {
        match threads.get_mut(&tid) {
            Some(th) if th.queue_next == NONE => th.queue_next = END,
            _ => return,
        }
        if self.tail == NONE {
            self.head = tid;
        } else if let Some(last) = threads.get_mut(&self.tail) {
            last.queue_next = tid;
        }
        self.tail = tid;
    }

    /// Queues `tid` first (unless it has no record or is on a queue already).
    pub fn push_front(&mut self, threads: &mut Indexed<Thread>, tid: Tid) {
        let Some(th) = threads.get_mut(&tid).filter(|th| th.queue_next == NONE) else { return };
        th.queue_next = if self.head == NONE { END } else { self.head };
        if self.tail == NONE {
            self.tail = tid;
        }
        self.head = tid;
    }

    /// Takes the first thread off.
    #[inline(always)]
    pub fn pop_front(&mut self, threads: &mut Indexed<Thread>) -> Option<Tid> {
        let first = self.front()?;
        match threads.get_mut(&first) {
            Some(th) => self.unlink_front(th),
            // Cannot happen (queued threads have records); drop the whole queue rather than loop.
            None => *self = Queue::new(),
        }
        Some(first)
    }

    /// Takes the first thread off, given its record (`first`, which the caller looked up for
    /// other reasons: one lookup fewer on the fast path). The caller checked that it is the front.
    #[inline(always)]
    pub fn unlink_front(&mut self, first: &mut Thread) {
        if first.queue_next == END {
            *self = Queue::new();
        } else {
            self.head = first.queue_next;
        }
        first.queue_next = NONE;
    }

    /// Takes `tid` off wherever it is; returns whether it was queued here.
    pub fn remove(&mut self, threads: &mut Indexed<Thread>, tid: Tid) -> bool {
        let mut previous = NONE;
        let mut at = self.head;
        while at != NONE && at != END {
            let Some(next) = threads.get(&at).map(|th| th.queue_next) else { break };
            if at == tid {
                if previous == NONE {
                    self.head = if next == END { NONE } else { next };
                } else if let Some(p) = threads.get_mut(&previous) {
                    p.queue_next = next;
                }
                if self.tail == tid {
                    self.tail = previous;
                }
                if let Some(th) = threads.get_mut(&tid) {
                    th.queue_next = NONE;
                }
                return true;
            }
            previous = at;
            at = next;
        }
        false
    }

    /// Takes every thread off, in order (for an object that is going away: allocates).
    pub fn drain(&mut self, threads: &mut Indexed<Thread>) -> Vec<Tid> {
        let mut all = Vec::new();
        while let Some(tid) = self.pop_front(threads) {
            all.push(tid);
        }
        all
    }
}
