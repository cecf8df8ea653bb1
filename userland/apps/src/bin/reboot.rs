//! `reboot [-n]`: asks `vfs` to write every file system to disk, then resets the machine (the kernel's `Power`; root container only).
//! If the sync fails nothing happens; `-n` skips the sync. `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use vessel_rt::abi::POWER_REBOOT;

vessel_rt::entry!(main);

const USAGE: &str = "usage: reboot [-n]\n  writes the file systems to disk, then resets the machine (root container only)\n  -n: do \
     not sync first\n";

fn main() -> i32 {
    vessel_apps::tool::power("reboot", USAGE, POWER_REBOOT, "reset the machine")
}
