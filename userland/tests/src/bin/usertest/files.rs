//! Files through the `vfs` server: the root container's tree (`/`, `/tmp` in memory, `/data`
//! on the FAT data disk the harness attaches as `blk1`), child containers' namespaces and
//! virtual storage files, a restart of the server, and the two halves of the reboot test
//! (`files-persist-write`, `files-persist-check`). What the guest leaves on the data disk
//! (`/data/suite/…`, `/data/child.vsf`) is checked on the host with `fsck.fat -n` and `mdir`.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use vessel_proc_protocol::{Ending, Limits};
use vessel_rt::abi::Error;
use vessel_rt::fs::{self, File, Kind, OpenFlags, Rights, Whence};
use vessel_rt::proc::Proc;
use vessel_vfs_protocol::Client;

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("files::root_tree_is_assembled", root_tree_is_assembled),
    ("files::file_operations_on_memory_and_fat", file_operations_on_memory_and_fat),
    ("files::a_directory_of_1000_files", a_directory_of_1000_files),
    ("files::a_16_mib_file", a_16_mib_file),
    ("files::handles_are_true_roots_and_rights_only_shrink", handles_are_true_roots_and_rights_only_shrink),
    ("files::a_child_sees_only_its_own_root", a_child_sees_only_its_own_root),
    ("files::a_vsf_is_a_childs_root_and_outlives_it", a_vsf_is_a_childs_root_and_outlives_it),
    ("files::a_full_vsf_fails_only_its_container", a_full_vsf_fails_only_its_container),
    ("files::vfs_restarts_and_clients_get_an_error", vfs_restarts_and_clients_get_an_error),
    ("files::a_childs_mounts_outlive_a_vfs_restart", a_childs_mounts_outlive_a_vfs_restart),
    ("files::memory_is_lent_only_downwards_and_charged_there", memory_is_lent_only_downwards_and_charged_there),
    ("files::a_child_runs_programs_stored_in_its_vsf", a_child_runs_programs_stored_in_its_vsf),
    ("files::boot_is_the_boot_file_system_read_only", boot_is_the_boot_file_system_read_only),
    ("files::hostile_vsfs_are_refused_and_nothing_else_changes", hostile_vsfs_are_refused_and_nothing_else_changes),
];

pub const PERSIST_TESTS: &[crate::Test] = &[
    ("files-persist-write::files_written_and_synced", persist_write),
    ("files-persist-check::files_survive_a_reboot", persist_check),
];

fn e<T: core::fmt::Display>(what: &'static str) -> impl Fn(T) -> String {
    move |r| format!("{what}: {r}")
}

fn proc() -> Result<Proc, String> {
    Proc::get().ok_or_else(|| String::from("no proc capability"))
}

/// A pattern that differs at every offset (so misplaced bytes show).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i as u64).wrapping_mul(31).wrapping_add(seed * 7 + (i as u64 >> 12)) % 251) as u8).collect()
}

fn root_tree_is_assembled() -> TestResult {
    let mounts = fs::mounts(0).map_err(e("mounts"))?;
    let shown: Vec<(String, String)> = mounts.iter().map(|m| (m.path.clone(), m.source.clone())).collect();
    let expected = [("/", "mem"), ("/tmp", "mem"), ("/boot", "boot"), ("/data", "blk:blk1")];
    check!(
        shown.len() == 4 && expected.iter().all(|(p, s)| shown.iter().any(|(a, b)| a == p && b == s)),
        "the root container's mounts: {shown:?}"
    );
    let root: Vec<String> = fs::read_dir("/").map_err(e("read_dir /"))?.into_iter().map(|d| d.name).collect();
    check!(root.iter().any(|n| n == "tmp") && root.iter().any(|n| n == "data"), "/ lists {root:?}");
    Ok(())
}

