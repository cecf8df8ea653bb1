//! The `device` server: the one program with the platform capability. It enumerates PCI,
//! drives the devices it has drivers for, and serves the device protocol: a registry where each
//! container sees only the devices its parent granted it.
//!
//! (Being written: enumeration and the virtio-blk driver.)
#![no_std]
#![no_main]
#![allow(dead_code)] // while the server is being written

extern crate alloc;

mod blk;
mod hal;
mod mmio;
mod pci;
mod virtio;

use vessel_rt::ipc::Notification;
use vessel_rt::platform::Platform;
use vessel_rt::println;

vessel_rt::entry!(main);

/// Notification bit of the first block device's interrupt.
const BLK_BIT: u64 = 1;

fn main() -> i32 {
    let Some(platform) = Platform::inherited() else {
        println!("device: no platform capability; nothing to drive");
        return 1;
    };
    hal::init(platform);
    let mut root = match pci::root(platform) {
        Ok(root) => root,
        Err(e) => {
            println!("device: no PCI configuration access: {e}");
            return 1;
        }
    };
    let functions = pci::enumerate(&mut root);
    for f in &functions {
        println!(
            "device: pci {} {:04x}:{:04x} class {:02x}.{:02x}",
            f.at, f.info.vendor_id, f.info.device_id, f.info.class, f.info.subclass
        );
    }
    let events = match Notification::create().and_then(|n| n.bind().map(|()| n)) {
        Ok(n) => n,
        Err(e) => {
            println!("device: no event notification: {e}");
            return 1;
        }
    };
    for f in functions.iter().filter(|f| f.info.vendor_id == 0x1af4 && matches!(f.info.device_id, 0x1001 | 0x1042)) {
        match blk::Blk::new(&mut root, f, platform, events, BLK_BIT) {
            Ok(mut disk) => {
                println!("device: blk at {}: {} sectors", f.at, disk.sectors);
                disk.submit(1, blk::Op::Read { sector: 0, sectors: 1 });
                while !disk.idle() {
                    let _ = events.wait();
                    disk.on_interrupt();
                }
                for c in disk.completions() {
                    println!("device: read tag {} -> {:?}", c.tag, c.result.map(|d| d.len()));
                }
            }
            Err(e) => println!("device: blk at {}: {e}", f.at),
        }
    }
    loop {
        vessel_rt::time::sleep_ms(60_000);
    }
}
