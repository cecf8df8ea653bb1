//! The user address space layout every process gets. Programs are static, non-PIE executables
//! linked for the program range; the kernel owns the upper half.
//!
//! The main stack sits just below the program range, in the same first gigabyte: a process's
//! code and stack then share their upper page tables (one level-3 and one level-2 table), so an
//! address-space switch makes the CPU (or an emulator without PCID, which refills the TLB after
//! every CR3 write) walk two tables fewer than with the stack at the top of user space.

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// Lowest address a program segment may use (the default link address of static executables).
pub const PROGRAM_START: u64 = 0x20_0000;
/// End (exclusive) of the range program segments may use.
pub const PROGRAM_END: u64 = 0x0000_1000_0000_0000;
/// Start of the range `MemMap` hands out.
pub const HEAP_START: u64 = 0x0000_1000_0000_0000;
/// End (exclusive) of the `MemMap` range.
pub const HEAP_END: u64 = 0x0000_7000_0000_0000;
/// Top (exclusive) of the main thread's stack. The page between it and [`PROGRAM_START`] is never
/// mapped, so running off the top of the stack faults too.
pub const STACK_TOP: u64 = PROGRAM_START - PAGE_SIZE;
/// Size of the main thread's stack. Pages are mapped on first touch, except the top one.
pub const STACK_SIZE: u64 = 1024 * 1024;
/// The page just below the stack is never mapped: touching it is a stack overflow. Everything below
/// it (page 0 included) is never mapped either, so null dereferences fault.
pub const STACK_GUARD: u64 = STACK_TOP - STACK_SIZE - PAGE_SIZE;
/// End (exclusive) of user space: the lower canonical half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
