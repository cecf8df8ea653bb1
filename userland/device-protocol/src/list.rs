//! The wire form shared by the two lists of the protocol ([`Entries`](crate::Entries) and
//! [`PciFunctions`](crate::PciFunctions)): a `u16` count, then each item's own form. The reader
//! refuses a count above the list's maximum (`DecodeError::TooLong`) before reading any item,
//! and stops at the first item that does not decode, so a hostile count costs nothing.

use alloc::vec::Vec;

use vessel_protocol::{DecodeError, Field, Reader, Writer};

/// Writes `items`: the count, then each item. A count past `u16::MAX` is written as
/// `u16::MAX` (such a list is far over a message anyway, and the encoder refuses it).
pub(crate) fn put<T: Field>(items: &[T], w: &mut Writer<'_>) {
    w.u16(u16::try_from(items.len()).unwrap_or(u16::MAX));
    for item in items {
        item.put(w);
    }
}

/// Reads a list of at most `max` items.
pub(crate) fn take<T: Field>(r: &mut Reader<'_>, max: usize) -> Result<Vec<T>, DecodeError> {
    let count = usize::from(r.u16()?);
    if count > max {
        return Err(DecodeError::TooLong);
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(T::take(r)?);
    }
    Ok(items)
}
