//! Tests of whole volumes: images made by the host's `mkfs.fat`/`mcopy` read back, a write
//! workload checked by `fsck.fat` and `mdir`, and randomly damaged images walked without panics.
//!
//! The host tools come from the `dosfstools` and `mtools` packages; a missing tool fails the
//! test that needs it (it is never skipped), saying what to install.

mod check;
mod fuzz;
mod host_images;
mod hostile;
mod recorder;
mod volume_basics;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Cache, FatDateTime, MemDisk, Volume};

/// Fixed clock for written entries: 2025-06-15 12:34:56.
pub(crate) static CLOCK: hadris_fat::time::StaticTimeProvider = hadris_fat::time::StaticTimeProvider(FatDateTime {
    date: (45 << 9) | (6 << 5) | 15,
    time: (12 << 11) | (34 << 5) | 28,
    time_tenth: 0,
});

/// The full path of a host tool, failing the test if it is not installed.
pub(crate) fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed: these tests need the host's FAT tools. \
         Install them with `apt-get install -y dosfstools mtools` (mkfs.fat, fsck.fat, mdir, mcopy, mmd)."
    );
}

/// Runs a host tool with a fixed environment and returns its stdout and stderr; a non-zero exit
/// fails the test with the output.
pub(crate) fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(tool(name))
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .env("SOURCE_DATE_EPOCH", "1704067200")
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} {args:?} failed ({}):\n{text}", out.status);
    text
}

/// A directory under the system's temporary directory, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vessel-fat-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path as the `&str` the host tools take.
pub(crate) fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// SplitMix64: the bench image's generator, and a fast PRNG for the tests.
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `len` bytes of the stream, each output 8 bytes little-endian.
    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3))
}

/// Mounts an image held in memory with a cache of `pages` pages.
pub(crate) fn mount(image: Vec<u8>, pages: usize) -> Volume<MemDisk> {
    let disk = MemDisk::from_bytes(image, 512).expect("image is whole sectors");
    Volume::open(Cache::new(disk, pages).expect("cache"), Some(&CLOCK)).expect("mount")
}

/// Reads a whole file through `Volume::read` in `chunk`-byte pieces.
pub(crate) fn read_all<D: crate::Disk>(vol: &Volume<D>, path: &str, chunk: usize) -> Vec<u8> {
    let size = vol.stat(path).expect(path).size as usize;
    let mut out = vec![0u8; size];
    let mut at = 0;
    while at < size {
        let end = (at + chunk).min(size);
        let n = vol.read(path, at as u64, &mut out[at..end]).expect(path);
        assert_eq!(n, end - at, "{path} at {at}");
        at = end;
    }
    let mut extra = [0u8; 1];
    assert_eq!(vol.read(path, size as u64, &mut extra), Ok(0), "{path}: read at the end");
    out
}
mod speed_and_order;

/// `fsck.fat -n` on the image file `path`: its exit code and output (standard output and
/// error together, in the C locale).
pub(crate) fn fsck_file(path: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(tool("fsck.fat"))
        .arg("-n")
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("fsck.fat: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// `fsck.fat -n` on an image in memory.
pub(crate) fn fsck_image(image: &[u8]) -> (Option<i32>, String) {
    let tmp = TempDir::new("fsck");
    let img = tmp.join("img");
    std::fs::write(&img, image).expect("image");
    fsck_file(&img)
}
