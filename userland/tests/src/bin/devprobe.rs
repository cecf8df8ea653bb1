//! `devprobe <role> [args]`: the device-server client the tests in `usertest/device.rs` run
//! inside containers (a program of its own, so `probe`, of which the tests start a thousand at
//! once, stays small).
//!
//! - `dev-none`: exit 0 if this process holds no hardware capability at all (platform, ports,
//!   lines, MMIO, MSI) and `list` shows no device; else the number of the first failed check.
//! - `dev-expect NAME RIGHTS`: `list` shows exactly NAME with RIGHTS (`r-`, `rw`), opening it
//!   with those rights works and with more is refused (`MissingRights`); exit 0, else the check.
//! - `dev-open NAME`: exit with the error code of opening NAME read-only (0: it opened).
//! - `dev-read-until-error NAME`: open NAME read-only and read blocks 0-7 until a read fails;
//!   exit with that error's code (200 + the code if the open failed).
//! - `dev-shared NAME BYTES`: open NAME read-write, take a shared buffer of BYTES, write a
//!   pattern through it at block 64, read it back through it and with `read_blocks`, close;
//!   exit 0, 100 + the error code if `share` was refused, else the number of the failed check.
//! - `dev-shared-keep NAME BYTES`: the same, but exit without closing the session or freeing
//!   the buffer (its container's end must return the memory).
//! - `dev-console-write NAME TEXT`: clear console NAME and write TEXT at its top left; check
//!   that switching consoles is refused here (`AccessDenied`: only the root switches); exit 0,
//!   else the number of the failed check.
//! - `dev-console-read NAME`: read console NAME until a newline (30 s at most per read); exit 0
//!   if the line was `ok`, else the number of the failed check.
//! - `dev-attach TERMINAL CONSOLE`: open TERMINAL (read-write) and attach CONSOLE to it; exit
//!   with the refusal's error code, 0 if attached. `dev-attach-hold …`: the same, then stay
//!   until killed.
//! - `dev-restart NAME`: ask for NAME's driver to restart; exit with the refusal's error code, 0
//!   if it restarted.
//! - `dev-hammer-driver`: as `dev-hammer` below, but only the disk's driver restarts: for
//!   three seconds, the same session throughout, a write the restart failed (`DeviceError`)
//!   written again; then the same checks.
//! - `dev-hammer`: write self-checking 4 KiB groups over blocks `HAMMER_FIRST..+HAMMER_BLOCKS`
//!   of `blk0` until a write fails (the test kills the server), then reconnect (the server is
//!   restarted), check that every block is whole (never written, or exactly one round's
//!   block), write once more and exit 0; else 10 + the number of the failed check.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use vessel_device_protocol::Rights;
use vessel_rt::abi::{Error, ObjectKind};
use vessel_rt::device::Devices;
use vessel_rt::ipc::Cap;

fn rights(text: &str) -> Rights {
    Rights::parse(text).unwrap_or(Rights::NONE)
}

fn none() -> i32 {
    let hardware = [ObjectKind::Platform, ObjectKind::IoPorts, ObjectKind::Irq, ObjectKind::Mmio, ObjectKind::Msi];
    let holds = vessel_rt::handles()
        .iter()
        .any(|&h| Cap(h).inspect().is_ok_and(|i| hardware.iter().any(|k| *k as u32 == i.kind)));
    if holds {
        return 1;
    }
    let Ok(devices) = Devices::connect() else { return 2 };
    match devices.list() {
        Ok(list) if list.is_empty() => {}
        _ => return 3,
    }
    match devices.open("blk0", Rights::READ) {
        Err(r) if r.error == Error::NotFound && r.reason.contains("blk0") => 0,
        _ => 4,
    }
}

fn expect(name: &str, text: &str) -> i32 {
    let want = rights(text);
    let Ok(devices) = Devices::connect() else { return 1 };
    let Ok(list) = devices.list() else { return 2 };
    if list.len() != 1 || list[0].name != name || list[0].rights != want {
        return 3;
    }
    let Ok(device) = devices.open(name, want) else { return 4 };
    if want != Rights::READ_WRITE {
        match devices.open(name, Rights::READ_WRITE) {
            Err(r) if r.error == Error::MissingRights => {}
            _ => return 5,
        }
        if device.write_blocks(0, &[0; 512]).map_err(|r| r.error) != Err(Error::MissingRights) {
            return 6;
        }
    }
    if device.read_blocks(0, 1).map(|d| d.len()) != Ok(512) {
        return 7;
    }
    if device.close().is_err() {
        return 8;
    }
    0
}

