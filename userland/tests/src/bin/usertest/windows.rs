//! Receive windows (`WindowWrite`): a server copies bytes of its own memory into the window its
//! caller offered, only while the caller waits, only inside the window, only into pages the
//! caller may write; everything else is refused with a reason and leaves the window as it was.
//! The server is the `window-server` probe role.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use vessel_rt::abi::{Error, Exit, MAX_WINDOW_PIECES, MAX_WINDOW_WRITE, MapFlags, Meta, WINDOW};
use vessel_rt::ipc::{self, Endpoint};
use vessel_rt::{process, sys};

use crate::ipc::{counts, e, finished};
use crate::window_commands::*;
use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("window::server_writes_into_the_callers_window", server_writes_into_the_callers_window),
    ("window::refusals_leave_the_window_alone", refusals_leave_the_window_alone),
];

/// A call the server's write must be refused for: what it is, the words, the window offered,
/// the call's flags, the error wanted.
type Refused = (&'static str, [u64; 4], (u64, u64), u8, Error);

/// Where QEMU puts the HPET's registers (a device page the test may map).
const HPET: u64 = 0xfed0_0000;

/// What the canary bytes around a write hold.
const CANARY: u8 = 0xA5;

/// Calls `ep` with `words`, offering `window` (`flags` are the call's meta flags: `WINDOW` or
/// not); the server's answer as `Ok(bytes)` or the error it got.
fn call(
    ep: Endpoint,
    words: [u64; 4],
    window: (u64, u64),
    flags: u8,
) -> Result<Result<u64, Error>, alloc::string::String> {
    // SAFETY: set right before the call, cleared right after; nothing else uses the buffer.
    let buffer = unsafe { ipc::buffer() };
    (buffer.window, buffer.window_len) = window;
    let reply = ep.call(words, Meta { flags, ..Meta::default() });
    // SAFETY: as above.
    let buffer = unsafe { ipc::buffer() };
    (buffer.window, buffer.window_len) = (0, 0);
    let reply = reply.map_err(e("call"))?;
    Ok(match reply.words {
        [n, 0, _, _] => Ok(n),
        [_, code, _, _] => Err(Error::from_code(code)),
    })
}

fn region(buf: &mut [u8]) -> (u64, u64) {
    (buf.as_mut_ptr() as u64, buf.len() as u64)
}

/// The bytes `at..at + len` of `buf` hold the pattern from its start, and all others the canary.
fn holds_pattern(buf: &[u8], at: usize, len: usize) -> bool {
    buf.iter().enumerate().all(
        |(i, &b)| {
            if (at..at + len).contains(&i) { b == pattern((i - at) as u64) } else { b == CANARY }
        },
    )
}

fn start_server() -> Result<(Endpoint, u64), alloc::string::String> {
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = process::spawn_with_caps("bin/probe", &["window-server"], &[ep.0.0]).map_err(e("spawn"))?;
    Ok((ep, server))
}

fn stop_server(ep: Endpoint, server: u64) -> TestResult {
    call(ep, [STOP, 0, 0, 0], (0, 0), 0)?.map_err(e("stop"))?;
    check!(process::wait(server) == Ok(Exit::Code(0)), "window server exit");
    ep.0.delete().map_err(e("delete"))?;
    Ok(())
}

/// Writes of many shapes land exactly where asked, through the pending reply and through a
/// kept one: across page boundaries, from many small pieces, up to the per-call limit.
fn server_writes_into_the_callers_window() -> TestResult {
    let before = counts()?;
    let (ep, server) = start_server()?;
    // Three pages and a bit, so a write crosses page boundaries in the window.
    let mut window = vec![CANARY; 3 * 4096 + 100];
    let cases: [(u64, u64, u64, u64); 6] = [
        // (command, offset, bytes, piece size)
        (WRITE, 0, 1, 1),
        (WRITE, 5, 10_000, 1_000),
        (WRITE, 4095, 4098, 4096),
        (WRITE, 0, 3 * 4096 + 100, 777),
        (WRITE_KEPT, 300, 9_000, 4096),
        (WRITE_PIECES, 17, MAX_WINDOW_PIECES as u64, 1),
    ];
    for (command, offset, bytes, piece) in cases {
        window.fill(CANARY);
        let got = call(ep, [command, offset, bytes, piece], region(&mut window), WINDOW)?;
        check!(got == Ok(bytes), "command {command}: {bytes} bytes at {offset}: {got:?}");
        check!(
            holds_pattern(&window, offset as usize, bytes as usize),
            "command {command}: {bytes} bytes at {offset} in pieces of {piece} did not land exactly there"
        );
    }
    // The most one call copies, into a window of exactly that size.
    let mut large = vec![CANARY; MAX_WINDOW_WRITE as usize];
    let got = call(ep, [WRITE, 0, MAX_WINDOW_WRITE, 4096], region(&mut large), WINDOW)?;
    check!(got == Ok(MAX_WINDOW_WRITE), "{MAX_WINDOW_WRITE} bytes: {got:?}");
    check!(holds_pattern(&large, 0, large.len()), "{MAX_WINDOW_WRITE} bytes did not land");
    stop_server(ep, server)?;
    finished(before)
}

/// Every refusal names its reason and leaves the window as it was.
fn refusals_leave_the_window_alone() -> TestResult {
    let before = counts()?;
    let (ep, server) = start_server()?;
    let mut window = vec![CANARY; 8192];
    let whole = region(&mut window);
    let read_only = sys::mem_map(1, MapFlags::empty()).map_err(e("map read-only"))?;
    // A device's registers mapped writable (the HPET's page, as the hw tests map it).
    let platform = vessel_rt::platform::Platform::inherited().ok_or("no platform capability inherited")?;
    let hpet = platform.mmio(HPET, 0x1000).map_err(e("mmio"))?;
    let registers = hpet.map().map_err(e("map the HPET"))?;
    // The general configuration register (byte 16: writable, unlike the capabilities before it).
    // SAFETY: the kernel mapped the HPET's register page at `registers`, uncached.
    let hpet_config = || unsafe { core::ptr::read_volatile((registers + 16) as usize as *const u64) };
    let config_before = hpet_config();
    let cases: Vec<Refused> = vec![
        ("a call without WINDOW", [WRITE, 0, 100, 100], whole, 0, Error::AccessDenied),
        ("past the window's end", [WRITE, 8000, 193, 193], whole, WINDOW, Error::TooLarge),
        ("an offset past the end", [WRITE, u64::MAX - 10, 100, 100], whole, WINDOW, Error::TooLarge),
        (
            "more than a call copies",
            [WRITE, 0, MAX_WINDOW_WRITE + 1, 4096],
            (whole.0, u64::MAX / 2),
            WINDOW,
            Error::TooLarge,
        ),
        ("too many pieces", [WRITE_PIECES, 0, MAX_WINDOW_PIECES as u64 + 1, 1], whole, WINDOW, Error::TooLarge),
        ("a source nothing maps", [WRITE_UNMAPPED, 0, 100, 0], whole, WINDOW, Error::BadAddress),
        // Regression: the kernel paged the stack page in while holding its table lock, and
        // waited for that lock forever.
        ("a source page never touched", [WRITE_UNTOUCHED, 0, 100, 0], whole, WINDOW, Error::BadAddress),
        ("a read-only window", [WRITE, 0, 100, 100], (read_only, 4096), WINDOW, Error::BadAddress),
        (
            "a window in the kernel's half",
            [WRITE, 0, 100, 100],
            (0xffff_8000_0000_0000, 4096),
            WINDOW,
            Error::BadAddress,
        ),
        ("a window running off user space", [WRITE, 0, 100, 100], (0x7fff_ffff_fff0, 4096), WINDOW, Error::BadAddress),
        ("a window nothing maps", [WRITE, 0, 100, 100], (0x1000, 4096), WINDOW, Error::BadAddress),
        ("a window over device registers", [WRITE, 0, 100, 100], (registers, 4096), WINDOW, Error::BadAddress),
        ("no call received yet", [UNOWED, 0, 0, 0], whole, WINDOW, Error::InvalidArgument),
    ];
    for (what, words, window_range, flags, want) in cases {
        let got = call(ep, words, window_range, flags)?;
        check!(got == Err(want), "{what}: {got:?}, wanted {want:?}");
        check!(window.iter().all(|&b| b == CANARY), "{what}: the window changed");
    }
    // SAFETY: the page was mapped above and nothing refers to it.
    let read_only_intact = unsafe { core::slice::from_raw_parts(read_only as *const u8, 4096) }.iter().all(|&b| b == 0);
    check!(read_only_intact, "the read-only page changed");
    check!(hpet_config() == config_before, "the HPET's configuration changed");
    // SAFETY: nothing uses the mapping afterwards.
    unsafe { sys::mem_unmap(registers, 1) }.map_err(e("unmap the HPET"))?;
    let _ = hpet.0.delete();
    // SAFETY: nothing refers to the page any more.
    unsafe { sys::mem_unmap(read_only, 1) }.map_err(e("unmap"))?;
    // The server still answers after all of that.
    let got = call(ep, [WRITE, 1, 50, 7], whole, WINDOW)?;
    check!(got == Ok(50) && holds_pattern(&window, 1, 50), "a good write after the refusals: {got:?}");
    stop_server(ep, server)?;
    finished(before)
}
