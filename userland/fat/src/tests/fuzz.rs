//! What the fuzz tests share: damage to a base image read through a disk without copying the
//! image, random bytes that tend to matter, and running the cases on a worker thread with a
//! deadline whose panics are caught quietly and kept for the report. Used by `hostile` (the
//! volume on damaged images) and by the check's hostile images.
//!
//! Invariants: only threads started by [`spawn_quiet`] (or [`on_worker`]) have their panics
//! silenced, and only their last message is kept, per thread; every other thread's panics go to
//! the hook that was there before; the hook is installed once per process.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::SplitMix;
use crate::DiskError;

/// Longest a whole run on its worker thread may take.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Block size of the damaged disks.
const BLOCK: usize = 512;

thread_local! {
    /// Whether this thread's panics are caught quietly (a fuzz worker).
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// The last panic on this thread, as the hook saw it.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Makes panics on fuzz worker threads silent (the message is kept for the report), leaving
/// every other thread's to the previous hook.
fn quiet_panics_on_fuzz_threads() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Starts a thread named `thread` whose panics are silent (see [`catch_quietly`]).
pub(crate) fn spawn_quiet<T: Send + 'static>(
    thread: String,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    quiet_panics_on_fuzz_threads();
    std::thread::Builder::new().name(thread).spawn(move || {
        QUIET.with(|q| q.set(true));
        work()
    })
}

/// Runs `case`, catching a panic: `Err` holds its message (on a quiet thread; empty elsewhere).
pub(crate) fn catch_quietly<T>(case: impl FnOnce() -> T) -> Result<T, String> {
    panic::catch_unwind(AssertUnwindSafe(case))
        .map_err(|_| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default())
}

/// Runs `work` on a quiet worker thread named `thread` and returns what it returns, failing the
/// test named `name` if it takes over 300 s (naming the case it was at: `work` stores each
/// case's number in the counter it is given) or dies outside a caught case.
pub(crate) fn on_worker<T: Send + 'static>(
    name: &str,
    thread: String,
    work: impl FnOnce(&AtomicU64) -> T + Send + 'static,
) -> T {
    let progress = Arc::new(AtomicU64::new(0));
    let worker_progress = Arc::clone(&progress);
    let (tx, rx) = mpsc::channel();
    let worker = spawn_quiet(thread, move || {
        let _ = tx.send(work(&worker_progress));
    })
    .expect("spawn");
    match rx.recv_timeout(RUN_LIMIT) {
        Ok(out) => out,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name}: case {} has not finished after {} s: an endless loop?",
            progress.load(Ordering::Relaxed),
            RUN_LIMIT.as_secs()
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = worker.join().err();
            let message = payload
                .as_deref()
                .and_then(|p| {
                    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_default();
            panic!("{name}: the worker died outside the cases (making the base image?) {message}")
        }
    }
}

/// How a case damages a base image: bytes changed, a stretch zeroed, the image cut short.
#[derive(Clone, Debug, Default)]
pub(crate) struct Damage {
    pub(crate) patches: Vec<(usize, u8)>,
    pub(crate) zeroed: Range<usize>,
    pub(crate) len: usize,
}

impl Damage {
    /// Blocks of the damaged image.
    pub(crate) fn blocks(&self) -> u64 {
        (self.len / BLOCK) as u64
    }

    /// Reads blocks from `first` of the damaged copy of `base` into `buf`.
    pub(crate) fn read(&self, base: &[u8], first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let start = first as usize * BLOCK;
        let end = start + buf.len();
        if end > self.len {
            return Err(DiskError::OutOfRange);
        }
        buf.copy_from_slice(&base[start..end]);
        let z = &self.zeroed;
        for at in z.start.max(start)..z.end.min(end) {
            buf[at - start] = 0;
        }
        for &(at, value) in &self.patches {
            if (start..end).contains(&at) {
                buf[at - start] = value;
            }
        }
        Ok(())
    }
}

/// Byte values that tend to mean something in FAT structures.
const INTERESTING: [u8; 12] = [0x00, 0x01, 0x02, 0x05, 0x0F, 0x10, 0x20, 0x2E, 0x40, 0x7F, 0x80, 0xFF];

/// One of `items`.
pub(crate) fn pick<T: Clone>(rng: &mut SplitMix, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize].clone()
}

/// An interesting byte half the time, any byte otherwise.
pub(crate) fn some_byte(rng: &mut SplitMix) -> u8 {
    if rng.below(2) == 0 { pick(rng, &INTERESTING) } else { rng.next() as u8 }
}
