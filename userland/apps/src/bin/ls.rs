//! `ls [-l] [-a] [PATH...]`: the entries of each directory (of the working directory without a
//! PATH), sorted by name, one per line; a file operand is listed as itself. `-l` shows each
//! entry's kind (`d` or `-`), size in bytes, modification time (`YYYY-MM-DD HH:MM`, UTC; `-` when
//! the file system keeps none) and name; `-a` also shows names starting with `.`, and `.` and
//! `..`. With several operands, files come first, then each directory under a `PATH:` header
//! (both sorted).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use vessel_apps::listing::{self, Row};
use vessel_apps::{paths, tool};
use vessel_protocol::Refusal;
use vessel_rt::fs::{self, File, Kind, Rights};

vessel_rt::entry!(main);

const USAGE: &str = "usage: ls [-l] [-a] [PATH...]
  list each directory's entries sorted by name (the working directory without a PATH)
  -l  long lines: kind (d or -), size in bytes, modification time (UTC), name
  -a  also names starting with '.', and . and ..
";

fn main() -> i32 {
    let command = match tool::begin("ls", USAGE, "la") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let (long, all) = (command.flags.has('l'), command.flags.has('a'));
    let operands = if command.operands.is_empty() { alloc::vec!["."] } else { command.operands };
    let mut failed = false;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for path in &operands {
        match fs::metadata(path) {
            Ok(stat) if stat.kind == Kind::Dir => dirs.push(*path),
            Ok(stat) => {
                files.push(Row { kind: stat.kind, size: stat.size, modified: stat.modified, name: (*path).into() })
            }
            Err(r) => {
                tool::fail("ls", path, r);
                failed = true;
            }
        }
    }
    let mut out = String::new();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    dirs.sort();
    show(&mut out, &files, long);
    let headers = operands.len() > 1;
    for (i, dir) in dirs.iter().enumerate() {
        match entries(dir, long, all, &mut failed) {
            Ok(rows) => {
                if headers {
                    if i > 0 || !files.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(dir);
                    out.push_str(":\n");
                }
                show(&mut out, &rows, long);
            }
            Err((path, r)) => {
                tool::fail("ls", &path, r);
                failed = true;
            }
        }
    }
    if let Err(r) = vessel_rt::io::stdout().write_all(out.as_bytes()) {
        tool::fail("ls", "standard output", r);
        failed = true;
    }
    tool::status(failed)
}

fn show(out: &mut String, rows: &[Row], long: bool) {
    if long {
        out.push_str(&listing::long(rows));
    } else {
        for row in rows {
            out.push_str(&row.name);
            out.push('\n');
        }
    }
}

/// The rows of directory `dir`, sorted by name (with their times for `long`), or the refusal to
/// list it. An entry whose time cannot be read is reported, left out and sets `failed`.
fn entries(dir: &str, long: bool, all: bool, failed: &mut bool) -> Result<Vec<Row>, (String, Refusal)> {
    let handle = File::open_dir(dir, Rights::READ).map_err(|r| (dir.into(), r))?;
    let mut names: Vec<(String, Kind, u64)> = handle
        .entries()
        .map_err(|r| (dir.into(), r))?
        .into_iter()
        .filter(|e| listing::shown(&e.name, all))
        .map(|e| (e.name, e.kind, e.size))
        .collect();
    if all {
        names.push((".".into(), Kind::Dir, 0));
        names.push(("..".into(), Kind::Dir, 0));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let client = fs::client().map_err(|r| (dir.into(), r))?;
    let mut rows = Vec::with_capacity(names.len());
    for (name, kind, size) in names {
        let modified = if long {
            // `..` of the handle's directory is above it: ask by path.
            let stat = if name == ".." {
                fs::metadata(&paths::child(&fs::absolute(dir), ".."))
            } else {
                client.stat(handle.handle(), if name == "." { "" } else { &name }).map(|s| s.stat)
            };
            match stat {
                Ok(stat) => stat.modified,
                Err(r) => {
                    tool::fail("ls", &paths::child(dir, &name), r);
                    *failed = true;
                    continue;
                }
            }
        } else {
            0
        };
        rows.push(Row { kind, size, modified, name });
    }
    Ok(rows)
}
