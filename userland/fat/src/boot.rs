//! The boot sector: checking it and deriving where everything on the volume lies.
//!
//! [`Geometry::parse`] accepts a boot sector only if the layout it describes is self-consistent
//! and fits on the disk, so later offsets computed from it stay inside the volume. It decides the
//! FAT type exactly as hadris-fat does (FAT32 when both the root entry count and the 16-bit FAT
//! size are 0, otherwise FAT12 or FAT16 by cluster count), and computes the same region offsets,
//! so the two always agree on where a cluster lies. Beyond hadris-fat's own checks it refuses:
//! a volume larger than the disk, a data region that starts past the end of the volume or holds
//! no cluster, a FAT too small to describe every cluster, and a FAT32 FSInfo sector outside the
//! reserved area (hadris-fat writes to it).

use core::fmt;

use hadris_fat::sync::FatType;

/// Bytes of the boot sector the checks read.
pub(crate) const BOOT_SECTOR: usize = 512;

/// Why a boot sector was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BootError(pub &'static str);

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Where the root directory lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Root {
    /// FAT12/16: a fixed region of `size` bytes at byte `start`.
    Fixed { start: u64, size: u64 },
    /// FAT32: a cluster chain starting at this cluster.
    Chain(u32),
}

/// The layout of a FAT volume, in bytes from the start of the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub fat_type: FatType,
    pub bytes_per_sector: u32,
    pub cluster_size: u32,
    /// First byte of the first FAT.
    pub fat_start: u64,
    /// Bytes per FAT copy.
    pub fat_size: u64,
    pub fat_count: u8,
    pub root: Root,
    /// Byte where cluster 2 starts.
    pub data_start: u64,
    /// Number of data clusters: valid cluster numbers are `2..=cluster_count + 1`.
    pub cluster_count: u32,
    /// Bytes the volume claims (at most the disk's size).
    pub volume_bytes: u64,
}

