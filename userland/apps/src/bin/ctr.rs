//! `ctr`: containers from the command line, through `proc`, `vfs` and `device`. Its arguments
//! are commands separated by `,` (so one line can run a session); `$` in a command stands for
//! the container the last `create` made. A container is named by its name (`--name`, unique
//! among its siblings) or its id in hex (`0x` optional). A failed command prints the refusal
//! and makes `ctr` exit 1; `run` and `exec` exit with the program's status.
//!
//! - `create [OPTIONS]`: a child of our container; prints its id.
//! - `run [OPTIONS] [-i] [--keep] PROGRAM [ARGS]`: creates a container, runs the program there,
//!   waits, prints how it ended and destroys the container (unless `--keep`; killed, `ctr`
//!   leaves nothing either: the container is tied to it, `proc`'s `tie`). With `-i` the
//!   program runs on a console of the container's own (plugged into it), which our terminal
//!   shows while it runs (`ctr run -i vsh`: a shell inside the container); without, it writes
//!   to our terminal, passed through.
//! - `exec CONTAINER PROGRAM [ARGS]`: a new process in a running container, in the foreground.
//! - `spawn CONTAINER PROGRAM [ARGS]`: the same, without waiting.
//! - `list`: the tree of containers from ours down (id, name, members, memory).
//! - `ps [CONTAINER]`: the processes of a container and below (through `bin/ps`).
//! - `info CONTAINER`: state, members, limits and usage.
//! - `destroy CONTAINER`: destroys it and everything in it.
//! - `device add|remove|list|plug …`: passthrough (below).
//!
//! OPTIONS: `--name NAME`; `--root FILE.vsf` (the container's `/` is that FAT image of ours) or
//! `--new-root SIZE` (a new one, `/tmp/ctr-<id>.vsf`, removed with the container); `--memory
//! SIZE` (`64M`, `1G`, bytes without a unit), `--processes N`, `--threads N`, `--objects N`
//! (limits; the default is what our container has left); `--device DEV[:ro][:exclusive]`
//! (repeatable: one of our devices passed through, shared and read-write unless said);
//! `--virtual null,zero,random,console` (virtual devices plugged into it).
//!
//! Programs: a name with a `/` is a file of the container's own tree; a bare name is the
//! container's `/bin/NAME` if it has one, else the boot file system's `bin/NAME`. They write to
//! our terminal (`TTY`, passed through to the container, shared).
//!
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
//! - `device restart <device>`: restarts that device's driver on its own (root container; a
//!   disk, the serial port, the keyboard or the clock), as after a crash of it: what the driver
//!   held fails or is dropped, its sessions go on.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::Rights;
use vessel_proc_protocol::{Ending, Limits, UNLIMITED};
use vessel_protocol::Refusal;
use vessel_rt::abi::{ContainerInfo, Error};
use vessel_rt::device::Devices;
use vessel_rt::proc::Proc;
use vessel_rt::{eprintln, println};

vessel_rt::entry!(main);

const USAGE: &str = "usage: ctr COMMAND [, COMMAND...]
  create [OPTIONS]                       a child container; prints its id
  run [OPTIONS] [-i] [--keep] PROGRAM [ARGS]  run PROGRAM in a new container, then destroy it
  exec CONTAINER PROGRAM [ARGS]          run PROGRAM in a running container and wait
  spawn CONTAINER PROGRAM [ARGS]         start PROGRAM there without waiting
  list | ps [CONTAINER] | info CONTAINER | destroy CONTAINER
  device add|remove|list|plug ...        device passthrough (ctr device for its usage)
OPTIONS: --name NAME, --root FILE.vsf | --new-root SIZE, --memory SIZE, --processes N,
  --threads N, --objects N, --device DEV[:ro][:exclusive] (repeatable),
  --virtual null,zero,random,console
CONTAINER: a name, an id in hex, or $ (the last one created)";

fn main() -> i32 {
    let Some(proc) = Proc::get() else {
        eprintln!("ctr: not started by proc");
        return 1;
    };
    let args: Vec<&str> = vessel_rt::args().skip(1).collect();
    if args.is_empty() || args == ["--help"] {
        println!("{USAGE}");
        return if args.is_empty() { 2 } else { 0 };
    }
    let mut last = 0u64;
    let mut status = 0;
    for command in args.split(|a| *a == ",") {
        match run(proc, command, &mut last) {
            Ok(code) => status = if status != 0 { status } else { code },
            Err(e) => {
                eprintln!("ctr: {}: {}", command.join(" "), e.reason);
                status = 1;
            }
        }
    }
    status
}

