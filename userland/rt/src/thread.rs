//! Threads: more flows of control in one process, sharing its memory and capabilities. Each
//! has its own stack (mapped here, with an unmapped guard page below it) and its own IPC
//! buffer (the kernel's, found through `fs`; see [`crate::ipc::buffer`]).
//!
//! A thread is joined (its slot and stack come back to the process) or detached by dropping its
//! handle: the kernel then frees its slot when it ends, and the thread has the kernel unmap its
//! stack as it ends (`ThreadExit` with a range). A process has at most
//! `vessel_abi::MAX_THREADS` slots. Joined threads' stacks are kept for
//! the next threads (up to [`SPARE_STACKS`]): starting a thread then maps nothing, and a
//! program that starts threads in a loop does not walk through its address space.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};

use vessel_abi::{Error, ExitStatus, MapFlags, PAGE_SIZE};

use crate::heap::Lock;
use crate::ipc::Cap;
use crate::sys;

/// Stack pages of each thread (64 KiB), besides the guard page.
pub const STACK_PAGES: u64 = 16;

/// Who frees a thread's stack, agreed between its handle and the thread as it ends.
mod fate {
    /// Neither side has decided.
    pub const RUNNING: u8 = 0;
    /// The handle was dropped first: the thread frees its own stack as it ends.
    pub const DETACHED: u8 = 1;
    /// The thread is ending and leaves its stack to the handle.
    pub const EXITING: u8 = 2;
    /// The handle killed it: it will never decide, the handle frees the stack.
    pub const KILLED: u8 = 3;
}

/// What a new thread gets: its body, its stack, and the fate it shares with its handle.
struct Start {
    body: Box<dyn FnOnce() -> i32 + Send>,
    base: u64,
    fate: Arc<AtomicU8>,
}

/// A running (or ended, not yet joined) thread.
#[must_use = "dropping the handle detaches the thread"]
pub struct JoinHandle {
    cap: Cap,
    /// The guard page; the stack is the `STACK_PAGES` above it.
    base: u64,
    fate: Arc<AtomicU8>,
}

/// Stacks of joined threads kept for reuse, at most.
pub const SPARE_STACKS: usize = 16;

/// Guard-page addresses of stacks nothing uses.
static SPARE: Lock<Vec<u64>> = Lock::new(Vec::new());

/// A stack for a new thread: a spare one, or fresh pages above a guard page the kernel keeps
/// unmapped and reserved.
fn take_stack() -> Result<u64, Error> {
    if let Some(base) = SPARE.with(Vec::pop) {
        return Ok(base);
    }
    Ok(sys::mem_map(STACK_PAGES, MapFlags::WRITE | MapFlags::GUARD)? - PAGE_SIZE)
}

/// Gives back the stack of a thread that has ended.
fn give_stack(base: u64) {
    let kept = SPARE.with(|spare| {
        let keep = spare.len() < SPARE_STACKS && spare.try_reserve(1).is_ok();
        if keep {
            spare.push(base);
        }
        keep
    });
    if !kept {
        // SAFETY: the thread that used it has ended, and it is in no spare list.
        let _ = unsafe { sys::mem_unmap(base + PAGE_SIZE, STACK_PAGES) };
    }
}

/// Starts `body` in a new thread; its return value is the thread's exit code.
pub fn spawn(body: impl FnOnce() -> i32 + Send + 'static) -> Result<JoinHandle, Error> {
    let base = take_stack()?;
    let top = base + (STACK_PAGES + 1) * PAGE_SIZE;
    let fate = Arc::new(AtomicU8::new(fate::RUNNING));
    let arg = Box::into_raw(Box::new(Start { body: Box::new(body), base, fate: fate.clone() }));
    // A function is entered with `rsp + 8` 16-byte aligned (as after a `call`).
    // SAFETY: `start` never returns; the stack is this thread's alone until it is joined.
    match unsafe { sys::thread_create(start as *const () as u64, top - 8, arg as u64) } {
        Ok(handle) => Ok(JoinHandle { cap: Cap(handle), base, fate }),
        Err(e) => {
            // SAFETY: the thread never started, so the body is still ours.
            drop(unsafe { Box::from_raw(arg) });
            give_stack(base);
            Err(e)
        }
    }
}

extern "C" fn start(arg: *mut Start) -> ! {
    // SAFETY: `spawn` passed a leaked `Box<Start>` meant for this thread alone.
    let Start { body, base, fate } = *unsafe { Box::from_raw(arg) };
    let code = body();
    let detached = fate.compare_exchange(fate::RUNNING, fate::EXITING, Ordering::AcqRel, Ordering::Acquire).is_err();
    drop(fate);
    if detached {
        // SAFETY: nobody else will touch the stack: the handle is gone, and this thread stops
        // using it by ending.
        unsafe { sys::thread_exit_unmapping(code, base + PAGE_SIZE, STACK_PAGES) }
    }
    sys::thread_exit(code)
}

impl JoinHandle {
    /// Its capability (to pass to another thread, or to inspect).
    pub fn cap(&self) -> Cap {
        self.cap
    }

    /// Ends the thread at once, wherever it is (it reads as killed when joined).
    ///
    /// # Safety
    /// The thread must not hold anything the rest of the process needs: a lock (the allocator's
    /// included: it must not be allocating or freeing), or data half written. Nothing it owns is
    /// dropped. Killing a thread blocked in IPC, a wait or a sleep is the safe use.
    pub unsafe fn kill(&self) -> Result<(), Error> {
        sys::thread_kill(self.cap.0)?;
        // Ended where it was: it will not free its stack, whatever happens to this handle.
        let _ = self.fate.compare_exchange(fate::RUNNING, fate::KILLED, Ordering::AcqRel, Ordering::Acquire);
        Ok(())
    }

    /// Waits for the thread to end, then frees its stack and slot.
    pub fn join(self) -> Result<ExitStatus, Error> {
        let mut this = core::mem::ManuallyDrop::new(self);
        let result = this.wait_and_free();
        // SAFETY: `this` is not used again (and its `Drop` never runs).
        drop(unsafe { core::ptr::read(&this.fate) });
        result
    }

    /// Waits for the thread, gives its stack back and deletes the capability.
    fn wait_and_free(&mut self) -> Result<ExitStatus, Error> {
        let result = sys::thread_wait(self.cap.0);
        // `NotFound`: somebody else holding a copy of the capability waited for it; it has
        // ended all the same, so its stack is free.
        if matches!(result, Ok(_) | Err(Error::NotFound)) {
            give_stack(self.base);
        }
        let _ = self.cap.delete();
        result
    }
}

impl Drop for JoinHandle {
    /// Detaches the thread: its slot is freed when it ends, and it unmaps its own stack. If it
    /// is already ending (or was killed), this waits for it instead and frees both here.
    fn drop(&mut self) {
        match self.fate.compare_exchange(fate::RUNNING, fate::DETACHED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let _ = sys::thread_detach(self.cap.0);
                let _ = self.cap.delete();
            }
            Err(_) => {
                let _ = self.wait_and_free();
            }
        }
    }
}
