//! Damaged images: small volumes made here, then bytes of their boot sector, FAT and directory
//! areas changed at random (and images cut short or partly zeroed), each mounted and walked
//! (`stat`, `read_dir` and `read` of everything reachable, a bounded number of calls) inside
//! `catch_unwind`. A run fails on any panic (listing the cases and messages), on any write
//! reaching the disk (walking only reads), and on a case that does not finish in time.
//!
//! Each case is reproducible from its test name and number: the damage comes from a SplitMix64
//! seeded with the case number.

use std::cell::Cell;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::SplitMix;
use super::fuzz::{Damage, catch_quietly, on_worker, pick, some_byte, spawn_quiet};
use crate::boot::Root;
use crate::{Cache, Disk, DiskError, FatType, Kind, MemDisk, Volume};

/// An undamaged image and where its metadata lies.
struct Base {
    image: Arc<Vec<u8>>,
    fat_type: FatType,
    /// The boot sector, and for FAT32 the FSInfo and backup boot sectors.
    boot: Vec<Range<usize>>,
    /// The start of each FAT copy (the part describing the used clusters, and some more).
    fat: Vec<Range<usize>>,
    /// Every directory's bytes: the root and each subdirectory's clusters.
    dirs: Vec<Range<usize>>,
    /// Highest cluster in use, for choosing FAT entries to damage.
    used_clusters: u64,
    max_cluster: u64,
}

/// Formats `bytes` of disk here, fills it with a small tree, and records its layout.
fn base(bytes: usize) -> Base {
    let disk = MemDisk::new(512, (bytes / 512) as u64).expect("disk");
    let mut vol = Volume::format(Cache::new(disk, 256).expect("cache"), "HOSTILE", None).expect("format");
    for dir in ["/a", "/a/b", "/a/b/c", "/long directory name ✓", "/many"] {
        vol.mkdir(dir).expect("mkdir");
    }
    let files: &[(&str, usize)] = &[
        ("/a/one.txt", 100),
        ("/a/b/two.bin", 1500),
        ("/a/b/c/three", 0),
        ("/long directory name ✓/ファイル名.txt", 2000),
        ("/big.dat", 20_000),
        ("/ROOT.TXT", 10),
    ];
    let mut rng = SplitMix(1);
    for &(path, len) in files {
        vol.create(path).expect("create");
        vol.write(path, 0, &rng.bytes(len)).expect("write");
    }
    // Twelve entries, four with long names: more than one 512-byte cluster of slots.
    for i in 0..12 {
        let path = if i % 3 == 0 { format!("/many/a longer name {i}.text") } else { format!("/many/F{i:02}.TXT") };
        vol.create(&path).expect("create");
        vol.write(&path, 0, &rng.bytes(i * 37)).expect("write");
    }
    vol.sync().expect("sync");

    let g = vol.geometry;
    let cluster_bytes = |first: u64| -> Vec<Range<usize>> {
        let mut out = Vec::new();
        for i in 0.. {
            let Ok(cluster) = vol.cluster_at(first, i, u64::MAX) else { break };
            let at = g.cluster_offset(cluster).expect("data cluster") as usize;
            out.push(at..at + g.cluster_size as usize);
        }
        out
    };
    let mut dirs = match g.root {
        Root::Fixed { start, size } => std::iter::once(start as usize..(start + size) as usize).collect(),
        Root::Chain(first) => cluster_bytes(first as u64),
    };
    for dir in ["/a", "/a/b", "/a/b/c", "/long directory name ✓", "/many"] {
        let Ok(Some((entry, _))) = vol.resolve(dir) else { panic!("{dir}") };
        dirs.extend(cluster_bytes(entry.cluster().0 as u64));
    }
    let mut boot: Vec<Range<usize>> = std::iter::once(0..512).collect();
    if g.fat_type == FatType::Fat32 {
        boot.extend([512..1024, 6 * 512..7 * 512]);
    }
    let used_clusters = 2 + (20_000 + 2000 + 1500 + 100 + 10 + 12 * 12 * 37) as u64 / g.cluster_size as u64 + 40;
    let entry_bytes = match g.fat_type {
        FatType::Fat12 => 2,
        FatType::Fat16 => 2,
        FatType::Fat32 => 4,
    };
    let hot = ((used_clusters + 16) * entry_bytes) as usize;
    let fat = (0..g.fat_count as u64)
        .map(|i| {
            let start = (g.fat_start + i * g.fat_size) as usize;
            start..start + hot.min(g.fat_size as usize)
        })
        .collect();
    let image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
    Base {
        image: Arc::new(image),
        fat_type: g.fat_type,
        boot,
        fat,
        dirs,
        used_clusters,
        max_cluster: g.max_cluster() as u64,
    }
}

