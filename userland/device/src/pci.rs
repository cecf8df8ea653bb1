//! PCI: configuration access through the memory-mapped configuration space (ECAM) where the
//! firmware's MCFG describes one (q35), else through ports 0xCF8/0xCFC (pc); enumeration of
//! every bus reachable through bridges, BAR sizes, capabilities, bus mastering for the devices a
//! driver owns, and MSI-X set-up.
//!
//! Invariants: only this module touches configuration space; bus mastering is enabled only by
//! `enable`, which the drivers call for the functions they own (every other function keeps what
//! the firmware left, and the firmware leaves it off on QEMU).

use alloc::vec::Vec;

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use vessel_rt::abi::Error;
use vessel_rt::ipc::{Cap, IoPorts};
use vessel_rt::platform::Platform;
use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType, PciRoot,
};

const ADDRESS: u16 = 0xcf8;
const DATA: u16 = 0xcfc;
/// PCI capability id of MSI-X.
const CAP_MSIX: u8 = 0x11;

/// Configuration space through the legacy port pair.
#[derive(Clone, Copy)]
pub struct PortCam {
    ports: IoPorts,
}

impl PortCam {
    /// Takes the two ports from the platform capability.
    pub fn new(platform: Platform) -> Result<PortCam, Error> {
        Ok(PortCam { ports: platform.ports(ADDRESS, DATA + 3)? })
    }

