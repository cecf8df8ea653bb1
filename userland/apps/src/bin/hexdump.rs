//! `hexdump [-C] [FILE...]`: the canonical hex dump of the FILEs one after the other (standard
//! input for none or `-`), as `hexdump -C` prints it: 16 bytes a line with their offset, hex
//! and printable ASCII, a `*` for repeated lines, the length last. That format is also the
//! default, so `-C` changes nothing.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec;

use vessel_apps::hexdump::Dump;
use vessel_apps::tool;
use vessel_rt::fs::File;
use vessel_rt::io;

vessel_rt::entry!(main);

const USAGE: &str = "usage: hexdump [-C] [FILE...]
  canonical hex+ASCII dump of the FILEs in turn (- or none: standard input), as hexdump -C;
  that is also the default format, so -C changes nothing
";

fn main() -> i32 {
    let command = match tool::begin("hexdump", USAGE, "C") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let operands = if command.operands.is_empty() { vec!["-"] } else { command.operands };
    let out = io::stdout();
    let mut dump = Dump::new();
    let mut buf = [0u8; tool::CHUNK];
    let mut text = String::new();
    let mut failed = false;
    for path in operands {
        let mut file = if path == "-" {
            None
        } else {
            match File::open(path) {
                Ok(file) => Some(file),
                Err(r) => {
                    tool::fail("hexdump", path, r);
                    failed = true;
                    continue;
                }
            }
        };
        loop {
            let read = match &mut file {
                Some(file) => file.read(&mut buf),
                None => io::stdin().read(&mut buf),
            };
            let n = match read {
                Ok(0) => break,
                Ok(n) => n,
                Err(r) => {
                    tool::fail("hexdump", path, r);
                    failed = true;
                    break;
                }
            };
            dump.feed(&buf[..n], &mut text);
            if let Err(r) = out.write_all(text.as_bytes()) {
                tool::fail("hexdump", "standard output", r);
                return 1;
            }
            text.clear();
        }
    }
    dump.finish(&mut text);
    if let Err(r) = out.write_all(text.as_bytes()) {
        tool::fail("hexdump", "standard output", r);
        return 1;
    }
    tool::status(failed)
}
