//! The test protocol: one operation per group of field types, with a custom field type
//! ([`Shape`], an enum with data like proc's `Ending`) and `Option` of it.

use crate::Field;
use crate::testing::Example;
use crate::wire::{DecodeError, Reader, Writer};

/// A custom field type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Tag 0.
    Dot,
    /// Tag 1, then a `u32`.
    Line(u32),
    /// Tag 2, then two `u16`.
    Rect {
        /// Width.
        w: u16,
        /// Height.
        h: u16,
    },
}

impl Field for Shape {
    fn put(&self, w: &mut Writer<'_>) {
        match *self {
            Shape::Dot => w.u8(0),
            Shape::Line(n) => {
                w.u8(1);
                w.u32(n);
            }
            Shape::Rect { w: width, h } => {
                w.u8(2);
                w.u16(width);
                w.u16(h);
            }
        }
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Shape::Dot),
            1 => Ok(Shape::Line(r.u32()?)),
            2 => Ok(Shape::Rect { w: r.u16()?, h: r.u16()? }),
            _ => Err(DecodeError::BadValue),
        }
    }
}

impl Example for Shape {
    fn examples() -> Vec<Self> {
        vec![Shape::Dot, Shape::Line(0), Shape::Line(u32::MAX), Shape::Rect { w: 1, h: u16::MAX }]
    }
}

crate::protocol! {
    /// A protocol exercising every field type.
    pub protocol "sample" {
        /// Every scalar type, 24 bytes in all: register-only both ways.
        1 scalars(
            /// A `u64`.
            a: u64,
            /// An `i64`.
            b: i64,
            /// A `u32`.
            c: u32,
            /// A `u16`.
            d: u16,
            /// A `u8`.
            e: u8,
            /// A `bool`.
            f: bool,
        ) -> Scalars {
            /// Echoed.
            a: u64,
            /// Echoed.
            b: i64,
            /// Echoed.
            c: u32,
            /// Echoed.
            d: u16,
            /// Echoed.
            e: u8,
            /// Echoed.
            f: bool,
        };
        /// More scalars than the registers hold: the rest goes to the data area.
        2 spill(
            /// Word 1.
            a: u64,
            /// Word 2.
            b: u64,
            /// Word 3.
            c: u64,
            /// The first data byte.
            d: u8,
            /// Then 40 bytes of data.
            limits: [u64; 5],
        ) -> Done {};
        /// Variable-length fields.
        3 blob(
            /// Bytes.
            data: bytes,
            /// Text.
            text: str,
            /// Pairs.
            list: pairs,
        ) -> Blob {
            /// Bytes.
            data: bytes,
            /// Text.
            text: str,
            /// Pairs.
            list: pairs,
        };
        /// Capabilities both ways.
        4 pass(
            /// One capability.
            endpoint: cap,
            /// Up to three more.
            extra: caps,
            /// A note.
            note: str,
        ) -> Passed {
            /// One capability.
            endpoint: cap,
            /// More.
            extra: caps,
            /// A note.
            note: str,
        };
        /// A custom field type, and an optional one.
        5 shape(
            /// A shape.
            shape: Shape,
            /// Maybe another.
            maybe: (Option<Shape>),
        ) -> Shaped {
            /// A shape.
            shape: Shape,
            /// Maybe another.
            maybe: (Option<Shape>),
        };
        /// No fields; the reply type is shared with `spill`.
        6 nothing() -> Done;
        /// A long array: 128 bytes, mostly data.
        7 wide(
            /// Sixteen words.
            fields: [u64; 16],
        ) -> Wide {
            /// Sixteen words.
            fields: [u64; 16],
            /// After the array.
            flag: bool,
        };
    }
}
