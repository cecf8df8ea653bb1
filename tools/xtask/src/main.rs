//! `cargo xtask`: Vessel's build tool. All build glue lives here (no scripts, no Makefiles).
//!
//! - `build`: the kernel (normal and test builds) and the image builder.
//! - `image [--spec FILE] [--format F]...`: the images of an image spec (`boot/images/`):
//!   BIOS and UEFI raw disk images, whose last two lines name them, or the formats asked for.
//! - `usb DEVICE [--uefi] [--yes]`: the shipped image onto a USB stick, checked and verified.
//! - `run [--uefi] [--spec FILE] [--verbose] [--usb] [--display] [--machine q35|pc] [--disk IMG]... [--fresh-data]
//!   [-- QEMU ARGS]`: boot in QEMU, serial on the terminal, with the persistent FAT32 data disk
//!   `target/vessel/data.img` (the guest's `/data`) attached after the `--disk` images.
//! - `test [--user-only [--machine q35|pc] [--only GROUPS]] [--crash-only] [--shell-only]`: host unit tests, then the in-QEMU
//!   suites; exits non-zero on any failure.
//! - `bench`: in-guest benchmarks and boot times as `RESULT` lines (`BENCH_DISK` attaches a disk).
//! - `clippy`: lints every crate for the target it really builds for.
//!
//! Every command first installs what a fresh machine lacks (see [`setup`]).
#![forbid(unsafe_code)]

mod artifacts;
mod bench;
mod crash;
mod hot;
mod live;
mod screen;
mod session;
mod setup;
mod suites;
mod usb;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};
use vessel_test_harness::qemu::{self, Attach, Disk, Firmware, Machine, MachineType};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot and test Vessel")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the kernel, its test build and the image builder.
    Build,
    /// Write the BIOS and UEFI disk images of an image spec and print their paths.
    Image {
        /// The image spec (default: boot/images/default.toml).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Output formats (repeatable; default: raw-bios and raw-uefi).
        #[arg(long = "format", value_enum)]
        formats: Vec<artifacts::Format>,
    },
    /// Boot Vessel in QEMU with the serial console on this terminal (Ctrl-A X quits).
    Run {
        /// Boot the UEFI image through OVMF instead of the BIOS image through SeaBIOS.
        #[arg(long)]
        uefi: bool,
        /// The image spec to build and boot (default: boot/images/default.toml).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// The kernel logs at debug level (`log=debug`) instead of info.
        #[arg(long)]
        verbose: bool,
        /// Attach the image as a USB mass-storage stick instead of a hard disk.
        #[arg(long)]
        usb: bool,
        /// Open a QEMU window showing the framebuffer console as well.
        #[arg(long)]
        display: bool,
        /// QEMU machine type: q35 (ICH9, PCI Express) or pc (i440FX, PCI).
        #[arg(long, default_value = "q35")]
        machine: MachineType,
        /// A raw image to attach as a virtio-blk disk (repeatable; the first is the guest's
        /// blk0). The guest's writes are kept in the file.
        #[arg(long = "disk", value_name = "IMG")]
        disks: Vec<PathBuf>,
        /// Make the data disk (`target/vessel/data.img`, the guest's `/data`) anew, empty.
        #[arg(long)]
        fresh_data: bool,
        /// Extra arguments passed to QEMU as they are.
        #[arg(last = true)]
        qemu_args: Vec<String>,
    },
    /// Run the host unit tests and the in-QEMU test suites.
    Test {
        /// Only the user-space suite under BIOS (a quick loop while developing; CI runs all).
        #[arg(long)]
        user_only: bool,
        /// With --user-only: the QEMU machine type, q35 (the default) or pc.
        #[arg(long, requires = "user_only")]
        machine: Option<MachineType>,
        /// Only the crash test: QEMU killed 20 times in a write burst, the FAT checked after each.
        #[arg(long, conflicts_with = "user_only")]
        crash_only: bool,
        /// Only the shell session on the shipped image (COM2 typed into by the harness).
        #[arg(long, conflicts_with_all = ["user_only", "crash_only"])]
        shell_only: bool,
        /// With --user-only: only these test groups of the suite (`files,tools`), for a quick
        /// loop (the host's checks of groups left out then report them missing).
        #[arg(long, requires = "user_only")]
        only: Option<String>,
    },
    /// Run the in-guest benchmarks, then measure boot times; prints `RESULT` lines.
    Bench {
        /// Boots per firmware.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only these benchmark groups (null, yield, spawn, ipc, container), and no boot times.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Multiply every round count (for profiling one group).
        #[arg(long, default_value_t = 1)]
        scale: u64,
    },
    /// Run clippy on every crate, for its real target, with warnings as errors.
    Clippy,
    /// Write the shipped image to a USB stick (a whole removable disk, e.g. /dev/sdb).
    Usb {
        /// The stick's device path.
        device: PathBuf,
        /// Write the UEFI image (the default is the BIOS image; most PCs since 2012 boot UEFI).
        #[arg(long)]
        uefi: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// A failed step, with what to do about it.
type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root (the xtask lives in `tools/xtask`).
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map_or(manifest.clone(), PathBuf::from)
}

