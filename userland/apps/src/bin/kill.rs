//! `kill PID...`: ends processes `proc` started: `PID` in this container, or `CONTAINER:PID`
//! in the container with that id (hex, as `ps` shows it: this one or one below it). Each
//! failure is reported and the others are still ended; `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_apps::tool;
use vessel_rt::eprintln;
use vessel_rt::proc::Proc;

vessel_rt::entry!(main);

const USAGE: &str = "usage: kill PID... | kill CONTAINER:PID...\n  ends processes: PID in this container, or PID in \
                     container CONTAINER (hex id, as ps shows it)\n";

fn main() -> i32 {
    let command = match tool::begin("kill", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if command.operands.is_empty() {
        return tool::misuse("kill", "no process named");
    }
    let mut targets = alloc::vec::Vec::new();
    for operand in &command.operands {
        match target(operand) {
            Some(t) => targets.push((*operand, t)),
            None => return tool::misuse("kill", format_args!("{operand} is neither PID nor CONTAINER:PID")),
        }
    }
    let Some(proc) = Proc::get() else {
        eprintln!("kill: no proc capability");
        return 1;
    };
    let mut failed = false;
    for (operand, (container, pid)) in targets {
        if let Err(r) = proc.kill(container, pid) {
            tool::fail("kill", operand, r);
            failed = true;
        }
    }
    tool::status(failed)
}

/// `(container, pid)` of `PID` (container 0: this one) or `CONTAINER:PID`.
fn target(text: &str) -> Option<(u64, u64)> {
    let (container, pid) = match text.split_once(':') {
        Some((container, pid)) => {
            let digits = container.strip_prefix("0x").unwrap_or(container);
            (u64::from_str_radix(digits, 16).ok().filter(|&id| id != 0)?, pid)
        }
        None => (0, text),
    };
    let pid: u64 = pid.parse().ok()?;
    (pid != 0).then_some((container, pid))
}
