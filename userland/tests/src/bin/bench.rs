//! `bench`: Vessel's side of the performance comparison. Prints
//! `RESULT <name> n=<N> <value> ns/<unit>` lines, then leaves QEMU. Times come from the kernel's
//! TSC clock; each figure is the total divided by the count.
#![no_std]
#![no_main]

extern crate alloc;

use vessel_proc_protocol::Limits;
use vessel_rt::abi::{ContainerLimits, Error, Meta, ObjectKind};
use vessel_rt::container::Container;
use vessel_rt::ipc::{self, Cap, Endpoint, Notification};
use vessel_rt::proc::Proc;
use vessel_rt::{println, process, sys, time};

vessel_rt::entry!(main);

fn report(name: &str, n: u64, total_ns: u64, unit: &str) {
    let tenths = total_ns * 10 / n.max(1);
    println!("RESULT {name} n={n} {}.{} ns/{unit}", tenths / 10, tenths % 10);
    settle(30);
}

/// Sleeps `ms` so the `device` server draws what was printed (it shows the kernel's log on its
/// console after the print returns, on the next tick) before the next figure is timed: the
/// drawing belongs to the print, as it did when the kernel drew synchronously, not to whatever
/// benchmark runs next.
fn settle(ms: u64) {
    time::sleep_ms(ms);
}

/// Which groups run (all when none is named) and the factor on every round count.
struct Selection<'a> {
    groups: alloc::vec::Vec<&'a str>,
    scale: u64,
}

impl Selection<'_> {
    fn wants(&self, group: &str) -> bool {
        self.groups.is_empty() || self.groups.contains(&group)
    }

    /// One benchmark of a group, named by its group or by its own name.
    fn wants_one(&self, group: &str, name: &str) -> bool {
        self.wants(group) || self.groups.contains(&name)
    }
}

/// `bench [group ...] [xN]`: groups are null, yield, spawn, ipc, container, irqs, blk, file, or one benchmark's
/// name; `xN` multiplies every round count.
fn main() -> i32 {
    let mut selection = Selection { groups: alloc::vec::Vec::new(), scale: 1 };
    for arg in vessel_rt::args().skip(1) {
        match arg.strip_prefix('x').and_then(|n| n.parse().ok()) {
            Some(scale) => selection.scale = scale,
            None => selection.groups.push(arg),
        }
    }
    let scale = selection.scale;
    // The boot log is still being drawn when init starts us.
    settle(500);

    if selection.wants("null") {
        // Null system call: the cheapest call there is.
        let n = 200_000 * scale;
        let start = time::now_ns();
        for _ in 0..n {
            core::hint::black_box(sys::process_id());
        }
        report("null_syscall", n, time::now_ns() - start, "call");
    }

    if selection.wants("yield") {
        // Yield ping-pong between two processes of equal priority: every yield is one switch.
        let n = 20_000 * scale;
        let rounds = n.to_string_lossless();
        match process::spawn("bin/probe", &["yield", rounds.as_str()]) {
            Ok(partner) => {
                sys::yield_now(); // let the partner start
                let start = time::now_ns();
                for _ in 0..n {
                    sys::yield_now();
                }
                let elapsed = time::now_ns() - start;
                let _ = process::wait(partner);
                report("yield_switch", 2 * n, elapsed, "switch");
            }
            Err(e) => println!("bench: cannot spawn the yield partner: {e}"),
        }
    }

    if selection.wants("spawn") {
        // Spawn a tiny program, it exits, wait for it.
        let n = 500 * scale;
        let start = time::now_ns();
        for _ in 0..n {
            let _ = process::run("bin/true", &[]);
        }
        report("spawn_wait", n, time::now_ns() - start, "proc");
    }

    if let Err(e) = ipc_benches(&selection) {
        println!("bench: IPC benchmarks failed: {e}");
    }
    if let Err(e) = deferred_reply_bench(&selection) {
        println!("bench: deferred reply benchmark failed: {e}");
    }
    // After the IPC group, which then runs in the same order and state as in earlier runs.
    if let Some(proc) = Proc::get()
        && let Err(e) = proc_benches(proc, &selection)
    {
        println!("bench: proc benchmarks failed: {e}");
    }
    if selection.wants("container")
        && let Err(e) = container_benches(scale)
    {
        println!("bench: container benchmarks failed: {e}");
    }
    if selection.wants("irqs")
        && let Err(e) = irqs_off_benches()
    {
        println!("bench: interrupts-off benchmarks failed: {e}");
    }
    if selection.wants("blk")
        && let Err(e) = blk_benches(scale)
    {
        println!("bench: block benchmarks skipped: {e}");
    }
    if selection.wants("file")
        && let Err(e) = file_benches(scale)
    {
        println!("bench: file benchmarks skipped: {e}");
    }

    let _ = sys::debug_exit(0);
    0
}

