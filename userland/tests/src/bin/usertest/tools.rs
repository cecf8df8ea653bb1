//! Tests of the file tools (`ls`, `cat`, `echo`, `cp`, `mv`, `rm`, `mkdir`, `touch`,
//! `hexdump`), run as the shell runs them: each is spawned from the boot file system with its
//! standard output and error (and input, for `cat` and `hexdump`) in files of `/tmp/tools-io`,
//! and its exact output and exit code are checked. The working directory they get (`PWD`) is
//! `/tmp/tools`, so relative paths are tried too; `cp`, `mv`, `rm` and `ls` also run on the FAT
//! disk (`/data/tools`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use vessel_device_protocol::DateTime;
use vessel_proc_protocol::Ending;
use vessel_rt::abi::Error;
use vessel_rt::fs::{self, File, Kind, Whence};
use vessel_rt::proc::Proc;

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("tools::every_tool_answers_help_and_refuses_unknown_options", help_and_unknown_options),
    ("tools::echo_prints_its_arguments", echo_prints_its_arguments),
    ("tools::cat_copies_files_and_standard_input", cat_copies_files_and_standard_input),
    ("tools::ls_lists_sorted_with_long_lines", ls_lists_sorted_with_long_lines),
    ("tools::cp_mv_rm_on_memory_and_fat", cp_mv_rm_on_memory_and_fat),
    ("tools::mv_between_file_systems_copies_then_removes", mv_between_file_systems),
    ("tools::mkdir_and_touch", mkdir_and_touch),
    ("tools::hexdump_is_canonical", hexdump_is_canonical),
];

/// The working directory the tools get.
const PWD: &str = "/tmp/tools";
/// Where their standard streams go.
const IO_DIR: &str = "/tmp/tools-io";
/// Longest a tool may take.
const TIMEOUT_NS: u64 = 30_000_000_000;

fn e<T: core::fmt::Display>(what: &str) -> impl Fn(T) -> String + '_ {
    move |r| format!("{what}: {r}")
}

/// How a tool's run ended and what it printed.
pub(crate) struct Run {
    pub(crate) ending: Ending,
    pub(crate) out: String,
    pub(crate) err: String,
}

impl Run {
    /// Whether it exited with `code`, printing `out` on standard output and nothing on error.
    fn is(&self, code: i64, out: &str) -> bool {
        self.ending == Ending::Code(code) && self.out == out && self.err.is_empty()
    }
}

impl core::fmt::Display for Run {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}, stdout {:?}, stderr {:?}", self.ending, self.out, self.err)
    }
}

/// Runs `bin/<tool>` with `args`.
pub(crate) fn run(tool: &str, args: &[&str]) -> Result<Run, String> {
    run_with_input(tool, args, None)
}

