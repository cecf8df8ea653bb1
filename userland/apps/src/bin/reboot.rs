//! `reboot [-n]`: asks `vfs` to write every file system of this container's namespace to
//! disk, then resets the machine (the kernel's `Power`; root container only). If the sync fails
//! nothing is reset; `-n` skips the sync. `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_rt::abi::{Error, POWER_REBOOT};
use vessel_rt::{eprintln, fs, sys};

vessel_rt::entry!(main);

const USAGE: &str = "usage: reboot [-n]\n  writes the file systems to disk, then resets the machine (root container only)\n  -n: do \
     not sync first\n";

fn main() -> i32 {
    let command = match tool::begin("reboot", USAGE, "n") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if let Some(operand) = command.operands.first() {
        return tool::misuse("reboot", format_args!("unexpected operand {operand}"));
    }
    if !command.flags.has('n') {
        // `NotFound`: no `vfs`, or nothing mounted here: nothing a sync could save.
        if let Err(r) = fs::client().and_then(|_| fs::sync_all())
            && r.error != Error::NotFound
        {
            eprintln!("reboot: cannot write the file systems to disk: {r}; not resetting (-n skips the sync)");
            return 1;
        }
    }
    match sys::power(POWER_REBOOT) {
        Error::AccessDenied => eprintln!("reboot: only the root container may reset the machine (access denied)"),
        e => eprintln!("reboot: the machine did not reset: {e}"),
    }
    1
}
