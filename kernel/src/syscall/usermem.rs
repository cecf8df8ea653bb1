//! The one way the kernel touches user memory (STYLE habit 7). A user pointer is an allegation:
//! [`UserSlice::new`] checks it is non-null, below the end of user space and does not wrap, and
//! every copy goes through the fault-recovering copy routine, so an unmapped page or a read-only
//! destination becomes [`Error::BadAddress`] instead of a kernel fault.

use core::mem::{MaybeUninit, size_of};

use vessel_abi::{
    CapInfo, ContainerInfo, ContainerLimits, Error, ExitStatus, KernelStats, ProcessInfo, SpawnRequest, USER_END,
};

use crate::arch::x86_64::probe;

/// Plain data that any bit pattern makes valid, so it may be copied in from user memory.
///
/// # Safety
/// Implement only for `#[repr(C)]` types made of integers with no padding-dependent invariants.
pub unsafe trait Pod: Copy {}

// SAFETY: all seven are `#[repr(C)]` structs of integers; every bit pattern is a valid value.
unsafe impl Pod for SpawnRequest {}
// SAFETY: as above.
unsafe impl Pod for ExitStatus {}
// SAFETY: as above.
unsafe impl Pod for ProcessInfo {}
// SAFETY: as above.
unsafe impl Pod for KernelStats {}
// SAFETY: as above.
unsafe impl Pod for CapInfo {}
// SAFETY: as above.
unsafe impl Pod for ContainerLimits {}
// SAFETY: as above.
unsafe impl Pod for ContainerInfo {}
// SAFETY: `repr(C)`, seven `u64`s: no padding, every bit pattern valid.
unsafe impl Pod for vessel_abi::FramebufferInfo {}
// SAFETY: two u64 fields, no padding.
unsafe impl Pod for vessel_abi::LogChunk {}
// SAFETY: three u64 fields, no padding.
unsafe impl Pod for vessel_abi::EcamInfo {}

/// A checked user address range.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    addr: u64,
    len: u64,
}

impl UserSlice {
    /// Checks the range: non-null, inside user space, no wrap-around, at most `max` bytes.
    pub fn new(addr: u64, len: u64, max: u64) -> Result<Self, Error> {
        if len > max {
            return Err(Error::TooLarge);
        }
        if addr == 0 || addr.checked_add(len).is_none_or(|end| end > USER_END) {
            return Err(Error::BadAddress);
        }
        Ok(UserSlice { addr, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Copies the range into `buf` (which must be exactly as long).
    pub fn read_into(&self, buf: &mut [u8]) -> Result<(), Error> {
        if buf.len() as u64 != self.len {
            return Err(Error::InvalidArgument);
        }
        // SAFETY: `buf` is a valid kernel buffer of `len` bytes; only the user side may fault.
        unsafe { probe::copy(buf.as_mut_ptr() as u64, self.addr, self.len) }.map_err(|_| Error::BadAddress)
    }

    /// Copies `buf` (which must be exactly as long) into the range.
    pub fn write_from(&self, buf: &[u8]) -> Result<(), Error> {
        if buf.len() as u64 != self.len {
            return Err(Error::InvalidArgument);
        }
        // SAFETY: `buf` is a valid kernel buffer of `len` bytes; only the user side may fault.
        unsafe { probe::copy(self.addr, buf.as_ptr() as u64, self.len) }.map_err(|_| Error::BadAddress)
    }
}

/// Reads `count` pairs of words from user memory at `addr` (the pieces of `WindowWrite`) into
/// `buf`, which need not be initialised; the pairs read. `TooLarge` if `buf` is shorter.
pub fn read_pairs(addr: u64, count: usize, buf: &mut [MaybeUninit<[u64; 2]>]) -> Result<&[[u64; 2]], Error> {
    let out = buf.get_mut(..count).ok_or(Error::TooLarge)?;
    if count > 0 {
        let bytes = (count * 16) as u64;
        let slice = UserSlice::new(addr, bytes, bytes)?;
        // SAFETY: `out` is `bytes` writable bytes; only the user side may fault.
        unsafe { probe::copy(out.as_mut_ptr() as u64, slice.addr, slice.len) }.map_err(|_| Error::BadAddress)?;
    }
    // SAFETY: the copy wrote all `count` pairs, and any bit pattern is a valid `[u64; 2]`.
    Ok(unsafe { &*(out as *const [MaybeUninit<[u64; 2]>] as *const [[u64; 2]]) })
}

/// Reads a `T` from user memory.
pub fn read<T: Pod>(addr: u64) -> Result<T, Error> {
    let slice = UserSlice::new(addr, size_of::<T>() as u64, size_of::<T>() as u64)?;
    let mut value = MaybeUninit::<T>::uninit();
    // SAFETY: `value` is `size_of::<T>()` writable bytes; only the user side may fault.
    unsafe { probe::copy(value.as_mut_ptr() as u64, slice.addr, slice.len) }.map_err(|_| Error::BadAddress)?;
    // SAFETY: fully written by the copy, and `T: Pod` makes every bit pattern valid.
    Ok(unsafe { value.assume_init() })
}

/// Writes a `T` to user memory.
pub fn write<T: Pod>(addr: u64, value: &T) -> Result<(), Error> {
    let slice = UserSlice::new(addr, size_of::<T>() as u64, size_of::<T>() as u64)?;
    // SAFETY: `value` is a valid `T` of `size_of::<T>()` bytes; only the user side may fault.
    unsafe { probe::copy(slice.addr, value as *const T as u64, slice.len) }.map_err(|_| Error::BadAddress)
}
