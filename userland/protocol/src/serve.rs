//! The server side. The generated `dispatch` decodes a request in place, calls the server's
//! method with a [`Cx`] and the fields, and stages what the method answered in the same
//! [`Message`]. A method answers with an [`Answer`]:
//!
//! - `Reply(r)`: encoded with the operation's reply label (a reply that does not fit becomes a
//!   `TooLarge` refusal, and the handles it carried are deleted);
//! - `Refuse(refusal)`: staged as a refusal;
//! - `Later`: only after [`Cx::defer`], which turns the pending reply into a reply capability
//!   wrapped in a typed [`Deferred`] token; the loop then sends nothing and takes the next
//!   request, and someone answers the token with [`Deferred::answer`].
//!
//! A request that does not decode is refused, naming what was wrong, and the handles that came
//! with it are deleted through [`ReplyKeeper::drop_cap`]. Handles in fields that decoded are the
//! method's to keep or delete ([`Cx::drop_cap`]).

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::marker::PhantomData;

use vessel_abi::Error;

use crate::field::Reply;
use crate::meta::OpInfo;
use crate::refusal::Refusal;
use crate::transport::{Caller, Message, ReplyKeeper, ReplySender};
use crate::wire::{FieldError, encode};
use crate::{MAX_CAPS, reply_label};

/// What a server method answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    /// Reply now with this.
    Reply(T),
    /// Refuse now.
    Refuse(Refusal),
    /// The reply was deferred with [`Cx::defer`]; the token will answer.
    Later,
}

impl<T> From<Result<T, Refusal>> for Answer<T> {
    fn from(result: Result<T, Refusal>) -> Answer<T> {
        match result {
            Ok(reply) => Answer::Reply(reply),
            Err(refusal) => Answer::Refuse(refusal),
        }
    }
}

impl<T> From<Refusal> for Answer<T> {
    fn from(refusal: Refusal) -> Answer<T> {
        Answer::Refuse(refusal)
    }
}

/// What `dispatch` left in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// A reply (or refusal) is staged: send it.
    Reply,
    /// The reply was deferred: send nothing, take the next request.
    Deferred,
}

/// The context of one request: who called, which operation, and the means to defer the reply.
/// `R` is the operation's reply type, so a deferred token can only carry that reply.
pub struct Cx<'a, R> {
    caller: Caller,
    op: &'static OpInfo,
    keeper: &'a mut dyn ReplyKeeper,
    deferred: bool,
    reply: PhantomData<fn(R)>,
}

impl<'a, R: Reply> Cx<'a, R> {
    /// The context of a request to `op` from `caller` (made by `dispatch`).
    pub fn new(op: &'static OpInfo, caller: Caller, keeper: &'a mut dyn ReplyKeeper) -> Cx<'a, R> {
        Cx { caller, op, keeper, deferred: false, reply: PhantomData }
    }

    /// Who called.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The operation being handled.
    pub fn op(&self) -> &'static OpInfo {
        self.op
    }

    /// Keeps the reply for later: the method must then return [`Answer::Later`] and the token
    /// must answer (or be given up with [`Deferred::into_handle`]). Refused if already deferred
    /// or if the runtime cannot keep the reply.
    pub fn defer(&mut self) -> Result<Deferred<R>, Refusal> {
        let at =
            |e: Error| Refusal::new(e, format!("{}.{}: cannot defer the reply: {e}", self.op.protocol, self.op.name));
        if self.deferred {
            return Err(at(Error::InvalidArgument));
        }
        let handle = self.keeper.take_reply().map_err(at)?;
        self.deferred = true;
        Ok(Deferred { handle, op: self.op, reply: PhantomData })
    }

    /// Deletes a received capability the method does not keep.
    pub fn drop_cap(&mut self, handle: u32) {
        self.keeper.drop_cap(handle);
    }

    /// A refusal with the standard reason for this caller:
    /// `"<service>: container 0x…: <why>"`.
    pub fn refusal(&self, error: Error, why: impl fmt::Display) -> Refusal {
        Refusal::in_container(self.op.protocol, self.caller.container, error, why)
    }
}

