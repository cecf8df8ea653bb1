//! Hardware objects made from the platform capability (the test image's init hands usertest
//! one, as it does to the `device` server): an interrupt from a real (emulated) device reaches
//! a notification; kernel-owned ports, RAM and the interrupt controllers stay out of reach; DMA
//! memory and MSI vectors come and go with their capabilities.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_rt::abi::{Error, ObjectKind, Rights, Syscall};
use vessel_rt::ipc::{IoPorts, Irq, Memory, Notification};
use vessel_rt::platform::Platform;

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("hw::rtc_interrupt_reaches_a_notification", rtc_interrupt_reaches_a_notification),
    ("hw::kernel_ports_and_bad_widths_refused", kernel_ports_and_bad_widths_refused),
    ("hw::mmio_region_maps", mmio_region_maps),
    ("hw::platform_refuses_ram_apics_and_bad_ranges", platform_refuses_ram_apics_and_bad_ranges),
    ("hw::dma_memory_is_mapped_zeroed_and_freed", dma_memory_is_mapped_zeroed_and_freed),
    ("hw::dma_memory_lent_to_a_child_is_charged_there", dma_memory_lent_to_a_child_is_charged_there),
    ("hw::msi_vectors_are_unique_and_recycled", msi_vectors_are_unique_and_recycled),
    ("hw::kernel_output_is_read_and_signalled", kernel_output_is_read_and_signalled),
    ("hw::pci_configuration_space_where_the_mcfg_says", pci_configuration_space_where_the_mcfg_says),
];

/// The platform capability init passed.
fn platform() -> Result<Platform, String> {
    Platform::inherited().ok_or_else(|| String::from("no platform capability inherited"))
}

/// A capability to the CMOS ports.
fn cmos_ports() -> Result<IoPorts, String> {
    platform()?.ports(CMOS_INDEX, CMOS_DATA).map_err(|e| format!("ports: {e}"))
}

