//! Tests of the protocol layer through a declared test protocol, [`sample`], that uses every
//! field type: generated round trips and fuzzing, the wire layout, hostile requests, deferred
//! replies and refusals.
#![allow(clippy::unwrap_used)]

mod deferred;
mod hostile;
mod refusal;
mod round_trip;
#[allow(dead_code)] // The test protocol declares more than these tests call.
mod sample;
