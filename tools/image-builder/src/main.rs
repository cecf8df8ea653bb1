//! `vessel-image-builder --kernel K [--ramdisk R] --bios OUT --uefi OUT [--loader-log LEVEL]`:
//! writes raw disk images
//! that boot the kernel through the `bootloader` crate's BIOS and UEFI stages. The images can be
//! written to a USB stick with `dd` as they are.
//!
//! Only the xtask runs this tool (it sets up the environment the bootloader build needs).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use bootloader::{BootConfig, DiskImageBuilder};
use bootloader_boot_config::LevelFilter;

/// Parsed command line.
struct Args {
    kernel: PathBuf,
    ramdisk: Option<PathBuf>,
    bios: Option<PathBuf>,
    uefi: Option<PathBuf>,
    /// The bootloader's own log on the serial port: `warn` for a quiet boot, `info` (the default)
    /// for its per-segment steps.
    loader_log: LevelFilter,
}

fn parse_args() -> Result<Args, String> {
    let mut kernel = None;
    let mut args =
        Args { kernel: PathBuf::new(), ramdisk: None, bios: None, uefi: None, loader_log: LevelFilter::Info };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().map(PathBuf::from).ok_or_else(|| format!("{flag} needs a path"));
        match flag.as_str() {
            "--kernel" => kernel = Some(value()?),
            "--ramdisk" => args.ramdisk = Some(value()?),
            "--bios" => args.bios = Some(value()?),
            "--uefi" => args.uefi = Some(value()?),
            "--loader-log" => {
                args.loader_log = match it.next().as_deref() {
                    Some("warn") => LevelFilter::Warn,
                    Some("info") => LevelFilter::Info,
                    other => return Err(format!("--loader-log takes warn or info, not {other:?}")),
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    args.kernel = kernel.ok_or("--kernel is required")?;
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut builder = DiskImageBuilder::new(args.kernel.clone());
    if let Some(ramdisk) = &args.ramdisk {
        builder.set_ramdisk(ramdisk.clone());
    }
    let mut config = BootConfig::default();
    // The kernel draws its own console; the bootloader's pixel-by-pixel log costs boot time.
    config.frame_buffer_logging = false;
    config.serial_logging = true;
    config.log_level = args.loader_log;
    builder.set_boot_config(&config);
    if let Some(out) = &args.bios {
        builder.create_bios_image(out).map_err(|e| format!("BIOS image {}: {e:#}", out.display()))?;
    }
    if let Some(out) = &args.uefi {
        builder.create_uefi_image(out).map_err(|e| format!("UEFI image {}: {e:#}", out.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vessel-image-builder: {e}");
            ExitCode::FAILURE
        }
    }
}
