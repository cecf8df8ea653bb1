//! The kv protocol through the loopback, with a small store as the server: round trips, the
//! wire layout, refusals, and hostile messages.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use vessel_protocol::testing::{Loopback, Recorder, fuzz_requests};
use vessel_protocol::{Answer, Caller, Cx, Error, REFUSED, Refusal, undocumented};

use super::*;

/// Keys a test store holds.
const MAX_KEYS: usize = 4;

/// A kv server in memory.
#[derive(Default)]
struct Store {
    values: BTreeMap<u64, Vec<u8>>,
}

impl Server for Store {
    fn put(&mut self, cx: &mut Cx<'_, Stored>, key: u64, value: &[u8]) -> Answer<Stored> {
        if value.len() > MAX_VALUE {
            let why = format!("a value of {} bytes, at most {MAX_VALUE}", value.len());
            return cx.refusal(Error::TooLarge, why).into();
        }
        if self.values.len() >= MAX_KEYS && !self.values.contains_key(&key) {
            return cx.refusal(Error::QuotaExceeded, "the store is full").into();
        }
        Answer::Reply(Stored { replaced: self.values.insert(key, value.to_vec()).is_some() })
    }

    fn get(&mut self, cx: &mut Cx<'_, Found>, key: u64) -> Answer<Found> {
        match self.values.get(&key) {
            Some(value) => Answer::Reply(Found { value: value.clone() }),
            None => cx.refusal(Error::NotFound, format!("no value under key {key}")).into(),
        }
    }
}

fn store() -> Loopback<Store> {
    let loopback = Loopback::new(Store::default(), dispatch::<Store>);
    loopback.set_caller(Caller { container: 5, pid: 1, badge: 0 });
    loopback
}

#[test]
fn every_operation_round_trips() {
    assert_eq!(protocol_checks::round_trip_every_operation(), Ok(2 * vessel_protocol::testing::ROUNDS));
}

#[test]
fn put_then_get() {
    let lo = store();
    let kv = Client::new(&lo);
    assert_eq!(kv.put(1, b"one"), Ok(Stored { replaced: false }));
    assert_eq!(kv.put(1, b"uno"), Ok(Stored { replaced: true }));
    assert_eq!(kv.get(1), Ok(Found { value: b"uno".to_vec() }));
    assert_eq!(kv.put(2, &[0xff; MAX_VALUE]), Ok(Stored { replaced: false }));
    assert_eq!(kv.get(2).unwrap().value, [0xff; MAX_VALUE]);
    assert_eq!(kv.put(3, b""), Ok(Stored { replaced: false }));
    assert_eq!(kv.get(3).unwrap().value, b"");
}

#[test]
fn the_server_refuses_with_reasons() {
    let lo = store();
    let kv = Client::new(&lo);
    let missing = Refusal::new(Error::NotFound, "kv: container 0x0000000000000005: no value under key 9");
    assert_eq!(kv.get(9), Err(missing));
    let long = kv.put(1, &[0; MAX_VALUE + 1]).unwrap_err();
    assert_eq!(long.error, Error::TooLarge);
    assert_eq!(long.reason, "kv: container 0x0000000000000005: a value of 65 bytes, at most 64");
    for key in 0..MAX_KEYS as u64 {
        kv.put(key, b"v").unwrap();
    }
    assert_eq!(kv.put(99, b"v").unwrap_err().error, Error::QuotaExceeded);
    assert_eq!(kv.put(0, b"w"), Ok(Stored { replaced: true }));
}

#[test]
fn the_wire_layout_is_the_documented_one() {
    let recorder = Recorder::default();
    let kv = Client::new(&recorder);
    let _ = kv.put(7, b"hello");
    let _ = kv.get(u64::MAX);
    let frames = recorder.take();
    // put: key in word 1, the value's length in word 2, the value in the data.
    assert_eq!(frames[0].words, [label::put, 7, 5, 0]);
    assert_eq!(frames[0].data, b"hello");
    // get: register-only.
    assert_eq!(frames[1].words, [label::get, u64::MAX, 0, 0]);
    assert!(frames[1].data.is_empty());
}

#[test]
fn a_hand_made_message_is_refused_and_the_store_survives() {
    let lo = store();
    let kv = Client::new(&lo);
    kv.put(1, b"uno").unwrap();
    let reply = lo.raw([77, 0, 0, 0], b"", &[]).unwrap();
    assert_eq!(reply.words[0], REFUSED);
    assert_eq!(Refusal::read(reply.frame()), Refusal::new(Error::InvalidArgument, "kv: unknown label 77"));
    // A put whose length runs past the data, with a capability that must be deleted.
    let reply = lo.raw([label::put, 1, 10, 0], b"abc", &[42]).unwrap();
    let reason = "kv.put: field `value`: bad length: the data ends inside the field";
    assert_eq!(Refusal::read(reply.frame()), Refusal::new(Error::InvalidArgument, reason));
    assert_eq!(lo.mailbox().dropped(), [42]);
    assert_eq!(kv.get(1), Ok(Found { value: b"uno".to_vec() }));
}

#[test]
fn hostile_messages_never_panic() {
    let report = protocol_checks::fuzz_every_operation(0x9e37_79b9_7f4a_7c15, 60_000).unwrap();
    assert!(report.accepted > 0 && report.refused > 0, "{report:?}");
    // And through the real store, whose own refusals must hold up too.
    let recorder = Recorder::default();
    let kv = Client::new(&recorder);
    for (key, value) in [(1, &b"one"[..]), (2, &[7; MAX_VALUE]), (3, &[1; MAX_VALUE + 1])] {
        let _ = kv.put(key, value);
        let _ = kv.get(key);
    }
    let mut store = Store::default();
    let report = fuzz_requests(OPERATIONS, &recorder.take(), 11, 50_000, |caller, keeper, message| {
        dispatch(&mut store, caller, keeper, message)
    })
    .unwrap();
    assert!(report.accepted > 0 && report.refused > 0 && report.deferred == 0, "{report:?}");
}

#[test]
fn every_operation_and_field_is_documented_and_in_the_guide() {
    let guide = include_str!("../../../docs/protocols.md");
    assert_eq!(undocumented(OPERATIONS, Some(guide)), Vec::<String>::new());
}
