//! Vessel's kernel/user ABI: the single contract shared by the kernel and the user runtime
//! (STYLE habit 1). Nothing here executes a system call; the runtime holds the `asm!` stubs.
//!
//! # Calling convention
//! `syscall` with the number in `rax` and up to six arguments in `rdi, rsi, rdx, r10, r8, r9`
//! (`rcx` and `r11` are clobbered by the instruction). On return `rax` holds 0 for success or an
//! [`Error`] code, and `rdx` the result value. Pointers are user addresses; the kernel checks each
//! one (null, kernel half, non-canonical, overflowing, unmapped, wrong permissions) and answers
//! [`Error::BadAddress`] rather than faulting. See `docs/abi.md`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod ipc;
mod layout;
mod types;

pub use ipc::*;
pub use layout::*;
pub use types::*;

/// System call numbers.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// `(ptr, len)`: write bytes to the kernel debug console (serial). Until the device server.
    DebugWrite = 0,
    /// `(code)`: end the calling process with an exit code. Does not return.
    Exit = 1,
    /// `()`: give up the rest of the time slice.
    Yield = 2,
    /// `() -> pid`: the caller's process id. The cheapest call (the "null syscall").
    ProcessId = 3,
    /// `(&SpawnRequest) -> pid`: start a program from the boot file system as a child.
    Spawn = 4,
    /// `(pid, *mut ExitStatus)`: wait until the child `pid` ends, reap it, report how it ended.
    Wait = 5,
    /// `(pid)`: end a child process.
    Kill = 6,
    /// `(pid, *mut ProcessInfo)`: state and CPU use of the caller or one of its children.
    ProcessInfo = 7,
    /// `(nanoseconds)`: block for at least this long.
    Sleep = 8,
    /// `() -> nanoseconds`: monotonic time since boot.
    Clock = 9,
    /// `(pages, MapFlags) -> address`: map zeroed anonymous memory.
    MemMap = 10,
    /// `(address, pages)`: unmap memory obtained with `MemMap`.
    MemUnmap = 11,
    /// `(*mut KernelStats)`: frame, heap and object counts (for leak tests and tools).
    KernelStats = 12,
    /// `(code)`: leave the emulator through `isa-debug-exit`; refused unless the image allows it.
    DebugExit = 13,
    /// `(handle, *mut CapInfo)`: what a capability refers to and allows.
    CapInspect = 14,
    /// `(handle, rights mask) -> handle`: a copy with at most the given rights (needs DUPLICATE).
    CapDuplicate = 15,
    /// `(handle, rights mask, badge) -> handle`: a badged copy of an unbadged endpoint capability.
    CapMint = 16,
    /// `(handle)`: delete one capability.
    CapDelete = 17,
    /// `(handle)`: delete every capability derived from this one, in every process (needs MANAGE).
    CapRevoke = 18,
    /// `() -> handle`: a new endpoint (all rights).
    EndpointCreate = 19,
    /// `() -> handle`: a new notification (all rights).
    NotificationCreate = 20,
    /// `(endpoint, w0, w1, w2, w3, meta)`: send a message and wait for the reply; the reply comes
    /// back in the same registers (see `docs/abi.md`, IPC).
    Call = 21,
    /// `(endpoint, timeout_ns, _, _, _, flags)`: wait for a message; the badge comes back in
    /// `rdi`, the words in `rsi, rdx, r10, r8`, the meta word in `r9`.
    Recv = 22,
    /// `(_, w0, w1, w2, w3, meta)`: answer the last message received.
    Reply = 23,
    /// `(endpoint, w0, w1, w2, w3, meta)`: answer, then wait for the next message (one call).
    ReplyRecv = 24,
    /// `(notification, bits)`: set bits, waking a waiter.
    Signal = 25,
    /// `(notification, timeout_ns, flags) -> bits`: wait for bits (or poll with `NONBLOCK`).
    WaitNotification = 26,
    /// `(pages) -> handle`: a new memory object of zeroed frames.
    MemoryCreate = 27,
    /// `(memory, MapFlags) -> address`: map a memory object (needs MAP, and WRITE for writable).
    MemoryMap = 28,
    /// `(ports, port, width) -> value`: read an I/O port of a port-range capability (needs READ;
    /// width 1, 2 or 4 bytes).
    IoPortRead = 29,
    /// `(ports, port, width, value)`: write an I/O port (needs WRITE).
    IoPortWrite = 30,
    /// `(mmio) -> address`: map an MMIO region uncached (needs MAP, READ and WRITE).
    MmioMap = 31,
    /// `(irq, notification, bits)`: deliver the IRQ line as `bits` on the notification (needs
    /// MANAGE on the line and SEND on the notification); notification 0 unbinds. The line is
    /// masked after each interrupt until `IrqAck`.
    IrqBind = 32,
    /// `(irq)`: unmask the line after handling an interrupt (needs MANAGE).
    IrqAck = 33,
    /// `(pid) -> handle`: a capability to the caller itself or one of its children (all rights).
    ProcessCap = 34,
    /// `(process)`: end the process a process capability names (needs MANAGE); works for any
    /// holder, not only the parent.
    ProcessKill = 35,
    /// `(parent container, *const ContainerLimits) -> handle`: a new child container of the
    /// container the capability names (needs MANAGE); the new capability has all rights. See
    /// `docs/containers.md`.
    ContainerCreate = 36,
    /// `(container)`: destroy the container and all its descendants: every process in them
    /// ends, their objects go, their quota returns (needs MANAGE).
    ContainerDestroy = 37,
    /// `(container, *mut ContainerInfo)`: id, parent, state, members, limits and usage (needs
    /// READ). Handle 0 names the caller's own container.
    ContainerInfo = 38,
    /// `(endpoint, root container)`: register the endpoint as a system-service endpoint,
    /// callable from every container (needs MANAGE on the root container; `proc` holds it).
    ServiceRegister = 39,
    /// `(entry, stack_top, arg)`: start another thread in the calling process at `entry` with
    /// `rsp = stack_top` and `rdi = arg`; returns a thread capability (MANAGE: kill, READ: wait).
    /// Charges one thread and one page (its thread page) to the container.
    ThreadCreate = 40,
    /// `(code, addr, pages)`: end the calling thread; the last live thread ending ends the
    /// process with `code`. If `pages` > 0, `MemUnmap(addr, pages)` follows once the thread is
    /// gone (how a detached thread frees its own stack; a bad range is ignored). Does not return.
    ThreadExit = 41,
    /// `(thread, *mut ExitStatus)`: wait until the thread has ended, write how, and free its
    /// slot (needs READ). A thread cannot wait for itself.
    ThreadWait = 42,
    /// `(thread)`: end a thread of the caller's process, as if it had called `ThreadExit`
    /// (needs MANAGE); it reads as killed.
    ThreadKill = 43,
    /// `(thread)`: nobody will wait for this thread of the caller's process: its slot is freed
    /// as soon as it ends (at once if it has; needs MANAGE).
    ThreadDetach = 44,
    /// `() -> handle`: keep the reply of the call just received for later. The running thread's
    /// pending reply becomes a reply capability (kind `Reply`, right SEND only: it cannot be
    /// duplicated or sent to another process) that any thread of the process can answer once
    /// with `ReplySend`. Charges one kernel object to the container. `InvalidArgument` if the
    /// thread owes no reply.
    ReplyTake = 45,
    /// `(reply, w0, w1, w2, w3, meta)`: answer a kept reply with a message staged like a
    /// `Reply`'s (data and capabilities from the calling thread's IPC buffer). The reply
    /// capability is used up whatever happens: `PeerDied` if the caller is gone.
    ReplySend = 46,
    /// `(notification, flags)`: bind the notification to the calling thread (needs RECEIVE), so
    /// a `Recv` on any endpoint also wakes when it is signalled; the receive then returns the
    /// bits in `w0` with [`NOTIFIED`] in the meta flags. `flags` = [`UNBIND`] drops the
    /// thread's binding instead (the handle is ignored). A notification binds one thread.
    NotificationBind = 47,
    /// `(process, notification, bits)`: signal `bits` on the notification when the process
    /// ends (at once if it has ended). Needs READ on the process and SEND on the notification;
    /// at most [`MAX_EXIT_EVENTS`] notifications per process (bits to one notification merge).
    ProcessNotify = 48,
}

