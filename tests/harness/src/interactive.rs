//! Interactive QEMU runs for device tests: the machine of [`crate::qemu`], started with its serial
//! port on stdin/stdout (bytes written reach the guest's COM1 receiver, lines read come from its
//! transmitter), the human monitor on a Unix socket (`sendkey`, `screendump`, any command), and
//! `-display none`, which keeps the emulated VGA adapter and its framebuffer, so screendumps show
//! what the guest drew without opening a window.
//!
//! Invariants:
//! - QEMU never outlives its [`Interactive`]: a watchdog thread owns the process, kills it at the
//!   hard deadline given to [`Interactive::start`] whatever the test is doing, and kills and
//!   reaps it when the `Interactive` is finished or dropped (including on a panic).
//! - No call blocks past the hard deadline: serial waits and monitor reads are bounded by it, and
//!   a write to the serial input fails once the watchdog has killed QEMU.
//! - The monitor socket and screendump files live in a directory of their own, removed when the
//!   `Interactive` ends (after QEMU is gone).
//! - Serial lines are collected exactly as [`crate::qemu::run`] collects them, and
//!   [`Interactive::finish`] returns the same [`Run`], so `verdict::parse(&run.text())` applies.

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::monitor::{self, Monitor};
use crate::ppm::{self, Image};
use crate::qemu::{self, Guard, Machine, QEMU, Run};
use crate::verdict::Exit;

/// How often the watchdog looks at QEMU.
const POLL: Duration = Duration::from_millis(10);
/// Longest wait for one monitor command (bounded by the hard deadline too).
const MONITOR_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for QEMU to open its monitor after starting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long QEMU may take to exit after its output closed.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// Longest wait for the last serial lines once QEMU is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest Unix socket path (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The console options of an interactive run, after the machine's arguments: no window but a
/// framebuffer, the serial port on stdio, the monitor on `socket`.
pub fn interactive_args(machine: &Machine, socket: &Path) -> Vec<String> {
    let mut args = machine.args();
    args.extend(["-display", "none", "-serial", "stdio"].map(String::from));
    args.extend(monitor::args(socket));
    args
}

/// A private directory for the socket and screendumps, removed on drop.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh directory under the temporary directory (or `/tmp` if that path is unusable in a
    /// monitor command or too long for a socket).
    fn create() -> io::Result<ScratchDir> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir();
        let plain = |p: &Path| {
            p.to_str()
                .is_some_and(|s| s.len() < 64 && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\''))
        };
        let base = if plain(&base) { base } else { PathBuf::from("/tmp") };
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("vessel-qemu-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(ScratchDir(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 10_000 => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            }
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How QEMU ended, as the watchdog saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// It exited by itself with this status (`None`: killed by a signal not ours).
    Exited(Option<i32>),
    /// The watchdog killed it (asked to, or at the hard deadline).
    Killed { at_deadline: bool },
}

/// Owns QEMU on a thread: reaps it when it exits, kills it at the deadline or when asked.
#[derive(Debug)]
struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<Ended>>,
    running: Arc<AtomicBool>,
}

impl Watchdog {
    fn spawn(child: Child, deadline: Instant) -> Watchdog {
        let (stop, stop_rx) = mpsc::channel::<()>();
        let running = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&running);
        let thread = std::thread::spawn(move || {
            // Inside a guard, so even a panic here kills and reaps QEMU.
            let mut guard = Guard(child);
            let at_deadline = loop {
                match guard.0.try_wait() {
                    Ok(Some(status)) => {
                        flag.store(false, Ordering::SeqCst);
                        return Ended::Exited(status.code());
                    }
                    Ok(None) => {}
                    Err(_) => break false,
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break true;
                }
                match stop_rx.recv_timeout(left.min(POLL)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break false,
                }
            };
            let _ = guard.0.kill();
            let status = guard.0.wait();
            flag.store(false, Ordering::SeqCst);
            match status {
                // It exited by itself just before the kill landed.
                Ok(status) if status.code().is_some() => Ended::Exited(status.code()),
                _ => Ended::Killed { at_deadline },
            }
        });
        Watchdog { stop: Some(stop), thread: Some(thread), running }
    }

    fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Kills QEMU if it still runs, waits until it is reaped, and says how it ended.
    fn end(mut self) -> Ended {
        self.end_mut()
    }

    fn end_mut(&mut self) -> Ended {
        drop(self.stop.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(ended)) => ended,
            _ => Ended::Killed { at_deadline: false },
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.end_mut();
    }
}