fn refuse(why: String) -> Refusal {
    Refusal::new(Error::InvalidArgument, why)
}

/// The container `word` names: `$`, an id in hex, or a name.
fn id(word: Option<&&str>, last: u64) -> Result<u64, Refusal> {
    match word {
        Some(&"$") if last == 0 => Err(refuse(String::from("$: no container created yet"))),
        Some(&"$") => Ok(last),
        Some(w) => match u64::from_str_radix(w.trim_start_matches("0x"), 16) {
            Ok(id) => Ok(id),
            Err(_) => Proc::get()
                .and_then(|p| p.containers().ok())
                .and_then(|all| all.into_iter().find(|&(c, _)| name_of(c).as_deref() == Some(*w)))
                .map(|(c, _)| c)
                .ok_or_else(|| {
                    Refusal::new(Error::NoSuchContainer, format!("no container named {w:?} (nor an id in hex)"))
                }),
        },
        None => Ok(0),
    }
}

/// A container's name, if it has one.
fn name_of(container: u64) -> Option<String> {
    Proc::get()?.container_name(container).ok().filter(|n| !n.is_empty())
}

/// A number of bytes: `64M`, `1G`, `512K`, or plain bytes.
fn bytes(text: &str) -> Result<u64, Refusal> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "m" | "MiB" => 20,
        "G" | "g" | "GiB" => 30,
        _ => return Err(refuse(format!("{text:?} is not a size (like 64M)"))),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| refuse(format!("{text:?} is not a size (like 64M)")))
}

/// What `create` and `run` were told.
#[derive(Default)]
struct Options<'a> {
    name: Option<&'a str>,
    root: Option<&'a str>,
    new_root: Option<u64>,
    limits: Limits,
    devices: Vec<&'a str>,
    virtual_devices: Vec<&'a str>,
    interactive: bool,
    keep: bool,
}

/// Parses the options before the program (`run`) or all of them (`create`); returns the
/// options and the words left.
fn options<'a>(words: &[&'a str], allow_run: bool) -> Result<(Options<'a>, Vec<&'a str>), Refusal> {
    let mut o = Options::default();
    let mut rest = words.iter().copied();
    let value = |rest: &mut core::iter::Copied<core::slice::Iter<'_, &'a str>>, flag: &str| {
        rest.next().ok_or_else(|| refuse(format!("{flag} needs a value")))
    };
    let count = |text: &str| text.parse::<u64>().map_err(|_| refuse(format!("{text:?} is not a number")));
    while let Some(word) = rest.next() {
        match word {
            "--name" => {
                let name = value(&mut rest, word)?;
                if name.is_empty() || name == "$" || u64::from_str_radix(name.trim_start_matches("0x"), 16).is_ok() {
                    return Err(refuse(format!("{name:?} cannot be a name (it reads as an id)")));
                }
                o.name = Some(name);
            }
            "--root" => o.root = Some(value(&mut rest, word)?),
            "--new-root" => o.new_root = Some(bytes(value(&mut rest, word)?)?),
            "--memory" => o.limits.0[0] = bytes(value(&mut rest, word)?)?.div_ceil(4096),
            "--processes" => o.limits.0[1] = count(value(&mut rest, word)?)?,
            "--threads" => o.limits.0[2] = count(value(&mut rest, word)?)?,
            "--objects" => o.limits.0[3] = count(value(&mut rest, word)?)?,
            "--device" => o.devices.push(value(&mut rest, word)?),
            "--virtual" => o.virtual_devices.extend(value(&mut rest, word)?.split(',').filter(|k| !k.is_empty())),
            "-i" | "--interactive" if allow_run => o.interactive = true,
            "--keep" if allow_run => o.keep = true,
            "--rm" if allow_run => o.keep = false,
            flag if flag.starts_with('-') => return Err(refuse(format!("unknown option {flag}"))),
            first => {
                let mut left = alloc::vec![first];
                left.extend(rest);
                return Ok((o, left));
            }
        }
    }
    if o.root.is_some() && o.new_root.is_some() {
        return Err(refuse(String::from("--root and --new-root: one or the other")));
    }
    Ok((o, Vec::new()))
}

