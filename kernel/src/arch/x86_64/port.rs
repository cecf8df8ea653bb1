//! Port I/O on behalf of user-space drivers. The kernel's own ports (PICs, PIT, system control,
//! COM1, the debug-exit port) are listed here, and these functions refuse them whatever a
//! capability allows: nothing outside this module touches a port for a driver.

use x86_64::instructions::port::Port;

/// Ports the kernel owns: legacy PICs, PIT, system control, COM1, QEMU debug exit.
const KERNEL_PORTS: [(u16, u16); 6] =
    [(0x20, 0x21), (0xa0, 0xa1), (0x40, 0x43), (0x61, 0x61), (0x3f8, 0x3ff), (0xf4, 0xf7)];

/// Whether the `width` bytes of ports from `port` overlap a port the kernel drives itself.
pub fn kernel_owns(port: u16, width: u64) -> bool {
    let end = u32::from(port) + width as u32 - 1;
    KERNEL_PORTS.iter().any(|&(a, b)| u32::from(port) <= u32::from(b) && end >= u32::from(a))
}

/// Reads a device port of `width` bytes (1, 2, or else 4); `None` for a port the kernel owns.
pub fn device_read(port: u16, width: u64) -> Option<u64> {
    if kernel_owns(port, width) {
        return None;
    }
    // SAFETY: none of the kernel's own ports (checked above); reading a device port cannot
    // break kernel memory safety.
    let value = unsafe {
        match width {
            1 => u64::from(Port::<u8>::new(port).read()),
            2 => u64::from(Port::<u16>::new(port).read()),
            _ => u64::from(Port::<u32>::new(port).read()),
        }
    };
    Some(value)
}

/// Writes `data` to a device port of `width` bytes (1, 2, or else 4); false, writing nothing,
/// for a port the kernel owns.
pub fn device_write(port: u16, width: u64, data: u64) -> bool {
    if kernel_owns(port, width) {
        return false;
    }
    // SAFETY: as for `device_read`: a port the kernel does not use.
    unsafe {
        match width {
            1 => Port::<u8>::new(port).write(data as u8),
            2 => Port::<u16>::new(port).write(data as u16),
            _ => Port::<u32>::new(port).write(data as u32),
        }
    }
    true
}
