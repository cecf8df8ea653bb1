//! `vsh`, the Vessel shell.
//!
//! - `vsh --tty NAME`: interactive on the terminal device `NAME` (`serial0`, `console0`): a
//!   prompt with the container and the working directory, line editing, history (kept in
//!   `/data/.vsh_history` when `/data` exists), Tab completion of commands and paths, Ctrl-C
//!   ends the program in the foreground, Ctrl-D on an empty line leaves. Without `--tty`, the
//!   terminal named by `TTY` in the environment (a shell started from a shell).
//! - `vsh FILE [ARGS]`: runs a script (`#` comments); `vsh -c COMMANDS`: runs one line.
//!
//! The language is `vessel_shell::parse`'s: quotes, escapes, `$NAME` and `$?`, `;`, `&&`,
//! `||`, redirections `<`, `>`, `>>`, `2>`, `2>&1`. Builtins: `cd`, `pwd`, `exit`, `export`,
//! `unset`, `history`, `help`. Other commands are programs: a name with a `/` is a file of this
//! container (absolute, or against the working directory); a bare name is looked up in `PATH`
//! (directories of this container, `/bin` if unset), then in the boot file system's `bin/`.
//! Programs get the shell's terminal (or the redirected files) as `STDIN`, `STDOUT`, `STDERR`,
//! the working directory as `PWD`, and the exported variables.
#![no_std]
#![no_main]

extern crate alloc;

mod run;
mod term;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vessel_rt::io::Stream;
use vessel_shell::edit::{Action, Decoder, Editor, Key};

use crate::run::Shell;
use crate::term::Terminal;

vessel_rt::entry!(main);

/// Where the history is kept, when `/data` exists.
const HISTORY: &str = "/data/.vsh_history";

fn usage() -> &'static str {
    "usage: vsh [--tty DEVICE] | vsh -c COMMANDS | vsh FILE [ARGS...]\n\
     \x20 --tty DEVICE  interactive on a terminal device (serial0, console0)\n\
     \x20 -c COMMANDS   run COMMANDS and exit with their status\n\
     \x20 FILE          run a script\n"
}

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().skip(1).collect();
    match args.as_slice() {
        ["--help"] => {
            vessel_rt::print!("{}", usage());
            0
        }
        ["-c", commands] => match Shell::new(None) {
            Ok(mut shell) => shell.run_text(commands),
            Err(why) => fail(&why),
        },
        ["--tty", name] => interactive(Some(name)),
        [] => interactive(None),
        [file, ..] if !file.starts_with('-') => match Shell::new(None) {
            Ok(mut shell) => shell.run_script(file, &args[1..]),
            Err(why) => fail(&why),
        },
        _ => {
            vessel_rt::eprint!("vsh: unknown arguments {}\n{}", args.join(" "), usage());
            2
        }
    }
}

fn fail(why: &str) -> i32 {
    vessel_rt::eprintln!("vsh: {why}");
    1
}

