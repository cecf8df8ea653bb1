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
        _ => 2,
    }
}
