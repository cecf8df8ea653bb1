//! Program start: `_start` receives the kernel's [`StartInfo`] in `rdi`, records it, runs the
//! program's `main` and exits with its value.

use core::sync::atomic::{AtomicPtr, Ordering};

use vessel_abi::{ArgSlice, START_MAGIC, StartInfo};

core::arch::global_asm!(
    ".global _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {start}",
    "ud2",
    start = sym rust_start,
);

static START_INFO: AtomicPtr<StartInfo> = AtomicPtr::new(core::ptr::null_mut());

unsafe extern "Rust" {
    /// Defined by [`crate::entry!`] in the program.
    fn vessel_main() -> i32;
}

extern "C" fn rust_start(info: *mut StartInfo) -> ! {
    // SAFETY: the kernel passes a pointer to a StartInfo it wrote on our stack page, which stays
    // mapped and unchanged for the life of the process. Checked by the magic before use.
    if !info.is_null() && unsafe { (*info).magic } == START_MAGIC {
        START_INFO.store(info, Ordering::Relaxed);
    }
    // SAFETY: `vessel_main` is defined exactly once by the program's `entry!`.
    let code = unsafe { vessel_main() };
    crate::sys::exit(code)
}

fn info() -> Option<&'static StartInfo> {
    // SAFETY: set once at start to a StartInfo that lives as long as the process.
    unsafe { START_INFO.load(Ordering::Relaxed).as_ref() }
}

/// This process's id, as the kernel reported it at start.
pub fn pid() -> u64 {
    info().map_or(0, |i| i.pid)
}

/// The strings of a table the kernel wrote on the stack page.
fn strings(table: u64, count: u64) -> impl Iterator<Item = &'static str> {
    let table: &'static [ArgSlice] = if count > 0 {
        // SAFETY: the kernel wrote `count` ArgSlices at `table` on the stack page.
        unsafe { core::slice::from_raw_parts(table as *const ArgSlice, count as usize) }
    } else {
        &[]
    };
    table.iter().map(|a| {
        // SAFETY: each slice points at string bytes the kernel wrote on the stack page.
        let bytes = unsafe { core::slice::from_raw_parts(a.ptr as *const u8, a.len as usize) };
        core::str::from_utf8(bytes).unwrap_or("")
    })
}

/// The program's arguments, `argv[0]` first.
pub fn args() -> impl Iterator<Item = &'static str> {
    info().map_or(strings(0, 0), |i| strings(i.argv, i.argc))
}

/// The environment the program started with, as `(name, value)` pairs in the order given.
pub fn env() -> impl Iterator<Item = (&'static str, &'static str)> {
    info().map_or(strings(0, 0), |i| strings(i.envp, i.envc)).map(|s| s.split_once('=').unwrap_or((s, "")))
}

/// The value of the environment variable `name` the program started with.
pub fn var(name: &str) -> Option<&'static str> {
    env().find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// The boot file system (a cpio archive), if this process was given it (init).
pub fn bootfs() -> Option<&'static [u8]> {
    let i = info()?;
    // SAFETY: the kernel mapped `bootfs_len` bytes read-only at `bootfs_ptr` for our lifetime.
    (i.bootfs_len > 0).then(|| unsafe { core::slice::from_raw_parts(i.bootfs_ptr as *const u8, i.bootfs_len as usize) })
}

/// The inherited capabilities (`handles`) to objects of `kind`, in the order they were listed
/// (`proc` lists a supervised service's endpoint last: `next_back`).
pub fn handles_of(kind: vessel_abi::ObjectKind) -> impl DoubleEndedIterator<Item = crate::ipc::Cap> {
    handles().iter().map(|&h| crate::ipc::Cap(h)).filter(move |c| c.inspect().is_ok_and(|i| i.kind == kind as u32))
}

/// The capabilities the parent handed over at spawn, in the order it listed them.
pub fn handles() -> &'static [u32] {
    match info() {
        // SAFETY: the kernel wrote `handles_len` u32 handles at `handles_ptr` on the stack page.
        Some(i) if i.handles_len > 0 => unsafe {
            core::slice::from_raw_parts(i.handles_ptr as *const u32, i.handles_len as usize)
        },
        _ => &[],
    }
}