/// What a test damages.
#[derive(Clone, Copy, Debug)]
enum Class {
    /// Boot sector (and FSInfo) bytes and fields.
    Boot,
    /// FAT entries: loops, out-of-range and reserved values, free and bad markers.
    Fat,
    /// Directory entries: names, attributes, first clusters, sizes, long-name slots.
    Dir,
    /// The image cut short, or a stretch of it zeroed.
    Cut,
    /// Two or three of the above at once.
    Mixed,
}

fn put_le(d: &mut Damage, at: usize, value: u64, bytes: usize) {
    for i in 0..bytes {
        d.patches.push((at + i, (value >> (8 * i)) as u8));
    }
}

impl Base {
    fn damage(&self, class: Class, rng: &mut SplitMix) -> Damage {
        let mut d = Damage { len: self.image.len(), ..Damage::default() };
        match class {
            Class::Mixed => {
                for _ in 0..2 + rng.below(2) {
                    let class = pick(rng, &[Class::Boot, Class::Fat, Class::Dir, Class::Dir, Class::Cut]);
                    let more = self.damage(class, rng);
                    d.patches.extend(more.patches);
                    if !more.zeroed.is_empty() {
                        d.zeroed = more.zeroed;
                    }
                    d.len = d.len.min(more.len);
                }
            }
            Class::Boot => {
                for _ in 0..1 + rng.below(4) {
                    let region = pick(rng, &self.boot);
                    match rng.below(3) {
                        0 => {
                            let at = pick(rng, &[11, 13, 14, 16, 17, 19, 22, 32, 36, 44, 48, 484, 488, 492]);
                            let random = rng.next();
                            let value = pick(rng, &[0, 1, 2, 0xFF, 0x100, 0x8000, 0xFFFF, 0xFFFF_FFFF, random]);
                            put_le(&mut d, region.start + at, value, if at >= 32 { 4 } else { 2 });
                        }
                        1 => d.patches.push((region.start + rng.below(90) as usize, some_byte(rng))),
                        _ => d.patches.push((region.start + rng.below(512) as usize, some_byte(rng))),
                    }
                }
            }
            Class::Fat => {
                for _ in 0..1 + rng.below(8) {
                    let region = pick(rng, &self.fat);
                    if rng.below(4) == 0 {
                        d.patches.push((region.start + rng.below(region.len() as u64) as usize, some_byte(rng)));
                        continue;
                    }
                    let entry = rng.below(self.used_clusters + 8);
                    let value = match rng.below(9) {
                        0 => 0,
                        1 => 1,
                        2 => entry,
                        3 => entry.saturating_sub(1 + rng.below(4)),
                        4 => 2 + rng.below(self.max_cluster - 1),
                        5 => self.max_cluster + 1 + rng.below(100),
                        6 => 0x0FFF_FFF7,
                        7 => 0x0FFF_FFF8,
                        _ => rng.next(),
                    };
                    match self.fat_type {
                        FatType::Fat12 => {
                            let at = region.start + (entry * 3 / 2) as usize;
                            let v = (value & 0xFFF) as u16;
                            if entry.is_multiple_of(2) {
                                d.patches.push((at, v as u8));
                                d.patches.push((at + 1, (v >> 8) as u8 | 0xF0));
                            } else {
                                d.patches.push((at, ((v << 4) as u8) | 0x0F));
                                d.patches.push((at + 1, (v >> 4) as u8));
                            }
                        }
                        FatType::Fat16 => put_le(&mut d, region.start + entry as usize * 2, value, 2),
                        FatType::Fat32 => put_le(&mut d, region.start + entry as usize * 4, value, 4),
                    }
                }
            }
            Class::Dir => {
                for _ in 0..1 + rng.below(6) {
                    let region = pick(rng, &self.dirs);
                    let slot = region.start + 32 * rng.below(region.len() as u64 / 32) as usize;
                    match rng.below(8) {
                        0 => {
                            let random = some_byte(rng);
                            d.patches
                                .push((slot, pick(rng, &[0x00, 0xE5, 0x05, 0x2E, 0x20, 0x41, 0x45, 0x54, random])));
                        }
                        1 => {
                            let random = some_byte(rng);
                            d.patches.push((slot + 11, pick(rng, &[0x0F, 0x10, 0x08, 0x18, 0x20, 0x3F, 0x16, random])));
                        }
                        2 => {
                            let (near, random) = (rng.below(self.max_cluster + 3), rng.next());
                            let value = pick(rng, &[0, 1, 2, 0xFFFF, near, random]);
                            put_le(&mut d, slot + 26, value, 2);
                            if rng.below(2) == 0 {
                                put_le(&mut d, slot + 20, value >> 16, 2);
                            }
                        }
                        3 => {
                            let random = rng.next();
                            let value = pick(rng, &[0, 1, 511, 512, 513, 0xFFFF_FFFF, 0x8000_0000, random]);
                            put_le(&mut d, slot + 28, value, 4);
                        }
                        4 => d.patches.push((slot + 13, some_byte(rng))),
                        _ => d.patches.push((slot + rng.below(32) as usize, some_byte(rng))),
                    }
                }
            }
            Class::Cut => {
                if rng.below(2) == 0 {
                    d.len = 512 * rng.below(self.image.len() as u64 / 512) as usize;
                } else {
                    let start = if rng.below(2) == 0 {
                        rng.below(64 << 10) as usize
                    } else {
                        rng.below(self.image.len() as u64) as usize
                    };
                    let end = (start + 1 + rng.below(8192) as usize).min(self.image.len());
                    d.zeroed = start..end;
                }
            }
        }
        d
    }
}

