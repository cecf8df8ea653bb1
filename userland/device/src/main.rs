//! The `device` server (being written).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

vessel_rt::entry!(main);

fn main() -> i32 {
    0
}
