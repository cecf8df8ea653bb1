//! `cargo xtask test`: host unit tests, the kernel suite in QEMU under BIOS and UEFI, the user
//! suite under both firmwares on both machine types (q35 and pc) with a scratch virtio-blk disk,
//! boot checks of the shipped images (disk and USB stick, both firmwares), and checks that the
//! harness itself notices a failing test, a panic, a hang and a triple fault.
//!
//! Output: cargo-style `test <name> ... ok|FAILED` lines, then one closing `N passed, M failed`
//! that counts everything; the exit status is non-zero if anything failed. Serial logs of every
//! QEMU run are kept in `target/vessel/logs/`, the disks the runs wrote in `target/vessel/disks/`.

use std::path::Path;
use std::time::Duration;

use vessel_test_harness::qemu::{self, Attach, Disk, Firmware, Machine, MachineType, Run};
use vessel_test_harness::verdict;

use crate::artifacts::{self, BootSpec, Flavor};
use crate::{Result, cargo, root, setup, step};

/// The kernel suite must run at least this many tests (guards against silently lost tests).
const MIN_KERNEL_TESTS: usize = 10;
/// Upper bound for one QEMU run; TCG on a loaded 2-core machine can be slow, hangs are not.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Timeout for the injected hang: long enough to boot and run the suite, short enough to wait for.
const HANG_TIMEOUT: Duration = Duration::from_secs(15);
/// The line a kernel prints when it has booted.
pub const READY: &str = "kernel ready in";
/// The line init prints when it has run everything in its config.
const INIT_DONE: &str = "init: all programs finished";
/// The user-space suite must run at least this many tests.
const MIN_USER_TESTS: usize = 10;

/// Counts of everything run.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, failure: Option<String>) {
        match failure {
            None => {
                self.passed += 1;
                println!("test {name} ... ok");
            }
            Some(why) => {
                self.failed += 1;
                println!("test {name} ... FAILED\n    {why}");
            }
        }
    }
}

/// Runs `cargo test` for the host crates and adds its counts from the `test result:` lines.
fn host_tests(tally: &mut Tally) -> Result {
    step("host unit tests");
    let mut command = cargo();
    command.arg("test");
    for krate in artifacts::HOST_CRATES {
        command.args(["--package", krate]);
    }
    host_test_run(tally, &mut command)?;
    let mut libs = cargo();
    libs.arg("test");
    for krate in artifacts::HOST_LIB_CRATES {
        libs.args(["--package", krate]);
    }
    host_test_run(tally, libs.arg("--lib"))
}

