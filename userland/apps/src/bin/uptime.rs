//! `uptime`: how long since the kernel started, as `up 1 h 2 min 3 s` (days, hours and
//! minutes only once there are any). `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use core::fmt::Write;

use vessel_apps::tool;
use vessel_rt::{println, time};

vessel_rt::entry!(main);

const USAGE: &str = "usage: uptime\n  how long since the system started, as up 1 h 2 min 3 s\n";

fn main() -> i32 {
    let command = match tool::begin("uptime", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if let Some(operand) = command.operands.first() {
        return tool::misuse("uptime", format_args!("unexpected operand {operand}"));
    }
    println!("{}", since_boot(time::now_ns() / 1_000_000_000));
    0
}

/// `up 1 min 23 s` for 83 seconds: the larger units from the first that is not zero.
fn since_boot(seconds: u64) -> String {
    let parts = [(seconds / 86_400, "d"), (seconds / 3600 % 24, "h"), (seconds / 60 % 60, "min"), (seconds % 60, "s")];
    let mut text = String::from("up");
    let first = parts.iter().position(|&(n, _)| n != 0).unwrap_or(parts.len() - 1);
    for (n, unit) in &parts[first..] {
        let _ = write!(text, " {n} {unit}");
    }
    text
}
