//! Memory accesses that may fault and recover: the kernel's exception-table mechanism.
//!
//! Each probe is a tiny assembly routine whose one memory instruction is listed in a recovery
//! table. If that instruction faults (#PF or #GP), the trap dispatcher moves RIP to the routine's
//! recovery path, which reports the fault instead of the kernel dying. This is how the kernel
//! tests its own page tables today and how it will copy from user memory later. Nothing else may
//! fault in kernel mode.

use core::arch::global_asm;

use vessel_kcore::report::TrapFrame;

global_asm!(
    r#"
    .section .text.vessel_probe, "ax"
    // u64 read: rdi = address. Returns rax = value, rdx = 0; on fault rax = fault address, rdx = 1.
    .global vessel_probe_read
vessel_probe_read:
    xor edx, edx
    .global vessel_probe_read_insn
vessel_probe_read_insn:
    mov rax, qword ptr [rdi]
    ret
    .global vessel_probe_read_fixup
vessel_probe_read_fixup:
    mov edx, 1
    ret

    // u64 write: rdi = address, rsi = value. Returns rax = 0, rdx = 0; on fault rax = address, rdx = 1.
    .global vessel_probe_write
vessel_probe_write:
    xor edx, edx
    xor eax, eax
    .global vessel_probe_write_insn
vessel_probe_write_insn:
    mov qword ptr [rdi], rsi
    ret
    .global vessel_probe_write_fixup
vessel_probe_write_fixup:
    mov edx, 1
    ret

    // memcpy that may fault: rdi = dst, rsi = src, rdx = len. Returns rax = 0, rdx = 0; on a
    // fault rax = fault address, rdx = 1. Used for every copy to or from user memory.
    // Eight bytes a step, then the rest one at a time: an emulator runs each step of a `rep`
    // as an instruction, so a byte-wise copy of a page costs 4,096 of them and this one 512.
    .global vessel_user_copy
vessel_user_copy:
    mov rcx, rdx
    shr rcx, 3
    and edx, 7
    xor eax, eax
    .global vessel_user_copy_insn
vessel_user_copy_insn:
    rep movsq
    mov rcx, rdx
    xor edx, edx
    .global vessel_user_copy_tail_insn
vessel_user_copy_tail_insn:
    rep movsb
    ret
    .global vessel_user_copy_fixup
vessel_user_copy_fixup:
    mov edx, 1
    ret
    "#
);

#[repr(C)]
struct ProbeResult {
    value: u64,
    faulted: u64,
}

unsafe extern "C" {
    fn vessel_probe_read(addr: u64) -> ProbeResult;
    fn vessel_probe_write(addr: u64, value: u64) -> ProbeResult;
    static vessel_probe_read_insn: u8;
    static vessel_probe_read_fixup: u8;
    static vessel_probe_write_insn: u8;
    static vessel_probe_write_fixup: u8;
    fn vessel_user_copy(dst: u64, src: u64, len: u64) -> ProbeResult;
    static vessel_user_copy_insn: u8;
    static vessel_user_copy_tail_insn: u8;
    static vessel_user_copy_fixup: u8;
}

/// A recovered fault: what the CPU reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Exception vector (14 page fault, 13 general protection).
    pub vector: u64,
    /// Faulting address (CR2 for page faults, the probed address for #GP).
    pub addr: u64,
    /// CPU error code.
    pub error_code: u64,
}

/// Details of the last recovered fault, written by the trap handler with interrupts off.
static LAST_FAULT: spin::Mutex<Option<Fault>> = spin::Mutex::new(None);

fn fault_from(result: ProbeResult) -> Result<u64, Fault> {
    if result.faulted == 0 {
        return Ok(result.value);
    }
    let recorded = LAST_FAULT.lock().take();
    Err(recorded.unwrap_or(Fault { vector: 0, addr: result.value, error_code: 0 }))
}

/// Reads a u64 at any kernel-visible address; a fault comes back as an error.
pub fn read_u64(addr: u64) -> Result<u64, Fault> {
    // SAFETY: the routine touches only `addr`, and any fault on it is recovered through the table.
    fault_from(unsafe { vessel_probe_read(addr) })
}

/// Writes a u64 at any kernel-visible address; a fault comes back as an error.
///
/// The caller is responsible for the write not breaking Rust's aliasing rules (tests use it on
/// pages no Rust reference points at).
pub fn write_u64(addr: u64, value: u64) -> Result<(), Fault> {
    // SAFETY: as for `read_u64`; the memory written is the caller's concern (see above).
    fault_from(unsafe { vessel_probe_write(addr, value) }).map(|_| ())
}

/// Copies `len` bytes from `src` to `dst` where either side may be unmapped or read-only user
/// memory; a fault comes back as an error and the copy stops there.
///
/// # Safety
/// The kernel side of the copy must be valid for `len` bytes (readable source or writable
/// destination that no Rust reference aliases); only the user side may fault.
pub unsafe fn copy(dst: u64, src: u64, len: u64) -> Result<(), Fault> {
    // SAFETY: the caller vouches for the kernel side; faults on the user side are recovered.
    fault_from(unsafe { vessel_user_copy(dst, src, len) }).map(|_| ())
}

/// Called by the trap dispatcher for every kernel exception: if RIP is a probe instruction and the
/// fault is one a probe may take, redirect to its recovery path and return true.
pub fn recover(frame: &mut TrapFrame, cr2: u64) -> bool {
    if !matches!(frame.vector, 13 | 14) {
        return false;
    }
    let table = [
        ((&raw const vessel_probe_read_insn) as u64, (&raw const vessel_probe_read_fixup) as u64),
        ((&raw const vessel_probe_write_insn) as u64, (&raw const vessel_probe_write_fixup) as u64),
        ((&raw const vessel_user_copy_insn) as u64, (&raw const vessel_user_copy_fixup) as u64),
        ((&raw const vessel_user_copy_tail_insn) as u64, (&raw const vessel_user_copy_fixup) as u64),
    ];
    let Some(&(_, fixup)) = table.iter().find(|(insn, _)| *insn == frame.rip) else {
        return false;
    };
    let addr = if frame.vector == 14 { cr2 } else { frame.rdi };
    // The trap runs with interrupts off on the probing CPU, so this lock is never contended by
    // the code it interrupted (which is inside the probe, holding no lock).
    *LAST_FAULT.lock() = Some(Fault { vector: frame.vector, addr, error_code: frame.error_code });
    frame.rax = addr;
    frame.rip = fixup;
    true
}
