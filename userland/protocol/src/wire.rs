//! The wire encoding shared by every protocol. A message is four words (`words[0]` is the
//! label), up to [`MAX_DATA`] bytes of data and up to [`MAX_CAPS`] capability handles. The fields
//! of a request or reply are written in declaration order as a sequence of *scalars* (`u8`,
//! `u16`, `u32`, `u64`, little-endian) plus raw bytes and handles:
//!
//! - a scalar goes into the *register area* (words 1-3 seen as 24 little-endian bytes: word 1
//!   holds bytes 0-7) if it still fits there, otherwise at the end of the data area;
//! - `bytes` and `str` are a `u16` length scalar, then the bytes at the end of the data area;
//! - `pairs` is a `u16` count scalar, then 16 bytes per pair (two `u64`) in the data area;
//! - `cap` takes the next capability handle; `caps` is a `u8` count scalar, then that many
//!   handles.
//!
//! So a message whose scalars fit in 24 bytes and that has no variable-length content is
//! register-only (the kernel's fast path). A reader accepts a message only if it uses exactly
//! the data and handles that came with it; unused register bytes are ignored. The [`Reader`]
//! never panics: it answers a [`DecodeError`] for anything it cannot read. The [`Writer`] never
//! writes past [`MAX_DATA`] or [`MAX_CAPS`]; it remembers the first overflow and
//! [`encode`] reports it as an [`EncodeError`].

use alloc::vec::Vec;
use core::fmt;

use crate::transport::{Frame, Message};
use crate::{MAX_CAPS, MAX_DATA};

/// Bytes of the register area (words 1-3).
pub const REGISTER_BYTES: usize = 24;

/// Why a message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Word 0 names no operation (or reply) of this protocol.
    UnknownLabel(u64),
    /// The data ends inside a field.
    Truncated,
    /// A length or count is larger than a message can hold.
    TooLong,
    /// Bytes of data left over after the last field.
    TrailingData(usize),
    /// A field holds a value the protocol does not allow.
    BadValue,
    /// A `str` field is not UTF-8.
    NotUtf8,
    /// Fewer capabilities came than the fields need.
    MissingCaps {
        /// How many came.
        received: usize,
    },
    /// More capabilities came than the fields take.
    ExtraCaps {
        /// How many came.
        received: usize,
        /// How many the fields took.
        used: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownLabel(label) => write!(f, "unknown label {label}"),
            DecodeError::Truncated => f.write_str("bad length: the data ends inside the field"),
            DecodeError::TooLong => f.write_str("bad length: longer than a message"),
            DecodeError::TrailingData(n) => write!(f, "bad length: {n} bytes of data left over"),
            DecodeError::BadValue => f.write_str("bad value"),
            DecodeError::NotUtf8 => f.write_str("bad value: not UTF-8"),
            DecodeError::MissingCaps { received } => {
                write!(f, "wrong capability count: {received} received, more needed")
            }
            DecodeError::ExtraCaps { received, used } => {
                write!(f, "wrong capability count: {received} received, {used} expected")
            }
        }
    }
}

/// A [`DecodeError`] and the field it happened in (`None`: after the last field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's declared name.
    pub field: Option<&'static str>,
    /// What was wrong.
    pub error: DecodeError,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(name) => write!(f, "field `{name}`: {}", self.error),
            None => self.error.fmt(f),
        }
    }
}

/// Names the field a decoding step belongs to (used by the generated code).
#[inline]
pub fn field<T>(result: Result<T, DecodeError>, name: &'static str) -> Result<T, FieldError> {
    result.map_err(|error| FieldError { field: Some(name), error })
}

/// Checks that every byte and handle was used (used by the generated code).
#[inline]
pub fn end(reader: &Reader<'_>) -> Result<(), FieldError> {
    reader.finish().map_err(|error| FieldError { field: None, error })
}

/// Why a message could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The fields need more than [`MAX_DATA`] bytes of data.
    DataTooLarge {
        /// Bytes they need.
        needed: usize,
    },
    /// The fields carry more than [`MAX_CAPS`] capabilities.
    TooManyCaps {
        /// Handles they carry.
        needed: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::DataTooLarge { needed } => {
                write!(f, "needs {needed} bytes of data, at most {MAX_DATA} fit")
            }
            EncodeError::TooManyCaps { needed } => {
                write!(f, "carries {needed} capabilities, at most {MAX_CAPS} fit")
            }
        }
    }
}