/// Runs one `cargo test` and adds its counts from the `test result:` lines.
fn host_test_run(tally: &mut Tally, command: &mut std::process::Command) -> Result {
    let out = command.current_dir(root()).output().map_err(|e| format!("cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let failed_before = tally.failed;
    for line in stdout.lines() {
        // "test result: ok. 19 passed; 0 failed; 0 ignored; ..."
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| {
                rest.split(';')
                    .filter_map(|part| {
                        part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(word)
                    })
                    .filter_map(|n| n.trim().parse::<usize>().ok())
                    .sum::<usize>()
            };
            tally.passed += count(" passed");
            tally.failed += count(" failed");
        }
    }
    if !out.status.success() && tally.failed == failed_before {
        // A build error prints no result line; count it so the run cannot pass.
        tally.record("host::cargo_test_builds", Some(format!("cargo test exited with {}", out.status)));
    }
    Ok(())
}

/// Writes `target/vessel/logs/<name>.log`: the QEMU command line, the serial output, and QEMU's
/// stderr if it printed anything.
fn save_log(name: &str, machine: &Machine, run: &Run) -> Result {
    let dir = artifacts::out_dir()?.join("logs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut text = format!("$ {}\n", qemu::command_line(machine));
    text.push_str(&run.text());
    if !run.stderr.is_empty() {
        text.push_str("\n--- qemu stderr ---\n");
        text.push_str(&run.stderr);
    }
    std::fs::write(dir.join(format!("{name}.log")), text).map_err(|e| format!("log {name}: {e}"))
}

/// What a test run boots. The image is always run from a snapshot, so runs never change it.
struct Boot<'a> {
    image: &'a Path,
    uefi: bool,
    attach: Attach,
    machine_type: MachineType,
    /// Extra virtio-blk disks, the first being the guest's `blk0`.
    disks: Vec<Disk>,
    /// The device tests' machine: the clock set to [`RTC_BASE`], COM2 on a socket the host
    /// answers, and the host obeying the guest's `HARNESS` requests (`live`).
    live: bool,
}

impl<'a> Boot<'a> {
    /// `image` as the hard disk of a q35 machine, nothing else attached.
    fn disk(image: &'a Path, uefi: bool) -> Self {
        Boot { image, uefi, attach: Attach::Disk, machine_type: MachineType::Q35, disks: Vec::new(), live: false }
    }
}

/// Where a live run's clock starts (what `usertest`'s clock test expects).
const RTC_BASE: &str = "2030-01-02T03:04:05";

/// The machine for `target` as the run `name` (which names its firmware variables and COM2's
/// socket).
fn machine(name: &str, target: &Boot<'_>) -> Result<Machine> {
    let firmware = if target.uefi { artifacts::uefi_firmware(name)? } else { Firmware::Bios };
    let com2 = if target.live {
        let dir = artifacts::out_dir()?.join("sockets");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let socket = dir.join(format!("{name}-com2.sock"));
        let _ = std::fs::remove_file(&socket);
        Some(socket)
    } else {
        None
    };
    Ok(Machine {
        image: target.image.to_path_buf(),
        firmware,
        attach: target.attach,
        debug_exit: true,
        snapshot: true,
        machine_type: target.machine_type,
        disks: target.disks.clone(),
        rtc_base: target.live.then(|| String::from(RTC_BASE)),
        com2,
        memory_mib: 512,
    })
}

/// Boots `target` as the run `name` (which names its log and its firmware variables).
fn boot(name: &str, target: &Boot<'_>, timeout: Duration, stop_at_init_done: bool) -> Result<Run> {
    let machine = machine(name, target)?;
    let run = qemu::run(&machine, timeout, |line| stop_at_init_done && line.contains(INIT_DONE))
        .map_err(|e| format!("cannot start {}: {e}", qemu::QEMU))?;
    save_log(name, &machine, &run)?;
    Ok(run)
}

/// Boots `target` live (`crate::live`): the host answers the guest's requests and makes its own
/// checks, recorded under `prefix`.
fn boot_live(tally: &mut Tally, prefix: &str, name: &str, target: &Boot<'_>) -> Result<Run> {
    let machine = machine(name, target)?;
    let logs = artifacts::out_dir()?.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let (run, checks) = crate::live::run(name, &machine, RUN_TIMEOUT, &logs)
        .map_err(|e| format!("cannot start {}: {e}", qemu::QEMU))?;
    save_log(name, &machine, &run)?;
    if let Some(socket) = &machine.com2 {
        let _ = std::fs::remove_file(socket);
    }
    for (check, failure) in checks {
        tally.record(&format!("{prefix}::{check}"), failure);
    }
    Ok(run)
}

/// Boots an image whose suite prints test lines and records each test under `prefix`.
fn suite(tally: &mut Tally, prefix: &str, target: &Boot<'_>, min_tests: usize) -> Result {
    step(&format!("suite {prefix}"));
    let name = format!("suite-{prefix}");
    let run =
        if target.live { boot_live(tally, prefix, &name, target)? } else { boot(&name, target, RUN_TIMEOUT, false)? };
    let report = verdict::parse(&run.text());
    for test in &report.tests {
        tally.record(&format!("{prefix}::{}", test.name), (!test.ok).then(|| test.detail.join("\n    ")));
    }
    // The run as a whole: summary, exit code, panics, hangs, test count.
    let failure = report.failure(run.exit, min_tests);
    if let Some(why) = &failure {
        eprintln!("--- serial log of {prefix} (target/vessel/logs/suite-{prefix}.log) ---\n{}", run.text());
        tally.record(&format!("{prefix}::suite_completed"), Some(why.clone()));
    } else {
        tally.record(&format!("{prefix}::suite_completed"), None);
    }
    Ok(())
}

/// Boots a shipped image (raw, or a VM format named by its extension) and checks it gets to the
/// shell's prompt on COM2: banner, ready line, the system servers serving, and no panic (what a
/// person does there is the shell session's).
fn boot_check(tally: &mut Tally, name: &str, image: &Path, uefi: bool, attach: Attach) -> Result {
    let machine = machine(name, &Boot { attach, live: true, ..Boot::disk(image, uefi) })?;
    let (run, prompt) = crate::session::to_prompt(&machine).map_err(|e| format!("cannot start {}: {e}", qemu::QEMU))?;
    save_log(name, &machine, &run)?;
    if let Some(socket) = &machine.com2 {
        let _ = std::fs::remove_file(socket);
    }
    let text = run.text();
    let failure = if let Some(why) = prompt {
        Some(format!("no shell prompt: {why}; log in target/vessel/logs/{name}.log"))
    } else if !text.contains("Vessel ") || !text.contains(READY) {
        Some("no banner or ready line".into())
    } else if let Some(missing) = SERVING.iter().find(|line| !text.contains(*line)) {
        Some(format!("no line {missing:?}: a system server did not start"))
    } else {
        verdict::parse(&text).panic.map(|p| format!("kernel panic: {p}"))
    };
    tally.record(&format!("boot::{name}"), failure);
    Ok(())
}

/// What the system servers print once they serve.
const SERVING: [&str; 3] = ["proc: serving", "device: serving", "vfs: serving"];

/// The shell session (`crate::session`) on the shipped BIOS image, with a fresh data disk.
fn shell_session(tally: &mut Tally, image: &Path) -> Result {
    step("shell session on the shipped image (COM2)");
    let data = artifacts::fresh_fat_disk("data-shell", artifacts::DATA_DISK_BYTES)?;
    let disks = vec![Disk { path: data, persistent: true }];
    let name = "shell";
    let machine = machine(name, &Boot { disks, live: true, ..Boot::disk(image, false) })?;
    let (run, checks) =
        crate::session::run(&machine, RUN_TIMEOUT * 3).map_err(|e| format!("cannot start {}: {e}", qemu::QEMU))?;
    save_log(name, &machine, &run)?;
    if let Some(socket) = &machine.com2 {
        let _ = std::fs::remove_file(socket);
    }
    for (check, failure) in checks {
        let failure = failure.map(|f| {
            format!(
                "{f}
    (terminal: target/vessel/logs/shell-terminal.log)"
            )
        });
        tally.record(&check, failure);
    }
    if let Some(panic) = verdict::parse(&run.text()).panic {
        tally.record("shell::no_panic", Some(format!("kernel panic: {panic}")));
    }
    Ok(())
}

/// The demo spec's image (`crate::session::demo`), with a fresh data disk.
fn spec_session(tally: &mut Tally) -> Result {
    step("the demo image spec (containers made at boot)");
    let images = artifacts::images_of(&root().join("boot/images/demo.toml"), false)?;
    let data = artifacts::fresh_fat_disk("data-demo", artifacts::DATA_DISK_BYTES)?;
    let disks = vec![Disk { path: data, persistent: true }];
    let name = "demo";
    let machine = machine(name, &Boot { disks, live: true, ..Boot::disk(&images.bios, false) })?;
    let (run, checks) = crate::session::demo(&machine).map_err(|e| format!("cannot start {}: {e}", qemu::QEMU))?;
    save_log(name, &machine, &run)?;
    if let Some(socket) = &machine.com2 {
        let _ = std::fs::remove_file(socket);
    }
    for (check, failure) in checks {
        tally.record(&check, failure.map(|f| format!("{f}\n    (log: target/vessel/logs/{name}.log)")));
    }
    Ok(())
}

/// Only the shell session, on freshly built shipped images.
pub fn run_shell() -> Result {
    let mut tally = Tally::default();
    setup::ensure_qemu()?;
    let shipped = artifacts::images()?;
    shell_session(&mut tally, &shipped.bios)?;
    spec_session(&mut tally)?;
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { Ok(()) } else { Err(format!("{} test(s) failed", tally.failed)) }
}

/// Boots the normal kernel from an image whose packed ramdisk has one byte of its compressed
/// stream flipped: the kernel must refuse the ramdisk saying why, start nothing, and not panic
/// (it then idles: the run stops at the refusal's line, or times out).
fn damaged_ramdisk_check(tally: &mut Tally, builder: &Path, elf: &Path, programs: &Path) -> Result {
    let packed = artifacts::bootfs(programs, "damaged-ramdisk", &BootSpec::default())?;
    let mut bytes = std::fs::read(&packed).map_err(|e| format!("{}: {e}", packed.display()))?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&packed, &bytes).map_err(|e| format!("{}: {e}", packed.display()))?;
    let images = artifacts::images_from(elf, builder, "damaged-ramdisk", &packed, false)?;
    let name = "damaged-ramdisk";
    let machine = machine(name, &Boot::disk(&images.bios, false))?;
    let run = qemu::run(&machine, RUN_TIMEOUT, |line| line.contains(NOTHING_STARTS))
        .map_err(|e| format!("cannot start {}: {e}", qemu::QEMU))?;
    save_log(name, &machine, &run)?;
    let text = run.text();
    let failure = if let Some(panic) = verdict::parse(&text).panic {
        Some(format!("kernel panic: {panic}"))
    } else if !text.contains(DAMAGED_STREAM) || !text.contains(NOTHING_STARTS) {
        Some(format!("no lines {DAMAGED_STREAM:?} and {NOTHING_STARTS:?}; log in target/vessel/logs/{name}.log"))
    } else {
        text.contains("started bin/init").then(|| String::from("bin/init started from a damaged ramdisk"))
    };
    tally.record("boot::damaged_ramdisk_is_refused", failure);
    Ok(())
}

