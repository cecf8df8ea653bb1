//! `fsprobe <role> [args]`: what the file tests run inside a child container, to see the
//! namespace from there. Exits 0 when everything it checked held, else prints why and exits 1.
//!
//! - `empty`: nothing is mounted: `/` cannot be listed or opened, no file can be created.
//! - `isolated TOKEN...`: the namespace holds exactly one mount, `/`; the parent's files
//!   (`/tmp`, `/data`) are not there, however the path climbs; the parent's handle numbers are
//!   nothing here; a file of its own can be written and read back.
//! - `write PATH TEXT`: writes TEXT to PATH and syncs.
//! - `lend PARENT SELF`: `MemoryLend` and `ContainerLookup` refuse the parent container
//!   (`NoSuchContainer`) and serve this one; `BootfsRead` is refused (`AccessDenied`).
//! - `fill`: writes 64 KiB pieces to `/fill` until the server answers `NoSpace` (exit 0), any
//!   other refusal or 64 MiB written without one (exit 1).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use vessel_rt::abi::Error;
use vessel_rt::fs::{self, File, OpenFlags};
use vessel_rt::println;

vessel_rt::entry!(main);

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().collect();
    let result = match args.get(1..) {
        Some(["empty"]) => empty(),
        Some(["isolated", tokens @ ..]) => isolated(tokens),
        Some(["write", path, text]) => {
            fs::write(path, text.as_bytes()).and_then(|()| fs::sync_all()).map_err(|r| format!("{r}"))
        }
        Some(["read", path, text]) => match fs::read(path) {
            Ok(data) if data == text.as_bytes() => Ok(()),
            Ok(data) => Err(format!("{path} holds {:?}", alloc::string::String::from_utf8_lossy(&data))),
            Err(r) => Err(format!("{path}: {r}")),
        },
        Some(["fill"]) => fill(),
        Some(["lend", parent, own]) => lend(parent, own),
        _ => Err(format!("unknown arguments {args:?}")),
    };
    match result {
        Ok(()) => 0,
        Err(why) => {
            println!("fsprobe: {why}");
            1
        }
    }
}

fn refused(
    what: &str,
    result: Result<impl core::fmt::Debug, vessel_protocol::Refusal>,
    error: Error,
) -> Result<(), String> {
    match result {
        Err(r) if r.error == error => Ok(()),
        other => Err(format!("{what}: expected {error:?}, got {other:?}")),
    }
}

fn empty() -> Result<(), String> {
    refused("read_dir /", fs::read_dir("/"), Error::NotFound)?;
    refused("create /x", File::create("/x"), Error::NotFound)?;
    refused("open /data", File::open_dir("/data", fs::Rights::READ), Error::NotFound)?;
    let mounts = fs::mounts(0).map_err(|r| format!("mounts: {r}"))?;
    if !mounts.is_empty() {
        return Err(format!("mounts: {mounts:?}"));
    }
    Ok(())
}

fn isolated(tokens: &[&str]) -> Result<(), String> {
    let mounts = fs::mounts(0).map_err(|r| format!("mounts: {r}"))?;
    if mounts.len() != 1 || mounts[0].path != "/" {
        return Err(format!("mounts: {mounts:?}"));
    }
    for path in ["/tmp/secret", "/data", "../tmp/secret", "/../../../tmp/secret", "/tmp"] {
        refused(path, fs::metadata(path), Error::NotFound)?;
    }
    let client = fs::client().map_err(|r| format!("client: {r}"))?;
    for token in tokens {
        let token: u64 = token.parse().map_err(|_| format!("bad token {token}"))?;
        refused("the parent's handle", client.read(token, 16), Error::InvalidHandle)?;
    }
    // The parent cannot be reached by mounting either.
    refused("mount blk:blk1", fs::mount(0, "/x", "blk:blk1"), Error::AccessDenied)
        .or_else(|_| refused("mount blk:blk1", fs::mount(0, "/x", "blk:blk1"), Error::NotFound))?;
    let parent = vessel_rt::container::own().map(|c| c.parent).unwrap_or(0);
    refused("mount into the parent", fs::mount(parent, "/", "mem"), Error::NoSuchContainer)?;
    fs::write("/mine.txt", b"child data").map_err(|r| format!("write: {r}"))?;
    let back = fs::read("/mine.txt").map_err(|r| format!("read: {r}"))?;
    if back != b"child data" {
        return Err(String::from("/mine.txt reads back differently"));
    }
    let names: Vec<String> =
        fs::read_dir("/").map_err(|r| format!("read_dir: {r}"))?.into_iter().map(|d| d.name).collect();
    if names != ["mine.txt"] {
        return Err(format!("/ lists {names:?}"));
    }
    Ok(())
}

fn fill() -> Result<(), String> {
    let mut f = File::open_with("/fill", OpenFlags::WRITE | OpenFlags::CREATE).map_err(|r| format!("create: {r}"))?;
    let piece = vec![0x5Au8; fs::MAX_IO];
    let mut written = 0usize;
    while written < 64 << 20 {
        match f.write(&piece) {
            Ok(n) => written += n,
            Err(r) if r.error == Error::NoSpace => return Ok(()),
            Err(r) => return Err(format!("after {written} bytes: {r}")),
        }
    }
    Err(format!("{written} bytes written without NoSpace"))
}

fn lend(parent: &str, own: &str) -> Result<(), String> {
    use vessel_rt::ipc::Memory;
    let parent: u64 = parent.parse().map_err(|_| format!("bad id {parent}"))?;
    let own: u64 = own.parse().map_err(|_| format!("bad id {own}"))?;
    match Memory::lend(1, parent) {
        Err(Error::NoSuchContainer) => {}
        other => return Err(format!("lend to the parent: {other:?}")),
    }
    let mine = Memory::lend(1, own).map_err(|e| format!("lend to itself: {e}"))?;
    let _ = mine.0.delete();
    // Looking up goes downwards only too, and the boot file system is the root container's.
    match vessel_rt::container::lookup(parent) {
        Err(Error::NoSuchContainer) => {}
        other => return Err(format!("lookup of the parent: {other:?}")),
    }
    match vessel_rt::container::lookup(own) {
        Ok(info) if info.id == own && info.parent == parent => {}
        other => return Err(format!("lookup of itself: {other:?}")),
    }
    let mut byte = [0u8; 1];
    match vessel_rt::sys::bootfs_read(0, &mut byte) {
        Err(Error::AccessDenied) => {}
        other => return Err(format!("bootfs_read outside the root: {other:?}")),
    }
    Ok(())
}
