//! A process's own memory: anonymous mappings (`MemMap`, `MemUnmap`), stacks and IPC buffers
//! paged in on first touch, and the faults of user code that nothing pages in.

use crate::arch::x86_64::percpu as cpu;

use vessel_abi::{Error, Exit, FaultKind, MapFlags};
use vessel_abi::{HEAP_END, HEAP_START, PAGE_SIZE, STACK_GUARD, STACK_SIZE, STACK_TOP};
use vessel_container::{Index, Resource};
use vessel_kcore::report::{FaultReport, TrapFrame};

use super::process::{Process, Slot};
use super::sched::exit_current;
use super::with_tasks;
use crate::mem::address_space::Access;

fn with_current_process<R>(f: impl FnOnce(&mut Process) -> Result<R, Error>) -> Result<R, Error> {
    with_tasks(|t| {
        let pid = t.threads.get(&cpu::current()).map_or(0, |th| th.pid);
        // An ended process may still be on the CPU for a moment; it gets nothing more.
        t.processes.get_mut(pid).filter(|p| p.exit.is_none()).ok_or(Error::NoSuchProcess).and_then(f)
    })
    .ok_or(Error::NoSuchProcess)?
}

/// Charges `n` of `resource` to the running process's container; returns the container.
fn charge_current(resource: Resource, n: u64) -> Result<Index, Error> {
    with_tasks(|t| {
        let container = t.current_container()?;
        t.charge(container, resource, n).map(|()| container)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// Maps `pages` zeroed pages into the caller and returns their address.
pub fn mem_map(pages: u64, flags: MapFlags) -> Result<u64, Error> {
    if flags.contains(MapFlags::WRITE | MapFlags::EXEC) {
        return Err(Error::InvalidArgument);
    }
    let access = if flags.contains(MapFlags::EXEC) {
        Access::ReadExecute
    } else if flags.contains(MapFlags::WRITE) {
        Access::ReadWrite
    } else {
        Access::Read
    };
    let bytes = pages.checked_mul(PAGE_SIZE).filter(|&b| b > 0 && b <= 1 << 32).ok_or(Error::InvalidArgument)?;
    let guard = if flags.contains(MapFlags::GUARD) { PAGE_SIZE } else { 0 };
    let container = charge_current(Resource::Pages, pages)?;
    let mapped = with_current_process(|p| {
        let reserved = p.vspace.take(guard + bytes).ok_or(Error::NoMemory)?;
        let (base, end) = (reserved + guard, reserved + guard + bytes);
        let space = p.space.as_mut().ok_or(Error::NoSuchProcess)?;
        for page in (base..end).step_by(PAGE_SIZE as usize) {
            if let Err(e) = space.map_new(page, access) {
                for undo in (base..page).step_by(PAGE_SIZE as usize) {
                    let _ = space.unmap(undo);
                }
                p.vspace.give(reserved, guard + bytes);
                log::debug!("mem_map: {e:?}");
                return Err(Error::NoMemory);
            }
        }
        if guard > 0 {
            p.guards.push(reserved);
        }
        p.pages += pages;
        Ok(base)
    });
    if mapped.is_err() {
        with_tasks(|t| t.containers.uncharge(container, Resource::Pages, pages));
    }
    mapped
}

/// Unmaps pages obtained with [`mem_map`].
pub fn mem_unmap(addr: u64, pages: u64) -> Result<(), Error> {
    let bytes = pages.checked_mul(PAGE_SIZE).ok_or(Error::InvalidArgument)?;
    let end = addr.checked_add(bytes).ok_or(Error::InvalidArgument)?;
    if !addr.is_multiple_of(PAGE_SIZE) || addr < HEAP_START || end > HEAP_END {
        return Err(Error::InvalidArgument);
    }
    let (result, released, container, freed) = with_current_process(|p| {
        // A memory-object mapping is unmapped whole or not at all.
        let object = match p.mappings.iter().position(|&(_, a, n)| a < end && addr < a + n * PAGE_SIZE) {
            Some(i) if p.mappings[i].1 == addr && p.mappings[i].2 == pages => Some(p.mappings.remove(i).0),
            Some(_) => return Err(Error::InvalidArgument),
            None => None,
        };
        let space = p.space.as_mut().ok_or(Error::NoSuchProcess)?;
        let before = space.owned_pages();
        let mut result = Ok(());
        let mut unmapped_to = end;
        for page in (addr..end).step_by(PAGE_SIZE as usize) {
            if space.unmap(page).is_err() {
                result = Err(Error::InvalidArgument);
                unmapped_to = page;
                break;
            }
        }
        // The address space comes back for later mappings, with the guard page below if this
        // was a guarded mapping's start and it all went.
        let guarded = result.is_ok() && addr >= PAGE_SIZE && p.guards.contains(&(addr - PAGE_SIZE));
        if guarded {
            p.guards.retain(|&g| g != addr - PAGE_SIZE);
            p.vspace.give(addr - PAGE_SIZE, end - addr + PAGE_SIZE);
        } else {
            p.vspace.give(addr, unmapped_to - addr);
        }
        // Pages of its own that went (a memory object's pages are charged to the object).
        let freed = before - space.owned_pages();
        p.pages -= freed;
        Ok((result, object, p.container, freed))
    })?;
    with_tasks(|t| t.containers.uncharge(container, Resource::Pages, freed));
    result?;
    if let Some(object) = released {
        with_tasks(|t| {
            if let Some(m) = t.objects.memory_mut(object) {
                m.mappings = m.mappings.saturating_sub(1);
            }
            t.release_memory_if_unused(object);
        });
    }
    Ok(())
}

/// The thread slot whose IPC buffer holds `addr`, if any.
fn ipc_buffer_slot(addr: u64) -> Option<u64> {
    let offset = addr.checked_sub(vessel_abi::THREAD_AREA)?;
    let slot = offset / vessel_abi::THREAD_SLOT_SIZE;
    (slot < vessel_abi::MAX_THREADS && offset % vessel_abi::THREAD_SLOT_SIZE < vessel_abi::IPC_BUFFER_SIZE)
        .then_some(slot)
}

/// Maps a stack or IPC-buffer page on first touch. True if `addr` was in the running
/// process's stack range or in the IPC buffer of one of its live threads, and is now mapped.
pub fn map_on_demand(addr: u64) -> bool {
    // A copy made holding the table lock (`WindowWrite`) cannot page in (that takes the lock):
    // its fault is refused as a bad address instead.
    if crate::arch::x86_64::percpu::locked_copy() != 0 {
        return false;
    }
    let slot = ipc_buffer_slot(addr);
    if !(STACK_TOP - STACK_SIZE..STACK_TOP).contains(&addr) && slot.is_none() {
        return false;
    }
    let Ok(container) = charge_current(Resource::Pages, 1) else { return false };
    let mapped = with_current_process(|p| {
        if let Some(slot) = slot
            && !matches!(p.slots.get(slot as usize), Some(Slot::Live(_)))
        {
            return Err(Error::BadAddress);
        }
        let space = p.space.as_mut().ok_or(Error::NoSuchProcess)?;
        space.map_new(addr & !(PAGE_SIZE - 1), Access::ReadWrite).map_err(|_| Error::NoMemory)?;
        p.pages += 1;
        Ok(())
    });
    if mapped.is_err() {
        with_tasks(|t| t.containers.uncharge(container, Resource::Pages, 1));
    }
    mapped.is_ok()
}

fn fault_kind(frame: &TrapFrame, cr2: u64) -> FaultKind {
    match frame.vector {
        14 if (STACK_GUARD..STACK_GUARD + PAGE_SIZE).contains(&cr2) => FaultKind::StackOverflow,
        14 if frame.error_code & 0x10 != 0 => FaultKind::ExecuteViolation,
        14 => FaultKind::PageFault,
        13 => FaultKind::GeneralProtection,
        6 => FaultKind::InvalidOpcode,
        0 => FaultKind::DivideError,
        3 => FaultKind::Breakpoint,
        16 | 19 => FaultKind::FloatingPoint,
        _ => FaultKind::Other,
    }
}

/// A CPU exception in user mode: report it, end the process, run something else.
pub fn user_fault(frame: &TrapFrame, cr2: u64) -> ! {
    let kind = fault_kind(frame, cr2);
    let address = if frame.vector == 14 { cr2 } else { 0 };
    let (pid, name) = with_tasks(|t| {
        let pid = t.threads.get(&cpu::current()).map_or(0, |th| th.pid);
        (pid, t.processes.get(pid).map(|p| p.name.clone()).unwrap_or_default())
    })
    .unwrap_or_default();
    log::warn!("process {pid} ({name}) killed by {kind:?}: {}", FaultReport { frame, cr2 });
    exit_current(Exit::Fault { kind, address, ip: frame.rip })
}
