//! Images made on the host by `mkfs.fat` and filled by `mcopy`/`mmd`, read through `Volume`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{SplitMix, TempDir, fnv1a64, mount, read_all, run, s};
use crate::{FatType, FsError, Kind, Timestamp};

/// Seed of the benchmark image's `big.bin` (`../shared/bench/mkfatimage.sh`).
const BENCH_SEED: u64 = 0x5645_5353;
/// FNV-1a 64 of `big.bin`, as the benchmark script prints it.
const BENCH_BIG_FNV: u64 = 0xdf5d_efc5_10ac_1053;

/// File `i` of `/small`: 512 little-endian words, word `j` = `i << 32 | j`.
fn small_file(i: u64) -> Vec<u8> {
    (0..512u64).flat_map(|j| (i << 32 | j).to_le_bytes()).collect()
}

/// Writes a host file with the benchmark's timestamp (2024-01-01 00:00:00 UTC).
fn put(path: &Path, data: &[u8]) {
    std::fs::write(path, data).expect("write host file");
    let file = std::fs::File::options().write(true).open(path).expect("open host file");
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200)).expect("set mtime");
}

/// The benchmark image, built the way `mkfatimage.sh` builds it (same tools and options, the
/// contents generated here instead of by Python), plus a few files with long and non-ASCII names.
#[test]
fn reads_the_benchmark_image_made_by_mkfs_and_mcopy() {
    let tmp = TempDir::new("bench");
    let tree = tmp.join("tree");
    std::fs::create_dir_all(tree.join("small")).expect("tree");
    let big = SplitMix(BENCH_SEED).bytes(16 << 20);
    assert_eq!(fnv1a64(&big), BENCH_BIG_FNV, "generator differs from the benchmark script's");
    put(&tree.join("big.bin"), &big);
    let mut small_args = vec!["-i".to_string(), String::new(), "-m".to_string()];
    for i in 0..1000u64 {
        let path = tree.join("small").join(format!("f{i:04}"));
        put(&path, &small_file(i));
        small_args.push(s(&path).to_string());
    }
    small_args.push("::/small/".to_string());
    let long_text = b"a file whose name needs several long-name entries\n".repeat(40);
    put(&tree.join("Ünïcödé file näme.txt"), "héllo wörld, 日本語\n".as_bytes());
    put(&tree.join("a rather long file name with spaces.text"), &long_text);

    let img = tmp.join("bench.img");
    let img_s = s(&img);
    run(
        "mkfs.fat",
        &["-C", "--invariant", "-i", "56455353", "-F", "32", "-S", "512", "-s", "1", "--mbr=n", img_s, "65536"],
    );
    run("mcopy", &["-i", img_s, "-m", s(&tree.join("big.bin")), "::/big.bin"]);
    run("mmd", &["-i", img_s, "::/small"]);
    small_args[1] = img_s.to_string();
    run("mcopy", &small_args.iter().map(String::as_str).collect::<Vec<_>>());
    run("mmd", &["-i", img_s, "::/scratch"]);
    run("mmd", &["-i", img_s, "::/Ünïcödé dir", "::/Ünïcödé dir/nested"]);
    run("mcopy", &["-i", img_s, "-m", s(&tree.join("Ünïcödé file näme.txt")), "::/Ünïcödé dir/"]);
    run(
        "mcopy",
        &["-i", img_s, "-m", s(&tree.join("a rather long file name with spaces.text")), "::/Ünïcödé dir/nested/"],
    );

    let vol = mount(std::fs::read(&img).expect("image"), 256);
    assert_eq!(vol.fat_type(), FatType::Fat32);
    let root: Vec<(String, Kind)> = vol.read_dir("/").expect("root").into_iter().map(|e| (e.name, e.kind)).collect();
    let want = [("big.bin", Kind::File), ("small", Kind::Dir), ("scratch", Kind::Dir), ("Ünïcödé dir", Kind::Dir)];
    assert_eq!(root, want.map(|(n, k)| (n.to_string(), k)));

    let meta = vol.stat("/big.bin").expect("stat");
    assert_eq!((meta.kind, meta.size), (Kind::File, 16 << 20));
    assert_eq!(meta.modified, Timestamp { year: 2024, month: 1, day: 1, hour: 0, minute: 0, second: 0 });
    let read = read_all(&vol, "/big.bin", 64 << 10);
    assert_eq!(fnv1a64(&read), BENCH_BIG_FNV);
    assert!(read == big);
    // Reads at odd offsets and lengths, crossing cluster and page boundaries.
    let mut rng = SplitMix(7);
    for _ in 0..40 {
        let at = rng.below(16 << 20) as usize;
        let len = (rng.below(20_000) as usize).min((16 << 20) - at);
        let mut buf = vec![0u8; len];
        assert_eq!(vol.read("/big.bin", at as u64, &mut buf), Ok(len));
        assert!(buf == big[at..at + len], "big.bin at {at} len {len}");
    }

    let small = vol.read_dir("/small").expect("small");
    assert_eq!(small.len(), 1000);
    for (i, entry) in small.iter().enumerate() {
        assert_eq!((entry.name.as_str(), entry.kind, entry.size), (format!("f{i:04}").as_str(), Kind::File, 4096));
        // One lookup per file: each scans the 1,000-entry directory.
        let mut buf = [0u8; 4097];
        let path = format!("/small/{}", entry.name);
        assert_eq!(vol.read(&path, 0, &mut buf), Ok(4096), "{path}");
        assert!(buf[..4096] == small_file(i as u64), "{path}");
    }
    let mut part = [0u8; 3000];
    assert_eq!(vol.read("/small/f0999", 1000, &mut part), Ok(3000));
    assert_eq!(&part[..], &small_file(999)[1000..4000]);
    assert_eq!(vol.read_dir("/scratch"), Ok(vec![]));

    assert_eq!(read_all(&vol, "/Ünïcödé dir/Ünïcödé file näme.txt", 7), "héllo wörld, 日本語\n".as_bytes());
    assert_eq!(read_all(&vol, "/Ünïcödé dir/nested/a rather long file name with spaces.text", 100), long_text);

    // FAT names match regardless of case; `..` resolves lexically and stops at the root.
    assert_eq!(vol.stat("/BIG.BIN").map(|m| m.size), Ok(16 << 20));
    assert_eq!(vol.stat("/Small/F0999").map(|m| m.size), Ok(4096));
    assert_eq!(vol.stat("/../small/../big.bin").map(|m| m.size), Ok(16 << 20));
    assert_eq!(vol.stat("/nope"), Err(FsError::NotFound));
    assert_eq!(vol.stat("/big.bin/x"), Err(FsError::NotADirectory));
    assert_eq!(vol.read("/small", 0, &mut part), Err(FsError::IsADirectory));
    assert_eq!(vol.read_dir("/big.bin"), Err(FsError::NotADirectory));
    assert_eq!(vol.stat("big.bin"), Err(FsError::InvalidPath));
    assert_eq!(vol.cache_stats().disk_writes, 0, "reading wrote to the disk");
}

