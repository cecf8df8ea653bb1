//! `Volume` without host tools: what mounting refuses, what `format` picks, and when changes
//! reach the disk.

use std::cell::RefCell;
use std::rc::Rc;

use super::{CLOCK, TempDir, mount, run, s};
use crate::{Cache, Disk, DiskError, FatType, FsError, Kind, MemDisk, Volume};

/// `(first block, blocks)` of a write, or `None` for a flush.
type Request = Option<(u64, usize)>;

/// A disk whose bytes and request log outlive the volume using it.
#[derive(Clone)]
struct SharedDisk {
    bytes: Rc<RefCell<Vec<u8>>>,
    log: Rc<RefCell<Vec<Request>>>,
}

impl SharedDisk {
    fn new(len: usize) -> Self {
        Self { bytes: Rc::new(RefCell::new(vec![0; len])), log: Rc::default() }
    }
}

impl Disk for SharedDisk {
    fn block_size(&self) -> usize {
        512
    }
    fn blocks(&self) -> u64 {
        (self.bytes.borrow().len() / 512) as u64
    }
    fn read(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let start = first as usize * 512;
        buf.copy_from_slice(self.bytes.borrow().get(start..start + buf.len()).ok_or(DiskError::OutOfRange)?);
        Ok(())
    }
    fn write(&mut self, first: u64, data: &[u8]) -> Result<(), DiskError> {
        let start = first as usize * 512;
        self.bytes.borrow_mut().get_mut(start..start + data.len()).ok_or(DiskError::OutOfRange)?.copy_from_slice(data);
        self.log.borrow_mut().push(Some((first, data.len() / 512)));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.log.borrow_mut().push(None);
        Ok(())
    }
}

fn formatted(len: usize) -> Vec<u8> {
    let disk = MemDisk::new(512, (len / 512) as u64).expect("disk");
    let vol = Volume::format(Cache::new(disk, 64).expect("cache"), "", None).expect("format");
    vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes()
}

#[test]
fn mount_refuses_what_is_not_a_usable_fat_volume() {
    let open = |bytes: Vec<u8>| {
        let disk = MemDisk::from_bytes(bytes, 512).expect("disk");
        Volume::open(Cache::new(disk, 8).expect("cache"), None).err()
    };
    assert!(matches!(open(vec![0; 1 << 20]), Some(FsError::BadBootSector(why)) if why.contains("boot signature")));
    assert!(matches!(open(Vec::new()), Some(FsError::BadBootSector(_))));
    let mut cut = formatted(4 << 20);
    cut.truncate(2 << 20);
    assert!(matches!(open(cut), Some(FsError::BadBootSector(why)) if why.contains("larger than the disk")));
    let mut bad_fsinfo = formatted(40 << 20);
    bad_fsinfo[512] ^= 0xFF;
    assert_eq!(open(bad_fsinfo), Some(FsError::BadBootSector("bad FAT32 FSInfo signature")));
    let message = open(vec![0; 4096]).map(|e| e.to_string()).unwrap_or_default();
    assert!(message.starts_with("not a usable FAT volume: no boot signature"), "{message}");
}

#[test]
fn format_picks_the_fat_type_by_size() {
    let format = |len: usize, label: &str| {
        let disk = MemDisk::new(512, (len / 512) as u64).expect("disk");
        Volume::format(Cache::new(disk, 64).expect("cache"), label, None).map(|v| v.fat_type())
    };
    assert_eq!(format(1 << 20, "SMALL"), Ok(FatType::Fat12));
    assert_eq!(format(8 << 20, "MEDIUM"), Ok(FatType::Fat16));
    // hadris-fat's automatic choice fails at exactly 16 and 32 MiB (FAT12 with too many
    // clusters); `format` chooses the type itself.
    assert_eq!(format(16 << 20, ""), Ok(FatType::Fat16));
    assert_eq!(format(32 << 20, ""), Ok(FatType::Fat16));
    assert_eq!(format(40 << 20, "LARGE"), Ok(FatType::Fat32));
    assert!(matches!(format(100 << 10, ""), Err(FsError::FormatRefused(_))));
    // Every size formats to a volume fsck.fat accepts.
    let tmp = TempDir::new("formats");
    for mib in [1, 3, 8, 16, 32, 40] {
        let img = tmp.join(&format!("{mib}.img"));
        std::fs::write(&img, formatted(mib << 20)).expect("image");
        run("fsck.fat", &["-n", s(&img)]);
    }
    assert_eq!(format(1 << 20, "TWELVE CHARS"), Err(FsError::InvalidName));
    assert_eq!(format(1 << 20, "BAD:LABEL"), Err(FsError::InvalidName));
    // Disks with 4 KiB blocks work the same.
    let disk = MemDisk::new(4096, 2048).expect("disk");
    let mut vol = Volume::format(Cache::new(disk, 16).expect("cache"), "", None).expect("format");
    vol.create("/f").expect("create");
    vol.write("/f", 10, b"four k blocks").expect("write");
    let image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
    let vol = mount(image, 4);
    let mut buf = [1u8; 30];
    assert_eq!(vol.read("/f", 0, &mut buf), Ok(23));
    assert_eq!(&buf[..23], b"\0\0\0\0\0\0\0\0\0\0four k blocks");
}

