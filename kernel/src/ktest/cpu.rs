//! CPU tests: traps and recovery, the timer, FPU/SSE state, entropy, ACPI discovery.

use core::arch::asm;
use core::sync::atomic::Ordering;

use x86_64::registers::model_specific::Msr;

use super::{Test, TestResult};
use crate::arch::x86_64::fpu::FpuState;
use crate::arch::x86_64::{probe, rdtsc, trap};
use crate::{check, console, entropy, platform, time};

pub static TESTS: &[Test] = &[
    Test { name: "trap::null_read_page_fault_recovered", run: null_read_page_fault_recovered },
    Test { name: "trap::non_canonical_gp_recovered", run: non_canonical_gp_recovered },
    Test { name: "trap::breakpoint_resumes", run: breakpoint_resumes },
    Test { name: "timer::ticks_advance", run: ticks_advance },
    Test { name: "fpu::sse_preserved_across_interrupts", run: sse_preserved_across_interrupts },
    Test { name: "fpu::fxsave_restore_round_trip", run: fxsave_restore_round_trip },
    Test { name: "entropy::rdrand_distinct", run: rdrand_distinct },
    Test { name: "entropy::fallback_distinct", run: fallback_distinct },
    Test { name: "acpi::madt_cpus_and_apics", run: madt_cpus_and_apics },
    Test { name: "console::draws_glyphs_and_replays_boot_log", run: console_draws_glyphs },
];

fn null_read_page_fault_recovered() -> TestResult {
    let fault = probe::read_u64(0).err().ok_or("reading address 0 did not fault")?;
    check!(fault.vector == 14 && fault.addr == 0, "wrong fault {fault:?}");
    check!(fault.error_code & 0b111 == 0, "expected kernel read of a not-present page: {fault:?}");
    // The kernel still works after the recovery: the same probe on a good address succeeds.
    let local = 0x1234_u64;
    check!(probe::read_u64((&raw const local) as u64) == Ok(0x1234), "probe of a stack value failed");
    Ok(())
}

fn non_canonical_gp_recovered() -> TestResult {
    let addr = 0x8000_0000_0000_0000_u64;
    let fault = probe::read_u64(addr).err().ok_or("non-canonical read did not fault")?;
    check!(fault.vector == 13 && fault.addr == addr, "wrong fault {fault:?}");
    Ok(())
}

fn breakpoint_resumes() -> TestResult {
    let before = trap::BREAKPOINTS.load(Ordering::Relaxed);
    // SAFETY: int3 traps to the breakpoint handler, which returns to the next instruction.
    unsafe { asm!("int3") };
    check!(trap::BREAKPOINTS.load(Ordering::Relaxed) == before + 1, "breakpoint not counted");
    Ok(())
}

