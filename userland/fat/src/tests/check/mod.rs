//! [`crate::check`] against `fsck.fat -n`: clean images (made by `mkfs.fat` and mtools, and by
//! [`Volume`]) check clean with `fsck.fat`'s counts; each kind of damage, made by editing image
//! bytes, is reported as exactly that problem, with the path, and `fsck.fat` complains of it
//! too and judges it the same way (an unclean stop's leftover or damage); images left by
//! simulated stops and randomly damaged ones get the same verdict from both; and 100,000
//! damaged, cut and zeroed images are checked without a panic, in bounded time.
//!
//! The tests by theme: `clean` (clean images and counts), `damage` (each kind of damage),
//! `agreement` (verdicts on stopped and randomly damaged images), `hostile` (fuzzing for
//! panics and time); this module holds what they share: making images with the host tools and
//! [`Volume`], running `fsck.fat -n` and the check on them, and `image` edits raw image bytes.

use std::path::Path;

use vessel_test_harness::fsck;

use super::{SplitMix, TempDir, fsck_image, run, s};
use crate::boot::Geometry;
use crate::{Cache, Disk, DiskError, MemDisk, Report, Verdict, Volume, check};

mod agreement;
mod clean;
mod damage;
mod hostile;
mod image;

/// Block size of every image here.
const BLOCK: usize = 512;

/// A new image made by `mkfs.fat -C --invariant` of `kib` KiB, FAT `fat`, `spc` sectors per
/// cluster, and `extra` options.
fn mkfs(fat: &str, spc: &str, kib: &str, extra: &[&str]) -> Vec<u8> {
    let tmp = TempDir::new("check-mkfs");
    let img = tmp.join("img");
    let mut args = vec!["-C", "--invariant", "-F", fat, "-s", spc, "-S", "512"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[s(&img), kib]);
    run("mkfs.fat", &args);
    std::fs::read(&img).expect("image")
}

/// The crash test's reading of `fsck.fat -n`, as a [`Verdict`].
fn fsck_verdict(code: Option<i32>, text: &str) -> Verdict {
    match fsck::verdict(code, text) {
        fsck::Verdict::Clean => Verdict::Clean,
        fsck::Verdict::Accepted(_) => Verdict::Leftovers,
        fsck::Verdict::Damaged(_) => Verdict::Damaged,
    }
}

/// `fsck.fat`'s closing line, `IMAGE: N files, A/B clusters`, as (N, A, B).
fn fsck_counts(text: &str) -> Option<(u64, u64, u64)> {
    let line = text.lines().rev().find(|l| l.contains(" files, ") && l.ends_with(" clusters"))?;
    let (_, rest) = line.rsplit_once(": ")?;
    let (files, rest) = rest.split_once(" files, ")?;
    let (used, total) = rest.strip_suffix(" clusters")?.split_once('/')?;
    Some((files.parse().ok()?, used.parse().ok()?, total.parse().ok()?))
}

/// An image in memory as a read-only disk (without copying it, as a [`MemDisk`] would).
struct SliceDisk<'a>(&'a [u8]);

impl Disk for SliceDisk<'_> {
    fn block_size(&self) -> usize {
        BLOCK
    }
    fn blocks(&self) -> u64 {
        (self.0.len() / BLOCK) as u64
    }
    fn read(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let start = first as usize * BLOCK;
        buf.copy_from_slice(self.0.get(start..start + buf.len()).ok_or(DiskError::OutOfRange)?);
        Ok(())
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), DiskError> {
        panic!("the check wrote to the disk")
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        panic!("the check flushed the disk")
    }
}

/// [`check`] on an image in memory (failing the test if it writes).
fn check_image(image: &[u8]) -> Report {
    check(&mut SliceDisk(image)).expect("a memory disk does not fail")
}

/// The geometry of an image that [`check`] accepts.
fn geometry(image: &[u8]) -> Geometry {
    let boot: &[u8; 512] = image[..512].try_into().expect("boot sector");
    Geometry::parse(boot, image.len() as u64).expect("a valid boot sector")
}

