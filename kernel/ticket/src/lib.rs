//! [`TicketLock`]: a fair FIFO spinlock, for the kernel's big lock.
//!
//! Each locker takes a ticket from `next` and waits until `serving` shows it; unlocking serves
//! the next ticket. Unlike a test-and-set lock (`spin::Mutex`), CPUs get the lock in the order
//! they asked for it, so once there are several CPUs none can be starved by the others winning
//! every race for the cache line. On one CPU with interrupts off the lock is never contended:
//! then it costs one `lock xadd` to take a ticket, one load and compare to see it served, and one
//! locked add to serve the next, all inline (every syscall takes it).
//!
//! Invariants: counting with wrapping arithmetic, `serving <= next`, and `next - serving` is the
//! number of tickets taken and not yet done with (the holder's, if any, and the waiters'); the lock
//! is held exactly while `serving != next`, by the one [`TicketGuard`] whose ticket is `serving`.
//! Only that holder changes `serving`, and only by one, when its guard is dropped. The counters
//! wrap after 2^32 tickets, harmlessly while fewer than 2^32 lockers wait at once.
#![cfg_attr(not(test), no_std)]

use core::cell::UnsafeCell;
use core::hint::spin_loop;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

/// A value behind a fair spinlock; see the module documentation.
pub struct TicketLock<T> {
    /// The next ticket to hand out.
    next: AtomicU32,
    /// The ticket whose holder may use `value`.
    serving: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands `value` to one guard at a time (type invariant), so sharing the lock
// between threads only ever moves exclusive access to `value` from one thread to another, which
// needs `T: Send` and not `T: Sync`. The release add in `unlock` and the acquire loads in
// `lock` and `try_lock` order each holder's accesses before the next holder's.
unsafe impl<T: Send> Sync for TicketLock<T> {}

impl<T> TicketLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        TicketLock { next: AtomicU32::new(0), serving: AtomicU32::new(0), value: UnsafeCell::new(value) }
    }

    /// Takes a ticket and waits for it to be served: the lock is held until the guard drops.
    #[inline(always)]
    pub fn lock(&self) -> TicketGuard<'_, T> {
        // Relaxed: the ticket only orders the lockers; what the previous holder did is made
        // visible by the acquire load of `serving` that ends the wait.
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        if self.serving.load(Ordering::Acquire) != ticket {
            self.wait(ticket);
        }
        TicketGuard { lock: self, value: PhantomData }
    }

    /// Spins until `ticket` is served: out of line, so the uncontended `lock` stays a few
    /// instructions.
    #[cold]
    #[inline(never)]
    fn wait(&self, ticket: u32) {
        while self.serving.load(Ordering::Acquire) != ticket {
            spin_loop();
        }
    }

    /// The lock if it is free now, without waiting (and without taking a ticket otherwise).
    #[inline]
    pub fn try_lock(&self) -> Option<TicketGuard<'_, T>> {
        // Acquire: if the lock is free, this reads what the last holder's unlock released.
        let serving = self.serving.load(Ordering::Acquire);
        // Free means no ticket is out past `serving`; taking ticket `serving` then holds it
        // (`serving` cannot move meanwhile: only a holder moves it, and there is none).
        self.next
            .compare_exchange(serving, serving.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| TicketGuard { lock: self, value: PhantomData })
    }

    /// True if someone holds the lock (or is about to). Only a hint: it may change at once.
    pub fn is_locked(&self) -> bool {
        self.next.load(Ordering::Relaxed) != self.serving.load(Ordering::Relaxed)
    }
}

/// Exclusive access to a [`TicketLock`]'s value; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct TicketGuard<'a, T> {
    lock: &'a TicketLock<T>,
    /// Makes the guard `Send` and `Sync` only as `&mut T` is (`lock` alone would make it `Sync`
    /// for any `T: Send`, sharing `&T` between threads). A marker, not a reference, so that no
    /// live `&mut T` outlasts the unlock in `drop`.
    value: PhantomData<&'a mut T>,
}

impl<T> Deref for TicketGuard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock (type invariant), so nothing else accesses the value
        // until it drops, which the borrow of the guard prevents while the reference lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for TicketGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the exclusive borrow of the guard makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> TicketGuard<'_, T> {
    /// Ends the guard but keeps the lock held, for code that releases it elsewhere: the kernel
    /// holds its table lock across a context switch, and the thread switched to releases it
    /// ([`TicketLock::unlock_handed_over`]), so no other CPU can take the lock between the
    /// scheduler's decision and the switch.
    #[inline(always)]
    pub fn hand_over(guard: Self) {
        core::mem::forget(guard);
    }
}

impl<T> TicketLock<T> {
    /// Releases a lock whose guard was handed over ([`TicketGuard::hand_over`]).
    ///
    /// # Safety
    /// The lock is held, its guard was handed over and no longer exists, and nothing uses the
    /// value under that guard's authority any more: this call takes its place, once.
    #[inline(always)]
    pub unsafe fn unlock_handed_over(&self) {
        self.serving.fetch_add(1, Ordering::Release);
    }
}

impl<T> Drop for TicketGuard<'_, T> {
    /// Serves the next ticket. Release: the next holder sees everything done under this one.
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.serving.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
