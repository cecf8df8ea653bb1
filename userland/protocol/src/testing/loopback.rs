//! In-memory transports for host tests. [`Loopback`] carries a client's request to a server's
//! `dispatch` and its reply back, as the kernel would (capability handles pass through
//! unchanged); a deferred reply arrives through the [`Mailbox`], which plays the runtime's
//! [`ReplySender`]. [`Recorder`] only records what a client stages (fuzzing seeds).
//!
//! One thread: when a reply is deferred, [`Loopback::call`] lets the server run its idle step
//! (given with [`Loopback::with_idle`]) until the reply arrives, at most [`IDLE_STEPS`] times,
//! then fails with `WouldBlock` where the kernel would block.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell, RefMut};

use vessel_abi::Error;

use crate::serve::Dispatched;
use crate::transport::{Caller, Frame, Message, ReplyKeeper, ReplySender, Transport};
use crate::{MAX_CAPS, MAX_DATA};

/// Idle steps a loopback call waits for a deferred reply.
pub const IDLE_STEPS: usize = 16;

/// A generated `dispatch` for server type `S`.
pub type DispatchFn<S> = fn(&mut S, Caller, &mut dyn ReplyKeeper, &mut Message<'_>) -> Dispatched;

/// A message with its data and handles copied out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedFrame {
    /// The words.
    pub words: [u64; 4],
    /// The data.
    pub data: Vec<u8>,
    /// The handles.
    pub caps: Vec<u32>,
}

impl OwnedFrame {
    /// A view as a received frame.
    pub fn frame(&self) -> Frame<'_> {
        Frame { words: self.words, data: &self.data, caps: &self.caps }
    }
}

impl From<Frame<'_>> for OwnedFrame {
    fn from(frame: Frame<'_>) -> OwnedFrame {
        OwnedFrame { words: frame.words, data: frame.data.to_vec(), caps: frame.caps.to_vec() }
    }
}

/// Deferred replies in flight, and the capabilities the server side deleted.
#[derive(Debug, Default)]
pub struct Mailbox {
    issued: RefCell<Vec<u32>>,
    replies: RefCell<Vec<(u32, OwnedFrame)>>,
    dropped: RefCell<Vec<u32>>,
    next: Cell<u32>,
}

impl Mailbox {
    fn issue(&self) -> u32 {
        let handle = 0x8000 + self.next.get();
        self.next.set(self.next.get() + 1);
        self.issued.borrow_mut().push(handle);
        handle
    }

    fn take(&self, reply: u32) -> Option<OwnedFrame> {
        let mut replies = self.replies.borrow_mut();
        let at = replies.iter().position(|(h, _)| *h == reply)?;
        Some(replies.remove(at).1)
    }

    /// Capabilities deleted by the server side (dispatch, server methods, failed sends).
    pub fn dropped(&self) -> Vec<u32> {
        self.dropped.borrow().clone()
    }
}

impl ReplySender for Mailbox {
    fn send_reply(&self, reply: u32, stage: impl FnOnce(&mut Message<'_>)) -> Result<(), Error> {
        let mut issued = self.issued.borrow_mut();
        let at = issued.iter().position(|&h| h == reply).ok_or(Error::InvalidHandle)?;
        issued.remove(at);
        drop(issued);
        let mut data = vec![0u8; MAX_DATA];
        let mut message = Message::new(&mut data);
        stage(&mut message);
        let frame = OwnedFrame::from(message.frame());
        self.replies.borrow_mut().push((reply, frame));
        Ok(())
    }

    fn drop_cap(&self, handle: u32) {
        self.dropped.borrow_mut().push(handle);
    }
}

/// A [`ReplyKeeper`] that records what the server did with the request being handled.
#[derive(Debug, Default)]
pub struct RecordingKeeper {
    /// The reply handle given out by `take_reply`, if any.
    pub reply: Option<u32>,
    /// Handles deleted.
    pub dropped: Vec<u32>,
}

impl ReplyKeeper for RecordingKeeper {
    fn take_reply(&mut self) -> Result<u32, Error> {
        if self.reply.is_some() {
            return Err(Error::InvalidArgument);
        }
        self.reply = Some(0x9000);
        Ok(0x9000)
    }

    fn drop_cap(&mut self, handle: u32) {
        self.dropped.push(handle);
    }
}

struct LoopKeeper<'m> {
    mailbox: &'m Mailbox,
    reply: Option<u32>,
}

impl ReplyKeeper for LoopKeeper<'_> {
    fn take_reply(&mut self) -> Result<u32, Error> {
        if self.reply.is_some() {
            return Err(Error::InvalidArgument);
        }
        let handle = self.mailbox.issue();
        self.reply = Some(handle);
        Ok(handle)
    }

    fn drop_cap(&mut self, handle: u32) {
        self.mailbox.dropped.borrow_mut().push(handle);
    }
}

