//! What the file tools (`ls`, `cat`, `echo`, `cp`, `mv`, `rm`, `mkdir`, `touch`, `hexdump`)
//! share: argument parsing ([`options`]), the canonical hex dump ([`hexdump`]), `ls -l` lines
//! ([`listing`]), path text ([`paths`]) and sizes with units ([`units`]), all pure and tested on the host; and, in the
//! programs only (not under `cfg(test)`, where the runtime is not linked), how a tool starts and
//! reports ([`tool`]) and the recursive copy and removal of file trees ([`tree`]).
//!
//! The conventions every tool follows: `--help` prints the usage to standard output and exits 0;
//! an unknown option is named on standard error and exits 2 (so do wrong operand counts); a
//! failure prints `tool: PATH: reason` to standard error, the tool goes on with its other
//! operands and exits 1 at the end.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod options {
    //! Command lines: one-letter flags (`-l`, `-rf`: several in one argument) anywhere before
    //! `--`, `--help`, and operands (a lone `-` is an operand: standard input for the tools
    //! that read).

    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    /// The one-letter flags given (ASCII only: anything else is never a known flag).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Flags(u128);

    impl Flags {
        /// Whether `-c` was given.
        pub fn has(self, c: char) -> bool {
            c.is_ascii() && self.0 & (1 << c as u32) != 0
        }

        fn set(&mut self, c: char) {
            if c.is_ascii() {
                self.0 |= 1 << c as u32;
            }
        }
    }

    /// A command line to carry out: its flags and its operands, in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Command<'a> {
        /// The flags given.
        pub flags: Flags,
        /// Everything else, in order.
        pub operands: Vec<&'a str>,
    }

    /// What a command line asks for.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Parsed<'a> {
        /// Do the work.
        Run(Command<'a>),
        /// `--help`: print the usage.
        Help,
        /// An option the tool does not know (`-x`, `--long`), as written.
        Unknown(String),
    }

    /// Parses `args` (without the program's name) for a tool whose flags are the letters of
    /// `known`.
    pub fn parse<'a>(args: &[&'a str], known: &str) -> Parsed<'a> {
        let mut command = Command { flags: Flags::default(), operands: Vec::new() };
        let mut options_done = false;
        for &arg in args {
            if options_done || arg == "-" || !arg.starts_with('-') {
                command.operands.push(arg);
            } else if arg == "--" {
                options_done = true;
            } else if arg == "--help" {
                return Parsed::Help;
            } else if arg.starts_with("--") {
                return Parsed::Unknown(String::from(arg));
            } else {
                for c in arg.chars().skip(1) {
                    if !known.contains(c) {
                        return Parsed::Unknown(format!("-{c}"));
                    }
                    command.flags.set(c);
                }
            }
        }
        Parsed::Run(command)
    }

    /// What `echo` is asked: it takes `-n` (no newline) only at the start, and prints any other
    /// argument as it is, dashes too (as `echo` does everywhere); `--help` only alone.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Echo<'a> {
        /// Print the words, a newline after them unless `newline` is false.
        Print {
            /// Whether a newline ends the output.
            newline: bool,
            /// The words, printed with one space between them.
            words: Vec<&'a str>,
        },
        /// `--help`.
        Help,
    }

    /// Parses `echo`'s arguments (without the program's name).
    pub fn echo<'a>(args: &[&'a str]) -> Echo<'a> {
        if args == ["--help"] {
            return Echo::Help;
        }
        let flags = args.iter().take_while(|a| a.len() > 1 && a.starts_with('-') && a[1..].bytes().all(|b| b == b'n'));
        let skip = flags.count();
        Echo::Print { newline: skip == 0, words: args[skip..].to_vec() }
    }
}

pub mod hexdump {
    //! The canonical hex dump of `hexdump -C`: lines of 16 bytes, each the offset (8 hex
    //! digits at least), the bytes in hex in two groups of 8, and the printable ASCII between
    //! bars (`.` for the rest); a run of lines equal to the one before is one `*`; the last line
    //! is the length. Nothing at all for no bytes.

    use alloc::string::String;
    use core::fmt::Write;

    /// Bytes per line.
    pub const WIDTH: usize = 16;

