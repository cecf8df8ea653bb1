//! Host side of Vessel's in-emulator tests.
//!
//! [`qemu`] starts QEMU under a hard timeout (killed on drop, whatever happens) and collects the
//! serial output with the time each line arrived; [`verdict`] reads that output the way the kernel
//! test suite writes it (`test <name> ... ok|FAILED`, then `N passed, M failed`) and decides
//! whether the run passed. Both are plain host code with unit tests of their own.
#![forbid(unsafe_code)]

pub mod fsck;
pub mod interactive;
pub mod monitor;
pub mod ppm;
pub mod qemu;
pub mod verdict;
