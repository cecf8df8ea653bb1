//! The legacy 8254 PIT, used once at boot as a known-frequency reference to calibrate the TSC.
//! Channel 2 is used because its output can be polled through port 0x61 without interrupts.

use x86_64::instructions::port::Port;

use super::rdtsc;

/// The PIT input clock in Hz.
const PIT_HZ: u64 = 1_193_182;
/// Calibration window.
const WINDOW_MS: u64 = 5;

/// Measures the TSC frequency over a PIT one-shot of [`WINDOW_MS`].
pub fn measure_tsc_khz() -> u64 {
    let count = PIT_HZ * WINDOW_MS / 1000;
    let mut control: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel2: Port<u8> = Port::new(0x42);
    // SAFETY: ports 0x42/0x43/0x61 are the PIT and system control port on every PC; nothing else
    // in the kernel uses them, and this runs once, single threaded, before interrupts are on.
    unsafe {
        // Gate low (counter stopped), speaker off.
        let gate = control.read() & !0b11;
        control.write(gate);
        // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
        command.write(0b1011_0000);
        channel2.write((count & 0xff) as u8);
        channel2.write((count >> 8) as u8);
        // Rising gate starts the count.
        control.write(gate | 1);
        let start = rdtsc();
        // OUT2 (bit 5) goes high at terminal count. Bound the wait in case there is no PIT.
        let mut spins = 0u64;
        while control.read() & 0x20 == 0 && spins < 50_000_000 {
            spins += 1;
        }
        let end = rdtsc();
        control.write(gate);
        (end - start) / WINDOW_MS
    }
}
