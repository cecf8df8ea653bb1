//! `burst SEED`: a write burst on `/data` (the FAT data disk) that never ends, for the crash
//! test (`tools/xtask/src/crash.rs`): the host kills QEMU somewhere in it, checks the image with
//! `fsck.fat -n`, and boots the same image again, which must mount and take the next burst.
//!
//! The tree is `/data/burst/`: directories `d0` to `d3`, each holding files `f00` to `f39`
//! (0 to 300 KiB) and a directory `sub` that comes and goes with one small file `sub/x` in it,
//! and `log`, a file that only grows (cut to 0 bytes past 8 MiB). Each step is one of: write a
//! whole file anew (in one `File::write` through the shared buffer, or in message-sized
//! pieces), append to `log`, overwrite part of a file (possibly growing it), cut a file, rename
//! one (within its directory or to another, replacing what is there), remove one, make or
//! remove `sub` and its file. After every 1 to 8 steps it syncs everything (`fs::sync_all`).
//!
//! Lines it prints (the host reads them):
//!
//! - `burst: seed S, /data is SOURCE` at start, or `burst: /data is not mounted (…)` and exit 1
//!   (`vfs` did not mount the disk: the burst must not run on the in-memory `/` instead);
//! - `burst: found N files, B bytes; read R bytes back` after listing what earlier boots left
//!   and reading the first few MiB of it back;
//! - `burst: checkpoint K KIND` (K = 1, 2, … each boot): `synced` right after a sync,
//!   `syncing` right before one, `unsynced` between syncs (with changes outstanding);
//! - `burst: refused: OP PATH: REASON` for every refusal other than `NoSpace`, and
//!   `burst: mismatch: …` when a file reads back shorter or longer than its listed size; it
//!   goes on after both (a full disk makes it remove files instead).
//!
//! The steps are drawn from an xorshift generator seeded with `SEED` mixed with what the boot
//! found on the disk, so a boot is reproducible from the image it starts on and the seed.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use vessel_protocol::Refusal;
use vessel_rt::abi::Error;
use vessel_rt::fs::{self, File, Kind, OpenFlags};
use vessel_rt::println;

vessel_rt::entry!(main);

/// The tree the burst works in.
const BASE: &str = "/data/burst";
/// Directories `d0` … below [`BASE`].
const DIRS: usize = 4;
/// Files `f00` … in each directory (a few dozen: each directory stays within a cluster or two).
const NAMES: usize = 40;
/// The largest file a step writes.
const MAX_FILE: usize = 300 << 10;
/// `log` is cut to 0 bytes once it is larger than this.
const MAX_LOG: u64 = 8 << 20;
/// At start, files are read back (in listing order) until this many bytes were read.
const READ_BACK: u64 = 4 << 20;

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().collect();
    let seed = match args.get(1..) {
        Some([seed]) => match seed.parse::<u64>() {
            Ok(seed) => seed,
            Err(_) => return usage(&args),
        },
        _ => return usage(&args),
    };
    let source = match data_source() {
        Ok(source) => source,
        Err(why) => {
            println!("burst: /data is not mounted ({why})");
            return 1;
        }
    };
    println!("burst: seed {seed}, /data is {source}");
    let mut burst = Burst::start(seed);
    burst.run()
}

fn usage(args: &[&str]) -> i32 {
    println!("burst: usage: burst SEED (a number), not {args:?}");
    2
}

/// What `/data` is mounted from (a FAT volume on a block device), or why it is not.
fn data_source() -> Result<String, String> {
    let mounts = fs::mounts(0).map_err(|r| format!("mounts: {r}"))?;
    match mounts.iter().find(|m| m.path == "/data") {
        Some(m) if m.source.starts_with("blk:") => Ok(m.source.clone()),
        Some(m) => Err(format!("/data is {}", m.source)),
        None => Err(format!("mounts: {:?}", mounts.iter().map(|m| (&m.path, &m.source)).collect::<Vec<_>>())),
    }
}

/// xorshift64: small, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Any state but 0 cycles through every other value.
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15).max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Where `sub` of a directory stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sub {
    /// No `sub`.
    None,
    /// `sub`, empty.
    Empty,
    /// `sub` holding `x`.
    WithFile,
}

