//! The runtime side of declared protocols (`vessel_protocol`): an [`Endpoint`] is a client
//! [`Transport`], and [`Server`] is the receive loop a server builds on, with kept replies
//! ([`Keeper`], [`Replies`]), bound-notification wake-ups and timeouts.
//!
//! A request is copied out of the IPC buffer into the server's own buffer before it is
//! handled, and the reply staged there is copied back when it is sent. A handler may therefore
//! make IPC calls of its own (answer kept replies, call other servers) without clobbering the
//! request it is reading: the IPC buffer belongs to whichever message the thread sends or
//! receives last.

use alloc::vec;
use alloc::vec::Vec;

use vessel_abi::{Error, MAX_MESSAGE_CAPS, Meta};
use vessel_protocol::{Caller, Dispatched, Frame, MAX_DATA, Message, ReplyKeeper, ReplySender, Transport};

use crate::ipc::{self, Cap, Endpoint, ReplyCap, buffer};

/// The meta word of a staged message.
fn meta_of(message: &Message<'_>) -> Meta {
    Meta { data_len: message.data_bytes().len() as u16, cap_count: message.handles().len() as u8, flags: 0 }
}

/// Stages a message in this thread's IPC buffer with `stage` (nothing if it fails); returns the
/// words and meta word to send with it.
fn stage_in_buffer(stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>) -> Result<([u64; 4], Meta), Error> {
    // SAFETY: the buffer is staged here and sent by the caller right after, with no other IPC of
    // this thread in between (`stage` only encodes).
    let buf = unsafe { buffer() };
    let mut message = Message::new(&mut buf.data);
    stage(&mut message)?;
    let (words, meta, caps) = (message.words, meta_of(&message), message.caps);
    buf.caps = caps;
    Ok((words, meta))
}

/// Deletes the `count` handles staged in the IPC buffer by a send that failed: they did not
/// move, and must not pile up here.
fn drop_staged(count: u8) {
    // SAFETY: read right after the failed send, before any other IPC.
    let buf = unsafe { buffer() };
    for &handle in buf.caps.iter().take(usize::from(count)) {
        let _ = Cap(handle).delete();
    }
}

/// Stages a request with `stage`, sends it through `endpoint` offering `window` (start, length)
/// if there is one, and shows `read` the reply.
#[inline(always)]
fn call_through<R>(
    endpoint: Endpoint,
    window: Option<(u64, u64)>,
    stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
    read: impl FnOnce(Frame<'_>) -> R,
) -> Result<R, Error> {
    let (words, mut meta) = stage_in_buffer(stage)?;
    if let Some(offered) = window {
        // SAFETY: staged and sent right here, with no other IPC of this thread in between.
        let buf = unsafe { buffer() };
        (buf.window, buf.window_len) = offered;
        meta.flags |= vessel_abi::WINDOW;
    }
    let result = Endpoint::call(endpoint, words, meta);
    // SAFETY: the reply (or nothing) is in the buffer now; `read` only decodes it, and the
    // window is closed first so no later call offers it by mistake.
    let buf = unsafe { buffer() };
    if window.is_some() {
        (buf.window, buf.window_len) = (0, 0);
    }
    let reply = result?;
    let data = usize::from(reply.meta.data_len).min(MAX_DATA);
    let caps = usize::from(reply.meta.cap_count).min(MAX_MESSAGE_CAPS);
    Ok(read(Frame { words: reply.words, data: &buf.data[..data], caps: &buf.caps[..caps] }))
}

/// On a transport error the handles staged in the request stay with the caller if the kernel
/// refused the message before it moved (as every refused message loses nothing); if the server
/// died after receiving it, they went with it.
impl Transport for Endpoint {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        call_through(*self, None, stage, read)
    }

    fn drop_cap(&self, handle: u32) {
        let _ = Cap(handle).delete();
    }
}

/// A client [`Transport`] whose calls offer a receive window: the server answering may copy
/// bytes straight into it ([`crate::ipc::window_write`]) while the call waits, each byte once.
/// The window stays borrowed as long as this transport lives.
pub struct Windowed<'a> {
    endpoint: Endpoint,
    window: *mut u8,
    len: usize,
    _borrow: core::marker::PhantomData<&'a mut [u8]>,
}

impl<'a> Windowed<'a> {
    /// Calls through `endpoint`, offering `window`.
    pub fn new(endpoint: Endpoint, window: &'a mut [u8]) -> Self {
        Windowed { endpoint, window: window.as_mut_ptr(), len: window.len(), _borrow: core::marker::PhantomData }
    }
}

impl Transport for Windowed<'_> {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        call_through(self.endpoint, Some((self.window as u64, self.len as u64)), stage, read)
    }

    fn drop_cap(&self, handle: u32) {
        let _ = Cap(handle).delete();
    }
}

/// Keeps replies and drops unwanted capabilities for the request being handled.
pub struct Keeper;

impl ReplyKeeper for Keeper {
    fn take_reply(&mut self) -> Result<u32, Error> {
        ReplyCap::take().map(|r| r.0.0)
    }

    fn drop_cap(&mut self, handle: u32) {
        let _ = Cap(handle).delete();
    }
}

/// Answers kept replies (from any thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct Replies;

