//! The one error shape of every protocol: a [`Refusal`] is a `vessel_abi::Error` code plus a
//! reason for people. On the wire it is a reply labelled [`REFUSED`]: `words[1]` holds the
//! error code (`error as u64`), words 2 and 3 are 0, the data is the reason in UTF-8 cut to at
//! most [`MAX_REASON`] bytes at a character boundary, and no capabilities come with it.
//! Reading a refusal never fails: an unknown code reads as `InvalidArgument` (what
//! `Error::from_code` does) and bad UTF-8 is replaced.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;

use vessel_abi::Error;

use crate::REFUSED;
use crate::transport::{Frame, Message};

/// Longest reason sent on the wire, in bytes.
pub const MAX_REASON: usize = 256;

/// A request the server (or the transport) did not carry out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of failure, for programs.
    pub error: Error,
    /// What happened, for people: by convention `"<service>: container 0x…: <why>"` from a
    /// server ([`Refusal::in_container`]), `"<service>.<op>: <why>"` from the protocol layer.
    pub reason: String,
}

impl Refusal {
    /// A refusal with `error` and `reason`.
    pub fn new(error: Error, reason: impl Into<String>) -> Refusal {
        Refusal { error, reason: reason.into() }
    }

    /// The standard reason of a server refusing a caller in `container`:
    /// `"<service>: container 0x<id, 16 hex digits>: <why>"`, e.g.
    /// `"vfs: container 0x0000000000000003: path escapes the root"`.
    pub fn in_container(service: &str, container: u64, error: Error, why: impl fmt::Display) -> Refusal {
        Refusal::new(error, format!("{service}: container {container:#018x}: {why}"))
    }

    /// Stages this refusal as the reply in `message`.
    pub fn stage(&self, message: &mut Message<'_>) {
        let reason = truncated(&self.reason);
        let n = reason.len().min(message.data.len());
        message.data[..n].copy_from_slice(&reason.as_bytes()[..n]);
        message.words = [REFUSED, self.error as u64, 0, 0];
        message.data_len = n;
        message.cap_count = 0;
    }

    /// Reads a refusal from a frame labelled [`REFUSED`] (any content gives a refusal).
    pub fn read(frame: Frame<'_>) -> Refusal {
        let data = frame.data.get(..MAX_REASON).unwrap_or(frame.data);
        let reason = String::from_utf8_lossy(data);
        Refusal::new(Error::from_code(frame.words[1]), truncated(&reason).to_string())
    }
}

/// `reason` cut to at most [`MAX_REASON`] bytes, at a character boundary.
pub fn truncated(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

impl From<Error> for Refusal {
    /// A refusal whose reason is only the error's own description (for local failures with
    /// nothing more to say).
    fn from(error: Error) -> Refusal {
        Refusal::new(error, error.as_str())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.error)
    }
}

impl core::error::Error for Refusal {}
