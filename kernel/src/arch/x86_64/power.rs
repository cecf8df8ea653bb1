//! The port accesses that switch the machine off or reset it (`crate::power` decides which):
//! the ACPI PM1 control registers and reset register the firmware's FADT names, its SMI command
//! port (to hand ACPI to the OS), the PCI reset control register (0xCF9), and the keyboard
//! controller's reset line (0x64).
//!
//! These ports are not in `port`'s list of kernel ports: a driver with a port capability can
//! reach them too, as it can any chipset register; the kernel uses them only here, on behalf of
//! a root-container `Power` call.

use x86_64::instructions::port::Port;

/// The PCI reset control register of PIIX/ICH chipsets (and QEMU's q35 and pc).
const RESET_CONTROL: u16 = 0xcf9;
/// Value for [`RESET_CONTROL`]: a full reset (bit 2 starts it, bit 1 makes it a hard one).
const RESET_HARD: u8 = 0x06;
/// The 8042 keyboard controller's command and status port.
const KBD_COMMAND: u16 = 0x64;
/// 8042 status: its input buffer is full (it has not taken the last command yet).
const KBD_INPUT_FULL: u8 = 1 << 1;
/// 8042 command: pulse the CPU reset line.
const KBD_PULSE_RESET: u8 = 0xfe;

/// Reads a 16-bit PM1 control register.
pub fn pm1_read(port: u16) -> u16 {
    // SAFETY: the FADT names this port as a PM1 control register; reading it has no effect.
    unsafe { Port::<u16>::new(port).read() }
}

/// Writes a 16-bit PM1 control register (with SLP_EN set this enters the sleep state).
pub fn pm1_write(port: u16, value: u16) {
    // SAFETY: the FADT names this port as a PM1 control register; the caller means to switch
    // the machine off, which ends everything the kernel guarantees anyway.
    unsafe { Port::<u16>::new(port).write(value) }
}

/// Writes one byte to an I/O port the FADT names: its reset register, or its SMI command port
/// (the ACPI-enable value). The caller takes the value from the same table.
pub fn firmware_port_write(port: u16, value: u8) {
    // SAFETY: the port and the value both come from the FADT, whose contract is that writing
    // the one to the other does what the table says (reset, or hand ACPI to the OS).
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Resets through the chipset's reset control register (0xCF9). On a machine without one the
/// write goes nowhere.
pub fn reset_control() {
    // SAFETY: 0xCF9 is the reset control register on PC chipsets; the write is meant to end
    // the running system.
    unsafe { Port::<u8>::new(RESET_CONTROL).write(RESET_HARD) }
}

/// Pulses the CPU reset line through the 8042 keyboard controller, once it takes commands
/// (bounded wait: a machine without one reads 0xff forever).
pub fn pulse_8042_reset() {
    let mut status = Port::<u8>::new(KBD_COMMAND);
    for _ in 0..100_000 {
        // SAFETY: reading the 8042 status port has no side effects.
        if unsafe { status.read() } & KBD_INPUT_FULL == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: 0xFE to the 8042's command port asks it to reset the CPU: the point here.
    unsafe { status.write(KBD_PULSE_RESET) }
}
