//! The image spec: one TOML file (`boot/images/NAME.toml`) describing the system an image
//! boots: the kernel's arguments, the system services and their restart limits, the programs
//! `init` runs, files for the boot file system, the root container's tree, and containers made
//! at boot with their roots, devices, quotas and programs.
//!
//! [`load`] parses and validates a spec; every error names the file, the line and the field
//! (`boot/images/x.toml:12: containers[1].name: "web" is used twice`). [`Spec::plan`]
//! compiles it into `etc/boot.plan`, the line format `init` reads (`docs/image-spec.md`), and
//! [`Spec::resolved`] gives the spec with every default filled in, kept in the image as
//! `image.toml`. Every struct refuses unknown fields, so a misspelt key is an error, not a
//! silent default.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The largest restart limit of a service.
pub const MAX_RESTARTS: u64 = 1000;
/// The longest container name (as `proc` allows).
pub const MAX_NAME: usize = 32;
/// Virtual devices a container can have plugged.
pub const VIRTUAL: [&str; 4] = ["null", "zero", "random", "console"];

/// A whole spec.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// What the image is, for people.
    #[serde(default)]
    pub description: String,
    /// The kernel.
    #[serde(default)]
    pub kernel: Kernel,
    /// The system services `proc` supervises.
    #[serde(default)]
    pub services: Services,
    /// Programs `init` runs in the root container, in order.
    #[serde(default)]
    pub run: Vec<Run>,
    /// Files added to the boot file system (`/boot` at run time).
    #[serde(default)]
    pub files: Vec<File>,
    /// The root container's tree.
    #[serde(default)]
    pub root: Root,
    /// Containers made at boot, in order (a parent before its children).
    #[serde(default)]
    pub containers: Vec<Container>,
}

/// The kernel's boot arguments.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// `key=value` arguments (`etc/boot.args`).
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
}

/// The services `init` asks `proc` to supervise (`proc` itself always runs).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// The `device` server (drivers, the device registry).
    #[serde(default = "Service::default_on")]
    pub device: Service,
    /// The `vfs` server (files).
    #[serde(default = "Service::default_on")]
    pub vfs: Service,
}

impl Default for Services {
    fn default() -> Self {
        Services { device: Service::default_on(), vfs: Service::default_on() }
    }
}

/// One service.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Whether it runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often `proc` starts it again when it dies.
    #[serde(default = "default_restarts")]
    pub restarts: Spanned<u64>,
}

fn yes() -> bool {
    true
}

fn default_restarts() -> Spanned<u64> {
    Spanned::new(0..0, 16)
}

impl Service {
    fn default_on() -> Service {
        Service { enabled: true, restarts: default_restarts() }
    }
}

/// How `init` runs a program.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Run it and wait for it to end before the next one.
    #[default]
    Once,
    /// Start it and go on.
    Start,
    /// Start it, and start it again whenever it ends (a terminal's shell).
    Keep,
}

/// A program `init` runs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// `bin/NAME` of the boot file system, or an absolute path of the container's tree.
    pub program: Spanned<String>,
    /// Its arguments (no blanks inside one).
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
    /// Once (the default), start, or keep.
    #[serde(default)]
    pub mode: Mode,
    /// Whether it gets a capability to the root container (tests and benchmarks only).
    #[serde(default)]
    pub trusted: bool,
}

/// A file of the boot file system.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Where it goes (`etc/motd`; no leading `/`, no `..`).
    pub path: Spanned<String>,
    /// A host file to copy, relative to the spec's directory (or `text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Spanned<String>>,
    /// The file's text (or `source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Unix permission bits (`0o644`).
    #[serde(default = "default_mode")]
    pub mode: u32,
}

fn default_mode() -> u32 {
    0o644
}

/// The root container's tree.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// Whether `vfs` mounts the first FAT disk at `/data`.
    #[serde(default = "yes")]
    pub data: bool,
    /// In-memory file systems mounted at these absolute paths (besides `/` and `/tmp`).
    #[serde(default)]
    pub memory: Vec<Spanned<String>>,
}

