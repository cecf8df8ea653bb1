//! What the `window-server` probe role and the receive-window tests agree on (included by both).

/// Byte `i` of the pattern the server copies: the caller checks it.
pub fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(7) ^ (i >> 8)) as u8
}

/// Commands (`w0` of a call); `w1` the offset in the window, `w2` the bytes, `w3` the size of
/// each piece, unless the command says otherwise.
pub const WRITE: u64 = 1;
/// As `WRITE`, through a kept reply.
pub const WRITE_KEPT: u64 = 2;
/// One piece of `w2` bytes from an address nothing maps.
pub const WRITE_UNMAPPED: u64 = 3;
/// `w2` pieces of one byte each.
pub const WRITE_PIECES: u64 = 4;
/// One piece of `w2` bytes from the lowest page of the server's stack, which it never touched
/// (a first touch would map it).
pub const WRITE_UNTOUCHED: u64 = 6;
/// Answers the error the server got from `WindowWrite` before it received any call.
pub const UNOWED: u64 = 5;
/// Ends the server.
pub const STOP: u64 = u64::MAX;