/// A reply kept for later, typed by the operation's reply (`Send`: it may be answered from
/// another thread).
#[must_use = "a deferred reply must be answered, or the caller waits until the server ends"]
#[derive(Debug)]
pub struct Deferred<R> {
    handle: u32,
    op: &'static OpInfo,
    reply: PhantomData<fn(R)>,
}

impl<R: Reply> Deferred<R> {
    /// The reply capability handle.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The operation this replies to.
    pub fn op(&self) -> &'static OpInfo {
        self.op
    }

    /// Gives up the typed token, leaving the reply capability to the caller.
    pub fn into_handle(self) -> u32 {
        self.handle
    }

    /// Encodes `result` with the operation's reply encoding and sends it. `Err` if the reply
    /// could not be sent (the caller died: `PeerDied`).
    pub fn answer(self, sender: &impl ReplySender, result: Result<R, Refusal>) -> Result<(), Error> {
        let mut unsent = ([0u32; MAX_CAPS], 0);
        let sent = sender.send_reply(self.handle, |message| unsent = stage_answer(self.op, &result, message));
        for &handle in &unsent.0[..unsent.1] {
            sender.drop_cap(handle);
        }
        sent
    }
}

/// Stages `result` as the reply to `op`. A reply that does not fit becomes a `TooLarge`
/// refusal; the handles it carried are returned (count, at most [`MAX_CAPS`]) to be deleted.
fn stage_answer<R: Reply>(
    op: &OpInfo,
    result: &Result<R, Refusal>,
    message: &mut Message<'_>,
) -> ([u32; MAX_CAPS], usize) {
    let reply = match result {
        Ok(reply) => reply,
        Err(refusal) => {
            refusal.stage(message);
            return ([0; MAX_CAPS], 0);
        }
    };
    match encode(message, reply_label(op.label), |w| reply.put(w)) {
        Ok(()) => ([0; MAX_CAPS], 0),
        Err(e) => {
            let unsent = (message.caps, message.cap_count);
            Refusal::new(Error::TooLarge, format!("{}.{}: reply too large: {e}", op.protocol, op.name)).stage(message);
            unsent
        }
    }
}

/// Stages what a method answered (for the generated `dispatch`).
pub fn conclude<R: Reply>(cx: Cx<'_, R>, answer: Answer<R>, message: &mut Message<'_>) -> Dispatched {
    let op = cx.op;
    let result = match answer {
        Answer::Later if cx.deferred => return Dispatched::Deferred,
        Answer::Later => {
            let why = format!("{}.{}: the server answered later without deferring", op.protocol, op.name);
            Err(Refusal::new(Error::InvalidArgument, why))
        }
        Answer::Reply(reply) => Ok(reply),
        Answer::Refuse(refusal) => Err(refusal),
    };
    let (unsent, count) = stage_answer(op, &result, message);
    for &handle in &unsent[..count] {
        cx.keeper.drop_cap(handle);
    }
    if cx.deferred {
        // Deferred, then answered now anyway: only the token can answer; the handles this
        // answer carried are deleted so they do not leak.
        for &handle in message.handles() {
            cx.keeper.drop_cap(handle);
        }
        message.clear();
        return Dispatched::Deferred;
    }
    Dispatched::Reply
}

/// Refuses a request to `op` that did not decode, deleting the handles it carried.
pub fn refuse_malformed(
    op: &'static OpInfo,
    error: FieldError,
    keeper: &mut dyn ReplyKeeper,
    message: &mut Message<'_>,
) -> Dispatched {
    let why = format!("{}.{}: {error}", op.protocol, op.name);
    refuse_request(why, keeper, message)
}

/// Refuses a request whose label names no operation of `protocol`.
pub fn refuse_unknown(protocol: &str, keeper: &mut dyn ReplyKeeper, message: &mut Message<'_>) -> Dispatched {
    let why = format!("{protocol}: unknown label {}", message.words[0]);
    refuse_request(why, keeper, message)
}

fn refuse_request(why: String, keeper: &mut dyn ReplyKeeper, message: &mut Message<'_>) -> Dispatched {
    for &handle in message.handles() {
        keeper.drop_cap(handle);
    }
    Refusal::new(Error::InvalidArgument, why).stage(message);
    Dispatched::Reply
}
