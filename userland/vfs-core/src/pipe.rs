//! Pipes: a bounded byte queue between a writing end and a reading end, for a shell's `a | b`.
//!
//! A read takes what the pipe holds (up to what was asked); with nothing there it waits until
//! a write comes, or answers the end of the data (empty) once no writing end is open. A write
//! takes what fits (at least one byte) and says how much; with the pipe full it waits until a
//! read makes room (back-pressure), or is refused once no reading end is open. Waiting calls
//! are kept replies, answered in arrival order; the answers are collected in [`Ready`] for the
//! server to send after the request that settled them.
//!
//! Invariants: `buffer.len() <= CAPACITY`; reads wait only while the buffer is empty and a
//! writer is open; writes wait only while the buffer is full and a reader is open.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_abi::Error;
use vessel_protocol::{Deferred, Refusal};
use vessel_vfs_protocol::{Data, NAME, Written};

/// Bytes a pipe holds before writers wait.
pub const CAPACITY: usize = 64 * 1024;

/// An answer settled by a change to a pipe, to be sent.
pub enum Ready {
    /// A read's answer; the pipe it came from, to take its bytes back if the reader died.
    Read(usize, Deferred<Data>, Result<Data, Refusal>),
    /// A write's answer.
    Write(Deferred<Written>, Result<Written, Refusal>),
}

/// A waiting read.
struct Reading {
    max: usize,
    reply: Deferred<Data>,
}

/// A waiting write and its bytes.
struct Writing {
    container: u64,
    data: Vec<u8>,
    reply: Deferred<Written>,
}

/// One pipe.
#[derive(Default)]
pub struct Pipe {
    buffer: VecDeque<u8>,
    /// Open handles on the reading end.
    pub readers: usize,
    /// Open handles on the writing end.
    pub writers: usize,
    reads: VecDeque<Reading>,
    writes: VecDeque<Writing>,
}

/// What happens to a call now.
pub enum Now<T> {
    /// Answered.
    Done(T),
    /// It waits (its reply is to be kept).
    Wait,
}

fn broken(container: u64) -> Refusal {
    Refusal::in_container(NAME, container, Error::PeerDied, String::from("the pipe's reading end is closed"))
}

impl Pipe {
    /// A new pipe with one handle on each end.
    pub fn new() -> Pipe {
        Pipe { readers: 1, writers: 1, ..Pipe::default() }
    }

    /// Bytes waiting in it.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    fn take(&mut self, max: usize) -> Vec<u8> {
        let n = max.min(self.buffer.len());
        self.buffer.drain(..n).collect()
    }

    fn put(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(CAPACITY - self.buffer.len());
        self.buffer.extend(&data[..n]);
        n
    }

    /// A read of up to `max` bytes (not 0), unless earlier reads wait.
    pub fn read(&mut self, max: usize) -> Now<Vec<u8>> {
        if self.reads.is_empty() && (!self.buffer.is_empty() || self.writers == 0) {
            Now::Done(self.take(max))
        } else {
            Now::Wait
        }
    }

    /// A write of `data` (not empty): how many bytes it took, unless it must wait; refused when
    /// nobody reads.
    pub fn write(&mut self, container: u64, data: &[u8]) -> Result<Now<usize>, Refusal> {
        if self.readers == 0 {
            return Err(broken(container));
        }
        if self.writes.is_empty() && self.buffer.len() < CAPACITY {
            Ok(Now::Done(self.put(data)))
        } else {
            Ok(Now::Wait)
        }
    }

    /// Keeps a read that must wait.
    pub fn wait_read(&mut self, max: usize, reply: Deferred<Data>) {
        self.reads.push_back(Reading { max, reply });
    }

    /// Keeps a write that must wait.
    pub fn wait_write(&mut self, container: u64, data: Vec<u8>, reply: Deferred<Written>) {
        self.writes.push_back(Writing { container, data, reply });
    }

    /// Bytes a dead reader was given go back to the front.
    pub fn give_back(&mut self, data: &[u8]) {
        for &b in data.iter().rev() {
            self.buffer.push_front(b);
        }
    }

    /// Answers what waits and can now be answered (pipe `index`), oldest first.
    pub fn settle(&mut self, index: usize, ready: &mut Vec<Ready>) {
        loop {
            let mut moved = false;
            while let Some(w) = self.writes.pop_front() {
                if self.readers == 0 {
                    ready.push(Ready::Write(w.reply, Err(broken(w.container))));
                } else if self.buffer.len() < CAPACITY {
                    let n = self.put(&w.data);
                    ready.push(Ready::Write(w.reply, Ok(Written { count: n as u64 })));
                } else {
                    self.writes.push_front(w);
                    break;
                }
                moved = true;
            }
            while let Some(r) = self.reads.pop_front() {
                if self.buffer.is_empty() && self.writers > 0 {
                    self.reads.push_front(r);
                    break;
                }
                let data = self.take(r.max);
                ready.push(Ready::Read(index, r.reply, Ok(Data { data })));
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// Whether nothing refers to it any more (it can be dropped).
    pub fn unused(&self) -> bool {
        self.readers == 0 && self.writers == 0 && self.reads.is_empty() && self.writes.is_empty()
    }
}