/// A container `create` made, and the console plugged into it (`--virtual console`), if any.
struct Made {
    id: u64,
    console: Option<String>,
}

/// Creates a container as `o` says: limits, name, root, devices. Undone if a step fails.
fn create(proc: Proc, o: &Options<'_>) -> Result<Made, Refusal> {
    let container = proc.create_named(0, o.limits, o.name.unwrap_or(""))?;
    let mut console = None;
    let made = (|| {
        if let Some(file) = o.root {
            vessel_rt::fs::mount(container, "/", &format!("vsf:{file}"))?;
        }
        if let Some(size) = o.new_root {
            let file = scratch_root(container);
            vessel_rt::fs::create_vsf(&file, size)?;
            vessel_rt::fs::mount(container, "/", &format!("vsf:{file}"))?;
        }
        let devices = Devices::get()?;
        for spec in &o.devices {
            let mut parts = spec.split(':');
            let name = parts.next().unwrap_or("");
            let (mut rights, mut exclusive) = (Rights::READ_WRITE, false);
            for flag in parts {
                match flag {
                    "ro" => rights = Rights::READ,
                    "exclusive" => exclusive = true,
                    "shared" => exclusive = false,
                    _ => return Err(refuse(format!("--device {spec}: unknown flag {flag:?} (ro, exclusive)"))),
                }
            }
            devices.grant(container, name, rights, exclusive)?;
        }
        for kind in &o.virtual_devices {
            let name = devices.plug(container, kind)?;
            if *kind == "console" {
                console.get_or_insert(name);
            }
        }
        Ok(())
    })();
    match made {
        Ok(()) => Ok(Made { id: container, console }),
        Err(e) => {
            let _ = proc.destroy(container);
            if o.new_root.is_some() {
                let _ = vessel_rt::fs::remove(&scratch_root(container));
            }
            Err(e)
        }
    }
}

/// Destroys `container`, its root unmounted first (synced: a VSF stays whole) and a scratch
/// root (`--new-root`) removed.
fn destroy(proc: Proc, container: u64) -> Result<(), Refusal> {
    let _ = vessel_rt::fs::unmount(container, "/");
    proc.destroy(container)?;
    let scratch = scratch_root(container);
    if vessel_rt::fs::metadata(&scratch).is_ok() {
        vessel_rt::fs::remove(&scratch)?;
    }
    Ok(())
}

/// Where `--new-root` keeps a container's root.
fn scratch_root(container: u64) -> String {
    format!("/tmp/ctr-{container:016x}.vsf")
}

/// The path `program` has in `container`: its own `/bin/NAME` if there is one, else the boot
/// file system's `bin/NAME`; a name with a `/` as it is.
fn program_path(container: u64, program: &str) -> String {
    if program.contains('/') {
        return String::from(program);
    }
    let own = format!("/bin/{program}");
    let found = vessel_rt::fs::client()
        .and_then(|c| c.open_in(container, &own, vessel_vfs_protocol::OpenFlags::READ))
        .map(|opened| {
            if let Ok(c) = vessel_rt::fs::client() {
                let _ = c.close(opened.handle);
            }
        });
    if found.is_ok() { own } else { format!("bin/{program}") }
}