/// Changes stay in the cache until `sync`; `sync` writes the FAT blocks (highest first), flushes,
/// then the rest in ascending block order, and flushes; a second `sync` with nothing changed
/// does nothing; a volume dropped without `sync` loses its changes.
#[test]
fn changes_reach_the_disk_only_on_sync() {
    let disk = SharedDisk::new(8 << 20);
    let vol = Volume::format(Cache::new(disk.clone(), 512).expect("cache"), "", Some(&CLOCK)).expect("format");
    assert_eq!(disk.log.borrow().last(), Some(&None), "format syncs");
    drop(vol);

    let mut vol = Volume::open(Cache::new(disk.clone(), 512).expect("cache"), Some(&CLOCK)).expect("mount");
    vol.mkdir("/dir").expect("mkdir");
    disk.log.borrow_mut().clear();
    vol.create("/dir/file").expect("create");
    vol.write("/dir/file", 0, &[7; 5000]).expect("write");
    assert!(disk.log.borrow().is_empty(), "a change reached the disk before sync");
    vol.sync().expect("sync");
    let log = disk.log.borrow().clone();
    assert_eq!(log.last(), Some(&None), "sync ends with a flush");
    // Two phases, each ended by a flush: the FAT blocks, highest first, then the rest ascending.
    let phases: Vec<Vec<(u64, usize)>> = log
        .split(Option::is_none)
        .map(|p| p.iter().flatten().copied().collect())
        .filter(|p: &Vec<_>| !p.is_empty())
        .collect();
    assert_eq!(phases.len(), 2, "FATs, flush, the rest, flush: {log:?}");
    assert!(phases[0].windows(2).all(|w| w[0].0 >= w[1].0 + w[1].1 as u64), "FATs not descending: {phases:?}");
    assert!(phases[1].windows(2).all(|w| w[0].0 + w[0].1 as u64 <= w[1].0), "not ascending: {phases:?}");
    assert!(
        phases[0]
            .last()
            .is_some_and(|f| f.0 < phases[1].iter().map(|w| w.0).filter(|&b| b > 1).min().unwrap_or(u64::MAX)),
        "the FATs lie below the data: {phases:?}"
    );

    // A sync with nothing changed since the last one writes nothing, not even a flush.
    disk.log.borrow_mut().clear();
    vol.sync().expect("sync again");
    assert!(disk.log.borrow().is_empty(), "a sync with nothing to write: {:?}", disk.log.borrow());

    // Unsynced changes are lost when the volume goes away.
    vol.create("/lost").expect("create");
    vol.write("/dir/file", 0, &[9; 10]).expect("write");
    drop(vol);
    let vol = Volume::open(Cache::new(disk, 16).expect("cache"), None).expect("mount");
    assert_eq!(vol.stat("/lost"), Err(FsError::NotFound));
    let mut buf = [0u8; 10];
    assert_eq!(vol.read("/dir/file", 0, &mut buf), Ok(10));
    assert_eq!(buf, [7; 10]);
    assert_eq!(vol.stat("/dir").map(|m| m.kind), Ok(Kind::Dir));
}

