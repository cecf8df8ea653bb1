//! Capabilities and IPC for programs: typed handles over raw capability slots, calls, a server
//! loop, notifications, shared memory. See `docs/abi.md` for the kernel side.

use vessel_abi::{
    CapInfo, Error, IpcBuffer, MapFlags, Meta, NONBLOCK, NOTIFIED, Rights, SyscallArgs, THREAD_PAGE_IPC_BUFFER_OFFSET,
    TIMEOUT, UNBIND, args,
};

use crate::arch::syscall_ipc;
use crate::sys::invoke;

/// A capability slot of this process (any kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(pub u32);

impl Cap {
    /// What it refers to and allows.
    pub fn inspect(self) -> Result<CapInfo, Error> {
        let mut info = CapInfo::default();
        invoke(args::CapInspect { handle: u64::from(self.0), info: &raw mut info as u64 })?;
        Ok(info)
    }

    /// A copy with at most `rights`.
    pub fn duplicate(self, rights: Rights) -> Result<Cap, Error> {
        invoke(args::CapDuplicate { handle: u64::from(self.0), rights: u64::from(rights.bits()) })
            .map(|h| Cap(h as u32))
    }

    /// A badged copy (endpoints only; the original must be unbadged).
    pub fn mint(self, rights: Rights, badge: u64) -> Result<Cap, Error> {
        invoke(args::CapMint { handle: u64::from(self.0), rights: u64::from(rights.bits()), badge })
            .map(|h| Cap(h as u32))
    }

    /// Deletes this capability.
    pub fn delete(self) -> Result<(), Error> {
        invoke(args::CapDelete { handle: u64::from(self.0) }).map(|_| ())
    }

    /// Deletes everything derived from it, in every process; returns how many.
    pub fn revoke(self) -> Result<u64, Error> {
        invoke(args::CapRevoke { handle: u64::from(self.0) })
    }
}

/// An endpoint capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint(pub Cap);
/// A notification capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification(pub Cap);
/// A memory-object capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory(pub Cap);

/// A message received: badge, words and meta (data and capabilities are in the IPC buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Badge of the capability the sender used (0: none).
    pub badge: u64,
    /// The four words.
    pub words: [u64; 4],
    /// Data length and capability count.
    pub meta: Meta,
}

impl Received {
    /// The receive was ended by the thread's bound notification, not by a caller: `words[0]`
    /// holds the bits, and there is nobody to answer.
    pub fn notified(&self) -> Option<u64> {
        (self.meta.flags & NOTIFIED != 0).then_some(self.words[0])
    }
}

/// A kept reply (`ReplyTake`): answers the caller of one received message, once, from any
/// thread of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyCap(pub Cap);

impl ReplyCap {
    /// Keeps the reply the running thread owes for the message it just received, so it can
    /// receive other messages first and answer this one later.
    pub fn take() -> Result<ReplyCap, Error> {
        invoke(args::ReplyTake {}).map(|h| ReplyCap(Cap(h as u32)))
    }

    /// Answers with `words` (plus data and capabilities staged in this thread's IPC buffer,
    /// as for a reply). The capability is used up, whatever the result.
    pub fn send(self, words: [u64; 4], meta: Meta) -> Result<(), Error> {
        let [w0, w1, w2, w3] = words;
        invoke(args::ReplySend { reply: u64::from(self.0.0), w0, w1, w2, w3, meta: meta.to_word() }).map(|_| ())
    }
}

/// Copies `pieces` (address, length) of this process's memory, in order, to byte `offset` of the
/// receive window of a caller waiting for a reply from this thread: the caller of the message
/// it just received (`reply` `None`), or the caller of a kept reply. The call must have offered
/// a window ([`crate::server::Windowed`]); at most [`vessel_abi::MAX_WINDOW_WRITE`] bytes and
/// [`vessel_abi::MAX_WINDOW_PIECES`] pieces at once. Returns the bytes copied.
pub fn window_write(reply: Option<ReplyCap>, offset: u64, pieces: &[[u64; 2]]) -> Result<u64, Error> {
    invoke(args::WindowWrite {
        reply: reply.map_or(0, |r| u64::from(r.0.0)),
        offset,
        pieces: pieces.as_ptr() as u64,
        count: pieces.len() as u64,
    })
}

/// The running thread's IPC buffer.
///
/// # Safety
/// The buffer is one per thread and the kernel writes it on every message the thread receives:
/// hold the reference only between sending and receiving, not across another IPC call, and
/// not in another thread.
pub unsafe fn buffer() -> &'static mut IpcBuffer {
    let at: u64;
    // SAFETY: the kernel points `fs` at the running thread's thread page before it first runs
    // and on every switch to it; the page holds the buffer's address at this offset. Reading
    // it has no side effects.
    unsafe {
        core::arch::asm!(
            "mov {at}, qword ptr fs:[{offset}]",
            at = out(reg) at,
            offset = const THREAD_PAGE_IPC_BUFFER_OFFSET,
            options(nostack, readonly, preserves_flags),
        );
    }
    // SAFETY: the kernel reserves the thread's buffer range and pages it in on first touch;
    // the caller upholds the aliasing rule above.
    unsafe { &mut *(at as *mut IpcBuffer) }
}