/// The burst's state: what exists, as far as this boot knows (the server's view, which a
/// refusal would contradict).
struct Burst {
    rng: Rng,
    /// `exists[d][n]`: `dD/fNN` is there.
    exists: [[bool; NAMES]; DIRS],
    subs: [Sub; DIRS],
    /// The bytes every write takes from (refilled for each).
    buffer: Vec<u8>,
    /// Checkpoints printed this boot.
    checkpoint: u64,
    /// Steps done this boot.
    steps: u64,
    /// The server answered `NoSpace`: make room before the next write.
    full: bool,
}

fn dir(d: usize) -> String {
    format!("{BASE}/d{d}")
}

fn file(d: usize, n: usize) -> String {
    format!("{BASE}/d{d}/f{n:02}")
}

/// `name` as one of the files `fNN` (`NN` < [`NAMES`]).
fn file_number(name: &str) -> Option<usize> {
    let digits = name.strip_prefix('f')?;
    let n = digits.parse::<usize>().ok()?;
    (digits.len() == 2 && n < NAMES).then_some(n)
}

impl Burst {
    /// Makes the tree (what is missing of it), lists what earlier boots left, reads the start
    /// of it back and syncs.
    fn start(seed: u64) -> Burst {
        let mut burst = Burst {
            rng: Rng::new(seed),
            exists: [[false; NAMES]; DIRS],
            subs: [Sub::None; DIRS],
            buffer: vec![0; MAX_FILE],
            checkpoint: 0,
            steps: 0,
            full: false,
        };
        burst.make_dir(BASE);
        let mut files = 0u64;
        let mut bytes = 0u64;
        let mut listed = Vec::new();
        for d in 0..DIRS {
            burst.make_dir(&dir(d));
            let entries = match fs::read_dir(&dir(d)) {
                Ok(entries) => entries,
                Err(r) => {
                    burst.refused("read_dir", &dir(d), &r);
                    continue;
                }
            };
            for entry in entries {
                match (entry.kind, file_number(&entry.name)) {
                    (Kind::File, Some(n)) => {
                        burst.exists[d][n] = true;
                        files += 1;
                        bytes += entry.size;
                        listed.push((file(d, n), entry.size));
                    }
                    (Kind::Dir, _) if entry.name == "sub" => {
                        burst.subs[d] = match fs::metadata(&format!("{}/sub/x", dir(d))) {
                            Ok(_) => Sub::WithFile,
                            Err(_) => Sub::Empty,
                        };
                    }
                    _ => {}
                }
            }
        }
        let mut read = 0u64;
        for (path, size) in &listed {
            if read >= READ_BACK {
                break;
            }
            match fs::read(path) {
                Ok(data) if data.len() as u64 == *size => read += *size,
                Ok(data) => println!("burst: mismatch: {path} is listed with {size} bytes, reads {}", data.len()),
                Err(r) => burst.refused("read", path, &r),
            }
        }
        println!("burst: found {files} files, {bytes} bytes; read {read} bytes back");
        // Each boot draws its own steps: what it found differs from boot to boot.
        burst.rng = Rng::new(seed ^ files.wrapping_mul(0x0100_0000_01B3) ^ bytes.rotate_left(29));
        burst.sync();
        burst
    }

    /// Steps without end (the host kills the machine); 1 only if `/data` goes away.
    fn run(&mut self) -> i32 {
        loop {
            let steps = 1 + self.rng.below(8);
            for _ in 0..steps {
                self.step();
                if self.rng.one_in(4) {
                    self.print_checkpoint("unsynced");
                }
            }
            if self.rng.one_in(3) {
                self.print_checkpoint("syncing");
            }
            self.sync();
            self.print_checkpoint("synced");
            if self.checkpoint.is_multiple_of(64) && data_source().is_err() {
                println!("burst: /data went away after {} steps", self.steps);
                return 1;
            }
        }
    }

    fn print_checkpoint(&mut self, kind: &str) {
        self.checkpoint += 1;
        println!("burst: checkpoint {} {kind}", self.checkpoint);
    }

    /// Reports a refusal; `NoSpace` is expected once the disk is full and only makes the next
    /// step free room.
    fn refused(&mut self, op: &str, path: &str, r: &Refusal) {
        if r.error == Error::NoSpace {
            self.full = true;
        } else {
            println!("burst: refused: {op} {path}: {r}");
        }
    }

