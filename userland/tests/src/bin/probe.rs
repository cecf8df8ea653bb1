//! `probe <what> [args]`: the helper the user-space tests spawn to act as a separate process.
//!
//! - `exit N`: exit with code N.
//! - `args ...`: exit with the argument count if every argument reads back as `aN`.
//! - `fault KIND`: provoke a CPU fault (see `vessel_rt::arch::Fault`).
//! - `spin [MS]`: busy-loop forever, or for MS milliseconds then exit 0.
//! - `isolation TAG`: write TAG at the first `MemMap` address, yield, check it: same virtual
//!   address in every process, different memory. Exit 0 if intact.
//! - `fpu SEED`: load SSE registers with a pattern, yield many times, exit 0 if intact.
//! - `yield N`: yield N times (benchmark partner).
//! - `parent`: spawn `probe spin` and wait for it forever (killed by the test).
//!
//! IPC roles (the capabilities come from the parent at spawn, `vessel_rt::handles()`):
//! - `hold`: wait until capability 0 disappears (revoked): exit 0; still there after 5 s: 1.
//! - `echo-server`: serve endpoint 0; reply `[w0 + 1, badge, sender pid, data length]`, the data
//!   reversed, and signal bit 0x10 on a received notification capability. `w0 = u64::MAX` ends it.
//! - `ipc-server`: serve endpoint 0 echoing words, data and capabilities (benchmarks).
//! - `ipc-client N`: N calls on endpoint 0 checking each reply; exit 0 if all were right.
//! - `die-on-request`: receive one message on endpoint 0 and exit without replying.
//! - `reply-late`: receive one message, sleep 100 ms, reply: exit 0 if the reply said PeerDied.
//! - `notify-pong N`: N times wait on notification 0, signal notification 1.
//! - `signal BITS`: signal notification 0.
//! - `shared`: map memory object 0, expect 0x1234 at offset 0, write 0x5678 at offset 8.
//! - `map-and-touch`: map memory object 0, signal notification 1, keep reading until revoked.
//! - `kill-via-cap`: end the process named by process capability 0 (not our child).
//! - `keep-replies N [hang]`, `call-expect V`, `deferred-server`, `sleep-exit MS CODE`,
//!   `proc-wait CONTAINER PID`, `exit-clock MS`: kept replies and blocking waits; see `replies.rs`
//!   beside this file.
//! - `window-server`: copy a pattern into callers' receive windows; see `windows.rs` beside
//!   this file.
//! - `kv-server`: serve the key-value protocol (`vessel-kv-protocol`) on endpoint 0.
//! - container roles (`xc`, `blocked`, `ipc-pair`, `spawner`, `call-service`, `forkbomb`,
//!   `memhog`, `ps-check`, `echo-service`, `service-client`): see `containers.rs` beside this file.
//! - `fuzz SEED N`: make N random system calls with hostile arguments (the parent kills us if
//!   one blocks forever); exit 0 if we got through them all.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "probe/containers.rs"]
mod containers;
#[path = "probe/replies.rs"]
mod replies;
#[path = "probe/threads.rs"]
mod threads;
#[path = "probe/window_commands.rs"]
mod window_commands;
#[path = "probe/windows.rs"]
mod windows;

use alloc::vec::Vec;

use vessel_kv_protocol::{Found, Stored};
use vessel_protocol::{Answer, Cx};
use vessel_rt::abi::{Error, MapFlags, Meta};
use vessel_rt::arch::{self, Fault};
use vessel_rt::ipc::{self, Cap, Endpoint, Memory, Notification};
use vessel_rt::{process, sys, time};

vessel_rt::entry!(main);

