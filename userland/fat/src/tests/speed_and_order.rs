//! What the volume remembers and the order its writes reach the disk: directory listings and
//! cluster runs kept in memory must answer what a fresh mount of the synced image answers; a
//! chain longer than its file is cut before the file grows; the FATs reach the disk before what
//! points into them (after it when freeing), evictions included; read-ahead keeps a sequential
//! read to few requests and a random one to a small window; a new directory cluster reaches the
//! disk before anything points at it, and a long name split across clusters is written start
//! first and deleted from its 8.3 entry back; a chain growing into lower clusters is linked
//! after their entries are written; a move goes through an intent that mounting finishes
//! (section 8). Stops are simulated after every write; the QEMU crash test exercises real
//! ones.
//!
//! The disks here are [`Recorder`]s (`recorder.rs`): a disk in memory that logs every request
//! (and, when asked, the bytes of every write), so the tests can replay a prefix of the writes
//! onto the image the volume started from, as a stop at that moment would have left it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::rc::Rc;

use vessel_test_harness::fsck;

use super::recorder::{Event, Recorder, apply, writes_and_flushes};
use super::{CLOCK, SplitMix, TempDir, fsck_image as fsck, mount, read_all, run, s};
use crate::boot::{Geometry, Root};
use crate::{Cache, Disk, FatType, FsError, Kind, MemDisk, Volume};

/// Block size of every disk here.
const BLOCK: usize = 512;

/// Mounts a recorder with a cache of `pages` pages.
fn mount_recorder(disk: &Recorder, pages: usize) -> Volume<Recorder> {
    Volume::open(Cache::new(disk.clone(), pages).expect("cache"), Some(&CLOCK)).expect("mount")
}

/// The blocks holding the FATs (all copies).
fn fat_blocks<D: Disk>(vol: &Volume<D>) -> Range<u64> {
    let g = vol.geometry;
    let end = g.fat_start + g.fat_size * u64::from(g.fat_count);
    g.fat_start / BLOCK as u64..end.div_ceil(BLOCK as u64)
}

/// Whether a write of `blocks` blocks from `first` lies wholly inside / wholly outside `fat`;
/// a write straddling the boundary fails the test (the cache never builds one).
fn in_fat(fat: &Range<u64>, first: u64, blocks: u64) -> bool {
    let inside = fat.contains(&first);
    let last_inside = fat.contains(&(first + blocks - 1));
    let straddles = inside != last_inside || (!inside && first < fat.start && first + blocks > fat.end);
    assert!(!straddles, "a write of blocks {first}..{} straddles the FAT region {fat:?}", first + blocks);
    inside
}

/// The log cut into flush epochs: each the writes between two flushes, as (first, blocks).
/// Writes after the last flush form a last epoch only if there are any.
fn epochs(log: &[Event]) -> Vec<Vec<(u64, u64)>> {
    let mut out = vec![Vec::new()];
    for event in log {
        match event {
            Event::Write { first, blocks, .. } => out.last_mut().expect("an epoch").push((*first, *blocks)),
            Event::Flush => out.push(Vec::new()),
            Event::Read { .. } => {}
        }
    }
    if out.last().is_some_and(Vec::is_empty) {
        out.pop();
    }
    out
}