/// Serial lines as they arrive, with a read position for [`Interactive::wait_for_line`].
#[derive(Debug)]
struct Serial {
    rx: mpsc::Receiver<(Duration, String)>,
    lines: RefCell<Vec<(Duration, String)>>,
    /// Lines before this index were consumed by a match.
    cursor: Cell<usize>,
    /// The output closed (QEMU exited).
    closed: Cell<bool>,
}

impl Serial {
    /// Takes every line already received, without waiting.
    fn drain(&self) {
        loop {
            match self.rx.try_recv() {
                Ok(line) => self.lines.borrow_mut().push(line),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.closed.set(true);
                    break;
                }
            }
        }
    }

    /// Waits until `until` for one more line; false if none came (timeout or closed output).
    fn receive(&self, until: Instant) -> bool {
        if self.closed.get() {
            return false;
        }
        match self.rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                self.lines.borrow_mut().push(line);
                true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.closed.set(true);
                false
            }
        }
    }

    /// The last `n` lines, for error messages.
    fn tail(&self, n: usize) -> String {
        let lines = self.lines.borrow();
        let tail: Vec<&str> = lines[lines.len().saturating_sub(n)..].iter().map(|(_, l)| l.as_str()).collect();
        tail.join("\n")
    }
}

/// A running QEMU with its serial port, monitor and framebuffer reachable. Ends with
/// [`Interactive::finish`] or [`Interactive::stop`], or by being dropped (QEMU killed).
#[derive(Debug)]
pub struct Interactive {
    // Field order is drop order: QEMU is killed first, the scratch directory removed last.
    watchdog: Watchdog,
    stdin: ChildStdin,
    monitor: RefCell<Monitor>,
    serial: Serial,
    stderr: JoinHandle<String>,
    start: Instant,
    deadline: Instant,
    pid: u32,
    command_line: String,
    screendumps: Cell<u32>,
    dir: ScratchDir,
}