/// FAT12 and FAT16 images from `mkfs.fat`, with files in the fixed root directory, nested
/// directories, long and non-ASCII names and a file spanning many clusters.
#[test]
fn reads_fat12_and_fat16_images_made_by_mkfs() {
    for (fat, kib, want) in [("12", "2048", FatType::Fat12), ("16", "16384", FatType::Fat16)] {
        let tmp = TempDir::new("fat1x");
        let img = tmp.join("img");
        let img_s = s(&img);
        run("mkfs.fat", &["-C", "-F", fat, "-n", "HOSTMADE", img_s, kib]);
        let data = SplitMix(fat.len() as u64 + 3).bytes(300_001);
        put(&tmp.join("data.bin"), &data);
        put(&tmp.join("Grüße aus Köln.txt"), "Grüße!".as_bytes());
        run("mmd", &["-i", img_s, "::/dir one", "::/dir one/dir two"]);
        run("mcopy", &["-i", img_s, s(&tmp.join("data.bin")), "::/DATA.BIN"]);
        run("mcopy", &["-i", img_s, s(&tmp.join("data.bin")), "::/dir one/dir two/copy of data.bin"]);
        run("mcopy", &["-i", img_s, s(&tmp.join("Grüße aus Köln.txt")), "::/dir one/"]);

        let vol = mount(std::fs::read(&img).expect("image"), 16);
        assert_eq!(vol.fat_type(), want);
        let names: Vec<String> = vol.read_dir("/").expect("root").into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["dir one", "DATA.BIN"]);
        assert!(read_all(&vol, "/DATA.BIN", 10_000) == data);
        assert!(read_all(&vol, "/dir one/dir two/copy of data.bin", 777) == data);
        assert_eq!(read_all(&vol, "/dir one/Grüße aus Köln.txt", 3), "Grüße!".as_bytes());
        let sub: Vec<String> = vol.read_dir("/dir one").expect("dir").into_iter().map(|e| e.name).collect();
        assert_eq!(sub, ["dir two", "Grüße aus Köln.txt"]);
        assert_eq!(vol.cache_stats().disk_writes, 0);
    }
}
