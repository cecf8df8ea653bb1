//! The platform capability: the one authority over the machine's hardware, held by the `device`
//! server alone. From it the holder makes the narrower capabilities a driver needs: port
//! ranges, ISA interrupt lines, MMIO regions, DMA memory, MSI vectors, and the boot
//! framebuffer. It also reads the kernel's output (`LogRead`), which the root container's
//! processes may read without it too (`LogCopy`: the same copy behind another gate).
//!
//! Invariants: nothing reaches hardware without a capability made here (or the boot set made
//! from the same rules); an MMIO capability never covers RAM the system uses, low memory, or the
//! interrupt controllers the kernel drives; port capabilities may name any range, but the ports
//! the kernel drives itself are refused on every use (`hardware::ports_cap`).

use vessel_abi::{Error, FramebufferInfo, PAGE_SIZE, Rights};

use super::caps::create;
use super::objects::ObjectRef;
use super::{Tasks, with_tasks};
use crate::arch::x86_64::ioapic;

/// Largest MMIO region one capability may name (a big framebuffer or a 64-bit BAR fits).
const MAX_MMIO: u64 = 1 << 30;

/// The capability objects the kernel gives init at boot: the platform capability only.
pub fn boot_objects() -> [ObjectRef; 1] {
    [ObjectRef::Platform]
}

/// Checks that `value` is a platform capability with MANAGE.
fn platform(t: &Tasks, value: u64) -> Result<(), Error> {
    match t.resolve(value, Rights::MANAGE)?.object {
        ObjectRef::Platform => Ok(()),
        _ => Err(Error::WrongObject),
    }
}

/// Makes a capability to `object` for the caller once `value` proved platform authority.
fn derive(value: u64, object: impl FnOnce() -> Result<ObjectRef, Error>) -> Result<u64, Error> {
    with_tasks(|t| {
        platform(t, value)?;
        let object = object()?;
        create(t, object)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `PlatformPorts`.
pub fn platform_ports(value: u64, first: u64, last: u64) -> Result<u64, Error> {
    derive(value, || {
        let first = u16::try_from(first).map_err(|_| Error::InvalidArgument)?;
        let last = u16::try_from(last).map_err(|_| Error::InvalidArgument)?;
        if first > last {
            return Err(Error::InvalidArgument);
        }
        Ok(ObjectRef::IoPorts(first, last))
    })
}

/// `PlatformIrq`.
pub fn platform_irq(value: u64, line: u64) -> Result<u64, Error> {
    derive(value, || match u8::try_from(line) {
        Ok(line) if line != 0 && line != 2 && line < ioapic::ISA_LINES => Ok(ObjectRef::Irq(line)),
        _ => Err(Error::InvalidArgument),
    })
}

/// `PlatformMmio`.
pub fn platform_mmio(value: u64, address: u64, length: u64) -> Result<u64, Error> {
    derive(value, || {
        let end = address.checked_add(length).ok_or(Error::InvalidArgument)?;
        if length == 0 || length > MAX_MMIO || !address.is_multiple_of(PAGE_SIZE) {
            return Err(Error::InvalidArgument);
        }
        let end = end.next_multiple_of(PAGE_SIZE);
        if crate::mem::is_system_ram(address, end) || kernel_registers(address, end) {
            return Err(Error::AccessDenied);
        }
        Ok(ObjectRef::Mmio(address, length))
    })
}

/// Whether `start..end` touches the local APIC's or an I/O APIC's registers (the kernel's).
fn kernel_registers(start: u64, end: u64) -> bool {
    let platform = crate::platform::get();
    let page = |addr: u64| addr & !(PAGE_SIZE - 1);
    core::iter::once(platform.local_apic_addr)
        .chain(platform.io_apic_addr)
        .any(|reg| page(reg) < end && start < page(reg) + PAGE_SIZE)
}

/// `DmaCreate`.
pub fn dma_create(value: u64, pages: u64, container: u64) -> Result<u64, Error> {
    with_tasks(|t| platform(t, value)).unwrap_or(Err(Error::NoSuchProcess))?;
    super::memory::create_dma(pages, container)
}

/// `DmaQuiesce`.
pub fn dma_quiesce(value: u64) -> Result<u64, Error> {
    with_tasks(|t| platform(t, value)).unwrap_or(Err(Error::NoSuchProcess))?;
    super::memory::dma_quiesce()
}

/// `MsiAllocate`.
pub fn msi_allocate(value: u64) -> Result<u64, Error> {
    with_tasks(|t| platform(t, value)).unwrap_or(Err(Error::NoSuchProcess))?;
    super::msi::msi_allocate()
}

/// `FramebufferTake`: the framebuffer's description and an MMIO capability to it.
pub fn framebuffer_take(value: u64) -> Result<(u64, FramebufferInfo), Error> {
    with_tasks(|t| platform(t, value)).unwrap_or(Err(Error::NoSuchProcess))?;
    // Taken outside the task lock: the console has its own, and the logger takes it too.
    let info = crate::console::give_away().ok_or(Error::NotFound)?;
    let base = info.address & !(PAGE_SIZE - 1);
    let length = info.size + (info.address - base);
    let handle = with_tasks(|t| create(t, ObjectRef::Mmio(base, length))).unwrap_or(Err(Error::NoSuchProcess))?;
    Ok((handle, info))
}

/// Who asks for the kernel's output: the two gates of one copy.
#[derive(Clone, Copy, Debug)]
pub enum LogReader {
    /// `LogRead`: the holder of the platform capability (this handle, with MANAGE).
    Platform(u64),
    /// `LogCopy`: any process of the root container (`dmesg`).
    RootContainer,
}

/// `LogRead` and `LogCopy`: up to `out.len()` bytes of the kernel's output from byte `from` on,
/// once `reader` passed its gate.
pub fn log_read(reader: LogReader, from: u64, out: &mut [u8]) -> Result<vessel_abi::LogChunk, Error> {
    match reader {
        LogReader::Platform(value) => with_tasks(|t| platform(t, value)).unwrap_or(Err(Error::NoSuchProcess))?,
        LogReader::RootContainer => super::require_root()?,
    }
    let (first, count) = crate::klog::read(from, out);
    Ok(vessel_abi::LogChunk { first, next: first + count as u64 })
}

/// `LogBind`: bits 0 stops signalling `notification`.
pub fn log_bind(value: u64, notification: u64, bits: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        platform(t, value)?;
        let id = t.resolve_notification(notification, Rights::SEND)?;
        t.bindings.bind_log(id, bits).map(|()| 0)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `PlatformEcam`: an MMIO capability to PCI segment 0's ECAM, and where it is.
pub fn platform_ecam(value: u64) -> Result<(u64, vessel_abi::EcamInfo), Error> {
    with_tasks(|t| {
        platform(t, value)?;
        let (address, first, last) = crate::platform::get().ecam.ok_or(Error::NotFound)?;
        let length = (u64::from(last) - u64::from(first) + 1) << 20;
        let info = vessel_abi::EcamInfo { address, first_bus: u64::from(first), last_bus: u64::from(last) };
        create(t, ObjectRef::Mmio(address, length)).map(|handle| (handle, info))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}
