//! The client side of every generated stub: stage the request, call, read the reply. Every
//! failure becomes a [`Refusal`] naming the operation:
//!
//! - the request does not fit (more than [`crate::MAX_DATA`] bytes or [`crate::MAX_CAPS`]
//!   handles): `TooLarge`, `"<proto>.<op>: request too large: …"`, and nothing is sent;
//! - the transport fails with `e`: `e`, `"<proto>.<op>: <e>"`;
//! - the server refused: its refusal, unchanged;
//! - the reply has another label or does not decode: `InvalidArgument`,
//!   `"<proto>.<op>: malformed reply"`.
//!
//! Handles that came with a refusal or a malformed reply are deleted through
//! [`Transport::drop_cap`].

use alloc::format;
use alloc::vec::Vec;

use vessel_abi::Error;

use crate::field::Reply;
use crate::meta::OpInfo;
use crate::refusal::Refusal;
use crate::transport::{Frame, Transport};
use crate::wire::{EncodeError, Reader, Writer, encode, end};
use crate::{REFUSED, reply_label};

/// Sends operation `op` with the fields `put` writes and reads its reply `R`.
pub fn call<T: Transport, R: Reply>(
    transport: &T,
    op: &'static OpInfo,
    put: impl FnOnce(&mut Writer<'_>),
) -> Result<R, Refusal> {
    let mut unsent: Option<EncodeError> = None;
    let result = transport.call(
        |message| {
            encode(message, op.label, put).map_err(|e| {
                unsent = Some(e);
                Error::TooLarge
            })
        },
        |frame| read_reply::<R>(op, frame),
    );
    match (result, unsent) {
        (Err(_), Some(e)) => {
            Err(Refusal::new(Error::TooLarge, format!("{}.{}: request too large: {e}", op.protocol, op.name)))
        }
        (Err(e), None) => Err(Refusal::new(e, format!("{}.{}: {e}", op.protocol, op.name))),
        (Ok(Ok(reply)), _) => Ok(reply),
        (Ok(Err((refusal, leftover))), _) => {
            for handle in leftover {
                transport.drop_cap(handle);
            }
            Err(refusal)
        }
    }
}

/// Reads the reply to `op`: the reply, or the refusal and the handles to delete.
pub fn read_reply<R: Reply>(op: &'static OpInfo, frame: Frame<'_>) -> Result<R, (Refusal, Vec<u32>)> {
    let malformed = || Refusal::new(Error::InvalidArgument, format!("{}.{}: malformed reply", op.protocol, op.name));
    if frame.words[0] == REFUSED {
        return Err((Refusal::read(frame), frame.caps.to_vec()));
    }
    if frame.words[0] != reply_label(op.label) {
        return Err((malformed(), frame.caps.to_vec()));
    }
    let mut reader = Reader::new(frame);
    match R::take(&mut reader).and_then(|reply| end(&reader).map(|()| reply)) {
        Ok(reply) => Ok(reply),
        Err(_) => Err((malformed(), frame.caps.to_vec())),
    }
}
