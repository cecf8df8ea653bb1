//! IPC protocols declared once (STYLE habits 4 and 13a). A protocol crate writes one
//! [`protocol!`] declaration; from it come the labels, the wire encoding of every request and
//! reply, a typed client (`Client<T: Transport>`), a server trait (`Server`) with a `dispatch`
//! function, metadata ([`OpInfo`]) and, in the protocol crate's own tests, round-trip and fuzz
//! checks. `docs/protocols.md` is the guide; this crate holds the pieces the macro builds on:
//!
//! - [`wire`]: the encoding ([`Writer`], [`Reader`]) and its errors;
//! - [`field`]: the [`Field`] trait for fixed-size and custom field types, and [`Reply`];
//! - [`refusal`]: the one error shape of every protocol, [`Refusal`];
//! - [`transport`]: what the runtime implements ([`Transport`], [`ReplyKeeper`], [`ReplySender`])
//!   over the message form ([`Message`], [`Frame`]);
//! - [`serve`]: the server side ([`Cx`], [`Answer`], [`Deferred`], [`Dispatched`]);
//! - [`testing`]: an in-memory [`testing::Loopback`] transport, examples and fuzzing for host tests.
//!
//! Decoding never panics: any words, bytes and capabilities give either the typed values or a
//! [`DecodeError`] that the server answers with a refusal.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod field;
mod macros;
pub mod refusal;
pub mod serve;
pub mod testing;
pub mod transport;
pub mod wire;

mod client;
mod meta;

#[cfg(test)]
mod tests;

pub use field::{Field, Reply};
pub use meta::{FieldInfo, OpInfo, check_labels, undocumented};
pub use refusal::{MAX_REASON, Refusal};
pub use serve::{Answer, Cx, Deferred, Dispatched};
pub use transport::{Caller, Frame, Message, ReplyKeeper, ReplySender, Transport};
pub use vessel_abi::Error;
pub use wire::{DecodeError, EncodeError, FieldError, REGISTER_BYTES, Reader, Writer};

/// Largest data part of a message (the IPC buffer's data area).
pub const MAX_DATA: usize = vessel_abi::MAX_MESSAGE_DATA;
/// Most capabilities a message carries.
pub const MAX_CAPS: usize = vessel_abi::MAX_MESSAGE_CAPS;

/// Set in the label of every reply: a reply to operation `n` has label `REPLY | n`.
pub const REPLY: u64 = 1 << 32;
/// Label of a refusal (the reply label of the reserved operation 0).
pub const REFUSED: u64 = REPLY;

/// The label of the reply to the operation labelled `label`.
pub const fn reply_label(label: u64) -> u64 {
    REPLY | label
}

/// What the generated code uses; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::client::{call, read_reply};
    pub use crate::meta::op_by_label;
    pub use crate::serve::{conclude, refuse_malformed, refuse_unknown};
    pub use crate::wire::{end, field};
    pub use alloc::boxed::Box;
    pub use alloc::string::String;
    pub use alloc::vec::Vec;
}
