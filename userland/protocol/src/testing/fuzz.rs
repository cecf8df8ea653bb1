//! A small fuzzer for both sides of a protocol. Hostile messages are either random (labels
//! valid, random or reply-like; random words, data lengths, bytes and capability counts) or
//! valid messages with a few mutations (bits flipped, lengths changed, data cut or extended,
//! capabilities added or removed, the label swapped), which reach deeper into the decoders.
//! A panic fails the test; the checks after each message are the protocol's promises.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::meta::OpInfo;
use crate::refusal::MAX_REASON;
use crate::serve::Dispatched;
use crate::transport::{Caller, Frame, Message, ReplyKeeper};
use crate::{MAX_CAPS, MAX_DATA, REFUSED, reply_label};

use super::{OwnedFrame, RecordingKeeper};

/// A xorshift64 generator: deterministic, so a failure names its seed and iteration.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.bits() % n }
    }

    /// An index into a collection of `len` items (0 if empty).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A value that often hits the edges: 0, small, a byte, or anything.
    pub fn word(&mut self) -> u64 {
        match self.below(4) {
            0 => 0,
            1 => self.below(8),
            2 => self.below(600),
            _ => self.bits(),
        }
    }
}

/// What the fuzzed server did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FuzzReport {
    /// Requests answered with a reply.
    pub accepted: usize,
    /// Requests refused.
    pub refused: usize,
    /// Requests whose reply was deferred.
    pub deferred: usize,
}

/// A hostile frame: a mutated `seeds` entry or a random frame with one of `labels` (or another).
pub fn hostile_frame(rng: &mut Rng, labels: &[u64], seeds: &[OwnedFrame]) -> OwnedFrame {
    let mut frame = match seeds.get(rng.index(seeds.len())) {
        Some(seed) if rng.below(3) > 0 => seed.clone(),
        _ => {
            let n = match rng.below(4) {
                0 => 0,
                1 => rng.below(32),
                2 => rng.below(600),
                _ => rng.below(MAX_DATA as u64 + 1),
            } as usize;
            let data = (0..n).map(|_| if rng.below(2) == 0 { rng.below(4) as u8 } else { rng.bits() as u8 }).collect();
            let caps = (0..rng.below(MAX_CAPS as u64 + 1)).map(|i| 1000 + i as u32).collect();
            OwnedFrame { words: [0, rng.word(), rng.word(), rng.word()], data, caps }
        }
    };
    frame.words[0] = match rng.below(8) {
        0 => rng.bits(),
        1 => rng.below(64),
        2 => REFUSED,
        3 => reply_label(labels.get(rng.index(labels.len())).copied().unwrap_or(0)),
        4 | 5 => labels.get(rng.index(labels.len())).copied().unwrap_or(0),
        _ => frame.words[0],
    };
    for _ in 0..=rng.below(3) {
        mutate(rng, &mut frame);
    }
    frame
}

fn mutate(rng: &mut Rng, frame: &mut OwnedFrame) {
    let word = 1 + rng.index(3);
    let byte = 8 * rng.below(8);
    match rng.below(9) {
        0 => frame.words[word] ^= 1 << rng.below(64),
        1 => frame.words[word] = (frame.words[word] & !(0xff << byte)) | (rng.below(256) << byte),
        // A small value where a length prefix may be.
        2 => frame.words[word] = (frame.words[word] & !(0xffff << (byte & 0x30))) | (rng.below(40) << (byte & 0x30)),
        3 => {
            let at = rng.index(frame.data.len());
            if let Some(b) = frame.data.get_mut(at) {
                *b ^= 1 << rng.below(8);
            }
        }
        4 => frame.data.truncate(rng.index(frame.data.len() + 1)),
        5 => {
            let extra = 1 + rng.index(16);
            frame.data.extend((0..extra).map(|_| rng.bits() as u8));
            frame.data.truncate(MAX_DATA);
        }
        6 if frame.caps.len() < MAX_CAPS => frame.caps.push(2000 + rng.below(100) as u32),
        7 => {
            frame.caps.pop();
        }
        _ => frame.words[word] = rng.word(),
    }
}

