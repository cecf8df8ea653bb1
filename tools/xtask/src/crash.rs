//! The crash test: QEMU killed (SIGKILL, not shut down) in the middle of a write burst, 20
//! times in a row on one FAT32 data disk. After every kill the image must pass `fsck.fat -n`,
//! allowing only what `docs/vfs.md` ("What an unclean stop can lose") says an unclean stop
//! leaves, and `mdir` must list it; and the next boot, on the image exactly as the kill left
//! it, must mount it as `/data` and run the next burst on it.
//!
//! The guest side is `bin/burst SEED` (`userland/tests/src/bin/burst.rs`): it writes, appends,
//! overwrites, cuts, renames and removes files under `/data/burst`, syncs every few steps, and
//! prints `burst: checkpoint K KIND` after each sync (`synced`), before some (`syncing`) and
//! between them (`unsynced`). Each run picks a checkpoint and a delay from a fixed
//! pseudo-random sequence and kills QEMU that long after the guest printed that checkpoint, so
//! the kills land after syncs, in the middle of syncs and between them, differently each run.
//!
//! What `fsck.fat -n` may report after a kill (anything else fails the run):
//!
//! - `Reclaimed N unused clusters`: lost clusters, allocated in a FAT that reached the disk
//!   while the directory entry owning them did not;
//! - `File size is S bytes, cluster chain length is > C bytes`: the same for a file that grew,
//!   whose longer chain reached the disk but whose new size did not (the tail beyond the size is
//!   owned by nothing);
//! - `Free cluster summary wrong` (the FSInfo hint), `FATs differ but appear to be intact` (a
//!   stop between the writes of the two FATs), `Dirty bit is set`;
//! - `Orphaned long file name part`: the first slots of a long name split across two clusters,
//!   written before the rest of its entry (`fsck.fat` deletes them itself).
//!
//! A chain shorter than its file or holding a free cluster (an entry pointing at clusters the
//! FAT already freed), files sharing clusters, damaged directories or boot sectors fail, as do
//! a burst that does not start (the image did not mount), any refusal the burst reports, a
//! panic, and `vfs` restarting. Accepted complaints are printed as `note:` lines.
//!
//! A boot takes about 6 s from QEMU's start to the kill (5 of them before the kernel: the BIOS
//! stage loading the image), so the 21 boots take about two minutes. Serial logs are kept as
//! `target/vessel/logs/crash-NN.log` (lines with their times since QEMU started), the disk as
//! `target/vessel/disks/crash.img` (as the last boot left it).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vessel_test_harness::qemu::{self, Attach, Disk, Firmware, Machine, MachineType};
use vessel_test_harness::{fsck, verdict};

use crate::artifacts::{self, BootSpec};
use crate::{Result, step};

/// Kills (each followed by the checks of the image it left).
pub const RUNS: usize = 20;
/// The burst's seed, and the start of the sequence the kill points are drawn from.
const SEED: u64 = 0x5EED_C4A5_0000_0015;
/// Kill points: a checkpoint from 1 to this (the burst prints about 60 a second under TCG) …
const MAX_CHECKPOINT: u64 = 40;
/// … and then up to this many milliseconds more.
const MAX_DELAY_MS: u64 = 400;
/// A run whose burst is going is killed this long after QEMU started at the latest, whichever
/// checkpoint it got to.
const KILL_BY: Duration = Duration::from_secs(10);
/// A run whose burst has printed no checkpoint by this time since QEMU started fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many lines of `fsck.fat`'s output go into a failure message.
const FSCK_LINES: usize = 40;
/// The console options: no window, no monitor, the serial port on a pipe (as `qemu::run`).
const CONSOLE: [&str; 6] = ["-display", "none", "-monitor", "none", "-serial", "stdio"];

