//! Host-test support for protocol crates: an in-memory transport ([`Loopback`]: client →
//! `dispatch` → server → reply, deferred replies included), examples of every field type
//! ([`Example`]), the echo answers the generated `protocol_checks` use, and a fuzzer
//! ([`fuzz_requests`], [`fuzz_replies`]). Always compiled (small, no unsafe), so a protocol
//! crate's tests can use it; nothing here runs in the system.

mod example;
mod fuzz;
mod loopback;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;

use vessel_abi::Error;

pub use example::{Example, ROUNDS, pick};
pub use fuzz::{FuzzReport, Rng, fuzz_replies, fuzz_requests, hostile_frame};
pub use loopback::{DispatchFn, Loopback, Mailbox, OwnedFrame, Recorder, RecordingKeeper};

use crate::field::Reply;
use crate::meta::OpInfo;
use crate::refusal::Refusal;
use crate::serve::{Answer, Cx};
use crate::transport::Message;
use crate::wire::encode;

/// Answers kept for later: each sends one deferred reply through the mailbox.
pub type Pending = Vec<Box<dyn FnOnce(&Mailbox)>>;

/// The refusal the echo server gives in `round` (a non-ASCII reason, to check it survives).
pub fn echo_refusal(op: &OpInfo, round: usize) -> Refusal {
    Refusal::new(Error::NotFound, format!("{}.{}: échec {round}", op.protocol, op.name))
}

/// How the echo server answers in `round`: reply now (round % 4 = 0), reply later (1), refuse
/// now (2), refuse later (3). Later answers are queued in `pending`.
pub fn echo<R: Reply + 'static>(pending: &mut Pending, cx: &mut Cx<'_, R>, round: usize, reply: R) -> Answer<R> {
    let op = cx.op();
    match round % 4 {
        0 => Answer::Reply(reply),
        2 => Answer::Refuse(echo_refusal(op, round)),
        mode => match cx.defer() {
            Ok(token) => {
                let result = if mode == 1 { Ok(reply) } else { Err(echo_refusal(op, round)) };
                pending.push(Box::new(move |mailbox: &Mailbox| {
                    let _ = token.answer(mailbox, result);
                }));
                Answer::Later
            }
            Err(refusal) => Answer::Refuse(refusal),
        },
    }
}

/// What the client should get from [`echo`] in `round`.
pub fn echo_expected<R>(op: &OpInfo, round: usize, reply: R) -> Result<R, Refusal> {
    if round % 4 < 2 { Ok(reply) } else { Err(echo_refusal(op, round)) }
}

/// Records in `mismatch` (if `strict` and nothing is recorded yet) a field whose value differs
/// from the expected one (compared by their `Debug` forms, so `&[u8]` matches `Vec<u8>`).
pub fn expect_same<A: Debug + ?Sized, B: Debug + ?Sized>(
    strict: bool,
    mismatch: &mut Option<String>,
    op: &OpInfo,
    field: &str,
    expected: &A,
    got: &B,
) {
    if !strict || mismatch.is_some() {
        return;
    }
    let (expected, got) = (format!("{expected:?}"), format!("{got:?}"));
    if expected != got {
        *mismatch =
            Some(format!("{}.{}: field `{field}`: sent {expected}, the server got {got}", op.protocol, op.name));
    }
}

/// Checks one round-trip: the server saw what was sent and the client got what was answered.
pub fn check_round<R: Debug + PartialEq>(
    op: &OpInfo,
    round: usize,
    got: &Result<R, Refusal>,
    expected: &Result<R, Refusal>,
    mismatch: Option<String>,
) -> Result<(), String> {
    if let Some(mismatch) = mismatch {
        return Err(format!("round {round}: {mismatch}"));
    }
    if got != expected {
        return Err(format!("round {round}: {}.{}: expected {expected:?}, got {got:?}", op.protocol, op.name));
    }
    Ok(())
}

/// Checks that no capability was deleted on either side of `loopback`.
pub fn check_no_caps_dropped<S>(loopback: &Loopback<S>) -> Result<(), String> {
    let (client, server) = (loopback.client_dropped(), loopback.mailbox().dropped());
    if client.is_empty() && server.is_empty() {
        Ok(())
    } else {
        Err(format!("capabilities deleted: by the client {client:?}, by the server {server:?}"))
    }
}

/// The frame of `reply` as the answer to `op`, and `op`'s label (a fuzzing seed).
pub fn reply_frame<R: Reply>(op: &OpInfo, reply: &R) -> (u64, OwnedFrame) {
    let mut data = alloc::vec![0u8; crate::MAX_DATA];
    let mut message = Message::new(&mut data);
    match encode(&mut message, op.reply_label(), |w| reply.put(w)) {
        Ok(()) => (op.label, OwnedFrame::from(message.frame())),
        Err(e) => (op.label, OwnedFrame { words: [0; 4], data: format!("{e}").into_bytes(), caps: Vec::new() }),
    }
}
