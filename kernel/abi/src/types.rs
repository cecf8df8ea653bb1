//! Argument and result structures of the system calls, all `#[repr(C)]` with explicit widths.

use bitflags::bitflags;

/// Scheduling priority of a process. Higher runs first; equal priorities share the CPU in time
/// slices.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Runs only when nothing else is ready.
    Low = 0,
    /// The default.
    Normal = 1,
    /// Preempts normal and low work.
    High = 2,
}

impl Priority {
    /// Number of priority levels.
    pub const LEVELS: usize = 3;

    /// Decodes a priority argument.
    pub fn from_u32(value: u32) -> Option<Priority> {
        match value {
            0 => Some(Priority::Low),
            1 => Some(Priority::Normal),
            2 => Some(Priority::High),
            _ => None,
        }
    }
}

/// Argument of `Spawn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SpawnRequest {
    /// Path of the program in the boot file system (UTF-8, no NUL).
    pub path_ptr: u64,
    /// Its length in bytes (at most [`MAX_PATH`]).
    pub path_len: u64,
    /// Arguments as one blob of NUL-terminated strings, `argv[0]` first (may be 0/0).
    pub args_ptr: u64,
    /// Blob length in bytes (at most [`MAX_ARGS`]).
    pub args_len: u64,
    /// A [`Priority`] value.
    pub priority: u32,
    /// 0, or [`SPAWN_IMAGE`]: `path_ptr`/`path_len` then hold the program's ELF image itself
    /// (at most [`MAX_IMAGE`] bytes, read from the caller's memory) instead of a boot file
    /// system path, and the process is named by its `argv[0]`.
    pub flags: u32,
    /// Handles (u32 each) of capabilities the child gets copies of (needs TRANSFER on each);
    /// they appear in the child's `StartInfo` handle table in this order.
    pub caps_ptr: u64,
    /// Number of handles (at most [`MAX_SPAWN_CAPS`]).
    pub caps_len: u64,
    /// 0: the child joins the caller's container and `Spawn` returns its pid. Otherwise a
    /// container capability (needs MANAGE): the child starts there, and `Spawn` returns a
    /// process capability (all rights) instead, since a pid names a process only inside its
    /// own container. Every capability in `caps` must then belong to that container or be a
    /// system-service endpoint.
    pub container: u64,
    /// The environment as one blob of NUL-terminated `NAME=value` strings (may be 0/0). With the
    /// arguments it shares [`MAX_ARGS`] bytes.
    pub env_ptr: u64,
    /// Its length in bytes.
    pub env_len: u64,
}

/// `SpawnRequest::flags`: the program comes as an ELF image in the caller's memory (read from a
/// file by `proc`), not from the boot file system.
pub const SPAWN_IMAGE: u32 = 1;
/// Largest ELF image `Spawn` accepts with [`SPAWN_IMAGE`].
pub const MAX_IMAGE: u64 = 4 << 20;

/// Most capabilities a parent may hand to a child at spawn.
pub const MAX_SPAWN_CAPS: u64 = 32;

/// Longest path accepted.
pub const MAX_PATH: u64 = 256;
/// Largest argument blob accepted.
pub const MAX_ARGS: u64 = 4096;
/// Largest `DebugWrite` accepted in one call.
pub const MAX_DEBUG_WRITE: u64 = 64 * 1024;

/// Why a process was ended by a CPU fault.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Access to an unmapped page or with the wrong permission (includes null dereference).
    PageFault = 1,
    /// General protection fault (privileged instruction, non-canonical address, ...).
    GeneralProtection = 2,
    /// Invalid opcode (#UD).
    InvalidOpcode = 3,
    /// Division by zero or overflow (#DE).
    DivideError = 4,
    /// Touched the guard page below the stack.
    StackOverflow = 5,
    /// Jumped to memory that is not executable.
    ExecuteViolation = 6,
    /// Breakpoint instruction with no debugger.
    Breakpoint = 7,
    /// SIMD or x87 floating-point exception.
    FloatingPoint = 8,
    /// Any other exception.
    Other = 255,
}

impl FaultKind {
    /// Decodes a raw kind.
    pub fn from_u32(value: u32) -> FaultKind {
        use FaultKind::*;
        match value {
            1 => PageFault,
            2 => GeneralProtection,
            3 => InvalidOpcode,
            4 => DivideError,
            5 => StackOverflow,
            6 => ExecuteViolation,
            7 => Breakpoint,
            8 => FloatingPoint,
            _ => Other,
        }
    }
}