/// Writing at offsets, reading past the end, growing and cutting.
#[test]
fn file_data_semantics() {
    let mut vol = mount(formatted(2 << 20), 32);
    vol.create("/f").expect("create");
    assert_eq!(vol.write("/f", 0, b""), Ok(0));
    assert_eq!(vol.write("/f", 1000, b"abc"), Ok(3));
    assert_eq!(vol.stat("/f").map(|m| m.size), Ok(1003));
    let mut buf = [9u8; 2000];
    assert_eq!(vol.read("/f", 0, &mut buf), Ok(1003));
    assert!(buf[..1000].iter().all(|&b| b == 0));
    assert_eq!(&buf[1000..1003], b"abc");
    assert_eq!(vol.read("/f", 1003, &mut buf), Ok(0));
    assert_eq!(vol.read("/f", u64::MAX, &mut buf), Ok(0));
    assert_eq!(vol.write("/f", 999, b"XYZW"), Ok(4));
    assert_eq!(vol.read("/f", 998, &mut buf[..10]), Ok(5));
    assert_eq!(&buf[..5], b"\0XYZW");
    assert_eq!(vol.truncate("/f", 1), Ok(()));
    assert_eq!(vol.truncate("/f", 5000), Ok(()));
    assert_eq!(vol.read("/f", 0, &mut buf), Ok(2000));
    assert!(buf.iter().all(|&b| b == 0));
    assert_eq!(vol.truncate("/f", u64::MAX), Err(FsError::FileTooLarge));
    assert_eq!(vol.read("/", 0, &mut buf), Err(FsError::IsADirectory));
    assert_eq!(vol.truncate("/", 0), Err(FsError::IsADirectory));
    // A volume with no space left refuses to grow a file and keeps what it had.
    assert_eq!(vol.write("/f", 0, &vec![1u8; 3 << 20]), Err(FsError::NoSpace));
    assert_eq!(vol.stat("/f").map(|m| m.size), Ok(5000));
    vol.create("/g").expect("create");
    assert_eq!(vol.write("/g", 0, &vec![2u8; 3 << 20]), Err(FsError::NoSpace));
    assert_eq!(vol.stat("/g").map(|m| m.size), Ok(0));
    // The failed appends gave their clusters back: the volume is consistent.
    let image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
    let tmp = TempDir::new("nospace");
    std::fs::write(tmp.join("img"), &image).expect("image");
    run("fsck.fat", &["-n", s(&tmp.join("img"))]);
}

/// A file whose chain comes back to one of its own clusters before the file ends (to itself,
/// or to its first cluster from its third) is refused as corrupt when read, written or grown:
/// before, a walk bounded only by the file's length read the same cluster again as if it were
/// the file's next bytes.
#[test]
fn a_chain_that_comes_back_to_its_own_cluster_is_corrupt() {
    for (what, back) in [("to itself", 0usize), ("to its first", 2)] {
        let mut vol = mount(mkfs_image("16", "1", "4096"), 64);
        vol.create("/f").expect("create");
        assert_eq!(vol.write("/f", 0, &[3; 5000]), Ok(5000));
        let first = {
            let mut image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
            let g = crate::boot::Geometry::parse(image[..512].try_into().expect("sector"), image.len() as u64)
                .expect("geometry");
            // The file's clusters lie in one run from its first; link cluster `back` to the first.
            let root = match g.root {
                crate::boot::Root::Fixed { start, .. } => start as usize,
                crate::boot::Root::Chain(_) => unreachable!("FAT16"),
            };
            let first = u16::from_le_bytes([image[root + 26], image[root + 27]]) as u64;
            for copy in 0..u64::from(g.fat_count) {
                let at = (g.fat_start + copy * g.fat_size + 2 * (first + back as u64)) as usize;
                image[at..at + 2].copy_from_slice(&(first as u16).to_le_bytes());
            }
            image
        };
        let mut vol = mount(first, 64);
        let mut buf = vec![0u8; 5000];
        assert_eq!(vol.read("/f", 0, &mut buf), Err(FsError::Corrupt("cluster chain loops")), "{what}: read");
        assert_eq!(vol.write("/f", 4000, b"x"), Err(FsError::Corrupt("cluster chain loops")), "{what}: write");
        assert!(vol.write("/f", 5000, b"more").is_err(), "{what}: grow");
    }
}

/// A new image made by `mkfs.fat -C` of `kib` KiB: FAT `fat`, `spc` sectors per cluster.
fn mkfs_image(fat: &str, spc: &str, kib: &str) -> Vec<u8> {
    let tmp = TempDir::new("mkfs-basics");
    let img = tmp.join("img");
    run("mkfs.fat", &["-C", "--invariant", "-F", fat, "-s", spc, "-S", "512", s(&img), kib]);
    std::fs::read(&img).expect("image")
}

/// A remembered listing answers misses as a scan would: a name it lacks is not there, and a
/// name ending with a dot still finds its entry (8.3 matching drops the dot: `PLAIN.` names
/// `PLAIN`), with the listing remembered and on a fresh mount alike.
#[test]
fn a_remembered_listing_answers_misses_as_a_scan_does() {
    let mut vol = mount(mkfs_image("16", "1", "4096"), 64);
    vol.mkdir("/d").expect("mkdir");
    vol.create("/d/PLAIN").expect("create");
    vol.create("/d/a long name.txt").expect("create");
    let image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
    let probes =
        ["/d/plain", "/d/PLAIN.", "/d/plain.", "/d/missing", "/d/missing.", "/d/A LONG NAME.TXT", "/d/a long name"];
    let fresh: Vec<_> = probes.iter().map(|p| mount(image.clone(), 64).stat(p).map(|m| m.kind)).collect();
    let vol = mount(image, 64);
    vol.read_dir("/d").expect("list");
    assert!(vol.stat("/d/plain").is_ok(), "a listing is remembered");
    let remembered: Vec<_> = probes.iter().map(|p| vol.stat(p).map(|m| m.kind)).collect();
    assert_eq!(remembered, fresh, "probes {probes:?}");
    assert_eq!(fresh[1], Ok(Kind::File), "PLAIN. names PLAIN");
    assert_eq!(fresh[3], Err(FsError::NotFound));
}