/// Flag of `NotificationBind`: unbind instead.
pub const UNBIND: u64 = 1;
/// Notifications one process's end can signal (`ProcessNotify`).
pub const MAX_EXIT_EVENTS: usize = 8;

impl TryFrom<u64> for Syscall {
    type Error = Error;

    fn try_from(number: u64) -> Result<Self, Error> {
        use Syscall::*;
        const ALL: [Syscall; 49] = [
            DebugWrite,
            Exit,
            Yield,
            ProcessId,
            Spawn,
            Wait,
            Kill,
            ProcessInfo,
            Sleep,
            Clock,
            MemMap,
            MemUnmap,
            KernelStats,
            DebugExit,
            CapInspect,
            CapDuplicate,
            CapMint,
            CapDelete,
            CapRevoke,
            EndpointCreate,
            NotificationCreate,
            Call,
            Recv,
            Reply,
            ReplyRecv,
            Signal,
            WaitNotification,
            MemoryCreate,
            MemoryMap,
            IoPortRead,
            IoPortWrite,
            MmioMap,
            IrqBind,
            IrqAck,
            ProcessCap,
            ProcessKill,
            ContainerCreate,
            ContainerDestroy,
            ContainerInfo,
            ServiceRegister,
            ThreadCreate,
            ThreadExit,
            ThreadWait,
            ThreadKill,
            ThreadDetach,
            ReplyTake,
            ReplySend,
            NotificationBind,
            ProcessNotify,
        ];
        usize::try_from(number).ok().and_then(|n| ALL.get(n)).copied().ok_or(Error::InvalidSyscall)
    }
}