/// Fails unless [`check`] and `fsck.fat -n` both find `image` clean, with the same counts.
fn assert_clean_like_fsck(image: &[u8], what: &str) -> Report {
    let report = check_image(image);
    let (code, text) = fsck_image(image);
    assert_eq!(fsck_verdict(code, &text), Verdict::Clean, "{what}: fsck.fat -n is not clean:\n{text}");
    assert_eq!(report.verdict(), Verdict::Clean, "{what}: the check is not clean:\n{report}");
    let (files, used, total) = fsck_counts(&text).unwrap_or_else(|| panic!("{what}: no counts in\n{text}"));
    assert_eq!(
        (report.fsck_files(), report.clusters_used, report.clusters_total),
        (files, used, total),
        "{what}: counts differ from fsck.fat's ({report})"
    );
    report
}

/// Writes a host file.
fn put(path: &Path, data: &[u8]) {
    std::fs::write(path, data).expect("write host file");
}

/// Fills an image with mtools: nested directories, long and non-ASCII names, empty files,
/// files of many clusters and a directory of many entries (several clusters).
fn fill_with_mtools(image: Vec<u8>, label: Option<&str>) -> Vec<u8> {
    let tmp = TempDir::new("check-mtools");
    let img = tmp.join("img");
    std::fs::write(&img, &image).expect("image");
    let img = s(&img);
    let mut rng = SplitMix(image.len() as u64);
    run("mmd", &["-i", img, "::/dir one", "::/dir one/dir two", "::/dir one/dir two/three", "::/Ünïcödé dir"]);
    run("mmd", &["-i", img, "::/many"]);
    let host = tmp.join("host");
    std::fs::create_dir_all(&host).expect("host dir");
    let files: &[(&str, usize, &str)] = &[
        ("empty", 0, "::/"),
        ("EMPTY2.TXT", 0, "::/dir one/"),
        ("big.bin", 150_000, "::/"),
        ("a rather long file name with spaces.text", 5000, "::/dir one/dir two/"),
        ("Grüße aus Köln.txt", 700, "::/Ünïcödé dir/"),
        ("日本語のファイル.txt", 1, "::/dir one/dir two/three/"),
        ("exactly.one", 2048, "::/dir one/"),
    ];
    for &(name, len, to) in files {
        let path = host.join(name);
        put(&path, &rng.bytes(len));
        run("mcopy", &["-i", img, s(&path), to]);
    }
    let mut many = vec!["-i".to_string(), img.to_string()];
    for i in 0..60 {
        let name = if i % 2 == 0 { format!("file number {i} with a long name") } else { format!("F{i}.DAT") };
        let path = host.join(&name);
        put(&path, &rng.bytes(i * 100));
        many.push(s(&path).to_string());
    }
    many.push("::/many/".to_string());
    run("mcopy", &many.iter().map(String::as_str).collect::<Vec<_>>());
    if let Some(label) = label {
        run("mlabel", &["-i", img, &format!("::{label}")]);
    }
    std::fs::read(tmp.join("img")).expect("image")
}

/// Formats `bytes` of disk with [`Volume::format`] (label `label`) and runs `fill` on it.
fn volume_image(bytes: usize, label: &str, fill: impl FnOnce(&mut Volume<MemDisk>)) -> Vec<u8> {
    let disk = MemDisk::new(BLOCK, (bytes / BLOCK) as u64).expect("disk");
    let mut vol = Volume::format(Cache::new(disk, 256).expect("cache"), label, None).expect("format");
    fill(&mut vol);
    vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes()
}

/// A tree made through [`Volume`]: nested directories, long and non-ASCII names, empty files and
/// files of many clusters, a directory of many entries.
fn fill_with_volume(vol: &mut Volume<MemDisk>) {
    let mut rng = SplitMix(3);
    for dir in ["/a", "/a/b", "/a/b/c", "/long directory name ✓", "/many"] {
        vol.mkdir(dir).expect("mkdir");
    }
    let files: &[(&str, usize)] = &[
        ("/a/one.txt", 100),
        ("/a/b/two.bin", 1500),
        ("/a/b/c/empty", 0),
        ("/long directory name ✓/ファイル名.txt", 20_000),
        ("/big.dat", 70_000),
        ("/ROOT.TXT", 10),
    ];
    for &(path, len) in files {
        vol.create(path).expect("create");
        vol.write(path, 0, &rng.bytes(len)).expect("write");
    }
    for i in 0..40 {
        let path = if i % 3 == 0 { format!("/many/a longer name {i}.text") } else { format!("/many/F{i:02}.TXT") };
        vol.create(&path).expect("create");
        vol.write(&path, 0, &rng.bytes(i * 37)).expect("write");
    }
}
