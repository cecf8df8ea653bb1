//! Memory tests: frames, page tables (with faults taken and recovered), the heap.

use alloc::boxed::Box;
use alloc::vec::Vec;

use spin::Once;
use vessel_kcore::PAGE_SIZE;
use vessel_kcore::frames::FrameError;
use x86_64::structures::paging::PageTableFlags;

use super::{Test, TestResult};
use crate::arch::x86_64::probe;
use crate::check;
use crate::mem::{frames, heap, paging, phys_to_virt};

pub static TESTS: &[Test] = &[
    Test { name: "frames::alloc_free_round_trip", run: alloc_free_round_trip },
    Test { name: "frames::exhaustion_then_full_return", run: exhaustion_then_full_return },
    Test { name: "paging::map_write_read_unmap", run: map_write_read_unmap },
    Test { name: "paging::read_only_page_refuses_writes", run: read_only_page_refuses_writes },
    Test { name: "paging::double_map_and_bad_unmap_refused", run: double_map_and_bad_unmap_refused },
    Test { name: "heap::stress_many_sizes", run: heap_stress_many_sizes },
    Test { name: "heap::large_alignments", run: heap_large_alignments },
    Test { name: "address_space::released_in_bounded_steps", run: address_space_released_in_bounded_steps },
    Test { name: "frames::released_tables_are_kept_zeroed", run: released_tables_are_kept_zeroed },
];

/// A kernel slot reserved for tests, so test mappings never touch real ones.
static TEST_SLOT: Once<Option<u64>> = Once::new();

fn test_page(index: u64) -> Result<u64, alloc::string::String> {
    let base = TEST_SLOT.call_once(paging::claim_slot).ok_or("no kernel slot free for tests")?;
    Ok(base + index * PAGE_SIZE)
}

fn alloc_free_round_trip() -> TestResult {
    let (free_before, total) = frames::counts();
    let a = frames::alloc().ok_or("no frame")?;
    let b = frames::alloc().ok_or("no second frame")?;
    check!(a != b, "two allocations returned the same frame {a:#x}");
    check!(a % PAGE_SIZE == 0 && b % PAGE_SIZE == 0, "unaligned frames {a:#x} {b:#x}");
    check!(frames::counts().0 == free_before - 2, "free count did not drop by 2");
    frames::free(a).map_err(|e| alloc::format!("free a: {e:?}"))?;
    frames::free(b).map_err(|e| alloc::format!("free b: {e:?}"))?;
    check!(frames::free(a) == Err(FrameError::DoubleFree), "double free not refused");
    check!(frames::free(a + 1) == Err(FrameError::Misaligned), "misaligned free not refused");
    check!(frames::counts() == (free_before, total), "counts not restored: {:?}", frames::counts());
    Ok(())
}

fn exhaustion_then_full_return() -> TestResult {
    let (free_before, _) = frames::counts();
    // Chain every frame through its first word (via the direct map) so no heap is needed.
    let mut head = 0u64;
    let mut taken = 0u64;
    while let Some(frame) = frames::alloc() {
        // SAFETY: the frame is ours until freed below; the direct map covers it.
        unsafe { core::ptr::write(phys_to_virt(frame) as *mut u64, head) };
        head = frame;
        taken += 1;
    }
    let exhausted = frames::alloc().is_none();
    while head != 0 {
        // SAFETY: `head` is a frame written in the loop above and still owned by this test.
        let next = unsafe { core::ptr::read(phys_to_virt(head) as *const u64) };
        frames::free(head).map_err(|e| alloc::format!("free {head:#x}: {e:?}"))?;
        head = next;
    }
    check!(exhausted, "allocation succeeded after exhaustion");
    check!(taken == free_before, "took {taken} frames but {free_before} were free");
    check!(frames::counts().0 == free_before, "free count {} != {free_before} after returning all", frames::counts().0);
    Ok(())
}

