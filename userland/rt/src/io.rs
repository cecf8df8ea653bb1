//! `print!` and `println!`: each call is formatted into one buffer and written with one system
//! call, so lines from different processes do not interleave mid-line.

use core::fmt::{self, Write};

/// A stack buffer flushed to the debug console when full and at the end of the call.
pub struct Console {
    buf: [u8; 512],
    len: usize,
}

impl Console {
    fn flush(&mut self) {
        let _ = crate::sys::debug_write(&self.buf[..self.len]);
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

/// Used by the macros.
pub fn print(args: fmt::Arguments<'_>) {
    let mut console = Console { buf: [0; 512], len: 0 };
    let _ = console.write_fmt(args);
    console.flush();
}

/// Prints to the debug console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::io::print(format_args!($($arg)*)));
}

/// Prints a line to the debug console.
#[macro_export]
macro_rules! println {
    () => ($crate::io::print(format_args!("\n")));
    ($($arg:tt)*) => ($crate::io::print(format_args!("{}\n", format_args!($($arg)*))));
}
