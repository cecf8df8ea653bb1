//! Memory objects: frames that can be mapped into several address spaces (`MemoryCreate`,
//! `MemoryMap`; `MemUnmap` takes a mapping away).
//!
//! Invariants: a memory object belongs to the container of the process that created it, which
//! is charged for its pages and as one object; only that container may map it, and for DMA
//! memory made for another container (`DmaCreate`'s lending) the maker's container too. Its frames are
//! owned by the object and mapped as borrowed. It lives while at least one capability refers to
//! it (`caps > 0`) or it is mapped anywhere (`mappings > 0`, the number of entries naming it in
//! processes' `mappings`). A process keeps a mapping only while it holds a capability to the
//! object: when its last one goes, its mappings go too (touching the range afterwards faults).
//! The frames of released DMA memory are not reused until the platform holder says no device
//! can still write them (`DmaQuiesce`): a driver that dies leaves requests with its devices.

use crate::arch::x86_64::percpu as cpu;
use alloc::vec::Vec;

use vessel_abi::{Error, MapFlags, PAGE_SIZE, Rights};
use vessel_container::{Index, Resource};

use super::caps::create;
use super::objects::{Lifecycle, ObjectRef};
use super::{TableId, Tasks, with_tasks};
use crate::mem::address_space::Access;
use crate::mem::frames;

/// Largest memory object, in pages.
const MAX_MEMORY_PAGES: u64 = 1024;

/// Frames of released DMA memory, kept from reuse: a device may still write them (its driver
/// died with requests in flight) until the platform holder has reset every device it drives and
/// says so (`DmaQuiesce`). Invariant: a frame here is in no memory object and not free in the
/// frame allocator; it leaves only through [`DmaQuarantine::release`], to the allocator.
pub struct DmaQuarantine {
    frames: Vec<u64>,
}

impl DmaQuarantine {
    /// Holds nothing.
    pub const fn new() -> DmaQuarantine {
        DmaQuarantine { frames: Vec::new() }
    }

    /// Keeps `frames` (of a DMA memory object just released) from reuse.
    fn hold(&mut self, frames: &[u64]) {
        self.frames.extend_from_slice(frames);
    }

    /// Frames held.
    pub fn held(&self) -> usize {
        self.frames.len()
    }

    /// Hands every frame held back, for the allocator.
    fn release(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.frames)
    }
}

/// Frames that can be mapped into several address spaces.
pub struct Memory {
    /// The container it belongs to (its pages are charged there).
    pub container: Index,
    /// Capabilities referring to it.
    pub caps: u32,
    /// Live mappings.
    pub mappings: u32,
    /// The frames (owned by the object; mapped as borrowed).
    pub frames: Vec<u64>,
    /// DMA memory: the frames are physically consecutive and the holder may learn where.
    pub dma: bool,
    /// For DMA memory made for another container: the maker's container, which may map it too.
    pub lender: Option<Index>,
}

impl Lifecycle for Memory {
    fn cap_added(t: &mut Tasks, id: u64, _rights: Rights) {
        if let Some(m) = t.objects.memory_mut(id) {
            m.caps += 1;
        }
    }

    fn cap_removed(t: &mut Tasks, id: u64, _rights: Rights) {
        let Some(m) = t.objects.memory_mut(id) else { return };
        m.caps = m.caps.saturating_sub(1);
        t.release_memory_if_unused(id);
    }
}

/// `MemoryCreate`: `pages` zeroed frames.
pub fn memory_create(pages: u64) -> Result<u64, Error> {
    create_memory(pages, false, 0)
}

/// `MemoryLend`: `pages` zeroed frames for the container with id `container`, which must be
/// the caller's or one below it (a container acts on its descendants, never beside or above).
pub fn memory_lend(pages: u64, container: u64) -> Result<u64, Error> {
    let below = with_tasks(|t| {
        let own = t.current_container()?;
        let target = t.containers.lookup(container).ok_or(Error::NoSuchContainer)?;
        Ok(t.containers.is_ancestor_or_self(own, target))
    })
    .unwrap_or(Err(Error::NoSuchProcess))?;
    if !below {
        return Err(Error::NoSuchContainer);
    }
    create_memory(pages, false, container)
}

