//! `vsf`: virtual storage files, the FAT images that are containers' roots.
//!
//! - `vsf create FILE SIZE`: a new VSF of SIZE (`8M`, `1G`), formatted FAT (FAT32 from 64 MiB).
//! - `vsf mount FILE DIR`: mounts it at DIR of this container's tree (`vfs` refuses a VSF that
//!   is mounted already, anywhere).
//! - `vsf unmount DIR`: unmounts what DIR holds (written back first).
//! - `vsf list`: what is mounted in this container, and from where.
//! - `vsf check FILE`: a read-only consistency check of the FAT in FILE (`vessel_fat::check`,
//!   the judgement `fsck.fat -n` makes): a summary line, then a line per problem. Exits 0 if
//!   the volume is clean, 1 if anything was found (the summary says whether it is only what an
//!   unclean stop leaves, or damage). A mounted VSF is checked as its file holds it: changes
//!   still in `vfs`'s cache are not seen.
//!
//! `ctr create --root FILE` and `--new-root SIZE` make a VSF a container's `/`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_rt::{fs, println};

vessel_rt::entry!(main);

const USAGE: &str = "usage: vsf create FILE SIZE | vsf mount FILE DIR | vsf unmount DIR | vsf list | vsf check FILE
  create   a new virtual storage file of SIZE (8M, 1G), formatted FAT
  mount    mount it at DIR of this container's tree
  unmount  unmount what DIR holds
  list     what is mounted here, and from where
  check    check the FAT in FILE without changing it (exit 1 if anything is found)
";

/// Bytes per block of a VSF seen as a disk.
const BLOCK: usize = 512;

/// A file read as a disk of 512-byte blocks (whole blocks: a tail shorter than one is not
/// part of it). Writing is refused: `check` only reads.
struct FileDisk {
    file: fs::File,
    blocks: u64,
}

impl vessel_fat::Disk for FileDisk {
    fn block_size(&self) -> usize {
        BLOCK
    }

    fn blocks(&self) -> u64 {
        self.blocks
    }

    fn read(&mut self, first_block: u64, buf: &mut [u8]) -> Result<(), vessel_fat::DiskError> {
        let end = first_block.checked_add((buf.len() / BLOCK) as u64).ok_or(vessel_fat::DiskError::OutOfRange)?;
        if !buf.len().is_multiple_of(BLOCK) {
            return Err(vessel_fat::DiskError::Invalid);
        }
        if end > self.blocks {
            return Err(vessel_fat::DiskError::OutOfRange);
        }
        let mut done = 0;
        while done < buf.len() {
            let at = first_block * BLOCK as u64 + done as u64;
            match self.file.read_at(at, &mut buf[done..]) {
                Ok(0) | Err(_) => return Err(vessel_fat::DiskError::Device),
                Ok(n) => done += n,
            }
        }
        Ok(())
    }

    fn write(&mut self, _first_block: u64, _data: &[u8]) -> Result<(), vessel_fat::DiskError> {
        Err(vessel_fat::DiskError::Invalid)
    }

    fn flush(&mut self) -> Result<(), vessel_fat::DiskError> {
        Ok(())
    }
}

/// `vsf check FILE`: prints the report; whether anything was found (or the file failed).
fn check(file: &str) -> bool {
    let opened = fs::File::open(file).and_then(|f| f.metadata().map(|m| (f, m)));
    let (file_handle, stat) = match opened {
        Ok(pair) => pair,
        Err(r) => {
            tool::fail("vsf", file, r);
            return true;
        }
    };
    if stat.kind != fs::Kind::File {
        tool::fail("vsf", file, "not a file");
        return true;
    }
    let mut disk = FileDisk { file: file_handle, blocks: stat.size / BLOCK as u64 };
    match vessel_fat::check(&mut disk) {
        Ok(report) => {
            println!("{file}: {report}");
            report.verdict() != vessel_fat::Verdict::Clean
        }
        Err(e) => {
            tool::fail("vsf", file, alloc::format!("reading it failed ({e})"));
            true
        }
    }
}

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
        ["check", file] => check(file),
        _ => return tool::misuse("vsf", "a command: create, mount, unmount, list or check"),
    };
    tool::status(failed)
}
