//! The refusal shape: on the wire, on the client when the transport fails or the request does
//! not fit, and as text.

use super::sample::{Client, Done};
use crate::refusal::truncated;
use crate::testing::{OwnedFrame, Recorder};
use crate::{Error, Frame, MAX_REASON, Message, REFUSED, Refusal, Transport};

fn over_the_wire(refusal: &Refusal) -> (OwnedFrame, Refusal) {
    let mut data = vec![0u8; crate::MAX_DATA];
    let mut message = Message::new(&mut data);
    refusal.stage(&mut message);
    let frame = OwnedFrame::from(message.frame());
    let read = Refusal::read(frame.frame());
    (frame, read)
}

#[test]
fn a_refusal_survives_the_wire() {
    let refusal = Refusal::in_container("vfs", 3, Error::AccessDenied, "path escapes the root — ✓");
    assert_eq!(refusal.reason, "vfs: container 0x0000000000000003: path escapes the root — ✓");
    let (frame, read) = over_the_wire(&refusal);
    assert_eq!(frame.words, [REFUSED, Error::AccessDenied as u64, 0, 0]);
    assert_eq!(frame.data, refusal.reason.as_bytes());
    assert_eq!(read, refusal);
    assert_eq!(read.to_string(), "vfs: container 0x0000000000000003: path escapes the root — ✓ (access denied)");
}

#[test]
fn a_long_reason_is_cut_at_a_character_boundary() {
    // 'é' is two bytes, '✓' three: try every alignment against the limit.
    for prefix in 0..3 {
        let reason = "x".repeat(prefix) + &"é✓".repeat(100);
        let (frame, read) = over_the_wire(&Refusal::new(Error::TooLarge, reason.clone()));
        assert!(frame.data.len() <= MAX_REASON && frame.data.len() > MAX_REASON - 3);
        assert!(reason.starts_with(&read.reason));
        assert_eq!(read.reason.len(), frame.data.len());
    }
    assert_eq!(truncated("short"), "short");
}

#[test]
fn any_refusal_frame_reads() {
    let read = |words, data: &[u8]| Refusal::read(Frame { words, data, caps: &[] });
    // Unknown code, bad UTF-8, an over-long reason from a hostile server.
    assert_eq!(read([REFUSED, 999, 0, 0], b"a\xffb"), Refusal::new(Error::InvalidArgument, "a\u{fffd}b"));
    assert_eq!(read([REFUSED, 0, 0, 0], b""), Refusal::new(Error::InvalidArgument, ""));
    assert_eq!(read([REFUSED, 16, 0, 0], &[b'z'; 4096]).reason.len(), MAX_REASON);
    assert_eq!(read([REFUSED, 16, 0, 0], b"").error, Error::TimedOut);
}

/// A transport whose server is gone.
struct Down;

impl Transport for Down {
    fn call<R>(
        &self,
        stage: impl FnOnce(&mut Message<'_>) -> Result<(), Error>,
        _read: impl FnOnce(Frame<'_>) -> R,
    ) -> Result<R, Error> {
        let mut data = vec![0u8; crate::MAX_DATA];
        stage(&mut Message::new(&mut data))?;
        Err(Error::PeerDied)
    }

    fn drop_cap(&self, _: u32) {}
}

#[test]
fn a_transport_failure_names_the_operation() {
    assert_eq!(Client::new(Down).nothing(), Err(Refusal::new(Error::PeerDied, "sample.nothing: peer died")));
}

#[test]
fn a_request_that_does_not_fit_is_refused_without_sending() {
    let recorder = Recorder::default();
    let client = Client::new(&recorder);
    let refusal = client.blob(&[0; 4000], "", &[(1, 1); 10]).unwrap_err();
    let why = "sample.blob: request too large: needs 4160 bytes of data, at most 4096 fit";
    assert_eq!(refusal, Refusal::new(Error::TooLarge, why));
    let refusal = client.pass(1, &[2, 3, 4, 5], "").unwrap_err();
    let why = "sample.pass: request too large: carries 5 capabilities, at most 4 fit";
    assert_eq!(refusal, Refusal::new(Error::TooLarge, why));
    assert!(recorder.take().is_empty());
    // Exactly full is fine: 4096 bytes in one field.
    assert_eq!(client.blob(&[0; 4096], "", &[]).unwrap_err().error, Error::WouldBlock);
    assert_eq!(recorder.take()[0].data.len(), 4096);
    let _ = Done;
}
