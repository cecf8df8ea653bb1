//! `proc`, the process and container server (DESIGN.md sections 3-4). init starts it with the
//! root container capability and the hardware capabilities, and a receive capability to the
//! `proc` endpoint, which `proc` registers as a system service: every container can call it, and
//! the kernel stamps the caller's container on each request, so `proc` acts within that
//! container and its descendants only. The protocol is `vessel_proc_protocol` (one
//! declaration); `docs/proc.md` describes the server.
//!
//! `proc` never polls. One thread receives requests and events from one loop:
//! - every process it starts has an exit event on `proc`'s notification, which is bound to the
//!   receiving thread, so a death ends the receive like a request does;
//! - `wait` keeps the caller's reply (a kept reply) until the process ends, and `wait_timeout`
//!   also until its deadline: only while such a deadline is pending does the receive have a
//!   timeout;
//! - a supervised service that dies is restarted when its exit event arrives.
//!
//! State lives in [`state`]: the containers it created, the processes it started, the
//! services, and the waits it keeps.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod ops;
mod state;

use vessel_protocol::Dispatched;
use vessel_rt::abi::{ObjectKind, Rights};
use vessel_rt::container::{self, Container};
use vessel_rt::ipc::{Cap, Endpoint, Notification};
use vessel_rt::println;
use vessel_rt::server::{Incoming, Keeper, Server};

use state::State;

vessel_rt::entry!(main);

fn main() -> i32 {
    let handles = vessel_rt::handles();
    let kind = |h: u32| Cap(h).inspect().map(|i| i.kind).unwrap_or(0);
    let Some(&ep) = handles.iter().find(|&&h| kind(h) == ObjectKind::Endpoint as u32) else {
        println!("proc: no endpoint to serve");
        return 1;
    };
    let Some(&root) = handles.iter().find(|&&h| kind(h) == ObjectKind::Container as u32) else {
        println!("proc: no root container capability");
        return 1;
    };
    let (endpoint, root) = (Endpoint(Cap(ep)), Container(Cap(root)));
    if let Err(e) = container::register_service(endpoint, root) {
        println!("proc: cannot register its endpoint: {e}");
        return 1;
    }
    let Ok(client) = endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE) else {
        println!("proc: cannot make client capabilities");
        return 1;
    };
    // Exit events of every process proc starts arrive here, and end our receives.
    let events = match Notification::create().and_then(|n| n.bind().map(|()| n)) {
        Ok(n) => n,
        Err(e) => {
            println!("proc: cannot set up its exit events: {e}");
            return 1;
        }
    };
    let root_id = root.id().unwrap_or(0);
    println!("proc: serving; root container {root_id:#018x}");
    let mut state = State::new(root, root_id, Endpoint(client), events);
    let mut server = Server::new(endpoint);
    loop {
        match server.next(state.next_timeout()) {
            Ok(Incoming::Request { caller, mut message }) => {
                if vessel_proc_protocol::dispatch(&mut state, caller, &mut Keeper, &mut message) == Dispatched::Reply {
                    // A caller that died meanwhile is nobody's loss; the runtime deletes the
                    // capabilities the reply would have moved.
                    let _ = Server::answer(&message);
                }
            }
            Ok(Incoming::Notified(_)) => state.on_exits(),
            Ok(Incoming::TimedOut) => {}
            Err(e) => {
                println!("proc: receive failed: {e}");
                return 1;
            }
        }
        state.expire_waits();
    }
}
