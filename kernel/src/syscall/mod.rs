//! System calls: the safe, typed dispatcher behind the `syscall` entry (STYLE habit 6).
//!
//! [`dispatch`] decodes the number and arguments from the saved registers, runs the call, and
//! writes `rax` (0 or an error code) and `rdx` (the value) back. Every pointer goes through
//! [`usermem`]; nothing a user passes can panic the kernel. See `docs/abi.md`.

pub mod usermem;

use alloc::vec;

use vessel_abi::{
    ContainerLimits, Error, Exit, MAX_ARGS, MAX_DEBUG_WRITE, MAX_PATH, MAX_SPAWN_CAPS, MAX_WINDOW_PIECES, MapFlags,
    Priority, SpawnRequest, Syscall, SyscallArgs, args,
};
use vessel_kcore::report::TrapFrame;

use crate::task;
use usermem::UserSlice;

/// Bytes one `LogRead` or `LogCopy` copies at most.
const LOG_READ_MAX: usize = 4096;

/// Whether `DebugExit` may leave the emulator (set from the boot arguments of test images).
static DEBUG_EXIT_ALLOWED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Runs `report` (taking the counts) with measuring of interrupts-off stretches stopped
/// before it or started after it, as `KernelStats`'s flags say: the counts include what was
/// measured, and a new measurement starts after the counting, which has stretches of its own.
fn measure_irqs_off(flags: u64, report: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    use crate::arch::x86_64::percpu;
    match flags {
        0 => report(),
        vessel_abi::STOP_IRQS_OFF => {
            percpu::stop_measuring();
            report()
        }
        vessel_abi::MEASURE_IRQS_OFF => {
            let reported = report();
            percpu::start_measuring();
            reported
        }
        _ => Err(Error::InvalidArgument),
    }
}

/// Allows or forbids `DebugExit`.
pub fn allow_debug_exit(allowed: bool) {
    DEBUG_EXIT_ALLOWED.store(allowed, core::sync::atomic::Ordering::Relaxed);
}

/// Runs the system call in `frame` and stores its result there.
pub fn dispatch(frame: &mut TrapFrame) {
    // The IPC round trip's two calls are recognised by plain compares: `Syscall::try_from` reads
    // a table and the match below jumps through one, each a read-only data page the round trip
    // would touch again after every address-space switch (a TLB refill under emulation).
    const CALL: u64 = Syscall::Call as u64;
    const REPLY_RECV: u64 = Syscall::ReplyRecv as u64;
    // Each tries the fast path first (`task::fastpath`), which declines, changing nothing,
    // whatever it does not handle.
    match frame.rax {
        CALL => {
            if !task::fast_call(frame) {
                task::call(frame);
            }
        }
        REPLY_RECV => {
            if !task::fast_reply_recv(frame) {
                task::reply_recv(frame);
            }
        }
        // Out of line, or the compiler folds the compares above and below into one jump table
        // (more than two cases make one).
        _ => dispatch_notification_or_other(frame),
    }
}

/// The two notification calls, recognised like the IPC calls above (a notification round trip
/// switches address spaces too), then everything else.
#[inline(never)]
fn dispatch_notification_or_other(frame: &mut TrapFrame) {
    const SIGNAL: u64 = Syscall::Signal as u64;
    const WAIT_NOTIFICATION: u64 = Syscall::WaitNotification as u64;
    match frame.rax {
        SIGNAL => task::signal(frame),
        WAIT_NOTIFICATION => task::wait_notification(frame),
        _ => dispatch_other(frame),
    }
}

/// Every system call but the four above.
#[inline(never)]
fn dispatch_other(frame: &mut TrapFrame) {
    // The other two IPC calls read and write the whole register frame (and may block); they
    // report their own results there.
    let result = match Syscall::try_from(frame.rax) {
        Ok(Syscall::Recv) => return task::recv(frame),
        Ok(Syscall::Reply) => return task::reply(frame),
        Ok(call) => run(call, &[frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9]),
        Err(e) => Err(e),
    };
    match result {
        Ok(value) => {
            frame.rax = 0;
            frame.rdx = value;
        }
        Err(e) => {
            frame.rax = e as u64;
            frame.rdx = 0;
        }
    }
    task::preempt_if_needed();
}