/// Waits until the tick count has advanced by `n`, or about two seconds of TSC time have passed
/// (a bound against hangs, not a timing assertion).
fn wait_ticks(n: u64) -> bool {
    let start = time::ticks();
    let deadline = rdtsc() + time::tsc_khz() * 2000;
    while time::ticks() < start + n {
        if rdtsc() > deadline {
            return false;
        }
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    true
}

fn ticks_advance() -> TestResult {
    check!(x86_64::instructions::interrupts::are_enabled(), "interrupts are off");
    let start = time::ticks();
    check!(wait_ticks(3), "ticks stuck at {} (started at {start})", time::ticks());
    Ok(())
}

fn sse_preserved_across_interrupts() -> TestResult {
    let patterns: [u64; 4] =
        [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 0x5555_aaaa_5555_aaaa, 0x0f0f_f0f0_1234_8765];
    let start = time::ticks();
    let (mut a, mut b, mut c, mut d): (u64, u64, u64, u64);
    // SAFETY: loads test patterns into xmm0/xmm7/xmm8/xmm15, halts until the timer has
    // interrupted at least twice, then reads them back. The kernel is soft-float, so no compiled
    // code owns these registers.
    unsafe {
        asm!(
            "movq xmm0, {a}",
            "movq xmm7, {b}",
            "movq xmm8, {c}",
            "movq xmm15, {d}",
            "mov {n}, 3",
            "2:",
            "sti",
            "hlt",
            "dec {n}",
            "jnz 2b",
            "movq {a}, xmm0",
            "movq {b}, xmm7",
            "movq {c}, xmm8",
            "movq {d}, xmm15",
            a = inout(reg) patterns[0] => a,
            b = inout(reg) patterns[1] => b,
            c = inout(reg) patterns[2] => c,
            d = inout(reg) patterns[3] => d,
            n = out(reg) _,
        );
    }
    check!(time::ticks() > start, "no timer interrupt happened during the test");
    check!([a, b, c, d] == patterns, "xmm registers changed: {:x?}", [a, b, c, d]);
    Ok(())
}

fn fxsave_restore_round_trip() -> TestResult {
    let mut saved = FpuState::new();
    let mut clobbered = FpuState::new();
    let value = 0xdead_beef_cafe_f00d_u64;
    // SAFETY: writes xmm3 only; no compiled kernel code uses SSE registers.
    unsafe { asm!("movq xmm3, {}", in(reg) value) };
    saved.save();
    check!(saved.xmm_low(3) == Some(value), "FXSAVE image holds {:x?}", saved.xmm_low(3));
    // SAFETY: as above.
    unsafe { asm!("pxor xmm3, xmm3") };
    clobbered.save();
    check!(clobbered.xmm_low(3) == Some(0), "xmm3 not cleared");
    saved.restore();
    let back: u64;
    // SAFETY: reads xmm3 into a general register.
    unsafe { asm!("movq {}, xmm3", out(reg) back) };
    check!(back == value, "FXRSTOR gave {back:#x}");
    Ok(())
}

fn all_distinct(values: &mut [u64]) -> bool {
    values.sort_unstable();
    values.windows(2).all(|w| w[0] != w[1])
}

fn rdrand_distinct() -> TestResult {
    check!(entropy::sources().rdrand, "RDRAND absent (the test machine is set up with it)");
    let mut values = [0u64; 64];
    for v in &mut values {
        *v = entropy::rdrand().ok_or("RDRAND returned no value")?;
    }
    check!(all_distinct(&mut values), "RDRAND repeated a value in 64 draws");
    Ok(())
}

fn fallback_distinct() -> TestResult {
    let mut values = [0u64; 256];
    for v in &mut values {
        *v = entropy::fallback();
    }
    check!(all_distinct(&mut values), "fallback generator repeated a value in 256 draws");
    let ones: u32 = values.iter().map(|v| v.count_ones()).sum();
    // 256 * 64 bits: a fair source sets about half; a stuck or biased one is far off.
    check!((7000..9400).contains(&ones), "fallback bits look biased: {ones} ones of 16384");
    Ok(())
}

fn madt_cpus_and_apics() -> TestResult {
    let p = platform::get();
    check!(p.cpus >= 1, "MADT lists no enabled CPU");
    check!(p.io_apics >= 1 && p.io_apic_addr.is_some(), "no I/O APIC in the MADT: {p:?}");
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; reading it has no side effect.
    let msr = unsafe { Msr::new(0x1b).read() } & 0x000f_ffff_ffff_f000;
    check!(p.local_apic_addr == msr, "MADT local APIC {:#x} != MSR {msr:#x}", p.local_apic_addr);
    Ok(())
}

fn console_draws_glyphs() -> TestResult {
    // The banner was printed before the console existed; the replayed backlog drew it in row 0.
    let banner_lit = console::lit_bytes_in_cell(0, 15).ok_or("no framebuffer console")?;
    check!(banner_lit > 0, "row 0 is blank: the early boot log was not replayed");
    console::print(format_args!("\n"));
    let (row, column) = console::cursor().ok_or("no framebuffer console")?;
    check!(console::lit_bytes_in_cell(row, column) == Some(0), "fresh cell is not blank");
    console::print(format_args!("#"));
    let lit = console::lit_bytes_in_cell(row, column).unwrap_or(0);
    console::print(format_args!("\n"));
    check!(lit > 20, "drawing '#' lit only {lit} bytes");
    Ok(())
}