fn number(arg: Option<&&str>) -> u64 {
    arg.and_then(|a| a.parse().ok()).unwrap_or(0)
}

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().collect();
    match args.get(1).copied().unwrap_or("") {
        "exit" => number(args.get(2)) as i32,
        "args" => {
            let ok = args[2..].iter().enumerate().all(|(i, a)| *a == alloc::format!("a{i}"));
            if ok { args.len() as i32 } else { -1 }
        }
        "fault" => {
            let fault = match args.get(2).copied().unwrap_or("") {
                "null" => Fault::NullRead,
                "write-code" => Fault::WriteCode,
                "ud" => Fault::InvalidOpcode,
                "privileged" => Fault::Privileged,
                "divide" => Fault::DivideByZero,
                "exec-data" => Fault::ExecuteData,
                "stack" => Fault::StackOverflow,
                "kernel" => Fault::KernelRead,
                "breakpoint" => Fault::Breakpoint,
                _ => return 2,
            };
            arch::provoke(fault);
            3 // the fault did not happen
        }
        "spin" => {
            let ms = number(args.get(2));
            let end = time::now_ns() + ms * 1_000_000;
            while ms == 0 || time::now_ns() < end {
                core::hint::spin_loop();
            }
            0
        }
        "isolation" => isolation(number(args.get(2))),
        "fpu" => {
            let seed = number(args.get(2));
            arch::set_xmm(seed);
            for _ in 0..200 {
                sys::yield_now();
                if !arch::xmm_intact(seed) {
                    return 1;
                }
            }
            0
        }
        "yield" => {
            for _ in 0..number(args.get(2)) {
                sys::yield_now();
            }
            0
        }
        "hold" => hold(),
        "echo-server" => echo_server(),
        "ipc-server" => {
            let ep = Endpoint(cap(0));
            let _ = ep.serve(|m| (m.words, m.meta));
            0
        }
        "ipc-client" => {
            let ep = Endpoint(cap(0));
            let ok = (0..number(args.get(2)))
                .all(|i| ep.call([i, 0, 0, 0], Meta::default()).is_ok_and(|r| r.words[0] == i + 1));
            if ok { 0 } else { 1 }
        }
        "die-on-request" => {
            let _ = Endpoint(cap(0)).recv();
            0
        }
        "reply-late" => {
            let _ = Endpoint(cap(0)).recv();
            time::sleep_ms(100);
            if ipc::reply([0; 4], Meta::default()) == Err(Error::PeerDied) { 0 } else { 1 }
        }
        "deadline-then-wait" => deadline_then_wait(),
        "identity-echo" => identity_echo(),
        "notify-pong" => {
            let (ping, pong) = (Notification(cap(0)), Notification(cap(1)));
            for _ in 0..number(args.get(2)) {
                if ping.wait().is_err() || pong.signal(1).is_err() {
                    return 1;
                }
            }
            0
        }
        "signal" => match Notification(cap(0)).signal(number(args.get(2))) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        "shared" => shared(),
        "map-and-touch" => map_and_touch(),
        "fuzz" => fuzz(number(args.get(2)), number(args.get(3))),
        "kv-server" => {
            kv_server();
            0
        }
        "xc" => crate::containers::cross_container(&args[2..]),
        "blocked" => crate::containers::blocked(),
        "dup-hold" => crate::containers::dup_hold(number(args.get(2))),
        "ipc-pair" => crate::containers::ipc_pair(),
        "ipc-pair-child" => crate::containers::ipc_pair_child(),
        "spawner" => crate::containers::spawner(),
        "call-service" => crate::containers::call_service(),
        "forkbomb" => crate::containers::forkbomb(),
        "memhog" => crate::containers::memhog(),
        "objhold" => crate::containers::objhold(),
        "chain" => crate::containers::chain(number(args.get(2))),
        "kill-own-parent-host" => crate::containers::kill_own_parent_host(),
        "kill-parent-then-map" => crate::containers::kill_parent_then_map(),
        "ps-check" => crate::containers::ps_check(&args[2..]),
        "echo-service" => crate::containers::echo_service(),
        "threads-exit-main" => threads::exit_main(number(args.get(2))),
        "threads-last-code" => threads::last_code(),
        "thread-fault" => threads::fault(),
        "thread-hog" => threads::hog(args.get(2) == Some(&"park")),
        "thread-wait-cap" => threads::wait_foreign(cap(0)),
        "fs-clobber" => threads::fs_clobber(number(args.get(2))),
        "thread-kill-cap" => threads::kill_foreign(cap(0)),
        "service-client" => crate::containers::service_client(),
        "keep-replies" => replies::keep_replies(number(args.get(2)), args.get(3) == Some(&"hang")),
        "call-expect" => replies::call_expect(number(args.get(2))),
        "window-server" => windows::window_server(),
        "deferred-server" => replies::deferred_server(),
        "exit-clock" => replies::exit_clock(number(args.get(2))),
        "sleep-exit" => replies::sleep_exit(number(args.get(2)), number(args.get(3))),
        "proc-wait" => replies::proc_wait(args.get(2).copied().unwrap_or("0"), number(args.get(3))),
        "kill-via-cap" => match ipc::ProcessHandle(cap(0)).kill() {
            Ok(()) => 0,
            Err(_) => 1,
        },
        "parent" => match process::spawn("bin/probe", &["spin"]) {
            Ok(child) => {
                let _ = process::wait(child);
                0
            }
            Err(_) => 6,
        },
        _ => 2,
    }
}

