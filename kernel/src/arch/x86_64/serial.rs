//! COM1, the first serial port: where the kernel log and test verdicts go. The logger owns it
//! (`crate::logger`); the only other handle is the panic path's, made once nothing else will
//! run again.

use uart_16550::SerialPort;

/// The standard I/O base of COM1.
const COM1: u16 = 0x3f8;

/// COM1, initialised, for the logger (called once, at boot).
pub fn init_com1() -> SerialPort {
    // SAFETY: COM1 is the standard first serial port; only the logger drives it.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    port
}

/// A fresh handle on COM1 that takes no lock, for the panic path only.
pub fn emergency_com1() -> SerialPort {
    // SAFETY: used only on the panic path, after which no other serial user runs again.
    unsafe { SerialPort::new(COM1) }
}
