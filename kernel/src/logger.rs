//! The kernel log: a `log` backend that writes `[uptime] LEVEL message` to the first serial port
//! (COM1), keeps it in the log ring (`klog`, which the `device` server shows on its console),
//! and mirrors it to the framebuffer console until `device` takes the framebuffer.
//!
//! Invariant: the log lock is only held with interrupts off, so an interrupt handler that logs can
//! never deadlock against the code it interrupted. A panic bypasses the lock
//! ([`emergency_serial`]).

use core::fmt::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};
use spin::Mutex;
use uart_16550::SerialPort;
use vessel_kcore::report::Uptime;
use x86_64::instructions::interrupts::without_interrupts;

use crate::arch::x86_64::serial;

static SERIAL: Mutex<Option<SerialPort>> = Mutex::new(None);

struct KernelLog;

static LOGGER: KernelLog = KernelLog;

/// Initialises COM1 and installs the logger.
pub fn init() {
    *SERIAL.lock() = Some(serial::init_com1());
    // A second `init` would fail here; there is none.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Sets the most detailed level logged from the boot argument `log` (`error`, `warn`, `info`,
/// `debug`, `trace`); info without one (or with another word).
pub fn set_level(level: Option<&str>) {
    let filter = match level {
        Some("error") => LevelFilter::Error,
        Some("warn") => LevelFilter::Warn,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        _ => LevelFilter::Info,
    };
    log::set_max_level(filter);
}

/// A fresh handle on COM1 that takes no lock, for the panic handler only.
pub fn emergency_serial() -> SerialPort {
    serial::emergency_com1()
}

/// Writes raw text to the serial line (and console), for output that is not a log record, such as
/// test verdicts that the host harness parses.
pub fn print(args: core::fmt::Arguments<'_>) {
    without_interrupts(|| {
        if let Some(port) = SERIAL.lock().as_mut() {
            let _ = port.write_fmt(args);
        }
        let _ = crate::klog::Writer.write_fmt(args);
        crate::console::print(args);
    });
}

/// Writes raw bytes from a user program's debug output: to the serial line as they are, and to
/// the console as text (invalid UTF-8 shown as U+FFFD).
pub fn write_bytes(bytes: &[u8]) {
    without_interrupts(|| {
        if let Some(port) = SERIAL.lock().as_mut() {
            for &b in bytes {
                port.send(b);
            }
        }
        crate::klog::append(bytes);
        for chunk in bytes.utf8_chunks() {
            crate::console::print(format_args!("{}", chunk.valid()));
            if !chunk.invalid().is_empty() {
                crate::console::print(format_args!("\u{fffd}"));
            }
        }
    });
}

impl Log for KernelLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let now = Uptime(crate::time::since_boot_ns());
        print(format_args!("{now} {level} {}\n", record.args()));
    }

    fn flush(&self) {}
}

/// `print!` for kernel output that is not a log record.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => ($crate::logger::print(format_args!($($arg)*)));
}

/// `println!` for kernel output that is not a log record.
#[macro_export]
macro_rules! kprintln {
    () => ($crate::kprint!("\n"));
    ($($arg:tt)*) => ($crate::logger::print(format_args!("{}\n", format_args!($($arg)*))));
}
