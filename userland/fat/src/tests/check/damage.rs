//! One image per kind of problem: each made by editing the bytes of a clean image, found as
//! exactly that problem with the entry's path, and judged by `fsck.fat -n` alike (leftover or
//! damage); and where the check knowingly says more than `fsck.fat`.

use super::image::{chain, eoc, fat_get, fat_set, fat_set_copy, find, free_cluster, put_le};
use super::{assert_clean_like_fsck, check_image, fsck_image, fsck_verdict, geometry, mkfs, put, volume_image};
use crate::boot::{Geometry, Root};
use crate::tests::{SplitMix, TempDir, run, s};
use crate::{Problem, Verdict};

/// A FAT16 image (2 KiB clusters) from `mkfs.fat`, filled by mtools in a known order:
/// `/B.TXT` (2 clusters), `/EMPTY.TXT`, `/FILE.TXT` (3 clusters), `/DIR` holding `IN.TXT` and
/// `SUB` (holding `DEEP`), an empty `/a long name.txt` and a 2-cluster `/another long name.dat`, and `/MANY`
/// holding `F0.TXT` to `F7.TXT`.
fn fat16_base() -> Vec<u8> {
    let tmp = TempDir::new("check-base16");
    let img = tmp.join("img");
    std::fs::write(&img, mkfs("16", "4", "16384", &[])).expect("image");
    let img = s(&img);
    let mut rng = SplitMix(16);
    let host = |name: &str, len: usize, rng: &mut SplitMix| {
        let path = tmp.join(name);
        put(&path, &rng.bytes(len));
        path
    };
    for (name, len, to) in [
        ("B.TXT", 3000, "::/"),
        ("EMPTY.TXT", 0, "::/"),
        ("FILE.TXT", 5000, "::/"),
        ("IN.TXT", 100, "::/DIR/"),
        ("a long name.txt", 0, "::/"),
        ("another long name.dat", 3000, "::/"),
    ] {
        if to == "::/DIR/" {
            run("mmd", &["-i", img, "::/DIR", "::/DIR/SUB", "::/DIR/SUB/DEEP"]);
        }
        let path = host(name, len, &mut rng);
        run("mcopy", &["-i", img, s(&path), to]);
    }
    run("mmd", &["-i", img, "::/MANY"]);
    for i in 0..8 {
        let path = host(&format!("F{i}.TXT"), 10, &mut rng);
        run("mcopy", &["-i", img, s(&path), "::/MANY/"]);
    }
    std::fs::read(tmp.join("img")).expect("image")
}

/// A FAT32 image (512-byte clusters, 80,628 of them) from `mkfs.fat` with `/FILE.TXT` (5000
/// bytes) and `/DIR/IN.TXT`.
fn fat32_base() -> Vec<u8> {
    let tmp = TempDir::new("check-base32");
    let img = tmp.join("img");
    std::fs::write(&img, mkfs("32", "1", "40960", &[])).expect("image");
    let img = s(&img);
    let file = tmp.join("FILE.TXT");
    put(&file, &SplitMix(32).bytes(5000));
    run("mcopy", &["-i", img, s(&file), "::/"]);
    run("mmd", &["-i", img, "::/DIR"]);
    run("mcopy", &["-i", img, s(&file), "::/DIR/IN.TXT"]);
    std::fs::read(tmp.join("img")).expect("image")
}

/// Writes a volume label entry `name` into the first free slot of a FAT12/16 root directory.
fn add_label_entry(image: &mut [u8], g: &Geometry, name: &[u8; 11]) {
    let Root::Fixed { start, size } = g.root else { panic!("a FAT12/16 image") };
    let at = (start as usize..(start + size) as usize).step_by(32).find(|&at| image[at] == 0).expect("a free slot");
    image[at..at + 32].fill(0);
    image[at..at + 11].copy_from_slice(name);
    image[at + 11] = 0x08;
}

/// The FSInfo sector's free count of a FAT32 image: (offset, value).
fn fsinfo_free(image: &[u8]) -> (usize, u32) {
    let at = u16::from_le_bytes([image[48], image[49]]) as usize * 512 + 488;
    (at, u32::from_le_bytes(image[at..at + 4].try_into().unwrap()))
}

type Damage = fn(&mut Vec<u8>, &Geometry) -> Vec<Problem>;

