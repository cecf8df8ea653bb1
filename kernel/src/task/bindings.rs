//! Where the machine's events are delivered: each ISA interrupt line, each MSI vector and the
//! kernel log's "printed" signal may be bound to a notification and bits (`IrqBind`,
//! `LogBind`), which the kernel signals when the event comes.
//!
//! Invariants: a binding names a notification that was live when it was made, and
//! [`Bindings::forget`] removes every binding to a notification as it goes, so no event is ever
//! delivered to a reused id; a line is unmasked at the I/O APIC only while it is bound (a
//! forgotten line is masked again); bits are never 0; at most [`LOG_BINDINGS`] notifications
//! follow the log, each once.

use vessel_abi::Error;

use super::msi::MsiVectors;
use crate::arch::x86_64::ioapic;

/// ISA interrupt lines.
const LINES: usize = 16;
/// Notifications that may follow the kernel's log at once.
pub const LOG_BINDINGS: usize = 4;

/// A notification (its id) and the bits to signal on it.
pub type Binding = (u64, u64);

/// Every event source's binding.
pub struct Bindings {
    lines: [Option<Binding>; LINES],
    log: [Option<Binding>; LOG_BINDINGS],
    msi: MsiVectors,
}

impl Bindings {
    /// Nothing bound, no MSI vector handed out.
    pub const fn new() -> Bindings {
        Bindings { lines: [None; LINES], log: [None; LOG_BINDINGS], msi: MsiVectors::new() }
    }

    /// Where interrupt line `line` is delivered.
    pub fn line(&self, line: u8) -> Option<Binding> {
        self.lines.get(usize::from(line)).copied().flatten()
    }

    /// Binds line `line` (or with `None` unbinds it), unmasking or masking it to match.
    /// `InvalidArgument` for a line past the ISA ones or bits 0.
    pub fn bind_line(&mut self, line: u8, binding: Option<Binding>) -> Result<(), Error> {
        let slot = self.lines.get_mut(usize::from(line)).ok_or(Error::InvalidArgument)?;
        if binding.is_some_and(|(_, bits)| bits == 0) {
            return Err(Error::InvalidArgument);
        }
        *slot = binding;
        match binding {
            Some(_) => ioapic::unmask(line),
            None => ioapic::mask(line),
        }
        Ok(())
    }

    /// Notification `id` follows the log with `bits` (0: stops following it). `TableFull` when
    /// [`LOG_BINDINGS`] others follow it already.
    pub fn bind_log(&mut self, id: u64, bits: u64) -> Result<(), Error> {
        let bound = self.log.iter().position(|b| b.is_some_and(|(n, _)| n == id));
        let slot = match (bound, bits) {
            (Some(i), _) => i,
            (None, 0) => return Ok(()),
            (None, _) => self.log.iter().position(Option::is_none).ok_or(Error::TableFull)?,
        };
        self.log[slot] = (bits != 0).then_some((id, bits));
        Ok(())
    }

    /// The notifications following the log (none: the kernel need not look whether it printed).
    pub fn log_followers(&self) -> impl Iterator<Item = Binding> + use<> {
        self.log.into_iter().flatten()
    }

    /// The MSI vectors and their bindings.
    pub fn msi(&mut self) -> &mut MsiVectors {
        &mut self.msi
    }

    /// Notification `id` is gone: every binding to it goes, and the lines it had go quiet.
    pub fn forget(&mut self, id: u64) {
        for (line, binding) in self.lines.iter_mut().enumerate() {
            if binding.is_some_and(|(n, _)| n == id) {
                *binding = None;
                ioapic::mask(line as u8);
            }
        }
        self.msi.unbind_notification(id);
        for binding in &mut self.log {
            if binding.is_some_and(|(n, _)| n == id) {
                *binding = None;
            }
        }
    }
}
