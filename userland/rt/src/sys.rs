//! Typed system-call wrappers: one function per call in `vessel_abi::Syscall`, with `Result`s.

use vessel_abi::{
    Error, ExitStatus, KernelStats, MapFlags, ProcessInfo, SpawnRequest, SyscallArgs, args, decode_return,
};

use crate::arch::syscall;

/// Makes the system call whose typed arguments are `args` (`vessel_abi::args`: one struct per
/// call, declared with the call, so no stub packs registers by hand).
#[inline(always)]
pub(crate) fn invoke<A: SyscallArgs>(args: A) -> Result<u64, Error> {
    // SAFETY: the wrappers in this crate pass arguments that point at live memory of this
    // program (or plain numbers); the kernel validates them anyway. Calls that end or reshape
    // the process (`Exit`, `MemUnmap`) are wrapped where their promise is stated.
    let (rax, rdx) = unsafe { syscall(A::CALL as u64, args.registers()) };
    decode_return(rax, rdx)
}

/// Copies the boot file system from byte `offset` into `buffer` (at most 64 KiB); how many
/// bytes, 0 at its end. Root container only.
pub fn bootfs_read(offset: u64, buffer: &mut [u8]) -> Result<usize, Error> {
    invoke(args::BootfsRead { offset, buffer: buffer.as_mut_ptr() as u64, length: buffer.len() as u64 })
        .map(|n| n as usize)
}

/// Writes bytes to the kernel debug console.
pub fn debug_write(bytes: &[u8]) -> Result<(), Error> {
    invoke(args::DebugWrite { ptr: bytes.as_ptr() as u64, len: bytes.len() as u64 }).map(|_| ())
}

/// Ends this process.
pub fn exit(code: i32) -> ! {
    let _ = invoke(args::Exit { code: code as i64 as u64 });
    // The kernel never returns from Exit; if it did, fault rather than run on.
    loop {
        crate::arch::provoke(crate::arch::Fault::InvalidOpcode);
    }
}

/// Gives up the rest of the time slice.
pub fn yield_now() {
    let _ = invoke(args::Yield {});
}

/// This process's id.
pub fn process_id() -> u64 {
    invoke(args::ProcessId {}).unwrap_or(0)
}

/// Starts a program (see [`crate::process`] for the friendly form).
pub fn spawn(request: &SpawnRequest) -> Result<u64, Error> {
    invoke(args::Spawn { request: request as *const SpawnRequest as u64 })
}

/// Waits for child `pid` to end.
pub fn wait(pid: u64) -> Result<ExitStatus, Error> {
    let mut status = ExitStatus::default();
    invoke(args::Wait { pid, status: &raw mut status as u64, flags: 0 })?;
    Ok(status)
}

/// Waits for the child a process capability names (one placed in another container).
pub fn wait_handle(handle: u32) -> Result<ExitStatus, Error> {
    let mut status = ExitStatus::default();
    invoke(args::Wait { pid: u64::from(handle), status: &raw mut status as u64, flags: vessel_abi::BY_CAPABILITY })?;
    Ok(status)
}

/// State of the child a process capability names.
pub fn process_info_handle(handle: u32) -> Result<ProcessInfo, Error> {
    let mut info = ProcessInfo::default();
    invoke(args::ProcessInfo { pid: u64::from(handle), info: &raw mut info as u64, flags: vessel_abi::BY_CAPABILITY })?;
    Ok(info)
}

/// Ends child `pid`.
pub fn kill(pid: u64) -> Result<(), Error> {
    invoke(args::Kill { pid }).map(|_| ())
}

/// State and CPU use of this process or a child.
pub fn process_info(pid: u64) -> Result<ProcessInfo, Error> {
    let mut info = ProcessInfo::default();
    invoke(args::ProcessInfo { pid, info: &raw mut info as u64, flags: 0 })?;
    Ok(info)
}

/// Blocks for at least `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    let _ = invoke(args::Sleep { nanoseconds: ns });
}

/// Nanoseconds since boot.
pub fn clock_ns() -> u64 {
    invoke(args::Clock {}).unwrap_or(0)
}

/// Maps zeroed pages.
pub fn mem_map(pages: u64, flags: MapFlags) -> Result<u64, Error> {
    invoke(args::MemMap { pages, flags: flags.bits() })
}

