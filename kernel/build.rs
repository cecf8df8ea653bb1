//! Link options for the kernel binary.
//!
//! `-z keep-text-section-prefix` makes the linker gather every input section named `.text.hot.*`
//! into one output section `.text.hot` instead of scattering it through `.text`. The IPC round
//! trip (syscall entry, call/reply_recv, the switch) is tagged into it, so after each address-space
//! switch it touches a few contiguous code pages rather than one page per function: under
//! emulators without PCID every CR3 write flushes the TLB, and each distinct page re-filled costs
//! time. Nothing else about the layout changes.

fn main() {
    println!("cargo:rustc-link-arg-bins=-zkeep-text-section-prefix");
    println!("cargo:rerun-if-changed=build.rs");
}
