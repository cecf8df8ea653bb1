//! Hostile requests and replies: each is refused with a reason naming what was wrong, the
//! capabilities that came with it are deleted, and nothing panics.

use super::sample::protocol_checks::{self, Echo};
use super::sample::{self, Client, Scalars};
use crate::testing::{Loopback, OwnedFrame};
use crate::{Error, Frame, Message, REFUSED, Refusal, Transport, reply_label};

fn echo() -> Loopback<Echo> {
    Loopback::new(Echo::new(false), sample::dispatch::<Echo>)
}

/// A raw request (words, data, handles) and the reason it is refused with.
type Case = ([u64; 4], &'static [u8], &'static [u32], &'static str);

/// Sends a raw request; the refusal it got (fails if it was not refused).
fn refused(loopback: &Loopback<Echo>, words: [u64; 4], data: &[u8], caps: &[u32]) -> Refusal {
    let reply = loopback.raw(words, data, caps).unwrap();
    assert_eq!(reply.words[0], REFUSED, "{words:?} {data:?} {caps:?} was answered {reply:?}");
    assert!(reply.caps.is_empty());
    Refusal::read(reply.frame())
}

#[test]
fn each_malformed_request_is_refused_naming_the_problem() {
    let lo = echo();
    let cases: [Case; 10] = [
        ([99, 0, 0, 0], b"", &[], "sample: unknown label 99"),
        ([reply_label(1), 0, 0, 0], b"", &[], "sample: unknown label 4294967297"),
        ([1, 0, 0, 2 << 56], b"", &[], "sample.scalars: field `f`: bad value"),
        ([1, 0, 0, 0], b"x", &[], "sample.scalars: bad length: 1 bytes of data left over"),
        ([3, 5, 0, 0], b"abc", &[], "sample.blob: field `data`: bad length: the data ends inside the field"),
        ([3, 0xffff, 0, 0], b"", &[], "sample.blob: field `data`: bad length: longer than a message"),
        ([3, 2 << 16, 0, 0], b"\xff\xfe", &[], "sample.blob: field `text`: bad value: not UTF-8"),
        ([4, 0, 0, 0], b"", &[], "sample.pass: field `endpoint`: wrong capability count: 0 received, more needed"),
        ([4, 3, 0, 0], b"", &[7, 8], "sample.pass: field `extra`: wrong capability count: 2 received, more needed"),
        ([6, 0, 0, 0], b"", &[7], "sample.nothing: wrong capability count: 1 received, 0 expected"),
    ];
    for (words, data, caps, reason) in cases {
        let refusal = refused(&lo, words, data, caps);
        assert_eq!(refusal, Refusal::new(Error::InvalidArgument, reason));
    }
    // Every handle that came with a refused request was deleted, once.
    assert_eq!(lo.mailbox().dropped(), [7, 8, 7]);
    // The server still answers well-formed requests.
    let client = Client::new(&lo);
    assert!(client.scalars(1, 2, 3, 4, 5, true).is_ok());
}

#[test]
fn a_refused_custom_field_names_its_field() {
    let lo = echo();
    let refusal = refused(&lo, [5, 9, 0, 0], b"", &[]);
    assert_eq!(refusal.reason, "sample.shape: field `shape`: bad value");
    let refusal = refused(&lo, [5, 7 << 8, 0, 0], b"", &[]);
    assert_eq!(refusal.reason, "sample.shape: field `maybe`: bad value");
}

#[test]
fn fuzzed_requests_and_replies_never_panic() {
    let report = protocol_checks::fuzz_every_operation(0x2545_f491_4f6c_dd1d, 60_000).unwrap();
    assert!(report.accepted > 1000 && report.refused > 1000 && report.deferred > 1000, "{report:?}");
    // Another seed, to vary the paths.
    protocol_checks::fuzz_every_operation(7, 20_000).unwrap();
}

/// A transport answering every call with one fixed reply.
struct Canned(OwnedFrame, std::cell::RefCell<Vec<u32>>);

impl Transport for Canned {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        let mut data = vec![0u8; crate::MAX_DATA];
        stage(&mut Message::new(&mut data))?;
        Ok(read(self.0.frame()))
    }

    fn drop_cap(&self, handle: u32) {
        self.1.borrow_mut().push(handle);
    }
}

#[test]
fn a_malformed_reply_is_a_refusal_and_its_handles_are_deleted() {
    let canned = |words, data: &[u8], caps: &[u32]| {
        let reply = OwnedFrame { words, data: data.to_vec(), caps: caps.to_vec() };
        Canned(reply, Default::default())
    };
    let malformed = Refusal::new(Error::InvalidArgument, "sample.scalars: malformed reply");
    // Wrong label, bad bool, trailing data, unexpected capability.
    for (words, data, caps) in [
        ([reply_label(2), 0, 0, 0], &b""[..], &[][..]),
        ([reply_label(1), 0, 0, 7 << 56], b"", &[]),
        ([reply_label(1), 0, 0, 0], b"zz", &[]),
        ([reply_label(1), 0, 0, 0], b"", &[5, 6]),
    ] {
        let transport = canned(words, data, caps);
        assert_eq!(Client::new(&transport).scalars(0, 0, 0, 0, 0, false), Err(malformed.clone()));
        assert_eq!(*transport.1.borrow(), caps);
    }
    let transport = canned([reply_label(1), 9, 0, 1 << 56], b"", &[]);
    assert_eq!(
        Client::new(&transport).scalars(0, 0, 0, 0, 0, false),
        Ok(Scalars { a: 9, b: 0, c: 0, d: 0, e: 0, f: true })
    );
    // A refusal that carried handles: they are deleted too.
    let transport = canned([REFUSED, Error::NotFound as u64, 0, 0], b"gone", &[3]);
    assert_eq!(Client::new(&transport).nothing(), Err(Refusal::new(Error::NotFound, "gone")));
    assert_eq!(*transport.1.borrow(), [3]);
}