/// A disk that reads a damaged copy of the base image, and counts and refuses writes.
struct DamagedDisk {
    base: Arc<Vec<u8>>,
    damage: Damage,
    writes: Rc<Cell<u64>>,
}

impl Disk for DamagedDisk {
    fn block_size(&self) -> usize {
        512
    }
    fn blocks(&self) -> u64 {
        self.damage.blocks()
    }
    fn read(&mut self, first_block: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.damage.read(&self.base, first_block, buf)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), DiskError> {
        self.writes.set(self.writes.get() + 1);
        Err(DiskError::Device)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

/// Calls made on one mounted image, at most.
const WALK_BUDGET: u32 = 100;

/// Walks everything reachable from the root: lists directories (depth up to 8), stats each
/// directory, reads the start of every file and, for some, at a random offset in it (each call
/// resolves the path again, so reads also test lookups).
fn walk(vol: &Volume<DamagedDisk>, rng: &mut SplitMix, ok_calls: &mut u64) {
    let mut budget = WALK_BUDGET;
    let mut count = |r: bool| *ok_calls += r as u64;
    let mut buf = vec![0u8; 8192];
    count(vol.stat("/").is_ok());
    count(vol.stat("/no/such/../file").is_ok());
    let mut stack = vec![(String::from("/"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        if budget == 0 {
            break;
        }
        budget -= 1;
        let Ok(entries) = vol.read_dir(&dir) else { continue };
        count(true);
        for entry in entries.iter().take(64) {
            if budget == 0 {
                break;
            }
            budget -= 1;
            let path = if dir == "/" { format!("/{}", entry.name) } else { format!("{dir}/{}", entry.name) };
            match entry.kind {
                Kind::Dir => {
                    count(vol.stat(&path).is_ok());
                    if depth < 8 {
                        stack.push((path, depth + 1));
                    }
                }
                Kind::File => {
                    count(vol.read(&path, 0, &mut buf).is_ok());
                    if entry.size > 0 && rng.below(3) == 0 {
                        count(vol.read(&path, rng.below(entry.size), &mut buf[..4096]).is_ok());
                    }
                }
            }
        }
    }
}

/// What a run found.
#[derive(Default)]
struct Report {
    mounted: u64,
    ok_calls: u64,
    panics: Vec<String>,
    writes: Vec<u64>,
}

fn run_cases(base: &Base, name: &str, classes: &[Class], cases: u64, changes: bool, progress: &AtomicU64) -> Report {
    let mut report = Report::default();
    for case in 0..cases {
        progress.store(case, Ordering::Relaxed);
        let mut rng = SplitMix(case.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ name.len() as u64);
        let class = classes[(case % classes.len() as u64) as usize];
        let damage = base.damage(class, &mut rng);
        let writes = Rc::new(Cell::new(0));
        let disk = DamagedDisk { base: Arc::clone(&base.image), damage: damage.clone(), writes: Rc::clone(&writes) };
        let mut mounted = false;
        let mut ok_calls = 0;
        let outcome = catch_quietly(|| {
            let Ok(cache) = Cache::new(disk, if changes { 1024 } else { 16 }) else { return };
            if let Ok(mut vol) = Volume::open(cache, None) {
                mounted = true;
                walk(&vol, &mut rng, &mut ok_calls);
                if changes {
                    change(&mut vol, &mut rng, &mut ok_calls);
                    walk(&vol, &mut rng, &mut ok_calls);
                }
            }
        });
        report.mounted += mounted as u64;
        report.ok_calls += ok_calls;
        if let Err(message) = outcome {
            report.panics.push(format!("{name} case {case} ({class:?}, {damage:?}): {message}"));
        }
        if writes.get() > 0 {
            report.writes.push(case);
        }
    }
    report
}

/// Runs `cases` damaged copies of `make()`'s image on a worker thread with a deadline.
fn fuzz(name: &'static str, make: fn() -> Base, classes: &'static [Class], cases: u64, changes: bool) {
    let started = Instant::now();
    let report = on_worker(name, format!("hostile-{name}"), move |progress| {
        let base = make();
        run_cases(&base, name, classes, cases, changes, progress)
    });
    eprintln!(
        "{name}: {cases} damaged images in {:.1?}: {} mounted, {} calls succeeded, {} panics, {} wrote",
        started.elapsed(),
        report.mounted,
        report.ok_calls,
        report.panics.len(),
        report.writes.len()
    );
    assert!(
        report.panics.is_empty(),
        "{name}: {} of {cases} damaged images panicked; the first ones:\n{}",
        report.panics.len(),
        report.panics.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    // Writes reach the disk only where an operation frees clusters (`free_safely` syncs around
    // it); the disk refuses them, and the operation fails with a device error, never a panic.
    assert!(
        report.mounted > cases / 20,
        "{name}: too few images mounted ({}) for the walk to mean much",
        report.mounted
    );
}

fn fat12() -> Base {
    let base = base(1 << 20);
    assert_eq!(base.fat_type, FatType::Fat12);
    base
}

fn fat16() -> Base {
    let base = base(4 << 20);
    assert_eq!(base.fat_type, FatType::Fat16);
    base
}

fn fat32() -> Base {
    let base = base(36 << 20);
    assert_eq!(base.fat_type, FatType::Fat32);
    base
}

#[test]
fn hostile_changes_fat12_and_fat32() {
    fuzz("changes-fat12", fat12, &[Class::Fat, Class::Dir, Class::Mixed], 1_000, true);
    fuzz("changes-fat32", fat32, &[Class::Fat, Class::Dir, Class::Mixed], 1_000, true);
}

#[test]
fn hostile_fat12_boot_and_fat() {
    fuzz("fat12-boot-fat", fat12, &[Class::Boot, Class::Fat], 24_500, false);
}

#[test]
fn hostile_fat12_dirs_and_cuts() {
    fuzz("fat12-dir-cut", fat12, &[Class::Dir, Class::Dir, Class::Cut, Class::Mixed], 24_500, false);
}

#[test]
fn hostile_fat16_all() {
    fuzz("fat16-all", fat16, &[Class::Boot, Class::Fat, Class::Dir, Class::Cut, Class::Mixed], 24_500, false);
}

#[test]
fn hostile_fat32_all() {
    fuzz("fat32-all", fat32, &[Class::Boot, Class::Fat, Class::Dir, Class::Cut, Class::Mixed], 24_500, false);
}

/// Changes a damaged volume: every call may fail, none may panic. The cache is large enough
/// that nothing is evicted, and the volume is never synced except around operations that free
/// clusters, whose writes the disk refuses.
fn change(vol: &mut Volume<DamagedDisk>, rng: &mut SplitMix, ok_calls: &mut u64) {
    let mut count = |r: bool| *ok_calls += r as u64;
    let data = rng.bytes(3000);
    count(vol.create("/new file ✓.txt").is_ok());
    count(vol.write("/new file ✓.txt", 0, &data).is_ok());
    count(vol.write("/new file ✓.txt", 2000, &data).is_ok());
    count(vol.mkdir("/a/new dir").is_ok());
    count(vol.create("/a/new dir/inner").is_ok());
    count(vol.rename("/ROOT.TXT", "/a/new dir/moved.txt").is_ok());
    count(vol.rename("/long directory name ✓", "/many/moved dir").is_ok());
    count(vol.write("/many/F01.TXT", 5000, &data[..100]).is_ok());
    count(vol.write("/a/b/two.bin", 700, &data[..1000]).is_ok());
    count(vol.truncate("/big.dat", 1234).is_ok());
    count(vol.truncate("/a/one.txt", 9000).is_ok());
    count(vol.remove("/a/b/c/three").is_ok());
    count(vol.remove("/a/b/c").is_ok());
    count(vol.remove("/many/F02.TXT").is_ok());
    count(vol.read_dir("/").is_ok());
    count(vol.read_dir("/many").is_ok());
}

/// Walks a damaged image with hadris-fat alone (no boot sector checks, no chain checks).
fn walk_raw(image: DamagedDisk) -> u64 {
    use hadris_fat::sync::{DirectoryEntry, FatVolume, FatVolumeReadExt};
    let Ok(cache) = Cache::new(image, 16) else { return 0 };
    let Ok(fs) = FatVolume::open(cache) else { return 0 };
    let mut calls = 0;
    let _ = fs.open_path("/many/a longer name 3.text");
    let _ = fs.open_file_path("/a/b/two.bin").map(|mut r| r.read(&mut [0u8; 600]));
    let mut stack = vec![(fs.root_dir(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        for item in dir.entries().take(64) {
            calls += 1;
            let Ok(DirectoryEntry::Entry(entry)) = item else { break };
            let name = entry.name();
            if name == "." || name == ".." {
                continue;
            }
            if entry.is_directory() {
                if depth < 6
                    && let Ok(sub) = fs.open_dir_entry(&entry)
                {
                    stack.push((sub, depth + 1));
                }
            } else if let Ok(mut reader) = fs.read_file(&entry) {
                let mut buf = [0u8; 4096];
                let _ = reader.read(&mut buf);
                let _ = reader.seek(hadris_fat::sync::SeekFrom::Start(entry.len() / 2));
                let _ = reader.read(&mut buf);
            }
        }
    }
    calls
}

/// The same damage with hadris-fat alone, without this crate's boot sector and chain checks:
/// to know (and report, by failing) whether hadris-fat itself panics on some input, which the
/// checks here would then have to keep from it.
#[test]
fn hostile_hadris_fat_alone() {
    let worker = spawn_quiet("hostile-hadris-alone".into(), || {
        let mut found = Vec::new();
        for (label, make) in [("fat12", fat12 as fn() -> Base), ("fat16", fat16), ("fat32", fat32)] {
            let base = make();
            for case in 0..2_000u64 {
                let mut rng = SplitMix(case ^ 0xABCD);
                let class = [Class::Boot, Class::Fat, Class::Dir, Class::Cut, Class::Mixed][(case % 5) as usize];
                let damage = base.damage(class, &mut rng);
                let disk = DamagedDisk {
                    base: Arc::clone(&base.image),
                    damage: damage.clone(),
                    writes: Rc::new(Cell::new(0)),
                };
                if let Err(message) = catch_quietly(|| walk_raw(disk)) {
                    found.push(format!("{label} case {case} ({class:?}, {damage:?}): {message}"));
                }
            }
        }
        found
    });
    let found = worker.expect("spawn").join().expect("worker");
    assert!(found.is_empty(), "hadris-fat alone panicked on {} damaged images:\n{}", found.len(), found.join("\n"));
}