/// How a process ended, as written by `Wait`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// 0 exited with `code`, 1 faulted (`fault`, `address`, `ip` valid), 2 killed.
    pub how: u32,
    /// A [`FaultKind`] when `how` is 1.
    pub fault: u32,
    /// Exit code when `how` is 0.
    pub code: i64,
    /// Faulting address (CR2 for page faults).
    pub address: u64,
    /// Instruction pointer at the fault.
    pub ip: u64,
}

/// The typed view of an [`ExitStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Called `Exit` (or returned from `main`).
    Code(i64),
    /// Killed by a CPU fault.
    Fault {
        /// What happened.
        kind: FaultKind,
        /// The faulting address.
        address: u64,
        /// Where.
        ip: u64,
    },
    /// Ended by `Kill` (or its parent's death).
    Killed,
}

impl ExitStatus {
    /// Encodes a typed exit.
    pub fn from_exit(exit: Exit) -> Self {
        match exit {
            Exit::Code(code) => ExitStatus { how: 0, code, ..Default::default() },
            Exit::Fault { kind, address, ip } => ExitStatus { how: 1, fault: kind as u32, address, ip, code: 0 },
            Exit::Killed => ExitStatus { how: 2, ..Default::default() },
        }
    }

    /// Decodes into the typed view.
    pub fn exit(&self) -> Exit {
        match self.how {
            0 => Exit::Code(self.code),
            1 => Exit::Fault { kind: FaultKind::from_u32(self.fault), address: self.address, ip: self.ip },
            _ => Exit::Killed,
        }
    }
}

/// `Wait` and `ProcessInfo` flag: the first argument is a process capability, not a pid.
pub const BY_CAPABILITY: u64 = 1;

/// `Power` action: switch the machine off (ACPI S5).
pub const POWER_OFF: u64 = 1;
/// `Power` action: reset the machine.
pub const POWER_REBOOT: u64 = 2;

/// Output of `ProcessInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessInfo {
    /// The process id inside its container (the first process of a container is 1).
    pub pid: u64,
    /// Its parent's pid (0 for init, or when the parent is in another container).
    pub parent: u64,
    /// 0 running or ready, 1 blocked, 2 exited (not yet reaped).
    pub state: u32,
    /// Its [`Priority`].
    pub priority: u32,
    /// Timer ticks during which it was running.
    pub cpu_ticks: u64,
    /// Number of live threads.
    pub threads: u64,
    /// Id of the container it belongs to.
    pub container: u64,
    /// Pages of its own memory (image, stack, heap, IPC buffers and thread pages: what its
    /// container is charged for it).
    pub pages: u64,
}

/// Output of `KernelStats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Free physical frames.
    pub free_frames: u64,
    /// All managed frames.
    pub total_frames: u64,
    /// Bytes allocated from the kernel heap.
    pub heap_used: u64,
    /// Live processes (including exited ones not yet reaped).
    pub processes: u64,
    /// Live threads.
    pub threads: u64,
    /// Timer tick frequency.
    pub tick_hz: u64,
    /// Live kernel objects (endpoints, notifications, memory objects).
    pub objects: u64,
    /// Capabilities in all tables.
    pub caps: u64,
    /// IPC messages delivered by the kernel's general path since boot (every message the fast
    /// path does not take: data or capabilities, nobody waiting, kept replies). A counter for
    /// tests and profiling; the fast path counts nothing, as a counter there would cost every
    /// round trip two instructions.
    pub ipc_general: u64,
    /// Frames the kernel keeps for reuse rather than freeing: the mapped stacks of ended threads,
    /// a few at most. Not in `free_frames`; how many depends on what ended before.
    pub pooled_frames: u64,
    /// Receives and notification waits made with a timeout since boot: a server that polls
    /// shows up here (tests check that idle servers make none).
    pub timed_waits: u64,
    /// The longest stretch the kernel ran with interrupts off since measuring started
    /// (`KernelStats` with [`MEASURE_IRQS_OFF`]), in nanoseconds; 0 if never measured. One
    /// stretch runs from a kernel entry out of code with interrupts on (user code, the idle halt)
    /// to the next return to such code.
    pub irqs_off_longest_ns: u64,
    /// The system call whose entry began that stretch (`u64::MAX`: an interrupt, or the idle
    /// thread waking), to tell which work to split further.
    pub irqs_off_longest_call: u64,
    /// Nanoseconds the CPU spent halted with nothing to run since boot: benchmarks subtract it
    /// to get the busy time of work that waits for a device.
    pub idle_ns: u64,
    /// Frames of released DMA memory waiting for `DmaQuiesce` (not in `free_frames`).
    pub dma_quarantined: u64,
    /// Frames set aside for the kernel heap that it has not grown into: they hold nothing, no
    /// other use may take them (not in `free_frames`), and the heap takes them as it needs.
    pub heap_held_frames: u64,
    /// Frames holding the boot file system unpacked from a packed ramdisk (not in
    /// `free_frames`; 0 for a plain ramdisk, which stays in the bootloader's memory). Read-only
    /// files for the system's life, reported apart from what the kernel and programs use.
    pub bootfs_frames: u64,
}