fn map_write_read_unmap() -> TestResult {
    let page = test_page(0)?;
    let frame = frames::alloc().ok_or("no frame")?;
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    paging::map(page, frame, flags).map_err(|e| alloc::format!("map: {e:?}"))?;
    let (phys, seen) = paging::translate(page + 8).ok_or("mapped page does not translate")?;
    check!(phys == frame + 8, "translates to {phys:#x}, expected {:#x}", frame + 8);
    check!(seen.contains(flags), "flags {seen:?} lack {flags:?}");
    probe::write_u64(page + 8, 0x5eed_f00d).map_err(|f| alloc::format!("write faulted: {f:?}"))?;
    // The write went to the frame: read it back through the direct map as well.
    // SAFETY: the frame is owned by this test and mapped at both addresses.
    let direct = unsafe { core::ptr::read_volatile((phys_to_virt(frame) + 8) as *const u64) };
    check!(direct == 0x5eed_f00d, "direct map reads {direct:#x}");
    let unmapped = paging::unmap(page).map_err(|e| alloc::format!("unmap: {e:?}"))?;
    check!(unmapped == frame, "unmap returned {unmapped:#x}");
    let fault = probe::read_u64(page + 8).err().ok_or("read after unmap did not fault")?;
    check!(fault.vector == 14 && fault.addr == page + 8, "wrong fault {fault:?}");
    check!(fault.error_code & 1 == 0, "not a not-present fault: {fault:?}");
    frames::free(frame).map_err(|e| alloc::format!("free: {e:?}"))?;
    Ok(())
}

fn read_only_page_refuses_writes() -> TestResult {
    let page = test_page(1)?;
    let frame = frames::alloc_zeroed().ok_or("no frame")?;
    paging::map(page, frame, PageTableFlags::PRESENT | PageTableFlags::NO_EXECUTE)
        .map_err(|e| alloc::format!("map: {e:?}"))?;
    let value = probe::read_u64(page).map_err(|f| alloc::format!("read faulted: {f:?}"))?;
    check!(value == 0, "zeroed frame reads {value:#x}");
    let fault = probe::write_u64(page, 1).err().ok_or("write to a read-only page succeeded")?;
    check!(fault.vector == 14 && fault.addr == page, "wrong fault {fault:?}");
    check!(fault.error_code & 0b11 == 0b11, "expected a protection violation on write: {fault:?}");
    // Remap writable in place: the same write now succeeds.
    paging::protect(page, PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE)
        .map_err(|e| alloc::format!("protect: {e:?}"))?;
    probe::write_u64(page, 7).map_err(|f| alloc::format!("write after remap faulted: {f:?}"))?;
    check!(probe::read_u64(page) == Ok(7), "value not written");
    paging::unmap(page).map_err(|e| alloc::format!("unmap: {e:?}"))?;
    frames::free(frame).map_err(|e| alloc::format!("free: {e:?}"))?;
    Ok(())
}

fn double_map_and_bad_unmap_refused() -> TestResult {
    let page = test_page(2)?;
    let frame = frames::alloc().ok_or("no frame")?;
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
    paging::map(page, frame, flags).map_err(|e| alloc::format!("map: {e:?}"))?;
    check!(paging::map(page, frame, flags) == Err(paging::MapError::AlreadyMapped), "second map not refused");
    paging::unmap(page).map_err(|e| alloc::format!("unmap: {e:?}"))?;
    check!(paging::unmap(page) == Err(paging::MapError::NotMapped), "unmapping an unmapped page not refused");
    frames::free(frame).map_err(|e| alloc::format!("free: {e:?}"))?;
    Ok(())
}

fn heap_stress_many_sizes() -> TestResult {
    let used_before = heap::used();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut live: Vec<Vec<u8>> = Vec::new();
    for round in 0..2000u64 {
        if live.len() > 64 || (next() % 3 == 0 && !live.is_empty()) {
            let victim = (next() % live.len() as u64) as usize;
            let block = live.swap_remove(victim);
            let tag = block.len() as u8;
            check!(block.iter().all(|&b| b == tag), "block of {} bytes corrupted", block.len());
        } else {
            let size = [1, 7, 16, 100, 512, 4000, 4096, 9000, 65536][(next() % 9) as usize] + (round % 5) as usize;
            let mut block = Vec::new();
            block.try_reserve_exact(size).map_err(|e| alloc::format!("alloc {size}: {e}"))?;
            block.resize(size, size as u8);
            live.push(block);
        }
    }
    drop(live);
    check!(heap::used() == used_before, "heap use {} != {used_before} after freeing everything", heap::used());
    Ok(())
}

