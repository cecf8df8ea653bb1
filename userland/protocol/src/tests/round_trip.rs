//! Every operation round-trips, the layout on the wire is the documented one, and the
//! metadata matches the declaration.

use super::sample::{self, Client, Done, Scalars, Shape, label, protocol_checks};
use crate::testing::Recorder;
use crate::{OpInfo, REFUSED, REPLY, reply_label, undocumented};

#[test]
fn every_operation_round_trips_replied_deferred_and_refused() {
    assert_eq!(protocol_checks::round_trip_every_operation(), Ok(7 * crate::testing::ROUNDS));
}

/// The request `call` stages.
fn staged(call: impl FnOnce(&Client<&Recorder>)) -> crate::testing::OwnedFrame {
    let recorder = Recorder::default();
    call(&Client::new(&recorder));
    let mut frames = recorder.take();
    assert_eq!(frames.len(), 1);
    frames.remove(0)
}

#[test]
fn scalars_that_fit_24_bytes_are_register_only() {
    let frame = staged(|c| drop(c.scalars(0x1111, -2, 0x3333_3333, 0x4444, 0x55, true)));
    assert_eq!(frame.words, [1, 0x1111, (-2i64) as u64, 0x3333_3333 | 0x4444 << 32 | 0x55 << 48 | 1 << 56]);
    assert!(frame.data.is_empty() && frame.caps.is_empty());
    let frame = staged(|c| drop(c.nothing()));
    assert_eq!(frame.words, [label::nothing, 0, 0, 0]);
}

#[test]
fn scalars_past_24_bytes_go_to_the_data_in_order() {
    let frame = staged(|c| drop(c.spill(1, 2, 3, 4, [5, 6, 7, 8, 9])));
    assert_eq!(frame.words, [2, 1, 2, 3]);
    let mut data = vec![4u8];
    for v in [5u64, 6, 7, 8, 9] {
        data.extend(v.to_le_bytes());
    }
    assert_eq!(frame.data, data);
}

#[test]
fn variable_fields_put_their_lengths_in_the_registers() {
    let frame = staged(|c| drop(c.blob(b"abc", "hé", &[(1, 2)])));
    // Lengths 3, 3 (UTF-8 bytes) and 1 pair: three u16 in word 1.
    assert_eq!(frame.words, [3, 3 | 3 << 16 | 1 << 32, 0, 0]);
    let mut data = b"abch\xc3\xa9".to_vec();
    data.extend(1u64.to_le_bytes());
    data.extend(2u64.to_le_bytes());
    assert_eq!(frame.data, data);
    // A capability is a handle only; a capability list is a count byte, then handles.
    let frame = staged(|c| drop(c.pass(7, &[8, 9], "")));
    assert_eq!(frame.words, [4, 2, 0, 0]);
    assert_eq!(frame.caps, [7, 8, 9]);
}

#[test]
fn custom_and_optional_fields_use_their_own_encoding() {
    let frame = staged(|c| drop(c.shape(Shape::Line(0xabcd), Some(Shape::Rect { w: 3, h: 4 }))));
    // Tag 1, the u32; then the Option's tag 1, tag 2, two u16 (the first straddles words 1 and 2).
    assert_eq!(frame.words[1], 1 | 0xabcd << 8 | 1 << 40 | 2 << 48 | 3 << 56);
    assert_eq!(frame.words[2], 4 << 8);
}

#[test]
fn labels_and_metadata_follow_the_declaration() {
    assert_eq!(sample::NAME, "sample");
    let names: Vec<_> = sample::OPERATIONS.iter().map(|op| (op.name, op.label)).collect();
    assert_eq!(
        names,
        [("scalars", 1), ("spill", 2), ("blob", 3), ("pass", 4), ("shape", 5), ("nothing", 6), ("wide", 7)]
    );
    assert_eq!((label::scalars, label::wide), (1, 7));
    let pass: &OpInfo = &sample::OPERATIONS[3];
    let fields: Vec<_> = pass.request.iter().map(|f| (f.name, f.kind)).collect();
    assert_eq!(fields, [("endpoint", "cap"), ("extra", "caps"), ("note", "str")]);
    assert_eq!(pass.reply, "Passed");
    assert_eq!(pass.reply_fields.len(), 3);
    assert_eq!(sample::OPERATIONS[4].request[1].kind, "Option<Shape>");
    assert_eq!(sample::OPERATIONS[0].doc.trim(), "Every scalar type, 24 bytes in all: register-only both ways.");
    assert_eq!(sample::OPERATIONS[5].reply, "Done");
    assert!(sample::OPERATIONS[5].reply_fields.is_empty());
    assert_eq!(pass.reply_label(), REPLY | 4);
    assert_eq!(reply_label(0), REFUSED);
    assert_eq!(undocumented(sample::OPERATIONS, None), Vec::<String>::new());
    let guide = "`scalars`, `spill(a, b)`, `blob`, `pass`, `shape`, `wide`";
    assert_eq!(undocumented(sample::OPERATIONS, Some(guide)), ["sample.nothing: not in the guide"]);
    // The reply types are plain structs (a unit struct without fields).
    let _: Done = Done;
    let _ = Scalars { a: 0, b: 0, c: 0, d: 0, e: 0, f: false };
}