/// Output of `PlatformEcam`: where PCI's memory-mapped configuration space is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EcamInfo {
    /// Physical address of the first bus's space (4 KiB per function, 1 MiB per bus).
    pub address: u64,
    /// The first bus it covers.
    pub first_bus: u64,
    /// The last bus it covers.
    pub last_bus: u64,
}

/// Output of `LogRead`: which bytes of the kernel's output it copied.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogChunk {
    /// The number (from boot) of the first byte copied: past the `from` asked for when the
    /// bytes before it are no longer kept.
    pub first: u64,
    /// The number of the byte after the last one copied: where the next read starts.
    pub next: u64,
}

/// Output of `FramebufferTake`: the boot framebuffer's geometry and pixel format.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramebufferInfo {
    /// Physical address of the first pixel.
    pub address: u64,
    /// Bytes of framebuffer memory.
    pub size: u64,
    /// Visible width in pixels.
    pub width: u64,
    /// Visible height in pixels.
    pub height: u64,
    /// Pixels from one line's start to the next's.
    pub stride: u64,
    /// Bytes per pixel.
    pub bytes_per_pixel: u64,
    /// One of the `PIXEL_*` constants.
    pub format: u64,
}

/// [`FramebufferInfo::format`]: red, green, blue bytes in that order (then padding).
pub const PIXEL_RGB: u64 = 0;
/// [`FramebufferInfo::format`]: blue, green, red bytes in that order (then padding).
pub const PIXEL_BGR: u64 = 1;
/// [`FramebufferInfo::format`]: one grey-scale byte.
pub const PIXEL_GREY: u64 = 2;
/// [`FramebufferInfo::format`]: a layout the kernel does not know.
pub const PIXEL_UNKNOWN: u64 = 3;

/// `KernelStats` flag: start measuring interrupts-off stretches afresh (the longest goes back to
/// 0), once the counts are taken. Measuring costs every system call a few instructions, so it
/// is off until asked for.
pub const MEASURE_IRQS_OFF: u64 = 1;
/// `KernelStats` flag: stop measuring (the longest so far stays readable).
pub const STOP_IRQS_OFF: u64 = 2;

impl KernelStats {
    /// Frames free or pooled for reuse: what leak checks compare (`free_frames` alone moves as
    /// the kernel-stack pool fills and drains).
    pub fn available_frames(&self) -> u64 {
        self.free_frames + self.pooled_frames
    }
}

bitflags! {
    /// Permissions of memory from `MemMap`. Writable and executable together are refused (W^X).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MapFlags: u64 {
        /// The pages may be written.
        const WRITE = 1 << 0;
        /// The pages may be executed.
        const EXEC = 1 << 1;
        /// Keep the page below the mapping unmapped and reserved (a stack's guard): touching it
        /// faults, and no other mapping lands there until these pages are unmapped.
        const GUARD = 1 << 2;
    }
}

/// One argument string: address and length (no NUL counted).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ArgSlice {
    /// Address of the bytes.
    pub ptr: u64,
    /// Length.
    pub len: u64,
}

/// What a new process finds: `rdi` at its entry point holds the address of this structure,
/// written by the kernel at the top of the stack together with the argument strings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StartInfo {
    /// [`START_MAGIC`]: lets the runtime check it was started by a compatible kernel.
    pub magic: u64,
    /// The process id.
    pub pid: u64,
    /// Number of arguments.
    pub argc: u64,
    /// Address of `argc` [`ArgSlice`]s.
    pub argv: u64,
    /// The boot file system (a cpio archive) mapped read-only, for `init` only; 0 otherwise.
    pub bootfs_ptr: u64,
    /// Its length.
    pub bootfs_len: u64,
    /// Initial capabilities handed to the process: address of `handles_len` u32 handles.
    pub handles_ptr: u64,
    /// Number of initial capabilities.
    pub handles_len: u64,
    /// Number of environment strings.
    pub envc: u64,
    /// Address of `envc` [`ArgSlice`]s, each a `NAME=value` string.
    pub envp: u64,
}