impl Default for Root {
    fn default() -> Self {
        Root { data: true, memory: Vec::new() }
    }
}

/// A container made at boot.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// Its name: letters, digits, `-`, `_`, `.`, not a digit first; unique.
    pub name: Spanned<String>,
    /// Its parent's name (none: a child of the root container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Spanned<String>>,
    /// Memory it may use (`64M`); none: what its parent has left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Spanned<String>>,
    /// Most processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Spanned<u64>>,
    /// Most threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<Spanned<u64>>,
    /// Most kernel objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Spanned<u64>>,
    /// Its `/`: a VSF made on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<VsfRoot>,
    /// Devices of the root container passed through: `blk1`, `blk1:ro`, `serial0:exclusive`.
    #[serde(default)]
    pub devices: Vec<Spanned<String>>,
    /// Virtual devices plugged into it: `null`, `zero`, `random`, `console`.
    #[serde(default, rename = "virtual")]
    pub virtual_devices: Vec<Spanned<String>>,
    /// Programs run in it at boot.
    #[serde(default)]
    pub run: Vec<Run>,
}

/// A container's root file system, made on the host.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VsfRoot {
    /// Its size (`16M`, at least 1 MiB).
    pub size: Spanned<String>,
    /// A host directory copied into it, relative to the spec's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<Spanned<String>>,
}

/// Why a spec was refused: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The spec file.
    pub file: PathBuf,
    /// The line (1-based; 0 if unknown).
    pub line: usize,
    /// What is wrong, starting with the field (`containers[0].memory: …`).
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

impl std::error::Error for SpecError {}

/// A spec read from a file, with what validation needs to know of its surroundings.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The spec.
    pub spec: Spec,
    /// The file it came from.
    pub file: PathBuf,
    /// Its text (for line numbers).
    text: String,
}

/// The programs the image's boot file system holds (`bin/NAME`), for validation.
pub type Programs<'a> = &'a [&'a str];

/// Reads, parses and validates `file` against the programs the image holds.
pub fn load(file: &Path, programs: Programs<'_>) -> Result<Loaded, SpecError> {
    let text = std::fs::read_to_string(file).map_err(|e| SpecError {
        file: file.to_path_buf(),
        line: 0,
        message: format!("cannot read it: {e}"),
    })?;
    parse(file, &text, programs)
}

/// Parses and validates the spec `text` (read from `file`).
pub fn parse(file: &Path, text: &str, programs: Programs<'_>) -> Result<Loaded, SpecError> {
    let spec: Spec = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| line_of(text, s.start));
        // The toml crate's message repeats the position and quotes the line; keep its first
        // sentence and say where ourselves.
        let message = e.message().trim().replace('\n', " ");
        SpecError { file: file.to_path_buf(), line, message }
    })?;
    let loaded = Loaded { spec, file: file.to_path_buf(), text: String::from(text) };
    loaded.validate(programs)?;
    Ok(loaded)
}

/// The 1-based line of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Bytes from `64M`, `1G`, `512K` or a plain number.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let shift = match unit {
        "" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift).filter(|&n| n > 0)
}

/// Whether `name` can name a container (as `proc` requires).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A limit of a container, resolved: pages, processes, threads, objects.
type Limits = [Option<u64>; 4];

impl Loaded {
    fn error<T>(&self, at: &Spanned<T>, message: String) -> SpecError {
        let line = if at.span().end == 0 { 0 } else { line_of(&self.text, at.span().start) };
        SpecError { file: self.file.clone(), line, message }
    }

