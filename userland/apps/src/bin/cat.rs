//! `cat [FILE...]`: the bytes of each FILE in turn on standard output, unchanged; `-` or no
//! FILE is standard input.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;

use vessel_apps::tool;
use vessel_protocol::Refusal;
use vessel_rt::fs::File;
use vessel_rt::io::{self, Stream};

vessel_rt::entry!(main);

const USAGE: &str = "usage: cat [FILE...]
  write each FILE to standard output in turn; - or no FILE: standard input
";

/// Why copying a source stopped.
enum Stop {
    /// Reading the source was refused.
    Read(Refusal),
    /// Standard output refused the bytes.
    Write(Refusal),
}

fn main() -> i32 {
    let command = match tool::begin("cat", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let operands = if command.operands.is_empty() { vec!["-"] } else { command.operands };
    let out = io::stdout();
    let mut buf = [0u8; tool::CHUNK];
    let mut failed = false;
    for path in operands {
        let copied = if path == "-" {
            let input = io::stdin();
            pump(|b| input.read(b), out, &mut buf)
        } else {
            match File::open(path) {
                Ok(mut file) => pump(|b| file.read(b), out, &mut buf),
                Err(r) => Err(Stop::Read(r)),
            }
        };
        match copied {
            Ok(()) => {}
            Err(Stop::Read(r)) => {
                tool::fail("cat", path, r);
                failed = true;
            }
            Err(Stop::Write(r)) => {
                // Nowhere to write the rest: stop here.
                tool::fail("cat", "standard output", r);
                return 1;
            }
        }
    }
    tool::status(failed)
}

/// Copies everything `read` gives to `out`.
fn pump(mut read: impl FnMut(&mut [u8]) -> Result<usize, Refusal>, out: Stream, buf: &mut [u8]) -> Result<(), Stop> {
    loop {
        let n = read(buf).map_err(Stop::Read)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n]).map_err(Stop::Write)?;
    }
}
