//! Building a new process image: validated ELF segments copied into fresh frames, and the
//! initial stack page holding the argument strings and the [`StartInfo`].
//!
//! The ELF file is untrusted: `vessel_kcore::elf` validates it completely (bounds, user range,
//! W^X, no shared pages) before anything is mapped, and every later step checks its own sizes.

use vessel_abi::{ArgSlice, Error, PAGE_SIZE, PROGRAM_END, PROGRAM_START, STACK_TOP, START_MAGIC, StartInfo};
use vessel_kcore::elf::{Limits, Program};

use crate::mem::address_space::{Access, AddressSpace};
use crate::mem::paging::MapError;
use crate::mem::phys_to_virt;

/// Where init finds the boot file system (read-only).
pub const BOOTFS_BASE: u64 = 0x0000_7000_0000_0000;

fn no_memory(_: MapError) -> Error {
    Error::NoMemory
}

/// Maps every loadable segment of `file` into `space`; returns the entry point.
pub fn load_elf(space: &mut AddressSpace, file: &[u8]) -> Result<u64, Error> {
    let limits = Limits { lowest: PROGRAM_START, highest: PROGRAM_END };
    let program = Program::parse(file, &limits).map_err(|e| {
        log::debug!("spawn: refused ELF: {e}");
        Error::BadExecutable
    })?;
    for segment in program.segments() {
        let access = if segment.executable {
            Access::ReadExecute
        } else if segment.writable {
            Access::ReadWrite
        } else {
            Access::Read
        };
        let first = segment.vaddr & !(PAGE_SIZE - 1);
        let end = (segment.vaddr + segment.mem_size).next_multiple_of(PAGE_SIZE);
        let file_end = segment.vaddr + segment.file_size;
        for page in (first..end).step_by(PAGE_SIZE as usize) {
            let frame = space.map_new(page, access).map_err(no_memory)?;
            // Copy the part of the file that lands in this page; the rest stays zero (.bss).
            let copy_start = page.max(segment.vaddr);
            let copy_end = (page + PAGE_SIZE).min(file_end);
            if copy_start < copy_end {
                let from = (segment.file_offset + (copy_start - segment.vaddr)) as usize;
                let len = (copy_end - copy_start) as usize;
                let bytes = file.get(from..from + len).ok_or(Error::BadExecutable)?;
                let dst = phys_to_virt(frame) + (copy_start - page);
                // SAFETY: `frame` was just allocated for this page and nothing else refers to
                // it; `dst..dst+len` stays inside it because copy_start..copy_end lies in the page.
                unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst as *mut u8, len) };
            }
        }
    }
    Ok(program.entry())
}

/// Lends the boot file system's pages to `space` read-only at [`BOOTFS_BASE`].
pub fn map_bootfs(space: &mut AddressSpace, bootfs: &[u8]) -> Result<(), Error> {
    let start = bootfs.as_ptr() as u64;
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(Error::InvalidArgument);
    }
    for offset in (0..bootfs.len() as u64).step_by(PAGE_SIZE as usize) {
        let (frame, _) = crate::mem::paging::translate(start + offset).ok_or(Error::InvalidArgument)?;
        space.map(BOOTFS_BASE + offset, frame, Access::Read, false).map_err(no_memory)?;
    }
    Ok(())
}

/// A new process's strings: its arguments and its environment, each a blob of NUL-terminated
/// strings (a last string without its NUL counts too; empty strings are kept).
#[derive(Clone, Copy, Debug, Default)]
pub struct Strings<'a> {
    /// `argv[0]` first.
    pub args: &'a [u8],
    /// `NAME=value` strings.
    pub env: &'a [u8],
}

/// Most bytes of argument and environment strings together.
pub const MAX_STRINGS: usize = 2048;

/// The strings of a NUL-terminated blob.
fn pieces(blob: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = blob.strip_suffix(&[0]).unwrap_or(blob);
    body.split(|&b| b == 0).take(if blob.is_empty() { 0 } else { usize::MAX })
}

