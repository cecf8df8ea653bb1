//! Host tests of the `vfs` rules through the protocol's loopback: a [`Vfs`] over a fake [`Env`]
//! (block devices are FAT images in memory, containers a parent map a test can change), driven
//! as containers 1 (the root), 2 (its child), 3 (a grandchild) and 9 (a sibling of 2) would
//! drive it. The root namespace is assembled as the program does: `mem` at `/`, the FAT32
//! volume of `blk1` at `/data`.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::OnceLock;

use vessel_fat::{Cache, MemDisk, TimeProvider, Volume};
use vessel_protocol::testing::Loopback;
use vessel_protocol::{Caller, Error, Frame, Message, Refusal, Transport};
use vessel_vfs_protocol::path::MAX_PATH;
use vessel_vfs_protocol::{
    Client, DirEntry, Kind, MAX_IO, MAX_MOUNTS, MAX_SHARED_BYTES, MAX_SHARED_PER_CONTAINER, Mount, OpenFlags, POSITION,
    ROOT, Rights, Whence, dispatch,
};

use crate::state::MAX_OPEN_PER_CONTAINER;
use crate::{Env, Vfs};

/// The root container.
const ROOT_CT: u64 = 1;
/// A child of the root.
const CHILD: u64 = 2;
/// A child of `CHILD`.
const GRANDCHILD: u64 = 3;
/// Another child of the root.
const SIBLING: u64 = 9;
/// The clock: 2030-01-02 03:04:05 UTC.
const NOW: u64 = 1_893_553_445;

type Parents = Rc<RefCell<BTreeMap<u64, u64>>>;
type Disks = Rc<RefCell<BTreeMap<String, Vec<u8>>>>;

/// The kernel's side, faked: containers from a shared parent map, block devices from a shared
/// map of images (each open gets its own copy).
struct TestEnv {
    parents: Parents,
    disks: Disks,
    /// The receive window the next request offers (`None`: none), shared with the test.
    window: TestWindowBytes,
}

type TestWindowBytes = Rc<RefCell<Option<Vec<u8>>>>;

/// The kernel's copy into a receive window, faked: pieces are copied as they are taken, into
/// the window the test set, and refused as the kernel would (no window, past its end).
struct TestWindow {
    bytes: TestWindowBytes,
    at: usize,
    refused: Option<(Error, String)>,
}

impl vessel_fat::Sink for TestWindow {
    fn take(&mut self, piece: &[u8]) -> bool {
        let mut window = self.bytes.borrow_mut();
        let Some(window) = window.as_mut() else {
            self.refused = Some((Error::AccessDenied, "the call offered no window".into()));
            return false;
        };
        let Some(to) = window.get_mut(self.at..self.at + piece.len()) else {
            self.refused = Some((Error::TooLarge, "past the window's end".into()));
            return false;
        };
        to.copy_from_slice(piece);
        self.at += piece.len();
        true
    }

    fn flush(&mut self) -> bool {
        true
    }
}

impl crate::Window for TestWindow {
    fn finish(&mut self) -> Result<u64, (Error, String)> {
        self.refused.take().map_or(Ok(self.at as u64), Err)
    }
}

impl Env for TestEnv {
    type Disk = MemDisk;

    fn parent(&mut self, container: u64) -> Option<u64> {
        self.parents.borrow().get(&container).copied()
    }

    fn open_disk(&mut self, name: &str) -> Result<MemDisk, (Error, String)> {
        let bytes = self.disks.borrow().get(name).cloned().ok_or((Error::NotFound, format!("no device {name}")))?;
        MemDisk::from_bytes(bytes, 512).map_err(|e| (Error::DeviceError, format!("{name}: {e}")))
    }

    fn now() -> u64 {
        NOW
    }

    fn clock(&self) -> Option<&'static dyn TimeProvider> {
        None
    }

    type Buffer = Vec<u8>;

    fn make_buffer(&mut self, bytes: u64, _container: u64) -> Result<(Vec<u8>, u32), (Error, String)> {
        Ok((vec![0; bytes as usize], 7000 + bytes as u32 / 4096))
    }

    type Window = TestWindow;

    fn window(&self) -> TestWindow {
        TestWindow { bytes: Rc::clone(&self.window), at: 0, refused: None }
    }
}

type Lo = Loopback<Vfs<TestEnv>>;

/// The loopback as one container sees it: every call is stamped with that container.
struct As<'a> {
    lo: &'a Lo,
    container: u64,
}

impl Transport for As<'_> {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        self.lo.set_caller(Caller { container: self.container, pid: 1, badge: 0 });
        self.lo.call(stage, read)
    }

    fn drop_cap(&self, handle: u32) {
        self.lo.drop_cap(handle);
    }
}

type Vc<'a> = Client<As<'a>>;

/// A server and the world around it.
struct World {
    lo: Lo,
    parents: Parents,
    disks: Disks,
    /// The receive window the next request offers.
    window: TestWindowBytes,
}

impl World {
    /// A server with nothing mounted anywhere.
    fn bare() -> World {
        let parents: Parents =
            Rc::new(RefCell::new(BTreeMap::from([(CHILD, ROOT_CT), (GRANDCHILD, CHILD), (SIBLING, ROOT_CT)])));
        let disks: Disks = Rc::new(RefCell::new(BTreeMap::from([(String::from("blk1"), fat32_image().clone())])));
        let window = TestWindowBytes::default();
        let env = TestEnv { parents: Rc::clone(&parents), disks: Rc::clone(&disks), window: Rc::clone(&window) };
        let lo = Loopback::new(Vfs::new(env, ROOT_CT), dispatch::<Vfs<TestEnv>>);
        World { lo, parents, disks, window }
    }

    /// A server with the root namespace assembled as the program does.
    fn new() -> World {
        let w = World::bare();
        {
            let mut vfs = w.lo.server();
            vfs.mount_in(ROOT_CT, ROOT_CT, "/", "mem").unwrap();
            assert!(vfs.make_dir(ROOT_CT, "/data"));
            vfs.mount_in(ROOT_CT, ROOT_CT, "/data", "blk:blk1").unwrap();
        }
        w
    }

    /// A client speaking as `container`.
    fn client(&self, container: u64) -> Vc<'_> {
        Client::new(As { lo: &self.lo, container })
    }

    /// The container ends (the kernel destroyed it).
    fn kill(&self, container: u64) {
        self.parents.borrow_mut().remove(&container);
    }

    fn forget(&self) -> usize {
        self.lo.server().forget_dead_containers()
    }
}

/// A 40 MiB FAT32 image, made once.
fn fat32_image() -> &'static Vec<u8> {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let vol = Volume::format(Cache::new(MemDisk::new(512, 40 * 2048).unwrap(), 64).unwrap(), "T", None).unwrap();
        assert_eq!(vol.fat_type(), vessel_fat::FatType::Fat32);
        vol.unmount().unwrap().into_disk().unwrap().into_bytes()
    })
}

/// A 1 MiB FAT image holding a small tree, made once: the seed of the hostile images.
fn small_image() -> &'static Vec<u8> {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut vol = Volume::format(Cache::new(MemDisk::new(512, 2048).unwrap(), 64).unwrap(), "S", None).unwrap();
        let mut rng = XorShift(7);
        for dir in ["/a", "/a/b", "/long directory name ✓", "/many"] {
            vol.mkdir(dir).unwrap();
        }
        let files: &[(&str, usize)] = &[
            ("/a/one.txt", 100),
            ("/a/b/two.bin", 3000),
            ("/long directory name ✓/ファイル.txt", 2000),
            ("/big.dat", 20_000),
            ("/ROOT.TXT", 10),
        ];
        for &(path, len) in files {
            vol.create(path).unwrap();
            vol.write(path, 0, &rng.bytes(len)).unwrap();
        }
        for i in 0..12 {
            let path = format!("/many/a longer name {i}.text");
            vol.create(&path).unwrap();
            vol.write(&path, 0, &rng.bytes(i * 37)).unwrap();
        }
        vol.unmount().unwrap().into_disk().unwrap().into_bytes()
    })
}

/// A xorshift64 generator: reproducible data and damage (the memfs tests use it too).
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn rw() -> OpenFlags {
    OpenFlags::READ | OpenFlags::WRITE
}

fn new_file() -> OpenFlags {
    OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE
}

fn dir_r() -> OpenFlags {
    OpenFlags::READ | OpenFlags::DIRECTORY
}

fn dir_rw() -> OpenFlags {
    OpenFlags::READ | OpenFlags::WRITE | OpenFlags::DIRECTORY
}

/// The refusal of `result`, which must be refused with `error`.
#[track_caller]
fn refused<T: Debug>(result: Result<T, Refusal>, error: Error) -> Refusal {
    match result {
        Ok(value) => panic!("expected {error:?}, got Ok({value:?})"),
        Err(refusal) => {
            assert_eq!(refusal.error, error, "reason: {}", refusal.reason);
            refusal
        }
    }
}

/// The reason every refusal from `container` starts with.
fn prefix(container: u64) -> String {
    format!("vfs: container {container:#018x}: ")
}

/// Writes `data` as the whole file `path` (created or cut), in `MAX_IO` pieces.
#[track_caller]
fn put(c: &Vc<'_>, path: &str, data: &[u8]) {
    let h = c.open(ROOT, path, OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE).unwrap().handle;
    for piece in data.chunks(MAX_IO) {
        assert_eq!(c.write(h, piece).unwrap().count, piece.len() as u64);
    }
    c.close(h).unwrap();
}

/// The bytes of the file `path`, read in `MAX_IO` pieces.
fn try_get(c: &Vc<'_>, path: &str) -> Result<Vec<u8>, Refusal> {
    let h = c.open(ROOT, path, OpenFlags::READ)?.handle;
    let mut out = Vec::new();
    let result = loop {
        match c.read(h, MAX_IO as u64) {
            Ok(d) if d.data.is_empty() => break Ok(()),
            Ok(d) => {
                assert!(d.data.len() <= MAX_IO);
                out.extend_from_slice(&d.data);
            }
            Err(e) => break Err(e),
        }
        if out.len() > 64 << 20 {
            panic!("{path}: a read that never ends");
        }
    };
    c.close(h)?;
    result.map(|()| out)
}

#[track_caller]
fn get(c: &Vc<'_>, path: &str) -> Vec<u8> {
    try_get(c, path).unwrap()
}

/// Every entry of directory handle `dir`, page after page; how many pages it took.
fn try_list(c: &Vc<'_>, dir: u64) -> Result<(Vec<DirEntry>, usize), Refusal> {
    let (mut out, mut start, mut pages) = (Vec::new(), 0, 0);
    loop {
        let page = c.readdir(dir, start)?;
        if page.entries.0.is_empty() {
            assert_eq!(page.next, start);
            return Ok((out, pages));
        }
        assert_eq!(page.next, start + page.entries.0.len() as u64);
        start = page.next;
        out.extend(page.entries.0);
        pages += 1;
        assert!(pages < 100_000, "a listing that never ends");
    }
}

/// The names in directory `path`, sorted.
#[track_caller]
fn names(c: &Vc<'_>, path: &str) -> Vec<String> {
    let h = c.open(ROOT, path, dir_r()).unwrap().handle;
    let mut names: Vec<String> = try_list(c, h).unwrap().0.into_iter().map(|e| e.name).collect();
    c.close(h).unwrap();
    names.sort();
    names
}

fn mount(path: &str, source: &str) -> Mount {
    Mount { path: String::from(path), source: String::from(source), read_only: false }
}

// 1. Files, on mem (`/`) and on FAT (`/data`).