/// Runs every call but the IPC and notification calls, each reading its arguments by name
/// from its typed struct (`vessel_abi::args`), decoded from the registers here and nowhere else.
#[inline(never)]
fn run(call: Syscall, r: &[u64; 6]) -> Result<u64, Error> {
    // The caller's kernel id, looked up only by the calls that need it.
    let caller = task::current_pid;
    macro_rules! decode {
        ($call:ident) => {
            args::$call::from_registers(r)
        };
    }
    match call {
        Syscall::DebugWrite => {
            let a = decode!(DebugWrite);
            debug_write(a.ptr, a.len).map(|()| a.len)
        }
        Syscall::Exit => task::exit_current(Exit::Code(decode!(Exit).code as i64)),
        Syscall::Yield => {
            task::yield_now();
            Ok(0)
        }
        Syscall::ProcessId => Ok(task::current_vpid()),
        // Calls that take memory first free what is waiting to be freed (`task::reap_all`).
        Syscall::Spawn => {
            task::reap_all();
            spawn(caller(), decode!(Spawn).request)
        }
        // The status is written before the child (or the thread's slot) is freed: a bad pointer
        // loses nothing.
        Syscall::Wait => {
            let a = decode!(Wait);
            task::wait(caller(), a.pid, by_capability(a.flags)?, |s| usermem::write(a.status, s)).map(|()| 0)
        }
        Syscall::Kill => task::kill(caller(), decode!(Kill).pid).map(|()| 0),
        Syscall::ProcessInfo => {
            let a = decode!(ProcessInfo);
            let info = task::process_info(caller(), a.pid, by_capability(a.flags)?)?;
            usermem::write(a.info, &info).map(|()| 0)
        }
        Syscall::Sleep => {
            task::sleep(decode!(Sleep).nanoseconds);
            Ok(0)
        }
        Syscall::Clock => Ok(crate::time::since_boot_ns()),
        Syscall::MemMap => {
            let a = decode!(MemMap);
            task::reap_all();
            task::mem_map(a.pages, MapFlags::from_bits(a.flags).ok_or(Error::InvalidArgument)?)
        }
        Syscall::MemUnmap => {
            let a = decode!(MemUnmap);
            task::mem_unmap(a.address, a.pages).map(|()| 0)
        }
        Syscall::KernelStats => {
            let a = decode!(KernelStats);
            measure_irqs_off(a.flags, || usermem::write(a.stats, &task::stats()))?;
            Ok(0)
        }
        Syscall::CapInspect => {
            let a = decode!(CapInspect);
            let info = task::cap_inspect(a.handle)?;
            usermem::write(a.info, &info).map(|()| 0)
        }
        Syscall::CapDuplicate => {
            let a = decode!(CapDuplicate);
            task::cap_duplicate(a.handle, a.rights, None)
        }
        Syscall::CapMint => {
            let a = decode!(CapMint);
            task::cap_duplicate(a.handle, a.rights, Some(a.badge))
        }
        Syscall::CapDelete => task::cap_delete(decode!(CapDelete).handle),
        Syscall::CapRevoke => task::cap_revoke(decode!(CapRevoke).handle),
        Syscall::EndpointCreate => task::endpoint_create(),
        Syscall::NotificationCreate => task::notification_create(),
        Syscall::MemoryCreate => {
            task::reap_all();
            task::memory_create(decode!(MemoryCreate).pages)
        }
        Syscall::MemoryLend => {
            let a = decode!(MemoryLend);
            task::reap_all();
            task::memory_lend(a.pages, a.container)
        }
        Syscall::MemoryMap => {
            let a = decode!(MemoryMap);
            task::memory_map(a.memory, MapFlags::from_bits(a.flags).ok_or(Error::InvalidArgument)?)
        }
        Syscall::IoPortRead => {
            let a = decode!(IoPortRead);
            task::port_read(a.ports, a.port, a.width)
        }
        Syscall::IoPortWrite => {
            let a = decode!(IoPortWrite);
            task::port_write(a.ports, a.port, a.width, a.value)
        }
        Syscall::MmioMap => task::mmio_map(decode!(MmioMap).mmio),
        Syscall::IrqBind => {
            let a = decode!(IrqBind);
            task::irq_bind(a.irq, a.notification, a.bits)
        }
        Syscall::IrqAck => task::irq_ack(decode!(IrqAck).irq),
        Syscall::ProcessCap => task::process_cap(decode!(ProcessCap).pid),
        Syscall::ProcessKill => {
            if task::process_kill(decode!(ProcessKill).process)? {
                task::exit_current(Exit::Killed);
            }
            Ok(0)
        }
        Syscall::ContainerCreate => {
            let a = decode!(ContainerCreate);
            let limits: ContainerLimits = usermem::read(a.limits)?;
            task::container_create(a.parent, &limits)
        }
        Syscall::ContainerDestroy => {
            if task::container_destroy(decode!(ContainerDestroy).container)? {
                task::exit_current(Exit::Killed);
            }
            Ok(0)
        }
        Syscall::ContainerInfo => {
            let a = decode!(ContainerInfo);
            usermem::write(a.info, &vessel_abi::ContainerInfo::default())?;
            let info = task::container_info(a.container)?;
            usermem::write(a.info, &info).map(|()| 0)
        }
        Syscall::ContainerLookup => {
            let a = decode!(ContainerLookup);
            usermem::write(a.info, &vessel_abi::ContainerInfo::default())?;
            let info = task::container_lookup(a.id)?;
            usermem::write(a.info, &info).map(|()| 0)
        }
        Syscall::ServiceRegister => {
            let a = decode!(ServiceRegister);
            task::service_register(a.endpoint, a.root)
        }
        Syscall::ThreadCreate => {
            let a = decode!(ThreadCreate);
            task::reap_all();
            task::thread_create(a.entry, a.stack_top, a.arg)
        }
        Syscall::ThreadExit => {
            let a = decode!(ThreadExit);
            task::thread_exit(Exit::Code(a.code as i64), (a.address, a.pages))
        }
        Syscall::ThreadWait => {
            let a = decode!(ThreadWait);
            task::thread_wait(a.thread, |s| usermem::write(a.status, s)).map(|()| 0)
        }
        Syscall::ThreadKill => task::thread_kill(decode!(ThreadKill).thread).map(|()| 0),
        Syscall::ThreadDetach => task::thread_detach(decode!(ThreadDetach).thread).map(|()| 0),
        Syscall::ReplyTake => task::reply_take(),
        Syscall::ReplySend => {
            let a = decode!(ReplySend);
            task::reply_send(a.reply, [a.w0, a.w1, a.w2, a.w3], a.meta)
        }
        Syscall::NotificationBind => {
            let a = decode!(NotificationBind);
            task::notification_bind(a.notification, a.flags)
        }
        Syscall::ProcessNotify => {
            let a = decode!(ProcessNotify);
            task::process_notify(a.process, a.notification, a.bits)
        }
        Syscall::PlatformPorts => {
            let a = decode!(PlatformPorts);
            task::platform_ports(a.platform, a.first, a.last)
        }
        Syscall::PlatformIrq => {
            let a = decode!(PlatformIrq);
            task::platform_irq(a.platform, a.line)
        }
        Syscall::PlatformMmio => {
            let a = decode!(PlatformMmio);
            task::platform_mmio(a.platform, a.address, a.length)
        }
        Syscall::DmaCreate => {
            let a = decode!(DmaCreate);
            task::reap_all();
            task::dma_create(a.platform, a.pages, a.container)
        }
        Syscall::DmaAddress => task::dma_address(decode!(DmaAddress).memory),
        Syscall::MsiAllocate => task::msi_allocate(decode!(MsiAllocate).platform),
        Syscall::MsiMessage => task::msi_message(decode!(MsiMessage).msi),
        Syscall::FramebufferTake => {
            let a = decode!(FramebufferTake);
            usermem::write(a.info, &vessel_abi::FramebufferInfo::default())?;
            let (handle, info) = task::framebuffer_take(a.platform)?;
            usermem::write(a.info, &info).map(|()| handle)
        }
        Syscall::BootfsRead => {
            let a = decode!(BootfsRead);
            let bootfs = task::bootfs_for_root()?;
            let start = usize::try_from(a.offset).unwrap_or(usize::MAX).min(bootfs.len());
            let count = (a.length as usize).min(BOOTFS_READ_MAX).min(bootfs.len() - start);
            if count > 0 {
                UserSlice::new(a.buffer, count as u64, BOOTFS_READ_MAX as u64)?
                    .write_from(&bootfs[start..start + count])?;
            }
            Ok(count as u64)
        }
        Syscall::LogRead => {
            let a = decode!(LogRead);
            log_read(task::LogReader::Platform(a.platform), a.from, a.buffer, a.length, a.chunk)
        }
        Syscall::LogCopy => {
            let a = decode!(LogCopy);
            log_read(task::LogReader::RootContainer, a.from, a.buffer, a.length, a.chunk)
        }
        Syscall::Power => {
            let action = decode!(Power).action;
            if action != vessel_abi::POWER_OFF && action != vessel_abi::POWER_REBOOT {
                return Err(Error::InvalidArgument);
            }
            task::require_root()?;
            Err(if action == vessel_abi::POWER_OFF { crate::power::switch_off() } else { crate::power::reset() })
        }
        Syscall::PlatformEcam => {
            let a = decode!(PlatformEcam);
            usermem::write(a.info, &vessel_abi::EcamInfo::default())?;
            let (handle, info) = task::platform_ecam(a.platform)?;
            usermem::write(a.info, &info).map(|()| handle)
        }
        Syscall::DmaQuiesce => task::dma_quiesce(decode!(DmaQuiesce).platform),
        Syscall::WindowWrite => {
            let a = decode!(WindowWrite);
            // The pieces, copied in before the table lock is taken.
            let count = usize::try_from(a.count).ok().filter(|&n| n <= MAX_WINDOW_PIECES).ok_or(Error::TooLarge)?;
            let mut buf = [core::mem::MaybeUninit::uninit(); MAX_WINDOW_PIECES];
            let pieces = usermem::read_pairs(a.pieces, count, &mut buf)?;
            task::window_write(a.reply, a.offset, pieces)
        }
        Syscall::LogBind => {
            let a = decode!(LogBind);
            task::log_bind(a.platform, a.notification, a.bits)
        }
        Syscall::Call
        | Syscall::Recv
        | Syscall::Reply
        | Syscall::ReplyRecv
        | Syscall::Signal
        | Syscall::WaitNotification => Err(Error::InvalidSyscall), // handled before `run`
        Syscall::DebugExit => {
            if !DEBUG_EXIT_ALLOWED.load(core::sync::atomic::Ordering::Relaxed) {
                return Err(Error::AccessDenied);
            }
            let code = if decode!(DebugExit).code == 0 {
                crate::arch::x86_64::QemuExit::Success
            } else {
                crate::arch::x86_64::QemuExit::Failure
            };
            crate::arch::x86_64::qemu_exit(code);
            Err(Error::AccessDenied)
        }
    }
}

