//! Standard streams and `print!`: a program's input and output go where the environment says
//! (`STDIN`, `STDOUT`, `STDERR`, set by the shell that started it), else output goes to the
//! kernel's log and input is empty. Each `print!` is formatted into one buffer and written with
//! one call, so lines from different processes do not interleave mid-line.
//!
//! A stream's value in the environment is `dev:<handle>` (a session of the `device` server
//! opened by this container: a terminal) or `file:<handle>` (a `vfs` handle of this
//! container: a file or a pipe), the handle in hex with `0x`, or `tty:<device>`, a terminal the
//! process opens for itself. Handles are the container's, so every process of the container
//! may use them; a program started in a child container gets `tty:` streams instead.

use alloc::format;
use alloc::string::String;
use core::fmt::{self, Write};

use vessel_abi::Error;
use vessel_protocol::Refusal;

/// Where a standard stream goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The kernel's log (output), nothing (input).
    Log,
    /// A session of the `device` server: a terminal (serial port or console).
    Device(u64),
    /// A `vfs` handle: a file or a pipe.
    File(u64),
}

impl Stream {
    /// A stream from its environment value; `None` if it is not one.
    pub fn parse(value: &str) -> Option<Stream> {
        let (kind, handle) = value.split_once(':')?;
        let handle = u64::from_str_radix(handle.strip_prefix("0x")?, 16).ok()?;
        match kind {
            "dev" => Some(Stream::Device(handle)),
            "file" => Some(Stream::File(handle)),
            _ => None,
        }
    }

    /// Its environment value (`dev:0x1f`); empty for the log.
    pub fn env_value(self) -> String {
        match self {
            Stream::Log => String::new(),
            Stream::Device(h) => format!("dev:{h:#x}"),
            Stream::File(h) => format!("file:{h:#x}"),
        }
    }

    /// Writes all of `data`, waiting while a terminal's buffer is full.
    pub fn write_all(self, mut data: &[u8]) -> Result<(), Refusal> {
        match self {
            Stream::Log => crate::sys::debug_write(data).map(|_| ()).map_err(|e| Refusal::new(e, "the kernel log")),
            Stream::Device(handle) => {
                let client = crate::device::Devices::get()?.client();
                let mut idle = 0;
                while !data.is_empty() {
                    let chunk = &data[..data.len().min(vessel_device_protocol::MAX_READ)];
                    let n = client.write(handle, chunk)?.count as usize;
                    data = &data[n.min(data.len())..];
                    // A full buffer drains at the line's speed: wait a little, not forever.
                    idle = if n == 0 { idle + 1 } else { 0 };
                    if idle > 0 {
                        if idle > 5000 {
                            return Err(Refusal::new(Error::TimedOut, "the terminal takes no output"));
                        }
                        crate::time::sleep_ms(1);
                    }
                }
                Ok(())
            }
            Stream::File(handle) => {
                let client = crate::fs::client()?;
                while !data.is_empty() {
                    let chunk = &data[..data.len().min(vessel_vfs_protocol::MAX_IO)];
                    let n = client.write(handle, chunk)?.count as usize;
                    if n == 0 {
                        return Err(Refusal::new(Error::NoSpace, "the file took no bytes"));
                    }
                    data = &data[n.min(data.len())..];
                }
                Ok(())
            }
        }
    }