/// How the kernel's refusal of a packed ramdisk starts (the reason follows: a damaged stream, or
/// one that does not unpack to the stated length), and what it logs then.
const DAMAGED_STREAM: &str = "ERROR packed bootfs: ";
const NOTHING_STARTS: &str = "no programs can start";

/// Boots the test kernel with a fault injected and checks the harness calls the run failed for
/// the right reason.
fn harness_check(tally: &mut Tally, builder: &Path, elf: &Path, programs: &Path, inject: &str, expect: &str) -> Result {
    let name = format!("inject-{inject}");
    let args = format!("inject={inject}\n");
    let images =
        artifacts::images_for(elf, builder, programs, &name, &BootSpec { boot_args: args, ..BootSpec::default() })?;
    let timeout = if inject == "hang" { HANG_TIMEOUT } else { RUN_TIMEOUT };
    let run = boot(&name, &Boot::disk(&images.bios, false), timeout, false)?;
    let verdict = verdict::parse(&run.text()).failure(run.exit, MIN_KERNEL_TESTS);
    let failure = match verdict {
        None => Some(format!("harness passed a run with inject={inject}")),
        Some(why) if !why.contains(expect) => Some(format!("wrong reason for inject={inject}: {why}")),
        Some(_) => None,
    };
    tally.record(&format!("harness::notices_{}", inject.replace('-', "_")), failure);
    Ok(())
}