    fn make_dir(&mut self, path: &str) {
        match fs::create_dir(path) {
            Err(r) if r.error != Error::AlreadyExists => self.refused("mkdir", path, &r),
            _ => {}
        }
    }

    fn sync(&mut self) {
        if let Err(r) = fs::sync_all() {
            self.refused("sync", "/", &r);
        }
    }

    /// One step, drawn at random.
    fn step(&mut self) {
        self.steps += 1;
        if self.full {
            self.make_room();
            return;
        }
        match self.rng.below(100) {
            0..40 => self.write_file(),
            40..55 => self.append_log(),
            55..65 => self.overwrite_part(),
            65..70 => self.cut_file(),
            70..82 => self.rename_file(),
            82..94 => self.remove_file(),
            _ => self.toggle_sub(),
        }
    }

    /// A file that exists, drawn at random (none if there is none).
    fn existing(&mut self) -> Option<(usize, usize)> {
        let all: Vec<(usize, usize)> =
            (0..DIRS).flat_map(|d| (0..NAMES).map(move |n| (d, n))).filter(|&(d, n)| self.exists[d][n]).collect();
        if all.is_empty() { None } else { Some(all[self.rng.below(all.len())]) }
    }

    /// A size for a new file: empty, one message or less, up to 64 KiB, or up to [`MAX_FILE`].
    fn size(&mut self) -> usize {
        match self.rng.below(10) {
            0 => 0,
            1..4 => 1 + self.rng.below(fs::MAX_IO),
            4..7 => 1 + self.rng.below(64 << 10),
            _ => 1 + self.rng.below(MAX_FILE),
        }
    }

    /// Fills the first `len` bytes of the buffer with bytes no earlier write left there.
    fn fill(&mut self, len: usize) {
        let mut word = self.rng.next() | 1;
        for chunk in self.buffer[..len].chunks_mut(8) {
            word ^= word << 13;
            word ^= word >> 7;
            word ^= word << 17;
            chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        }
    }

    /// Writes the first `len` bytes of the buffer to `f` at its position: all at once (through
    /// the shared buffer when larger than a message) or in pieces of at most a message.
    fn write_out(&mut self, f: &mut File, path: &str, len: usize) {
        let whole = self.rng.one_in(2);
        let mut at = 0;
        while at < len {
            let piece = if whole { len - at } else { (1 + self.rng.below(fs::MAX_IO)).min(len - at) };
            match f.write(&self.buffer[at..at + piece]) {
                Ok(0) => {
                    println!("burst: refused: write {path}: the server took 0 of {piece} bytes at {at}");
                    return;
                }
                Ok(n) => at += n,
                Err(r) => {
                    self.refused("write", path, &r);
                    return;
                }
            }
        }
    }

    /// Writes `dD/fNN` anew (created, or cut to 0 bytes first).
    fn write_file(&mut self) {
        let (d, n) = (self.rng.below(DIRS), self.rng.below(NAMES));
        let path = file(d, n);
        let mut f = match File::create(&path) {
            Ok(f) => f,
            Err(r) => return self.refused("create", &path, &r),
        };
        self.exists[d][n] = true;
        let len = self.size();
        self.fill(len);
        self.write_out(&mut f, &path, len);
    }

    /// Appends a line and up to 6 KiB to `log`; cuts it to 0 bytes when it grew too large.
    fn append_log(&mut self) {
        let path = format!("{BASE}/log");
        let mut f = match File::open_with(&path, OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND) {
            Ok(f) => f,
            Err(r) => return self.refused("open", &path, &r),
        };
        match f.metadata() {
            Ok(stat) if stat.size > MAX_LOG => {
                if let Err(r) = f.set_len(0) {
                    self.refused("truncate", &path, &r);
                }
            }
            Ok(_) => {}
            Err(r) => self.refused("stat", &path, &r),
        }
        let line = format!("step {} checkpoint {}\n", self.steps, self.checkpoint);
        if let Err(r) = f.write_all(line.as_bytes()) {
            return self.refused("append", &path, &r);
        }
        let len = self.rng.below(6 << 10);
        self.fill(len);
        self.write_out(&mut f, &path, len);
    }

