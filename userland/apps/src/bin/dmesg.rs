//! `dmesg`: the kernel's log ring (its messages and the programs' debug output, the last
//! 64 KiB) as it is, through `LogCopy` (root container only). Output printed while it reads is
//! not read again, so it ends even when its own output goes to the log. `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_rt::abi::Error;
use vessel_rt::{eprintln, io, sys};

vessel_rt::entry!(main);

const USAGE: &str = "usage: dmesg\n  the kernel's log: its messages and the programs' debug output (the last 64 KiB; root \
                     container only)\n";

/// Bytes one `LogCopy` gives at most.
const CHUNK: usize = 4096;

fn main() -> i32 {
    let command = match tool::begin("dmesg", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if let Some(operand) = command.operands.first() {
        return tool::misuse("dmesg", format_args!("unexpected operand {operand}"));
    }
    // Where the log ends now: what comes after (our own output, perhaps) is not ours to show.
    let end = match sys::log_copy(u64::MAX, &mut []) {
        Ok(chunk) => chunk.next,
        Err(e) => return refused(e),
    };
    let out = io::stdout();
    let mut buf = [0u8; CHUNK];
    let mut from = 0;
    while from < end {
        let want = ((end - from) as usize).min(CHUNK);
        let chunk = match sys::log_copy(from, &mut buf[..want]) {
            Ok(chunk) => chunk,
            Err(e) => return refused(e),
        };
        let mut bytes = &buf[..(chunk.next - chunk.first) as usize];
        if bytes.is_empty() {
            break;
        }
        // The ring dropped the older bytes: start at the first whole line.
        if from == 0 && chunk.first > 0 {
            let line = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1);
            bytes = &bytes[line..];
        }
        if let Err(r) = out.write_all(bytes) {
            eprintln!("dmesg: cannot write: {r}");
            return 1;
        }
        from = chunk.next;
    }
    0
}

/// Reports a refused `LogCopy`; the exit code, 1.
fn refused(e: Error) -> i32 {
    match e {
        Error::AccessDenied => eprintln!("dmesg: only the root container may read the kernel's log ({e})"),
        _ => eprintln!("dmesg: cannot read the kernel's log: {e}"),
    }
    1
}
