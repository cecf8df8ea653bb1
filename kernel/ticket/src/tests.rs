//! Host tests for the ticket lock, also run under Miri (`cargo +nightly miri test -p vessel-ticket`).

use super::*;
use std::thread;

/// Increments per thread in the counting test (Miri is much slower).
const INCREMENTS: u32 = if cfg!(miri) { 50 } else { 10_000 };

/// Waits, yielding, until `lock` has handed out `tickets` tickets.
fn wait_for_tickets<T>(lock: &TicketLock<T>, tickets: u32) {
    while lock.next.load(Ordering::Relaxed) != tickets {
        thread::yield_now();
    }
}

#[test]
fn lock_and_unlock() {
    let lock = TicketLock::new(1);
    assert!(!lock.is_locked());
    {
        let mut guard = lock.lock();
        assert!(lock.is_locked());
        assert_eq!(*guard, 1);
        *guard += 1;
    }
    assert!(!lock.is_locked());
    assert_eq!(*lock.lock(), 2);
    assert_eq!((lock.next.load(Ordering::Relaxed), lock.serving.load(Ordering::Relaxed)), (2, 2));
}

#[test]
fn try_lock_fails_while_held() {
    let lock = TicketLock::new(());
    let guard = lock.try_lock().expect("free");
    assert!(lock.is_locked());
    assert!(lock.try_lock().is_none());
    assert_eq!(lock.next.load(Ordering::Relaxed), 1, "a failed try_lock takes no ticket");
    drop(guard);
    assert!(lock.try_lock().is_some());
    let _held = lock.lock();
    assert!(lock.try_lock().is_none(), "held through lock, too");
}

#[test]
fn dropping_the_guard_releases() {
    static LOCK: TicketLock<Vec<u32>> = TicketLock::new(Vec::new());
    let guard = LOCK.lock();
    let waiter = thread::spawn(|| LOCK.lock().push(2));
    wait_for_tickets(&LOCK, 2);
    assert!(!waiter.is_finished(), "the waiter waits while the guard lives");
    drop(guard);
    waiter.join().expect("the waiter got the lock");
    LOCK.lock().push(3);
    assert_eq!(*LOCK.lock(), [2, 3]);
    assert!(!LOCK.is_locked());
}

#[test]
fn threads_count_exactly() {
    const THREADS: u32 = 4;
    let lock = TicketLock::new(0u32);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..INCREMENTS {
                    // A read and a separate write: lost updates would show without exclusion.
                    let mut guard = lock.lock();
                    let seen = *guard;
                    spin_loop();
                    *guard = seen + 1;
                }
            });
        }
    });
    assert_eq!(*lock.lock(), THREADS * INCREMENTS);
}

#[test]
fn waiters_are_served_in_ticket_order() {
    const WAITERS: u32 = if cfg!(miri) { 4 } else { 8 };
    let lock = &TicketLock::new(Vec::new());
    thread::scope(|s| {
        let guard = lock.lock();
        // Queue the waiters one at a time: waiter `n` holds ticket `n + 1`.
        for n in 0..WAITERS {
            s.spawn(move || lock.lock().push(n));
            wait_for_tickets(lock, n + 2);
        }
        assert!(guard.is_empty(), "nobody got in while the lock was held");
        drop(guard);
    });
    assert_eq!(*lock.lock(), (0..WAITERS).collect::<Vec<_>>(), "served first come, first served");
}

#[test]
fn counters_wrap_around() {
    let lock = TicketLock::new(0u32);
    lock.next.store(u32::MAX - 1, Ordering::Relaxed);
    lock.serving.store(u32::MAX - 1, Ordering::Relaxed);
    for round in 0..4 {
        assert!(!lock.is_locked(), "round {round}");
        *lock.lock() += 1;
        *lock.try_lock().expect("free") += 1;
    }
    assert_eq!(*lock.lock(), 8);
    assert_eq!(lock.next.load(Ordering::Relaxed), 7, "wrapped past u32::MAX");
    // Waiting across the wrap: the holder has ticket u32::MAX, the waiter ticket 0.
    lock.next.store(u32::MAX, Ordering::Relaxed);
    lock.serving.store(u32::MAX, Ordering::Relaxed);
    thread::scope(|s| {
        let guard = lock.lock();
        s.spawn(|| *lock.lock() += 100);
        wait_for_tickets(&lock, 1);
        drop(guard);
    });
    assert_eq!(*lock.lock(), 108);
}

#[test]
fn guards_are_shared_only_like_references() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<TicketLock<u32>>();
    send_and_sync::<TicketGuard<'static, u32>>();
}

#[test]
fn a_handed_over_lock_stays_held_until_released() {
    let lock = TicketLock::new(5);
    let mut guard = lock.lock();
    *guard += 1;
    TicketGuard::hand_over(guard);
    assert!(lock.is_locked(), "handing over keeps the lock");
    assert!(lock.try_lock().is_none());
    // SAFETY: the guard was handed over above and is gone; this releases it once.
    unsafe { lock.unlock_handed_over() };
    assert!(!lock.is_locked());
    assert_eq!(*lock.lock(), 6, "the change made under the handed-over guard is seen");
}
