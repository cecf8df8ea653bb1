//! `cargo xtask bench`: performance figures as `RESULT <name> n=<N> <value> ns/<unit>` lines.
//!
//! First the in-guest benchmarks: the bench image's init runs `bin/bench` (null syscall, yield
//! switch, spawn + wait; see `userland/tests/src/bin/bench.rs`), whose RESULT lines are passed
//! through. Then boot time of the shipped images under TCG, from QEMU start to the kernel's ready
//! line (firmware + bootloader + kernel), and the kernel's own part (bootloader hand-over to
//! ready, as the kernel measures it with the TSC). Medians over `runs` boots.
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
    let mut conf = String::from("!bin/bench");
    for group in only {
        conf.push(' ');
        conf.push_str(group);
    }
    if scale != 1 {
        conf.push_str(&format!(" x{scale}"));
    }
    conf.push('\n');
    guest(&conf)?;
    if only.is_empty() { boot_times(runs) } else { Ok(()) }
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
fn guest(init_conf: &str) -> Result {
    let disks: Vec<Disk> = bench_disk()?.into_iter().collect();
    let spec = BootSpec { init_conf, boot_args: "debug-exit=allow\n" };
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
            let machine = Machine {
                image,
                firmware,
                attach: Attach::Disk,
                debug_exit: true,
                snapshot: true,
                machine_type: MachineType::Q35,
                disks: Vec::new(),
                rtc_base: None,
                com2: None,
            };
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
