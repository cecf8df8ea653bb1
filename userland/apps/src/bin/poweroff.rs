//! `poweroff [-n]`: asks `vfs` to write every file system to disk, then switches the machine off (the kernel's `Power`: ACPI S5; root container only).
//! If the sync fails nothing happens; `-n` skips the sync. `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use vessel_rt::abi::POWER_OFF;

vessel_rt::entry!(main);

const USAGE: &str = "usage: poweroff [-n]\n  writes the file systems to disk, then switches the machine off (root container \
                     only)\n  -n: do not sync first\n";

fn main() -> i32 {
    vessel_apps::tool::power("poweroff", USAGE, POWER_OFF, "switch the machine off")
}