/// The same operations on the in-memory `/tmp` and on FAT `/data`.
fn file_operations_on_memory_and_fat() -> TestResult {
    for base in ["/tmp/ops", "/data/suite"] {
        let _ = fs::create_dir(base);
        let dir = format!("{base}/nested/deeper");
        fs::create_dir(&format!("{base}/nested")).map_err(e("mkdir nested"))?;
        fs::create_dir(&dir).map_err(e("mkdir deeper"))?;
        let again = fs::create_dir(&dir);
        check!(again.as_ref().is_err_and(|r| r.error == Error::AlreadyExists), "{base}: mkdir twice: {again:?}");
        let path = format!("{dir}/Ünïcödé file with a long name — {}.txt", "x".repeat(150));
        let mut f = File::create(&path).map_err(e("create"))?;
        let data = pattern(1, 10_000);
        f.write_all(&data).map_err(e("write_all"))?;
        check!(f.seek(Whence::Start, 0) == Ok(0), "{base}: seek to start");
        let mut back = Vec::new();
        f.read_to_end(&mut back).map_err(e("read_to_end"))?;
        check!(back == data, "{base}: read back {} bytes, wrote {}", back.len(), data.len());
        // Seek from the end, overwrite in the middle, grow with a gap that reads as zeros.
        check!(f.seek(Whence::End, -10) == Ok(9_990), "{base}: seek from the end");
        f.write_at(100, b"MIDDLE").map_err(e("pwrite"))?;
        f.write_at(20_000, b"END").map_err(e("pwrite past the end"))?;
        let stat = f.metadata().map_err(e("stat"))?;
        check!(stat.size == 20_003 && stat.kind == Kind::File, "{base}: size {}", stat.size);
        let mut gap = [0xAAu8; 16];
        f.read_at(10_500, &mut gap).map_err(e("pread gap"))?;
        check!(gap == [0; 16], "{base}: the gap reads {gap:?}");
        let mut mid = [0u8; 6];
        f.read_at(100, &mut mid).map_err(e("pread middle"))?;
        check!(&mid == b"MIDDLE", "{base}: the middle reads {mid:?}");
        f.set_len(50).map_err(e("truncate"))?;
        check!(f.metadata().map_err(e("stat"))?.size == 50, "{base}: truncated");
        drop(f);
        // Append, rename across directories, remove.
        let log = format!("{base}/log");
        let mut a =
            File::open_with(&log, OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND).map_err(e("append"))?;
        a.write_all(b"one ").map_err(e("append 1"))?;
        a.write_at(0, b"ONE").map_err(e("pwrite"))?;
        a.write_all(b"two").map_err(e("append 2"))?;
        drop(a);
        let text = fs::read(&log).map_err(e("read log"))?;
        check!(text == b"ONE two", "{base}: the log holds {:?}", String::from_utf8_lossy(&text));
        let moved = format!("{dir}/log-moved");
        fs::rename(&log, &moved).map_err(e("rename"))?;
        check!(fs::metadata(&log).is_err_and(|r| r.error == Error::NotFound), "{base}: the old name is gone");
        check!(fs::read(&moved).map_err(e("read moved"))? == b"ONE two", "{base}: the moved file");
        let busy = fs::remove(&format!("{base}/nested"));
        check!(busy.as_ref().is_err_and(|r| r.error == Error::NotEmpty), "{base}: remove non-empty: {busy:?}");
        let excl = File::open_with(&moved, OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE);
        check!(excl.as_ref().is_err_and(|r| r.error == Error::AlreadyExists), "{base}: exclusive: {excl:?}");
        let dir_open = File::open(&dir);
        check!(dir_open.as_ref().is_err_and(|r| r.error == Error::IsADirectory), "{base}: open a dir: {dir_open:?}");
        let under_file = fs::create_dir(&format!("{moved}/x"));
        check!(
            under_file.as_ref().is_err_and(|r| r.error == Error::NotADirectory),
            "{base}: mkdir under a file: {under_file:?}"
        );
        let names: Vec<String> = fs::read_dir(&dir).map_err(e("read_dir"))?.into_iter().map(|d| d.name).collect();
        check!(names.len() == 2 && names.contains(&String::from("log-moved")), "{base}: {names:?}");
        check!(names.iter().any(|n| n.starts_with("Ünïcödé")), "{base}: the long name reads back: {names:?}");
    }
    fs::sync_all().map_err(e("sync"))?;
    Ok(())
}

fn a_directory_of_1000_files() -> TestResult {
    for base in ["/tmp/many", "/data/suite/many"] {
        let _ = fs::create_dir("/data/suite");
        fs::create_dir(base).map_err(e("mkdir"))?;
        for i in 0..1000 {
            let mut f = File::create(&format!("{base}/f{i:04}")).map_err(|r| format!("{base}/f{i:04}: {r}"))?;
            f.write_all(&(i as u32).to_le_bytes()).map_err(e("write"))?;
        }
        let mut names: Vec<String> = fs::read_dir(base).map_err(e("read_dir"))?.into_iter().map(|d| d.name).collect();
        names.sort();
        check!(names.len() == 1000, "{base}: {} entries listed", names.len());
        check!(names.iter().enumerate().all(|(i, n)| *n == format!("f{i:04}")), "{base}: names differ");
        check!(fs::read(&format!("{base}/f0777")).map_err(e("read"))? == 777u32.to_le_bytes(), "{base}: f0777");
    }
    fs::sync_all().map_err(e("sync"))?;
    Ok(())
}

