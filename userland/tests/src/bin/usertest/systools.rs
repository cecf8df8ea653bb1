//! Tests of the system tools (`ps`, `kill`, `date`, `uptime`, `free`, `dmesg`, and the refusals
//! of `poweroff` and `reboot`), run through `proc` with their output in files of `/tmp` (the
//! handles are this container's, so the children write them) or, in a child container, in the
//! kernel's log, which this test reads back with `LogCopy`. `poweroff` and `reboot` are only run
//! where they must be refused: anywhere else they would end the suite.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_proc_protocol::{Ending, Limits, ProcessState};
use vessel_rt::abi::{Error, POWER_OFF, POWER_REBOOT};
use vessel_rt::fs::{self, File};
use vessel_rt::proc::Proc;
use vessel_rt::{container, sys, time};

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("systools::every_tool_answers_help_and_names_unknown_options", help_and_unknown_options),
    ("systools::process_info_describes_a_process", process_info_describes_a_process),
    ("systools::ps_lists_this_test_by_name", ps_lists_this_test_by_name),
    ("systools::ps_in_a_child_container_shows_only_it", ps_in_a_child_container_shows_only_it),
    ("systools::kill_ends_processes_by_pid_and_container", kill_ends_processes),
    ("systools::date_reads_the_clock", date_reads_the_clock),
    ("systools::uptime_counts_from_boot", uptime_counts_from_boot),
    ("systools::free_shows_memory_in_units", free_shows_memory_in_units),
    ("systools::dmesg_prints_what_the_kernel_logged", dmesg_prints_what_the_kernel_logged),
    ("systools::power_and_log_copy_belong_to_the_root_container", power_and_log_copy_belong_to_the_root),
];

/// The tools checked for `--help` and unknown options.
const TOOLS: [&str; 8] = ["ps", "kill", "date", "uptime", "free", "dmesg", "reboot", "poweroff"];

/// How long a tool may take before the test gives up on it.
const TOOL_TIMEOUT_NS: u64 = 30_000_000_000;

fn e<T: core::fmt::Display>(what: &'static str) -> impl Fn(T) -> String {
    move |r| format!("{what}: {r}")
}

fn proc() -> Result<Proc, String> {
    Proc::get().ok_or_else(|| String::from("no proc capability"))
}

/// What a tool run left behind.
struct Run {
    ending: Ending,
    out: String,
    err: String,
}

/// Runs `bin/<tool> args` in this container through `proc`, its standard output and error in
/// files, and waits for it.
fn run(tool: &str, args: &[&str]) -> Result<Run, String> {
    let proc = proc()?;
    let _ = fs::create_dir("/tmp/systools");
    let (out_path, err_path) = (format!("/tmp/systools/{tool}.out"), format!("/tmp/systools/{tool}.err"));
    let out = File::create(&out_path).map_err(e("create the output file"))?;
    let err = File::create(&err_path).map_err(e("create the error file"))?;
    let env = format!("STDOUT=file:{:#x}\0STDERR=file:{:#x}\0", out.handle(), err.handle());
    let path = format!("bin/{tool}");
    let (pid, _) = proc.spawn_env(0, &path, args, env.as_bytes(), &[]).map_err(e("spawn"))?;
    let ending = match proc.wait_timeout(0, pid, TOOL_TIMEOUT_NS) {
        Ok(ending) => ending,
        Err(r) => {
            let _ = proc.kill(0, pid);
            let _ = proc.wait(0, pid);
            return Err(format!("{path} {args:?}: {r}"));
        }
    };
    drop((out, err));
    let text = |p: &str| fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(e("read the output"));
    Ok(Run { ending, out: text(&out_path)?, err: text(&err_path)? })
}

/// Where the kernel's log ends now.
fn log_end() -> Result<u64, String> {
    sys::log_copy(u64::MAX, &mut []).map(|c| c.next).map_err(e("LogCopy"))
}

/// The kernel's log from byte `from` on (from its oldest kept byte if older).
fn log_since(from: u64) -> Result<String, String> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let mut at = from;
    loop {
        let chunk = sys::log_copy(at, &mut buf).map_err(e("LogCopy"))?;
        let n = (chunk.next - chunk.first) as usize;
        if n == 0 {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        bytes.extend_from_slice(&buf[..n]);
        at = chunk.next;
    }
}