    /// The directory relative paths of the spec are resolved against.
    pub fn dir(&self) -> PathBuf {
        self.file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    fn check_run(&self, field: &str, run: &Run, programs: Programs<'_>, seeded: bool) -> Result<(), SpecError> {
        let program = run.program.get_ref();
        let known = match program.strip_prefix("bin/") {
            Some(name) => programs.contains(&name),
            // A file of the container's own root (checked on the host only if seeded there).
            None => program.starts_with('/') && seeded,
        };
        if !known {
            let what = if program.starts_with('/') {
                "is not in a seeded root (an absolute path names a file of the container's root)"
            } else {
                "is not in the image (programs are bin/NAME)"
            };
            return Err(self.error(&run.program, format!("{field}.program: {program:?} {what}")));
        }
        for (i, arg) in run.args.iter().enumerate() {
            if arg.get_ref().is_empty() || arg.get_ref().contains(char::is_whitespace) {
                return Err(self.error(arg, format!("{field}.args[{i}]: {:?}: an argument is one word", arg.get_ref())));
            }
        }
        Ok(())
    }

    fn validate(&self, programs: Programs<'_>) -> Result<(), SpecError> {
        let spec = &self.spec;
        for (i, arg) in spec.kernel.args.iter().enumerate() {
            let ok =
                arg.get_ref().split_once('=').is_some_and(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace));
            if !ok {
                return Err(self.error(arg, format!("kernel.args[{i}]: {:?} is not key=value", arg.get_ref())));
            }
        }
        for (name, service) in [("device", &spec.services.device), ("vfs", &spec.services.vfs)] {
            if *service.restarts.get_ref() > MAX_RESTARTS {
                return Err(self.error(
                    &service.restarts,
                    format!("services.{name}.restarts: {} is above {MAX_RESTARTS}", service.restarts.get_ref()),
                ));
            }
        }
        for (i, run) in spec.run.iter().enumerate() {
            self.check_run(&format!("run[{i}]"), run, programs, false)?;
        }
        let mut paths = BTreeSet::new();
        for (i, file) in spec.files.iter().enumerate() {
            let path = file.path.get_ref();
            let bad = path.is_empty()
                || path.starts_with('/')
                || path.split('/').any(|p| p.is_empty() || p == "." || p == "..")
                || path.starts_with("bin/")
                || path == "etc/boot.plan"
                || path == "etc/boot.args"
                || path == "image.toml"
                || path.starts_with("containers/");
            if bad {
                return Err(self.error(
                    &file.path,
                    format!(
                        "files[{i}].path: {path:?}: a relative path outside bin/, containers/ and the generated files"
                    ),
                ));
            }
            if !paths.insert(path.clone()) {
                return Err(self.error(&file.path, format!("files[{i}].path: {path:?} is listed twice")));
            }
            match (&file.source, &file.text) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(self.error(&file.path, format!("files[{i}]: give source or text, one of them")));
                }
                (Some(source), None) => {
                    let host = self.dir().join(source.get_ref());
                    if !host.is_file() {
                        return Err(self.error(source, format!("files[{i}].source: {} is not a file", host.display())));
                    }
                }
                (None, Some(_)) => {}
            }
            if file.mode > 0o777 {
                return Err(self.error(&file.path, format!("files[{i}].mode: {:#o} is not permission bits", file.mode)));
            }
        }
        for (i, at) in spec.root.memory.iter().enumerate() {
            let path = at.get_ref();
            let bad = !path.starts_with('/')
                || path == "/"
                || ["/tmp", "/boot", "/data"].contains(&path.as_str())
                || path.split('/').skip(1).any(|p| p.is_empty() || p == "." || p == "..");
            if bad {
                return Err(self.error(
                    at,
                    format!("root.memory[{i}]: {path:?}: an absolute path other than /, /tmp, /boot, /data"),
                ));
            }
        }
        self.validate_containers(programs)
    }

    /// The limits of container `i` as pages, processes, threads, objects.
    fn limits(&self, i: usize) -> Result<Limits, SpecError> {
        let c = &self.spec.containers[i];
        let memory = match &c.memory {
            Some(m) => Some(parse_size(m.get_ref()).ok_or_else(|| {
                self.error(m, format!("containers[{i}].memory: {:?} is not a size (like 64M)", m.get_ref()))
            })?),
            None => None,
        };
        let count = |v: &Option<Spanned<u64>>| v.as_ref().map(|s| *s.get_ref());
        Ok([memory.map(|b| b.div_ceil(4096)), count(&c.processes), count(&c.threads), count(&c.objects)])
    }

    fn validate_containers(&self, programs: Programs<'_>) -> Result<(), SpecError> {
        let containers = &self.spec.containers;
        for (i, c) in containers.iter().enumerate() {
            let field = format!("containers[{i}]");
            let name = c.name.get_ref();
            if !valid_name(name) {
                return Err(self.error(
                    &c.name,
                    format!(
                        "{field}.name: {name:?}: letters, digits, - _ ., not a digit first, at most {MAX_NAME} bytes"
                    ),
                ));
            }
            if containers[..i].iter().any(|o| o.name.get_ref() == name) {
                return Err(self.error(&c.name, format!("{field}.name: {name:?} is used twice")));
            }
            let limits = self.limits(i)?;
            if let Some(parent) = &c.parent {
                let Some(p) = containers[..i].iter().position(|o| o.name.get_ref() == parent.get_ref()) else {
                    return Err(self.error(
                        parent,
                        format!("{field}.parent: {:?} is not a container listed before it", parent.get_ref()),
                    ));
                };
                let theirs = self.limits(p)?;
                let what = ["memory", "processes", "threads", "objects"];
                for k in 0..4 {
                    if let (Some(mine), Some(cap)) = (limits[k], theirs[k])
                        && mine > cap
                    {
                        let at = match k {
                            0 => c.memory.as_ref().map(|m| self.error(m, String::new())),
                            1 => c.processes.as_ref().map(|m| self.error(m, String::new())),
                            2 => c.threads.as_ref().map(|m| self.error(m, String::new())),
                            _ => c.objects.as_ref().map(|m| self.error(m, String::new())),
                        };
                        let line = at.map_or(0, |e| e.line);
                        return Err(SpecError {
                            file: self.file.clone(),
                            line,
                            message: format!("{field}.{}: above its parent {:?}'s limit", what[k], parent.get_ref()),
                        });
                    }
                }
            }
            if let Some(root) = &c.root {
                match parse_size(root.size.get_ref()) {
                    Some(n) if n >= 1 << 20 => {}
                    _ => {
                        return Err(self.error(
                            &root.size,
                            format!("{field}.root.size: {:?} is not a size of at least 1M", root.size.get_ref()),
                        ));
                    }
                }
                if let Some(seed) = &root.seed {
                    let host = self.dir().join(seed.get_ref());
                    if !host.is_dir() {
                        return Err(
                            self.error(seed, format!("{field}.root.seed: {} is not a directory", host.display()))
                        );
                    }
                }
            }
            for (d, device) in c.devices.iter().enumerate() {
                let mut parts = device.get_ref().split(':');
                let dev = parts.next().unwrap_or("");
                let flags_ok = parts.all(|f| matches!(f, "ro" | "exclusive" | "shared"));
                let name_ok = !dev.is_empty() && dev.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
                if !flags_ok || !name_ok {
                    return Err(self.error(
                        device,
                        format!("{field}.devices[{d}]: {:?} is not DEVICE[:ro][:exclusive]", device.get_ref()),
                    ));
                }
            }
            for (v, kind) in c.virtual_devices.iter().enumerate() {
                if !VIRTUAL.contains(&kind.get_ref().as_str()) {
                    return Err(self.error(
                        kind,
                        format!("{field}.virtual[{v}]: {:?} is not one of {}", kind.get_ref(), VIRTUAL.join(", ")),
                    ));
                }
            }
            let seeded = c.root.as_ref().is_some_and(|r| r.seed.is_some());
            for (r, run) in c.run.iter().enumerate() {
                self.check_run(&format!("{field}.run[{r}]"), run, programs, seeded)?;
                if run.trusted {
                    return Err(self
                        .error(&run.program, format!("{field}.run[{r}].trusted: only the root container's programs")));
                }
            }
        }
        Ok(())
    }

    /// The spec with every default written out, as kept in the image (`image.toml`).
    pub fn resolved(&self) -> String {
        toml::to_string_pretty(&self.spec).unwrap_or_default()
    }

    /// The kernel's `etc/boot.args`.
    pub fn boot_args(&self) -> String {
        self.spec.kernel.args.iter().map(|a| format!("{}\n", a.get_ref())).collect()
    }

    /// `etc/boot.plan`, what `init` does at boot (see `docs/image-spec.md`).
    pub fn plan(&self) -> String {
        let spec = &self.spec;
        let mut out = format!("# Vessel boot plan 1, compiled from {}\n", self.file.display());
        for (name, service) in [("device", &spec.services.device), ("vfs", &spec.services.vfs)] {
            if service.enabled {
                let mut line = format!("service {name} {}", service.restarts.get_ref());
                if name == "vfs" {
                    if !spec.root.data {
                        line.push_str(" --no-data");
                    }
                    for at in &spec.root.memory {
                        line.push_str(&format!(" --memory {}", at.get_ref()));
                    }
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        for (i, c) in spec.containers.iter().enumerate() {
            let limits = self.limits(i).unwrap_or_default();
            let mut line = format!("container {}", c.name.get_ref());
            line.push_str(&format!(" parent={}", c.parent.as_ref().map_or("-", |p| p.get_ref().as_str())));
            for (key, value) in ["pages", "processes", "threads", "objects"].iter().zip(limits) {
                if let Some(v) = value {
                    line.push_str(&format!(" {key}={v}"));
                }
            }
            if c.root.is_some() {
                line.push_str(&format!(" root=containers/{}.vsf", c.name.get_ref()));
            }
            if !c.devices.is_empty() {
                let devices: Vec<&str> = c.devices.iter().map(|d| d.get_ref().as_str()).collect();
                line.push_str(&format!(" devices={}", devices.join(",")));
            }
            if !c.virtual_devices.is_empty() {
                let kinds: Vec<&str> = c.virtual_devices.iter().map(|d| d.get_ref().as_str()).collect();
                line.push_str(&format!(" virtual={}", kinds.join(",")));
            }
            out.push_str(&line);
            out.push('\n');
            for run in &c.run {
                out.push_str(&run_line(&format!("in {}", c.name.get_ref()), run));
            }
        }
        // The root's programs last: a shell started at boot finds the containers made.
        for run in &spec.run {
            out.push_str(&run_line("run", run));
        }
        out
    }

    /// The containers whose root is made on the host: name, size in bytes, seed directory.
    pub fn vsf_roots(&self) -> Vec<(String, u64, Option<PathBuf>)> {
        self.spec
            .containers
            .iter()
            .filter_map(|c| {
                let root = c.root.as_ref()?;
                let size = parse_size(root.size.get_ref())?;
                Some((c.name.get_ref().clone(), size, root.seed.as_ref().map(|s| self.dir().join(s.get_ref()))))
            })
            .collect()
    }

    /// The files for the boot file system: path, bytes, mode.
    pub fn files(&self) -> Result<Vec<(String, Vec<u8>, u32)>, SpecError> {
        self.spec
            .files
            .iter()
            .map(|f| {
                let bytes = match (&f.source, &f.text) {
                    (Some(source), _) => {
                        let host = self.dir().join(source.get_ref());
                        std::fs::read(&host)
                            .map_err(|e| self.error(source, format!("files: {}: {e}", host.display())))?
                    }
                    (None, Some(text)) => text.clone().into_bytes(),
                    (None, None) => Vec::new(),
                };
                Ok((f.path.get_ref().clone(), bytes, f.mode))
            })
            .collect()
    }
}

/// One `run`/`in` line: `KIND MODE [trusted] PROGRAM ARGS...`.
fn run_line(kind: &str, run: &Run) -> String {
    let mode = match run.mode {
        Mode::Once => "once",
        Mode::Start => "start",
        Mode::Keep => "keep",
    };
    let mut line = format!("{kind} {mode}");
    if run.trusted {
        line.push_str(" trusted");
    }
    line.push(' ');
    line.push_str(run.program.get_ref());
    for arg in &run.args {
        line.push(' ');
        line.push_str(arg.get_ref());
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests;
