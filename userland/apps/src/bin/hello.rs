//! `hello`: greets, lists its arguments, and shows that allocation works.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use vessel_rt::println;

vessel_rt::entry!(main);

fn main() -> i32 {
    let args: alloc::vec::Vec<&str> = vessel_rt::args().collect();
    println!("hello from user space: process {}, arguments {:?}", vessel_rt::pid(), args);
    0
}
