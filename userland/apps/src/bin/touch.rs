//! `touch FILE...`: creates each FILE that does not exist, empty. An existing FILE is left as
//! it is: the `vfs` protocol has no request that sets a modification time (a write or a
//! truncate changes it only on some file systems), so its time is not updated.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_rt::abi::Error;
use vessel_rt::fs::{self, File, OpenFlags};

vessel_rt::entry!(main);

const USAGE: &str = "usage: touch FILE...
  create each FILE that does not exist (empty); an existing FILE is left unchanged
  (vfs has no request to set a modification time)
";

fn main() -> i32 {
    let command = match tool::begin("touch", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if command.operands.is_empty() {
        return tool::misuse("touch", "a FILE is needed");
    }
    let mut failed = false;
    for path in command.operands {
        let created = match fs::metadata(path) {
            Ok(_) => Ok(()),
            // Not EXCLUSIVE: a file made meanwhile by someone else is as good.
            Err(r) if r.error == Error::NotFound => {
                File::open_with(path, OpenFlags::WRITE | OpenFlags::CREATE).and_then(File::close)
            }
            Err(r) => Err(r),
        };
        if let Err(r) = created {
            tool::fail("touch", path, r);
            failed = true;
        }
    }
    tool::status(failed)
}
