//! Link options for the kernel binary.
//!
//! `hot.ld` (added to the default layout with `INSERT`) gathers the functions and statics the IPC
//! round trip touches into two page-aligned output sections; what that buys, and the list, are
//! in its comment (`cargo xtask` checks each build against the list). Nothing else about the
//! layout changes.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    println!("cargo:rustc-link-arg-bins=-T{dir}/hot.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=hot.ld");
}
