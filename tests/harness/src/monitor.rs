//! QEMU's human monitor (HMP) over a Unix socket: the command-line option that opens it, and the
//! byte stream it answers with, split into one response per command.
//!
//! The stream, as QEMU 7.2 writes it: a greeting banner (`QEMU 7.2.22 monitor - type 'help' for
//! more information\r\n`) then the prompt `(qemu) `; for each command line sent, readline's echo
//! of the command (the line redrawn after each character, with `ESC [ K` / `ESC [ D` escapes),
//! `\r\n`, the command's output lines, and the prompt again. A command that succeeds silently
//! (`sendkey`, `screendump`) has no output lines; errors are text (`invalid parameter: bogus`).
//!
//! Invariants:
//! - One command is in flight at a time, and a response is taken only up to the first prompt that
//!   starts a line, so responses pair with commands in order. Each response's echo must end with
//!   the command sent; if it does not, or a read fails or times out half-way, the connection is
//!   marked out of step and refuses every later command instead of pairing a late answer with the
//!   wrong command.
//! - A command is one line: embedded CR/LF (which would smuggle a second command) are refused.
//! - No read blocks past the deadline it is given.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::qemu::drive_file;

/// The prompt that ends every response.
pub const PROMPT: &[u8] = b"(qemu) ";

/// Longest command accepted (QEMU's readline buffer is 4096 bytes).
const MAX_COMMAND: usize = 4000;

/// How long a connection attempt waits between tries while QEMU creates the socket.
const CONNECT_RETRY: Duration = Duration::from_millis(5);

/// QEMU options for a monitor listening on the Unix socket `path`, without waiting for a client
/// (`wait=off`: the guest starts at once; the harness connects when the socket appears).
pub fn args(path: &Path) -> [String; 2] {
    ["-monitor".to_string(), format!("unix:{},server=on,wait=off", drive_file(path))]
}

/// Splits the first complete frame (everything before a prompt at the start of a line) off `pending`,
/// dropping the prompt; `None` while no prompt has arrived.
pub fn take_frame(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let at = (0..pending.len()).find(|&i| pending[i..].starts_with(PROMPT) && (i == 0 || pending[i - 1] == b'\n'))?;
    let frame = pending[..at].to_vec();
    pending.drain(..at + PROMPT.len());
    Some(frame)
}

