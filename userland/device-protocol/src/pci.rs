//! PCI functions as the `pci` operation describes them: the address ([`Bdf`]), the base address
//! registers ([`Bar`]) and the function itself ([`PciFunction`], listed in [`PciFunctions`]).
//!
//! Invariants of decoded values: a [`Bdf`]'s device is below 32 and its function below 8; the
//! six BARs follow the configuration-space layout (a 64-bit BAR takes two slots, so it is never
//! in the last one and the slot after it is [`Bar::None`]); at most [`MAX_CAPABILITIES`]
//! capability ids; a driver name is [`valid_name`]; a list holds at most [`MAX_FUNCTIONS`].
//!
//! Wire forms: a [`Bdf`] is bus, device, function (three `u8`). A [`Bar`] is a `u8` tag, then
//! nothing (0, none), port and size (1, I/O: two `u32`), address, size and prefetchable (2,
//! 32-bit memory: two `u32` and a `u8` 0 or 1) or the same with two `u64` (3, 64-bit memory).
//! A [`PciFunction`] is its [`Bdf`], vendor and device (`u16`), class, subclass, prog-if,
//! revision and interrupt line (`u8`), the six BARs, the capability ids (`bytes`) and the driver
//! (`u8` tag 0 or 1, then a `str`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vessel_protocol::{DecodeError, Field, Reader, Writer};

use crate::entry::take_name;
use crate::{LIST_COUNT_BYTES, MAX_CAPABILITIES, MAX_FUNCTIONS, MAX_NAME, list, valid_name};

/// A PCI address: bus, device (0-31), function (0-7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// The bus.
    pub bus: u8,
    /// The device on the bus (below 32).
    pub device: u8,
    /// The function of the device (below 8).
    pub function: u8,
}

impl Bdf {
    /// Bytes on the wire.
    pub const WIRE_BYTES: usize = 3;

    /// Whether device and function are in range (the decoder refuses the others).
    pub const fn is_valid(&self) -> bool {
        self.device < 32 && self.function < 8
    }
}

impl fmt::Display for Bdf {
    /// As `lspci` writes it, in hex: `00:03.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
    }
}

/// Three `u8`; a device of 32 or more or a function of 8 or more is `BadValue`.
impl Field for Bdf {
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(self.bus);
        w.u8(self.device);
        w.u8(self.function);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bdf = Bdf { bus: r.u8()?, device: r.u8()?, function: r.u8()? };
        if bdf.is_valid() { Ok(bdf) } else { Err(DecodeError::BadValue) }
    }
}

/// One base address register slot, decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Bar {
    /// Unused, or the upper half of the 64-bit BAR in the slot before.
    #[default]
    None,
    /// A range of I/O ports.
    Io {
        /// The first port.
        port: u32,
        /// Ports in the range.
        size: u32,
    },
    /// A memory range below 4 GiB.
    Mem32 {
        /// The physical address.
        address: u32,
        /// Bytes in the range.
        size: u32,
        /// Whether reads have no side effects (the range may be cached).
        prefetchable: bool,
    },
    /// A memory range anywhere, taking this slot and the next.
    Mem64 {
        /// The physical address.
        address: u64,
        /// Bytes in the range.
        size: u64,
        /// Whether reads have no side effects (the range may be cached).
        prefetchable: bool,
    },
}

impl Bar {
    /// Slots in a function's header.
    pub const SLOTS: usize = 6;
    /// The most bytes six valid slots take on the wire: six 32-bit memory BARs (10 bytes each)
    /// outweigh any use of 64-bit ones (19 bytes per two slots with the `None` after).
    pub const MAX_WIRE_BYTES: usize = Bar::SLOTS * 10;