/// Runs `bin/<tool>` with `args`, its standard input a file holding `input` if given.
fn run_with_input(tool: &str, args: &[&str], input: Option<&[u8]>) -> Result<Run, String> {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let _ = fs::create_dir(IO_DIR);
    let _ = fs::create_dir(PWD);
    let names = [format!("{IO_DIR}/out{n}"), format!("{IO_DIR}/err{n}"), format!("{IO_DIR}/in{n}")];
    let mut out = File::create(&names[0]).map_err(e("create stdout"))?;
    let mut err = File::create(&names[1]).map_err(e("create stderr"))?;
    let mut env = format!("STDOUT=file:{:#x}\0STDERR=file:{:#x}\0PWD={PWD}\0", out.handle(), err.handle());
    let stdin = match input {
        Some(bytes) => {
            let mut file = File::create(&names[2]).map_err(e("create stdin"))?;
            file.write_all(bytes).map_err(e("write stdin"))?;
            file.seek(Whence::Start, 0).map_err(e("seek stdin"))?;
            env.push_str(&format!("STDIN=file:{:#x}\0", file.handle()));
            Some(file)
        }
        None => None,
    };
    let proc = Proc::get().ok_or_else(|| String::from("no proc capability"))?;
    let path = format!("bin/{tool}");
    let (pid, _) = proc.spawn_env(0, &path, args, env.as_bytes(), &[]).map_err(e("spawn"))?;
    let ending = proc.wait_timeout(0, pid, TIMEOUT_NS).map_err(|r| format!("{tool} {args:?}: wait: {r}"))?;
    let read_back = |file: &mut File| -> Result<String, String> {
        file.seek(Whence::Start, 0).map_err(e("seek"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(e("read back"))?;
        String::from_utf8(bytes).map_err(|_| format!("{tool} {args:?}: output is not UTF-8"))
    };
    let run = Run { ending, out: read_back(&mut out)?, err: read_back(&mut err)? };
    drop((out, err, stdin));
    for name in &names {
        let _ = fs::remove(name);
    }
    Ok(run)
}

/// A fresh, empty directory `path` (whatever an earlier run left there is removed).
fn fresh_dir(path: &str) -> TestResult {
    if fs::metadata(path).is_ok() {
        let cleared = run("rm", &["-r", path])?;
        check!(cleared.is(0, ""), "rm -r {path}: {cleared}");
    }
    fs::create_dir(path).map_err(|r| format!("mkdir {path}: {r}"))
}

/// A pattern that differs at every offset.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8 ^ (i >> 11) as u8).collect()
}

/// `ls -l`'s time of `path` as the tool must print it.
fn shown_time(path: &str) -> Result<String, String> {
    let modified = fs::metadata(path).map_err(|r| format!("stat {path}: {r}"))?.modified;
    Ok(match DateTime::from_unix(modified).filter(|_| modified != 0) {
        Some(d) => format!("{:04}-{:02}-{:02} {:02}:{:02}", d.year, d.month, d.day, d.hour, d.minute),
        None => String::from("-               "),
    })
}

/// Whether `run` failed with exit code 1, nothing on stdout, and `tool: path: ` then a reason
/// containing `reason` on stderr, one line.
fn failed_on(run: &Run, tool: &str, path: &str, reason: &str) -> bool {
    let head = format!("{tool}: {path}: ");
    run.ending == Ending::Code(1)
        && run.err.starts_with(&head)
        && run.err.contains(reason)
        && run.err.ends_with('\n')
        && run.err.lines().count() == 1
}

fn help_and_unknown_options() -> TestResult {
    for tool in ["ls", "cat", "echo", "cp", "mv", "rm", "mkdir", "touch", "hexdump"] {
        let help = run(tool, &["--help"])?;
        check!(
            help.ending == Ending::Code(0) && help.out.starts_with(&format!("usage: {tool} ")) && help.err.is_empty(),
            "{tool} --help: {help}"
        );
        check!(!help.out.contains("{") && help.out.ends_with('\n'), "{tool} --help: {help}");
        if tool == "echo" {
            continue;
        }
        let bad = run(tool, &["-Z", "x"])?;
        check!(
            bad.ending == Ending::Code(2) && bad.out.is_empty() && bad.err.starts_with(&format!("{tool}: ")),
            "{tool} -Z: {bad}"
        );
        check!(bad.err.contains("-Z"), "{tool} -Z does not name the option: {bad}");
        let long = run(tool, &["--bogus"])?;
        check!(long.ending == Ending::Code(2) && long.err.contains("--bogus"), "{tool} --bogus: {long}");
    }
    Ok(())
}

fn echo_prints_its_arguments() -> TestResult {
    let cases: [(&[&str], &str); 6] = [
        (&["hello", "world"], "hello world\n"),
        (&["two  spaces"], "two  spaces\n"),
        (&[], "\n"),
        (&["-n", "no", "newline"], "no newline"),
        (&["-x", "-n"], "-x -n\n"),
        (&["--help", "me"], "--help me\n"),
    ];
    for (args, expected) in cases {
        let got = run("echo", args)?;
        check!(got.is(0, expected), "echo {args:?}: {got}");
    }
    Ok(())
}

fn cat_copies_files_and_standard_input() -> TestResult {
    let dir = "/tmp/tools/cat";
    fresh_dir(dir)?;
    fs::write("/tmp/tools/cat/a", b"alpha\n").map_err(e("write a"))?;
    fs::write("/tmp/tools/cat/b", b"beta\n").map_err(e("write b"))?;
    let both = run("cat", &["cat/a", "/tmp/tools/cat/b"])?;
    check!(both.is(0, "alpha\nbeta\n"), "cat a b: {both}");
    let stdin = run_with_input("cat", &[], Some(b"from standard input\n"))?;
    check!(stdin.is(0, "from standard input\n"), "cat with STDIN: {stdin}");
    let dash = run_with_input("cat", &["cat/a", "-", "cat/b"], Some(b"middle\n"))?;
    check!(dash.is(0, "alpha\nmiddle\nbeta\n"), "cat a - b: {dash}");
    // A missing file is reported; the others are still copied.
    let missing = run("cat", &["cat/a", "cat/missing", "cat/b"])?;
    check!(missing.out == "alpha\nbeta\n", "cat a missing b: {missing}");
    check!(failed_on(&missing, "cat", "cat/missing", "(not found)"), "cat a missing b: {missing}");
    let directory = run("cat", &[dir])?;
    check!(failed_on(&directory, "cat", dir, "(is a directory)"), "cat DIR: {directory}");
    // A file larger than any one transfer comes out byte for byte (checked as text: hex).
    let big: Vec<u8> = pattern(300_000).iter().map(|b| b"0123456789abcdef"[usize::from(b & 15)]).collect();
    fs::write("/tmp/tools/cat/big", &big).map_err(e("write big"))?;
    let whole = run("cat", &["cat/big"])?;
    check!(
        whole.ending == Ending::Code(0) && whole.out.as_bytes() == big.as_slice() && whole.err.is_empty(),
        "cat big: {}, {} bytes of {}, stderr {:?}",
        whole.ending,
        whole.out.len(),
        big.len(),
        whole.err
    );
    Ok(())
}

fn ls_lists_sorted_with_long_lines() -> TestResult {
    for base in ["/tmp/tools/ls", "/data/tools-ls"] {
        fresh_dir(base)?;
        fs::write(&format!("{base}/b"), b"bbb").map_err(e("write b"))?;
        fs::write(&format!("{base}/a"), &pattern(12_345)).map_err(e("write a"))?;
        fs::write(&format!("{base}/.hidden"), b"").map_err(e("write .hidden"))?;
        fs::create_dir(&format!("{base}/c")).map_err(e("mkdir c"))?;
        let plain = run("ls", &[base])?;
        check!(plain.is(0, "a\nb\nc\n"), "ls {base}: {plain}");
        let all = run("ls", &["-a", base])?;
        check!(all.is(0, ".\n..\n.hidden\na\nb\nc\n"), "ls -a {base}: {all}");
        let long = run("ls", &["-l", base])?;
        let (ta, tb, tc) =
            (shown_time(&format!("{base}/a"))?, shown_time(&format!("{base}/b"))?, shown_time(&format!("{base}/c"))?);
        let expected = format!("- 12345 {ta} a\n-     3 {tb} b\nd     0 {tc} c\n");
        check!(long.is(0, &expected), "ls -l {base}: {long}\n    expected {expected:?}");
        if base.starts_with("/data") {
            check!(!ta.starts_with('-'), "FAT keeps times, yet ls -l shows none: {long}");
        }
        // A file operand is listed as given; files first, then each directory under a header.
        let file = run("ls", &["-l", &format!("{base}/b")])?;
        check!(file.is(0, &format!("- 3 {tb} {base}/b\n")), "ls -l FILE: {file}");
        let several = run("ls", &[&format!("{base}/c"), &format!("{base}/b"), base])?;
        let expected = format!("{base}/b\n\n{base}:\na\nb\nc\n\n{base}/c:\n");
        check!(several.is(0, &expected), "ls c b DIR: {several}");
        let missing = run("ls", &[&format!("{base}/missing"), &format!("{base}/c")])?;
        check!(missing.out == format!("{base}/c:\n"), "ls missing c: {missing}");
        check!(failed_on(&missing, "ls", &format!("{base}/missing"), "(not found)"), "ls missing c: {missing}");
    }
    // The working directory, relative operands.
    let here = run("ls", &["ls"])?;
    check!(here.is(0, "a\nb\nc\n"), "ls ls (relative to {PWD}): {here}");
    let cwd = run("ls", &[])?;
    check!(cwd.ending == Ending::Code(0) && cwd.out.lines().any(|l| l == "ls"), "ls in {PWD}: {cwd}");
    let _ = run("rm", &["-r", "/data/tools-ls"])?;
    Ok(())
}

fn cp_mv_rm_on_memory_and_fat() -> TestResult {
    for base in ["/tmp/tools/files", "/data/tools"] {
        fresh_dir(base)?;
        let p = |name: &str| format!("{base}/{name}");
        let data = pattern(300_000);
        fs::write(&p("f"), &data).map_err(e("write f"))?;
        // cp: to a new name, into a directory, onto itself; a directory only with -r.
        let copied = run("cp", &[&p("f"), &p("g")])?;
        check!(copied.is(0, ""), "cp f g: {copied}");
        check!(fs::read(&p("g")).map_err(e("read g"))? == data, "{base}: g differs from f");
        fs::create_dir(&p("d")).map_err(e("mkdir d"))?;
        let into = run("cp", &[&p("f"), &p("g"), &p("d")])?;
        check!(into.is(0, ""), "cp f g d: {into}");
        check!(fs::read(&p("d/f")).map_err(e("read d/f"))? == data, "{base}: d/f differs");
        check!(fs::read(&p("d/g")).is_ok(), "{base}: no d/g");
        let itself = run("cp", &[&p("f"), &p("f")])?;
        check!(failed_on(&itself, "cp", &p("f"), "the same file"), "cp f f: {itself}");
        check!(fs::read(&p("f")).map_err(e("read f"))? == data, "{base}: cp f f damaged f");
        let no_r = run("cp", &[&p("d"), &p("e")])?;
        check!(failed_on(&no_r, "cp", &p("d"), "-r"), "cp d e: {no_r}");
        fs::create_dir(&p("d/sub")).map_err(e("mkdir d/sub"))?;
        fs::write(&p("d/sub/deep"), b"deep").map_err(e("write deep"))?;
        let tree = run("cp", &["-r", &p("d"), &p("e")])?;
        check!(tree.is(0, ""), "cp -r d e: {tree}");
        check!(fs::read(&p("e/sub/deep")).map_err(e("read e/sub/deep"))? == b"deep", "{base}: e/sub/deep");
        check!(fs::read(&p("e/f")).map_err(e("read e/f"))? == data, "{base}: e/f");
        let inside = run("cp", &["-r", &p("d"), &p("d/sub")])?;
        check!(failed_on(&inside, "cp", &p("d"), "into itself"), "cp -r d d/sub: {inside}");
        let missing = run("cp", &[&p("missing"), &p("x")])?;
        check!(failed_on(&missing, "cp", &p("missing"), "(not found)"), "cp missing x: {missing}");
        let listed = run("ls", &[base])?;
        check!(listed.is(0, "d\ne\nf\ng\n"), "ls {base} after cp: {listed}");
        // mv: rename, into a directory, a missing source.
        let moved = run("mv", &[&p("g"), &p("h")])?;
        check!(moved.is(0, ""), "mv g h: {moved}");
        check!(fs::metadata(&p("g")).is_err_and(|r| r.error == Error::NotFound), "{base}: g still there");
        check!(fs::read(&p("h")).map_err(e("read h"))? == data, "{base}: h differs");
        let into = run("mv", &[&p("h"), &p("e")])?;
        check!(into.is(0, "") && fs::read(&p("e/h")).is_ok(), "mv h e: {into}");
        let missing = run("mv", &[&p("missing"), &p("x")])?;
        check!(failed_on(&missing, "mv", &p("missing"), "(not found)"), "mv missing x: {missing}");
        // rm: a file, a directory only with -r, a missing path unless -f.
        let removed = run("rm", &[&p("f")])?;
        check!(removed.is(0, ""), "rm f: {removed}");
        check!(fs::metadata(&p("f")).is_err_and(|r| r.error == Error::NotFound), "{base}: f still there");
        let dir = run("rm", &[&p("d")])?;
        check!(failed_on(&dir, "rm", &p("d"), "-r"), "rm d: {dir}");
        let missing = run("rm", &[&p("missing")])?;
        check!(failed_on(&missing, "rm", &p("missing"), "(not found)"), "rm missing: {missing}");
        let forced = run("rm", &["-f", &p("missing")])?;
        check!(forced.is(0, ""), "rm -f missing: {forced}");
        let dot = run("rm", &["-r", &format!("{base}/d/..")])?;
        check!(failed_on(&dot, "rm", &format!("{base}/d/.."), "refusing"), "rm -r d/..: {dot}");
        let all = run("rm", &["-r", &p("d"), &p("e")])?;
        check!(all.is(0, ""), "rm -r d e: {all}");
        let empty = run("ls", &["-a", base])?;
        check!(empty.is(0, ".\n..\n"), "ls -a {base} at the end: {empty}");
    }
    let _ = run("rm", &["-r", "/data/tools"])?;
    fs::sync_all().map_err(e("sync"))?;
    Ok(())
}

fn mv_between_file_systems() -> TestResult {
    let (from, to) = ("/tmp/tools/mv", "/data/tools-mv");
    fresh_dir(from)?;
    fresh_dir(to)?;
    let data = pattern(70_000);
    fs::write("/tmp/tools/mv/file", &data).map_err(e("write file"))?;
    fs::create_dir("/tmp/tools/mv/dir").map_err(e("mkdir dir"))?;
    fs::write("/tmp/tools/mv/dir/inner", b"inner").map_err(e("write inner"))?;
    let file = run("mv", &["mv/file", to])?;
    check!(file.is(0, ""), "mv file /data: {file}");
    check!(fs::read("/data/tools-mv/file").map_err(e("read moved"))? == data, "the moved file differs");
    check!(fs::metadata("/tmp/tools/mv/file").is_err(), "the source file is still there");
    let dir = run("mv", &["/tmp/tools/mv/dir", "/data/tools-mv/renamed"])?;
    check!(dir.is(0, ""), "mv dir /data/…/renamed: {dir}");
    check!(fs::read("/data/tools-mv/renamed/inner").map_err(e("read inner"))? == b"inner", "the moved tree");
    check!(fs::metadata("/tmp/tools/mv/dir").is_err(), "the source directory is still there");
    // And back, into a directory of the memory file system.
    let back = run("mv", &["/data/tools-mv/renamed", from])?;
    check!(back.is(0, ""), "mv back: {back}");
    check!(fs::read("/tmp/tools/mv/renamed/inner").is_ok(), "moved back");
    let _ = run("rm", &["-r", to, from])?;
    Ok(())
}

fn mkdir_and_touch() -> TestResult {
    let base = "/tmp/tools/mk";
    fresh_dir(base)?;
    let made = run("mkdir", &["mk/one", "/tmp/tools/mk/two"])?;
    check!(made.is(0, ""), "mkdir one two: {made}");
    for dir in ["/tmp/tools/mk/one", "/tmp/tools/mk/two"] {
        check!(fs::metadata(dir).is_ok_and(|s| s.kind == Kind::Dir), "{dir} was not made");
    }
    let again = run("mkdir", &["mk/one", "mk/three"])?;
    check!(failed_on(&again, "mkdir", "mk/one", "(already exists)"), "mkdir one again: {again}");
    check!(fs::metadata("/tmp/tools/mk/three").is_ok(), "mkdir stopped at the failure");
    let orphan = run("mkdir", &["mk/no/such"])?;
    check!(failed_on(&orphan, "mkdir", "mk/no/such", "(not found)"), "mkdir without parent: {orphan}");
    let parents = run("mkdir", &["-p", "mk/a/b/c", "mk/one"])?;
    check!(parents.is(0, ""), "mkdir -p: {parents}");
    check!(fs::metadata("/tmp/tools/mk/a/b/c").is_ok_and(|s| s.kind == Kind::Dir), "mkdir -p made no a/b/c");
    fs::write("/tmp/tools/mk/file", b"keep me").map_err(e("write file"))?;
    let under_file = run("mkdir", &["-p", "mk/file/x"])?;
    check!(
        failed_on(&under_file, "mkdir", "/tmp/tools/mk/file", "(already exists)"),
        "mkdir -p under a file: {under_file}"
    );
    // touch: creates, leaves existing files (and directories) as they are.
    let touched = run("touch", &["mk/new", "mk/file", "mk/one"])?;
    check!(touched.is(0, ""), "touch: {touched}");
    let new = fs::metadata("/tmp/tools/mk/new").map_err(e("stat new"))?;
    check!(new.kind == Kind::File && new.size == 0, "touch made {new:?}");
    check!(fs::read("/tmp/tools/mk/file").map_err(e("read file"))? == b"keep me", "touch changed a file");
    let nowhere = run("touch", &["mk/no/such"])?;
    check!(failed_on(&nowhere, "touch", "mk/no/such", "(not found)"), "touch without parent: {nowhere}");
    let _ = run("rm", &["-r", base])?;
    Ok(())
}

fn hexdump_is_canonical() -> TestResult {
    let base = "/tmp/tools/hex";
    fresh_dir(base)?;
    fs::write("/tmp/tools/hex/hello", b"Hello world\n").map_err(e("write hello"))?;
    let mut zeros = Vec::from([0u8; 40]);
    zeros[39] = 0x7f;
    fs::write("/tmp/tools/hex/zeros", &zeros).map_err(e("write zeros"))?;
    let hello = "00000000  48 65 6c 6c 6f 20 77 6f  72 6c 64 0a              |Hello world.|\n0000000c\n";
    for args in [&["hex/hello"][..], &["-C", "hex/hello"][..]] {
        let got = run("hexdump", args)?;
        check!(got.is(0, hello), "hexdump {args:?}: {got}");
    }
    let squeezed = run("hexdump", &["-C", "hex/zeros"])?;
    let expected = "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n*\n\
                    00000020  00 00 00 00 00 00 00 7f                           |........|\n00000028\n";
    check!(squeezed.is(0, expected), "hexdump zeros: {squeezed}");
    let stdin = run_with_input("hexdump", &[], Some(b"Hello world\n"))?;
    check!(stdin.is(0, hello), "hexdump from STDIN: {stdin}");
    let empty = run("hexdump", &["-C", "/tmp/tools-io/../tools/hex/nothing"])?;
    check!(failed_on(&empty, "hexdump", "/tmp/tools-io/../tools/hex/nothing", "(not found)"), "missing: {empty}");
    fs::write("/tmp/tools/hex/nothing", b"").map_err(e("write nothing"))?;
    let nothing = run("hexdump", &["hex/nothing"])?;
    check!(nothing.is(0, ""), "hexdump of an empty file: {nothing}");
    let _ = run("rm", &["-r", base])?;
    Ok(())
}
