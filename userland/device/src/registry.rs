//! The device registry: which devices exist, which container may use which (grants), and the
//! open sessions.
//!
//! Rules (see `docs/device.md`):
//! - The root container owns every hardware device. Another container sees a device only
//!   through a grant from its parent, with rights no wider than the parent's own; a virtual
//!   device belongs to the container it was plugged into.
//! - A grant is shared or exclusive. An exclusive grant to container E keeps every container
//!   outside E's grant chain out (the grantor too) until it is revoked: they can neither open
//!   the device nor grant it. It is refused while anybody outside that chain holds a grant or
//!   an open session.
//! - Revoking a grant revokes the grants made from it, recursively, and every session of those
//!   containers on that device: their next use fails with `Revoked` and a reason.
//! - A session handle is `index << 32 | generation`, checked against the caller's container on
//!   every use: a forged, stale or foreign handle is refused.
//!
//! Invariants: a session names a live device; a grant's rights are within its grantor's; at
//! most one exclusive grant per device is not revoked, and while one exists every grant and
//! session on that device lies in its chain.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::{Access, Class, Rights};
use vessel_rt::abi::Error;

/// What serves a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Block device number n of the server.
    Blk(usize),
    /// Reads end at once; writes vanish.
    Null,
    /// Reads give zeros; writes vanish.
    Zero,
    /// Reads give random bytes; writes vanish.
    Random,
    /// The CMOS real-time clock.
    Clock,
    /// Virtual console n (`crate::console`): console 0 is the root's, the others plugged.
    Console(usize),
    /// The PS/2 keyboard.
    Keyboard,
    /// The 16550 serial port.
    Serial,
}

/// A grant of a device to a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who may use it.
    pub to: u64,
    /// Who granted it (its parent).
    pub from: u64,
    /// What it may do.
    pub rights: Rights,
    /// Whether it keeps everybody outside its chain out.
    pub exclusive: bool,
}

/// One device.
#[derive(Clone, Debug)]
pub struct Device {
    /// Its stable name (`blk0`, `null0`, …).
    pub name: String,
    /// What kind of device.
    pub class: Class,
    /// What serves it.
    pub backend: Backend,
    /// For a virtual device: the container it was plugged into (it owns it).
    pub plugged_for: Option<u64>,
    /// Grants, in the order they were made.
    pub grants: Vec<Grant>,
    /// Blocks and block size (0 for byte devices).
    pub blocks: u64,
    /// Bytes per block.
    pub block_size: u64,
}

/// An open device.
#[derive(Clone, Debug)]
pub struct Session {
    /// The container that opened it.
    pub container: u64,
    /// Index into `devices`.
    pub device: usize,
    /// What it may do.
    pub rights: Rights,
    generation: u32,
    /// Why it no longer works, once revoked.
    pub revoked: Option<String>,
}

/// How a container may use a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use {
    /// The rights it has.
    pub rights: Rights,
    /// Owner, shared or exclusive.
    pub access: Access,
}

/// The registry.
pub struct Registry {
    /// The root container's id.
    pub root: u64,
    /// Every device, by index (never removed: names stay stable).
    pub devices: Vec<Device>,
    sessions: Vec<Option<Session>>,
    next_generation: u32,
}

/// Most sessions open at once (all containers together).
pub const MAX_SESSIONS: usize = 1024;

impl Registry {
    /// An empty registry for a system whose root container is `root`.
    pub fn new(root: u64) -> Registry {
        Registry { root, devices: Vec::new(), sessions: Vec::new(), next_generation: 1 }
    }

    /// Adds a device; returns its index.
    pub fn add(&mut self, device: Device) -> usize {
        self.devices.push(device);
        self.devices.len() - 1
    }

    /// The next free name with `prefix` (`blk` → `blk0`, `blk1`, …).
    pub fn next_name(&self, prefix: &str) -> String {
        let mut n = 0;
        loop {
            let name = format!("{prefix}{n}");
            if !self.devices.iter().any(|d| d.name == name) {
                return name;
            }
            n += 1;
        }
    }