impl ReplySender for Replies {
    fn send_reply(&self, reply: u32, stage: impl FnOnce(&mut Message<'_>)) -> Result<(), Error> {
        let (words, meta) = stage_in_buffer(|message| {
            stage(message);
            Ok(())
        })?;
        let sent = ReplyCap(Cap(reply)).send(words, meta);
        if sent.is_err() {
            drop_staged(meta.cap_count);
        }
        sent
    }

    fn drop_cap(&self, handle: u32) {
        let _ = Cap(handle).delete();
    }
}

/// What woke a server.
pub enum Incoming<'a> {
    /// A request, copied into the server's buffer; answer it with [`Server::answer`] (or keep
    /// its reply through [`Keeper`]).
    Request {
        /// Who called.
        caller: Caller,
        /// The request, in place; the reply is staged over it.
        message: Message<'a>,
    },
    /// The thread's bound notification was signalled with these bits.
    Notified(u64),
    /// The timeout passed with nothing received.
    TimedOut,
}

/// A reply staged over the request [`Server::next`] gave, noted for
/// [`Server::answer_then_next`] (its data stays in the server's buffer until then).
#[derive(Clone, Copy, Debug)]
pub struct Staged {
    words: [u64; 4],
    meta: Meta,
    caps: [u32; MAX_MESSAGE_CAPS],
}

impl Staged {
    /// The reply staged in `message`, the request the server received last.
    pub fn of(message: &Message<'_>) -> Staged {
        Staged { words: message.words, meta: meta_of(message), caps: message.caps }
    }

    /// Puts the reply's `data` and capabilities in this thread's IPC buffer, for the system
    /// call that sends it next.
    fn stage(&self, data: &[u8]) {
        // SAFETY: the caller sends the reply right after, with no other IPC of this thread in
        // between.
        let buf = unsafe { buffer() };
        buf.data[..data.len()].copy_from_slice(data);
        buf.caps = self.caps;
    }

    /// Sends the staged reply (`Reply`); if it cannot go (the caller died), the capabilities
    /// staged in it are deleted.
    fn send(&self) -> Result<(), Error> {
        let sent = ipc::reply(self.words, self.meta);
        if sent.is_err() {
            drop_staged(self.meta.cap_count);
        }
        sent
    }
}

/// A server's receive loop on one endpoint.
pub struct Server {
    endpoint: Endpoint,
    data: Vec<u8>,
}

impl Server {
    /// A server receiving on `endpoint`.
    pub fn new(endpoint: Endpoint) -> Server {
        Server { endpoint, data: vec![0; MAX_DATA] }
    }

    /// Waits for the next request or event, at most `timeout_ns` if given.
    pub fn next(&mut self, timeout_ns: Option<u64>) -> Result<Incoming<'_>, Error> {
        let received = match timeout_ns {
            Some(ns) => self.endpoint.recv_timeout(ns),
            None => self.endpoint.recv(),
        };
        self.take(received)
    }

    /// Sends `reply` to the caller of the request just handled, then waits for the next
    /// request or event as [`Server::next`] does. A reply that moves no capabilities, with no
    /// timeout, goes in the same system call as the receive (`ReplyRecv`; a caller that died
    /// meanwhile is nobody's loss); otherwise as [`Server::answer`] sends it, then a receive.
    pub fn answer_then_next(&mut self, reply: Staged, timeout_ns: Option<u64>) -> Result<Incoming<'_>, Error> {
        let len = usize::from(reply.meta.data_len).min(MAX_DATA);
        reply.stage(&self.data[..len]);
        if reply.meta.cap_count == 0 && timeout_ns.is_none() {
            let received = self.endpoint.reply_recv(reply.words, reply.meta);
            return self.take(received);
        }
        let _ = reply.send();
        self.next(timeout_ns)
    }

    /// What a receive brought: a request copied into the server's buffer, or an event.
    fn take(&mut self, received: Result<ipc::Received, Error>) -> Result<Incoming<'_>, Error> {
        let received = match received {
            Ok(r) => r,
            Err(Error::TimedOut) => return Ok(Incoming::TimedOut),
            Err(e) => return Err(e),
        };
        if let Some(bits) = received.notified() {
            return Ok(Incoming::Notified(bits));
        }
        // SAFETY: read right after the receive, before any other IPC of this thread.
        let buf = unsafe { buffer() };
        let len = usize::from(received.meta.data_len).min(MAX_DATA);
        let caps = usize::from(received.meta.cap_count).min(MAX_MESSAGE_CAPS);
        self.data[..len].copy_from_slice(&buf.data[..len]);
        let caller = Caller { container: buf.sender_container, pid: buf.sender_pid, badge: received.badge };
        let message = Message::received(received.words, &mut self.data, len, &buf.caps[..caps]);
        Ok(Incoming::Request { caller, message })
    }

    /// Serves requests forever (for servers that need no events or timeouts): `handle` is a
    /// protocol's `dispatch` with the server bound. Returns only if receiving fails.
    pub fn serve(mut self, mut handle: impl FnMut(Caller, &mut Message<'_>) -> Dispatched) -> Error {
        let mut reply = None;
        loop {
            let incoming = match reply.take() {
                Some(staged) => self.answer_then_next(staged, None),
                None => self.next(None),
            };
            match incoming {
                Ok(Incoming::Request { caller, mut message }) => {
                    if handle(caller, &mut message) == Dispatched::Reply {
                        reply = Some(Staged::of(&message));
                    }
                }
                Ok(Incoming::Notified(_) | Incoming::TimedOut) => {}
                Err(e) => return e,
            }
        }
    }

    /// Sends the reply staged in `message` to the caller of the request just handled. If it
    /// cannot go (the caller died), the capabilities staged in it are deleted.
    pub fn answer(message: &Message<'_>) -> Result<(), Error> {
        let reply = Staged::of(message);
        reply.stage(message.data_bytes());
        reply.send()
    }
}