/// A capability to the RTC's interrupt line.
fn rtc_irq() -> Result<Irq, String> {
    platform()?.irq(8).map_err(|e| format!("irq 8: {e}"))
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
pub fn with_rtc_periodic<R>(n: Notification, body: impl FnOnce() -> R) -> Result<R, String> {
    let ports = cmos_ports()?;
    let irq = rtc_irq()?;
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
    let _ = irq.0.delete();
    let _ = ports.0.delete();
    // Bits of a last interrupt may still be pending: take them.
    let _ = n.poll();
    check!(second == Ok(1 << 8), "no interrupt after the acknowledgement: {second:?}");
    Ok(result)
}

fn kernel_ports_and_bad_widths_refused() -> TestResult {
    let ports = platform()?.ports(0, 0xffff).map_err(|e| format!("all ports: {e}"))?;
    for port in [0x3f8, 0x3fd, 0x20, 0x21, 0xa1, 0x40, 0x43, 0x61, 0xf4] {
        check!(ports.read(port, 1) == Err(Error::AccessDenied), "kernel port {port:#x} readable");
        check!(ports.write(port, 1, 0) == Err(Error::AccessDenied), "kernel port {port:#x} writable");
    }
    check!(ports.read(0x3f6, 4) == Err(Error::AccessDenied), "a 4-byte read reaching into COM1");
    check!(ports.read(0x70, 3) == Err(Error::InvalidArgument), "width 3");
    let irq = rtc_irq()?;
    check!(IoPorts(irq.0).read(0x70, 1) == Err(Error::WrongObject), "port I/O through an IRQ capability");
    let _ = irq.0.delete();
    let read_only = IoPorts(ports.0.duplicate(vessel_rt::abi::Rights::READ).map_err(|e| format!("dup: {e}"))?);
    check!(read_only.write(0x80, 1, 0) == Err(Error::MissingRights), "write without WRITE");
    check!(read_only.read(0x71, 1).is_ok(), "read with READ");
    read_only.0.delete().map_err(|e| format!("delete: {e}"))?;
    let _ = ports.0.delete();
    Ok(())
}

/// Where QEMU (and most PCs) put the HPET's registers.
const HPET: u64 = 0xfed0_0000;

fn mmio_region_maps() -> TestResult {
    let hpet = platform()?.mmio(HPET, 0x1000).map_err(|e| format!("mmio: {e}"))?;
    let addr = hpet.map().map_err(|e| format!("map: {e}"))?;
    // SAFETY: the kernel mapped the HPET's register page at `addr`, uncached.
    let caps = unsafe { core::ptr::read_volatile(addr as usize as *const u64) };
    // General capabilities: revision in bits 0-7 (non-zero), counter period in bits 32-63.
    check!(caps & 0xff != 0 && caps >> 32 != 0, "HPET capabilities register reads {caps:#x}");
    // SAFETY: nothing uses the mapping afterwards.
    unsafe { vessel_rt::sys::mem_unmap(addr, 1) }.map_err(|e| format!("unmap: {e}"))?;
    let _ = hpet.0.delete();
    Ok(())
}

fn platform_refuses_ram_apics_and_bad_ranges() -> TestResult {
    let p = platform()?;
    // RAM: the first MiB, the kernel's and the programs' memory (QEMU puts RAM from 1 MiB up).
    for (address, length) in [(0, 0x1000), (0xb8000, 0x1000), (0x10_0000, 0x1000), (0x20_0000, 0x10_0000)] {
        check!(p.mmio(address, length).err() == Some(Error::AccessDenied), "MMIO over RAM at {address:#x}");
    }
    check!(p.mmio(0xfee0_0000, 0x1000).err() == Some(Error::AccessDenied), "the local APIC");
    check!(p.mmio(0xfec0_0000, 0x1000).err() == Some(Error::AccessDenied), "the I/O APIC");
    check!(p.mmio(0xfebf_f000, 0x2000).err() == Some(Error::AccessDenied), "a range reaching into the I/O APIC");
    check!(p.mmio(HPET + 8, 0x1000).err() == Some(Error::InvalidArgument), "unaligned");
    check!(p.mmio(HPET, 0).err() == Some(Error::InvalidArgument), "empty");
    check!(p.mmio(!0xfff, 0x2000).err() == Some(Error::InvalidArgument), "wrapping");
    check!(p.ports(0x71, 0x70).err() == Some(Error::InvalidArgument), "ports backwards");
    let past = crate::raw(Syscall::PlatformPorts as u64, [u64::from(p.0.0), 0, 0x1_0000, 0, 0, 0]);
    check!(past == Err(Error::InvalidArgument), "ports past 0xffff: {past:?}");
    let line = crate::raw(Syscall::PlatformIrq as u64, [u64::from(p.0.0), 0x108, 0, 0, 0, 0]);
    check!(line == Err(Error::InvalidArgument), "line 0x108 (8 in the low byte): {line:?}");
    for line in [0, 2, 16, 255] {
        check!(p.irq(line).err() == Some(Error::InvalidArgument), "ISA line {line}");
    }
    // Only a platform capability with MANAGE makes anything.
    let weak = Platform(p.0.duplicate(Rights::READ).map_err(|e| format!("dup: {e}"))?);
    check!(weak.ports(0x70, 0x71).err() == Some(Error::MissingRights), "ports without MANAGE");
    check!(weak.dma(1).err() == Some(Error::MissingRights), "DMA without MANAGE");
    check!(weak.msi().err() == Some(Error::MissingRights), "MSI without MANAGE");
    let _ = weak.0.delete();
    let n = Notification::create().map_err(|e| format!("notification: {e}"))?;
    check!(Platform(n.0).ports(0x70, 0x71).err() == Some(Error::WrongObject), "a notification as platform");
    check!(Platform(n.0).dma(1).err() == Some(Error::WrongObject), "DMA from a notification");
    let _ = n.0.delete();
    Ok(())
}

fn dma_memory_is_mapped_zeroed_and_freed() -> TestResult {
    let p = platform()?;
    let before = vessel_rt::sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    let dma = p.dma(8).map_err(|e| format!("dma: {e}"))?;
    check!(dma.physical % 4096 == 0 && dma.physical >= 0x10_0000, "physical address {:#x}", dma.physical);
    check!(dma.memory.0.inspect().is_ok_and(|i| i.kind == ObjectKind::Memory as u32), "a memory object");
    // SAFETY: `Platform::dma` mapped 8 writable pages at `dma.address`, used by nobody else.
    let bytes = unsafe { core::slice::from_raw_parts_mut(dma.address as usize as *mut u8, 8 * 4096) };
    check!(bytes.iter().all(|&b| b == 0), "DMA memory comes zeroed");
    bytes.fill(0x5a);
    // Its frames never alias ordinary memory handed out later.
    let plain = Memory::create(1).map_err(|e| format!("memory: {e}"))?;
    check!(vessel_rt::platform::dma_address(plain) == Err(Error::WrongObject), "DmaAddress of ordinary memory");
    let _ = plain.0.delete();
    dma.free();
    // Released DMA frames wait until the platform holder says no device can write them.
    let held = vessel_rt::sys::kernel_stats().map_err(|e| format!("stats: {e}"))?.dma_quarantined;
    check!(held >= 8, "{held} DMA frames held back after the free");
    let returned = p.dma_quiesce().map_err(|e| format!("quiesce: {e}"))?;
    check!(returned >= 8, "DmaQuiesce returned {returned} frames");
    let held = vessel_rt::sys::kernel_stats().map_err(|e| format!("stats: {e}"))?.dma_quarantined;
    check!(held == 0, "{held} DMA frames still held back");
    let other = Memory::create(1).map_err(|e| format!("memory: {e}"))?;
    check!(Platform(other.0).dma_quiesce().err() == Some(Error::WrongObject), "DmaQuiesce through memory");
    let _ = other.0.delete();
    check!(p.dma(0).err() == Some(Error::InvalidArgument), "0 pages");
    check!(p.dma(1025).err() == Some(Error::InvalidArgument), "1025 pages");
    frames_back(&before)
}

/// `DmaCreate` for another container: charged there, mappable by the maker, its physical
/// address hidden from a copy without MANAGE, and the destroyed container removed only once the
/// memory is back.
fn dma_memory_lent_to_a_child_is_charged_there() -> TestResult {
    let p = platform()?;
    let root = crate::containers::root()?;
    let root_objects = || root.info().map(|i| i.usage[3]).map_err(|e| format!("root info: {e}"));
    let objects_before = root_objects()?;
    let child = root.create_child(&vessel_rt::abi::ContainerLimits::default()).map_err(|e| format!("child: {e}"))?;
    let id = child.id().map_err(|e| format!("id: {e}"))?;
    let before = vessel_rt::sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    check!(p.dma_for(1, 0x1234_5678_9abc_def1).err() == Some(Error::NoSuchContainer), "lent to no container");
    let dma = p.dma_for(4, id).map_err(|e| format!("dma for the child: {e}"))?;
    let usage = child.info().map_err(|e| format!("info: {e}"))?.usage;
    check!(usage[0] == 4 && usage[3] == 1, "the child pays 4 pages and 1 object: usage {usage:?}");
    // SAFETY: `dma_for` mapped 4 writable pages at `dma.address` here, used by nobody else.
    let bytes = unsafe { core::slice::from_raw_parts_mut(dma.address as usize as *mut u8, 4 * 4096) };
    check!(bytes.iter().all(|&b| b == 0), "lent memory comes zeroed");
    let lent = Memory(
        dma.memory
            .0
            .duplicate(Rights::READ | Rights::WRITE | Rights::MAP | Rights::TRANSFER)
            .map_err(|e| format!("dup: {e}"))?,
    );
    check!(vessel_rt::platform::dma_address(lent) == Err(Error::MissingRights), "physical address without MANAGE");
    let _ = lent.0.delete();
    // Destroyed while the memory is out: the container waits for it, then goes. (Usage counts
    // descendants: the root's objects include the child and the child's memory object.)
    child.destroy().map_err(|e| format!("destroy: {e}"))?;
    check!(root_objects()? == objects_before + 2, "the destroyed child went while its memory was out");
    dma.free();
    check!(root_objects()? == objects_before, "the destroyed child stayed after its memory came back");
    p.dma_quiesce().map_err(|e| format!("quiesce: {e}"))?;
    frames_back(&before)
}

/// Whether the free frames are what they were in `before`.
fn frames_back(before: &vessel_rt::abi::KernelStats) -> TestResult {
    let after = vessel_rt::sys::kernel_stats().map_err(|e| format!("stats: {e}"))?;
    check!(
        after.free_frames == before.free_frames,
        "frames lost: {} before, {} after",
        before.free_frames,
        after.free_frames
    );
    Ok(())
}

fn msi_vectors_are_unique_and_recycled() -> TestResult {
    let p = platform()?;
    let mut vectors = Vec::new();
    let mut messages = Vec::new();
    for _ in 0..4 {
        let msi = p.msi().map_err(|e| format!("msi: {e}"))?;
        let (address, data) = msi.message().map_err(|e| format!("message: {e}"))?;
        check!(address & 0xfff0_0000 == 0xfee0_0000, "MSI address {address:#x}");
        check!((0x40..0xf0).contains(&data), "MSI data (vector) {data:#x}");
        check!(!messages.contains(&data), "vector {data:#x} handed out twice");
        messages.push(data);
        vectors.push(msi);
    }
    // Bound and unbound like a line; acknowledging is harmless.
    let n = Notification::create().map_err(|e| format!("notification: {e}"))?;
    let first = vectors[0];
    first.bind(n, 1).map_err(|e| format!("bind: {e}"))?;
    check!(Irq(first.0).ack().is_ok(), "ack of an MSI");
    check!(first.bind(n, 0).err() == Some(Error::InvalidArgument), "binding to no bits");
    first.unbind().map_err(|e| format!("unbind: {e}"))?;
    let _ = n.0.delete();
    // A vector whose last capability goes is handed out again.
    let copy = first.0.duplicate(Rights::READ).map_err(|e| format!("dup: {e}"))?;
    let _ = first.0.delete();
    let again = p.msi().map_err(|e| format!("msi: {e}"))?;
    check!(again.message().map(|m| m.1) != Ok(messages[0]), "a vector still referred to was reused");
    let _ = copy.delete();
    let _ = again.0.delete();
    let reused = p.msi().map_err(|e| format!("msi: {e}"))?;
    check!(reused.message().map(|m| m.1) == Ok(messages[0]), "the freed vector was not reused");
    let _ = reused.0.delete();
    for msi in &vectors[1..] {
        let _ = msi.0.delete();
    }
    Ok(())
}

/// `LogRead` gives back what was printed, numbered by byte; `LogBind` signals a notification
/// on the tick after a print, and stops when asked; bad buffers and non-platform capabilities
/// are refused.
fn kernel_output_is_read_and_signalled() -> TestResult {
    let p = platform()?;
    let mut buf = [0u8; 4096];
    // Asking from far ahead says where the output ends now.
    let end = p.log_read(u64::MAX, &mut buf).map_err(|e| format!("log_read: {e}"))?;
    check!(end.first == end.next, "nothing past the end: {end:?}");
    let n = Notification::create().map_err(|e| format!("notification: {e}"))?;
    p.log_bind(n, 1 << 5).map_err(|e| format!("log_bind: {e}"))?;
    let marker = alloc::format!("kernel output marker {:#x}", vessel_rt::time::now_ns());
    vessel_rt::println!("{marker}");
    let signalled = n.wait_timeout(2_000_000_000);
    check!(signalled == Ok(1 << 5), "the print signalled {signalled:?}");
    let got = p.log_read(end.next, &mut buf).map_err(|e| format!("log_read: {e}"))?;
    let text = core::str::from_utf8(&buf[..(got.next - got.first) as usize]).unwrap_or("");
    check!(got.first == end.next && text.contains(&marker), "read from {}: {got:?} {text:?}", end.next);
    // A read of a few bytes continues where the last one stopped.
    let mut small = [0u8; 3];
    let part = p.log_read(end.next, &mut small).map_err(|e| format!("log_read: {e}"))?;
    check!(part.next - part.first == 3 && small == buf[..3], "a 3-byte read: {part:?} {small:?}");
    p.log_bind(n, 0).map_err(|e| format!("unbind: {e}"))?;
    let _ = n.poll();
    vessel_rt::println!("printed after the unbind");
    check!(n.wait_timeout(100_000_000) == Err(Error::TimedOut), "signalled after the unbind");
    let platform_handle = u64::from(p.0.0);
    let chunk = &raw mut small as u64;
    for (what, ptr) in crate::BAD_POINTERS {
        let bad = crate::raw(Syscall::LogRead as u64, [platform_handle, 0, ptr, 64, chunk, 0]);
        check!(bad == Err(Error::BadAddress), "a read into {what}: {bad:?}");
        let bad = crate::raw(Syscall::LogRead as u64, [platform_handle, 0, chunk, 3, ptr, 0]);
        check!(bad == Err(Error::BadAddress), "the chunk at {what}: {bad:?}");
    }
    let code = kernel_output_is_read_and_signalled as *const () as u64;
    let into_code = crate::raw(Syscall::LogRead as u64, [platform_handle, 0, code, 64, chunk, 0]);
    check!(into_code == Err(Error::BadAddress), "a read into this program's code: {into_code:?}");
    check!(Platform(n.0).log_read(0, &mut buf).err() == Some(Error::WrongObject), "LogRead through a notification");
    n.0.delete().map_err(|e| format!("delete: {e}"))?;
    Ok(())
}

/// q35 has an MCFG (ECAM at 0xb000_0000 for buses 0-255 in QEMU) and `PlatformEcam` maps it:
/// the host bridge reads the same through it as through the port pair; pc has none
/// (`NotFound`) and its host bridge is the i440FX.
fn pci_configuration_space_where_the_mcfg_says() -> TestResult {
    let p = platform()?;
    let ports = p.ports(0xcf8, 0xcff).map_err(|e| format!("ports: {e}"))?;
    // Vendor and device of 00:00.0, then its class dword, through the port pair.
    let port_read = |offset: u32| {
        ports.write(0xcf8, 4, 0x8000_0000 | offset).and_then(|()| ports.read(0xcfc, 4)).map_err(|e| format!("{e}"))
    };
    let (id, class) = (port_read(0)?, port_read(8)?);
    match p.ecam() {
        Ok((mmio, info)) => {
            check!(id == 0x29c0_8086, "q35's host bridge through the ports: {id:#x}");
            check!(info.address == 0xb000_0000 && info.first_bus == 0 && info.last_bus == 255, "{info:?}");
            let base = mmio.map().map_err(|e| format!("map: {e}"))?;
            // SAFETY: `MmioMap` mapped all 256 buses' configuration space here, uncached; these
            // are the first and third aligned dwords of 00:00.0's space.
            let (ecam_id, ecam_class) = unsafe {
                (core::ptr::read_volatile(base as *const u32), core::ptr::read_volatile((base + 8) as *const u32))
            };
            check!((ecam_id, ecam_class) == (id, class), "ECAM {ecam_id:#x} {ecam_class:#x}, ports {id:#x} {class:#x}");
            // SAFETY: the mapping is this test's alone and nothing reads it any more.
            let _ = unsafe { vessel_rt::sys::mem_unmap(base, 256 << 8) };
            let _ = mmio.0.delete();
        }
        Err(Error::NotFound) => check!(id == 0x1237_8086, "no MCFG, and the host bridge is {id:#x}, not the i440FX"),
        Err(e) => return Err(format!("PlatformEcam: {e}")),
    }
    let weak = Platform(ports.0);
    check!(weak.ecam().err() == Some(Error::WrongObject), "PlatformEcam through a port capability");
    let _ = ports.0.delete();
    Ok(())
}