/// Boots the burst image [`RUNS`] times on one data disk, killing QEMU each time, and checks
/// the disk after each kill; a last boot checks that the image the last kill left mounts. Each
/// run is recorded through `record` (name, failure) as `crash::run_NN_…`, the last boot as
/// `crash::image_after_the_last_kill_mounts`. Errors are for what stops the test itself (no
/// image, no QEMU, no disk).
pub fn crash_runs(record: &mut dyn FnMut(&str, Option<String>), elf: &Path, builder: &Path, programs: &Path) -> Result {
    step(&format!("crash test: QEMU killed {RUNS} times in a write burst on one FAT disk"));
    let spec = BootSpec::test(&format!("run once bin/burst {SEED}\n"), "");
    let images = artifacts::images_for(elf, builder, programs, "vessel-crash", &spec)?;
    let data = artifacts::fresh_fat_disk("crash", artifacts::DATA_DISK_BYTES)?;
    let machine = Machine {
        image: images.bios,
        firmware: Firmware::Bios,
        attach: Attach::Disk,
        debug_exit: true,
        snapshot: true,
        machine_type: MachineType::Q35,
        // The only disk, so `vfs` mounts it as `/data`; its writes are kept for the next run.
        disks: vec![Disk { path: data.clone(), persistent: true }],
        rtc_base: None,
        com2: None,
        memory_mib: 256,
    };
    let started = Instant::now();
    let mut points = Rng(SEED);
    let mut summary = Summary::default();
    for run in 1..=RUNS + 1 {
        let last = run > RUNS;
        // The extra boot only shows that the last image mounts: it stops at the first checkpoint.
        let plan = if last {
            Plan { checkpoint: 1, delay: Duration::ZERO }
        } else {
            Plan {
                checkpoint: 1 + points.below(MAX_CHECKPOINT),
                delay: Duration::from_millis(points.below(MAX_DELAY_MS + 1)),
            }
        };
        let name = format!("crash-{run:02}");
        let boot = boot_and_kill(&machine, &plan)?;
        save_log(&name, &machine, &plan, &boot)?;
        let mut failures = serial_failures(&boot.lines);
        match &boot.end {
            End::Killed { at, checkpoint } => summary.kills.push((*at, *checkpoint)),
            End::NoBurst => failures.insert(
                0,
                format!("the burst printed no checkpoint (it refused to start, or took over {START_TIMEOUT:?})"),
            ),
            End::Exited(status) => failures.insert(0, format!("QEMU exited by itself ({status})")),
        }
        let image = check_image(&data)?;
        let entry = if last {
            String::from("crash::image_after_the_last_kill_mounts")
        } else {
            format!("crash::run_{run:02}_fsck_clean_or_lost_clusters_only")
        };
        match image {
            Image::Clean => summary.clean += 1,
            Image::Accepted(complaints) => {
                summary.accepted += 1;
                println!(
                    "note: {entry}: fsck.fat -n found only what an unclean stop may leave: {}",
                    complaints.join("; ")
                );
            }
            Image::Damaged(why) => {
                summary.damaged += 1;
                failures.push(why);
            }
        }
        if !failures.is_empty() {
            summary.failed += 1;
            summary.first_failure.get_or_insert(run);
            failures.push(format!("serial log: target/vessel/logs/{name}.log"));
        }
        record(&entry, (!failures.is_empty()).then(|| failures.join("\n    ")));
    }
    let kills: Vec<String> = summary
        .kills
        .iter()
        .map(|(at, checkpoint)| match checkpoint {
            Some(k) => format!("{:.1}s@{k}", at.as_secs_f64()),
            None => format!("{:.1}s@-", at.as_secs_f64()),
        })
        .collect();
    let first = summary.first_failure.map_or(String::from("none"), |run| format!("run {run}"));
    println!(
        "crash: {} boots (the last only mounts what the last kill left) in {:.1} s; fsck.fat -n: {} clean, {} with \
         only what an unclean stop may leave, {} damaged; {} failed (first: {first}); killed at (seconds since QEMU \
         start @ last checkpoint) {}",
        RUNS + 1,
        started.elapsed().as_secs_f64(),
        summary.clean,
        summary.accepted,
        summary.damaged,
        summary.failed,
        kills.join(" "),
    );
    Ok(())
}

/// Counts over the runs, for the closing line.
#[derive(Default)]
struct Summary {
    /// Images `fsck.fat -n` found clean.
    clean: usize,
    /// Images with only what an unclean stop may leave.
    accepted: usize,
    /// Images with anything else (or that `mdir` could not list).
    damaged: usize,
    /// Runs that failed, for whatever reason.
    failed: usize,
    /// The first run that failed (later ones also boot what it left).
    first_failure: Option<usize>,
    /// When each boot was killed (since QEMU started) and the last checkpoint it had printed.
    kills: Vec<(Duration, Option<u64>)>,
}

/// xorshift64, as the guest's: the kill points are the same on every machine.
struct Rng(u64);

impl Rng {
    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}

/// Where to kill a boot: this long after the guest printed checkpoint `checkpoint`.
struct Plan {
    checkpoint: u64,
    delay: Duration,
}