/// Every file operation under `base` (`""`: the mem root; `"/data"`: the FAT volume).
fn exercise_files(c: &Vc<'_>, base: &str) {
    let p = |s: &str| format!("{base}{s}");
    c.mkdir(ROOT, &p("/d")).unwrap();
    let opened = c.open(ROOT, &p("/d/f"), new_file()).unwrap();
    assert_eq!((opened.stat.kind, opened.stat.size, opened.stat.read_only), (Kind::File, 0, false));
    let h = opened.handle;
    assert_eq!(c.write(h, b"hello world").unwrap().count, 11);
    assert_eq!(c.seek(h, Whence::Current, 0).unwrap().offset, 11);
    assert_eq!(c.read(h, 100).unwrap().data, b"");
    assert_eq!(c.seek(h, Whence::Start, 0).unwrap().offset, 0);
    assert_eq!(c.read(h, 5).unwrap().data, b"hello");
    assert_eq!(c.seek(h, Whence::Current, 1).unwrap().offset, 6);
    assert_eq!(c.read(h, 100).unwrap().data, b"world");
    assert_eq!(c.seek(h, Whence::End, -5).unwrap().offset, 6);
    assert_eq!(c.read(h, 3).unwrap().data, b"wor");
    assert_eq!(c.seek(h, Whence::Current, -3).unwrap().offset, 6);
    // Before the start: refused, and the position stays.
    let why = refused(c.seek(h, Whence::Current, -7), Error::InvalidArgument).reason;
    assert!(why.starts_with(&prefix(c.transport().container)), "{why}");
    refused(c.seek(h, Whence::End, i64::MIN), Error::InvalidArgument);
    assert_eq!(c.seek(h, Whence::Current, 0).unwrap().offset, 6);
    // pread and pwrite leave the position alone.
    assert_eq!(c.pread(h, 0, 5).unwrap().data, b"hello");
    assert_eq!(c.pwrite(h, 0, b"HELLO").unwrap().count, 5);
    assert_eq!(c.seek(h, Whence::Current, 0).unwrap().offset, 6);
    assert_eq!(c.pread(h, 100, 10).unwrap().data, b"");
    // A gap reads as zeros, by pwrite and by a write past a seek beyond the end.
    assert_eq!(c.pwrite(h, 14, b"!").unwrap().count, 1);
    assert_eq!(c.pread(h, 0, 100).unwrap().data, b"HELLO world\0\0\0!");
    assert_eq!(c.seek(h, Whence::End, 2).unwrap().offset, 17);
    assert_eq!(c.write(h, b"?").unwrap().count, 1);
    assert_eq!(c.pread(h, 0, 100).unwrap().data, b"HELLO world\0\0\0!\0\0?");
    assert_eq!(c.stat(ROOT, &p("/d/f")).unwrap().stat.size, 18);
    // Truncate cuts and grows with zeros.
    c.truncate(h, 5).unwrap();
    assert_eq!(c.stat(ROOT, &p("/d/f")).unwrap().stat.size, 5);
    assert_eq!(c.pread(h, 0, 100).unwrap().data, b"HELLO");
    c.truncate(h, 8).unwrap();
    assert_eq!(c.pread(h, 0, 100).unwrap().data, b"HELLO\0\0\0");
    assert_eq!(c.read(h, 100).unwrap().data, b"", "the position (18) is past the new end");
    c.close(h).unwrap();

    // APPEND: every write goes to the end, wherever the position is; pwrite still at its offset.
    let a = c.open(ROOT, &p("/d/f"), OpenFlags::WRITE | OpenFlags::APPEND).unwrap().handle;
    assert_eq!(c.seek(a, Whence::Start, 0).unwrap().offset, 0);
    assert_eq!(c.write(a, b"++").unwrap().count, 2);
    assert_eq!(c.seek(a, Whence::Current, 0).unwrap().offset, 10);
    assert_eq!(c.write(a, b"-").unwrap().count, 1);
    assert_eq!(c.pwrite(a, 0, b"h").unwrap().count, 1);
    refused(c.read(a, 1), Error::MissingRights);
    c.close(a).unwrap();
    assert_eq!(get(c, &p("/d/f")), b"hELLO\0\0\0++-");

    // CREATE keeps what is there; TRUNCATE cuts it.
    let k = c.open(ROOT, &p("/d/f"), new_file()).unwrap();
    assert_eq!(k.stat.size, 11);
    c.close(k.handle).unwrap();
    let t = c.open(ROOT, &p("/d/f"), OpenFlags::WRITE | OpenFlags::TRUNCATE).unwrap();
    assert_eq!(t.stat.size, 0);
    c.close(t.handle).unwrap();
    assert_eq!(c.stat(ROOT, &p("/d/f")).unwrap().stat.size, 0);
    // CREATE | EXCLUSIVE refuses what exists, file or directory.
    let excl = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE;
    let why = refused(c.open(ROOT, &p("/d/f"), excl), Error::AlreadyExists).reason;
    assert!(why.contains("/d/f"), "{why}");
    refused(c.open(ROOT, &p("/d"), excl), Error::AlreadyExists);
    let g = c.open(ROOT, &p("/d/g"), excl).unwrap();
    c.close(g.handle).unwrap();

    // Rename within and across directories; open handles follow their entry.
    put(c, &p("/d/g"), b"gee");
    let keep = c.open(ROOT, &p("/d/g"), OpenFlags::READ).unwrap().handle;
    c.rename(ROOT, &p("/d/g"), &p("/d/h")).unwrap();
    refused(c.stat(ROOT, &p("/d/g")), Error::NotFound);
    assert_eq!(get(c, &p("/d/h")), b"gee");
    assert_eq!(c.pread(keep, 0, 10).unwrap().data, b"gee");
    c.mkdir(ROOT, &p("/e")).unwrap();
    c.rename(ROOT, &p("/d/h"), &p("/e/h")).unwrap();
    c.rename(ROOT, &p("/e"), &p("/d/e")).unwrap();
    assert_eq!(names(c, &p("/d/e")), ["h"]);
    assert_eq!(c.pread(keep, 0, 10).unwrap().data, b"gee");
    refused(c.rename(ROOT, &p("/d"), &p("/d/e/inside")), Error::InvalidArgument);
    // Replacing a file.
    put(c, &p("/d/r"), b"old");
    c.rename(ROOT, &p("/d/e/h"), &p("/d/r")).unwrap();
    assert_eq!(get(c, &p("/d/r")), b"gee");
    assert_eq!(c.pread(keep, 0, 10).unwrap().data, b"gee");
    // Remove: the name is gone, and a handle on it answers NotFound.
    c.remove(ROOT, &p("/d/r")).unwrap();
    refused(c.stat(ROOT, &p("/d/r")), Error::NotFound);
    refused(c.pread(keep, 0, 10), Error::NotFound);
    c.close(keep).unwrap();
    refused(c.remove(ROOT, &p("/d/r")), Error::NotFound);

    // Nested directories.
    for dir in ["/n", "/n/a", "/n/a/b", "/n/a/b/c"] {
        c.mkdir(ROOT, &p(dir)).unwrap();
    }
    put(c, &p("/n/a/b/c/deep.txt"), b"deep");
    assert_eq!(c.stat(ROOT, &p("/n/a/b")).unwrap().stat.kind, Kind::Dir);
    assert_eq!(c.stat(ROOT, &p("/n/a/b/c/deep.txt")).unwrap().stat.size, 4);
    assert_eq!(get(c, &p("/n/./a/../a/b/c/deep.txt")), b"deep");
    refused(c.remove(ROOT, &p("/n/a")), Error::NotEmpty);
    refused(c.mkdir(ROOT, &p("/n/missing/x")), Error::NotFound);
    refused(c.mkdir(ROOT, &p("/n/a")), Error::AlreadyExists);
    for path in ["/n/a/b/c/deep.txt", "/n/a/b/c", "/n/a/b", "/n/a", "/n"] {
        c.remove(ROOT, &p(path)).unwrap();
    }

    // Long and non-ASCII names.
    let long_ascii = format!("{}.text", "n".repeat(250));
    let long_latin = format!("{}x", "é".repeat(127));
    let long_cjk = "漢".repeat(85);
    let mixed = String::from("ünïcödé ✓ 漢字.txt");
    assert_eq!([long_ascii.len(), long_latin.len(), long_cjk.len()], [255; 3]);
    let all = [&long_ascii, &long_latin, &long_cjk, &mixed];
    c.mkdir(ROOT, &p("/names")).unwrap();
    for name in all {
        put(c, &p(&format!("/names/{name}")), name.as_bytes());
    }
    let mut expected: Vec<String> = all.iter().map(|s| String::from(s.as_str())).collect();
    expected.sort();
    assert_eq!(names(c, &p("/names")), expected);
    for name in all {
        assert_eq!(get(c, &p(&format!("/names/{name}"))), name.as_bytes());
        c.remove(ROOT, &p(&format!("/names/{name}"))).unwrap();
    }
    let too_long = "x".repeat(256);
    refused(c.open(ROOT, &p(&format!("/names/{too_long}")), new_file()), Error::InvalidArgument);
    refused(c.mkdir(ROOT, &p(&format!("/names/{too_long}"))), Error::InvalidArgument);
    assert!(names(c, &p("/names")).is_empty());
    c.remove(ROOT, &p("/names")).unwrap();
    c.remove(ROOT, &p("/d/f")).unwrap();
    c.remove(ROOT, &p("/d/e")).unwrap();
    c.remove(ROOT, &p("/d")).unwrap();
}

#[test]
fn files_on_mem() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    exercise_files(&root, "");
    assert_eq!(names(&root, "/"), ["data"]);
    // The modification time is the server's clock on mem.
    put(&root, "/t", b"t");
    assert_eq!(root.stat(ROOT, "/t").unwrap().stat.modified, NOW);
}

#[test]
fn files_on_fat() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    exercise_files(&root, "/data");
    assert!(names(&root, "/data").is_empty());
}

/// 1,000 files in `dir`, listed by pages through a directory handle: each name exactly once,
/// even when the directory changes between pages (the listing is the one read at page 0).
fn thousand_files(c: &Vc<'_>, dir: &str, name: impl Fn(usize) -> String) {
    c.mkdir(ROOT, dir).unwrap();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let n = name(i);
        let h = c.open(ROOT, &format!("{dir}/{n}"), OpenFlags::WRITE | OpenFlags::CREATE).unwrap().handle;
        c.write(h, &i.to_le_bytes()[..i % 8]).unwrap();
        c.close(h).unwrap();
        expected.push(n);
    }
    expected.sort();
    let h = c.open(ROOT, dir, dir_rw()).unwrap().handle;
    let (entries, pages) = try_list(c, h).unwrap();
    assert!(pages > 2, "{pages} pages");
    let mut seen: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    seen.sort();
    assert_eq!(seen, expected);
    for e in &entries {
        let i: usize = e.name.trim_start_matches(|ch: char| !ch.is_ascii_digit())[..4].parse().unwrap();
        assert_eq!((e.kind, e.size), (Kind::File, (i % 8) as u64), "{}", e.name);
    }
    // Paging while the directory changes: what page 0 saw comes back, once each.
    let first = c.readdir(h, 0).unwrap();
    let put_in = OpenFlags::WRITE | OpenFlags::CREATE;
    c.close(c.open(h, "late arrival", put_in).unwrap().handle).unwrap();
    let gone = entries.last().unwrap().name.clone();
    c.remove(h, &gone).unwrap();
    let mut again: Vec<String> = first.entries.0.into_iter().map(|e| e.name).collect();
    let mut start = first.next;
    loop {
        let page = c.readdir(h, start).unwrap();
        if page.entries.0.is_empty() {
            break;
        }
        start = page.next;
        again.extend(page.entries.0.into_iter().map(|e| e.name));
    }
    again.sort();
    assert_eq!(again, expected);
    // A new listing from 0 sees the change.
    let now: BTreeSet<String> = try_list(c, h).unwrap().0.into_iter().map(|e| e.name).collect();
    assert_eq!(now.len(), 1000);
    assert!(now.contains("late arrival") && !now.contains(&gone));
    c.close(h).unwrap();
}

#[test]
fn readdir_pages_through_1000_files_on_mem() {
    let w = World::new();
    thousand_files(&w.client(ROOT_CT), "/many", |i| format!("file number {i:04} with a rather longer name"));
}

#[test]
fn readdir_pages_through_1000_files_on_fat() {
    let w = World::new();
    thousand_files(&w.client(ROOT_CT), "/data/many", |i| format!("f{i:04}.txt"));
}

/// A file of `len` bytes written in `MAX_IO` pieces, read back by `read` and `pread`.
fn big_file(c: &Vc<'_>, path: &str, len: usize) {
    let data = XorShift(0x1234_5678).bytes(len);
    let h = c.open(ROOT, path, new_file()).unwrap().handle;
    for piece in data.chunks(MAX_IO) {
        assert_eq!(c.write(h, piece).unwrap().count, piece.len() as u64);
    }
    let why = refused(c.write(h, &[0; MAX_IO + 1]), Error::TooLarge).reason;
    assert!(why.contains("at most"), "{why}");
    assert_eq!(c.stat(ROOT, path).unwrap().stat.size, len as u64);
    assert_eq!(c.seek(h, Whence::Start, 0).unwrap().offset, 0);
    let mut back = Vec::with_capacity(len);
    loop {
        let d = c.read(h, u64::MAX).unwrap().data;
        if d.is_empty() {
            break;
        }
        assert!(d.len() == MAX_IO || back.len() + d.len() == len, "a short read in the middle");
        back.extend_from_slice(&d);
    }
    assert!(back == data, "the file read back differs");
    let mut rng = XorShift(99);
    for _ in 0..50 {
        let at = rng.below(len as u64 + 100);
        let got = c.pread(h, at, MAX_IO as u64).unwrap().data;
        let from = (at as usize).min(len);
        assert!(got == data[from..(from + MAX_IO).min(len)], "pread at {at}");
    }
    c.close(h).unwrap();
}

#[test]
fn a_multi_mib_file_on_mem() {
    let w = World::new();
    big_file(&w.client(ROOT_CT), "/big", 4 << 20);
}

#[test]
fn a_multi_mib_file_on_fat() {
    let w = World::new();
    big_file(&w.client(ROOT_CT), "/data/big", 4 << 20);
}

// 2. Errors: kinds and reasons.

