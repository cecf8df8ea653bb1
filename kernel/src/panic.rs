//! What a kernel panic does: print the message on the serial line without taking any lock (the
//! panicking code may hold the log lock), then leave QEMU with a failure code if the
//! `isa-debug-exit` device is present, else stop the CPU.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::arch::x86_64::{self, QemuExit};

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    x86_64::disable_interrupts();
    let mut serial = crate::logger::emergency_serial();
    let _ = writeln!(serial, "\nKERNEL PANIC: {info}");
    crate::console::emergency_print(format_args!("KERNEL PANIC: {info}"));
    x86_64::qemu_exit(QemuExit::Failure);
    x86_64::halt_forever()
}
