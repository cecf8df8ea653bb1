//! A write workload through `Volume` (nested directories, long and non-ASCII names, a directory
//! of 1,000 files, a large file, writes at offsets, truncation, renames across directories,
//! deletes), checked three ways: against an in-memory model, by the host's `fsck.fat -n` and
//! `mdir`/`mcopy` on the synced image, and again after mounting the image afresh.

use std::collections::{BTreeMap, BTreeSet};

use super::{CLOCK, SplitMix, TempDir, mount, run, s};
use crate::{Cache, FatType, FsError, Kind, MemDisk, Timestamp, Volume};

/// What the volume should hold: file contents by path, and the directories.
#[derive(Default)]
struct Model {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn name(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

impl Model {
    fn mkdir(&mut self, vol: &mut Volume<MemDisk>, path: &str) {
        vol.mkdir(path).unwrap_or_else(|e| panic!("mkdir {path}: {e}"));
        self.dirs.insert(path.to_string());
    }

    fn create(&mut self, vol: &mut Volume<MemDisk>, path: &str) {
        vol.create(path).unwrap_or_else(|e| panic!("create {path}: {e}"));
        self.files.insert(path.to_string(), Vec::new());
    }

    fn write(&mut self, vol: &mut Volume<MemDisk>, path: &str, offset: usize, data: &[u8]) {
        assert_eq!(vol.write(path, offset as u64, data), Ok(data.len()), "write {path} at {offset}");
        let file = self.files.get_mut(path).expect("modelled file");
        if file.len() < offset + data.len() {
            file.resize(offset + data.len(), 0);
        }
        file[offset..offset + data.len()].copy_from_slice(data);
    }

    fn truncate(&mut self, vol: &mut Volume<MemDisk>, path: &str, len: usize) {
        assert_eq!(vol.truncate(path, len as u64), Ok(()), "truncate {path}");
        self.files.get_mut(path).expect("modelled file").resize(len, 0);
    }

    fn remove(&mut self, vol: &mut Volume<MemDisk>, path: &str) {
        assert_eq!(vol.remove(path), Ok(()), "remove {path}");
        self.files.remove(path);
        self.dirs.remove(path);
    }

    /// Renames in the model: the entry and, for a directory, everything below it.
    fn rename(&mut self, vol: &mut Volume<MemDisk>, from: &str, to: &str) {
        assert_eq!(vol.rename(from, to), Ok(()), "rename {from} -> {to}");
        if !to.eq_ignore_ascii_case(from) {
            self.files.remove(to);
            self.dirs.remove(to);
        }
        let moved = |p: &str| {
            if p == from {
                Some(to.to_string())
            } else {
                p.strip_prefix(from).filter(|rest| rest.starts_with('/')).map(|rest| format!("{to}{rest}"))
            }
        };
        self.files = std::mem::take(&mut self.files).into_iter().map(|(p, d)| (moved(&p).unwrap_or(p), d)).collect();
        self.dirs = std::mem::take(&mut self.dirs).into_iter().map(|p| moved(&p).unwrap_or(p)).collect();
    }

    /// Checks every directory listing and every file's size and contents.
    fn check(&self, vol: &Volume<MemDisk>) {
        let mut dirs: Vec<&str> = self.dirs.iter().map(String::as_str).collect();
        dirs.push("/");
        for dir in dirs {
            let mut want: Vec<(String, Kind, u64)> = Vec::new();
            for (path, data) in &self.files {
                if parent(path) == dir {
                    want.push((name(path).to_string(), Kind::File, data.len() as u64));
                }
            }
            for path in &self.dirs {
                if parent(path) == dir {
                    want.push((name(path).to_string(), Kind::Dir, 0));
                }
            }
            let mut got: Vec<(String, Kind, u64)> = vol
                .read_dir(dir)
                .unwrap_or_else(|e| panic!("read_dir {dir}: {e}"))
                .into_iter()
                .map(|e| (e.name, e.kind, e.size))
                .collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "listing of {dir}");
        }
        for (path, data) in &self.files {
            let mut buf = vec![0u8; data.len() + 1];
            assert_eq!(vol.read(path, 0, &mut buf), Ok(data.len()), "read {path}");
            assert!(buf[..data.len()] == data[..], "contents of {path}");
        }
    }
}

/// The workload: `many` files in one directory, a file of `big` bytes; `stamp` is the time the
/// clock gives.
fn workload(vol: &mut Volume<MemDisk>, many: usize, big: usize, stamp: Timestamp) -> Model {
    let mut m = Model::default();
    let mut rng = SplitMix(0x5EED);
    for dir in ["/docs", "/docs/nested", "/docs/nested/deeper", "/data", "/Ünïcödé dir 日本語", "/docs/empty"] {
        m.mkdir(vol, dir);
    }

    // Writes at offsets: from the start, appending, overwriting inside, past the end (a gap).
    let long = "/docs/nested/deeper/a rather long file name with spaces.text";
    m.create(vol, long);
    m.write(vol, long, 0, &rng.bytes(5000));
    m.write(vol, long, 5000, &rng.bytes(3000));
    m.write(vol, long, 100, &rng.bytes(200));
    m.write(vol, long, 9000, &rng.bytes(50));
    assert_eq!(vol.stat(long).map(|meta| meta.size), Ok(9050));
    let cyrillic = "/Ünïcödé dir 日本語/файл.txt";
    m.create(vol, cyrillic);
    m.write(vol, cyrillic, 0, "привет, мир".as_bytes());
    let emoji = "/Ünïcödé dir 日本語/emoji 🎉 party.bin";
    m.create(vol, emoji);
    m.write(vol, emoji, 0, &rng.bytes(1234));
    for (path, text) in [("/README.TXT", "read me"), ("/lower.txt", "lower"), ("/MiXeD.Txt", "mixed case")] {
        m.create(vol, path);
        m.write(vol, path, 0, text.as_bytes());
    }

    // A directory of many files, one in ten with a long name.
    m.mkdir(vol, "/many");
    for i in 0..many {
        let path =
            if i % 10 == 0 { format!("/many/long file name number {i:04}.data") } else { format!("/many/f{i:04}.txt") };
        m.create(vol, &path);
        m.write(vol, &path, 0, format!("file {i}\n").repeat(i % 7 + 1).as_bytes());
    }

    // A large file written in 1 MiB pieces, and files cut and grown.
    let big_path = "/data/big.bin";
    m.create(vol, big_path);
    let data = SplitMix(99).bytes(big);
    for (i, piece) in data.chunks(1 << 20).enumerate() {
        m.write(vol, big_path, i << 20, piece);
    }
    m.create(vol, "/data/shrink.bin");
    m.write(vol, "/data/shrink.bin", 0, &rng.bytes(100_000));
    m.truncate(vol, "/data/shrink.bin", 30_000);
    m.create(vol, "/data/grow.bin");
    m.write(vol, "/data/grow.bin", 0, b"0123456789");
    m.truncate(vol, "/data/grow.bin", 70_000);
    m.truncate(vol, "/data/grow.bin", 0);
    m.write(vol, "/data/grow.bin", 3, b"after a gap");

    // Renames: a file and a directory across directories, a case change, over an existing file.
    m.rename(vol, long, "/data/renamed long file name.text");
    m.rename(vol, "/docs/nested", "/data/moved nested dir");
    m.rename(vol, "/lower.txt", "/LOWER.TXT");
    m.rename(vol, "/MiXeD.Txt", "/README.TXT");
    assert_eq!(vol.rename("/data", "/data/moved nested dir/inside"), Err(FsError::InvalidPath));
    assert_eq!(vol.rename("/data/big.bin", "/docs"), Err(FsError::IsADirectory));
    assert_eq!(vol.rename("/", "/x"), Err(FsError::InvalidPath));

    // Deletes.
    for i in (1..many).step_by(100) {
        m.remove(vol, &format!("/many/f{i:04}.txt"));
    }
    m.remove(vol, "/docs/empty");
    m.create(vol, "/scratch.bin");
    m.write(vol, "/scratch.bin", 0, &rng.bytes(10_000));
    m.remove(vol, "/scratch.bin");
    assert_eq!(vol.remove("/data"), Err(FsError::NotEmpty));
    assert_eq!(vol.remove("/"), Err(FsError::InvalidPath));
    assert_eq!(vol.remove("/no such file"), Err(FsError::NotFound));

    // Refusals that change nothing.
    assert_eq!(vol.create("/README.TXT"), Err(FsError::AlreadyExists));
    assert_eq!(vol.create("/readme.txt"), Err(FsError::AlreadyExists));
    assert_eq!(vol.mkdir("/README.TXT/sub"), Err(FsError::NotADirectory));
    assert_eq!(vol.create("/no dir/file"), Err(FsError::NotFound));
    assert_eq!(vol.create("/a:b"), Err(FsError::InvalidName));
    assert_eq!(vol.create(&format!("/{}", "x".repeat(256))), Err(FsError::InvalidName));
    assert_eq!(vol.write("/docs", 0, b"x"), Err(FsError::IsADirectory));
    assert_eq!(vol.write("/README.TXT", u32::MAX as u64, b"x"), Err(FsError::FileTooLarge));

    assert_eq!(vol.stat("/data/big.bin").map(|meta| meta.modified), Ok(stamp));
    assert_eq!(vol.stat("/data/renamed long file name.text").map(|meta| meta.modified), Ok(stamp));
    m
}

/// Syncs, checks the image with `fsck.fat -n`, `mdir` and `mcopy`, and mounts it afresh.
fn check_on_host(vol: Volume<MemDisk>, model: &Model, many: usize, big: usize) {
    model.check(&vol);
    let cache = vol.unmount().expect("unmount");
    assert_eq!(cache.dirty_pages(), 0);
    let image = cache.into_disk().expect("disk").into_bytes();
    let tmp = TempDir::new("workload");
    let img = tmp.join("img");
    std::fs::write(&img, &image).expect("write image");
    let img_s = s(&img);

    let fsck = run("fsck.fat", &["-n", img_s]);
    assert!(!fsck.contains("Free cluster summary") && !fsck.contains("Leaving filesystem unchanged"), "{fsck}");
    let listing = run("mdir", &["-/", "-i", img_s, "::/"]);
    // mdir shows 8.3 names padded into columns, long names after them; it prints characters
    // outside the BMP (the emoji) as `_`.
    for want in [
        "README   TXT",
        "LOWER    TXT",
        "big      bin",
        "renamed long file name.text",
        "moved nested dir",
        "файл.txt",
        " party.bin",
        &format!("long file name number {:04}.data", (many - 1) / 10 * 10),
        &format!("f{:04}    txt", many - 1),
        "Ünïcödé dir 日本語",
    ] {
        assert!(listing.contains(want), "mdir does not list {want}:\n{listing}");
    }
    for gone in ["f0001    txt", "scratch", "MiXeD", "lower    txt", "empty", "with spaces"] {
        assert!(!listing.contains(gone), "mdir still lists {gone}:\n{listing}");
    }
    let out = tmp.join("big.out");
    run("mcopy", &["-i", img_s, "::/data/big.bin", s(&out)]);
    assert!(std::fs::read(&out).expect("copied out") == SplitMix(99).bytes(big), "mcopy reads other bytes");

    model.check(&mount(image, 64));
}

/// What [`CLOCK`] says.
const CLOCK_TIME: Timestamp = Timestamp { year: 2025, month: 6, day: 15, hour: 12, minute: 34, second: 56 };

#[test]
fn fat32_formatted_here_passes_fsck_and_mtools() {
    let disk = MemDisk::new(512, (64 << 20) / 512).expect("disk");
    let mut vol = Volume::format(Cache::new(disk, 1024).expect("cache"), "VESSEL", Some(&CLOCK)).expect("format");
    assert_eq!(vol.fat_type(), FatType::Fat32);
    let model = workload(&mut vol, 1000, 16 << 20, CLOCK_TIME);
    assert!(vol.cache_stats().evictions > 0, "the 16 MiB file should not fit the 4 MiB cache");
    check_on_host(vol, &model, 1000, 16 << 20);
}

#[test]
fn fat16_made_by_mkfs_passes_fsck_and_mtools() {
    let tmp = TempDir::new("mkfs16");
    let img = tmp.join("img");
    run("mkfs.fat", &["-C", "-F", "16", s(&img), "24576"]);
    let mut vol = mount(std::fs::read(&img).expect("image"), 256);
    assert_eq!(vol.fat_type(), FatType::Fat16);
    let model = workload(&mut vol, 300, 4 << 20, CLOCK_TIME);
    check_on_host(vol, &model, 300, 4 << 20);
}

#[test]
fn fat12_formatted_here_passes_fsck_and_mtools() {
    let disk = MemDisk::new(512, (3 << 20) / 512).expect("disk");
    let mut vol = Volume::format(Cache::new(disk, 64).expect("cache"), "", None).expect("format");
    assert_eq!(vol.fat_type(), FatType::Fat12);
    let model = workload(&mut vol, 200, 512 << 10, Timestamp::FAT_EPOCH);
    check_on_host(vol, &model, 200, 512 << 10);
}