/// Damages `base` as `damage` says and checks that [`check`] reports exactly the problems it
/// returns, and that the crash test's reading of `fsck.fat -n`
/// (`vessel_test_harness::fsck::verdict`) is `fsck_says`, or if `None` the check's own verdict:
/// an image with only [`Problem::leftover`]s is accepted, anything else damaged.
fn assert_damage(base: &[u8], what: &str, damage: Damage, fsck_says: Option<Verdict>) -> Result<(), String> {
    let mut image = base.to_vec();
    let g = geometry(base);
    let want = damage(&mut image, &g);
    let report = check_image(&image);
    if report.problems != want {
        return Err(format!("{what}: the check found\n{report}\n{:#?}\ninstead of\n{want:#?}", report.problems));
    }
    let (code, text) = fsck_image(&image);
    let theirs = fsck_verdict(code, &text);
    if theirs != fsck_says.unwrap_or(report.verdict()) {
        return Err(format!(
            "{what}: fsck.fat's verdict is {theirs:?}, the check's {:?}:\n{report}\n{text}",
            report.verdict()
        ));
    }
    Ok(())
}

/// Each kind of problem, made by editing the bytes of a clean image, found as exactly that
/// problem (and the ones it implies, as `fsck.fat` sees them too) with the entry's path; and
/// `fsck.fat -n` judges it alike: leftover or damage.
#[test]
fn each_kind_of_damage_is_found_and_judged_like_fsck() {
    let base16 = fat16_base();
    assert_clean_like_fsck(&base16, "the FAT16 base");
    let base32 = fat32_base();
    assert_clean_like_fsck(&base32, "the FAT32 base");
    use crate::{BackupFault, DotEntry, DotFault, LabelFault, LongNameFault, StartFault};

    let fat16: &[(&str, Damage)] = &[
        // Leftovers.
        ("lost cluster", |image, g| {
            let c = free_cluster(image, g, 100);
            fat_set(image, g, c, eoc(g.fat_type));
            vec![Problem::LostClusters { clusters: 1, bytes: 2048 }]
        }),
        ("chain longer than its file", |image, g| {
            let file = find(image, "/FILE.TXT");
            let last = *chain(image, g, file.start).last().unwrap();
            let extra = free_cluster(image, g, 100);
            fat_set(image, g, last, extra);
            fat_set(image, g, extra, eoc(g.fat_type));
            vec![Problem::ChainTooLong { path: "/FILE.TXT".into(), size: 5000, extra_clusters: 1, extra_bytes: 2048 }]
        }),
        ("FAT copies differ", |image, g| {
            let c = free_cluster(image, g, 100);
            fat_set_copy(image, g, 1, c, eoc(g.fat_type));
            vec![Problem::FatsDiffer]
        }),
        ("dirty bit in the boot sector", |image, _| {
            image[0x25] |= 1;
            vec![Problem::DirtyBit]
        }),
        ("dirty bit in FAT entry 1", |image, g| {
            let v = fat_get(image, g, 0, 1);
            fat_set(image, g, 1, v & !0x8000);
            vec![Problem::DirtyBit]
        }),
        ("orphaned long name", |image, _| {
            let entry = find(image, "/a long name.txt");
            image[entry.at] = 0xE5;
            vec![Problem::OrphanedLongName { dir: "/".into(), name: "a long name.txt".into() }]
        }),
        // Damage.
        ("boot sector", |image, _| {
            put_le(image, 11, 500, 2);
            vec![Problem::BootInvalid { reason: "bytes per sector is not 512, 1024, 2048 or 4096" }]
        }),
        ("chain loop", |image, g| {
            let file = find(image, "/FILE.TXT");
            let clusters = chain(image, g, file.start);
            fat_set(image, g, clusters[2], clusters[0]);
            vec![Problem::ChainLoops { path: "/FILE.TXT".into(), clusters: 3 }]
        }),
        ("chain loop in a subdirectory", |image, g| {
            let file = find(image, "/DIR/IN.TXT");
            fat_set(image, g, file.start, file.start);
            vec![Problem::ChainLoops { path: "/DIR/IN.TXT".into(), clusters: 1 }]
        }),
        ("chain into a free cluster", |image, g| {
            let file = find(image, "/FILE.TXT");
            let clusters = chain(image, g, file.start);
            fat_set(image, g, clusters[2], 0);
            vec![
                Problem::ChainBroken { path: "/FILE.TXT".into(), cluster: clusters[2], bad: false },
                Problem::ChainTooShort { path: "/FILE.TXT".into(), size: 5000, chain_bytes: 4096 },
            ]
        }),
        ("chain into a bad cluster", |image, g| {
            let file = find(image, "/FILE.TXT");
            let clusters = chain(image, g, file.start);
            fat_set(image, g, clusters[2], 0xFFF7);
            vec![
                Problem::ChainBroken { path: "/FILE.TXT".into(), cluster: clusters[2], bad: true },
                Problem::ChainTooShort { path: "/FILE.TXT".into(), size: 5000, chain_bytes: 4096 },
            ]
        }),
        ("chain out of the data area", |image, g| {
            let file = find(image, "/FILE.TXT");
            let last = *chain(image, g, file.start).last().unwrap();
            let value = g.max_cluster() + 5;
            fat_set(image, g, last, value);
            vec![Problem::FatEntryOutOfRange { cluster: last, value }]
        }),
        ("shared cluster", |image, g| {
            let b = find(image, "/B.TXT");
            let empty = find(image, "/EMPTY.TXT");
            put_le(image, empty.at + 26, b.start.into(), 2);
            put_le(image, empty.at + 28, b.size.into(), 4);
            let _ = g;
            vec![
                Problem::SharedCluster { path: "/EMPTY.TXT".into(), cluster: b.start },
                Problem::ChainTooShort { path: "/EMPTY.TXT".into(), size: 3000, chain_bytes: 0 },
            ]
        }),
        ("chain shorter than its file", |image, _| {
            let b = find(image, "/B.TXT");
            put_le(image, b.at + 28, 9000, 4);
            vec![Problem::ChainTooShort { path: "/B.TXT".into(), size: 9000, chain_bytes: 4096 }]
        }),
        ("first cluster past the end", |image, g| {
            let empty = find(image, "/EMPTY.TXT");
            let cluster = g.max_cluster() + 10;
            put_le(image, empty.at + 26, cluster.into(), 2);
            vec![Problem::BadStart { path: "/EMPTY.TXT".into(), cluster, fault: StartFault::BeyondEnd }]
        }),
        ("first cluster 1", |image, _| {
            let empty = find(image, "/EMPTY.TXT");
            put_le(image, empty.at + 26, 1, 2);
            vec![Problem::BadStart { path: "/EMPTY.TXT".into(), cluster: 1, fault: StartFault::ClusterOne }]
        }),
        ("directory starting at the root", |image, _| {
            let dir = find(image, "/DIR");
            put_le(image, dir.at + 26, 0, 2);
            vec![
                Problem::BadStart { path: "/DIR".into(), cluster: 0, fault: StartFault::Root },
                Problem::LostClusters { clusters: 4, bytes: 4 * 2048 },
            ]
        }),
        ("directory starting at its parent", |image, _| {
            let dir = find(image, "/DIR");
            let sub = find(image, "/DIR/SUB");
            put_le(image, sub.at + 26, dir.start.into(), 2);
            vec![
                Problem::BadStart { path: "/DIR/SUB".into(), cluster: dir.start, fault: StartFault::OwnDirectory },
                Problem::LostClusters { clusters: 2, bytes: 2 * 2048 },
            ]
        }),
        ("directory starting at its parent's parent", |image, _| {
            let dir = find(image, "/DIR");
            let deep = find(image, "/DIR/SUB/DEEP");
            put_le(image, deep.at + 26, dir.start.into(), 2);
            vec![
                Problem::BadStart {
                    path: "/DIR/SUB/DEEP".into(),
                    cluster: dir.start,
                    fault: StartFault::ParentDirectory,
                },
                Problem::LostClusters { clusters: 1, bytes: 2048 },
            ]
        }),
        ("directory with a size", |image, _| {
            let dir = find(image, "/DIR");
            put_le(image, dir.at + 28, 100, 4);
            vec![Problem::DirectoryHasSize { path: "/DIR".into(), size: 100 }]
        }),
        ("wrong ..", |image, g| {
            let sub = find(image, "/DIR/SUB");
            let at = g.cluster_offset(sub.start.into()).unwrap() as usize + 32;
            put_le(image, at + 26, 0, 2);
            vec![Problem::BadDotEntry { path: "/DIR/SUB".into(), entry: DotEntry::DotDot, fault: DotFault::Wrong }]
        }),
        ("missing .", |image, g| {
            let dir = find(image, "/DIR");
            let at = g.cluster_offset(dir.start.into()).unwrap() as usize;
            image[at] = 0xE5;
            vec![Problem::BadDotEntry { path: "/DIR".into(), entry: DotEntry::Dot, fault: DotFault::Missing }]
        }),
        ("long name without its start", |image, _| {
            let entry = find(image, "/another long name.dat");
            assert_eq!(entry.slots.len(), 2);
            image[entry.slots[0]] &= !0x40;
            let fragment = Problem::BadLongName { dir: "/".into(), fault: LongNameFault::Fragment };
            vec![fragment.clone(), fragment]
        }),
        ("long name with a wrong checksum", |image, _| {
            let entry = find(image, "/another long name.dat");
            for &slot in &entry.slots {
                image[slot + 13] ^= 0x5A;
            }
            vec![Problem::BadLongName { dir: "/".into(), fault: LongNameFault::Checksum }]
        }),
        ("long name restarted", |image, _| {
            let entry = find(image, "/another long name.dat");
            image[entry.slots[1]] = 0x41;
            vec![Problem::BadLongName { dir: "/".into(), fault: LongNameFault::Restarted }]
        }),
        ("long name out of sequence", |image, _| {
            let entry = find(image, "/another long name.dat");
            image[entry.slots[1]] = 0x03;
            vec![Problem::BadLongName { dir: "/".into(), fault: LongNameFault::Sequence }]
        }),
        ("long-name slots with different checksums", |image, _| {
            let entry = find(image, "/another long name.dat");
            image[entry.slots[1] + 13] ^= 1;
            vec![Problem::BadLongName { dir: "/".into(), fault: LongNameFault::SlotChecksum }]
        }),
        ("unfinished long name", |image, _| {
            let entry = find(image, "/another long name.dat");
            image[entry.slots[0]] = 0x43;
            image[entry.slots[1]] = 0x02;
            vec![Problem::BadLongName { dir: "/".into(), fault: LongNameFault::Unfinished }]
        }),
        ("long-name slot with a reserved byte set", |image, _| {
            let entry = find(image, "/another long name.dat");
            image[entry.slots[1] + 12] = 1;
            vec![Problem::BadLongName { dir: "/".into(), fault: LongNameFault::SlotFields }]
        }),
        ("entry in the slot of .", |image, g| {
            let dir = find(image, "/DIR");
            let at = g.cluster_offset(dir.start.into()).unwrap() as usize;
            image[at..at + 32].fill(0);
            image[at..at + 11].copy_from_slice(b"GARBAGE TXT");
            vec![Problem::BadDotEntry { path: "/DIR".into(), entry: DotEntry::Dot, fault: DotFault::Displaced }]
        }),
        (". flagged as having no 8.3 name", |image, g| {
            let dir = find(image, "/DIR");
            image[g.cluster_offset(dir.start.into()).unwrap() as usize + 12] |= 0x20;
            vec![Problem::BadDotEntry { path: "/DIR".into(), entry: DotEntry::Dot, fault: DotFault::NoNameFlag }]
        }),
        ("label entry only in the root", |image, g| {
            add_label_entry(image, g, b"MYLABEL    ");
            vec![Problem::Label { fault: LabelFault::NotInBoot }]
        }),
        ("invalid label entry", |image, g| {
            add_label_entry(image, g, b"MY.LABEL   ");
            vec![Problem::Label { fault: LabelFault::EntryInvalid }]
        }),
        ("labels differ", |image, g| {
            add_label_entry(image, g, b"MYLABEL    ");
            image[43..54].copy_from_slice(b"OTHER      ");
            vec![Problem::Label { fault: LabelFault::Differ }]
        }),
        ("invalid label in the boot sector", |image, _| {
            image[43..54].copy_from_slice(b"BAD*LABEL  ");
            vec![Problem::Label { fault: LabelFault::BootInvalid }]
        }),
        ("first FAT without media entry", |image, g| {
            image[g.fat_start as usize + 1] = 0;
            vec![Problem::FatCopyCorrupt { copy: 0 }]
        }),
        ("invalid 8.3 name", |image, _| {
            let b = find(image, "/B.TXT");
            image[b.at + 1] = b'?';
            vec![Problem::BadShortName { path: "/B?.TXT".into() }]
        }),
        ("two entries with one 8.3 name", |image, _| {
            let b = find(image, "/B.TXT");
            let empty = find(image, "/EMPTY.TXT");
            image.copy_within(b.at..b.at + 11, empty.at);
            vec![Problem::DuplicateName { path: "/B.TXT".into() }]
        }),
        ("directory of garbage", |image, _| {
            let mut want = vec![Problem::ManyBadEntries { path: "/MANY".into(), bad: 5, total: 8 }];
            for i in 0..5 {
                let f = find(image, &format!("/MANY/F{i}.TXT"));
                image[f.at + 1] = b'*';
                want.push(Problem::BadShortName { path: "/MANY/F*.TXT".into() });
            }
            want
        }),
        ("label only in the boot sector", |image, _| {
            image[43..54].copy_from_slice(b"SOMETHING  ");
            vec![Problem::Label { fault: LabelFault::NoEntry }]
        }),
        ("second FAT without media entry", |image, g| {
            image[(g.fat_start + g.fat_size) as usize + 1] = 0;
            vec![Problem::FatCopyCorrupt { copy: 1 }]
        }),
        ("no FAT with a media entry", |image, g| {
            image[g.fat_start as usize + 1] = 0;
            image[(g.fat_start + g.fat_size) as usize + 1] = 0;
            vec![Problem::FatUnusable]
        }),
    ];
    let fat32: &[(&str, Damage)] = &[
        ("FSInfo free count", |image, _| {
            let (at, free) = fsinfo_free(image);
            put_le(image, at, (free + 5).into(), 4);
            vec![Problem::FreeCountWrong { recorded: Some(free + 5), actual: free }]
        }),
        ("lost cluster and the free count", |image, g| {
            let c = free_cluster(image, g, 100);
            fat_set(image, g, c, eoc(g.fat_type));
            let (at, free) = fsinfo_free(image);
            put_le(image, at, (free - 1).into(), 4);
            vec![
                Problem::LostClusters { clusters: 1, bytes: 512 },
                Problem::FreeCountWrong { recorded: Some(free - 1), actual: free },
            ]
        }),
        ("dirty bit in FAT entry 1", |image, g| {
            let v = fat_get(image, g, 0, 1);
            fat_set(image, g, 1, v & !0x0800_0000);
            vec![Problem::DirtyBit]
        }),
        ("FSInfo signature", |image, _| {
            let (at, free) = fsinfo_free(image);
            image[at - 488 + 1] ^= 0x40;
            vec![Problem::FsInfoInvalid, Problem::FreeCountWrong { recorded: None, actual: free }]
        }),
        ("backup boot sector differs", |image, _| {
            image[6 * 512 + 90] ^= 1;
            vec![Problem::BackupBootSector { fault: BackupFault::Differs { first: 90, count: 1 } }]
        }),
        ("no backup boot sector", |image, _| {
            put_le(image, 50, 0, 2);
            vec![Problem::BackupBootSector { fault: BackupFault::Missing }]
        }),
        ("FAT32 root loop", |image, g| {
            let Root::Chain(root) = g.root else { unreachable!() };
            fat_set(image, g, root, root);
            vec![Problem::ChainLoops { path: "/".into(), clusters: 1 }]
        }),
        ("directory starting at the FAT32 root", |image, g| {
            let Root::Chain(root) = g.root else { unreachable!() };
            let dir = find(image, "/DIR");
            put_le(image, dir.at + 26, root.into(), 2);
            vec![
                Problem::BadStart { path: "/DIR".into(), cluster: root, fault: StartFault::OwnDirectory },
                Problem::LostClusters { clusters: 11, bytes: 11 * 512 },
                Problem::FreeCountWrong { recorded: Some(fsinfo_free(image).1), actual: fsinfo_free(image).1 + 11 },
            ]
        }),
    ];
    let mut failures = Vec::new();
    let few = mkfs("32", "1", "20480", &[]);
    let few_clusters: Damage = |_, g| vec![Problem::FewClustersForFat32 { clusters: g.cluster_count }];
    failures.extend(assert_damage(&few, "FAT32 with few clusters", few_clusters, None).err());
    for &(what, damage) in fat16 {
        failures.extend(assert_damage(&base16, &format!("FAT16: {what}"), damage, None).err());
    }
    for &(what, damage) in fat32 {
        failures.extend(assert_damage(&base32, &format!("FAT32: {what}"), damage, None).err());
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        fat16.len() + fat32.len(),
        failures.join("\n\n")
    );
}

