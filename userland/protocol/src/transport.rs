//! What a protocol needs from the runtime, as traits: the runtime (`vessel-rt`) implements them
//! over the real system calls, host tests over memory ([`crate::testing::Loopback`]).
//!
//! The message form is the kernel's: four words (`words[0]` is the label), a data area of up to
//! [`MAX_DATA`] bytes (the IPC buffer's) and up to [`MAX_CAPS`] capability handles. A
//! [`Message`] is one being built or handled in place; a [`Frame`] is a read-only view of one
//! received. Roles:
//!
//! - client: [`Transport::call`] stages a request, sends it, waits, and shows the reply;
//! - server loop: receives into a [`Message`], passes it to the generated `dispatch` with the
//!   [`Caller`] and a [`ReplyKeeper`], then sends the reply staged in the same [`Message`]
//!   (unless the server deferred it);
//! - deferred replies: [`ReplySender::send_reply`] answers a kept reply capability later, from
//!   any thread.

use vessel_abi::Error;

use crate::{MAX_CAPS, MAX_DATA};

/// A received message, read-only: the words, the data bytes and the capability handles that
/// came with it (handles are already the receiver's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The four words; `words[0]` is the label.
    pub words: [u64; 4],
    /// The data part (at most [`MAX_DATA`] bytes).
    pub data: &'a [u8],
    /// The capability handles (at most [`MAX_CAPS`]).
    pub caps: &'a [u32],
}

/// A message handled in place: on the client and when replying, one being staged; in a server,
/// the request received, overwritten by the reply. `data` is the IPC buffer's data area (or a
/// test buffer); only `data[..data_len]` and `caps[..cap_count]` belong to the message.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The four words; `words[0]` is the label.
    pub words: [u64; 4],
    /// The data area (the message uses the first `data_len` bytes).
    pub data: &'a mut [u8],
    /// Bytes of `data` in the message.
    pub data_len: usize,
    /// Capability handles (the message uses the first `cap_count`).
    pub caps: [u32; MAX_CAPS],
    /// Handles in the message.
    pub cap_count: usize,
}

impl<'a> Message<'a> {
    /// An empty message over `data` (its first [`MAX_DATA`] bytes are used).
    pub fn new(data: &'a mut [u8]) -> Message<'a> {
        Message { words: [0; 4], data, data_len: 0, caps: [0; MAX_CAPS], cap_count: 0 }
    }

    /// A received message: `data_len` bytes of `data` and `caps` came with `words`. Lengths are
    /// clamped to the buffer and the limits, so a bad meta word cannot make a frame lie.
    pub fn received(words: [u64; 4], data: &'a mut [u8], data_len: usize, caps: &[u32]) -> Message<'a> {
        let mut message = Message::new(data);
        message.words = words;
        message.data_len = data_len.min(MAX_DATA).min(message.data.len());
        let n = caps.len().min(MAX_CAPS);
        message.caps[..n].copy_from_slice(&caps[..n]);
        message.cap_count = n;
        message
    }

    /// Empties the message: label 0, no data, no handles.
    pub fn clear(&mut self) {
        self.words = [0; 4];
        self.data_len = 0;
        self.caps = [0; MAX_CAPS];
        self.cap_count = 0;
    }

    /// The message's data bytes (`data_len` clamped to the buffer and [`MAX_DATA`]).
    pub fn data_bytes(&self) -> &[u8] {
        let n = self.data_len.min(MAX_DATA).min(self.data.len());
        &self.data[..n]
    }

    /// The message's handles (`cap_count` clamped to [`MAX_CAPS`]).
    pub fn handles(&self) -> &[u32] {
        &self.caps[..self.cap_count.min(MAX_CAPS)]
    }

    /// A read-only view of the message.
    pub fn frame(&self) -> Frame<'_> {
        Frame { words: self.words, data: self.data_bytes(), caps: self.handles() }
    }
}

/// The client side of a connection (an endpoint capability in the runtime).
pub trait Transport {
    /// Sends one request and waits for its reply. `stage` writes the request into a [`Message`]
    /// over the send buffer; if it returns `Err(e)`, nothing is sent and `call` returns
    /// `Err(e)`. Otherwise the message is sent (words, `data[..data_len]`, `caps[..cap_count]`,
    /// the handles moving to the server), and `read` sees the reply, valid only during `read`.
    /// `Err` is a transport failure (e.g. `PeerDied`); the reply's content is `read`'s business.
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error>;

    /// Deletes a capability the client received but does not keep (a reply that did not decode,
    /// or a refusal that carried handles).
    fn drop_cap(&self, handle: u32);
}

impl<T: Transport> Transport for &T {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        (**self).call(stage, read)
    }

    fn drop_cap(&self, handle: u32) {
        (**self).drop_cap(handle);
    }
}

/// Who sent the request being handled, as the kernel stamped it (it cannot be forged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The sender's container id.
    pub container: u64,
    /// The sender's process id inside its container.
    pub pid: u64,
    /// The badge of the capability the sender used (0: none).
    pub badge: u64,
}

/// The server loop's side of the request being handled (implemented by the runtime).
pub trait ReplyKeeper {
    /// Turns the pending reply of the request being handled into a reply capability handle
    /// (single use), so the loop can take the next request and answer this one later. At most
    /// once per request.
    fn take_reply(&mut self) -> Result<u32, Error>;

    /// Deletes a capability that arrived with a request and that the server does not keep
    /// (requests that fail to decode; servers may use it through [`crate::Cx::drop_cap`]).
    fn drop_cap(&mut self, handle: u32);
}

/// Answers kept replies (implemented by the runtime; usable from any thread).
pub trait ReplySender {
    /// Stages a reply with `stage` and sends it through the reply capability `reply`, which is
    /// used up. The sender's handles in the staged message move to the caller.
    fn send_reply(&self, reply: u32, stage: impl FnOnce(&mut Message<'_>)) -> Result<(), Error>;

    /// Deletes a capability that was staged in a reply but could not be sent.
    fn drop_cap(&self, handle: u32);
}
