//! User state the kernel reaches through the physical map: the trap frame of a thread blocked in
//! the kernel (its user registers, where IPC results are written) and the frames behind its IPC
//! buffer (where messages are copied and stamped). No user pointer is involved: the kernel finds
//! the frames itself, so nothing here trusts an address from user space.
//!
//! Invariants: a user thread's trap frame is at the top of its kernel stack whenever it is in
//! the kernel, and is written only under the table lock while the thread is not running; a
//! thread's `ipc_frames` entry, once known, names the frame behind that page of its IPC buffer
//! for the thread's whole life (`MemUnmap` refuses the range), so copies through it stay inside
//! memory the thread's process owns. The `unsafe` of reaching them is here, not at the call
//! sites (README: which modules may contain `unsafe`).

use vessel_abi::{Error, IPC_DATA_OFFSET, PAGE_SIZE};
use vessel_container::Resource;
use vessel_kcore::report::TrapFrame;

use super::Tasks;
use super::container::container_error;
use super::thread::Tid;
use super::transfer::Header;
use crate::mem::address_space::Access;
use crate::mem::phys_to_virt;

/// The trap frame of a thread that is blocked in (or running) a system call.
#[inline(always)]
pub(super) fn frame_of(t: &Tasks, tid: Tid) -> Option<&'static mut TrapFrame> {
    trap_frame_at(t.threads.get(&tid)?.kernel_stack_top())
}

/// The trap frame at the top of the kernel stack that ends at `top` (0: the idle thread, which
/// has none). The caller must hold the table lock and the thread must not be running.
#[inline(always)]
pub(super) fn trap_frame_at(top: u64) -> Option<&'static mut TrapFrame> {
    if top == 0 {
        return None;
    }
    let at = top - core::mem::size_of::<TrapFrame>() as u64;
    // SAFETY: every user thread's kernel stack holds its trap frame at the top while it is in
    // the kernel (syscall entry and user interrupts build it there); the table lock serialises
    // access and the thread is not running while another thread writes it.
    Some(unsafe { &mut *(at as *mut TrapFrame) })
}

/// Writes a message's stamped header at the start of an IPC buffer, whose first frame is
/// `header_frame` (from [`Tasks::ipc_frame`]).
#[inline(always)]
pub(super) fn write_header(header_frame: u64, header: Header) {
    // SAFETY: the header lies at the start of the receiver's IPC buffer frame (reached through
    // the physical map; user memory no Rust reference points into).
    unsafe { core::ptr::write_unaligned(phys_to_virt(header_frame) as *mut Header, header) };
}

/// Data bytes of a message that lie in the first frame of an IPC buffer, after the header: what
/// the IPC fast path copies ([`copy_first_frame_data`]).
pub(super) const FIRST_FRAME_DATA: usize = PAGE_SIZE as usize - IPC_DATA_OFFSET;

/// Copies the first `len` data bytes (at most [`FIRST_FRAME_DATA`]) of a message from the IPC
/// buffer whose first frame is `from` to the one whose first frame is `to`. Out of line: the
/// register-only messages of the fast path never come here.
#[inline(never)]
pub(super) fn copy_first_frame_data(from: u64, to: u64, len: usize) {
    let len = len.min(FIRST_FRAME_DATA);
    // SAFETY: both frames are first frames of IPC buffers (user memory reached through the
    // physical map, which no Rust reference points into), and `IPC_DATA_OFFSET + len` stays
    // inside each. `copy` tolerates the same frame twice.
    unsafe {
        core::ptr::copy(
            (phys_to_virt(from) + IPC_DATA_OFFSET as u64) as *const u8,
            (phys_to_virt(to) + IPC_DATA_OFFSET as u64) as *mut u8,
            len,
        );
    }
}

/// Copies `len` bytes at `src`, user memory of the running address space, to physical address
/// `to`: user frames of another space, one after another in physical memory, found by a
/// [`crate::mem::address_space::WritableWalk`] of that space. `BadAddress` if a source page is
/// not mapped; the bytes before it are copied.
pub(super) fn copy_into_phys(to: u64, src: u64, len: u64) -> Result<(), Error> {
    // SAFETY: `to .. to + len` are user frames mapped writable in their owner's space (the
    // caller walked each of them), reached through the physical map (no Rust reference points
    // into user memory); the source is a user range of the running space, which may fault and
    // is recovered.
    unsafe { crate::arch::x86_64::probe::copy(phys_to_virt(to), src, len) }.map_err(|_| Error::BadAddress)
}

