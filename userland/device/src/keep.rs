//! The registry kept across restarts (`vessel_device_protocol::kept`) in the memory `proc`
//! hands every instance (`vessel_rt::proc::KeptMemory`).

use vessel_device_protocol::kept::{self, Kept};
use vessel_rt::proc::KeptMemory;

/// The kept memory, mapped.
pub struct Keep(KeptMemory);

impl Keep {
    /// The kept memory among this process's handles, mapped; `None` if `proc` gave none.
    pub fn inherited() -> Option<Keep> {
        KeptMemory::inherited().map(Keep)
    }

    /// What the last instance kept.
    pub fn load(&self) -> Kept {
        kept::load(self.0.bytes())
    }

    /// Keeps `kept` for the next instance; false if it does not fit.
    pub fn save(&mut self, kept: &Kept) -> bool {
        kept::save(self.0.bytes_mut(), kept)
    }
}
