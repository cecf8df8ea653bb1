//! `ctr`: containers from the command line, through `proc` (and `device` for passthrough). Its
//! arguments are commands separated by `,` (so one init line can run a session); `$` in a command
//! stands for the container the last `create` made (refused before any `create`). A container id
//! is written in hex (`0x` optional). A failed command prints the refusal and makes `ctr` exit 1.
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
//! - `device add <id> <device> [--shared|--exclusive] [--ro]`: grants one of our devices to a
//!   child container: shared (the default: we keep using it too) or exclusive (everyone else,
//!   us included, is refused with `Busy` until it is removed), read-write or with `--ro`
//!   read-only.
//! - `device remove <id> <device>`: revokes that grant (and the grants the child made from it);
//!   the child's open sessions on the device are refused from then on.
//! - `device list [id]`: the devices our container may use, one per line (name, class, rights,
//!   access, holder, size, as `lsdev` prints them). The `device` server answers each container
//!   only about itself, so with a container (below ours) `ctr` runs `bin/lsdev` there and waits
//!   for it: the list is what that container itself is told.
//! - `device plug <id|0> <null|zero|random|console>`: plugs a virtual device into a child
//!   container (0: ours), which owns it; prints its name.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;

use vessel_device_protocol::Rights;
use vessel_proc_protocol::{Ending, Limits, UNLIMITED};
use vessel_protocol::Refusal;
use vessel_rt::abi::{ContainerInfo, Error, QUOTA_RESOURCES};
use vessel_rt::device::Devices;
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
        Some(&"$") if last == 0 => Err(Refusal::new(Error::InvalidArgument, "$: no container created yet")),
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
        ["device", rest @ ..] => device(proc, rest, *last)?,
        _ => return Err(Refusal::new(Error::InvalidArgument, "unknown command (see the top of ctr.rs)")),
    }
    Ok(())
}

const DEVICE_USAGE: &str = "usage: device add <container> <device> [--shared|--exclusive] [--ro], \
    device remove <container> <device>, device list [<container>], device plug <container|0> <null|zero|random|console>";

fn usage(what: &str) -> Refusal {
    Refusal::new(Error::InvalidArgument, alloc::format!("{what}; {DEVICE_USAGE}"))
}

/// How long `device list <id>` waits for `bin/lsdev` in that container.
const LIST_TIMEOUT_NS: u64 = 10_000_000_000;

/// `device ...`: passthrough through the `device` server (see the top of this file).
fn device(proc: Proc, command: &[&str], last: u64) -> Result<(), Refusal> {
    match command {
        ["add", rest @ ..] => {
            // Flags may come anywhere after `add`; the rest is the container and the device.
            let (flags, words): (Vec<&str>, Vec<&str>) = rest.iter().copied().partition(|w| w.starts_with("--"));
            let [which, name] = words[..] else { return Err(usage("device add takes a container and a device")) };
            let (exclusive, rights) = grant_flags(&flags)?;
            let container = id(Some(&which), last)?;
            Devices::connect()?.grant(container, name, rights, exclusive)?;
            let access = if exclusive { "exclusive" } else { "shared" };
            println!("ctr: granted {name} to container {container:#018x} ({rights}, {access})");
        }
        ["remove", which, name] => {
            let container = id(Some(which), last)?;
            Devices::connect()?.revoke(container, name)?;
            println!("ctr: revoked {name} from container {container:#018x}");
        }
        ["list"] => list_own()?,
        ["list", which] => match id(Some(which), last)? {
            0 => list_own()?,
            container => list_in(proc, container)?,
        },
        ["plug", which, kind] => {
            let container = id(Some(which), last)?;
            let name = Devices::connect()?.plug(container, kind)?;
            match container {
                0 => println!("ctr: plugged {name} into this container"),
                _ => println!("ctr: plugged {name} into container {container:#018x}"),
            }
        }
        [] => return Err(usage("device needs a subcommand")),
        ["remove", ..] => return Err(usage("device remove takes a container and a device")),
        ["list", ..] => return Err(usage("device list takes at most a container")),
        ["plug", ..] => return Err(usage("device plug takes a container (0: ours) and a kind")),
        [other, ..] => return Err(usage(&alloc::format!("no device subcommand {other:?}"))),
    }
    Ok(())
}

/// `[--shared|--exclusive] [--ro]`, each at most once: (exclusive, rights).
fn grant_flags(flags: &[&str]) -> Result<(bool, Rights), Refusal> {
    let mut exclusive = None;
    let mut read_only = false;
    for &flag in flags {
        match flag {
            "--shared" | "--exclusive" if exclusive.is_some() => {
                return Err(usage("--shared and --exclusive: at most one, once"));
            }
            "--shared" => exclusive = Some(false),
            "--exclusive" => exclusive = Some(true),
            "--ro" if read_only => return Err(usage("--ro given twice")),
            "--ro" => read_only = true,
            _ => return Err(usage(&alloc::format!("unknown flag {flag:?}"))),
        }
    }
    Ok((exclusive.unwrap_or(false), if read_only { Rights::READ } else { Rights::READ_WRITE }))
}

/// The devices our container may use, one per line.
fn list_own() -> Result<(), Refusal> {
    let list = Devices::connect()?.list()?;
    if list.is_empty() {
        println!("ctr: this container may use no devices");
    }
    for entry in list {
        println!("{entry}");
    }
    Ok(())
}

/// The devices `container` may use: the server tells only the container itself, so `bin/lsdev`
/// asks from inside it.
fn list_in(proc: Proc, container: u64) -> Result<(), Refusal> {
    let (pid, container) = proc.spawn(container, "bin/lsdev", &[], &[])?;
    println!("ctr: the devices of container {container:#018x} (bin/lsdev, pid {pid} there):");
    let ending = match proc.wait_timeout(container, pid, LIST_TIMEOUT_NS) {
        Ok(ending) => ending,
        Err(refusal) => {
            let _ = proc.kill(container, pid);
            let _ = proc.wait(container, pid);
            return Err(refusal);
        }
    };
    match ending {
        Ending::Code(0) => Ok(()),
        other => {
            Err(Refusal::new(Error::DeviceError, alloc::format!("bin/lsdev in container {container:#018x} {other}")))
        }
    }
}
