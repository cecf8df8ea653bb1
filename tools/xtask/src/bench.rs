//! `cargo xtask bench`: performance figures as `RESULT <name> n=<N> <value> ns/<unit>` lines.
//!
//! First the in-guest benchmarks: the bench image's init runs `bin/bench` (null syscall, yield
//! switch, spawn + wait; see `userland/tests/src/bin/bench.rs`), whose RESULT lines are passed
//! through. Then boot time of the shipped images under TCG, from QEMU start to the kernel's ready
//! line (firmware + bootloader + kernel), and the kernel's own part (bootloader hand-over to
//! ready, as the kernel measures it with the TSC). Medians over `runs` boots.
//!
//! Then (also alone with `--only shell`) the shipped image from QEMU start to the shell's prompt,
//! the memory in use there (`MEASURE`), and `ctr run true` typed at the shell.
//!
//! With `BENCH_DISK=/abs/path.img` (a raw image from `../shared/bench/mkfatimage.sh`) the bench
//! guest also gets that image as a virtio-blk disk, its writes discarded (`snapshot=on`), for the
//! disk benchmarks; the boot image stays the one the firmware boots.

use std::path::PathBuf;
use std::time::Duration;

use vessel_test_harness::qemu::{self, Attach, Disk, Firmware, Machine, MachineType};
use vessel_test_harness::verdict::Exit;