    /// The device named `name` that `container` may see.
    pub fn find(&self, container: u64, name: &str) -> Option<(usize, Use)> {
        self.devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.name == name)
            .find_map(|(i, _)| self.usage(container, i).map(|u| (i, u)))
    }

    /// How `container` may use device `index`, if at all.
    pub fn usage(&self, container: u64, index: usize) -> Option<Use> {
        let device = self.devices.get(index)?;
        match device.plugged_for {
            Some(owner) if owner == container => Some(Use { rights: Rights::READ_WRITE, access: Access::Owner }),
            None if container == self.root => Some(Use { rights: Rights::READ_WRITE, access: Access::Owner }),
            _ => device.grants.iter().find(|g| g.to == container).map(|g| Use {
                rights: g.rights,
                access: if g.exclusive { Access::Exclusive } else { Access::Shared },
            }),
        }
    }

    /// The containers from `container` up its grant chain on device `index` (itself first).
    fn chain(&self, container: u64, index: usize) -> Vec<u64> {
        let mut chain = alloc::vec![container];
        let grants = self.devices.get(index).map_or(&[][..], |d| &d.grants[..]);
        let mut at = container;
        while let Some(g) = grants.iter().find(|g| g.to == at) {
            if chain.contains(&g.from) {
                break;
            }
            chain.push(g.from);
            at = g.from;
        }
        chain
    }

    /// The exclusive holder that keeps `container` out of device `index`, if any.
    pub fn kept_out_by(&self, container: u64, index: usize) -> Option<u64> {
        let device = self.devices.get(index)?;
        let chain = self.chain(container, index);
        device.grants.iter().find(|g| g.exclusive && !chain.contains(&g.to)).map(|g| g.to)
    }

    /// Opens device `index` for `container` with `rights`; returns the handle.
    pub fn open(&mut self, container: u64, index: usize, rights: Rights) -> Result<u64, (Error, String)> {
        let name = self.devices.get(index).map(|d| d.name.clone()).unwrap_or_default();
        let usage = self.usage(container, index).ok_or((Error::NotFound, format!("no device {name}")))?;
        if !usage.rights.contains(rights) {
            return Err((Error::MissingRights, format!("{name} is granted {} here, {} asked", usage.rights, rights)));
        }
        if let Some(holder) = self.kept_out_by(container, index) {
            return Err((Error::Busy, format!("{name} is granted exclusively to container {holder:#x}")));
        }
        let slot = match self.sessions.iter().position(Option::is_none) {
            Some(slot) => slot,
            None if self.sessions.len() < MAX_SESSIONS => {
                self.sessions.push(None);
                self.sessions.len() - 1
            }
            None => return Err((Error::QuotaExceeded, format!("{MAX_SESSIONS} devices open already"))),
        };
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        self.sessions[slot] = Some(Session { container, device: index, rights, generation, revoked: None });
        Ok((slot as u64) << 32 | u64::from(generation))
    }

    /// The session `handle` names for `container`: refused if forged, stale, foreign or revoked.
    pub fn session(&self, container: u64, handle: u64) -> Result<&Session, (Error, String)> {
        let slot = (handle >> 32) as usize;
        let generation = handle as u32;
        let session = self
            .sessions
            .get(slot)
            .and_then(Option::as_ref)
            .filter(|s| s.generation == generation && s.container == container)
            .ok_or((Error::InvalidHandle, format!("handle {handle:#x} names no open device of this container")))?;
        if let Some(why) = &session.revoked {
            return Err((Error::Revoked, why.clone()));
        }
        Ok(session)
    }

    /// Closes `handle` (revoked ones too).
    pub fn close(&mut self, container: u64, handle: u64) -> Result<(), (Error, String)> {
        let slot = (handle >> 32) as usize;
        match self.sessions.get_mut(slot) {
            Some(s @ Some(_))
                if s.as_ref().is_some_and(|x| x.generation == handle as u32 && x.container == container) =>
            {
                *s = None;
                Ok(())
            }
            _ => Err((Error::InvalidHandle, format!("handle {handle:#x} names no open device of this container"))),
        }
    }

    /// Whether device `index` has an open, unrevoked session.
    pub fn has_sessions(&self, index: usize) -> bool {
        self.sessions.iter().flatten().any(|s| s.device == index && s.revoked.is_none())
    }

    /// The newest open, unrevoked session that reads device `index` (generations only grow;
    /// write-only sessions, a program's output, do not count).
    pub fn newest_session(&self, index: usize) -> Option<u64> {
        self.sessions
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| s.as_ref().map(|s| (slot, s)))
            .filter(|(_, s)| s.device == index && s.revoked.is_none() && s.rights.contains(Rights::READ))
            .max_by_key(|(_, s)| s.generation)
            .map(|(slot, s)| (slot as u64) << 32 | u64::from(s.generation))
    }

    /// Whether a session is still usable (for answering requests that finish after a revoke).
    pub fn revoked_reason(&self, handle: u64) -> Option<String> {
        let slot = (handle >> 32) as usize;
        match self.sessions.get(slot).and_then(Option::as_ref) {
            Some(s) if s.generation == handle as u32 => s.revoked.clone(),
            _ => Some(String::from("the device was closed")),
        }
    }

    /// Grants device `index` from `from` to its child `to`.
    pub fn grant(
        &mut self,
        from: u64,
        to: u64,
        index: usize,
        rights: Rights,
        exclusive: bool,
    ) -> Result<(), (Error, String)> {
        let name = self.devices.get(index).map(|d| d.name.clone()).unwrap_or_default();
        let usage = self.usage(from, index).ok_or((Error::NotFound, format!("no device {name}")))?;
        if !usage.rights.contains(rights) {
            return Err((
                Error::MissingRights,
                format!("{name}: container {from:#x} holds {} and cannot grant {}", usage.rights, rights),
            ));
        }
        if let Some(holder) = self.kept_out_by(from, index) {
            return Err((Error::Busy, format!("{name} is granted exclusively to container {holder:#x}")));
        }
        if self.devices[index].grants.iter().any(|g| g.to == to) {
            return Err((Error::Busy, format!("{name} is already granted to container {to:#x}; revoke it first")));
        }
        if exclusive {
            // Everybody outside the new holder's chain must be out already.
            let chain_of_new = {
                let mut c = self.chain(from, index);
                c.insert(0, to);
                c
            };
            let others = self.devices[index].grants.iter().any(|g| !chain_of_new.contains(&g.to) || g.from == from);
            let open = self.sessions.iter().flatten().any(|s| s.device == index && s.revoked.is_none());
            if others || open {
                return Err((
                    Error::Busy,
                    format!("{name} is in use or granted elsewhere; close and revoke that first"),
                ));
            }
        }
        self.devices[index].grants.push(Grant { to, from, rights, exclusive });
        Ok(())
    }

    /// Revokes `from`'s grant of device `index` to `to`, everything granted on from it, and
    /// their sessions. Returns the containers that lost it.
    pub fn revoke(&mut self, from: u64, to: u64, index: usize) -> Result<Vec<u64>, (Error, String)> {
        let name = self.devices.get(index).map(|d| d.name.clone()).unwrap_or_default();
        if !self.devices.get(index).is_some_and(|d| d.grants.iter().any(|g| g.from == from && g.to == to)) {
            return Err((Error::NotFound, format!("container {from:#x} granted {name} to no container {to:#x}")));
        }
        let why = format!("{name} was revoked by container {from:#x}");
        Ok(self.drop_grants_from(index, from, Some(to), &why))
    }

    /// Drops the grants of device `index` made by `from` (to `only` if given), recursively,
    /// revoking the sessions of the containers that lose it.
    fn drop_grants_from(&mut self, index: usize, from: u64, only: Option<u64>, why: &str) -> Vec<u64> {
        let mut lost = Vec::new();
        let mut work: Vec<u64> = self.devices[index]
            .grants
            .iter()
            .filter(|g| g.from == from && only.is_none_or(|o| o == g.to))
            .map(|g| g.to)
            .collect();
        while let Some(to) = work.pop() {
            if lost.contains(&to) {
                continue;
            }
            lost.push(to);
            work.extend(self.devices[index].grants.iter().filter(|g| g.from == to).map(|g| g.to));
        }
        self.devices[index].grants.retain(|g| !lost.contains(&g.to));
        for s in self.sessions.iter_mut().flatten() {
            if s.device == index && lost.contains(&s.container) && s.revoked.is_none() {
                s.revoked = Some(String::from(why));
            }
        }
        lost
    }

    /// A container is gone: its grants (and what it granted on) return, its sessions close,
    /// and the virtual devices plugged into it are unplugged.
    pub fn forget_container(&mut self, container: u64) {
        for index in 0..self.devices.len() {
            let Some(grant) = self.devices[index].grants.iter().find(|g| g.to == container).cloned() else { continue };
            let why = format!("container {container:#x} was destroyed");
            self.drop_grants_from(index, grant.from, Some(container), &why);
        }
        for s in &mut self.sessions {
            if s.as_ref().is_some_and(|s| s.container == container) {
                *s = None;
            }
        }
        for d in &mut self.devices {
            if d.plugged_for == Some(container) {
                d.plugged_for = Some(0); // nobody's: the name stays taken, nobody sees it
            }
        }
    }

    /// The containers holding grants, plugged devices or sessions, but the root (to check
    /// they still exist).
    pub fn grantees(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.devices.iter().flat_map(|d| d.grants.iter().map(|g| g.to)).collect();
        all.extend(self.sessions.iter().flatten().map(|s| s.container).filter(|&c| c != self.root));
        all.extend(self.devices.iter().filter_map(|d| d.plugged_for).filter(|&c| c != 0));
        all.sort_unstable();
        all.dedup();
        all
    }
}