/// Spawning and waiting through `proc`: the whole path a shell takes (`proc_spawn_wait`), and
/// how soon a waiter blocked in `proc` wakes after the child ends (`proc_wait_latency`).
fn proc_benches(proc: Proc, selection: &Selection<'_>) -> Result<(), vessel_protocol::Refusal> {
    if selection.wants_one("spawn", "proc_spawn_wait") {
        let n = 300 * selection.scale;
        let start = time::now_ns();
        for _ in 0..n {
            let (pid, _) = proc.spawn(0, "bin/true", &[], &[])?;
            proc.wait(0, pid)?;
        }
        report("proc_spawn_wait", n, time::now_ns() - start, "proc");
        // The same in a child container, where proc hands the program no hardware
        // capabilities (in the root container it passes all of them, for now).
        let jail = proc.create(0, vessel_proc_protocol::Limits::default())?;
        let start = time::now_ns();
        for _ in 0..n {
            let (pid, _) = proc.spawn(jail, "bin/true", &[], &[])?;
            proc.wait(jail, pid)?;
        }
        report("proc_spawn_wait_container", n, time::now_ns() - start, "proc");
        proc.destroy(jail)?;
    }
    if selection.wants_one("container", "ctr_run_true") {
        // What `ctr run bin/true` asks of proc: a container, the program in it, its end, and
        // the container gone again (the pair of Linux's unshare+fork+exec(tiny)+wait).
        let n = 200 * selection.scale;
        let start = time::now_ns();
        for _ in 0..n {
            let jail = proc.create(0, vessel_proc_protocol::Limits::default())?;
            let (pid, _) = proc.spawn(jail, "bin/true", &[], &[])?;
            proc.wait(jail, pid)?;
            proc.destroy(jail)?;
        }
        report("ctr_run_true", n, time::now_ns() - start, "container");
    }
    if selection.wants_one("container", "ctr_tool_run_true") {
        // What the shell does for `ctr run true`: the `ctr` program itself, which creates the
        // container, runs `bin/true` there, waits, prints how it ended and destroys it.
        let n = 50 * selection.scale;
        let start = time::now_ns();
        for _ in 0..n {
            let (pid, _) = proc.spawn(0, "bin/ctr", &["run", "true"], &[])?;
            proc.wait(0, pid)?;
        }
        report("ctr_tool_run_true", n, time::now_ns() - start, "container");
    }
    if selection.wants_one("spawn", "proc_wait_latency") {
        let n = 100 * selection.scale;
        let mut total = 0;
        for _ in 0..n {
            // The child sleeps first, so the wait is already kept in proc when it ends.
            let (pid, _) = proc.spawn(0, "bin/probe", &["exit-clock", "1"], &[])?;
            if let vessel_proc_protocol::Ending::Code(ended_at) = proc.wait(0, pid)? {
                total += time::now_ns().saturating_sub(ended_at as u64);
            }
        }
        report("proc_wait_latency", n, total, "wait");
        // The same with the kernel's own `Wait` (no proc): what ending and reaping a process
        // costs by itself, so the difference is proc's share.
        let mut total = 0;
        for _ in 0..n {
            let Ok(pid) = process::spawn("bin/probe", &["exit-clock", "1"]) else { break };
            if let Ok(vessel_rt::abi::Exit::Code(ended_at)) = process::wait(pid) {
                total += time::now_ns().saturating_sub(ended_at as u64);
            }
        }
        report("kernel_wait_latency", n, total, "wait");
    }
    Ok(())
}

