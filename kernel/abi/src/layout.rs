//! The user address space layout every process gets. Programs are static, non-PIE executables
//! linked for the program range; the kernel owns the upper half.

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;
/// Lowest address a program segment may use: page 0 is never mapped, so null faults.
pub const PROGRAM_START: u64 = 0x1000;
/// End (exclusive) of the range program segments may use.
pub const PROGRAM_END: u64 = 0x0000_1000_0000_0000;
/// Start of the range `MemMap` hands out.
pub const HEAP_START: u64 = 0x0000_1000_0000_0000;
/// End (exclusive) of the `MemMap` range.
pub const HEAP_END: u64 = 0x0000_7000_0000_0000;
/// Top (exclusive) of the main thread's stack.
pub const STACK_TOP: u64 = 0x0000_7fff_fff0_0000;
/// Size of the main thread's stack. Pages are mapped on first touch, except the top one.
pub const STACK_SIZE: u64 = 1024 * 1024;
/// The page just below the stack is never mapped: touching it is a stack overflow.
pub const STACK_GUARD: u64 = STACK_TOP - STACK_SIZE - PAGE_SIZE;
/// End (exclusive) of user space: the lower canonical half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
