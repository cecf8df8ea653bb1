//! Probe role for the receive-window tests: a server that copies a pattern into its callers'
//! windows with `WindowWrite` and answers with what the kernel said.

use alloc::vec::Vec;

use vessel_rt::abi::Meta;
use vessel_rt::ipc::{Endpoint, ReplyCap, window_write};

use crate::cap;
use crate::window_commands::*;

/// Packs a result into two words: (bytes, 0) or (0, error code).
fn words(result: Result<u64, vessel_rt::abi::Error>) -> [u64; 4] {
    match result {
        Ok(n) => [n, 0, 0, 0],
        Err(e) => [0, e as u64, 0, 0],
    }
}

/// `window-server`: serves endpoint 0 with the commands above; exit 0 after `STOP`.
pub fn window_server() -> i32 {
    let ep = Endpoint(cap(0));
    let unowed = words(window_write(None, 0, &[]));
    let source: Vec<u8> = (0..(256 * 1024) as u64).map(pattern).collect();
    let base = source.as_ptr() as u64;
    let mut message = match ep.recv() {
        Ok(m) => m,
        Err(_) => return 1,
    };
    loop {
        let [command, offset, bytes, piece] = message.words;
        let pieces = |bytes: u64, piece: u64| -> Vec<[u64; 2]> {
            let piece = piece.max(1);
            (0..bytes.div_ceil(piece)).map(|k| [base + k * piece, piece.min(bytes - k * piece)]).collect()
        };
        let answer = match command {
            WRITE => words(window_write(None, offset, &pieces(bytes, piece))),
            WRITE_KEPT => {
                let Ok(reply) = ReplyCap::take() else { return 2 };
                let answer = words(window_write(Some(reply), offset, &pieces(bytes, piece)));
                if reply.send(answer, Meta::default()).is_err() {
                    return 3;
                }
                match ep.recv() {
                    Ok(m) => {
                        message = m;
                        continue;
                    }
                    Err(_) => return 1,
                }
            }
            WRITE_UNMAPPED => words(window_write(None, offset, &[[0x1000, bytes]])),
            WRITE_UNTOUCHED => {
                let lowest = vessel_rt::abi::STACK_TOP - vessel_rt::abi::STACK_SIZE;
                words(window_write(None, offset, &[[lowest, bytes]]))
            }
            WRITE_PIECES => {
                let list: Vec<[u64; 2]> = (0..bytes).map(|k| [base + k, 1]).collect();
                words(window_write(None, offset, &list))
            }
            UNOWED => unowed,
            STOP => {
                let _ = vessel_rt::ipc::reply([0; 4], Meta::default());
                return 0;
            }
            _ => [0, u64::MAX, 0, 0],
        };
        message = match ep.reply_recv(answer, Meta::default()) {
            Ok(m) => m,
            Err(_) => return 1,
        };
    }
}