/// `LogRead` and `LogCopy` (one copy, two gates): up to `length` bytes (at most
/// [`LOG_READ_MAX`]) of the kernel's output from byte `from` into `buffer`, and which bytes came
/// into `*chunk`. The chunk pointer is checked before the gate, as it always was for `LogRead`.
fn log_read(reader: task::LogReader, from: u64, buffer: u64, length: u64, chunk_ptr: u64) -> Result<u64, Error> {
    let mut bytes = alloc::vec::Vec::new();
    let len = (length as usize).min(LOG_READ_MAX);
    bytes.try_reserve_exact(len).map_err(|_| Error::NoMemory)?;
    bytes.resize(len, 0);
    usermem::write(chunk_ptr, &vessel_abi::LogChunk::default())?;
    let chunk = task::log_read(reader, from, &mut bytes)?;
    let count = (chunk.next - chunk.first) as usize;
    if count > 0 {
        UserSlice::new(buffer, count as u64, LOG_READ_MAX as u64)?.write_from(&bytes[..count])?;
    }
    usermem::write(chunk_ptr, &chunk).map(|()| count as u64)
}

/// Checks the flags argument of `Wait` and `ProcessInfo`.
fn by_capability(flags: u64) -> Result<u64, Error> {
    if flags & !vessel_abi::BY_CAPABILITY != 0 {
        return Err(Error::InvalidArgument);
    }
    Ok(flags)
}

