//! FPU and SSE: turned on at boot (BIOS leaves CR4.OSFXSR clear, so the first SSE instruction of a
//! user program would fault), [`FpuState`], the per-thread save area, and the CR0.TS switch the
//! scheduler uses to move FPU state lazily. The kernel itself is built soft-float and never touches these registers, so their
//! contents belong to whichever thread runs.

use core::arch::asm;

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

use super::cpuid;

/// Enables x87 and SSE for the whole CPU.
pub fn init() {
    // SAFETY: setting MP and clearing EM/TS is the documented way to enable the FPU; OSFXSR and
    // OSXMMEXCPT enable SSE and its exceptions. The kernel's own code never uses these registers.
    unsafe {
        Cr0::update(|cr0| {
            cr0.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            cr0.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|cr4| cr4.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
        asm!("fninit", options(nomem, nostack));
    }
}

/// Sets or clears CR0.TS: while set, the first FPU/SSE instruction traps with #NM, which is how
/// the scheduler switches FPU state lazily (only for threads that use it).
pub fn set_trap_on_use(trap: bool) {
    let ts = Cr0::read().contains(Cr0Flags::TASK_SWITCHED);
    if ts == trap {
        return;
    }
    // SAFETY: TS only makes FPU/SSE instructions trap (#NM); the kernel itself never executes
    // them outside the #NM handler, which clears TS first.
    unsafe {
        if trap {
            Cr0::update(|cr0| cr0.insert(Cr0Flags::TASK_SWITCHED));
        } else {
            asm!("clts", options(nomem, nostack, preserves_flags));
        }
    }
}

/// The CPU features worth a line in the boot log.
pub fn features() -> &'static str {
    let (_, _, ecx, _) = cpuid(1, 0);
    if ecx & (1 << 26) != 0 { "XSAVE available (FXSAVE used)" } else { "FXSAVE" }
}

/// x87/SSE register state as saved by FXSAVE (512 bytes, 16-byte aligned).
#[repr(C, align(16))]
pub struct FpuState([u8; 512]);

impl FpuState {
    /// A state equal to what `fninit` plus default MXCSR gives.
    pub fn new() -> Self {
        let mut state = FpuState([0; 512]);
        // FCW = 0x037f (all x87 exceptions masked), MXCSR = 0x1f80 (all SSE exceptions masked).
        state.0[0..2].copy_from_slice(&0x037f_u16.to_le_bytes());
        state.0[24..28].copy_from_slice(&0x1f80_u32.to_le_bytes());
        state
    }

    /// Saves this CPU's FPU/SSE registers into `self`.
    pub fn save(&mut self) {
        // SAFETY: `self` is a valid, 16-byte aligned 512-byte buffer, as FXSAVE requires.
        unsafe { asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack, preserves_flags)) };
    }

    /// Loads this CPU's FPU/SSE registers from `self`.
    pub fn restore(&self) {
        // SAFETY: the buffer is aligned and was produced by `new` or `save`, so its reserved
        // MXCSR bits are clear and FXRSTOR cannot fault.
        unsafe { asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, preserves_flags)) };
    }

    /// The low 64 bits of XMM register `n` in this saved state.
    pub fn xmm_low(&self, n: usize) -> Option<u64> {
        let offset = 160 + 16 * n;
        let bytes = self.0.get(offset..offset + 8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}
