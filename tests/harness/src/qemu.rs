//! Running QEMU for Vessel: the machine's command line, a hard timeout, and the serial output
//! collected line by line with arrival times.
//!
//! The command line covers both machine types (q35, pc) and extra virtio-blk disks for the
//! guest's drivers; whatever else is attached, the firmware boots the Vessel image.
//!
//! Invariant: a started QEMU never outlives its [`Run`]: the guard kills and reaps it on drop,
//! including when the harness itself panics or returns early.
//!
//! [`run`] is fire-and-forget (stdin closed, no monitor); [`crate::interactive`] starts the same
//! machine with the serial input, the monitor and screendumps reachable, on the same line reader.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::verdict::Exit;

/// The emulator binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// Where Debian and other distributions put OVMF (code, vars template), first match wins.
const OVMF_CANDIDATES: &[(&str, &str)] = &[
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
    ("/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/edk2/x64/OVMF_VARS.4m.fd"),
];

/// The installed OVMF firmware, as (code, vars template).
pub fn find_ovmf() -> Option<(PathBuf, PathBuf)> {
    OVMF_CANDIDATES
        .iter()
        .find(|(code, vars)| Path::new(code).exists() && Path::new(vars).exists())
        .map(|(code, vars)| (PathBuf::from(code), PathBuf::from(vars)))
}

/// Which firmware boots the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    Bios,
    /// OVMF: read-only code and a writable copy of the variable store.
    Uefi {
        /// `OVMF_CODE*.fd`.
        code: PathBuf,
        /// A writable copy of `OVMF_VARS*.fd` for this run.
        vars: PathBuf,
    },
}

/// How the image is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// As a hard disk (AHCI on q35, PIIX IDE on pc).
    Disk,
    /// As a USB mass-storage stick on an xHCI controller, as when booting from USB.
    Usb,
}

/// QEMU's machine type: the chipset the guest finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MachineType {
    /// Q35/ICH9: PCI Express, AHCI.
    #[default]
    Q35,
    /// i440FX/PIIX3: plain PCI, IDE.
    Pc,
}

impl MachineType {
    /// The name `-machine` takes.
    pub fn name(self) -> &'static str {
        match self {
            MachineType::Q35 => "q35",
            MachineType::Pc => "pc",
        }
    }
}

impl std::str::FromStr for MachineType {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "q35" => Ok(MachineType::Q35),
            "pc" => Ok(MachineType::Pc),
            other => Err(format!("unknown machine type {other:?} (q35 or pc)")),
        }
    }
}

/// A raw image attached as a virtio-blk disk, for the guest's own drivers (never booted from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// Raw image.
    pub path: PathBuf,
    /// Keep the guest's writes in the file; otherwise they go to a temporary overlay
    /// (`snapshot=on`) and the file is left as it was.
    pub persistent: bool,
}

/// One machine to boot.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Raw disk image.
    pub image: PathBuf,
    /// Firmware.
    pub firmware: Firmware,
    /// Disk or USB.
    pub attach: Attach,
    /// Whether to add the `isa-debug-exit` device (tests) or not (interactive runs).
    pub debug_exit: bool,
    /// Keep guest writes to the image in a temporary overlay (tests), so runs never change the
    /// image or hold its write lock.
    pub snapshot: bool,
    /// q35 or pc.
    pub machine_type: MachineType,
    /// Extra virtio-blk disks, in order: the first is the guest's first virtio-blk device.
    pub disks: Vec<Disk>,
    /// Where the real-time clock starts (`-rtc base=`, e.g. `2030-01-02T03:04:05`, UTC); the
    /// host's time if `None`.
    pub rtc_base: Option<String>,
    /// A second 16550 UART (COM2: ports 0x2f8, line 3) whose other end is a Unix socket QEMU
    /// listens on at this path (it does not wait for a client).
    pub com2: Option<PathBuf>,
    /// Guest memory in MiB (the benchmarks' machine and `cargo xtask run` have 256, the test
    /// suites 512: the suites start a thousand processes at once).
    pub memory_mib: u32,
}

/// QEMU's name of the format of the boot image `path`, from its extension: `qcow2`, `vmdk`,
/// `vpc` (a `.vhd`), else `raw`.
pub fn image_format(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("qcow2") => "qcow2",
        Some("vmdk") => "vmdk",
        Some("vhd") => "vpc",
        _ => "raw",
    }
}