    /// Overwrites a stretch of an existing file, from anywhere up to 8 KiB past its end.
    fn overwrite_part(&mut self) {
        let Some((d, n)) = self.existing() else { return self.write_file() };
        let path = file(d, n);
        let mut f = match File::open_with(&path, OpenFlags::WRITE) {
            Ok(f) => f,
            Err(r) => return self.refused("open", &path, &r),
        };
        let size = match f.metadata() {
            Ok(stat) => stat.size as usize,
            Err(r) => return self.refused("stat", &path, &r),
        };
        let at = self.rng.below(size + (8 << 10));
        let len = 1 + self.rng.below(20_000);
        self.fill(len);
        if let Err(r) = f.seek(fs::Whence::Start, at as i64) {
            return self.refused("seek", &path, &r);
        }
        self.write_out(&mut f, &path, len);
    }

    /// Cuts an existing file to a shorter length.
    fn cut_file(&mut self) {
        let Some((d, n)) = self.existing() else { return self.write_file() };
        let path = file(d, n);
        let f = match File::open_with(&path, OpenFlags::WRITE) {
            Ok(f) => f,
            Err(r) => return self.refused("open", &path, &r),
        };
        let size = match f.metadata() {
            Ok(stat) => stat.size as usize,
            Err(r) => return self.refused("stat", &path, &r),
        };
        let len = self.rng.below(size + 1);
        if let Err(r) = f.set_len(len as u64) {
            self.refused("truncate", &path, &r);
        }
    }

    /// Renames an existing file, within its directory or to another one (half the time each),
    /// replacing the file of the new name if there is one.
    fn rename_file(&mut self) {
        let Some((d, n)) = self.existing() else { return self.write_file() };
        let to_dir = if self.rng.one_in(2) { d } else { self.rng.below(DIRS) };
        let to_name = self.rng.below(NAMES);
        if (to_dir, to_name) == (d, n) {
            return;
        }
        let (from, to) = (file(d, n), file(to_dir, to_name));
        match fs::rename(&from, &to) {
            Ok(()) => {
                self.exists[d][n] = false;
                self.exists[to_dir][to_name] = true;
            }
            Err(r) => self.refused("rename", &format!("{from} -> {to}"), &r),
        }
    }

    /// Removes an existing file.
    fn remove_file(&mut self) {
        let Some((d, n)) = self.existing() else { return self.write_file() };
        let path = file(d, n);
        match fs::remove(&path) {
            Ok(()) => self.exists[d][n] = false,
            Err(r) => self.refused("remove", &path, &r),
        }
    }

    /// Moves `dD/sub` one state on: made, given its file, its file removed, removed.
    fn toggle_sub(&mut self) {
        let d = self.rng.below(DIRS);
        let sub = format!("{}/sub", dir(d));
        let x = format!("{sub}/x");
        match self.subs[d] {
            Sub::None => match fs::create_dir(&sub) {
                Ok(()) => self.subs[d] = Sub::Empty,
                Err(r) => self.refused("mkdir", &sub, &r),
            },
            Sub::Empty if self.rng.one_in(2) => match fs::remove(&sub) {
                Ok(()) => self.subs[d] = Sub::None,
                Err(r) => self.refused("rmdir", &sub, &r),
            },
            Sub::Empty => {
                let len = self.rng.below(2 << 10);
                self.fill(len);
                match fs::write(&x, &self.buffer[..len]) {
                    Ok(()) => self.subs[d] = Sub::WithFile,
                    Err(r) => self.refused("write", &x, &r),
                }
            }
            Sub::WithFile => match fs::remove(&x) {
                Ok(()) => self.subs[d] = Sub::Empty,
                Err(r) => self.refused("remove", &x, &r),
            },
        }
    }

    /// Removes about half of the files (the disk was full), then syncs so the room is there.
    fn make_room(&mut self) {
        for d in 0..DIRS {
            for n in 0..NAMES {
                if self.exists[d][n] && self.rng.one_in(2) {
                    let path = file(d, n);
                    match fs::remove(&path) {
                        Ok(()) => self.exists[d][n] = false,
                        Err(r) => self.refused("remove", &path, &r),
                    }
                }
            }
        }
        let path = format!("{BASE}/log");
        match File::open_with(&path, OpenFlags::WRITE) {
            Ok(f) => {
                if let Err(r) = f.set_len(0) {
                    self.refused("truncate", &path, &r);
                }
            }
            Err(r) if r.error == Error::NotFound => {}
            Err(r) => self.refused("open", &path, &r),
        }
        self.full = false;
        println!("burst: the disk was full; removed about half of the files");
        self.sync();
    }
}