/// Times `n` rounds of `round` (after a short warm-up).
fn time_rounds(
    n: u64,
    mut round: impl FnMut() -> Result<(), vessel_rt::abi::Error>,
) -> Result<u64, vessel_rt::abi::Error> {
    for _ in 0..100 {
        round()?;
    }
    let start = time::now_ns();
    for _ in 0..n {
        round()?;
    }
    Ok(time::now_ns() - start)
}

fn ipc_benches(selection: &Selection<'_>) -> Result<(), vessel_rt::abi::Error> {
    const NAMES: [&str; 5] = [
        "ipc_call_roundtrip",
        "ipc_call_roundtrip_4k",
        "cap_transfer_roundtrip",
        "ipc_call_roundtrip_threads",
        "notification_roundtrip",
    ];
    if !NAMES.iter().any(|name| selection.wants_one("ipc", name)) {
        return Ok(());
    }
    let scale = selection.scale;
    let ep = Endpoint::create()?;
    let server = process::spawn_with_caps("bin/probe", &["ipc-server"], &[ep.0.0])?;

    if selection.wants_one("ipc", "ipc_call_roundtrip") {
        let n = 20_000 * scale;
        let total = time_rounds(n, || ep.call([1, 2, 3, 4], Meta::default()).map(|_| ()))?;
        report("ipc_call_roundtrip", n, total, "roundtrip");
    }

    if selection.wants_one("ipc", "ipc_call_roundtrip_4k") {
        let n = 5_000 * scale;
        let four_k = Meta { data_len: 4096, ..Meta::default() };
        let total = time_rounds(n, || ep.call([1, 2, 3, 4], four_k).map(|_| ()))?;
        report("ipc_call_roundtrip_4k", n, total, "roundtrip");
    }

    if selection.wants_one("ipc", "cap_transfer_roundtrip") {
        let n = 5_000 * scale;
        let carried = Notification::create()?;
        // SAFETY: the buffer is staged before each call; the reply puts the (new) handle back.
        unsafe { ipc::buffer() }.caps[0] = carried.0.0;
        let one_cap = Meta { cap_count: 1, ..Meta::default() };
        let total = time_rounds(n, || ep.call([0; 4], one_cap).map(|_| ()))?;
        report("cap_transfer_roundtrip", n, total, "roundtrip");
    }

    let _ = process::kill(server);
    let _ = process::wait(server);

    if selection.wants_one("ipc", "ipc_call_roundtrip_threads") {
        // The same round trip between two threads of one process: no address-space switch, so
        // this is the kernel's IPC path without the emulator's TLB flush on each CR3 write.
        let server = vessel_rt::thread::spawn(move || ep.serve(|m| (m.words, m.meta)) as i32)?;
        let n = 20_000 * scale;
        let total = time_rounds(n, || ep.call([1, 2, 3, 4], Meta::default()).map(|_| ()))?;
        report("ipc_call_roundtrip_threads", n, total, "roundtrip");
        // SAFETY: the server thread is blocked in a receive, holding nothing.
        unsafe { server.kill() }?;
        server.join()?;
    }
    let _ = ep.0.delete();

    if !selection.wants_one("ipc", "notification_roundtrip") {
        return Ok(());
    }

    let n = 10_000 * scale;
    let (ping, pong) = (Notification::create()?, Notification::create()?);
    let rounds = (n + 100).to_string_lossless();
    let partner = process::spawn_with_caps("bin/probe", &["notify-pong", rounds.as_str()], &[ping.0.0, pong.0.0])?;
    let total = time_rounds(n, || {
        ping.signal(1)?;
        pong.wait().map(|_| ())
    })?;
    report("notification_roundtrip", n, total, "roundtrip");
    let _ = process::wait(partner);
    Ok(())
}

