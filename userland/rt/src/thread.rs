//! Threads: more flows of control in one process, sharing its memory and capabilities. Each
//! has its own stack (mapped here, with an unmapped guard page below it) and its own IPC
//! buffer (the kernel's, found through `fs`; see [`crate::ipc::buffer`]).
//!
//! A thread must be joined: until then the kernel keeps its slot (a process has at most
//! `vessel_abi::MAX_THREADS`), and its stack stays mapped. Joined threads' stacks are kept for
//! the next threads (up to [`SPARE_STACKS`]): starting a thread then maps nothing, and a
//! program that starts threads in a loop does not walk through its address space.

use alloc::boxed::Box;
use alloc::vec::Vec;

use vessel_abi::{Error, ExitStatus, MapFlags, PAGE_SIZE};

use crate::heap::Lock;
use crate::ipc::Cap;
use crate::sys;

/// Stack pages of each thread (64 KiB), besides the guard page.
pub const STACK_PAGES: u64 = 16;

/// What a new thread runs.
type Body = Box<dyn FnOnce() -> i32 + Send>;

/// A running (or ended, not yet joined) thread.
#[must_use = "a thread keeps its slot and stack until joined"]
pub struct JoinHandle {
    cap: Cap,
    /// The guard page; the stack is the `STACK_PAGES` above it.
    base: u64,
}

/// Stacks of joined threads kept for reuse, at most.
pub const SPARE_STACKS: usize = 16;

/// Guard-page addresses of stacks nothing uses.
static SPARE: Lock<Vec<u64>> = Lock::new(Vec::new());

/// A stack for a new thread: a spare one, or fresh pages with the lowest unmapped as a guard.
fn take_stack() -> Result<u64, Error> {
    if let Some(base) = SPARE.with(Vec::pop) {
        return Ok(base);
    }
    let base = sys::mem_map(STACK_PAGES + 1, MapFlags::WRITE)?;
    // SAFETY: the pages were just mapped for this stack and nothing refers to them yet.
    if let Err(e) = unsafe { sys::mem_unmap(base, 1) } {
        // SAFETY: as above.
        let _ = unsafe { sys::mem_unmap(base, STACK_PAGES + 1) };
        return Err(e);
    }
    Ok(base)
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
    let body: Box<Body> = Box::new(Box::new(body));
    let arg = Box::into_raw(body);
    // A function is entered with `rsp + 8` 16-byte aligned (as after a `call`).
    // SAFETY: `start` never returns; the stack is this thread's alone until it is joined.
    match unsafe { sys::thread_create(start as *const () as u64, top - 8, arg as u64) } {
        Ok(handle) => Ok(JoinHandle { cap: Cap(handle), base }),
        Err(e) => {
            // SAFETY: the thread never started, so the body is still ours.
            drop(unsafe { Box::from_raw(arg) });
            give_stack(base);
            Err(e)
        }
    }
}

extern "C" fn start(arg: *mut Body) -> ! {
    // SAFETY: `spawn` passed a leaked `Box<Body>` meant for this thread alone.
    let body = unsafe { Box::from_raw(arg) };
    sys::thread_exit(body())
}

impl JoinHandle {
    /// Its capability (to pass to another thread, or to inspect).
    pub fn cap(&self) -> Cap {
        self.cap
    }

    /// Ends the thread (it reads as killed when joined).
    pub fn kill(&self) -> Result<(), Error> {
        sys::thread_kill(self.cap.0)
    }

    /// Waits for the thread to end, then frees its stack and slot.
    pub fn join(self) -> Result<ExitStatus, Error> {
        let status = sys::thread_wait(self.cap.0)?;
        give_stack(self.base);
        let _ = self.cap.delete();
        Ok(status)
    }
}
