//! `cargo xtask usb DEVICE [--uefi] [--yes]`: writes the shipped image to a USB stick.
//!
//! It refuses anything that is not a whole removable disk: the path must name a disk the
//! kernel lists in `/sys/block` (not a partition), whose `removable` flag is 1, none of whose
//! partitions is mounted, and which does not hold `/`. It shows the disk's model and size, asks
//! for confirmation (`--yes` skips it), writes the image with progress, syncs, and reads the
//! image back to compare. The checks read a sysfs tree and a mount table given to them, so the
//! host tests run them over a fake tree and a loop file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::Result;

/// Where the checks look: the sysfs root (`/sys`), the mount table (`/proc/mounts`) and the
/// device holding `/` (`major:minor`).
pub struct Host {
    /// `/sys` (a fake tree in tests).
    pub sys: PathBuf,
    /// The mount table's text.
    pub mounts: String,
    /// The `major:minor` of the file system holding `/`.
    pub root_device: Option<(u32, u32)>,
}

impl Host {
    /// The machine this runs on.
    pub fn real() -> Host {
        use std::os::unix::fs::MetadataExt;
        let root_device = std::fs::metadata("/").ok().map(|m| {
            let dev = m.dev();
            (((dev >> 8) & 0xfff) as u32 | ((dev >> 32) & !0xfff) as u32, ((dev & 0xff) | ((dev >> 12) & !0xff)) as u32)
        });
        Host {
            sys: PathBuf::from("/sys"),
            mounts: std::fs::read_to_string("/proc/mounts").unwrap_or_default(),
            root_device,
        }
    }
}