/// The interactive loop on a terminal.
fn interactive(tty: Option<&str>) -> i32 {
    let name = match tty.map(String::from).or_else(|| vessel_rt::var("TTY").map(String::from)) {
        Some(name) => name,
        None => return fail("no terminal: give --tty DEVICE (or TTY in the environment)"),
    };
    let terminal = match Terminal::open(&name) {
        Ok(t) => t,
        Err(why) => return fail(&alloc::format!("{name}: {why}")),
    };
    let mut shell = match Shell::new(Some(terminal.clone())) {
        Ok(shell) => shell,
        Err(why) => return fail(&why),
    };
    let mut editor = Editor::new(load_history());
    let mut decoder = Decoder::default();
    let mut prompt = shell.prompt();
    terminal.write(prompt.as_bytes());
    let code = loop {
        let bytes = match terminal.read() {
            Ok(bytes) => bytes,
            Err(why) => {
                vessel_rt::eprintln!("vsh: {name}: {why}");
                break 1;
            }
        };
        let mut done = None;
        for &byte in &bytes {
            let Some(key) = decoder.feed(byte) else { continue };
            match editor.key(key) {
                Action::Nothing => {}
                Action::Bell => terminal.write(b"\x07"),
                // A character typed at the end shows itself; anything else redraws the line.
                Action::Redraw => match key {
                    Key::Char(c) if editor.cursor() == editor.len() => {
                        terminal.write(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    _ => terminal.write(editor.render(&prompt).as_bytes()),
                },
                Action::Clear => {
                    terminal.write(b"\x1b[2J\x1b[H");
                    terminal.write(editor.render(&prompt).as_bytes());
                }
                Action::Cancel => {
                    terminal.write(b"^C\n");
                    terminal.write(prompt.as_bytes());
                }
                Action::Eof => {
                    terminal.write(b"\n");
                    done = Some(shell.status_code());
                    break;
                }
                Action::Complete => complete(&terminal, &mut editor, &prompt),
                Action::Submit(line) => {
                    terminal.write(b"\n");
                    save_history(&line);
                    shell.remember(&line);
                    shell.run_text(&line);
                    if let Some(code) = shell.exit_requested() {
                        done = Some(code);
                        break;
                    }
                    prompt = shell.prompt();
                    terminal.write(prompt.as_bytes());
                }
            }
        }
        if let Some(code) = done {
            break code;
        }
    };
    terminal.close();
    code
}

/// Tab: completes the word before the cursor, listing the candidates when several remain.
fn complete(terminal: &Terminal, editor: &mut Editor, prompt: &str) {
    let (word, command) = editor.word_before_cursor();
    let candidates = if command && !word.contains('/') { run::commands() } else { paths(&word) };
    let found = editor.complete(&candidates);
    if found.len() > 1 && editor.word_before_cursor().0 == word {
        let names: Vec<&str> = found.iter().map(|f| f.rsplit_once('/').map_or(f.as_str(), |(_, n)| n)).collect();
        // A trailing `/` was split off above: show directories with it.
        let shown: Vec<String> = found
            .iter()
            .zip(&names)
            .map(|(full, name)| if full.ends_with('/') { alloc::format!("{}/", last(full)) } else { name.to_string() })
            .collect();
        terminal.write(alloc::format!("\n{}\n", shown.join("  ")).as_bytes());
    } else if found.is_empty() {
        terminal.write(b"\x07");
    }
    terminal.write(editor.render(prompt).as_bytes());
}

/// The last name of a path ending in `/`.
fn last(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

/// The paths `word` could complete to: entries of its directory, directories with a `/`.
fn paths(word: &str) -> Vec<String> {
    let (dir, _) = word.rsplit_once('/').unwrap_or(("", word));
    let prefix = if word.contains('/') { alloc::format!("{dir}/") } else { String::new() };
    let listed = if word.starts_with('/') && dir.is_empty() {
        "/"
    } else if dir.is_empty() {
        "."
    } else {
        dir
    };
    let entries = vessel_rt::fs::read_dir(listed).unwrap_or_default();
    entries
        .into_iter()
        .map(|e| {
            let slash = if e.kind == vessel_rt::fs::Kind::Dir { "/" } else { "" };
            alloc::format!("{prefix}{}{slash}", e.name)
        })
        .collect()
}

fn load_history() -> Vec<String> {
    let mut text = Vec::new();
    let read = vessel_rt::fs::File::open(HISTORY).and_then(|mut f| f.read_to_end(&mut text));
    if read.is_err() {
        return Vec::new();
    }
    let lines: Vec<String> = String::from_utf8_lossy(&text).lines().map(String::from).collect();
    let keep = lines.len().saturating_sub(vessel_shell::edit::MAX_HISTORY);
    lines[keep..].to_vec()
}

fn save_history(line: &str) {
    use vessel_rt::fs::OpenFlags;
    if line.trim().is_empty() || vessel_rt::fs::metadata("/data").is_err() {
        return;
    }
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::APPEND;
    if let Ok(mut file) = vessel_rt::fs::File::open_with(HISTORY, flags) {
        let _ = file.write_all(alloc::format!("{}\n", line.trim()).as_bytes());
    }
}

/// The shell's own messages: to standard error, which is the terminal when interactive.
pub fn complain(err: Stream, text: &str) {
    let _ = err.write_all(alloc::format!("vsh: {text}\n").as_bytes());
}