/// `DmaCreate`: `pages` physically contiguous zeroed frames (the platform capability is
/// checked by the caller, `hardware::dma_create`), for the container with id `for_container`
/// (0: the caller's).
pub fn create_dma(pages: u64, for_container: u64) -> Result<u64, Error> {
    create_memory(pages, true, for_container)
}

/// Makes a memory object of `pages` zeroed frames, contiguous ones for DMA, belonging to the
/// container with id `for_container` (0: the caller's).
fn create_memory(pages: u64, dma: bool, for_container: u64) -> Result<u64, Error> {
    if pages == 0 || pages > MAX_MEMORY_PAGES {
        return Err(Error::InvalidArgument);
    }
    // Charge first, so a container over its quota allocates nothing.
    let (container, lender) = with_tasks(|t| {
        let own = t.current_container()?;
        let container = match for_container {
            0 => own,
            id => t
                .containers
                .lookup(id)
                .filter(|&c| t.containers.get(c).is_some_and(|c| c.state() == vessel_container::State::Alive))
                .ok_or(Error::NoSuchContainer)?,
        };
        t.charge(container, Resource::Pages, pages)?;
        if let Err(e) = t.charge(container, Resource::Objects, 1) {
            t.containers.uncharge(container, Resource::Pages, pages);
            return Err(e);
        }
        Ok((container, (container != own).then_some(own)))
    })
    .unwrap_or(Err(Error::NoSuchProcess))?;
    let refund = || {
        with_tasks(|t| {
            t.containers.uncharge(container, Resource::Pages, pages);
            t.containers.uncharge(container, Resource::Objects, 1);
        });
    };
    let list = if dma { contiguous_frames(pages) } else { frames_one_by_one(pages) };
    let Some(list) = list else {
        refund();
        return Err(Error::NoMemory);
    };
    with_tasks(|t| {
        let id = t.objects.add_memory(Memory { container, caps: 0, mappings: 0, frames: list, dma, lender });
        create(t, ObjectRef::Memory(id))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `pages` zeroed frames from anywhere, or `None` (nothing kept) when memory runs out.
fn frames_one_by_one(pages: u64) -> Option<Vec<u64>> {
    let mut list = Vec::new();
    list.try_reserve_exact(pages as usize).ok()?;
    for _ in 0..pages {
        match frames::alloc_zeroed() {
            Some(f) => list.push(f),
            None => {
                for f in list {
                    let _ = frames::free(f);
                }
                return None;
            }
        }
    }
    Some(list)
}

/// `pages` zeroed, physically consecutive frames, or `None` (nothing kept).
fn contiguous_frames(pages: u64) -> Option<Vec<u64>> {
    let mut list = Vec::new();
    list.try_reserve_exact(pages as usize).ok()?;
    let first = frames::alloc_contiguous(pages)?;
    list.extend((0..pages).map(|i| first + i * PAGE_SIZE));
    for &frame in &list {
        frames::zero(frame);
    }
    Some(list)
}

/// `DmaAddress`: the physical address of a DMA memory object.
pub fn dma_address(value: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let id = match t.resolve(value, Rights::MANAGE)?.object {
            ObjectRef::Memory(id) => id,
            _ => return Err(Error::WrongObject),
        };
        match t.objects.memory(id) {
            Some(m) if m.dma => m.frames.first().copied().ok_or(Error::WrongObject),
            _ => Err(Error::WrongObject),
        }
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `MemoryMap`: maps a memory object into the caller; returns the address.
pub fn memory_map(value: u64, flags: MapFlags) -> Result<u64, Error> {
    if flags.intersects(MapFlags::EXEC | MapFlags::GUARD) {
        return Err(Error::InvalidArgument);
    }
    let writable = flags.contains(MapFlags::WRITE);
    let needs = Rights::MAP | Rights::READ | if writable { Rights::WRITE } else { Rights::empty() };
    with_tasks(|t| {
        let id = match t.resolve(value, needs)?.object {
            ObjectRef::Memory(id) => id,
            _ => return Err(Error::WrongObject),
        };
        let here = t.current_container().ok();
        if t.objects.memory(id).is_some_and(|m| Some(m.container) != here && m.lender != here) {
            return Err(Error::CrossContainer);
        }
        let frames_list = t.objects.memory(id).map(|m| m.frames.clone()).ok_or(Error::PeerDied)?;
        let pid = t.threads.get(&cpu::current()).map(|th| th.pid).ok_or(Error::NoSuchProcess)?;
        let process = t.processes.get_mut(pid).ok_or(Error::NoSuchProcess)?;
        let pages = frames_list.len() as u64;
        let base = process.vspace.take(pages * PAGE_SIZE).ok_or(Error::NoMemory)?;
        let space = process.space.as_mut().ok_or(Error::NoSuchProcess)?;
        let access = if writable { Access::ReadWrite } else { Access::Read };
        for (i, &frame) in frames_list.iter().enumerate() {
            if space.map(base + i as u64 * PAGE_SIZE, frame, access, false).is_err() {
                for undo in 0..i as u64 {
                    let _ = space.unmap(base + undo * PAGE_SIZE);
                }
                process.vspace.give(base, pages * PAGE_SIZE);
                return Err(Error::NoMemory);
            }
        }
        process.mappings.push((id, base, pages));
        if let Some(m) = t.objects.memory_mut(id) {
            m.mappings += 1;
        }
        Ok(base)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

impl Tasks {
    /// Frees memory object `id` if nothing refers to it any more (no capability, no mapping).
    pub(super) fn release_memory_if_unused(&mut self, id: u64) {
        if self.objects.memory(id).is_some_and(|m| m.caps == 0 && m.mappings == 0)
            && let Some(m) = self.objects.remove_memory(id)
        {
            self.containers.uncharge(m.container, Resource::Pages, m.frames.len() as u64);
            self.containers.uncharge(m.container, Resource::Objects, 1);
            if m.dma {
                // A device may still write there (its driver died with requests in flight):
                // the frames wait until the platform holder says no device can (`DmaQuiesce`).
                self.dma_quarantine.hold(&m.frames);
            } else {
                for frame in m.frames {
                    let _ = frames::free(frame);
                }
            }
            // A destroyed container waits for memory lent to it (`DmaCreate`) to come back.
            if m.lender.is_some() && self.containers.destroying() {
                self.containers.remove_dead();
            }
        }
    }

    /// A capability to `object` left `table`: if it was that process's last capability to a
    /// memory object, its mappings of the object go too (a process keeps a mapping only while
    /// it holds a capability to the memory; touching the range afterwards faults).
    pub(super) fn access_maybe_lost(&mut self, table: TableId, object: ObjectRef) {
        let ObjectRef::Memory(id) = object else { return };
        if self.caps.holds(table, object) {
            return;
        }
        let Some((_, pid)) = self.containers.table_owner(table) else { return };
        let Some(process) = self.processes.get_mut(pid) else { return };
        let mut lost = 0;
        let mut i = 0;
        while i < process.mappings.len() {
            let (object, addr, pages) = process.mappings[i];
            if object != id {
                i += 1;
                continue;
            }
            process.mappings.swap_remove(i);
            if let Some(space) = process.space.as_mut() {
                for page in 0..pages {
                    let _ = space.unmap(addr + page * PAGE_SIZE);
                }
            }
            process.vspace.give(addr, pages * PAGE_SIZE);
            lost += 1;
        }
        if lost > 0 {
            if let Some(m) = self.objects.memory_mut(id) {
                m.mappings = m.mappings.saturating_sub(lost);
            }
            self.release_memory_if_unused(id);
        }
    }
}

/// `DmaQuiesce` (the platform capability is checked by the caller): the frames of released DMA
/// memory go back to the allocator; returns how many.
pub fn dma_quiesce() -> Result<u64, Error> {
    let frames = with_tasks(|t| t.dma_quarantine.release()).ok_or(Error::NoSuchProcess)?;
    let count = frames.len() as u64;
    for frame in frames {
        let _ = frames::free(frame);
    }
    Ok(count)
}