// Inline (with `call` and `reply_recv` below): a call then runs on its caller's code page instead
// of jumping to the runtime's, one page fewer to refill after each address-space switch.
#[inline]
fn message_call<A: SyscallArgs>(args: A) -> Result<Received, Error> {
    // SAFETY: the message registers are plain numbers; the kernel reads the IPC buffer itself.
    let out = unsafe { syscall_ipc(A::CALL as u64, args.registers()) };
    if out[0] != 0 {
        return Err(Error::from_code(out[0]));
    }
    Ok(Received { badge: out[1], words: [out[2], out[3], out[4], out[5]], meta: Meta::from_word(out[6]) })
}

impl Endpoint {
    /// A new endpoint with all rights.
    pub fn create() -> Result<Endpoint, Error> {
        invoke(args::EndpointCreate {}).map(|h| Endpoint(Cap(h as u32)))
    }

    /// Sends `words` (plus `meta.data_len` bytes and `meta.cap_count` capabilities staged in the
    /// IPC buffer) and waits for the reply.
    #[inline]
    pub fn call(self, words: [u64; 4], meta: Meta) -> Result<Received, Error> {
        let [w0, w1, w2, w3] = words;
        message_call(args::Call { endpoint: u64::from(self.0.0), w0, w1, w2, w3, meta: meta.to_word() })
    }

    /// Like [`call`](Self::call), but fails with `WouldBlock` unless a receiver is waiting.
    pub fn try_call(self, words: [u64; 4], meta: Meta) -> Result<Received, Error> {
        self.call(words, Meta { flags: NONBLOCK, ..meta })
    }

    fn receive(self, timeout_ns: u64, flags: u8) -> Result<Received, Error> {
        message_call(args::Recv { endpoint: u64::from(self.0.0), timeout_ns, flags: u64::from(flags) })
    }

    /// Waits for a message.
    pub fn recv(self) -> Result<Received, Error> {
        self.receive(0, 0)
    }

    /// Takes a message if one is queued, else `WouldBlock`.
    pub fn try_recv(self) -> Result<Received, Error> {
        self.receive(0, NONBLOCK)
    }

    /// Waits at most `ns` nanoseconds for a message (`TimedOut` after).
    pub fn recv_timeout(self, ns: u64) -> Result<Received, Error> {
        self.receive(ns, TIMEOUT)
    }

    /// Answers the last message and waits for the next.
    #[inline]
    pub fn reply_recv(self, words: [u64; 4], meta: Meta) -> Result<Received, Error> {
        let [w0, w1, w2, w3] = words;
        message_call(args::ReplyRecv { endpoint: u64::from(self.0.0), w0, w1, w2, w3, meta: meta.to_word() })
    }

    /// Serves forever: `handler` turns each message into its reply. The smallest server loop,
    /// with nothing but the handler between two receives (it is the benchmarks' echo server):
    /// on a thread with a bound notification the handler also sees the receives the
    /// notification ended ([`Received::notified`]), whose "reply" goes nowhere. Servers that
    /// wait for events use [`crate::server::Server`], which tells the two apart.
    pub fn serve(self, mut handler: impl FnMut(&Received) -> ([u64; 4], Meta)) -> Error {
        let mut message = match self.recv() {
            Ok(m) => m,
            Err(e) => return e,
        };
        loop {
            let (words, meta) = handler(&message);
            message = match self.reply_recv(words, meta) {
                Ok(m) => m,
                Err(e) => return e,
            };
        }
    }
}

/// Answers the last message received.
pub fn reply(words: [u64; 4], meta: Meta) -> Result<(), Error> {
    let [w0, w1, w2, w3] = words;
    message_call(args::Reply { reserved: 0, w0, w1, w2, w3, meta: meta.to_word() }).map(|_| ())
}

impl Notification {
    /// A new notification with all rights.
    pub fn create() -> Result<Notification, Error> {
        invoke(args::NotificationCreate {}).map(|h| Notification(Cap(h as u32)))
    }

    /// Sets `bits`, waking a waiter.
    #[inline]
    pub fn signal(self, bits: u64) -> Result<(), Error> {
        invoke(args::Signal { notification: u64::from(self.0.0), bits }).map(|_| ())
    }