/// The heap grows from the first `MemMap` address, the same in every process, so this block
/// sits at the same virtual address in every probe. Fill it with the tag, let the others run,
/// check nothing changed. Exit code: 1 if changed, else 10 + the block's offset in the heap
/// range, so the test can see that all probes used the same address.
fn isolation(tag: u64) -> i32 {
    let block: Vec<u64> = alloc::vec![tag; 4096];
    for _ in 0..100 {
        sys::yield_now();
        if block.iter().any(|&v| v != tag) {
            return 1;
        }
    }
    let offset = (block.as_ptr() as u64).wrapping_sub(vessel_rt::abi::HEAP_START);
    if offset > 0xffff { 2 } else { 10 + offset as i32 }
}

/// The `i`th capability handed over at spawn (0 if missing: every use then fails cleanly).
pub(crate) fn cap(i: usize) -> Cap {
    Cap(vessel_rt::handles().get(i).copied().unwrap_or(0))
}

fn hold() -> i32 {
    let held = cap(0);
    let deadline = time::now_ns() + 5_000_000_000;
    while time::now_ns() < deadline {
        if held.inspect().is_err() {
            return 0;
        }
        time::sleep_ms(5);
    }
    1
}

fn echo_server() -> i32 {
    let ep = Endpoint(cap(0));
    let mut message = match ep.recv() {
        Ok(m) => m,
        Err(_) => return 1,
    };
    loop {
        // SAFETY: the buffer is used only between this receive and the reply below.
        let buffer = unsafe { ipc::buffer() };
        let len = usize::from(message.meta.data_len);
        buffer.data[..len].reverse();
        if message.meta.cap_count > 0 {
            let _ = Notification(Cap(buffer.caps[0])).signal(0x10);
            let _ = Cap(buffer.caps[0]).delete();
        }
        let words = [message.words[0].wrapping_add(1), message.badge, buffer.sender_pid, len as u64];
        let meta = Meta { data_len: message.meta.data_len, ..Meta::default() };
        if message.words[0] == u64::MAX {
            let _ = ipc::reply(words, meta);
            return 0;
        }
        message = match ep.reply_recv(words, meta) {
            Ok(m) => m,
            Err(_) => return 2,
        };
    }
}