/// What a read through a sink did, in order: a disk request, a piece taken, a flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Disk,
    Take,
    Flush,
}

/// A disk that logs its requests into the log a [`Deferred`] sink shares.
struct LoggedDisk {
    inner: MemDisk,
    log: Rc<RefCell<Vec<Step>>>,
}

impl Disk for LoggedDisk {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }
    fn blocks(&self) -> u64 {
        self.inner.blocks()
    }
    fn read(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.log.borrow_mut().push(Step::Disk);
        self.inner.read(first, buf)
    }
    fn write(&mut self, first: u64, data: &[u8]) -> Result<(), DiskError> {
        self.log.borrow_mut().push(Step::Disk);
        self.inner.write(first, data)
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.log.borrow_mut().push(Step::Disk);
        self.inner.flush()
    }
}

/// A sink as `vfs`'s window is: it keeps where the pieces are, to be copied at the next flush.
/// (This one copies them at once too, to check them.) It ends the read before passing `limit`.
struct Deferred {
    log: Rc<RefCell<Vec<Step>>>,
    out: Vec<u8>,
    limit: usize,
}

impl crate::Sink for Deferred {
    fn take(&mut self, bytes: &[u8]) -> bool {
        if self.out.len() + bytes.len() > self.limit {
            return false;
        }
        self.log.borrow_mut().push(Step::Take);
        self.out.extend_from_slice(bytes);
        true
    }

    fn flush(&mut self) -> bool {
        self.log.borrow_mut().push(Step::Flush);
        true
    }
}

/// `read_to` hands over exactly what `read` copies, through a cache far smaller than the read,
/// and stops where the sink ends it, with the count of what it took. Pieces stay valid until
/// the next flush: between a piece taken and the next flush the cache makes no disk request (a
/// page taken or refilled reads the disk), so a sink that keeps only where pieces are (vfs)
/// sends them as they were.
#[test]
fn reading_to_a_sink_hands_over_what_read_copies() {
    for fat in ["16", "32"] {
        let mut vol = mount(mkfs_image(fat, "1", "16384"), 4);
        let data = super::SplitMix(7).bytes(1 << 20);
        vol.create("/data.bin").expect("create");
        assert_eq!(vol.write("/data.bin", 0, &data), Ok(data.len()));
        let image = vol.unmount().expect("unmount").into_disk().expect("disk").into_bytes();
        let log = Rc::new(RefCell::new(Vec::new()));
        let disk = LoggedDisk { inner: MemDisk::from_bytes(image, 512).expect("disk"), log: Rc::clone(&log) };
        let vol = Volume::open(Cache::new(disk, 4).expect("cache"), Some(&CLOCK)).expect("mount");
        let mut rng = super::SplitMix(99);
        let mut refills = 0;
        for round in 0..300 {
            let offset = rng.below(data.len() as u64 + 100);
            let len = rng.below(200_000) as usize;
            let limit = if round % 3 == 0 { rng.below(len as u64 + 1) as usize } else { usize::MAX };
            let mut sink = Deferred { log: Rc::clone(&log), out: Vec::new(), limit };
            log.borrow_mut().clear();
            let got = vol.read_to("/data.bin", offset, len, &mut sink).expect("read_to");
            let steps = log.borrow().clone();
            let start = (offset as usize).min(data.len());
            let whole = len.min(data.len() - start);
            let mut copied = vec![0; len];
            assert_eq!(vol.read("/data.bin", offset, &mut copied), Ok(whole), "FAT{fat} read at {offset}");
            assert!(got <= whole && got <= limit, "FAT{fat} round {round}: {got} of {whole} (limit {limit})");
            if limit >= whole {
                assert_eq!(got, whole, "FAT{fat} round {round}: {len} bytes at {offset}");
            }
            assert_eq!(sink.out.len(), got, "FAT{fat} round {round}");
            assert!(sink.out == data[start..start + got], "FAT{fat} round {round}: {got} bytes at {offset} differ");
            assert!(copied[..whole] == data[start..start + whole], "FAT{fat} round {round}: read differs");
            // No disk request between a piece taken and the next flush.
            let mut holding = false;
            for step in steps {
                match step {
                    Step::Take => holding = true,
                    Step::Flush => holding = false,
                    Step::Disk => {
                        assert!(!holding, "FAT{fat} round {round}: the cache read the disk while the sink held pieces");
                        refills += 1;
                    }
                }
            }
        }
        assert!(refills > 1000, "FAT{fat}: only {refills} disk requests: the cache was not small enough to matter");
    }
}
