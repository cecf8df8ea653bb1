//! The system calls and errors, each declared once: number, name and documentation, then the
//! arguments, result and errors as the table in `docs/abi.md` gives them, and the typed list of
//! errors. `Syscall`, `Syscall::ALL`, `TryFrom<u64>`, `Error`, `Error::ALL`, `Error::from_code`
//! and `Error::as_str` all come from these two declarations, and a host test checks that table
//! against them row by row (`docs_table_matches_the_declarations`).

syscalls! {
    /// `(ptr, len)`: write bytes to the kernel debug console (serial). Until the device server.
    0 DebugWrite(ptr, len) "ptr, len (≤ 64 KiB)" -> "len", [TooLarge];
    /// `(code)`: end the calling process with an exit code. Does not return.
    1 Exit(code) "code" -> "does not return", [];
    /// `()`: give up the rest of the time slice.
    2 Yield() "" -> "0", [];
    /// `() -> pid`: the caller's process id. The cheapest call (the "null syscall").
    3 ProcessId() "" -> "pid in the caller's container", [];
    /// `(&SpawnRequest) -> pid`: start a program from the boot file system as a child.
    4 Spawn(request) "`*const SpawnRequest`" -> "child pid, or a process capability when `container` is set", [NotFound, BadExecutable, TooLarge, InvalidArgument, NoMemory, QuotaExceeded, CrossContainer, NoSuchContainer];
    /// `(pid, *mut ExitStatus)`: wait until the child `pid` ends, reap it, report how it ended.
    5 Wait(pid, status, flags) "pid, `*mut ExitStatus`, flags" -> "0", [NoSuchProcess] "NoSuchProcess (not a child, or already reaped)";
    /// `(pid)`: end a child process.
    6 Kill(pid) "pid" -> "0", [NoSuchProcess];
    /// `(pid, *mut ProcessInfo)`: state and CPU use of the caller or one of its children.
    7 ProcessInfo(pid, info, flags) "pid (self or child), `*mut ProcessInfo`, flags" -> "0", [NoSuchProcess];
    /// `(nanoseconds)`: block for at least this long.
    8 Sleep(nanoseconds) "nanoseconds" -> "0", [];
    /// `() -> nanoseconds`: monotonic time since boot.
    9 Clock() "" -> "ns since boot", [];
    /// `(pages, MapFlags) -> address`: map zeroed anonymous memory.
    10 MemMap(pages, flags) "pages, `MapFlags` (WRITE, EXEC, not both; GUARD)" -> "address", [InvalidArgument, NoMemory];
    /// `(address, pages)`: unmap memory obtained with `MemMap`.
    11 MemUnmap(address, pages) "address, pages" -> "0", [InvalidArgument];
    /// `(*mut KernelStats, flags)`: frame, heap and object counts (for leak tests and tools);
    /// flags start (after the counts are taken) or stop (before) measuring interrupts-off
    /// stretches.
    12 KernelStats(stats, flags) "`*mut KernelStats`, flags (`MEASURE_IRQS_OFF` 1, `STOP_IRQS_OFF` 2)" -> "0", [InvalidArgument] "InvalidArgument (unknown flags, or both)";
    /// `(code)`: leave the emulator through `isa-debug-exit`; refused unless the image allows it.
    13 DebugExit(code) "code (0 success)" -> "leaves QEMU", [AccessDenied] "AccessDenied unless boot argument `debug-exit=allow`";
    /// `(handle, *mut CapInfo)`: what a capability refers to and allows.
    14 CapInspect(handle, info) "handle, `*mut CapInfo`" -> "0", [InvalidHandle, StaleHandle];
    /// `(handle, rights mask) -> handle`: a copy with at most the given rights (needs DUPLICATE).
    15 CapDuplicate(handle, rights) "handle, rights mask" -> "new handle", [MissingRights, TableFull] "MissingRights (DUPLICATE), TableFull";
    /// `(handle, rights mask, badge) -> handle`: a badged copy of an unbadged endpoint capability.
    16 CapMint(handle, rights, badge) "handle, rights mask, badge" -> "new handle", [InvalidArgument, WrongObject] "as above; InvalidArgument if already badged; WrongObject unless an endpoint";
    /// `(handle)`: delete one capability.
    17 CapDelete(handle) "handle" -> "0", [];
    /// `(handle)`: delete every capability derived from this one, in every process (needs MANAGE).
    18 CapRevoke(handle) "handle" -> "number removed", [MissingRights] "MissingRights (MANAGE)";
    /// `() -> handle`: a new endpoint (all rights).
    19 EndpointCreate() "" -> "handle (all rights)", [TableFull];
    /// `() -> handle`: a new notification (all rights).
    20 NotificationCreate() "" -> "handle (all rights)", [TableFull];
    /// `(endpoint, w0, w1, w2, w3, meta)`: send a message and wait for the reply; the reply comes
    /// back in the same registers (see `docs/abi.md`, IPC).
    21 Call(endpoint, w0, w1, w2, w3, meta) "endpoint, w0..w3, meta" -> "reply in the message registers", [MissingRights, WouldBlock, TooLarge, PeerDied] "MissingRights (SEND), WouldBlock (NONBLOCK), TooLarge, PeerDied";
    /// `(endpoint, timeout_ns, flags)`: wait for a message (flags `NONBLOCK`, `TIMEOUT`, as for
    /// every receive); the badge comes back in `rdi`, the words in `rsi, rdx, r10, r8`, the
    /// meta word in `r9`.
    22 Recv(endpoint, timeout_ns, flags) "endpoint, timeout (ns), flags" -> "message", [MissingRights, WouldBlock, TimedOut, InvalidArgument] "MissingRights (RECEIVE), WouldBlock, TimedOut, InvalidArgument (unknown flags)";
    /// `(_, w0, w1, w2, w3, meta)`: answer the last message received.
    23 Reply(reserved, w0, w1, w2, w3, meta) "-, w0..w3, meta" -> "0", [InvalidArgument, PeerDied] "InvalidArgument (nothing to answer), PeerDied";
    /// `(endpoint, w0, w1, w2, w3, meta)`: answer, then wait for the next message (one call).
    24 ReplyRecv(endpoint, w0, w1, w2, w3, meta) "endpoint, w0..w3, meta" -> "next message", [MissingRights, WrongObject, CrossContainer, PeerDied] "MissingRights (RECEIVE), WrongObject, CrossContainer, PeerDied (endpoint gone); a failed reply is not reported; the meta flags are ignored";
    /// `(notification, bits)`: set bits, waking a waiter.
    25 Signal(notification, bits) "notification, bits" -> "0", [MissingRights] "MissingRights (SEND)";
    /// `(notification, timeout_ns, flags) -> bits`: wait for bits (or poll with `NONBLOCK`).
    26 WaitNotification(notification, timeout_ns, flags) "notification, timeout (ns), flags" -> "bits", [MissingRights, TimedOut, InvalidArgument] "MissingRights (RECEIVE), TimedOut, InvalidArgument (unknown flags); with NONBLOCK returns the bits (0 if none)";
    /// `(pages) -> handle`: a new memory object of zeroed frames.
    27 MemoryCreate(pages) "pages (≤ 1024)" -> "handle (all rights)", [InvalidArgument, NoMemory];
    /// `(memory, MapFlags) -> address`: map a memory object (needs MAP, and WRITE for writable).
    28 MemoryMap(memory, flags) "memory, `MapFlags`" -> "address", [MissingRights] "MissingRights (MAP, READ, WRITE for writable)";
    /// `(ports, port, width) -> value`: read an I/O port of a port-range capability (needs READ;
    /// width 1, 2 or 4 bytes).
    29 IoPortRead(ports, port, width) "ports, port, width (1/2/4)" -> "value", [MissingRights, AccessDenied] "MissingRights (READ), AccessDenied (outside the range, or a kernel port)";
    /// `(ports, port, width, value)`: write an I/O port (needs WRITE).
    30 IoPortWrite(ports, port, width, value) "ports, port, width, value" -> "0", [MissingRights, AccessDenied] "MissingRights (WRITE), AccessDenied";
    /// `(mmio) -> address`: map an MMIO region uncached (needs MAP, READ and WRITE).
    31 MmioMap(mmio) "mmio" -> "address", [MissingRights] "MissingRights (MAP, READ, WRITE)";
    /// `(irq, notification, bits)`: deliver the IRQ line as `bits` on the notification (needs
    /// MANAGE on the line and SEND on the notification); notification 0 unbinds. The line is
    /// masked after each interrupt until `IrqAck`.
    32 IrqBind(irq, notification, bits) "irq, notification (0 unbinds), bits" -> "0", [MissingRights] "MissingRights (MANAGE on the line, SEND on the notification)";
    /// `(irq)`: unmask the line after handling an interrupt (needs MANAGE).
    33 IrqAck(irq) "irq" -> "0", [MissingRights] "MissingRights (MANAGE)";
    /// `(pid) -> handle`: a capability to the caller itself or one of its children (all rights).
    34 ProcessCap(pid) "pid (self or child)" -> "handle (all rights)", [NoSuchProcess];
    /// `(process)`: end the process a process capability names (needs MANAGE); works for any
    /// holder, not only the parent.
    35 ProcessKill(process) "process" -> "0", [MissingRights, NoSuchProcess, CrossContainer] "MissingRights (MANAGE), NoSuchProcess (already ended), CrossContainer (not in the caller's container or below)";
    /// `(parent container, *const ContainerLimits) -> handle`: a new child container of the
    /// container the capability names (needs MANAGE); the new capability has all rights. See
    /// `docs/containers.md`.
    36 ContainerCreate(parent, limits) "parent container, `*const ContainerLimits`" -> "handle (all rights)", [MissingRights, QuotaExceeded, NoSuchContainer] "MissingRights (MANAGE), QuotaExceeded, NoSuchContainer";
    /// `(container)`: destroy the container and all its descendants: every process in them
    /// ends, their objects go, their quota returns (needs MANAGE).
    37 ContainerDestroy(container) "container" -> "0", [MissingRights, NoSuchContainer, AccessDenied] "MissingRights (MANAGE), NoSuchContainer, AccessDenied (the root)";
    /// `(container, *mut ContainerInfo)`: id, parent, state, members, limits and usage (needs
    /// READ). Handle 0 names the caller's own container.
    38 ContainerInfo(container, info) "container (0: own), `*mut ContainerInfo`" -> "0", [MissingRights, NoSuchContainer] "MissingRights (READ), NoSuchContainer";
    /// `(endpoint, root container)`: register the endpoint as a system-service endpoint,
    /// callable from every container (needs MANAGE on the root container; `proc` holds it).
    39 ServiceRegister(endpoint, root) "endpoint, root container" -> "0", [MissingRights, AccessDenied] "MissingRights (MANAGE), AccessDenied (not the root)";
    /// `(entry, stack_top, arg)`: start another thread in the calling process at `entry` with
    /// `rsp = stack_top` and `rdi = arg`; returns a thread capability (MANAGE: kill, READ: wait).
    /// Charges one thread and one page (its thread page) to the container.
    40 ThreadCreate(entry, stack_top, arg) "entry, stack top, arg" -> "handle (all rights)", [BadAddress, QuotaExceeded] "BadAddress (entry 0 or outside user space, stack outside), QuotaExceeded (64 slots, or the container's thread or page limit)";
    /// `(code, addr, pages)`: end the calling thread; the last live thread ending ends the
    /// process with `code`. If `pages` > 0, `MemUnmap(addr, pages)` follows once the thread is
    /// gone (how a detached thread frees its own stack; a bad range is ignored). Does not return.
    41 ThreadExit(code, address, pages) "code, address, pages" -> "does not return", [] "— (then `MemUnmap(address, pages)` if pages > 0; a bad range is ignored)";
    /// `(thread, *mut ExitStatus)`: wait until the thread has ended, write how, and free its
    /// slot (needs READ). A thread cannot wait for itself.
    42 ThreadWait(thread, status) "thread, `*mut ExitStatus`" -> "0", [MissingRights, WrongObject, InvalidArgument, NotFound, NoSuchProcess, BadAddress] "MissingRights (READ), WrongObject, InvalidArgument (itself), NotFound (already waited for, or detached and ended), NoSuchProcess (its process is gone), BadAddress (the slot stays to be waited for)";
    /// `(thread)`: end a thread of the caller's process, as if it had called `ThreadExit`
    /// (needs MANAGE); it reads as killed.
    43 ThreadKill(thread) "thread" -> "0", [MissingRights, WrongObject, AccessDenied, NotFound] "MissingRights (MANAGE), WrongObject, AccessDenied (a thread of another process), NotFound (already ended)";
    /// `(thread)`: nobody will wait for this thread of the caller's process: its slot is freed
    /// as soon as it ends (at once if it has; needs MANAGE).
    44 ThreadDetach(thread) "thread" -> "0", [MissingRights, WrongObject, AccessDenied, NotFound] "MissingRights (MANAGE), WrongObject, AccessDenied (a thread of another process), NotFound";
    /// `() -> handle`: keep the reply of the call just received for later. The running thread's
    /// pending reply becomes a reply capability (kind `Reply`, right SEND only: it cannot be
    /// duplicated or sent to another process) that any thread of the process can answer once
    /// with `ReplySend`. Charges one kernel object to the container. `InvalidArgument` if the
    /// thread owes no reply.
    45 ReplyTake() "" -> "reply handle (SEND only)", [InvalidArgument, PeerDied, QuotaExceeded, TableFull] "InvalidArgument (no reply owed), PeerDied (the caller died), QuotaExceeded (objects), TableFull";
    /// `(reply, w0, w1, w2, w3, meta)`: answer a kept reply with a message staged like a
    /// `Reply`'s (data and capabilities from the calling thread's IPC buffer). The reply
    /// capability is used up whatever happens: `PeerDied` if the caller is gone.
    46 ReplySend(reply, w0, w1, w2, w3, meta) "reply, w0..w3, meta" -> "0", [WrongObject, MissingRights, StaleHandle, PeerDied, TooLarge] "WrongObject, MissingRights, StaleHandle (already used), PeerDied (caller gone or answer refused), TooLarge; the capability is used up in every case past the handle checks";
    /// `(notification, flags)`: bind the notification to the calling thread (needs RECEIVE), so
    /// a `Recv` on any endpoint also wakes when it is signalled; the receive then returns the
    /// bits in `w0` with [`NOTIFIED`] in the meta flags. `flags` = [`UNBIND`] drops the
    /// thread's binding instead (the handle is ignored). A notification binds one thread.
    47 NotificationBind(notification, flags) "notification, flags (0 bind, `UNBIND` 1)" -> "0", [MissingRights, WrongObject, CrossContainer, AccessDenied, InvalidArgument] "MissingRights (RECEIVE), WrongObject, CrossContainer, AccessDenied (bound to another thread), InvalidArgument (flags)";
    /// `(process, notification, bits)`: signal `bits` on the notification when the process
    /// ends (at once if it has ended). Needs READ on the process and SEND on the notification;
    /// at most [`MAX_EXIT_EVENTS`] notifications per process (bits to one notification merge).
    48 ProcessNotify(process, notification, bits) "process, notification, bits" -> "0", [MissingRights, WrongObject, InvalidArgument, NoSuchProcess, TooLarge] "MissingRights (READ on the process, SEND on the notification), WrongObject, InvalidArgument (bits 0), NoSuchProcess (reaped), TooLarge (more than `MAX_EXIT_EVENTS` = 8 notifications)";
    /// `(platform, first, last)`: a capability to I/O ports `first..=last` (all rights), made
    /// from the platform capability, which only the `device` server holds. Ports the kernel
    /// drives itself stay refused on every use whatever the range says.
    49 PlatformPorts(platform, first, last) "platform, first port, last port" -> "handle (all rights)", [MissingRights, WrongObject, InvalidArgument, TableFull] "MissingRights (MANAGE), WrongObject, InvalidArgument (first > last or > 0xffff), TableFull";
    /// `(platform, line)`: a capability to ISA interrupt line `line` (1..=15 but 2).
    50 PlatformIrq(platform, line) "platform, ISA line" -> "handle (all rights)", [MissingRights, WrongObject, InvalidArgument, TableFull] "MissingRights (MANAGE), WrongObject, InvalidArgument (0, 2 or > 15), TableFull";
    /// `(platform, address, length)`: a capability to device registers at physical `address`
    /// (page-aligned) for `length` bytes, mapped uncached by `MmioMap`. Refused if any page of
    /// it is RAM the system uses (usable, kernel, page tables, boot data), is below 1 MiB, or
    /// holds the local APIC or an I/O APIC.
    51 PlatformMmio(platform, address, length) "platform, physical address, length" -> "handle (all rights)", [MissingRights, WrongObject, InvalidArgument, AccessDenied, TableFull] "MissingRights (MANAGE), WrongObject, InvalidArgument (unaligned, empty, over 1 GiB or wrapping), AccessDenied (RAM, low memory or the kernel's APICs), TableFull";
    /// `(platform, pages, container)`: a DMA memory object: `pages` physically contiguous
    /// zeroed frames (a memory object like `MemoryCreate`'s) whose physical address
    /// `DmaAddress` tells. It belongs to, and is charged to, the container whose id is
    /// `container` (0: the caller's own): a driver lends a client container a buffer the
    /// device reads and writes in place. The caller's container may map it too; other
    /// containers only through a capability the caller sends there.
    52 DmaCreate(platform, pages, container) "platform, pages (≤ 1024), container id (0: own)" -> "handle (all rights)", [MissingRights, WrongObject, InvalidArgument, NoSuchContainer, NoMemory, QuotaExceeded, TableFull] "MissingRights (MANAGE), WrongObject, InvalidArgument (0 or over 1024 pages), NoSuchContainer (no live container with that id), NoMemory (no contiguous run that long), QuotaExceeded (of that container), TableFull";
    /// `(memory)`: the physical address of a DMA memory object's first byte (its frames follow
    /// contiguously). Needs MANAGE, which the maker keeps and passes on to nobody it lends the
    /// memory to.
    53 DmaAddress(memory) "DMA memory" -> "physical address", [MissingRights, WrongObject] "MissingRights (MANAGE), WrongObject (not DMA memory)";
    /// `(platform)`: allocates an MSI vector, delivered like an interrupt line: bind it to
    /// notification bits with `IrqBind`. It is freed when its last capability goes.
    54 MsiAllocate(platform) "platform" -> "handle (all rights)", [MissingRights, WrongObject, NoMemory, TableFull] "MissingRights (MANAGE), WrongObject, NoMemory (all vectors taken), TableFull";
    /// `(msi)`: the message a device must write to raise the vector: address in the high 32
    /// bits of the result, data in the low 32.
    55 MsiMessage(msi) "msi" -> "address << 32 | data", [MissingRights, WrongObject] "MissingRights (READ), WrongObject";
    /// `(platform, info)`: takes the boot framebuffer: fills `*info`, returns an MMIO capability
    /// to its memory, and the kernel stops drawing its console there (a panic still draws).
    56 FramebufferTake(platform, info) "platform, `*mut FramebufferInfo`" -> "handle (all rights)", [MissingRights, WrongObject, NotFound, TableFull] "MissingRights (MANAGE), WrongObject, NotFound (no framebuffer), TableFull";
    /// `(platform, from, buffer, length, chunk)`: copies the kernel's output (its log and the
    /// programs' debug output, numbered by byte from boot; the last 64 KiB are kept) from byte
    /// `from` on, or from the oldest kept if `from` is older, into `buffer` (at most `length`,
    /// up to 4096 a call); writes which bytes came to `*chunk`, returns how many.
    57 LogRead(platform, from, buffer, length, chunk) "platform, first byte, buffer, length (≤ 4096 a call), `*mut LogChunk`" -> "bytes copied", [MissingRights, WrongObject, BadAddress] "MissingRights (MANAGE), WrongObject, BadAddress";
    /// `(platform, notification, bits)`: signal `bits` on `notification` when the kernel prints
    /// (on the timer tick after); bits 0 stops. At most 4 notifications are bound at once.
    58 LogBind(platform, notification, bits) "platform, notification, bits (0: stop)" -> "0", [MissingRights, WrongObject, TableFull] "MissingRights (MANAGE, SEND), WrongObject, TableFull (4 bound already)";
    /// `(platform, info)`: PCI segment 0's memory-mapped configuration space (ECAM) as the
    /// firmware's MCFG table describes it: fills `*info`, returns an MMIO capability to it
    /// (1 MiB per bus). `NotFound` on machines without one (then the ports 0xCF8/0xCFC).
    59 PlatformEcam(platform, info) "platform, `*mut EcamInfo`" -> "handle (all rights)", [MissingRights, WrongObject, NotFound, TableFull] "MissingRights (MANAGE), WrongObject, NotFound (no MCFG), TableFull";
    /// `(platform)`: no device can still write into released DMA memory (its driver reset or
    /// stopped the devices that used it): its frames, kept from reuse since, go back to the
    /// allocator. Returns how many frames.
    60 DmaQuiesce(platform) "platform" -> "frames returned", [MissingRights, WrongObject] "MissingRights (MANAGE), WrongObject";
    /// `(pages, container) -> handle`: a memory object of zeroed frames made *for* the container
    /// with id `container` (the caller's own or one below it): charged there, sendable there,
    /// and mappable by the caller too (as `DmaCreate` lends to a client).
    61 MemoryLend(pages, container) "pages (≤ 1024), container id" -> "handle (all rights)", [InvalidArgument, NoMemory, NoSuchContainer, QuotaExceeded] "InvalidArgument, NoMemory, NoSuchContainer (not the caller's or below it), QuotaExceeded (that container's)";
    /// `(id, *mut ContainerInfo)`: what `ContainerInfo` says of the container with id `id`, if
    /// it is the caller's or below it (no capability needed: a container may look at its
    /// descendants). Servers in the root container learn that a client's container ended this way.
    62 ContainerLookup(id, info) "container id, `*mut ContainerInfo`" -> "0", [NoSuchContainer, BadAddress] "NoSuchContainer (none, or not the caller's or below it), BadAddress";
    /// `(offset, buffer, length) -> count`: copies the boot file system (the cpio archive the
    /// kernel was booted with) from byte `offset` into `buffer`, at most `length` (up to 64 KiB a
    /// call); 0 at the end. Root container only: `vfs` serves it as `/boot`.
    63 BootfsRead(offset, buffer, length) "offset, buffer, length (≤ 65536 a call)" -> "bytes copied", [AccessDenied, BadAddress] "AccessDenied (not the root container), BadAddress";
    /// `(action)`: switch the machine off ([`POWER_OFF`]: ACPI S5, through the PM1 control
    /// registers the FADT names and the sleep type of the DSDT's `_S5_` package) or reset it
    /// ([`POWER_REBOOT`]: the FADT's reset register, else port 0xCF9, else the 8042). Root
    /// container only; syncing disks first is user space's job. Does not return when it works.
    64 Power(action) "action (`POWER_OFF` 1, `POWER_REBOOT` 2)" -> "does not return", [AccessDenied, InvalidArgument, NotFound, DeviceError] "AccessDenied (not the root container), InvalidArgument (another action), NotFound (no S5 sleep state or PM1a control block in the firmware's tables), DeviceError (the machine is still on a second later)";
    /// `(from, buffer, length, chunk)`: `LogRead` without the platform capability, for any
    /// process of the root container (`dmesg`): the same copy, another gate.
    65 LogCopy(from, buffer, length, chunk) "first byte, buffer, length (≤ 4096 a call), `*mut LogChunk`" -> "bytes copied", [AccessDenied, BadAddress] "AccessDenied (not the root container), BadAddress";
    /// `(reply, offset, pieces, count) -> bytes`: copy bytes of the caller's own memory into the
    /// receive window of the thread it owes a reply (reply 0) or of the caller of a kept reply,
    /// at `offset` in the window; `pieces` points at `count` (address, length) pairs that are
    /// gathered in order. Only while that caller waits for the reply and only if its call
    /// carried [`WINDOW`]; at most [`MAX_WINDOW_WRITE`] bytes and [`MAX_WINDOW_PIECES`] pieces
    /// a call. Each byte is copied once, from the server's pages into the caller's. After an
    /// error the window may hold some of the bytes.
    66 WindowWrite(reply, offset, pieces, count) "reply (0: the one owed), offset in the window, `*const [u64; 2]` pieces, count" -> "bytes copied", [InvalidArgument, PeerDied, WrongObject, MissingRights, AccessDenied, TooLarge, BadAddress] "InvalidArgument (no reply owed), PeerDied (the caller is gone), WrongObject, MissingRights (SEND on a kept reply), AccessDenied (the call offered no window), TooLarge (over the limits, or past the window's end), BadAddress (a piece not readable here, or a window page not mapped writable)";
}