/// 16 MiB written in 1 MiB pieces and read back in 64 KiB ones: both through the buffer
/// shared with the server (`share`, `write_shared`, `read_shared`), as larger-than-message
/// transfers go.
fn a_16_mib_file() -> TestResult {
    const SIZE: usize = 16 << 20;
    let _ = fs::create_dir("/data/suite");
    let path = "/data/suite/big.bin";
    let mut f = File::create(path).map_err(e("create"))?;
    let chunk = pattern(3, 1 << 20);
    let mut written = 0;
    while written < SIZE {
        let n = f.write(&chunk).map_err(|r| format!("write at {written}: {r}"))?;
        check!(n == chunk.len(), "a 1 MiB write took {n} bytes");
        written += n;
    }
    f.sync().map_err(e("sync"))?;
    check!(f.metadata().map_err(e("stat"))?.size == SIZE as u64, "size");
    f.seek(Whence::Start, 0).map_err(e("seek"))?;
    let mut buf = vec![0; 64 << 10];
    let mut read = 0;
    while read < SIZE {
        let n = f.read(&mut buf).map_err(|r| format!("read at {read}: {r}"))?;
        check!(n == buf.len(), "a 64 KiB read at {read} gave {n} bytes");
        let at = read % chunk.len();
        check!(buf[..n] == chunk[at..at + n], "bytes differ in the piece at {read}");
        read += n;
    }
    check!(f.read(&mut buf).map_err(e("read at the end"))? == 0, "data past the end");
    Ok(())
}

fn handles_are_true_roots_and_rights_only_shrink() -> TestResult {
    fs::create_dir("/tmp/jail").map_err(e("mkdir"))?;
    fs::write("/tmp/secret", b"outside").map_err(e("write secret"))?;
    fs::write("/tmp/jail/inside", b"inside").map_err(e("write inside"))?;
    let jail = File::open_dir("/tmp/jail", Rights::READ).map_err(e("open jail"))?;
    let climbs = ["../secret", "../../../../secret", "/../secret", "/secret", &"../".repeat(300)];
    for path in climbs {
        let path = if path.ends_with('/') { format!("{path}secret") } else { String::from(path) };
        let r = File::open_at(jail.handle(), &path, OpenFlags::READ);
        check!(r.as_ref().is_err_and(|r| r.error == Error::NotFound), "{path:.40} from the jail: {r:?}");
    }
    let mut inside = File::open_at(jail.handle(), "../../inside", OpenFlags::READ).map_err(e("clamped"))?;
    let mut text = Vec::new();
    inside.read_to_end(&mut text).map_err(e("read"))?;
    check!(text == b"inside", "the clamped path names the jail's file");
    // A read-only directory handle gives nothing writable below it.
    let w = File::open_at(jail.handle(), "inside", OpenFlags::READ | OpenFlags::WRITE);
    check!(w.as_ref().is_err_and(|r| r.error == Error::MissingRights), "write through r- dir: {w:?}");
    let client = fs::client().map_err(e("client"))?;
    let mk = client.mkdir(jail.handle(), "new");
    check!(mk.as_ref().is_err_and(|r| r.error == Error::MissingRights), "mkdir through r- dir: {mk:?}");
    // Duplicates only shrink.
    let rw = File::open_with("/tmp/secret", OpenFlags::READ | OpenFlags::WRITE).map_err(e("open rw"))?;
    let mut ro = rw.duplicate(Rights::READ).map_err(e("duplicate"))?;
    let wr = ro.write(b"x");
    check!(wr.as_ref().is_err_and(|r| r.error == Error::MissingRights), "write through r- copy: {wr:?}");
    let widen = ro.duplicate(Rights::READ_WRITE);
    check!(widen.as_ref().is_err_and(|r| r.error == Error::MissingRights), "widen: {widen:?}");
    // Forged and closed handles.
    for forged in [1u64, 0xdead_beef, u64::MAX, rw.handle() ^ (1 << 32)] {
        let r = client.read(forged, 1);
        check!(r.as_ref().is_err_and(|r| r.error == Error::InvalidHandle), "forged {forged:#x}: {r:?}");
    }
    let old = ro.handle();
    ro.close().map_err(e("close"))?;
    let stale = client.read(old, 1);
    check!(stale.as_ref().is_err_and(|r| r.error == Error::InvalidHandle), "closed handle: {stale:?}");
    Ok(())
}

/// Runs `fsprobe ARGS` in container `c`; how it ended.
fn fsprobe(proc: Proc, c: u64, args: &[&str]) -> Result<Ending, String> {
    let (pid, _) = proc.spawn(c, "bin/fsprobe", args, &[]).map_err(e("spawn fsprobe"))?;
    proc.wait_timeout(c, pid, 60_000_000_000).map_err(e("wait fsprobe"))
}

