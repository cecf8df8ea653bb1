//! Hardware objects for user-space drivers: port I/O on behalf of a port-range capability, MMIO
//! mappings, and interrupt lines delivered as notification bits.
//!
//! Invariants: the kernel never lets a capability reach the ports it drives itself (PICs, PIT,
//! COM1, the debug-exit port), whatever range the capability names; an interrupt line is masked
//! from the moment it fires until its owner acknowledges it, so a driver is never flooded.

use crate::arch::x86_64::percpu as cpu;

use vessel_abi::{Error, PAGE_SIZE, Rights};
use vessel_capspace::Cap;

use super::objects::ObjectRef;
use super::{Tasks, with_tasks};
use crate::arch::x86_64::{ioapic, port as ports};

fn ports_cap(t: &Tasks, value: u64, needs: Rights, port: u64, width: u64) -> Result<u16, Error> {
    let (first, last) = match t.resolve(value, needs)?.object {
        ObjectRef::IoPorts(first, last) => (first, last),
        _ => return Err(Error::WrongObject),
    };
    if !matches!(width, 1 | 2 | 4) {
        return Err(Error::InvalidArgument);
    }
    let port = u16::try_from(port).map_err(|_| Error::InvalidArgument)?;
    let end = u32::from(port) + width as u32 - 1;
    if port < first || end > u32::from(last) {
        return Err(Error::AccessDenied);
    }
    if ports::kernel_owns(port, width) {
        return Err(Error::AccessDenied);
    }
    Ok(port)
}

/// `IoPortRead`.
pub fn port_read(value: u64, port: u64, width: u64) -> Result<u64, Error> {
    let port = with_tasks(|t| ports_cap(t, value, Rights::READ, port, width)).ok_or(Error::NoSuchProcess)??;
    // The capability grants the port, and it is none of the kernel's own (checked above).
    ports::device_read(port, width).ok_or(Error::AccessDenied)
}

/// `IoPortWrite`.
pub fn port_write(value: u64, port: u64, width: u64, data: u64) -> Result<u64, Error> {
    let port = with_tasks(|t| ports_cap(t, value, Rights::WRITE, port, width)).ok_or(Error::NoSuchProcess)??;
    if !ports::device_write(port, width, data) {
        return Err(Error::AccessDenied);
    }
    Ok(0)
}

/// `MmioMap`: maps the region uncached at the caller's next `MemMap` address.
pub fn mmio_map(value: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let (phys, len) = match t.resolve(value, Rights::MAP | Rights::READ | Rights::WRITE)?.object {
            ObjectRef::Mmio(phys, len) => (phys, len),
            _ => return Err(Error::WrongObject),
        };
        let pid = t.threads.get(&cpu::current()).map(|th| th.pid).ok_or(Error::NoSuchProcess)?;
        let process = t.processes.get_mut(pid).ok_or(Error::NoSuchProcess)?;
        let pages = len.div_ceil(PAGE_SIZE);
        let base = process.vspace.take(pages * PAGE_SIZE).ok_or(Error::NoMemory)?;
        let space = process.space.as_mut().ok_or(Error::NoSuchProcess)?;
        for i in 0..pages {
            if space.map_device(base + i * PAGE_SIZE, phys + i * PAGE_SIZE).is_err() {
                for undo in 0..i {
                    let _ = space.unmap(base + undo * PAGE_SIZE);
                }
                process.vspace.give(base, pages * PAGE_SIZE);
                return Err(Error::NoMemory);
            }
        }
        Ok(base)
    })
    .ok_or(Error::NoSuchProcess)?
}

/// An interrupt source a capability names.
enum Source {
    /// An ISA line through the I/O APIC.
    Line(u8),
    /// An MSI vector.
    Msi(u8),
}

fn irq_source(t: &Tasks, value: u64) -> Result<Source, Error> {
    match t.resolve(value, Rights::MANAGE)? {
        Cap { object: ObjectRef::Irq(line), .. } => Ok(Source::Line(line)),
        Cap { object: ObjectRef::Msi(vector), .. } => Ok(Source::Msi(vector)),
        _ => Err(Error::WrongObject),
    }
}

/// `IrqBind`: notification 0 unbinds.
pub fn irq_bind(value: u64, notification: u64, bits: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let line = match irq_source(t, value)? {
            Source::Line(line) => line,
            Source::Msi(vector) => {
                let binding = match notification {
                    0 => None,
                    _ if bits == 0 => return Err(Error::InvalidArgument),
                    _ => Some((t.resolve_notification(notification, Rights::SEND)?, bits)),
                };
                t.bindings.msi().bind(vector, binding);
                return Ok(0);
            }
        };
        let binding = match notification {
            0 => None,
            _ => Some((t.resolve_notification(notification, Rights::SEND)?, bits)),
        };
        t.bindings.bind_line(line, binding).map(|()| 0)
    })
    .ok_or(Error::NoSuchProcess)?
}

/// `IrqAck`: the driver handled the interrupt; let the line fire again.
pub fn irq_ack(value: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let Source::Line(line) = irq_source(t, value)? else { return Ok(0) };
        if t.bindings.line(line).is_some() {
            ioapic::unmask(line);
        }
        Ok(0)
    })
    .ok_or(Error::NoSuchProcess)?
}

/// An ISA interrupt arrived (interrupt context): mask the line, signal its notification.
pub fn on_irq(line: u8) {
    ioapic::mask(line);
    let Some(mut guard) = super::TASKS.try_lock() else { return };
    let Some(t) = guard.as_mut() else { return };
    if let Some((id, bits)) = t.bindings.line(line) {
        let _ = t.signal_notification(id, bits);
    }
}