/// Feeds `iterations` hostile requests (built from `seeds`, valid requests of `ops`) to
/// `dispatch` and checks each outcome: a reply carries the request's reply label or is a
/// refusal; a refusal carries no handles, a reason of at most [`MAX_REASON`] bytes, and every
/// handle that came with the request was deleted; a deferred request took its reply; the
/// message never claims more than [`MAX_DATA`] bytes or [`MAX_CAPS`] handles. A server under
/// test must delete the handles of requests it refuses itself.
pub fn fuzz_requests(
    ops: &[OpInfo],
    seeds: &[OwnedFrame],
    seed: u64,
    iterations: usize,
    mut dispatch: impl FnMut(Caller, &mut dyn ReplyKeeper, &mut Message<'_>) -> Dispatched,
) -> Result<FuzzReport, String> {
    let labels: Vec<u64> = ops.iter().map(|op| op.label).collect();
    let mut rng = Rng::new(seed);
    let mut report = FuzzReport::default();
    let mut buffer = vec![0u8; MAX_DATA];
    for i in 0..iterations {
        let hostile = hostile_frame(&mut rng, &labels, seeds);
        buffer[..hostile.data.len()].copy_from_slice(&hostile.data);
        let mut message = Message::received(hostile.words, &mut buffer, hostile.data.len(), &hostile.caps);
        let mut keeper = RecordingKeeper::default();
        let caller = Caller { container: rng.word(), pid: rng.word(), badge: rng.word() };
        let outcome = dispatch(caller, &mut keeper, &mut message);
        let problem = check_request(&hostile, outcome, &keeper, &message, &labels, &mut report);
        if let Some(problem) = problem {
            return Err(format!("seed {seed:#x}, iteration {i}: {problem}; request {hostile:?}"));
        }
    }
    Ok(report)
}

fn check_request(
    request: &OwnedFrame,
    outcome: Dispatched,
    keeper: &RecordingKeeper,
    reply: &Message<'_>,
    labels: &[u64],
    report: &mut FuzzReport,
) -> Option<String> {
    if reply.data_len > MAX_DATA || reply.cap_count > MAX_CAPS {
        return Some(format!("reply claims {} bytes and {} handles", reply.data_len, reply.cap_count));
    }
    if outcome == Dispatched::Deferred {
        report.deferred += 1;
        return keeper.reply.is_none().then(|| String::from("deferred without taking the reply"));
    }
    if reply.words[0] == REFUSED {
        report.refused += 1;
        let mut dropped = keeper.dropped.clone();
        let mut received = request.caps.clone();
        dropped.sort_unstable();
        received.sort_unstable();
        if dropped != received {
            return Some(format!("refused, deleted {dropped:?} of the handles {received:?}"));
        }
        if reply.cap_count != 0 || reply.data_len > MAX_REASON || core::str::from_utf8(reply.data_bytes()).is_err() {
            return Some(format!("bad refusal {:?}", reply.frame()));
        }
        return None;
    }
    report.accepted += 1;
    if !labels.contains(&request.words[0]) || reply.words[0] != reply_label(request.words[0]) {
        return Some(format!("accepted, answered with label {:#x}", reply.words[0]));
    }
    None
}

/// Feeds `iterations` hostile replies (built from `seeds`: an operation's label and a valid
/// reply to it) to `decode` (the client's reader for that operation), and checks that a reply
/// it rejects has all its handles returned for deletion. The number of replies accepted.
pub fn fuzz_replies(
    seeds: &[(u64, OwnedFrame)],
    seed: u64,
    iterations: usize,
    mut decode: impl FnMut(u64, Frame<'_>) -> Result<(), Vec<u32>>,
) -> Result<usize, String> {
    let labels: Vec<u64> = seeds.iter().map(|(label, _)| reply_label(*label)).collect();
    let mut rng = Rng::new(seed);
    let mut accepted = 0;
    for i in 0..iterations {
        let Some((op, valid)) = seeds.get(rng.index(seeds.len())) else { break };
        let hostile = hostile_frame(&mut rng, &labels, core::slice::from_ref(valid));
        match decode(*op, hostile.frame()) {
            Ok(()) => accepted += 1,
            Err(leftover) if leftover == hostile.caps => {}
            Err(leftover) => {
                return Err(format!("seed {seed:#x}, iteration {i}: kept {leftover:?} of {:?}", hostile.caps));
            }
        }
    }
    Ok(accepted)
}