fn open(name: &str) -> i32 {
    let Ok(devices) = Devices::connect() else { return -1 };
    match devices.open(name, Rights::READ) {
        Ok(d) => {
            let _ = d.close();
            0
        }
        Err(r) => r.error as i32,
    }
}

fn read_until_error(name: &str) -> i32 {
    let Ok(devices) = Devices::connect() else { return 255 };
    let device = match devices.open(name, Rights::READ) {
        Ok(d) => d,
        Err(r) => return 200 + r.error as i32,
    };
    loop {
        if let Err(r) = device.read_blocks(0, 8) {
            return r.error as i32;
        }
    }
}

fn shared(name: &str, bytes: &str, close: bool) -> i32 {
    let Ok(bytes) = bytes.parse::<u64>() else { return 1 };
    let Ok(devices) = Devices::connect() else { return 2 };
    let Ok(device) = devices.open(name, Rights::READ_WRITE) else { return 3 };
    let mut buffer = match device.share(bytes) {
        Ok(buffer) => buffer,
        Err(r) => return 100 + r.error as i32,
    };
    if buffer.as_slice().iter().any(|&b| b != 0) {
        return 4;
    }
    let blocks = bytes / 512;
    for (i, b) in buffer.as_mut_slice().iter_mut().enumerate() {
        *b = (i as u64 * 13 / 7) as u8 ^ 0xa5;
    }
    let pattern: Vec<u8> = buffer.as_slice().to_vec();
    if device.write_shared(&buffer, 64, blocks, 0).is_err() {
        return 5;
    }
    buffer.as_mut_slice().fill(0);
    if device.read_shared(&mut buffer, 64, blocks, 0).is_err() || buffer.as_slice() != pattern {
        return 6;
    }
    if device.read_blocks(64 + blocks - 1, 1).ok().as_deref() != Some(&pattern[pattern.len() - 512..]) {
        return 7;
    }
    if close {
        buffer.free();
        if device.close().is_err() {
            return 8;
        }
    }
    0
}

fn console_write(name: &str, text: &str) -> i32 {
    let Ok(devices) = Devices::connect() else { return 1 };
    let Ok(console) = devices.open(name, Rights::READ_WRITE) else { return 2 };
    let screen = alloc::format!("\x1b[2J\x1b[H{text}");
    if console.write(screen.as_bytes()) != Ok(screen.len() as u64) {
        return 3;
    }
    if devices.client().console("").map_err(|r| r.error).err() != Some(Error::AccessDenied) {
        return 4;
    }
    if console.close().is_err() {
        return 5;
    }
    0
}

fn console_read(name: &str) -> i32 {
    let Ok(devices) = Devices::connect() else { return 1 };
    let Ok(console) = devices.open(name, Rights::READ) else { return 2 };
    let mut line = Vec::new();
    while !line.ends_with(b"\n") {
        match devices.client().read(console.handle, 64, 30_000_000_000) {
            Ok(data) => line.extend(data.data),
            Err(_) => return 3,
        }
    }
    if line != b"ok\n" {
        return 4;
    }
    0
}

/// Where `dev-hammer` writes: 512 blocks from block 8192.
const HAMMER_FIRST: u64 = 8192;
const HAMMER_BLOCKS: u64 = 512;

/// Block `block` as written in round `round`: round, block, a filler, and an FNV-1a checksum
/// of the rest in the last 8 bytes.
fn hammer_block(round: u64, block: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..8].copy_from_slice(&round.to_le_bytes());
    b[8..16].copy_from_slice(&block.to_le_bytes());
    for (i, x) in b[16..504].iter_mut().enumerate() {
        *x = (round.wrapping_mul(31) ^ block ^ i as u64) as u8;
    }
    let sum = fnv(&b[..504]);
    b[504..].copy_from_slice(&sum.to_le_bytes());
    b
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Whether a block read back is whole: all zeros, or round `r`'s block `block` for some `r`.
fn whole(b: &[u8], block: u64) -> bool {
    if b.iter().all(|&x| x == 0) {
        return true;
    }
    let round = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    b == hammer_block(round, block)
}

/// Opens `blk0` read-write, retrying for up to 10 s while the server restarts.
fn reopen() -> Option<vessel_rt::device::Device> {
    for _ in 0..200 {
        if let Ok(device) = Devices::connect().and_then(|d| d.open("blk0", Rights::READ_WRITE)) {
            return Some(device);
        }
        vessel_rt::time::sleep_ms(50);
    }
    None
}

