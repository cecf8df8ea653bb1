//! The per-CPU block: what one CPU's entry paths and scheduler keep for themselves, reached
//! through GS in kernel mode (`swapgs` on every entry from user mode makes GS point here): each
//! field is one `gs`-relative load or store, from the entry assembly and from Rust alike.
//!
//! Invariants: each CPU touches only its own block, and only with interrupts off, one word at a
//! time; no Rust reference into a block is ever made. Vessel runs on one CPU today; a second CPU gets a
//! block of its own (`init` per CPU), and nothing here assumes there is only one.
//!
//! Interrupts-off stretches: while measuring is on, every kernel entry from code that ran with
//! interrupts on (a system call, an interrupt of user code or of the idle halt) stamps the TSC,
//! and every return to such code (`sysretq`, `iretq` with IF set, the idle thread's `sti`)
//! compares the stretch with the longest so far. The stamps on the system-call path are in a
//! second copy of its entry (`super::syscall`), chosen only while measuring, so the usual entry
//! pays nothing for them.

use core::arch::asm;
use core::cell::UnsafeCell;
use core::mem::offset_of;

use x86_64::VirtAddr;
use x86_64::registers::model_specific::{GsBase, KernelGsBase};

use super::rdtsc;

/// One CPU's block; see the module documentation. The entry assembly reads fields by the offsets
/// below, so the layout is fixed (`repr(C)`).
#[repr(C)]
pub struct PerCpu {
    /// Top of the running thread's kernel stack (the syscall entry loads it).
    kernel_rsp: u64,
    /// Scratch slot for the user stack pointer during syscall entry.
    user_rsp: u64,
    /// Non-zero while the longest interrupts-off stretch is measured.
    measuring: u64,
    /// TSC at the start of the current interrupts-off stretch.
    irqs_off_since: u64,
    /// Longest stretch since measuring started, in TSC ticks.
    irqs_off_longest: u64,
    /// The system call whose entry began the current stretch ([`NOT_A_CALL`]: an interrupt or
    /// the idle thread's wake-up).
    irqs_off_call: u64,
    /// The same for the longest stretch.
    irqs_off_longest_call: u64,
    /// The scheduler's facts about this CPU (`task::sched`): the thread running on it, whether
    /// it should reschedule at the next chance, the timer ticks left of the running thread's
    /// slice, and the thread whose registers are in its FPU (0 for none).
    current: u64,
    need_resched: u64,
    slice_left: u64,
    fpu_owner: u64,
    /// Non-zero while this CPU copies from user memory holding the table lock (`WindowWrite`):
    /// a fault there must not page anything in, which takes that lock.
    locked_copy: u64,
}

/// `irqs_off_call` of a stretch no system call began.
pub const NOT_A_CALL: u64 = u64::MAX;

/// Offsets for the entry assembly.
pub const KERNEL_RSP: usize = offset_of!(PerCpu, kernel_rsp);
/// See [`PerCpu::user_rsp`].
pub const USER_RSP: usize = offset_of!(PerCpu, user_rsp);
/// See [`PerCpu::irqs_off_since`].
pub const IRQS_OFF_SINCE: usize = offset_of!(PerCpu, irqs_off_since);
/// See [`PerCpu::irqs_off_longest`].
pub const IRQS_OFF_LONGEST: usize = offset_of!(PerCpu, irqs_off_longest);
/// See [`PerCpu::irqs_off_call`].
pub const IRQS_OFF_CALL: usize = offset_of!(PerCpu, irqs_off_call);
/// See [`PerCpu::irqs_off_longest_call`].
pub const IRQS_OFF_LONGEST_CALL: usize = offset_of!(PerCpu, irqs_off_longest_call);

/// The boot CPU's block.
struct Block(UnsafeCell<PerCpu>);

// SAFETY: only its CPU touches a block, with interrupts off (module invariant).
unsafe impl Sync for Block {}

static BOOT_CPU: Block = Block(UnsafeCell::new(PerCpu {
    kernel_rsp: 0,
    user_rsp: 0,
    measuring: 0,
    irqs_off_since: 0,
    irqs_off_longest: 0,
    irqs_off_call: NOT_A_CALL,
    irqs_off_longest_call: NOT_A_CALL,
    current: 0,
    need_resched: 0,
    slice_left: 0,
    fpu_owner: 0,
    locked_copy: 0,
}));

/// Points GS at the boot CPU's block (kernel mode) and the user GS at 0.
pub fn init() {
    GsBase::write(VirtAddr::from_ptr(BOOT_CPU.0.get()));
    KernelGsBase::write(VirtAddr::zero());
}

