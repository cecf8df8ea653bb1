//! The context switch: save the callee-saved registers and stack pointer of one kernel thread,
//! load another's, and with them its address space. Everything else a thread needs (its user
//! registers) is already in the trap frame at the top of its kernel stack. Also the other
//! per-thread CPU state a switch sets: the `fs` base, and a new thread's first kernel stack.
//!
//! The scheduler's side (which thread, which stack, which address space) is `task::switch`; this
//! module only knows the register and stack layout.

use vessel_kcore::report::TrapFrame;

use crate::mem::kstack::KernelStack;

/// A switch arranged under the table lock (`task::switch::enter`), done once the lock is
/// released.
#[derive(Clone, Copy)]
pub struct Switch {
    /// Where to save the running thread's stack pointer (in its record).
    pub save: *mut u64,
    /// The stack pointer to load.
    pub load: u64,
    /// The level-4 table to load with it, or 0 to keep the current one.
    pub root: u64,
}

/// rdi = where to save the old stack pointer, rsi = the new stack pointer, rdx = the level-4
/// table to load, or 0.
///
/// CR3 is written here, after the old thread's registers are pushed and the new stack is
/// loaded, rather than before the lock is released: everything touched after the write is paid
/// again under an emulator that flushes its TLB on every CR3 write, and from here on that is
/// only the new thread's stack, not the old one's as well.
///
/// A naked Rust function rather than a `global_asm!` symbol: calls to a symbol declared in an
/// `extern` block go through the GOT in this position-independent kernel, one more data page
/// (`.got`) touched on every switch.
///
/// `kernel/hot.ld` places it right after the system-call entry.
#[unsafe(naked)]
unsafe extern "C" fn vessel_switch(save: *mut u64, load: u64, root: u64) {
    core::arch::naked_asm!(
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "test rdx, rdx",
        "jz 2f",
        "mov cr3, rdx",
        "2:",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
    )
}

/// Words `switch_to` pops before returning: six callee-saved registers.
const SAVED_REGISTERS: u64 = 6;

// A new thread's first switch "returns" here: release the table lock the switching thread
// handed over (`task::switch::unlock_after_first_switch`), then take the trap return path to
// user mode with the frame prepared below.
core::arch::global_asm!(
    r#"
    .section .text.vessel_first_entry, "ax"
    .global vessel_first_entry
vessel_first_entry:
    call {unlock}
    jmp vessel_trap_return
    "#,
    unlock = sym crate::task::unlock_after_first_switch,
);

unsafe extern "C" {
    /// See the assembly above.
    static vessel_first_entry: u8;
}

/// Address new threads "return" to on their first switch.
fn first_return_address() -> u64 {
    (&raw const vessel_first_entry) as u64
}

/// Prepares a new thread's kernel stack, not in use by anything yet, for its first switch:
/// `frame` (its user registers) at the top, below it the return address of the trap return
/// path and zeroed callee-saved registers. Returns the stack pointer to give `switch_to`.
pub fn prepare_first_switch(stack: &mut KernelStack, frame: TrapFrame) -> u64 {
    let top = stack.top();
    let frame_at = top - core::mem::size_of::<TrapFrame>() as u64;
    let return_at = frame_at - 8;
    let saved_rsp = return_at - SAVED_REGISTERS * 8;
    // SAFETY: the stack is mapped and owned by `stack`, which nothing runs on yet (exclusive
    // borrow); every write is inside it (the frame and 7 words below it, far less than its
    // 16 KiB).
    unsafe {
        core::ptr::write(frame_at as *mut TrapFrame, frame);
        core::ptr::write(return_at as *mut u64, first_return_address());
        core::ptr::write_bytes(saved_rsp as *mut u64, 0, SAVED_REGISTERS as usize);
    }
    saved_rsp
}

/// Does `switch`: from the running thread to the one whose stack pointer is `load` (and address
/// space `root`, if not 0), saving the running one's into `*save`. Returns when something
/// switches back.
///
/// # Safety
/// Interrupts must be off; `save` must stay valid until this thread is switched back to; `load`
/// must be a stack pointer saved by this function or prepared by [`prepare_first_switch`];
/// `root`, if not 0, a level-4 table whose kernel half is the current one's.
pub unsafe fn switch_to(switch: Switch) {
    // SAFETY: forwarded to the caller.
    unsafe { vessel_switch(switch.save, switch.load, switch.root) }
}

/// Points `fs` at a thread's thread page, where its runtime finds its IPC buffer. Checked on
/// every switch: user code can change the base itself (`mov fs, <selector>` is allowed at
/// CPL 3), so no remembered value can be trusted to still be in the register. Written only if
/// it differs: threads in the same slot of different processes share the address, and the
/// write (unlike the read) ends the emulator's translation block, one more lookup per switch.
#[inline(always)]
pub fn set_fs_base(base: u64) {
    use x86_64::registers::model_specific::FsBase;
    // SAFETY: reading FS.base has no side effects.
    if unsafe { FsBase::MSR.read() } != base {
        // Thread pages are canonical user addresses: no check needed.
        FsBase::write(x86_64::VirtAddr::new_truncate(base));
    }
}