/// Runs a command in the workspace root, failing with its command line if it fails.
fn run_checked(command: &mut Command) -> Result {
    let status = command.current_dir(root()).status().map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{command:?} failed ({status})")) }
}

/// A `cargo` command for the pinned toolchain.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Prints a progress line for a slow step.
fn step(what: &str) {
    eprintln!("\x1b[1m==>\x1b[0m {what}");
}

/// How `cargo xtask run` boots.
struct RunOptions<'a> {
    verbose: bool,
    spec: Option<PathBuf>,
    uefi: bool,
    usb: bool,
    display: bool,
    machine_type: MachineType,
    disks: &'a [PathBuf],
    fresh_data: bool,
    extra: &'a [String],
}

/// The image spec to use: the one given (relative to the working directory), else the default.
fn spec_path(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(path) => absolute(path),
        None => Ok(root().join(artifacts::DEFAULT_SPEC)),
    }
}

fn run_qemu(options: &RunOptions<'_>) -> Result {
    setup::ensure_qemu()?;
    let images = artifacts::images_of(&spec_path(options.spec.as_deref())?, options.verbose)?;
    let firmware = if options.uefi { artifacts::uefi_firmware("run")? } else { Firmware::Bios };
    let disks = options.disks.iter().map(|path| absolute(path).map(|path| Disk { path, persistent: true }));
    let mut disks: Vec<Disk> = disks.collect::<Result<_>>()?;
    disks.push(Disk { path: artifacts::data_disk(options.fresh_data)?, persistent: true });
    let machine = Machine {
        image: if options.uefi { images.uefi } else { images.bios },
        firmware,
        attach: if options.usb { Attach::Usb } else { Attach::Disk },
        debug_exit: false,
        snapshot: false,
        machine_type: options.machine_type,
        disks,
        rtc_base: None,
        com2: None,
        memory_mib: 256,
    };
    step("booting in QEMU (TCG); the shell below (Ctrl-A X quits QEMU, Ctrl-A C its monitor)");
    let mut command = Command::new(qemu::QEMU);
    // One terminal for both serial ports: COM1 shows the kernel's log, COM2 (`serial0`) is the
    // shell's terminal and gets what is typed (a mux gives input to the last port attached).
    // Ctrl-C goes to the guest, not to QEMU.
    command.args(machine.args()).args([
        "-chardev",
        "stdio,id=term,mux=on,signal=off",
        "-serial",
        "chardev:term",
        "-serial",
        "chardev:term",
        "-mon",
        "chardev=term,mode=readline",
    ]);
    if !options.display {
        command.args(["-display", "none"]);
    }
    command.args(options.extra);
    run_checked(&mut command)
}

/// `path` made absolute against the directory the command was started in (QEMU runs in the
/// workspace root), if it exists.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .ok()
        .filter(|path| path.is_file())
        .ok_or_else(|| format!("{}: no such disk image", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = setup::ensure_toolchain().and_then(|()| match cli.command {
        Cmd::Build => artifacts::build_all(),
        Cmd::Image { spec, formats } => {
            spec_path(spec.as_deref()).and_then(|s| artifacts::images_of(&s, false)).and_then(|images| {
                if formats.is_empty() {
                    println!("bios: {}", images.bios.display());
                    println!("uefi: {}", images.uefi.display());
                    return Ok(());
                }
                setup::ensure_qemu()?;
                for (format, path) in artifacts::convert(&images, &formats)? {
                    println!("{}: {}", format.name(), path.display());
                }
                Ok(())
            })
        }
        Cmd::Run { uefi, spec, verbose, usb, display, machine, disks, fresh_data, qemu_args } => {
            run_qemu(&RunOptions {
                uefi,
                spec,
                verbose,
                usb,
                display,
                machine_type: machine,
                disks: &disks,
                fresh_data,
                extra: &qemu_args,
            })
        }
        Cmd::Test { crash_only: true, .. } => suites::run_crash(),
        Cmd::Test { shell_only: true, .. } => suites::run_shell(),
        Cmd::Test { user_only: false, .. } => suites::run_all(),
        Cmd::Test { user_only: true, machine, only, .. } => suites::run_user_bios(machine.unwrap_or_default(), only),
        Cmd::Bench { runs, only, scale } => bench::run(runs, &only, scale),
        Cmd::Usb { device, uefi, yes } => usb::run(&device, uefi, yes),
        Cmd::Clippy => artifacts::clippy(),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
