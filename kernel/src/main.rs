//! The Vessel kernel: entry point and boot sequence.
//!
//! The bootloader (`bootloader` 0.11) enters [`kernel_main`] in long mode with all physical memory
//! mapped at a dynamic offset. Boot order matters and is fixed here: time first (so every log line
//! carries a timestamp), then the serial log, CPU tables, memory, heap, the framebuffer console,
//! platform discovery (ACPI), interrupts and the timer. With the `ktest` feature the kernel then
//! runs its test suite and leaves QEMU with the verdict; otherwise it idles, ready.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
// Parts of the memory and time API are so far exercised only by the test suite; processes and
// IPC (the next issues) are their first users in the normal build.
#![cfg_attr(not(feature = "ktest"), allow(dead_code))]

extern crate alloc;

mod arch;
mod console;
mod entropy;
mod klog;
mod logger;
mod mem;
mod panic;
mod platform;
mod power;
mod syscall;
mod task;
mod time;

#[cfg(feature = "ktest")]
mod ktest;

use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::{BootInfo, entry_point};
use vessel_kcore::bootargs::BootArgs;

/// Where the bootloader puts things: all physical memory mapped (the kernel reaches page tables
/// and frames through it), and every dynamic mapping kept in the upper (kernel) half so the lower
/// half stays free for user address spaces.
///
/// The image and the direct map share the first level-4 entry of the kernel half: the image in
/// its first gigabyte, the direct map from the second (physical addresses past 511 GiB go on
/// into the next entries). A switch then walks one level-3 table for both, not two, and under
/// emulators that flush the TLB on every CR3 write each table walked is a refill.
const BOOT_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.kernel_base = Mapping::FixedAddress(0xffff_8000_0000_0000);
    config.mappings.physical_memory = Some(Mapping::FixedAddress(0xffff_8000_4000_0000));
    config.mappings.dynamic_range_start = Some(0xffff_8000_0000_0000);
    config.kernel_stack_size = 256 * 1024;
    config
};

entry_point!(kernel_main, config = &BOOT_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    time::init_early();
    logger::init();
    log::info!("Vessel {} (x86_64) booting", env!("CARGO_PKG_VERSION"));

    arch::x86_64::init_cpu();
    let boot = mem::init(boot_info);
    if let Some(fb) = boot.framebuffer {
        console::init(fb);
    }
    let bootfs = match vessel_bootfs::Archive::new(boot.ramdisk) {
        Ok(archive) => Some(archive),
        Err(e) => {
            log::error!("{e}: no programs can start");
            None
        }
    };
    let args = BootArgs::parse(bootfs.and_then(|a| a.get("etc/boot.args")).map_or(&[][..], |e| e.data));
    syscall::allow_debug_exit(args.get("debug-exit") == Some("allow"));
    logger::set_level(args.get("log"));
    entropy::init();
    platform::init(boot.rsdp);
    arch::x86_64::init_interrupts();
    time::start_ticks();

    log::info!("kernel ready in {} us (since bootloader hand-over)", time::since_boot_ns() / 1000);

    #[cfg(feature = "ktest")]
    ktest::run(&args);
    #[cfg(not(feature = "ktest"))]
    {
        task::init(boot.ramdisk, bootfs);
        match task::spawn(
            0,
            "bin/init",
            task::Strings { args: b"init\0", env: b"" },
            vessel_abi::Priority::Normal,
            &[],
            0,
        ) {
            Ok(pid) => log::info!("started bin/init as process {pid}"),
            Err(e) => log::error!("cannot start bin/init: {e}"),
        }
        task::idle()
    }
}
