//! Running parsed commands: builtins in the shell, programs through `proc` with their streams
//! and environment, `&&`/`||` by exit status, the foreground program ended by Ctrl-C.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vessel_proc_protocol::Ending;
use vessel_protocol::Refusal;
use vessel_rt::abi::Error;
use vessel_rt::fs::{self, File, OpenFlags};
use vessel_rt::io::Stream;
use vessel_rt::job;
use vessel_rt::proc::Proc;
use vessel_shell::parse::{Chain, Command, Link, Mode, Pipeline, valid_name};

use crate::complain;
use crate::term::Terminal;

/// The builtins, for `help` and completion.
const BUILTINS: &[(&str, &str)] = &[
    ("cd", "cd [DIR]: change the working directory (to $HOME, else /, without DIR)"),
    ("pwd", "pwd: print the working directory"),
    ("exit", "exit [CODE]: leave the shell"),
    ("export", "export [NAME[=VALUE]...]: give variables to programs (without NAME: list them)"),
    ("unset", "unset NAME...: forget variables"),
    ("history", "history: the lines typed before"),
    ("help", "help: this text"),
];

/// Status of a program killed (by Ctrl-C or otherwise), and of one a fault ended.
const KILLED_STATUS: i64 = 130;
const FAULT_STATUS: i64 = 139;
/// Status of a command that could not start (not found), and of a refused one.
const NOT_FOUND_STATUS: i64 = 127;
const REFUSED_STATUS: i64 = 126;

/// The shell's state.
pub struct Shell {
    proc: Proc,
    terminal: Option<Terminal>,
    /// Variables, and whether each is exported.
    vars: BTreeMap<String, (String, bool)>,
    /// The last command's status (`$?`).
    status: i64,
    /// Set by `exit`.
    exit: Option<i64>,
    /// Standard streams of the shell itself (the terminal when interactive).
    streams: [Stream; 3],
    /// Lines typed (interactive).
    history: Vec<String>,
    /// This container's name for the prompt.
    container: String,
}

impl Shell {
    /// A shell on `terminal` (interactive), or on the streams it was given.
    pub fn new(terminal: Option<Terminal>) -> Result<Shell, String> {
        let proc = Proc::get().ok_or_else(|| String::from("not started by proc"))?;
        let mut vars = BTreeMap::new();
        for (name, value) in vessel_rt::env() {
            if !matches!(name, "STDIN" | "STDOUT" | "STDERR") && valid_name(name) {
                vars.insert(String::from(name), (String::from(value), true));
            }
        }
        let streams = match &terminal {
            Some(t) => {
                vars.insert(String::from("TTY"), (t.name.clone(), true));
                [t.stream(); 3]
            }
            None => [vessel_rt::io::stdin(), vessel_rt::io::stdout(), vessel_rt::io::stderr()],
        };
        let container = match vessel_rt::container::own() {
            Ok(info) if info.parent == 0 => String::from("root"),
            Ok(info) => vessel_rt::var("CONTAINER").map_or_else(|| format!("{:#x}", info.id), String::from),
            Err(_) => String::from("?"),
        };
        Ok(Shell { proc, terminal, vars, status: 0, exit: None, streams, history: Vec::new(), container })
    }

    /// The prompt: container and working directory.
    pub fn prompt(&self) -> String {
        format!("{}:{}$ ", self.container, fs::current_dir())
    }

    /// The last status as an exit code.
    pub fn status_code(&self) -> i32 {
        self.status as i32
    }

    /// The code `exit` asked for, if it ran.
    pub fn exit_requested(&self) -> Option<i32> {
        self.exit.map(|c| c as i32)
    }

    /// Keeps a typed line for `history`.
    pub fn remember(&mut self, line: &str) {
        if !line.trim().is_empty() {
            self.history.push(String::from(line.trim()));
        }
    }

    fn err(&self) -> Stream {
        self.streams[2]
    }

    /// Runs a script's text; returns the last status.
    pub fn run_text(&mut self, text: &str) -> i32 {
        match vessel_shell::parse::parse(text) {
            Ok(chains) => {
                for chain in &chains {
                    self.chain(chain);
                    if self.exit.is_some() {
                        break;
                    }
                }
            }
            Err(e) => {
                complain(self.err(), &e.to_string());
                self.status = 2;
            }
        }
        self.exit.map_or(self.status as i32, |c| c as i32)
    }

