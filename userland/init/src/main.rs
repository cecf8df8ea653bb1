//! `init`, the first user process. The kernel starts it with the boot file system mapped; it
//! reads `etc/init.conf` from there and runs each listed program in turn, reporting how each one
//! ended. Then it stays alive (sleeping), as the root of the process tree must.
//!
//! `etc/init.conf`: one program per line, `path arg...`; blank lines and `#` comments ignored.
//! Each program gets copies of init's capabilities (the hardware objects the kernel gave init).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use vessel_rt::abi::Exit;
use vessel_rt::{println, process};

vessel_rt::entry!(main);

/// Longest argument list a config line may have.
const MAX_ARGS: usize = 16;

fn main() -> i32 {
    println!("init: started as process {}", vessel_rt::pid());
    let Some(bootfs) = vessel_rt::bootfs() else {
        println!("init: the kernel gave no boot file system");
        return 1;
    };
    let archive = match vessel_bootfs::Archive::new(bootfs) {
        Ok(archive) => archive,
        Err(e) => {
            println!("init: {e}");
            return 1;
        }
    };
    let Some(conf) = archive.get("etc/init.conf") else {
        println!("init: no etc/init.conf in the boot file system");
        return 1;
    };
    let text = core::str::from_utf8(conf.data).unwrap_or("");
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let Some(path) = words.next() else { continue };
        let mut args = [""; MAX_ARGS];
        let mut count = 0;
        for word in words.take(MAX_ARGS) {
            args[count] = word;
            count += 1;
        }
        // The programs init runs are the system's configured services: they get init's
        // capabilities (the hardware objects) too.
        let result = process::spawn_with_caps(path, &args[..count], vessel_rt::handles()).and_then(process::wait);
        match result {
            Ok(Exit::Code(code)) => println!("init: {path} exited with code {code}"),
            Ok(Exit::Fault { kind, address, ip }) => {
                println!("init: {path} killed by {kind:?} at address {address:#x}, ip {ip:#x}")
            }
            Ok(Exit::Killed) => println!("init: {path} was killed"),
            Err(e) => println!("init: cannot run {path}: {e}"),
        }
    }
    println!("init: all programs finished");
    loop {
        vessel_rt::time::sleep_ms(60_000);
    }
}