/// Writes the top stack page: argument and environment strings, their [`ArgSlice`] tables and
/// the [`StartInfo`]. Returns the StartInfo's address, which is also the initial stack pointer
/// (16-byte aligned, the stack grows down from it).
pub fn setup_stack(
    space: &mut AddressSpace,
    pid: u64,
    strings: Strings<'_>,
    bootfs_len: u64,
    handles: &[u32],
) -> Result<u64, Error> {
    // Each blob is copied with a NUL after it, so a last string without one ends too.
    let (args, env) = (strings.args, strings.env);
    let size = args.len() + env.len() + 2;
    if size > MAX_STRINGS + 2 {
        return Err(Error::TooLarge);
    }
    let page_base = STACK_TOP - PAGE_SIZE;
    let mut page = [0u8; PAGE_SIZE as usize];
    let argc = pieces(args).count();
    let envc = pieces(env).count();
    let slice_size = core::mem::size_of::<ArgSlice>();
    let info_size = core::mem::size_of::<StartInfo>();
    // Layout from the top down: strings, the two tables (8-aligned), handles, StartInfo
    // (16-aligned), then rsp.
    let strings_at = PAGE_SIZE as usize - size;
    let argv_at = (strings_at - argc * slice_size) & !7;
    let envp_at = argv_at - envc * slice_size;
    let handles_at = (envp_at - 4 * handles.len()) & !7;
    let info_at = handles_at.checked_sub(info_size).ok_or(Error::TooLarge)? & !15;
    // Leave room below for the first call frames on the same page.
    if info_at < 512 {
        return Err(Error::TooLarge);
    }
    // The arguments at `strings_at`, the environment after them and their added NUL; the page
    // is zeroed, so each blob's added NUL is already there.
    let env_at = strings_at + args.len() + 1;
    for (blob, blob_at, table_at) in [(args, strings_at, argv_at), (env, env_at, envp_at)] {
        page[blob_at..blob_at + blob.len()].copy_from_slice(blob);
        let mut offset = blob_at;
        for (index, s) in pieces(blob).enumerate() {
            let at = table_at + index * slice_size;
            page[at..at + 8].copy_from_slice(&(page_base + offset as u64).to_le_bytes());
            page[at + 8..at + 16].copy_from_slice(&(s.len() as u64).to_le_bytes());
            offset += s.len() + 1;
        }
    }
    let info = StartInfo {
        magic: START_MAGIC,
        pid,
        argc: argc as u64,
        argv: page_base + argv_at as u64,
        bootfs_ptr: if bootfs_len > 0 { BOOTFS_BASE } else { 0 },
        bootfs_len,
        handles_ptr: if handles.is_empty() { 0 } else { page_base + handles_at as u64 },
        handles_len: handles.len() as u64,
        envc: envc as u64,
        envp: page_base + envp_at as u64,
    };
    for (i, h) in handles.iter().enumerate() {
        page[handles_at + 4 * i..handles_at + 4 * i + 4].copy_from_slice(&h.to_le_bytes());
    }
    let words = [
        info.magic,
        info.pid,
        info.argc,
        info.argv,
        info.bootfs_ptr,
        info.bootfs_len,
        info.handles_ptr,
        info.handles_len,
        info.envc,
        info.envp,
    ];
    for (i, word) in words.iter().enumerate() {
        page[info_at + i * 8..info_at + i * 8 + 8].copy_from_slice(&word.to_le_bytes());
    }
    let frame = space.map_new(page_base, Access::ReadWrite).map_err(no_memory)?;
    // SAFETY: the frame was just allocated for the stack page; the copy is exactly one page.
    unsafe { core::ptr::copy_nonoverlapping(page.as_ptr(), phys_to_virt(frame) as *mut u8, page.len()) };
    Ok(page_base + info_at as u64)
}
