//! `ps`: the processes `proc` started in this container and the containers below it, one line
//! each: pid, container id, program, state (a word) and memory. `ps -c ID` lists only the
//! processes of container `ID` (hex, as `ps` shows it). `--help` says this.
//!
//! Only what `proc` started is listed (`init`, `proc` itself and processes a program started
//! with the kernel's `Spawn` directly are not `proc`'s to describe).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;

use vessel_apps::tool;
use vessel_rt::abi::{Error, PAGE_SIZE};
use vessel_rt::proc::Proc;
use vessel_rt::{eprintln, println};

vessel_rt::entry!(main);

const USAGE: &str = "usage: ps [-c ID]\n  the processes of this container and the containers below it: pid, container, program, \
                     state, memory\n  -c ID: only those of container ID (hex)\n";

fn main() -> i32 {
    let command = match tool::begin("ps", USAGE, "c") {
        Ok(command) => command,
        Err(code) => return code,
    };
    let only = match (command.flags.has('c'), command.operands.as_slice()) {
        (false, []) => None,
        (true, [id]) => match container_id(id) {
            Some(id) => Some(id),
            None => return tool::misuse("ps", format_args!("{id} is not a container id")),
        },
        (true, _) => return tool::misuse("ps", "-c takes one container id"),
        (false, [operand, ..]) => return tool::misuse("ps", format_args!("unexpected operand {operand}")),
    };
    let Some(proc) = Proc::get() else {
        eprintln!("ps: no proc capability");
        return 1;
    };
    let pairs = match proc.processes(only.unwrap_or(0)) {
        Ok(pairs) => pairs,
        Err(r) => {
            eprintln!("ps: {r}");
            return 1;
        }
    };
    let mut rows = Vec::new();
    for (container, pid) in pairs.into_iter().filter(|&(c, _)| only.is_none_or(|id| id == c)) {
        match proc.process_info(container, pid) {
            Ok(detail) => rows.push(detail),
            // Reaped between the list and the question: it is gone, not an error.
            Err(r) if r.error == Error::NoSuchProcess => {}
            Err(r) => {
                eprintln!("ps: process {pid} of {container:#018x}: {r}");
                return 1;
            }
        }
    }
    rows.sort_by_key(|d| (d.container, d.pid));
    let width = rows.iter().map(|d| d.name.chars().count()).max().unwrap_or(0).max(4);
    println!("{:>5}  {:<18}  {:<width$}  {:<7}  {:>8}", "PID", "CONTAINER", "NAME", "STATE", "MEM");
    for d in rows {
        let container = format!("{:#018x}", d.container);
        let memory = vessel_apps::units::bytes(d.pages.saturating_mul(PAGE_SIZE));
        println!("{:>5}  {container:<18}  {:<width$}  {:<7}  {memory:>8}", d.pid, d.name, d.state.as_str());
    }
    0
}

/// A container id as `ps` prints it (hex, `0x` optional).
fn container_id(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u64::from_str_radix(digits, 16).ok().filter(|&id| id != 0)
}