fn a_child_sees_only_its_own_root() -> TestResult {
    let proc = proc()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        // Nothing mounted: the child sees nothing at all.
        let empty = fsprobe(proc, child, &["empty"])?;
        check!(empty == Ending::Code(0), "a child with nothing mounted: {empty:?}");
        fs::mount(child, "/", "mem").map_err(e("mount mem into the child"))?;
        // A handle of ours, passed by number, is nothing there.
        let ours = File::open("/tmp/secret").or_else(|_| {
            fs::write("/tmp/secret", b"outside")?;
            File::open("/tmp/secret")
        });
        let ours = ours.map_err(e("open ours"))?;
        let token = format!("{}", ours.handle());
        let seen = fsprobe(proc, child, &["isolated", &token])?;
        check!(seen == Ending::Code(0), "the child's view: {seen:?}");
        // The child cannot mount into us, and we see its files only by mounting... nothing: its
        // `mem` is its own.
        let listed = fs::mounts(child).map_err(e("mounts of the child"))?;
        check!(listed.len() == 1 && listed[0].path == "/" && listed[0].source == "mem", "child mounts {listed:?}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn a_vsf_is_a_childs_root_and_outlives_it() -> TestResult {
    let proc = proc()?;
    let _ = fs::remove("/data/child.vsf");
    fs::create_vsf("/data/child.vsf", 8 << 20).map_err(e("create_vsf"))?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        fs::mount(child, "/", "vsf:/data/child.vsf").map_err(e("mount the VSF"))?;
        let busy = File::open_with("/data/child.vsf", OpenFlags::WRITE);
        check!(busy.as_ref().is_err_and(|r| r.error == Error::Busy), "writing a mounted VSF: {busy:?}");
        let gone = fs::remove("/data/child.vsf");
        check!(gone.as_ref().is_err_and(|r| r.error == Error::Busy), "removing a mounted VSF: {gone:?}");
        let wrote = fsprobe(proc, child, &["write", "/hello.txt", "written in the child"])?;
        check!(wrote == Ending::Code(0), "the child writes its root: {wrote:?}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result?;
    // Within a couple of sweeps the server notices, syncs and detaches the VSF.
    let mut detached = false;
    for _ in 0..40 {
        if File::open_with("/data/child.vsf", OpenFlags::READ | OpenFlags::WRITE).is_ok() {
            detached = true;
            break;
        }
        vessel_rt::time::sleep_ms(100);
    }
    check!(detached, "the VSF is still mounted 4 s after its container was destroyed");
    // The root mounts it itself and reads what the child wrote.
    fs::create_dir("/tmp/vsf").map_err(e("mkdir"))?;
    fs::mount(0, "/tmp/vsf", "vsf:/data/child.vsf").map_err(e("mount in the root"))?;
    let text = fs::read("/tmp/vsf/hello.txt").map_err(e("read the child's file"))?;
    check!(text == b"written in the child", "the child's file holds {:?}", String::from_utf8_lossy(&text));
    fs::unmount(0, "/tmp/vsf").map_err(e("unmount"))?;
    fs::sync_all().map_err(e("sync"))?;
    Ok(())
}

fn a_full_vsf_fails_only_its_container() -> TestResult {
    let proc = proc()?;
    let _ = fs::remove("/data/small.vsf");
    fs::create_vsf("/data/small.vsf", 2 << 20).map_err(e("create_vsf"))?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        fs::mount(child, "/", "vsf:/data/small.vsf").map_err(e("mount"))?;
        let filled = fsprobe(proc, child, &["fill"])?;
        check!(filled == Ending::Code(0), "the child fills its VSF and gets NoSpace: {filled:?}");
        fs::write("/data/suite/after-full", &pattern(5, 100_000)).map_err(e("the root writes on"))?;
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn vfs_restarts_and_clients_get_an_error() -> TestResult {
    let proc = proc()?;
    fs::write("/data/suite/before-kill", b"synced").map_err(e("write"))?;
    fs::sync_all().map_err(e("sync"))?;
    let mut f = File::create("/data/suite/during-kill").map_err(e("create"))?;
    f.write_all(b"never synced").map_err(e("write"))?;
    let pid = proc.service_pid("vfs").map_err(e("vfs pid"))?;
    proc.kill(0, pid).map_err(e("kill vfs"))?;
    let after = f.write(b"more");
    check!(after.is_err(), "a write to the dead server: {after:?}");
    core::mem::forget(f);
    // The next call finds the restarted server (give proc a moment to restart it).
    let mut back = None;
    for _ in 0..50 {
        match fs::read("/data/suite/before-kill") {
            Ok(text) => {
                back = Some(text);
                break;
            }
            Err(_) => vessel_rt::time::sleep_ms(100),
        }
    }
    check!(back.as_deref() == Some(&b"synced"[..]), "after the restart: {back:?}");
    let _ = fs::remove("/data/suite/during-kill");
    fs::sync_all().map_err(e("sync"))?;
    Ok(())
}

/// `vfs` keeps the mounts made through the protocol across its restarts: a child's VSF root
/// is there again after the server was killed, with what the child wrote (and synced) before,
/// and the VSF is still held as mounted.
fn a_childs_mounts_outlive_a_vfs_restart() -> TestResult {
    let proc = proc()?;
    let _ = fs::remove("/data/kept.vsf");
    fs::create_vsf("/data/kept.vsf", 4 << 20).map_err(e("create_vsf"))?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        fs::mount(child, "/", "vsf:/data/kept.vsf").map_err(e("mount the VSF"))?;
        let wrote = fsprobe(proc, child, &["write", "/kept.txt", "written before the restart"])?;
        check!(wrote == Ending::Code(0), "the child writes its root: {wrote:?}");
        let pid = proc.service_pid("vfs").map_err(e("vfs pid"))?;
        proc.kill(0, pid).map_err(e("kill vfs"))?;
        // The first call after the kill fails; a later one reaches the restarted server.
        let mut listed = None;
        for _ in 0..50 {
            match fs::mounts(child) {
                Ok(mounts) => {
                    listed = Some(mounts);
                    break;
                }
                Err(_) => vessel_rt::time::sleep_ms(100),
            }
        }
        let listed = listed.ok_or("no vfs answered within 5 s of the kill")?;
        check!(
            listed.len() == 1 && listed[0].path == "/" && listed[0].source == "vsf:/data/kept.vsf",
            "the child's mounts after the restart: {listed:?}"
        );
        let read = fsprobe(proc, child, &["read", "/kept.txt", "written before the restart"])?;
        check!(read == Ending::Code(0), "the child reads its file after the restart: {read:?}");
        let busy = fs::remove("/data/kept.vsf");
        check!(busy.as_ref().is_err_and(|r| r.error == Error::Busy), "removing the VSF mounted again: {busy:?}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

fn persist_write() -> TestResult {
    let _ = fs::create_dir("/data/persist");
    for i in 0..20 {
        fs::write(&format!("/data/persist/file-{i:02}.bin"), &pattern(i, 3000 + i as usize * 1000))
            .map_err(|r| format!("file {i}: {r}"))?;
    }
    fs::create_dir("/data/persist/Sub dir with spaces").map_err(e("mkdir"))?;
    fs::write("/data/persist/Sub dir with spaces/nötes.txt", b"kept across reboots").map_err(e("write"))?;
    fs::sync_all().map_err(e("sync"))?;
    let _ = Client::new(fs::server().map_err(e("server"))?).sync(0);
    Ok(())
}

fn persist_check() -> TestResult {
    for i in 0..20 {
        let data = fs::read(&format!("/data/persist/file-{i:02}.bin")).map_err(|r| format!("file {i}: {r}"))?;
        check!(data == pattern(i, 3000 + i as usize * 1000), "file {i} differs ({} bytes)", data.len());
    }
    let text = fs::read("/data/persist/Sub dir with spaces/nötes.txt").map_err(e("read"))?;
    check!(text == b"kept across reboots", "the note holds {:?}", String::from_utf8_lossy(&text));
    let stat = fs::metadata("/data/persist/file-00.bin").map_err(e("stat"))?;
    // Stamped from the RTC (the host's date, or the harness's 2030): not FAT's 1980 default.
    check!(stat.modified >= 1_577_836_800, "modified {} (before 2020)", stat.modified);
    Ok(())
}

/// `MemoryLend` (what `vfs` makes a client's shared buffer with): memory for the caller's
/// container or one below it, charged there; never for a parent or a sibling. `ContainerLookup`
/// (how `vfs` learns a container ended) follows the same rule; `BootfsRead` is the root's.
fn memory_is_lent_only_downwards_and_charged_there() -> TestResult {
    use vessel_rt::ipc::Memory;
    let proc = proc()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        let pages = |c: u64| proc.info(c).map(|i| i.usage[0]).map_err(e("info"));
        let before = pages(child)?;
        let lent = Memory::lend(16, child).map_err(e("lend to the child"))?;
        check!(pages(child)? == before + 16, "the child's pages went from {before} to {}", pages(child)?);
        // The lender maps it too.
        let address = lent.map(vessel_rt::abi::MapFlags::WRITE).map_err(e("map lent memory"))?;
        // SAFETY: 16 pages were just mapped writable at `address`.
        unsafe { (address as *mut u64).write_volatile(0x1234) };
        // SAFETY: the mapping is ours and nothing refers to it any more.
        let _ = unsafe { vessel_rt::sys::mem_unmap(address, 16) };
        let _ = lent.0.delete();
        check!(pages(child)? == before, "the child's pages back to {before}: {}", pages(child)?);
        for pages in [0, 1025] {
            let r = Memory::lend(pages, child);
            check!(r.as_ref().is_err_and(|e| *e == Error::InvalidArgument), "{pages} pages: {r:?}");
        }
        let unknown = Memory::lend(1, 0x0bad_0bad_0bad_0bad);
        check!(unknown.as_ref().is_err_and(|e| *e == Error::NoSuchContainer), "an unknown container: {unknown:?}");
        let parent = vessel_rt::container::own().map(|c| c.id).map_err(e("own id"))?;
        let up = fsprobe(proc, child, &["lend", &format!("{parent}"), &format!("{child}")])?;
        check!(up == Ending::Code(0), "the child lends and looks only downwards: {up:?}");
        let seen = vessel_rt::container::lookup(child).map_err(e("lookup of the child"))?;
        check!(seen.id == child && seen.parent == parent && seen.state == 0, "lookup of the child: {seen:?}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    let gone = vessel_rt::container::lookup(child);
    check!(
        gone.as_ref().is_err_and(|e| *e == Error::NoSuchContainer) || gone.as_ref().is_ok_and(|i| i.state != 0),
        "lookup of a destroyed container: {gone:?}"
    );
    result
}

/// Copies the file `from` to `to` (through the shared buffer).
fn copy(from: &str, to: &str) -> TestResult {
    let data = fs::read(from).map_err(|r| format!("read {from}: {r}"))?;
    fs::write(to, &data).map_err(|r| format!("write {to}: {r}"))
}

/// Programs run from files of the container's own namespace: the harness put `true` and
/// `probe` in the data disk's `/bin` (with mtools); the root copies them into a VSF, mounts it as
/// a child's `/`, and `proc` starts `/bin/true` and `/bin/probe` there (reading them through
/// `vfs` from the child's namespace, never the caller's).
fn a_child_runs_programs_stored_in_its_vsf() -> TestResult {
    let proc = proc()?;
    let _ = fs::remove("/data/run.vsf");
    fs::create_vsf("/data/run.vsf", 4 << 20).map_err(e("create_vsf"))?;
    let _ = fs::create_dir("/tmp/seed");
    fs::mount(0, "/tmp/seed", "vsf:/data/run.vsf").map_err(e("mount to seed"))?;
    fs::create_dir("/tmp/seed/bin").map_err(e("mkdir"))?;
    copy("/data/bin/true", "/tmp/seed/bin/true")?;
    copy("/data/bin/probe", "/tmp/seed/bin/probe")?;
    fs::write("/tmp/seed/bin/junk", b"not a program at all").map_err(e("write junk"))?;
    fs::unmount(0, "/tmp/seed").map_err(e("unmount the seed"))?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        fs::mount(child, "/", "vsf:/data/run.vsf").map_err(e("mount the VSF"))?;
        let run = |path: &str, args: &[&str]| -> Result<Ending, String> {
            let (pid, _) = proc.spawn(child, path, args, &[]).map_err(|r| format!("spawn {path}: {r}"))?;
            proc.wait_timeout(child, pid, 20_000_000_000).map_err(|r| format!("wait {path}: {r}"))
        };
        let t = run("/bin/true", &[])?;
        check!(t == Ending::Code(0), "/bin/true from the VSF: {t:?}");
        let p = run("/bin/probe", &["exit", "7"])?;
        check!(p == Ending::Code(7), "/bin/probe exit 7 from the VSF: {p:?}");
        // The child's namespace, not the caller's: the root's /data is not there.
        let theirs = proc.spawn(child, "/data/bin/true", &[], &[]);
        check!(theirs.as_ref().is_err_and(|r| r.error == Error::NotFound), "the root's file for the child: {theirs:?}");
        let missing = proc.spawn(child, "/bin/missing", &[], &[]);
        check!(missing.as_ref().is_err_and(|r| r.error == Error::NotFound), "a missing program: {missing:?}");
        let junk = proc.spawn(child, "/bin/junk", &[], &[]);
        check!(junk.as_ref().is_err_and(|r| r.error == Error::BadExecutable), "a file that is no ELF: {junk:?}");
        // And the root runs a program of its own files too.
        let (pid, _) = proc.spawn(0, "/data/bin/true", &[], &[]).map_err(e("the root's /data/bin/true"))?;
        let own = proc.wait(0, pid).map_err(e("wait"))?;
        check!(own == Ending::Code(0), "/data/bin/true in the root: {own:?}");
        fs::unmount(child, "/").map_err(e("unmount"))?;
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

/// `/boot` is the boot file system the kernel was booted with: its `bin/true` is the very
/// program the harness seeded into `/data/bin` from the same build; nothing changes it; a parent
/// can give it to a child as its `/`, and the child runs its programs from there.
fn boot_is_the_boot_file_system_read_only() -> TestResult {
    let boot = fs::read("/boot/bin/true").map_err(e("read /boot/bin/true"))?;
    let seeded = fs::read("/data/bin/true").map_err(e("read /data/bin/true"))?;
    check!(
        boot == seeded && boot.starts_with(b"\x7fELF"),
        "/boot/bin/true ({} bytes) is not the built true",
        boot.len()
    );
    let conf = fs::read("/boot/etc/boot.plan").map_err(e("read boot.plan"))?;
    check!(conf.windows(12).any(|w| w == b"bin/usertest"), "boot.plan: {:?}", String::from_utf8_lossy(&conf));
    let bin: Vec<String> = fs::read_dir("/boot/bin").map_err(e("read_dir"))?.into_iter().map(|d| d.name).collect();
    for program in ["init", "proc", "device", "vfs", "usertest"] {
        check!(bin.iter().any(|n| n == program), "/boot/bin lacks {program}: {bin:?}");
    }
    let w = File::open_with("/boot/bin/true", OpenFlags::READ | OpenFlags::WRITE);
    check!(w.as_ref().is_err_and(|r| r.error == Error::ReadOnly), "writing /boot: {w:?}");
    let m = fs::create_dir("/boot/new");
    check!(m.as_ref().is_err_and(|r| r.error == Error::ReadOnly), "mkdir in /boot: {m:?}");
    let proc = proc()?;
    let child = proc.create(0, Limits::default()).map_err(e("create"))?;
    let result = (|| {
        fs::mount(child, "/", "boot").map_err(e("mount boot for the child"))?;
        let (pid, _) = proc.spawn(child, "/bin/true", &[], &[]).map_err(e("spawn the child's /bin/true"))?;
        let ended = proc.wait_timeout(child, pid, 20_000_000_000).map_err(e("wait"))?;
        check!(ended == Ending::Code(0), "/bin/true from the child's boot root: {ended:?}");
        Ok(())
    })();
    proc.destroy(child).map_err(e("destroy"))?;
    result
}

/// A little-endian `u16` at `at` of `bytes`.
fn le16(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// Damaged VSFs, written as files on the data disk and mounted: a zeroed one, one cut short of
/// what its boot sector claims and one with garbage in its boot sector are refused with a
/// reason; one whose directory names a cluster outside the volume, one whose file's chain
/// loops and one with garbage for a root directory mount, and what is damaged is refused with a
/// reason when used. `vsf check` finds the sound image clean and each damaged one damaged,
/// naming the problem. Through all of it `vfs` answers (a handle opened before still reads, so
/// it did not restart) and a file beside the images keeps its bytes.
fn hostile_vsfs_are_refused_and_nothing_else_changes() -> TestResult {
    let _ = fs::create_dir("/data/hostile");
    let sentinel = pattern(41, 50_000);
    fs::write("/data/hostile/sentinel", &sentinel).map_err(e("write the sentinel"))?;
    let before = File::open("/data/hostile/sentinel").map_err(e("open the sentinel"))?;
    // A sound 2 MiB VSF (FAT12) holding /dir/file.bin, to damage.
    let sound = "/data/hostile/sound.vsf";
    let _ = fs::remove(sound);
    fs::create_vsf(sound, 2 << 20).map_err(e("create_vsf"))?;
    let _ = fs::create_dir("/tmp/hv");
    fs::mount(0, "/tmp/hv", "vsf:/data/hostile/sound.vsf").map_err(e("mount the sound VSF"))?;
    fs::create_dir("/tmp/hv/dir").map_err(e("mkdir in the VSF"))?;
    fs::write("/tmp/hv/dir/file.bin", &pattern(42, 100_000)).map_err(e("write in the VSF"))?;
    fs::unmount(0, "/tmp/hv").map_err(e("unmount the sound VSF"))?;
    let image = fs::read(sound).map_err(e("read the sound VSF"))?;
    // `vsf check` finds the sound one clean.
    let checked = crate::tools::run("vsf", &["check", sound])?;
    check!(
        checked.ending == Ending::Code(0)
            && checked.out.starts_with("/data/hostile/sound.vsf: clean: FAT12, 1 file, 1 directory,")
            && checked.err.is_empty(),
        "vsf check of the sound VSF: {checked}"
    );
    check!(image.len() == 2 << 20 && image[510..512] == [0x55, 0xAA], "the sound VSF: {} bytes", image.len());
    let (bps, spc, reserved, fats) =
        (le16(&image, 11), usize::from(image[13]), le16(&image, 14), usize::from(image[16]));
    let (root_entries, fat_sectors) = (le16(&image, 17), le16(&image, 22));
    let fat_start = reserved * bps;
    let root_start = fat_start + fats * fat_sectors * bps;
    let data_start = root_start + root_entries * 32;
    let cluster_size = spc * bps;
    let cluster_at = |cluster: usize| data_start + (cluster - 2) * cluster_size;
    // An 8.3 entry of `dir_at` named `name`: its offset.
    let find = |image: &[u8], dir_at: usize, name: &[u8; 11]| {
        (dir_at..dir_at + 512 * 32).step_by(32).find(|&at| at + 32 <= image.len() && &image[at..at + 11] == name)
    };
    let dir = find(&image, root_start, b"DIR        ").ok_or("no DIR entry in the sound VSF")?;
    let dir_cluster = le16(&image, dir + 26);
    let file = find(&image, cluster_at(dir_cluster), b"FILE    BIN").ok_or("no FILE.BIN entry")?;
    let file_cluster = le16(&image, file + 26);
    // FAT12: sets the 12-bit entry of `cluster` in every FAT copy.
    let set_fat = |image: &mut Vec<u8>, cluster: usize, value: u16| {
        for copy in 0..fats {
            let at = fat_start + copy * fat_sectors * bps + cluster * 3 / 2;
            let both = u16::from_le_bytes([image[at], image[at + 1]]);
            let both = if cluster.is_multiple_of(2) { (both & 0xF000) | value } else { (both & 0x000F) | (value << 4) };
            image[at..at + 2].copy_from_slice(&both.to_le_bytes());
        }
    };

    type Damage = fn(&mut Vec<u8>, &dyn Fn(&mut Vec<u8>, usize, u16), usize, usize, usize, usize);
    let cases: [(&str, Damage, &str); 6] = [
        ("zeroed", |img, _, _, _, _, _| img.iter_mut().for_each(|b| *b = 0), "refused"),
        ("cut short", |img, _, _, _, _, _| img.truncate(256 << 10), "refused"),
        (
            "garbage boot sector",
            |img, _, _, _, _, _| img[11..62].iter_mut().enumerate().for_each(|(i, b)| *b = (i * 97 + 13) as u8),
            "refused",
        ),
        (
            "directory outside",
            |img, _, dir, _, _, _| img[dir + 26..dir + 28].copy_from_slice(&0xFFF0u16.to_le_bytes()),
            "dir",
        ),
        (
            "looping chain",
            |img, set_fat, _, _, file_cluster, _| set_fat(img, file_cluster, file_cluster as u16),
            "file",
        ),
        (
            "garbage root",
            |img, _, _, _, _, root_start| {
                img[root_start..root_start + 4096].iter_mut().enumerate().for_each(|(i, b)| *b = (i * 31 + 7) as u8)
            },
            "any",
        ),
    ];
    for (what, damage, expect) in cases {
        let mut bad = image.clone();
        damage(&mut bad, &set_fat, dir, dir_cluster, file_cluster, root_start);
        let path = "/data/hostile/bad.vsf";
        let _ = fs::remove(path);
        fs::write(path, &bad).map_err(e("write a damaged VSF"))?;
        let mounted = fs::mount(0, "/tmp/hv", "vsf:/data/hostile/bad.vsf");
        match (expect, &mounted) {
            ("refused", Err(r)) => {
                check!(r.error == Error::Corrupt && !r.reason.is_empty(), "{what}: refused as {r}");
            }
            ("refused", Ok(())) => return Err(format!("{what}: the damaged VSF was mounted")),
            (_, Err(r)) => return Err(format!("{what}: not mounted: {r}")),
            ("dir", Ok(())) => {
                let listed = fs::read_dir("/tmp/hv/dir");
                check!(listed.as_ref().is_err_and(|r| r.error == Error::Corrupt), "{what}: listing it gave {listed:?}");
                let root = fs::read_dir("/tmp/hv").map_err(e("list the damaged VSF's root"))?;
                check!(root.iter().any(|d| d.name == "dir"), "{what}: the root lists {root:?}");
            }
            ("file", Ok(())) => {
                let read = fs::read("/tmp/hv/dir/file.bin");
                check!(
                    read.as_ref().is_err_and(|r| r.error == Error::Corrupt),
                    "{what}: reading it gave {:?}",
                    read.map(|d| d.len())
                );
            }
            (_, Ok(())) => {
                // Whatever the garbage reads as, listing it answers.
                let _ = fs::read_dir("/tmp/hv");
                let _ = fs::read_dir("/tmp/hv/dir");
            }
        }
        if mounted.is_ok() {
            fs::unmount(0, "/tmp/hv").map_err(e("unmount a damaged VSF"))?;
        }
        // `vsf check` calls each of them damaged, and says why on a line of its own.
        let checked = crate::tools::run("vsf", &["check", path])?;
        check!(
            checked.ending == Ending::Code(1)
                && checked.out.starts_with("/data/hostile/bad.vsf: damaged: ")
                && checked.out.lines().count() >= 2,
            "{what}: vsf check: {checked}"
        );
        let mut again = vec![0u8; sentinel.len() + 1];
        let mut n = 0;
        loop {
            let got = before
                .read_at(n as u64, &mut again[n..])
                .map_err(|r| format!("{what}: the handle opened before: {r}"))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        check!(n == sentinel.len() && again[..n] == sentinel[..], "{what}: the sentinel changed ({n} bytes)");
        if expect == "refused" {
            let kept = fs::read(path).map_err(e("read the refused VSF back"))?;
            check!(kept == bad, "{what}: a refused VSF was written to");
        }
    }
    before.close().map_err(e("close"))?;
    let _ = fs::remove("/data/hostile/bad.vsf");
    fs::sync_all().map_err(e("sync"))?;
    Ok(())
}
