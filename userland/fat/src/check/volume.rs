//! Checks of the volume as a whole, outside the directory tree: FAT32's own sectors (the
//! cluster count, the backup boot sector, FSInfo) before the walk; the label, the lost clusters,
//! the dirty bit and the free and used counts after it.
//!
//! Invariants: the boot sector is the one the check read and parsed; the closing counts only
//! read the FAT and the ownership bitmap the walk left, in one pass over the FAT's used part.

use hadris_fat::sync::FatType;

use super::names::bad_label;
use super::problem::{BackupFault, LabelFault, Problem};
use super::reader::{Reader, le16, le32};
use super::report::Report;
use super::walk::Walk;
use crate::boot::{BOOT_SECTOR, Geometry};
use crate::disk::{Disk, DiskError};

/// What `fsck.fat` prints for a boot sector without a label.
const NO_NAME: [u8; 11] = *b"NO NAME    ";

/// FAT32's own sectors: the cluster count, the backup boot sector, FSInfo. Returns the FSInfo
/// free count `fsck.fat` would compare (`Some(None)`: "unknown"), or `None` on FAT12/16.
pub(super) fn check_fat32_sectors<D: Disk>(
    reader: &mut Reader<'_, D>,
    g: &Geometry,
    boot: &[u8; BOOT_SECTOR],
    report: &mut Report,
) -> Result<Option<Option<u32>>, DiskError> {
    if g.fat_type != FatType::Fat32 {
        return Ok(None);
    }
    if g.cluster_count < 65525 {
        report.push(Problem::FewClustersForFat32 { clusters: g.cluster_count });
    }
    let sector = u64::from(g.bytes_per_sector);
    let backup = u64::from(le16(boot, 50)) * sector;
    if backup == 0 {
        report.push(Problem::BackupBootSector { fault: BackupFault::Missing });
    } else if backup + BOOT_SECTOR as u64 > g.volume_bytes {
        report.push(Problem::BackupBootSector { fault: BackupFault::OutsideVolume });
    } else {
        let mut copy = [0u8; BOOT_SECTOR];
        reader.read(backup, &mut copy)?;
        let differ = boot.iter().zip(&copy).enumerate().filter(|(_, (a, b))| a != b);
        let (mut first, mut count) = (None, 0u16);
        for (i, _) in differ {
            first.get_or_insert(i as u16);
            count += 1;
        }
        if let Some(first) = first {
            report.push(Problem::BackupBootSector { fault: BackupFault::Differs { first, count } });
        }
    }
    let mut info = [0u8; BOOT_SECTOR];
    reader.read(u64::from(le16(boot, 48)) * sector, &mut info)?;
    let valid = le32(&info, 0) == 0x4161_5252 && le32(&info, 484) == 0x6141_7272 && le32(&info, 508) == 0xAA55_0000;
    if !valid {
        // `fsck.fat` rewrites it (in memory) with an unknown free count.
        report.push(Problem::FsInfoInvalid);
        return Ok(Some(None));
    }
    Ok(Some(match le32(&info, 488) {
        0xFFFF_FFFF => None,
        n => Some(n),
    }))
}

impl<D: Disk> Walk<'_, '_, D> {
    /// The boot sector's label against the root's label entry (`fsck.fat`'s `check_label`).
    pub(super) fn check_label(&mut self, boot: &[u8; BOOT_SECTOR]) {
        let (sig, at) = if self.is_fat32() { (66, 71) } else { (38, 43) };
        let mut in_boot = [0u8; 11];
        if boot[sig] == 0x29 {
            in_boot.copy_from_slice(&boot[at..at + 11]);
        }
        let mut entry = self.label.filter(|l| l != &[0; 11]);
        if entry.is_none() && in_boot != NO_NAME {
            let fault = if bad_label(&in_boot) { LabelFault::BootInvalid } else { LabelFault::NoEntry };
            self.report.push(Problem::Label { fault });
            in_boot = NO_NAME;
        }
        if let Some(label) = entry.as_mut() {
            if label[0] == 0x05 {
                label[0] = 0xE5;
            }
            if bad_label(label) {
                self.report.push(Problem::Label { fault: LabelFault::EntryInvalid });
                entry = None;
            }
        }
        if let Some(label) = entry {
            if in_boot == NO_NAME && label != NO_NAME {
                self.report.push(Problem::Label { fault: LabelFault::NotInBoot });
            } else if in_boot != NO_NAME && in_boot != label {
                self.report.push(Problem::Label { fault: LabelFault::Differ });
            }
        }
    }

    /// Lost clusters, the dirty bit, the free count and the used count.
    pub(super) fn finish(&mut self, boot: &[u8; BOOT_SECTOR], free_recorded: Option<Option<u32>>) {
        // Free: neither held by an entry nor marked bad (held clusters are never bad).
        let mut lost = 0u32;
        let mut bad_clusters = 0u32;
        let bad = self.fat.bad_mark();
        let owned = &self.owned;
        self.fat.scan_used(|c, v| {
            if v == bad {
                bad_clusters += 1;
            } else if !owned.get(c) {
                lost += 1;
            }
        });
        let free = self.g.cluster_count.saturating_sub(self.owned_count).saturating_sub(bad_clusters);
        if lost > 0 {
            let bytes = u64::from(lost) * u64::from(self.g.cluster_size);
            self.report.push(Problem::LostClusters { clusters: lost, bytes });
        }
        let flags = match self.g.fat_type {
            FatType::Fat32 => boot[0x41],
            _ => boot[0x25],
        };
        let clean_mark = match self.g.fat_type {
            FatType::Fat12 => true,
            FatType::Fat16 => self.fat.get(1) & 0x8000 != 0,
            FatType::Fat32 => self.fat.get(1) & 0x0800_0000 != 0,
        };
        if flags & 1 != 0 || !clean_mark {
            self.report.push(Problem::DirtyBit);
        }
        if let Some(recorded) = free_recorded
            && recorded != Some(free)
        {
            self.report.push(Problem::FreeCountWrong { recorded, actual: free });
        }
        self.report.clusters_used = u64::from(self.g.cluster_count - free.min(self.g.cluster_count));
    }
}
