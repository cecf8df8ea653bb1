//! Interrupt and exception entry: the IDT, one assembly stub per vector, and the safe Rust
//! dispatcher they all call with a [`TrapFrame`].
//!
//! Every stub pushes the same frame (a 0 error code for vectors where the CPU pushes none, then
//! the vector), saves all general registers and calls [`trap_dispatch`]; returning from it restores
//! the (possibly edited) frame and `iretq`s. Stubs are 16 bytes apart, so the IDT is filled from
//! the first stub's address without a relocated table. Entries from user mode swap GS.
//!
//! A fault in user mode kills only the faulting process (see `task::user_fault`). A fault in
//! kernel code is fatal (a report, then panic) unless its instruction is listed in the
//! fault-recovery table of [`super::probe`], which redirects it to a recovery path.

use core::arch::global_asm;

use spin::Once;
use vessel_kcore::report::{FaultReport, TrapFrame, vector_name};
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use super::{apic, gdt, ioapic, percpu, probe, read_cr2};

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0x20;
/// Vector the local APIC uses for spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8, "the stub pushes 22 words");

global_asm!(
    r#"
    .altmacro
    .macro TRAP_STUB n
        .balign 16
        .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30)
        .else
        push 0
        .endif
        push \n
        jmp vessel_trap_common
    .endm

    .section .text.vessel_traps, "ax"
    .balign 16
    .global vessel_trap_stubs
vessel_trap_stubs:
    .set vec, 0
    .rept 256
    TRAP_STUB %vec
    .set vec, vec + 1
    .endr
    .noaltmacro

    // System calls have their own lean path (`super::syscall`); this one is for interrupts,
    // exceptions and a new thread's first entry to user mode.
    .section .text.vessel_trap_common, "ax"
    .balign 16
    .global vessel_trap_common
vessel_trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    // CS of the interrupted code sits 18 words up; a non-zero RPL means we came from user mode.
    test qword ptr [rsp + 18 * 8], 3
    jz 1f
    swapgs
1:
    cld
    // Interrupted code that ran with interrupts on: an interrupts-off stretch begins.
    test qword ptr [rsp + {rflags}], {interrupt_flag}
    jz 3f
    call {begin}
3:
    mov rdi, rsp
    call {dispatch}
    // Also where new threads first enter user mode.
    .global vessel_trap_return
vessel_trap_return:
    test qword ptr [rsp + {rflags}], {interrupt_flag}
    jz 4f
    call {end}
4:
    test qword ptr [rsp + 18 * 8], 3
    jz 2f
    swapgs
2:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
    "#,
    dispatch = sym trap_dispatch,
    begin = sym percpu::irqs_off_begin,
    end = sym percpu::irqs_off_end,
    rflags = const core::mem::offset_of!(TrapFrame, rflags),
    interrupt_flag = const 0x200,
);

unsafe extern "C" {
    /// First of the 256 entry stubs defined above (each 16 bytes).
    static vessel_trap_stubs: u8;
}

/// One 16-byte IDT gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

/// Builds the IDT (interrupt gates, DPL 0; breakpoint at DPL 3 for debuggers later) and loads it.
pub fn init() {
    let kernel_code = {
        use x86_64::instructions::segmentation::Segment;
        x86_64::instructions::segmentation::CS::get_reg()
    };
    let idt = IDT.call_once(|| {
        let base = (&raw const vessel_trap_stubs) as u64;
        let mut gates =
            [Gate { offset_low: 0, selector: 0, ist: 0, flags: 0, offset_mid: 0, offset_high: 0, reserved: 0 }; 256];
        for (vector, gate) in gates.iter_mut().enumerate() {
            let addr = base + 16 * vector as u64;
            let dpl = if vector == 3 { 3 } else { 0 };
            *gate = Gate {
                offset_low: addr as u16,
                selector: kernel_code.0,
                ist: if vector == 8 { gdt::DOUBLE_FAULT_IST as u8 + 1 } else { 0 },
                // Present, interrupt gate (interrupts off on entry).
                flags: 0x80 | (dpl << 5) | 0x0e,
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
        }
        Idt(gates)
    });
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(idt as *const Idt),
    };
    // SAFETY: the IDT lives in a static for the rest of the kernel's life and every gate points at
    // a stub in `vessel_trap_stubs`.
    unsafe { lidt(&pointer) };
}

/// MSI vectors handed out by `MsiAllocate`: `MSI_FIRST..MSI_FIRST + MSI_VECTORS`.
pub const MSI_FIRST: u8 = 0x40;
/// How many MSI vectors there are (up to 0xef; 0xf0 and above stay free for IPIs).
pub const MSI_VECTORS: usize = 0xb0;

/// The one Rust entry for every interrupt and exception (system calls have their own,
/// `super::syscall`). Runs with interrupts off.
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector;
    match vector {
        0..=31 => exception(frame),
        v if v == u64::from(TIMER_VECTOR) => {
            crate::time::on_tick();
            apic::end_of_interrupt();
            // May switch to another thread (only out of user code); this one resumes here later.
            crate::task::on_tick(frame.cs & 3 == 3);
        }
        v if v == u64::from(SPURIOUS_VECTOR) => {}
        v if (u64::from(ioapic::IRQ_BASE)..u64::from(ioapic::IRQ_BASE + ioapic::ISA_LINES)).contains(&v) => {
            crate::task::on_irq((v - u64::from(ioapic::IRQ_BASE)) as u8);
            apic::end_of_interrupt();
            if frame.cs & 3 == 3 {
                crate::task::preempt_if_needed();
            }
        }
        v if (u64::from(MSI_FIRST)..u64::from(MSI_FIRST) + MSI_VECTORS as u64).contains(&v) => {
            crate::task::on_msi(v as u8);
            apic::end_of_interrupt();
            if frame.cs & 3 == 3 {
                crate::task::preempt_if_needed();
            }
        }
        _ => {
            log::warn!("unexpected interrupt vector {vector}");
            apic::end_of_interrupt();
        }
    }
}

/// Counts breakpoints taken, so tests can see a trap return to the interrupted code.
pub static BREAKPOINTS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

// Kept out of line so the interrupt path through `trap_dispatch` stays small.
#[cold]
#[inline(never)]
fn exception(frame: &mut TrapFrame) {
    let cr2 = read_cr2();
    // A first touch of a demand-paged user page (the stack), from user code or from the kernel
    // copying to user memory: map it and retry the instruction.
    if frame.vector == 14 && frame.error_code & 1 == 0 && crate::task::map_on_demand(cr2) {
        return;
    }
    if frame.vector == 7 && frame.cs & 3 == 3 {
        // Device not available: the lazy FPU switch.
        crate::task::fpu_trap();
        return;
    }
    if frame.cs & 3 == 3 {
        // Never returns: the faulting process dies and another thread runs.
        crate::task::user_fault(frame, cr2);
    }
    if frame.vector == 3 {
        // int3 leaves RIP after the instruction: just resume.
        BREAKPOINTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        return;
    }
    if probe::recover(frame, cr2) {
        return;
    }
    panic!("unhandled CPU exception in kernel mode: {}\n{}", vector_name(frame.vector), FaultReport { frame, cr2 });
}
