//! Receive windows (L4's string items, one way): a caller may offer a window of its own memory
//! when it calls (`WINDOW` in the call's meta flags, the range in its IPC buffer's `window` and
//! `window_len`), and while it waits for the reply, the server that owes it that reply copies
//! bytes of its own memory straight into the window (`WindowWrite`). A file server answers a
//! large read this way from its cache, each byte copied once, instead of into a buffer shared
//! with the client and from there into the client's destination.
//!
//! The kernel reads the source through the running (server's) address space with the
//! fault-recovering copy, and writes the caller's frames through the physical map, found by
//! walking the caller's page tables: no page is mapped, shared or flushed.
//!
//! Invariants: only the thread that owes the caller its reply, or the holder of its kept reply,
//! writes, and only while the caller still waits for that reply; only if the call offered a
//! window (the flag is read from the call's meta word, which stays in the caller's saved
//! registers until the reply is delivered; the range from its IPC buffer when the server
//! writes); only inside the window and only into pages the caller maps user-writable. One call
//! copies at most `MAX_WINDOW_WRITE` bytes, so the work done with interrupts off is bounded.
//! A failed write may have copied some bytes into the window, nothing anywhere else. The source
//! is read holding the table lock, so a source page never touched (a stack or IPC-buffer page,
//! which a first touch maps) cannot be paged in there: it is refused as a bad address rather
//! than waiting for the lock this CPU holds.

use crate::arch::x86_64::percpu as cpu;
use crate::mem::address_space::WritableWalk;
use vessel_abi::{Error, IPC_WINDOW_OFFSET, MAX_WINDOW_WRITE, Meta, PAGE_SIZE, Rights, USER_END, WINDOW};

use super::caps::{cap_error, handle};
use super::frame::{copy_into_phys, frame_of};
use super::objects::ObjectRef;
use super::thread::Tid;
use super::wait::IpcWait;
use super::{Tasks, with_tasks};

/// `WindowWrite`: copies `pieces` of the running thread's memory, in order, to `offset` in the
/// receive window of the caller it owes a reply (`reply` 0) or of kept reply `reply`'s caller.
/// Returns the bytes copied.
pub fn window_write(reply: u64, offset: u64, pieces: &[[u64; 2]]) -> Result<u64, Error> {
    let mut total = 0u64;
    for &[address, length] in pieces {
        if length > 0 && address.checked_add(length).is_none_or(|end| end > USER_END) {
            return Err(Error::BadAddress);
        }
        total = total.checked_add(length).filter(|&t| t <= MAX_WINDOW_WRITE).ok_or(Error::TooLarge)?;
    }
    with_tasks(|t| {
        let caller = t.window_owner(reply)?;
        let (window, window_len) = t.window_of(caller)?;
        let end = offset.checked_add(total).filter(|&end| end <= window_len).ok_or(Error::TooLarge)?;
        if end > 0 && window.checked_add(end).is_none_or(|e| e > USER_END) {
            return Err(Error::BadAddress);
        }
        let pid = t.threads.get(&caller).map(|th| th.pid).ok_or(Error::PeerDied)?;
        let space = t.processes.get(pid).and_then(|p| p.space.as_ref()).ok_or(Error::PeerDied)?;
        let mut walk = WritableWalk::new(space);
        cpu::set_locked_copy(1);
        let copied = copy_pieces(&mut walk, window + offset, pieces);
        cpu::set_locked_copy(0);
        copied.map(|()| total)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// Copies `pieces` of the running space, in order, to the window pages `walk` finds from `to`
/// on. With the table lock held: a source page never touched (a stack page, say) is not paged
/// in but refused (`BadAddress`).
fn copy_pieces(walk: &mut WritableWalk, mut to: u64, pieces: &[[u64; 2]]) -> Result<(), Error> {
    for &[mut from, length] in pieces {
        let piece_end = from + length;
        while from < piece_end {
            let in_page = to % PAGE_SIZE;
            let start = walk.frame(to - in_page).ok_or(Error::BadAddress)? + in_page;
            // One copy for as many following window pages as lie right after it in physical
            // memory (frames are often handed out in order).
            let mut n = (PAGE_SIZE - in_page).min(piece_end - from);
            while n < piece_end - from && walk.frame(to + n) == Some(start + n) {
                n += PAGE_SIZE.min(piece_end - from - n);
            }
            copy_into_phys(start, from, n)?;
            from += n;
            to += n;
        }
    }
    Ok(())
}

impl Tasks {
    /// The caller whose window `reply` (0: the running thread's pending reply, else a kept
    /// reply capability with SEND) lets the running thread write, if it still waits.
    fn window_owner(&self, reply: u64) -> Result<Tid, Error> {
        let me = cpu::current();
        if reply == 0 {
            let caller = self.threads.get(&me).and_then(|th| th.replying_to).ok_or(Error::InvalidArgument)?;
            return if self.blocked_in(caller, IpcWait::Reply(me)) { Ok(caller) } else { Err(Error::PeerDied) };
        }
        let cap = self.caps.get(self.table_of(me)?, handle(reply)?).map_err(cap_error)?;
        let ObjectRef::Reply(id) = cap.object else { return Err(Error::WrongObject) };
        if !cap.rights.contains(Rights::SEND) {
            return Err(Error::MissingRights);
        }
        if !self.kept_caller_waits(id) {
            return Err(Error::PeerDied);
        }
        self.objects.reply(id).map(|r| r.caller).ok_or(Error::PeerDied)
    }

    /// The window (start, length) `caller` offered with the call it waits in: `AccessDenied`
    /// if the call carried no `WINDOW` flag.
    fn window_of(&mut self, caller: Tid) -> Result<(u64, u64), Error> {
        let call = frame_of(self, caller).ok_or(Error::PeerDied)?;
        if Meta::from_word(call.r9).flags & WINDOW == 0 {
            return Err(Error::AccessDenied);
        }
        // Read as the header's other words are (a buffer never touched reads as zeros: an empty
        // window, so any write is past its end).
        let [a, b, c, d] = self.read_buffer_words::<4>(caller, IPC_WINDOW_OFFSET)?;
        Ok((u64::from(a) | u64::from(b) << 32, u64::from(c) | u64::from(d) << 32))
    }
}
