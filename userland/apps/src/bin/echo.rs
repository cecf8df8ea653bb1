//! `echo [-n] [ARGS...]`: the arguments separated by single spaces, then a newline (none with
//! `-n`). Like every `echo`, it prints other arguments starting with `-` as they are (so it
//! never refuses an option), and answers `--help` only when that is the only argument.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use vessel_apps::options::{self, Echo};
use vessel_apps::tool;
use vessel_rt::print;

vessel_rt::entry!(main);

const USAGE: &str = "usage: echo [-n] [ARGS...]
  write the arguments separated by spaces, then a newline
  -n  no newline at the end (only before the first argument; other arguments starting
      with - are printed as they are)
";

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().skip(1).collect();
    let (newline, words) = match options::echo(&args) {
        Echo::Print { newline, words } => (newline, words),
        Echo::Help => {
            print!("{USAGE}");
            return 0;
        }
    };
    let mut text = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(word);
    }
    if newline {
        text.push('\n');
    }
    match vessel_rt::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(r) => {
            tool::fail("echo", "standard output", r);
            1
        }
    }
}
