//! The only assembly user programs rely on: the `syscall` instruction, and a few deliberate CPU
//! events used by tests (faults of every class, SSE register patterns).

use core::arch::asm;

/// Raw system call: number and six arguments in, `(rax, rdx)` out. Prefer [`crate::sys`].
///
/// # Safety
/// The kernel checks every argument, so a call cannot harm the kernel; but calls that end or
/// reshape the caller (`Exit`, `MemUnmap` of memory still in use) can break this program.
#[inline(always)]
pub unsafe fn syscall(number: u64, args: [u64; 6]) -> (u64, u64) {
    let rax: u64;
    let rdx: u64;
    // SAFETY: `syscall` clobbers rcx and r11 (declared); the kernel preserves every other
    // register and touches user memory only as the call's documented arguments allow.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => rax,
            in("rdi") args[0],
            in("rsi") args[1],
            inlateout("rdx") args[2] => rdx,
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (rax, rdx)
}

/// A CPU fault a test can provoke on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read from address 0.
    NullRead,
    /// Write to a read-only page (the program's own code).
    WriteCode,
    /// `ud2`.
    InvalidOpcode,
    /// A privileged instruction (`hlt`) in user mode: #GP.
    Privileged,
    /// `div` by zero.
    DivideByZero,
    /// Jump into a writable, non-executable page.
    ExecuteData,
    /// Push until the stack's guard page is hit.
    StackOverflow,
    /// Read from a kernel-half address.
    KernelRead,
    /// `int3`.
    Breakpoint,
}

/// A page of data to jump into (non-executable).
static mut DATA_PAGE: [u8; 16] = [0xc3; 16]; // `ret`, if it ever ran

/// Provokes `fault`. Returns only if the CPU did not fault (a kernel bug).
#[inline(never)]
pub fn provoke(fault: Fault) {
    // SAFETY: each block executes one instruction meant to fault; the kernel ends the process.
    // None of them touches memory this program relies on afterwards (there is no afterwards).
    unsafe {
        match fault {
            Fault::NullRead => asm!("mov rax, qword ptr [0]", out("rax") _),
            Fault::WriteCode => asm!("lea rax, [rip]", "mov byte ptr [rax], 0", out("rax") _),
            Fault::InvalidOpcode => asm!("ud2"),
            Fault::Privileged => asm!("hlt"),
            Fault::DivideByZero => {
                asm!("xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx", out("rax") _, out("rdx") _, out("rcx") _)
            }
            Fault::ExecuteData => asm!("call {}", in(reg) (&raw const DATA_PAGE) as u64),
            Fault::StackOverflow => asm!("2:", "push rax", "jmp 2b", options(noreturn)),
            Fault::KernelRead => asm!("mov rax, qword ptr [{}]", in(reg) 0xffff_8000_0000_0000u64, out("rax") _),
            Fault::Breakpoint => asm!("int3"),
        }
    }
}

/// Loads xmm0..xmm15 with `seed + i` (low 64 bits) so a test can check they survive switches.
#[inline(never)]
pub fn set_xmm(seed: u64) {
    macro_rules! load {
        ($($n:literal),*) => {
            // SAFETY: writes only SSE registers, which compiled code of this soft-float target
            // never uses.
            unsafe { asm!($(concat!("movq xmm", $n, ", {v}"), "inc {v}",)* v = inout(reg) seed => _) }
        };
    }
    load!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Whether xmm0..xmm15 still hold what [`set_xmm`] put there.
#[inline(never)]
pub fn xmm_intact(seed: u64) -> bool {
    let mut values = [0u64; 16];
    macro_rules! store {
        ($($n:literal),*) => {
            // SAFETY: reads SSE registers into the local array through a pointer to it.
            unsafe { asm!($(concat!("movq {t}, xmm", $n), concat!("mov [{p} + ", $n, " * 8], {t}"),)* p = in(reg) values.as_mut_ptr(), t = out(reg) _) }
        };
    }
    store!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    values.iter().enumerate().all(|(i, &v)| v == seed.wrapping_add(i as u64))
}

/// Raw IPC system call: number and six arguments in; `rax, rdi, rsi, rdx, r10, r8, r9` out (a
/// delivered message comes back in those registers). Prefer [`crate::ipc`].
///
/// # Safety
/// As for [`syscall`].
#[inline(always)]
pub unsafe fn syscall_ipc(number: u64, args: [u64; 6]) -> [u64; 7] {
    let (rax, rdi, rsi, rdx, r10, r8, r9);
    // SAFETY: as in `syscall`; the IPC calls also write rdi, rsi, r10, r8 and r9 (declared).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => rax,
            inlateout("rdi") args[0] => rdi,
            inlateout("rsi") args[1] => rsi,
            inlateout("rdx") args[2] => rdx,
            inlateout("r10") args[3] => r10,
            inlateout("r8") args[4] => r8,
            inlateout("r9") args[5] => r9,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    [rax, rdi, rsi, rdx, r10, r8, r9]
}
