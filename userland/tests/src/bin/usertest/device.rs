//! The `device` server, end to end: the PCI listing, the virtio-blk disk the harness attaches
//! (a fresh 32 MiB scratch disk, `blk0`), refusals, and who sees which device: new containers
//! nothing, grants exactly what was granted, exclusive grants, revocation in the middle of
//! reads, destruction returning grants, virtual devices.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::{Access, Bar, Class, Rights};
use vessel_proc_protocol::{Ending, Limits};
use vessel_rt::abi::Error;
use vessel_rt::device::{Device, Devices};

use vessel_rt::proc::Proc;

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("device::root_owns_the_disk", root_owns_the_disk),
    ("device::pci_listing_matches_the_machine", pci_listing_matches_the_machine),
    ("device::blocks_round_trip_with_four_clients", blocks_round_trip_with_four_clients),
    ("device::bad_block_requests_refused", bad_block_requests_refused),
    ("device::new_container_sees_no_device_and_no_hardware", new_container_sees_no_device_and_no_hardware),
    ("device::grants_give_exactly_their_rights_and_only_shrink", grants_give_exactly_their_rights_and_only_shrink),
    ("device::exclusive_grant_keeps_the_parent_out", exclusive_grant_keeps_the_parent_out),
    ("device::revoke_in_the_middle_of_reads", revoke_in_the_middle_of_reads),
    ("device::destroying_a_container_returns_its_grants", destroying_a_container_returns_its_grants),
    ("device::virtual_devices_null_zero_random", virtual_devices_null_zero_random),
    ("device::shared_buffers_move_a_megabyte_in_place", shared_buffers_move_a_megabyte_in_place),
    ("device::shared_buffers_are_the_client_containers_memory", shared_buffers_are_the_client_containers_memory),
    ("device::clock_tells_the_machines_utc_time", clock_tells_the_machines_utc_time),
    ("device::console0_shows_the_kernel_log", console0_shows_the_kernel_log),
    ("device::keyboard_types_with_shift", keyboard_types_with_shift),
    ("device::console_draws_text_the_screen_shows", console_draws_text_the_screen_shows),
    ("device::serial_port_talks_both_ways", serial_port_talks_both_ways),
    ("device::each_container_has_its_own_console", each_container_has_its_own_console),
    ("device::a_terminal_shows_an_attached_console", a_terminal_shows_an_attached_console),
    ("device::a_disk_driver_restarts_alone", a_disk_driver_restarts_alone),
    ("device::serial_keyboard_and_clock_drivers_restart_alone", serial_keyboard_and_clock_drivers_restart_alone),
    // Last: it restarts the server.
    ("device::killed_mid_request_restarts_and_clients_recover", killed_mid_request_restarts_and_clients_recover),
];

pub(crate) fn e(what: &'static str) -> impl Fn(vessel_protocol::Refusal) -> String {
    move |r| format!("{what}: {r}")
}

pub(crate) fn connect() -> Result<(Devices, Proc), String> {
    let proc = Proc::get().ok_or_else(|| String::from("no proc capability"))?;
    Ok((Devices::connect().map_err(e("connect"))?, proc))
}

/// Runs `devprobe ARGS` in container `c` with `caps`; how it ended.
fn probe(proc: Proc, c: u64, args: &[&str], caps: &[u32]) -> Result<Ending, String> {
    let (pid, _) = proc.spawn(c, "bin/devprobe", args, caps).map_err(e("spawn probe"))?;
    proc.wait_timeout(c, pid, 20_000_000_000).map_err(e("wait probe"))
}

fn open_disk(devices: Devices, rights: Rights) -> Result<Device, String> {
    devices.open("blk0", rights).map_err(e("open blk0"))
}

fn root_owns_the_disk() -> TestResult {
    let (devices, _) = connect()?;
    let list = devices.list().map_err(e("list"))?;
    let disk = list.iter().find(|d| d.name == "blk0").ok_or_else(|| format!("no blk0 in {list:?}"))?;
    check!(disk.class == Class::Block && disk.access == Access::Owner, "blk0: {disk}");
    check!(disk.rights == Rights::READ_WRITE, "root's rights on blk0: {}", disk.rights);
    check!(disk.blocks == 32 * 2048 && disk.block_size == 512, "a 32 MiB disk of 512-byte blocks: {disk}");
    check!(disk.pci.is_some(), "blk0 names its PCI function");
    check!(devices.info("blk0").map_err(e("info"))? == *disk, "info agrees with list");
    let missing = devices.info("blk9").map_err(|r| (r.error, r.reason));
    check!(matches!(&missing, Err((Error::NotFound, why)) if why.contains("blk9")), "info blk9: {missing:?}");
    Ok(())
}

fn pci_listing_matches_the_machine() -> TestResult {
    let (devices, _) = connect()?;
    let functions = devices.pci().map_err(e("pci"))?;
    let find = |vendor: u16, device: u16| functions.iter().find(|f| f.vendor == vendor && f.device == device);
    // q35: the MCH host bridge and the ICH9 LPC bridge at 00:1f.0; pc: i440FX and PIIX3 at 00:01.0.
    let (bridge, isa, at) =
        if find(0x8086, 0x29c0).is_some() { (0x29c0, 0x2918, (0, 0x1f, 0)) } else { (0x1237, 0x7000, (0, 1, 0)) };
    check!(find(0x8086, bridge).is_some_and(|f| f.class == 6 && f.subclass == 0), "host bridge 8086:{bridge:04x}");
    let lpc = find(0x8086, isa).ok_or_else(|| format!("no ISA bridge 8086:{isa:04x}"))?;
    check!((lpc.bdf.bus, lpc.bdf.device, lpc.bdf.function) == at && lpc.class == 6 && lpc.subclass == 1, "{lpc}");
    let blk = find(0x1af4, 0x1001).ok_or_else(|| String::from("no virtio-blk 1af4:1001"))?;
    check!(blk.class == 1 && blk.driver.as_deref() == Some("blk0"), "virtio-blk: {blk}");
    // QEMU's transitional virtio-blk: legacy I/O BAR 0 (128 bytes), MSI-X table BAR 1 (4 KiB),
    // modern registers in 64-bit BAR 4 (16 KiB).
    check!(matches!(blk.bars[0], Bar::Io { size: 0x80, .. }), "BAR 0: {:?}", blk.bars[0]);
    check!(matches!(blk.bars[1], Bar::Mem32 { size: 0x1000, .. }), "BAR 1: {:?}", blk.bars[1]);
    check!(
        matches!(blk.bars[4], Bar::Mem64 { size: 0x4000, .. }) && blk.bars[5] == Bar::None,
        "BAR 4: {:?}",
        blk.bars[4]
    );
    check!(
        blk.capabilities.contains(&0x11) && blk.capabilities.contains(&0x09),
        "MSI-X and virtio capabilities: {:?}",
        blk.capabilities
    );
    Ok(())
}