/// Where the check knowingly says more than `fsck.fat`: a file whose chain runs, past the
/// file's end, into an earlier entry's clusters (a leftover to `fsck.fat`, whose repair would
/// free the other entry's clusters; damage here: [`Problem::TailCrossLinked`]); a directory
/// longer than FAT's 2 MiB limit (`fsck.fat` reads on; [`Volume`] refuses to enter one) and
/// directories nested more than [`crate::MAX_DEPTH`] deep (`fsck.fat` recurses until a path is
/// 1023 bytes long), damage here and clean to `fsck.fat`.
#[test]
fn where_the_check_says_more_than_fsck() {
    let base16 = fat16_base();
    let too_large: Damage = |image, g| {
        let sub = find(image, "/DIR/SUB");
        let mut last = sub.start;
        for _ in 0..(2 << 20) / g.cluster_size {
            let next = free_cluster(image, g, last + 1);
            fat_set(image, g, last, next);
            fat_set(image, g, next, eoc(g.fat_type));
            last = next;
        }
        vec![Problem::DirectoryTooLarge { path: "/DIR/SUB".into() }]
    };
    // /B.TXT (2 clusters) is read before /FILE.TXT (3 clusters). FILE's last cluster linked to
    // B's first makes FILE's chain run, past FILE's end, into B's: fsck.fat has B's clusters
    // already, and says only "a chain longer than its file", which its repair would cut by
    // freeing B's clusters. Linked the other way round (B's last into FILE's second), fsck.fat
    // frees FILE's clusters as B's tail and then finds FILE's chain broken: damage to both.
    let cross_linked: Damage = |image, g| {
        let b = find(image, "/B.TXT");
        let file = find(image, "/FILE.TXT");
        let last = chain(image, g, file.start)[2];
        fat_set(image, g, last, b.start);
        vec![
            Problem::ChainTooLong { path: "/FILE.TXT".into(), size: 5000, extra_clusters: 2, extra_bytes: 4096 },
            Problem::TailCrossLinked { path: "/FILE.TXT".into(), cluster: b.start },
        ]
    };
    let other_way: Damage = |image, g| {
        let b = find(image, "/B.TXT");
        let file_chain = chain(image, g, find(image, "/FILE.TXT").start);
        let last = chain(image, g, b.start)[1];
        fat_set(image, g, last, file_chain[1]);
        vec![
            Problem::ChainTooLong { path: "/B.TXT".into(), size: 3000, extra_clusters: 2, extra_bytes: 4096 },
            Problem::ChainBroken { path: "/FILE.TXT".into(), cluster: file_chain[1], bad: false },
            Problem::ChainTooShort { path: "/FILE.TXT".into(), size: 5000, chain_bytes: 2048 },
        ]
    };
    let mut failures = Vec::new();
    let into_earlier = "a chain past its end into an earlier file's";
    failures.extend(assert_damage(&base16, into_earlier, cross_linked, Some(Verdict::Leftovers)).err());
    failures.extend(assert_damage(&base16, "a chain past its end into a later file's", other_way, None).err());
    failures.extend(assert_damage(&base16, "directory over 2 MiB", too_large, Some(Verdict::Clean)).err());

    let deep = volume_image(16 << 20, "", |vol| {
        let mut path = String::new();
        for _ in 0..=crate::MAX_DEPTH {
            path.push_str("/d");
            vol.mkdir(&path).expect("mkdir");
        }
    });
    let too_deep: Damage = |_, _| vec![Problem::TooDeep { path: "/d".repeat(crate::MAX_DEPTH as usize + 1) }];
    failures.extend(assert_damage(&deep, "directories nested too deep", too_deep, Some(Verdict::Clean)).err());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
