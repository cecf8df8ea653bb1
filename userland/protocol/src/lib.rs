//! Typed IPC protocols (STYLE habit 4): a server's protocol crate defines its request and reply
//! types and how they map onto a message (four words plus up to 4 KiB of data); the client stubs
//! and the server loop in the runtime (`vessel_rt::ipc::Endpoint::request` and `serve_protocol`)
//! use only these types, so no call site packs registers by hand.
//!
//! Decoding is the server's first line of defence: every `decode` must accept any words and any
//! bytes and answer a [`DecodeError`] for what it does not understand, never panic.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// Largest data part of a message (the IPC buffer's data area).
pub const MAX_DATA: usize = 4096;

/// Why a message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The label (word 0) names no operation of this protocol.
    UnknownLabel(u64),
    /// A length or count is out of range, or the data is shorter than it says.
    BadLength,
    /// A field holds a value the protocol does not allow.
    BadValue,
}

/// A message of a protocol: how it maps to words and data.
pub trait Message: Sized {
    /// Writes the message; returns how many bytes of `data` it used (≤ `data.len()`).
    fn encode(&self, words: &mut [u64; 4], data: &mut [u8]) -> usize;
    /// Reads a message from words and the bytes that arrived with them.
    fn decode(words: &[u64; 4], data: &[u8]) -> Result<Self, DecodeError>;
}

/// A protocol: its request and reply types.
pub trait Protocol {
    /// What clients send.
    type Request: Message;
    /// What the server answers.
    type Reply: Message;
}