/// Answers each call with what the kernel stamped in our IPC buffer: `[w0 + 1, badge, sender
/// pid, sender container]`, and as many data bytes as came; wipes those fields before each
/// receive, so that a stamp the kernel skipped shows. `w0 == u64::MAX` ends it.
fn identity_echo() -> i32 {
    let ep = Endpoint(cap(0));
    let wipe = || {
        // SAFETY: nothing else uses this thread's buffer.
        let buffer = unsafe { ipc::buffer() };
        (buffer.badge, buffer.sender_pid, buffer.sender_container) = (u64::MAX, u64::MAX, u64::MAX);
    };
    wipe();
    let Ok(mut message) = ep.recv() else { return 1 };
    loop {
        // SAFETY: read between the receive and the reply.
        let buffer = unsafe { ipc::buffer() };
        let words = [message.words[0].wrapping_add(1), buffer.badge, buffer.sender_pid, buffer.sender_container];
        if message.words[0] == u64::MAX {
            return if ipc::reply(words, Meta::default()).is_ok() { 0 } else { 2 };
        }
        // Data comes back as long as it came, each byte inverted: a copy that did not happen
        // either way shows.
        let len = usize::from(message.meta.data_len).min(buffer.data.len());
        for byte in &mut buffer.data[..len] {
            *byte = !*byte;
        }
        let meta = Meta { data_len: message.meta.data_len, ..Meta::default() };
        wipe();
        message = match ep.reply_recv(words, meta) {
            Ok(m) => m,
            Err(_) => return 3,
        };
    }
}

/// A receiver with a deadline that a call ends early must lose the deadline: the call is
/// answered, a later timed receive times out once, and a plain receive after it waits for the
/// next real call (exit 0). Exit 3: a receive returned without a message.
fn deadline_then_wait() -> i32 {
    let ep = Endpoint(cap(0));
    let Ok(first) = ep.recv_timeout(2_000_000_000) else { return 1 };
    if ipc::reply([first.words[0] + 1, 0, 0, 0], Meta::default()).is_err() {
        return 2;
    }
    if ep.recv_timeout(30_000_000) != Err(Error::TimedOut) {
        return 3;
    }
    match ep.recv() {
        Ok(m) if m.words[0] == 7 => {
            if ipc::reply([8, 0, 0, 0], Meta::default()).is_err() {
                4
            } else {
                0
            }
        }
        _ => 3,
    }
}

fn shared() -> i32 {
    let Ok(addr) = Memory(cap(0)).map(MapFlags::WRITE) else { return 1 };
    let words = addr as usize as *mut u64;
    // SAFETY: the kernel just mapped a whole writable page of the memory object at `addr`.
    unsafe {
        if core::ptr::read_volatile(words) != 0x1234 {
            return 2;
        }
        core::ptr::write_volatile(words.add(1), 0x5678);
    }
    0
}

/// Maps memory object 0, writes it, signals bit 1 on notification 1, then keeps reading the
/// page for 3 s: exit 1 if it is still there (the parent revokes it meanwhile, which must unmap
/// it, so the read faults).
fn map_and_touch() -> i32 {
    let Ok(addr) = Memory(cap(0)).map(MapFlags::WRITE) else { return 2 };
    let word = addr as usize as *mut u64;
    // SAFETY: the kernel just mapped a whole writable page of the memory object at `addr`.
    unsafe { core::ptr::write_volatile(word, 0x77) };
    if Notification(cap(1)).signal(1).is_err() {
        return 3;
    }
    let deadline = time::now_ns() + 3_000_000_000;
    while time::now_ns() < deadline {
        // SAFETY: the page was mapped above; once revoked, this read faults and the kernel ends
        // the process (what the test expects).
        core::hint::black_box(unsafe { core::ptr::read_volatile(word) });
        time::sleep_ms(5);
    }
    1
}

/// The example key-value server (`vessel-kv-protocol`): at most 64 keys.
struct KvStore(alloc::collections::BTreeMap<u64, Vec<u8>>);

impl vessel_kv_protocol::Server for KvStore {
    fn put(&mut self, cx: &mut Cx<'_, Stored>, key: u64, value: &[u8]) -> Answer<Stored> {
        if value.len() > vessel_kv_protocol::MAX_VALUE {
            let why = alloc::format!("a {}-byte value (at most {})", value.len(), vessel_kv_protocol::MAX_VALUE);
            return cx.refusal(Error::TooLarge, why).into();
        }
        if self.0.len() >= 64 && !self.0.contains_key(&key) {
            return cx.refusal(Error::QuotaExceeded, "the store holds 64 keys already").into();
        }
        Answer::Reply(Stored { replaced: self.0.insert(key, value.to_vec()).is_some() })
    }