    /// Waits for bits and takes them.
    #[inline]
    pub fn wait(self) -> Result<u64, Error> {
        invoke(args::WaitNotification { notification: u64::from(self.0.0), timeout_ns: 0, flags: 0 })
    }

    /// Binds this notification to the running thread: its receives on any endpoint also end
    /// when the notification is signalled (see [`Received::notified`]).
    pub fn bind(self) -> Result<(), Error> {
        invoke(args::NotificationBind { notification: u64::from(self.0.0), flags: 0 }).map(|_| ())
    }

    /// Drops the running thread's bound notification, if any.
    pub fn unbind_current() -> Result<(), Error> {
        invoke(args::NotificationBind { notification: 0, flags: UNBIND }).map(|_| ())
    }

    /// Takes the pending bits (0 if none) without waiting.
    #[inline]
    pub fn poll(self) -> Result<u64, Error> {
        invoke(args::WaitNotification { notification: u64::from(self.0.0), timeout_ns: 0, flags: u64::from(NONBLOCK) })
    }

    /// Waits at most `ns` nanoseconds.
    #[inline]
    pub fn wait_timeout(self, ns: u64) -> Result<u64, Error> {
        invoke(args::WaitNotification { notification: u64::from(self.0.0), timeout_ns: ns, flags: u64::from(TIMEOUT) })
    }
}

impl Memory {
    /// A new memory object of `pages` zeroed pages.
    pub fn create(pages: u64) -> Result<Memory, Error> {
        invoke(args::MemoryCreate { pages }).map(|h| Memory(Cap(h as u32)))
    }

    /// A new memory object of `pages` zeroed pages made for the container with id `container`
    /// (this process's or one below it): charged there and sendable there; this process may
    /// map it too.
    pub fn lend(pages: u64, container: u64) -> Result<Memory, Error> {
        invoke(args::MemoryLend { pages, container }).map(|h| Memory(Cap(h as u32)))
    }

    /// Maps it into this process; returns the address.
    pub fn map(self, flags: MapFlags) -> Result<u64, Error> {
        invoke(args::MemoryMap { memory: u64::from(self.0.0), flags: flags.bits() })
    }
}

/// A range of I/O ports (drivers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPorts(pub Cap);
/// An interrupt line (drivers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq(pub Cap);
/// A device register region (drivers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmio(pub Cap);

impl IoPorts {
    /// Reads `width` (1, 2 or 4) bytes from `port`.
    pub fn read(self, port: u16, width: u8) -> Result<u32, Error> {
        invoke(args::IoPortRead { ports: u64::from(self.0.0), port: u64::from(port), width: u64::from(width) })
            .map(|v| v as u32)
    }

    /// Writes `width` (1, 2 or 4) bytes to `port`.
    pub fn write(self, port: u16, width: u8, value: u32) -> Result<(), Error> {
        invoke(args::IoPortWrite {
            ports: u64::from(self.0.0),
            port: u64::from(port),
            width: u64::from(width),
            value: u64::from(value),
        })
        .map(|_| ())
    }
}

impl Irq {
    /// Delivers the line as `bits` on `notification`; the line stays masked after each
    /// interrupt until [`ack`](Self::ack).
    pub fn bind(self, notification: Notification, bits: u64) -> Result<(), Error> {
        invoke(args::IrqBind { irq: u64::from(self.0.0), notification: u64::from(notification.0.0), bits }).map(|_| ())
    }

    /// Stops delivering the line.
    pub fn unbind(self) -> Result<(), Error> {
        invoke(args::IrqBind { irq: u64::from(self.0.0), notification: 0, bits: 0 }).map(|_| ())
    }

    /// Lets the line fire again.
    pub fn ack(self) -> Result<(), Error> {
        invoke(args::IrqAck { irq: u64::from(self.0.0) }).map(|_| ())
    }
}

impl Mmio {
    /// Maps the registers uncached; returns the address.
    pub fn map(self) -> Result<u64, Error> {
        invoke(args::MmioMap { mmio: u64::from(self.0.0) })
    }
}

/// A process capability: lets its holder end the process, whoever started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessHandle(pub Cap);

impl ProcessHandle {
    /// A capability to this process or one of its children.
    pub fn of(pid: u64) -> Result<ProcessHandle, Error> {
        invoke(args::ProcessCap { pid }).map(|h| ProcessHandle(Cap(h as u32)))
    }

    /// Signals `bits` on `notification` when the process ends (at once if it has).
    pub fn notify_on_exit(self, notification: Notification, bits: u64) -> Result<(), Error> {
        invoke(args::ProcessNotify { process: u64::from(self.0.0), notification: u64::from(notification.0.0), bits })
            .map(|_| ())
    }

    /// Ends the process.
    pub fn kill(self) -> Result<(), Error> {
        invoke(args::ProcessKill { process: u64::from(self.0.0) }).map(|_| ())
    }
}
