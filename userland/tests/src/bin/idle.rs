//! `idle`: waits forever on an endpoint nobody else holds, doing nothing else; a process that
//! stays alive for the benchmarks that need many of them (1,000 in a container to destroy) and
//! costs little memory each: a few pages, against `probe`'s two dozen.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use vessel_rt::ipc::Endpoint;

vessel_rt::entry!(main);

fn main() -> i32 {
    match Endpoint::create() {
        // Nobody can call it: the receive ends only when the process is ended.
        Ok(endpoint) => {
            let _ = endpoint.recv();
            1
        }
        Err(_) => 2,
    }
}