/// Unmaps pages from [`mem_map`].
///
/// # Safety
/// Nothing may use the memory afterwards (the runtime's heap never gives its memory back).
pub unsafe fn mem_unmap(addr: u64, pages: u64) -> Result<(), Error> {
    invoke(args::MemUnmap { address: addr, pages }).map(|_| ())
}

/// Kernel frame, heap and object counts.
pub fn kernel_stats() -> Result<KernelStats, Error> {
    kernel_stats_and(0)
}

/// `kernel_stats` after starting (`MEASURE_IRQS_OFF`) or stopping (`STOP_IRQS_OFF`) the
/// measurement of interrupts-off stretches.
pub fn kernel_stats_and(flags: u64) -> Result<KernelStats, Error> {
    let mut stats = KernelStats::default();
    invoke(args::KernelStats { stats: &raw mut stats as u64, flags })?;
    Ok(stats)
}

/// Leaves the emulator (test and bench images only): 0 success, anything else failure.
pub fn debug_exit(code: u64) -> Result<(), Error> {
    invoke(args::DebugExit { code }).map(|_| ())
}

/// Starts another thread of this process at `entry` with `rsp = stack_top` and `rdi = arg`;
/// returns its capability. [`crate::thread::spawn`] is the safe way.
///
/// # Safety
/// `entry` must be code that never returns and `stack_top` the top of a stack nothing else
/// uses, valid for the thread's whole life.
pub unsafe fn thread_create(entry: u64, stack_top: u64, arg: u64) -> Result<u32, Error> {
    invoke(args::ThreadCreate { entry, stack_top, arg }).map(|h| h as u32)
}

/// Ends the calling thread (the process, if it is the last one).
pub fn thread_exit(code: i32) -> ! {
    // SAFETY: unmaps nothing.
    unsafe { thread_exit_unmapping(code, 0, 0) }
}

/// Ends the calling thread, then unmaps `pages` at `addr` (its own stack, typically).
///
/// # Safety
/// Nothing else may use that memory (the calling thread stops using it by ending).
pub unsafe fn thread_exit_unmapping(code: i32, addr: u64, pages: u64) -> ! {
    let _ = invoke(args::ThreadExit { code: code as i64 as u64, address: addr, pages });
    loop {
        crate::arch::provoke(crate::arch::Fault::InvalidOpcode);
    }
}

/// Waits until the thread a capability names has ended; frees its slot.
pub fn thread_wait(handle: u32) -> Result<ExitStatus, Error> {
    let mut status = ExitStatus::default();
    invoke(args::ThreadWait { thread: u64::from(handle), status: &raw mut status as u64 })?;
    Ok(status)
}

/// Ends a thread of this process.
pub fn thread_kill(handle: u32) -> Result<(), Error> {
    invoke(args::ThreadKill { thread: u64::from(handle) }).map(|_| ())
}

/// Says nobody will wait for a thread of this process: its slot is freed when it ends.
pub fn thread_detach(handle: u32) -> Result<(), Error> {
    invoke(args::ThreadDetach { thread: u64::from(handle) }).map(|_| ())
}

/// Copies the kernel's output (its log and the programs' debug output, numbered by byte from
/// boot) from byte `from` on into `buffer` (at most 4096 bytes a call); says which bytes came.
/// Root container only (`LogRead` without the platform capability).
pub fn log_copy(from: u64, buffer: &mut [u8]) -> Result<vessel_abi::LogChunk, Error> {
    let mut chunk = vessel_abi::LogChunk::default();
    invoke(args::LogCopy {
        from,
        buffer: buffer.as_mut_ptr() as u64,
        length: buffer.len() as u64,
        chunk: &raw mut chunk as u64,
    })?;
    Ok(chunk)
}

/// Switches the machine off ([`vessel_abi::POWER_OFF`]) or resets it
/// ([`vessel_abi::POWER_REBOOT`]). Root container only; sync the file systems first. Returns
/// only if it failed, with the reason.
pub fn power(action: u64) -> Error {
    match invoke(args::Power { action }) {
        Err(e) => e,
        // The kernel never answers success; if it did, the machine is still on all the same.
        Ok(_) => Error::DeviceError,
    }
}
