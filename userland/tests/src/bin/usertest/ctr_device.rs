//! `ctr device`: device passthrough from the command line. Each test runs `bin/ctr` (in this
//! test's container, the root) and checks what it did through `device` and `devprobe` in the
//! child: `ctr` prints to the serial console, so only its exit code and its effects are seen.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::{Class, Rights};
use vessel_proc_protocol::{Ending, Limits};
use vessel_rt::abi::Error;
use vessel_rt::device::Devices;
use vessel_rt::proc::Proc;

use crate::device::{connect, e};
use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("ctr_device::add_read_only_then_remove", add_read_only_then_remove),
    ("ctr_device::exclusive_keeps_the_parent_out_until_removed", exclusive_keeps_the_parent_out_until_removed),
    ("ctr_device::dollar_names_the_container_just_created", dollar_names_the_container_just_created),
    ("ctr_device::hostile_and_bad_input_grants_nothing", hostile_and_bad_input_grants_nothing),
    ("ctr_device::plug_and_list", plug_and_list),
    ("ctr_device::a_killed_ctr_run_leaves_no_container", a_killed_ctr_run_leaves_no_container),
];

/// The container named `name` below ours, if there is one.
fn named(proc: Proc, name: &str) -> Result<Option<u64>, String> {
    let all = proc.containers().map_err(e("containers"))?;
    Ok(all.into_iter().map(|(c, _)| c).find(|&c| proc.container_name(c).ok().as_deref() == Some(name)))
}

/// `ctr run` ties the container it makes to itself (`proc`'s `tie`): killed while its program
/// runs, it leaves no container behind, and the program in it ends too. `--keep` ties nothing.
fn a_killed_ctr_run_leaves_no_container() -> TestResult {
    let (_, proc) = connect()?;
    for (name, keep) in [("tied-box", false), ("kept-box", true)] {
        let mut args = alloc::vec!["run", "--name", name];
        if keep {
            args.push("--keep");
        }
        args.extend(["probe", "spin"]);
        let (pid, _) = proc.spawn(0, "bin/ctr", &args, &[]).map_err(e("spawn ctr"))?;
        let mut waited = 0;
        while named(proc, name)?.is_none() && waited < 10_000 {
            vessel_rt::time::sleep_ms(50);
            waited += 50;
        }
        let Some(container) = named(proc, name)? else { return Err(format!("ctr never made {name}")) };
        // Let the program start in it, then kill ctr.
        vessel_rt::time::sleep_ms(300);
        proc.kill(0, pid).map_err(e("kill ctr"))?;
        let _ = proc.wait(0, pid);
        let mut waited = 0;
        while proc.info(container).is_ok() && waited < 5_000 {
            vessel_rt::time::sleep_ms(50);
            waited += 50;
        }
        let left = proc.info(container).is_ok();
        if keep {
            check!(left, "--keep: {name} went with the ctr that made it");
            proc.destroy(container).map_err(e("destroy kept"))?;
        } else {
            check!(!left, "{name} outlived the ctr that ran it");
        }
    }
    // Only a container below ours, never ours, and only for a process proc started.
    let refused = proc.client().tie(0).map(|_| ()).map_err(|r| r.error);
    check!(refused == Err(Error::AccessDenied), "tying our own container: {refused:?}");
    let refused = proc.client().tie(0x1234_5678).map(|_| ()).map_err(|r| r.error);
    check!(refused == Err(Error::NoSuchContainer), "tying a container that does not exist: {refused:?}");
    Ok(())
}

/// Runs `ctr ARGS` in this container; how it ended.
fn ctr(proc: Proc, args: &[&str]) -> Result<Ending, String> {
    let (pid, _) = proc.spawn(0, "bin/ctr", args, &[]).map_err(e("spawn ctr"))?;
    proc.wait_timeout(0, pid, 20_000_000_000).map_err(|r| format!("wait for ctr {args:?}: {r}"))
}

/// Runs `devprobe ARGS` in container `c`; how it ended.
fn probe(proc: Proc, c: u64, args: &[&str]) -> Result<Ending, String> {
    let (pid, _) = proc.spawn(c, "bin/devprobe", args, &[]).map_err(e("spawn probe"))?;
    proc.wait_timeout(c, pid, 20_000_000_000).map_err(e("wait probe"))
}

