//! `probe <what> [args]`: the helper the user-space tests spawn to act as a separate process.
//!
//! - `exit N`: exit with code N.
//! - `args ...`: exit with the argument count if every argument reads back as `aN`.
//! - `fault KIND`: provoke a CPU fault (see `vessel_rt::arch::Fault`).
//! - `spin [MS]`: busy-loop forever, or for MS milliseconds then exit 0.
//! - `isolation TAG`: write TAG at the first `MemMap` address, yield, check it: same virtual
//!   address in every process, different memory. Exit 0 if intact.
//! - `fpu SEED`: load SSE registers with a pattern, yield many times, exit 0 if intact.
//! - `yield N`: yield N times (benchmark partner).
//! - `parent`: spawn `probe spin` and wait for it forever (killed by the test).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use vessel_rt::arch::{self, Fault};
use vessel_rt::{process, sys, time};

vessel_rt::entry!(main);

fn number(arg: Option<&&str>) -> u64 {
    arg.and_then(|a| a.parse().ok()).unwrap_or(0)
}

fn main() -> i32 {
    let args: Vec<&str> = vessel_rt::args().collect();
    match args.get(1).copied().unwrap_or("") {
        "exit" => number(args.get(2)) as i32,
        "args" => {
            let ok = args[2..].iter().enumerate().all(|(i, a)| *a == alloc::format!("a{i}"));
            if ok { args.len() as i32 } else { -1 }
        }
        "fault" => {
            let fault = match args.get(2).copied().unwrap_or("") {
                "null" => Fault::NullRead,
                "write-code" => Fault::WriteCode,
                "ud" => Fault::InvalidOpcode,
                "privileged" => Fault::Privileged,
                "divide" => Fault::DivideByZero,
                "exec-data" => Fault::ExecuteData,
                "stack" => Fault::StackOverflow,
                "kernel" => Fault::KernelRead,
                "breakpoint" => Fault::Breakpoint,
                _ => return 2,
            };
            arch::provoke(fault);
            3 // the fault did not happen
        }
        "spin" => {
            let ms = number(args.get(2));
            let end = time::now_ns() + ms * 1_000_000;
            while ms == 0 || time::now_ns() < end {
                core::hint::spin_loop();
            }
            0
        }
        "isolation" => isolation(number(args.get(2))),
        "fpu" => {
            let seed = number(args.get(2));
            arch::set_xmm(seed);
            for _ in 0..200 {
                sys::yield_now();
                if !arch::xmm_intact(seed) {
                    return 1;
                }
            }
            0
        }
        "yield" => {
            for _ in 0..number(args.get(2)) {
                sys::yield_now();
            }
            0
        }
        "parent" => match process::spawn("bin/probe", &["spin"]) {
            Ok(child) => {
                let _ = process::wait(child);
                0
            }
            Err(_) => 6,
        },
        _ => 2,
    }
}

/// The heap grows from the first `MemMap` address, the same in every process, so this block
/// sits at the same virtual address in every probe. Fill it with the tag, let the others run,
/// check nothing changed. Exit code: 1 if changed, else 10 + the block's offset in the heap
/// range, so the test can see that all probes used the same address.
fn isolation(tag: u64) -> i32 {
    let block: Vec<u64> = alloc::vec![tag; 4096];
    for _ in 0..100 {
        sys::yield_now();
        if block.iter().any(|&v| v != tag) {
            return 1;
        }
    }
    let offset = (block.as_ptr() as u64).wrapping_sub(vessel_rt::abi::HEAP_START);
    if offset > 0xffff { 2 } else { 10 + offset as i32 }
}