/// A disk that passed the checks.
#[derive(Debug, PartialEq, Eq)]
pub struct Stick {
    /// Its kernel name (`sdb`).
    pub name: String,
    /// Vendor and model, as sysfs gives them.
    pub model: String,
    /// Its size in bytes.
    pub bytes: u64,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Checks that `device` is a whole removable disk that nothing uses; why not, if it is not.
pub fn check(host: &Host, device: &Path) -> std::result::Result<Stick, String> {
    if !device.exists() {
        return Err(format!("{}: no such device", device.display()));
    }
    let name = device.file_name().and_then(|n| n.to_str()).ok_or(format!("{}: not a device path", device.display()))?;
    let block = host.sys.join("block").join(name);
    if !block.is_dir() {
        // A partition has its directory under its disk's; anything else is not a disk at all.
        let partition = std::fs::read_dir(host.sys.join("block"))
            .map(|disks| disks.flatten().any(|d| d.path().join(name).join("partition").is_file()))
            .unwrap_or(false);
        return Err(if partition {
            format!("{}: a partition, not a whole disk (write to the disk itself, e.g. /dev/sdb)", device.display())
        } else {
            format!("{}: not a disk the kernel lists in {}", device.display(), host.sys.join("block").display())
        });
    }
    if read(&block.join("removable")).as_deref() != Some("1") {
        return Err(format!("{}: not a removable disk (its removable flag is not 1); refusing", device.display()));
    }
    // The disk and its partitions (`sdb`, `sdb1`, …) by name and by major:minor.
    let mut parts = vec![(String::from(name), read(&block.join("dev")))];
    if let Ok(entries) = std::fs::read_dir(&block) {
        for entry in entries.flatten() {
            if entry.path().join("partition").is_file() {
                parts.push((entry.file_name().to_string_lossy().into_owned(), read(&entry.path().join("dev"))));
            }
        }
    }
    for line in host.mounts.lines() {
        let mut words = line.split_whitespace();
        let (Some(source), Some(at)) = (words.next(), words.next()) else { continue };
        let source_name = Path::new(source).file_name().and_then(|n| n.to_str()).unwrap_or("");
        if parts.iter().any(|(p, _)| p == source_name) {
            return Err(format!("{}: {source} is mounted at {at}; unmount it first", device.display()));
        }
    }
    if let Some((major, minor)) = host.root_device {
        let root = format!("{major}:{minor}");
        if parts.iter().any(|(_, dev)| dev.as_deref() == Some(root.as_str())) {
            return Err(format!("{}: it holds / (the running system); refusing", device.display()));
        }
    }
    let sectors: u64 = read(&block.join("size")).and_then(|s| s.parse().ok()).unwrap_or(0);
    let vendor = read(&block.join("device/vendor")).unwrap_or_default();
    let model = read(&block.join("device/model")).unwrap_or_default();
    let model = format!("{vendor} {model}").trim().to_string();
    Ok(Stick {
        name: String::from(name),
        model: if model.is_empty() { String::from("unknown model") } else { model },
        bytes: sectors * 512,
    })
}

/// Writes `image` to `device` with progress on stderr, syncs, then reads it back to compare.
pub fn write(image: &Path, device: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result {
    let data = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let mut out =
        std::fs::OpenOptions::new().write(true).open(device).map_err(|e| format!("{}: {e}", device.display()))?;
    let total = data.len() as u64;
    for (i, chunk) in data.chunks(4 << 20).enumerate() {
        out.write_all(chunk).map_err(|e| format!("writing {}: {e}", device.display()))?;
        progress(((i as u64 * (4 << 20)) + chunk.len() as u64).min(total), total);
    }
    out.sync_all().map_err(|e| format!("syncing {}: {e}", device.display()))?;
    drop(out);
    let mut back = std::fs::File::open(device).map_err(|e| format!("{}: {e}", device.display()))?;
    back.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut read_back = vec![0u8; data.len()];
    back.read_exact(&mut read_back).map_err(|e| format!("reading {} back: {e}", device.display()))?;
    match data.iter().zip(&read_back).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(at) => Err(format!("{}: byte {at} reads back different from the image", device.display())),
    }
}

/// The command: check, show, confirm, write, verify.
pub fn run(device: &Path, uefi: bool, yes: bool) -> Result {
    let stick = check(&Host::real(), device)?;
    let images = crate::artifacts::images()?;
    let image = if uefi { images.uefi } else { images.bios };
    let size = std::fs::metadata(&image).map_err(|e| format!("{}: {e}", image.display()))?.len();
    if stick.bytes > 0 && size > stick.bytes {
        return Err(format!("{}: {} bytes do not fit the {}-byte disk", image.display(), size, stick.bytes));
    }
    eprintln!(
        "{}: {}, {:.1} GB, removable; everything on it will be erased and replaced by {}",
        device.display(),
        stick.model,
        stick.bytes as f64 / 1e9,
        image.display()
    );
    if !yes {
        eprint!("Type yes to write: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| e.to_string())?;
        if answer.trim() != "yes" {
            return Err(String::from("not written (the answer was not yes)"));
        }
    }
    write(&image, device, &mut |done, total| eprint!("\r  {} of {} MiB", done >> 20, total.div_ceil(1 << 20)))?;
    eprintln!("\n{}: written, synced and read back the same; boot the machine from it", device.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake machine: sysfs with `sdb` (removable, partition `sdb1`), `sda` (fixed, holding
    /// `/`), and `/dev` files for them.
    fn machine(dir: &Path) -> Host {
        let disk = |name: &str, removable: &str, dev: &str| {
            let block = dir.join("sys/block").join(name);
            std::fs::create_dir_all(block.join("device")).unwrap();
            std::fs::write(block.join("removable"), format!("{removable}\n")).unwrap();
            std::fs::write(block.join("dev"), format!("{dev}\n")).unwrap();
            std::fs::write(block.join("size"), "62914560\n").unwrap();
            std::fs::write(block.join("device/vendor"), "Acme    \n").unwrap();
            std::fs::write(block.join("device/model"), "Stick 32\n").unwrap();
            let part = block.join(format!("{name}1"));
            std::fs::create_dir_all(&part).unwrap();
            std::fs::write(part.join("partition"), "1\n").unwrap();
            std::fs::write(part.join("dev"), format!("{}1\n", &dev[..dev.len() - 1])).unwrap();
        };
        disk("sdb", "1", "8:16");
        disk("sda", "0", "8:0");
        disk("sdc", "1", "8:32");
        std::fs::create_dir_all(dir.join("dev")).unwrap();
        for name in ["sda", "sda1", "sdb", "sdb1", "sdc", "loop9"] {
            std::fs::write(dir.join("dev").join(name), vec![0u8; 1 << 20]).unwrap();
        }
        Host {
            sys: dir.join("sys"),
            mounts: String::from("/dev/sdc1 /media/usb vfat rw 0 0\n"),
            root_device: Some((8, 1)),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vessel-usb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn only_a_whole_removable_unused_disk_passes() {
        let dir = scratch("checks");
        let host = machine(&dir);
        let dev = |n: &str| dir.join("dev").join(n);
        let stick = check(&host, &dev("sdb")).unwrap();
        assert_eq!(stick, Stick { name: "sdb".into(), model: "Acme Stick 32".into(), bytes: 62914560 * 512 });
        let refused = |n: &str| check(&host, &dev(n)).unwrap_err();
        assert!(refused("sda").contains("not a removable disk"), "{}", refused("sda"));
        assert!(refused("sdb1").contains("a partition, not a whole disk"), "{}", refused("sdb1"));
        assert!(refused("sdc").contains("/dev/sdc1 is mounted at /media/usb"), "{}", refused("sdc"));
        assert!(refused("loop9").contains("not a disk the kernel lists"), "{}", refused("loop9"));
        assert!(refused("sdz").contains("no such device"), "{}", refused("sdz"));
        // The disk holding / is refused even when it claims to be removable.
        std::fs::write(dir.join("sys/block/sda/removable"), "1\n").unwrap();
        assert!(refused("sda").contains("it holds /"), "{}", refused("sda"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn writing_a_loop_file_reads_back_the_same() {
        let dir = scratch("write");
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("image.img");
        let bytes: Vec<u8> = (0..(5u32 << 20) + 123).map(|i| (i * 7 + i / 4096) as u8).collect();
        std::fs::write(&image, &bytes).unwrap();
        let target = dir.join("stick");
        std::fs::write(&target, vec![0xffu8; 8 << 20]).unwrap();
        let mut seen = Vec::new();
        write(&image, &target, &mut |done, total| seen.push((done, total))).unwrap();
        assert_eq!(seen.last(), Some(&(bytes.len() as u64, bytes.len() as u64)));
        assert_eq!(&std::fs::read(&target).unwrap()[..bytes.len()], &bytes[..]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