/// A path as a `-drive file=` value: QEMU splits options at commas, so a comma is doubled.
pub(crate) fn drive_file(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

impl Machine {
    /// QEMU arguments for this machine, without the console options.
    pub fn args(&self) -> Vec<String> {
        // TCG: the nested KVM on these machines is unusable. `-cpu max` gives RDRAND, x2APIC etc.
        let memory = format!("{}M", self.memory_mib);
        let mut args: Vec<String> = ["-machine", self.machine_type.name()]
            .into_iter()
            .chain(["-accel", "tcg", "-cpu", "max", "-m", memory.as_str(), "-smp", "1", "-no-reboot"])
            .map(String::from)
            .collect();
        if self.debug_exit {
            args.extend(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"].map(String::from));
        }
        if let Firmware::Uefi { code, vars } = &self.firmware {
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,readonly=on,file={}", drive_file(code)));
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,file={}", drive_file(vars)));
        }
        let image = drive_file(&self.image);
        let snapshot = if self.snapshot { ",snapshot=on" } else { "" };
        let format = image_format(&self.image);
        match self.attach {
            // Alone, the image is the default interface's first disk and the firmware boots it.
            Attach::Disk if self.disks.is_empty() => {
                args.push("-drive".into());
                args.push(format!("format={format},file={image}{snapshot}"));
            }
            // Beside other disks (which may carry a boot signature of their own) it is pinned as
            // the first boot device. `ide-hd` lands on AHCI on q35 and on PIIX IDE on pc, both of
            // which SeaBIOS and OVMF boot from.
            Attach::Disk => {
                args.push("-drive".into());
                args.push(format!("if=none,id=boot,format={format},file={image}{snapshot}"));
                args.extend(["-device", "ide-hd,drive=boot,bootindex=0"].map(String::from));
            }
            Attach::Usb => {
                args.extend(["-device", "qemu-xhci,id=xhci", "-drive"].map(String::from));
                args.push(format!("if=none,id=stick,format={format},file={image}{snapshot}"));
                // The only device with a boot index, so the firmware boots it first.
                args.extend(["-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=1"].map(String::from));
            }
        }
        if let Some(base) = &self.rtc_base {
            args.extend(["-rtc".to_string(), format!("base={base}")]);
        }
        if let Some(socket) = &self.com2 {
            // Placed by address, so it is COM2 whatever other `-serial` options follow.
            args.push("-chardev".into());
            args.push(format!("socket,id=com2,path={},server=on,wait=off", drive_file(socket)));
            args.extend(["-device", "isa-serial,chardev=com2,iobase=0x2f8,irq=3"].map(String::from));
        }
        for (n, disk) in self.disks.iter().enumerate() {
            let snapshot = if disk.persistent { "" } else { ",snapshot=on" };
            args.push("-drive".into());
            args.push(format!("file={},format=raw,if=none,id=vd{n}{snapshot}", drive_file(&disk.path)));
            args.push("-device".into());
            args.push(format!("virtio-blk-pci,drive=vd{n}"));
        }
        args
    }
}

/// The console options of a [`run`]: no window, no monitor, the serial port on a pipe.
const PIPED_CONSOLE: [&str; 6] = ["-display", "none", "-monitor", "none", "-serial", "stdio"];

/// The command line [`run`] starts for `machine`, as one line for logs.
pub fn command_line(machine: &Machine) -> String {
    let args = machine.args().into_iter().chain(PIPED_CONSOLE.map(String::from));
    std::iter::once(QEMU.to_string()).chain(args).collect::<Vec<_>>().join(" ")
}

/// Kills and reaps QEMU when dropped.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Run {
    /// Serial lines with the time since QEMU started.
    pub lines: Vec<(Duration, String)>,
    /// How QEMU ended.
    pub exit: Exit,
    /// QEMU's own stderr (errors about the command line, firmware, ...).
    pub stderr: String,
}

impl Run {
    /// The serial output as one text.
    pub fn text(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// When the first line containing `needle` arrived.
    pub fn time_of(&self, needle: &str) -> Option<Duration> {
        self.lines.iter().find(|(_, l)| l.contains(needle)).map(|(t, _)| *t)
    }
}

/// Reads QEMU's serial output on a thread: each line (without `\r\n`, invalid UTF-8 replaced) with
/// the time since `start`. The channel disconnects when the output closes, i.e. when QEMU exits.
pub(crate) fn read_lines(output: impl Read + Send + 'static, start: Instant) -> mpsc::Receiver<(Duration, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Serial output is bytes; a broken UTF-8 sequence must not end the read.
        for line in BufReader::new(output).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
            if tx.send((start.elapsed(), text)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads a pipe to its end on a thread (QEMU's stderr), as text.
pub(crate) fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Boots `machine` with the serial port on a pipe and collects its output until QEMU exits, a
/// line satisfies `stop` (then QEMU is killed and the exit is [`Exit::Stopped`]), or `timeout`
/// passes ([`Exit::TimedOut`]).
pub fn run(machine: &Machine, timeout: Duration, stop: impl Fn(&str) -> bool) -> std::io::Result<Run> {
    let mut command = Command::new(QEMU);
    command.args(machine.args()).args(PIPED_CONSOLE).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut guard = Guard(command.spawn()?);
    let stdout = guard.0.stdout.take().ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
    let stderr_pipe = guard.0.stderr.take().ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
    let stderr_reader = read_all(stderr_pipe);
    let rx = read_lines(stdout, start);
    let deadline = start + timeout;
    let mut lines = Vec::new();
    let exit = 'collect: loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((at, line)) => {
                let hit = stop(&line);
                lines.push((at, line));
                if hit {
                    break Exit::Stopped;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break Exit::TimedOut,
            // Output closed: QEMU is exiting; wait for its status (bounded by the deadline).
            Err(mpsc::RecvTimeoutError::Disconnected) => loop {
                if let Some(status) = guard.0.try_wait()? {
                    break 'collect Exit::from_status(status.code());
                }
                if Instant::now() >= deadline {
                    break 'collect Exit::TimedOut;
                }
                std::thread::sleep(Duration::from_millis(10));
            },
        }
    };
    drop(guard);
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Run { lines, exit, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(firmware: Firmware, attach: Attach) -> Machine {
        Machine {
            image: PathBuf::from("/x/bios.img"),
            firmware,
            attach,
            debug_exit: true,
            snapshot: true,
            machine_type: MachineType::default(),
            disks: Vec::new(),
            rtc_base: None,
            com2: None,
            memory_mib: 256,
        }
    }

    fn scratch(path: &str, persistent: bool) -> Disk {
        Disk { path: PathBuf::from(path), persistent }
    }

    #[test]
    fn disk_machine_uses_tcg_and_debug_exit() {
        let args = machine(Firmware::Bios, Attach::Disk).args().join(" ");
        assert!(args.contains("-accel tcg"), "{args}");
        assert!(args.contains("isa-debug-exit,iobase=0xf4"), "{args}");
        assert!(args.ends_with("-drive format=raw,file=/x/bios.img,snapshot=on"), "{args}");
        assert!(!args.contains("pflash"), "{args}");
    }

    #[test]
    fn uefi_usb_machine() {
        let firmware = Firmware::Uefi { code: "/c.fd".into(), vars: "/v.fd".into() };
        let args = machine(firmware, Attach::Usb).args().join(" ");
        assert!(args.contains("if=pflash,format=raw,readonly=on,file=/c.fd"), "{args}");
        assert!(args.contains("if=pflash,format=raw,file=/v.fd"), "{args}");
        assert!(args.contains("usb-storage,bus=xhci.0,drive=stick"), "{args}");
        assert!(args.contains("if=none,id=stick,format=raw,file=/x/bios.img,snapshot=on"), "{args}");
    }

    #[test]
    fn q35_is_the_default_and_pc_is_chosen_by_name() {
        let args = machine(Firmware::Bios, Attach::Disk).args().join(" ");
        assert!(args.starts_with("-machine q35 "), "{args}");
        let mut pc = machine(Firmware::Bios, Attach::Disk);
        pc.machine_type = "pc".parse().expect("pc is a machine type");
        let args = pc.args().join(" ");
        assert!(args.starts_with("-machine pc "), "{args}");
        assert!(!args.contains("q35"), "{args}");
        assert!("isapc".parse::<MachineType>().is_err());
    }

    #[test]
    fn extra_disks_are_virtio_and_the_image_stays_the_boot_disk() {
        let mut m = machine(Firmware::Bios, Attach::Disk);
        m.disks = vec![scratch("/d/scratch.img", false), scratch("/d/keep.img", true)];
        let args = m.args().join(" ");
        assert!(
            args.contains(
                "-drive if=none,id=boot,format=raw,file=/x/bios.img,snapshot=on -device ide-hd,drive=boot,bootindex=0"
            ),
            "{args}"
        );
        assert!(!args.contains("-drive format=raw,file=/x/bios.img"), "{args}");
        assert!(
            args.contains(
                "-drive file=/d/scratch.img,format=raw,if=none,id=vd0,snapshot=on -device virtio-blk-pci,drive=vd0"
            ),
            "{args}"
        );
        // A persistent disk keeps the guest's writes: no snapshot.
        assert!(
            args.ends_with("-drive file=/d/keep.img,format=raw,if=none,id=vd1 -device virtio-blk-pci,drive=vd1"),
            "{args}"
        );
        assert_eq!(args.matches("bootindex").count(), 1, "{args}");
    }

    #[test]
    fn pc_uefi_with_a_disk_pins_the_boot_disk_too() {
        let firmware = Firmware::Uefi { code: "/c.fd".into(), vars: "/v.fd".into() };
        let mut m = machine(firmware, Attach::Disk);
        m.machine_type = MachineType::Pc;
        m.disks = vec![scratch("/d/scratch.img", false)];
        let args = m.args().join(" ");
        assert!(args.starts_with("-machine pc "), "{args}");
        assert!(args.contains("if=pflash,format=raw,file=/v.fd"), "{args}");
        assert!(args.contains("-device ide-hd,drive=boot,bootindex=0"), "{args}");
        assert!(args.contains("virtio-blk-pci,drive=vd0"), "{args}");
    }

    #[test]
    fn usb_stick_keeps_its_boot_index_beside_disks() {
        let mut m = machine(Firmware::Bios, Attach::Usb);
        m.disks = vec![scratch("/d/scratch.img", false)];
        let args = m.args().join(" ");
        assert!(args.contains("usb-storage,bus=xhci.0,drive=stick,bootindex=1"), "{args}");
        assert!(!args.contains("ide-hd"), "{args}");
        assert!(args.ends_with("id=vd0,snapshot=on -device virtio-blk-pci,drive=vd0"), "{args}");
    }

    #[test]
    fn clock_base_and_com2_socket() {
        let mut m = machine(Firmware::Bios, Attach::Disk);
        m.rtc_base = Some("2030-01-02T03:04:05".into());
        m.com2 = Some(PathBuf::from("/t/com2.sock"));
        let args = m.args().join(" ");
        assert!(args.contains("-rtc base=2030-01-02T03:04:05"), "{args}");
        assert!(args.contains("-chardev socket,id=com2,path=/t/com2.sock,server=on,wait=off"), "{args}");
        assert!(args.contains("-device isa-serial,chardev=com2,iobase=0x2f8,irq=3"), "{args}");
        assert!(!machine(Firmware::Bios, Attach::Disk).args().join(" ").contains("-rtc"));
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        let firmware = Firmware::Uefi { code: "/o,c.fd".into(), vars: "/o,v.fd".into() };
        let mut m = machine(firmware, Attach::Disk);
        m.image = PathBuf::from("/x/a,b.img");
        m.disks = vec![scratch("/d/s,1.img", true)];
        let args = m.args();
        assert!(args.contains(&"if=pflash,format=raw,readonly=on,file=/o,,c.fd".to_string()), "{args:?}");
        assert!(args.contains(&"if=pflash,format=raw,file=/o,,v.fd".to_string()), "{args:?}");
        assert!(args.contains(&"if=none,id=boot,format=raw,file=/x/a,,b.img,snapshot=on".to_string()), "{args:?}");
        assert!(args.contains(&"file=/d/s,,1.img,format=raw,if=none,id=vd0".to_string()), "{args:?}");
    }

    #[test]
    fn command_line_is_what_run_starts() {
        let line = command_line(&machine(Firmware::Bios, Attach::Disk));
        assert!(line.starts_with("qemu-system-x86_64 -machine q35 "), "{line}");
        assert!(line.ends_with("snapshot=on -display none -monitor none -serial stdio"), "{line}");
    }

    #[test]
    fn guard_kills_a_process_that_would_outlive_the_run() {
        // `sleep` stands in for a hung QEMU; the run must end at the timeout, not after 30 s.
        let start = Instant::now();
        let child = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let pid = child.id();
        drop(Guard(child));
        assert!(start.elapsed() < Duration::from_secs(5));
        // Killed and reaped: no process (not even a zombie) is left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