#[test]
fn errors_carry_kinds_and_reasons() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    for base in ["", "/data"] {
        let p = |s: &str| format!("{base}{s}");
        root.mkdir(ROOT, &p("/dir")).unwrap();
        root.mkdir(ROOT, &p("/dir/sub")).unwrap();
        put(&root, &p("/file"), b"abc");

        let r = refused(root.open(ROOT, &p("/nope"), OpenFlags::READ), Error::NotFound);
        assert!(r.reason.starts_with(&prefix(ROOT_CT)) && r.reason.contains("/nope"), "{}", r.reason);
        refused(root.stat(ROOT, &p("/nope/deeper")), Error::NotFound);
        let r = refused(root.open(ROOT, &p("/dir"), OpenFlags::READ), Error::IsADirectory);
        assert!(r.reason.contains("DIRECTORY"), "{}", r.reason);
        let r = refused(root.open(ROOT, &p("/file"), dir_r()), Error::NotADirectory);
        assert!(r.reason.contains("/file"), "{}", r.reason);
        refused(root.open(ROOT, &p("/file/x"), OpenFlags::READ), Error::NotADirectory);
        refused(root.mkdir(ROOT, &p("/file/x")), Error::NotADirectory);
        let r = refused(root.remove(ROOT, &p("/dir")), Error::NotEmpty);
        assert!(r.reason.contains("/dir"), "{}", r.reason);
        let r = refused(root.open(ROOT, &p("/file"), OpenFlags::NONE), Error::InvalidArgument);
        assert!(r.reason.contains("no rights"), "{}", r.reason);
        refused(root.open(ROOT, &p("/file"), OpenFlags::CREATE), Error::InvalidArgument);
        let r = refused(root.open(ROOT, &p("/new"), OpenFlags::READ | OpenFlags::CREATE), Error::MissingRights);
        assert!(r.reason.contains("WRITE"), "{}", r.reason);
        refused(root.open(ROOT, &p("/file"), OpenFlags::READ | OpenFlags::TRUNCATE), Error::MissingRights);
        refused(root.open(ROOT, &p("/file"), OpenFlags::READ | OpenFlags::APPEND), Error::MissingRights);
        let h = root.open(ROOT, &p("/file"), OpenFlags::READ).unwrap().handle;
        let r = refused(root.write(h, b"x"), Error::MissingRights);
        assert!(r.reason.contains("r-"), "{}", r.reason);
        refused(root.truncate(h, 0), Error::MissingRights);
        refused(root.pwrite(h, 0, b"x"), Error::MissingRights);
        refused(root.readdir(h, 0), Error::NotADirectory);
        refused(root.open(h, "x", OpenFlags::READ), Error::NotADirectory);
        root.close(h).unwrap();
        let wo = root.open(ROOT, &p("/file"), OpenFlags::WRITE).unwrap().handle;
        refused(root.read(wo, 1), Error::MissingRights);
        refused(root.pread(wo, 0, 1), Error::MissingRights);
        root.close(wo).unwrap();
        let d = root.open(ROOT, &p("/dir"), dir_rw()).unwrap().handle;
        refused(root.read(d, 1), Error::IsADirectory);
        refused(root.write(d, b"x"), Error::IsADirectory);
        refused(root.seek(d, Whence::Start, 0), Error::IsADirectory);
        refused(root.truncate(d, 0), Error::IsADirectory);
        root.close(d).unwrap();
        // Paths that do not resolve.
        refused(root.stat(ROOT, &p(&"/a".repeat(MAX_PATH))), Error::InvalidArgument);
        refused(root.stat(ROOT, &p("/a\0b")), Error::InvalidArgument);
        refused(root.stat(ROOT, &p(&"/d".repeat(70))), Error::InvalidArgument);
        refused(root.remove(ROOT, &p("/dir/sub/missing")), Error::NotFound);
        refused(root.rename(ROOT, &p("/missing"), &p("/x")), Error::NotFound);
    }
    // Across mounts, and the mount points themselves.
    let r = refused(root.rename(ROOT, "/file", "/data/moved"), Error::InvalidArgument);
    assert!(r.reason.contains("across"), "{}", r.reason);
    refused(root.rename(ROOT, "/data", "/elsewhere"), Error::InvalidArgument);
    refused(root.remove(ROOT, "/data"), Error::InvalidArgument);
    refused(root.remove(ROOT, "/"), Error::InvalidArgument);
    // Unknown sources and bad create_vsf sizes.
    root.mkdir(ROOT, "/m").unwrap();
    let r = refused(root.mount(0, "/m", "nfs:server"), Error::InvalidArgument);
    assert!(r.reason.contains("unknown source"), "{}", r.reason);
    refused(root.mount(0, "/m", "blk:nope"), Error::NotFound);
    refused(root.mount(0, "/file", "mem"), Error::NotADirectory);
    refused(root.mount(0, "/missing", "mem"), Error::NotFound);
    refused(root.create_vsf(ROOT, "/data/tiny.vsf", 512 * 100), Error::InvalidArgument);
    refused(root.create_vsf(ROOT, "/data/odd.vsf", (1 << 20) + 1), Error::InvalidArgument);
    refused(root.create_vsf(ROOT, "/data/huge.vsf", 8 << 30), Error::InvalidArgument);
    refused(root.stat(ROOT, "/data/tiny.vsf"), Error::NotFound);
}

// 3. Handles.

#[test]
fn handles_are_their_containers_own_and_cannot_be_forged() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    let (child, sibling) = (w.client(CHILD), w.client(SIBLING));
    root.mount(CHILD, "/", "mem").unwrap();
    root.mount(SIBLING, "/", "mem").unwrap();
    put(&child, "/secret", b"of container 2");
    put(&sibling, "/secret", b"of container 9");
    let h = child.open(ROOT, "/secret", rw()).unwrap().handle;
    let d = child.open(ROOT, "/", dir_rw()).unwrap().handle;
    assert_eq!(child.pread(h, 0, 100).unwrap().data, b"of container 2");
    // Container 9 holds a handle of its own in the same slot range, but not 2's.
    let own = sibling.open(ROOT, "/secret", rw()).unwrap().handle;
    for token in [h, d] {
        let r = refused(sibling.read(token, 100), Error::InvalidHandle);
        assert!(r.reason.starts_with(&prefix(SIBLING)), "{}", r.reason);
        refused(sibling.pread(token, 0, 100), Error::InvalidHandle);
        refused(sibling.write(token, b"x"), Error::InvalidHandle);
        refused(sibling.truncate(token, 0), Error::InvalidHandle);
        refused(sibling.seek(token, Whence::Start, 0), Error::InvalidHandle);
        refused(sibling.stat(token, ""), Error::InvalidHandle);
        refused(sibling.readdir(token, 0), Error::InvalidHandle);
        refused(sibling.open(token, "secret", OpenFlags::READ), Error::InvalidHandle);
        refused(sibling.mkdir(token, "x"), Error::InvalidHandle);
        refused(sibling.remove(token, "secret"), Error::InvalidHandle);
        refused(sibling.rename(token, "secret", "x"), Error::InvalidHandle);
        refused(sibling.duplicate(token, Rights::READ), Error::InvalidHandle);
        refused(sibling.sync(token), Error::InvalidHandle);
        refused(sibling.create_vsf(token, "v.vsf", 1 << 20), Error::InvalidHandle);
        refused(sibling.close(token), Error::InvalidHandle);
        // The root container is no exception.
        refused(root.read(token, 100), Error::InvalidHandle);
        refused(root.close(token), Error::InvalidHandle);
    }
    assert_eq!(child.pread(h, 0, 100).unwrap().data, b"of container 2", "2's handle still works");
    assert_eq!(sibling.pread(own, 0, 100).unwrap().data, b"of container 9");
    assert_eq!(get(&child, "/secret"), b"of container 2");
    // Forged tokens: made up, every bit set, 0 (the root is no file), a slot's index with the
    // wrong generation (after close), and the right index with another generation.
    let index = h & 0xFFFF_FFFF;
    for token in [0xdead, u64::MAX, 0, index | (0x7777 << 32), h ^ (1 << 32)] {
        refused(child.read(token, 1), Error::InvalidHandle);
        refused(child.close(token), Error::InvalidHandle);
    }
    child.close(h).unwrap();
    refused(child.read(h, 1), Error::InvalidHandle);
    refused(child.close(h), Error::InvalidHandle);
    // The slot is reused with a new generation: the old token stays dead.
    let again = child.open(ROOT, "/secret", OpenFlags::READ).unwrap().handle;
    assert_ne!(again, h);
    refused(child.read(h, 1), Error::InvalidHandle);
    assert_eq!(child.read(again, 100).unwrap().data, b"of container 2");
    child.close(again).unwrap();
    child.close(d).unwrap();
    sibling.close(own).unwrap();
}

#[test]
fn duplicates_never_gain_rights() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    for base in ["", "/data"] {
        let file = format!("{base}/dup");
        put(&root, &file, b"0123456789");
        let h = root.open(ROOT, &file, rw()).unwrap().handle;
        assert_eq!(root.seek(h, Whence::Start, 4).unwrap().offset, 4);
        let ro = root.duplicate(h, Rights::READ).unwrap();
        assert_eq!(ro.stat.size, 10);
        // Its own position, starting at the source's.
        assert_eq!(root.read(ro.handle, 2).unwrap().data, b"45");
        assert_eq!(root.read(h, 2).unwrap().data, b"45");
        let r = refused(root.write(ro.handle, b"x"), Error::MissingRights);
        assert!(r.reason.contains("r-"), "{}", r.reason);
        refused(root.truncate(ro.handle, 0), Error::MissingRights);
        refused(root.pwrite(ro.handle, 0, b"x"), Error::MissingRights);
        refused(root.duplicate(ro.handle, Rights::READ_WRITE), Error::MissingRights);
        refused(root.duplicate(ro.handle, Rights::WRITE), Error::MissingRights);
        refused(root.duplicate(h, Rights::NONE), Error::InvalidArgument);
        let wo = root.duplicate(h, Rights::WRITE).unwrap().handle;
        refused(root.read(wo, 1), Error::MissingRights);
        refused(root.duplicate(wo, Rights::READ), Error::MissingRights);
        root.close(h).unwrap();
        // The copies live on after the source closes.
        assert_eq!(root.pwrite(wo, 0, b"X").unwrap().count, 1);
        assert_eq!(root.pread(ro.handle, 0, 3).unwrap().data, b"X12");
        root.close(wo).unwrap();
        root.close(ro.handle).unwrap();

        // A read-only directory handle: nothing below it can be written, created, moved or removed.
        root.mkdir(ROOT, &format!("{base}/ro")).unwrap();
        put(&root, &format!("{base}/ro/f"), b"f");
        root.mkdir(ROOT, &format!("{base}/ro/sub")).unwrap();
        let full = root.open(ROOT, &format!("{base}/ro"), dir_rw()).unwrap().handle;
        let dirs = [
            root.open(ROOT, &format!("{base}/ro"), dir_r()).unwrap().handle,
            root.duplicate(full, Rights::READ).unwrap().handle,
        ];
        for d in dirs {
            refused(root.open(d, "f", OpenFlags::WRITE), Error::MissingRights);
            refused(root.open(d, "f", rw()), Error::MissingRights);
            refused(root.open(d, "sub", dir_rw()), Error::MissingRights);
            refused(root.open(d, "new", OpenFlags::WRITE | OpenFlags::CREATE), Error::MissingRights);
            refused(root.open(d, "sub/../f", OpenFlags::WRITE | OpenFlags::TRUNCATE), Error::MissingRights);
            refused(root.mkdir(d, "newdir"), Error::MissingRights);
            refused(root.mkdir(d, "sub/deeper"), Error::MissingRights);
            refused(root.remove(d, "f"), Error::MissingRights);
            refused(root.remove(d, "sub"), Error::MissingRights);
            refused(root.rename(d, "f", "g"), Error::MissingRights);
            refused(root.rename(d, "f", "sub/f"), Error::MissingRights);
            refused(root.create_vsf(d, "v.vsf", 1 << 20), Error::MissingRights);
            refused(root.duplicate(d, Rights::READ_WRITE), Error::MissingRights);
            // What a directory handle opens below it is no more than it.
            let sub = root.open(d, "sub", dir_r()).unwrap().handle;
            refused(root.mkdir(sub, "x"), Error::MissingRights);
            root.close(sub).unwrap();
            // Reading is allowed.
            let f = root.open(d, "f", OpenFlags::READ).unwrap().handle;
            assert_eq!(root.read(f, 10).unwrap().data, b"f");
            root.close(f).unwrap();
            assert_eq!(root.stat(d, "f").unwrap().stat.size, 1);
            root.close(d).unwrap();
        }
        assert_eq!(get(&root, &format!("{base}/ro/f")), b"f");
        assert_eq!(names(&root, &format!("{base}/ro")), ["f", "sub"]);
        // A write-only directory handle cannot list or look below it.
        let wd = root.duplicate(full, Rights::WRITE).unwrap().handle;
        refused(root.readdir(wd, 0), Error::MissingRights);
        refused(root.stat(wd, "f"), Error::MissingRights);
        refused(root.open(wd, "f", OpenFlags::READ), Error::MissingRights);
        root.mkdir(wd, "made").unwrap();
        root.close(wd).unwrap();
        root.close(full).unwrap();
    }
}

#[test]
fn a_file_handle_stats_itself_with_an_empty_path() {
    // vfs-protocol: stat's `dir` is "a handle", an empty path is "dir itself", and READ on a
    // file lets a handle "read its bytes and stat it".
    let w = World::new();
    let root = w.client(ROOT_CT);
    put(&root, "/data/f", b"12345");
    let h = root.open(ROOT, "/data/f", OpenFlags::READ).unwrap().handle;
    let stat = root.stat(h, "").map(|s| (s.stat.kind, s.stat.size));
    assert_eq!(stat, Ok((Kind::File, 5)), "stat of a file handle itself");
}

// 4. Directory handles are true roots.

