//! x86_64 CPU support: descriptor tables, traps, the local APIC, the PIT, FPU/SSE state and the
//! few instructions the rest of the kernel needs. Most of the kernel's `unsafe` lives here.

pub mod apic;
pub mod context;
pub mod fpu;
pub mod gdt;
pub mod ioapic;
pub mod percpu;
pub mod pit;
pub mod port;
pub mod power;
pub mod probe;
pub mod serial;
pub mod syscall;
pub mod trap;

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::{hlt, interrupts, port::Port};

/// Loads the GDT/TSS and IDT and turns on FPU/SSE. Interrupts stay off.
pub fn init_cpu() {
    gdt::init();
    trap::init();
    fpu::init();
    syscall::init();
    log::info!("cpu: GDT+TSS (double-fault IST), IDT (256 vectors), FPU/SSE on, syscall entry, {}", fpu::features());
}

/// Masks the legacy PICs, enables the local APIC and turns interrupts on.
pub fn init_interrupts() {
    mask_legacy_pic();
    let apic_id = apic::init();
    ioapic::init(apic_id);
    interrupts::enable();
}

/// Remaps the 8259 PICs away from the exception vectors and masks every line: the kernel uses the
/// local APIC (and later the I/O APIC) only. Remapping first keeps a spurious PIC interrupt from
/// ever arriving as a CPU exception vector.
fn mask_legacy_pic() {
    let mut cmd1: Port<u8> = Port::new(0x20);
    let mut data1: Port<u8> = Port::new(0x21);
    let mut cmd2: Port<u8> = Port::new(0xa0);
    let mut data2: Port<u8> = Port::new(0xa1);
    // SAFETY: the standard 8259 initialisation sequence on its fixed ports; no other code drives
    // the PIC.
    unsafe {
        cmd1.write(0x11);
        cmd2.write(0x11);
        data1.write(0xf0); // vectors 0xf0-0xf7
        data2.write(0xf8); // vectors 0xf8-0xff
        data1.write(4);
        data2.write(2);
        data1.write(1);
        data2.write(1);
        data1.write(0xff);
        data2.write(0xff);
    }
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; CR4.TSD is clear so it is allowed at ring 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Turns interrupts off on this CPU.
pub fn disable_interrupts() {
    interrupts::disable();
}

/// Halts with interrupts on until one has been handled, then turns them off again: the idle
/// thread's wait. An interrupts-off stretch ends before and begins after (`percpu`).
pub fn wait_for_interrupt() {
    percpu::irqs_off_end();
    interrupts::enable_and_hlt();
    interrupts::disable();
    percpu::irqs_off_begin();
}

/// Lets pending interrupts in for a moment, then turns them off again: the preemption point of
/// long kernel work done in steps. The caller holds no lock and leaves its work consistent
/// between steps. Interrupts are only handled here, never a reason to switch threads (the
/// handlers switch only out of user code): what they make ready runs when the work's system
/// call returns. An interrupts-off stretch ends before and begins after (`percpu`).
pub fn preemption_point() {
    let call = percpu::irqs_off_call();
    percpu::irqs_off_end();
    // `sti` takes effect after the next instruction, so the interrupt window is the `nop`.
    interrupts::enable();
    core::hint::spin_loop();
    interrupts::disable();
    percpu::irqs_off_resume(call);
}

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        interrupts::disable();
        hlt();
    }
}

/// Exit codes for QEMU's `isa-debug-exit` device (QEMU exits with `code << 1 | 1`).
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum QemuExit {
    /// The run succeeded (QEMU exit status 33).
    Success = 0x10,
    /// The run failed (QEMU exit status 35).
    Failure = 0x11,
}

/// Leaves QEMU through `isa-debug-exit` at port 0xf4. Without that device this does nothing.
pub fn qemu_exit(code: QemuExit) {
    let mut port: Port<u32> = Port::new(0xf4);
    // SAFETY: port 0xf4 is reserved for QEMU's debug-exit device in Vessel's machine setup; on a
    // machine without it the write is ignored.
    unsafe { port.write(code as u32) };
}

/// CPUID leaf `leaf`, subleaf `sub`: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Reads the POST diagnostic port (0x80), which has no effect: a bus access whose timing
/// varies (entropy jitter).
pub fn read_post_port() -> u8 {
    // SAFETY: port 0x80 is the POST diagnostic port; reading it has no effect.
    unsafe { x86_64::instructions::port::PortReadOnly::<u8>::new(0x80).read() }
}

/// Whether the CPU has RDRAND, as [`detect_rdrand`] found.
static HAS_RDRAND: AtomicBool = AtomicBool::new(false);

/// Looks for RDRAND (CPUID leaf 1, ECX bit 30) and remembers the answer for [`rdrand`].
pub fn detect_rdrand() -> bool {
    let present = cpuid(1, 0).2 & (1 << 30) != 0;
    HAS_RDRAND.store(present, Ordering::Relaxed);
    present
}

/// One RDRAND attempt: `None` if it had no value ready, or if [`detect_rdrand`] did not find
/// the instruction.
pub fn rdrand() -> Option<u64> {
    if !HAS_RDRAND.load(Ordering::Relaxed) {
        return None;
    }
    let mut value = 0;
    // SAFETY: CPUID reported RDRAND (`detect_rdrand`), so the instruction exists.
    (unsafe { rdrand_step(&mut value) } == 1).then_some(value)
}

#[target_feature(enable = "rdrand")]
fn rdrand_step(value: &mut u64) -> i32 {
    core::arch::x86_64::_rdrand64_step(value)
}

/// Reads CR2, the address of the last page fault.
pub fn read_cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}