/// Runs `test` with a fresh child container (its id in hex), destroying the child whatever
/// happens.
fn with_child(test: impl FnOnce(Devices, Proc, u64, &str) -> TestResult) -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let hex = format!("{child:x}");
    let result = test(devices, proc, child, &hex);
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn add_read_only_then_remove() -> TestResult {
    with_child(|devices, proc, child, hex| {
        let added = ctr(proc, &["device", "add", hex, "blk0", "--ro"])?;
        check!(added == Ending::Code(0), "ctr device add {hex} blk0 --ro: {added:?}");
        let seen = probe(proc, child, &["dev-expect", "blk0", "r-"])?;
        check!(seen == Ending::Code(0), "the child sees exactly blk0 r-: failed check {seen:?}");
        // Shared: the parent keeps the disk.
        devices.open("blk0", Rights::READ_WRITE).map_err(e("the parent's open"))?.close().map_err(e("close"))?;
        let listed = ctr(proc, &["device", "list", hex])?;
        check!(listed == Ending::Code(0), "ctr device list {hex}: {listed:?}");
        let removed = ctr(proc, &["device", "remove", hex, "blk0"])?;
        check!(removed == Ending::Code(0), "ctr device remove {hex} blk0: {removed:?}");
        let gone = probe(proc, child, &["dev-open", "blk0"])?;
        check!(gone == Ending::Code(Error::NotFound as i64), "the child's open after the remove: {gone:?}");
        let again = ctr(proc, &["device", "remove", hex, "blk0"])?;
        check!(again != Ending::Code(0), "removing twice: {again:?}");
        check!(devices.revoke(child, "blk0").map_err(|r| r.error) == Err(Error::NotFound), "a grant is left");
        Ok(())
    })
}

fn exclusive_keeps_the_parent_out_until_removed() -> TestResult {
    with_child(|devices, proc, child, hex| {
        let added = ctr(proc, &["device", "add", "--exclusive", &format!("0x{hex}"), "blk0"])?;
        check!(added == Ending::Code(0), "ctr device add --exclusive 0x{hex} blk0: {added:?}");
        let refused = devices.open("blk0", Rights::READ).map_err(|r| r.error);
        check!(refused.err() == Some(Error::Busy), "the parent's open while held: {refused:?}");
        check!(devices.info("blk0").map_err(e("info"))?.holder == child, "info names the child as holder");
        let theirs = probe(proc, child, &["dev-expect", "blk0", "rw"])?;
        check!(theirs == Ending::Code(0), "the holder sees blk0 rw: failed check {theirs:?}");
        let removed = ctr(proc, &["device", "remove", hex, "blk0"])?;
        check!(removed == Ending::Code(0), "ctr device remove: {removed:?}");
        devices
            .open("blk0", Rights::READ)
            .map_err(e("the parent's open after the remove"))?
            .close()
            .map_err(e("close"))?;
        check!(devices.info("blk0").map_err(e("info"))?.holder == 0, "nobody holds blk0 after the remove");
        Ok(())
    })
}

/// `ctr create , device add $ blk0 --ro`: `$` is the container `create` made (found here as
/// the one new child), which then sees blk0 read-only.
fn dollar_names_the_container_just_created() -> TestResult {
    let (_, proc) = connect()?;
    let before = proc.containers().map_err(e("containers"))?;
    let ending = ctr(proc, &["create", ",", "device", "add", "$", "blk0", "--ro"]);
    let after = proc.containers().map_err(e("containers"))?;
    let new: Vec<u64> = after.iter().filter(|c| !before.contains(c)).map(|c| c.0).collect();
    let result = (|| {
        let ending = ending?;
        check!(ending == Ending::Code(0), "ctr create , device add $ blk0 --ro: {ending:?}");
        let [child] = new[..] else { return Err(format!("ctr made containers {new:x?}")) };
        let seen = probe(proc, child, &["dev-expect", "blk0", "r-"])?;
        check!(seen == Ending::Code(0), "the new container sees exactly blk0 r-: failed check {seen:?}");
        // Before any create, `$` names nothing (not this container).
        let early = ctr(proc, &["device", "add", "$", "blk0"])?;
        check!(early != Ending::Code(0), "$ before any create: {early:?}");
        Ok(())
    })();
    for c in new {
        proc.destroy(c).map_err(e("destroy"))?;
    }
    result
}

