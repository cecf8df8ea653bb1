//! `lsdev`: the devices this container may use, one per line (name, class, rights, how it is
//! held, size, PCI address). `lsdev --pci` lists every PCI function with its BARs and driver,
//! like `lspci -v` (root container only). `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use vessel_rt::device::Devices;
use vessel_rt::println;

vessel_rt::entry!(main);

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().skip(1).collect();
    let pci = match args.as_slice() {
        [] => false,
        ["--pci"] => true,
        ["--help"] => {
            println!(
                "usage: lsdev [--pci]\n  the devices this container may use; --pci: every PCI function (root only)"
            );
            return 0;
        }
        _ => {
            println!("lsdev: unknown arguments {args:?}; try lsdev --help");
            return 2;
        }
    };
    let devices = match Devices::connect() {
        Ok(d) => d,
        Err(e) => {
            println!("lsdev: cannot reach the device server: {e}");
            return 1;
        }
    };
    if pci {
        match devices.pci() {
            Ok(functions) => {
                for f in functions {
                    println!("{f}");
                }
                0
            }
            Err(e) => {
                println!("lsdev: {e}");
                1
            }
        }
    } else {
        match devices.list() {
            Ok(list) if list.is_empty() => {
                println!("lsdev: this container may use no devices");
                0
            }
            Ok(list) => {
                for entry in list {
                    println!("{entry}");
                }
                0
            }
            Err(e) => {
                println!("lsdev: {e}");
                1
            }
        }
    }
}