errors! {
    /// No system call has this number.
    1 InvalidSyscall = "invalid system call";
    /// A pointer argument is null, in the kernel half, non-canonical, wraps around, is not mapped
    /// or lacks the needed permission.
    2 BadAddress = "bad address";
    /// An argument is out of its range.
    3 InvalidArgument = "invalid argument";
    /// Not enough memory (frames, or the caller's address space).
    4 NoMemory = "out of memory";
    /// No such file in the boot file system.
    5 NotFound = "not found";
    /// A length is larger than the call accepts.
    6 TooLarge = "too large";
    /// No process with this id is visible to the caller.
    7 NoSuchProcess = "no such process";
    /// The file is not a valid Vessel executable.
    8 BadExecutable = "bad executable";
    /// The caller may not do this.
    9 AccessDenied = "access denied";
    /// The handle names no capability of the caller.
    10 InvalidHandle = "invalid handle";
    /// The handle's capability was deleted (or its slot reused).
    11 StaleHandle = "stale handle";
    /// The capability lacks a right the operation needs.
    12 MissingRights = "missing rights";
    /// The capability refers to another kind of object.
    13 WrongObject = "wrong kind of object";
    /// The caller's capability table (or the receiver's) has no free slot.
    14 TableFull = "capability table full";
    /// A non-blocking operation would have had to wait.
    15 WouldBlock = "would block";
    /// The timeout passed.
    16 TimedOut = "timed out";
    /// The other side is gone: the server died or the endpoint has no receiver left, or the
    /// caller being replied to died.
    17 PeerDied = "peer died";
    /// The other side is in another container, and the operation may not cross containers
    /// (only system-service endpoints can be called, or sent, across containers).
    18 CrossContainer = "refused across containers";
    /// The caller's container (or one of its ancestors) has used up its quota of this resource.
    19 QuotaExceeded = "container quota exceeded";
    /// The container was destroyed (or never existed), or is being destroyed.
    20 NoSuchContainer = "no such container";
    /// The authority behind the handle was taken back (a device grant revoked, a session ended
    /// by its server); the reason says by whom and why.
    21 Revoked = "revoked";
    /// The object is held exclusively by someone else.
    22 Busy = "busy";
    /// The hardware failed the operation (or a driver died in the middle of it).
    23 DeviceError = "device error";
    /// A file or directory of that name exists (file servers).
    24 AlreadyExists = "already exists";
    /// A path component, or the target, is a file where a directory is needed.
    25 NotADirectory = "not a directory";
    /// A file operation named a directory.
    26 IsADirectory = "is a directory";
    /// The directory to remove still has entries.
    27 NotEmpty = "directory not empty";
    /// The file system (or storage file) has no free space left.
    28 NoSpace = "no space left";
    /// The file system is mounted read-only.
    29 ReadOnly = "read-only file system";
    /// What is stored is damaged (a file system structure that is inconsistent); the reason
    /// says what was found.
    30 Corrupt = "corrupt data";
}