impl Tasks {
    /// The frame behind page `page` of a thread's IPC buffer, mapped on demand if `create`.
    /// Inline, as every message writes the receiver's header page: the usual case (the frame is
    /// known) costs no call.
    #[inline(always)]
    pub(super) fn ipc_frame(&mut self, tid: Tid, page: u64, create: bool) -> Result<Option<u64>, Error> {
        let known = self
            .threads
            .get(&tid)
            .zip(usize::try_from(page).ok().filter(|&p| p < 2))
            .and_then(|(thread, index)| thread.ipc_frames[index]);
        match known {
            Some(frame) => Ok(Some(frame)),
            None => self.ipc_frame_slow(tid, page, create),
        }
    }

    /// `ipc_frame` when the frame is not known yet: errors, looking it up, mapping it.
    #[inline(never)]
    fn ipc_frame_slow(&mut self, tid: Tid, page: u64, create: bool) -> Result<Option<u64>, Error> {
        let index = usize::try_from(page).ok().filter(|&p| p < 2).ok_or(Error::TooLarge)?;
        let thread = self.threads.get(&tid).ok_or(Error::PeerDied)?;
        if let Some(frame) = thread.ipc_frames[index] {
            return Ok(Some(frame));
        }
        let (pid, addr) = (thread.pid, vessel_abi::ipc_buffer_of(thread.slot) + page * PAGE_SIZE);
        let process = self.processes.get_mut(pid).ok_or(Error::PeerDied)?;
        let space = process.space.as_mut().ok_or(Error::PeerDied)?;
        let frame = match space.translate(addr) {
            Some((frame, _)) => frame,
            None if create => {
                let container = process.container;
                self.containers.charge(container, Resource::Pages, 1).map_err(container_error)?;
                let process = self.processes.get_mut(pid).ok_or(Error::PeerDied)?;
                let space = process.space.as_mut().ok_or(Error::PeerDied)?;
                match space.map_new(addr, Access::ReadWrite) {
                    Ok(frame) => {
                        process.pages += 1;
                        frame
                    }
                    Err(_) => {
                        self.containers.uncharge(container, Resource::Pages, 1);
                        return Err(Error::NoMemory);
                    }
                }
            }
            None => return Ok(None),
        };
        // A live thread's IPC buffer can never be unmapped (MemUnmap refuses the range), so this
        // stays true for its life.
        self.threads.get_mut(&tid).ok_or(Error::PeerDied)?.ipc_frames[index] = Some(frame);
        Ok(Some(frame))
    }

    /// Copies `len` bytes at `offset` of one IPC buffer to the same place in another. A page the
    /// sender never touched reads as zeros.
    pub(super) fn copy_buffer(&mut self, from: Tid, to: Tid, offset: usize, len: usize) -> Result<(), Error> {
        let mut done = 0;
        while done < len {
            let at = (offset + done) as u64;
            let page = at / PAGE_SIZE;
            let in_page = at % PAGE_SIZE;
            let n = ((PAGE_SIZE - in_page) as usize).min(len - done);
            let src = self.ipc_frame(from, page, false)?;
            let dst = self.ipc_frame(to, page, true)?.ok_or(Error::NoMemory)?;
            let dst_ptr = (phys_to_virt(dst) + in_page) as *mut u8;
            // SAFETY: both frames belong to IPC buffers (user memory the kernel may write, not
            // referenced by Rust code); `in_page + n` stays inside each page.
            unsafe {
                match src {
                    Some(src) => core::ptr::copy((phys_to_virt(src) + in_page) as *const u8, dst_ptr, n),
                    None => core::ptr::write_bytes(dst_ptr, 0, n),
                }
            }
            done += n;
        }
        Ok(())
    }

    pub(super) fn read_buffer_words<const N: usize>(&mut self, tid: Tid, offset: usize) -> Result<[u32; N], Error> {
        let mut out = [0u32; N];
        if let Some(frame) = self.ipc_frame(tid, 0, false)? {
            for (i, slot) in out.iter_mut().enumerate() {
                // SAFETY: offset + 4*N is inside the first buffer page (checked by layout tests).
                *slot =
                    unsafe { core::ptr::read_volatile((phys_to_virt(frame) as usize + offset + 4 * i) as *const u32) };
            }
        }
        Ok(out)
    }
}
