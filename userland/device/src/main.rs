//! The `device` server: the one program with the platform capability. It enumerates PCI,
//! drives the devices it has drivers for (virtio-blk, the CMOS clock), and serves the device
//! protocol: a registry where the root container owns the hardware and every other container
//! sees only what its parent granted it, plus the virtual devices plugged into it (`null`,
//! `zero`, `random`). See `docs/device.md`.
//!
//! One thread: requests and the disks' interrupts (bits of a notification bound to it) arrive
//! through the same receive; block requests keep their replies until the disk answers, so a
//! slow disk never holds up other clients.
#![no_std]
#![no_main]

extern crate alloc;

mod blk;
mod console;
mod disks;
mod fb;
mod hal;
mod input;
mod kbd;
mod keep;
mod mmio;
mod ops;
mod pci;
mod registry;
mod rng;
mod rtc;
mod serial;
mod virtio;

use alloc::vec::Vec;

use vessel_device_protocol::Class;
use vessel_protocol::Dispatched;
use vessel_rt::abi::ObjectKind;
use vessel_rt::ipc::{Cap, Endpoint, Notification};
use vessel_rt::platform::Platform;
use vessel_rt::println;
use vessel_rt::server::{Incoming, Keeper, Server};

use registry::{Backend, Device, Registry};

vessel_rt::entry!(main);

/// How often requests make the server forget containers that ended.
const SWEEP_NS: u64 = 1_000_000_000;
/// Notification bit of the disks' interrupts (one bit: the server looks at every disk).
const BLK_BIT: u64 = 1;
/// Notification bit of the keyboard's interrupt.
const KBD_BIT: u64 = 2;
/// Notification bit of the serial port's interrupt.
const SERIAL_BIT: u64 = 4;
/// Notification bit the kernel signals when it printed (`LogBind`).
const LOG_BIT: u64 = 8;

fn main() -> i32 {
    let Some(platform) = Platform::inherited() else {
        println!("device: no platform capability; nothing to drive");
        return 1;
    };
    // `proc` hands a supervised service its endpoint last.
    let Some(Cap(ep)) = vessel_rt::handles_of(ObjectKind::Endpoint).next_back() else {
        println!("device: no endpoint to serve");
        return 1;
    };
    hal::init(platform);
    let mut root = match pci::root(platform) {
        Ok((root, how)) => {
            println!("device: PCI configuration through {how}");
            root
        }
        Err(e) => {
            println!("device: no PCI configuration access: {e}");
            return 1;
        }
    };
    let events = match Notification::create().and_then(|n| n.bind().map(|()| n)) {
        Ok(n) => n,
        Err(e) => {
            println!("device: no event notification: {e}");
            return 1;
        }
    };
    let root_id = vessel_rt::container::own().map_or(0, |c| c.id);
    let mut registry = Registry::new(root_id);
    let mut disks = Vec::new();
    let mut functions = Vec::new();
    for f in pci::enumerate(&mut root) {
        let mut driver = None;
        if f.info.vendor_id == 0x1af4 && matches!(f.info.device_id, 0x1001 | 0x1042) {
            match blk::Blk::new(&mut root, &f, platform, events, BLK_BIT) {
                Ok(disk) => {
                    let name = registry.next_name("blk");
                    registry.add(Device {
                        name: name.clone(),
                        class: Class::Block,
                        backend: Backend::Blk(disks.len()),
                        plugged_for: None,
                        grants: Vec::new(),
                        blocks: disk.sectors,
                        block_size: ops::BLOCK,
                    });
                    println!("device: {name}: virtio-blk at {}, {} MiB", f.at, disk.sectors / 2048);
                    disks.push(disk);
                    driver = Some(name);
                }
                Err(e) => {
                    pci::disable(&mut root, f.at);
                    println!("device: virtio-blk at {}: not driven: {e}", f.at);
                }
            }
        }
        functions.push((f, driver));
    }
    // Every device an earlier instance drove is reset now (or disabled): DMA memory it left
    // behind can be reused.
    match platform.dma_quiesce() {
        Ok(0) => {}
        Ok(frames) => println!("device: {frames} DMA frames of an earlier instance returned"),
        Err(e) => println!("device: cannot return released DMA memory: {e}"),
    }
    // The CMOS clock: every PC has one (`State` drives it; the registry names it).
    registry.add(Device {
        name: registry.next_name("rtc"),
        class: Class::Clock,
        backend: Backend::Clock,
        plugged_for: None,
        grants: Vec::new(),
        blocks: 0,
        block_size: 0,
    });
    // The machine's console: the framebuffer text console, taken from the kernel (which draws
    // its log there until then) on the first write.
    registry.add(Device {
        name: registry.next_name("console"),
        class: Class::Console,
        backend: Backend::Console(0),
        plugged_for: None,
        grants: Vec::new(),
        blocks: 0,
        block_size: 0,
    });
    let kbd = match kbd::Kbd::new(platform, events, KBD_BIT) {
        Ok(kbd) => {
            registry.add(Device {
                name: registry.next_name("kbd"),
                class: Class::Keyboard,
                backend: Backend::Keyboard,
                plugged_for: None,
                grants: Vec::new(),
                blocks: 0,
                block_size: 0,
            });
            Some(kbd)
        }
        Err(e) => {
            println!("device: no PS/2 keyboard: {e}");
            None
        }
    };
    let serial = match serial::Serial::new(platform, events, SERIAL_BIT) {
        Ok(serial) => {
            registry.add(Device {
                name: registry.next_name("serial"),
                class: Class::Serial,
                backend: Backend::Serial,
                plugged_for: None,
                grants: Vec::new(),
                blocks: 0,
                block_size: 0,
            });
            Some(serial)
        }
        Err(e) => {
            println!("device: no serial port at COM2: {e}");
            None
        }
    };
    let mut state = ops::State::new(registry, (disks, root, (events, BLK_BIT)), functions, platform, (kbd, serial));
    state.restore();
    state.follow_log(events, LOG_BIT);
    println!("device: serving");
    let mut server = Server::new(Endpoint(Cap(ep)));
    let mut next_sweep = vessel_rt::time::now_ns() + SWEEP_NS;
    loop {
        let timeout = state.next_timeout(vessel_rt::time::now_ns());
        match server.next(timeout) {
            Ok(Incoming::Request { caller, mut message }) => {
                // Requests drive the sweep for ended containers (an idle server never wakes
                // for it): at most once a second, before the request, so no request sees a
                // grant of a container that ended a second ago.
                let now = vessel_rt::time::now_ns();
                if now >= next_sweep {
                    state.sweep();
                    next_sweep = now + SWEEP_NS;
                }
                if vessel_device_protocol::dispatch(&mut state, caller, &mut Keeper, &mut message) == Dispatched::Reply
                {
                    let _ = Server::answer(&message);
                }
            }
            Ok(Incoming::Notified(bits)) => {
                if bits & BLK_BIT != 0 {
                    state.on_disk_interrupt();
                }
                if bits & KBD_BIT != 0 {
                    state.on_keyboard_interrupt();
                }
                if bits & SERIAL_BIT != 0 {
                    state.on_serial_interrupt();
                }
                if bits & LOG_BIT != 0 {
                    state.on_log();
                }
            }
            Ok(Incoming::TimedOut) => state.answer_readers(),
            Err(e) => {
                println!("device: receive failed: {e}");
                return 1;
            }
        }
    }
}
