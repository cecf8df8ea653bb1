//! The `vfs` server's logic, kept apart from the program so it builds and is tested on the host:
//! the file systems it serves ([`memfs`], [`fat`], [`bootfs`]) behind one [`fs::FileSystem`] trait, and
//! [`Vfs`], the protocol's rules: per-container namespaces, handles whose rights only shrink,
//! directory handles that are true roots, mounts and virtual storage files. The program
//! (`userland/vfs`) adds what needs the kernel: the endpoint, the `device` server's block
//! devices and the clock, through [`Env`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod bootfs;
pub mod fat;
pub mod fs;
pub mod kept;
pub mod memfs;
pub mod pipe;
mod state;

pub use state::{Env, Vfs, Window};

#[cfg(test)]
mod tests;
