//! Facts about virtio PCI functions the driver crate keeps to itself.

use virtio_drivers::transport::pci::bus::{BarInfo, ConfigurationAccess, PciRoot};

use crate::pci::{self, Function};

/// Vendor-specific capability id (virtio structures).
const CAP_VENDOR: u8 = 0x09;
/// `cfg_type` of the common configuration.
const COMMON_CFG: u8 = 1;
/// Bytes of the common configuration we touch.
const COMMON_LEN: u64 = 0x38;

/// The virtual address of `function`'s virtio common configuration, mapped.
pub fn common_config(function: &Function) -> Option<u64> {
    let cam = pci::cam();
    let root = PciRoot::new(cam);
    let cap =
        root.capabilities(function.at).find(|c| c.id == CAP_VENDOR && (c.private_header >> 8) as u8 == COMMON_CFG)?;
    let bar = cam.read_word(function.at, cap.offset + 4) as u8;
    let offset = u64::from(cam.read_word(function.at, cap.offset + 8));
    let base = match function.bars.get(usize::from(bar)).cloned().flatten()? {
        BarInfo::Memory { address, .. } => address,
        BarInfo::IO { .. } => return None,
    };
    crate::hal::map_mmio(base + offset, COMMON_LEN).ok()
}