/// Errors returned in `rax`. Zero is success and is not an error.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No system call has this number.
    InvalidSyscall = 1,
    /// A pointer argument is null, in the kernel half, non-canonical, wraps around, is not mapped
    /// or lacks the needed permission.
    BadAddress = 2,
    /// An argument is out of its range.
    InvalidArgument = 3,
    /// Not enough memory (frames, or the caller's address space).
    NoMemory = 4,
    /// No such file in the boot file system.
    NotFound = 5,
    /// A length is larger than the call accepts.
    TooLarge = 6,
    /// No process with this id is visible to the caller.
    NoSuchProcess = 7,
    /// The file is not a valid Vessel executable.
    BadExecutable = 8,
    /// The caller may not do this.
    AccessDenied = 9,
    /// The handle names no capability of the caller.
    InvalidHandle = 10,
    /// The handle's capability was deleted (or its slot reused).
    StaleHandle = 11,
    /// The capability lacks a right the operation needs.
    MissingRights = 12,
    /// The capability refers to another kind of object.
    WrongObject = 13,
    /// The caller's capability table (or the receiver's) has no free slot.
    TableFull = 14,
    /// A non-blocking operation would have had to wait.
    WouldBlock = 15,
    /// The timeout passed.
    TimedOut = 16,
    /// The other side is gone: the server died or the endpoint has no receiver left, or the
    /// caller being replied to died.
    PeerDied = 17,
    /// The other side is in another container, and the operation may not cross containers
    /// (only system-service endpoints can be called, or sent, across containers).
    CrossContainer = 18,
    /// The caller's container (or one of its ancestors) has used up its quota of this resource.
    QuotaExceeded = 19,
    /// The container was destroyed (or never existed), or is being destroyed.
    NoSuchContainer = 20,
}

impl Error {
    /// Decodes a non-zero `rax`; unknown codes map to `InvalidArgument` rather than panicking.
    pub fn from_code(code: u64) -> Error {
        use Error::*;
        match code {
            1 => InvalidSyscall,
            2 => BadAddress,
            4 => NoMemory,
            5 => NotFound,
            6 => TooLarge,
            7 => NoSuchProcess,
            8 => BadExecutable,
            9 => AccessDenied,
            10 => InvalidHandle,
            11 => StaleHandle,
            12 => MissingRights,
            13 => WrongObject,
            14 => TableFull,
            15 => WouldBlock,
            16 => TimedOut,
            17 => PeerDied,
            18 => CrossContainer,
            19 => QuotaExceeded,
            20 => NoSuchContainer,
            _ => InvalidArgument,
        }
    }

    /// A short description.
    pub fn as_str(self) -> &'static str {
        match self {
            Error::InvalidSyscall => "invalid system call",
            Error::BadAddress => "bad address",
            Error::InvalidArgument => "invalid argument",
            Error::NoMemory => "out of memory",
            Error::NotFound => "not found",
            Error::TooLarge => "too large",
            Error::NoSuchProcess => "no such process",
            Error::BadExecutable => "bad executable",
            Error::AccessDenied => "access denied",
            Error::InvalidHandle => "invalid handle",
            Error::StaleHandle => "stale handle",
            Error::MissingRights => "missing rights",
            Error::WrongObject => "wrong kind of object",
            Error::TableFull => "capability table full",
            Error::WouldBlock => "would block",
            Error::TimedOut => "timed out",
            Error::PeerDied => "peer died",
            Error::CrossContainer => "refused across containers",
            Error::QuotaExceeded => "container quota exceeded",
            Error::NoSuchContainer => "no such container",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Turns the two return registers into a `Result`.
#[inline]
pub fn decode_return(rax: u64, rdx: u64) -> Result<u64, Error> {
    if rax == 0 { Ok(rdx) } else { Err(Error::from_code(rax)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip_and_unknown_ones_fail() {
        for n in 0..49u64 {
            let call = Syscall::try_from(n).unwrap();
            assert_eq!(call as u64, n);
        }
        assert_eq!(Syscall::try_from(49), Err(Error::InvalidSyscall));
        assert_eq!(Syscall::try_from(u64::MAX), Err(Error::InvalidSyscall));
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 1..=20u64 {
            let e = Error::from_code(code);
            assert_eq!(e as u64, code, "{e}");
        }
        assert_eq!(decode_return(0, 7), Ok(7));
        assert_eq!(decode_return(2, 0), Err(Error::BadAddress));
        assert_eq!(decode_return(12345, 0), Err(Error::InvalidArgument));
    }
}
