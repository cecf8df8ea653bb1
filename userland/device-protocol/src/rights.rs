//! What a session or a grant may do with a device: [`Rights`], a set of bits over a `u64`.
//! Only the known bits ([`Rights::READ`], [`Rights::WRITE`]) ever make a value: unknown bits are
//! refused by [`Rights::from_bits`] and by the decoder (`DecodeError::BadValue`), so a server
//! never has to wonder what a bit it does not know would have allowed.

use core::fmt;
use core::ops::BitOr;

use vessel_protocol::{DecodeError, Field, Reader, Writer};

/// A set of rights on a device (only the known bits set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights(u64);

impl Rights {
    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// Read: `read_blocks`, `read`, `time`.
    pub const READ: Rights = Rights(1);
    /// Write: `write_blocks`, `flush`, `write`.
    pub const WRITE: Rights = Rights(1 << 1);
    /// Read and write.
    pub const READ_WRITE: Rights = Rights(Rights::READ.0 | Rights::WRITE.0);

    /// The rights with these bits; `None` if any bit is unknown.
    pub const fn from_bits(bits: u64) -> Option<Rights> {
        if bits & !Rights::READ_WRITE.0 == 0 { Some(Rights(bits)) } else { None }
    }

    /// The bits, as they go on the wire.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether every right in `other` is in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// The rights in both (what a grant of `other` out of `self` can give at most).
    pub const fn intersection(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// The rights in either.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// Whether there are none.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rights written as [`Display`](fmt::Display) writes them (`"rw"`, `"r-"`, `"-w"`,
    /// `"--"`), or as `"r"`, `"w"`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Rights> {
        match text {
            "rw" => Some(Rights::READ_WRITE),
            "r-" | "r" => Some(Rights::READ),
            "-w" | "w" => Some(Rights::WRITE),
            "--" => Some(Rights::NONE),
            _ => None,
        }
    }
}

impl BitOr for Rights {
    type Output = Rights;

    /// The union.
    fn bitor(self, other: Rights) -> Rights {
        self.union(other)
    }
}

impl fmt::Display for Rights {
    /// `r` or `-`, then `w` or `-`, as `ls -l` writes permissions: `"rw"`, `"r-"`, `"-w"`, `"--"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let read = if self.contains(Rights::READ) { 'r' } else { '-' };
        let write = if self.contains(Rights::WRITE) { 'w' } else { '-' };
        write!(f, "{read}{write}")
    }
}

/// A `u64`: the bits. Unknown bits are `BadValue`.
impl Field for Rights {
    fn put(&self, w: &mut Writer<'_>) {
        w.u64(self.0);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Rights::from_bits(r.u64()?).ok_or(DecodeError::BadValue)
    }
}
