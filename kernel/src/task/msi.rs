//! MSI vectors (`MsiAllocate`, `MsiMessage`): interrupt vectors a device raises by writing a
//! message, delivered like an interrupt line as bits of a notification (`IrqBind`).
//!
//! Invariants: a vector is handed out to one capability family at a time and returns to the
//! pool when its last capability goes (its binding with it); an MSI is edge-triggered and
//! never needs masking by the kernel, so `IrqAck` has nothing to do for one.

use vessel_abi::{Error, Rights};

use super::caps::create;
use super::objects::{Lifecycle, ObjectRef};
use super::{Tasks, with_tasks};
use crate::arch::x86_64::apic;
use crate::arch::x86_64::trap::{MSI_FIRST, MSI_VECTORS};

/// One allocated vector.
#[derive(Clone, Copy, Debug, Default)]
pub struct MsiVector {
    /// Capabilities referring to it.
    caps: u32,
    /// The notification and bits it is delivered to.
    binding: Option<(u64, u64)>,
}

/// The vectors, `None` while free.
pub struct MsiVectors {
    slots: [Option<MsiVector>; MSI_VECTORS],
}

impl MsiVectors {
    /// All vectors free.
    pub const fn new() -> MsiVectors {
        MsiVectors { slots: [None; MSI_VECTORS] }
    }

    /// Takes a free vector (its number), not yet referred to.
    fn allocate(&mut self) -> Option<u8> {
        let index = self.slots.iter().position(Option::is_none)?;
        self.slots[index] = Some(MsiVector::default());
        Some(MSI_FIRST + index as u8)
    }

    fn get_mut(&mut self, vector: u8) -> Option<&mut MsiVector> {
        self.slots.get_mut(usize::from(vector.checked_sub(MSI_FIRST)?))?.as_mut()
    }

    /// Binds (or with `None` unbinds) an allocated vector.
    pub fn bind(&mut self, vector: u8, binding: Option<(u64, u64)>) {
        if let Some(v) = self.get_mut(vector) {
            v.binding = binding;
        }
    }

    /// Unbinds every vector delivered to notification `id` (it is gone).
    pub fn unbind_notification(&mut self, id: u64) {
        for v in self.slots.iter_mut().flatten() {
            if v.binding.is_some_and(|(n, _)| n == id) {
                v.binding = None;
            }
        }
    }

    /// Where an arriving vector goes.
    fn binding(&mut self, vector: u8) -> Option<(u64, u64)> {
        self.get_mut(vector)?.binding
    }
}

impl Lifecycle for MsiVector {
    fn cap_added(t: &mut Tasks, id: u64, _rights: Rights) {
        if let Some(v) = u8::try_from(id).ok().and_then(|v| t.bindings.msi().get_mut(v)) {
            v.caps += 1;
        }
    }

    fn cap_removed(t: &mut Tasks, id: u64, _rights: Rights) {
        let Ok(vector) = u8::try_from(id) else { return };
        let msi = t.bindings.msi();
        let Some(v) = msi.get_mut(vector) else { return };
        v.caps = v.caps.saturating_sub(1);
        if v.caps == 0 {
            msi.slots[usize::from(vector - MSI_FIRST)] = None;
        }
    }
}

/// `MsiAllocate` (platform authority checked by the caller).
pub fn msi_allocate() -> Result<u64, Error> {
    with_tasks(|t| {
        let vector = t.bindings.msi().allocate().ok_or(Error::NoMemory)?;
        create(t, ObjectRef::Msi(vector))
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `MsiMessage`.
pub fn msi_message(value: u64) -> Result<u64, Error> {
    let vector = with_tasks(|t| match t.resolve(value, Rights::READ)?.object {
        ObjectRef::Msi(vector) => Ok(vector),
        _ => Err(Error::WrongObject),
    })
    .unwrap_or(Err(Error::NoSuchProcess))?;
    let (address, data) = apic::msi_message(vector);
    Ok(u64::from(address) << 32 | u64::from(data))
}

/// An MSI arrived (interrupt context): signal its notification, if it is bound.
pub fn on_msi(vector: u8) {
    let Some(mut guard) = super::TASKS.try_lock() else { return };
    let Some(t) = guard.as_mut() else { return };
    if let Some((id, bits)) = t.bindings.msi().binding(vector) {
        let _ = t.signal_notification(id, bits);
    }
}
