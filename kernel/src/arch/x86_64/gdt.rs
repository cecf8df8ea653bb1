//! Global descriptor table and task state segment.
//!
//! GDT layout (fixed by `syscall`/`sysret`, which need user data right before user code): null,
//! kernel code 0x08, kernel data 0x10, user data 0x18, user code 0x20, TSS 0x28. The TSS gives
//! interrupts from user mode the current thread's kernel stack (RSP0) and double faults a stack of
//! their own (IST 1), so a kernel stack overflow still produces a report.
//!
//! The TSS is written only with interrupts off, on the one CPU Vessel runs on today; the per-CPU
//! block the entry paths use is in `super::percpu`.

use core::cell::UnsafeCell;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based in hardware, 0-based here) used by the double-fault handler.
pub const DOUBLE_FAULT_IST: u16 = 0;
const IST_STACK_SIZE: usize = 16 * 1024;

/// User code selector with RPL 3, as `iretq` frames need it.
pub const USER_CODE: u64 = 0x20 | 3;
/// User data/stack selector with RPL 3.
pub const USER_DATA: u64 = 0x18 | 3;
/// Kernel code selector.
pub const KERNEL_CODE: u64 = 0x08;

/// Stack for the double-fault handler. Only the CPU writes it, through the TSS.
#[repr(align(16))]
struct IstStack([u8; IST_STACK_SIZE]);
static DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

/// A cell written only with interrupts off on the single CPU (see module doc).
struct CpuLocal<T>(UnsafeCell<T>);

// SAFETY: Vessel runs on one CPU and every access happens with interrupts disabled, so there is
// never concurrent access.
unsafe impl<T> Sync for CpuLocal<T> {}

static TSS: CpuLocal<TaskStateSegment> = CpuLocal(UnsafeCell::new(TaskStateSegment::new()));
static GDT: Once<GlobalDescriptorTable> = Once::new();

/// Builds and loads the GDT and TSS, reloads the segment registers and points GS at the per-CPU
/// block.
pub fn init() {
    let top = VirtAddr::from_ptr(DOUBLE_FAULT_STACK.0.as_ptr()) + IST_STACK_SIZE as u64;
    // SAFETY: boot, interrupts off, nothing else references the TSS yet.
    unsafe { (*TSS.0.get()).interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] = top };
    let gdt = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        gdt.append(Descriptor::kernel_code_segment());
        gdt.append(Descriptor::kernel_data_segment());
        gdt.append(Descriptor::user_data_segment());
        gdt.append(Descriptor::user_code_segment());
        // SAFETY: the TSS is a static that lives forever and is only written as the module doc says.
        gdt.append(unsafe { Descriptor::tss_segment_unchecked(TSS.0.get()) });
        gdt
    });
    gdt.load();
    let kernel_data = SegmentSelector(0x10);
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives in a static.
    unsafe {
        CS::set_reg(SegmentSelector(KERNEL_CODE as u16));
        SS::set_reg(kernel_data);
        DS::set_reg(kernel_data);
        ES::set_reg(kernel_data);
        load_tss(SegmentSelector(0x28));
    }
    super::percpu::init();
}

/// Makes `top` the stack the CPU switches to on entry from user mode (interrupts and syscalls).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: interrupts are off (scheduler), single CPU: no concurrent access (module doc).
    unsafe {
        // Kernel stack tops are canonical kernel addresses: no check needed.
        (*TSS.0.get()).privilege_stack_table[0] = VirtAddr::new_truncate(top);
    }
    super::percpu::set_kernel_stack(top);
}