#[test]
fn directory_handles_are_true_roots() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    for base in ["", "/data"] {
        let p = |s: &str| format!("{base}{s}");
        put(&root, &p("/only-at-top"), b"top");
        put(&root, &p("/x"), b"outer x");
        root.mkdir(ROOT, &p("/etc")).unwrap();
        put(&root, &p("/etc/passwd"), b"root:x:0:0");
        root.mkdir(ROOT, &p("/a")).unwrap();
        root.mkdir(ROOT, &p("/a/b")).unwrap();
        root.mkdir(ROOT, &p("/a/b/c")).unwrap();
        put(&root, &p("/a/b/x"), b"inner x");
        put(&root, &p("/a/secret"), b"above b");
        let h = root.open(ROOT, &p("/a/b"), dir_rw()).unwrap().handle;
        let many_up = format!("{}etc", "../".repeat(200));
        assert!(many_up.len() <= MAX_PATH);
        for up in ["", ".", "..", "../../..", "/", "/..", "c/../..", many_up.trim_end_matches("etc")] {
            let names_here = {
                let s = root.stat(h, up).unwrap().stat;
                assert_eq!(s.kind, Kind::Dir, "{up}");
                let d = root.open(h, up, dir_r()).unwrap().handle;
                let mut n: Vec<String> = try_list(&root, d).unwrap().0.into_iter().map(|e| e.name).collect();
                root.close(d).unwrap();
                n.sort();
                n
            };
            assert_eq!(names_here, ["c", "x"], "{up:?} stays at /a/b");
        }
        for path in [
            "../only-at-top",
            "/only-at-top",
            "../../../../only-at-top",
            "../secret",
            "../../a/secret",
            many_up.as_str(),
            "/etc/passwd",
            "../../../etc/passwd",
        ] {
            refused(root.stat(h, path), Error::NotFound);
            refused(root.open(h, path, OpenFlags::READ), Error::NotFound);
        }
        // `..` clamps at the handle: these all name /a/b/x.
        for path in ["../../x", "/x", "x", "c/../x", "c/../../../../x", "/../x"] {
            let f = root.open(h, path, OpenFlags::READ).unwrap().handle;
            assert_eq!(root.read(f, 100).unwrap().data, b"inner x", "{path}");
            root.close(f).unwrap();
        }
        // Creating, moving and removing through `..` stays inside too.
        let f = root.open(h, "../../made", new_file()).unwrap().handle;
        root.close(f).unwrap();
        assert_eq!(root.stat(ROOT, &p("/a/b/made")).unwrap().stat.kind, Kind::File);
        refused(root.stat(ROOT, &p("/made")), Error::NotFound);
        root.rename(h, "../made", "../../../moved").unwrap();
        assert_eq!(root.stat(ROOT, &p("/a/b/moved")).unwrap().stat.kind, Kind::File);
        root.remove(h, "../../moved").unwrap();
        root.mkdir(h, "../newdir").unwrap();
        assert_eq!(root.stat(ROOT, &p("/a/b/newdir")).unwrap().stat.kind, Kind::Dir);
        root.remove(h, "/newdir").unwrap();
        // A handle opened through it is a root of its own.
        let c = root.open(h, "../c", dir_rw()).unwrap().handle;
        refused(root.stat(c, "../x"), Error::NotFound);
        put(&root, &p("/a/b/c/y"), b"y");
        assert_eq!(root.stat(c, "../../y").unwrap().stat.size, 1);
        root.close(c).unwrap();
        // The handle follows its directory when it moves, and stays its root.
        root.rename(ROOT, &p("/a/b"), &p("/b2")).unwrap();
        let f = root.open(h, "../x", OpenFlags::READ).unwrap().handle;
        assert_eq!(root.read(f, 100).unwrap().data, b"inner x");
        root.close(f).unwrap();
        refused(root.stat(h, "../secret"), Error::NotFound);
        refused(root.stat(h, "../b2"), Error::NotFound);
        root.close(h).unwrap();
        // Over MAX_PATH: refused, not truncated.
        refused(root.stat(ROOT, &"../".repeat(400)), Error::InvalidArgument);
    }
    // The root of the namespace is a true root too.
    assert_eq!(get(&root, "/../../x"), b"outer x");
    assert_eq!(get(&root, "/data/../../data/x"), b"outer x");
}

// 5. Namespaces.

#[test]
fn namespaces_start_empty_and_are_set_by_parents() {
    let w = World::new();
    let (root, child, grandchild, sibling) =
        (w.client(ROOT_CT), w.client(CHILD), w.client(GRANDCHILD), w.client(SIBLING));
    put(&root, "/root-file", b"root's");
    put(&root, "/data/root-data", b"root's data");
    // A new container sees nothing.
    let r = refused(child.open(ROOT, "/", dir_r()), Error::NotFound);
    assert!(r.reason.starts_with(&prefix(CHILD)) && r.reason.contains("nothing is mounted"), "{}", r.reason);
    refused(child.stat(ROOT, "/root-file"), Error::NotFound);
    refused(child.readdir(ROOT, 0), Error::NotFound);
    refused(child.mkdir(ROOT, "/x"), Error::NotFound);
    assert!(child.mounts(0).unwrap().mounts.0.is_empty());
    // Only its parent (or itself) mounts there: not a sibling, nor a grandchild.
    let r = refused(sibling.mount(CHILD, "/", "mem"), Error::NoSuchContainer);
    assert!(r.reason.starts_with(&prefix(SIBLING)), "{}", r.reason);
    refused(grandchild.mount(CHILD, "/", "mem"), Error::NoSuchContainer);
    refused(sibling.mounts(CHILD), Error::NoSuchContainer);
    refused(sibling.unmount(CHILD, "/"), Error::NoSuchContainer);
    refused(root.mount(GRANDCHILD, "/", "mem"), Error::NoSuchContainer);
    refused(root.mount(0x5eed, "/", "mem"), Error::NoSuchContainer);
    // The root mounts mem at / of container 2.
    root.mount(CHILD, "/", "mem").unwrap();
    refused(root.mount(CHILD, "/", "mem"), Error::AlreadyExists);
    assert_eq!(root.mounts(CHILD).unwrap().mounts.0, [mount("/", "mem")]);
    assert_eq!(child.mounts(0).unwrap().mounts.0, [mount("/", "mem")]);
    assert_eq!(child.mounts(CHILD).unwrap().mounts.0, [mount("/", "mem")]);
    assert_eq!(root.mounts(0).unwrap().mounts.0, [mount("/", "mem"), mount("/data", "blk:blk1")]);
    // Its own, empty tree: nothing of the root's.
    assert!(names(&child, "/").is_empty());
    refused(child.stat(ROOT, "/root-file"), Error::NotFound);
    refused(child.stat(ROOT, "/data/root-data"), Error::NotFound);
    refused(child.stat(ROOT, "/data"), Error::NotFound);
    put(&child, "/root-file", b"child's own");
    assert_eq!(get(&root, "/root-file"), b"root's");
    assert_eq!(get(&child, "/root-file"), b"child's own");
    // A child cannot mount into its parent.
    refused(child.mount(ROOT_CT, "/data", "mem"), Error::NoSuchContainer);
    refused(child.unmount(ROOT_CT, "/data"), Error::NoSuchContainer);
    refused(child.mounts(ROOT_CT), Error::NoSuchContainer);
    // Block devices are the root container's.
    child.mkdir(ROOT, "/disk").unwrap();
    let r = refused(child.mount(0, "/disk", "blk:blk1"), Error::AccessDenied);
    assert!(r.reason.contains("root container"), "{}", r.reason);
    refused(child.mount(0, "/disk", "blk:other"), Error::AccessDenied);
    refused(child.mount(GRANDCHILD, "/", "blk:blk1"), Error::AccessDenied);
    // A device is mounted once in the whole server.
    root.mkdir(ROOT, "/again").unwrap();
    refused(root.mount(0, "/again", "blk:blk1"), Error::Busy);
    refused(root.mount(CHILD, "/disk", "blk:blk1"), Error::Busy);
    // A container mounts into itself and into its children.
    child.mount(0, "/disk", "mem").unwrap();
    put(&child, "/disk/f", b"on the child's second mem");
    child.mount(GRANDCHILD, "/", "mem").unwrap();
    assert_eq!(child.mounts(GRANDCHILD).unwrap().mounts.0, [mount("/", "mem")]);
    assert!(names(&grandchild, "/").is_empty());
    refused(grandchild.stat(ROOT, "/root-file"), Error::NotFound);
    assert_eq!(child.mounts(0).unwrap().mounts.0, [mount("/", "mem"), mount("/disk", "mem")]);
    // Unmount: busy while something is mounted below; what was under it shows again after.
    refused(child.unmount(0, "/"), Error::Busy);
    refused(child.unmount(0, "/nothing"), Error::NotFound);
    let h = child.open(ROOT, "/disk/f", OpenFlags::READ).unwrap().handle;
    child.unmount(0, "/disk").unwrap();
    refused(child.read(h, 10), Error::InvalidHandle);
    assert!(names(&child, "/disk").is_empty());
    // At most MAX_MOUNTS mounts per namespace.
    for i in 1..MAX_MOUNTS {
        child.mkdir(ROOT, &format!("/m{i}")).unwrap();
        child.mount(0, &format!("/m{i}"), "mem").unwrap();
    }
    assert_eq!(child.mounts(0).unwrap().mounts.0.len(), MAX_MOUNTS);
    refused(child.mount(0, "/disk", "mem"), Error::QuotaExceeded);
    child.unmount(0, "/m1").unwrap();
    child.mount(0, "/disk", "mem").unwrap();
    // The root container's namespace is untouched by all of it.
    assert_eq!(root.mounts(0).unwrap().mounts.0, [mount("/", "mem"), mount("/data", "blk:blk1")]);
    assert_eq!(get(&root, "/data/root-data"), b"root's data");
    // Mount points must be absolute-looking paths in the target namespace: `..` cannot leave it.
    root.mount(SIBLING, "/../..", "mem").unwrap();
    assert_eq!(root.mounts(SIBLING).unwrap().mounts.0, [mount("/", "mem")]);
}

// 6. Virtual storage files.

const VSF: &str = "/data/vms/c2.vsf";

/// Reads `image` (a FAT volume's bytes) with the FAT layer alone.
#[test]
fn mount_points_match_whole_names() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    // /database is the root file system's, not the FAT volume's at /data.
    root.mkdir(ROOT, "/database").unwrap();
    put(&root, "/database/x", b"on the root");
    assert_eq!(get(&root, "/database/x"), b"on the root");
    refused(root.stat(ROOT, "/data/x"), Error::NotFound);
    assert_eq!(names(&root, "/"), ["data", "database"]);
    // A mount at /data/m serves neither /data/mm nor /data/m2.
    for dir in ["/data/m", "/data/mm", "/data/m2"] {
        root.mkdir(ROOT, dir).unwrap();
    }
    root.mount(0, "/data/m", "mem").unwrap();
    put(&root, "/data/m/f", b"mem");
    put(&root, "/data/mm/f", b"fat");
    assert_eq!((get(&root, "/data/m/f"), get(&root, "/data/mm/f")), (b"mem".to_vec(), b"fat".to_vec()));
    assert!(names(&root, "/data/m2").is_empty());
    // Unmount names whole mount points too; /data has one below it.
    refused(root.unmount(0, "/data/mm"), Error::NotFound);
    refused(root.unmount(0, "/dat"), Error::NotFound);
    refused(root.unmount(0, "/data"), Error::Busy);
    root.unmount(0, "/data/m").unwrap();
    refused(root.stat(ROOT, "/data/m/f"), Error::NotFound);
    assert_eq!(get(&root, "/data/mm/f"), b"fat");
}

fn volume_of(image: Vec<u8>) -> Volume<MemDisk> {
    Volume::open(Cache::new(MemDisk::from_bytes(image, 512).unwrap(), 64).unwrap(), None).unwrap()
}