impl Interactive {
    /// Boots `machine` with the monitor, serial input and framebuffer reachable. QEMU is killed
    /// `timeout` after starting whatever happens (the hard deadline of every call).
    pub fn start(machine: &Machine, timeout: Duration) -> io::Result<Interactive> {
        let dir = ScratchDir::create()?;
        let socket = dir.0.join("monitor.sock");
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("socket path too long: {}", socket.display()),
            ));
        }
        let args = interactive_args(machine, &socket);
        let command_line = std::iter::once(QEMU.to_string()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ");
        let mut command = Command::new(QEMU);
        command.args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let start = Instant::now();
        let deadline = start + timeout;
        let mut child = command.spawn().map_err(|e| io::Error::new(e.kind(), format!("{QEMU}: {e}")))?;
        let pid = child.id();
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        // From here on the watchdog owns QEMU: every early return below kills it.
        let watchdog = Watchdog::spawn(child, deadline);
        let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
            return Err(io::Error::other("QEMU started without its pipes"));
        };
        let stderr = qemu::read_all(stderr);
        let serial = Serial {
            rx: qemu::read_lines(stdout, start),
            lines: RefCell::new(Vec::new()),
            cursor: Cell::new(0),
            closed: Cell::new(false),
        };
        let monitor = match Monitor::connect(&socket, deadline.min(start + CONNECT_TIMEOUT), || watchdog.running()) {
            Ok(monitor) => monitor,
            Err(e) => {
                let ended = watchdog.end();
                let stderr = stderr.join().unwrap_or_default();
                return Err(io::Error::new(e.kind(), format!("{e} (QEMU {ended:?}; stderr: {})", stderr.trim())));
            }
        };
        Ok(Interactive {
            watchdog,
            stdin,
            monitor: RefCell::new(monitor),
            serial,
            stderr,
            start,
            deadline,
            pid,
            command_line,
            screendumps: Cell::new(0),
            dir,
        })
    }

    /// QEMU's command line, for logs.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether QEMU is still running.
    pub fn running(&self) -> bool {
        self.watchdog.running()
    }

    /// Waits for a serial line containing `pattern` and returns it. Expect-style: only lines after
    /// the previous match are searched (and a match consumes the lines up to it), so the answer to
    /// an input sent after one wait is never confused with an older line. Fails after `timeout`
    /// (or the hard deadline), or when QEMU's output ends first.
    pub fn wait_for_line(&self, pattern: &str, timeout: Duration) -> io::Result<String> {
        self.wait_for(pattern, timeout).map(|(_, line)| line)
    }

    /// [`Interactive::wait_for_line`] with the line's arrival time (since QEMU started).
    pub fn wait_for(&self, pattern: &str, timeout: Duration) -> io::Result<(Duration, String)> {
        let until = (Instant::now() + timeout).min(self.deadline);
        self.serial.drain();
        loop {
            {
                let lines = self.serial.lines.borrow();
                let from = self.serial.cursor.get();
                if let Some(i) = lines[from..].iter().position(|(_, l)| l.contains(pattern)) {
                    self.serial.cursor.set(from + i + 1);
                    return Ok(lines[from + i].clone());
                }
            }
            if !self.serial.receive(until) {
                let why = if self.serial.closed.get() {
                    "QEMU's serial output ended"
                } else if until >= self.deadline {
                    "the hard deadline passed"
                } else {
                    "timed out"
                };
                let message =
                    format!("no serial line containing {pattern:?}: {why}; last lines:\n{}", self.serial.tail(20));
                let kind =
                    if self.serial.closed.get() { io::ErrorKind::UnexpectedEof } else { io::ErrorKind::TimedOut };
                return Err(io::Error::new(kind, message));
            }
        }
    }

    /// Every serial line so far (not only those after the last match), with arrival times.
    pub fn lines(&self) -> Vec<(Duration, String)> {
        self.serial.drain();
        self.serial.lines.borrow().clone()
    }

    /// Every serial line so far as one text (for logs).
    pub fn text(&self) -> String {
        self.lines().iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// Writes `bytes` to the guest's COM1 receiver (QEMU's stdin).
    pub fn send_serial(&self, bytes: &[u8]) -> io::Result<()> {
        let mut stdin = &self.stdin;
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    /// Runs one monitor command and returns what it printed (empty for silent success). HMP
    /// reports errors as text, so callers that expect silence check for it
    /// ([`Interactive::sendkey`] and [`Interactive::screendump`] do).
    pub fn monitor(&self, command: &str) -> io::Result<String> {
        let until = (Instant::now() + MONITOR_TIMEOUT).min(self.deadline);
        self.monitor.borrow_mut().command(command, until)
    }

    /// Runs a monitor command that prints nothing on success; any output is the error.
    fn monitor_silent(&self, command: &str) -> io::Result<()> {
        let output = self.monitor(command)?;
        if output.is_empty() { Ok(()) } else { Err(io::Error::other(format!("{command}: {output}"))) }
    }

    /// Presses and releases a key combination, in QEMU's names: `a`, `shift-a`, `ret`, `ctrl-c`,
    /// `kp_enter`, ... (`sendkey` in QEMU's monitor documentation).
    pub fn sendkey(&self, keys: &str) -> io::Result<()> {
        if keys.is_empty() || keys.contains(char::is_whitespace) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not one key combination: {keys:?}")));
        }
        self.monitor_silent(&format!("sendkey {keys}"))
    }

    /// Captures the framebuffer as the display adapter shows it.
    pub fn screendump(&self) -> io::Result<Image> {
        let n = self.screendumps.get();
        self.screendumps.set(n + 1);
        let path = self.dir.0.join(format!("screen-{n}.ppm"));
        let name = path.to_str().ok_or_else(|| io::Error::other("screendump path is not UTF-8"))?;
        self.monitor_silent(&format!("screendump {name}"))?;
        let bytes = std::fs::read(&path)?;
        let _ = std::fs::remove_file(&path);
        ppm::parse(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("screendump: {e}")))
    }

    /// Waits up to `timeout` (bounded by the hard deadline) for QEMU to exit by itself, kills it if
    /// it has not, and returns the run: [`Exit::TimedOut`] if it had to be killed.
    pub fn finish(self, timeout: Duration) -> Run {
        self.end(timeout, Exit::TimedOut)
    }

    /// Kills QEMU now and returns the run, with [`Exit::Stopped`] (unless it had already exited).
    pub fn stop(self) -> Run {
        self.end(Duration::ZERO, Exit::Stopped)
    }

    fn end(self, timeout: Duration, killed: Exit) -> Run {
        let Interactive { watchdog, stdin, monitor, serial, stderr, deadline, dir, .. } = self;
        let until = (Instant::now() + timeout).min(deadline);
        // QEMU exiting closes its output: collect lines until then or until the wait is over.
        while serial.receive(until) {}
        // Its output closes just before it exits: a moment for the exit, so a guest that
        // switched off is not taken for one that hung.
        if !timeout.is_zero() {
            let grace = Instant::now() + EXIT_GRACE;
            while watchdog.running() && Instant::now() < grace {
                std::thread::sleep(POLL);
            }
        }
        let ended = watchdog.end();
        // Dead now: its output closes, and the last lines come in at once.
        let drain_until = Instant::now() + DRAIN_TIMEOUT;
        while serial.receive(drain_until) {}
        drop((stdin, monitor));
        let exit = match ended {
            Ended::Exited(code) => Exit::from_status(code),
            Ended::Killed { at_deadline: true } => Exit::TimedOut,
            Ended::Killed { at_deadline: false } => killed,
        };
        let stderr = stderr.join().unwrap_or_default();
        drop(dir);
        Run { lines: serial.lines.into_inner(), exit, stderr }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::{Attach, Firmware, MachineType};
    use crate::verdict;

    /// A boot sector (loaded at 0x7c00 by SeaBIOS) that prints a ready line on COM1 and the screen,
    /// echoes every byte received on COM1, types every key pressed (Enter as `\n`) on COM1, and on
    /// receiving `!` writes 0x10 to `isa-debug-exit` (QEMU status 33). Assembled from:
    ///
    /// ```text
    ///     cli; xor ax,ax; mov ds,ax; mov ss,ax; mov sp,0x7c00; sti; cld
    ///     ; COM1: 115200 8N1, FIFO on
    ///     out 0x3f9,0; out 0x3fb,0x80; out 0x3f8,1; out 0x3f9,0; out 0x3fb,3; out 0x3fa,0xc7
    ///     mov si,msg
    /// print: lodsb; test al,al; jz poll; call putc; jmp print
    /// poll:  in al,0x3fd; test al,1; jz key
    ///        in al,0x3f8; cmp al,'!'; jne echo; mov al,0x10; out 0xf4,al
    /// echo:  call putc
    /// key:   mov ah,1; int 0x16; jz poll           ; a key waiting?
    ///        xor ah,ah; int 0x16; cmp al,13; jne typed; mov al,10
    /// typed: call putc; jmp poll
    /// putc:  mov cl,al
    /// wait:  in al,0x3fd; test al,0x20; jz wait    ; transmitter empty
    ///        mov al,cl; out 0x3f8,al
    ///        mov ah,0x0e; mov bx,7; int 0x10; ret  ; and on the screen
    /// msg:   "harness: boot sector ready\r\n", 0
    /// ```
    const ECHO_SECTOR: [u8; 158] = [
        0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xfb, 0xfc, 0xba, 0xf9, 0x03, 0x30, //
        0xc0, 0xee, 0xba, 0xfb, 0x03, 0xb0, 0x80, 0xee, 0xba, 0xf8, 0x03, 0xb0, 0x01, 0xee, 0xba, 0xf9, //
        0x03, 0x30, 0xc0, 0xee, 0xba, 0xfb, 0x03, 0xb0, 0x03, 0xee, 0xba, 0xfa, 0x03, 0xb0, 0xc7, 0xee, //
        0xbe, 0x81, 0x7c, 0xac, 0x84, 0xc0, 0x74, 0x05, 0xe8, 0x2e, 0x00, 0xeb, 0xf6, 0xba, 0xfd, 0x03, //
        0xec, 0xa8, 0x01, 0x74, 0x0f, 0xba, 0xf8, 0x03, 0xec, 0x3c, 0x21, 0x75, 0x04, 0xb0, 0x10, 0xe6, //
        0xf4, 0xe8, 0x15, 0x00, 0xb4, 0x01, 0xcd, 0x16, 0x74, 0xe3, 0x30, 0xe4, 0xcd, 0x16, 0x3c, 0x0d, //
        0x75, 0x02, 0xb0, 0x0a, 0xe8, 0x02, 0x00, 0xeb, 0xd4, 0x88, 0xc1, 0xba, 0xfd, 0x03, 0xec, 0xa8, //
        0x20, 0x74, 0xfb, 0xba, 0xf8, 0x03, 0x88, 0xc8, 0xee, 0xb4, 0x0e, 0xbb, 0x07, 0x00, 0xcd, 0x10, //
        0xc3, b'h', b'a', b'r', b'n', b'e', b's', b's', b':', b' ', b'b', b'o', b'o', b't', b' ', b's', //
        b'e', b'c', b't', b'o', b'r', b' ', b'r', b'e', b'a', b'd', b'y', b'\r', b'\n', 0x00,
    ];

    /// Writes a 1 MiB disk (SeaBIOS refuses much smaller ones) booting [`ECHO_SECTOR`].
    fn echo_disk(path: &Path) {
        let mut disk = vec![0u8; 1 << 20];
        disk[..ECHO_SECTOR.len()].copy_from_slice(&ECHO_SECTOR);
        disk[510..512].copy_from_slice(&[0x55, 0xaa]);
        std::fs::write(path, disk).expect("write the echo disk");
    }

    fn echo_machine(dir: &ScratchDir) -> Machine {
        let image = dir.0.join("echo.img");
        echo_disk(&image);
        Machine {
            image,
            firmware: Firmware::Bios,
            attach: Attach::Disk,
            debug_exit: true,
            snapshot: true,
            machine_type: MachineType::Q35,
            rtc_base: None,
            com2: None,
            memory_mib: 256,
            disks: Vec::new(),
        }
    }

    /// Whether QEMU is installed; says so when it is not.
    fn have_qemu() -> bool {
        let found = Command::new(QEMU).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
        if !found {
            eprintln!("skipped: {QEMU} is not installed");
        }
        found
    }

    #[test]
    fn interactive_args_open_monitor_serial_and_a_headless_display() {
        let machine = Machine {
            image: "/x/bios.img".into(),
            firmware: Firmware::Bios,
            attach: Attach::Disk,
            debug_exit: false,
            snapshot: true,
            machine_type: MachineType::Q35,
            rtc_base: None,
            com2: None,
            memory_mib: 256,
            disks: Vec::new(),
        };
        let line = interactive_args(&machine, Path::new("/tmp/d/monitor.sock")).join(" ");
        assert!(line.starts_with("-machine q35 "), "{line}");
        assert!(
            line.ends_with(
                "snapshot=on -display none -serial stdio -monitor unix:/tmp/d/monitor.sock,server=on,wait=off"
            ),
            "{line}"
        );
        assert!(!line.contains("-monitor none"), "{line}");
    }

    #[test]
    fn scratch_dirs_are_fresh_and_removed() {
        let (a, b) = (ScratchDir::create().expect("dir"), ScratchDir::create().expect("dir"));
        assert_ne!(a.0, b.0);
        let path = a.0.clone();
        std::fs::write(path.join("f"), b"x").expect("write");
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn watchdog_kills_at_the_deadline_and_reports_an_exit() {
        let child = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let pid = child.id();
        let start = Instant::now();
        let watchdog = Watchdog::spawn(child, Instant::now() + Duration::from_millis(200));
        while watchdog.running() {
            assert!(start.elapsed() < Duration::from_secs(5), "not killed at the deadline");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(watchdog.end(), Ended::Killed { at_deadline: true });
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        let child = Command::new("sh").args(["-c", "exit 7"]).spawn().expect("sh runs");
        let watchdog = Watchdog::spawn(child, Instant::now() + Duration::from_secs(30));
        while watchdog.running() {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(watchdog.end(), Ended::Exited(Some(7)));
    }

    /// The whole path against a real QEMU: serial in and out, keys reaching the guest, a
    /// screendump of its text screen, monitor errors, and an exit through `isa-debug-exit`.
    #[test]
    fn echo_guest_round_trip() {
        if !have_qemu() {
            return;
        }
        let dir = ScratchDir::create().expect("scratch dir");
        let qemu = Interactive::start(&echo_machine(&dir), Duration::from_secs(60)).expect("QEMU starts");
        assert!(qemu.monitor.borrow().banner().starts_with("QEMU "));
        let socket_dir = qemu.dir.0.clone();
        assert!(socket_dir.join("monitor.sock").exists());
        qemu.wait_for_line("boot sector ready", Duration::from_secs(30)).expect("the guest boots");

        qemu.send_serial(b"ping\n").expect("serial write");
        assert_eq!(qemu.wait_for_line("ping", Duration::from_secs(10)).expect("echo"), "ping");

        for key in ["shift-h", "i", "ret"] {
            qemu.sendkey(key).expect("sendkey");
        }
        assert_eq!(qemu.wait_for_line("Hi", Duration::from_secs(10)).expect("typed"), "Hi");
        // Expect-style: the consumed "ping" line is not found again.
        let err = qemu.wait_for_line("ping", Duration::from_millis(200)).expect_err("already consumed");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");

        let err = qemu.sendkey("bogus").expect_err("no such key");
        assert!(err.to_string().contains("invalid parameter"), "{err}");
        assert!(qemu.monitor("info version").expect("info version").starts_with(char::is_numeric));

        let started = Instant::now();
        let screen = qemu.screendump().expect("screendump");
        eprintln!("screendump {}x{} in {:?}", screen.width, screen.height, started.elapsed());
        // SeaBIOS leaves VGA text mode: 80x25 cells of 9x16 pixels.
        assert_eq!((screen.width, screen.height), (720, 400));
        let background = screen.dominant().expect("pixels");
        let ink = screen.count_differing(screen.bounds(), background);
        assert!(ink > 500, "{ink} ink pixels: no text on the screen");
        assert!(std::fs::read_dir(&socket_dir).expect("dir").count() == 1, "the screendump file is removed");

        qemu.send_serial(b"!").expect("serial write");
        let run = qemu.finish(Duration::from_secs(10));
        assert_eq!(run.exit, Exit::Success, "{}", run.stderr);
        assert_eq!(
            run.lines.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
            ["harness: boot sector ready", "ping", "Hi"]
        );
        assert_eq!(verdict::parse(&run.text()).summary, None);
        assert!(!socket_dir.exists(), "the socket directory is removed");
    }

    #[test]
    fn the_hard_deadline_holds_and_drop_kills() {
        if !have_qemu() {
            return;
        }
        let dir = ScratchDir::create().expect("scratch dir");
        let machine = echo_machine(&dir);
        let started = Instant::now();
        let qemu = Interactive::start(&machine, Duration::from_secs(3)).expect("QEMU starts");
        let err = qemu.wait_for_line("never printed", Duration::from_secs(60)).expect_err("nothing matches");
        assert!(started.elapsed() < Duration::from_secs(10), "waited past the hard deadline: {err}");
        assert!(qemu.monitor("info version").is_err(), "QEMU is dead after the deadline");
        let run = qemu.finish(Duration::from_secs(60));
        assert_eq!(run.exit, Exit::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));

        let qemu = Interactive::start(&machine, Duration::from_secs(60)).expect("QEMU starts");
        let (pid, socket_dir) = (qemu.pid(), qemu.dir.0.clone());
        qemu.wait_for_line("boot sector ready", Duration::from_secs(30)).expect("the guest boots");
        drop(qemu);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "QEMU outlived its Interactive");
        assert!(!socket_dir.exists());
    }

    #[test]
    fn a_bad_command_line_fails_start_with_qemu_stderr() {
        if !have_qemu() {
            return;
        }
        let dir = ScratchDir::create().expect("scratch dir");
        let mut machine = echo_machine(&dir);
        machine.image = dir.0.join("missing.img");
        let started = Instant::now();
        let err = Interactive::start(&machine, Duration::from_secs(60)).expect_err("no such image");
        assert!(err.to_string().contains("missing.img"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "waited for a monitor that never came");
    }
}
