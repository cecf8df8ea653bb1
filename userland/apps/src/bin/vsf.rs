//! `vsf`: virtual storage files, the FAT images that are containers' roots.
//!
//! - `vsf create FILE SIZE`: a new VSF of SIZE (`8M`, `1G`), formatted FAT (FAT32 from 64 MiB).
//! - `vsf mount FILE DIR`: mounts it at DIR of this container's tree (`vfs` refuses a VSF that
//!   is mounted already, anywhere).
//! - `vsf unmount DIR`: unmounts what DIR holds (written back first).
//! - `vsf list`: what is mounted in this container, and from where.
//!
//! `ctr create --root FILE` and `--new-root SIZE` make a VSF a container's `/`. A read-only
//! consistency check (`vsf check`) is not here yet; check a VSF on the host with
//! `fsck.fat -n`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_rt::{fs, println};

vessel_rt::entry!(main);

const USAGE: &str = "usage: vsf create FILE SIZE | vsf mount FILE DIR | vsf unmount DIR | vsf list
  create   a new virtual storage file of SIZE (8M, 1G), formatted FAT
  mount    mount it at DIR of this container's tree
  unmount  unmount what DIR holds
  list     what is mounted here, and from where
";

/// `8M`, `1G`, `512K` or bytes.
fn size(text: &str) -> Option<u64> {
    let at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let shift = match &text[at..] {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => return None,
    };
    text[..at].parse::<u64>().ok()?.checked_mul(1 << shift).filter(|&n| n > 0)
}

fn main() -> i32 {
    let command = match tool::begin("vsf", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let failed = match command.operands.as_slice() {
        ["create", file, bytes] => {
            let Some(bytes) = size(bytes) else {
                return tool::misuse("vsf", format_args!("{bytes:?} is not a size (8M)"));
            };
            fs::create_vsf(file, bytes).map_err(|r| tool::fail("vsf", file, r)).is_err()
        }
        ["mount", file, dir] => {
            fs::mount(0, dir, &alloc::format!("vsf:{file}")).map_err(|r| tool::fail("vsf", file, r)).is_err()
        }
        ["unmount", dir] => fs::unmount(0, dir).map_err(|r| tool::fail("vsf", dir, r)).is_err(),
        ["list"] => match fs::mounts(0) {
            Ok(mounts) => {
                for m in mounts {
                    let ro = if m.read_only { " (read-only)" } else { "" };
                    println!("{:<20} {}{ro}", m.path, m.source);
                }
                false
            }
            Err(r) => {
                tool::fail("vsf", "list", r);
                true
            }
        },
        _ => return tool::misuse("vsf", "a command: create, mount, unmount or list"),
    };
    tool::status(failed)
}