/// The user-space suite on one machine, with a fresh scratch disk of its own as the first
/// virtio-blk disk (the guest's `blk0`). The guest's writes go to the file, which the next run
/// replaces, so what a failing run wrote can be read afterwards.
fn user_suite(tally: &mut Tally, prefix: &str, image: &Path, uefi: bool, machine_type: MachineType) -> Result {
    let scratch = artifacts::fresh_disk(&format!("suite-{prefix}"), artifacts::SCRATCH_DISK_BYTES)?;
    let data = artifacts::fresh_fat_disk(&format!("data-{prefix}"), artifacts::DATA_DISK_BYTES)?;
    // Programs the guest copies into a child's VSF and runs from there.
    artifacts::seed_programs(&data, &artifacts::programs_dir(), &["true", "probe"])?;
    let disks = vec![Disk { path: scratch, persistent: true }, Disk { path: data.clone(), persistent: true }];
    suite(tally, prefix, &Boot { machine_type, disks, live: true, ..Boot::disk(image, uefi) }, MIN_USER_TESTS)?;
    // What the guest wrote must be FAT the host's tools accept: the data disk, and the VSF the
    // file tests leave on it (holding the file a child container wrote).
    tally.record(
        &format!("{prefix}::data_disk_passes_fsck"),
        fat_check(&data, &["suite/", "child.vsf", "suite/big.bin", "suite/many/f0999", "bin/true", "run.vsf"]).err(),
    );
    tally.record(&format!("{prefix}::guest_made_vsf_passes_fsck"), vsf_check(&data, "child.vsf", "hello.txt").err());
    Ok(())
}