use crate::artifacts::{self, BootSpec, Flavor};
use crate::suites::READY;
use crate::{Result, setup, step};

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Reads `kernel ready in <N> us` from a line.
fn kernel_us(line: &str) -> Option<u64> {
    let rest = &line[line.find(READY)? + READY.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The guest benchmarks, then the boot times.
/// `only` picks benchmark groups (and skips the boot times); `scale` multiplies round counts.
pub fn run(runs: usize, only: &[String], scale: u64) -> Result {
    setup::ensure_qemu()?;
    let mut conf = String::from("run once trusted bin/bench");
    for group in only {
        conf.push(' ');
        conf.push_str(group);
    }
    if scale != 1 {
        conf.push_str(&format!(" x{scale}"));
    }
    conf.push('\n');
    let shell = only.iter().any(|g| g == "shell");
    let guest_only: Vec<&String> = only.iter().filter(|g| *g != "shell").collect();
    if !shell || !guest_only.is_empty() {
        guest(&conf.replace(" shell", ""))?;
    }
    if only.is_empty() {
        boot_times(runs)?;
    }
    if only.is_empty() || shell { shell_figures(runs) } else { Ok(()) }
}

/// The environment variable naming a disk image for the bench guest.
const BENCH_DISK: &str = "BENCH_DISK";

/// The disk `BENCH_DISK` names, if set: it must be an absolute path to an existing file.
fn bench_disk() -> Result<Option<Disk>> {
    let Some(value) = std::env::var_os(BENCH_DISK) else { return Ok(None) };
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(format!("{BENCH_DISK}={}: give an absolute path", path.display()));
    }
    if !path.is_file() {
        return Err(format!("{BENCH_DISK}={}: no such image (make it with mkfatimage.sh)", path.display()));
    }
    Ok(Some(Disk { path, persistent: false }))
}

/// Boots the bench image (BIOS) and passes its RESULT lines through.
fn guest(plan: &str) -> Result {
    let disks: Vec<Disk> = bench_disk()?.into_iter().collect();
    let spec = BootSpec::test(plan, "debug-exit=allow\n");
    let images = artifacts::images_with(Flavor::Normal, "vessel-bench", &spec)?;
    match disks.first() {
        Some(disk) => step(&format!("in-guest benchmarks (BIOS, TCG, disk {})", disk.path.display())),
        None => step("in-guest benchmarks (BIOS, TCG)"),
    }
    let machine = Machine {
        image: images.bios,
        firmware: Firmware::Bios,
        attach: Attach::Disk,
        debug_exit: true,
        snapshot: true,
        machine_type: MachineType::Q35,
        disks,
        rtc_base: None,
        com2: None,
        memory_mib: 256,
    };
    let run = qemu::run(&machine, Duration::from_secs(1800), |_| false).map_err(|e| e.to_string())?;
    let results: Vec<&str> = run
        .lines
        .iter()
        .map(|(_, l)| l.as_str())
        .filter(|l| ["RESULT ", "MEASURE ", "bench:"].iter().any(|p| l.starts_with(p)))
        .collect();
    for line in &results {
        println!("{line}");
    }
    if run.exit != Exit::Success || results.is_empty() {
        return Err(format!("bench image ended with {:?}:\n{}", run.exit, run.text()));
    }
    Ok(())
}

/// Boots each firmware `runs` times and prints the medians.
fn boot_times(runs: usize) -> Result {
    let images = artifacts::images()?;
    for (label, uefi) in [("bios", false), ("uefi", true)] {
        step(&format!("{runs} boots under {label}"));
        let (mut total, mut kernel, mut first_line, mut loader_at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..runs.max(1) {
            let firmware = if uefi { artifacts::uefi_firmware("bench")? } else { Firmware::Bios };
            let image = if uefi { images.uefi.clone() } else { images.bios.clone() };
            let machine = shipped_machine(image, firmware, None);
            let run =
                qemu::run(&machine, Duration::from_secs(120), |l| l.contains(READY)).map_err(|e| e.to_string())?;
            if run.exit != Exit::Stopped {
                return Err(format!("{label} boot {i} did not reach the ready line ({:?})", run.exit));
            }
            let ready_line = run.lines.iter().find(|(_, l)| l.contains(READY)).map(|(_, l)| l.as_str()).unwrap_or("");
            let at = run.time_of(READY).unwrap_or_default();
            let banner = run.time_of("Vessel ").unwrap_or_default();
            // The bootloader's first log line marks the end of firmware work (SeaBIOS/OVMF plus
            // loading the bootloader's own stages); its jump marks the hand-over.
            let loader = run.time_of("INFO : ").unwrap_or_default();
            let jump = run.time_of("Jumping to kernel").unwrap_or_default();
            let us = kernel_us(ready_line).ok_or("unreadable ready line")?;
            eprintln!(
                "  boot {i}: bootloader log at {:.3} s, jump to kernel at {:.3} s, first kernel line at {:.3} s, ready at {:.3} s (kernel's own part {:.1} ms)",
                loader.as_secs_f64(),
                jump.as_secs_f64(),
                banner.as_secs_f64(),
                at.as_secs_f64(),
                us as f64 / 1000.0
            );
            loader_at.push(u64::try_from(loader.as_nanos()).unwrap_or(u64::MAX));
            total.push(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
            first_line.push(u64::try_from(banner.as_nanos()).unwrap_or(u64::MAX));
            kernel.push(us * 1000);
        }
        let n = total.len();
        println!("RESULT boot_to_ready_{label} n={n} {} ns/boot", median(&mut total));
        println!("RESULT boot_to_bootloader_log_{label} n={n} {} ns/boot", median(&mut loader_at));
        println!("RESULT boot_to_first_kernel_line_{label} n={n} {} ns/boot", median(&mut first_line));
        println!("RESULT kernel_handover_to_ready_{label} n={n} {} ns/boot", median(&mut kernel));
    }
    Ok(())
}

/// A shipped image booted alone on q35 with 256 MiB, as the boot-time figures use it.
fn shipped_machine(image: PathBuf, firmware: Firmware, com2: Option<PathBuf>) -> Machine {
    Machine {
        image,
        firmware,
        attach: Attach::Disk,
        debug_exit: true,
        snapshot: true,
        machine_type: MachineType::Q35,
        disks: Vec::new(),
        rtc_base: None,
        com2,
        memory_mib: 256,
    }
}

/// Rounds of the shell's timed lines.
const SHELL_ROUNDS: usize = 10;

/// The shipped BIOS image from QEMU start to the shell's prompt (`boot_to_prompt_bios`), the
/// memory in use there (kernel, servers and shells: `free`'s used line, as `MEASURE`; the
/// unpacked boot file system apart, as another), and from
/// the shell, `ctr run true` against `true` alone (each line runs it ten times; host time from
/// Return to the next prompt, so it includes the echo over the serial line).
fn shell_figures(runs: usize) -> Result {
    let images = artifacts::images()?;
    step(&format!("{runs} boots of the shipped image to the shell's prompt"));
    let (mut boots, mut plain, mut ctr) = (Vec::new(), Vec::new(), Vec::new());
    let ten = |cmd: &str| [cmd; SHELL_ROUNDS].join("; ");
    let lines = [ten("true"), ten("ctr run true"), String::from("free")];
    let (mut used, mut boot_files) = (String::new(), String::new());
    for i in 0..runs.max(1) {
        let dir = artifacts::out_dir()?.join("sockets");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let socket = dir.join("bench-com2.sock");
        let _ = std::fs::remove_file(&socket);
        let machine = shipped_machine(images.bios.clone(), Firmware::Bios, Some(socket.clone()));
        let typed: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (boot, timings) = crate::session::timed(&machine, &typed)?;
        let _ = std::fs::remove_file(&socket);
        eprintln!(
            "  boot {i}: prompt at {:.3} s; 10 x true {:.1} ms, 10 x ctr run true {:.1} ms",
            boot.as_secs_f64(),
            timings[0].0.as_secs_f64() * 1e3,
            timings[1].0.as_secs_f64() * 1e3
        );
        boots.push(u64::try_from(boot.as_nanos()).unwrap_or(u64::MAX));
        plain.push(u64::try_from(timings[0].0.as_nanos()).unwrap_or(u64::MAX) / SHELL_ROUNDS as u64);
        ctr.push(u64::try_from(timings[1].0.as_nanos()).unwrap_or(u64::MAX) / SHELL_ROUNDS as u64);
        used = timings[2].1.lines().find(|l| l.starts_with("memory")).unwrap_or("").to_string();
        boot_files = timings[2].1.lines().find(|l| l.starts_with("boot files:")).unwrap_or("").to_string();
    }
    let n = boots.len();
    println!("RESULT boot_to_prompt_bios n={n} {} ns/boot", median(&mut boots));
    println!("RESULT shell_true n={} {} ns/run", n * SHELL_ROUNDS, median(&mut plain));
    println!("RESULT shell_ctr_run_true n={} {} ns/run", n * SHELL_ROUNDS, median(&mut ctr));
    // `memory  TOTAL  USED  FREE` with units: the used column, in bytes.
    let words: Vec<&str> = used.split_whitespace().collect();
    let bytes = words.get(3..5).and_then(|w| human_bytes(w[0], w[1]));
    match bytes {
        Some(b) => println!("MEASURE mem_in_use_at_prompt {b} bytes ({})", words[3..5].join(" ")),
        None => eprintln!("  free printed {used:?}: no used figure"),
    }
    // `boot files: 2.9 MiB (…)`: the unpacked boot file system, which used leaves out.
    let words: Vec<&str> = boot_files.split_whitespace().collect();
    if let Some(b) = words.get(2..4).and_then(|w| human_bytes(w[0], w[1])) {
        println!(
            "MEASURE bootfs_unpacked_at_prompt {b} bytes ({} {}; not in mem_in_use_at_prompt)",
            words[2], words[3]
        );
    }
    Ok(())
}

/// `12.5` `MiB` as bytes.
fn human_bytes(number: &str, unit: &str) -> Option<u64> {
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((value * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ready_line() {
        assert_eq!(kernel_us("[    0.032] INFO  kernel ready in 31959 us (since bootloader hand-over)"), Some(31959));
        assert_eq!(kernel_us("kernel ready in soon"), None);
        assert_eq!(kernel_us("nothing"), None);
    }

    #[test]
    fn median_of_odd_and_empty() {
        assert_eq!(median(&mut [5, 1, 3]), 3);
        assert_eq!(median(&mut []), 0);
    }
}
