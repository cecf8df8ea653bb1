//! `ctr`: containers from the command line, through `proc`. Its arguments are commands separated
//! by `,` (so one init line can run a session); `$` in a command stands for the container the
//! last `create` made.
//!
//! - `create [pages processes threads objects cap_slots]`: a child of our container (limits
//!   default to what is left); prints its id.
//! - `run <program> [args]`: creates a container, runs the program there, waits, prints how it
//!   ended, destroys the container.
//! - `spawn <id> <program> [args]`: starts a program in an existing container.
//! - `list`: our container and everything below it (id, parent, members).
//! - `ps [id]`: processes in a container and below it.
//! - `info <id>`: state, members, limits and usage.
//! - `destroy <id>`: destroys a container and everything in it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use vessel_proc_protocol::{Limits, UNLIMITED};
use vessel_protocol::Refusal;
use vessel_rt::abi::{ContainerInfo, Error, QUOTA_RESOURCES};
use vessel_rt::println;
use vessel_rt::proc::Proc;

vessel_rt::entry!(main);

fn main() -> i32 {
    let Some(proc) = Proc::get() else {
        println!("ctr: not started by proc");
        return 1;
    };
    let args: Vec<&str> = vessel_rt::args().skip(1).collect();
    let mut last = 0u64;
    let mut status = 0;
    for command in args.split(|a| *a == ",") {
        if let Err(e) = run(proc, command, &mut last) {
            println!("ctr: {}: {e}", command.join(" "));
            status = 1;
        }
    }
    status
}

fn id(word: Option<&&str>, last: u64) -> Result<u64, Refusal> {
    match word {
        Some(&"$") => Ok(last),
        Some(w) => u64::from_str_radix(w.trim_start_matches("0x"), 16)
            .map_err(|_| Refusal::new(Error::InvalidArgument, alloc::format!("{w:?} is not a container id in hex"))),
        None => Ok(0),
    }
}

fn show(info: &ContainerInfo) {
    println!("container {:#018x} parent {:#018x} state {} depth {}", info.id, info.parent, info.state, info.depth);
    println!("  members {} children {}", info.members, info.children);
    for (i, name) in QUOTA_RESOURCES.iter().enumerate() {
        let limit = info.limits[i];
        // An inherited limit under an unlimited root is "all that is left of 2^64": unlimited.
        if limit == UNLIMITED || limit > 1 << 63 {
            println!("  {name:<10} {:>8} / unlimited", info.usage[i]);
        } else {
            println!("  {name:<10} {:>8} / {limit}", info.usage[i]);
        }
    }
}

fn run(proc: Proc, command: &[&str], last: &mut u64) -> Result<(), Refusal> {
    match command {
        ["create", limits @ ..] => {
            let mut l = Limits::default();
            for (slot, word) in l.0.iter_mut().zip(limits) {
                *slot = word
                    .parse()
                    .map_err(|_| Refusal::new(Error::InvalidArgument, alloc::format!("{word:?} is not a number")))?;
            }
            *last = proc.create(0, l)?;
            println!("ctr: created container {:#018x}", *last);
        }
        ["run", program, args @ ..] => {
            let container = proc.create(0, Limits::default())?;
            let (pid, _) = proc.spawn(container, program, args, &[])?;
            println!("ctr: {program} is pid {pid} in container {container:#018x}");
            let ending = proc.wait(container, pid);
            match ending {
                Ok(ending) => println!("ctr: {program} {ending}"),
                Err(refusal) => println!("ctr: {program}: cannot wait: {refusal}"),
            }
            proc.destroy(container)?;
            println!("ctr: container {container:#018x} destroyed");
        }
        ["spawn", which, program, args @ ..] => {
            let (pid, container) = proc.spawn(id(Some(which), *last)?, program, args, &[])?;
            println!("ctr: {program} is pid {pid} in container {container:#018x}");
        }
        ["list"] => {
            for (container, parent) in proc.containers()? {
                let members = proc.info(container).map_or(0, |i| i.members);
                println!("{container:#018x} parent {parent:#018x} members {members}");
            }
        }
        ["ps", rest @ ..] => {
            for (container, pid) in proc.processes(id(rest.first(), *last)?)? {
                println!("{container:#018x} pid {pid}");
            }
        }
        ["info", rest @ ..] => show(&proc.info(id(rest.first(), *last)?)?),
        ["destroy", which] => {
            proc.destroy(id(Some(which), *last)?)?;
            println!("ctr: destroyed");
        }
        _ => return Err(Refusal::new(Error::InvalidArgument, "unknown command (see the top of ctr.rs)")),
    }
    Ok(())
}