/// A client connected in memory to a server `S` through its `dispatch`.
pub struct Loopback<S> {
    server: RefCell<S>,
    dispatch: DispatchFn<S>,
    idle: Option<fn(&mut S, &Mailbox)>,
    caller: Cell<Caller>,
    mailbox: Mailbox,
    client_dropped: RefCell<Vec<u32>>,
}

impl<S> Loopback<S> {
    /// `server`, reached through `dispatch` (pass the generated `dispatch::<S>`). Requests come
    /// from container 1, pid 1, badge 0 until [`set_caller`](Self::set_caller).
    pub fn new(server: S, dispatch: DispatchFn<S>) -> Loopback<S> {
        Loopback {
            server: RefCell::new(server),
            dispatch,
            idle: None,
            caller: Cell::new(Caller { container: 1, pid: 1, badge: 0 }),
            mailbox: Mailbox::default(),
            client_dropped: RefCell::new(Vec::new()),
        }
    }

    /// Runs `idle` while a call waits for a deferred reply (the server's "meanwhile").
    pub fn with_idle(mut self, idle: fn(&mut S, &Mailbox)) -> Loopback<S> {
        self.idle = Some(idle);
        self
    }

    /// Who the next requests come from.
    pub fn set_caller(&self, caller: Caller) {
        self.caller.set(caller);
    }

    /// The server, to look at or change between calls.
    pub fn server(&self) -> RefMut<'_, S> {
        self.server.borrow_mut()
    }

    /// The mailbox of deferred replies (to answer them from a test).
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// Capabilities the client side deleted (from refusals and malformed replies).
    pub fn client_dropped(&self) -> Vec<u32> {
        self.client_dropped.borrow().clone()
    }

    /// Sends a hand-made message (at most [`MAX_CAPS`] handles); the reply as it came back.
    pub fn raw(&self, words: [u64; 4], data: &[u8], caps: &[u32]) -> Result<OwnedFrame, Error> {
        self.call(
            |message| {
                let room = message.data.get_mut(..data.len()).ok_or(Error::TooLarge)?;
                room.copy_from_slice(data);
                let n = caps.len().min(MAX_CAPS);
                message.caps[..n].copy_from_slice(&caps[..n]);
                message.cap_count = n;
                message.words = words;
                message.data_len = data.len();
                Ok(())
            },
            |frame: Frame<'_>| OwnedFrame::from(frame),
        )
    }

    fn wait_for(&self, reply: u32) -> Result<OwnedFrame, Error> {
        for _ in 0..IDLE_STEPS {
            if let Some(frame) = self.mailbox.take(reply) {
                return Ok(frame);
            }
            match self.idle {
                Some(idle) => idle(&mut self.server.borrow_mut(), &self.mailbox),
                None => break,
            }
        }
        self.mailbox.take(reply).ok_or(Error::WouldBlock)
    }
}

impl<S> Transport for Loopback<S> {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        let mut data = vec![0u8; MAX_DATA];
        let mut message = Message::new(&mut data);
        stage(&mut message)?;
        // What the kernel refuses to send.
        if message.data_len > MAX_DATA || message.cap_count > MAX_CAPS {
            return Err(Error::TooLarge);
        }
        let mut keeper = LoopKeeper { mailbox: &self.mailbox, reply: None };
        let outcome = (self.dispatch)(&mut self.server.borrow_mut(), self.caller.get(), &mut keeper, &mut message);
        match (outcome, keeper.reply) {
            (Dispatched::Reply, _) => Ok(read(message.frame())),
            (Dispatched::Deferred, Some(reply)) => self.wait_for(reply).map(|frame| read(frame.frame())),
            (Dispatched::Deferred, None) => Err(Error::InvalidArgument),
        }
    }

    fn drop_cap(&self, handle: u32) {
        self.client_dropped.borrow_mut().push(handle);
    }
}

/// A transport that records each staged request and sends nothing (`call` fails with
/// `WouldBlock`).
#[derive(Debug, Default)]
pub struct Recorder {
    frames: RefCell<Vec<OwnedFrame>>,
}

impl Recorder {
    /// The requests recorded so far (emptied).
    pub fn take(&self) -> Vec<OwnedFrame> {
        core::mem::take(&mut self.frames.borrow_mut())
    }
}

impl Transport for Recorder {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        _read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        let mut data = vec![0u8; MAX_DATA];
        let mut message = Message::new(&mut data);
        stage(&mut message)?;
        self.frames.borrow_mut().push(OwnedFrame::from(message.frame()));
        Err(Error::WouldBlock)
    }

    fn drop_cap(&self, _handle: u32) {}
}
