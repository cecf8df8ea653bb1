//! `mv SRC DST`, `mv SRC... DIR`: renames (moves) files and directories. A DST that is an
//! existing directory receives SRC under its own name. Within one file system this is one
//! `rename`; between two (say `/tmp` and `/data`) SRC is copied, then removed once every copy
//! succeeded.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;

use vessel_apps::{paths, tool, tree};
use vessel_rt::fs::{self, Kind};

vessel_rt::entry!(main);

const USAGE: &str = "usage: mv SRC DST
       mv SRC... DIR
  rename SRC to DST, or move each SRC into the directory DIR under its own name
  (between file systems: copy, then remove SRC)
";

fn main() -> i32 {
    let command = match tool::begin("mv", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let Some((&target, sources)) = command.operands.split_last().filter(|(_, s)| !s.is_empty()) else {
        return tool::misuse("mv", "a source and a destination are needed");
    };
    let into_dir = fs::metadata(target).is_ok_and(|s| s.kind == Kind::Dir);
    if sources.len() > 1 && !into_dir {
        tool::fail("mv", target, "not a directory (needed with several sources)");
        return 1;
    }
    let mut failed = false;
    for &source in sources {
        let to = if into_dir { paths::child(target, paths::file_name(source)) } else { String::from(target) };
        failed |= !move_one(source, &to);
    }
    tool::status(failed)
}

/// Moves `from` to `to`, reporting what failed.
fn move_one(from: &str, to: &str) -> bool {
    let refused = match fs::rename(from, to) {
        Ok(()) => return true,
        Err(r) => r,
    };
    let (source, target) = (fs::absolute(from), fs::absolute(to));
    let across = fs::metadata(from).is_ok()
        && !paths::within(&target, &source)
        && tree::mount_of(&source) != tree::mount_of(&target);
    if !across {
        tool::fail("mv", from, refused);
        return false;
    }
    let mut report = |f: tree::Failure| tool::fail("mv", &f.path, &f.reason);
    tree::copy(from, to, true, &mut report) && tree::remove(from, &mut report)
}
