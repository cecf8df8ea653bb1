//! `init`, the first user process. The kernel starts it with the boot file system mapped and
//! the initial capabilities (the platform capability and the root container). It starts `proc`
//! first, handing it the root container and the `proc` endpoint; from then on every program
//! starts through `proc`. Then it carries out `etc/boot.plan`, which the build tool compiles from
//! the image spec (`docs/image-spec.md`), line by line (blank lines and `#` comments ignored):
//!
//! - `service NAME RESTARTS [ARGS...]`: `proc` supervises `bin/NAME` (restarted at most
//!   RESTARTS times); `device` also gets the platform capability.
//! - `run MODE [trusted] [hardware] PROGRAM [ARGS...]`: a program of the root container. MODE
//!   `once` waits for it, `start` does not, `keep` starts it again whenever it ends (a
//!   terminal's shell; it pauses a second after a quick end and gives up after five quick ends
//!   in a row). `trusted` also gives it a capability to the root container, `hardware` a
//!   platform capability (test images only).
//! - `container NAME [parent=P] [pages=N] [processes=N] [threads=N] [objects=N]
//!   [root=containers/NAME.vsf] [devices=D[:ro][:exclusive],...] [virtual=KIND,...]`: a
//!   container made through `proc`; its root is the boot file system's VSF copied to
//!   `/data/containers/NAME.vsf` the first time (then kept: the container's files persist), or to
//!   `/tmp/containers/` without a `/data`; devices are granted and virtual devices plugged.
//! - `in NAME MODE PROGRAM [ARGS...]`: a program of container NAME.
//!
//! Then it stays alive (sleeping), as the root of the process tree must.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::Rights as DeviceRights;
use vessel_proc_protocol::Limits;
use vessel_rt::abi::{ObjectKind, Rights};
use vessel_rt::ipc::{Cap, Endpoint};
use vessel_rt::platform::Platform;
use vessel_rt::proc::Proc;
use vessel_rt::{println, process};

vessel_rt::entry!(main);

/// Longest argument list a plan line may have.
const MAX_ARGS: usize = 32;

fn main() -> i32 {
    println!("init: started as process {}", vessel_rt::pid());
    let Some(bootfs) = vessel_rt::bootfs() else {
        println!("init: the kernel gave no boot file system");
        return 1;
    };
    let archive = match vessel_bootfs::Archive::new(bootfs) {
        Ok(archive) => archive,
        Err(e) => {
            println!("init: {e}");
            return 1;
        }
    };
    let Some(plan) = archive.get("etc/boot.plan") else {
        println!("init: no etc/boot.plan in the boot file system");
        return 1;
    };
    let root = vessel_rt::handles()
        .iter()
        .copied()
        .find(|&h| Cap(h).inspect().is_ok_and(|i| i.kind == ObjectKind::Container as u32));
    let Some(proc) = start_proc(root) else { return 1 };
    let platform = Platform::inherited();
    let mut boot = Boot { proc, root, platform, containers: Vec::new() };
    let text = core::str::from_utf8(plan.data).unwrap_or("");
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Err(why) = boot.step(line) {
            println!("init: etc/boot.plan:{}: {why}", n + 1);
        }
    }
    // Nothing else may get hardware from here on.
    if let Some(platform) = platform {
        let _ = platform.0.delete();
    }
    println!("init: all programs finished");
    loop {
        vessel_rt::time::sleep_ms(60_000);
    }
}

/// What init holds while it carries out the plan.
struct Boot {
    proc: Proc,
    root: Option<u32>,
    platform: Option<Platform>,
    /// The containers made so far: name, id.
    containers: Vec<(String, u64)>,
}

impl Boot {
    /// Carries out one plan line.
    fn step(&mut self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() > MAX_ARGS + 4 {
            return Err(format!("more than {MAX_ARGS} arguments"));
        }
        match words.as_slice() {
            ["service", "device", restarts, ..] => {
                start_device(self.proc, self.platform, restarts.parse().map_err(|_| "restarts: not a number")?);
                Ok(())
            }
            ["service", name, restarts, args @ ..] => {
                let restarts = restarts.parse().map_err(|_| String::from("restarts: not a number"))?;
                self.proc
                    .supervise(name, restarts, &format!("bin/{name}"), args)
                    .map(|_| ())
                    .map_err(|e| format!("cannot start the {name} server: {e}"))
            }
            ["run", mode, rest @ ..] => {
                let (trusted, rest) = flag(rest, "trusted");
                let (hardware, rest) = flag(rest, "hardware");
                let [path, args @ ..] = rest else { return Err(String::from("run: no program")) };
                let mut passed = Vec::new();
                for (wanted, cap) in [(trusted, self.root), (hardware, self.platform.map(|p| p.0.0))] {
                    if let (true, Some(cap)) = (wanted, cap)
                        && let Ok(copy) = Cap(cap).duplicate(Rights::all())
                    {
                        passed.push(copy.0);
                    }
                }
                self.run(0, mode, path, args, b"", &passed)
            }
            ["container", name, settings @ ..] => self.container(name, settings),
            ["in", name, mode, path, args @ ..] => {
                let id = self.id_of(name)?;
                let env = format!("CONTAINER={name}\0PWD=/\0");
                self.run(id, mode, path, args, env.as_bytes(), &[])
            }
            _ => Err(format!("not a plan line: {line:?}")),
        }
    }

