//! Containers through the kernel: a [`Container`] capability creates children, destroys, and
//! inspects. Only `proc` (and what it trusts) holds container capabilities; other programs ask
//! `proc` (see [`crate::proc`]).

use vessel_abi::{ContainerInfo, ContainerLimits, Error, args};

use crate::ipc::{Cap, Endpoint};
use crate::sys::invoke;

/// A container capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Container(pub Cap);

impl Container {
    /// A child container with `limits` (needs MANAGE).
    pub fn create_child(self, limits: &ContainerLimits) -> Result<Container, Error> {
        let ptr = limits as *const ContainerLimits as u64;
        invoke(args::ContainerCreate { parent: u64::from(self.0.0), limits: ptr }).map(|h| Container(Cap(h as u32)))
    }

    /// Destroys it and all its descendants (needs MANAGE).
    pub fn destroy(self) -> Result<(), Error> {
        invoke(args::ContainerDestroy { container: u64::from(self.0.0) }).map(|_| ())
    }

    /// Its state, limits and usage (needs READ).
    pub fn info(self) -> Result<ContainerInfo, Error> {
        info_of(u64::from(self.0.0))
    }

    /// Its id.
    pub fn id(self) -> Result<u64, Error> {
        self.0.inspect().map(|i| i.detail)
    }
}

fn info_of(handle: u64) -> Result<ContainerInfo, Error> {
    let mut info = ContainerInfo::default();
    invoke(args::ContainerInfo { container: handle, info: &raw mut info as u64 })?;
    Ok(info)
}

/// The container with id `id`, if it is the caller's or below it (no capability needed: a
/// container may look at its descendants). `NoSuchContainer` once it is gone.
pub fn lookup(id: u64) -> Result<ContainerInfo, Error> {
    let mut info = ContainerInfo::default();
    invoke(args::ContainerLookup { id, info: &raw mut info as u64 })?;
    Ok(info)
}

/// The caller's own container.
pub fn own() -> Result<ContainerInfo, Error> {
    info_of(0)
}

/// Registers `endpoint` as a system-service endpoint (needs MANAGE on the root container).
pub fn register_service(endpoint: Endpoint, root: Container) -> Result<(), Error> {
    invoke(args::ServiceRegister { endpoint: u64::from(endpoint.0.0), root: u64::from(root.0.0) }).map(|_| ())
}
