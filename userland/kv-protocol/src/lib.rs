//! The key-value example protocol: `put` a short value under a 64-bit key, `get` it back. Small
//! enough to read in one go, and shaped like every server protocol: one [`protocol!`]
//! declaration gives the labels, the encoding, the [`Client`], the [`Server`] trait and
//! [`dispatch`] (see `docs/protocols.md`).
//!
//! A missing key is refused with `NotFound`; a value longer than [`MAX_VALUE`] is refused by the
//! server with `TooLarge` (the protocol carries any length that fits a message).
//!
//! [`protocol!`]: vessel_protocol::protocol
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// Longest value a kv server stores.
pub const MAX_VALUE: usize = 64;

vessel_protocol::protocol! {
    /// The key-value example protocol.
    pub protocol "kv" {
        /// Store `value` under `key`, replacing what was there. Refused with `TooLarge` if the
        /// value is longer than [`MAX_VALUE`], `QuotaExceeded` if the store is full.
        1 put(
            /// The key.
            key: u64,
            /// The value (at most [`MAX_VALUE`] bytes).
            value: bytes,
        ) -> Stored {
            /// Whether an old value was replaced.
            replaced: bool,
        };
        /// Fetch the value under `key`. Refused with `NotFound` if there is none.
        2 get(
            /// The key.
            key: u64,
        ) -> Found {
            /// The value.
            value: bytes,
        };
    }
}

#[cfg(test)]
mod tests;
