//! The shell's terminal: a session of the `device` server on a terminal device, read for keys,
//! written for output (the server turns `\n` into CR LF on a serial line), and armed so that
//! Ctrl-C interrupts the program in the foreground.

use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::{NO_TIMEOUT, Rights};
use vessel_protocol::Refusal;
use vessel_rt::device::Devices;
use vessel_rt::io::Stream;

/// An open terminal.
#[derive(Clone, Debug)]
pub struct Terminal {
    devices: Devices,
    /// The session's handle (this container's: the shell's programs use it too).
    pub handle: u64,
    /// The device's name.
    pub name: String,
}

impl Terminal {
    /// Opens the terminal device `name` for reading and writing: a session of our own, the
    /// terminal's newest, so Ctrl-C typed while this shell reads a line is its own input.
    pub fn open(name: &str) -> Result<Terminal, Refusal> {
        let devices = Devices::get()?;
        let device = devices.open(name, Rights::READ_WRITE)?;
        Ok(Terminal { devices, handle: device.handle, name: String::from(name) })
    }

    /// As a standard stream for programs.
    pub fn stream(&self) -> Stream {
        Stream::Device(self.handle)
    }

    /// Writes all of `bytes` (nothing is lost while the line drains).
    pub fn write(&self, bytes: &[u8]) {
        let _ = self.stream().write_all(bytes);
    }

    /// Waits for typed bytes.
    pub fn read(&self) -> Result<Vec<u8>, Refusal> {
        self.devices.client().read(self.handle, 256, NO_TIMEOUT).map(|d| d.data)
    }

    /// The session as one Ctrl-C interrupts while programs run.
    pub fn interruptible(&self) -> vessel_rt::job::Interruptible {
        vessel_rt::job::Interruptible::new(self.devices, self.handle)
    }

    /// Ends the session (an outer shell's session becomes the terminal's newest again).
    pub fn close(&self) {
        let _ = self.devices.client().close(self.handle);
    }
}