fn debug_write(addr: u64, len: u64) -> Result<(), Error> {
    // Check the whole range (size limit, bounds) before printing any of it.
    UserSlice::new(addr, len, MAX_DEBUG_WRITE)?;
    let mut chunk = [0u8; 256];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(chunk.len() as u64);
        UserSlice::new(addr + done, n, n)?.read_into(&mut chunk[..n as usize])?;
        crate::logger::write_bytes(&chunk[..n as usize]);
        done += n;
    }
    Ok(())
}

/// Most bytes one `BootfsRead` copies.
const BOOTFS_READ_MAX: usize = 64 * 1024;

fn spawn(caller: u64, request: u64) -> Result<u64, Error> {
    let req: SpawnRequest = usermem::read(request)?;
    if req.flags & !vessel_abi::SPAWN_IMAGE != 0 {
        return Err(Error::InvalidArgument);
    }
    let from_image = req.flags & vessel_abi::SPAWN_IMAGE != 0;
    let priority = Priority::from_u32(req.priority).ok_or(Error::InvalidArgument)?;
    let limit = if from_image { vessel_abi::MAX_IMAGE } else { MAX_PATH };
    let path_slice = UserSlice::new(req.path_ptr, req.path_len, limit)?;
    let mut path = alloc::vec::Vec::new();
    path.try_reserve_exact(path_slice.len()).map_err(|_| Error::NoMemory)?;
    path.resize(path_slice.len(), 0u8);
    path_slice.read_into(&mut path)?;
    // Arguments and environment share one limit, checked before either is copied.
    if req.args_len.saturating_add(req.env_len) > task::MAX_STRINGS as u64 {
        return Err(Error::TooLarge);
    }
    let mut args = vec![0u8; 0];
    if req.args_len > 0 {
        let args_slice = UserSlice::new(req.args_ptr, req.args_len, MAX_ARGS)?;
        args.resize(args_slice.len(), 0);
        args_slice.read_into(&mut args)?;
    }
    let mut env = vec![0u8; 0];
    if req.env_len > 0 {
        let env_slice = UserSlice::new(req.env_ptr, req.env_len, MAX_ARGS)?;
        env.resize(env_slice.len(), 0);
        env_slice.read_into(&mut env)?;
    }
    let strings = task::Strings { args: &args, env: &env };
    if req.caps_len > MAX_SPAWN_CAPS {
        return Err(Error::TooLarge);
    }
    let mut caps = [0u32; MAX_SPAWN_CAPS as usize];
    if req.caps_len > 0 {
        let slice = UserSlice::new(req.caps_ptr, req.caps_len * 4, MAX_SPAWN_CAPS * 4)?;
        let mut bytes = [0u8; MAX_SPAWN_CAPS as usize * 4];
        slice.read_into(&mut bytes[..slice.len()])?;
        for (i, chunk) in bytes[..slice.len()].chunks_exact(4).enumerate() {
            caps[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
    }
    let caps = &caps[..req.caps_len as usize];
    if from_image {
        // Named by argv[0] (the file it came from), which must be there.
        let name = args.split(|&b| b == 0).next().filter(|n| !n.is_empty()).ok_or(Error::InvalidArgument)?;
        let name = core::str::from_utf8(name).map_err(|_| Error::InvalidArgument)?;
        let name = &name[..name.len().min(MAX_PATH as usize)];
        return task::spawn_image(caller, name, &path, strings, priority, caps, req.container);
    }
    let path = core::str::from_utf8(&path).map_err(|_| Error::InvalidArgument)?;
    task::spawn(caller, path, strings, priority, caps, req.container)
}