/// `dev-hammer` (`driver` false): the server dies under the writer, which reconnects. With
/// `driver` (`dev-hammer-driver`), only the disk's driver restarts: the writer writes for three
/// seconds with the same session, writing a round again when the restart failed it
/// (`DeviceError`, any other error ends it).
fn hammer(driver: bool) -> i32 {
    let Some(device) = reopen() else { return 11 };
    let groups = HAMMER_BLOCKS / 8;
    let mut round = 1u64;
    let start = vessel_rt::time::now_ns();
    // Write until the server dies under us (bounded: the test kills it within seconds); or,
    // while only the driver restarts, for three seconds, writing a round again when the
    // restart failed it.
    let failed = loop {
        if round > 1_000_000 {
            return 12;
        }
        if driver && vessel_rt::time::now_ns() - start > 3_000_000_000 {
            break Error::DeviceError;
        }
        let group = round % groups;
        let mut data = [0u8; 4096];
        for i in 0..8 {
            let block = HAMMER_FIRST + group * 8 + i;
            data[i as usize * 512..][..512].copy_from_slice(&hammer_block(round, block));
        }
        match device.write_blocks(HAMMER_FIRST + group * 8, &data) {
            Ok(()) => round += 1,
            Err(r) if driver && r.error == Error::DeviceError => {}
            Err(r) => break r.error,
        }
    };
    let device = match (driver, failed) {
        (false, Error::PeerDied) => match reopen() {
            Some(device) => device,
            None => return 14,
        },
        (true, Error::DeviceError) => device,
        _ => return 13,
    };
    for first in (HAMMER_FIRST..HAMMER_FIRST + HAMMER_BLOCKS).step_by(8) {
        let Ok(data) = device.read_blocks(first, 8) else { return 15 };
        for (i, b) in data.chunks(512).enumerate() {
            if !whole(b, first + i as u64) {
                return 16;
            }
        }
    }
    let again = hammer_block(round + 1, HAMMER_FIRST);
    if device.write_blocks(HAMMER_FIRST, &again).is_err()
        || device.read_blocks(HAMMER_FIRST, 1).ok().as_deref() != Some(&again[..])
    {
        return 17;
    }
    if device.close().is_err() {
        return 18;
    }
    0
}

/// `dev-grant CHILD NAME RIGHTS`: grant NAME to child container CHILD (hex or decimal);
/// exit with the error code (0: granted).
fn grant(child: &str, name: &str, text: &str) -> i32 {
    let child = child.strip_prefix("0x").map_or_else(|| child.parse().ok(), |h| u64::from_str_radix(h, 16).ok());
    let Ok(devices) = Devices::connect() else { return -1 };
    match devices.grant(child.unwrap_or(0), name, rights(text), false) {
        Ok(()) => 0,
        Err(r) => r.error as i32,
    }
}

/// `dev-attach TERMINAL CONSOLE`: open TERMINAL for reading and writing and show CONSOLE on it;
/// exit with the error code (0: attached). With `hold`, stay (until killed) once attached.
fn attach(terminal: &str, console: &str, hold: bool) -> i32 {
    let Ok(devices) = Devices::connect() else { return -1 };
    let Ok(session) = devices.open(terminal, Rights::READ_WRITE) else { return -2 };
    match devices.client().attach(session.handle, console) {
        Ok(_) if hold => loop {
            vessel_rt::time::sleep_ms(1000);
        },
        Ok(_) => 0,
        Err(r) => r.error as i32,
    }
}

/// `dev-restart NAME`: ask for NAME's driver to restart; exit with the error code (0: done).
fn restart(name: &str) -> i32 {
    let Ok(devices) = Devices::connect() else { return -1 };
    match devices.client().restart(name) {
        Ok(_) => 0,
        Err(r) => r.error as i32,
    }
}

vessel_rt::entry!(main);

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().collect();
    let arg = |i: usize| args.get(i).copied().unwrap_or("");
    match arg(1) {
        "dev-none" => none(),
        "dev-expect" => expect(arg(2), arg(3)),
        "dev-open" => open(arg(2)),
        "dev-read-until-error" => read_until_error(arg(2)),
        "dev-grant" => grant(arg(2), arg(3), arg(4)),
        "dev-shared" => shared(arg(2), arg(3), true),
        "dev-shared-keep" => shared(arg(2), arg(3), false),
        "dev-hammer" => hammer(false),
        "dev-hammer-driver" => hammer(true),
        "dev-restart" => restart(arg(2)),
        "dev-console-write" => console_write(arg(2), arg(3)),
        "dev-console-read" => console_read(arg(2)),
        "dev-attach" => attach(arg(2), arg(3), false),
        "dev-attach-hold" => attach(arg(2), arg(3), true),
        _ => 2,
    }
}
