//! Global descriptor table and task state segment.
//!
//! Layout (selectors are part of the future `syscall`/`sysret` contract, which needs user data
//! right before user code): null, kernel code, kernel data, user data, user code, TSS. The TSS
//! provides a separate stack (IST 1) for double faults, so a kernel stack overflow still produces
//! a report instead of a triple fault.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (1-based in hardware, 0-based here) used by the double-fault handler.
pub const DOUBLE_FAULT_IST: u16 = 0;
const IST_STACK_SIZE: usize = 16 * 1024;

/// Stack for the double-fault handler. Only the CPU writes it, through the TSS.
#[repr(align(16))]
struct IstStack([u8; IST_STACK_SIZE]);
static DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

/// Segment selectors of the loaded GDT.
#[allow(dead_code)] // the user selectors are read when user mode arrives
#[derive(Debug, Clone, Copy)]
pub struct Selectors {
    /// Kernel code segment.
    pub kernel_code: SegmentSelector,
    /// Kernel data/stack segment.
    pub kernel_data: SegmentSelector,
    /// User data/stack segment.
    pub user_data: SegmentSelector,
    /// User code segment.
    pub user_code: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Builds and loads the GDT and TSS, and reloads the segment registers.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        // The stack grows down: the IST entry is the end of the array. The array lives in a
        // static that is read-only to Rust; the CPU writes to it, which Rust never observes.
        let top = VirtAddr::from_ptr(DOUBLE_FAULT_STACK.0.as_ptr()) + IST_STACK_SIZE as u64;
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST)] = top;
        tss
    });
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { kernel_code, kernel_data, user_data, user_code, tss })
    });
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives in a static.
    unsafe {
        CS::set_reg(sel.kernel_code);
        SS::set_reg(sel.kernel_data);
        DS::set_reg(sel.kernel_data);
        ES::set_reg(sel.kernel_data);
        load_tss(sel.tss);
    }
}

/// The selectors of the loaded GDT.
#[allow(dead_code)] // used by user-mode entry, which comes with processes
pub fn selectors() -> Option<Selectors> {
    GDT.get().map(|(_, s)| *s)
}