    fn get(&mut self, cx: &mut Cx<'_, Found>, key: u64) -> Answer<Found> {
        match self.0.get(&key) {
            Some(value) => Answer::Reply(Found { value: value.clone() }),
            None => cx.refusal(Error::NotFound, alloc::format!("no value under key {key}")).into(),
        }
    }
}

fn kv_server() {
    let mut store = KvStore(alloc::collections::BTreeMap::new());
    let server = vessel_rt::server::Server::new(Endpoint(cap(0)));
    let _ = server.serve(|caller, message| {
        vessel_kv_protocol::dispatch(&mut store, caller, &mut vessel_rt::server::Keeper, message)
    });
}

unsafe extern "C" {
    /// Ends the calling thread without touching its stack (`ThreadExit(0)`).
    fn fuzz_thread_exit() -> !;
}

core::arch::global_asm!(
    ".global fuzz_thread_exit",
    "fuzz_thread_exit:",
    "mov eax, {exit}",
    "xor edi, edi",
    "xor edx, edx",
    "syscall",
    "ud2",
    exit = const vessel_rt::abi::Syscall::ThreadExit as u32,
);

/// Random system calls: numbers in and past the table, arguments drawn from values that probe
/// every validation path (zero, small, handles with and without generations, our own stack and
/// heap, kernel and non-canonical addresses, huge values).
fn fuzz(seed: u64, calls: u64) -> i32 {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let local = [0u64; 128];
    let heap: Vec<u64> = alloc::vec![0; 512];
    for _ in 0..calls {
        let number = next() % 50;
        // Exit, DebugExit, ProcessKill (of ourselves), MemUnmap (of our own heap), ReplyRecv
        // (which always waits) and ThreadExit would end the run early; DebugWrite would print
        // random bytes into the test log. Their hostile cases have tests of their own.
        if matches!(number, 0 | 1 | 11 | 13 | 24 | 35 | 41) {
            continue;
        }
        let mut args = [0u64; 6];
        for arg in &mut args {
            *arg = match next() % 10 {
                0 => 0,
                1 => next() % 64,
                2 => (next() % 32) | (next() % 4) << 16,   // plausible handles
                3 => local.as_ptr() as u64 + next() % 512, // results land inside `local`
                4 => heap.as_ptr() as u64 + next() % 3072, // and inside `heap`
                5 => 0xffff_8000_0000_0000 + next() % 0x1_0000_0000,
                6 => 0x0000_8000_0000_0000 | next(),
                7 => u64::MAX - next() % 16,
                8 => 1 << (next() % 64),
                _ => next(),
            };
        }
        // Calls that may block forever (nobody else talks to our objects) are made
        // non-blocking, and sleeps short, so the run goes on.
        // (`Call` carries its flags in the meta word, a receive in its own flags argument.)
        const META_NONBLOCK: u64 = (vessel_rt::abi::NONBLOCK as u64) << 24;
        const NONBLOCK: u64 = vessel_rt::abi::NONBLOCK as u64;
        match number {
            8 => args[0] %= 1_000_000,
            21 => args[5] |= META_NONBLOCK,
            // Mostly valid flags, so the receive logic itself is reached; now and then raw
            // bits, for the flag check.
            22 | 26 if next() % 8 == 0 => args[2] |= NONBLOCK,
            22 | 26 => args[2] = (args[2] & u64::from(vessel_rt::abi::TIMEOUT)) | NONBLOCK,
            // A new thread starts where it can only end itself at once (a random entry would
            // fault, which ends the whole run); its stack argument stays random.
            40 => args[0] = fuzz_thread_exit as *const () as u64,
            _ => {}
        }
        // SAFETY: hostile arguments are the point; the worst the kernel may do is end us.
        let _ = unsafe { arch::syscall_ipc(number, args) };
    }
    0
}
