//! `bench`: Vessel's side of the performance comparison. Prints
//! `RESULT <name> n=<N> <value> ns/<unit>` lines, then leaves QEMU. Times come from the kernel's
//! TSC clock; each figure is the total divided by the count.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use vessel_rt::{println, process, sys, time};

vessel_rt::entry!(main);

fn report(name: &str, n: u64, total_ns: u64, unit: &str) {
    let tenths = total_ns * 10 / n.max(1);
    println!("RESULT {name} n={n} {}.{} ns/{unit}", tenths / 10, tenths % 10);
}

fn main() -> i32 {
    // Null system call: the cheapest call there is.
    let n = 200_000;
    let start = time::now_ns();
    for _ in 0..n {
        core::hint::black_box(sys::process_id());
    }
    report("null_syscall", n, time::now_ns() - start, "call");

    // Yield ping-pong between two processes of equal priority: every yield is one switch.
    let n = 20_000;
    let rounds = n.to_string_lossless();
    match process::spawn("bin/probe", &["yield", rounds.as_str()]) {
        Ok(partner) => {
            sys::yield_now(); // let the partner start
            let start = time::now_ns();
            for _ in 0..n {
                sys::yield_now();
            }
            let elapsed = time::now_ns() - start;
            let _ = process::wait(partner);
            report("yield_switch", 2 * n, elapsed, "switch");
        }
        Err(e) => println!("bench: cannot spawn the yield partner: {e}"),
    }

    // Spawn a tiny program, it exits, wait for it.
    let n = 500;
    let start = time::now_ns();
    for _ in 0..n {
        let _ = process::run("bin/true", &[]);
    }
    report("spawn_wait", n, time::now_ns() - start, "proc");

    let _ = sys::debug_exit(0);
    0
}

/// Decimal text of a number without allocation.
trait Decimal {
    fn to_string_lossless(self) -> Text;
}

/// A short number's text.
struct Text {
    buf: [u8; 20],
    start: usize,
}

impl Text {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[self.start..]).unwrap_or("0")
    }
}

impl Decimal for u64 {
    fn to_string_lossless(mut self) -> Text {
        let mut text = Text { buf: [b'0'; 20], start: 20 };
        loop {
            text.start -= 1;
            text.buf[text.start] = b'0' + (self % 10) as u8;
            self /= 10;
            if self == 0 {
                return text;
            }
        }
    }
}