/// A block's test pattern: which client, which round, which block.
fn pattern(client: u64, round: u64, block: u64) -> Vec<u8> {
    (0..512u64).map(|i| (client * 31 + round * 17 + block * 7 + i) as u8).collect()
}

fn blocks_round_trip_with_four_clients() -> TestResult {
    let (devices, _) = connect()?;
    let probe_disk = open_disk(devices, Rights::READ)?;
    let blocks = probe_disk.blocks;
    probe_disk.close().map_err(e("close"))?;
    let mut workers = Vec::new();
    for client in 0..4u64 {
        let worker = vessel_rt::thread::spawn(move || {
            let Ok(disk) = devices.open("blk0", Rights::READ_WRITE) else { return 1 };
            // Each client owns the blocks ≡ client (mod 4), spread over the whole disk.
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ client;
            for round in 0..24 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let block = (seed % (blocks / 4)) * 4 + client;
                if disk.write_blocks(block, &pattern(client, round, block)).is_err() {
                    return 2;
                }
                match disk.read_blocks(block, 1) {
                    Ok(data) if data == pattern(client, round, block) => {}
                    _ => return 3,
                }
            }
            if disk.flush().is_err() {
                return 4;
            }
            let _ = disk.close();
            0
        });
        workers.push(worker.map_err(|err| format!("thread: {err}"))?);
    }
    for (i, w) in workers.into_iter().enumerate() {
        let status = w.join().map_err(|err| format!("join: {err}"))?;
        check!(status.code == 0, "client {i} failed check {}", status.code);
    }
    // Eight blocks in one request, and the last block of the disk.
    let disk = open_disk(devices, Rights::READ_WRITE)?;
    let many: Vec<u8> = (0..4096u32).map(|i| (i * 3) as u8).collect();
    disk.write_blocks(blocks - 8, &many).map_err(e("write 8"))?;
    check!(disk.read_blocks(blocks - 8, 8).map_err(e("read 8"))? == many, "8 blocks at the end read back");
    disk.close().map_err(e("close"))?;
    Ok(())
}

fn bad_block_requests_refused() -> TestResult {
    let (devices, _) = connect()?;
    let disk = open_disk(devices, Rights::READ_WRITE)?;
    let err = |r: Result<Vec<u8>, vessel_protocol::Refusal>| r.map(|_| ()).map_err(|r| r.error);
    check!(err(disk.read_blocks(disk.blocks, 1)) == Err(Error::InvalidArgument), "a block past the end");
    check!(err(disk.read_blocks(disk.blocks - 1, 2)) == Err(Error::InvalidArgument), "a range running past the end");
    check!(err(disk.read_blocks(u64::MAX, 2)) == Err(Error::InvalidArgument), "a range wrapping around");
    check!(err(disk.read_blocks(0, 0)) == Err(Error::TooLarge), "0 blocks");
    check!(err(disk.read_blocks(0, 9)) == Err(Error::TooLarge), "9 blocks (more than one reply holds)");
    check!(disk.write_blocks(0, &[1; 100]).map_err(|r| r.error) == Err(Error::InvalidArgument), "a partial block");
    check!(disk.write_blocks(0, &[]).map_err(|r| r.error) == Err(Error::InvalidArgument), "an empty write");
    check!(disk.read(16).map_err(|r| r.error) == Err(Error::WrongObject), "a byte read of a disk");
    for forged in [disk.handle ^ 1, disk.handle + (1 << 32), 0, u64::MAX] {
        let refused = devices.client().read_blocks(forged, 0, 1).map_err(|r| r.error);
        check!(refused.err() == Some(Error::InvalidHandle), "a forged handle {forged:#x}");
    }
    let reader = open_disk(devices, Rights::READ)?;
    check!(reader.write_blocks(0, &[0; 512]).map_err(|r| r.error) == Err(Error::MissingRights), "write when read-only");
    check!(reader.flush().map_err(|r| r.error) == Err(Error::MissingRights), "flush when read-only");
    reader.close().map_err(e("close"))?;
    disk.close().map_err(e("close"))?;
    check!(disk.read_blocks(0, 1).map_err(|r| r.error) == Err(Error::InvalidHandle), "a closed handle");
    check!(devices.open("blk0", Rights::NONE).map_err(|r| r.error).err() == Some(Error::InvalidArgument), "no rights");
    Ok(())
}

fn new_container_sees_no_device_and_no_hardware() -> TestResult {
    let (devices, proc) = connect()?;
    // A program the root container starts has no hardware either: only `device` does.
    check!(probe(proc, 0, &["dev-none"], &[])? != Ending::Code(1), "a root program holds hardware");
    let c = proc.create(0, Limits::default()).map_err(e("create"))?;
    let ending = probe(proc, c, &["dev-none"], &[]);
    proc.destroy(c).map_err(e("destroy"))?;
    let ending = ending?;
    check!(ending == Ending::Code(0), "probe in a new container: failed check {ending:?}");
    check!(devices.revoke(c, "blk0").map_err(|r| r.error) == Err(Error::NotFound), "revoking what was never granted");
    Ok(())
}