/// Reads the word at `OFFSET` of this CPU's block: one `gs`-relative load.
#[inline(always)]
fn read<const OFFSET: usize>() -> u64 {
    let value: u64;
    // SAFETY: GS points at this CPU's block in kernel mode (`init`, `swapgs` on entry); `OFFSET` is a field's
    // (the callers below pass `offset_of!`), an aligned word only this CPU touches.
    unsafe {
        asm!("mov {}, gs:[{at}]", out(reg) value, at = const OFFSET, options(nostack, readonly, preserves_flags))
    };
    value
}

/// Writes the word at `OFFSET` of this CPU's block.
#[inline(always)]
fn write<const OFFSET: usize>(value: u64) {
    // SAFETY: as in `read`, with interrupts off (module invariant).
    unsafe { asm!("mov gs:[{at}], {}", in(reg) value, at = const OFFSET, options(nostack, preserves_flags)) };
}

/// A getter and a setter for a word of the block that the scheduler reads and writes alone.
macro_rules! word {
    ($(#[$doc:meta])* $field:ident, $set:ident) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $field() -> u64 {
            read::<{ offset_of!(PerCpu, $field) }>()
        }

        #[doc = concat!("Sets [`", stringify!($field), "`].")]
        #[inline(always)]
        pub fn $set(value: u64) {
            write::<{ offset_of!(PerCpu, $field) }>(value);
        }
    };
}

word!(
    /// The thread running on this CPU.
    current,
    set_current
);
word!(
    /// Timer ticks left of the running thread's slice.
    slice_left,
    set_slice_left
);
word!(
    /// The thread whose FPU/SSE registers this CPU holds (0: none).
    fpu_owner,
    set_fpu_owner
);

word!(
    /// Non-zero while this CPU copies from user memory holding the table lock.
    locked_copy,
    set_locked_copy
);

/// Whether this CPU should reschedule at the next chance (end of a system call or tick).
#[inline(always)]
pub fn need_resched() -> bool {
    read::<{ offset_of!(PerCpu, need_resched) }>() != 0
}

/// Sets or clears [`need_resched`].
#[inline(always)]
pub fn set_need_resched(value: bool) {
    write::<{ offset_of!(PerCpu, need_resched) }>(u64::from(value));
}

/// Makes `top` the kernel stack the syscall entry switches to.
#[inline(always)]
pub fn set_kernel_stack(top: u64) {
    write::<KERNEL_RSP>(top);
}

/// Starts measuring interrupts-off stretches afresh (the longest goes back to 0).
pub fn start_measuring() {
    write::<IRQS_OFF_LONGEST>(0);
    write::<IRQS_OFF_LONGEST_CALL>(NOT_A_CALL);
    write::<IRQS_OFF_SINCE>(rdtsc());
    write::<{ offset_of!(PerCpu, measuring) }>(1);
    super::syscall::select_entry(true);
}

/// Stops measuring; the longest stretch stays readable.
pub fn stop_measuring() {
    write::<{ offset_of!(PerCpu, measuring) }>(0);
    super::syscall::select_entry(false);
}

/// Whether stretches are being measured.
fn measuring() -> bool {
    read::<{ offset_of!(PerCpu, measuring) }>() != 0
}

/// The longest interrupts-off stretch since measuring started, in TSC ticks (0: never measured),
/// and the system call that began it ([`NOT_A_CALL`]: none).
pub fn longest_irqs_off() -> (u64, u64) {
    (read::<IRQS_OFF_LONGEST>(), read::<IRQS_OFF_LONGEST_CALL>())
}

/// A stretch begins: an interrupt entered the kernel from code running with interrupts on.
pub extern "C" fn irqs_off_begin() {
    if measuring() {
        write::<IRQS_OFF_SINCE>(rdtsc());
        write::<IRQS_OFF_CALL>(NOT_A_CALL);
    }
}

/// What began the current stretch (the system call, or [`NOT_A_CALL`]), for [`irqs_off_resume`].
pub fn irqs_off_call() -> u64 {
    read::<IRQS_OFF_CALL>()
}

/// A stretch begins again after a preemption point: the same work goes on, for `call` (what
/// [`irqs_off_call`] said before the point: an interrupt handled there began a stretch of its own).
pub fn irqs_off_resume(call: u64) {
    if measuring() {
        write::<IRQS_OFF_SINCE>(rdtsc());
        write::<IRQS_OFF_CALL>(call);
    }
}

/// A stretch ends: the kernel returns to code that runs with interrupts on.
pub extern "C" fn irqs_off_end() {
    let stretch = rdtsc().wrapping_sub(read::<IRQS_OFF_SINCE>());
    if measuring() && stretch > read::<IRQS_OFF_LONGEST>() {
        write::<IRQS_OFF_LONGEST>(stretch);
        write::<IRQS_OFF_LONGEST_CALL>(read::<IRQS_OFF_CALL>());
    }
}
