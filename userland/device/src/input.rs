//! Reads that wait for input (keyboard, serial, a console): kept replies in arrival order, each
//! answered when its source has bytes, when its session is revoked, or when its timeout passes.
//!
//! Invariants: readers of one source are answered oldest first (a later reader never takes
//! bytes while an earlier one of the same source waits); every reader is answered exactly once;
//! the server waits with a timeout only while some reader has a finite one.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;

use vessel_device_protocol::Data;
use vessel_protocol::{Deferred, Refusal};
use vessel_rt::abi::Error;
use vessel_rt::server::Replies;

/// Where a waiting `read` takes its bytes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The keyboard (`kbd0`).
    Keyboard,
    /// The serial port (`serial0`).
    Serial,
    /// Virtual console `n` (`console0` is 0).
    Console(usize),
}

/// Up to `max` bytes from the front of an input queue, if it holds any (every source's `take`).
pub fn take(queue: &mut VecDeque<u8>, max: usize) -> Option<Vec<u8>> {
    let count = max.min(queue.len());
    (count > 0).then(|| queue.drain(..count).collect())
}

/// Ctrl-C: the byte a terminal turns into an interrupt when its session is armed.
pub const INTERRUPT: u8 = 3;

/// Puts `bytes` back at the front of a queue (input a dead reader was given).
pub fn give_back(queue: &mut VecDeque<u8>, bytes: &[u8]) {
    for &b in bytes.iter().rev() {
        queue.push_front(b);
    }
}

/// Drops a queue's input up to and including its last Ctrl-C; whether it held one.
pub fn cut_at_interrupt(queue: &mut VecDeque<u8>) -> bool {
    match queue.iter().rposition(|&b| b == INTERRUPT) {
        Some(at) => {
            queue.drain(..=at);
            true
        }
        None => false,
    }
}

/// A `read` waiting for input.
struct Reader {
    from: Input,
    handle: u64,
    max: usize,
    /// When it times out (`u64::MAX`: never), in `time::now_ns` nanoseconds.
    deadline: u64,
    /// The timeout it asked for.
    timeout: u64,
    reply: Deferred<Data>,
}

/// The waiting reads.
#[derive(Default)]
pub struct Readers(VecDeque<Reader>);

impl Readers {
    /// Whether a read of `from` waits (a new one must queue behind it).
    pub fn waiting_on(&self, from: Input) -> bool {
        self.0.iter().any(|r| r.from == from)
    }

    /// Queues a read of up to `max` bytes of `from` for session `handle`, for `timeout` ns.
    pub fn push(&mut self, from: Input, handle: u64, max: usize, timeout: u64, reply: Deferred<Data>) {
        let deadline = vessel_rt::time::now_ns().saturating_add(timeout);
        self.0.push_back(Reader { from, handle, max, deadline, timeout, reply });
    }

    /// Nanoseconds until the first timeout, if a reader has one.
    pub fn next_timeout(&self, now: u64) -> Option<u64> {
        self.0.iter().map(|r| r.deadline).filter(|&d| d != u64::MAX).min().map(|d| d.saturating_sub(now).max(1))
    }

    /// Answers every reader that can be answered at `now`: with input `take(source, max)`
    /// gives, with `Revoked` if `revoked(handle)` names a reason, or with `TimedOut`. Returns
    /// the input taken for readers that died meanwhile (a program killed while it read), to go
    /// back to the front of its queue for the next reader.
    pub fn answer(
        &mut self,
        now: u64,
        mut take: impl FnMut(Input, usize) -> Option<Vec<u8>>,
        revoked: impl Fn(u64) -> Option<alloc::string::String>,
    ) -> Vec<(Input, Vec<u8>)> {
        let mut undelivered = Vec::new();
        let mut waiting = VecDeque::new();
        while let Some(reader) = self.0.pop_front() {
            let why = revoked(reader.handle);
            // Earlier readers of the same source still waiting keep it for themselves.
            let blocked = waiting.iter().any(|w: &Reader| w.from == reader.from);
            let input = if why.is_none() && !blocked { take(reader.from, reader.max) } else { None };
            let result = match (input, why) {
                (_, Some(why)) => Err(Refusal::new(Error::Revoked, format!("device: {why}"))),
                (Some(data), None) => Ok(Data { data }),
                _ if now >= reader.deadline => {
                    Err(Refusal::new(Error::TimedOut, format!("device: no input after {} ns", reader.timeout)))
                }
                _ => {
                    waiting.push_back(reader);
                    continue;
                }
            };
            let data = result.as_ref().ok().map(|d| d.data.clone());
            if reader.reply.answer(&Replies, result).is_err()
                && let Some(data) = data
            {
                undelivered.push((reader.from, data));
            }
        }
        self.0 = waiting;
        undelivered
    }
}
