//! Clean images (from `mkfs.fat` and mtools, and from [`Volume`](crate::Volume)) check clean
//! with `fsck.fat`'s counts, through disks of any block size; and the report reads as its
//! documentation says.

use super::image::fat_set;
use super::{assert_clean_like_fsck, check_image, fill_with_mtools, fill_with_volume, geometry, mkfs, volume_image};
use crate::{FatType, MemDisk, Problem, Report, Verdict, check};

/// Images from `mkfs.fat` (FAT12, FAT16, FAT32), empty and filled by mtools, and images made
/// and filled by [`Volume`]: no problem, and `fsck.fat`'s counts. `fsck.fat`'s "files" are all
/// the entries it reads but the root, `.` and `..`: files, directories and volume labels
/// ([`Report::fsck_files`]); its used clusters are the clusters entries hold plus bad ones.
#[test]
fn clean_images_check_clean_with_fsck_counts() {
    let made = [
        ("FAT12 from mkfs.fat", mkfs("12", "1", "1440", &[]), FatType::Fat12, None),
        ("FAT16 from mkfs.fat", mkfs("16", "4", "16384", &[]), FatType::Fat16, Some("HOSTMADE")),
        ("FAT32 from mkfs.fat", mkfs("32", "1", "40960", &[]), FatType::Fat32, Some("THIRTYTWO")),
    ];
    for (what, empty, fat_type, label) in made {
        let report = assert_clean_like_fsck(&empty, &format!("{what}, empty"));
        assert_eq!(report.fat_type, Some(fat_type), "{what}");
        assert_eq!(report.fsck_files(), 0, "{what}");
        let filled = fill_with_mtools(empty, label);
        let report = assert_clean_like_fsck(&filled, &format!("{what}, filled by mtools"));
        // 7 files, 60 in /many, 5 directories, and the label if any.
        assert_eq!((report.files, report.directories), (67, 5), "{what}: {report}");
        assert_eq!(report.labels, u64::from(label.is_some()), "{what}: {report}");
    }
    let sizes =
        [("FAT12", 2 << 20, FatType::Fat12), ("FAT16", 16 << 20, FatType::Fat16), ("FAT32", 40 << 20, FatType::Fat32)];
    for (what, bytes, fat_type) in sizes {
        for label in ["", "VESSEL"] {
            let image = volume_image(bytes, label, fill_with_volume);
            let report = assert_clean_like_fsck(&image, &format!("{what} made by Volume, label {label:?}"));
            assert_eq!(report.fat_type, Some(fat_type));
            assert_eq!((report.files, report.directories), (46, 5), "{what}: {report}");
            assert!(report.to_string().starts_with("clean: "), "{report}");
        }
    }
}

/// The check reads through disks of any block size the same way (whole blocks, the boot
/// sector and FAT ends unaligned to 4 KiB blocks).
#[test]
fn block_size_does_not_change_the_report() {
    let image = fill_with_mtools(mkfs("16", "1", "8192", &[]), None);
    let small_blocks = check_image(&image);
    for block in [1024, 4096] {
        let mut disk = MemDisk::from_bytes(image.clone(), block).expect("whole blocks");
        assert_eq!(check(&mut disk), Ok(small_blocks.clone()), "{block}-byte blocks");
    }
    let mut empty = MemDisk::new(512, 0).expect("disk");
    let report = check(&mut empty).expect("check");
    assert_eq!(report.problems, [Problem::BootInvalid { reason: "the disk is smaller than a boot sector" }]);
    assert_eq!(report.verdict(), Verdict::Damaged);
}

/// The report's lines, sizes with units, the verdict from the problems, and the cap on
/// problems listed.
#[test]
fn report_reads_as_documented() {
    let mut report = Report {
        fat_type: Some(FatType::Fat32),
        files: 48,
        directories: 3,
        labels: 0,
        clusters_used: 4,
        clusters_total: 68528,
        problems: Vec::new(),
        omitted: crate::Omitted::default(),
    };
    assert_eq!(report.to_string(), "clean: FAT32, 48 files, 3 directories, 4/68528 clusters used");
    assert_eq!(report.verdict(), Verdict::Clean);
    let long = Problem::ChainTooLong { path: "/a/b.txt".into(), size: 100, extra_clusters: 3, extra_bytes: 12 << 10 };
    let lost = Problem::LostClusters { clusters: 3, bytes: 1536 };
    report.problems = vec![long.clone(), lost];
    assert_eq!(
        report.to_string(),
        "leftovers of an unclean stop: FAT32, 48 files, 3 directories, 4/68528 clusters used\n\
         /a/b.txt: cluster chain is 3 clusters longer than the file (12 KiB lost)\n\
         3 clusters (1.5 KiB) marked in use but in no entry's chain (lost)"
    );
    assert_eq!(report.verdict(), Verdict::Leftovers);
    report.omitted.damage = 1;
    assert_eq!(report.verdict(), Verdict::Damaged, "an omitted problem that is damage counts");
    assert!(report.to_string().ends_with("\nand 1 more problem"), "{report}");
    report.omitted.damage = 0;
    report.problems.push(Problem::ChainTooShort { path: "/c".into(), size: 5 << 20, chain_bytes: 512 });
    assert_eq!(report.verdict(), Verdict::Damaged);
    assert!(report.to_string().ends_with("\n/c: the file's size is 5 MiB but its cluster chain holds only 512 bytes"));

    // A FAT16 image with 2,500 FAT entries past the last cluster: 1,000 listed, the rest counted.
    let mut image = mkfs("16", "1", "8192", &[]);
    let g = geometry(&image);
    for c in 100..2600 {
        fat_set(&mut image, &g, c, g.max_cluster() + 1);
    }
    let report = check_image(&image);
    assert_eq!(report.problems.len(), crate::MAX_PROBLEMS);
    assert_eq!(report.omitted, crate::Omitted { leftovers: 1, damage: 1500 }, "the lost clusters are the last");
    assert_eq!(report.problems[0], Problem::FatEntryOutOfRange { cluster: 100, value: g.max_cluster() + 1 });
    assert!(report.to_string().ends_with("\nand 1501 more problems"));
}
