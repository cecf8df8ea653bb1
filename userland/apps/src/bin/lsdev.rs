//! `lsdev`: the devices the caller's container may use (being written).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

vessel_rt::entry!(main);

fn main() -> i32 {
    0
}
