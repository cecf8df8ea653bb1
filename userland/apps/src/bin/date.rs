//! `date`: the time of the real-time clock (`rtc0`, through the `device` server) as
//! `YYYY-MM-DD HH:MM:SS UTC`. `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_device_protocol::{DateTime, Rights};
use vessel_protocol::Refusal;
use vessel_rt::device::Devices;
use vessel_rt::{eprintln, println};

vessel_rt::entry!(main);

const USAGE: &str = "usage: date\n  the time of the real-time clock (rtc0), as YYYY-MM-DD HH:MM:SS UTC\n";

fn main() -> i32 {
    let command = match tool::begin("date", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if let Some(operand) = command.operands.first() {
        return tool::misuse("date", format_args!("unexpected operand {operand} (date only reads the clock)"));
    }
    let seconds = match clock_seconds() {
        Ok(seconds) => seconds,
        Err(r) => {
            eprintln!("date: cannot read the clock rtc0: {r}");
            return 1;
        }
    };
    match DateTime::from_unix(seconds) {
        Some(d) => {
            println!("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", d.year, d.month, d.day, d.hour, d.minute, d.second);
            0
        }
        None => {
            eprintln!("date: the clock reads {seconds} s after 1970, past the year 9999");
            1
        }
    }
}

/// Seconds since 1970-01-01 UTC, from `rtc0`.
fn clock_seconds() -> Result<u64, Refusal> {
    let clock = Devices::get()?.open("rtc0", Rights::READ)?;
    let seconds = clock.time();
    let _ = clock.close();
    seconds
}