/// Value of [`StartInfo::magic`] ("VESSEL" + ABI version 2: the environment).
pub const START_MAGIC: u64 = 0x5645_5353_454c_0002;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_round_trip() {
        for exit in [
            Exit::Code(-3),
            Exit::Code(0),
            Exit::Killed,
            Exit::Fault { kind: FaultKind::StackOverflow, address: 0x7fff_0000, ip: 0x20_1000 },
        ] {
            assert_eq!(ExitStatus::from_exit(exit).exit(), exit);
        }
        assert_eq!(FaultKind::from_u32(999), FaultKind::Other);
    }

    #[test]
    fn layout_is_ordered() {
        const { assert!(crate::PROGRAM_START < crate::PROGRAM_END) };
        const { assert!(crate::PROGRAM_END <= crate::HEAP_START && crate::HEAP_END < crate::STACK_GUARD) };
        const { assert!(crate::STACK_TOP < crate::USER_END) };
        assert_eq!(core::mem::size_of::<SpawnRequest>(), 80);
        assert_eq!(core::mem::size_of::<ExitStatus>(), 32);
        assert_eq!(Priority::from_u32(3), None);
    }
}

bitflags! {
    /// What a capability allows. Rights only shrink: duplicating, minting or transferring a
    /// capability can drop rights, never add them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Read the object (memory) or receive notification bits.
        const READ = 1 << 0;
        /// Write the object (memory).
        const WRITE = 1 << 1;
        /// Map the object (memory) into an address space.
        const MAP = 1 << 2;
        /// Send or call on an endpoint; signal a notification.
        const SEND = 1 << 3;
        /// Receive on an endpoint; wait on a notification.
        const RECEIVE = 1 << 4;
        /// Make copies with `CapDuplicate` / `CapMint`.
        const DUPLICATE = 1 << 5;
        /// Move or copy the capability to another process inside a message.
        const TRANSFER = 1 << 6;
        /// Revoke what was derived from it; bind IRQs; other management.
        const MANAGE = 1 << 7;
    }
}

/// Quota resources of a container, in the order of [`ContainerLimits::amounts`].
pub const QUOTA_RESOURCES: [&str; 5] = ["pages", "processes", "threads", "objects", "cap_slots"];

/// Limits of a new container: memory pages, processes, threads, kernel objects (endpoints,
/// notifications, memory objects, containers) and capability slots. [`UNLIMITED`] for a
/// resource means "as much as the parent has left".
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerLimits {
    /// Indexed like [`QUOTA_RESOURCES`].
    pub amounts: [u64; 5],
}

/// "No own limit" in [`ContainerLimits`].
pub const UNLIMITED: u64 = u64::MAX;

impl Default for ContainerLimits {
    fn default() -> Self {
        ContainerLimits { amounts: [UNLIMITED; 5] }
    }
}

impl ContainerLimits {
    /// Pages (index 0).
    pub const PAGES: usize = 0;
    /// Processes (index 1).
    pub const PROCESSES: usize = 1;
    /// Threads (index 2).
    pub const THREADS: usize = 2;
    /// Kernel objects (index 3).
    pub const OBJECTS: usize = 3;
    /// Capability slots (index 4).
    pub const CAP_SLOTS: usize = 4;
}

/// Output of `ContainerInfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The container's id: random, never 0, never reused while the system runs.
    pub id: u64,
    /// Its parent's id (0 for the root container).
    pub parent: u64,
    /// 0 alive, 1 being destroyed.
    pub state: u32,
    /// Depth in the tree (the root is 0).
    pub depth: u32,
    /// Number of child containers.
    pub children: u64,
    /// Live processes in it (not counting descendants; a zombie still counts in `usage`).
    pub members: u64,
    /// Limits, indexed like [`QUOTA_RESOURCES`].
    pub limits: [u64; 5],
    /// Usage, including descendants' (charged hierarchically).
    pub usage: [u64; 5],
}