/// Writes fields into a [`Message`] (see the module documentation for the layout).
pub struct Writer<'a> {
    regs: [u8; REGISTER_BYTES],
    reg_len: usize,
    data: &'a mut [u8],
    data_len: usize,
    caps: [u32; MAX_CAPS],
    cap_count: usize,
}

impl<'a> Writer<'a> {
    fn new(data: &'a mut [u8]) -> Writer<'a> {
        Writer { regs: [0; REGISTER_BYTES], reg_len: 0, data, data_len: 0, caps: [0; MAX_CAPS], cap_count: 0 }
    }

    fn scalar(&mut self, bytes: &[u8]) {
        match self.regs.get_mut(self.reg_len..self.reg_len + bytes.len()) {
            Some(room) => {
                room.copy_from_slice(bytes);
                self.reg_len += bytes.len();
            }
            None => self.raw(bytes),
        }
    }

    /// Appends raw bytes to the data area (counted even past the end, to report the size).
    fn raw(&mut self, bytes: &[u8]) {
        let end = self.data_len.saturating_add(bytes.len());
        if end <= MAX_DATA
            && let Some(room) = self.data.get_mut(self.data_len..end)
        {
            room.copy_from_slice(bytes);
        }
        self.data_len = end;
    }

    fn length(&mut self, n: usize) {
        self.u16(u16::try_from(n).unwrap_or(u16::MAX));
    }

    /// Writes a `u8` scalar.
    pub fn u8(&mut self, value: u8) {
        self.scalar(&[value]);
    }

    /// Writes a `u16` scalar.
    pub fn u16(&mut self, value: u16) {
        self.scalar(&value.to_le_bytes());
    }

    /// Writes a `u32` scalar.
    pub fn u32(&mut self, value: u32) {
        self.scalar(&value.to_le_bytes());
    }

    /// Writes a `u64` scalar.
    pub fn u64(&mut self, value: u64) {
        self.scalar(&value.to_le_bytes());
    }

    /// Writes a `bytes` field: its length, then the bytes in the data area.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.length(bytes.len());
        self.raw(bytes);
    }

    /// Writes a `str` field (as `bytes`).
    pub fn str(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }

    /// Writes a `pairs` field: the count, then 16 bytes per pair in the data area.
    pub fn pairs(&mut self, pairs: &[(u64, u64)]) {
        self.length(pairs.len());
        for (a, b) in pairs {
            self.raw(&a.to_le_bytes());
            self.raw(&b.to_le_bytes());
        }
    }

    /// Attaches one capability handle.
    pub fn cap(&mut self, handle: u32) {
        if let Some(slot) = self.caps.get_mut(self.cap_count) {
            *slot = handle;
        }
        self.cap_count = self.cap_count.saturating_add(1);
    }

    /// Writes a `caps` field: the count, then attaches the handles.
    pub fn caps(&mut self, handles: &[u32]) {
        self.u8(u8::try_from(handles.len()).unwrap_or(u8::MAX));
        for &handle in handles {
            self.cap(handle);
        }
    }

    /// Checks the sizes; the words 1-3, data length and handles written.
    fn finish(self) -> Result<([u64; 3], usize, [u32; MAX_CAPS], usize), EncodeError> {
        if self.data_len > MAX_DATA || self.data_len > self.data.len() {
            return Err(EncodeError::DataTooLarge { needed: self.data_len });
        }
        if self.cap_count > MAX_CAPS {
            return Err(EncodeError::TooManyCaps { needed: self.cap_count });
        }
        let word = |i: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&self.regs[i * 8..i * 8 + 8]);
            u64::from_le_bytes(bytes)
        };
        Ok(([word(0), word(1), word(2)], self.data_len, self.caps, self.cap_count))
    }
}