/// Starts `program` in `container` on our terminal and waits for it in the foreground (Ctrl-C
/// ends it); its status as a shell gives it. The program writes to our terminal (a grant of it,
/// shared), and reads it too if `interactive`; with a `console` of the container's own, it
/// reads and writes only that, shown on our terminal while it runs.
fn foreground(
    proc: Proc,
    container: u64,
    (program, args): (&str, &[&str]),
    interactive: bool,
    console: Option<&str>,
) -> Result<i32, Refusal> {
    let tty = vessel_rt::var("TTY");
    let devices = Devices::get().ok();
    let mut env = String::new();
    if let Some(console) = console {
        env.push_str(&format!("TTY={console}\0STDIN=tty:{console}\0STDOUT=tty:{console}\0STDERR=tty:{console}\0"));
    } else if let (Some(tty), Some(devices)) = (tty, devices) {
        // Shared with the container so its programs can write (and, with -i, read) there.
        match devices.grant(container, tty, Rights::READ_WRITE, false) {
            Ok(()) => {}
            Err(e) if e.error == Error::Busy => {}
            Err(e) => return Err(e),
        }
        env.push_str(&format!("TTY={tty}\0STDOUT=tty:{tty}\0STDERR=tty:{tty}\0"));
        if interactive {
            env.push_str(&format!("STDIN=tty:{tty}\0"));
        }
    } else if interactive {
        return Err(refuse(String::from("-i needs a terminal (TTY), and this ctr has none")));
    }
    let label = name_of(container).unwrap_or_else(|| format!("{container:#x}"));
    env.push_str(&format!("CONTAINER={label}\0PWD=/\0"));
    let path = program_path(container, program);
    // Our own session on the terminal, armed while the program runs: Ctrl-C ends it (a shell
    // started with -i opens a newer one, so Ctrl-C at its prompt stays its own). It shows the
    // container's console from before the program starts, so nothing it writes is missed.
    let terminal = tty.and_then(|t| vessel_rt::job::Interruptible::open(t).ok());
    // Closing the session ends the attachment too.
    let shown = match (terminal, console, devices) {
        (Some(t), Some(console), Some(devices)) => devices.client().attach(t.handle(), console).map(|_| ()),
        (None, Some(_), _) => Err(refuse(String::from("-i needs a terminal (TTY), and this ctr has none"))),
        _ => Ok(()),
    };
    let spawned = shown.and_then(|()| Ok(proc.spawn_env(container, &path, args, env.as_bytes(), &[])?.0));
    let pid = match spawned {
        Ok(started) => started,
        Err(e) => {
            if let Some(t) = terminal {
                t.close();
            }
            return Err(e);
        }
    };
    let mut ending = Err(Refusal::new(Error::PeerDied, "not waited for"));
    vessel_rt::job::wait_all(proc, &[(container, pid)], terminal, |_, ended| ending = ended);
    if let Some(t) = terminal {
        t.close();
    }
    let ending = ending?;
    Ok(match ending {
        Ending::Code(code) => code as i32,
        Ending::Fault => 139,
        Ending::Killed => 130,
    })
}

fn describe(code: i32) -> String {
    match code {
        139 => String::from("was killed by a fault"),
        130 => String::from("was killed"),
        code => format!("exited with code {code}"),
    }
}

fn run(proc: Proc, command: &[&str], last: &mut u64) -> Result<i32, Refusal> {
    match command {
        ["create", rest @ ..] => {
            let (o, left) = options(rest, false)?;
            if !left.is_empty() {
                return Err(refuse(format!("create takes options only, not {:?}", left.join(" "))));
            }
            *last = create(proc, &o)?.id;
            match o.name {
                Some(name) => println!("{:#018x} {name}", *last),
                None => println!("{:#018x}", *last),
            }
        }
        ["run", rest @ ..] => {
            let (o, left) = options(rest, true)?;
            let Some((program, args)) = left.split_first() else {
                return Err(refuse(String::from("run needs a program")));
            };
            let mut o = o;
            if o.interactive && !o.virtual_devices.contains(&"console") {
                o.virtual_devices.push("console");
            }
            let Made { id: container, console } = create(proc, &o)?;
            *last = container;
            // Killed before it destroys the container, ctr leaves nothing: proc destroys it (if
            // proc started this ctr; otherwise it could not see it end).
            if !o.keep
                && let Err(e) = proc.client().tie(container)
                && e.error != Error::NoSuchProcess
            {
                let _ = destroy(proc, container);
                return Err(e);
            }
            let console = console.filter(|_| o.interactive);
            let code = foreground(proc, container, (program, args), o.interactive, console.as_deref());
            if !o.keep {
                destroy(proc, container)?;
            }
            let code = code?;
            println!("ctr: {program} {}", describe(code));
            return Ok(code);
        }
        ["exec", which, program, args @ ..] => {
            let container = id(Some(which), *last)?;
            let code = foreground(proc, container, (program, args), true, None)?;
            if code != 0 {
                println!("ctr: {program} {}", describe(code));
            }
            return Ok(code);
        }
        ["spawn", which, program, args @ ..] => {
            let container = id(Some(which), *last)?;
            let path = program_path(container, program);
            let (pid, container) = proc.spawn(container, &path, args, &[])?;
            println!("ctr: {program} is pid {pid} in container {container:#018x}");
        }
        ["list"] => list(proc)?,
        ["ps", rest @ ..] => {
            let container = id(rest.first(), *last)?;
            let hex = format!("{container:x}");
            let args: &[&str] = if container == 0 { &[] } else { &["-c", &hex] };
            let env = vessel_rt::env().fold(String::new(), |mut e, (n, v)| {
                e.push_str(&format!("{n}={v}\0"));
                e
            });
            let (pid, _) = proc.spawn_env(0, "bin/ps", args, env.as_bytes(), &[])?;
            if proc.wait(0, pid)? != Ending::Code(0) {
                return Ok(1);
            }
        }
        ["info", rest @ ..] => show(&proc.info(id(rest.first(), *last)?)?),
        ["destroy", which] => {
            let container = id(Some(which), *last)?;
            destroy(proc, container)?;
            println!("ctr: destroyed {container:#018x}");
        }
        ["device", rest @ ..] => device(proc, rest, *last)?,
        [other, ..] => return Err(refuse(format!("unknown command {other:?}; ctr --help"))),
        [] => return Err(refuse(String::from("an empty command; ctr --help"))),
    }
    Ok(0)
}

