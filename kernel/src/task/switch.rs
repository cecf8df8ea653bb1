//! The context switch: save the callee-saved registers and stack pointer of one kernel thread,
//! load another's, and with them its address space. Everything else a thread needs (its user
//! registers) is already in the trap frame at the top of its kernel stack.

/// A switch arranged under the table lock (`sched::enter`), done once the lock is released.
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
/// Its own hot section, which `kernel/hot.ld` places right after the trap entry paths.
#[unsafe(naked)]
#[unsafe(link_section = ".text.hot.switch")]
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

unsafe extern "C" {
    /// Where a new thread's first `ret` goes: the common return path to user mode.
    static vessel_trap_return: u8;
}

/// Words `switch_to` pops before returning: six callee-saved registers.
pub const SAVED_REGISTERS: u64 = 6;

/// Address new threads "return" to on their first switch.
pub fn first_return_address() -> u64 {
    (&raw const vessel_trap_return) as u64
}

/// Does `switch`: from the running thread to the one whose stack pointer is `load` (and address
/// space `root`, if not 0), saving the running one's into `*save`. Returns when something
/// switches back.
///
/// # Safety
/// Interrupts must be off; `save` must stay valid until this thread is switched back to; `load`
/// must be a stack pointer saved by this function or prepared like a new thread's (see
/// `Thread::new_user`); `root`, if not 0, a level-4 table whose kernel half is the current one's.
#[unsafe(link_section = ".text.hot.ipc")]
pub unsafe fn switch_to(switch: Switch) {
    // SAFETY: forwarded to the caller.
    unsafe { vessel_switch(switch.save, switch.load, switch.root) }
}
