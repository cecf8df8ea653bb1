//! Wait queues threaded through the thread records: the run queues, an endpoint's callers and
//! receivers, a notification's waiters. A [`Queue`] is a head and a tail; each queued thread's
//! record holds its successor (`Thread::queue_next`) and its predecessor (`Thread::queue_prev`),
//! so putting a thread on a queue never allocates, which the IPC path must not do under the
//! table lock, and taking one off anywhere is O(1): destroying a container of a thousand
//! processes that never ran takes each off a run queue a thousand long, which a walk from the
//! head made 150,000 instructions with interrupts off.
//!
//! Invariants: a thread is on at most one queue at a time (its state and `ipc` say which: ready,
//! or blocked in `Send`, `Receive` or `Notification` on that object); its `queue_next` is [`NONE`]
//! exactly when it is on none, [`END`] when it is the last of one; its `queue_prev` is its
//! predecessor whenever it is queued and not first (a first thread's is not kept: popping the
//! front touches no other record, as the fast path needs); `head == NONE` exactly when
//! `tail == NONE`. Putting a thread that is on a queue already on one changes nothing, so no
//! slip elsewhere can link a queue into a loop. The common operations touch at most two records:
//! push at either end, pop at the front, pop of a front whose record the caller holds already
//! (the fast path), and [`Queue::remove`].

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
            Some(th) if th.queue_next == NONE => {
                th.queue_next = END;
                th.queue_prev = self.tail;
            }
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
        th.queue_prev = NONE;
        if self.head == NONE {
            th.queue_next = END;
            self.tail = tid;
        } else {
            th.queue_next = self.head;
            // The old first is first no more: its predecessor is kept from now on.
            if let Some(second) = threads.get_mut(&self.head) {
                second.queue_prev = tid;
            }
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

    /// Takes `tid` off this queue, which must be the one its state names (module invariants);
    /// returns whether it was on it. O(1): it unlinks through the record's neighbours. A thread
    /// on no queue, or first or last of another queue, is refused; one in the middle of another
    /// queue cannot be told apart, which is why the caller names the queue from the state.
    pub fn remove(&mut self, threads: &mut Indexed<Thread>, tid: Tid) -> bool {
        let Some(th) = threads.get(&tid) else { return false };
        let (next, prev) = (th.queue_next, th.queue_prev);
        if next == NONE || (next == END && self.tail != tid) {
            return false;
        }
        if self.head == tid {
            self.pop_front(threads);
            return true;
        }
        match threads.get_mut(&prev) {
            // A first thread of another queue: its predecessor is not kept.
            Some(p) if prev != NONE && p.queue_next == tid => p.queue_next = next,
            _ => return false,
        }
        if next == END {
            self.tail = prev;
        } else if let Some(n) = threads.get_mut(&next) {
            n.queue_prev = prev;
        }
        if let Some(th) = threads.get_mut(&tid) {
            th.queue_next = NONE;
            th.queue_prev = NONE;
        }
        true
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

/// In-kernel tests of the queues against a model (`--features ktest`).
#[cfg(feature = "ktest")]
pub mod tests {
    use alloc::collections::VecDeque;
    use alloc::format;
    use alloc::vec::Vec;

    use vessel_indexed::Indexed;

    use super::{END, NONE, Queue};
    use crate::check;
    use crate::ktest::{Test, TestResult};
    use crate::task::thread::{Thread, Tid};

    /// The tests of this module.
    pub static TESTS: &[Test] =
        &[Test { name: "queue::random_operations_match_a_model", run: random_operations_match_a_model }];

    /// Threads queued.
    const THREADS: u64 = 24;
    /// Queues.
    const QUEUES: usize = 3;

    /// 20,000 random pushes at either end, pops and removals on three queues of 24 threads,
    /// against a `VecDeque` each; after every step each queue is walked both ways. Removals
    /// also name the wrong queue for a first or last thread of another, and a thread on none:
    /// refused, changing nothing.
    fn random_operations_match_a_model() -> TestResult {
        let mut threads = Indexed::new();
        for tid in 1..=THREADS {
            threads.insert(tid, Thread::idle());
        }
        let mut queues = [Queue::new(); QUEUES];
        let mut model: [VecDeque<Tid>; QUEUES] = core::array::from_fn(|_| VecDeque::new());
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random = move |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        for step in 0..20_000 {
            let q = random(QUEUES as u64) as usize;
            let tid = 1 + random(THREADS);
            let queued_on = model.iter().position(|m| m.contains(&tid));
            match random(5) {
                0 => {
                    queues[q].push_back(&mut threads, tid);
                    if queued_on.is_none() {
                        model[q].push_back(tid);
                    }
                }
                1 => {
                    queues[q].push_front(&mut threads, tid);
                    if queued_on.is_none() {
                        model[q].push_front(tid);
                    }
                }
                2 => {
                    let popped = queues[q].pop_front(&mut threads);
                    check!(popped == model[q].pop_front(), "step {step}: pop of queue {q}");
                }
                _ => {
                    // The queue the thread is on, or (for a first, a last, or no queue) any.
                    let ends =
                        queued_on.is_some_and(|o| model[o].front() == Some(&tid) || model[o].back() == Some(&tid));
                    let at = if ends || queued_on.is_none() { q } else { queued_on.unwrap_or(q) };
                    let expected = queued_on == Some(at);
                    let removed = queues[at].remove(&mut threads, tid);
                    check!(removed == expected, "step {step}: remove of {tid} from queue {at} answered {removed}");
                    if expected {
                        model[at].retain(|&t| t != tid);
                    }
                }
            }
            for (i, queue) in queues.iter().enumerate() {
                let what = format!("step {step}, queue {i}");
                check_links(queue, &model[i], &threads, &what)?;
            }
            for tid in 1..=THREADS {
                let on_none = !model.iter().any(|m| m.contains(&tid));
                let next = threads.get(&tid).map_or(NONE, |th| th.queue_next);
                check!((next == NONE) == on_none, "step {step}: thread {tid}'s queue_next {next:#x}");
            }
        }
        Ok(())
    }

    /// Walks `queue` forward through `queue_next` and back through `queue_prev` (all but the
    /// first), comparing with `model`.
    fn check_links(queue: &Queue, model: &VecDeque<Tid>, threads: &Indexed<Thread>, what: &str) -> TestResult {
        let mut forward = Vec::new();
        let mut at = queue.head;
        while at != NONE && at != END && forward.len() <= THREADS as usize {
            forward.push(at);
            at = threads.get(&at).map_or(END, |th| th.queue_next);
        }
        check!(forward.iter().eq(model.iter()), "{what}: forward {forward:?}, model {model:?}");
        check!(queue.tail == model.back().copied().unwrap_or(NONE), "{what}: tail {}", queue.tail);
        for pair in forward.windows(2) {
            let prev = threads.get(&pair[1]).map_or(NONE, |th| th.queue_prev);
            check!(prev == pair[0], "{what}: {}'s predecessor is {prev}, not {}", pair[1], pair[0]);
        }
        Ok(())
    }
}