/// A call received by one server thread, which keeps the reply and hands it to another thread
/// of the server through a notification; that one answers. Run after the IPC group, which
/// then runs as it did before this benchmark existed.
fn deferred_reply_bench(selection: &Selection<'_>) -> Result<(), Error> {
    if !selection.wants_one("ipc", "deferred_reply_roundtrip") {
        return Ok(());
    }
    let ep = Endpoint::create()?;
    let server = process::spawn_with_caps("bin/probe", &["deferred-server"], &[ep.0.0])?;
    let n = 10_000 * selection.scale;
    let total = time_rounds(n, || ep.call([1, 2, 3, 4], Meta::default()).map(|_| ()));
    let _ = process::kill(server);
    let _ = process::wait(server);
    let _ = ep.0.delete();
    report("deferred_reply_roundtrip", n, total?, "roundtrip");
    Ok(())
}

/// Create a container, start `bin/true` in it, wait, destroy: `n` times.
fn lifecycle(root: Container, n: u64) -> Result<u64, Error> {
    time_rounds(n, || {
        let c = root.create_child(&ContainerLimits::default())?;
        let child = process::spawn_in(c.0, "bin/true", &[], &[])?;
        process::wait_handle(child)?;
        c.destroy()?;
        child.0.delete()?;
        c.0.delete()
    })
}

/// Kernel memory (frames and heap) in bytes.
fn kernel_bytes() -> Result<i64, Error> {
    let s = sys::kernel_stats()?;
    Ok(s.heap_used as i64 - (s.available_frames() * 4096) as i64)
}

fn container_benches(scale: u64) -> Result<(), Error> {
    let root = root_container()?;
    // Memory per container: the kernel's own (1,000 created directly), then kernel + proc
    // (1,000 created through proc, which also keeps a record and a capability for each).
    let live = 1000u64;
    let before = kernel_bytes()?;
    let held = make_containers(root, live)?;
    let kernel = (kernel_bytes()? - before) / live as i64;
    println!("MEASURE container_memory_kernel n={live} {kernel} bytes/container");
    // (The first thousand stay, so these grow fresh table capacity too.)
    if let Some(proc) = Proc::get() {
        let before = kernel_bytes()?;
        let mut ids = alloc::vec::Vec::new();
        for _ in 0..live {
            ids.push(proc.create(0, Limits::default()).map_err(|r| r.error)?);
        }
        let both = (kernel_bytes()? - before) / live as i64;
        println!("MEASURE container_memory_kernel_and_proc n={live} {both} bytes/container");
        for id in ids {
            proc.destroy(id).map_err(|r| r.error)?;
        }
    }
    drop_containers(held)?;

    // Lifecycle and IPC round trip with 1 live container (the root) and with 1,000, measured
    // in alternation so that drift of the host hits both sides alike.
    let ep = Endpoint::create()?;
    let server = process::spawn_with_caps("bin/probe", &["ipc-server"], &[ep.0.0])?;
    let (n, calls) = (200 * scale, 5_000 * scale);
    let call = || ep.call([1, 2, 3, 4], Meta::default()).map(|_| ());
    let (mut one, mut many) = ([0u64; 2], [0u64; 2]);
    for _ in 0..3 {
        one[0] += lifecycle(root, n)?;
        one[1] += time_rounds(calls, call)?;
        let held = make_containers(root, live)?;
        many[0] += lifecycle(root, n)?;
        many[1] += time_rounds(calls, call)?;
        drop_containers(held)?;
    }
    let _ = process::kill(server);
    let _ = process::wait(server);
    let _ = ep.0.delete();
    report("container_lifecycle", 3 * n, one[0], "container");
    report("container_lifecycle_1000_live", 3 * n, many[0], "container");
    report("ipc_call_roundtrip_1_live", 3 * calls, one[1], "roundtrip");
    report("ipc_call_roundtrip_1000_live", 3 * calls, many[1], "roundtrip");
    Ok(())
}

fn make_containers(root: Container, count: u64) -> Result<alloc::vec::Vec<Container>, Error> {
    (0..count).map(|_| root.create_child(&ContainerLimits::default())).collect()
}

fn drop_containers(held: alloc::vec::Vec<Container>) -> Result<(), Error> {
    for c in held {
        c.destroy()?;
        c.0.delete()?;
    }
    Ok(())
}

