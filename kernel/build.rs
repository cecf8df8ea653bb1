//! Link options for the kernel binary.
//!
//! `hot.ld` (added to the default layout with `INSERT`) gathers every input section named
//! `.text.hot.*` into one page-aligned output section `.text.hot` instead of scattering it through
//! `.text`. The IPC round trip (syscall entry, call/reply_recv, the switch) is tagged into it, so
//! after each address-space switch it touches two contiguous code pages rather than one page per
//! function: under emulators without PCID every CR3 write flushes the TLB, and each distinct page
//! re-filled costs time. Nothing else about the layout changes.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    println!("cargo:rustc-link-arg-bins=-T{dir}/hot.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=hot.ld");
}