    /// A dump fed in pieces of any size (lines go out as they fill).
    #[derive(Clone, Debug, Default)]
    pub struct Dump {
        /// Offset of the line being filled.
        offset: u64,
        line: [u8; WIDTH],
        filled: usize,
        /// The last full line printed or skipped, and whether a `*` stands for a run of it.
        last: Option<[u8; WIDTH]>,
        squeezing: bool,
    }

    impl Dump {
        /// An empty dump at offset 0.
        pub fn new() -> Dump {
            Dump::default()
        }

        /// Adds `data`, appending the lines it completes to `out`.
        pub fn feed(&mut self, data: &[u8], out: &mut String) {
            for &byte in data {
                self.line[self.filled] = byte;
                self.filled += 1;
                if self.filled == WIDTH {
                    self.full_line(out);
                }
            }
        }

        fn full_line(&mut self, out: &mut String) {
            if self.last == Some(self.line) {
                if !self.squeezing {
                    out.push_str("*\n");
                    self.squeezing = true;
                }
            } else {
                line(out, self.offset, &self.line);
                self.last = Some(self.line);
                self.squeezing = false;
            }
            self.offset += WIDTH as u64;
            self.filled = 0;
        }

        /// Ends the dump: the partial last line and the length (none for no bytes).
        pub fn finish(mut self, out: &mut String) {
            if self.filled > 0 {
                line(out, self.offset, &self.line[..self.filled]);
                self.offset += self.filled as u64;
            }
            if self.offset > 0 {
                let _ = writeln!(out, "{:08x}", self.offset);
            }
        }
    }

    /// One line of up to [`WIDTH`] bytes at `offset`.
    pub fn line(out: &mut String, offset: u64, bytes: &[u8]) {
        let _ = write!(out, "{offset:08x} ");
        for i in 0..WIDTH {
            if i % 8 == 0 {
                out.push(' ');
            }
            match bytes.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str(" |");
        out.extend(bytes.iter().map(|&b| if (0x20..0x7f).contains(&b) { char::from(b) } else { '.' }));
        out.push_str("|\n");
    }
}

pub mod listing {
    //! `ls -l` lines: kind (`d` or `-`), size in bytes (right-aligned across the listing),
    //! modification time as `YYYY-MM-DD HH:MM` (UTC) and name.

    use alloc::format;
    use alloc::string::String;
    use core::fmt::Write;

    use vessel_device_protocol::DateTime;
    use vessel_vfs_protocol::Kind;

    /// Width of a time in a line.
    const TIME_WIDTH: usize = 16;

    /// `seconds` since the epoch as `YYYY-MM-DD HH:MM`; `-` (padded to the same width) for 0,
    /// which is what a file system that keeps no times answers, and past year 9999.
    pub fn time(seconds: u64) -> String {
        match DateTime::from_unix(seconds).filter(|_| seconds != 0) {
            Some(d) => format!("{:04}-{:02}-{:02} {:02}:{:02}", d.year, d.month, d.day, d.hour, d.minute),
            None => format!("{:<TIME_WIDTH$}", "-"),
        }
    }

    /// One entry of a listing.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Row {
        /// File or directory.
        pub kind: Kind,
        /// Bytes (0 for a directory).
        pub size: u64,
        /// Seconds since the epoch (0: unknown).
        pub modified: u64,
        /// The name shown.
        pub name: String,
    }

    /// The lines of `rows`, in their order, sizes aligned.
    pub fn long(rows: &[Row]) -> String {
        let width = rows.iter().map(|r| digits(r.size)).max().unwrap_or(1);
        let mut out = String::new();
        for row in rows {
            let kind = if row.kind == Kind::Dir { 'd' } else { '-' };
            let _ = writeln!(out, "{kind} {:>width$} {} {}", row.size, time(row.modified), row.name);
        }
        out
    }

    fn digits(mut n: u64) -> usize {
        let mut count = 1;
        while n >= 10 {
            n /= 10;
            count += 1;
        }
        count
    }

    /// Whether `ls` shows `name` (names starting with `.` only with `-a`).
    pub fn shown(name: &str, all: bool) -> bool {
        all || !name.starts_with('.')
    }
}

pub mod paths {
    //! Path text: the last name of a path, a name below a directory, and whether one path is
    //! inside another once `.` and `..` are resolved (as `vfs` resolves them).

