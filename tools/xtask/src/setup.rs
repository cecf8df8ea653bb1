//! Installing what a fresh machine lacks, so `cargo xtask run` and `cargo xtask test` are the only
//! commands a newcomer needs: the pinned toolchain's target and components through rustup, and
//! QEMU and OVMF through apt-get when running as root (otherwise a message with the exact
//! command).

use std::process::Command;

use vessel_test_harness::qemu;

use crate::{Result, root, step};

const TARGET: &str = "x86_64-unknown-none";
const COMPONENTS: &[&str] = &["rust-src", "llvm-tools", "clippy", "rustfmt"];

/// The toolchain named in `rust-toolchain.toml`.
fn pinned_toolchain() -> Result<String> {
    let path = root().join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|l| l.split('"').nth(1))
        .next()
        .map(String::from)
        .ok_or_else(|| format!("{}: no channel line", path.display()))
}

fn rustup_list(toolchain: &str, what: &str) -> Result<String> {
    let out = Command::new("rustup")
        .args([what, "list", "--installed", "--toolchain", toolchain])
        .output()
        .map_err(|e| format!("rustup not found ({e}); install rustup from your distribution or rustup.rs"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Adds the kernel target and the components the build needs, if missing.
pub fn ensure_toolchain() -> Result {
    let toolchain = pinned_toolchain()?;
    let targets = rustup_list(&toolchain, "target")?;
    if !targets.lines().any(|l| l.trim() == TARGET) {
        step(&format!("rustup target add {TARGET} --toolchain {toolchain}"));
        crate::run_checked(Command::new("rustup").args(["target", "add", TARGET, "--toolchain", &toolchain]))?;
    }
    let components = rustup_list(&toolchain, "component")?;
    let missing: Vec<&str> = COMPONENTS
        .iter()
        .copied()
        .filter(|c| !components.lines().any(|l| l.trim().starts_with(&format!("{c}-")) || l.trim() == *c))
        .collect();
    if !missing.is_empty() {
        step(&format!("rustup component add {} --toolchain {toolchain}", missing.join(" ")));
        crate::run_checked(
            Command::new("rustup").args(["component", "add"]).args(&missing).args(["--toolchain", &toolchain]),
        )?;
    }
    Ok(())
}

fn have_qemu() -> bool {
    Command::new(qemu::QEMU).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Whether `program` is on the `PATH` (or in `/usr/sbin`, `/sbin`, where `mkfs.fat` lives).
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir: std::path::PathBuf| dir.join(program).is_file())
}

/// The distribution release's code name (`VERSION_CODENAME` of `/etc/os-release`), if given.
fn codename() -> Option<String> {
    let release = std::fs::read_to_string("/etc/os-release").ok()?;
    let name = release.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME="))?.trim_matches('"').trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Whether QEMU, OVMF and the FAT tools (`mkfs.fat`, `fsck.fat`, `mdir`, `mcopy`) are there.
fn have_all() -> bool {
    have_qemu()
        && qemu::find_ovmf().is_some()
        && ["mkfs.fat", "fsck.fat", "mdir", "mcopy", "qemu-img"].iter().all(|p| on_path(p))
}

/// Makes sure QEMU (and `qemu-img`, for the VM formats), OVMF and the FAT tools (the data disk
/// and container roots are made with `mkfs.fat` and mtools, and the tests check what the guest
/// wrote with `fsck.fat` and mtools) are installed.
pub fn ensure_qemu() -> Result {
    if have_all() {
        return Ok(());
    }
    // qemu-utils can come preinstalled from backports, newer than the release's QEMU, which it
    // then refuses to sit beside (it Breaks older qemu-system-common): take the release's own.
    let utils = codename().map_or_else(|| "qemu-utils".to_string(), |c| format!("qemu-utils/{c}"));
    let packages = ["qemu-system-x86", utils.as_str(), "ovmf", "dosfstools", "mtools"];
    let command = format!("apt-get update && apt-get install -y --allow-downgrades {}", packages.join(" "));
    if !is_root() {
        return Err(format!("QEMU, OVMF and the FAT tools are needed; install them with: sudo sh -c '{command}'"));
    }
    step(&format!("installing QEMU, OVMF and the FAT tools: {command}"));
    crate::run_checked(Command::new("apt-get").arg("update"))?;
    crate::run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "--allow-downgrades"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if have_all() {
        Ok(())
    } else {
        Err("apt-get finished but QEMU, qemu-img, OVMF, mkfs.fat, fsck.fat or mtools is still missing".into())
    }
}
