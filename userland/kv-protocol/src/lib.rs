//! The key-value example protocol: `Put` a short value under a 64-bit key, `Get` it back. Small
//! enough to read in one go; shaped like the system servers' protocols will be (labels in word 0,
//! fixed fields in words 1-3, variable data in the buffer, an explicit error reply).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use vessel_protocol::{DecodeError, Message, Protocol};

/// Longest value stored.
pub const MAX_VALUE: usize = 64;

/// Labels of requests and replies.
mod label {
    pub const PUT: u64 = 1;
    pub const GET: u64 = 2;
    pub const STORED: u64 = 0x101;
    pub const VALUE: u64 = 0x102;
    pub const NOT_FOUND: u64 = 0x103;
    pub const REFUSED: u64 = 0x1ff;
}

/// A value: up to [`MAX_VALUE`] bytes, kept inline (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    bytes: [u8; MAX_VALUE],
    len: usize,
}

impl Value {
    /// A value from bytes; `None` if longer than [`MAX_VALUE`].
    pub fn new(bytes: &[u8]) -> Option<Value> {
        let mut value = Value { bytes: [0; MAX_VALUE], len: bytes.len() };
        value.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(value)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What a client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Store `value` under `key`.
    Put {
        /// The key.
        key: u64,
        /// The value.
        value: Value,
    },
    /// Fetch the value under `key`.
    Get {
        /// The key.
        key: u64,
    },
}

/// What the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The value was stored; `replaced` if the key had one.
    Stored {
        /// Whether an old value was overwritten.
        replaced: bool,
    },
    /// The value under the key.
    Value(Value),
    /// Nothing is stored under the key.
    NotFound,
    /// The server refused the request (malformed, or full).
    Refused,
}

/// The protocol.
pub struct Kv;

impl Protocol for Kv {
    type Request = Request;
    type Reply = Reply;
}

fn value_from(len_word: u64, data: &[u8]) -> Result<Value, DecodeError> {
    let len = usize::try_from(len_word).map_err(|_| DecodeError::BadLength)?;
    let bytes = data.get(..len).ok_or(DecodeError::BadLength)?;
    Value::new(bytes).ok_or(DecodeError::BadLength)
}

fn put_value(value: &Value, data: &mut [u8]) -> usize {
    let n = value.len.min(data.len());
    data[..n].copy_from_slice(&value.bytes[..n]);
    n
}

impl Message for Request {
    fn encode(&self, words: &mut [u64; 4], data: &mut [u8]) -> usize {
        match self {
            Request::Put { key, value } => {
                *words = [label::PUT, *key, value.len as u64, 0];
                put_value(value, data)
            }
            Request::Get { key } => {
                *words = [label::GET, *key, 0, 0];
                0
            }
        }
    }

    fn decode(words: &[u64; 4], data: &[u8]) -> Result<Self, DecodeError> {
        match words[0] {
            label::PUT => Ok(Request::Put { key: words[1], value: value_from(words[2], data)? }),
            label::GET => Ok(Request::Get { key: words[1] }),
            other => Err(DecodeError::UnknownLabel(other)),
        }
    }
}

impl Message for Reply {
    fn encode(&self, words: &mut [u64; 4], data: &mut [u8]) -> usize {
        match self {
            Reply::Stored { replaced } => {
                *words = [label::STORED, u64::from(*replaced), 0, 0];
                0
            }
            Reply::Value(value) => {
                *words = [label::VALUE, value.len as u64, 0, 0];
                put_value(value, data)
            }
            Reply::NotFound => {
                *words = [label::NOT_FOUND, 0, 0, 0];
                0
            }
            Reply::Refused => {
                *words = [label::REFUSED, 0, 0, 0];
                0
            }
        }
    }

    fn decode(words: &[u64; 4], data: &[u8]) -> Result<Self, DecodeError> {
        match words[0] {
            label::STORED => match words[1] {
                0 => Ok(Reply::Stored { replaced: false }),
                1 => Ok(Reply::Stored { replaced: true }),
                _ => Err(DecodeError::BadValue),
            },
            label::VALUE => Ok(Reply::Value(value_from(words[1], data)?)),
            label::NOT_FOUND => Ok(Reply::NotFound),
            label::REFUSED => Ok(Reply::Refused),
            other => Err(DecodeError::UnknownLabel(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<M: Message + PartialEq + core::fmt::Debug>(message: M) {
        let mut words = [0; 4];
        let mut data = [0u8; 4096];
        let len = message.encode(&mut words, &mut data);
        assert_eq!(M::decode(&words, &data[..len]), Ok(message));
    }

    #[test]
    fn every_message_round_trips() {
        let value = Value::new(b"hello").unwrap();
        round_trip(Request::Put { key: 7, value });
        round_trip(Request::Put { key: u64::MAX, value: Value::new(&[0xff; MAX_VALUE]).unwrap() });
        round_trip(Request::Get { key: 0 });
        round_trip(Reply::Stored { replaced: true });
        round_trip(Reply::Stored { replaced: false });
        round_trip(Reply::Value(value));
        round_trip(Reply::NotFound);
        round_trip(Reply::Refused);
    }

    #[test]
    fn hostile_messages_are_refused() {
        assert_eq!(Request::decode(&[99, 0, 0, 0], &[]), Err(DecodeError::UnknownLabel(99)));
        assert_eq!(Request::decode(&[1, 0, 65, 0], &[0; 100]), Err(DecodeError::BadLength));
        assert_eq!(Request::decode(&[1, 0, 10, 0], &[0; 5]), Err(DecodeError::BadLength));
        assert_eq!(Request::decode(&[1, 0, u64::MAX, 0], &[]), Err(DecodeError::BadLength));
        assert_eq!(Reply::decode(&[0x101, 2, 0, 0], &[]), Err(DecodeError::BadValue));
        assert!(Value::new(&[0; MAX_VALUE + 1]).is_none());
        // Any words at all: an answer, never a panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let words = [seed % 4, seed.rotate_left(7), seed % 80, seed.rotate_left(21)];
            let _ = Request::decode(&words, &[0; 70][..(seed % 70) as usize]);
            let _ = Reply::decode(&[0x100 + seed % 5, seed % 3, 0, 0], &[0; 10]);
        }
    }
}
