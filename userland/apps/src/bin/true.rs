//! `true`: exits with code 0 at once. The smallest program, used to measure spawn + wait.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

vessel_rt::entry!(main);

fn main() -> i32 {
    0
}
