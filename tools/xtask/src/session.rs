//! The shell session test: the shipped image boots with its shell on COM2 (`serial0`), whose
//! far end is a Unix socket the harness holds; the harness types as a person would (whole
//! lines, arrows, Tab, Backspace, Ctrl-C, Ctrl-D) and checks what the terminal shows. Each
//! step is one named check; a step that fails does not stop the others. The last step powers
//! the machine off from the shell, and QEMU must exit.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vessel_test_harness::interactive::Interactive;
use vessel_test_harness::qemu::{Machine, Run};

use crate::live::Check;

/// How long one step may wait for what it expects.
const STEP: Duration = Duration::from_secs(30);
/// How long the boot may take to show the first prompt.
const BOOT: Duration = Duration::from_secs(90);

/// The root container's prompt in a directory.
fn prompt(dir: &str) -> String {
    format!("root:{dir}$ ")
}

/// The harness's end of the guest's terminal.
struct Terminal {
    out: UnixStream,
    /// Everything the guest wrote.
    seen: Arc<Mutex<Vec<u8>>>,
    /// How far the checks have read.
    mark: usize,
}

impl Terminal {
    fn connect(socket: &Path) -> Result<Terminal, String> {
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(_) if started.elapsed() < Duration::from_secs(20) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("COM2 socket {}: {e}", socket.display())),
            }
        };
        let out = stream.try_clone().map_err(|e| e.to_string())?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().map(|mut s| s.extend_from_slice(&buf[..n])).ok();
            }
        });
        Ok(Terminal { out, seen, mark: 0 })
    }

    fn text(&self) -> String {
        self.seen.lock().map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or_default()
    }

    /// Types `keys`.
    fn send(&mut self, keys: &str) -> Result<(), String> {
        self.out.write_all(keys.as_bytes()).map_err(|e| format!("typing {keys:?}: {e}"))
    }

    /// Waits until the output after the mark contains `needle`; moves the mark past it and
    /// returns what came before it.
    fn expect(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let text = self.text();
            let after = text.get(self.mark..).unwrap_or("");
            if let Some(at) = after.find(needle) {
                let before = after[..at].to_string();
                self.mark += at + needle.len();
                return Ok(before);
            }
            if started.elapsed() > timeout {
                let tail: String = after.chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
                return Err(format!(
                    "no {needle:?} within {} s; the terminal shows after the last match:\n{tail}",
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `keys` (ending in Return) and waits for the output line(s) `output` and the prompt
    /// of `/` after them. The output must stand on its own line(s): the echo of what was typed
    /// (the line being redrawn) never matches.
    fn keys(&mut self, keys: &str, output: &str) -> Result<(), String> {
        self.send(keys)?;
        self.expect(&format!("\n{output}\r\n"), STEP)?;
        self.expect(&prompt("/"), STEP).map(|_| ())
    }

    /// Types `line` and Return, and waits for the prompt after it; returns the output between
    /// (the typed line's echo removed), lines joined with `\n`.
    fn run(&mut self, line: &str, dir: &str) -> Result<String, String> {
        self.send(&format!("{line}\r"))?;
        self.expect(&format!("{line}\r\n"), STEP)?;
        let out = self.expect(&prompt(dir), STEP)?;
        Ok(out.replace("\r\n", "\n"))
    }
}

/// One step: its name and what it does.
type Step = (&'static str, fn(&mut Terminal) -> Result<(), String>);

fn same(got: String, want: &str) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("printed {got:?}, expected {want:?}")) }
}

fn has(got: &str, want: &str) -> Result<(), String> {
    if got.contains(want) { Ok(()) } else { Err(format!("printed {got:?}, expected it to contain {want:?}")) }
}

const STEPS: &[Step] = &[
    ("quoting_and_variables", |t| {
        same(
            t.run("export GREETING=hello; echo \"$GREETING   world\" 'a  $b' c\\ d ''", "/")?,
            "hello   world a  $b c d \n",
        )
    }),
    ("failed_command_and_status", |t| {
        has(&t.run("cat /nope", "/")?, "/nope")?;
        same(t.run("echo status=$?", "/")?, "status=1\n")?;
        has(&t.run("nosuchprogram", "/")?, "nosuchprogram: command not found")?;
        same(t.run("echo $?", "/")?, "127\n")
    }),
    ("and_or_and_sequences", |t| {
        same(t.run("echo one && echo two; cat /nope 2> /tmp/err || echo fallback", "/")?, "one\ntwo\nfallback\n")?;
        same(t.run("cat /nope 2> /tmp/err && echo not-run", "/")?, "")
    }),
    ("redirections", |t| {
        same(t.run("echo written > /tmp/f.txt; echo more >> /tmp/f.txt", "/")?, "")?;
        same(t.run("cat < /tmp/f.txt", "/")?, "written\nmore\n")?;
        has(&t.run("cat /tmp/err", "/")?, "/nope")?;
        same(t.run("cat /tmp/f.txt /nope > /tmp/both 2>&1", "/")?, "")?;
        has(&t.run("cat /tmp/both", "/")?, "written\nmore\ncat: /nope")
    }),
    ("pipes", |t| {
        same(t.run("echo piped | cat | cat", "/")?, "piped\n")?;
        // 230 KiB through two pipes of 64 KiB: the writers wait for the readers, and every byte
        // arrives (the copy runs).
        same(t.run("cat /boot/bin/vsh | cat | cat > /tmp/vsh.copy", "/")?, "")?;
        same(t.run("/tmp/vsh.copy -c 'echo the copy runs'", "/")?, "the copy runs\n")?;
        // The status is the last command's; the first one's complaint still shows.
        has(&t.run("cat /nope | cat; echo status=$?", "/")?, "status=0")?;
        // Ctrl-C ends every program of the pipeline.
        t.send("cat | cat\r")?;
        t.expect("cat | cat\r\n", STEP)?;
        t.send("through\r")?;
        t.expect("through\r\nthrough\r\n", STEP)?;
        t.send("\x03")?;
        t.expect(&prompt("/"), STEP)?;
        same(t.run("echo after=$?", "/")?, "after=130\n")
    }),
    ("cd_and_pwd", |t| {
        same(t.run("mkdir /tmp/d && cd /tmp/d", "/tmp/d")?, "")?;
        same(t.run("pwd; echo x > here.txt; cat /tmp/d/here.txt", "/tmp/d")?, "/tmp/d\nx\n")?;
        has(&t.run("cd /nope", "/tmp/d")?, "cd: /nope")?;
        same(t.run("cd /", "/")?, "")
    }),
    ("line_editing", |t| {
        // Left twice, a character inserted, Home and a character inserted, End and one more.
        t.keys("cho helo\x1b[D\x1b[Dl\x1b[He\x1b[F!\r", "hello!")?;
        // Ctrl-U drops the line, Ctrl-W a word, Backspace a character.
        t.keys("garbage\x15echo keep dropped\x17\x7f\x7fp\r", "keep")?;
        // Delete under the cursor.
        t.keys("echo abXYc\x1b[D\x1b[D\x1b[D\x1b[3~\x1b[3~\r", "abc")?;
        // Ctrl-A, Right, Ctrl-K: cut the rest of the line.
        t.keys("echo cut here\x01\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x0b\r", "cut")
    }),
    ("history", |t| {
        same(t.run("echo remembered", "/")?, "remembered\n")?;
        same(t.run("echo other", "/")?, "other\n")?;
        // Up twice: the line before the last.
        t.keys("\x1b[A\x1b[A\r", "remembered")
    }),
    ("tab_completion", |t| {
        t.keys("ech\t'completed'\r", "completed")?;
        t.keys("cat /tmp/f.t\t\r", "written\r\nmore")
    }),
    ("ctrl_c_ends_the_program_not_the_shell", |t| {
        // `cat` waits for the terminal; Ctrl-C ends it and the shell prompts again.
        t.send("cat\r")?;
        t.expect("cat\r\n", STEP)?;
        t.send("typed\r")?;
        t.expect("typed\r\ntyped\r\n", STEP)?;
        t.send("\x03")?;
        t.expect(&prompt("/"), STEP)?;
        same(t.run("echo after=$?", "/")?, "after=130\n")?;
        // A program that loops on the CPU and never reads.
        t.send("probe spin\r")?;
        t.expect("probe spin\r\n", STEP)?;
        std::thread::sleep(Duration::from_millis(300));
        t.send("\x03")?;
        t.expect(&prompt("/"), STEP)?;
        same(t.run("echo spun=$?", "/")?, "spun=130\n")?;
        // At the prompt, Ctrl-C drops the line.
        t.send("echo never\x03")?;
        t.expect(&format!("^C\r\n{}", prompt("/")), STEP)?;
        same(t.run("echo alive", "/")?, "alive\n")
    }),
    ("scripts_with_arguments", |t| {
        same(t.run("echo '# a script' > /tmp/s.vsh; echo 'echo from script $1; exit 3' >> /tmp/s.vsh", "/")?, "")?;
        same(t.run("vsh /tmp/s.vsh one; echo code=$?", "/")?, "from script one\ncode=3\n")?;
        same(t.run("vsh -c 'echo inline'", "/")?, "inline\n")
    }),
    ("builtins_and_help", |t| {
        has(&t.run("help", "/")?, "cd [DIR]")?;
        same(t.run("export ONE=1; unset ONE; echo [$ONE]", "/")?, "[]\n")?;
        has(&t.run("history", "/")?, "echo remembered")
    }),
    ("ctr_run_create_exec_list_destroy", |t| {
        let ran = t.run("ctr run --name demo hello from a container", "/")?;
        has(&ran, "hello from user space: process 1")?;
        has(&ran, "ctr: hello exited with code 0")?;
        has(&t.run("ctr create --name web --memory 16M --processes 8", "/")?, " web")?;
        has(&t.run("ctr create --name web", "/")?, "already has a child named \"web\"")?;
        same(t.run("echo $?", "/")?, "1\n")?;
        has(&t.run("ctr list", "/")?, " web ")?;
        let info = t.run("ctr info web", "/")?;
        has(&info, "(web): alive")?;
        has(&info, "of 16 MiB")?;
        has(&t.run("ctr exec web hello again", "/")?, "hello from user space: process 1")?;
        // The first container went with its program: its name is free again.
        has(&t.run("ctr create --name demo , destroy demo , destroy web", "/")?, "destroyed")?;
        has(&t.run("ctr info web", "/")?, "no container named \"web\"")
    }),
    ("ctr_run_i_gives_a_shell_inside_a_container", |t| {
        let inside = |dir: &str| format!("box:{dir}$ ");
        t.send("ctr run -i --name box --new-root 4M vsh\r")?;
        t.expect(&inside("/"), STEP)?;
        let run = |t: &mut Terminal, line: &str| -> Result<String, String> {
            t.send(&format!("{line}\r"))?;
            t.expect(&format!("{line}\r\n"), STEP)?;
            Ok(t.expect(&inside("/"), STEP)?.replace("\r\n", "\n"))
        };
        // Its own root: an empty VSF (no /boot, no /tmp of the parent's).
        same(run(t, "echo inside > /note.txt; ls /")?, "note.txt\n")?;
        has(&run(t, "cat /boot/bin/vsh")?, "/boot/bin/vsh")?;
        // Only its own devices: its own console (shown on our terminal), not our terminal.
        let devices = run(t, "lsdev")?;
        has(&devices, "console")?;
        if devices.contains("serial0") || devices.contains("blk") || devices.contains("rtc0") {
            return Err(format!("the container sees the parent's devices: {devices:?}"));
        }
        let own = devices.split_whitespace().find(|w| w.starts_with("console")).unwrap_or_default();
        let own = own.trim_end_matches(':').to_string();
        // A container in the container: its console shows on ours, which shows on the terminal.
        t.send("ctr run -i --name inner vsh\r")?;
        t.expect("inner:/$ ", STEP)?;
        t.send("lsdev\r")?;
        let nested = t.expect("inner:/$ ", STEP)?;
        if !nested.contains("console") || nested.contains(&format!("{own}:")) || nested.contains("serial0") {
            return Err(format!("the inner container sees {nested:?} (the outer console is {own})"));
        }
        t.send("exit 5\r")?;
        t.expect("ctr: vsh exited with code 5", STEP)?;
        t.expect(&inside("/"), STEP)?;
        // Only its own processes.
        let ps = run(t, "ps")?;
        has(&ps, "vsh")?;
        if ps.contains("proc") || ps.contains("device") {
            return Err(format!("the container sees the parent's processes: {ps:?}"));
        }
        // Ctrl-C at its prompt is its own; Ctrl-C ends its program, not it.
        t.send("cat\r")?;
        t.expect("cat\r\n", STEP)?;
        t.send("boxed\r")?;
        t.expect("boxed\r\nboxed\r\n", STEP)?;
        t.send("\x03")?;
        t.expect(&inside("/"), STEP)?;
        same(run(t, "echo $?")?, "130\n")?;
        t.send("exit 4\r")?;
        t.expect("ctr: vsh exited with code 4", STEP)?;
        t.expect(&prompt("/"), STEP)?;
        // The container and its scratch root are gone.
        has(&t.run("ctr info box", "/")?, "no container named \"box\"")?;
        // A program that never reads its console: Ctrl-C still ends it (it reaches ctr).
        t.send("ctr run -i probe spin\r")?;
        t.expect("ctr run -i probe spin\r\n", STEP)?;
        std::thread::sleep(Duration::from_millis(300));
        t.send("\x03")?;
        t.expect("ctr: probe was killed", STEP)?;
        t.expect(&prompt("/"), STEP)?;
        same(t.run("ls /tmp | cat", "/")?.lines().filter(|l| l.starts_with("ctr-")).collect::<Vec<_>>().join(","), "")
    }),
    ("ctr_destroy_ends_what_runs_there", |t| {
        has(&t.run("ctr create --name busy , spawn busy probe spin", "/")?, "is pid 1 in container")?;
        has(&t.run("ps", "/")?, "bin/probe")?;
        has(&t.run("ctr destroy busy", "/")?, "destroyed")?;
        let after = t.run("ps", "/")?;
        if after.contains("bin/probe") {
            Err(format!("the container's program outlived it: {after:?}"))
        } else {
            Ok(())
        }
    }),
    ("vsf_create_mount_and_root", |t| {
        same(t.run("vsf create /data/img.vsf 8M && mkdir /mnt && vsf mount /data/img.vsf /mnt", "/")?, "")?;
        same(
            t.run("echo kept > /mnt/f.txt; vsf list | cat", "/")?
                .lines()
                .filter(|l| l.contains("img.vsf"))
                .count()
                .to_string(),
            "1",
        )?;
        // Mounted once, anywhere: a container cannot take it as its root meanwhile.
        has(&t.run("ctr run --root /data/img.vsf true", "/")?, "img.vsf")?;
        same(t.run("vsf unmount /mnt", "/")?, "")?;
        // Written back on unmount: the check finds the file and nothing wrong.
        has(&t.run("vsf check /data/img.vsf", "/")?, "/data/img.vsf: clean: FAT16, 1 file, 0 directories, ")?;
        has(&t.run("ctr run --root /data/img.vsf cat /f.txt", "/")?, "kept\nctr: cat exited with code 0")
    }),
    ("ctrl_d_leaves_and_init_starts_a_new_shell", |t| {
        t.send("\x04")?;
        t.expect(&prompt("/"), STEP).map(|_| ())
    }),
];

/// Boots the demo spec's image (`boot/images/demo.toml`) and checks what the spec asked for:
/// the containers made at boot (their names and tree, the seeded root of `web` copied to the
/// data disk, the program run in it), the spec's file, the resolved spec in `/boot`, the extra
/// memory mount, and the kernel quiet after `log=warn`.
pub fn demo(machine: &Machine) -> std::io::Result<(Run, Vec<Check>)> {
    let qemu = Interactive::start(machine, BOOT * 3)?;
    let socket = machine.com2.clone().unwrap_or_default();
    let mut checks = Vec::new();
    let steps = (|| {
        let mut t = Terminal::connect(&socket)?;
        t.expect(&prompt("/"), BOOT)?;
        let tree = t.run("ctr list", "/")?;
        has(&tree, "  0x")?;
        let web = tree.lines().position(|l| l.contains(" web ")).ok_or(format!("no web in {tree:?}"))?;
        let worker = tree.lines().position(|l| l.contains(" worker ")).ok_or(format!("no worker in {tree:?}"))?;
        if worker != web + 1 || !tree.lines().nth(worker).is_some_and(|l| l.starts_with("    0x")) {
            return Err(format!("worker is not shown below web: {tree:?}"));
        }
        let inside = t.run("ctr exec web vsh -c 'cat /hello.txt /docs/readme.txt'", "/")?;
        has(&inside, "Hello from the web container's own root.\nFiles copied into the VSF")?;
        same(t.run("ls /data/containers", "/")?, "web.vsf\n")?;
        has(&t.run("cat /boot/etc/motd", "/")?, "Hello from the web container's own root.")?;
        has(&t.run("cat /boot/image.toml", "/")?, "name = \"worker\"")?;
        same(t.run("vsf list | cat", "/")?.lines().filter(|l| l.starts_with("/scratch ")).count().to_string(), "1")
    })();
    checks.push((String::from("spec::containers_files_and_mounts_as_the_spec_says"), steps.err()));
    let run = qemu.stop();
    let text = run.text();
    let logged = [
        "init: container web is 0x",
        "hello from user space: process 1, arguments [\"bin/hello\", \"from\", \"the\", \"web\", \"container\"]",
        "init: container worker is 0x",
    ];
    let missing = logged.iter().find(|l| !text.contains(*l)).map(|l| format!("the kernel log has no {l:?}"));
    checks.push((String::from("spec::init_makes_the_containers_and_runs_their_programs"), missing));
    // Logged before the kernel reads its arguments, and at info after: only the first shows.
    let quiet = match (text.contains("Vessel "), text.contains("acpi: ")) {
        (true, false) => None,
        (banner, acpi) => Some(format!("with log=warn: banner shown {banner}, info lines after it shown {acpi}")),
    };
    checks.push((String::from("spec::log_warn_quiets_the_kernel"), quiet));
    Ok((run, checks))
}

/// Boots `machine` (whose `com2` names the socket) and times it: QEMU start to the shell's
/// first prompt, then each of `lines` typed and run to the next prompt (host time); returns
/// those durations and what each line printed.
pub fn timed(machine: &Machine, lines: &[&str]) -> Result<(Duration, Vec<(Duration, String)>), String> {
    let started = Instant::now();
    let qemu = Interactive::start(machine, BOOT * 4).map_err(|e| e.to_string())?;
    let socket = machine.com2.clone().unwrap_or_default();
    let result = (|| {
        let mut t = Terminal::connect(&socket)?;
        t.expect(&prompt("/"), BOOT)?;
        let boot = started.elapsed();
        let mut timings = Vec::new();
        for line in lines {
            t.send(&format!("{line}\r"))?;
            let typed = Instant::now();
            t.expect(&format!("{line}\r\n"), STEP)?;
            let out = t.expect(&prompt("/"), STEP * 4)?;
            timings.push((typed.elapsed(), out.replace("\r\n", "\n")));
        }
        Ok((boot, timings))
    })();
    let _ = qemu.stop();
    result
}

/// Boots `machine` (whose `com2` names the socket) until the shell's prompt shows on COM2; the
/// run, and why not if it did not.
pub fn to_prompt(machine: &Machine) -> std::io::Result<(Run, Option<String>)> {
    let qemu = Interactive::start(machine, BOOT + Duration::from_secs(10))?;
    let socket = machine.com2.clone().unwrap_or_default();
    let verdict = Terminal::connect(&socket).and_then(|mut t| t.expect(&prompt("/"), BOOT).map(|_| ()));
    Ok((qemu.stop(), verdict.err()))
}

/// Boots `machine` (whose `com2` names the socket) and runs the session; returns the run and
/// one check per step, plus the power-off.
pub fn run(machine: &Machine, timeout: Duration) -> std::io::Result<(Run, Vec<Check>)> {
    let qemu = Interactive::start(machine, timeout)?;
    let mut checks = Vec::new();
    let socket = machine.com2.clone().unwrap_or_default();
    let mut terminal = match Terminal::connect(&socket) {
        Ok(t) => t,
        Err(why) => {
            checks.push((String::from("shell::terminal_connects"), Some(why)));
            return Ok((qemu.stop(), checks));
        }
    };
    let first = terminal.expect(&prompt("/"), BOOT).err();
    let booted = first.is_none();
    checks.push((String::from("shell::boots_to_a_prompt"), first));
    if booted {
        for (name, step) in STEPS {
            checks.push((format!("shell::{name}"), step(&mut terminal).err()));
        }
        let off = terminal.send("poweroff\r").and_then(|()| {
            let started = Instant::now();
            while qemu.running() {
                if started.elapsed() > STEP {
                    return Err(String::from("QEMU still runs 30 s after poweroff"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        });
        checks.push((String::from("shell::poweroff_switches_the_machine_off"), off.err()));
    }
    let text = terminal.text();
    let run = if qemu.running() { qemu.stop() } else { qemu.finish(Duration::from_secs(2)) };
    let log = crate::artifacts::out_dir().map(|d| d.join("logs/shell-terminal.log"));
    if let Ok(log) = log {
        let _ = std::fs::write(log, text);
    }
    Ok((run, checks))
}
