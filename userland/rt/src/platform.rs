//! The platform capability and what a driver makes from it: port ranges, interrupt lines, MMIO
//! regions, DMA memory, MSI vectors and the boot framebuffer. Only the `device` server holds a
//! platform capability (init passes it there and nowhere else; test images may hand one to a
//! test program).

use vessel_abi::{Error, FramebufferInfo, MapFlags, ObjectKind, args};

use crate::ipc::{Cap, IoPorts, Irq, Memory, Mmio, Notification};
use crate::sys::invoke;

/// The authority over the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform(pub Cap);

/// DMA memory: physically contiguous, zeroed, mapped into this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dma {
    /// The memory object (kept: deleting its last capability and unmapping frees it).
    pub memory: Memory,
    /// Where this process sees it.
    pub address: u64,
    /// Where the device sees it.
    pub physical: u64,
    /// Its size in pages.
    pub pages: u64,
}

/// An MSI vector, delivered like an interrupt line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi(pub Cap);

impl Platform {
    /// The platform capability among this process's inherited handles, if it was given one.
    pub fn inherited() -> Option<Platform> {
        crate::handles_of(ObjectKind::Platform).next().map(Platform)
    }

    /// A capability to ports `first..=last`.
    pub fn ports(self, first: u16, last: u16) -> Result<IoPorts, Error> {
        invoke(args::PlatformPorts { platform: u64::from(self.0.0), first: u64::from(first), last: u64::from(last) })
            .map(|h| IoPorts(Cap(h as u32)))
    }

    /// A capability to ISA interrupt line `line`.
    pub fn irq(self, line: u8) -> Result<Irq, Error> {
        invoke(args::PlatformIrq { platform: u64::from(self.0.0), line: u64::from(line) }).map(|h| Irq(Cap(h as u32)))
    }

    /// A capability to the device registers at `address` (page-aligned) for `length` bytes.
    pub fn mmio(self, address: u64, length: u64) -> Result<Mmio, Error> {
        invoke(args::PlatformMmio { platform: u64::from(self.0.0), address, length }).map(|h| Mmio(Cap(h as u32)))
    }

    /// `pages` of DMA memory, mapped read-write.
    pub fn dma(self, pages: u64) -> Result<Dma, Error> {
        self.dma_for(pages, 0)
    }

    /// `pages` of DMA memory belonging to (and charged to) the container with id `container`
    /// (0: this one), mapped read-write here: a buffer to lend that container, by sending it a
    /// capability without MANAGE.
    pub fn dma_for(self, pages: u64, container: u64) -> Result<Dma, Error> {
        let handle = invoke(args::DmaCreate { platform: u64::from(self.0.0), pages, container })?;
        let memory = Memory(Cap(handle as u32));
        let mapped = invoke(args::DmaAddress { memory: handle })
            .and_then(|physical| memory.map(MapFlags::WRITE).map(|address| (physical, address)));
        match mapped {
            Ok((physical, address)) => Ok(Dma { memory, address, physical, pages }),
            Err(e) => {
                let _ = memory.0.delete();
                Err(e)
            }
        }
    }

    /// Says no device can still write into released DMA memory (every device that used it was
    /// reset or stopped): its frames go back to the kernel's allocator. Returns how many.
    pub fn dma_quiesce(self) -> Result<u64, Error> {
        invoke(args::DmaQuiesce { platform: u64::from(self.0.0) })
    }

    /// A fresh MSI vector.
    pub fn msi(self) -> Result<Msi, Error> {
        invoke(args::MsiAllocate { platform: u64::from(self.0.0) }).map(|h| Msi(Cap(h as u32)))
    }

    /// Copies the kernel's output from byte `from` on into `buffer` (up to 4096 bytes a call);
    /// says which bytes came.
    pub fn log_read(self, from: u64, buffer: &mut [u8]) -> Result<vessel_abi::LogChunk, Error> {
        let mut chunk = vessel_abi::LogChunk::default();
        invoke(args::LogRead {
            platform: u64::from(self.0.0),
            from,
            buffer: buffer.as_mut_ptr() as u64,
            length: buffer.len() as u64,
            chunk: &raw mut chunk as u64,
        })?;
        Ok(chunk)
    }

    /// Signals `bits` on `notification` when the kernel prints (bits 0: stop).
    pub fn log_bind(self, notification: Notification, bits: u64) -> Result<(), Error> {
        invoke(args::LogBind { platform: u64::from(self.0.0), notification: u64::from(notification.0.0), bits })
            .map(|_| ())
    }

    /// PCI's memory-mapped configuration space (`NotFound` without an MCFG).
    pub fn ecam(self) -> Result<(Mmio, vessel_abi::EcamInfo), Error> {
        let mut info = vessel_abi::EcamInfo::default();
        let handle = invoke(args::PlatformEcam { platform: u64::from(self.0.0), info: &raw mut info as u64 })?;
        Ok((Mmio(Cap(handle as u32)), info))
    }

    /// Takes the boot framebuffer from the kernel's console.
    pub fn framebuffer(self) -> Result<(Mmio, FramebufferInfo), Error> {
        let mut info = FramebufferInfo::default();
        let handle = invoke(args::FramebufferTake { platform: u64::from(self.0.0), info: &raw mut info as u64 })?;
        Ok((Mmio(Cap(handle as u32)), info))
    }
}

/// The physical address of DMA memory (`WrongObject` for other memory objects).
pub fn dma_address(memory: Memory) -> Result<u64, Error> {
    invoke(args::DmaAddress { memory: u64::from(memory.0.0) })
}

impl Dma {
    /// Unmaps and frees it.
    pub fn free(self) {
        // SAFETY: the caller gives the mapping up with `self`; nothing else uses the range.
        let _ = unsafe { crate::sys::mem_unmap(self.address, self.pages) };
        let _ = self.memory.0.delete();
    }
}

impl Msi {
    /// The (address, data) a device must write to raise it.
    pub fn message(self) -> Result<(u32, u32), Error> {
        invoke(args::MsiMessage { msi: u64::from(self.0.0) }).map(|m| ((m >> 32) as u32, m as u32))
    }

    /// Delivers it as `bits` on `notification`.
    pub fn bind(self, notification: Notification, bits: u64) -> Result<(), Error> {
        Irq(self.0).bind(notification, bits)
    }

    /// Stops delivering it.
    pub fn unbind(self) -> Result<(), Error> {
        Irq(self.0).unbind()
    }
}
