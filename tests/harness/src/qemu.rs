//! Running QEMU for Vessel: the machine's command line, a hard timeout, and the serial output
//! collected line by line with arrival times.
//!
//! Invariant: a started QEMU never outlives its [`Run`]: the guard kills and reaps it on drop,
//! including when the harness itself panics or returns early.

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
    /// As the first hard disk (AHCI on q35).
    Disk,
    /// As a USB mass-storage stick on an xHCI controller, as when booting from USB.
    Usb,
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
}

impl Machine {
    /// QEMU arguments for this machine, without the console options.
    pub fn args(&self) -> Vec<String> {
        // TCG: the nested KVM on these machines is unusable. `-cpu max` gives RDRAND, x2APIC etc.
        let mut args: Vec<String> =
            ["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "256M", "-smp", "1", "-no-reboot"]
                .map(String::from)
                .to_vec();
        if self.debug_exit {
            args.extend(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"].map(String::from));
        }
        if let Firmware::Uefi { code, vars } = &self.firmware {
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,readonly=on,file={}", code.display()));
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,file={}", vars.display()));
        }
        let image = self.image.display();
        let snapshot = if self.snapshot { ",snapshot=on" } else { "" };
        match self.attach {
            Attach::Disk => {
                args.push("-drive".into());
                args.push(format!("format=raw,file={image}{snapshot}"));
            }
            Attach::Usb => {
                args.extend(["-device", "qemu-xhci,id=xhci", "-drive"].map(String::from));
                args.push(format!("if=none,id=stick,format=raw,file={image}{snapshot}"));
                args.extend(["-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=1"].map(String::from));
            }
        }
        args
    }
}

/// Kills and reaps QEMU when dropped.
struct Guard(Child);

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

/// Boots `machine` with the serial port on a pipe and collects its output until QEMU exits, a
/// line satisfies `stop` (then QEMU is killed and the exit is [`Exit::Stopped`]), or `timeout`
/// passes ([`Exit::TimedOut`]).
pub fn run(machine: &Machine, timeout: Duration, stop: impl Fn(&str) -> bool) -> std::io::Result<Run> {
    let mut command = Command::new(QEMU);
    command
        .args(machine.args())
        .args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut guard = Guard(command.spawn()?);
    let stdout = guard.0.stdout.take().ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
    let mut stderr_pipe = guard.0.stderr.take().ok_or_else(|| std::io::Error::other("no stderr pipe"))?;
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Serial output is bytes; a broken UTF-8 sequence must not end the read.
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
            if tx.send((start.elapsed(), text)).is_err() {
                break;
            }
        }
    });
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
        Machine { image: PathBuf::from("/x/bios.img"), firmware, attach, debug_exit: true, snapshot: true }
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
