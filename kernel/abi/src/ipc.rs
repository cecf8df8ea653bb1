//! IPC message layout: a few words in registers, plus the per-process IPC buffer page for bulk
//! data, capabilities and the sender's identity.
//!
//! Registers of `Call`, `Reply`, `ReplyRecv` (in) and of every message delivered (out): words in
//! `rsi, rdx, r10, r8`, the [`Meta`] word in `r9`; a delivered message also has the sender's
//! badge in `rdi`. Bulk data and capabilities travel through the [`IpcBuffer`] at
//! [`IPC_BUFFER`]: the kernel copies the sender's buffer into the receiver's, and writes the
//! sender's process id and container id there. These are stamped by the kernel and cannot be
//! forged.

/// Bytes of data a message may carry besides its four words.
pub const MAX_MESSAGE_DATA: usize = 4096;
/// Capabilities a message may carry.
pub const MAX_MESSAGE_CAPS: usize = 4;
/// Where the thread slots of every process begin. Slot `k` (thread `k` of the process; the
/// first thread is slot 0) holds that thread's IPC buffer (two pages, paged in on first touch),
/// then its [`ThreadPage`], then a guard page. See [`ipc_buffer_of`]. The area is the megabyte
/// above the main stack, so the first thread's slot shares the stack's page tables: a process
/// needs no page table for its thread area until it has many threads.
pub const THREAD_AREA: u64 = crate::STACK_TOP;
/// Bytes of one thread slot.
pub const THREAD_SLOT_SIZE: u64 = 4 * 4096;
/// Threads a process may have at once (live, or ended and not yet waited for).
pub const MAX_THREADS: u64 = 64;
/// The first thread's IPC buffer.
pub const IPC_BUFFER: u64 = THREAD_AREA;
/// Size of an IPC buffer mapping.
pub const IPC_BUFFER_SIZE: u64 = 2 * 4096;

/// The IPC buffer of thread slot `slot`.
pub const fn ipc_buffer_of(slot: u64) -> u64 {
    THREAD_AREA + slot * THREAD_SLOT_SIZE
}

/// The [`ThreadPage`] of thread slot `slot`; a thread's `fs` base points at its own.
pub const fn thread_page_of(slot: u64) -> u64 {
    ipc_buffer_of(slot) + IPC_BUFFER_SIZE
}

/// The page the kernel writes for each thread before it starts, at its `fs` base: how the
/// runtime finds its own IPC buffer (`mov rax, fs:[8]`). The thread may use the rest of the
/// page for its own thread-local data.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThreadPage {
    /// The page's own address.
    pub this: u64,
    /// The thread's IPC buffer.
    pub ipc_buffer: u64,
    /// The thread's slot (0: the first thread).
    pub slot: u64,
}

/// Byte offset of [`ThreadPage::ipc_buffer`].
pub const THREAD_PAGE_IPC_BUFFER_OFFSET: usize = 8;

/// The meta word of a message: data length, capability count, flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Bytes of `IpcBuffer::data` that belong to the message (≤ [`MAX_MESSAGE_DATA`]).
    pub data_len: u16,
    /// Entries of `IpcBuffer::caps` that belong to the message (≤ [`MAX_MESSAGE_CAPS`]).
    pub cap_count: u8,
    /// [`NONBLOCK`] and friends.
    pub flags: u8,
}

/// Flag: fail with `WouldBlock` instead of waiting.
pub const NONBLOCK: u8 = 1;
/// Flag (`Recv`, `WaitNotification`): the timeout argument is valid.
pub const TIMEOUT: u8 = 2;
/// Flag set by the kernel on a receive (`Recv`, `ReplyRecv`) that the thread's bound
/// notification ended: `w0` holds the bits taken, there is no caller to answer.
pub const NOTIFIED: u8 = 4;
/// Flag (`Call`): the caller offers a receive window, the [`IpcBuffer::window_len`] bytes at
/// [`IpcBuffer::window`]: while the caller waits for the reply, the server that owes it may
/// copy bytes of its own memory straight into that range (`WindowWrite`).
pub const WINDOW: u8 = 8;
/// Bytes one `WindowWrite` copies at most (the work it does with interrupts off stays bounded).
pub const MAX_WINDOW_WRITE: u64 = 128 * 1024;
/// Pieces (address, length) one `WindowWrite` gathers at most.
pub const MAX_WINDOW_PIECES: usize = 64;

impl Meta {
    /// Packs into a register: bits 0-15 data length, 16-23 capability count, 24-31 flags.
    pub fn to_word(self) -> u64 {
        u64::from(self.data_len) | u64::from(self.cap_count) << 16 | u64::from(self.flags) << 24
    }