/// Decimal text of a number without allocation.
trait Decimal {
    fn to_string_lossless(self) -> Text;
}

/// A short number's text.
struct Text {
    buf: [u8; 20],
    start: usize,
}

impl Text {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

impl Decimal for u64 {
    fn to_string_lossless(mut self) -> Text {
        let mut text = Text { buf: [b'0'; 20], start: 20 };
        loop {
            text.start -= 1;
            text.buf[text.start] = b'0' + (self % 10) as u8;
            self /= 10;
            if self == 0 {
                return text;
            }
        }
    }
}

/// The longest stretch the kernel runs with interrupts off while it destroys a container of
/// 1,000 processes (until every member is reaped) and while it revokes a capability with 10,000
/// derived copies: the kernel's own measurement (`KernelStats::irqs_off_longest_ns`), taken only
/// around the work. One figure each (n=1); the container group's memory figures come first.
fn irqs_off_benches() -> Result<(), Error> {
    use vessel_rt::abi::{MEASURE_IRQS_OFF, Rights, STOP_IRQS_OFF};
    let root = root_container()?;
    // Once before measuring: the first thousand kernel stacks also make the page tables of the
    // stack range, which stay (not the work being measured).
    for measured in [false, true] {
        let jail = root.create_child(&ContainerLimits::default())?;
        // `idle`, a few pages each: a thousand `probe`s (two dozen pages each, more once they
        // run) left too little memory for the benchmarks after this one.
        let members = (0..1000)
            .map(|_| process::spawn_in(jail.0, "bin/idle", &[], &[]))
            .collect::<Result<alloc::vec::Vec<_>, _>>();
        let members = match members {
            Ok(members) => members,
            Err(e) => {
                // Whatever did start goes with its container, so the benchmarks after this
                // one still have their memory.
                let _ = jail.destroy();
                let _ = jail.0.delete();
                return Err(e);
            }
        };
        if measured {
            sys::kernel_stats_and(MEASURE_IRQS_OFF)?;
        }
        jail.destroy()?;
        for &member in &members {
            process::wait_handle(member)?;
        }
        if measured {
            let stats = sys::kernel_stats_and(STOP_IRQS_OFF)?;
            report("irqs_off_longest_destroy", 1, stats.irqs_off_longest_ns, "stretch");
            println!("MEASURE irqs_off_longest_destroy_began_in {}", call_name(stats.irqs_off_longest_call));
        }
        for member in members {
            member.0.delete()?;
        }
        jail.0.delete()?;
    }
    // 3,000 copies here and 2,401 in each of three children (a capability table holds 4,096),
    // all derived from one notification capability.
    let n = Notification::create()?;
    let copies = (0..3000).map(|_| n.0.duplicate(Rights::all())).collect::<Result<alloc::vec::Vec<_>, _>>()?;
    let children = (0..3)
        .map(|_| process::spawn_with_caps("bin/probe", &["dup-hold", "2400"], &[copies[0].0]))
        .collect::<Result<alloc::vec::Vec<_>, _>>()?;
    let mut ready = 0;
    while ready < 3 {
        ready += n.wait()?.count_ones();
    }
    sys::kernel_stats_and(MEASURE_IRQS_OFF)?;
    let removed = n.0.revoke()?;
    let stats = sys::kernel_stats_and(STOP_IRQS_OFF)?;
    if removed == 3000 + 3 * 2401 {
        report("irqs_off_longest_revoke", 1, stats.irqs_off_longest_ns, "stretch");
        println!("MEASURE irqs_off_longest_revoke_began_in {}", call_name(stats.irqs_off_longest_call));
    } else {
        println!("bench: revoke removed {removed} capabilities, not 10203");
    }
    for child in children {
        let _ = process::wait(child);
    }
    n.0.delete()
}

/// The root container's capability, which init gives the bench.
fn root_container() -> Result<Container, Error> {
    vessel_rt::handles()
        .iter()
        .map(|&h| Cap(h))
        .find(|c| c.inspect().is_ok_and(|i| i.kind == ObjectKind::Container as u32))
        .map(Container)
        .ok_or(Error::NotFound)
}

/// The name of the system call numbered `number`, or what else begins an interrupts-off stretch.
fn call_name(number: u64) -> alloc::string::String {
    vessel_rt::abi::Syscall::try_from(number)
        .map_or_else(|_| "an interrupt or the idle thread".into(), |call| alloc::format!("{call:?}"))
}

/// The kernel's idle time so far (for the `[busy]` figures: time not spent waiting for a device).
fn idle_ns() -> u64 {
    sys::kernel_stats().map_or(0, |s| s.idle_ns)
}

/// Prints `name` and `name[busy]` (the same less the kernel's idle time).
fn report_busy(name: &str, n: u64, start: u64, idle_start: u64, unit: &str) {
    let total = time::now_ns() - start;
    let idle = idle_ns().saturating_sub(idle_start);
    report(name, n, total, unit);
    report(&alloc::format!("{name}[busy]"), n, total.saturating_sub(idle), unit);
}

/// Reading `blk0` (the disk `BENCH_DISK` attaches) through the `device` server, as the Linux
/// peer reads with O_DIRECT: into a buffer the disk fills in place (a session's shared buffer).
/// `blk_read_seq`: the first 16 MiB (or the whole disk if smaller) in 1 MiB requests, per MiB;
/// `blk_read_rand_4k`: 4 KiB at random aligned offsets over the whole disk, per read.
fn blk_benches(scale: u64) -> Result<(), vessel_protocol::Refusal> {
    use vessel_device_protocol::Rights;
    let disk = vessel_rt::device::Devices::connect()?.open("blk0", Rights::READ)?;
    const MIB_BLOCKS: u64 = 2048;
    let mib = 16.min(disk.blocks / MIB_BLOCKS);
    if mib == 0 {
        return Err(vessel_protocol::Refusal::new(Error::NotFound, "blk0 is smaller than 1 MiB"));
    }
    let mut buffer = disk.share(1 << 20)?;
    let passes = 4 * scale;
    let (start, idle) = (time::now_ns(), idle_ns());
    for _ in 0..passes {
        for n in 0..mib {
            disk.read_shared(&mut buffer, n * MIB_BLOCKS, MIB_BLOCKS, 0)?;
        }
    }
    report_busy("blk_read_seq", passes * mib, start, idle, "MiB");
    let n = 2000 * scale;
    let per_read = 8;
    let mut seed = 0u64;
    let slots = disk.blocks / per_read;
    let (start, idle) = (time::now_ns(), idle_ns());
    for _ in 0..n {
        // splitmix64, as the peer.
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        disk.read_shared(&mut buffer, (z % slots) * per_read, per_read, 0)?;
    }
    report_busy("blk_read_rand_4k", n, start, idle, "op");
    buffer.free();
    disk.close()
}

/// Files on the FAT image `BENCH_DISK` attaches (`mkfatimage.sh`: `/big.bin` 16 MiB,
/// `/small/f0000`…`f0999` 4 KiB each, `/scratch`), which `vfs` mounts at `/data`, as the Linux
/// peer reads it through vfat:
/// - `file_read_seq_cold`: `/data/big.bin` in 64 KiB reads (as the peer reads; through the
///   buffer shared with `vfs`) right after `/data` was mounted again (an empty cache, as after
///   `drop_caches`), per MiB; `file_read_seq_warm`: read again;
/// - `file_open_read_close`: open a 4 KiB file of `/small`, read it, close (warm: after one
///   untimed pass over the 1,000 files, as the peer does);
/// - `file_stat`: stat one of them; `file_readdir_1000`: list `/small`;
/// - `file_create_write_sync`: create a file in `/scratch`, write 4 KiB, sync, close;
/// - `container_vsf_lifecycle`: create a container, mount a 2 MiB VSF on the disk as its `/`,
///   run the `/bin/true` stored in it, wait, unmount, destroy.
fn file_benches(scale: u64) -> Result<(), vessel_protocol::Refusal> {
    use alloc::format;
    use vessel_rt::fs::{self, File, OpenFlags};
    fs::metadata("/data/big.bin")?;
    // An empty cache: mount the disk again.
    let source = fs::mounts(0)?.into_iter().find(|m| m.path == "/data").map(|m| m.source);
    let source = source.ok_or_else(|| vessel_protocol::Refusal::new(Error::NotFound, "nothing at /data"))?;
    fs::unmount(0, "/data")?;
    fs::mount(0, "/data", &source)?;
    let mut buf = alloc::vec![0u8; 64 << 10];
    let read_all = |buf: &mut [u8]| -> Result<u64, vessel_protocol::Refusal> {
        let mut f = File::open("/data/big.bin")?;
        let mut total = 0u64;
        loop {
            let n = f.read(buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    };
    let (start, idle) = (time::now_ns(), idle_ns());
    let bytes = read_all(&mut buf)?;
    report_busy("file_read_seq_cold", bytes >> 20, start, idle, "MiB");
    let passes = 2 * scale;
    let (start, idle) = (time::now_ns(), idle_ns());
    for _ in 0..passes {
        read_all(&mut buf)?;
    }
    report_busy("file_read_seq_warm", passes * (bytes >> 20), start, idle, "MiB");

    let n = 1000 * scale;
    // Warm, as the peer measures it: one untimed pass over the 1,000 files first.
    for i in 0..1000 {
        let mut f = File::open(&format!("/data/small/f{i:04}"))?;
        f.read(&mut buf[..4096])?;
        f.close()?;
    }
    let (start, idle) = (time::now_ns(), idle_ns());
    for i in 0..n {
        let mut f = File::open(&format!("/data/small/f{:04}", i % 1000))?;
        f.read(&mut buf[..4096])?;
        f.close()?;
    }
    report_busy("file_open_read_close", n, start, idle, "op");
    let (start, idle) = (time::now_ns(), idle_ns());
    for i in 0..n {
        core::hint::black_box(fs::metadata(&format!("/data/small/f{:04}", i % 1000))?);
    }
    report_busy("file_stat", n, start, idle, "op");
    let rounds = 20 * scale;
    let (start, idle) = (time::now_ns(), idle_ns());
    for _ in 0..rounds {
        let listed = fs::read_dir("/data/small")?;
        core::hint::black_box(listed.len());
    }
    report_busy("file_readdir_1000", rounds, start, idle, "op");
    let n = 100 * scale;
    let page = [0x5Au8; 4096];
    let (start, idle) = (time::now_ns(), idle_ns());
    for i in 0..n {
        let mut f = File::open_with(&format!("/data/scratch/w{i}"), OpenFlags::WRITE | OpenFlags::CREATE)?;
        f.write_all(&page)?;
        f.sync()?;
        f.close()?;
    }
    report_busy("file_create_write_sync", n, start, idle, "op");

    // As the peer: a 2 MiB FAT image file on the disk holding /bin/true, made once (not timed).
    let proc = Proc::get().ok_or_else(|| vessel_protocol::Refusal::new(Error::NotFound, "no proc"))?;
    let _ = fs::remove("/data/scratch/root.vsf");
    fs::create_vsf("/data/scratch/root.vsf", 2 << 20)?;
    let _ = fs::create_dir("/tmp/seed");
    fs::mount(0, "/tmp/seed", "vsf:/data/scratch/root.vsf")?;
    fs::create_dir("/tmp/seed/bin")?;
    fs::write("/tmp/seed/bin/true", &fs::read("/boot/bin/true")?)?;
    fs::unmount(0, "/tmp/seed")?;
    let n = 50 * scale;
    let (start, idle) = (time::now_ns(), idle_ns());
    for _ in 0..n {
        let child = proc.create(0, Limits::default())?;
        fs::mount(child, "/", "vsf:/data/scratch/root.vsf")?;
        let (pid, _) = proc.spawn(child, "/bin/true", &[], &[])?;
        proc.wait(child, pid)?;
        fs::unmount(child, "/")?;
        proc.destroy(child)?;
    }
    report_busy("container_vsf_lifecycle", n, start, idle, "op");
    Ok(())
}
