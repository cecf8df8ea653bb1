//! Field types. The keywords `bytes`, `str`, `pairs`, `cap` and `caps` are built into the
//! macro (their Rust type differs between client, server and reply). Every other field type
//! implements [`Field`]: the integers, `bool`, `[u64; N]`, `Option<T>`, and a protocol crate's
//! own types (an enum such as proc's `Ending`). A [`Field`] is written as scalars, `bytes` and
//! handles through the [`Writer`]; its `take` must read back exactly what `put` wrote and
//! answer an error, never panic, for anything else.
//!
//! [`Reply`] is what the macro implements for each reply struct it declares.

use crate::meta::FieldInfo;
use crate::wire::{DecodeError, FieldError, Reader, Writer};

/// A field type with one encoding on both sides.
pub trait Field: Sized {
    /// Writes the value.
    fn put(&self, w: &mut Writer<'_>);
    /// Reads a value; an error for anything `put` would not have written.
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

macro_rules! scalar_field {
    ($($t:ty => $put:ident, $take:ident;)*) => {$(
        impl Field for $t {
            fn put(&self, w: &mut Writer<'_>) {
                w.$put(*self);
            }
            fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$take()
            }
        }
    )*};
}

scalar_field! {
    u8 => u8, u8;
    u16 => u16, u16;
    u32 => u32, u32;
    u64 => u64, u64;
}

/// Two's complement in a `u64` scalar.
impl Field for i64 {
    fn put(&self, w: &mut Writer<'_>) {
        w.u64(*self as u64);
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64().map(|v| v as i64)
    }
}

/// A `u8` scalar, 0 or 1 (anything else is a bad value).
impl Field for bool {
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(u8::from(*self));
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadValue),
        }
    }
}

/// `N` `u64` scalars.
impl<const N: usize> Field for [u64; N] {
    fn put(&self, w: &mut Writer<'_>) {
        for &v in self {
            w.u64(v);
        }
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut out = [0u64; N];
        for v in &mut out {
            *v = r.u64()?;
        }
        Ok(out)
    }
}

/// A `u8` tag (0: `None`, 1: `Some`), then the value if there is one.
impl<T: Field> Field for Option<T> {
    fn put(&self, w: &mut Writer<'_>) {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.put(w);
            }
        }
    }
    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => T::take(r).map(Some),
            _ => Err(DecodeError::BadValue),
        }
    }
}

/// A reply struct: its fields and their encoding (implemented by the macro for each reply it
/// declares; a hand-written reply type may implement it too).
pub trait Reply: Sized {
    /// The type's name.
    const NAME: &'static str;
    /// Its fields, in wire order.
    const FIELDS: &'static [FieldInfo];
    /// Writes the fields.
    fn put(&self, w: &mut Writer<'_>);
    /// Reads the fields (the caller checks that nothing is left over).
    fn take(r: &mut Reader<'_>) -> Result<Self, FieldError>;
}
