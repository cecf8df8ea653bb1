//! Kernel objects reached through capabilities: endpoints, notifications, memory objects, and
//! the hardware objects (port ranges, interrupt lines, MMIO regions) that init receives at boot
//! for the future device server. Hardware objects have no state of their own and live forever.
//!
//! Every endpoint, notification and memory object belongs to the container of the process that
//! created it (its quota pays for it); only same-container processes may use it, except an
//! endpoint registered as a system service, which any container may call.
//!
//! Invariants: an object lives while at least one capability refers to it (`caps > 0`), and a
//! memory object also while it is mapped anywhere (`mappings > 0`); the count of capabilities
//! with RECEIVE on an endpoint is `receivers`, and when it reaches 0 nobody can ever answer, so
//! every caller queued on it, and every later caller, gets `PeerDied`. Wait queues hold only
//! threads blocked on that object.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use vessel_container::Index;

use super::thread::Tid;

/// What a capability points at. Ids are never reused while the system runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectRef {
    /// An endpoint.
    Endpoint(u64),
    /// A notification.
    Notification(u64),
    /// A memory object.
    Memory(u64),
    /// I/O ports `first..=last`.
    IoPorts(u16, u16),
    /// ISA interrupt line.
    Irq(u8),
    /// Device registers: physical address and length.
    Mmio(u64, u64),
    /// A process (ids are never reused, so a capability outliving its process is harmless:
    /// every use answers `NoSuchProcess`).
    Process(u64),
    /// A container (a destroyed one's index is never valid again: every use answers
    /// `NoSuchContainer`).
    Container(Index),
    /// A thread: its process and its own id (neither is reused; see `threads`).
    Thread(u64, u64),
    /// A kept reply (see `reply`).
    Reply(u64),
}

/// A synchronous IPC rendezvous point.
pub struct Endpoint {
    /// The container it belongs to.
    pub container: Index,
    /// Registered as a system-service endpoint: callable from every container.
    pub service: bool,
    /// Capabilities referring to it.
    pub caps: u32,
    /// Capabilities with RECEIVE.
    pub receivers: u32,
    /// Callers waiting for a receiver, with the badge of the capability each used.
    pub senders: VecDeque<(Tid, u64)>,
    /// Receivers waiting for a caller.
    pub waiting: VecDeque<Tid>,
}

/// An asynchronous signal word.
pub struct Notification {
    /// The container it belongs to.
    pub container: Index,
    /// Capabilities referring to it.
    pub caps: u32,
    /// Pending bits.
    pub word: u64,
    /// Threads blocked waiting for bits.
    pub waiters: VecDeque<Tid>,
    /// The thread it is bound to (`NotificationBind`): a signal with no waiter wakes that
    /// thread if it is blocked receiving on an endpoint.
    pub bound: Option<Tid>,
}

/// Frames that can be mapped into several address spaces.
pub struct Memory {
    /// The container it belongs to (its pages are charged there).
    pub container: Index,
    /// Capabilities referring to it.
    pub caps: u32,
    /// Live mappings.
    pub mappings: u32,
    /// The frames (owned by the object; mapped as borrowed).
    pub frames: Vec<u64>,
}

/// What a thread is blocked on in IPC, so death and timeouts can undo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IpcWait {
    /// Not in IPC.
    #[default]
    None,
    /// Queued as a caller on an endpoint.
    Send(u64),
    /// Queued as a receiver on an endpoint.
    Receive(u64),
    /// Waiting for the reply of this server thread.
    Reply(Tid),
    /// Waiting on a notification.
    Notification(u64),
    /// Waiting for the answer to a call whose reply the server kept: this reply object.
    Kept(u64),
}

impl Endpoint {
    /// A new endpoint of `container`, with no capability yet.
    pub fn new(container: Index) -> Self {
        Endpoint {
            container,
            service: false,
            caps: 0,
            receivers: 0,
            senders: VecDeque::new(),
            waiting: VecDeque::new(),
        }
    }
}

impl Notification {
    /// A new notification of `container`, with no capability yet.
    pub fn new(container: Index) -> Self {
        Notification { container, caps: 0, word: 0, waiters: VecDeque::new(), bound: None }
    }
}
