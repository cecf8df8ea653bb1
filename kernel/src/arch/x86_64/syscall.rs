//! The `syscall` instruction's entry: MSR setup and the few instructions that turn a system call
//! into an interrupt-style frame on the thread's kernel stack, with vector [`SYSCALL_VECTOR`];
//! from there the common trap path saves the registers, the trap dispatcher hands the frame to
//! the safe system-call dispatcher, and the return is the interrupts' (`iretq`). One frame
//! format for syscalls, interrupts, context switches and new threads.
//!
//! Entry runs with interrupts off (SFMASK clears IF) and switches to the kernel stack recorded in
//! the per-CPU area.

use core::arch::global_asm;

use x86_64::registers::model_specific::{Efer, EferFlags, Msr};

use super::gdt::{KERNEL_CODE, USER_CODE, USER_DATA};

/// Pseudo vector recorded in frames built by the syscall entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
/// Flags cleared on entry: IF, TF, DF, AC.
const ENTRY_CLEARED_FLAGS: u64 = 0x200 | 0x100 | 0x400 | 0x4_0000;

global_asm!(
    r#"
    .section .text.hot.vessel_syscall, "ax"
    .global vessel_syscall_entry
    .balign 16
vessel_syscall_entry:
    swapgs
    mov gs:[8], rsp
    mov rsp, gs:[0]
    push {user_data}
    push qword ptr gs:[8]
    push r11
    push {user_code}
    push rcx
    push 0
    push {vector}
    // From here the frame is an interrupt frame from user mode: give GS back and let the
    // common trap path save the registers, swap GS again, dispatch and return.
    swapgs
    jmp vessel_trap_common
    "#,
    user_data = const USER_DATA,
    user_code = const USER_CODE,
    vector = const SYSCALL_VECTOR,
);

unsafe extern "C" {
    fn vessel_syscall_entry();
}

/// Enables `syscall` and points it at the entry above.
pub fn init() {
    // SAFETY: the MSRs exist on every x86_64 CPU; the selectors match the GDT layout in `gdt`
    // (sysret would use 0x10+16 = user code and 0x10+8 = user data); LSTAR points at an entry
    // that is mapped in every address space (kernel half).
    unsafe {
        Efer::update(|efer| efer.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        Msr::new(IA32_STAR).write((0x10u64 << 48) | (KERNEL_CODE << 32));
        Msr::new(IA32_LSTAR).write(vessel_syscall_entry as *const () as u64);
        Msr::new(IA32_FMASK).write(ENTRY_CLEARED_FLAGS);
    }
}