/// `fsck.fat -n` accepts the FAT image `image` and `mdir` lists `names` (paths from its root,
/// directories ending in `/`).
fn fat_check(image: &Path, names: &[&str]) -> std::result::Result<(), String> {
    let run = |program: &str, args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("{program}: {e} (apt-get install dosfstools mtools)"))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() { Ok(text) } else { Err(format!("{program} {}: {text}", image.display())) }
    };
    run("fsck.fat", &["-n".as_ref(), image.as_os_str()])?;
    // Recursive and bare: one `::/path` line per entry, directories ending in `/`.
    let listing = run("mdir", &["-/".as_ref(), "-b".as_ref(), "-i".as_ref(), image.as_os_str(), "::/".as_ref()])?;
    let listed = |name: &str| listing.lines().any(|l| l.trim_end() == format!("::/{name}"));
    match names.iter().find(|n| !listed(n)) {
        Some(missing) => Err(format!("mdir of {} does not list ::/{missing}:\n{listing}", image.display())),
        None => Ok(()),
    }
}

/// The VSF `name` in the root of FAT image `image`, copied out with `mcopy`, passes
/// [`fat_check`] and holds `holds`.
fn vsf_check(image: &Path, name: &str, holds: &str) -> std::result::Result<(), String> {
    let out = image.with_extension(format!("{name}.img"));
    let _ = std::fs::remove_file(&out);
    let copied = std::process::Command::new("mcopy")
        .args(["-n", "-i"])
        .arg(image)
        .arg(format!("::/{name}"))
        .arg(&out)
        .output()
        .map_err(|e| format!("mcopy: {e} (apt-get install mtools)"))?;
    if !copied.status.success() {
        return Err(format!("mcopy ::/{name} from {}: {}", image.display(), String::from_utf8_lossy(&copied.stderr)));
    }
    fat_check(&out, &[holds])
}

/// Only the user-space suite under BIOS, on q35 or pc.
pub fn run_user_bios(machine_type: MachineType, only: Option<String>) -> Result {
    let mut tally = Tally::default();
    setup::ensure_qemu()?;
    let builder = artifacts::image_builder()?;
    let programs = artifacts::userland()?;
    let normal_elf = artifacts::kernel(Flavor::Normal)?;
    let spec = match only {
        Some(groups) => BootSpec::test(&format!("{USER_RUN} --only {groups}\n"), USER_ARGS),
        None => user_spec(),
    };
    let user_images = artifacts::images_for(&normal_elf, &builder, &programs, "vessel-usertest", &spec)?;
    let prefix = match machine_type {
        MachineType::Q35 => "user-bios",
        MachineType::Pc => "user-bios-pc",
    };
    user_suite(&mut tally, prefix, &user_images.bios, false, machine_type)?;
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { Ok(()) } else { Err(format!("{} test(s) failed", tally.failed)) }
}

/// Only the crash test (`crash.rs`).
pub fn run_crash() -> Result {
    let mut tally = Tally::default();
    setup::ensure_qemu()?;
    let builder = artifacts::image_builder()?;
    let programs = artifacts::userland()?;
    let normal_elf = artifacts::kernel(Flavor::Normal)?;
    crate::crash::crash_runs(&mut |name, failure| tally.record(name, failure), &normal_elf, &builder, &programs)?;
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { Ok(()) } else { Err(format!("{} test(s) failed", tally.failed)) }
}

/// The user-space test image: init runs usertest as a trusted program with a platform
/// capability (it gets the root container and tests the kernel's hardware objects).
fn user_spec() -> BootSpec {
    BootSpec::test(&format!("{USER_RUN}\n"), USER_ARGS)
}

/// The plan line that runs the user-space suite, and the test images' kernel arguments.
const USER_RUN: &str = "run once trusted hardware bin/usertest";
const USER_ARGS: &str = "debug-exit=allow\n";

