//! One device as the registry shows it to a container ([`Entry`]), and the list of them the
//! `list` operation answers ([`Entries`]). Invariant of a decoded entry: its name is
//! [`valid_name`]; a list holds at most [`MAX_ENTRIES`] entries.
//!
//! Wire form of an entry, in order: `name` (`str`: a `u16` length, then the bytes in the data
//! area), `class` (`u8`), `rights` (`u64`), `access` (`u8`), `holder` (`u64`), `blocks` (`u64`),
//! `block_size` (`u64`), `pci` (`u8` tag 0 or 1, then bus, device, function as three `u8`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vessel_protocol::{DecodeError, Field, Reader, Writer};

use crate::{Access, Bdf, Class, LIST_COUNT_BYTES, MAX_ENTRIES, MAX_NAME, Rights, list, valid_name};

/// One device, as the caller's container may use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its stable name ([`valid_name`]: `blk0`).
    pub name: String,
    /// What kind of device it is.
    pub class: Class,
    /// What the caller's container may do with it (open it for, grant it on with).
    pub rights: Rights,
    /// How the caller's container holds it.
    pub access: Access,
    /// The container holding it exclusively (0 if none).
    pub holder: u64,
    /// Blocks of a block device (0 for a byte device).
    pub blocks: u64,
    /// Bytes per block of a block device (0 for a byte device).
    pub block_size: u64,
    /// The PCI function behind it, if any.
    pub pci: Option<Bdf>,
}

impl Entry {
    /// The most bytes a valid entry takes on the wire: the name's length and [`MAX_NAME`]
    /// bytes, class, rights, access, holder, blocks, block size, and the PCI tag and address.
    pub const MAX_WIRE_BYTES: usize = 2 + MAX_NAME + 1 + 8 + 1 + 8 + 8 + 8 + 1 + Bdf::WIRE_BYTES;

    /// Whether the decoder would accept it (its name is [`valid_name`]): a server answers only
    /// valid entries.
    pub fn is_valid(&self) -> bool {
        valid_name(&self.name)
    }

    /// Its size in bytes (`blocks * block_size`, saturating; 0 for a byte device).
    pub const fn capacity(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size)
    }
}

impl fmt::Display for Entry {
    /// One line for people: `blk0: block, rw, owner, 65536 blocks of 512 bytes, pci 00:03.0`,
    /// with `held by container 0x…` when a container holds it exclusively.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}, {}, {}", self.name, self.class, self.rights, self.access)?;
        if self.holder != 0 {
            write!(f, ", held by container {:#x}", self.holder)?;
        }
        if self.blocks != 0 || self.block_size != 0 {
            write!(f, ", {} blocks of {} bytes", self.blocks, self.block_size)?;
        }
        if let Some(bdf) = self.pci {
            write!(f, ", pci {bdf}")?;
        }
        Ok(())
    }
}

/// See the module documentation. A name that is not [`valid_name`] is `TooLong` if longer than
/// [`MAX_NAME`], else `BadValue`.
impl Field for Entry {
    fn put(&self, w: &mut Writer<'_>) {
        w.str(&self.name);
        self.class.put(w);
        self.rights.put(w);
        self.access.put(w);
        w.u64(self.holder);
        w.u64(self.blocks);
        w.u64(self.block_size);
        self.pci.put(w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Entry {
            name: take_name(r)?,
            class: Class::take(r)?,
            rights: Rights::take(r)?,
            access: Access::take(r)?,
            holder: r.u64()?,
            blocks: r.u64()?,
            block_size: r.u64()?,
            pci: <Option<Bdf> as Field>::take(r)?,
        })
    }
}

/// Reads a `str` that must be a [`valid_name`] (device and driver names).
pub(crate) fn take_name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let name = r.str()?;
    if name.len() > MAX_NAME {
        return Err(DecodeError::TooLong);
    }
    if !valid_name(name) {
        return Err(DecodeError::BadValue);
    }
    Ok(String::from(name))
}

/// The devices of a `list` reply, at most [`MAX_ENTRIES`] (a newtype so that the list can be a
/// protocol field). On the wire: a `u16` count, then each [`Entry`]; a count above
/// [`MAX_ENTRIES`] is `TooLong`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries(pub Vec<Entry>);

impl Entries {
    /// The most bytes a full list takes on the wire.
    pub const MAX_WIRE_BYTES: usize = LIST_COUNT_BYTES + MAX_ENTRIES * Entry::MAX_WIRE_BYTES;

    /// The first [`MAX_ENTRIES`] of `entries` (a server with more devices answers those).
    pub fn new(mut entries: Vec<Entry>) -> Entries {
        entries.truncate(MAX_ENTRIES);
        Entries(entries)
    }
}

impl Field for Entries {
    fn put(&self, w: &mut Writer<'_>) {
        list::put(&self.0, w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        list::take(r, MAX_ENTRIES).map(Entries)
    }
}
