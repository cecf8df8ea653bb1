//! The `syscall` instruction's entry and exit: MSR setup and the lean path every system call
//! takes.
//!
//! Entry saves only what the Rust dispatcher may clobber and the user expects back (the
//! caller-saved argument and result registers `rax, rdi, rsi, rdx, r10, r8, r9`, plus the user
//! `rip` (rcx), `rflags` (r11) and `rsp`) into the slots of an ordinary [`TrapFrame`] at the top of
//! the thread's kernel stack, and calls the system-call dispatcher with it. The callee-saved
//! registers stay live in the CPU: the Rust code preserves them (and a context switch inside the
//! call saves them on the kernel stack), so their frame slots, like `vector` and `error_code`, are
//! not written on this path. Nothing reads them for a thread inside a system call: the kernel
//! writes results only into the slots restored here, and a thread in a system call always leaves
//! through this exit.
//!
//! Exit is `sysretq` when the return address is in the lower half; otherwise (a return address
//! the CPU would fault on in kernel mode, the `sysret` pitfall) it is `iretq` through the same
//! frame, whose `cs`/`ss` the entry wrote. Both run with interrupts off (SFMASK clears IF on entry;
//! `sysretq`/`iretq` restore the user's flags), so no interrupt sees the user stack pointer in
//! kernel mode; Vessel sets up no NMI source.
//!
//! While interrupts-off stretches are measured (`super::percpu`), `syscall` goes to a second copy
//! of the entry that also stamps the TSC on entry and records the stretch on exit; the usual one
//! pays nothing for the feature.
//!
//! Interrupts, exceptions and a new thread's first entry to user mode keep the full path in
//! [`super::trap`] (every register saved, `iretq`).
//!
//! [`TrapFrame`]: vessel_kcore::report::TrapFrame

use core::arch::global_asm;
use core::mem::offset_of;

use vessel_kcore::report::TrapFrame;
use x86_64::registers::model_specific::{Efer, EferFlags, Msr};

use super::gdt::{KERNEL_CODE, USER_CODE, USER_DATA};
use super::percpu;

const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
/// Flags cleared on entry: IF, TF, DF, AC. (DF clear is what the Rust code expects, so the entry
/// needs no `cld`.)
const ENTRY_CLEARED_FLAGS: u64 = 0x200 | 0x100 | 0x400 | 0x4_0000;
/// Words of the frame below the five the entry pushes like the CPU does for an interrupt.
const BELOW_RIP: usize = offset_of!(TrapFrame, rip) / 8;

global_asm!(
    r#"
    // One entry and exit; `measured` adds the interrupts-off stamps (`super::percpu`).
    .macro SYSCALL_ENTRY measured
    swapgs
    mov gs:[{user_rsp}], rsp
    mov rsp, gs:[{kernel_rsp}]
    push {user_data}
    push qword ptr gs:[{user_rsp}]
    push r11
    push {user_code}
    push rcx
    sub rsp, {below_rip} * 8
    mov [rsp + {rax}], rax
    mov [rsp + {rdi}], rdi
    mov [rsp + {rsi}], rsi
    mov [rsp + {rdx}], rdx
    mov [rsp + {r10}], r10
    mov [rsp + {r8}], r8
    mov [rsp + {r9}], r9
    .if \measured
    mov gs:[{call}], rax
    rdtsc
    shl rdx, 32
    or rax, rdx
    mov gs:[{since}], rax
    .endif
    mov rdi, rsp
    call {dispatch}
    .if \measured
    rdtsc
    shl rdx, 32
    or rax, rdx
    sub rax, gs:[{since}]
    cmp rax, gs:[{longest}]
    jbe 2f
    mov gs:[{longest}], rax
    mov rax, gs:[{call}]
    mov gs:[{longest_call}], rax
2:
    .endif
    mov rax, [rsp + {rax}]
    mov rdi, [rsp + {rdi}]
    mov rsi, [rsp + {rsi}]
    mov rdx, [rsp + {rdx}]
    mov r10, [rsp + {r10}]
    mov r8, [rsp + {r8}]
    mov r9, [rsp + {r9}]
    mov rcx, [rsp + {rip}]
    // Bit 47 set: not a lower-half address (a `syscall` in the last bytes below 2^47 returns to
    // 2^47); `sysretq` would fault in kernel mode on it, `iretq` faults in user mode.
    bt rcx, 47
    jc 1f
    mov r11, [rsp + {rflags}]
    mov rsp, [rsp + {rsp}]
    swapgs
    sysretq
1:
    add rsp, {below_rip} * 8
    swapgs
    iretq
    .endm

    .section .text.vessel_syscall_entry, "ax"
    .global vessel_syscall_entry
    .balign 16
vessel_syscall_entry:
    SYSCALL_ENTRY 0

    .section .text.vessel_syscall_measured, "ax"
    .global vessel_syscall_entry_measured
    .balign 16
vessel_syscall_entry_measured:
    SYSCALL_ENTRY 1
    "#,
    user_rsp = const percpu::USER_RSP,
    kernel_rsp = const percpu::KERNEL_RSP,
    since = const percpu::IRQS_OFF_SINCE,
    longest = const percpu::IRQS_OFF_LONGEST,
    call = const percpu::IRQS_OFF_CALL,
    longest_call = const percpu::IRQS_OFF_LONGEST_CALL,
    user_data = const USER_DATA,
    user_code = const USER_CODE,
    below_rip = const BELOW_RIP,
    rax = const offset_of!(TrapFrame, rax),
    rdi = const offset_of!(TrapFrame, rdi),
    rsi = const offset_of!(TrapFrame, rsi),
    rdx = const offset_of!(TrapFrame, rdx),
    r10 = const offset_of!(TrapFrame, r10),
    r8 = const offset_of!(TrapFrame, r8),
    r9 = const offset_of!(TrapFrame, r9),
    rip = const offset_of!(TrapFrame, rip),
    rflags = const offset_of!(TrapFrame, rflags),
    rsp = const offset_of!(TrapFrame, rsp),
    dispatch = sym syscall_dispatch,
);

/// The one Rust entry for system calls.
extern "C" fn syscall_dispatch(frame: &mut TrapFrame) {
    crate::syscall::dispatch(frame);
}

unsafe extern "C" {
    fn vessel_syscall_entry();
    fn vessel_syscall_entry_measured();
}

/// Points `syscall` at the entry with the interrupts-off stamps (`measured`) or the one without.
/// Measuring is rare and the stamps cost every call, so the lean entry has no test for it.
pub fn select_entry(measured: bool) {
    let entry = if measured { vessel_syscall_entry_measured as *const () } else { vessel_syscall_entry as *const () };
    // SAFETY: both entries are mapped in every address space (kernel half) and handle a system
    // call alike; interrupts are off, so no call is between reading LSTAR and using it.
    unsafe { Msr::new(IA32_LSTAR).write(entry as u64) };
}

/// Enables `syscall` and points it at the entry above.
pub fn init() {
    // SAFETY: the MSRs exist on every x86_64 CPU; the selectors match the GDT layout in `gdt`
    // (`sysretq` loads CS = STAR[63:48] + 16 | 3 and SS = STAR[63:48] + 8 | 3, user code and user
    // data); LSTAR points at an entry that is mapped in every address space (kernel half).
    unsafe {
        Efer::update(|efer| efer.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        Msr::new(IA32_STAR).write((0x10u64 << 48) | (KERNEL_CODE << 32));
        Msr::new(IA32_LSTAR).write(vessel_syscall_entry as *const () as u64);
        Msr::new(IA32_FMASK).write(ENTRY_CLEARED_FLAGS);
    }
}