/// A frame as text: terminal escapes (`ESC [ ... final`, or `ESC` and one byte) removed, invalid
/// UTF-8 replaced, lines ended by `\n` alone.
pub fn clean(frame: &[u8]) -> String {
    let mut out = Vec::with_capacity(frame.len());
    let mut bytes = frame.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            0x1b => {
                if bytes.next() == Some(b'[') {
                    // Parameters and intermediates up to the final byte (0x40..=0x7e).
                    for c in bytes.by_ref() {
                        if (0x40..=0x7e).contains(&c) {
                            break;
                        }
                    }
                }
            }
            b'\r' => {}
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks the frame before the first prompt is QEMU's monitor banner; returns the banner.
pub fn parse_greeting(frame: &[u8]) -> Result<String, String> {
    let text = clean(frame);
    let banner = text.trim();
    if banner.starts_with("QEMU ") && banner.contains("monitor") {
        Ok(banner.to_string())
    } else {
        Err(format!("not a QEMU monitor greeting: {banner:?}"))
    }
}

/// The output of `command` from its frame: the echo line (which must end with the command) dropped,
/// surrounding blank space trimmed. An empty string means the command printed nothing.
pub fn parse_response(frame: &[u8], command: &str) -> Result<String, String> {
    let text = clean(frame);
    let (echo, output) = text.split_once('\n').ok_or_else(|| format!("no end of the echo line in {text:?}"))?;
    if !echo.ends_with(command.trim()) {
        return Err(format!("monitor out of step: sent {command:?}, the response echoes {echo:?}"));
    }
    Ok(output.trim().to_string())
}

/// Refuses what is not a single monitor command line.
pub fn check_command(command: &str) -> Result<(), String> {
    if command.trim().is_empty() {
        return Err("empty monitor command".into());
    }
    if command.len() > MAX_COMMAND {
        return Err(format!("monitor command of {} bytes (at most {MAX_COMMAND})", command.len()));
    }
    if command.chars().any(char::is_control) {
        return Err(format!("monitor command {command:?} holds a control character (one line only)"));
    }
    Ok(())
}

/// A connected monitor.
#[derive(Debug)]
pub struct Monitor {
    stream: UnixStream,
    /// Bytes read after the last frame taken.
    pending: Vec<u8>,
    /// Why the connection can no longer pair responses with commands, once it cannot.
    broken: Option<String>,
    /// The banner QEMU greeted with.
    banner: String,
}

impl Monitor {
    /// Connects to the socket at `path`, retrying while QEMU has not created it yet and `alive()`
    /// holds, until `deadline`; then reads the greeting.
    pub fn connect(path: &Path, deadline: Instant, alive: impl Fn() -> bool) -> io::Result<Monitor> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("monitor {}: {e}", path.display())));
                }
                Err(e) if !alive() => {
                    return Err(io::Error::other(format!(
                        "QEMU exited before its monitor {} opened: {e}",
                        path.display()
                    )));
                }
                Err(_) => std::thread::sleep(CONNECT_RETRY),
            }
        };
        let mut monitor = Monitor { stream, pending: Vec::new(), broken: None, banner: String::new() };
        let frame = monitor.read_frame(deadline)?;
        monitor.banner = parse_greeting(&frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(monitor)
    }

    /// The greeting banner (`QEMU 7.2.22 monitor - ...`).
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// Sends `command` and returns its output (empty if it printed nothing), reading until the
    /// next prompt or `deadline`.
    pub fn command(&mut self, command: &str, deadline: Instant) -> io::Result<String> {
        if let Some(why) = &self.broken {
            return Err(io::Error::other(format!("monitor unusable: {why}")));
        }
        check_command(command).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let result = self.exchange(command, deadline);
        if let Err(e) = &result {
            self.broken = Some(format!("{command:?} failed: {e}"));
        }
        result
    }

    fn exchange(&mut self, command: &str, deadline: Instant) -> io::Result<String> {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write_all(format!("{command}\n").as_bytes())?;
        let frame = self.read_frame(deadline)?;
        parse_response(&frame, command).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Reads until a whole frame is pending, the socket closes, or `deadline` passes.
    fn read_frame(&mut self, deadline: Instant) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = take_frame(&mut self.pending) {
                return Ok(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no monitor prompt in time; got {:?}", clean(&self.pending)),
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("monitor closed (QEMU exited); got {:?}", clean(&self.pending)),
                    ));
                }
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What QEMU 7.2 sent for `sendkey a` (recorded from a real monitor).
    const SENDKEY_A: &[u8] = b"s\x1b[K\x1b[Dse\x1b[K\x1b[D\x1b[Dsen\x1b[K\x1b[D\x1b[D\x1b[Dsend\x1b[K\x1b[D\x1b[D\x1b[D\x1b[Dsendk\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dsendke\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dsendkey\x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dsendkey \x1b[K\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[Dsendkey a\x1b[K\r\n(qemu) ";
    const GREETING: &[u8] = b"QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ";
    const BOGUS: &[u8] = b"sendkey bogus\x1b[K\r\ninvalid parameter: bogus\r\n(qemu) ";
    const INFO: &[u8] = b"info version\x1b[K\r\n7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3\r\n(qemu) ";

    #[test]
    fn monitor_args_listen_without_waiting() {
        let args = args(Path::new("/tmp/d/monitor.sock"));
        assert_eq!(args, ["-monitor", "unix:/tmp/d/monitor.sock,server=on,wait=off"]);
        // A comma in the path is doubled, as QEMU's option parser wants.
        assert_eq!(args_of("/tmp/a,b/m.sock"), "unix:/tmp/a,,b/m.sock,server=on,wait=off");
    }

    fn args_of(path: &str) -> String {
        let [_, value] = args(Path::new(path));
        value
    }

    #[test]
    fn frames_split_at_prompts_fed_byte_by_byte() {
        let stream: Vec<u8> = [GREETING, SENDKEY_A, BOGUS, INFO].concat();
        let mut pending = Vec::new();
        let mut frames = Vec::new();
        for &b in &stream {
            pending.push(b);
            while let Some(frame) = take_frame(&mut pending) {
                frames.push(frame);
            }
        }
        assert!(pending.is_empty());
        assert_eq!(frames.len(), 4);
        assert_eq!(parse_greeting(&frames[0]), Ok("QEMU 7.2.22 monitor - type 'help' for more information".into()));
        assert_eq!(parse_response(&frames[1], "sendkey a"), Ok(String::new()));
        assert_eq!(parse_response(&frames[2], "sendkey bogus"), Ok("invalid parameter: bogus".into()));
        assert_eq!(parse_response(&frames[3], "info version"), Ok("7.2.22Debian 1:7.2+dfsg-7+deb12u18+b3".into()));
    }

    #[test]
    fn no_frame_before_the_prompt_and_none_mid_line() {
        let mut pending = b"info version\x1b[K\r\n7.2 (qemu) is not a prompt\r\n(qem".to_vec();
        assert_eq!(take_frame(&mut pending), None);
        pending.extend_from_slice(b"u) ");
        let frame = take_frame(&mut pending).expect("prompt at a line start");
        assert_eq!(parse_response(&frame, "info version"), Ok("7.2 (qemu) is not a prompt".into()));
        // Two responses in one read are two frames.
        let mut pending = [BOGUS, INFO].concat();
        assert!(take_frame(&mut pending).is_some());
        assert!(take_frame(&mut pending).is_some());
        assert_eq!(take_frame(&mut pending), None);
    }

    #[test]
    fn multi_line_output_keeps_its_lines() {
        let frame = b"info status\x1b[K\r\nline one\r\nline two\r\n";
        assert_eq!(parse_response(frame, "info status"), Ok("line one\nline two".into()));
    }

    #[test]
    fn responses_out_of_step_or_not_from_qemu_are_refused() {
        let mut pending = SENDKEY_A.to_vec();
        let frame = take_frame(&mut pending).expect("frame");
        let err = parse_response(&frame, "screendump /tmp/x.ppm").expect_err("wrong echo");
        assert!(err.contains("out of step"), "{err}");
        assert!(parse_response(b"no newline", "no newline").is_err());
        assert!(parse_greeting(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_greeting(b"").is_err());
    }

    #[test]
    fn escapes_are_stripped() {
        assert_eq!(clean(b"a\x1b[Kb\x1b[12;3Hc\x1b7d\r\n"), "abcd\n");
        assert_eq!(clean(b"\x1b["), "");
        assert_eq!(clean(b"\x1b"), "");
        assert_eq!(clean(b"\xff ok"), "\u{fffd} ok");
    }

    #[test]
    fn commands_are_single_lines() {
        assert!(check_command("sendkey ctrl-alt-delete").is_ok());
        assert!(check_command("").is_err());
        assert!(check_command("   ").is_err());
        assert!(check_command("sendkey a\nquit").is_err());
        assert!(check_command("sendkey a\r").is_err());
        assert!(check_command(&"x".repeat(MAX_COMMAND + 1)).is_err());
    }
}