    use alloc::string::String;
    use alloc::vec::Vec;

    use vessel_vfs_protocol::path;

    /// The last name of `path` (`b` of `/a/b/`); empty for `/`.
    pub fn file_name(path: &str) -> &str {
        let trimmed = path.trim_end_matches('/');
        trimmed.rsplit('/').next().unwrap_or(trimmed)
    }

    /// `name` below the directory `dir`.
    pub fn child(dir: &str, name: &str) -> String {
        let mut path = String::from(dir);
        if !path.ends_with('/') {
            path.push('/');
        }
        path.push_str(name);
        path
    }

    /// The components of the absolute path `path`, `.` and `..` resolved; `None` if `vfs`
    /// would refuse the path.
    pub fn components(path: &str) -> Option<Vec<String>> {
        path::resolve(&[], path).ok()
    }

    /// Whether the absolute path `inner` is `outer` or below it.
    pub fn within(inner: &str, outer: &str) -> bool {
        match (components(inner), components(outer)) {
            (Some(i), Some(o)) => path::starts_with(&i, &o),
            _ => false,
        }
    }

    /// Whether `path` ends in `.` or `..` (which `rm` refuses to remove).
    pub fn is_dot(path: &str) -> bool {
        matches!(file_name(path), "." | "..")
    }
}

#[cfg(not(test))]
pub mod tool {
    //! How a tool starts (parsing its command line, answering `--help` and unknown options)
    //! and reports a failure.

    use alloc::vec::Vec;
    use core::fmt::Display;

    use vessel_rt::{eprintln, print};

    use crate::options::{self, Command, Parsed};

    /// The command line of `tool`, whose flags are the letters of `flags`; `Err(exit code)`
    /// once `--help` was answered (0) or an unknown option reported (2).
    pub fn begin(tool: &str, usage: &str, flags: &str) -> Result<Command<'static>, i32> {
        let args: Vec<&'static str> = vessel_rt::args().skip(1).collect();
        match options::parse(&args, flags) {
            Parsed::Run(command) => Ok(command),
            Parsed::Help => {
                print!("{usage}");
                Err(0)
            }
            Parsed::Unknown(option) => Err(misuse(tool, format_args!("unknown option {option}"))),
        }
    }

    /// Reports a wrong command line (`tool: what; try tool --help`); the exit code, 2.
    pub fn misuse(tool: &str, what: impl Display) -> i32 {
        eprintln!("{tool}: {what}; try {tool} --help");
        2
    }

    /// Reports `tool: path: why` on standard error.
    pub fn fail(tool: &str, path: &str, why: impl Display) {
        eprintln!("{tool}: {path}: {why}");
    }

    /// Bytes a tool moves per read or write: one message's worth. Larger transfers would go
    /// through a buffer shared with `vfs`, which the server keeps for the process's container
    /// after the process ends (at most eight per container), so short-lived tools stay
    /// below it.
    pub const CHUNK: usize = vessel_rt::fs::MAX_IO;

    /// The exit code after a run: 1 if anything failed.
    pub fn status(failed: bool) -> i32 {
        i32::from(failed)
    }

    /// `poweroff` and `reboot`: `[-n]`; asks `vfs` to write every file system to disk (unless
    /// `-n`), then asks the kernel for `action` (`POWER_OFF`, `POWER_REBOOT`). `done` says what
    /// happens (`switch the machine off`); returns only if it did not happen.
    pub fn power(tool: &str, usage: &str, action: u64, done: &str) -> i32 {
        use vessel_rt::abi::Error;
        let command = match begin(tool, usage, "n") {
            Ok(command) => command,
            Err(code) => return code,
        };
        if let Some(operand) = command.operands.first() {
            return misuse(tool, format_args!("unexpected operand {operand}"));
        }
        if !command.flags.has('n') {
            // `NotFound`: no `vfs`, or nothing mounted here: nothing a sync could save.
            if let Err(r) = vessel_rt::fs::client().and_then(|_| vessel_rt::fs::sync_all())
                && r.error != Error::NotFound
            {
                eprintln!("{tool}: cannot write the file systems to disk: {r}; not done (-n skips the sync)");
                return 1;
            }
        }
        match vessel_rt::sys::power(action) {
            Error::AccessDenied => eprintln!("{tool}: only the root container may {done} (access denied)"),
            Error::NotFound => eprintln!("{tool}: the firmware's ACPI tables give no way to {done} (not found)"),
            e => eprintln!("{tool}: could not {done}: {e}"),
        }
        1
    }
}