/// The tree from our container down: id, name, members, memory in use.
fn list(proc: Proc) -> Result<(), Refusal> {
    let all = proc.containers()?;
    let own = vessel_rt::container::own().map(|c| c.id).unwrap_or(0);
    println!("{:<22} {:<16} {:>7} {:>10}", "CONTAINER", "NAME", "MEMBERS", "MEMORY");
    let mut stack = alloc::vec![(own, 0usize)];
    while let Some((container, depth)) = stack.pop() {
        let info = proc.info(container).ok();
        let members = info.map_or(0, |i| i.members);
        let memory = info.map_or(0, |i| i.usage[0] * 4096);
        let name = if container == own { String::from("(this one)") } else { name_of(container).unwrap_or_default() };
        let id = format!("{:width$}{container:#018x}", "", width = 2 * depth);
        println!("{id:<22} {name:<16} {members:>7} {:>10}", vessel_apps::units::bytes(memory));
        let mut children: Vec<u64> = all.iter().filter(|&&(_, p)| p == container).map(|&(c, _)| c).collect();
        children.sort_unstable();
        stack.extend(children.into_iter().rev().map(|c| (c, depth + 1)));
    }
    Ok(())
}

fn show(info: &ContainerInfo) {
    let state = if info.state == 0 { "alive" } else { "being destroyed" };
    let name = name_of(info.id).map(|n| format!(" ({n})")).unwrap_or_default();
    println!("container {:#018x}{name}: {state}, depth {}", info.id, info.depth);
    println!("  parent    {:#018x}", info.parent);
    println!("  members   {} processes, {} child containers", info.members, info.children);
    let limit = |value: u64, text: &dyn Fn(u64) -> String| {
        // An inherited limit under an unlimited root is "all that is left of 2^64": unlimited.
        if value == UNLIMITED || value > 1 << 63 { String::from("unlimited") } else { text(value) }
    };
    let plain = |v: u64| format!("{v}");
    let pages = |v: u64| vessel_apps::units::bytes(v * 4096);
    let rows: [(&str, &dyn Fn(u64) -> String); 5] =
        [("memory", &pages), ("processes", &plain), ("threads", &plain), ("objects", &plain), ("cap slots", &plain)];
    for (i, (name, text)) in rows.iter().enumerate() {
        println!("  {name:<10} {:>10} of {}", text(info.usage[i]), limit(info.limits[i], text));
    }
}

const DEVICE_USAGE: &str = "usage: device add <container> <device> [--shared|--exclusive] [--ro], \
    device remove <container> <device>, device list [<container>], device plug <container|0> <null|zero|random|console>, \
    device restart <device>";

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
        ["restart", name] => {
            Devices::connect()?.client().restart(name)?;
            println!("ctr: {name}: its driver restarted");
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