fn hostile_and_bad_input_grants_nothing() -> TestResult {
    with_child(|devices, proc, child, hex| {
        let grandchild = proc.create(child, Limits::default()).map_err(e("create grandchild"))?;
        let grand = format!("{grandchild:x}");
        let bad: [&[&str]; 22] = [
            &["device", "add", hex, "blk9"],
            &["device", "add", hex, "BLK0"],
            &["device", "add", hex, "blk0", "--ro", "--exclusive", "--shared"],
            &["device", "add", hex, "blk0", "--bogus"],
            &["device", "add", hex, "blk0", "--ro", "--ro"],
            &["device", "add", hex, "blk0", "extra"],
            &["device", "add", hex],
            &["device", "add"],
            &["device", "add", &grand, "blk0"],
            &["device", "add", "0", "blk0"],
            &["device", "add", "deadbeef", "blk0"],
            &["device", "add", "not-hex", "blk0"],
            &["device", "add", "$", "blk0"],
            &["device", "remove", hex, "blk0"],
            &["device", "remove", hex],
            &["device", "list", "deadbeef"],
            &["device", "list", "a", "b"],
            &["device", "plug", "0", "floppy"],
            &["device", "plug", &grand, "zero"],
            &["device", "plug", "0"],
            &["device", "frobnicate"],
            &["device"],
        ];
        for args in bad {
            let ending = ctr(proc, args)?;
            check!(matches!(ending, Ending::Code(c) if c != 0), "ctr {args:?}: {ending:?}");
        }
        // Nothing was granted or plugged anywhere: the child and the grandchild see no device,
        // and the parent still has the disk to itself.
        for (who, c) in [("child", child), ("grandchild", grandchild)] {
            let none = probe(proc, c, &["dev-none"])?;
            check!(none == Ending::Code(0), "the {who} sees a device: failed check {none:?}");
        }
        check!(devices.revoke(child, "blk0").map_err(|r| r.error) == Err(Error::NotFound), "a grant to the child");
        devices.open("blk0", Rights::READ_WRITE).map_err(e("the parent's open"))?.close().map_err(e("close"))?;
        // A good command after a bad one in the same session still runs; ctr still fails.
        let mixed = ctr(proc, &["device", "add", hex, "blk9", ",", "device", "add", hex, "blk0", "--ro"])?;
        check!(mixed == Ending::Code(1), "a session with one bad command: {mixed:?}");
        let seen = probe(proc, child, &["dev-expect", "blk0", "r-"])?;
        check!(seen == Ending::Code(0), "the good command of the session: failed check {seen:?}");
        Ok(())
    })
}

fn zeros(devices: Devices) -> Result<usize, String> {
    Ok(devices.list().map_err(e("list"))?.iter().filter(|d| d.class == Class::Zero).count())
}

fn plug_and_list() -> TestResult {
    let (devices, proc) = connect()?;
    let before = zeros(devices)?;
    let plugged = ctr(proc, &["device", "plug", "0", "zero"])?;
    check!(plugged == Ending::Code(0), "ctr device plug 0 zero: {plugged:?}");
    check!(zeros(devices)? == before + 1, "{before} zero devices before the plug, {} after", zeros(devices)?);
    let listed = ctr(proc, &["device", "list"])?;
    check!(listed == Ending::Code(0), "ctr device list: {listed:?}");
    with_child(|_, proc, child, hex| {
        let empty = ctr(proc, &["device", "list", hex])?;
        check!(empty == Ending::Code(0), "ctr device list of a container with no device: {empty:?}");
        let plugged = ctr(proc, &["device", "plug", hex, "random"])?;
        check!(plugged == Ending::Code(0), "ctr device plug {hex} random: {plugged:?}");
        // devprobe dev-none fails check 3 when `list` shows a device (and no hardware: check 1).
        let seen = probe(proc, child, &["dev-none"])?;
        check!(seen == Ending::Code(3), "the child after the plug: {seen:?}");
        check!(zeros(devices)? == before + 1, "the child's device is not ours");
        Ok(())
    })
}