#[cfg(not(test))]
pub mod tree {
    //! Copying and removing files and whole directory trees through `vfs`. A failure is
    //! reported (through the caller's `report`) with the path it happened on, and the walk
    //! goes on with the rest, as `cp -r` and `rm -r` do; each function says whether all went
    //! well.

    use alloc::string::{String, ToString};

    use vessel_protocol::Refusal;
    use vessel_rt::abi::Error;
    use vessel_rt::fs::{self, File, Kind};

    use crate::paths;

    /// What went wrong, and where.
    pub struct Failure {
        /// The path it happened on.
        pub path: String,
        /// Why: the server's refusal, or the tool's own reason.
        pub reason: String,
    }

    impl Failure {
        fn new(path: &str, reason: impl ToString) -> Failure {
            Failure { path: String::from(path), reason: reason.to_string() }
        }
    }

    /// Copies `from` to `to`: a file, or with `recursive` a directory and everything below it
    /// (merged into `to` if that directory exists).
    pub fn copy(from: &str, to: &str, recursive: bool, report: &mut dyn FnMut(Failure)) -> bool {
        let stat = match fs::metadata(from) {
            Ok(stat) => stat,
            Err(r) => {
                report(Failure::new(from, r));
                return false;
            }
        };
        if stat.kind == Kind::File {
            return match copy_file(from, to) {
                Ok(()) => true,
                Err(f) => {
                    report(f);
                    false
                }
            };
        }
        if !recursive {
            report(Failure::new(from, "is a directory (-r copies directories)"));
            return false;
        }
        if paths::within(&fs::absolute(to), &fs::absolute(from)) {
            report(Failure::new(from, format_args!("cannot copy a directory into itself ({to})")));
            return false;
        }
        if let Err(r) = ensure_dir(to) {
            report(Failure::new(to, r));
            return false;
        }
        let mut entries = match fs::read_dir(from) {
            Ok(entries) => entries,
            Err(r) => {
                report(Failure::new(from, r));
                return false;
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut ok = true;
        for entry in entries {
            ok &= copy(&paths::child(from, &entry.name), &paths::child(to, &entry.name), true, report);
        }
        ok
    }

    /// Makes the directory `path` unless it is one already.
    pub fn ensure_dir(path: &str) -> Result<(), Refusal> {
        // Asked first: `vfs` refuses `mkdir` on a mount point as an invalid path.
        if fs::metadata(path).is_ok_and(|s| s.kind == Kind::Dir) {
            return Ok(());
        }
        match fs::create_dir(path) {
            // Made meanwhile by someone else.
            Err(r) if r.error == Error::AlreadyExists && fs::metadata(path).is_ok_and(|s| s.kind == Kind::Dir) => {
                Ok(())
            }
            made => made,
        }
    }

    /// Copies the file `from` to `to` (created, or cut to its new contents).
    pub fn copy_file(from: &str, to: &str) -> Result<(), Failure> {
        let (source, target) = (fs::absolute(from), fs::absolute(to));
        if paths::components(&source) == paths::components(&target) {
            return Err(Failure::new(to, format_args!("the same file as {from}")));
        }
        let mut input = File::open(from).map_err(|r| Failure::new(from, r))?;
        let mut output = File::create(to).map_err(|r| Failure::new(to, r))?;
        let mut buf = [0u8; crate::tool::CHUNK];
        loop {
            let n = input.read(&mut buf).map_err(|r| Failure::new(from, r))?;
            if n == 0 {
                return output.close().map_err(|r| Failure::new(to, r));
            }
            output.write_all(&buf[..n]).map_err(|r| Failure::new(to, r))?;
        }
    }

    /// Removes `path`: a file, or a directory and everything below it. A directory whose
    /// contents could not all be removed is left (its failures are reported, not its own).
    pub fn remove(path: &str, report: &mut dyn FnMut(Failure)) -> bool {
        let stat = match fs::metadata(path) {
            Ok(stat) => stat,
            Err(r) => {
                report(Failure::new(path, r));
                return false;
            }
        };
        if stat.kind == Kind::Dir {
            let entries = match fs::read_dir(path) {
                Ok(entries) => entries,
                Err(r) => {
                    report(Failure::new(path, r));
                    return false;
                }
            };
            let mut ok = true;
            for entry in entries {
                ok &= remove(&paths::child(path, &entry.name), report);
            }
            if !ok {
                return false;
            }
        }
        match fs::remove(path) {
            Ok(()) => true,
            Err(r) => {
                report(Failure::new(path, r));
                false
            }
        }
    }

    /// The mount point `path` (absolute) lives under: the longest mount path that holds it.
    pub fn mount_of(path: &str) -> Option<String> {
        let mounts = fs::mounts(0).ok()?;
        mounts.into_iter().map(|m| m.path).filter(|m| paths::within(path, m)).max_by_key(String::len)
    }
}

/// Sizes for people.
pub mod units {
    use alloc::format;
    use alloc::string::String;

    /// `bytes` with a unit: `512 B`, `84 KiB`, `1.5 MiB`, `12 MiB`, `2.0 GiB` (one decimal
    /// below 10 of a unit, where it says something).
    pub fn bytes(bytes: u64) -> String {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        let mut scaled = bytes;
        while scaled >= 1024 && unit + 1 < UNITS.len() {
            scaled /= 1024;
            unit += 1;
        }
        let base = 1u64 << (10 * unit);
        let tenths = (u128::from(bytes) * 10 / u128::from(base)) % 10;
        if unit > 0 && scaled < 10 && tenths != 0 {
            format!("{scaled}.{tenths} {}", UNITS[unit])
        } else {
            format!("{scaled} {}", UNITS[unit])
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_have_units() {
        use super::units::bytes;
        assert_eq!(
            [bytes(0), bytes(512), bytes(84 * 1024), bytes(1536 * 1024), bytes(12 << 20), bytes(2 << 30)],
            ["0 B", "512 B", "84 KiB", "1.5 MiB", "12 MiB", "2 GiB"]
        );
    }

    use super::hexdump::Dump;
    use super::listing::{self, Row};
    use super::options::{self, Echo, Parsed};
    use super::paths;
    use vessel_vfs_protocol::Kind;

    fn run<'a>(args: &[&'a str], known: &str) -> (Vec<char>, Vec<&'a str>) {
        match options::parse(args, known) {
            Parsed::Run(c) => (('a'..='z').chain('A'..='Z').filter(|&x| c.flags.has(x)).collect(), c.operands),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_anywhere_combined_and_after_double_dash_operands() {
        assert_eq!(run(&["-l", "a", "-a", "b"], "la"), (vec!['a', 'l'], vec!["a", "b"]));
        assert_eq!(run(&["-rf", "x"], "rf"), (vec!['f', 'r'], vec!["x"]));
        assert_eq!(run(&["--", "-l", "-"], "l"), (vec![], vec!["-l", "-"]));
        assert_eq!(run(&["-"], "l"), (vec![], vec!["-"]));
        assert_eq!(run(&[], "l"), (vec![], vec![]));
    }

    #[test]
    fn help_and_unknown_options() {
        assert_eq!(options::parse(&["a", "--help"], "l"), Parsed::Help);
        assert_eq!(options::parse(&["-lx"], "l"), Parsed::Unknown("-x".into()));
        assert_eq!(options::parse(&["--long"], "l"), Parsed::Unknown("--long".into()));
        assert_eq!(options::parse(&["-é"], "l"), Parsed::Unknown("-é".into()));
        assert_eq!(
            options::parse(&["--", "--help"], "l"),
            Parsed::Run(options::Command { flags: Default::default(), operands: vec!["--help"] })
        );
    }

    #[test]
    fn echo_takes_leading_n_only() {
        assert_eq!(echo(&["-n", "a", "-n"]), (false, vec!["a", "-n"]));
        assert_eq!(echo(&["-nn", "-n", "b"]), (false, vec!["b"]));
        assert_eq!(echo(&["-x", "b"]), (true, vec!["-x", "b"]));
        assert_eq!(echo(&["-", "b"]), (true, vec!["-", "b"]));
        assert_eq!(echo(&[]), (true, vec![]));
        assert_eq!(options::echo(&["--help"]), Echo::Help);
        assert_eq!(echo(&["--help", "me"]), (true, vec!["--help", "me"]));
    }

    fn echo<'a>(args: &[&'a str]) -> (bool, Vec<&'a str>) {
        match options::echo(args) {
            Echo::Print { newline, words } => (newline, words),
            Echo::Help => panic!("help"),
        }
    }

    fn dump(data: &[u8], piece: usize) -> String {
        let mut dump = Dump::new();
        let mut out = String::new();
        for chunk in data.chunks(piece.max(1)) {
            dump.feed(chunk, &mut out);
        }
        dump.finish(&mut out);
        out
    }

    #[test]
    fn hexdump_matches_hexdump_c() {
        // Expected texts are `hexdump -C` (util-linux) output for the same bytes.
        assert_eq!(
            dump(b"Hello world\n", 5),
            "00000000  48 65 6c 6c 6f 20 77 6f  72 6c 64 0a              |Hello world.|\n0000000c\n"
        );
        assert_eq!(
            dump(&[0; 40], 7),
            "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n*\n\
             00000020  00 00 00 00 00 00 00 00                           |........|\n00000028\n"
        );
        assert_eq!(dump(b"", 1), "");
        let all: Vec<u8> = (0..=255).collect();
        let text = dump(&all, 100);
        assert_eq!(text.lines().count(), 17);
        assert!(text.contains("\n00000070  70 71 72 73 74 75 76 77  78 79 7a 7b 7c 7d 7e 7f  |pqrstuvwxyz{|}~.|\n"));
        assert!(text.ends_with("|................|\n00000100\n"));
    }

    #[test]
    fn hexdump_squeezes_runs_and_resumes_after_them() {
        let mut data = vec![b'a'; 64];
        data.extend_from_slice(&[b'b'; 16]);
        data.extend_from_slice(&[b'a'; 16]);
        let text = dump(&data, 3);
        let offsets: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap_or("")).collect();
        assert_eq!(offsets, ["00000000", "*", "00000040", "00000050", "00000060"]);
        // A line equal to the last full one is squeezed even when it ends the input.
        assert_eq!(dump(&[1; 32], 32).lines().collect::<Vec<_>>()[1..], ["*", "00000020"]);
    }

    #[test]
    fn times_are_minutes_in_utc() {
        assert_eq!(listing::time(1_893_553_445), "2030-01-02 03:04");
        assert_eq!(listing::time(951_868_800), "2000-03-01 00:00");
        assert_eq!(listing::time(0), "-               ");
        assert_eq!(listing::time(u64::MAX), "-               ");
    }

    #[test]
    fn long_lines_align_sizes() {
        let row = |kind, size, name: &str| Row { kind, size, modified: 1_893_553_445, name: name.into() };
        let rows = [row(Kind::Dir, 0, "dir"), row(Kind::File, 12345, "big"), row(Kind::File, 7, "small file")];
        assert_eq!(
            listing::long(&rows),
            "d     0 2030-01-02 03:04 dir\n- 12345 2030-01-02 03:04 big\n-     7 2030-01-02 03:04 small file\n"
        );
        assert_eq!(listing::long(&[]), "");
        assert!(listing::shown("a", false) && !listing::shown(".a", false) && listing::shown(".a", true));
    }

    #[test]
    fn path_text() {
        assert_eq!(paths::file_name("/a/b"), "b");
        assert_eq!(paths::file_name("/a/b/"), "b");
        assert_eq!(paths::file_name("b"), "b");
        assert_eq!(paths::file_name("/"), "");
        assert_eq!(paths::child("/a", "b"), "/a/b");
        assert_eq!(paths::child("/", "b"), "/b");
        assert!(paths::within("/a/b/c", "/a/b"));
        assert!(paths::within("/a/b/../b", "/a/b"));
        assert!(paths::within("/a", "/"));
        assert!(!paths::within("/a/bc", "/a/b"));
        assert!(!paths::within("/a/b/..", "/a/b"));
        assert!(paths::is_dot("a/..") && paths::is_dot(".") && paths::is_dot("./") && !paths::is_dot("a.b"));
    }
}