fn u16_at(b: &[u8; BOOT_SECTOR], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8; BOOT_SECTOR], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Whether `sector` (a disk's first 512 bytes, or more) describes a FAT volume that fits on a
/// disk of `disk_bytes`: the check [`crate::Volume::open`] makes first, for a caller that wants
/// to know before it opens the disk for writing.
pub fn is_fat_volume(sector: &[u8], disk_bytes: u64) -> bool {
    sector
        .get(..BOOT_SECTOR)
        .and_then(|s| <&[u8; BOOT_SECTOR]>::try_from(s).ok())
        .is_some_and(|b| Geometry::parse(b, disk_bytes).is_ok())
}

impl Geometry {
    /// Checks the boot sector of a disk of `disk_bytes` bytes and derives the layout.
    pub fn parse(b: &[u8; BOOT_SECTOR], disk_bytes: u64) -> Result<Self, BootError> {
        if u16_at(b, 510) != 0xAA55 {
            return Err(BootError("no boot signature (0x55 0xAA at byte 510): not a FAT volume"));
        }
        let bytes_per_sector = u16_at(b, 11) as u32;
        if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) {
            return Err(BootError("bytes per sector is not 512, 1024, 2048 or 4096"));
        }
        let sectors_per_cluster = b[13] as u32;
        if !sectors_per_cluster.is_power_of_two() || sectors_per_cluster > 128 {
            return Err(BootError("sectors per cluster is not a power of two up to 128"));
        }
        let cluster_size = sectors_per_cluster * bytes_per_sector;
        if cluster_size > 32 * 1024 {
            return Err(BootError("clusters larger than 32 KiB are not supported"));
        }
        let reserved = u16_at(b, 14) as u64;
        if reserved == 0 {
            return Err(BootError("no reserved sectors (the boot sector is one)"));
        }
        let fat_count = b[16];
        if !matches!(fat_count, 1 | 2) {
            return Err(BootError("number of FATs is not 1 or 2"));
        }
        let root_entries = u16_at(b, 17) as u64;
        let total_sectors = match u16_at(b, 19) {
            0 => u32_at(b, 32) as u64,
            n => n as u64,
        };
        if total_sectors == 0 {
            return Err(BootError("total sector count is 0"));
        }
        let sector = bytes_per_sector as u64;
        let volume_bytes = total_sectors * sector;
        if volume_bytes > disk_bytes {
            return Err(BootError("the volume is larger than the disk (truncated image?)"));
        }
        let fat_sectors_16 = u16_at(b, 22) as u64;
        let fat32 = root_entries == 0 && fat_sectors_16 == 0;
        let fat_sectors = if fat32 { u32_at(b, 36) as u64 } else { fat_sectors_16 };
        if fat_sectors == 0 {
            return Err(BootError("FAT size is 0"));
        }
        let fat_start = reserved * sector;
        let fat_size = fat_sectors * sector;
        let root_bytes = root_entries * 32;
        let root_sectors = root_bytes.div_ceil(sector);
        let data_sector = reserved + fat_count as u64 * fat_sectors + root_sectors;
        if data_sector >= total_sectors {
            return Err(BootError("the data region starts past the end of the volume"));
        }
        let clusters = (total_sectors - data_sector) / sectors_per_cluster as u64;
        if clusters == 0 {
            return Err(BootError("the volume has no data cluster"));
        }
        let fat_type = if fat32 {
            if clusters > 0x0FFF_FFF5 {
                return Err(BootError("more clusters than FAT32 can address"));
            }
            FatType::Fat32
        } else if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            return Err(BootError("too many clusters for FAT12/16"));
        };
        let max_cluster = clusters + 1;
        let fat_needed = match fat_type {
            FatType::Fat12 => max_cluster * 3 / 2 + 2,
            FatType::Fat16 => (max_cluster + 1) * 2,
            FatType::Fat32 => (max_cluster + 1) * 4,
        };
        if fat_size < fat_needed {
            return Err(BootError("the FAT is too small for the number of clusters"));
        }
        let root = if fat32 {
            if u16_at(b, 42) != 0 {
                return Err(BootError("unsupported FAT32 version"));
            }
            let root_cluster = u32_at(b, 44);
            if !(2..=max_cluster).contains(&(root_cluster as u64)) {
                return Err(BootError("the FAT32 root directory cluster is out of range"));
            }
            let fs_info = u16_at(b, 48) as u64;
            if fs_info == 0 || fs_info >= reserved {
                return Err(BootError("the FAT32 FSInfo sector is not in the reserved area"));
            }
            Root::Chain(root_cluster)
        } else {
            Root::Fixed { start: fat_start + fat_count as u64 * fat_size, size: root_bytes }
        };
        Ok(Self {
            fat_type,
            bytes_per_sector,
            cluster_size,
            fat_start,
            fat_size,
            fat_count,
            root,
            data_start: data_sector * sector,
            cluster_count: clusters as u32,
            volume_bytes,
        })
    }

    /// Highest valid cluster number.
    pub fn max_cluster(&self) -> u32 {
        self.cluster_count + 1
    }

    /// Whether `cluster` names a data cluster of this volume.
    pub fn is_data_cluster(&self, cluster: u64) -> bool {
        (2..=self.max_cluster() as u64).contains(&cluster)
    }

    /// Byte offset of a data cluster, or `None` if it is not one.
    pub fn cluster_offset(&self, cluster: u64) -> Option<u64> {
        self.is_data_cluster(cluster).then(|| self.data_start + (cluster - 2) * self.cluster_size as u64)
    }

    /// Where `cluster`'s entry lies in each FAT copy: a disk offset and a length in bytes (the
    /// two bytes holding a FAT12 entry's 12 bits, which it shares with a neighbour's).
    pub fn fat_entry_spans(&self, cluster: u64) -> impl Iterator<Item = (u64, usize)> + '_ {
        let (offset, len) = match self.fat_type {
            FatType::Fat12 => (cluster * 3 / 2, 2),
            FatType::Fat16 => (cluster * 2, 2),
            FatType::Fat32 => (cluster * 4, 4),
        };
        (0..u64::from(self.fat_count)).map(move |copy| (self.fat_start + copy * self.fat_size + offset, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT16 boot sector for an 8 MiB disk: 2-sector clusters, two 32-sector FATs, 512 root
    /// entries.
    fn fat16_sector() -> [u8; BOOT_SECTOR] {
        let mut b = [0u8; BOOT_SECTOR];
        b[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 2;
        b[14..16].copy_from_slice(&4u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&16384u16.to_le_bytes());
        b[21] = 0xF8;
        b[22..24].copy_from_slice(&32u16.to_le_bytes());
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn accepts_a_consistent_fat16_layout() {
        let g = Geometry::parse(&fat16_sector(), 8 << 20).expect("valid");
        assert_eq!(g.fat_type, FatType::Fat16);
        assert_eq!(g.fat_start, 2048);
        assert_eq!(g.root, Root::Fixed { start: 2048 + 2 * 16384, size: 16384 });
        assert_eq!(g.data_start, 2048 + 2 * 16384 + 16384);
        assert_eq!(g.cluster_count, (16384 - 4 - 64 - 32) / 2);
        assert_eq!(g.cluster_offset(2), Some(g.data_start));
        assert_eq!(g.cluster_offset(1), None);
        assert_eq!(g.cluster_offset(g.max_cluster() as u64 + 1), None);
    }

    #[test]
    fn refuses_corrupt_boot_sectors_with_a_reason() {
        type Mutate = fn(&mut [u8; BOOT_SECTOR]);
        let cases: &[(Mutate, &str)] = &[
            (|b| b[510] = 0, "no boot signature"),
            (|b| b[11..13].copy_from_slice(&500u16.to_le_bytes()), "bytes per sector"),
            (|b| b[13] = 3, "sectors per cluster"),
            (|b| b[13] = 128, "larger than 32 KiB"),
            (|b| b[14..16].copy_from_slice(&[0, 0]), "no reserved sectors"),
            (|b| b[16] = 0, "number of FATs"),
            (|b| b[19..21].copy_from_slice(&[0, 0]), "total sector count is 0"),
            (|b| b[19..21].copy_from_slice(&20000u16.to_le_bytes()), "larger than the disk"),
            (|b| b[22..24].copy_from_slice(&1u16.to_le_bytes()), "FAT is too small"),
            (|b| b[14..16].copy_from_slice(&16300u16.to_le_bytes()), "data region starts past"),
        ];
        for (mutate, reason) in cases {
            let mut b = fat16_sector();
            mutate(&mut b);
            let err = Geometry::parse(&b, 8 << 20).expect_err(reason);
            assert!(err.0.contains(reason), "{reason}: got {err}");
        }
    }

    #[test]
    fn checks_fat32_fields() {
        let mut b = fat16_sector();
        b[17..19].copy_from_slice(&[0, 0]);
        b[22..24].copy_from_slice(&[0, 0]);
        b[13] = 1;
        b[14..16].copy_from_slice(&32u16.to_le_bytes());
        b[19..21].copy_from_slice(&[0, 0]);
        b[32..36].copy_from_slice(&(80u32 << 11).to_le_bytes()); // 80 MiB
        b[36..40].copy_from_slice(&1300u32.to_le_bytes());
        b[44..48].copy_from_slice(&2u32.to_le_bytes());
        b[48..50].copy_from_slice(&1u16.to_le_bytes());
        let g = Geometry::parse(&b, 80 << 20).expect("valid FAT32");
        assert_eq!(g.fat_type, FatType::Fat32);
        assert_eq!(g.root, Root::Chain(2));
        assert_eq!(g.data_start, (32 + 2 * 1300) * 512);
        b[48..50].copy_from_slice(&32u16.to_le_bytes());
        assert!(Geometry::parse(&b, 80 << 20).is_err());
        b[48..50].copy_from_slice(&1u16.to_le_bytes());
        b[44..48].copy_from_slice(&1u32.to_le_bytes());
        assert!(Geometry::parse(&b, 80 << 20).is_err());
    }
}
