//! `rm [-r] [-f] PATH...`: removes files, and with `-r` directories with everything below
//! them. Without `-r` a directory is refused, empty or not. `-f`: a missing PATH is no failure,
//! and no PATH at all is fine. `/`, `.` and `..` are never removed.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::{paths, tool, tree};
use vessel_rt::abi::Error;
use vessel_rt::fs::{self, Kind};

vessel_rt::entry!(main);

const USAGE: &str = "usage: rm [-r] [-f] PATH...
  remove each file
  -r  remove directories and everything below them
  -f  a missing PATH is no failure
";

fn main() -> i32 {
    let command = match tool::begin("rm", USAGE, "rf") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let (recursive, force) = (command.flags.has('r'), command.flags.has('f'));
    if command.operands.is_empty() && !force {
        return tool::misuse("rm", "a PATH is needed");
    }
    let mut failed = false;
    for path in command.operands {
        if paths::is_dot(path) || paths::components(&fs::absolute(path)).is_some_and(|c| c.is_empty()) {
            tool::fail("rm", path, "refusing to remove /, . or ..");
            failed = true;
            continue;
        }
        let stat = match fs::metadata(path) {
            Ok(stat) => stat,
            Err(r) if force && r.error == Error::NotFound => continue,
            Err(r) => {
                tool::fail("rm", path, r);
                failed = true;
                continue;
            }
        };
        if stat.kind == Kind::Dir && !recursive {
            tool::fail("rm", path, "is a directory (-r removes directories)");
            failed = true;
            continue;
        }
        failed |= !tree::remove(path, &mut |f| tool::fail("rm", &f.path, &f.reason));
    }
    tool::status(failed)
}
