//! `mkdir [-p] DIR...`: makes directories. `-p` also makes the missing parents, and a DIR that
//! is already a directory is then no failure.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::{paths, tool, tree};
use vessel_protocol::Refusal;
use vessel_rt::fs;

vessel_rt::entry!(main);

const USAGE: &str = "usage: mkdir [-p] DIR...
  make each directory
  -p  make missing parents too; an existing directory is no failure
";

fn main() -> i32 {
    let command = match tool::begin("mkdir", USAGE, "p") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if command.operands.is_empty() {
        return tool::misuse("mkdir", "a DIR is needed");
    }
    let parents = command.flags.has('p');
    let mut failed = false;
    for dir in command.operands {
        let made = if parents { make_all(dir) } else { fs::create_dir(dir).map_err(|r| (dir.into(), r)) };
        if let Err((path, r)) = made {
            tool::fail("mkdir", &path, r);
            failed = true;
        }
    }
    tool::status(failed)
}

/// Makes `dir` and every missing directory above it; on failure, the path refused.
fn make_all(dir: &str) -> Result<(), (alloc::string::String, Refusal)> {
    let full = fs::absolute(dir);
    let Some(parts) = paths::components(&full) else {
        // Let the server say what is wrong with the path.
        return fs::create_dir(dir).map_err(|r| (dir.into(), r));
    };
    let mut path = alloc::string::String::new();
    for part in parts {
        path = paths::child(if path.is_empty() { "/" } else { &path }, &part);
        if let Err(r) = tree::ensure_dir(&path) {
            return Err((path, r));
        }
    }
    Ok(())
}
