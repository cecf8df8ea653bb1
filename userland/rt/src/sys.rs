//! Typed system-call wrappers: one function per call in `vessel_abi::Syscall`, with `Result`s.

use vessel_abi::{Error, ExitStatus, KernelStats, MapFlags, ProcessInfo, SpawnRequest, Syscall, decode_return};

use crate::arch::syscall;

fn call(number: Syscall, args: [u64; 6]) -> Result<u64, Error> {
    // SAFETY: the wrappers below pass arguments that point at live memory of this program (or
    // plain numbers); the kernel validates them anyway.
    let (rax, rdx) = unsafe { syscall(number as u64, args) };
    decode_return(rax, rdx)
}

/// Writes bytes to the kernel debug console.
pub fn debug_write(bytes: &[u8]) -> Result<(), Error> {
    call(Syscall::DebugWrite, [bytes.as_ptr() as u64, bytes.len() as u64, 0, 0, 0, 0]).map(|_| ())
}

/// Ends this process.
pub fn exit(code: i32) -> ! {
    let _ = call(Syscall::Exit, [code as i64 as u64, 0, 0, 0, 0, 0]);
    // The kernel never returns from Exit; if it did, fault rather than run on.
    loop {
        crate::arch::provoke(crate::arch::Fault::InvalidOpcode);
    }
}

/// Gives up the rest of the time slice.
pub fn yield_now() {
    let _ = call(Syscall::Yield, [0; 6]);
}

/// This process's id.
pub fn process_id() -> u64 {
    call(Syscall::ProcessId, [0; 6]).unwrap_or(0)
}

/// Starts a program (see [`crate::process`] for the friendly form).
pub fn spawn(request: &SpawnRequest) -> Result<u64, Error> {
    call(Syscall::Spawn, [request as *const SpawnRequest as u64, 0, 0, 0, 0, 0])
}

/// Waits for child `pid` to end.
pub fn wait(pid: u64) -> Result<ExitStatus, Error> {
    let mut status = ExitStatus::default();
    call(Syscall::Wait, [pid, &raw mut status as u64, 0, 0, 0, 0])?;
    Ok(status)
}

/// Waits for the child a process capability names (one placed in another container).
pub fn wait_handle(handle: u32) -> Result<ExitStatus, Error> {
    let mut status = ExitStatus::default();
    call(Syscall::Wait, [u64::from(handle), &raw mut status as u64, vessel_abi::BY_CAPABILITY, 0, 0, 0])?;
    Ok(status)
}

/// State of the child a process capability names.
pub fn process_info_handle(handle: u32) -> Result<ProcessInfo, Error> {
    let mut info = ProcessInfo::default();
    call(Syscall::ProcessInfo, [u64::from(handle), &raw mut info as u64, vessel_abi::BY_CAPABILITY, 0, 0, 0])?;
    Ok(info)
}

/// Ends child `pid`.
pub fn kill(pid: u64) -> Result<(), Error> {
    call(Syscall::Kill, [pid, 0, 0, 0, 0, 0]).map(|_| ())
}

/// State and CPU use of this process or a child.
pub fn process_info(pid: u64) -> Result<ProcessInfo, Error> {
    let mut info = ProcessInfo::default();
    call(Syscall::ProcessInfo, [pid, &raw mut info as u64, 0, 0, 0, 0])?;
    Ok(info)
}

/// Blocks for at least `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    let _ = call(Syscall::Sleep, [ns, 0, 0, 0, 0, 0]);
}

/// Nanoseconds since boot.
pub fn clock_ns() -> u64 {
    call(Syscall::Clock, [0; 6]).unwrap_or(0)
}

/// Maps zeroed pages.
pub fn mem_map(pages: u64, flags: MapFlags) -> Result<u64, Error> {
    call(Syscall::MemMap, [pages, flags.bits(), 0, 0, 0, 0])
}

/// Unmaps pages from [`mem_map`].
///
/// # Safety
/// Nothing may use the memory afterwards (the runtime's heap never gives its memory back).
pub unsafe fn mem_unmap(addr: u64, pages: u64) -> Result<(), Error> {
    call(Syscall::MemUnmap, [addr, pages, 0, 0, 0, 0]).map(|_| ())
}

/// Kernel frame, heap and object counts.
pub fn kernel_stats() -> Result<KernelStats, Error> {
    let mut stats = KernelStats::default();
    call(Syscall::KernelStats, [&raw mut stats as u64, 0, 0, 0, 0, 0])?;
    Ok(stats)
}

/// Leaves the emulator (test and bench images only): 0 success, anything else failure.
pub fn debug_exit(code: u64) -> Result<(), Error> {
    call(Syscall::DebugExit, [code, 0, 0, 0, 0, 0]).map(|_| ())
}

/// Starts another thread of this process at `entry` with `rsp = stack_top` and `rdi = arg`;
/// returns its capability. [`crate::thread::spawn`] is the safe way.
///
/// # Safety
/// `entry` must be code that never returns and `stack_top` the top of a stack nothing else
/// uses, valid for the thread's whole life.
pub unsafe fn thread_create(entry: u64, stack_top: u64, arg: u64) -> Result<u32, Error> {
    call(Syscall::ThreadCreate, [entry, stack_top, arg, 0, 0, 0]).map(|h| h as u32)
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
    let _ = call(Syscall::ThreadExit, [code as i64 as u64, addr, pages, 0, 0, 0]);
    loop {
        crate::arch::provoke(crate::arch::Fault::InvalidOpcode);
    }
}

/// Waits until the thread a capability names has ended; frees its slot.
pub fn thread_wait(handle: u32) -> Result<ExitStatus, Error> {
    let mut status = ExitStatus::default();
    call(Syscall::ThreadWait, [u64::from(handle), &raw mut status as u64, 0, 0, 0, 0])?;
    Ok(status)
}

/// Ends a thread of this process.
pub fn thread_kill(handle: u32) -> Result<(), Error> {
    call(Syscall::ThreadKill, [u64::from(handle), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Says nobody will wait for a thread of this process: its slot is freed when it ends.
pub fn thread_detach(handle: u32) -> Result<(), Error> {
    call(Syscall::ThreadDetach, [u64::from(handle), 0, 0, 0, 0, 0]).map(|_| ())
}