/// Stages a message with `label` whose fields `put` writes. On error nothing is staged but the
/// handles that were written (up to [`MAX_CAPS`]), so the caller can delete them: words and
/// data length are 0.
pub fn encode(message: &mut Message<'_>, label: u64, put: impl FnOnce(&mut Writer<'_>)) -> Result<(), EncodeError> {
    let mut writer = Writer::new(message.data);
    put(&mut writer);
    let writer_caps = (writer.caps, writer.cap_count);
    match writer.finish() {
        Ok((regs, data_len, caps, cap_count)) => {
            message.words = [label, regs[0], regs[1], regs[2]];
            message.data_len = data_len;
            message.caps = caps;
            message.cap_count = cap_count;
            Ok(())
        }
        Err(e) => {
            message.clear();
            let n = writer_caps.1.min(MAX_CAPS);
            message.caps = writer_caps.0;
            message.cap_count = n;
            Err(e)
        }
    }
}

/// Reads fields from a received [`Frame`], mirroring the [`Writer`].
pub struct Reader<'a> {
    regs: [u8; REGISTER_BYTES],
    reg_at: usize,
    data: &'a [u8],
    data_at: usize,
    caps: &'a [u32],
    cap_at: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `frame`'s words 1-3, data and handles.
    pub fn new(frame: Frame<'a>) -> Reader<'a> {
        let mut regs = [0u8; REGISTER_BYTES];
        for (chunk, word) in regs.chunks_exact_mut(8).zip(&frame.words[1..]) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Reader { regs, reg_at: 0, data: frame.data, data_at: 0, caps: frame.caps, cap_at: 0 }
    }

    fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.data_at.checked_add(n).ok_or(DecodeError::TooLong)?;
        let bytes = self.data.get(self.data_at..end).ok_or(DecodeError::Truncated)?;
        self.data_at = end;
        Ok(bytes)
    }

    fn scalar<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        match self.regs.get(self.reg_at..self.reg_at + N) {
            Some(bytes) => {
                out.copy_from_slice(bytes);
                self.reg_at += N;
            }
            None => out.copy_from_slice(self.raw(N)?),
        }
        Ok(out)
    }

    fn length(&mut self, unit: usize) -> Result<usize, DecodeError> {
        let n = usize::from(self.u16()?);
        if n.saturating_mul(unit) > MAX_DATA {
            return Err(DecodeError::TooLong);
        }
        Ok(n)
    }

    /// Reads a `u8` scalar.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.scalar().map(u8::from_le_bytes)
    }

    /// Reads a `u16` scalar.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.scalar().map(u16::from_le_bytes)
    }

    /// Reads a `u32` scalar.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.scalar().map(u32::from_le_bytes)
    }

    /// Reads a `u64` scalar.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.scalar().map(u64::from_le_bytes)
    }

    /// Reads a `bytes` field, borrowed from the frame.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.length(1)?;
        self.raw(n)
    }

    /// Reads a `str` field, borrowed from the frame.
    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::NotUtf8)
    }

    /// Reads a `pairs` field.
    pub fn pairs(&mut self) -> Result<Vec<(u64, u64)>, DecodeError> {
        let n = self.length(16)?;
        let bytes = self.raw(n * 16)?;
        let word = |chunk: &[u8]| {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            u64::from_le_bytes(b)
        };
        Ok(bytes.chunks_exact(16).map(|pair| (word(&pair[..8]), word(&pair[8..]))).collect())
    }

    /// Takes the next capability handle.
    pub fn cap(&mut self) -> Result<u32, DecodeError> {
        let handle = *self.caps.get(self.cap_at).ok_or(DecodeError::MissingCaps { received: self.caps.len() })?;
        self.cap_at += 1;
        Ok(handle)
    }

    /// Reads a `caps` field: the count, then that many handles.
    pub fn caps(&mut self) -> Result<&'a [u32], DecodeError> {
        let n = usize::from(self.u8()?);
        let missing = DecodeError::MissingCaps { received: self.caps.len() };
        if n > MAX_CAPS {
            return Err(missing);
        }
        let end = self.cap_at + n;
        let handles = self.caps.get(self.cap_at..end).ok_or(missing)?;
        self.cap_at = end;
        Ok(handles)
    }

    /// Checks that every data byte and every handle was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.data_at != self.data.len() {
            return Err(DecodeError::TrailingData(self.data.len().saturating_sub(self.data_at)));
        }
        if self.cap_at != self.caps.len() {
            return Err(DecodeError::ExtraCaps { received: self.caps.len(), used: self.cap_at });
        }
        Ok(())
    }
}