/// The persistence check: one boot writes to a disk whose writes are kept, a second boot of
/// another image reads them back from the same file. Each boot is a suite of its own
/// (`persist-write`, `persist-check`), so each must print its test lines and summary.
fn persistence(tally: &mut Tally, elf: &Path, builder: &Path, programs: &Path) -> Result {
    let disk = Disk { path: artifacts::fresh_disk("persist", artifacts::SCRATCH_DISK_BYTES)?, persistent: true };
    let data = Disk { path: artifacts::fresh_fat_disk("persist-data", artifacts::DATA_DISK_BYTES)?, persistent: true };
    for group in ["write", "check"] {
        let name = format!("persist-{group}");
        let run = format!("run once trusted bin/usertest --only blk-persist-{group},files-persist-{group}\n");
        let spec = BootSpec::test(&run, USER_ARGS);
        let images = artifacts::images_for(elf, builder, programs, &format!("vessel-{name}"), &spec)?;
        let disks = vec![disk.clone(), data.clone()];
        suite(tally, &name, &Boot { disks, ..Boot::disk(&images.bios, false) }, 2)?;
    }
    tally.record(
        "persist::data_disk_passes_fsck",
        fat_check(&data.path, &["persist/", "persist/file-19.bin", "persist/Sub dir with spaces/nötes.txt"]).err(),
    );
    Ok(())
}

/// The whole test command.
pub fn run_all() -> Result {
    let mut tally = Tally::default();
    host_tests(&mut tally)?;
    setup::ensure_qemu()?;

    let builder = artifacts::image_builder()?;
    let programs = artifacts::userland()?;
    let test_elf = artifacts::kernel(Flavor::Test)?;
    let normal_elf = artifacts::kernel(Flavor::Normal)?;
    let plain = BootSpec::default();
    let test_images = artifacts::images_for(&test_elf, &builder, &programs, "vessel-test", &plain)?;
    suite(&mut tally, "kernel-bios", &Boot::disk(&test_images.bios, false), MIN_KERNEL_TESTS)?;
    suite(&mut tally, "kernel-uefi", &Boot::disk(&test_images.uefi, true), MIN_KERNEL_TESTS)?;

    let user_images = artifacts::images_for(&normal_elf, &builder, &programs, "vessel-usertest", &user_spec())?;
    let (bios, uefi) = (user_images.bios.as_path(), user_images.uefi.as_path());
    user_suite(&mut tally, "user-bios", bios, false, MachineType::Q35)?;
    user_suite(&mut tally, "user-uefi", uefi, true, MachineType::Q35)?;
    user_suite(&mut tally, "user-bios-pc", bios, false, MachineType::Pc)?;
    user_suite(&mut tally, "user-uefi-pc", uefi, true, MachineType::Pc)?;
    persistence(&mut tally, &normal_elf, &builder, &programs)?;
    crate::crash::crash_runs(&mut |name, failure| tally.record(name, failure), &normal_elf, &builder, &programs)?;

    step("boot checks of the shipped images (disk and USB stick, BIOS and UEFI)");
    let shipped_spec = BootSpec::from_spec(&root().join(artifacts::DEFAULT_SPEC))?;
    let shipped = artifacts::images_for(&normal_elf, &builder, &programs, "vessel", &shipped_spec)?;
    boot_check(&mut tally, "bios_disk_ready", &shipped.bios, false, Attach::Disk)?;
    boot_check(&mut tally, "uefi_disk_ready", &shipped.uefi, true, Attach::Disk)?;
    boot_check(&mut tally, "bios_usb_ready", &shipped.bios, false, Attach::Usb)?;
    boot_check(&mut tally, "uefi_usb_ready", &shipped.uefi, true, Attach::Usb)?;
    step("VM formats of the shipped images (each attached in its own format)");
    for (format, path) in artifacts::convert(&shipped, &artifacts::Format::VM)? {
        boot_check(
            &mut tally,
            &format!("{}_ready", format.name().replace('-', "_")),
            &path,
            format.uefi(),
            Attach::Disk,
        )?;
    }
    damaged_ramdisk_check(&mut tally, &builder, &normal_elf, &programs)?;
    shell_session(&mut tally, &shipped.bios)?;
    spec_session(&mut tally)?;

    step("harness self-checks: injected failure, panic, hang and triple fault must be caught");
    harness_check(&mut tally, &builder, &test_elf, &programs, "fail", "failed: harness::injected_failure")?;
    harness_check(&mut tally, &builder, &test_elf, &programs, "panic", "kernel panic: ")?;
    harness_check(&mut tally, &builder, &test_elf, &programs, "hang", "timed out")?;
    harness_check(&mut tally, &builder, &test_elf, &programs, "triple-fault", "triple fault")?;

    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 { Ok(()) } else { Err(format!("{} test(s) failed", tally.failed)) }
}