#[test]
fn a_vsf_is_a_childs_root_and_persists() {
    let w = World::new();
    let (root, child, sibling) = (w.client(ROOT_CT), w.client(CHILD), w.client(SIBLING));
    root.mkdir(ROOT, "/data/vms").unwrap();
    root.create_vsf(ROOT, VSF, 8 << 20).unwrap();
    let s = root.stat(ROOT, VSF).unwrap().stat;
    assert_eq!((s.kind, s.size), (Kind::File, 8 << 20));
    refused(root.create_vsf(ROOT, VSF, 8 << 20), Error::AlreadyExists);
    // Not enough room: refused, and nothing left behind.
    refused(root.create_vsf(ROOT, "/data/vms/huge.vsf", 64 << 20), Error::NoSpace);
    refused(root.stat(ROOT, "/data/vms/huge.vsf"), Error::NotFound);

    refused(child.stat(ROOT, "/"), Error::NotFound);
    root.mount(CHILD, "/", &format!("vsf:{VSF}")).unwrap();
    assert_eq!(child.mounts(0).unwrap().mounts.0, [mount("/", &format!("vsf:{VSF}"))]);
    assert!(names(&child, "/").is_empty());
    child.mkdir(ROOT, "/home").unwrap();
    put(&child, "/home/hello.txt", b"hello from 2");
    let big = XorShift(5).bytes(300_000);
    put(&child, "/big", &big);
    refused(child.stat(ROOT, "/data"), Error::NotFound);
    refused(child.stat(ROOT, "/vms/c2.vsf"), Error::NotFound);
    let held = child.open(ROOT, "/home/hello.txt", OpenFlags::READ).unwrap().handle;

    // While mounted the root may read it, not change it.
    let vsf = format!("vsf:{VSF}");
    let r = refused(root.open(ROOT, VSF, OpenFlags::WRITE), Error::Busy);
    assert!(r.reason.contains("virtual storage file"), "{}", r.reason);
    refused(root.open(ROOT, VSF, rw()), Error::Busy);
    refused(root.open(ROOT, VSF, OpenFlags::WRITE | OpenFlags::TRUNCATE), Error::Busy);
    refused(root.open(ROOT, VSF, OpenFlags::WRITE | OpenFlags::APPEND), Error::Busy);
    refused(root.remove(ROOT, VSF), Error::Busy);
    refused(root.rename(ROOT, VSF, "/data/vms/other.vsf"), Error::Busy);
    refused(root.rename(ROOT, "/data/vms", "/data/elsewhere"), Error::Busy);
    let vms = root.open(ROOT, "/data/vms", dir_rw()).unwrap().handle;
    refused(root.open(vms, "c2.vsf", OpenFlags::WRITE), Error::Busy);
    refused(root.remove(vms, "c2.vsf"), Error::Busy);
    refused(root.rename(vms, "c2.vsf", "x.vsf"), Error::Busy);
    root.close(vms).unwrap();
    // Mounted once only.
    refused(root.mount(SIBLING, "/", &vsf), Error::Busy);
    root.mkdir(ROOT, "/mnt").unwrap();
    refused(root.mount(0, "/mnt", &vsf), Error::Busy);
    refused(root.mount(0, "/mnt", "vsf:/data/vms/../vms/./c2.vsf"), Error::Busy);
    assert!(root.mounts(SIBLING).unwrap().mounts.0.is_empty());
    let reader = root.open(ROOT, VSF, OpenFlags::READ).unwrap();
    assert_eq!(reader.stat.size, 8 << 20);
    root.close(reader.handle).unwrap();
    // Another container cannot name it: its own namespace is empty.
    refused(sibling.mount(0, "/", &vsf), Error::NotFound);

    // Unmount: handles close, the files persist.
    root.unmount(CHILD, "/").unwrap();
    refused(child.read(held, 10), Error::InvalidHandle);
    refused(child.stat(ROOT, "/home/hello.txt"), Error::NotFound);
    refused(root.unmount(CHILD, "/"), Error::NotFound);
    root.mount(CHILD, "/", &vsf).unwrap();
    assert_eq!(get(&child, "/home/hello.txt"), b"hello from 2");
    assert!(get(&child, "/big") == big);
    assert_eq!(names(&child, "/"), ["big", "home"]);
    root.unmount(CHILD, "/").unwrap();

    // A handle open for writing keeps it from being mounted.
    let writer = root.open(ROOT, VSF, OpenFlags::WRITE).unwrap().handle;
    let r = refused(root.mount(CHILD, "/", &vsf), Error::Busy);
    assert!(r.reason.contains("open for writing"), "{}", r.reason);
    root.close(writer).unwrap();

    // The image is a FAT volume holding what container 2 wrote.
    let image = get(&root, VSF);
    assert_eq!(image.len(), 8 << 20);
    let vol = volume_of(image);
    let mut top: Vec<String> = vol.read_dir("/").unwrap().into_iter().map(|e| e.name).collect();
    top.sort();
    assert_eq!(top, ["big", "home"]);
    let mut buf = [0u8; 64];
    let n = vol.read("/home/hello.txt", 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello from 2");
    assert_eq!(vol.stat("/big").unwrap().size, big.len() as u64);
    let mut back = vec![0; big.len()];
    assert_eq!(vol.read("/big", 0, &mut back).unwrap(), big.len());
    assert!(back == big);

    // Unmounted, it is an ordinary file again.
    root.rename(ROOT, VSF, "/data/vms/renamed.vsf").unwrap();
    root.remove(ROOT, "/data/vms/renamed.vsf").unwrap();
    assert!(w.lo.server().sync_all().is_ok());
}

#[test]
fn renaming_over_a_mounted_vsf_is_busy() {
    let w = World::new();
    let (root, child) = (w.client(ROOT_CT), w.client(CHILD));
    root.create_vsf(ROOT, "/data/c2.vsf", 1 << 20).unwrap();
    root.mount(CHILD, "/", "vsf:/data/c2.vsf").unwrap();
    put(&child, "/f", b"child data");
    put(&root, "/data/other", b"not a volume");
    // Replacing the mounted file by another would pull the volume from under container 2.
    let result = root.rename(ROOT, "/data/other", "/data/c2.vsf").map_err(|r| r.error);
    assert_eq!(result, Err(Error::Busy), "rename over a mounted VSF");
    assert_eq!(get(&child, "/f"), b"child data");
}

/// A world where container 2's root is `/data/vms/c2.vsf` and container 9's is
/// `/data/vms/container-two.vsf`; container 2 has written `/f`.
fn two_vsfs() -> World {
    let w = World::new();
    let (root, child) = (w.client(ROOT_CT), w.client(CHILD));
    root.mkdir(ROOT, "/data/vms").unwrap();
    root.mkdir(ROOT, "/m1").unwrap();
    root.create_vsf(ROOT, "/data/vms/c2.vsf", 1 << 20).unwrap();
    root.create_vsf(ROOT, "/data/vms/container-two.vsf", 1 << 20).unwrap();
    root.mount(CHILD, "/", "vsf:/data/vms/c2.vsf").unwrap();
    root.mount(SIBLING, "/", "vsf:/data/vms/container-two.vsf").unwrap();
    put(&child, "/f", b"child data");
    w
}

#[test]
fn mounted_vsf_protection_does_not_depend_on_the_name_case_on_fat() {
    // FAT names are case-insensitive and have 8.3 aliases: `/data/VMS/C2.VSF` names the same
    // entry as `/data/vms/c2.vsf`, and the short name of `container-two.vsf` too names it.
    let w = two_vsfs();
    let root = w.client(ROOT_CT);
    assert_eq!(root.stat(ROOT, "/data/VMS/C2.VSF").unwrap().stat.size, 1 << 20, "FAT ignores case");
    let alias =
        ["/data/vms/CONTAI~1.VSF", "/data/vms/CONTAINE.VSF"].into_iter().find(|p| root.stat(ROOT, p).is_ok()).unwrap();
    drop(w);
    type Check = fn(&Vc<'_>, &str) -> Result<(), Refusal>;
    let checks: [(&str, Check); 8] = [
        ("open /data/VMS/C2.VSF for writing", |c, _| c.open(ROOT, "/data/VMS/C2.VSF", OpenFlags::WRITE).map(drop)),
        ("open the 8.3 alias for writing", |c, alias| c.open(ROOT, alias, OpenFlags::WRITE).map(drop)),
        ("mount vsf:/data/vms/C2.vsf a second time", |c, _| c.mount(0, "/m1", "vsf:/data/vms/C2.vsf").map(drop)),
        ("mount the 8.3 alias a second time", |c, alias| c.mount(0, "/m1", &format!("vsf:{alias}")).map(drop)),
        ("rename /data/VMS", |c, _| c.rename(ROOT, "/data/VMS", "/data/moved").map(drop)),
        ("rename /data/vms/C2.VSF", |c, _| c.rename(ROOT, "/data/vms/C2.VSF", "/data/vms/x.vsf").map(drop)),
        ("remove /data/vms/C2.VSF", |c, _| c.remove(ROOT, "/data/vms/C2.VSF").map(drop)),
        ("remove the 8.3 alias", |c, alias| c.remove(ROOT, alias).map(drop)),
    ];
    let mut failures = Vec::new();
    for (what, check) in checks {
        let w = two_vsfs();
        let (root, child, sibling) = (w.client(ROOT_CT), w.client(CHILD), w.client(SIBLING));
        let result = check(&root, alias).map_err(|r| r.error);
        if result != Err(Error::Busy) {
            failures.push(format!("{what}: {result:?}, not Busy"));
        }
        // Whatever happened, the containers' volumes must still be there.
        if try_get(&child, "/f").as_deref() != Ok(b"child data") || sibling.stat(ROOT, "/").is_err() {
            failures.push(format!("{what}: a container lost its volume"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn another_containers_mounts_do_not_block_renames() {
    // What is mounted in container 2's namespace has nothing to do with the paths of the
    // root's: a child must not be able to pin the root's directories by mounting at the same
    // paths in its own tree.
    let w = World::new();
    let (root, child) = (w.client(ROOT_CT), w.client(CHILD));
    root.mount(CHILD, "/", "mem").unwrap();
    child.mkdir(ROOT, "/x").unwrap();
    child.mkdir(ROOT, "/x/y").unwrap();
    child.mount(0, "/x/y", "mem").unwrap();
    refused(child.rename(ROOT, "/x", "/z"), Error::Busy);
    root.mkdir(ROOT, "/x").unwrap();
    root.mkdir(ROOT, "/x/y").unwrap();
    assert_eq!(root.rename(ROOT, "/x", "/z").map(drop).map_err(|r| r.error), Ok(()), "the root renames its own /x");
}

#[test]
fn renames_carry_open_handles_whatever_the_name_case_on_fat() {
    // vfs moves the paths of open handles along when an entry is renamed; on FAT the rename
    // may name the entry in another case.
    let w = World::new();
    let root = w.client(ROOT_CT);
    put(&root, "/data/file", b"contents");
    let h = root.open(ROOT, "/data/file", OpenFlags::READ).unwrap().handle;
    root.rename(ROOT, "/data/FILE", "/data/moved").unwrap();
    assert_eq!(get(&root, "/data/moved"), b"contents");
    assert_eq!(root.pread(h, 0, 100).map(|d| d.data), Ok(b"contents".to_vec()), "the handle follows");
}

#[test]
fn renames_move_and_close_handles_by_whole_names() {
    // Handles below a moved entry follow it; a handle on a name that merely starts like it
    // (`ab` beside `a`) stays. Handles on a replaced entry close, and only those.
    let w = World::new();
    let root = w.client(ROOT_CT);
    for base in ["", "/data"] {
        let p = |s: &str| format!("{base}{s}");
        root.mkdir(ROOT, &p("/m")).unwrap();
        root.mkdir(ROOT, &p("/m/a")).unwrap();
        root.mkdir(ROOT, &p("/m/a/deep")).unwrap();
        put(&root, &p("/m/a/deep/f"), b"deep");
        put(&root, &p("/m/ab"), b"sibling");
        let f = root.open(ROOT, &p("/m/a/deep/f"), OpenFlags::READ).unwrap().handle;
        let d = root.open(ROOT, &p("/m/a/deep"), dir_rw()).unwrap().handle;
        let s = root.open(ROOT, &p("/m/ab"), OpenFlags::READ).unwrap().handle;
        root.rename(ROOT, &p("/m/a"), &p("/moved")).unwrap();
        assert_eq!(root.pread(f, 0, 100).unwrap().data, b"deep", "{base}: a file below the moved directory");
        assert_eq!(root.stat(f, "").unwrap().stat.size, 4);
        assert_eq!(root.pread(s, 0, 100).unwrap().data, b"sibling", "{base}: a name that starts alike");
        // The directory handle moved too: what is named below it is found in the new place.
        assert_eq!(root.stat(d, "f").unwrap().stat.size, 4);
        put(&root, &p("/moved/deep/new"), b"n");
        assert_eq!(root.stat(d, "new").unwrap().stat.size, 1);
        refused(root.stat(d, "../ab"), Error::NotFound);
        // The sibling takes the old name; the moved handles are not disturbed.
        root.rename(ROOT, &p("/m/ab"), &p("/m/a")).unwrap();
        assert_eq!(root.pread(s, 0, 100).unwrap().data, b"sibling");
        assert_eq!(root.pread(f, 0, 100).unwrap().data, b"deep");

        // Replacing: the handle on the replaced file closes; one on a longer name stays.
        put(&root, &p("/m/t"), b"replaced");
        put(&root, &p("/m/tt"), b"kept");
        let t = root.open(ROOT, &p("/m/t"), OpenFlags::READ).unwrap().handle;
        let tt = root.open(ROOT, &p("/m/tt"), OpenFlags::READ).unwrap().handle;
        root.rename(ROOT, &p("/m/a"), &p("/m/t")).unwrap();
        refused(root.pread(t, 0, 100), Error::InvalidHandle);
        assert_eq!(root.pread(tt, 0, 100).unwrap().data, b"kept");
        assert_eq!(root.pread(s, 0, 100).unwrap().data, b"sibling", "the moved file's handle follows it");
        assert_eq!(get(&root, &p("/m/t")), b"sibling");
        for h in [f, d, s, tt] {
            root.close(h).unwrap();
        }
        for path in ["/moved/deep/f", "/moved/deep/new", "/moved/deep", "/moved", "/m/t", "/m/tt", "/m"] {
            root.remove(ROOT, &p(path)).unwrap();
        }
    }
}

#[test]
fn a_full_vsf_answers_no_space_and_the_root_carries_on() {
    let w = World::new();
    let (root, child) = (w.client(ROOT_CT), w.client(CHILD));
    root.create_vsf(ROOT, "/data/full.vsf", 1 << 20).unwrap();
    root.mount(CHILD, "/", "vsf:/data/full.vsf").unwrap();
    let h = child.open(ROOT, "/fill", OpenFlags::WRITE | OpenFlags::CREATE).unwrap().handle;
    let piece = vec![0xAB; MAX_IO];
    let mut written = 0u64;
    let refusal = loop {
        match child.write(h, &piece) {
            Ok(w) => {
                assert!(w.count > 0);
                written += w.count;
            }
            Err(refusal) => break refusal,
        }
        assert!(written <= 1 << 20, "more written than the VSF holds");
    };
    assert_eq!(refusal.error, Error::NoSpace, "{}", refusal.reason);
    assert!(written > 512 << 10, "only {written} bytes fit");
    assert_eq!(child.stat(ROOT, "/fill").unwrap().stat.size, written, "the refused write wrote nothing");
    // Smaller pieces may still fit in the last cluster; then NoSpace again.
    let refusal = loop {
        match child.write(h, &piece[..512]) {
            Ok(w) => written += w.count,
            Err(refusal) => break refusal,
        }
        assert!(written <= 1 << 20, "more written than the VSF holds");
    };
    assert_eq!(refusal.error, Error::NoSpace, "{}", refusal.reason);
    refused(child.mkdir(ROOT, "/d"), Error::NoSpace);
    // The root's own volume is not affected.
    let data = XorShift(3).bytes(300_000);
    put(&root, "/data/after.bin", &data);
    assert!(get(&root, "/data/after.bin") == data);
    put(&root, "/mem.bin", &data);
    // What container 2 wrote is there, and freeing it makes room again.
    assert_eq!(child.stat(ROOT, "/fill").unwrap().stat.size, written);
    child.close(h).unwrap();
    child.remove(ROOT, "/fill").unwrap();
    put(&child, "/again", &data[..10_000]);
    assert_eq!(get(&child, "/again"), data[..10_000]);
}

// 7. Containers that end.

#[test]
fn a_dead_containers_handles_and_mounts_go() {
    let w = World::new();
    let (root, child, sibling) = (w.client(ROOT_CT), w.client(CHILD), w.client(SIBLING));
    root.create_vsf(ROOT, "/data/c2.vsf", 1 << 20).unwrap();
    root.mount(CHILD, "/", "vsf:/data/c2.vsf").unwrap();
    root.mount(SIBLING, "/", "mem").unwrap();
    put(&child, "/f", b"written by 2");
    let f = child.open(ROOT, "/f", rw()).unwrap().handle;
    let d = child.open(ROOT, "/", dir_rw()).unwrap().handle;
    let s = sibling.open(ROOT, "/", dir_r()).unwrap().handle;
    refused(root.open(ROOT, "/data/c2.vsf", OpenFlags::WRITE), Error::Busy);
    assert_eq!(w.forget(), 0, "everyone is alive");
    assert_eq!(child.pread(f, 0, 100).unwrap().data, b"written by 2");

    w.kill(CHILD);
    assert_eq!(w.forget(), 1);
    assert_eq!(w.forget(), 0);
    for token in [f, d] {
        refused(child.read(token, 10), Error::InvalidHandle);
        refused(child.readdir(token, 0), Error::InvalidHandle);
        refused(child.close(token), Error::InvalidHandle);
        refused(root.read(token, 10), Error::InvalidHandle);
    }
    refused(child.stat(ROOT, "/f"), Error::NotFound);
    refused(root.mounts(CHILD), Error::NoSuchContainer);
    refused(root.mount(CHILD, "/", "mem"), Error::NoSuchContainer);
    // The sibling is untouched.
    assert!(sibling.readdir(s, 0).unwrap().entries.0.is_empty());
    // The VSF is free: the root may write it, and it holds what 2 wrote (synced).
    let h = root.open(ROOT, "/data/c2.vsf", rw()).unwrap().handle;
    root.close(h).unwrap();
    let vol = volume_of(get(&root, "/data/c2.vsf"));
    let mut buf = [0u8; 64];
    let n = vol.read("/f", 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"written by 2");
}

#[test]
fn mount_forgets_dead_containers_first() {
    let w = World::new();
    let (root, sibling) = (w.client(ROOT_CT), w.client(SIBLING));
    root.create_vsf(ROOT, "/data/c9.vsf", 1 << 20).unwrap();
    root.mount(SIBLING, "/", "vsf:/data/c9.vsf").unwrap();
    put(&sibling, "/f", b"nine");
    root.mkdir(ROOT, "/mnt").unwrap();
    refused(root.mount(0, "/mnt", "vsf:/data/c9.vsf"), Error::Busy);
    w.kill(SIBLING);
    // No explicit forget: the mount does it.
    root.mount(0, "/mnt", "vsf:/data/c9.vsf").unwrap();
    assert_eq!(get(&root, "/mnt/f"), b"nine");
    assert_eq!(w.forget(), 0);
}

// 8. Hostile images.

/// Error kinds a damaged volume may be answered with.
const DAMAGE: &[Error] = &[
    Error::Corrupt,
    Error::DeviceError,
    Error::NotFound,
    Error::NotADirectory,
    Error::IsADirectory,
    Error::AlreadyExists,
    Error::NotEmpty,
    Error::NoSpace,
    Error::InvalidArgument,
    Error::TooLarge,
];

/// Records `result`'s outcome; an error kind outside `DAMAGE` is a failure.
fn note<T>(
    outcomes: &mut BTreeMap<String, usize>,
    odd: &mut Vec<String>,
    what: &str,
    result: Result<T, Refusal>,
) -> bool {
    let key = match &result {
        Ok(_) => format!("{what}: ok"),
        Err(r) => {
            if !DAMAGE.contains(&r.error) {
                odd.push(format!("{what}: {:?}: {}", r.error, r.reason));
            }
            format!("{what}: {:?}", r.error)
        }
    };
    *outcomes.entry(key).or_default() += 1;
    result.is_ok()
}

/// Walks and changes what container 2 sees, every result noted; a bounded number of calls.
fn poke(c: &Vc<'_>, outcomes: &mut BTreeMap<String, usize>, odd: &mut Vec<String>) {
    let mut dirs = vec![String::from("/")];
    let mut calls = 0;
    while let Some(dir) = dirs.pop() {
        calls += 1;
        if calls > 60 {
            break;
        }
        note(outcomes, odd, "stat dir", c.stat(ROOT, &dir));
        let opened = match c.open(ROOT, &dir, dir_r()) {
            Ok(opened) => opened.handle,
            Err(r) => {
                note::<()>(outcomes, odd, "open dir", Err(r));
                continue;
            }
        };
        let listed = try_list(c, opened);
        c.close(opened).unwrap();
        let Ok((entries, _)) = listed else {
            note(outcomes, odd, "readdir", listed);
            continue;
        };
        for e in entries.into_iter().take(20) {
            let path = if dir == "/" { format!("/{}", e.name) } else { format!("{dir}/{}", e.name) };
            match e.kind {
                Kind::Dir if dirs.len() < 20 => dirs.push(path),
                Kind::Dir => {}
                Kind::File => {
                    note(outcomes, odd, "stat file", c.stat(ROOT, &path));
                    if let Ok(h) = c.open(ROOT, &path, OpenFlags::READ) {
                        for _ in 0..16 {
                            match c.read(h.handle, MAX_IO as u64) {
                                Ok(d) if d.data.is_empty() => break,
                                Ok(_) => {}
                                Err(r) => {
                                    note::<()>(outcomes, odd, "read", Err(r));
                                    break;
                                }
                            }
                        }
                        c.close(h.handle).unwrap();
                    }
                }
            }
        }
    }
    note(outcomes, odd, "mkdir", c.mkdir(ROOT, "/new dir"));
    match c.open(ROOT, "/new dir/file.txt", new_file()) {
        Ok(o) => {
            note(outcomes, odd, "write", c.write(o.handle, &[0x5a; MAX_IO]));
            note(outcomes, odd, "pwrite", c.pwrite(o.handle, 100_000, b"far"));
            note(outcomes, odd, "truncate", c.truncate(o.handle, 10));
            c.close(o.handle).unwrap();
        }
        Err(r) => {
            note::<()>(outcomes, odd, "create", Err(r));
        }
    }
    note(outcomes, odd, "rename", c.rename(ROOT, "/ROOT.TXT", "/a/moved.txt"));
    note(outcomes, odd, "remove", c.remove(ROOT, "/big.dat"));
    note(outcomes, odd, "remove in dir", c.remove(ROOT, "/a/b/two.bin"));
    note(outcomes, odd, "remove dir", c.remove(ROOT, "/a/b"));
    note(outcomes, odd, "sync", c.sync(ROOT));
}

#[test]
fn hostile_block_devices_are_refused() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    let image = fat32_image();
    let mut garbage = XorShift(11).bytes(1 << 20);
    garbage[510] = 0x55;
    garbage[511] = 0xAA;
    for (name, bytes) in [
        ("zero", vec![0; 1 << 20]),
        ("short", image[..1 << 20].to_vec()),
        ("boot-only", image[..512].to_vec()),
        ("garbage", garbage),
        ("odd", vec![0; 1000]),
        ("empty", Vec::new()),
    ] {
        w.disks.borrow_mut().insert(String::from(name), bytes);
    }
    root.mkdir(ROOT, "/mnt").unwrap();
    for (name, error) in [
        ("zero", Error::Corrupt),
        ("short", Error::Corrupt),
        ("boot-only", Error::Corrupt),
        ("garbage", Error::Corrupt),
        ("odd", Error::DeviceError),
        ("empty", Error::Corrupt),
        ("missing", Error::NotFound),
    ] {
        let r = refused(root.mount(0, "/mnt", &format!("blk:{name}")), error);
        assert!(r.reason.contains(name), "{}", r.reason);
    }
    assert_eq!(root.mounts(0).unwrap().mounts.0, [mount("/", "mem"), mount("/data", "blk:blk1")]);
    put(&root, "/data/still", b"fine");
    assert_eq!(get(&root, "/data/still"), b"fine");
}

#[test]
fn hostile_vsfs_never_panic_and_the_root_is_still_served() {
    let w = World::new();
    let (root, child) = (w.client(ROOT_CT), w.client(CHILD));
    let base = small_image();
    let mut outcomes = BTreeMap::new();
    let mut odd = Vec::new();
    let mut panicked = Vec::new();
    // Cut and tiny images first.
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("100 bytes", base[..100].to_vec()),
        ("one block", base[..512].to_vec()),
        ("64 KiB", base[..64 << 10].to_vec()),
        ("not a block multiple", base[..(64 << 10) + 100].to_vec()),
    ] {
        put(&root, "/cut.vsf", &bytes);
        let r = refused(root.mount(CHILD, "/", "vsf:/cut.vsf"), Error::Corrupt);
        assert!(r.reason.contains("/cut.vsf"), "{name}: {}", r.reason);
    }
    // The undamaged image mounts and walks cleanly.
    put(&root, "/h.vsf", base);
    root.mount(CHILD, "/", "vsf:/h.vsf").unwrap();
    let mut clean = BTreeMap::new();
    poke(&child, &mut clean, &mut odd);
    root.unmount(CHILD, "/").unwrap();
    assert!(clean.keys().all(|k| k.ends_with(": ok")), "{clean:?}");
    // Then damaged ones.
    // Where the image's metadata lies (FAT12/16: boot sector, FATs, fixed root directory, then
    // the first data clusters, which hold the subdirectories): the used parts of each.
    let le16 = |at: usize| usize::from(u16::from_le_bytes([base[at], base[at + 1]]));
    let (sector, reserved, fats, root_entries, fat_sectors) =
        (le16(11), le16(14), usize::from(base[16]), le16(17), le16(22));
    assert!(sector == 512 && fat_sectors > 0 && root_entries > 0, "a FAT12/16 seed image");
    let root_dir = (reserved + fats * fat_sectors) * sector;
    let data = root_dir + root_entries * 32;
    let mut regions = vec![0..62, 510..512, 0..512, root_dir..root_dir + 1024, data..data + (16 << 10), 0..64 << 10];
    regions
        .extend((0..fats).map(|k| (reserved + k * fat_sectors) * sector..(reserved + k * fat_sectors) * sector + 256));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut mounted = 0;
    for case in 0..200 {
        let mut image = base.clone();
        let changes = 1 + rng.below(12);
        for _ in 0..changes {
            // Within the first 64 KiB: mostly where the metadata is.
            let region = &regions[rng.below(regions.len() as u64) as usize];
            let at = region.start + rng.below(region.len() as u64) as usize;
            image[at] = match rng.below(4) {
                0 => 0,
                1 => 0xFF,
                _ => rng.next() as u8,
            };
        }
        put(&root, "/h.vsf", &image);
        let run = catch_unwind(AssertUnwindSafe(|| {
            let ok = note(&mut outcomes, &mut odd, "mount", root.mount(CHILD, "/", "vsf:/h.vsf"));
            if ok {
                poke(&child, &mut outcomes, &mut odd);
                root.unmount(CHILD, "/").unwrap();
            }
            ok
        }));
        match run {
            Ok(true) => mounted += 1,
            Ok(false) => {}
            Err(e) => {
                let why =
                    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                panicked.push(format!("case {case}: {why:?}"));
                let _ = root.unmount(CHILD, "/");
            }
        }
    }
    assert!(panicked.is_empty(), "panics:\n{}", panicked.join("\n"));
    assert!(odd.is_empty(), "unexpected error kinds:\n{}", odd.join("\n"));
    assert!(mounted > 20 && mounted < 200, "{mounted} of 200 mounted: {outcomes:#?}");
    assert!(outcomes.get("mount: Corrupt").copied().unwrap_or(0) > 0, "{outcomes:#?}");
    // The server still serves the root, and the child gets a fresh root.
    put(&root, "/data/after", b"after");
    assert_eq!(get(&root, "/data/after"), b"after");
    put(&root, "/after", b"after");
    assert_eq!(names(&root, "/"), ["after", "cut.vsf", "data", "h.vsf"]);
    root.mount(CHILD, "/", "mem").unwrap();
    put(&child, "/ok", b"ok");
    assert_eq!(get(&child, "/ok"), b"ok");
    assert!(w.lo.server().sync_all().is_ok());
}

// 9. Quotas.

#[test]
fn a_container_holds_at_most_max_open_handles() {
    let w = World::new();
    let (root, child) = (w.client(ROOT_CT), w.client(CHILD));
    root.mount(CHILD, "/", "mem").unwrap();
    put(&child, "/f", b"f");
    let handles: Vec<u64> =
        (0..MAX_OPEN_PER_CONTAINER).map(|_| child.open(ROOT, "/f", OpenFlags::READ).unwrap().handle).collect();
    assert_eq!(handles.iter().collect::<BTreeSet<_>>().len(), MAX_OPEN_PER_CONTAINER);
    let r = refused(child.open(ROOT, "/f", OpenFlags::READ), Error::QuotaExceeded);
    assert!(r.reason.contains(&MAX_OPEN_PER_CONTAINER.to_string()), "{}", r.reason);
    refused(child.open(ROOT, "/", dir_r()), Error::QuotaExceeded);
    refused(child.duplicate(handles[0], Rights::READ), Error::QuotaExceeded);
    refused(child.create_vsf(ROOT, "/v.vsf", 1 << 20), Error::QuotaExceeded);
    // Others are not affected.
    let mine = root.open(ROOT, "/data", dir_r()).unwrap().handle;
    root.close(mine).unwrap();
    // Closing one makes room for one.
    child.close(handles[100]).unwrap();
    let again = child.open(ROOT, "/f", OpenFlags::READ).unwrap().handle;
    refused(child.open(ROOT, "/f", OpenFlags::READ), Error::QuotaExceeded);
    assert_eq!(child.read(again, 10).unwrap().data, b"f");
    for h in handles.iter().filter(|&&h| h != handles[100]) {
        child.close(*h).unwrap();
    }
    child.close(again).unwrap();
    // All closed: a full quota again.
    let held: Vec<u64> =
        (0..MAX_OPEN_PER_CONTAINER).map(|_| child.open(ROOT, "/f", OpenFlags::READ).unwrap().handle).collect();
    refused(child.open(ROOT, "/f", OpenFlags::READ), Error::QuotaExceeded);
    // A dead container's handles are closed with it.
    w.kill(CHILD);
    assert_eq!(w.forget(), 1);
    refused(child.read(held[0], 1), Error::InvalidHandle);
}

#[test]
fn an_open_refused_for_the_quota_changes_nothing() {
    // A refused request changes nothing: an open refused with QuotaExceeded must not have
    // created or cut the file first.
    let w = World::new();
    let root = w.client(ROOT_CT);
    for base in ["", "/data"] {
        put(&root, &format!("{base}/f"), b"precious");
    }
    let handles: Vec<u64> =
        (0..MAX_OPEN_PER_CONTAINER).map(|_| root.open(ROOT, "/data", dir_r()).unwrap().handle).collect();
    let mut failures = Vec::new();
    for base in ["", "/data"] {
        let f = format!("{base}/f");
        refused(root.open(ROOT, &f, OpenFlags::WRITE | OpenFlags::TRUNCATE), Error::QuotaExceeded);
        let size = root.stat(ROOT, &f).unwrap().stat.size;
        if size != 8 {
            failures.push(format!("{f}: cut to {size} bytes by a refused TRUNCATE"));
        }
        for (what, path, result) in [
            ("open CREATE", format!("{base}/new"), root.open(ROOT, &format!("{base}/new"), new_file()).map(drop)),
            ("create_vsf", format!("{base}/v.vsf"), root.create_vsf(ROOT, &format!("{base}/v.vsf"), 1 << 20).map(drop)),
        ] {
            assert_eq!(result.map_err(|r| r.error), Err(Error::QuotaExceeded), "{what}");
            if let Ok(s) = root.stat(ROOT, &path) {
                failures.push(format!("{path}: left behind by a refused {what} ({} bytes)", s.stat.size));
            }
        }
    }
    for h in handles {
        root.close(h).unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_directory_handle_cannot_remove_its_own_directory() {
    // vfs-protocol: remove is refused with InvalidArgument for "a mount point or `dir` itself".
    let w = World::new();
    let root = w.client(ROOT_CT);
    let mut failures = Vec::new();
    for base in ["", "/data"] {
        root.mkdir(ROOT, &format!("{base}/a")).unwrap();
        root.mkdir(ROOT, &format!("{base}/a/empty")).unwrap();
        let h = root.open(ROOT, &format!("{base}/a/empty"), dir_rw()).unwrap().handle;
        for path in ["", ".."] {
            let result = root.rename(h, path, "elsewhere").map_err(|r| r.error);
            if result != Err(Error::InvalidArgument) {
                failures.push(format!("{base}: rename({path:?}, \"elsewhere\") through the handle: {result:?}"));
            }
        }
        for path in ["", ".", "..", "/"] {
            let result = root.remove(h, path).map_err(|r| r.error);
            if result != Err(Error::InvalidArgument) {
                failures.push(format!("{base}: remove({path:?}) through the handle: {result:?}"));
            }
        }
        if root.stat(ROOT, &format!("{base}/a/empty")).is_err() {
            failures.push(format!("{base}/a/empty is gone"));
        }
        let _ = root.close(h);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The loopback as one process of one container sees it.
struct AsProcess<'a> {
    lo: &'a Lo,
    container: u64,
    pid: u64,
}

impl Transport for AsProcess<'_> {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        self.lo.set_caller(Caller { container: self.container, pid: self.pid, badge: 0 });
        self.lo.call(stage, read)
    }

    fn drop_cap(&self, handle: u32) {
        self.lo.drop_cap(handle);
    }
}

#[test]
fn shared_buffers_move_file_data_in_both_directions() {
    let w = World::new();
    let c = w.client(ROOT_CT);
    for base in ["/", "/data/"] {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        put(&c, &format!("{base}src"), &data);
        c.share(1 << 20).unwrap();
        let src = c.open(ROOT, &format!("{base}src"), OpenFlags::READ).unwrap().handle;
        let dst = c.open(ROOT, &format!("{base}dst"), new_file()).unwrap().handle;
        // Whole file into the buffer at 4096, from the position (which moves), then out again.
        let n = c.read_shared(src, POSITION, 1 << 19, 4096).unwrap().count;
        assert_eq!(n, 1 << 19);
        let rest = c.read_shared(src, POSITION, 1 << 19, 4096 + (1 << 19)).unwrap_err();
        assert_eq!(rest.error, Error::InvalidArgument, "{}", rest.reason);
        let n2 = c.read_shared(src, POSITION, 300_000, 4096 + (1 << 19)).unwrap().count;
        assert_eq!(n2, 700_000 - (1 << 19));
        assert_eq!(c.read_shared(src, POSITION, 1000, 0).unwrap().count, 0, "at the end");
        let total = n + n2;
        assert_eq!(c.write_shared(dst, POSITION, total, 4096).unwrap().count, total);
        assert_eq!(get(&c, &format!("{base}dst")), data);
        // At an offset, leaving the position alone.
        assert_eq!(c.read_shared(src, 10, 5, 0).unwrap().count, 5);
        assert_eq!(c.write_shared(dst, 0, 5, 0).unwrap().count, 5);
        assert_eq!(get(&c, &format!("{base}dst"))[..5], data[10..15]);
        assert_eq!(c.seek(dst, Whence::Current, 0).unwrap().offset, total);
        // Rights still hold.
        let no = c.write_shared(src, 0, 1, 0).unwrap_err();
        assert_eq!(no.error, Error::MissingRights);
        c.close(src).unwrap();
        c.close(dst).unwrap();
    }
}

/// `read_window` puts file data into the window the call offers (from its start), moves the
/// position only with POSITION and only on success, and refuses what the kernel would refuse,
/// what `read` refuses, and pipes.
#[test]
fn windows_receive_file_data_in_place() {
    let w = World::new();
    let c = w.client(ROOT_CT);
    let offer = |len: Option<usize>| *w.window.borrow_mut() = len.map(|n| vec![0xEE; n]);
    let window = || w.window.borrow().clone().unwrap();
    for base in ["/", "/data/"] {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        put(&c, &format!("{base}src"), &data);
        let src = c.open(ROOT, &format!("{base}src"), OpenFlags::READ).unwrap().handle;
        offer(Some(1 << 20));
        assert_eq!(c.read_window(src, POSITION, 1 << 20).unwrap().count, 700_000, "{base}");
        assert!(window()[..700_000] == data[..], "{base}: the window holds the file");
        assert!(window()[700_000..].iter().all(|&b| b == 0xEE), "{base}: nothing past the end");
        assert_eq!(c.seek(src, Whence::Current, 0).unwrap().offset, 700_000, "{base}: the position moved");
        assert_eq!(c.read_window(src, POSITION, 1000).unwrap().count, 0, "{base}: at the end");
        // At an offset, leaving the position alone; across the FAT's clusters and cache pages.
        offer(Some(10_000));
        assert_eq!(c.read_window(src, 4090, 10_000).unwrap().count, 10_000);
        assert!(window() == data[4090..14_090], "{base}: at 4090");
        assert_eq!(c.seek(src, Whence::Current, 0).unwrap().offset, 700_000, "{base}: the position stayed");
        // Refusals leave the position where it was.
        c.seek(src, Whence::Start, 5).unwrap();
        offer(None);
        let none = c.read_window(src, POSITION, 100).unwrap_err();
        assert_eq!(none.error, Error::AccessDenied, "{base}: {}", none.reason);
        offer(Some(100));
        let small = c.read_window(src, POSITION, 1000).unwrap_err();
        assert_eq!(small.error, Error::TooLarge, "{base}: {}", small.reason);
        assert_eq!(c.seek(src, Whence::Current, 0).unwrap().offset, 5, "{base}: the position stayed");
        let write_only = c.open(ROOT, &format!("{base}src"), OpenFlags::WRITE).unwrap().handle;
        assert_eq!(c.read_window(write_only, 0, 10).unwrap_err().error, Error::MissingRights);
        let dir = c.open(ROOT, base, OpenFlags::READ | OpenFlags::DIRECTORY).unwrap().handle;
        assert_eq!(c.read_window(dir, 0, 10).unwrap_err().error, Error::IsADirectory);
        for h in [src, write_only, dir] {
            c.close(h).unwrap();
        }
    }
    let pipe = c.pipe().unwrap();
    offer(Some(100));
    assert_eq!(c.read_window(pipe.read, 0, 10).unwrap_err().error, Error::WrongObject);
    // Another container's handle is not there.
    let src = c.open(ROOT, "/src", OpenFlags::READ).unwrap().handle;
    w.lo.server().mount_in(ROOT_CT, CHILD, "/", "mem").unwrap();
    assert_eq!(w.client(CHILD).read_window(src, 0, 10).unwrap_err().error, Error::InvalidHandle);
}

#[test]
fn shared_buffers_are_per_process_bounded_and_checked() {
    let w = World::new();
    let c = w.client(ROOT_CT);
    put(&c, "/f", b"hello");
    let h = c.open(ROOT, "/f", OpenFlags::READ).unwrap().handle;
    let none = c.read_shared(h, 0, 5, 0).unwrap_err();
    assert_eq!(none.error, Error::StaleHandle, "no buffer yet: {}", none.reason);
    for bad in [0, 100, MAX_SHARED_BYTES + 4096, u64::MAX] {
        assert_eq!(c.share(bad).unwrap_err().error, Error::InvalidArgument, "{bad} bytes");
    }
    c.share(4096).unwrap();
    for (len, at) in [(4097, 0), (1, 4096), (u64::MAX, 1), (2, u64::MAX)] {
        assert_eq!(c.read_shared(h, 0, len, at).unwrap_err().error, Error::InvalidArgument, "{len} at {at}");
    }
    assert_eq!(c.read_shared(h, 0, 4096, 0).unwrap().count, 5, "the buffer is still there after refusals");
    // Another process of the container has none until it shares; then up to the limit.
    let other = Client::new(AsProcess { lo: &w.lo, container: ROOT_CT, pid: 2 });
    assert_eq!(other.read_shared(h, 0, 5, 0).unwrap_err().error, Error::StaleHandle);
    for pid in 2..=MAX_SHARED_PER_CONTAINER as u64 {
        Client::new(AsProcess { lo: &w.lo, container: ROOT_CT, pid }).share(4096).unwrap();
    }
    // One more process (the server never learns which ended): the oldest buffer, pid 1's,
    // goes, and pid 1 is told to share again.
    let late = Client::new(AsProcess { lo: &w.lo, container: ROOT_CT, pid: 99 });
    late.share(4096).unwrap();
    assert_eq!(w.lo.server().shared_buffers(), MAX_SHARED_PER_CONTAINER);
    assert_eq!(late.read_shared(h, 0, 5, 0).unwrap().count, 5);
    assert_eq!(c.read_shared(h, 0, 5, 0).unwrap_err().error, Error::StaleHandle, "the oldest went");
    c.share(4096).unwrap();
    assert_eq!(c.read_shared(h, 0, 5, 0).unwrap().count, 5);
    assert_eq!(w.lo.server().shared_buffers(), MAX_SHARED_PER_CONTAINER, "pid 2's went for it");
    // Replacing one's own buffer is not one more.
    c.share(8192).unwrap();
    // Another container's buffers are its own, and another container cannot use them.
    w.lo.server().mount_in(ROOT_CT, CHILD, "/", "mem").unwrap();
    let child = w.client(CHILD);
    child.share(4096).unwrap();
    put(&child, "/x", b"child");
    let h = child.open(ROOT, "/x", OpenFlags::READ).unwrap().handle;
    assert_eq!(child.read_shared(h, 0, 5, 0).unwrap().count, 5);
    let sibling = w.client(SIBLING);
    assert_eq!(sibling.read_shared(h, 0, 5, 0).unwrap_err().error, Error::StaleHandle, "no buffer there");
    // A container's buffers go with it.
    w.kill(CHILD);
    assert_eq!(w.forget(), 1);
    assert_eq!(w.lo.server().shared_buffers(), MAX_SHARED_PER_CONTAINER, "the root's 8 remain");
}

#[test]
fn open_in_reads_a_descendants_file_and_nothing_else() {
    let w = World::new();
    w.lo.server().mount_in(ROOT_CT, CHILD, "/", "mem").unwrap();
    w.lo.server().mount_in(ROOT_CT, SIBLING, "/", "mem").unwrap();
    let (root, child, sibling) = (w.client(ROOT_CT), w.client(CHILD), w.client(SIBLING));
    put(&child, "/prog", b"\x7fELF in the child");
    put(&root, "/prog", b"the root's own");
    // The root reads the child's file by the child's path; the handle is the root's.
    let opened = root.open_in(CHILD, "/prog", OpenFlags::READ).unwrap();
    assert_eq!(root.read(opened.handle, 100).unwrap().data, b"\x7fELF in the child");
    assert_eq!(child.read(opened.handle, 100).unwrap_err().error, Error::InvalidHandle, "not the child's handle");
    root.close(opened.handle).unwrap();
    // 0 and its own id mean its own namespace.
    let own = root.open_in(0, "/prog", OpenFlags::READ).unwrap();
    assert_eq!(root.read(own.handle, 100).unwrap().data, b"the root's own");
    // Never sideways or upwards, never for writing, and `..` stays in the child's root.
    assert_eq!(sibling.open_in(CHILD, "/prog", OpenFlags::READ).unwrap_err().error, Error::NoSuchContainer);
    assert_eq!(child.open_in(ROOT_CT, "/prog", OpenFlags::READ).unwrap_err().error, Error::NoSuchContainer);
    for flags in [OpenFlags::WRITE, OpenFlags::READ | OpenFlags::WRITE, OpenFlags::READ | OpenFlags::CREATE] {
        assert_eq!(root.open_in(CHILD, "/prog", flags).unwrap_err().error, Error::InvalidArgument, "{flags:?}");
    }
    let climbed = root.open_in(CHILD, "/../../data/x", OpenFlags::READ).unwrap_err();
    assert_eq!(climbed.error, Error::NotFound, "{}", climbed.reason);
    // A grandchild is below the root too.
    w.lo.server().mount_in(ROOT_CT, GRANDCHILD, "/", "mem").unwrap();
    put(&w.client(GRANDCHILD), "/g", b"deep");
    let deep = root.open_in(GRANDCHILD, "/g", OpenFlags::READ).unwrap();
    assert_eq!(root.read(deep.handle, 10).unwrap().data, b"deep");
}

#[test]
fn boot_is_served_read_only_to_whoever_it_is_mounted_for() {
    let mut writer = vessel_bootfs::Writer::new();
    writer.add_dir("etc").unwrap();
    writer.add_file("etc/init.conf", 0o644, b"bin/hello\n").unwrap();
    writer.add_file("bin/true", 0o755, b"\x7fELF true").unwrap();
    writer.add_file("bin/deep/er/x", 0o644, b"x").unwrap();
    // Larger than the bounce buffer the default `FileSystem::read_to` reads through.
    let big: Vec<u8> = (0..150_000u32).map(|i| (i * 13 % 251) as u8).collect();
    writer.add_file("big", 0o644, &big).unwrap();
    let image = crate::bootfs::BootImage::new(Box::new(writer.finish())).unwrap();
    let w = World::new();
    {
        let mut vfs = w.lo.server();
        vfs.set_boot_image(image);
        assert!(vfs.make_dir(ROOT_CT, "/boot"));
        vfs.mount_in(ROOT_CT, ROOT_CT, "/boot", "boot").unwrap();
    }
    let c = w.client(ROOT_CT);
    assert_eq!(get(&c, "/boot/bin/true"), b"\x7fELF true");
    assert_eq!(get(&c, "/boot/etc/init.conf"), b"bin/hello\n");
    // Window reads through the bounce buffer: whole, at an offset, and refused past the window.
    let h = c.open(ROOT, "/boot/big", OpenFlags::READ).unwrap().handle;
    *w.window.borrow_mut() = Some(vec![0; 200_000]);
    assert_eq!(c.read_window(h, POSITION, 200_000).unwrap().count, 150_000);
    assert!(w.window.borrow().as_ref().unwrap()[..150_000] == big[..], "the window holds /boot/big");
    *w.window.borrow_mut() = Some(vec![0; 70_000]);
    assert_eq!(c.read_window(h, 65_000, 70_000).unwrap().count, 70_000);
    assert!(w.window.borrow().as_ref().unwrap()[..] == big[65_000..135_000], "at 65,000");
    assert_eq!(c.read_window(h, 0, 100_000).unwrap_err().error, Error::TooLarge);
    c.close(h).unwrap();
    let stat = c.stat(ROOT, "/boot/bin/deep/er").unwrap().stat;
    assert_eq!((stat.kind, stat.read_only), (Kind::Dir, true), "implied directories exist");
    let mut bin = names(&c, "/boot/bin");
    bin.sort();
    assert_eq!(bin, ["deep", "true"]);
    assert_eq!(c.stat(ROOT, "/boot/nothing").unwrap_err().error, Error::NotFound);
    assert_eq!(c.open(ROOT, "/boot/bin", OpenFlags::READ).unwrap_err().error, Error::IsADirectory);
    // Nothing changes it.
    for refused in [
        c.open(ROOT, "/boot/bin/true", OpenFlags::READ | OpenFlags::WRITE).map(|_| ()),
        c.open(ROOT, "/boot/new", new_file()).map(|_| ()),
        c.mkdir(ROOT, "/boot/d").map(|_| ()),
        c.remove(ROOT, "/boot/bin/true").map(|_| ()),
        c.rename(ROOT, "/boot/bin/true", "/boot/bin/false").map(|_| ()),
        c.create_vsf(ROOT, "/boot/v.vsf", 1 << 20).map(|_| ()),
    ] {
        assert_eq!(refused.unwrap_err().error, Error::ReadOnly);
    }
    assert_eq!(get(&c, "/boot/bin/true"), b"\x7fELF true");
    // A parent may give it to a child as its root; the child reads it and changes nothing.
    c.mount(CHILD, "/", "boot").unwrap();
    let child = w.client(CHILD);
    assert_eq!(get(&child, "/bin/true"), b"\x7fELF true");
    assert_eq!(child.mkdir(ROOT, "/x").unwrap_err().error, Error::ReadOnly);
    let listed = c.mounts(CHILD).unwrap().mounts.0;
    assert_eq!((listed[0].source.as_str(), listed[0].read_only), ("boot", true));
}

#[test]
fn pipes_carry_bytes_in_order_and_end_when_writers_close() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    let piped = root.pipe().unwrap();
    assert_eq!(root.write(piped.write, b"hello ").unwrap().count, 6);
    assert_eq!(root.write(piped.write, b"world").unwrap().count, 5);
    assert_eq!(root.stat(piped.read, "").unwrap().stat.size, 11);
    assert_eq!(root.read(piped.read, 3).unwrap().data, b"hel");
    assert_eq!(root.read(piped.read, 100).unwrap().data, b"lo world");
    // A second writer (a duplicate) keeps the pipe open after the first closes.
    let second = root.duplicate(piped.write, Rights::WRITE).unwrap().handle;
    root.close(piped.write).unwrap();
    root.write(second, b"!").unwrap();
    root.close(second).unwrap();
    assert_eq!(root.read(piped.read, 100).unwrap().data, b"!");
    // No writer and nothing left: the end of the data, every time.
    assert!(root.read(piped.read, 100).unwrap().data.is_empty());
    assert!(root.read(piped.read, 100).unwrap().data.is_empty());
    root.close(piped.read).unwrap();
}

#[test]
fn a_pipe_refuses_what_is_not_reading_and_writing() {
    let w = World::new();
    let root = w.client(ROOT_CT);
    let piped = root.pipe().unwrap();
    fn err<T: Debug>(r: Result<T, Refusal>) -> Error {
        r.unwrap_err().error
    }
    assert_eq!(err(root.read(piped.write, 1)), Error::MissingRights);
    assert_eq!(err(root.write(piped.read, b"x")), Error::MissingRights);
    assert_eq!(err(root.pread(piped.read, 0, 1)), Error::WrongObject);
    assert_eq!(err(root.seek(piped.read, Whence::Start, 0)), Error::WrongObject);
    assert_eq!(err(root.truncate(piped.write, 0)), Error::WrongObject);
    assert_eq!(err(root.duplicate(piped.read, Rights::WRITE)), Error::MissingRights);
    assert_eq!(err(root.write(piped.write, &vec![0; MAX_IO + 1])), Error::TooLarge);
    // Another container cannot use them.
    let child = w.client(CHILD);
    assert_eq!(err(child.read(piped.read, 1)), Error::InvalidHandle);
    // Nobody reads: writes are refused and say why.
    root.close(piped.read).unwrap();
    let refused = root.write(piped.write, b"x").unwrap_err();
    assert_eq!(refused.error, Error::PeerDied);
    assert!(refused.reason.contains("reading end is closed"), "{refused}");
    // A full pipe takes what fits (here: nothing waits, so the first write fills it).
    let full = root.pipe().unwrap();
    let mut taken = 0;
    while taken < crate::pipe::CAPACITY {
        taken += root.write(full.write, &vec![7; MAX_IO]).unwrap().count as usize;
    }
    assert_eq!(taken, crate::pipe::CAPACITY);
    assert_eq!(root.stat(full.read, "").unwrap().stat.size, crate::pipe::CAPACITY as u64);
}

#[test]
fn pipes_count_against_the_handle_quota_and_go_with_their_container() {
    let w = World::new();
    let child = w.client(CHILD);
    let mut pipes = Vec::new();
    while let Ok(p) = child.pipe() {
        pipes.push(p);
    }
    assert_eq!(pipes.len(), MAX_OPEN_PER_CONTAINER / 2);
    assert_eq!(child.pipe().unwrap_err().error, Error::QuotaExceeded);
    // One handle short of the quota: the refused pipe leaves no end behind.
    child.close(pipes[0].read).unwrap();
    assert_eq!(child.pipe().unwrap_err().error, Error::QuotaExceeded);
    child.close(pipes[0].write).unwrap();
    assert!(child.pipe().is_ok());
    w.kill(CHILD);
    assert_eq!(w.forget(), 1);
    assert!(w.lo.server().pipes_open() == 0);
}

/// What a restarted server is given back: the mounts asked for through the protocol, oldest
/// first, never the root's assembled tree; through the record and back; made again as their
/// askers could make them now.
#[test]
fn mounts_asked_for_are_kept_and_made_again_after_a_restart() {
    use crate::kept::{self, KeptMount};
    let kept_mount = |caller, container, at: &str, source: &str| KeptMount {
        caller,
        container,
        at: String::from(at),
        source: String::from(source),
    };
    let vsf = format!("vsf:{VSF}");
    let mut expected = vec![
        kept_mount(ROOT_CT, CHILD, "/", &vsf),
        kept_mount(CHILD, GRANDCHILD, "/", "vsf:/g.vsf"),
        kept_mount(CHILD, CHILD, "/scratch", "mem"),
        kept_mount(ROOT_CT, ROOT_CT, "/mnt", "mem"),
    ];
    // The first instance: a child's VSF root, a grandchild's root in a file of the child's,
    // a mount the child made for itself, one the root made for itself.
    let w = World::new();
    let setup = |w: &World, first: bool| {
        let root = w.client(ROOT_CT);
        root.mkdir(ROOT, "/data/vms").unwrap();
        root.create_vsf(ROOT, VSF, 8 << 20).unwrap();
        root.mkdir(ROOT, "/mnt").unwrap();
        if first {
            root.mount(CHILD, "/", &vsf).unwrap();
        }
    };
    let in_child = |w: &World| {
        let child = w.client(CHILD);
        child.create_vsf(ROOT, "/g.vsf", 2 << 20).unwrap();
        child.mkdir(ROOT, "/scratch").unwrap();
    };
    setup(&w, true);
    in_child(&w);
    let (root, child) = (w.client(ROOT_CT), w.client(CHILD));
    child.mount(GRANDCHILD, "/", "vsf:/g.vsf").unwrap();
    child.mount(0, "/scratch", "mem").unwrap();
    root.mount(0, "/mnt", "mem").unwrap();
    let before = w.lo.server().mount_changes();
    assert_eq!(w.lo.server().kept_mounts(), expected);
    // An unmount, or a container that ends, leaves the record; the count moves.
    root.mount(SIBLING, "/", "mem").unwrap();
    root.unmount(SIBLING, "/").unwrap();
    assert_eq!(w.lo.server().kept_mounts(), expected);
    assert!(w.lo.server().mount_changes() > before);

    // Through the record and back; a record with room for two keeps the first two.
    let (record, n) = kept::encode(&expected, 4096);
    assert_eq!((n, kept::decode(&record)), (4, expected.clone()));
    let two = kept::encode(&expected[..2], 4096).0.len();
    let (short, n) = kept::encode(&expected, two);
    assert_eq!((n, kept::decode(&short)), (2, expected[..2].to_vec()));
    // Cut anywhere, a record yields a prefix of what it held.
    for cut in 0..record.len() {
        let got = kept::decode(&record[..cut]);
        assert!(expected.starts_with(&got), "cut at {cut}: {got:?}");
    }

    // The next instance: the same disks (here made again), nothing mounted but the root's tree.
    let w2 = World::new();
    setup(&w2, false);
    // Only the child's root can be made before its VSF holds the grandchild's file and the
    // mount point; the rest is refused, saying why, and changes nothing.
    let refused = w2.lo.server().restore(&expected);
    let reasons: Vec<(KeptMount, Error)> = refused.iter().map(|(m, e, _)| (m.clone(), *e)).collect();
    assert_eq!(
        reasons,
        [(expected[1].clone(), Error::NotFound), (expected[2].clone(), Error::NotFound)],
        "{refused:?}"
    );
    assert_eq!(w2.lo.server().kept_mounts(), [expected[0].clone(), expected[3].clone()]);
    assert_eq!(w2.client(CHILD).mounts(0).unwrap().mounts.0, [mount("/", &vsf)]);
    in_child(&w2);
    assert!(w2.lo.server().restore(&expected[1..3]).is_empty());
    // A container that ended meanwhile gets nothing back, nor does what it asked for itself.
    w2.kill(GRANDCHILD);
    let its_own = kept_mount(GRANDCHILD, GRANDCHILD, "/", "mem");
    let gone = w2.lo.server().restore(&[expected[1].clone(), its_own]);
    assert_eq!(gone.iter().map(|(_, e, _)| *e).collect::<Vec<_>>(), [Error::NoSuchContainer; 2]);
    expected.swap(1, 3);
    expected.swap(2, 3);
    assert_eq!(w2.lo.server().kept_mounts(), expected);
    assert_eq!(w2.client(CHILD).mounts(0).unwrap().mounts.0, [mount("/", &vsf), mount("/scratch", "mem")]);
}