    /// Whether `bars` follow the configuration-space layout: every 64-bit BAR is followed by
    /// a [`Bar::None`] slot (so never in the last one). The decoder refuses the others.
    pub fn valid_layout(bars: &[Bar; Bar::SLOTS]) -> bool {
        let mut slots = bars.iter();
        while let Some(bar) = slots.next() {
            if matches!(bar, Bar::Mem64 { .. }) && slots.next() != Some(&Bar::None) {
                return false;
            }
        }
        true
    }
}

/// A size as `lspci` writes one: `64`, `4K`, `16M`, `1G`.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
        match UNITS.iter().find(|&&(unit, _)| self.0 >= unit && self.0.is_multiple_of(unit)) {
            Some(&(unit, suffix)) => write!(f, "{}{suffix}", self.0 / unit),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for Bar {
    /// As `lspci -v` writes it: `I/O ports at c000 [size=64]`,
    /// `Memory at febd1000 (32-bit, non-prefetchable) [size=4K]`; `unused` for none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefetch = |p: bool| if p { "prefetchable" } else { "non-prefetchable" };
        match *self {
            Bar::None => f.write_str("unused"),
            Bar::Io { port, size } => write!(f, "I/O ports at {port:x} [size={}]", Size(size.into())),
            Bar::Mem32 { address, size, prefetchable } => {
                write!(f, "Memory at {address:x} (32-bit, {}) [size={}]", prefetch(prefetchable), Size(size.into()))
            }
            Bar::Mem64 { address, size, prefetchable } => {
                write!(f, "Memory at {address:x} (64-bit, {}) [size={}]", prefetch(prefetchable), Size(size))
            }
        }
    }
}

/// See the module documentation; an unknown tag is `BadValue`.
impl Field for Bar {
    fn put(&self, w: &mut Writer<'_>) {
        match *self {
            Bar::None => w.u8(0),
            Bar::Io { port, size } => {
                w.u8(1);
                w.u32(port);
                w.u32(size);
            }
            Bar::Mem32 { address, size, prefetchable } => {
                w.u8(2);
                w.u32(address);
                w.u32(size);
                prefetchable.put(w);
            }
            Bar::Mem64 { address, size, prefetchable } => {
                w.u8(3);
                w.u64(address);
                w.u64(size);
                prefetchable.put(w);
            }
        }
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Bar::None),
            1 => Ok(Bar::Io { port: r.u32()?, size: r.u32()? }),
            2 => Ok(Bar::Mem32 { address: r.u32()?, size: r.u32()?, prefetchable: bool::take(r)? }),
            3 => Ok(Bar::Mem64 { address: r.u64()?, size: r.u64()?, prefetchable: bool::take(r)? }),
            _ => Err(DecodeError::BadValue),
        }
    }
}

/// One PCI function, from its configuration-space header, and the driver that took it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PciFunction {
    /// Its address.
    pub bdf: Bdf,
    /// Vendor id (`0x1af4` for virtio).
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Base class (`0x01` mass storage).
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Revision.
    pub revision: u8,
    /// Interrupt line from the header (0 or `0xff`: none).
    pub irq_line: u8,
    /// The six base address registers.
    pub bars: [Bar; Bar::SLOTS],
    /// The ids of its capabilities, in list order (at most [`MAX_CAPABILITIES`]).
    pub capabilities: Vec<u8>,
    /// The driver serving it (`virtio-blk`), if any.
    pub driver: Option<String>,
}

impl PciFunction {
    /// The most bytes a valid function takes on the wire: address, ids, class bytes, revision
    /// and interrupt line, the BARs, the capability list with its length, and the driver with
    /// its tag and length.
    pub const MAX_WIRE_BYTES: usize =
        Bdf::WIRE_BYTES + 2 + 2 + 5 + Bar::MAX_WIRE_BYTES + 2 + MAX_CAPABILITIES + 1 + 2 + MAX_NAME;

