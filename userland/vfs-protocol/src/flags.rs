//! What an open may ask for ([`OpenFlags`]) and what a handle may do ([`Rights`]): sets of
//! bits over a `u64`. Unknown bits never make a value (`from_bits` answers `None`, the decoder
//! `BadValue`), so the server never guesses what a bit it does not know would allow.

use core::fmt;
use core::ops::BitOr;

use vessel_protocol::{DecodeError, Field, Reader, Writer};

macro_rules! bits {
    ($(#[$doc:meta])* $name:ident { $($(#[$bdoc:meta])* $bit:ident = $value:expr;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name(u64);

        impl $name {
            /// None of the bits.
            pub const NONE: $name = $name(0);
            $($(#[$bdoc])* pub const $bit: $name = $name($value);)*
            /// Every known bit.
            pub const ALL: $name = $name(0 $(| $value)*);

            /// The set with these bits; `None` if any bit is unknown.
            pub const fn from_bits(bits: u64) -> Option<$name> {
                if bits & !Self::ALL.0 == 0 { Some($name(bits)) } else { None }
            }

            /// The bits, as they go on the wire.
            pub const fn bits(self) -> u64 {
                self.0
            }

            /// Whether every bit of `other` is in `self`.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// The bits in both.
            pub const fn intersection(self, other: $name) -> $name {
                $name(self.0 & other.0)
            }

            /// The bits of `self` not in `other`.
            pub const fn difference(self, other: $name) -> $name {
                $name(self.0 & !other.0)
            }

            /// Whether no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl BitOr for $name {
            type Output = $name;

            fn bitor(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }
        }

        /// A `u64`: the bits. Unknown bits are `BadValue`.
        impl Field for $name {
            fn put(&self, w: &mut Writer<'_>) {
                w.u64(self.0);
            }

            fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                $name::from_bits(r.u64()?).ok_or(DecodeError::BadValue)
            }
        }
    };
}

bits! {
    /// What a handle may do. On a file: read its bytes and stat it ([`Rights::READ`]), write,
    /// truncate and sync it ([`Rights::WRITE`]). On a directory: list it, stat and open for
    /// reading what is below it ([`Rights::READ`]); create, remove and rename below it, and
    /// open for writing ([`Rights::WRITE`]). A handle opened through a directory handle, or
    /// duplicated, never has a right its source lacks.
    Rights {
        /// Read.
        READ = 1;
        /// Write.
        WRITE = 1 << 1;
    }
}

impl Rights {
    /// Read and write.
    pub const READ_WRITE: Rights = Rights::ALL;
}

impl fmt::Display for Rights {
    /// `"rw"`, `"r-"`, `"-w"` or `"--"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let read = if self.contains(Rights::READ) { 'r' } else { '-' };
        let write = if self.contains(Rights::WRITE) { 'w' } else { '-' };
        write!(f, "{read}{write}")
    }
}

bits! {
    /// How to open: the rights wanted and what to do if the entry exists or not.
    OpenFlags {
        /// Open for reading.
        READ = 1;
        /// Open for writing.
        WRITE = 1 << 1;
        /// Create the file if it does not exist (needs WRITE on the directory).
        CREATE = 1 << 2;
        /// With CREATE: refuse with `AlreadyExists` if it exists.
        EXCLUSIVE = 1 << 3;
        /// Cut the file to 0 bytes (needs WRITE).
        TRUNCATE = 1 << 4;
        /// Every `write` goes to the end of the file (needs WRITE).
        APPEND = 1 << 5;
        /// The path must name a directory (refused with `NotADirectory` otherwise); a
        /// directory is opened only with this flag.
        DIRECTORY = 1 << 6;
    }
}

impl OpenFlags {
    /// The rights these flags ask for.
    pub const fn rights(self) -> Rights {
        Rights(self.0 & Rights::ALL.0)
    }
}
