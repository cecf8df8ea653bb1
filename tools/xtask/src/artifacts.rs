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

/// Builds both kernel flavours and the image builder.
pub fn build_all() -> Result {
    kernel(Flavor::Normal)?;
    kernel(Flavor::Test)?;
    image_builder().map(|_| ())
}

/// Writes BIOS and UEFI images of `flavor` with the given boot arguments. `name` distinguishes
/// image sets (e.g. one per injected fault) in `target/vessel/`.
pub fn images_with_args(flavor: Flavor, name: &str, boot_args: &str) -> Result<Images> {
    let elf = kernel(flavor)?;
    images_from(&elf, &image_builder()?, name, boot_args)
}

/// Writes images from an already built kernel and image builder.
pub fn images_from(elf: &Path, builder: &Path, name: &str, boot_args: &str) -> Result<Images> {
    let dir = out_dir()?;
    let args = dir.join(format!("{name}.args"));
    // Never an empty ramdisk: the bootloader hangs on a zero-length one.
    std::fs::write(&args, format!("# Vessel boot arguments (key=value)\n{boot_args}"))
        .map_err(|e| format!("{}: {e}", args.display()))?;
    let images = Images { bios: dir.join(format!("{name}-bios.img")), uefi: dir.join(format!("{name}-uefi.img")) };
    run_checked(
        Command::new(builder)
            .arg("--kernel")
            .arg(elf)
            .arg("--ramdisk")
            .arg(&args)
            .arg("--bios")
            .arg(&images.bios)
            .arg("--uefi")
            .arg(&images.uefi),
    )?;
    Ok(images)
}

/// The shipped images.
pub fn images(flavor: Flavor) -> Result<Images> {
    step("writing disk images");
    let name = if flavor == Flavor::Test { "vessel-test" } else { "vessel" };
    images_with_args(flavor, name, "")
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
    run_checked(cargo().args([
        "clippy",
        "--package",
        "vessel-kcore",
        "--package",
        "vessel-test-harness",
        "--package",
        "xtask",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
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
