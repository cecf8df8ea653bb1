//! Building the pieces and the disk images.
//!
//! The kernel is built for `x86_64-unknown-none` (release: TCG is slow enough; no debug info, so
//! the BIOS stage loads it quickly). The image builder, the only crate linking `bootloader`, is
//! built in its own target directory with `RUSTC_BOOTSTRAP=1`, which its build script needs to
//! compile the boot stages with `-Z build-std`; no other build sees that flag (DESIGN §7).
//! Everything lands in `target/vessel/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use vessel_test_harness::qemu::{self, Firmware};

use crate::{Result, cargo, root, run_checked, step};

/// Which kernel build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// The kernel as shipped.
    Normal,
    /// The kernel with its test suite (`--features ktest`).
    Test,
}

/// Paths of a pair of disk images.
pub struct Images {
    /// Raw BIOS (MBR) disk image.
    pub bios: PathBuf,
    /// Raw UEFI (GPT) disk image.
    pub uefi: PathBuf,
}

/// `target/vessel`, created on demand.
pub fn out_dir() -> Result<PathBuf> {
    let dir = root().join("target").join("vessel");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn copy(from: &Path, to: &Path) -> Result {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

/// Builds the kernel and returns the path of a copy of its ELF.
pub fn kernel(flavor: Flavor) -> Result<PathBuf> {
    let mut command = cargo();
    command.args(["build", "--release", "--package", "vessel-kernel", "--target", "x86_64-unknown-none"]);
    if flavor == Flavor::Test {
        command.args(["--features", "ktest"]);
    }
    step(&format!("building the kernel ({flavor:?})"));
    run_checked(&mut command)?;
    let built = root().join("target/x86_64-unknown-none/release/vessel-kernel");
    // Both flavours link to the same path; keep a copy per flavour.
    let name = if flavor == Flavor::Test { "kernel-test.elf" } else { "kernel.elf" };
    let elf = out_dir()?.join(name);
    copy(&built, &elf)?;
    crate::hot::check(&elf)?;
    Ok(elf)
}

/// Builds the image builder (bootloader stages included) and returns its binary.
pub fn image_builder() -> Result<PathBuf> {
    step("building the image builder (first time: also the bootloader stages, about 2 minutes)");
    let target_dir = root().join("target/image-builder");
    run_checked(
        cargo()
            .args(["build", "--release", "--package", "vessel-image-builder", "--target-dir"])
            .arg(&target_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            // The bootloader's nested `cargo install` must not inherit a target directory.
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    Ok(target_dir.join("release/vessel-image-builder"))
}

/// Crates that build and are unit tested on the host.
pub const HOST_CRATES: &[&str] = &[
    "vessel-kcore",
    "vessel-abi",
    "vessel-bootfs",
    "vessel-capspace",
    "vessel-indexed",
    "vessel-heap",
    "vessel-ticket",
    "vessel-container",
    "vessel-protocol",
    "vessel-kv-protocol",
    "vessel-proc-protocol",
    "vessel-device-protocol",
    "vessel-fat",
    "vessel-vfs-protocol",
    "vessel-vfs-core",
    "vessel-shell",
    "vessel-test-harness",
    "xtask",
];

/// Crates whose library is unit tested on the host but whose programs build only for the
/// guest (`cargo test --lib`).
pub const HOST_LIB_CRATES: &[&str] = &["vessel-apps"];

/// User-space crates (built for `x86_64-unknown-none` as static executables).
const USER_CRATES: &[&str] = &[
    "vessel-rt",
    "vessel-protocol",
    "vessel-kv-protocol",
    "vessel-init",
    "vessel-proc",
    "vessel-device",
    "vessel-fat",
    "vessel-vfs",
    "vessel-apps",
    "vessel-testprogs",
];

/// The user programs packed into every boot file system (as `bin/<name>`).
pub const PROGRAMS: &[&str] = &[
    "init", "proc", "device", "vfs", "lsdev", "ctr", "hello", "true", "vsh", "ls", "cat", "echo", "cp", "mv", "rm",
    "mkdir", "touch", "hexdump", "ps", "kill", "date", "uptime", "free", "dmesg", "reboot", "poweroff", "vsf", "probe",
    "devprobe", "fsprobe", "burst", "idle", "usertest", "bench",
];

/// The programs only test and benchmark images carry (the last ones of [`PROGRAMS`]): 1.3 MB the
/// BIOS stage would load into every person's boot (about 0.8 s under TCG) for nothing.
pub const TEST_PROGRAMS: &[&str] = &["devprobe", "fsprobe", "burst", "idle", "usertest", "bench"];

/// The programs of an image made from a spec (`boot/images/*.toml`): all but the test ones.
/// `probe` stays: the shell session runs it (a program that loops without reading).
pub fn shipped_programs() -> Vec<&'static str> {
    PROGRAMS.iter().copied().filter(|p| !TEST_PROGRAMS.contains(p)).collect()
}

/// Where [`userland`] puts the programs it builds.
pub fn programs_dir() -> PathBuf {
    root().join("target/userland/x86_64-unknown-none/release")
}

/// How user programs are compiled (the build and clippy alike, so they share one cache): static,
/// non-PIE executables, and without symbol tables, which nothing reads and which made the boot
/// file system 12% larger (the BIOS stage loads it at about 1.7 MB/s under TCG).
const USER_RUSTFLAGS: &str = "-C relocation-model=static -C strip=symbols";

/// Builds the user programs: static, non-PIE executables (`-C relocation-model=static`, which
/// the kernel's loader requires), in their own target directory so this flag never mixes with
/// the kernel's build. Returns the directory holding the binaries.
pub fn userland() -> Result<PathBuf> {
    step("building user programs");
    let target_dir = root().join("target/userland");
    run_checked(
        cargo()
            .args(["build", "--release", "--target", "x86_64-unknown-none", "--target-dir"])
            .arg(&target_dir)
            .args([
                "--package",
                "vessel-init",
                "--package",
                "vessel-proc",
                "--package",
                "vessel-device",
                "--package",
                "vessel-vfs",
                "--package",
                "vessel-apps",
                "--package",
                "vessel-testprogs",
            ])
            .env("RUSTFLAGS", USER_RUSTFLAGS),
    )?;
    Ok(programs_dir())
}

/// Builds both kernel flavours, the user programs and the image builder.
pub fn build_all() -> Result {
    kernel(Flavor::Normal)?;
    kernel(Flavor::Test)?;
    userland()?;
    image_builder().map(|_| ())
}

/// What goes into a boot file system besides the programs.
#[derive(Clone, Debug, Default)]
pub struct BootSpec {
    /// `etc/boot.plan`: what init does (compiled from an image spec, or written by a test).
    pub plan: String,
    /// `etc/boot.args`: kernel boot arguments.
    pub boot_args: String,
    /// The bootloader logs warnings only (a person's boot), not its per-segment steps (which
    /// the boot-time benchmark reads).
    pub quiet_loader: bool,
    /// Other files: path, bytes, mode.
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// An image made from a spec, for a person: without [`TEST_PROGRAMS`].
    pub shipped: bool,
}

/// The services every test image starts (the default spec's).
pub const SERVICES: &str = "service device 16\nservice vfs 16\n";

impl BootSpec {
    /// A test image: the default services, then `runs` (plan lines), with `boot_args`.
    pub fn test(runs: &str, boot_args: &str) -> BootSpec {
        BootSpec { plan: format!("{SERVICES}{runs}"), boot_args: String::from(boot_args), ..BootSpec::default() }
    }

    /// The image spec `file` (`boot/images/NAME.toml`) compiled: its plan, arguments, files,
    /// resolved spec (`image.toml`) and container roots (FAT images made with `mkfs.fat` and
    /// seeded with `mcopy`).
    pub fn from_spec(file: &Path) -> Result<BootSpec> {
        let loaded = vessel_image_spec::load(file, &shipped_programs()).map_err(|e| e.to_string())?;
        let mut files = loaded.files().map_err(|e| e.to_string())?;
        files.push((String::from("image.toml"), loaded.resolved().into_bytes(), 0o644));
        for (name, bytes, seed) in loaded.vsf_roots() {
            let image = out_dir()?.join(format!("root-{name}.vsf"));
            make_vsf(&image, bytes, seed.as_deref())?;
            let data = std::fs::read(&image).map_err(|e| format!("{}: {e}", image.display()))?;
            files.push((format!("containers/{name}.vsf"), data, 0o644));
        }
        Ok(BootSpec { plan: loaded.plan(), boot_args: loaded.boot_args(), quiet_loader: true, files, shipped: true })
    }
}

/// Makes `image`, a FAT file system of `bytes` (FAT32 from 64 MiB up, else what `mkfs.fat`
/// picks), holding a copy of the host directory `seed`.
fn make_vsf(image: &Path, bytes: u64, seed: Option<&Path>) -> Result {
    let _ = std::fs::remove_file(image);
    let file = std::fs::File::create(image).map_err(|e| format!("{}: {e}", image.display()))?;
    file.set_len(bytes).map_err(|e| format!("{}: {e}", image.display()))?;
    drop(file);
    let mut mkfs = Command::new("mkfs.fat");
    if bytes >= 64 << 20 {
        mkfs.args(["-F", "32"]);
    }
    run_checked(mkfs.arg("-n").arg("VESSEL").arg(image))?;
    if let Some(seed) = seed {
        let entries = std::fs::read_dir(seed).map_err(|e| format!("{}: {e}", seed.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            run_checked(Command::new("mcopy").args(["-s", "-p", "-Q", "-i"]).arg(image).arg(&path).arg("::/"))?;
        }
    }
    Ok(())
}

/// Makes the boot file system (a cpio newc archive, kept as `NAME.bootfs.cpio`, listable with
/// `cpio -t`) and returns the path of its packed form (`vessel_bootfs::pack`), the ramdisk. It
/// is never empty (the bootloader hangs on a zero-length ramdisk).
pub fn bootfs(programs: &Path, name: &str, spec: &BootSpec) -> Result<PathBuf> {
    let mut writer = vessel_bootfs::Writer::new();
    let fail = |e: vessel_bootfs::Error| format!("bootfs {name}: {e}");
    writer.add_dir("bin").map_err(fail)?;
    for program in PROGRAMS.iter().filter(|p| !(spec.shipped && TEST_PROGRAMS.contains(p))) {
        let path = programs.join(program);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        writer.add_file(&format!("bin/{program}"), 0o755, &bytes).map_err(fail)?;
    }
    writer.add_dir("etc").map_err(fail)?;
    writer.add_file("etc/boot.plan", 0o644, spec.plan.as_bytes()).map_err(fail)?;
    let args = format!("# Vessel boot arguments (key=value)\n{}", spec.boot_args);
    writer.add_file("etc/boot.args", 0o644, args.as_bytes()).map_err(fail)?;
    let mut dirs = std::collections::BTreeSet::from([String::from("bin"), String::from("etc")]);
    for (path, bytes, mode) in &spec.files {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let dir = parts[..i].join("/");
            if dirs.insert(dir.clone()) {
                writer.add_dir(&dir).map_err(fail)?;
            }
        }
        writer.add_file(path, *mode, bytes).map_err(fail)?;
    }
    // The archive as it is (for `cpio -t` and the host checks), and packed for the ramdisk:
    // the BIOS loader copies the ramdisk a byte at a time, a third of the bytes loads sooner.
    let archive = writer.finish();
    let plain = out_dir()?.join(format!("{name}.bootfs.cpio"));
    std::fs::write(&plain, &archive).map_err(|e| format!("{}: {e}", plain.display()))?;
    let out = out_dir()?.join(format!("{name}.bootfs.packed"));
    std::fs::write(&out, vessel_bootfs::pack(&archive)).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// Writes BIOS and UEFI images of `flavor` with a boot file system made from `spec`. `name`
/// distinguishes image sets in `target/vessel/`.
pub fn images_with(flavor: Flavor, name: &str, spec: &BootSpec) -> Result<Images> {
    images_for(&kernel(flavor)?, &image_builder()?, &userland()?, name, spec)
}

/// Writes images from already built pieces: the boot file system from `programs` and `spec`,
/// then the disk images. For callers that make several image sets from one build.
pub fn images_for(elf: &Path, builder: &Path, programs: &Path, name: &str, spec: &BootSpec) -> Result<Images> {
    let ramdisk = bootfs(programs, name, spec)?;
    images_from(elf, builder, name, &ramdisk, spec.quiet_loader)
}

/// Writes images from an already built kernel, image builder and boot file system.
pub fn images_from(elf: &Path, builder: &Path, name: &str, ramdisk: &Path, quiet_loader: bool) -> Result<Images> {
    let dir = out_dir()?;
    let images = Images { bios: dir.join(format!("{name}-bios.img")), uefi: dir.join(format!("{name}-uefi.img")) };
    run_checked(
        Command::new(builder)
            .arg("--kernel")
            .arg(elf)
            .arg("--ramdisk")
            .arg(ramdisk)
            .arg("--bios")
            .arg(&images.bios)
            .arg("--uefi")
            .arg(&images.uefi)
            .arg("--loader-log")
            .arg(if quiet_loader { "warn" } else { "info" }),
    )?;
    Ok(images)
}

/// The image spec `cargo xtask run` and `cargo xtask image` use unless told otherwise.
pub const DEFAULT_SPEC: &str = "boot/images/default.toml";

/// The images of the spec `file`: `vessel-bios.img` and `vessel-uefi.img` for the default
/// spec, `vessel-NAME-…` for another one; `verbose` adds `log=debug` to the kernel's arguments.
pub fn images_of(file: &Path, verbose: bool) -> Result<Images> {
    step(&format!("writing disk images of {}", file.display()));
    let userland = userland()?;
    let mut spec = BootSpec::from_spec(file)?;
    if verbose {
        spec.boot_args.push_str("log=debug\n");
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("custom");
    let name = if stem == "default" { String::from("vessel") } else { format!("vessel-{stem}") };
    images_for(&kernel(Flavor::Normal)?, &image_builder()?, &userland, &name, &spec)
}

/// What `cargo xtask image --format` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The raw BIOS image (MBR): for `dd` to a USB stick, or any VM.
    RawBios,
    /// The raw UEFI image (GPT with an EFI system partition).
    RawUefi,
    /// QEMU's qcow2 of the BIOS image.
    Qcow2Bios,
    /// QEMU's qcow2 of the UEFI image.
    Qcow2Uefi,
    /// VMware's (and VirtualBox's) VMDK of the BIOS image.
    Vmdk,
    /// Hyper-V's and VirtualBox's VHD (dynamic) of the BIOS image.
    Vhd,
}

impl Format {
    /// The formats that need converting, as the test suite boots them.
    pub const VM: [Format; 4] = [Format::Qcow2Bios, Format::Qcow2Uefi, Format::Vmdk, Format::Vhd];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::RawBios => "raw-bios",
            Format::RawUefi => "raw-uefi",
            Format::Qcow2Bios => "qcow2-bios",
            Format::Qcow2Uefi => "qcow2-uefi",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
        }
    }

    /// Whether it boots through UEFI.
    pub fn uefi(self) -> bool {
        matches!(self, Format::RawUefi | Format::Qcow2Uefi)
    }
}

/// The images in `formats`, converted from the raw `images` with `qemu-img` where needed (next
/// to them: `vessel-bios.qcow2`, `vessel-bios.vmdk`, …); each format and its path.
pub fn convert(images: &Images, formats: &[Format]) -> Result<Vec<(Format, PathBuf)>> {
    let mut out = Vec::new();
    for &format in formats {
        let raw = if format.uefi() { &images.uefi } else { &images.bios };
        let (extension, qemu_format, options): (&str, &str, &[&str]) = match format {
            Format::RawBios | Format::RawUefi => {
                out.push((format, raw.clone()));
                continue;
            }
            Format::Qcow2Bios | Format::Qcow2Uefi => ("qcow2", "qcow2", &[]),
            Format::Vmdk => ("vmdk", "vmdk", &[]),
            Format::Vhd => ("vhd", "vpc", &["-o", "subformat=dynamic"]),
        };
        let path = raw.with_extension(extension);
        let _ = std::fs::remove_file(&path);
        run_checked(
            Command::new("qemu-img")
                .args(["convert", "-q", "-f", "raw", "-O", qemu_format])
                .args(options)
                .arg(raw)
                .arg(&path),
        )?;
        out.push((format, path));
    }
    Ok(out)
}

/// The shipped images (the default spec's).
pub fn images() -> Result<Images> {
    images_of(&root().join(DEFAULT_SPEC), false)
}

/// Size of the scratch disks the test runs attach.
pub const SCRATCH_DISK_BYTES: u64 = 32 << 20;

/// A fresh zero-filled raw disk of `bytes` at `target/vessel/disks/<name>.img`, replacing any
/// left by an earlier run (sparse: it costs no space until written).
pub fn fresh_disk(name: &str, bytes: u64) -> Result<PathBuf> {
    let dir = out_dir()?.join("disks");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.img"));
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = std::fs::File::create(&path).map_err(fail)?;
    file.set_len(bytes).map_err(fail)?;
    Ok(path)
}

/// Bytes of the FAT32 data disk the tests attach as the guest's `blk1` (its `/data`): with
/// 4 KiB clusters, FAT32 needs at least 65,525 of them (mtools refuses fewer). The file is
/// sparse: only what is written takes space.
pub const DATA_DISK_BYTES: u64 = 512 << 20;

/// A fresh FAT32 disk called `name`, made by `mkfs.fat` as a user would make one.
pub fn fresh_fat_disk(name: &str, bytes: u64) -> Result<PathBuf> {
    let path = fresh_disk(name, bytes)?;
    let out = Command::new("mkfs.fat")
        // 4 KiB clusters (what mkfs.fat picks at this size anyway; said so the size can
        // change): FAT chains are followed cluster by cluster, and an append walks its file's.
        .args(["-F", "32", "-s", "8", "-n", "VESSELDATA"])
        .arg(&path)
        .output()
        .map_err(|e| format!("mkfs.fat: {e} (apt-get install dosfstools)"))?;
    if !out.status.success() {
        return Err(format!("mkfs.fat {}: {}", path.display(), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(path)
}

/// Copies the user programs `names` from `programs` (what [`userland`] built) into `/bin` of the
/// FAT image `disk` with mtools, as a user seeds a disk or a VSF from the host.
pub fn seed_programs(disk: &Path, programs: &Path, names: &[&str]) -> Result {
    let run = |command: &mut Command| -> Result {
        let out = command.output().map_err(|e| format!("{command:?}: {e} (apt-get install mtools)"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{command:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    run(Command::new("mmd").arg("-i").arg(disk).arg("::/bin"))?;
    for name in names {
        run(Command::new("mcopy").arg("-i").arg(disk).arg(programs.join(name)).arg(format!("::/bin/{name}")))?;
    }
    Ok(())
}

/// The persistent data disk of `cargo xtask run` (`target/vessel/data.img`, the guest's
/// `/data`): made with `mkfs.fat` when missing or when `fresh`, else kept with what the guest
/// wrote in earlier runs.
pub fn data_disk(fresh: bool) -> Result<PathBuf> {
    let path = out_dir()?.join("data.img");
    if fresh || !path.is_file() {
        step(&format!("making the data disk {}", path.display()));
        let made = fresh_fat_disk("data", DATA_DISK_BYTES)?;
        std::fs::rename(&made, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}

/// OVMF with a fresh copy of its variable store for a run called `name`.
pub fn uefi_firmware(name: &str) -> Result<Firmware> {
    let (code, template) = qemu::find_ovmf().ok_or("OVMF not found (apt-get install ovmf)")?;
    let vars = out_dir()?.join(format!("{name}-ovmf-vars.fd"));
    copy(&template, &vars)?;
    Ok(Firmware::Uefi { code, vars })
}

/// Lints every crate for the target it builds for, warnings denied.
pub fn clippy() -> Result {
    step("clippy: host crates");
    let mut host = cargo();
    host.arg("clippy");
    for krate in HOST_CRATES {
        host.args(["--package", krate]);
    }
    run_checked(host.args(["--all-targets", "--", "-D", "warnings"]))?;
    let mut libs = cargo();
    libs.arg("clippy");
    for krate in HOST_LIB_CRATES {
        libs.args(["--package", krate]);
    }
    run_checked(libs.args(["--lib", "--tests", "--", "-D", "warnings"]))?;
    step("clippy: user programs");
    let mut user = cargo();
    user.args(["clippy", "--release", "--target", "x86_64-unknown-none", "--target-dir"])
        .arg(root().join("target/userland"));
    for krate in USER_CRATES {
        user.args(["--package", krate]);
    }
    run_checked(user.args(["--", "-D", "warnings"]).env("RUSTFLAGS", USER_RUSTFLAGS))?;
    for features in [&[][..], &["--features", "ktest"][..]] {
        step(&format!("clippy: kernel {}", features.join(" ")));
        run_checked(
            cargo()
                .args(["clippy", "--release", "--package", "vessel-kernel", "--target", "x86_64-unknown-none"])
                .args(features)
                .args(["--", "-D", "warnings"]),
        )?;
    }
    step("clippy: image builder");
    run_checked(
        cargo()
            .args(["clippy", "--release", "--package", "vessel-image-builder", "--target-dir"])
            .arg(root().join("target/image-builder"))
            .args(["--", "-D", "warnings"])
            .env("RUSTC_BOOTSTRAP", "1")
            .env_remove("CARGO_TARGET_DIR"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spec shipped in `boot/images/` validates against the programs the images hold.
    #[test]
    fn shipped_specs_validate() {
        let dir = root().join("boot/images");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                if let Err(e) = vessel_image_spec::load(&path, &shipped_programs()) {
                    panic!("{e}");
                }
                seen += 1;
            }
        }
        assert!(seen >= 2, "only {seen} specs in {}", dir.display());
    }
}
