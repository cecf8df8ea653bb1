//! The system-call entry and exit (`kernel/src/arch/x86_64/syscall.rs`): the lean path saves only
//! the argument and result registers and returns with `sysretq`, so these tests check that every
//! register the ABI promises comes back as it went in (all but `rax`, `rdx`, `rcx` and `r11`,
//! and the carry flag through `r11`), on a call that returns at once and on calls that switch to
//! other threads before they return.

use alloc::format;
use alloc::vec::Vec;

use vessel_rt::abi::{Error, MEASURE_IRQS_OFF, STOP_IRQS_OFF, Syscall};
use vessel_rt::process;
use vessel_rt::sys;

use crate::{Test, TestResult};

pub(crate) const TESTS: &[Test] = &[
    ("entry::registers_survive_calls_and_switches", registers_survive_calls_and_switches),
    ("entry::interrupts_off_stretches_are_measured_on_request", interrupts_off_stretches_are_measured_on_request),
];

/// Values no call computes by chance.
const K: [u64; 11] = [
    0x1111_2222_3333_4401,
    0x5555_6666_7777_8802,
    0x0123_4567_89ab_cd03,
    0x0fed_cba9_8765_4304,
    0x7777_0000_7777_0005,
    0x1357_9bdf_2468_ac06,
    0x2222_3333_4444_5507,
    0x6666_7777_8888_9908,
    0x0aaa_bbbb_cccc_dd09,
    0x0eee_ffff_0000_110a,
    0x3333_4444_5555_660b,
];

/// Makes system call `number` with `rdi = arg` and every other register it does not own set to a
/// known value and the carry flag set; returns a bit mask of what came back wrong (0: nothing).
/// Bit 0 the carry flag, 1 rbx, 2 rbp, 3 rsi, 4 r8, 5 r9, 6 r10, 7 r12, 8 r13, 9 r14, 10 r15,
/// 11 rdi.
fn clobbered_by(number: u64, arg: u64) -> u64 {
    let (mut rsi, mut r8, mut r9, mut r10) = (K[2], K[3], K[4], K[5]);
    let (mut r12, mut r13, mut r14, mut r15) = (K[6], K[7], K[8], K[9]);
    let mut rdi = arg;
    let flags: u64;
    // SAFETY: the calls used here (ProcessId, Yield, Sleep) read only `rdi` and write only the
    // registers declared; rbx and rbp, which inline assembly may not name, are saved on the stack
    // and restored before the block ends.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "mov rbx, {k0}",
            "mov rbp, {k1}",
            "stc",
            "syscall",
            "setc cl",
            "movzx ecx, cl",
            "xor ecx, 1",
            "mov r11, {k0}",
            "cmp rbx, r11",
            "je 2f",
            "or ecx, 2",
            "2:",
            "mov r11, {k1}",
            "cmp rbp, r11",
            "je 3f",
            "or ecx, 4",
            "3:",
            "pop rbp",
            "pop rbx",
            k0 = const K[0],
            k1 = const K[1],
            inlateout("rax") number => _,
            inout("rdi") rdi,
            inout("rsi") rsi,
            lateout("rdx") _,
            inout("r8") r8,
            inout("r9") r9,
            inout("r10") r10,
            inout("r12") r12,
            inout("r13") r13,
            inout("r14") r14,
            inout("r15") r15,
            out("rcx") flags,
            out("r11") _,
        );
    }
    let kept = [(rsi, K[2]), (r8, K[3]), (r9, K[4]), (r10, K[5]), (r12, K[6]), (r13, K[7]), (r14, K[8]), (r15, K[9])];
    let mut wrong = flags;
    for (bit, (got, want)) in kept.iter().enumerate() {
        if got != want {
            wrong |= 1 << (bit + 3);
        }
    }
    if rdi != arg {
        wrong |= 1 << 11;
    }
    wrong
}

/// ProcessId returns at once; Yield switches to a busy process of the same priority and back;
/// Sleep blocks, the idle thread halts with interrupts on, and the timer's switch brings the
/// thread back through the same exit.
fn registers_survive_calls_and_switches() -> TestResult {
    let spinner = process::spawn("bin/probe", &["spin"]).map_err(|e| format!("spawn spinner: {e}"))?;
    let mut failures = Vec::new();
    for (name, number, arg) in [
        ("ProcessId", Syscall::ProcessId as u64, K[10]),
        ("Yield", Syscall::Yield as u64, K[10]),
        ("Sleep", Syscall::Sleep as u64, 1_000_000),
    ] {
        if let Some(wrong) = (0..20).map(|_| clobbered_by(number, arg)).find(|&wrong| wrong != 0) {
            failures.push(format!("{name} (mask {wrong:#x})"));
        }
    }
    let _ = process::kill(spinner);
    let _ = process::wait(spinner);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "registers changed across {} (bit 0 carry, 1 rbx, 2 rbp, 3 rsi, 4 r8, 5 r9, 6 r10, 7-10 r12-r15, 11 rdi)",
            failures.join(", ")
        ))
    }
}

/// `KernelStats` with `MEASURE_IRQS_OFF` starts a measurement that sees the stretches of the
/// calls that follow (a sleep passes through the idle halt too) and starts afresh each time (a
/// spawn's long stretch does not carry over into a measurement of cheap calls); `STOP_IRQS_OFF`
/// freezes the figure; other flags are refused.
fn interrupts_off_stretches_are_measured_on_request() -> TestResult {
    let e = |what: &'static str| move |err: Error| format!("{what}: {err}");
    for flags in [MEASURE_IRQS_OFF | STOP_IRQS_OFF, 4, u64::MAX] {
        let refused = sys::kernel_stats_and(flags).err();
        if refused != Some(Error::InvalidArgument) {
            return Err(format!("KernelStats flags {flags:#x}: {refused:?}, expected InvalidArgument"));
        }
    }
    // A first measurement with a long stretch in it (starting a process: loading its image),
    // then one of cheap calls only: the second must start afresh, not carry the first's figure.
    sys::kernel_stats_and(MEASURE_IRQS_OFF).map_err(e("measure"))?;
    let child = vessel_rt::process::spawn("bin/true", &[]).map_err(|err| format!("spawn: {err}"))?;
    let _ = vessel_rt::process::wait(child);
    let long = sys::kernel_stats_and(STOP_IRQS_OFF).map_err(e("stop"))?.irqs_off_longest_ns;
    sys::kernel_stats_and(MEASURE_IRQS_OFF).map_err(e("measure"))?;
    for _ in 0..10 {
        sys::yield_now();
        let _ = sys::process_id();
    }
    vessel_rt::time::sleep_ms(1);
    let stopped = sys::kernel_stats_and(STOP_IRQS_OFF).map_err(e("stop"))?;
    if stopped.irqs_off_longest_ns == 0 {
        return Err("ten yields and a sleep measured no interrupts-off stretch".into());
    }
    if stopped.irqs_off_longest_ns >= long {
        return Err(format!(
            "cheap calls measured {} ns after a spawn measured {long} ns: the measurement did not start afresh",
            stopped.irqs_off_longest_ns
        ));
    }
    // The stopping call's own stretch may still count; after it nothing changes.
    let settled = sys::kernel_stats().map_err(e("stats"))?.irqs_off_longest_ns;
    for _ in 0..10 {
        sys::yield_now();
    }
    let later = sys::kernel_stats().map_err(e("stats"))?.irqs_off_longest_ns;
    if later != settled {
        return Err(format!("the longest stretch moved from {settled} to {later} ns after measuring stopped"));
    }
    Ok(())
}
