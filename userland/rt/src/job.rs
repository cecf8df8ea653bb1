//! Programs in the foreground of a terminal: waiting for several processes at once, and
//! Ctrl-C ending them (a shell's pipeline, `ctr run`).
//!
//! Each process is waited for by a thread of its own (a `proc` wait blocks), which signals a bit
//! of one notification when its process ends; the terminal session, armed with the same
//! notification, signals another bit on Ctrl-C. The caller's thread waits on the notification
//! alone, so nothing polls.

use core::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use vessel_abi::Error;
use vessel_device_protocol::Rights;
use vessel_proc_protocol::Ending;
use vessel_protocol::Refusal;

use crate::device::Devices;
use crate::ipc::Notification;
use crate::proc::Proc;

/// Most processes waited for at once.
pub const MAX_JOBS: usize = 16;

/// The notification bit of Ctrl-C (bit `i + 1`: process `i` ended).
const INTERRUPTED: u64 = 1;

/// A terminal session that Ctrl-C can interrupt: the `device` server signals the session's
/// owner instead of passing the byte on, while it is armed and the terminal's newest reading
/// session.
#[derive(Clone, Copy, Debug)]
pub struct Interruptible {
    devices: Devices,
    handle: u64,
}

impl Interruptible {
    /// A session already open (with READ) on a terminal.
    pub fn new(devices: Devices, handle: u64) -> Interruptible {
        Interruptible { devices, handle }
    }

    /// Opens terminal `name` for reading and writing: a session of this process's own, the
    /// terminal's newest.
    pub fn open(name: &str) -> Result<Interruptible, Refusal> {
        let devices = Devices::get()?;
        let handle = devices.open(name, Rights::READ_WRITE)?.handle;
        Ok(Interruptible { devices, handle })
    }

    /// The session's handle.
    pub fn handle(&self) -> u64 {
        self.handle
    }

    fn arm(&self, notification: Notification, bits: u64) -> Result<(), Refusal> {
        let rights = vessel_abi::Rights::SEND | vessel_abi::Rights::TRANSFER;
        let copy = notification.0.duplicate(rights).map_err(|e| Refusal::new(e, "cannot copy the notification"))?;
        self.devices.client().interrupt(self.handle, bits, &[copy.0]).map(|_| ())
    }

    fn disarm(&self) {
        let _ = self.devices.client().interrupt(self.handle, 0, &[]);
    }

    /// Ends the session.
    pub fn close(&self) {
        let _ = self.devices.client().close(self.handle);
    }
}

/// How a waited-for process ended, handed from its waiting thread.
struct Waited {
    kind: AtomicU8,
    value: AtomicI64,
}

static WAITED: [Waited; MAX_JOBS] = [const { Waited { kind: AtomicU8::new(0), value: AtomicI64::new(0) } }; MAX_JOBS];

impl Waited {
    fn store(&self, ended: Result<Ending, Refusal>) {
        let (kind, value) = match ended {
            Ok(Ending::Code(c)) => (1, c),
            Ok(Ending::Fault) => (2, 0),
            Ok(Ending::Killed) => (3, 0),
            Err(e) => (4, e.error as i64),
        };
        self.value.store(value, Ordering::Relaxed);
        self.kind.store(kind, Ordering::Release);
    }

    fn take(&self) -> Result<Ending, Refusal> {
        match self.kind.swap(0, Ordering::Acquire) {
            1 => Ok(Ending::Code(self.value.load(Ordering::Relaxed))),
            2 => Ok(Ending::Fault),
            3 => Ok(Ending::Killed),
            _ => Err(Refusal::new(Error::PeerDied, "proc did not say how the program ended")),
        }
    }
}

/// Waits until every process `(container, pid)` of `jobs` (at most [`MAX_JOBS`]) has ended,
/// calling `ended(i, how)` as each one does; with `terminal`, a Ctrl-C typed there kills them
/// all. One caller at a time per process.
pub fn wait_all(
    proc: Proc,
    jobs: &[(u64, u64)],
    terminal: Option<Interruptible>,
    mut ended: impl FnMut(usize, Result<Ending, Refusal>),
) {
    let Ok(events) = Notification::create() else {
        for (i, &(container, pid)) in jobs.iter().enumerate() {
            ended(i, proc.wait(container, pid));
        }
        return;
    };
    let jobs = &jobs[..jobs.len().min(MAX_JOBS)];
    let armed = terminal.filter(|t| t.arm(events, INTERRUPTED).is_ok());
    let mut waiters = alloc::vec::Vec::new();
    for (i, &(container, pid)) in jobs.iter().enumerate() {
        let bit = 1u64 << (i + 1);
        let waiter = crate::thread::spawn(move || {
            WAITED[i].store(proc.wait(container, pid));
            let _ = events.signal(bit);
            0
        });
        match waiter {
            Ok(w) => waiters.push(w),
            Err(_) => {
                WAITED[i].store(proc.wait(container, pid));
                let _ = events.signal(bit);
            }
        }
    }
    let mut left: u64 = ((1u64 << jobs.len()) - 1) << 1;
    while left != 0 {
        let bits = events.wait().unwrap_or(left);
        if bits & INTERRUPTED != 0 {
            for &(container, pid) in jobs {
                let _ = proc.kill(container, pid);
            }
        }
        for (i, waited) in WAITED.iter().enumerate().take(jobs.len()) {
            let bit = 1u64 << (i + 1);
            if bits & left & bit != 0 {
                left &= !bit;
                ended(i, waited.take());
            }
        }
    }
    for waiter in waiters {
        let _ = waiter.join();
    }
    if let Some(t) = armed {
        t.disarm();
    }
    let _ = events.0.delete();
}