    /// Runs the script `file` with `args` as `$1`…
    pub fn run_script(&mut self, file: &str, args: &[&str]) -> i32 {
        let mut text = Vec::new();
        if let Err(e) = File::open(file).and_then(|mut f| f.read_to_end(&mut text)) {
            complain(self.err(), &format!("{file}: {}", e.reason));
            return NOT_FOUND_STATUS as i32;
        }
        self.vars.insert(String::from("0"), (String::from(file), false));
        for (i, arg) in args.iter().enumerate() {
            self.vars.insert(format!("{}", i + 1), (String::from(*arg), false));
        }
        match core::str::from_utf8(&text) {
            Ok(text) => self.run_text(text),
            Err(_) => {
                complain(self.err(), &format!("{file}: not a text file"));
                REFUSED_STATUS as i32
            }
        }
    }

    fn chain(&mut self, chain: &Chain) {
        self.pipeline(&chain.first);
        for (link, pipeline) in &chain.rest {
            if self.exit.is_some() {
                return;
            }
            let run = match link {
                Link::And => self.status == 0,
                Link::Or => self.status != 0,
            };
            if run {
                self.pipeline(pipeline);
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            _ => self.vars.get(name).map(|(v, _)| v.clone()),
        }
    }

    /// Runs a pipeline: each command's output flows into the next one's input through a pipe
    /// of `vfs`; every program starts before any is waited for, and the status is the last
    /// command's.
    fn pipeline(&mut self, pipeline: &Pipeline) {
        if pipeline.len() > MAX_STAGES {
            complain(self.err(), &format!("a pipeline of {} commands; at most {MAX_STAGES}", pipeline.len()));
            self.status = 2;
            return;
        }
        let mut pipes = Vec::new();
        for _ in 1..pipeline.len() {
            match fs::client().and_then(|c| c.pipe()) {
                Ok(p) => pipes.push((p.read, p.write)),
                Err(e) => {
                    complain(self.err(), &format!("cannot make a pipe: {}", e.reason));
                    close_all(pipes.iter().flat_map(|&(r, w)| [r, w]));
                    self.status = 1;
                    return;
                }
            }
        }
        let mut stages = Vec::new();
        for (i, command) in pipeline.iter().enumerate() {
            let mut base = self.streams;
            let mut ends = Vec::new();
            if i > 0 {
                base[0] = Stream::File(pipes[i - 1].0);
                ends.push(pipes[i - 1].0);
            }
            if i + 1 < pipeline.len() {
                base[1] = Stream::File(pipes[i].1);
                ends.push(pipes[i].1);
            }
            let mut stage = self.start(command, base);
            // The stage's pipe ends close when it ends (now, if it is not running).
            stage.opened.extend(ends);
            if stage.pid.is_none() {
                close_all(stage.opened.drain(..));
            }
            stages.push(stage);
        }
        self.finish(&mut stages);
        self.status = stages.last().map_or(0, |s| s.status);
    }

    /// Starts one command with `base` streams: a builtin runs to its end here, a program is
    /// left running.
    fn start(&mut self, command: &Command, base: [Stream; 3]) -> Stage {
        let lookup = |name: &str| self.lookup(name);
        let mut words: Vec<String> = command.words.iter().map(|w| w.expand(&lookup)).collect();
        let name = words.first().cloned().unwrap_or_default();
        let done = |status: i64, opened: Vec<u64>| Stage { name: name.clone(), pid: None, status, opened };
        // Leading NAME=value words: shell variables alone, else the program's environment.
        let assignments = words.iter().take_while(|w| w.split_once('=').is_some_and(|(n, _)| valid_name(n))).count();
        let assigned: Vec<(String, String)> = words
            .drain(..assignments)
            .filter_map(|w| w.split_once('=').map(|(n, v)| (String::from(n), String::from(v))))
            .collect();
        if words.is_empty() {
            for (name, value) in assigned {
                let exported = self.vars.get(&name).is_some_and(|(_, e)| *e);
                self.vars.insert(name, (value, exported));
            }
            return done(0, Vec::new());
        }
        let streams = match self.redirect(command, base) {
            Ok(streams) => streams,
            Err(why) => {
                complain(base[2], &why);
                return done(1, Vec::new());
            }
        };
        if BUILTINS.iter().any(|(b, _)| *b == words[0]) {
            let status = self.builtin(&words, &streams);
            close_all(streams.opened.iter().copied());
            return done(status, Vec::new());
        }
        match self.spawn(&words, &assigned, &streams) {
            Ok(pid) => Stage { name: words[0].clone(), pid: Some(pid), status: 0, opened: streams.opened },
            Err(status) => {
                close_all(streams.opened.iter().copied());
                done(status, Vec::new())
            }
        }
    }

    /// The command's streams, with the files its redirections name opened.
    fn redirect(&self, command: &Command, base: [Stream; 3]) -> Result<Streams, String> {
        let mut streams = Streams { fds: base, opened: Vec::new() };
        let lookup = |name: &str| self.lookup(name);
        for r in &command.redirects {
            let flags = match r.mode {
                Mode::Read => OpenFlags::READ,
                Mode::Write => OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                Mode::Append => OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND,
                Mode::ToStdout => {
                    streams.fds[2] = streams.fds[1];
                    continue;
                }
            };
            let path = r.target.expand(&lookup);
            match File::open_with(&path, flags) {
                Ok(file) => {
                    let handle = file.into_handle();
                    streams.opened.push(handle);
                    streams.fds[usize::from(r.fd)] = Stream::File(handle);
                }
                Err(e) => {
                    close_all(streams.opened.iter().copied());
                    return Err(format!("{path}: {}", e.reason));
                }
            }
        }
        Ok(streams)
    }

    fn builtin(&mut self, words: &[String], streams: &Streams) -> i64 {
        let out = streams.fds[1];
        let err = streams.fds[2];
        let say = |stream: Stream, text: &str| {
            let _ = stream.write_all(text.as_bytes());
        };
        match words[0].as_str() {
            "cd" => {
                let home = self.lookup("HOME").unwrap_or_else(|| String::from("/"));
                let to = words.get(1).cloned().unwrap_or(home);
                match fs::set_current_dir(&to) {
                    Ok(()) => 0,
                    Err(e) => {
                        say(err, &format!("cd: {to}: {}\n", e.reason));
                        1
                    }
                }
            }
            "pwd" => {
                say(out, &format!("{}\n", fs::current_dir()));
                0
            }
            "exit" => match words.get(1).map(|c| c.parse::<i64>()) {
                None => {
                    self.exit = Some(self.status);
                    self.status
                }
                Some(Ok(code)) => {
                    self.exit = Some(code);
                    code
                }
                Some(Err(_)) => {
                    say(err, &format!("exit: {:?} is not a number\n", words[1]));
                    2
                }
            },
            "export" if words.len() == 1 => {
                for (name, (value, exported)) in &self.vars {
                    if *exported {
                        say(out, &format!("{name}={value}\n"));
                    }
                }
                0
            }
            "export" => {
                let mut status = 0;
                for word in &words[1..] {
                    let (name, value) = word.split_once('=').map_or((word.as_str(), None), |(n, v)| (n, Some(v)));
                    if !valid_name(name) {
                        say(err, &format!("export: {name:?} is not a variable name\n"));
                        status = 1;
                        continue;
                    }
                    let value = value.map(String::from).or_else(|| self.lookup(name)).unwrap_or_default();
                    self.vars.insert(String::from(name), (value, true));
                }
                status
            }
            "unset" => {
                for name in &words[1..] {
                    self.vars.remove(name);
                }
                0
            }
            "history" => {
                for (i, line) in self.history.iter().enumerate() {
                    say(out, &format!("{:>5}  {line}\n", i + 1));
                }
                0
            }
            _ => {
                let mut text = String::from("Builtins:\n");
                for (_, help) in BUILTINS {
                    text.push_str(&format!("  {help}\n"));
                }
                text.push_str("Programs (each takes --help): ");
                text.push_str(
                    &commands()
                        .into_iter()
                        .filter(|c| !BUILTINS.iter().any(|(b, _)| b == c))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                text.push_str(
                    "\nLines: `a; b` runs both, `a && b` b if a succeeded, `a || b` b if it failed; \
                     `< f`, `> f`, `>> f`, `2> f`, `2>&1` redirect; $NAME and $? expand; '…' and \"…\" quote.\n",
                );
                say(out, &text);
                0
            }
        }
    }

    /// Where program `name` comes from: a path of this container, or the boot file system.
    fn resolve(&self, name: &str) -> Result<String, (i64, String)> {
        if name.contains('/') {
            let path = fs::absolute(name);
            return match fs::metadata(&path) {
                Ok(stat) if stat.kind == fs::Kind::Dir => Err((REFUSED_STATUS, format!("{name}: is a directory"))),
                Ok(_) => Ok(path),
                Err(e) => Err((NOT_FOUND_STATUS, format!("{name}: {}", e.reason))),
            };
        }
        let path = self.lookup("PATH").unwrap_or_else(|| String::from("/bin"));
        for dir in path.split(':').filter(|d| d.starts_with('/')) {
            let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
            if fs::metadata(&candidate).is_ok_and(|s| s.kind == fs::Kind::File) {
                return Ok(candidate);
            }
        }
        Ok(format!("bin/{name}"))
    }

    fn environment(&self, assigned: &[(String, String)], streams: &Streams) -> Vec<u8> {
        let mut env = Vec::new();
        let mut add = |name: &str, value: &str| {
            env.extend_from_slice(name.as_bytes());
            env.push(b'=');
            env.extend_from_slice(value.as_bytes());
            env.push(0);
        };
        for (name, (value, exported)) in &self.vars {
            if *exported && name != "PWD" && !assigned.iter().any(|(n, _)| n == name) {
                add(name, value);
            }
        }
        for (name, value) in assigned {
            add(name, value);
        }
        add("PWD", &fs::current_dir());
        for (name, stream) in ["STDIN", "STDOUT", "STDERR"].iter().zip(streams.fds) {
            if stream != Stream::Log {
                add(name, &stream.env_value());
            }
        }
        env
    }

    /// Starts the program `words` names; its pid, or the status of its failure to start.
    fn spawn(&mut self, words: &[String], assigned: &[(String, String)], streams: &Streams) -> Result<u64, i64> {
        let name = &words[0];
        let path = match self.resolve(name) {
            Ok(path) => path,
            Err((status, why)) => {
                complain(streams.fds[2], &why);
                return Err(status);
            }
        };
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let env = self.environment(assigned, streams);
        match self.proc.spawn_env(0, &path, &args, &env, &[]) {
            Ok((pid, _)) => Ok(pid),
            Err(e) if e.error == Error::NotFound => {
                complain(streams.fds[2], &format!("{name}: command not found"));
                Err(NOT_FOUND_STATUS)
            }
            Err(e) => {
                complain(streams.fds[2], &format!("{name}: {}", e.reason));
                Err(REFUSED_STATUS)
            }
        }
    }

    /// Waits for the running stages, closing each one's files and pipe ends as it ends (so
    /// its neighbours see the end of the data or a closed reader); on a terminal, Ctrl-C kills
    /// them all. Sets each stage's status.
    fn finish(&self, stages: &mut [Stage]) {
        let running: Vec<usize> = (0..stages.len()).filter(|&i| stages[i].pid.is_some()).collect();
        let jobs: Vec<(u64, u64)> = running.iter().filter_map(|&i| stages[i].pid.map(|pid| (0, pid))).collect();
        let terminal = self.terminal.as_ref().map(Terminal::interruptible);
        job::wait_all(self.proc, &jobs, terminal, |n, ended| {
            let stage = &mut stages[running[n]];
            stage.pid = None;
            stage.status = self.report(&stage.name, ended);
            close_all(stage.opened.drain(..));
        });
    }

    /// The status of a program that ended as `ended`, saying so when it did not exit.
    fn report(&self, name: &str, ended: Result<Ending, Refusal>) -> i64 {
        match ended {
            Ok(Ending::Code(code)) => code,
            Ok(Ending::Fault) => {
                complain(self.err(), &format!("{name}: killed by a fault"));
                FAULT_STATUS
            }
            Ok(Ending::Killed) => {
                if self.terminal.is_some() {
                    let _ = self.err().write_all(b"\n");
                }
                KILLED_STATUS
            }
            Err(e) => {
                complain(self.err(), &format!("{name}: {}", e.reason));
                REFUSED_STATUS
            }
        }
    }
}

/// Longest pipeline.
const MAX_STAGES: usize = job::MAX_JOBS;

/// A command of a pipeline: running (`pid`) or done (`status`), and the handles to close when
/// it ends.
struct Stage {
    name: String,
    pid: Option<u64>,
    status: i64,
    opened: Vec<u64>,
}

/// Closes `vfs` handles the shell opened (files of redirections, pipe ends).
fn close_all(handles: impl Iterator<Item = u64>) {
    let Ok(client) = fs::client() else { return };
    for h in handles {
        let _ = client.close(h);
    }
}

/// A command's streams and the files opened for it (closed after it).
struct Streams {
    fds: [Stream; 3],
    opened: Vec<u64>,
}

/// Commands for completion and `help`: the builtins, then the programs of `/bin` and the boot
/// file system.
pub fn commands() -> Vec<String> {
    let mut names: Vec<String> = BUILTINS.iter().map(|(b, _)| String::from(*b)).collect();
    for dir in ["/bin", "/boot/bin"] {
        if let Ok(entries) = fs::read_dir(dir) {
            names.extend(entries.into_iter().filter(|e| e.kind == fs::Kind::File).map(|e| e.name));
        }
    }
    names.sort();
    names.dedup();
    names
}