/// One line of `ps` output: pid, container id, name, state, memory.
struct Row {
    pid: u64,
    container: u64,
    name: String,
    state: String,
    memory: String,
}

/// The rows of `ps` output in `text` (its header and anything else are skipped).
fn ps_rows(text: &str) -> Vec<Row> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let [pid, container, name, state, amount, unit] = words.as_slice() else { return None };
            let hex = container.strip_prefix("0x").filter(|h| h.len() == 16)?;
            Some(Row {
                pid: pid.parse().ok()?,
                container: u64::from_str_radix(hex, 16).ok()?,
                name: String::from(*name),
                state: String::from(*state),
                memory: format!("{amount} {unit}"),
            })
        })
        .collect()
}

/// Whether `text` is an amount with a unit, as the tools print sizes (`84 KiB`, `1.5 MiB`).
fn is_size(text: &str) -> bool {
    let Some((amount, unit)) = text.split_once(' ') else { return false };
    let (whole, tenths) = amount.split_once('.').unwrap_or((amount, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(tenths) && tenths.len() == 1 && ["B", "KiB", "MiB", "GiB", "TiB"].contains(&unit)
}

fn help_and_unknown_options() -> TestResult {
    for tool in TOOLS {
        let help = run(tool, &["--help"])?;
        check!(help.ending == Ending::Code(0), "{tool} --help {}", help.ending);
        check!(help.out.starts_with(&format!("usage: {tool}")), "{tool} --help printed {:?}", help.out);
        check!(help.err.is_empty(), "{tool} --help complained {:?}", help.err);
        let bad = run(tool, &["--frobnicate"])?;
        check!(bad.ending == Ending::Code(2), "{tool} --frobnicate {}", bad.ending);
        check!(bad.err.contains("--frobnicate") && bad.err.starts_with(tool), "{tool}: {:?}", bad.err);
        check!(bad.out.is_empty(), "{tool} --frobnicate printed {:?}", bad.out);
    }
    Ok(())
}

fn process_info_describes_a_process() -> TestResult {
    let proc = proc()?;
    let me = proc.process_info(0, vessel_rt::pid()).map_err(e("process_info of this test"))?;
    let own = container::own().map_err(e("own container"))?.id;
    check!(me.name == "bin/usertest" && me.pid == vessel_rt::pid() && me.container == own, "{me:?}");
    // Blocked on the answer as `proc` looked, but a process asking about itself runs.
    check!(me.state == ProcessState::Running, "this test's state {:?}", me.state);
    check!(me.threads >= 1 && me.pages > 10, "{me:?}");
    // CPU time is counted in timer ticks: after 100 ms of work there are some.
    let start = time::now_ns();
    while time::now_ns() - start < 100_000_000 {
        core::hint::spin_loop();
    }
    let later = proc.process_info(0, vessel_rt::pid()).map_err(e("process_info again"))?;
    check!(later.cpu_ns > me.cpu_ns, "CPU time {} ns, then {} ns after 100 ms of work", me.cpu_ns, later.cpu_ns);
    let (pid, _) = proc.spawn(0, "bin/probe", &["exit", "3"], &[]).map_err(e("spawn"))?;
    // Ended but not reaped: still described, as exited.
    let mut seen = None;
    for _ in 0..500 {
        let detail = proc.process_info(0, pid).map_err(e("process_info of the probe"))?;
        if detail.state == ProcessState::Exited {
            seen = Some(detail);
            break;
        }
        time::sleep_ms(10);
    }
    check!(seen.as_ref().is_some_and(|d| d.name == "bin/probe"), "the probe never read as exited: {seen:?}");
    check!(proc.wait(0, pid) == Ok(Ending::Code(3)), "the probe's ending");
    let gone = proc.process_info(0, pid).map(|d| d.name);
    check!(gone.as_ref().is_err_and(|r| r.error == Error::NoSuchProcess), "a reaped process: {gone:?}");
    let nowhere = proc.process_info(0x1234_5678, 1).map(|d| d.name);
    check!(nowhere.as_ref().is_err_and(|r| r.error == Error::NoSuchContainer), "another container: {nowhere:?}");
    Ok(())
}

fn ps_lists_this_test_by_name() -> TestResult {
    let ps = run("ps", &[])?;
    check!(ps.ending == Ending::Code(0), "ps {}: {}", ps.ending, ps.err);
    let header: Vec<&str> = ps.out.lines().next().unwrap_or("").split_whitespace().collect();
    check!(header == ["PID", "CONTAINER", "NAME", "STATE", "MEM"], "the header: {header:?}");
    let own = container::own().map_err(e("own container"))?.id;
    let rows = ps_rows(&ps.out);
    let me = rows.iter().find(|r| r.pid == vessel_rt::pid() && r.container == own);
    check!(me.is_some_and(|r| r.name == "bin/usertest"), "this test is not listed by name:\n{}", ps.out);
    check!(rows.iter().any(|r| r.name == "bin/ps" && r.state == "running"), "ps itself, running:\n{}", ps.out);
    // The services proc supervises run in this (the root) container too.
    check!(rows.iter().any(|r| r.name == "bin/vfs"), "no vfs:\n{}", ps.out);
    for row in &rows {
        check!(["running", "blocked", "exited"].contains(&row.state.as_str()), "state {:?}", row.state);
        // An exited process may have given all its memory back already.
        check!(is_size(&row.memory) && (row.memory != "0 B" || row.state == "exited"), "memory {:?}", row.memory);
    }
    check!(ps.out.lines().count() == rows.len() + 1, "lines that are not rows:\n{}", ps.out);
    Ok(())
}

fn ps_in_a_child_container_shows_only_it() -> TestResult {
    let proc = proc()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        let (spinner, _) = proc.spawn(child, "bin/probe", &["spin"], &[]).map_err(e("spawn the spinner"))?;
        // Without a STDOUT the child's output goes to the kernel's log.
        let mark = log_end()?;
        let (pid, _) = proc.spawn(child, "bin/ps", &[], &[]).map_err(e("spawn ps in the child"))?;
        let ending = proc.wait_timeout(child, pid, TOOL_TIMEOUT_NS).map_err(e("wait for ps"))?;
        check!(ending == Ending::Code(0), "ps in the child {ending}");
        let log = log_since(mark)?;
        let rows = ps_rows(&log);
        check!(rows.len() == 2, "ps in the child listed {} processes:\n{log}", rows.len());
        check!(rows.iter().all(|r| r.container == child), "another container's process:\n{log}");
        check!(rows.iter().any(|r| r.pid == spinner && r.name == "bin/probe"), "no spinner:\n{log}");
        check!(rows.iter().any(|r| r.pid == pid && r.name == "bin/ps"), "no ps:\n{log}");
        // From here, `ps -c` lists the child's alone, and plain `ps` both.
        let id = format!("{child:#x}");
        let only = run("ps", &["-c", &id])?;
        check!(only.ending == Ending::Code(0), "ps -c {id} {}: {}", only.ending, only.err);
        let listed = ps_rows(&only.out);
        check!(listed.len() == 1 && listed[0].pid == spinner && listed[0].container == child, "ps -c:\n{}", only.out);
        let all = run("ps", &[])?;
        check!(ps_rows(&all.out).iter().any(|r| r.container == child), "plain ps misses the child:\n{}", all.out);
        let wrong = run("ps", &["-c", "zz"])?;
        check!(wrong.ending == Ending::Code(2) && wrong.err.contains("zz"), "ps -c zz: {:?}", wrong.err);
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn kill_ends_processes() -> TestResult {
    let proc = proc()?;
    let (pid, _) = proc.spawn(0, "bin/probe", &["spin"], &[]).map_err(e("spawn the spinner"))?;
    let text = format!("{pid}");
    let kill = run("kill", &[&text])?;
    check!(kill.ending == Ending::Code(0), "kill {pid} {}: {}", kill.ending, kill.err);
    let ending = proc.wait_timeout(0, pid, TOOL_TIMEOUT_NS).map_err(e("wait for the spinner"))?;
    check!(ending == Ending::Killed, "the spinner {ending}");
    // CONTAINER:PID names a process of a child container.
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        let (pid, _) = proc.spawn(child, "bin/probe", &["spin"], &[]).map_err(e("spawn in the child"))?;
        let target = format!("{child:#x}:{pid}");
        let kill = run("kill", &[&target])?;
        check!(kill.ending == Ending::Code(0), "kill {target} {}: {}", kill.ending, kill.err);
        let ending = proc.wait_timeout(child, pid, TOOL_TIMEOUT_NS).map_err(e("wait in the child"))?;
        check!(ending == Ending::Killed, "the child's spinner {ending}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result?;
    // A process that is not there: named, and the exit code says so.
    let missing = run("kill", &["99999"])?;
    check!(missing.ending == Ending::Code(1), "kill 99999 {}", missing.ending);
    check!(
        missing.err.starts_with("kill: 99999: ") && missing.err.contains("no such process"),
        "kill 99999: {:?}",
        missing.err
    );
    let nonsense = run("kill", &["twelve"])?;
    check!(nonsense.ending == Ending::Code(2) && nonsense.err.contains("twelve"), "kill twelve: {:?}", nonsense.err);
    Ok(())
}

fn date_reads_the_clock() -> TestResult {
    let date = run("date", &[])?;
    check!(date.ending == Ending::Code(0), "date {}: {}", date.ending, date.err);
    let line = date.out.strip_suffix('\n').unwrap_or("");
    // `YYYY-MM-DD HH:MM:SS UTC`
    let shape = line.len() == 23
        && line.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 | 19 => b == b' ',
            13 | 16 => b == b':',
            20.. => true,
            _ => b.is_ascii_digit(),
        })
        && line.ends_with(" UTC");
    check!(shape, "date printed {:?}", date.out);
    let year: u32 = line[..4].parse().unwrap_or(0);
    check!(year >= 2024, "the clock says {line}");
    Ok(())
}

fn uptime_counts_from_boot() -> TestResult {
    let before = time::now_ns() / 1_000_000_000;
    let up = run("uptime", &[])?;
    let after = time::now_ns() / 1_000_000_000;
    check!(up.ending == Ending::Code(0), "uptime {}: {}", up.ending, up.err);
    // `up [N d] [N h] [N min] N s`: add it up.
    let words: Vec<&str> = up.out.split_whitespace().collect();
    check!(words.first() == Some(&"up") && words.len() % 2 == 1 && words.last() == Some(&"s"), "{:?}", up.out);
    let mut seconds = 0;
    for pair in words[1..].chunks(2) {
        let n: u64 = pair[0].parse().map_err(|_| format!("uptime: {:?}", up.out))?;
        let unit = match pair[1] {
            "d" => 86_400,
            "h" => 3600,
            "min" => 60,
            "s" => 1,
            other => return Err(format!("uptime: unit {other:?} in {:?}", up.out)),
        };
        seconds += n * unit;
    }
    check!((before..=after).contains(&seconds), "uptime says {seconds} s, the clock {before}-{after} s");
    Ok(())
}

fn free_shows_memory_in_units() -> TestResult {
    let free = run("free", &[])?;
    check!(free.ending == Ending::Code(0), "free {}: {}", free.ending, free.err);
    let lines: Vec<&str> = free.out.lines().collect();
    check!(lines.len() == 5, "free printed {:?}", free.out);
    check!(lines[0].split_whitespace().collect::<Vec<_>>() == ["total", "used", "free"], "header {:?}", lines[0]);
    let memory: Vec<&str> = lines[1].split_whitespace().collect();
    check!(memory.len() == 7 && memory[0] == "memory", "memory line {:?}", lines[1]);
    for pair in memory[1..].chunks(2) {
        check!(is_size(&format!("{} {}", pair[0], pair[1])), "not a size: {pair:?} in {:?}", lines[1]);
    }
    // The kernel heap's line: in use, and what is set aside; with used and free, the total.
    let heap: Vec<&str> = lines[2].split_whitespace().collect();
    check!(heap.len() == 16 && lines[2].starts_with("kernel heap: "), "kernel heap line {:?}", lines[2]);
    check!(
        is_size(&format!("{} {}", heap[2], heap[3])) && is_size(&format!("{} {}", heap[6], heap[7])),
        "{:?}",
        lines[2]
    );
    let stats = sys::kernel_stats().map_err(e("kernel stats"))?;
    check!(stats.heap_held_frames > 0 && stats.heap_held_frames < 4096, "held {} frames", stats.heap_held_frames);
    // The boot file system, unpacked from the packed ramdisk: its own line, not in used.
    let boot: Vec<&str> = lines[3].split_whitespace().collect();
    check!(lines[3].starts_with("boot files: ") && is_size(&format!("{} {}", boot[2], boot[3])), "{:?}", lines[3]);
    // The ramdisk is packed: the kernel unpacked it (a newc archive again), and the archive's
    // last byte lies in the last of those frames.
    let mut page = [0u8; 4096];
    check!(sys::bootfs_read(0, &mut page[..6]) == Ok(6) && page[..6] == *b"070701", "bootfs starts {:?}", &page[..6]);
    let frames = stats.bootfs_frames;
    let last = sys::bootfs_read((frames.max(1) - 1) * 4096, &mut page).map_err(e("bootfs read"))?;
    let past = sys::bootfs_read(frames * 4096, &mut page).map_err(e("bootfs read"))?;
    check!(
        frames > 0 && last > 0 && past == 0,
        "{frames} frames for the boot file system: {last} bytes in the last, {past} past"
    );
    let own = container::own().map_err(e("own container"))?.id;
    check!(lines[4].starts_with(&format!("container {own:#018x}: ")), "container line {:?}", lines[4]);
    check!(lines[4].contains(" used"), "container line {:?}", lines[4]);
    Ok(())
}

fn dmesg_prints_what_the_kernel_logged() -> TestResult {
    let proc = proc()?;
    // A fault makes the kernel log a line of its own.
    let (pid, _) = proc.spawn(0, "bin/probe", &["fault", "ud"], &[]).map_err(e("spawn"))?;
    check!(proc.wait(0, pid) == Ok(Ending::Fault), "the probe did not fault");
    let marker = format!("systools: dmesg marker {}", time::now_ns());
    vessel_rt::println!("{marker}");
    let dmesg = run("dmesg", &[])?;
    check!(dmesg.ending == Ending::Code(0), "dmesg {}: {}", dmesg.ending, dmesg.err);
    check!(dmesg.out.contains(&marker), "dmesg lacks the line printed just before it");
    check!(
        dmesg.out.lines().any(|l| l.contains("WARN") && l.contains("(bin/probe) killed by")),
        "dmesg lacks the kernel's report of the fault"
    );
    // While the ring still holds the boot (a run of this group alone), its lines are there.
    let oldest = sys::log_copy(0, &mut [0u8; 1]).map_err(e("LogCopy"))?.first;
    if oldest == 0 {
        check!(dmesg.out.contains("kernel ready in"), "dmesg lacks the boot's `kernel ready` line");
    }
    // As it is: what the test reads itself holds the tool's output whole.
    let ring = log_since(0)?;
    let last_line = dmesg.out.lines().rev().find(|l| !l.is_empty()).unwrap_or("");
    check!(ring.contains(last_line), "dmesg's last line is not in the log: {last_line:?}");
    Ok(())
}

fn power_and_log_copy_belong_to_the_root() -> TestResult {
    // Root: a bad action is refused before anything happens (a valid one would end the suite).
    for action in [0, 3, u64::MAX] {
        check!(sys::power(action) == Error::InvalidArgument, "Power({action})");
    }
    check!(POWER_OFF == 1 && POWER_REBOOT == 2, "the action numbers");
    let proc = proc()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        for (tool, refusal) in [
            ("dmesg", "dmesg: only the root container may read the kernel's log (access denied)"),
            ("poweroff", "poweroff: only the root container may switch the machine off (access denied)"),
            ("reboot", "reboot: only the root container may reset the machine (access denied)"),
        ] {
            let mark = log_end()?;
            let path = format!("bin/{tool}");
            let (pid, _) = proc.spawn(child, &path, &[], &[]).map_err(e("spawn in the child"))?;
            let ending = proc.wait_timeout(child, pid, TOOL_TIMEOUT_NS).map_err(e("wait"))?;
            let log = log_since(mark)?;
            check!(ending == Ending::Code(1), "{tool} in a child container {ending}:\n{log}");
            check!(log.contains(refusal), "{tool} in a child container said:\n{log}");
        }
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}