    fn id_of(&self, name: &str) -> Result<u64, String> {
        self.containers.iter().find(|(n, _)| n == name).map(|&(_, id)| id).ok_or(format!("no container {name:?}"))
    }

    /// Runs `path` in `container` as `mode` says.
    fn run(
        &self,
        container: u64,
        mode: &str,
        path: &str,
        args: &[&str],
        env: &[u8],
        caps: &[u32],
    ) -> Result<(), String> {
        let proc = self.proc;
        match mode {
            "once" => {
                let ended =
                    proc.spawn_env(container, path, args, env, caps).and_then(|(pid, _)| proc.wait(container, pid));
                match ended {
                    Ok(ending) => println!("init: {path} {ending}"),
                    Err(e) => println!("init: cannot run {path}: {e}"),
                }
                Ok(())
            }
            "start" => proc
                .spawn_env(container, path, args, env, caps)
                .map(|_| ())
                .map_err(|e| format!("cannot start {path}: {e}")),
            "keep" => {
                keep_running(proc, container, path, args, env);
                Ok(())
            }
            other => Err(format!("{other:?} is not once, start or keep")),
        }
    }

    /// `container NAME key=value...`.
    fn container(&mut self, name: &str, settings: &[&str]) -> Result<(), String> {
        let mut limits = Limits::default();
        let (mut parent, mut root, mut devices, mut kinds) = (0, None, "", "");
        for setting in settings {
            let Some((key, value)) = setting.split_once('=') else {
                return Err(format!("{setting:?} is not key=value"));
            };
            let number = || value.parse::<u64>().map_err(|_| format!("{key}: {value:?} is not a number"));
            match key {
                "parent" if value == "-" => {}
                "parent" => parent = self.id_of(value)?,
                "pages" => limits.0[0] = number()?,
                "processes" => limits.0[1] = number()?,
                "threads" => limits.0[2] = number()?,
                "objects" => limits.0[3] = number()?,
                "root" => root = Some(value),
                "devices" => devices = value,
                "virtual" => kinds = value,
                _ => return Err(format!("unknown setting {key:?}")),
            }
        }
        let id = self.proc.create_named(parent, limits, name).map_err(|e| format!("container {name}: {e}"))?;
        self.containers.push((String::from(name), id));
        if let Some(image) = root {
            let file = self.root_file(name, image)?;
            let vfs = self.vfs()?;
            vfs.mount(id, "/", &format!("vsf:{file}")).map_err(|e| format!("container {name}: root {file}: {e}"))?;
        }
        if !devices.is_empty() || !kinds.is_empty() {
            let (endpoint, _) = self.proc.lookup("device").map_err(|e| format!("container {name}: {e}"))?;
            let device = vessel_device_protocol::Client::new(endpoint);
            for spec in devices.split(',').filter(|d| !d.is_empty()) {
                let mut parts = spec.split(':');
                let dev = parts.next().unwrap_or("");
                let flags: Vec<&str> = parts.collect();
                let rights = if flags.contains(&"ro") { DeviceRights::READ } else { DeviceRights::READ_WRITE };
                device
                    .grant(id, dev, rights, flags.contains(&"exclusive"))
                    .map_err(|e| format!("container {name}: device {dev}: {e}"))?;
            }
            for kind in kinds.split(',').filter(|k| !k.is_empty()) {
                device.plug(id, kind).map_err(|e| format!("container {name}: virtual {kind}: {e}"))?;
            }
        }
        println!("init: container {name} is {id:#018x}");
        Ok(())
    }

    fn vfs(&self) -> Result<vessel_vfs_protocol::Client<vessel_rt::ipc::Endpoint>, String> {
        let (endpoint, _) = self.proc.lookup("vfs").map_err(|e| format!("no vfs: {e}"))?;
        Ok(vessel_vfs_protocol::Client::new(endpoint))
    }

