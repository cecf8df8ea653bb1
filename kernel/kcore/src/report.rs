//! Formatting of what the kernel reports: byte sizes, time since boot, and CPU trap frames.
//!
//! [`TrapFrame`] is the single register layout saved by every interrupt and exception entry stub;
//! its field order is an ABI with the assembly in `kernel/src/arch/x86_64/trap.rs` (checked there
//! by a size assertion) and must only change together with it.

use core::fmt;

/// A byte count printed with a binary unit: `512 B`, `12 KiB`, `127.6 MiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        let mut scaled = self.0;
        while scaled >= 1024 * 10 && unit + 1 < UNITS.len() {
            scaled /= 1024;
            unit += 1;
        }
        if unit == 0 && self.0 >= 1024 {
            // Between 1 KiB and 10 KiB: one decimal place says more than "1 KiB".
            let tenths = self.0 * 10 / 1024;
            return write!(f, "{}.{} KiB", tenths / 10, tenths % 10);
        }
        write!(f, "{} {}", scaled, UNITS[unit])
    }
}

/// Nanoseconds since boot printed as seconds with microseconds, `[    1.234567]`, like a
/// Linux console, so logs line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uptime(pub u64);

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0 / 1_000;
        write!(f, "[{:5}.{:06}]", micros / 1_000_000, micros % 1_000_000)
    }
}

/// Registers saved on every trap, in the order the entry stub pushes them (lowest address first).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // register names are their own documentation
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Interrupt vector, pushed by the stub.
    pub vector: u64,
    /// CPU error code, or 0 for vectors without one (the stub pushes a 0 for those).
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The name of a CPU exception vector (0-31), or a generic name for other vectors.
pub fn vector_name(vector: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "divide error",
        "debug",
        "non-maskable interrupt",
        "breakpoint",
        "overflow",
        "bound range exceeded",
        "invalid opcode",
        "device not available",
        "double fault",
        "coprocessor segment overrun",
        "invalid TSS",
        "segment not present",
        "stack-segment fault",
        "general protection fault",
        "page fault",
        "reserved (15)",
        "x87 floating-point error",
        "alignment check",
        "machine check",
        "SIMD floating-point error",
        "virtualization exception",
        "control protection exception",
        "reserved (22)",
        "reserved (23)",
        "reserved (24)",
        "reserved (25)",
        "reserved (26)",
        "reserved (27)",
        "hypervisor injection",
        "VMM communication",
        "security exception",
        "reserved (31)",
    ];
    usize::try_from(vector).ok().and_then(|v| NAMES.get(v)).copied().unwrap_or("external interrupt")
}

/// Whether the CPU pushes an error code for this exception vector.
pub fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Decoded page-fault error code bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFaultCode(pub u64);

impl fmt::Display for PageFaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let what = if c & 1 != 0 { "protection violation" } else { "page not present" };
        let access = if c & 16 != 0 {
            "instruction fetch"
        } else if c & 2 != 0 {
            "write"
        } else {
            "read"
        };
        let mode = if c & 4 != 0 { "user" } else { "kernel" };
        write!(f, "{what}, {access}, {mode} mode")?;
        if c & 8 != 0 {
            write!(f, ", reserved bit set")?;
        }
        Ok(())
    }
}

/// A full fault report: what happened, where, and every register.
pub struct FaultReport<'a> {
    /// The saved registers.
    pub frame: &'a TrapFrame,
    /// CR2 (the faulting address), meaningful for page faults.
    pub cr2: u64,
}

impl fmt::Display for FaultReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.frame;
        write!(f, "{} (vector {}) error code {:#x}", vector_name(t.vector), t.vector, t.error_code)?;
        if t.vector == 14 {
            write!(f, " [{}] at address {:#018x}", PageFaultCode(t.error_code), self.cr2)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  rip {:#018x}  cs {:#06x}  rflags {:#010x}  rsp {:#018x}  ss {:#06x}",
            t.rip, t.cs, t.rflags, t.rsp, t.ss
        )?;
        writeln!(f, "  rax {:#018x}  rbx {:#018x}  rcx {:#018x}  rdx {:#018x}", t.rax, t.rbx, t.rcx, t.rdx)?;
        writeln!(f, "  rsi {:#018x}  rdi {:#018x}  rbp {:#018x}  r8  {:#018x}", t.rsi, t.rdi, t.rbp, t.r8)?;
        writeln!(f, "  r9  {:#018x}  r10 {:#018x}  r11 {:#018x}  r12 {:#018x}", t.r9, t.r10, t.r11, t.r12)?;
        write!(f, "  r13 {:#018x}  r14 {:#018x}  r15 {:#018x}", t.r13, t.r14, t.r15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(1023).to_string(), "1023 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(64 * 1024).to_string(), "64 KiB");
        assert_eq!(Bytes(127 * 1024 * 1024).to_string(), "127 MiB");
        assert_eq!(Bytes(24 << 30).to_string(), "24 GiB");
        assert_eq!(Bytes(u64::MAX).to_string(), "16777215 TiB");
    }

    #[test]
    fn uptime() {
        assert_eq!(Uptime(0).to_string(), "[    0.000000]");
        assert_eq!(Uptime(1_234_567_890).to_string(), "[    1.234567]");
        assert_eq!(Uptime(123_456_000_000_000).to_string(), "[123456.000000]");
    }

    #[test]
    fn vector_names_and_error_codes() {
        assert_eq!(vector_name(14), "page fault");
        assert_eq!(vector_name(0), "divide error");
        assert_eq!(vector_name(32), "external interrupt");
        assert_eq!(vector_name(u64::MAX), "external interrupt");
        assert!(has_error_code(14) && has_error_code(8) && has_error_code(13));
        assert!(!has_error_code(0) && !has_error_code(6) && !has_error_code(32));
    }

    #[test]
    fn page_fault_report_names_the_access() {
        let frame = TrapFrame { vector: 14, error_code: 0b0110, rip: 0x1234, ..TrapFrame::default() };
        let text = FaultReport { frame: &frame, cr2: 0xdead_b000 }.to_string();
        assert!(text.starts_with("page fault (vector 14) error code 0x6 [page not present, write, user mode] at address 0x00000000deadb000"), "{text}");
        assert!(text.contains("rip 0x0000000000001234"), "{text}");
        assert_eq!(text.lines().count(), 6, "{text}");
        let fetch = PageFaultCode(0b10001).to_string();
        assert_eq!(fetch, "protection violation, instruction fetch, kernel mode");
    }

    #[test]
    fn trap_frame_layout_is_22_words() {
        assert_eq!(core::mem::size_of::<TrapFrame>(), 22 * 8);
    }
}
