//! `cp [-r] SRC DST`, `cp [-r] SRC... DIR`: copies files, and with `-r` directories with
//! everything below them. A DST that is an existing directory receives the copy under SRC's
//! name; a directory copied onto an existing directory is merged into it.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::{paths, tool, tree};
use vessel_rt::fs::{self, Kind};

vessel_rt::entry!(main);

const USAGE: &str = "usage: cp [-r] SRC DST
       cp [-r] SRC... DIR
  copy SRC to DST, or each SRC into the directory DIR under its own name
  -r  copy directories and everything below them
";

fn main() -> i32 {
    let command = match tool::begin("cp", USAGE, "r") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let recursive = command.flags.has('r');
    let Some((&target, sources)) = command.operands.split_last().filter(|(_, s)| !s.is_empty()) else {
        return tool::misuse("cp", "a source and a destination are needed");
    };
    let into_dir = fs::metadata(target).is_ok_and(|s| s.kind == Kind::Dir);
    if sources.len() > 1 && !into_dir {
        tool::fail("cp", target, "not a directory (needed with several sources)");
        return 1;
    }
    let mut failed = false;
    for &source in sources {
        let to = if into_dir { paths::child(target, paths::file_name(source)) } else { target.into() };
        failed |= !tree::copy(source, &to, recursive, &mut |f| tool::fail("cp", &f.path, &f.reason));
    }
    tool::status(failed)
}