fn heap_large_alignments() -> TestResult {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    let pages: Vec<Box<Page>> = (0..8).map(|_| Box::new(Page([0; 4096]))).collect();
    for page in &pages {
        let addr = page.0.as_ptr() as u64;
        check!(addr.is_multiple_of(4096), "page-aligned box at {addr:#x}");
    }
    Ok(())
}

/// An address space with three pages under each of five last-level tables (in two level-4
/// slots) is freed in bounded steps: with a budget of one table's scan and a few frames, every
/// call stops with more to do until the last, at least one call per last-level table; every
/// frame, tables included, is back after the drop.
fn address_space_released_in_bounded_steps() -> TestResult {
    use crate::mem::address_space::{Access, AddressSpace, SCAN_COST};
    let (free_before, _) = frames::counts();
    let mut space = AddressSpace::new().map_err(|e| alloc::format!("new: {e:?}"))?;
    // 2 MiB apart: each page needs a table of its own; the last in another level-4 slot.
    let pages = [0x40_0000u64, 0x60_0000, 0x80_0000, 0x4000_0000, 0x7f00_0000_0000];
    for &virt in &pages {
        for i in 0..3 {
            let frame = frames::alloc().ok_or("no frame")?;
            space
                .map(virt + i * PAGE_SIZE, frame, Access::ReadWrite, true)
                .map_err(|e| alloc::format!("map {virt:#x}: {e:?}"))?;
        }
    }
    let budget = SCAN_COST + 4;
    let mut steps = 1;
    while !space.release_some(budget) {
        steps += 1;
        check!(steps < 100, "no end after {steps} steps");
    }
    check!(steps >= pages.len(), "{steps} steps for {} tables of 512 entries, budget {budget}", pages.len());
    check!(space.owned_pages() == 0, "{} owned pages left after release", space.owned_pages());
    drop(space);
    check!(frames::counts().0 == free_before, "frames not all back: {} of {free_before}", frames::counts().0);
    Ok(())
}

/// The page tables an address space releases are kept as zeroed frames: each one handed out by
/// `alloc_zeroed` holds only zeroes (release cleared every entry), and while some are kept,
/// `alloc` still reaches every free frame (they count as free).
fn released_tables_are_kept_zeroed() -> TestResult {
    use crate::mem::address_space::{Access, AddressSpace};
    // An empty pool first (earlier tests may have filled it), so the release must fill it.
    while frames::kept_zeroed() > 0 {
        let frame = frames::alloc_zeroed().ok_or("no kept frame")?;
        frames::free(frame).map_err(|e| alloc::format!("free {frame:#x}: {e:?}"))?;
    }
    let kept_before = frames::kept_zeroed();
    let mut space = AddressSpace::new().map_err(|e| alloc::format!("new: {e:?}"))?;
    for virt in [0x40_0000u64, 0x4000_0000, 0x7f00_0000_0000] {
        let frame = frames::alloc().ok_or("no frame")?;
        space.map(virt, frame, Access::ReadWrite, true).map_err(|e| alloc::format!("map {virt:#x}: {e:?}"))?;
    }
    drop(space);
    let kept = frames::kept_zeroed();
    check!(kept > kept_before, "no table kept: {kept_before} before, {kept} after");
    let mut taken = Vec::new();
    while frames::kept_zeroed() > kept_before {
        let frame = frames::alloc_zeroed().ok_or("no kept frame")?;
        // SAFETY: the frame is ours until given back below; the direct map covers it.
        let words = unsafe { core::slice::from_raw_parts(phys_to_virt(frame) as *const u64, 512) };
        check!(words.iter().all(|&w| w == 0), "kept frame {frame:#x} is not zeroed");
        taken.push(frame);
    }
    for &frame in &taken {
        frames::free_zeroed(frame).map_err(|e| alloc::format!("free_zeroed {frame:#x}: {e:?}"))?;
    }
    check!(frames::kept_zeroed() == kept, "{} kept after giving back, {kept} before", frames::kept_zeroed());
    check!(frames::free_zeroed(taken[0]) == Err(FrameError::DoubleFree), "a kept frame kept twice");
    // Exhaustion reaches the kept frames too.
    exhaustion_then_full_return()
}