fn grants_give_exactly_their_rights_and_only_shrink() -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let grandchild = proc.create(child, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        check!(
            devices.grant(grandchild, "blk0", Rights::READ, false).map_err(|r| r.error) == Err(Error::AccessDenied),
            "a grant to a grandchild"
        );
        devices.grant(child, "blk0", Rights::READ, false).map_err(e("grant"))?;
        check!(
            devices.grant(child, "blk0", Rights::READ, false).map_err(|r| r.error) == Err(Error::Busy),
            "granted twice"
        );
        let expect = probe(proc, child, &["dev-expect", "blk0", "r-"], &[])?;
        check!(expect == Ending::Code(0), "the child sees exactly blk0 r-: {expect:?}");
        let id = format!("{grandchild}");
        let wider = probe(proc, child, &["dev-grant", &id, "blk0", "rw"], &[])?;
        check!(wider == Ending::Code(Error::MissingRights as i64), "the child granting rw on: {wider:?}");
        let same = probe(proc, child, &["dev-grant", &id, "blk0", "r-"], &[])?;
        check!(same == Ending::Code(0), "the child granting r- on: {same:?}");
        let nested = probe(proc, grandchild, &["dev-expect", "blk0", "r-"], &[])?;
        check!(nested == Ending::Code(0), "the grandchild sees blk0 r-: {nested:?}");
        // Revoking the child's grant takes the grandchild's with it.
        devices.revoke(child, "blk0").map_err(e("revoke"))?;
        let gone = probe(proc, grandchild, &["dev-open", "blk0"], &[])?;
        check!(gone == Ending::Code(Error::NotFound as i64), "the grandchild after the revoke: {gone:?}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn exclusive_grant_keeps_the_parent_out() -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        let open = open_disk(devices, Rights::READ)?;
        check!(
            devices.grant(child, "blk0", Rights::READ_WRITE, true).map_err(|r| r.error) == Err(Error::Busy),
            "an exclusive grant while the parent has it open"
        );
        open.close().map_err(e("close"))?;
        devices.grant(child, "blk0", Rights::READ_WRITE, true).map_err(e("exclusive grant"))?;
        let refused = devices.open("blk0", Rights::READ).map_err(|r| (r.error, r.reason));
        check!(
            matches!(&refused, Err((Error::Busy, why)) if why.contains("exclusively")),
            "the parent's open: {refused:?}"
        );
        check!(devices.info("blk0").map_err(e("info"))?.holder == child, "info names the holder");
        let theirs = probe(proc, child, &["dev-expect", "blk0", "rw"], &[])?;
        check!(theirs == Ending::Code(0), "the holder uses it: {theirs:?}");
        devices.revoke(child, "blk0").map_err(e("revoke"))?;
        open_disk(devices, Rights::READ)?.close().map_err(e("close"))?;
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn revoke_in_the_middle_of_reads() -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        // The reader reads until a read fails. If the revoke came before it even opened the
        // disk (a loaded machine), it says so (200 + NotFound) and the test waits longer.
        for wait_ms in [50, 200, 1000, 3000] {
            devices.grant(child, "blk0", Rights::READ, false).map_err(e("grant"))?;
            let (pid, _) =
                proc.spawn(child, "bin/devprobe", &["dev-read-until-error", "blk0"], &[]).map_err(e("spawn"))?;
            vessel_rt::time::sleep_ms(wait_ms);
            devices.revoke(child, "blk0").map_err(e("revoke"))?;
            let ending = proc.wait_timeout(child, pid, 10_000_000_000).map_err(e("wait reader"))?;
            if ending == Ending::Code(200 + Error::NotFound as i64) {
                continue;
            }
            check!(ending == Ending::Code(Error::Revoked as i64), "the reader's end: {ending:?}");
            // The parent works on.
            let disk = open_disk(devices, Rights::READ)?;
            check!(disk.read_blocks(0, 1).is_ok(), "the parent reads after the revoke");
            disk.close().map_err(e("close"))?;
            return Ok(());
        }
        Err(String::from("the reader never got to open the disk"))
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn destroying_a_container_returns_its_grants() -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    devices.grant(child, "blk0", Rights::READ_WRITE, true).map_err(e("exclusive grant"))?;
    check!(devices.open("blk0", Rights::READ).map_err(|r| r.error).err() == Some(Error::Busy), "kept out");
    proc.destroy(child).map_err(e("destroy"))?;
    // Any request a second later finds the grant gone (the server sweeps every second that
    // requests come; before, only `open`, `grant` and `console` looked).
    vessel_rt::time::sleep_ms(1100);
    let _ = devices.list().map_err(e("list"))?;
    let holder = devices.info("blk0").map_err(e("info"))?.holder;
    check!(holder == 0, "blk0 is still held by {holder:#x}, a container that ended");
    let disk = open_disk(devices, Rights::READ_WRITE)?;
    check!(devices.info("blk0").map_err(e("info"))?.holder == 0, "nobody holds blk0 any more");
    disk.close().map_err(e("close"))?;
    Ok(())
}

fn virtual_devices_null_zero_random() -> TestResult {
    let (devices, proc) = connect()?;
    check!(devices.plug(0, "floppy").map_err(|r| r.error) == Err(Error::InvalidArgument), "an unknown kind");
    let zero = devices.plug(0, "zero").map_err(e("plug zero"))?;
    let null = devices.plug(0, "null").map_err(e("plug null"))?;
    let random = devices.plug(0, "random").map_err(e("plug random"))?;
    let z = devices.open(&zero, Rights::READ_WRITE).map_err(e("open zero"))?;
    check!(z.read(100).map_err(e("read zero"))? == alloc::vec![0u8; 100], "zeros");
    check!(z.write(b"gone").map_err(e("write zero"))? == 4, "zero takes writes");
    let n = devices.open(&null, Rights::READ_WRITE).map_err(e("open null"))?;
    check!(n.read(100).map_err(e("read null"))?.is_empty(), "null reads end at once");
    let r = devices.open(&random, Rights::READ).map_err(e("open random"))?;
    let (a, b) = (r.read(64).map_err(e("read random"))?, r.read(64).map_err(e("read random"))?);
    check!(a.len() == 64 && a != b && a.iter().any(|&x| x != a[0]), "random bytes: {a:?} then {b:?}");
    check!(r.read(0).map_err(|r| r.error) == Err(Error::InvalidArgument), "a read of 0 bytes");
    check!(z.read_blocks(0, 1).map_err(|r| r.error) == Err(Error::WrongObject), "block read of zero");
    for d in [z, n, r] {
        d.close().map_err(e("close"))?;
    }
    // Plugged into a child: the child sees it, the parent does not.
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        let name = devices.plug(child, "zero").map_err(e("plug into child"))?;
        check!(devices.open(&name, Rights::READ).map_err(|r| r.error).err() == Some(Error::NotFound), "parent sees it");
        let theirs = probe(proc, child, &["dev-open", &name], &[])?;
        check!(theirs == Ending::Code(0), "the child opens {name}: {theirs:?}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

/// Run only on request (`--only blk-persist-write`, then after a reboot on the same disk
/// `--only blk-persist-check`): data written and flushed before a power-off is there after.
pub const PERSIST_TESTS: &[crate::Test] = &[
    ("blk-persist-write::blocks_written_and_flushed", persist_write),
    ("blk-persist-check::blocks_survive_a_reboot", persist_check),
];

/// The blocks the reboot test uses, spread over the disk.
fn persist_blocks(blocks: u64) -> impl Iterator<Item = u64> {
    (0..16).map(move |i| (i * 4093) % blocks)
}

fn persist_write() -> TestResult {
    let (devices, _) = connect()?;
    let disk = open_disk(devices, Rights::READ_WRITE)?;
    for block in persist_blocks(disk.blocks) {
        disk.write_blocks(block, &pattern(0xb007, 1, block)).map_err(e("write"))?;
    }
    disk.flush().map_err(e("flush"))?;
    disk.close().map_err(e("close"))?;
    Ok(())
}

fn persist_check() -> TestResult {
    let (devices, _) = connect()?;
    let disk = open_disk(devices, Rights::READ)?;
    for block in persist_blocks(disk.blocks) {
        let data = disk.read_blocks(block, 1).map_err(e("read"))?;
        check!(data == pattern(0xb007, 1, block), "block {block} lost what the first boot wrote");
    }
    disk.close().map_err(e("close"))?;
    Ok(())
}

/// A pattern of `len` bytes, different for each `seed`.
fn bulk_pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| (i.wrapping_mul(0x9e37_79b9) >> 7 ^ seed) as u8).collect()
}

fn shared_buffers_move_a_megabyte_in_place() -> TestResult {
    let (devices, _) = connect()?;
    let disk = open_disk(devices, Rights::READ_WRITE)?;
    let code = |r: Result<(), vessel_protocol::Refusal>| r.map_err(|r| r.error);
    let raw_read = |handle| devices.client().read_shared(handle, 0, 1, 0).map(|_| ()).map_err(|r| r.error);
    check!(raw_read(disk.handle) == Err(Error::InvalidArgument), "read_shared before share");
    for bad in [0, 100, 4097, (4 << 20) + 4096] {
        check!(disk.share(bad).map(|_| ()).map_err(|r| r.error) == Err(Error::InvalidArgument), "share({bad})");
    }
    let mut buffer = disk.share(1 << 20).map_err(e("share"))?;
    check!(buffer.len() == 1 << 20 && buffer.as_slice().iter().all(|&b| b == 0), "a zeroed 1 MiB buffer");
    let pattern = bulk_pattern(disk.handle, 1 << 20);
    buffer.as_mut_slice().copy_from_slice(&pattern);
    // One request of 2048 blocks, where a message carries 8.
    code(disk.write_shared(&buffer, 4096, 2048, 0)).map_err(|e| format!("write_shared: {e}"))?;
    for block in [0u64, 1, 1000, 2047] {
        let read = disk.read_blocks(4096 + block, 1).map_err(e("read_blocks"))?;
        let at = block as usize * 512;
        check!(read[..] == pattern[at..at + 512], "block {block} of the megabyte on the disk");
    }
    buffer.as_mut_slice().fill(0);
    code(disk.read_shared(&mut buffer, 4096, 2048, 0)).map_err(|e| format!("read_shared: {e}"))?;
    check!(buffer.as_slice() == &pattern[..], "the megabyte read back in place");
    // Part of it, at an offset.
    code(disk.read_shared(&mut buffer, 4096, 1, 512 * 7)).map_err(|e| format!("read_shared at 3584: {e}"))?;
    check!(buffer.as_slice()[3584..4096] == pattern[..512], "one block at an offset");
    let err = |r| code(r).err();
    check!(err(disk.read_shared(&mut buffer, 0, 1, 100)) == Some(Error::InvalidArgument), "a ragged offset");
    check!(err(disk.read_shared(&mut buffer, 0, 2049, 0)) == Some(Error::InvalidArgument), "more than the buffer");
    check!(err(disk.read_shared(&mut buffer, 0, 2, (1 << 20) - 512)) == Some(Error::InvalidArgument), "past its end");
    check!(err(disk.read_shared(&mut buffer, 0, 0, 0)) == Some(Error::InvalidArgument), "0 blocks");
    check!(err(disk.read_shared(&mut buffer, disk.blocks - 1, 2, 0)) == Some(Error::InvalidArgument), "past the disk");
    check!(err(disk.read_shared(&mut buffer, u64::MAX, 2, 0)) == Some(Error::InvalidArgument), "wrapping around");
    let reader = open_disk(devices, Rights::READ)?;
    let theirs = reader.share(4096).map_err(e("share read-only"))?;
    check!(err(reader.write_shared(&theirs, 0, 1, 0)) == Some(Error::MissingRights), "write_shared when read-only");
    theirs.free();
    reader.close().map_err(e("close"))?;
    buffer.free();
    disk.close().map_err(e("close"))?;
    check!(raw_read(disk.handle) == Err(Error::InvalidHandle), "read_shared on a closed session");
    Ok(())
}

fn shared_buffers_are_the_client_containers_memory() -> TestResult {
    let (devices, proc) = connect()?;
    // 600 pages: room for the probe and a 64 KiB buffer, not for 4 MiB.
    let mut limits = Limits::default();
    limits.0[0] = 600;
    let child = proc.create(0, limits).map_err(e("create"))?;
    let result = (|| {
        devices.grant(child, "blk0", Rights::READ_WRITE, false).map_err(e("grant"))?;
        let used = || proc.info(child).map(|i| i.usage[0]).map_err(e("info"));
        let over = probe(proc, child, &["dev-shared", "blk0", "4194304"], &[])?;
        check!(over == Ending::Code(100 + Error::QuotaExceeded as i64), "4 MiB over a 600-page quota: {over:?}");
        let fits = probe(proc, child, &["dev-shared", "blk0", "65536"], &[])?;
        check!(fits == Ending::Code(0), "64 KiB through a shared buffer in the child: {fits:?}");
        check!(used()? == 0, "the child still pays for {} pages after closing", used()?);
        // A client that ends without closing: the buffer stays the container's (16 pages)...
        let kept = probe(proc, child, &["dev-shared-keep", "blk0", "65536"], &[])?;
        check!(kept == Ending::Code(0), "the keeping probe: {kept:?}");
        check!(used()? == 16, "the open session's buffer: {} pages", used()?);
        // ...until the session goes with the grant.
        devices.revoke(child, "blk0").map_err(e("revoke"))?;
        check!(used()? == 0, "{} pages still charged after the revoke", used()?);
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

/// The disk's driver restarted on its own while a client writes: the write with the driver fails
/// with `DeviceError`, the client goes on with the same session and finds every block whole;
/// another session opened before works after; only the root restarts drivers, only block
/// devices' drivers restart alone; the server itself is the same instance.
fn a_disk_driver_restarts_alone() -> TestResult {
    let (devices, proc) = connect()?;
    let server = proc.service_pid("device").map_err(e("service pid"))?;
    let before = open_disk(devices, Rights::READ)?;
    let (writer, _) = proc.spawn(0, "bin/devprobe", &["dev-hammer-driver"], &[]).map_err(e("spawn writer"))?;
    vessel_rt::time::sleep_ms(300);
    devices.client().restart("blk0").map_err(e("restart blk0"))?;
    let ending = proc.wait_timeout(0, writer, 30_000_000_000).map_err(e("wait writer"))?;
    check!(ending == Ending::Code(0), "the writer across the driver's restart: {ending:?}");
    check!(before.read_blocks(0, 1).map(|d| d.len()) == Ok(512), "a session from before the restart");
    before.close().map_err(e("close"))?;
    check!(proc.service_pid("device").map_err(e("service pid"))? == server, "the whole server restarted");
    let refused = |name: &str| devices.client().restart(name).map(|_| ()).map_err(|r| r.error);
    check!(refused("console0") == Err(Error::WrongObject), "restarting a virtual device's driver");
    check!(refused("blk9") == Err(Error::NotFound), "restarting a disk that does not exist");
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let from_child = probe(proc, child, &["dev-restart", "blk0"], &[]);
    proc.destroy(child).map_err(e("destroy"))?;
    check!(from_child? == Ending::Code(Error::AccessDenied as i64), "a child restarting a driver");
    Ok(())
}

/// The serial port's, the keyboard's and the clock's drivers restart alone too, and each
/// answers afterwards: a serial session opened before the restart gets the harness's echo of a
/// line sent after it, keys pressed after the keyboard's restart arrive, and the clock tells
/// the machine's time. The server itself stays (same pid).
fn serial_keyboard_and_clock_drivers_restart_alone() -> TestResult {
    let (devices, proc) = connect()?;
    let server = proc.service_pid("device").map_err(e("service pid"))?;
    let serial = devices.open("serial0", Rights::READ_WRITE).map_err(e("open serial0"))?;
    let result = (|| {
        devices.client().restart("serial0").map_err(e("restart serial0"))?;
        serial.write(b"after the restart\n").map_err(e("write serial0"))?;
        let mut got = Vec::new();
        while !got.ends_with(b"echo: after the restart\n") {
            check!(got.len() < 4096, "no echo after the restart: {:?}", String::from_utf8_lossy(&got));
            let data = devices.client().read(serial.handle, 4096, 30_000_000_000).map_err(e("read serial0"))?;
            got.extend(data.data);
        }
        Ok(())
    })();
    serial.close().map_err(e("close"))?;
    result?;
    devices.client().restart("kbd0").map_err(e("restart kbd0"))?;
    let keys = keys_after("HARNESS sendkey o k ret", 3)?;
    check!(keys == b"ok\n", "typed after the keyboard's restart: {keys:?}");
    devices.client().restart("rtc0").map_err(e("restart rtc0"))?;
    let clock = devices.open("rtc0", Rights::READ).map_err(e("open rtc0"))?;
    let now = devices.client().time(clock.handle).map(|t| t.unix_seconds).map_err(e("time"));
    clock.close().map_err(e("close"))?;
    let base = RTC_BASE.to_unix().unwrap_or(0);
    check!(now.as_ref().is_ok_and(|t| (base..base + 3600).contains(t)), "rtc0 after its restart: {now:?}");
    check!(proc.service_pid("device").map_err(e("service pid"))? == server, "the whole server restarted");
    Ok(())
}

/// The server killed while a client writes: `proc` restarts it, the client's call fails with
/// `PeerDied`, it reconnects and finds every block whole (`devprobe dev-hammer`); the grants
/// and plugged devices made before are there again.
fn killed_mid_request_restarts_and_clients_recover() -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = restart_keeping_grants(devices, proc, child);
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn restart_keeping_grants(devices: Devices, proc: Proc, child: u64) -> TestResult {
    devices.grant(child, "blk0", Rights::READ, false).map_err(e("grant blk0"))?;
    let null = devices.plug(0, "null").map_err(e("plug null"))?;
    let (_, generation) = proc.lookup("device").map_err(e("lookup"))?;
    let server = proc.service_pid("device").map_err(e("service pid"))?;
    let (writer, _) = proc.spawn(0, "bin/devprobe", &["dev-hammer"], &[]).map_err(e("spawn writer"))?;
    vessel_rt::time::sleep_ms(300);
    proc.kill(0, server).map_err(e("kill device"))?;
    let ending = proc.wait_timeout(0, writer, 30_000_000_000).map_err(e("wait writer"))?;
    check!(ending == Ending::Code(0), "the writer across the restart: {ending:?}");
    let (_, now) = proc.lookup("device").map_err(e("lookup"))?;
    check!(now == generation + 1, "device generation {generation} before, {now} after");
    check!(proc.service_pid("device").map_err(e("service pid"))? != server, "the same instance serves");
    // The dead instance's DMA memory (queues, bounce buffers) was held back until the new one
    // had reset the disk, and it says so in the kernel's log.
    let platform = vessel_rt::platform::Platform::inherited().ok_or_else(|| String::from("no platform"))?;
    let mut log = alloc::vec![0u8; 4096];
    let mut text = String::new();
    let mut from = 0;
    while let Ok(chunk) = platform.log_read(from, &mut log) {
        if chunk.next == chunk.first {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&log[..(chunk.next - chunk.first) as usize]));
        from = chunk.next;
    }
    check!(text.contains("DMA frames of an earlier instance returned"), "no DMA memory came back after the restart");
    let held = vessel_rt::sys::kernel_stats().map_err(|e| format!("stats: {e}"))?.dma_quarantined;
    check!(held == 0, "{held} DMA frames still held back after the restart");
    // A new connection works as before.
    let (devices, _) = connect()?;
    let disk = open_disk(devices, Rights::READ)?;
    check!(disk.read_blocks(0, 1).map(|d| d.len()) == Ok(512), "reading after the restart");
    disk.close().map_err(e("close"))?;
    // What was granted and plugged before the restart is there again.
    let expect = probe(proc, child, &["dev-expect", "blk0", "r"], &[])?;
    check!(expect == Ending::Code(0), "the child's read-only grant of blk0 after the restart: {expect:?}");
    let entry = devices.info(&null).map_err(e("info of the plugged device"))?;
    check!(entry.class == Class::Null && entry.access == Access::Owner, "{null} after the restart: {entry:?}");
    Ok(())
}

/// What the harness sets the machine's clock to at boot (`-rtc base=...`).
const RTC_BASE: vessel_device_protocol::DateTime =
    vessel_device_protocol::DateTime { year: 2030, month: 1, day: 2, hour: 3, minute: 4, second: 5 };

fn clock_tells_the_machines_utc_time() -> TestResult {
    let (devices, _) = connect()?;
    let entry = devices.info("rtc0").map_err(e("info rtc0"))?;
    check!(entry.class == Class::Clock && entry.access == Access::Owner, "rtc0: {entry}");
    let clock = devices.open("rtc0", Rights::READ).map_err(e("open rtc0"))?;
    let client = devices.client();
    let now = || client.time(clock.handle).map(|t| t.unix_seconds).map_err(e("time"));
    let first = now()?;
    let base = RTC_BASE.to_unix().unwrap_or(0);
    let shown = vessel_device_protocol::DateTime::from_unix(first);
    // The clock runs from the base with the host's time; the suite takes minutes, not hours.
    check!(
        (base..base + 3600).contains(&first),
        "rtc0 says {shown:?} ({first}), the machine was started at {RTC_BASE}"
    );
    vessel_rt::time::sleep_ms(1100);
    let second = now()?;
    check!((first + 1..=first + 3).contains(&second), "1.1 s later the clock moved from {first} to {second}");
    let disk = open_disk(devices, Rights::READ)?;
    check!(client.time(disk.handle).map_err(|r| r.error).err() == Some(Error::WrongObject), "the time of a disk");
    check!(clock.read(8).map_err(|r| r.error).err() == Some(Error::WrongObject), "bytes from a clock");
    disk.close().map_err(e("close"))?;
    clock.close().map_err(e("close"))?;
    Ok(())
}

/// Holds `kbd0` (so keys come to it, not to the active console), prints `request` for the
/// harness, and reads `want` bytes of keys (30 s at most for each read).
fn keys_after(request: &str, want: usize) -> Result<Vec<u8>, String> {
    let (devices, _) = connect()?;
    let kbd = devices.open("kbd0", Rights::READ).map_err(e("open kbd0"))?;
    vessel_rt::println!("{request}");
    let mut got = Vec::new();
    let result = (|| {
        while got.len() < want {
            let data = devices.client().read(kbd.handle, (want - got.len()) as u64, 30_000_000_000);
            got.extend(data.map_err(e("read kbd0"))?.data);
        }
        Ok(())
    })();
    kbd.close().map_err(e("close"))?;
    result.map(|()| got)
}

/// Asks the harness to check the screen for `tag`; returns once it has (it presses Return).
fn screen_checked(tag: &str) -> TestResult {
    let ack = keys_after(&alloc::format!("HARNESS screendump {tag}"), 1)?;
    check!(ack == b"\n", "the harness's acknowledgement of {tag}: {ack:?}");
    Ok(())
}

/// The harness watches the serial log for `HARNESS sendkey KEY...` and presses those keys
/// through the QEMU monitor.
fn keyboard_types_with_shift() -> TestResult {
    let (devices, _) = connect()?;
    let kbd = devices.open("kbd0", Rights::READ).map_err(e("open kbd0"))?;
    let nothing = devices.client().read(kbd.handle, 8, 0).map(|d| d.data).map_err(|r| r.error);
    check!(nothing == Err(Error::WouldBlock), "a read that does not wait, before any key: {nothing:?}");
    let short = devices.client().read(kbd.handle, 8, 1_000_000).map(|d| d.data).map_err(|r| r.error);
    check!(short == Err(Error::TimedOut), "a read that waits 1 ms: {short:?}");
    kbd.close().map_err(e("close"))?;
    let keys = keys_after("HARNESS sendkey shift-h i shift-1 spc ctrl-c ret", 6)?;
    check!(keys == b"Hi! \x03\n", "typed {keys:?}");
    Ok(())
}

/// What the console test draws at the top left of a cleared screen (the harness compares the
/// screendump's pixels with the font's glyphs: white on black, 8x16 cells).
const SCREEN_TEXT: &str = "Vessel console0: Hi!";

/// Draws known text; the harness (on `HARNESS screendump TAG`) captures the screen, checks it,
/// then presses Return, which this test waits for so the screen stays still meanwhile.
fn console_draws_text_the_screen_shows() -> TestResult {
    let (devices, _) = connect()?;
    let console = devices.open("console0", Rights::WRITE).map_err(e("open console0"))?;
    let written = console.write(alloc::format!("\x1b[2J\x1b[H{SCREEN_TEXT}").as_bytes()).map_err(e("write"))?;
    check!(written == SCREEN_TEXT.len() as u64 + 7, "console0 took {written} bytes");
    screen_checked("console0-text")?;
    console.close().map_err(e("close"))?;
    Ok(())
}

/// `serial0` is COM2, whose other end the harness holds: it answers every line it receives
/// with `echo: ` and the line. Four rounds of 50 lines of 38 bytes go out through the 16-byte
/// FIFO (so the transmit interrupt must keep draining), and each round's 2,200-byte answer is
/// read back before the next (the server keeps at most 4 KiB of input).
fn serial_port_talks_both_ways() -> TestResult {
    let (devices, _) = connect()?;
    let serial = devices.open("serial0", Rights::READ_WRITE).map_err(e("open serial0"))?;
    let result = (|| {
        // The firmware may have printed on COM2 at boot (OVMF sends terminal controls there),
        // and the far end answers that along with our first line: a sync line ends whatever
        // came before, and its echo is where the test starts.
        serial.write(b"sync\n").map_err(e("write serial0"))?;
        let mut before = Vec::new();
        while !before.ends_with(b"sync\n") {
            let data = devices.client().read(serial.handle, 4096, 30_000_000_000).map_err(e("read serial0"))?;
            before.extend(data.data);
        }
        for round in 0..4 {
            let mut expected = Vec::new();
            for i in 0..50 {
                let line = alloc::format!("line {round}:{i:02} from serial0, 38 bytes long\n");
                let mut rest = line.as_bytes();
                while !rest.is_empty() {
                    let taken = serial.write(rest).map_err(e("write serial0"))? as usize;
                    rest = &rest[taken..];
                    if taken == 0 {
                        vessel_rt::time::sleep_ms(1);
                    }
                }
                expected.extend_from_slice(b"echo: ");
                expected.extend_from_slice(line.as_bytes());
            }
            let mut got = Vec::new();
            while got.len() < expected.len() {
                let data = devices.client().read(serial.handle, 4096, 30_000_000_000).map_err(e("read serial0"))?;
                got.extend(data.data);
            }
            let at = got.iter().zip(&expected).position(|(a, b)| a != b);
            check!(got == expected, "round {round}: the echo differs at byte {at:?}");
        }
        Ok(())
    })();
    serial.close().map_err(e("close"))?;
    result
}

/// What a child container's probe writes on its own console (the harness knows it too).
const CHILD_SCREEN_TEXT: &str = "Vessel console1: a child";

/// A console plugged into a child: its text shows only when it is the active console (Alt+F2
/// switches to it), keys typed then reach the child's reader, the root switches back and
/// console0's text is redrawn; only the root switches, and a destroyed child's console goes.
fn each_container_has_its_own_console() -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let active = || devices.client().console("").map(|a| a.name).map_err(e("console"));
    let result = (|| {
        let name = devices.plug(child, "console").map_err(e("plug console"))?;
        check!(name == "console1", "the first plugged console is {name}");
        check!(active()? == "console0", "the screen shows {} before any switch", active()?);
        let wrote = probe(proc, child, &["dev-console-write", &name, CHILD_SCREEN_TEXT], &[])?;
        check!(wrote == Ending::Code(0), "the child writing its console: {wrote:?}");
        vessel_rt::println!("HARNESS sendkey alt-f2");
        let mut waited = 0;
        while active()? != name && waited < 10_000 {
            vessel_rt::time::sleep_ms(20);
            waited += 20;
        }
        check!(active()? == name, "Alt+F2 did not switch to {name}: {} shows", active()?);
        screen_checked("console1-text")?;
        // Keys typed now go to the child's console (nobody holds kbd0).
        let (reader, _) = proc.spawn(child, "bin/devprobe", &["dev-console-read", &name], &[]).map_err(e("spawn"))?;
        vessel_rt::println!("HARNESS sendkey o k ret");
        let read = proc.wait_timeout(child, reader, 40_000_000_000).map_err(e("wait reader"))?;
        check!(read == Ending::Code(0), "the child reading \"ok\" from its console: {read:?}");
        check!(devices.client().console("console0").map(|a| a.name).map_err(e("switch"))? == "console0", "switch back");
        screen_checked("console0-again")?;
        let missing = devices.client().console("console9").map_err(|r| r.error);
        check!(missing.err() == Some(Error::NotFound), "switching to a console that does not exist");
        let null = devices.plug(0, "null").map_err(e("plug null"))?;
        let not_console = devices.client().console(&null).map_err(|r| r.error);
        check!(not_console.err() == Some(Error::NotFound), "switching to {null}, not a console");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result?;
    let gone = devices.client().console("console1").map_err(|r| r.error);
    check!(gone.as_ref().err() == Some(&Error::NotFound), "the destroyed child's console still shows: {gone:?}");
    Ok(())
}

/// `attach`: console0 (our terminal here) shows a child's console, so keys typed on it reach the
/// child's reader; then every refusal: a handle that is not a terminal session, one without
/// both rights, a console of nobody below us (from a sibling), a cycle, a console or terminal
/// shown already; the end of an attachment frees both.
fn a_terminal_shows_an_attached_console() -> TestResult {
    let (devices, proc) = connect()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let sibling = proc.create(0, Limits::default()).map_err(e("create sibling"))?;
    let result = (|| {
        let theirs = devices.plug(child, "console").map_err(e("plug console"))?;
        let ours = devices.plug(0, "console").map_err(e("plug our console"))?;
        let attach =
            |handle: u64, console: &str| devices.client().attach(handle, console).map(|_| ()).map_err(|r| r.error);
        let screen = devices.open("console0", Rights::READ_WRITE).map_err(e("open console0"))?;
        check!(devices.client().console("").map_err(e("console"))?.name == "console0", "console0 is shown");
        attach(screen.handle, &theirs).map_err(|r| format!("attach {theirs}: {r:?}"))?;
        // Keys typed on console0 go to the child's console, where its reader waits.
        let (reader, _) = proc.spawn(child, "bin/devprobe", &["dev-console-read", &theirs], &[]).map_err(e("spawn"))?;
        vessel_rt::time::sleep_ms(200);
        vessel_rt::println!("HARNESS sendkey o k ret");
        let read = proc.wait_timeout(child, reader, 40_000_000_000).map_err(e("wait reader"))?;
        check!(read == Ending::Code(0), "the child reading \"ok\" through console0: {read:?}");
        // Refusals.
        let null = devices.plug(0, "null").map_err(e("plug null"))?;
        let on_null = devices.open(&null, Rights::READ_WRITE).map_err(e("open null"))?;
        check!(attach(on_null.handle, &ours) == Err(Error::WrongObject), "a null session as a terminal");
        let write_only = devices.open(&ours, Rights::WRITE).map_err(e("open write-only"))?;
        check!(attach(write_only.handle, &theirs) == Err(Error::MissingRights), "a write-only terminal");
        check!(attach(0x1234_5678, &ours) == Err(Error::InvalidHandle), "a made-up handle");
        check!(attach(screen.handle, &null) == Err(Error::NotFound), "{null} is no console");
        check!(attach(screen.handle, "console99") == Err(Error::NotFound), "a console that does not exist");
        let from_sibling = probe(proc, sibling, &["dev-attach", "console0", &theirs], &[])?;
        check!(from_sibling != Ending::Code(0), "a sibling attached our child's console: {from_sibling:?}");
        // ours may show console0 (which shows theirs); console0 may not then show ours.
        let on_ours = devices.open(&ours, Rights::READ_WRITE).map_err(e("open ours"))?;
        check!(attach(on_ours.handle, "console0").is_ok(), "{ours} showing console0");
        check!(attach(screen.handle, &ours) == Err(Error::InvalidArgument), "a cycle {ours} <-> console0");
        check!(attach(on_ours.handle, &ours) == Err(Error::InvalidArgument), "{ours} showing itself");
        attach(on_ours.handle, "").map_err(|r| format!("detach {ours}: {r:?}"))?;
        // One terminal per console, one console per terminal.
        let second = devices.open("console0", Rights::READ_WRITE).map_err(e("open console0 again"))?;
        check!(attach(second.handle, &ours) == Err(Error::Busy), "console0 attached through two sessions");
        check!(attach(on_ours.handle, &theirs) == Err(Error::Busy), "{theirs} shown on two terminals");
        // Ending an attachment (empty name, or closing the session) frees the terminal.
        attach(screen.handle, "").map_err(|r| format!("detach: {r:?}"))?;
        check!(attach(second.handle, &ours).is_ok(), "console0 free again after the detach");
        second.close().map_err(e("close"))?;
        check!(attach(screen.handle, &ours).is_ok(), "console0 free again after the close");
        attach(screen.handle, "").map_err(|r| format!("detach: {r:?}"))?;
        // A process that attached and was killed gives the terminal back (within the second
        // the server takes to sweep), though its session stays open for its container.
        let (holder, _) =
            proc.spawn(0, "bin/devprobe", &["dev-attach-hold", "console0", &ours], &[]).map_err(e("spawn holder"))?;
        // Once attached it stays; if it could not attach, it ends with the refusal's code.
        let ended = proc.wait_timeout(0, holder, 2_000_000_000);
        check!(ended.as_ref().is_err_and(|r| r.error == Error::TimedOut), "the holder ended: {ended:?}");
        check!(attach(screen.handle, &ours) == Err(Error::Busy), "the holder did not attach {ours}");
        proc.kill(0, holder).map_err(e("kill holder"))?;
        let _ = proc.wait(0, holder);
        vessel_rt::time::sleep_ms(1200);
        check!(attach(screen.handle, &ours).is_ok(), "{ours} still held by a killed process");
        attach(screen.handle, "").map_err(|r| format!("detach: {r:?}"))?;
        for session in [screen, on_null, write_only, on_ours] {
            session.close().map_err(e("close"))?;
        }
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    proc.destroy(sibling).map_err(e("destroy sibling"))?;
    result
}

/// A line printed through the kernel's log; console 0 must show it (the harness looks for it).
const LOG_LINE: &str = "Vessel: this line reached the screen through the kernel log";

/// Console 0 shows the kernel's output: `device` follows it (`LogRead` on the notification
/// `LogBind` signals) and draws it. The server draws within a tick or two; a second is margin.
fn console0_shows_the_kernel_log() -> TestResult {
    let (devices, _) = connect()?;
    check!(devices.client().console("").map(|a| a.name).map_err(e("console"))? == "console0", "console0 shows");
    vessel_rt::println!("{LOG_LINE}");
    vessel_rt::time::sleep_ms(1000);
    screen_checked("log-line")
}
