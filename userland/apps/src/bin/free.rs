//! `free`: the machine's memory (total, used, free: from the kernel's `KernelStats`; the kernel
//! heap's part set aside but not grown into is neither, on a line of its own) and what
//! this container uses of it (its `ContainerInfo`: pages charged to it and those below it,
//! and its limit). `--help` says this.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::String;

use vessel_apps::tool;
use vessel_rt::abi::{PAGE_SIZE, UNLIMITED};
use vessel_rt::{container, eprintln, println, sys};

vessel_rt::entry!(main);

const USAGE: &str =
    "usage: free\n  the machine's memory (total, used, free) and what this container and those below it use\n";

fn main() -> i32 {
    let command = match tool::begin("free", USAGE, "") {
        Ok(command) => command,
        Err(code) => return code,
    };
    if let Some(operand) = command.operands.first() {
        return tool::misuse("free", format_args!("unexpected operand {operand}"));
    }
    let stats = match sys::kernel_stats() {
        Ok(stats) => stats,
        Err(e) => {
            eprintln!("free: cannot read the kernel's counts: {e}");
            return 1;
        }
    };
    let own = match container::own() {
        Ok(info) => info,
        Err(e) => {
            eprintln!("free: cannot read this container's usage: {e}");
            return 1;
        }
    };
    // Frames kept for reuse (stacks of ended threads) are as good as free. Frames set aside for
    // the kernel heap that it has not grown into hold nothing: neither used nor free for others.
    let free = stats.free_frames.saturating_add(stats.pooled_frames).min(stats.total_frames);
    let held = stats.heap_held_frames.min(stats.total_frames - free);
    // The unpacked boot file system: files, not what the kernel and programs use (it sat in
    // the bootloader's memory, outside the counts, before the ramdisk was packed).
    let boot = stats.bootfs_frames.min(stats.total_frames - free - held);
    let bytes = |pages: u64| vessel_apps::units::bytes(pages.saturating_mul(PAGE_SIZE));
    println!("{:<9}{:>10}  {:>10}  {:>10}", "", "total", "used", "free");
    println!(
        "{:<9}{:>10}  {:>10}  {:>10}",
        "memory",
        bytes(stats.total_frames),
        bytes(stats.total_frames - free - held - boot),
        bytes(free)
    );
    println!(
        "kernel heap: {} in use; {} more set aside for it to grow into",
        vessel_apps::units::bytes(stats.heap_used),
        bytes(held)
    );
    println!("boot files: {} (the boot file system, unpacked; not in used)", bytes(boot));
    let limit = match own.limits[0] {
        UNLIMITED => String::from("no limit of its own"),
        pages => format!("limit {}", bytes(pages)),
    };
    println!("container {:#018x}: {} used, {limit}", own.id, bytes(own.usage[0]));
    0
}
