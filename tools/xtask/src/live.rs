//! The host's side of the user suite's device tests, while the guest runs: it holds the far end
//! of the guest's second serial port (COM2, `serial0`) and answers each line with `echo: ` and
//! the line, and it obeys the guest's `HARNESS` lines on COM1:
//!
//! - `HARNESS sendkey KEY...`: presses each key through the QEMU monitor (`shift-h`, `ret`).
//! - `HARNESS screendump TAG`: captures the screen, checks it for TAG (recorded as the test
//!   `screen::TAG`), saves it as `target/vessel/logs/<run>-<TAG>.ppm`, then presses Return,
//!   which the guest waits for so the screen stays still until the capture is done.
//!
//! A guest without a harness (a plain `cargo xtask run`) waits for keys that never come and its
//! tests fail with `TimedOut`: nothing passes unchecked.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vessel_test_harness::interactive::Interactive;
use vessel_test_harness::ppm::Image;
use vessel_test_harness::qemu::{Machine, Run};

/// What the guest's console test draws at the top left of a cleared screen
/// (`usertest/device.rs`, `SCREEN_TEXT`).
const CONSOLE_TEXT: &str = "Vessel console0: Hi!";
/// A line the guest prints (through the kernel's log) that console 0 must show
/// (`usertest/device.rs`, `LOG_LINE`).
const LOG_LINE: &str = "Vessel: this line reached the screen through the kernel log";
/// What a child container writes on its own console (`usertest/device.rs`,
/// `CHILD_SCREEN_TEXT`).
const CHILD_CONSOLE_TEXT: &str = "Vessel console1: a child";
/// How long the COM2 peer tries to reach QEMU's socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// A check the host made during the run: its name and why it failed, if it did.
pub type Check = (String, Option<String>);

/// Boots `machine` (whose `com2` must name a socket path) and serves the guest until QEMU exits
/// or `timeout` passes; returns the run and the host's own checks. `name` names saved
/// screendumps.
pub fn run(name: &str, machine: &Machine, timeout: Duration, logs: &Path) -> std::io::Result<(Run, Vec<Check>)> {
    let qemu = Interactive::start(machine, timeout)?;
    let peer = machine.com2.clone().map(|socket| std::thread::spawn(move || echo_peer(&socket)));
    let mut checks = Vec::new();
    // Until QEMU's output ends (the suite exits) or the deadline passes.
    while let Ok(line) = qemu.wait_for_line("HARNESS ", timeout) {
        let words: Vec<&str> = line.split_whitespace().skip_while(|w| *w != "HARNESS").skip(1).collect();
        match words.as_slice() {
            ["sendkey", keys @ ..] => {
                for key in keys {
                    if let Err(e) = qemu.sendkey(key) {
                        checks.push((format!("keys::{key}"), Some(format!("sendkey {key}: {e}"))));
                    }
                }
            }
            ["screendump", tag] => {
                let verdict = qemu.screendump().map_err(|e| e.to_string()).and_then(|image| {
                    let path = logs.join(format!("{name}-{tag}.ppm"));
                    let _ = std::fs::write(&path, image.to_ppm());
                    check_screen(tag, &image).map_err(|why| format!("{why} (screen saved as {})", path.display()))
                });
                checks.push((format!("screen::{}", tag.replace('-', "_")), verdict.err()));
                let _ = qemu.sendkey("ret");
            }
            other => checks.push((String::from("harness_request"), Some(format!("unknown request {other:?}")))),
        }
    }
    let run = qemu.finish(Duration::from_secs(5));
    if let Some(peer) = peer {
        let _ = peer.join();
    }
    Ok((run, checks))
}

/// Whether the screen shows what the guest test `tag` drew.
fn check_screen(tag: &str, image: &Image) -> Result<(), String> {
    match tag {
        // console0's text, drawn, then again after a switch away and back (redrawn).
        "console0-text" | "console0-again" => crate::screen::check_text(&|x, y| image.pixel(x, y), 0, 0, CONSOLE_TEXT),
        "log-line" => crate::screen::find_line(|x, y| image.pixel(x, y), image.height, LOG_LINE),
        "console1-text" => crate::screen::check_text(&|x, y| image.pixel(x, y), 0, 0, CHILD_CONSOLE_TEXT),
        _ => Err(format!("no check for screen {tag:?}")),
    }
}

/// The far end of COM2: answers every line with `echo: ` and the line, until QEMU closes it.
fn echo_peer(socket: &PathBuf) {
    let started = Instant::now();
    let stream = loop {
        match UnixStream::connect(socket) {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < CONNECT_TIMEOUT => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return,
        }
    };
    let Ok(mut out) = stream.try_clone() else { return };
    for line in BufReader::new(stream).split(b'\n') {
        let Ok(mut line) = line else { return };
        // The guest's serial line ends lines with CR LF.
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let mut answer = b"echo: ".to_vec();
        answer.extend_from_slice(&line);
        answer.push(b'\n');
        if out.write_all(&answer).is_err() {
            return;
        }
    }
}