/// `F` for an epoch of FAT writes only, `N` for writes outside the FATs only, `-` for none,
/// `M` for both: the shape of a log, for assertions and messages.
fn shape(fat: &Range<u64>, log: &[Event]) -> String {
    epochs(log)
        .iter()
        .map(|epoch| {
            let fats = epoch.iter().filter(|&&(first, blocks)| in_fat(fat, first, blocks)).count();
            match (fats, epoch.len() - fats) {
                (0, 0) => '-',
                (_, 0) => 'F',
                (0, _) => 'N',
                _ => 'M',
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Images, FAT entries, trees and fsck.
// ---------------------------------------------------------------------------------------------

/// A new image made by `mkfs.fat -C` of `kib` KiB: FAT `fat`, `spc` sectors per cluster.
fn mkfs(fat: &str, spc: &str, kib: &str) -> Vec<u8> {
    let tmp = TempDir::new("mkfs");
    let img = tmp.join("img");
    run("mkfs.fat", &["-C", "--invariant", "-F", fat, "-s", spc, "-S", "512", s(&img), kib]);
    std::fs::read(&img).expect("image")
}

/// Syncs and copies the disk's contents.
fn synced(vol: &mut Volume<MemDisk>) -> Vec<u8> {
    vol.sync().expect("sync");
    vol.cache.borrow().disk().as_bytes().to_vec()
}

/// The FAT entry of `cluster` in FAT copy `copy` of `image`.
fn fat_entry(image: &[u8], g: &Geometry, copy: u8, cluster: u64) -> u64 {
    let base = (g.fat_start + u64::from(copy) * g.fat_size) as usize;
    let c = cluster as usize;
    match g.fat_type {
        FatType::Fat12 => {
            let at = base + c * 3 / 2;
            let v = u16::from_le_bytes([image[at], image[at + 1]]) as u64;
            if c % 2 == 1 { v >> 4 } else { v & 0xFFF }
        }
        FatType::Fat16 => u16::from_le_bytes([image[base + 2 * c], image[base + 2 * c + 1]]) as u64,
        FatType::Fat32 => {
            let at = base + 4 * c;
            u32::from_le_bytes([image[at], image[at + 1], image[at + 2], image[at + 3]]) as u64 & 0x0FFF_FFFF
        }
    }
}

/// Sets the FAT entry of `cluster` in every FAT copy of `image` (FAT16 and FAT32 only).
fn set_fat_entry(image: &mut [u8], g: &Geometry, cluster: u64, value: u64) {
    for copy in 0..u64::from(g.fat_count) {
        let base = (g.fat_start + copy * g.fat_size) as usize;
        let c = cluster as usize;
        match g.fat_type {
            FatType::Fat16 => image[base + 2 * c..base + 2 * c + 2].copy_from_slice(&(value as u16).to_le_bytes()),
            FatType::Fat32 => {
                let at = base + 4 * c;
                let old = u32::from_le_bytes([image[at], image[at + 1], image[at + 2], image[at + 3]]);
                let new = (old & 0xF000_0000) | (value as u32 & 0x0FFF_FFFF);
                image[at..at + 4].copy_from_slice(&new.to_le_bytes());
            }
            FatType::Fat12 => panic!("set_fat_entry: FAT12 is not needed here"),
        }
    }
}

/// The end-of-chain mark of a FAT type.
fn eoc(t: FatType) -> u64 {
    match t {
        FatType::Fat12 => 0xFFF,
        FatType::Fat16 => 0xFFFF,
        FatType::Fat32 => 0x0FFF_FFFF,
    }
}

/// Whether a FAT entry ends a chain.
fn is_eoc(t: FatType, v: u64) -> bool {
    match t {
        FatType::Fat12 => v >= 0xFF8,
        FatType::Fat16 => v >= 0xFFF8,
        FatType::Fat32 => v >= 0x0FFF_FFF8,
    }
}

/// The chain starting at `first`, read from the first FAT of `image` (not through the volume).
fn chain_in_image(image: &[u8], g: &Geometry, first: u64) -> Vec<u64> {
    let mut out = vec![first];
    let mut c = first;
    loop {
        let next = fat_entry(image, g, 0, c);
        if is_eoc(g.fat_type, next) {
            return out;
        }
        assert!(g.is_data_cluster(next), "chain from {first} leaves the data region at {c} -> {next}");
        assert!(out.len() <= g.cluster_count as usize, "chain from {first} loops");
        out.push(next);
        c = next;
    }
}

/// Every cluster of the chain starting at `first`, as the volume locates them (its remembered
/// runs).
fn chain_in_volume<D: Disk>(vol: &Volume<D>, first: u64) -> Vec<u64> {
    (0..).map_while(|i| vol.cluster_at(first, i, u64::MAX).ok()).collect()
}

/// First cluster of the file at `path`.
fn first_cluster<D: Disk>(vol: &Volume<D>, path: &str) -> u64 {
    let Ok(Some((entry, _))) = vol.resolve(path) else { panic!("resolve {path}") };
    entry.cluster().0 as u64
}

/// Every entry under the root, depth first, in on-disk order within each directory: path,
/// kind, size and (for files) contents.
type Tree = Vec<(String, Kind, u64, Vec<u8>)>;

fn tree<D: Disk>(vol: &Volume<D>) -> Tree {
    try_tree(vol).unwrap_or_else(|e| panic!("{e}"))
}

/// [`tree`], failing with a message instead of panicking.
fn try_tree<D: Disk>(vol: &Volume<D>) -> Result<Tree, String> {
    let mut out = Vec::new();
    let mut dirs = vec![String::from("/")];
    while let Some(dir) = dirs.pop() {
        let entries = vol.read_dir(&dir).map_err(|e| format!("read_dir {dir}: {e}"))?;
        for e in entries {
            let path = if dir == "/" { format!("/{}", e.name) } else { format!("{dir}/{}", e.name) };
            match e.kind {
                Kind::Dir => {
                    dirs.push(path.clone());
                    out.push((path, Kind::Dir, 0, Vec::new()));
                }
                Kind::File => {
                    let mut data = vec![0u8; e.size as usize];
                    let n = vol.read(&path, 0, &mut data).map_err(|err| format!("read {path}: {err}"))?;
                    if n != data.len() {
                        return Err(format!("read {path}: {n} of {} bytes", data.len()));
                    }
                    out.push((path, Kind::File, e.size, data));
                }
            }
        }
    }
    Ok(out)
}

/// `Ok(complaints)` if `fsck.fat -n` (exit code, output) found nothing or only what an unclean
/// stop may leave (the crash test's rules, `vessel_test_harness::fsck`); `Err(why)` otherwise.
fn fsck_verdict(code: Option<i32>, text: &str) -> Result<Vec<String>, String> {
    match fsck::verdict(code, text) {
        fsck::Verdict::Clean => Ok(Vec::new()),
        fsck::Verdict::Accepted(found) => Ok(found),
        fsck::Verdict::Damaged(why) => Err(format!("{why}\n{text}")),
    }
}

/// Fails unless `fsck.fat -n` finds `image` entirely clean.
fn assert_fsck_clean(image: &[u8], what: &str) {
    let (code, text) = fsck(image);
    assert!(fsck::verdict(code, &text) == fsck::Verdict::Clean, "{what}: fsck.fat -n is not clean ({code:?}):\n{text}");
}

// ---------------------------------------------------------------------------------------------
// 1. Directory listings remembered per directory.
// ---------------------------------------------------------------------------------------------

/// A directory's entries read from its bytes (not through hadris-fat): each entry's 8.3 name as
/// `BASE.EXT` and its long name, if long-name slots precede it. `.`, `..`, deleted entries and
/// the volume label are left out.
fn raw_entries(vol: &Volume<MemDisk>, dir: &str) -> Vec<(String, Option<String>)> {
    let g = vol.geometry;
    let read = |at: u64, len: u64| {
        let mut buf = vec![0u8; len as usize];
        let n = vol.cache.borrow_mut().read_at(at, &mut buf).expect("read directory");
        assert_eq!(n, buf.len());
        buf
    };
    let clusters = |first: u64| -> Vec<u8> {
        chain_in_volume(vol, first)
            .into_iter()
            .flat_map(|c| read(g.cluster_offset(c).expect("data cluster"), g.cluster_size as u64))
            .collect()
    };
    let bytes = match vol.resolve(dir).expect("resolve") {
        None => match g.root {
            Root::Fixed { start, size } => read(start, size),
            Root::Chain(first) => clusters(first as u64),
        },
        Some((entry, _)) => clusters(entry.cluster().0 as u64),
    };
    let mut out = Vec::new();
    let mut lfn: Vec<(u8, Vec<u16>)> = Vec::new();
    for slot in bytes.chunks_exact(32) {
        match slot[0] {
            0 => break,
            0xE5 => {
                lfn.clear();
                continue;
            }
            _ => {}
        }
        if slot[11] == 0x0F {
            let units =
                [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30].map(|i| u16::from_le_bytes([slot[i], slot[i + 1]]));
            lfn.push((slot[0] & 0x1F, units.to_vec()));
            continue;
        }
        let slots = std::mem::take(&mut lfn);
        if slot[11] & 0x08 != 0 {
            continue;
        }
        let trim = |b: &[u8]| String::from_utf8_lossy(b).trim_end_matches(' ').to_string();
        let (base, ext) = (trim(&slot[..8]), trim(&slot[8..11]));
        if base == "." || base == ".." {
            continue;
        }
        let short = if ext.is_empty() { base } else { format!("{base}.{ext}") };
        let long = (!slots.is_empty()).then(|| {
            let mut slots = slots;
            slots.sort_by_key(|&(order, _)| order);
            let units: Vec<u16> =
                slots.into_iter().flat_map(|(_, units)| units).take_while(|&u| u != 0 && u != 0xFFFF).collect();
            String::from_utf16_lossy(&units)
        });
        out.push((short, long));
    }
    out
}

/// The 8.3 name of the entry called `long` in `dir`, read from the directory's bytes.
fn alias(vol: &Volume<MemDisk>, dir: &str, long: &str) -> String {
    let raw = raw_entries(vol, dir);
    raw.iter()
        .find(|(_, l)| l.as_deref() == Some(long))
        .map(|(short, _)| short.clone())
        .unwrap_or_else(|| panic!("no entry with the long name {long} in {dir}: {raw:?}"))
}

/// Spellings of `name` that FAT matches to it: as is, upper and lower case, alternating.
fn spellings(name: &str) -> Vec<String> {
    let upper: String = name.chars().flat_map(char::to_uppercase).collect();
    let lower: String = name.chars().flat_map(char::to_lowercase).collect();
    let alternating: String = name
        .chars()
        .enumerate()
        .flat_map(|(i, c)| if i % 2 == 0 { c.to_uppercase().collect::<Vec<_>>() } else { c.to_lowercase().collect() })
        .collect();
    vec![name.to_string(), upper, lower, alternating]
}

/// The volume with listings remembered, and a fresh mount of its synced image with every
/// remembered thing forgotten before each question, answer every probe alike: `stat`, and for
/// files the whole contents. `first` are asked first: a lookup that misses scans the directory
/// again and remembers what it holds now, which would hide a stale listing from the questions
/// after it, so the names a stale listing could still hold go before any other.
fn assert_answers_alike(
    live: &Volume<MemDisk>,
    image: &[u8],
    first: &BTreeSet<String>,
    probes: &BTreeSet<String>,
    step: &str,
) {
    let fresh = mount(image.to_vec(), 64);
    for path in first.iter().chain(probes.difference(first)) {
        fresh.names.borrow_mut().forget_all();
        fresh.forget_chains();
        let want = fresh.stat(path);
        let got = live.stat(path);
        assert_eq!(got, want, "after {step}: stat {path}: remembered listing vs a fresh mount");
        // The spelling too (remembered per path until entries change).
        fresh.names.borrow_mut().forget_all();
        assert_eq!(live.canonical(path), fresh.canonical(path), "after {step}: canonical {path}");
        if let Ok(meta) = want
            && meta.kind == Kind::File
        {
            fresh.names.borrow_mut().forget_all();
            assert!(read_all(live, path, 3000) == read_all(&fresh, path, 3000), "after {step}: contents of {path}");
        }
    }
    assert_eq!(tree(live), tree(&fresh), "after {step}: the trees differ");
}

/// Every name in `dirs` (from their raw entries) in every spelling, and its 8.3 alias.
fn probes_of(vol: &Volume<MemDisk>, dirs: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in dirs {
        let prefix = if *dir == "/" { String::new() } else { dir.to_string() };
        for (short, long) in raw_entries(vol, dir) {
            // An 8.3 name in a DOS code page (not ASCII) cannot be spelled as a path.
            let short = short.is_ascii().then_some(short);
            for name in short.iter().chain(long.iter()).flat_map(|n| spellings(n)) {
                out.insert(format!("{prefix}/{name}"));
            }
        }
    }
    out
}

/// Looks a name up in each directory, so every listing is remembered before the next change.
fn touch_listings(vol: &Volume<MemDisk>, dirs: &[&str]) {
    for dir in dirs {
        let prefix = if *dir == "/" { String::new() } else { dir.to_string() };
        let _ = vol.stat(&format!("{prefix}/no such entry"));
        if let Some(entry) = vol.read_dir(dir).ok().and_then(|e| e.into_iter().next()) {
            vol.stat(&format!("{prefix}/{}", entry.name)).expect("stat a listed entry");
        }
    }
}

/// Lookups by other spellings and by 8.3 alias, in a directory listed once, answer as a fresh
/// mount does; and so does every lookup after each kind of change, in that directory and in
/// another one. The image comes from `mkfs.fat`, with long names made by `mcopy` (whose aliases
/// are `LONGFI~1.TXT`-style) and by the volume (whose aliases are read from the directory's
/// bytes).
#[test]
fn remembered_listings_answer_like_a_fresh_mount() {
    let tmp = TempDir::new("listings");
    let img = tmp.join("img");
    let img_s = s(&img);
    run("mkfs.fat", &["-C", "--invariant", "-F", "16", "-s", "1", img_s, "8192"]);
    run("mmd", &["-i", img_s, "::/dir", "::/other"]);
    let host = |name: &str, data: &[u8]| {
        let path = tmp.join(name);
        std::fs::write(&path, data).expect("host file");
        path
    };
    let long = host("Long File Name.txt", &SplitMix(1).bytes(3000));
    let unicode = host("Ünïcödé Ñame.txt", "hé".repeat(700).as_bytes());
    let short = host("short.txt", b"short");
    let other = host("Other Long.txt", &SplitMix(2).bytes(1500));
    run("mcopy", &["-i", img_s, s(&long), s(&unicode), s(&short), "::/dir/"]);
    run("mcopy", &["-i", img_s, s(&other), "::/other/"]);

    let mut vol = mount(std::fs::read(&img).expect("image"), 64);
    let dirs = ["/", "/dir", "/other"];
    assert_eq!(alias(&vol, "/dir", "Long File Name.txt"), "LONGFI~1.TXT", "mtools' alias");
    let unicode_alias = alias(&vol, "/dir", "Ünïcödé Ñame.txt");

    // Listed once, then looked up by other spellings and by alias.
    touch_listings(&vol, &dirs);
    for path in ["/dir/LONGFI~1.TXT", "/dir/longfi~1.txt", "/DIR/LongFi~1.Txt", "/dir/LONG FILE NAME.TXT"] {
        assert_eq!(vol.stat(path).map(|m| (m.kind, m.size)), Ok((Kind::File, 3000)), "{path}");
    }
    for path in ["/dir/ünïcödé ñame.txt", "/dir/ÜNÏCÖDÉ ÑAME.TXT"] {
        assert_eq!(vol.stat(path).map(|m| m.size), Ok(2100), "{path}");
    }
    // mtools writes the alias in a DOS code page: only an ASCII one can be spelled as a path.
    if unicode_alias.is_ascii() {
        assert_eq!(vol.stat(&format!("/dir/{}", unicode_alias.to_lowercase())).map(|m| m.size), Ok(2100));
    }
    assert_eq!(vol.stat("/dir/SHORT.TXT").map(|m| m.size), Ok(5));
    assert_eq!(vol.stat("/dir/LONGFI~2.TXT"), Err(FsError::NotFound));
    assert_eq!(vol.stat("/dir/Long File Name.tx"), Err(FsError::NotFound));

    // Every probe ever made is asked again after each change: names that went away must go.
    let mut probes = probes_of(&vol, &dirs);
    probes.extend(["/dir/LONGFI~2.TXT", "/dir/nope", "/other/nope", "/nope/x", "/dir/SHORT.TXT/x"].map(String::from));
    let image = synced(&mut vol);
    assert_answers_alike(&vol, &image, &BTreeSet::new(), &probes, "mounting");

    type Change = (&'static str, fn(&mut Volume<MemDisk>));
    let changes: &[Change] = &[
        ("create a long name", |v| v.create("/dir/New Long Name.txt").expect("create")),
        ("write to it", |v| assert_eq!(v.write("/dir/new long name.TXT", 0, &[7; 2000]), Ok(2000))),
        ("create an 8.3 name", |v| v.create("/dir/NEW.TXT").expect("create")),
        ("create a lower-case 8.3 name", |v| v.create("/dir/lower.txt").expect("create")),
        ("mkdir", |v| v.mkdir("/dir/Sub Directory").expect("mkdir")),
        ("create in the new directory", |v| v.create("/dir/sub directory/Deep Long Name.bin").expect("create")),
        ("write in the new directory", |v| {
            assert_eq!(v.write("/dir/Sub Directory/DEEP LONG NAME.BIN", 0, b"deep"), Ok(4))
        }),
        ("rename within the directory", |v| v.rename("/dir/LONGFI~1.TXT", "/dir/Renamed Long Name.txt").expect("mv")),
        ("rename to another directory", |v| v.rename("/dir/short.txt", "/other/Moved Short.txt").expect("mv")),
        ("rename from another directory", |v| v.rename("/other/other long.txt", "/dir/From Other.txt").expect("mv")),
        ("change only the case", |v| v.rename("/dir/NEW.TXT", "/dir/new.txt").expect("mv")),
        ("create in the other directory", |v| v.create("/other/Another Long One.txt").expect("create")),
        ("write in the other directory", |v| assert_eq!(v.write("/other/ANOTHER LONG ONE.TXT", 5, b"x"), Ok(1))),
        ("cut a file", |v| v.truncate("/dir/renamed long name.txt", 10).expect("truncate")),
        ("grow a file", |v| v.truncate("/dir/from other.txt", 9000).expect("truncate")),
        ("remove a long name", |v| v.remove("/dir/new long name.txt").expect("remove")),
        ("rename over a file", |v| v.rename("/dir/new.txt", "/dir/Renamed Long Name.txt").expect("mv")),
        ("remove by alias", |v| {
            let short = alias(v, "/dir/Sub Directory", "Deep Long Name.bin");
            v.remove(&format!("/dir/SUB DIRECTORY/{}", short.to_lowercase())).expect("remove")
        }),
        ("remove the new directory", |v| v.remove("/dir/sub directory").expect("rmdir")),
        ("create the 8.3 name a long name would get", |v| v.create("/dir/LONGFILE.TXT").expect("create")),
        ("create where a long name was", |v| v.create("/dir/Long File Name.txt").expect("create")),
        ("write by alias", |v| {
            let short = alias(v, "/dir", "Long File Name.txt");
            assert_ne!(short, "LONGFILE.TXT", "two entries with one 8.3 name");
            assert_eq!(v.write(&format!("/dir/{short}"), 0, b"by alias"), Ok(8));
        }),
        ("mkdir in the other directory", |v| v.mkdir("/other/d").expect("mkdir")),
        ("move a directory", |v| v.rename("/other/d", "/dir/Moved Directory").expect("mv")),
    ];
    let mut known: Vec<String> = dirs.iter().map(|d| d.to_string()).collect();
    for &(step, change) in changes {
        // Every listing remembered, and what it holds, before the change.
        let known_now: Vec<&str> = known.iter().map(String::as_str).collect();
        touch_listings(&vol, &known_now);
        let before = probes_of(&vol, &known_now);
        change(&mut vol);
        let image = synced(&mut vol);
        // What is there now, learned from a fresh mount: asking the volume would refresh it.
        let fresh = mount(image.clone(), 64);
        known = dirs.iter().map(|d| d.to_string()).collect();
        for entry in fresh.read_dir("/dir").expect("read_dir") {
            if entry.kind == Kind::Dir {
                known.push(format!("/dir/{}", entry.name));
            }
        }
        let known_now: Vec<&str> = known.iter().map(String::as_str).collect();
        probes.extend(before.iter().cloned());
        probes.extend(probes_of(&fresh, &known_now));
        assert_answers_alike(&vol, &image, &before, &probes, step);
    }

    // A name equal to another entry's 8.3 alias names that entry: creating it is refused.
    let renamed_alias = alias(&vol, "/dir", "Renamed Long Name.txt");
    touch_listings(&vol, &dirs);
    assert_eq!(vol.create(&format!("/dir/{renamed_alias}")), Err(FsError::AlreadyExists), "{renamed_alias}");
    assert_eq!(vol.create(&format!("/dir/{}", renamed_alias.to_lowercase())), Err(FsError::AlreadyExists));
    let image = synced(&mut vol);
    assert_answers_alike(&vol, &image, &BTreeSet::new(), &probes, "refused creates");
    assert_fsck_clean(&image, "after the listing changes");
}

/// What the tree should hold: file contents and directories by exact path.
#[derive(Default)]
struct Model {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
}

/// FAT's case folding for long names: Unicode upper case.
fn fold(name: &str) -> String {
    name.chars().flat_map(char::to_uppercase).collect()
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn name_of(path: &str) -> &str {
    &path[path.rfind('/').map_or(0, |i| i + 1)..]
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

/// Whether `path` is `ancestor` or below it.
fn within(path: &str, ancestor: &str) -> bool {
    path == ancestor || path.strip_prefix(ancestor).is_some_and(|rest| rest.starts_with('/'))
}

impl Model {
    /// The exact path of the entry `path` names (in any spelling), and whether it is a
    /// directory.
    fn find(&self, path: &str) -> Option<(String, bool)> {
        if path == "/" {
            return Some((String::from("/"), true));
        }
        let key = fold(path);
        let file = self.files.keys().find(|p| fold(p) == key).map(|p| (p.clone(), false));
        file.or_else(|| self.dirs.iter().find(|p| fold(p) == key).map(|p| (p.clone(), true)))
    }

    /// Exact paths of the entries directly in `dir`.
    fn children(&self, dir: &str) -> Vec<String> {
        self.files.keys().chain(self.dirs.iter()).filter(|p| parent_of(p) == dir).cloned().collect()
    }

    /// Moves the entry `from` (and what is below it) to `to`.
    fn rename(&mut self, from: &str, to: &str) {
        let moved = |p: &str| if within(p, from) { format!("{to}{}", &p[from.len()..]) } else { p.to_string() };
        self.files = std::mem::take(&mut self.files).into_iter().map(|(p, d)| (moved(&p), d)).collect();
        self.dirs = std::mem::take(&mut self.dirs).into_iter().map(|p| moved(&p)).collect();
    }

    /// The tree as [`tree`] gives it, sorted.
    fn tree(&self) -> Tree {
        let mut out: Tree =
            self.files.iter().map(|(p, d)| (p.clone(), Kind::File, d.len() as u64, d.clone())).collect();
        out.extend(self.dirs.iter().map(|p| (p.clone(), Kind::Dir, 0, Vec::new())));
        out.sort();
        out
    }
}

/// A spelling of `path` with each letter's case chosen at random (among letters whose other
/// case is one character).
fn respell(rng: &mut SplitMix, path: &str) -> String {
    path.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            let mut lower = c.to_lowercase();
            let (u, u_more, l, l_more) = (upper.next(), upper.next(), lower.next(), lower.next());
            match (rng.below(3), u, u_more, l, l_more) {
                (1, Some(u), None, _, _) => u,
                (2, _, _, Some(l), None) => l,
                _ => c,
            }
        })
        .collect()
}

/// Names the random operations give files and directories: 8.3 in either case, mixed case,
/// long, non-ASCII.
const NAMES: &[&str] = &[
    "a.txt",
    "B.TXT",
    "lower",
    "MiXeD.Txt",
    "Long File Name.txt",
    "long file name 2.data",
    "Ünïcödé.bin",
    "日本語.txt",
    "x y z",
    "file.with.dots.txt",
    "ÅNGSTRÖM",
    "Sub Dir",
];

/// Most bytes a file of the random operations grows to.
const MAX_RANDOM_FILE: u64 = 30_000;

/// `ops` random operations on one volume (create, mkdir, write, truncate, remove, rename,
/// stat, read, read_dir, through random spellings of the paths), each checked against a model.
/// Every 100, the volume is synced and its image mounted afresh: the volume's tree, the fresh
/// mount's and the model's must agree, and `stat` of every path (in another spelling) and of
/// missing ones must answer alike. Returns how often each operation ran.
fn random_operations(image: Vec<u8>, pages: usize, ops: usize, seed: u64) -> BTreeMap<&'static str, usize> {
    let mut vol = mount(image, pages);
    let mut m = Model::default();
    let mut rng = SplitMix(seed);
    let mut counts = BTreeMap::new();
    let pick = |rng: &mut SplitMix, items: &[String]| items[rng.below(items.len() as u64) as usize].clone();
    for op in 1..=ops {
        let dirs: Vec<String> = std::iter::once(String::from("/")).chain(m.dirs.iter().cloned()).collect();
        let files: Vec<String> = m.files.keys().cloned().collect();
        let entries: Vec<String> = files.iter().chain(m.dirs.iter()).cloned().collect();
        let dir = pick(&mut rng, &dirs);
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        let mut roll = rng.below(100);
        if files.len() >= 60 && roll < 20 {
            roll = 55; // remove instead of making more
        }
        if (files.is_empty() && (20..52).contains(&roll)) || (entries.is_empty() && roll >= 52) {
            roll = 0;
        }
        let what = match roll {
            0..=19 => {
                // create (three in four) or mkdir, at most two levels deep
                let directory = roll >= 15;
                let dir = if directory && dir.matches('/').count() >= 2 { String::from("/") } else { dir };
                let exact = join(&dir, name);
                let path = join(&respell(&mut rng, &dir), name);
                let got = if directory { vol.mkdir(&path) } else { vol.create(&path) };
                if m.find(&exact).is_some() {
                    assert_eq!(got, Err(FsError::AlreadyExists), "op {op}: create {path}");
                } else {
                    assert_eq!(got, Ok(()), "op {op}: create {path}");
                    if directory {
                        m.dirs.insert(exact);
                    } else {
                        m.files.insert(exact, Vec::new());
                    }
                }
                if directory { "mkdir" } else { "create" }
            }
            20..=43 => {
                let file = pick(&mut rng, &files);
                let size = m.files[&file].len() as u64;
                let most = if rng.below(4) == 0 { 12_000 } else { 2000 };
                let len = 1 + rng.below(most);
                let offset = rng.below((size + 2000).min(MAX_RANDOM_FILE - len));
                let data = rng.bytes(len as usize);
                let path = respell(&mut rng, &file);
                assert_eq!(vol.write(&path, offset, &data), Ok(data.len()), "op {op}: write {path} at {offset}");
                let model = m.files.get_mut(&file).expect("modelled");
                let end = (offset + len) as usize;
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[offset as usize..end].copy_from_slice(&data);
                "write"
            }
            44..=51 => {
                let file = pick(&mut rng, &files);
                let size = m.files[&file].len() as u64;
                let len = rng.below(size * 2 + 1000).min(MAX_RANDOM_FILE);
                let path = respell(&mut rng, &file);
                assert_eq!(vol.truncate(&path, len), Ok(()), "op {op}: truncate {path} to {len}");
                m.files.get_mut(&file).expect("modelled").resize(len as usize, 0);
                "truncate"
            }
            52..=59 => {
                let entry = pick(&mut rng, &entries);
                let path = respell(&mut rng, &entry);
                let got = vol.remove(&path);
                if m.dirs.contains(&entry) && !m.children(&entry).is_empty() {
                    assert_eq!(got, Err(FsError::NotEmpty), "op {op}: remove {path}");
                } else {
                    assert_eq!(got, Ok(()), "op {op}: remove {path}");
                    m.files.remove(&entry);
                    m.dirs.remove(&entry);
                }
                "remove"
            }
            60..=71 => 'rename: {
                let from = pick(&mut rng, &entries);
                let from_dir = m.dirs.contains(&from);
                let (target_dir, new_name) = match rng.below(10) {
                    // Only the case changes.
                    0..=2 => (parent_of(&from).to_string(), respell(&mut rng, name_of(&from))),
                    // Over another file.
                    3..=4 if !from_dir && files.len() > 1 => {
                        let over = pick(&mut rng, &files);
                        (parent_of(&over).to_string(), respell(&mut rng, name_of(&over)))
                    }
                    _ => (dir.clone(), name.to_string()),
                };
                let to_exact = join(&target_dir, &new_name);
                let existing = m.find(&to_exact).filter(|(e, _)| *e != from);
                if from_dir && within(&target_dir, &from) && existing.as_ref().is_some_and(|&(_, dir)| dir) {
                    // A directory into itself over an existing directory: not modelled.
                    break 'rename "rename (not made)";
                }
                let to = join(&respell(&mut rng, &target_dir), &new_name);
                let path = respell(&mut rng, &from);
                let got = vol.rename(&path, &to);
                let want = match &existing {
                    None if from_dir && within(&target_dir, &from) => Err(FsError::InvalidPath),
                    Some((_, true)) if !from_dir => Err(FsError::IsADirectory),
                    Some((_, false)) if from_dir => Err(FsError::NotADirectory),
                    Some((e, true)) if !m.children(e).is_empty() => Err(FsError::NotEmpty),
                    _ => Ok(()),
                };
                assert_eq!(got, want, "op {op}: rename {path} -> {to}");
                if want.is_ok() {
                    if let Some((e, _)) = existing {
                        m.files.remove(&e);
                        m.dirs.remove(&e);
                    }
                    m.rename(&from, &to_exact);
                }
                "rename"
            }
            72..=83 => {
                let (path, want) = match rng.below(4) {
                    0 => {
                        let path = join(&respell(&mut rng, &dir), name);
                        let want = match m.find(&join(&dir, name)) {
                            None => Err(FsError::NotFound),
                            Some((_, true)) => Ok((Kind::Dir, 0)),
                            Some((e, false)) => Ok((Kind::File, m.files[&e].len() as u64)),
                        };
                        (path, want)
                    }
                    1 if !files.is_empty() => {
                        let file = pick(&mut rng, &files);
                        (join(&respell(&mut rng, &file), "x"), Err(FsError::NotADirectory))
                    }
                    _ => {
                        let entry = pick(&mut rng, &entries);
                        let want = match m.files.get(&entry) {
                            Some(data) => Ok((Kind::File, data.len() as u64)),
                            None => Ok((Kind::Dir, 0)),
                        };
                        (respell(&mut rng, &entry), want)
                    }
                };
                assert_eq!(vol.stat(&path).map(|meta| (meta.kind, meta.size)), want, "op {op}: stat {path}");
                "stat"
            }
            84..=91 => {
                let file = pick(&mut rng, &files);
                let data = &m.files[&file];
                let offset = rng.below(data.len() as u64 + 100) as usize;
                let mut buf = vec![0u8; 1 + rng.below(5000) as usize];
                let path = respell(&mut rng, &file);
                let n =
                    vol.read(&path, offset as u64, &mut buf).unwrap_or_else(|e| panic!("op {op}: read {path}: {e}"));
                let want = data.get(offset..).map_or(&[][..], |rest| &rest[..rest.len().min(buf.len())]);
                assert!(buf[..n] == *want, "op {op}: read {path} at {offset}");
                "read"
            }
            _ => {
                let path = respell(&mut rng, &dir);
                let mut got: Vec<(String, Kind, u64)> = vol
                    .read_dir(&path)
                    .unwrap_or_else(|e| panic!("op {op}: read_dir {path}: {e}"))
                    .into_iter()
                    .map(|e| (e.name, e.kind, e.size))
                    .collect();
                let mut want: Vec<(String, Kind, u64)> = m
                    .children(&dir)
                    .into_iter()
                    .map(|p| match m.files.get(&p) {
                        Some(d) => (name_of(&p).to_string(), Kind::File, d.len() as u64),
                        None => (name_of(&p).to_string(), Kind::Dir, 0),
                    })
                    .collect();
                got.sort();
                want.sort();
                assert_eq!(got, want, "op {op}: read_dir {path}");
                "read_dir"
            }
        };
        *counts.entry(what).or_insert(0) += 1;

        if op % 100 == 0 {
            let image = synced(&mut vol);
            let fresh = mount(image, 64);
            let live = tree(&vol);
            assert_eq!(live, tree(&fresh), "op {op}: the volume's tree and a fresh mount's differ");
            let mut sorted = live;
            sorted.sort();
            assert_eq!(sorted, m.tree(), "op {op}: the volume's tree and the model's differ");
            let mut probes: Vec<String> = m.files.keys().chain(m.dirs.iter()).map(|p| respell(&mut rng, p)).collect();
            for dir in &dirs {
                probes.extend(NAMES.iter().map(|n| join(dir, &respell(&mut rng, n))));
            }
            for path in probes {
                fresh.names.borrow_mut().forget_all();
                fresh.forget_chains();
                assert_eq!(vol.stat(&path), fresh.stat(&path), "op {op}: stat {path}: remembered vs fresh");
            }
        }
    }
    counts
}

/// Random operations with remembered listings and runs, on FAT16 with 512-byte clusters (so
/// directories grow cluster by cluster) and a cache small enough to evict.
#[test]
fn random_operations_answer_like_a_fresh_mount_fat16() {
    let counts = random_operations(mkfs("16", "1", "8192"), 24, 2000, 0xD1CE);
    for (what, min) in
        [("create", 100), ("mkdir", 20), ("write", 200), ("truncate", 60), ("remove", 60), ("rename", 80)]
    {
        assert!(counts.get(what).copied().unwrap_or(0) >= min, "too few {what}: {counts:?}");
    }
}

/// The same on FAT32 (a root directory that is a cluster chain) and on FAT12.
#[test]
fn random_operations_answer_like_a_fresh_mount_fat32_and_fat12() {
    let disk = MemDisk::new(512, (40 << 20) / 512).expect("disk");
    let vol = Volume::format(Cache::new(disk, 64).expect("cache"), "", None).expect("format");
    assert_eq!(vol.fat_type(), FatType::Fat32);
    let image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
    random_operations(image, 32, 600, 0xF32);
    random_operations(mkfs("12", "1", "2048"), 16, 600, 0xF12);
}

// ---------------------------------------------------------------------------------------------
// 2. Cluster chains remembered as runs.
// ---------------------------------------------------------------------------------------------

/// `min` to `min + spread - 1` random bytes.
fn some_bytes(rng: &mut SplitMix, min: u64, spread: u64) -> Vec<u8> {
    let len = min + rng.below(spread);
    rng.bytes(len as usize)
}

/// File offsets where a new run of clusters starts (the clusters before and after are not
/// neighbours on the disk).
fn run_starts(chain: &[u64], cluster_size: u64) -> Vec<u64> {
    (1..chain.len()).filter(|&i| chain[i] != chain[i - 1] + 1).map(|i| i as u64 * cluster_size).collect()
}

/// `count` reads of random lengths starting near run boundaries (and anywhere), each checked
/// against `files`.
fn check_preads<D: Disk>(vol: &Volume<D>, files: &BTreeMap<String, Vec<u8>>, rng: &mut SplitMix, count: usize) {
    let cs = vol.cluster_size() as u64;
    let starts: BTreeMap<&String, Vec<u64>> =
        files.keys().map(|p| (p, run_starts(&chain_in_volume(vol, first_cluster(vol, p)), cs))).collect();
    for i in 0..count {
        let (path, data) = files.iter().nth(rng.below(files.len() as u64) as usize).expect("a file");
        let size = data.len() as u64;
        let runs = &starts[path];
        let at = if i % 4 == 0 || runs.is_empty() {
            rng.below(size)
        } else {
            runs[rng.below(runs.len() as u64) as usize].saturating_sub(rng.below(3 * cs))
        };
        let mut buf = vec![0u8; 1 + rng.below(4 * cs + 100) as usize];
        let n = vol.read(path, at, &mut buf).unwrap_or_else(|e| panic!("read {path} at {at}: {e}"));
        let want = &data[at as usize..(at as usize + buf.len()).min(data.len())];
        assert!(n == want.len() && buf[..n] == *want, "read {path} at {at}, {} bytes", buf.len());
    }
}

/// Files whose chains alternate (appends to two files interleaved) and one grown into the
/// one-cluster holes left by deleting every other small file read back exactly what was
/// written, at every offset, across run boundaries; overwrites across the boundaries land where
/// they should; the runs the volume remembers are the chains in the FAT; and all of it again
/// after mounting the synced image afresh.
#[test]
fn fragmented_files_read_back_at_every_offset() {
    let mut vol = mount(mkfs("16", "1", "8192"), 32);
    let cs = vol.cluster_size() as u64;
    assert_eq!(cs, 512);
    let mut rng = SplitMix(0xF4A6);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let append = |vol: &mut Volume<MemDisk>, files: &mut BTreeMap<String, Vec<u8>>, path: &str, data: Vec<u8>| {
        let file = files.entry(path.to_string()).or_default();
        assert_eq!(vol.write(path, file.len() as u64, &data), Ok(data.len()), "append to {path}");
        file.extend_from_slice(&data);
    };
    for path in ["/a", "/b", "/c"] {
        vol.create(path).expect("create");
    }
    // `/c`'s first cluster comes before all the others.
    append(&mut vol, &mut files, "/c", vec![7; 10]);
    for _ in 0..60 {
        for path in ["/a", "/b"] {
            let data = some_bytes(&mut rng, 100, 1400);
            append(&mut vol, &mut files, path, data);
        }
    }
    for i in 0..60 {
        let path = format!("/s{i:02}");
        vol.create(&path).expect("create");
        assert_eq!(vol.write(&path, 0, &rng.bytes(cs as usize)), Ok(cs as usize));
    }
    for i in (1..60).step_by(2) {
        vol.remove(&format!("/s{i:02}")).expect("remove");
    }
    // `/c` takes the holes (each next cluster of a file is the first free one after its last),
    // then whatever follows; `/a` grows after its end.
    for _ in 0..12 {
        let data = some_bytes(&mut rng, 1, 3000);
        append(&mut vol, &mut files, "/c", data);
        let data = some_bytes(&mut rng, 1, 700);
        append(&mut vol, &mut files, "/a", data);
    }
    for (path, min_runs) in [("/a", 40), ("/b", 40), ("/c", 20)] {
        let runs = run_starts(&chain_in_volume(&vol, first_cluster(&vol, path)), cs).len() + 1;
        assert!(runs >= min_runs, "{path} has only {runs} runs: the test needs fragmented files");
    }

    check_preads(&vol, &files, &mut rng, 400);
    // Overwrites across run boundaries, each read back at once and by the checks after.
    for _ in 0..150 {
        let (path, data) = files.iter_mut().nth(rng.below(3) as usize).expect("a file");
        let chain = chain_in_volume(&vol, first_cluster(&vol, path));
        let runs = run_starts(&chain, cs);
        let at = runs[rng.below(runs.len() as u64) as usize].saturating_sub(rng.below(2 * cs)) as usize;
        let len = (1 + rng.below(3 * cs) as usize).min(data.len() - at);
        let new = rng.bytes(len);
        assert_eq!(vol.write(path, at as u64, &new), Ok(len), "overwrite {path} at {at}");
        data[at..at + len].copy_from_slice(&new);
        let mut back = vec![0u8; len];
        assert_eq!(vol.read(path, at as u64, &mut back), Ok(len));
        assert!(back == new, "{path} at {at}: an overwrite read back differently");
    }
    check_preads(&vol, &files, &mut rng, 400);
    for (path, data) in &files {
        assert!(read_all(&vol, path, 777) == *data, "{path}");
    }

    // The remembered runs are the chains the FAT holds.
    let image = synced(&mut vol);
    let g = vol.geometry;
    for path in files.keys() {
        let first = first_cluster(&vol, path);
        assert_eq!(chain_in_volume(&vol, first), chain_in_image(&image, &g, first), "{path}: remembered runs");
    }

    let fresh = mount(image, 16);
    for (path, data) in &files {
        assert!(read_all(&fresh, path, 1000) == *data, "{path} after mounting afresh");
    }
    check_preads(&fresh, &files, &mut rng, 400);
}

// ---------------------------------------------------------------------------------------------
// 3. A chain longer than its file.
// ---------------------------------------------------------------------------------------------

/// An image holding `/victim.bin` (two and a half clusters) whose chain goes on past its size
/// to one more cluster (filled with 0xEE), in both FATs, as a stop between the FATs and the
/// entry of a growing file leaves it; the file's contents, and that one more cluster.
fn image_with_a_long_chain(image: Vec<u8>) -> (Vec<u8>, Vec<u8>, u64) {
    let mut vol = mount(image, 64);
    let cs = vol.cluster_size() as usize;
    let data = SplitMix(3).bytes(2 * cs + cs / 2);
    vol.create("/victim.bin").expect("create");
    assert_eq!(vol.write("/victim.bin", 0, &data), Ok(data.len()));
    vol.create("/after.bin").expect("create");
    assert_eq!(vol.write("/after.bin", 0, &[5; 5000]), Ok(5000));
    let first = first_cluster(&vol, "/victim.bin");
    let mut image = synced(&mut vol);
    let g = vol.geometry;
    let chain = chain_in_image(&image, &g, first);
    assert_eq!(chain.len(), 3);
    let used = (2..=g.max_cluster() as u64).filter(|&c| fat_entry(&image, &g, 0, c) != 0).max().expect("used");
    let spare = used + 7;
    assert_eq!(fat_entry(&image, &g, 0, spare), 0);
    set_fat_entry(&mut image, &g, chain[2], spare);
    set_fat_entry(&mut image, &g, spare, eoc(g.fat_type));
    let at = g.cluster_offset(spare).expect("data cluster") as usize;
    image[at..at + cs].fill(0xEE);
    assert_eq!(chain_in_image(&image, &g, first).len(), 4);
    (image, data, spare)
}

/// A file whose chain is longer than its size (what a stop can leave) grows correctly: each
/// way of growing it (an append inside its last cluster, one across clusters, `truncate`
/// growing it, a write past its end) gives the right contents, a chain exactly as long as the
/// file needs, and an image `fsck.fat -n` finds clean; before, `fsck.fat` reports only the
/// accepted "chain longer than the file".
#[test]
fn a_chain_longer_than_its_file_is_cut_before_the_file_grows() {
    let fat32 = {
        let disk = MemDisk::new(512, (40 << 20) / 512).expect("disk");
        let vol = Volume::format(Cache::new(disk, 64).expect("cache"), "", None).expect("format");
        vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes()
    };
    for (what, base) in [("FAT16", mkfs("16", "4", "16384")), ("FAT32", fat32)] {
        let (image, data, _) = image_with_a_long_chain(base);
        let (code, text) = fsck(&image);
        let accepted = fsck_verdict(code, &text).unwrap_or_else(|why| panic!("{what}: the damaged image: {why}"));
        assert!(
            accepted.iter().any(|c| c.contains("cluster chain length is > ")),
            "{what}: fsck.fat does not see the long chain: {accepted:?}"
        );
        let mut vol = mount(image.clone(), 64);
        let cs = vol.cluster_size() as u64;
        drop(vol.unmount());
        let size = data.len() as u64;
        type Grow = fn(&mut Volume<MemDisk>, u64, u64) -> Vec<u8>;
        let ways: &[(&str, Grow)] = &[
            ("append inside the last cluster", |v, size, _| {
                let tail = vec![0xA1; 100];
                assert_eq!(v.write("/victim.bin", size, &tail), Ok(100));
                tail
            }),
            ("append across clusters", |v, size, cs| {
                let tail = SplitMix(9).bytes(2 * cs as usize + 77);
                assert_eq!(v.write("/victim.bin", size, &tail), Ok(tail.len()));
                tail
            }),
            ("grow with truncate", |v, size, cs| {
                v.truncate("/victim.bin", size + 3 * cs).expect("truncate");
                vec![0; 3 * cs as usize]
            }),
            ("write past the end", |v, size, cs| {
                assert_eq!(v.write("/victim.bin", size + 2 * cs, b"tail"), Ok(4));
                let mut tail = vec![0; 2 * cs as usize];
                tail.extend_from_slice(b"tail");
                tail
            }),
        ];
        for &(way, grow) in ways {
            vol = mount(image.clone(), 64);
            let tail = grow(&mut vol, size, cs);
            let mut want = data.clone();
            want.extend_from_slice(&tail);
            assert!(read_all(&vol, "/victim.bin", 300) == want, "{what}, {way}: contents");
            let first = first_cluster(&vol, "/victim.bin");
            let out = synced(&mut vol);
            let g = vol.geometry;
            let clusters = chain_in_image(&out, &g, first).len() as u64;
            assert_eq!(clusters, (want.len() as u64).div_ceil(cs), "{what}, {way}: chain length");
            assert_fsck_clean(&out, &format!("{what}, {way}"));
            assert!(read_all(&mount(out, 16), "/victim.bin", 1000) == want, "{what}, {way}: contents after mounting");
        }
    }
}

/// A stop can also leave a chain longer than its file that, past the file's end, runs into a
/// free cluster: the FAT block linking a cluster to a new one reached the disk, the block
/// marking the new one in use did not, and neither did the entry's new size (seen in the
/// crash simulation below). `fsck.fat` follows a chain only until it passes the file's size,
/// so it reports just the longer chain, which it accepts. The volume must read such a file
/// (all of its bytes lie before the damage) and grow it (cutting the chain first) to a clean
/// image.
#[test]
fn a_chain_damaged_only_past_the_files_end_still_reads_and_grows() {
    let (mut image, data, spare) = image_with_a_long_chain(mkfs("16", "4", "16384"));
    let g = mount(image.clone(), 8).geometry;
    // The chain: the file's three clusters, `spare`, then `spare + 1`, which is free.
    assert_eq!(fat_entry(&image, &g, 0, spare + 1), 0);
    set_fat_entry(&mut image, &g, spare, spare + 1);
    let (code, text) = fsck(&image);
    let accepted = fsck_verdict(code, &text).unwrap_or_else(|why| panic!("the damaged image: {why}"));
    assert!(accepted.iter().any(|c| c.contains("cluster chain length is > ")), "{accepted:?}");
    let mut vol = mount(image, 64);
    let mut buf = vec![0u8; data.len()];
    assert_eq!(vol.read("/victim.bin", 0, &mut buf), Ok(data.len()), "read within the file's size");
    assert!(buf == data, "contents");
    assert_eq!(vol.write("/victim.bin", data.len() as u64, b"more"), Ok(4), "append");
    let mut want = data;
    want.extend_from_slice(b"more");
    assert!(read_all(&vol, "/victim.bin", 500) == want, "contents after the append");
    assert_fsck_clean(&synced(&mut vol), "after the append");
}

// ---------------------------------------------------------------------------------------------
// 4. The order writes reach the disk.
// ---------------------------------------------------------------------------------------------

/// Small FAT16 and FAT32 images from `mkfs.fat`, 512-byte clusters.
fn ordering_images() -> [(&'static str, Vec<u8>); 2] {
    [("FAT16", mkfs("16", "1", "8192")), ("FAT32", mkfs("32", "1", "34816"))]
}

/// `mkdir` writes the new directory's cluster, the FATs and its entry, flushing after each;
/// `sync` after creating and growing files writes the FAT blocks, flushes, writes everything
/// else, flushes; nothing reaches the disk before. An operation that frees clusters (removing a
/// file, cutting one, renaming over one) first syncs what was pending that way, then writes its
/// own changes the other way round: entries, a flush, then the FATs, a flush.
#[test]
fn sync_writes_the_fats_first_and_freeing_writes_them_last() {
    for (what, image) in ordering_images() {
        let disk = Recorder::new(image, false);
        let mut vol = mount_recorder(&disk, 4096);
        let fat = fat_blocks(&vol);
        disk.take_log();
        let mut rng = SplitMix(11);
        vol.mkdir("/d").expect("mkdir");
        // A new directory goes out at once: its cluster, the FATs, then its entry.
        assert_eq!(shape(&fat, &disk.take_log()), "NFN", "{what}: mkdir");
        for i in 0..6 {
            let path = format!("/d/file number {i}");
            vol.create(&path).expect("create");
            assert_eq!(vol.write(&path, 0, &rng.bytes(3000 * i + 1)), Ok(3000 * i + 1));
        }
        for i in 0..6 {
            let path = format!("/d/file number {i}");
            let size = vol.stat(&path).expect("stat").size;
            assert_eq!(vol.write(&path, size, &rng.bytes(1500)), Ok(1500), "grow {path}");
        }
        let log = disk.take_log();
        assert!(
            !log.iter().any(|e| matches!(e, Event::Write { .. } | Event::Flush)),
            "{what}: written before sync: {log:?}"
        );
        vol.sync().expect("sync");
        let log = disk.take_log();
        assert_eq!(shape(&fat, &log), "FN", "{what}: sync: {log:?}");
        assert!(matches!(log.last(), Some(Event::Flush)), "{what}: sync does not end with a flush");

        type Free = fn(&mut Volume<Recorder>);
        let frees: &[(&str, Free)] = &[
            ("remove", |v| v.remove("/d/file number 5").expect("remove")),
            ("cut", |v| v.truncate("/d/FILE NUMBER 4", 700).expect("truncate")),
            ("cut to nothing", |v| v.truncate("/d/file number 3", 0).expect("truncate")),
            ("rename over", |v| v.rename("/d/file number 1", "/d/file number 2").expect("rename")),
        ];
        for (i, &(op, free)) in frees.iter().enumerate() {
            // Pending allocations and entries, so the sync before the operation has both.
            let path = format!("/d/pending {i}");
            vol.create(&path).expect("create");
            assert_eq!(vol.write(&path, 0, &rng.bytes(5000)), Ok(5000));
            disk.take_log();
            free(&mut vol);
            let log = disk.take_log();
            // A cut that keeps clusters ends its chain before freeing the rest: a FAT epoch of
            // its own when the freed clusters' entries lie in other blocks.
            let got = shape(&fat, &log);
            let expected: &[&str] = if op == "cut" { &["FNNF", "FNNFF"] } else { &["FNNF"] };
            assert!(expected.contains(&got.as_str()), "{what}: {op}: {got} ({log:?})");
        }
        vol.sync().expect("sync");
        assert_fsck_clean(&disk.image(), what);
    }
}

/// Freeing the clusters of a file whose part of the FAT is larger than the cache (a 4 MiB
/// file of 512-byte clusters: 8 dirty FAT pages, in a cache of 4) still writes the entry
/// first, then the FATs: no FAT block that frees the file's clusters reaches the disk while
/// the disk's entry still points at them. Checked twice: by the shape of the log (after the
/// sync before the operation, which has nothing to write, only writes outside the FATs, a
/// flush, FAT writes, a flush), and by `fsck.fat -n` on the image a stop after each write of
/// the operation would leave. (A cut that keeps clusters writes the FAT block ending the kept
/// chain before the others: `NFF`.)
#[test]
fn freeing_a_large_file_through_a_small_cache_writes_entries_first() {
    let mut vol = mount(mkfs("16", "1", "16384"), 4096);
    let data = SplitMix(12).bytes(4 << 20);
    vol.create("/big.bin").expect("create");
    assert_eq!(vol.write("/big.bin", 0, &data), Ok(data.len()));
    vol.create("/small.txt").expect("create");
    assert_eq!(vol.write("/small.txt", 0, b"small"), Ok(5));
    let image = synced(&mut vol);
    drop(vol);

    type Free = fn(&mut Volume<Recorder>);
    let frees: &[(&str, Free)] = &[
        ("remove", |v| v.remove("/big.bin").expect("remove")),
        ("cut", |v| v.truncate("/big.bin", 1000).expect("truncate")),
        ("rename over", |v| v.rename("/small.txt", "/big.bin").expect("rename")),
    ];
    let mut failures = Vec::new();
    for &(op, free) in frees {
        let disk = Recorder::new(image.clone(), true);
        let mut vol = mount_recorder(&disk, 4);
        let fat = fat_blocks(&vol);
        disk.take_log();
        free(&mut vol);
        let log = disk.take_log();
        let got = shape(&fat, &log);
        // A cut that keeps clusters writes the FAT block ending its chain before the rest.
        let expected = if op == "cut" { "NFF" } else { "NF" };
        if got != expected {
            failures.push(format!("{op}: the log's flush epochs are {got:?}, not {expected:?} (entries, then FATs)"));
        }
        let (writes, _) = writes_and_flushes(&log);
        let mut cut = image.clone();
        for (k, write) in writes.iter().enumerate() {
            apply(&mut cut, std::slice::from_ref(write));
            let (code, text) = fsck(&cut);
            if let Err(why) = fsck_verdict(code, &text) {
                failures.push(format!("{op}: a stop after write {} of {}: {why}", k + 1, writes.len()));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One step of the allocation burst.
enum Step {
    Mkdir(String),
    Create(String),
    Write(String, u64, Vec<u8>),
    Grow(String, u64),
}

fn do_step<D: Disk>(vol: &mut Volume<D>, step: &Step) {
    match step {
        Step::Mkdir(p) => vol.mkdir(p).expect("mkdir"),
        Step::Create(p) => vol.create(p).expect("create"),
        Step::Write(p, at, data) => assert_eq!(vol.write(p, *at, data), Ok(data.len()), "write {p}"),
        Step::Grow(p, len) => vol.truncate(p, *len).expect("grow"),
    }
}

/// A burst that only allocates (creates, writes, appends interleaved over many files, growing
/// `truncate`s): nothing is freed, so a cluster once in use stays in use.
fn allocation_burst() -> Vec<Step> {
    let mut rng = SplitMix(0xB0057);
    let mut steps = Vec::new();
    let mut files: Vec<(String, u64)> = Vec::new();
    for d in ["/one", "/two", "/two/three"] {
        steps.push(Step::Mkdir(d.to_string()));
    }
    for i in 0..160 {
        match rng.below(6) {
            0 | 1 if files.len() < 40 => {
                let dir = ["/", "/one", "/two", "/two/three"][rng.below(4) as usize];
                let path = join(dir, &format!("burst file {i}.bin"));
                steps.push(Step::Create(path.clone()));
                files.push((path, 0));
            }
            _ if files.is_empty() => {}
            2 => {
                let f = rng.below(files.len() as u64) as usize;
                files[f].1 += 1 + rng.below(9000);
                steps.push(Step::Grow(files[f].0.clone(), files[f].1));
            }
            _ => {
                let f = rng.below(files.len() as u64) as usize;
                let size = files[f].1;
                let at = if rng.below(3) == 0 { rng.below(size + 1) } else { size };
                let data = some_bytes(&mut rng, 1, 12_000);
                files[f].1 = size.max(at + data.len() as u64);
                steps.push(Step::Write(files[f].0.clone(), at, data));
            }
        }
    }
    steps
}

/// With a cache of 4 pages, evictions during a burst of creates and writes never let a write
/// outside the FATs reach the disk before the FAT changes it may rely on.
///
/// The check: the same burst runs twice from the same image, once through a cache larger than
/// the disk (which never evicts, so after each step its pages are exactly the volume's state
/// in memory) and once through the 4-page cache over a recording disk. From the first run we
/// know, for each cluster, after which step it is first marked in use in memory. The burst
/// frees nothing, so once marked a cluster stays marked. Replaying the second run's writes in
/// order onto the starting image, at every write outside the FATs issued during step `i`,
/// both FAT copies on the disk must already mark every cluster that steps before `i` had marked
/// (those changes were made before the write's page could have been dirtied by step `i`; the
/// cache writes all dirty FAT blocks before evicting any other dirty page, and `sync` writes
/// them first). Changes made by step `i` itself are not required (the page written may not
/// depend on them), so the check is sound; it fails if an eviction writes a data or directory
/// page while FAT blocks dirtied by an earlier step are still only in memory. Also: no write
/// outside the FATs follows a FAT write without a flush between, and both runs end with the
/// same image. Writes into clusters the disk's FATs still mark free are exempt (and must
/// occur: the burst makes directories, whose clusters go out before their FAT blocks).
#[test]
fn evictions_write_allocations_before_what_points_at_them() {
    let initial = mkfs("16", "1", "8192");
    let burst = allocation_burst();

    let mut twin = mount(initial.clone(), 4096);
    let g = twin.geometry;
    let fat_len = (g.fat_start + g.fat_size * u64::from(g.fat_count)) as usize;
    let clusters = 2..=g.max_cluster() as u64;
    // Step after which each cluster is first marked in use (0: before the burst).
    let mut marked_by = vec![usize::MAX; g.max_cluster() as usize + 1];
    for c in clusters.clone() {
        if fat_entry(&initial, &g, 0, c) != 0 {
            marked_by[c as usize] = 0;
        }
    }
    for (i, step) in burst.iter().enumerate() {
        do_step(&mut twin, step);
        let mut memory = vec![0u8; fat_len];
        twin.cache.borrow_mut().read_at(0, &mut memory).expect("read the FATs");
        for c in clusters.clone() {
            if marked_by[c as usize] == usize::MAX && fat_entry(&memory, &g, 0, c) != 0 {
                marked_by[c as usize] = i + 1;
            }
        }
    }
    assert_eq!(twin.cache_stats().evictions, 0, "the reference run evicted");
    let reference = synced(&mut twin);
    let mut by_step: Vec<(usize, u64)> = clusters
        .clone()
        .filter(|&c| (1..usize::MAX).contains(&marked_by[c as usize]))
        .map(|c| (marked_by[c as usize], c))
        .collect();
    by_step.sort();
    assert!(by_step.len() > 1000, "the burst allocates only {} clusters", by_step.len());

    let disk = Recorder::new(initial.clone(), true);
    let mut vol = mount_recorder(&disk, 4);
    let fat = fat_blocks(&vol);
    disk.take_log();
    // Log length at the end of each step; the final sync counts as one more step.
    let mut ends = Vec::new();
    for step in &burst {
        do_step(&mut vol, step);
        ends.push(disk.log_len());
    }
    vol.sync().expect("sync");
    ends.push(disk.log_len());
    assert!(vol.cache_stats().evictions > 200, "too few evictions: {:?}", vol.cache_stats());
    assert!(disk.image() == reference, "the burst through a 4-page cache left another image");

    let log = disk.take_log();
    let mut shadow = initial;
    let mut step = 1;
    let mut fat_since_flush = false;
    let mut checked_at: Option<(usize, u64)> = None;
    let mut fat_writes = 0u64;
    let mut checks = 0;
    let mut unreachable_writes = 0;
    for (k, event) in log.iter().enumerate() {
        while k >= ends[step - 1] {
            step += 1;
        }
        match event {
            Event::Flush => fat_since_flush = false,
            Event::Read { .. } => {}
            Event::Write { first, blocks, data } => {
                if in_fat(&fat, *first, *blocks) {
                    fat_since_flush = true;
                    fat_writes += 1;
                } else {
                    assert!(
                        !fat_since_flush,
                        "write {k} (blocks {first}+{blocks}, step {step}) follows a FAT write with no flush between"
                    );
                    // A write into clusters both FATs on the disk still mark free (a new
                    // directory's cluster, written before its FAT block) is harmless: nothing on
                    // the disk points at them.
                    let first_byte = *first * BLOCK as u64;
                    let last_byte = first_byte + *blocks * BLOCK as u64 - 1;
                    let free_on_disk = first_byte >= g.data_start
                        && (cluster_at(&g, first_byte)..=cluster_at(&g, last_byte))
                            .all(|c| (0..g.fat_count).all(|copy| fat_entry(&shadow, &g, copy, c) == 0));
                    if free_on_disk {
                        unreachable_writes += 1;
                    } else if checked_at != Some((step, fat_writes)) {
                        // The disk's FATs only change by FAT writes: check again only after one.
                        checks += 1;
                        for &(by, c) in by_step.iter().take_while(|&&(by, _)| by < step) {
                            for copy in 0..g.fat_count {
                                assert!(
                                    fat_entry(&shadow, &g, copy, c) != 0,
                                    "write {k} (blocks {first}+{blocks}) during step {step} reaches the disk while \
                                     FAT {copy} there still has cluster {c} free, which step {by} marked in use"
                                );
                            }
                        }
                        checked_at = Some((step, fat_writes));
                    }
                }
                let data = data.as_ref().expect("kept");
                let at = *first as usize * BLOCK;
                shadow[at..at + data.len()].copy_from_slice(data);
            }
        }
    }
    assert!(checks > 50, "only {checks} writes outside the FATs were checked");
    assert!(unreachable_writes > 0, "no new directory cluster was written ahead of its FAT block");
}

/// The cluster holding the disk byte `at` (in the data area).
fn cluster_at(g: &Geometry, at: u64) -> u64 {
    2 + (at - g.data_start) / u64::from(g.cluster_size)
}

// ---------------------------------------------------------------------------------------------
// 5. Read-ahead.
// ---------------------------------------------------------------------------------------------

/// Disk blocks per cache page.
const PAGE_BLOCKS: u64 = (crate::PAGE_SIZE / BLOCK) as u64;

/// The reads of a log, as (first block, blocks).
fn reads(log: &[Event]) -> Vec<(u64, u64)> {
    log.iter()
        .filter_map(|e| if let Event::Read { first, blocks } = e { Some((*first, *blocks)) } else { None })
        .collect()
}

/// An image holding `/big.bin`, 4 MiB in one run of 4 KiB clusters, and its contents.
fn image_with_a_contiguous_file() -> (Vec<u8>, Vec<u8>) {
    let mut vol = mount(mkfs("16", "8", "16384"), 2048);
    let data = SplitMix(5).bytes(4 << 20);
    vol.create("/big.bin").expect("create");
    assert_eq!(vol.write("/big.bin", 0, &data), Ok(data.len()));
    let chain = chain_in_volume(&vol, first_cluster(&vol, "/big.bin"));
    assert_eq!(chain.len(), 1024);
    assert!(chain.windows(2).all(|w| w[1] == w[0] + 1), "/big.bin is not contiguous");
    (synced(&mut vol), data)
}

/// Reading a 4 MiB contiguous file from start to end through a 512-page cache takes few disk
/// requests (one per 256 KiB read-ahead, and the metadata) and reads no block twice; through
/// an 8-page cache, no request is larger than half the cache.
#[test]
fn a_sequential_read_takes_few_disk_requests() {
    let (image, data) = image_with_a_contiguous_file();
    let disk = Recorder::new(image.clone(), false);
    let vol = mount_recorder(&disk, 512);
    let mounting = reads(&disk.take_log());
    assert!(read_all(&vol, "/big.bin", 64 << 10) == data, "contents");
    let reading = reads(&disk.take_log());
    let blocks: u64 = reading.iter().map(|&(_, n)| n).sum();
    assert!(
        mounting.len() + reading.len() <= 20,
        "mounting took {mounting:?}, reading {} requests: {reading:?}",
        reading.len()
    );
    // The file, the directory, and at most one read-ahead past the file's end.
    assert!(blocks <= (4 << 20) / BLOCK as u64 + 64 * PAGE_BLOCKS, "{blocks} blocks read for 4 MiB: {reading:?}");

    let disk = Recorder::new(image, false);
    let vol = mount_recorder(&disk, 8);
    assert!(read_all(&vol, "/big.bin", 10_000) == data, "contents through 8 pages");
    let all = reads(&disk.take_log());
    assert!(
        all.iter().all(|&(_, n)| n <= 4 * PAGE_BLOCKS),
        "a read-ahead larger than half of an 8-page cache: {all:?}"
    );
    assert!(all.len() <= 1024 / 4 + 16, "{} requests through 8 pages", all.len());
}

/// Random 4 KiB reads of a cold volume read at most the random window (8 pages) per request,
/// unless the request goes on exactly where the previous one ended (the sequential window),
/// one request per miss at most, and every read returns the file's bytes.
#[test]
fn random_reads_read_ahead_only_the_small_window() {
    let (image, data) = image_with_a_contiguous_file();
    let disk = Recorder::new(image, false);
    let vol = mount_recorder(&disk, 512);
    let mut rng = SplitMix(6);
    let calls = 400;
    for _ in 0..calls {
        let at = rng.below(data.len() as u64 - 4096) as usize;
        let mut buf = [0u8; 4096];
        assert_eq!(vol.read("/big.bin", at as u64, &mut buf), Ok(4096));
        assert!(buf[..] == data[at..at + 4096], "read at {at}");
    }
    let all = reads(&disk.take_log());
    let mut previous_end = None;
    for &(first, blocks) in &all {
        assert!(
            blocks <= 8 * PAGE_BLOCKS || previous_end == Some(first),
            "a read of {blocks} blocks at block {first} continues no earlier read (previous end {previous_end:?})"
        );
        previous_end = Some(first + blocks);
    }
    assert!(all.len() <= calls + 10, "{} disk reads for {calls} reads", all.len());
    let small = all.iter().filter(|&&(_, n)| n <= 8 * PAGE_BLOCKS).count();
    assert!(small * 10 >= all.len() * 9, "most random misses should read the small window: {all:?}");
}

// ---------------------------------------------------------------------------------------------
// 6. New directory clusters.
// ---------------------------------------------------------------------------------------------

/// `image` with every free data cluster filled with random bytes, as a disk that once held
/// deleted files is: a directory cluster that reaches the disk before its zeroes, `.` and `..`
/// would read as garbage entries.
fn with_garbage_in_free_clusters(mut image: Vec<u8>) -> Vec<u8> {
    let g = Geometry::parse(image[..512].try_into().expect("boot sector"), image.len() as u64).expect("geometry");
    let mut rng = SplitMix(0x6A4B);
    for c in 2..=u64::from(g.max_cluster()) {
        if fat_entry(&image, &g, 0, c) == 0 {
            let at = g.cluster_offset(c).expect("a data cluster") as usize;
            let len = g.cluster_size as usize;
            image[at..at + len].copy_from_slice(&rng.bytes(len));
        }
    }
    image
}

/// Directories made and grown, with a stop simulated after every write: no stop may leave an
/// entry or a FAT link pointing at a directory cluster whose zeroes, `.` and `..` are not yet
/// on the disk (before, a parent's entry on a lower block than the new directory's cluster went
/// out first, and the crash test found `Expected a valid '.' entry in this slot`). The free
/// clusters hold garbage, the parent directories are full (so adding an entry grows them by a
/// cluster, linked in the FAT), files are made again in the slots others left (names split
/// across two existing clusters), and a 4-page cache evicts in the middle of the operations.
/// Every image a stop leaves also mounts and lists.
#[test]
fn new_directory_clusters_reach_the_disk_before_what_points_at_them() {
    let mut failures = Vec::new();
    for (what, image) in ordering_images() {
        let mut vol = mount(with_garbage_in_free_clusters(image), 4096);
        vol.mkdir("/full").expect("mkdir");
        // 512-byte clusters hold 16 slots: `.`, `..` and 14 short names fill the first one.
        for i in 0..14 {
            vol.create(&format!("/full/F{i}.TXT")).expect("create");
        }
        for i in 0..20 {
            vol.create(&format!("/R{i}.TXT")).expect("create");
        }
        let image = synced(&mut vol);
        drop(vol);
        assert_fsck_clean(&image, what);

        for pages in [4, 4096] {
            let disk = Recorder::new(image.clone(), true);
            let mut vol = mount_recorder(&disk, pages);
            disk.take_log();
            vol.mkdir("/full/sub").expect("mkdir in a full directory");
            vol.mkdir("/full/sub/deeper").expect("mkdir below a new one");
            vol.mkdir("/top").expect("mkdir in the root");
            for i in 0..20 {
                vol.create(&format!("/full/sub/file {i} with a long name.txt")).expect("create");
            }
            vol.create("/full/LAST.TXT").expect("create");
            vol.sync().expect("sync");
            assert!(vol.cache.borrow().pages() <= pages, "{what}: {} pages held", vol.cache.borrow().pages());
            let writes = writes_and_flushes(&disk.take_log()).0;
            if let Err(why) = stop_after_every_write(&image, &writes) {
                failures.push(format!("{what}, {pages} pages: {why}"));
            }
            assert_fsck_clean(&disk.image(), what);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replays `writes` onto `image` one at a time: the image a stop after each would leave must
/// satisfy `fsck.fat -n` (an unclean stop's leftovers accepted) and mount and list.
fn stop_after_every_write(image: &[u8], writes: &[(u64, Rc<[u8]>)]) -> Result<(), String> {
    let mut cut = image.to_vec();
    for (k, write) in writes.iter().enumerate() {
        apply(&mut cut, std::slice::from_ref(write));
        let (code, text) = fsck(&cut);
        fsck_verdict(code, &text).map_err(|why| format!("a stop after write {} of {}: {why}", k + 1, writes.len()))?;
        try_tree(&mount(cut.clone(), 64)).map_err(|why| format!("after write {}: the volume: {why}", k + 1))?;
    }
    Ok(())
}

/// A long name split across two clusters of a directory whose chain runs from a higher
/// cluster to a lower one: its first slots lie on a higher block than its last ones and its
/// 8.3 entry. Made again in slots that others left (no cluster allocated), the entries go out
/// in the order they were written, start first: a stop leaves at most an orphaned start, never
/// a fragment `fsck.fat` will not repair (which ascending block order would leave).
#[test]
fn long_names_split_across_clusters_go_out_start_first() {
    let mut failures = Vec::new();
    for (what, image) in ordering_images() {
        let mut vol = mount(with_garbage_in_free_clusters(image), 4096);
        vol.create("/hole.bin").expect("create");
        assert_eq!(vol.write("/hole.bin", 0, &[0x55; 2048]), Ok(2048));
        vol.mkdir("/dir").expect("mkdir");
        let names: Vec<String> = (0..20).map(|i| format!("/dir/file {i} with a long name.txt")).collect();
        for name in &names {
            vol.create(name).expect("create");
        }
        let hole = first_cluster(&vol, "/hole.bin");
        let dir = first_cluster(&vol, "/dir");
        vol.remove("/hole.bin").expect("remove");
        let mut image = synced(&mut vol);
        drop(vol);
        // Move the directory's second cluster down into the hole.
        let g = Geometry::parse(image[..512].try_into().expect("boot sector"), image.len() as u64).expect("geometry");
        let chain = chain_in_image(&image, &g, dir);
        assert!(chain.len() >= 4 && hole < dir, "{what}: chain {chain:?}, hole {hole}");
        let (from, to) = (chain[1], hole);
        let (a, b) = (g.cluster_offset(from).expect("data") as usize, g.cluster_offset(to).expect("data") as usize);
        let len = g.cluster_size as usize;
        let moved = image[a..a + len].to_vec();
        image[b..b + len].copy_from_slice(&moved);
        set_fat_entry(&mut image, &g, chain[0], to);
        set_fat_entry(&mut image, &g, to, chain[2]);
        set_fat_entry(&mut image, &g, from, 0);
        assert_fsck_clean(&image, what);

        let disk = Recorder::new(image.clone(), true);
        let mut vol = mount_recorder(&disk, 4096);
        for name in &names {
            vol.remove(name).expect("remove");
        }
        for name in &names {
            vol.create(name).expect("create again");
        }
        assert_eq!(chain_in_image(&disk.image(), &g, dir).len(), chain.len(), "{what}: the directory grew");
        vol.sync().expect("sync");
        let log = disk.take_log();
        let writes = writes_and_flushes(&log).0;
        if let Err(why) = stop_after_every_write(&image, &writes) {
            failures.push(format!("{what}: {why}"));
        }
        assert_fsck_clean(&disk.image(), what);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 7. A file's first cluster.
// ---------------------------------------------------------------------------------------------

/// Writing to new files on a FAT32 volume whose first 32,768 clusters are in use looks at few
/// FAT entries: a file's first cluster is searched from where the last search ended, not from
/// cluster 2 (before, each first write read every FAT entry of the used part: over 32,768 cache
/// lookups). The free count in FSInfo stays right although hadris-fat did not make these
/// allocations: after writes, a write refused for want of space (the file keeps no cluster)
/// and removals, `fsck.fat -n` finds the image clean, and so it does for the image mounted
/// again and written on.
#[test]
fn a_new_files_first_cluster_is_found_from_the_last_one() {
    let mut vol = mount(mkfs("32", "1", "34816"), 4096);
    assert_eq!(vol.fat_type(), FatType::Fat32);
    let big = SplitMix(71).bytes(16 << 20);
    vol.create("/big.bin").expect("create");
    assert_eq!(vol.write("/big.bin", 0, &big), Ok(big.len()));
    let page = [0x5A; 4096];
    let mut firsts = Vec::new();
    for i in 0..50 {
        let path = format!("/w{i}");
        vol.create(&path).expect("create");
        let before = vol.cache_stats();
        assert_eq!(vol.write(&path, 0, &page), Ok(page.len()));
        let lookups = vol.cache_stats().hits + vol.cache_stats().misses - before.hits - before.misses;
        assert!(lookups < 2000, "writing {path}'s first 4 KiB took {lookups} cache lookups");
        firsts.push(first_cluster(&vol, &path));
    }
    assert!(firsts.windows(2).all(|w| w[1] > w[0]), "first clusters not in order: {firsts:?}");
    vol.create("/too big").expect("create");
    let free = 34816 << 10;
    assert_eq!(vol.write("/too big", 0, &vec![1; free]), Err(FsError::NoSpace));
    assert_eq!(vol.stat("/too big").map(|m| m.size), Ok(0));
    assert_eq!(first_cluster(&vol, "/too big"), 0, "a refused first write kept its cluster");
    for i in (0..50).step_by(3) {
        vol.remove(&format!("/w{i}")).expect("remove");
    }
    let image = synced(&mut vol);
    assert_fsck_clean(&image, "after first clusters, a refusal and removals");
    drop(vol);
    let mut vol = mount(image, 4096);
    for i in 0..20 {
        let path = format!("/again {i}");
        vol.create(&path).expect("create");
        assert_eq!(vol.write(&path, 0, &page[..100 * i + 1]), Ok(100 * i + 1));
        vol.truncate(&path, 5000).expect("grow");
    }
    vol.create("/grown").expect("create");
    vol.truncate("/grown", 70_000).expect("grow an empty file");
    assert_eq!(read_all(&vol, "/grown", 4096), vec![0; 70_000]);
    assert_fsck_clean(&synced(&mut vol), "mounted again and written on");
}

/// Cutting a file whose chain crosses from a lower FAT page to a higher one (its second
/// cluster lies past another file's 2,100, and a 4 KiB page holds 2,048 FAT16 entries): the block that ends the kept chain reaches the disk
/// before the one freeing the rest, so no stop leaves the kept chain running into a freed
/// cluster (before, FAT blocks went out highest first, freeing first; the crash test found
/// `Contains a free cluster`).
#[test]
fn a_cut_ends_the_chain_before_freeing_the_rest() {
    let mut vol = mount(mkfs("16", "1", "8192"), 4096);
    vol.create("/a").expect("create");
    assert_eq!(vol.write("/a", 0, &[1; 512]), Ok(512));
    vol.create("/filler").expect("create");
    assert_eq!(vol.write("/filler", 0, &[2; 2100 * 512]), Ok(2100 * 512));
    assert_eq!(vol.write("/a", 512, &[3; 1024]), Ok(1024));
    let chain = chain_in_volume(&vol, first_cluster(&vol, "/a"));
    assert!(chain.len() == 3 && chain[1] >= chain[0] + 2100, "the chain of /a: {chain:?}");
    let image = synced(&mut vol);
    drop(vol);

    let disk = Recorder::new(image.clone(), true);
    let mut vol = mount_recorder(&disk, 4096);
    disk.take_log();
    vol.truncate("/a", 100).expect("cut");
    let writes = writes_and_flushes(&disk.take_log()).0;
    if let Err(why) = stop_after_every_write(&image, &writes) {
        panic!("cutting /a: {why}");
    }
    vol.sync().expect("sync");
    assert_fsck_clean(&disk.image(), "after the cut");
}

// ---------------------------------------------------------------------------------------------
// 8. Moving a file; a chain growing backwards.
// ---------------------------------------------------------------------------------------------

/// The contents of `path` on `vol`, or `None` if nothing has that name.
fn contents(vol: &Volume<MemDisk>, path: &str) -> Option<Vec<u8>> {
    match vol.stat(path) {
        Err(FsError::NotFound) => None,
        Err(e) => panic!("stat {path}: {e}"),
        Ok(_) => Some(read_all(vol, path, 4096)),
    }
}

/// Moves of files and directories whose old and new entries lie in different blocks (to
/// another directory, over a file there, within a directory of many entries, to the root; long
/// and 8.3 names; empty and not) on FAT32. A stop after any write of a move and its sync leaves
/// an image `fsck.fat -n` accepts, never two entries owning the same clusters; mounting that
/// image (which finishes a move whose intent reached the disk) shows the file (or a file inside
/// the directory) whole under exactly one name, the new one once the old entry's deletion
/// reached the disk, leaves the intent cleared, and a moved directory's `..` pointing at its
/// parent (the volume's own check). Without the intent, a
/// stop between the old entry's deletion and the new one's completion would lose the file: the
/// test checks that some stop does land there.
#[test]
fn a_stop_during_a_move_leaves_the_file_whole_under_one_name() {
    let mut vol = mount(mkfs("32", "1", "34816"), 4096);
    let mut rng = SplitMix(21);
    for dir in ["/a", "/b"] {
        vol.mkdir(dir).expect("mkdir");
    }
    for i in 0..40 {
        let path = format!("/b/filler {i}");
        vol.create(&path).expect("create");
        assert_eq!(vol.write(&path, 0, &rng.bytes(100 + i)), Ok(100 + i));
    }
    // (from, to, the file whose contents are checked, relative to from and to).
    let moves: [(&str, &str, &str); 8] = [
        ("/a/A file with a long name.txt", "/b/Moved, with another long name.txt", ""),
        ("/a/SHORT.TXT", "/b/short2.txt", ""),
        ("/a/empty", "/b/still empty", ""),
        ("/a/over.bin", "/b/filler 3", ""),
        ("/b/filler 0", "/b/a new name after all the others in the same directory", ""),
        ("/a/a directory", "/b/the directory, moved", "/inner file.txt"),
        ("/a/a directory", "/the directory at the top", "/inner file.txt"),
        ("/b/filler dir", "/a/DIR", "/sub/deeper.txt"),
    ];
    let files = [
        ("/a/A file with a long name.txt", 3000),
        ("/a/SHORT.TXT", 700),
        ("/a/empty", 0),
        ("/a/over.bin", 5000),
        ("/a/a directory/inner file.txt", 2500),
        ("/b/filler dir/sub/deeper.txt", 1200),
    ];
    for dir in ["/a/a directory", "/b/filler dir", "/b/filler dir/sub"] {
        vol.mkdir(dir).expect("mkdir");
    }
    for (path, len) in files {
        vol.create(path).expect("create");
        assert_eq!(vol.write(path, 0, &rng.bytes(len)), Ok(len));
    }
    // A directory cannot move into itself or below itself.
    assert_eq!(vol.rename("/a/a directory", "/a/a directory/x"), Err(FsError::InvalidPath));
    assert_eq!(vol.rename("/b/filler dir", "/b/filler dir/sub/x"), Err(FsError::InvalidPath));
    let base = synced(&mut vol);
    let g = vol.geometry;
    let fsinfo = u64::from(u16::from_le_bytes([base[48], base[49]])) * u64::from(g.bytes_per_sector);
    drop(vol);
    let mut windows = 0;
    let mut failures = Vec::new();
    for &(from_entry, to_entry, inner) in &moves {
        let (from, to) = (&format!("{from_entry}{inner}")[..], &format!("{to_entry}{inner}")[..]);
        let before = mount(base.clone(), 64);
        let (data, replaced) = (contents(&before, from).expect(from), contents(&before, to));
        drop(before);
        let disk = Recorder::new(base.clone(), true);
        let mut vol = mount_recorder(&disk, 4096);
        vol.rename(from_entry, to_entry).expect("rename");
        vol.sync().expect("sync");
        let writes = writes_and_flushes(&disk.take_log()).0;
        let mut cut = base.clone();
        for k in 0..=writes.len() {
            if k > 0 {
                apply(&mut cut, std::slice::from_ref(&writes[k - 1]));
            }
            let at = format!("{from} -> {to}, a stop after write {k} of {}", writes.len());
            let (code, text) = fsck(&cut);
            match fsck_verdict(code, &text) {
                Ok(found) if found.iter().any(|f| f.starts_with("Reclaimed")) => windows += 1,
                Ok(_) => {}
                Err(why) => failures.push(format!("{at}: {why}")),
            }
            let mut vol = mount(cut.clone(), 64);
            let (old, new) = (contents(&vol, from), contents(&vol, to));
            let whole = match (&old, &new) {
                (Some(old), new) => *old == data && (new.is_none() || *new == replaced),
                (None, Some(new)) => *new == data,
                (None, None) => false,
            };
            if !whole {
                failures.push(format!(
                    "{at}: mounted, the old name holds {:?} bytes and the new one {:?} (the file has {})",
                    old.map(|o| o.len()),
                    new.map(|n| n.len()),
                    data.len()
                ));
            }
            let image = synced(&mut vol);
            let start = (fsinfo + 4) as usize;
            if image[start..start + 64].iter().any(|&b| b != 0) {
                failures.push(format!("{at}: the intent is still set after mounting"));
            }
            let (code, text) = fsck(&image);
            if let Err(why) = fsck_verdict(code, &text) {
                failures.push(format!("{at}: after mounting: {why}"));
            }
            let report = crate::check(&mut MemDisk::from_bytes(image, 512).expect("image")).expect("check");
            if report.verdict() == crate::Verdict::Damaged {
                failures.push(format!("{at}: after mounting, the volume's own check: {report}"));
            }
        }
        let done = mount(disk.image(), 64);
        assert_eq!((contents(&done, from), contents(&done, to)), (None, Some(data)), "{from} -> {to}");
        assert_fsck_clean(&disk.image(), to);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(windows > 0, "no stop fell between the old entry's deletion and the new one's completion");
}

/// A file growing into clusters below its last one (allocation wrapped round to the start of
/// the volume: the file ends at the volume's last cluster, and a removed file freed the first
/// ones): each new link from the old end reaches the disk only after the new clusters'
/// entries, in lower FAT blocks, so a stop after any write of the sync leaves lost clusters
/// at worst, never a chain running into a free cluster. Written highest block first, as
/// before, the link went out first.
#[test]
fn a_chain_growing_into_lower_clusters_links_them_last() {
    for (what, image) in ordering_images() {
        let mut vol = mount(image, 4096);
        let g = vol.geometry;
        let cluster = g.cluster_size as usize;
        let mut rng = SplitMix(31);
        vol.create("/low.bin").expect("create");
        assert_eq!(vol.write("/low.bin", 0, &rng.bytes(600 * cluster)), Ok(600 * cluster));
        // Everything but one cluster (FAT32's root takes one more) to the filler.
        let root = u64::from(g.fat_type == FatType::Fat32);
        let fill = (u64::from(g.cluster_count) - root - 600 - 1) as usize * cluster;
        vol.create("/fill.bin").expect("create");
        assert_eq!(vol.write("/fill.bin", 0, &vec![0x66; fill]), Ok(fill));
        vol.create("/grows.bin").expect("create");
        assert_eq!(vol.write("/grows.bin", 0, &rng.bytes(cluster)), Ok(cluster));
        vol.remove("/low.bin").expect("remove");
        let image = synced(&mut vol);
        let end = first_cluster(&vol, "/grows.bin");
        assert_eq!(end, u64::from(g.max_cluster()), "{what}: the file does not end the volume");
        drop(vol);
        let disk = Recorder::new(image.clone(), true);
        let mut vol = mount_recorder(&disk, 4096);
        let more = rng.bytes(3 * cluster);
        assert_eq!(vol.write("/grows.bin", cluster as u64, &more), Ok(more.len()));
        vol.sync().expect("sync");
        let chain = chain_in_image(&disk.image(), &g, end);
        assert!(chain.len() == 4 && chain[1] < 700, "{what}: the file did not grow into low clusters: {chain:?}");
        let writes = writes_and_flushes(&disk.take_log()).0;
        if let Err(why) = stop_after_every_write(&image, &writes) {
            panic!("{what}: chain {chain:?}: {why}");
        }
        assert_fsck_clean(&disk.image(), what);
    }
}
