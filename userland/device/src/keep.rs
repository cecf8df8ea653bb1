//! The registry kept across restarts (`vessel_device_protocol::kept`): the memory `proc` hands
//! every instance, mapped once.

use vessel_device_protocol::kept::{self, Kept};
use vessel_rt::abi::{MapFlags, ObjectKind, PAGE_SIZE};
use vessel_rt::ipc::Memory;

/// The kept memory, mapped.
pub struct Keep {
    bytes: &'static mut [u8],
}

impl Keep {
    /// The kept memory among this process's handles, mapped; `None` if `proc` gave none.
    pub fn inherited() -> Option<Keep> {
        let memory = vessel_rt::handles_of(ObjectKind::Memory).next().map(Memory)?;
        let address = memory.map(MapFlags::WRITE).ok()?;
        let len = (vessel_proc_protocol::KEPT_PAGES * PAGE_SIZE) as usize;
        // SAFETY: `len` bytes are mapped writable at `address` for the rest of the process's
        // life (nothing unmaps them), and only this `Keep` refers to them.
        let bytes = unsafe { core::slice::from_raw_parts_mut(address as usize as *mut u8, len) };
        Some(Keep { bytes })
    }

    /// What the last instance kept.
    pub fn load(&self) -> Kept {
        kept::load(self.bytes)
    }

    /// Keeps `kept` for the next instance; false if it does not fit.
    pub fn save(&mut self, kept: &Kept) -> bool {
        kept::save(self.bytes, kept)
    }
}