    /// Where container `name`'s root lives: `/data/containers/NAME.vsf` (copied from the boot
    /// file system's `image` the first time, then kept), or `/tmp/containers/NAME.vsf`.
    fn root_file(&self, name: &str, image: &str) -> Result<String, String> {
        use vessel_vfs_protocol::{MAX_IO, OpenFlags, ROOT};
        let vfs = self.vfs()?;
        // A disk at /data keeps the container's files across boots; memory does not.
        let disk = vfs.mounts(0).is_ok_and(|m| m.mounts.0.iter().any(|m| m.path == "/data" && !m.read_only));
        let base = if disk { "/data" } else { "/tmp" };
        let dir = format!("{base}/containers");
        let file = format!("{dir}/{name}.vsf");
        if vfs.stat(ROOT, &file).is_ok() {
            return Ok(file);
        }
        let _ = vfs.mkdir(ROOT, &dir);
        let from = vfs.open(ROOT, &format!("/boot/{image}"), OpenFlags::READ).map_err(|e| format!("{image}: {e}"))?;
        let create = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
        let to = vfs.open(ROOT, &file, create).map_err(|e| format!("{file}: {e}"))?;
        let copied = (|| loop {
            let data = vfs.read(from.handle, MAX_IO as u64)?.data;
            if data.is_empty() {
                return vfs.sync(to.handle).map(|_| ());
            }
            vfs.write(to.handle, &data)?;
        })();
        let _ = vfs.close(from.handle);
        let _ = vfs.close(to.handle);
        if let Err(e) = copied {
            let _ = vfs.remove(ROOT, &file);
            return Err(format!("copying {image} to {file}: {e}"));
        }
        println!("init: {file} made from /boot/{image}");
        Ok(file)
    }
}

/// Whether `rest` starts with `word`, and the rest after it.
fn flag<'a, 'b>(rest: &'b [&'a str], word: &str) -> (bool, &'b [&'a str]) {
    match rest.split_first() {
        Some((first, tail)) if *first == word => (true, tail),
        _ => (false, rest),
    }
}

/// Starts `path` in `container` on a thread of its own that starts it again whenever it ends.
fn keep_running(proc: Proc, container: u64, path: &str, args: &[&str], env: &[u8]) {
    let path = String::from(path);
    let args: Vec<String> = args.iter().map(|a| String::from(*a)).collect();
    let env = env.to_vec();
    let started = vessel_rt::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut quick = 0;
        while quick < 5 {
            let began = vessel_rt::time::now_ns();
            match proc.spawn_env(container, &path, &args, &env, &[]).and_then(|(pid, _)| proc.wait(container, pid)) {
                Ok(ending) => println!("init: {path} {ending}; starting it again"),
                Err(e) => println!("init: cannot run {path}: {e}"),
            }
            if vessel_rt::time::now_ns() - began < 1_000_000_000 {
                quick += 1;
                vessel_rt::time::sleep_ms(1000);
            } else {
                quick = 0;
            }
        }
        println!("init: {path} ended quickly five times in a row; not starting it again");
        1
    });
    if let Err(e) = started {
        println!("init: cannot keep it running: {e}");
    }
}

/// Asks `proc` to supervise `device` with a copy of the platform capability.
fn start_device(proc: Proc, platform: Option<Platform>, restarts: u64) {
    let Some(platform) = platform else {
        println!("init: the kernel gave no platform capability; no device server");
        return;
    };
    let copy = match platform.0.duplicate(Rights::all()) {
        Ok(copy) => copy,
        Err(e) => {
            println!("init: cannot copy the platform capability: {e}");
            return;
        }
    };
    if let Err(e) = proc.supervise_with("device", restarts, "bin/device", &[], &[copy.0]) {
        println!("init: cannot start the device server: {e}");
    }
}

/// Starts `proc` with the root container and the receiving side of a new endpoint; keeps a
/// send-only capability to it.
fn start_proc(root: Option<u32>) -> Option<Proc> {
    let endpoint = match Endpoint::create() {
        Ok(e) => e,
        Err(e) => {
            println!("init: cannot create the proc endpoint: {e}");
            return None;
        }
    };
    let client = endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE).ok()?;
    let mut caps = alloc::vec![endpoint.0.0];
    caps.extend(root);
    if let Err(e) = process::spawn_with_caps("bin/proc", &[], &caps) {
        println!("init: cannot start proc: {e}");
        return None;
    }
    // Only proc may receive on it: when proc dies, callers get PeerDied rather than waiting.
    let _ = endpoint.0.delete();
    Some(Proc(Endpoint(client)))
}
