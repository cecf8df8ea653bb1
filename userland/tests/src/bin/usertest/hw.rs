//! Hardware objects: the capabilities init received at boot and passed on. An interrupt from a
//! real (emulated) device reaches a notification; kernel-owned ports stay out of reach.

use alloc::format;

use vessel_rt::abi::{Error, ObjectKind};
use vessel_rt::ipc::{Cap, IoPorts, Irq, Mmio, Notification};

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("hw::rtc_interrupt_reaches_a_notification", rtc_interrupt_reaches_a_notification),
    ("hw::kernel_ports_and_bad_widths_refused", kernel_ports_and_bad_widths_refused),
    ("hw::mmio_region_maps", mmio_region_maps),
];

/// The first inherited capability of `kind` whose detail matches.
fn find(kind: ObjectKind, detail: Option<u64>) -> Result<Cap, alloc::string::String> {
    vessel_rt::handles()
        .iter()
        .map(|&h| Cap(h))
        .find(|c| c.inspect().is_ok_and(|i| i.kind == kind as u32 && detail.is_none_or(|d| i.detail == d)))
        .ok_or_else(|| format!("no inherited {kind:?} capability (detail {detail:?})"))
}

const CMOS_INDEX: u16 = 0x70;
const CMOS_DATA: u16 = 0x71;

fn cmos(ports: IoPorts, reg: u8) -> Result<u8, Error> {
    ports.write(CMOS_INDEX, 1, u32::from(0x80 | reg))?; // NMI stays disabled
    ports.read(CMOS_DATA, 1).map(|v| v as u8)
}

fn cmos_set(ports: IoPorts, reg: u8, value: u8) -> Result<(), Error> {
    ports.write(CMOS_INDEX, 1, u32::from(0x80 | reg))?;
    ports.write(CMOS_DATA, 1, u32::from(value))
}

fn rtc_interrupt_reaches_a_notification() -> TestResult {
    let n = Notification::create().map_err(|e| format!("notification: {e}"))?;
    let first = with_rtc_periodic(n, || n.wait_timeout(2_000_000_000))?;
    n.0.delete().map_err(|err| format!("delete: {err}"))?;
    check!(first == Ok(1 << 8), "first RTC interrupt: {first:?}");
    Ok(())
}

/// Runs `body` with the RTC's periodic interrupt (1024 Hz) delivered as bit 8 on `n`, then
/// checks that after acknowledging it (at the device and the line) a second one arrives, and
/// turns it off again. Returns what `body` returned.
pub fn with_rtc_periodic<R>(n: Notification, body: impl FnOnce() -> R) -> Result<R, alloc::string::String> {
    let ports = IoPorts(find(ObjectKind::IoPorts, None)?);
    let irq = Irq(find(ObjectKind::Irq, Some(8))?);
    irq.bind(n, 1 << 8).map_err(|e| format!("bind: {e}"))?;
    let e = |err: Error| format!("cmos: {err}");
    let b = cmos(ports, 0x0b).map_err(e)?;
    let _ = cmos(ports, 0x0c).map_err(e)?; // clear anything pending
    cmos_set(ports, 0x0b, b | 0x40).map_err(e)?; // periodic interrupt on (1024 Hz)
    let result = body();
    let _ = cmos(ports, 0x0c).map_err(e)?; // acknowledge at the device
    irq.ack().map_err(|err| format!("ack: {err}"))?;
    let second = n.wait_timeout(2_000_000_000);
    cmos_set(ports, 0x0b, b & !0x40).map_err(e)?;
    let _ = cmos(ports, 0x0c).map_err(e)?;
    irq.unbind().map_err(|err| format!("unbind: {err}"))?;
    // Bits of a last interrupt may still be pending: take them.
    let _ = n.poll();
    check!(second == Ok(1 << 8), "no interrupt after the acknowledgement: {second:?}");
    Ok(result)
}

fn kernel_ports_and_bad_widths_refused() -> TestResult {
    let ports = IoPorts(find(ObjectKind::IoPorts, None)?);
    for port in [0x3f8, 0x3fd, 0x20, 0x21, 0xa1, 0x40, 0x43, 0x61, 0xf4] {
        check!(ports.read(port, 1) == Err(Error::AccessDenied), "kernel port {port:#x} readable");
        check!(ports.write(port, 1, 0) == Err(Error::AccessDenied), "kernel port {port:#x} writable");
    }
    check!(ports.read(0x3f6, 4) == Err(Error::AccessDenied), "a 4-byte read reaching into COM1");
    check!(ports.read(0x70, 3) == Err(Error::InvalidArgument), "width 3");
    let irq = Irq(find(ObjectKind::Irq, Some(8))?);
    check!(IoPorts(irq.0).read(0x70, 1) == Err(Error::WrongObject), "port I/O through an IRQ capability");
    let read_only = IoPorts(ports.0.duplicate(vessel_rt::abi::Rights::READ).map_err(|e| format!("dup: {e}"))?);
    check!(read_only.write(0x80, 1, 0) == Err(Error::MissingRights), "write without WRITE");
    check!(read_only.read(0x71, 1).is_ok(), "read with READ");
    read_only.0.delete().map_err(|e| format!("delete: {e}"))?;
    Ok(())
}

fn mmio_region_maps() -> TestResult {
    let hpet = Mmio(find(ObjectKind::Mmio, None)?);
    let addr = hpet.map().map_err(|e| format!("map: {e}"))?;
    // SAFETY: the kernel mapped the HPET's register page at `addr`, uncached.
    let caps = unsafe { core::ptr::read_volatile(addr as usize as *const u64) };
    // General capabilities: revision in bits 0-7 (non-zero), counter period in bits 32-63.
    check!(caps & 0xff != 0 && caps >> 32 != 0, "HPET capabilities register reads {caps:#x}");
    // SAFETY: nothing uses the mapping afterwards.
    unsafe { vessel_rt::sys::mem_unmap(addr, 1) }.map_err(|e| format!("unmap: {e}"))?;
    Ok(())
}