    /// Reads some bytes into `buf` (waiting for the first); 0 at the end of the input. A
    /// terminal is read a line at a time, as a Unix terminal in canonical mode gives it: typed
    /// characters are echoed, Backspace and Ctrl-U edit the line, Enter ends it (as `\n`),
    /// Ctrl-D on an empty line is the end of the input.
    pub fn read(self, buf: &mut [u8]) -> Result<usize, Refusal> {
        let data = match self {
            Stream::Log => return Ok(0),
            Stream::Device(handle) => {
                let line = COOKED.with(core::mem::take);
                let line = if line.is_empty() { cooked_line(handle)? } else { line };
                let n = line.len().min(buf.len());
                buf[..n].copy_from_slice(&line[..n]);
                COOKED.with(|rest| *rest = line[n..].to_vec());
                return Ok(n);
            }
            Stream::File(handle) => {
                let max = buf.len().min(vessel_vfs_protocol::MAX_IO) as u64;
                crate::fs::client()?.read(handle, max)?.data
            }
        };
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    /// Whether it is a terminal.
    pub fn is_terminal(self) -> bool {
        matches!(self, Stream::Device(_))
    }
}

/// What is left of the last line read from the terminal.
static COOKED: crate::heap::Lock<alloc::vec::Vec<u8>> = crate::heap::Lock::new(alloc::vec::Vec::new());

/// Reads one line from terminal session `handle`, echoing and editing it; empty at the end of
/// the input (Ctrl-D on an empty line).
fn cooked_line(handle: u64) -> Result<alloc::vec::Vec<u8>, Refusal> {
    let client = crate::device::Devices::get()?.client();
    let echo = |bytes: &[u8]| {
        let _ = Stream::Device(handle).write_all(bytes);
    };
    let mut line = alloc::vec::Vec::new();
    loop {
        let typed = client.read(handle, 64, vessel_device_protocol::NO_TIMEOUT)?.data;
        for &byte in &typed {
            match byte {
                b'\r' | b'\n' => {
                    echo(b"\n");
                    line.push(b'\n');
                    return Ok(line);
                }
                // Ctrl-D: the line as it is (none at all: the end of the input).
                4 => return Ok(line),
                0x7f | 8 => {
                    // One character back (a UTF-8 character may be several bytes).
                    while let Some(b) = line.pop() {
                        if b & 0xc0 != 0x80 {
                            echo(b"\x08 \x08");
                            break;
                        }
                    }
                }
                0x15 => {
                    let chars = core::str::from_utf8(&line).map_or(line.len(), |s| s.chars().count());
                    for _ in 0..chars {
                        echo(b"\x08 \x08");
                    }
                    line.clear();
                }
                b'\t' | 0x20.. => {
                    line.push(byte);
                    echo(&[byte]);
                }
                _ => {}
            }
        }
    }
}

/// The sessions opened for `tty:NAME` streams (0: not yet), by stream (in, out, err).
static OPENED: [core::sync::atomic::AtomicU64; 3] = [const { core::sync::atomic::AtomicU64::new(0) }; 3];

/// Stream `index` (0 in, 1 out, 2 err) from the environment variable `name`: a handle, or
/// `tty:NAME`, a terminal this process opens itself on first use (a program started in another
/// container, which cannot use its parent's sessions): for reading and writing as standard
/// input (echo), for writing only as output (so it does not take Ctrl-C from the shell).
fn stream(index: usize, name: &str, default: Stream) -> Stream {
    let Some(value) = crate::var(name) else { return default };
    if let Some(device) = value.strip_prefix("tty:") {
        let opened = OPENED[index].load(core::sync::atomic::Ordering::Relaxed);
        if opened != 0 {
            return Stream::Device(opened);
        }
        use vessel_device_protocol::Rights;
        let rights = if index == 0 { Rights::READ_WRITE } else { Rights::WRITE };
        return match crate::device::Devices::get().and_then(|d| d.open(device, rights)) {
            Ok(session) => {
                OPENED[index].store(session.handle, core::sync::atomic::Ordering::Relaxed);
                Stream::Device(session.handle)
            }
            Err(_) => default,
        };
    }
    Stream::parse(value).unwrap_or(default)
}

/// Standard input (`STDIN`): nothing if unset.
pub fn stdin() -> Stream {
    stream(0, "STDIN", Stream::Log)
}

/// Standard output (`STDOUT`): the kernel's log if unset.
pub fn stdout() -> Stream {
    stream(1, "STDOUT", Stream::Log)
}

/// Standard error (`STDERR`): the kernel's log if unset.
pub fn stderr() -> Stream {
    stream(2, "STDERR", Stream::Log)
}

/// Reads all of standard input (until its end).
pub fn read_stdin_to_end(out: &mut alloc::vec::Vec<u8>) -> Result<usize, Refusal> {
    let input = stdin();
    let mut buf = [0u8; 4096];
    let start = out.len();
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(out.len() - start);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// A stack buffer flushed to a stream when full and at the end of the call.
pub struct Console {
    to: Stream,
    buf: [u8; 512],
    len: usize,
}

impl Console {
    fn flush(&mut self) {
        // Output that cannot reach its stream goes to the log rather than nowhere.
        if self.to.write_all(&self.buf[..self.len]).is_err() && self.to != Stream::Log {
            let _ = crate::sys::debug_write(&self.buf[..self.len]);
        }
        self.len = 0;
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Formats to `to` (used by the macros).
pub fn print_to(to: Stream, args: fmt::Arguments<'_>) {
    let mut console = Console { to, buf: [0; 512], len: 0 };
    let _ = console.write_fmt(args);
    console.flush();
}

/// Used by `print!`.
pub fn print(args: fmt::Arguments<'_>) {
    print_to(stdout(), args);
}

/// Used by `eprint!`.
pub fn eprint(args: fmt::Arguments<'_>) {
    print_to(stderr(), args);
}

/// Prints to standard output.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::io::print(format_args!($($arg)*)));
}

/// Prints a line to standard output.
#[macro_export]
macro_rules! println {
    () => ($crate::io::print(format_args!("\n")));
    ($($arg:tt)*) => ($crate::io::print(format_args!("{}\n", format_args!($($arg)*))));
}

/// Prints to standard error.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => ($crate::io::eprint(format_args!($($arg)*)));
}

/// Prints a line to standard error.
#[macro_export]
macro_rules! eprintln {
    () => ($crate::io::eprint(format_args!("\n")));
    ($($arg:tt)*) => ($crate::io::eprint(format_args!("{}\n", format_args!($($arg)*))));
}
