//! FAT through [`FileSystem`]: [`FatFs`] wraps a mounted [`Volume`] (on a block device or a
//! virtual storage file), and [`fat_time`] turns the clock's seconds into FAT's timestamps.
//!
//! FAT keeps local time to two seconds from 1980 to 2107 and has no time zone; `vfs` stores
//! UTC, so what the host's `mdir` shows is UTC.

use alloc::vec::Vec;

use vessel_device_protocol::DateTime;
use vessel_fat::{Disk, FatDateTime, FsError, Kind as FatKind, Timestamp, Volume};
use vessel_vfs_protocol::path::Path;
use vessel_vfs_protocol::{DirEntry, Kind};

use crate::fs::{FileSystem, Meta, Sink};

/// A FAT volume, driven by path.
pub struct FatFs<D: Disk> {
    volume: Volume<D>,
}

impl<D: Disk> FatFs<D> {
    /// Serves `volume`.
    pub fn new(volume: Volume<D>) -> FatFs<D> {
        FatFs { volume }
    }

    /// Syncs and gives the volume's disk back.
    pub fn unmount(self) -> Result<D, FsError> {
        Ok(self.volume.unmount()?.into_disk()?)
    }
}

fn kind(k: FatKind) -> Kind {
    match k {
        FatKind::File => Kind::File,
        FatKind::Dir => Kind::Dir,
    }
}

/// Seconds since 1970-01-01 of a FAT timestamp (0 for a damaged one).
pub fn unix_time(t: Timestamp) -> u64 {
    let date = DateTime { year: t.year, month: t.month, day: t.day, hour: t.hour, minute: t.minute, second: t.second };
    date.to_unix().unwrap_or(0)
}

/// The FAT timestamp of `seconds` since 1970-01-01 (clamped to FAT's 1980 to 2107).
pub fn fat_time(seconds: u64) -> FatDateTime {
    const FAT_START: u64 = 315_532_800; // 1980-01-01
    const FAT_END: u64 = 4_354_819_198; // 2107-12-31 23:59:58
    let d = DateTime::from_unix(seconds.clamp(FAT_START, FAT_END)).unwrap_or(DateTime {
        year: 1980,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    });
    Timestamp { year: d.year, month: d.month, day: d.day, hour: d.hour, minute: d.minute, second: d.second }.to_fat()
}

impl<D: Disk> FileSystem for FatFs<D> {
    fn stat(&mut self, path: &str) -> Result<Meta, FsError> {
        let m = self.volume.stat(path)?;
        Ok(Meta { kind: kind(m.kind), size: m.size, modified: unix_time(m.modified) })
    }

    fn read(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.volume.read(path, offset, buf)
    }

    fn read_to(&mut self, path: &str, offset: u64, len: usize, sink: &mut dyn Sink) -> Result<usize, FsError> {
        self.volume.read_to(path, offset, len, sink)
    }

    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        self.volume.write(path, offset, data)
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<(), FsError> {
        self.volume.truncate(path, len)
    }

    fn create(&mut self, path: &str) -> Result<(), FsError> {
        self.volume.create(path)
    }

    fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        self.volume.mkdir(path)
    }

    fn remove(&mut self, path: &str) -> Result<(), FsError> {
        self.volume.remove(path)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        self.volume.rename(from, to)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let entries = self.volume.read_dir(path)?;
        Ok(entries.into_iter().map(|e| DirEntry { name: e.name, kind: kind(e.kind), size: e.size }).collect())
    }

    fn sync(&mut self) -> Result<(), FsError> {
        self.volume.sync()
    }

    fn canonical(&mut self, path: &str) -> Result<Path, FsError> {
        self.volume.canonical(path).map(Path::from_absolute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_two_seconds() {
        for seconds in [315_532_800u64, 951_782_400, 1_700_000_000, 1_893_553_445, 4_354_819_198] {
            let back = unix_time(Timestamp::from_fat(fat_time(seconds)));
            assert_eq!(back, seconds - seconds % 2, "{seconds}");
        }
        // 2030-01-02 03:04:05, the harness's clock.
        let t = Timestamp::from_fat(fat_time(1_893_553_445));
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2030, 1, 2, 3, 4, 4));
        // Before FAT's epoch and past its end: clamped.
        assert_eq!(unix_time(Timestamp::from_fat(fat_time(0))), 315_532_800);
        assert_eq!(unix_time(Timestamp { year: 2000, month: 0, day: 1, hour: 0, minute: 0, second: 0 }), 0);
    }
}