/// How a boot ended.
enum End {
    /// Killed by the harness (SIGKILL), this long after QEMU started, after the guest printed
    /// this checkpoint (the last one that arrived).
    Killed { at: Duration, checkpoint: Option<u64> },
    /// Killed because the burst printed no checkpoint in [`START_TIMEOUT`].
    NoBurst,
    /// QEMU ended by itself, with this status.
    Exited(std::process::ExitStatus),
}

/// What a boot printed, and how it ended.
struct Boot {
    lines: Vec<(Duration, String)>,
    stderr: String,
    end: End,
}

/// Kills and reaps QEMU when dropped: a started QEMU never outlives its boot.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The number in a `burst: checkpoint K …` line.
fn checkpoint_of(line: &str) -> Option<u64> {
    let rest = &line[line.find("burst: checkpoint ")? + "burst: checkpoint ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Boots `machine` and kills QEMU (SIGKILL: no shutdown, no flush by the guest) as `plan`
/// says, or at [`KILL_BY`] if the burst is slower, or at [`START_TIMEOUT`] if it never starts.
/// The serial lines that arrived before the kill are kept with their times.
fn boot_and_kill(machine: &Machine, plan: &Plan) -> Result<Boot> {
    let start = Instant::now();
    let mut command = Command::new(qemu::QEMU);
    command.args(machine.args()).args(CONSOLE).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut qemu = Running(command.spawn().map_err(|e| format!("cannot start {}: {e}", qemu::QEMU))?);
    let stdout = qemu.0.stdout.take().ok_or("QEMU: no stdout pipe")?;
    let mut stderr_pipe = qemu.0.stderr.take().ok_or("QEMU: no stderr pipe")?;
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // Serial output is bytes; a broken UTF-8 sequence must not end the read.
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
            if tx.send((start.elapsed(), text)).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let mut last_checkpoint = None;
    let mut kill_at = None::<Instant>;
    let end = loop {
        let deadline = match (kill_at, last_checkpoint) {
            (Some(at), _) => at.min(start + KILL_BY),
            (None, Some(_)) => start + KILL_BY,
            (None, None) => start + START_TIMEOUT,
        };
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((at, line)) => {
                if let Some(k) = checkpoint_of(&line) {
                    last_checkpoint = Some(k);
                    if k >= plan.checkpoint && kill_at.is_none() {
                        kill_at = Some(Instant::now() + plan.delay);
                    }
                }
                // The burst refusing to start will not change its mind: stop at once.
                let hopeless = line.contains("burst: /data is not mounted") || line.contains("burst: usage");
                lines.push((at, line));
                if hopeless {
                    break End::NoBurst;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if last_checkpoint.is_none() => break End::NoBurst,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                break End::Killed { at: start.elapsed(), checkpoint: last_checkpoint };
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = qemu.0.wait().map_err(|e| format!("waiting for QEMU: {e}"))?;
                break End::Exited(status);
            }
        }
    };
    // SIGKILL, then reap: the disk is left as the host's page cache has it at this instant.
    drop(qemu);
    // What the guest printed before the kill and the harness had not taken yet.
    lines.extend(rx.iter());
    let _ = reader.join();
    let stderr = stderr.join().unwrap_or_default();
    // A kill that came late (the burst was slower than the plan) still records its checkpoint.
    let end = match end {
        End::Killed { at, .. } => {
            End::Killed { at, checkpoint: lines.iter().rev().find_map(|(_, l)| checkpoint_of(l)) }
        }
        other => other,
    };
    Ok(Boot { lines, stderr, end })
}

/// Writes `target/vessel/logs/<name>.log`: the command line, the plan, the serial lines with
/// their times, how the boot ended and QEMU's stderr.
fn save_log(name: &str, machine: &Machine, plan: &Plan, boot: &Boot) -> Result {
    let dir = artifacts::out_dir()?.join("logs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut text = format!("$ {}\n", qemu::command_line(machine));
    text.push_str(&format!("# kill {:?} after checkpoint {}\n", plan.delay, plan.checkpoint));
    for (at, line) in &boot.lines {
        text.push_str(&format!("[{:>8.3}] {line}\n", at.as_secs_f64()));
    }
    text.push_str(&match &boot.end {
        End::Killed { at, checkpoint } => {
            format!("# killed at {:.3} s, last checkpoint {checkpoint:?}\n", at.as_secs_f64())
        }
        End::NoBurst => String::from("# killed: the burst did not start\n"),
        End::Exited(status) => format!("# QEMU exited by itself: {status}\n"),
    });
    if !boot.stderr.is_empty() {
        text.push_str("--- qemu stderr ---\n");
        text.push_str(&boot.stderr);
    }
    let path = dir.join(format!("{name}.log"));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What the serial output shows went wrong in the guest: the disk not mounted, the burst not
/// started, refusals and short reads it reported, a panic, `vfs` restarted.
fn serial_failures(lines: &[(Duration, String)]) -> Vec<String> {
    let has = |needle: &str| lines.iter().any(|(_, l)| l.contains(needle));
    let mut failures = Vec::new();
    if !has("vfs: /data is the FAT file system on ") {
        let why: Vec<&str> = lines
            .iter()
            .map(|(_, l)| l.as_str())
            .filter(|l| l.contains("not mounted") || l.contains("vfs: no FAT disk"))
            .collect();
        failures.push(format!("vfs did not mount the data disk: {why:?}"));
    }
    if !has("burst: seed ") {
        failures.push(String::from("the burst did not start"));
    }
    // Each distinct line once, with how often it came (a damaged file fails every append).
    let mut bad: Vec<(&str, usize)> = Vec::new();
    for (_, line) in lines {
        let problem = ["burst: refused: ", "burst: mismatch: ", "panic in process", "proc: service vfs"];
        if !problem.iter().any(|p| line.contains(p)) {
            continue;
        }
        match bad.iter_mut().find(|(l, _)| *l == line.as_str()) {
            Some((_, count)) => *count += 1,
            None => bad.push((line, 1)),
        }
    }
    if !bad.is_empty() {
        let shown: Vec<String> = bad
            .iter()
            .take(8)
            .map(|(line, count)| if *count > 1 { format!("{line} (×{count})") } else { line.to_string() })
            .collect();
        let total: usize = bad.iter().map(|(_, count)| count).sum();
        failures.push(format!("{total} problem line(s) on the serial port:\n      {}", shown.join("\n      ")));
    }
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    if let Some(panic) = verdict::parse(&text).panic {
        failures.push(format!("kernel panic: {panic}"));
    }
    failures
}

/// What the host's tools make of an image after a kill.
#[derive(Debug, PartialEq, Eq)]
enum Image {
    /// `fsck.fat -n` found nothing.
    Clean,
    /// Only what an unclean stop may leave (the complaints, one line each).
    Accepted(Vec<String>),
    /// Anything else, with the tools' output.
    Damaged(String),
}

/// Runs `program` with `args`: its exit code and its output (stdout then stderr).
fn output(program: &str, args: &[&std::ffi::OsStr]) -> Result<(Option<i32>, String)> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e} (apt-get install dosfstools mtools)"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.code(), text))
}

/// `fsck.fat -n` and a recursive `mdir` of `image`, which must list `::/burst/` (the burst
/// makes and syncs it before its first checkpoint).
fn check_image(image: &Path) -> Result<Image> {
    let (code, fsck) = output("fsck.fat", &["-n".as_ref(), image.as_os_str()])?;
    let verdict = classify_fsck(code, &fsck);
    let (code, listing) =
        output("mdir", &["-/".as_ref(), "-b".as_ref(), "-i".as_ref(), image.as_os_str(), "::/".as_ref()])?;
    let listed = listing.lines().filter(|l| l.starts_with("::/")).count();
    let mdir = if code != Some(0) {
        // The entries are many and mostly fine: show what mdir said besides them.
        let said: Vec<&str> = listing.lines().filter(|l| !l.starts_with("::/")).take(12).collect();
        Some(format!(
            "mdir -/ -b -i {} ::/ failed ({code:?}) after {listed} entries:\n{}",
            image.display(),
            indent(&said.join("\n"))
        ))
    } else if !listing.lines().any(|l| l.trim_end() == "::/burst/") {
        Some(format!("mdir of {} does not list ::/burst/ ({listed} entries)", image.display()))
    } else {
        None
    };
    Ok(match (verdict, mdir) {
        (verdict, None) => verdict,
        (Image::Damaged(fsck), Some(mdir)) => Image::Damaged(format!("{fsck}\n    {mdir}")),
        (_, Some(mdir)) => Image::Damaged(mdir),
    })
}

/// Sorts `fsck.fat -n`'s verdict (exit code, output) into clean, only what an unclean stop may
/// leave (see the module's documentation), or damaged.
fn classify_fsck(code: Option<i32>, text: &str) -> Image {
    let damaged = |why: &str| {
        let mut shown: Vec<&str> = text.lines().take(FSCK_LINES).collect();
        if text.lines().count() > FSCK_LINES {
            shown.push("…");
        }
        Image::Damaged(format!("fsck.fat -n: {why}:\n{}", indent(&shown.join("\n"))))
    };
    match fsck::verdict(code, text) {
        fsck::Verdict::Clean => Image::Clean,
        fsck::Verdict::Accepted(complaints) => Image::Accepted(complaints),
        fsck::Verdict::Damaged(why) => damaged(&why),
    }
}

/// `text` indented for a failure message.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "fsck.fat 4.2 (2021-01-31)\n";
    const TAIL: &str = "\nLeaving filesystem unchanged.\ncrash.img: 4 files, 52/130811 clusters\n";

    fn fsck(code: i32, body: &str) -> Image {
        classify_fsck(Some(code), &format!("{HEAD}{body}{TAIL}"))
    }

    #[test]
    fn a_clean_image_is_clean() {
        assert_eq!(
            classify_fsck(Some(0), "fsck.fat 4.2 (2021-01-31)\ncrash.img: 4 files, 52/130811 clusters\n"),
            Image::Clean
        );
    }

    #[test]
    fn lost_clusters_free_count_and_fats_differing_are_accepted() {
        let body = "FATs differ but appear to be intact.\n  Using first FAT.\nReclaimed 3 unused clusters (12288 bytes).\n\
                    Free cluster summary wrong (12345 vs. really 130759)\n  Auto-correcting.\n";
        let Image::Accepted(complaints) = fsck(1, body) else { panic!("{:?}", fsck(1, body)) };
        assert_eq!(complaints.len(), 3, "{complaints:?}");
        assert_eq!(complaints[1], "Reclaimed 3 unused clusters (12288 bytes).");
    }

    #[test]
    fn a_chain_longer_than_its_file_is_accepted() {
        let body = "/BURST/D0/F01\n  File size is 100000 bytes, cluster chain length is > 102400 bytes.\n  \
                    Truncating file to 100000 bytes.\n";
        assert!(matches!(fsck(1, body), Image::Accepted(_)), "{:?}", fsck(1, body));
    }

    #[test]
    fn freed_clusters_in_a_chain_fail() {
        let body = "/BURST/A\n  Contains a free cluster (10). Assuming EOF.\n/BURST/A\n  \
                    File size is 100000 bytes, cluster chain length is 24576 bytes.\n  Truncating file to 24576 bytes.\n";
        assert!(matches!(fsck(1, body), Image::Damaged(_)));
    }

    #[test]
    fn a_chain_shorter_than_its_file_fails() {
        let body = "/BURST/A\n  File size is 100000 bytes, cluster chain length is 28672 bytes.\n  \
                    Truncating file to 28672 bytes.\nReclaimed 18 unused clusters (73728 bytes).\n";
        assert!(matches!(fsck(1, body), Image::Damaged(_)));
    }

    #[test]
    fn shared_clusters_fail() {
        let body = "/BURST/A  and\n/BURST/B\n  share clusters.\n  Truncating second to 24576 bytes.\n";
        assert!(matches!(fsck(1, body), Image::Damaged(_)));
    }

    #[test]
    fn a_boot_sector_differing_from_its_backup_fails() {
        let body = "There are differences between boot sector and its backup.\n\
                    This is mostly harmless. Differences: (offset:original/backup)\n  65:01/00\n  Not automatically fixing this.\n";
        assert!(matches!(fsck(1, body), Image::Damaged(_)));
    }

    #[test]
    fn other_exit_codes_and_unexplained_failures_fail() {
        assert!(matches!(classify_fsck(Some(2), "fsck.fat 4.2\nread error\n"), Image::Damaged(_)));
        assert!(matches!(classify_fsck(None, ""), Image::Damaged(_)));
        assert!(matches!(fsck(1, ""), Image::Damaged(_)));
    }

    #[test]
    fn checkpoints_are_read_from_their_lines() {
        assert_eq!(checkpoint_of("burst: checkpoint 17 synced"), Some(17));
        assert_eq!(checkpoint_of("burst: checkpoint 3"), Some(3));
        assert_eq!(checkpoint_of("burst: found 3 files"), None);
    }
}
