//! The in-kernel test suite (`--features ktest`): runs every registered test after boot, prints
//! `test <name> ... ok|FAILED` lines and a closing `N passed, M failed`, then leaves QEMU through
//! `isa-debug-exit` with the verdict. The host harness (`tests/harness`) reads exactly this.
//!
//! Boot arguments can inject a failure (`inject=fail`), a panic (`inject=panic`), a hang
//! (`inject=hang`) or a triple fault (`inject=triple-fault`), so the host side can prove it
//! notices each of them.

mod cpu;
mod memory;

use alloc::string::String;

use vessel_kcore::bootargs::BootArgs;

use crate::arch::x86_64::{QemuExit, halt_forever, qemu_exit};
use crate::kprintln;

/// A test: `Ok` or a message saying what went wrong.
pub type TestResult = Result<(), String>;

/// One registered test.
pub struct Test {
    /// `module::what_it_checks`.
    pub name: &'static str,
    /// The body.
    pub run: fn() -> TestResult,
}

/// Fails the test with a formatted message unless the condition holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(alloc::format!("{}: {}", stringify!($cond), format_args!($($msg)+)));
        }
    };
}

fn injected_failure() -> TestResult {
    Err(String::from("deliberate failure requested by boot argument inject=fail"))
}

fn injected_panic() -> TestResult {
    panic!("deliberate panic requested by boot argument inject=panic");
}

fn injected_hang() -> TestResult {
    // Interrupts stay on, so only the host's timeout can end this.
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

fn injected_triple_fault() -> TestResult {
    let empty = x86_64::structures::DescriptorTablePointer { limit: 0, base: x86_64::VirtAddr::zero() };
    // SAFETY: deliberately not sound: with an empty IDT the breakpoint cannot be delivered, the
    // resulting #GP and #DF cannot either, and the CPU resets (QEMU exits under -no-reboot).
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("int3");
    }
    Err(String::from("survived a triple fault"))
}

/// Runs the suite and exits QEMU; never returns.
pub fn run(args: &BootArgs<'_>) -> ! {
    let mut tests: alloc::vec::Vec<&Test> =
        memory::TESTS.iter().chain(cpu::TESTS.iter()).chain(crate::task::QUEUE_TESTS.iter()).collect();
    let injected_fail = Test { name: "harness::injected_failure", run: injected_failure };
    let injected_panic = Test { name: "harness::injected_panic", run: injected_panic };
    let injected_hang = Test { name: "harness::injected_hang", run: injected_hang };
    let injected_triple = Test { name: "harness::injected_triple_fault", run: injected_triple_fault };
    match args.get("inject") {
        Some("fail") => tests.push(&injected_fail),
        Some("panic") => tests.push(&injected_panic),
        Some("hang") => tests.push(&injected_hang),
        Some("triple-fault") => tests.push(&injected_triple),
        _ => {}
    }
    kprintln!("running {} kernel tests", tests.len());
    let (mut passed, mut failed) = (0, 0);
    for test in tests {
        match (test.run)() {
            Ok(()) => {
                passed += 1;
                kprintln!("test {} ... ok", test.name);
            }
            Err(why) => {
                failed += 1;
                kprintln!("test {} ... FAILED\n    {why}", test.name);
            }
        }
    }
    kprintln!("{passed} passed, {failed} failed");
    qemu_exit(if failed == 0 { QemuExit::Success } else { QemuExit::Failure });
    halt_forever()
}