    fn select(&self, f: DeviceFunction, offset: u8) {
        let address = 0x8000_0000
            | u32::from(f.bus) << 16
            | u32::from(f.device) << 11
            | u32::from(f.function) << 8
            | u32::from(offset & 0xfc);
        let _ = self.ports.write(ADDRESS, 4, address);
    }
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, f: DeviceFunction, offset: u8) -> u32 {
        self.select(f, offset);
        self.ports.read(DATA, 4).unwrap_or(u32::MAX)
    }

    fn write_word(&mut self, f: DeviceFunction, offset: u8, data: u32) {
        self.select(f, offset);
        let _ = self.ports.write(DATA, 4, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}

/// Configuration space through ECAM, mapped here: 4 KiB per function, 1 MiB per bus from
/// `first_bus` to `last_bus`.
#[derive(Clone, Copy)]
pub struct Ecam {
    base: u64,
    first_bus: u8,
    last_bus: u8,
}

impl Ecam {
    /// The address of `offset` in `f`'s space, if `f`'s bus is covered.
    fn address(&self, f: DeviceFunction, offset: u8) -> Option<u64> {
        (self.first_bus..=self.last_bus).contains(&f.bus).then(|| {
            self.base
                + (u64::from(f.bus - self.first_bus) << 20
                    | u64::from(f.device) << 15
                    | u64::from(f.function) << 12
                    | u64::from(offset & 0xfc))
        })
    }
}

/// The server's configuration access: ECAM or the port pair.
#[derive(Clone, Copy)]
pub enum Cam {
    /// Memory-mapped.
    Ecam(Ecam),
    /// Ports 0xCF8/0xCFC.
    Ports(PortCam),
}

impl ConfigurationAccess for Cam {
    fn read_word(&self, f: DeviceFunction, offset: u8) -> u32 {
        match self {
            // A bus outside the space reads as absent, as the port pair answers for one.
            Cam::Ecam(e) => e.address(f, offset).map_or(u32::MAX, crate::mmio::read32),
            Cam::Ports(p) => p.read_word(f, offset),
        }
    }

    fn write_word(&mut self, f: DeviceFunction, offset: u8, data: u32) {
        match self {
            Cam::Ecam(e) => {
                if let Some(at) = e.address(f, offset) {
                    crate::mmio::write32(at, data);
                }
            }
            Cam::Ports(p) => p.write_word(f, offset, data),
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}

/// One PCI function as enumeration found it.
#[derive(Clone, Debug)]
pub struct Function {
    /// Where it is.
    pub at: DeviceFunction,
    /// Its ids and class.
    pub info: DeviceFunctionInfo,
    /// Its BARs (a 64-bit BAR takes two slots: the second is `None`).
    pub bars: [Option<BarInfo>; 6],
    /// Capability ids, in list order.
    pub capabilities: Vec<u8>,
    /// The interrupt line the firmware wrote (0xff: none).
    pub irq_line: u8,
}

/// Every function on every bus reachable from bus 0.
pub fn enumerate(root: &mut PciRoot<Cam>) -> Vec<Function> {
    let mut found = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut seen = [false; 256];
    while let Some(bus) = buses.pop() {
        if core::mem::replace(&mut seen[usize::from(bus)], true) {
            continue;
        }
        let functions: Vec<(DeviceFunction, DeviceFunctionInfo)> = root.enumerate_bus(bus).collect();
        for (at, info) in functions {
            if info.header_type == HeaderType::PciPciBridge {
                // Secondary bus number: byte 1 of the dword at 0x18.
                let secondary = (root_read(root, at, 0x18) >> 8) as u8;
                if secondary != 0 {
                    buses.push(secondary);
                }
            }
            let bars = if info.header_type == HeaderType::Standard {
                root.bars(at).unwrap_or_default()
            } else {
                Default::default()
            };
            let capabilities = root.capabilities(at).map(|c| c.id).take(32).collect();
            let irq_line = root_read(root, at, 0x3c) as u8;
            found.push(Function { at, info, bars, capabilities, irq_line });
        }
    }
    found.sort_by_key(|f| f.at);
    found
}

fn root_read(_root: &PciRoot<Cam>, at: DeviceFunction, offset: u8) -> u32 {
    cam().read_word(at, offset)
}

/// The server's one configuration access, set once by `root`: the ECAM mapping (0: none) and
/// its buses (first | last << 8), else the ports capability. Both kinds hold no state between
/// accesses, so a copy made from these is as good as the original.
static ECAM_BASE: AtomicU64 = AtomicU64::new(0);
static ECAM_BUSES: AtomicU32 = AtomicU32::new(0);
static CAM_PORTS: AtomicU32 = AtomicU32::new(0);

/// The configuration access.
pub fn cam() -> Cam {
    match ECAM_BASE.load(Ordering::Relaxed) {
        0 => Cam::Ports(PortCam { ports: IoPorts(Cap(CAM_PORTS.load(Ordering::Relaxed))) }),
        base => {
            let buses = ECAM_BUSES.load(Ordering::Relaxed);
            Cam::Ecam(Ecam { base, first_bus: buses as u8, last_bus: (buses >> 8) as u8 })
        }
    }
}

/// Sets up configuration access (ECAM if the platform has it, else the ports); returns the
/// root to enumerate with and says which it took.
pub fn root(platform: Platform) -> Result<(PciRoot<Cam>, &'static str), Error> {
    let how = match platform.ecam() {
        Ok((mmio, info)) => {
            ECAM_BUSES.store(info.first_bus as u32 | (info.last_bus as u32) << 8, Ordering::Relaxed);
            ECAM_BASE.store(mmio.map()?, Ordering::Relaxed);
            "ECAM"
        }
        Err(_) => {
            CAM_PORTS.store(PortCam::new(platform)?.ports.0.0, Ordering::Relaxed);
            "the configuration ports"
        }
    };
    Ok((PciRoot::new(cam()), how))
}

/// Lets `at` decode its memory and I/O BARs and master the bus (a driver owns it now), with
/// legacy INTx off (interrupts come as MSI-X).
pub fn enable(root: &mut PciRoot<Cam>, at: DeviceFunction) {
    root.set_command(at, Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER | Command::INTERRUPT_DISABLE);
}

/// Turns off bus mastering and decoding for `at` (a driver gave it up, or died).
pub fn disable(root: &mut PciRoot<Cam>, at: DeviceFunction) {
    root.set_command(at, Command::INTERRUPT_DISABLE);
}

/// Points MSI-X table entry `entry` of `function` at `(address, data)`, unmasked, and enables
/// MSI-X. `Err(NotFound)` if the function has no MSI-X capability or so many entries.
pub fn msix_route(function: &Function, entry: u16, address: u32, data: u32) -> Result<(), Error> {
    let mut cam = cam();
    let root = PciRoot::new(cam);
    let cap = root.capabilities(function.at).find(|c| c.id == CAP_MSIX).ok_or(Error::NotFound)?;
    let control = cap.private_header;
    let entries = (control & 0x7ff) + 1;
    if entry >= entries {
        return Err(Error::NotFound);
    }
    let table = cam.read_word(function.at, cap.offset + 4);
    let (bir, offset) = ((table & 7) as usize, u64::from(table & !7));
    let base = match function.bars.get(bir).cloned().flatten() {
        Some(BarInfo::Memory { address, .. }) => address,
        _ => return Err(Error::NotFound),
    };
    let at = crate::hal::map_mmio(base + offset + 16 * u64::from(entry), 16)?;
    crate::mmio::write32(at, address);
    crate::mmio::write32(at + 4, 0);
    crate::mmio::write32(at + 8, data);
    crate::mmio::write32(at + 12, 0); // unmasked
    // Message control is the upper half of the capability's first dword: enable (bit 15),
    // function mask (bit 14) clear.
    let first = cam.read_word(function.at, cap.offset);
    let enabled = (first & 0x3fff_ffff) | 1 << 31;
    cam.write_word(function.at, cap.offset, enabled);
    Ok(())
}

/// The protocol's description of a PCI function.
pub fn describe(f: &Function, driver: Option<alloc::string::String>) -> vessel_device_protocol::PciFunction {
    use vessel_device_protocol::{Bar, Bdf, PciFunction};
    use virtio_drivers::transport::pci::bus::{BarInfo, MemoryBarType};
    let mut bars = [Bar::None; 6];
    for (slot, bar) in f.bars.iter().enumerate() {
        bars[slot] = match bar {
            None => Bar::None,
            Some(BarInfo::IO { address, size }) => Bar::Io { port: *address, size: *size },
            Some(BarInfo::Memory { address_type: MemoryBarType::Width64, prefetchable, address, size }) => {
                Bar::Mem64 { address: *address, size: *size, prefetchable: *prefetchable }
            }
            Some(BarInfo::Memory { prefetchable, address, size, .. }) => {
                Bar::Mem32 { address: *address as u32, size: *size as u32, prefetchable: *prefetchable }
            }
        };
    }
    PciFunction {
        bdf: Bdf { bus: f.at.bus, device: f.at.device, function: f.at.function },
        vendor: f.info.vendor_id,
        device: f.info.device_id,
        class: f.info.class,
        subclass: f.info.subclass,
        prog_if: f.info.prog_if,
        revision: f.info.revision,
        irq_line: f.irq_line,
        bars,
        capabilities: f.capabilities.iter().copied().take(vessel_device_protocol::MAX_CAPABILITIES).collect(),
        driver,
    }
}
