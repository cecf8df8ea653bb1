//! Vessel's user runtime: everything a program needs so that it contains no `asm!` of its own.
//!
//! A program is `#![no_std] #![no_main]`, depends on this crate and names its entry with
//! [`entry!`]. The runtime provides `_start` (reads the kernel's `StartInfo`, runs `main`, exits
//! with its return value), typed system-call wrappers, a global allocator backed by `MemMap`,
//! `print!`/`println!` through the kernel debug console, process spawn/wait, and a panic handler
//! that prints the message and exits with code 101.
#![no_std]

extern crate alloc;

pub mod arch;
pub mod container;
pub mod device;
pub mod fs;
mod heap;
pub mod io;
pub mod ipc;
pub mod job;
pub mod platform;
pub mod proc;
pub mod process;
pub mod server;
mod start;
pub mod sys;
pub mod thread;
pub mod time;

pub use start::{args, bootfs, env, handles, handles_of, pid, var};
pub use vessel_abi as abi;

/// Declares the program's `main`: `fn main() -> i32`, whose value becomes the exit code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "Rust" fn vessel_main() -> i32 {
            $main()
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panic in process {}: {info}", sys::process_id());
    sys::exit(101)
}