    /// Unpacks a register (bits above 31 ignored).
    pub fn from_word(word: u64) -> Meta {
        Meta { data_len: word as u16, cap_count: (word >> 16) as u8, flags: (word >> 24) as u8 }
    }
}

/// The IPC buffer page(s), read and written by the kernel during IPC.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IpcBuffer {
    /// Send: handles of capabilities to move to the receiver. Receive: the new handles.
    pub caps: [u32; MAX_MESSAGE_CAPS],
    /// Receive: the sender's process id inside its own container.
    pub sender_pid: u64,
    /// Receive: the sender's container id.
    pub sender_container: u64,
    /// Receive: the badge of the capability the sender used (also in `rdi`).
    pub badge: u64,
    /// Call with [`WINDOW`]: the start of the caller's receive window (its own memory, mapped
    /// writable), read by the kernel when the server writes into it.
    pub window: u64,
    /// Call with [`WINDOW`]: the window's length in bytes.
    pub window_len: u64,
    /// Reserved, 0.
    pub reserved: u64,
    /// Message data.
    pub data: [u8; MAX_MESSAGE_DATA],
}

/// Byte offset of [`IpcBuffer::data`] in the buffer.
pub const IPC_DATA_OFFSET: usize = 64;
/// Byte offset of [`IpcBuffer::caps`].
pub const IPC_CAPS_OFFSET: usize = 0;
/// Byte offset of [`IpcBuffer::sender_pid`].
pub const IPC_SENDER_OFFSET: usize = 16;
/// Byte offset of [`IpcBuffer::window`] ([`IpcBuffer::window_len`] follows it).
pub const IPC_WINDOW_OFFSET: usize = 40;

/// What `CapInspect` reports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapInfo {
    /// [`ObjectKind`] as a number.
    pub kind: u32,
    /// `Rights` bits.
    pub rights: u32,
    /// The badge (0: none).
    pub badge: u64,
    /// Kind-specific: the line of an IRQ, `first | last << 16` of a port range, the physical
    /// address of an MMIO region, the process id of a process, the id of a
    /// container.
    pub detail: u64,
}

/// Kinds of kernel objects a capability may refer to.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// Synchronous IPC endpoint.
    Endpoint = 1,
    /// Asynchronous signal word.
    Notification = 2,
    /// Frames that can be mapped and shared.
    Memory = 3,
    /// A range of I/O ports.
    IoPorts = 4,
    /// An interrupt line.
    Irq = 5,
    /// A device register region.
    Mmio = 6,
    /// A process.
    Process = 7,
    /// A container.
    Container = 8,
    /// A thread.
    Thread = 9,
    /// A kept reply (`ReplyTake`): answers one caller once.
    Reply = 10,
    /// The authority over the machine's hardware (held by the `device` server): makes port,
    /// interrupt, MMIO, DMA and MSI capabilities.
    Platform = 11,
    /// An MSI vector (detail: the vector).
    Msi = 12,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trip_and_layout() {
        let meta = Meta { data_len: 4096, cap_count: 4, flags: NONBLOCK };
        assert_eq!(Meta::from_word(meta.to_word()), meta);
        assert_eq!(core::mem::offset_of!(IpcBuffer, data), IPC_DATA_OFFSET);
        assert_eq!(core::mem::offset_of!(IpcBuffer, caps), IPC_CAPS_OFFSET);
        assert_eq!(core::mem::offset_of!(IpcBuffer, sender_pid), IPC_SENDER_OFFSET);
        assert_eq!(core::mem::offset_of!(IpcBuffer, window), IPC_WINDOW_OFFSET);
        assert_eq!(core::mem::offset_of!(IpcBuffer, window_len), IPC_WINDOW_OFFSET + 8);
        assert!(core::mem::size_of::<IpcBuffer>() as u64 <= IPC_BUFFER_SIZE);
        assert_eq!(core::mem::offset_of!(ThreadPage, ipc_buffer), THREAD_PAGE_IPC_BUFFER_OFFSET);
        // Slots never overlap, and a slot's last page is left unmapped as a guard.
        assert!(thread_page_of(0) + 4096 < ipc_buffer_of(1));
        assert!(ipc_buffer_of(MAX_THREADS) <= crate::USER_END);
        // The area and the main stack share one 2 MiB page table.
        assert_eq!((crate::STACK_TOP - crate::STACK_SIZE) >> 21, (ipc_buffer_of(MAX_THREADS) - 1) >> 21);
    }
}