    /// Whether the decoder would accept it (see the module documentation): a server answers
    /// only valid functions, and [`PciFunction::MAX_WIRE_BYTES`] holds only for those.
    pub fn is_valid(&self) -> bool {
        self.bdf.is_valid()
            && Bar::valid_layout(&self.bars)
            && self.capabilities.len() <= MAX_CAPABILITIES
            && self.driver.as_deref().is_none_or(valid_name)
    }
}

impl fmt::Display for PciFunction {
    /// One line as `lspci -n` writes it, then the interrupt line and the driver:
    /// `00:03.0 0100: 1af4:1001 (rev 00), irq 11, driver virtio-blk`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:02x}{:02x}: {:04x}:{:04x}", self.bdf, self.class, self.subclass, self.vendor, self.device)?;
        write!(f, " (rev {:02x})", self.revision)?;
        if self.prog_if != 0 {
            write!(f, " (prog-if {:02x})", self.prog_if)?;
        }
        if self.irq_line != 0 && self.irq_line != 0xff {
            write!(f, ", irq {}", self.irq_line)?;
        }
        if let Some(driver) = &self.driver {
            write!(f, ", driver {driver}")?;
        }
        Ok(())
    }
}

/// See the module documentation. A BAR layout that breaks the rule is `BadValue`, more than
/// [`MAX_CAPABILITIES`] ids or a driver name longer than [`MAX_NAME`] `TooLong`, another bad
/// driver name `BadValue`.
impl Field for PciFunction {
    fn put(&self, w: &mut Writer<'_>) {
        self.bdf.put(w);
        w.u16(self.vendor);
        w.u16(self.device);
        for byte in [self.class, self.subclass, self.prog_if, self.revision, self.irq_line] {
            w.u8(byte);
        }
        for bar in &self.bars {
            bar.put(w);
        }
        w.bytes(&self.capabilities);
        match &self.driver {
            None => w.u8(0),
            Some(driver) => {
                w.u8(1);
                w.str(driver);
            }
        }
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bdf = Bdf::take(r)?;
        let (vendor, device) = (r.u16()?, r.u16()?);
        let (class, subclass, prog_if, revision, irq_line) = (r.u8()?, r.u8()?, r.u8()?, r.u8()?, r.u8()?);
        let mut bars = [Bar::None; Bar::SLOTS];
        for bar in &mut bars {
            *bar = Bar::take(r)?;
        }
        if !Bar::valid_layout(&bars) {
            return Err(DecodeError::BadValue);
        }
        let capabilities = r.bytes()?;
        if capabilities.len() > MAX_CAPABILITIES {
            return Err(DecodeError::TooLong);
        }
        let driver = match r.u8()? {
            0 => None,
            1 => Some(take_name(r)?),
            _ => return Err(DecodeError::BadValue),
        };
        Ok(PciFunction {
            bdf,
            vendor,
            device,
            class,
            subclass,
            prog_if,
            revision,
            irq_line,
            bars,
            capabilities: capabilities.to_vec(),
            driver,
        })
    }
}

/// The functions of a `pci` reply, at most [`MAX_FUNCTIONS`] (a newtype so that the list can be
/// a protocol field). On the wire: a `u16` count, then each [`PciFunction`]; a count above
/// [`MAX_FUNCTIONS`] is `TooLong`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PciFunctions(pub Vec<PciFunction>);

impl PciFunctions {
    /// The most bytes a full list takes on the wire.
    pub const MAX_WIRE_BYTES: usize = LIST_COUNT_BYTES + MAX_FUNCTIONS * PciFunction::MAX_WIRE_BYTES;

    /// The first [`MAX_FUNCTIONS`] of `functions` (a machine with more answers those).
    pub fn new(mut functions: Vec<PciFunction>) -> PciFunctions {
        functions.truncate(MAX_FUNCTIONS);
        PciFunctions(functions)
    }
}

impl Field for PciFunctions {
    fn put(&self, w: &mut Writer<'_>) {
        list::put(&self.0, w);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        list::take(r, MAX_FUNCTIONS).map(PciFunctions)
    }
}
