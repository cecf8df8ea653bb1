//! `poweroff [-n]`: asks `vfs` to write every file system of this container's namespace to
//! disk, then switches the machine off (the kernel's `Power`: ACPI S5; root container only).
//! If the sync fails nothing is switched off; `-n` skips the sync. `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_rt::abi::{Error, POWER_OFF};
use vessel_rt::{eprintln, fs, sys};

vessel_rt::entry!(main);

const USAGE: &str = "usage: poweroff [-n]\n  writes the file systems to disk, then switches the machine off (root container \
                     only)\n  -n: do not sync first\n";

fn main() -> i32 {
    let command = match tool::begin("poweroff", USAGE, "n") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if let Some(operand) = command.operands.first() {
        return tool::misuse("poweroff", format_args!("unexpected operand {operand}"));
    }
    if !command.flags.has('n') {
        // `NotFound`: no `vfs`, or nothing mounted here: nothing a sync could save.
        if let Err(r) = fs::client().and_then(|_| fs::sync_all())
            && r.error != Error::NotFound
        {
            eprintln!("poweroff: cannot write the file systems to disk: {r}; not switching off (-n skips the sync)");
            return 1;
        }
    }
    match sys::power(POWER_OFF) {
        Error::AccessDenied => {
            eprintln!("poweroff: only the root container may switch the machine off (access denied)")
        }
        Error::NotFound => eprintln!("poweroff: the firmware's ACPI tables give no way to switch off (not found)"),
        e => eprintln!("poweroff: the machine did not switch off: {e}"),
    }
    1
}
