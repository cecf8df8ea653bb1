//! Probe roles for the thread tests: processes whose threads end them, fault, or hit limits.

use vessel_rt::abi::Error;
use vessel_rt::ipc::Cap;

use crate::containers::blocked;
use vessel_rt::{sys, thread, time};

/// `threads-exit-main <code>`: three threads keep running while the first returns `code`;
/// the process must end with it, taking the threads along.
pub fn exit_main(code: u64) -> i32 {
    for _ in 0..3 {
        if thread::spawn(|| {
            loop {
                sys::yield_now();
            }
        })
        .is_err()
        {
            return 200;
        }
    }
    sys::yield_now();
    code as i32
}

/// `threads-last-code`: the first thread ends itself with 3; the other ends last (once it is
/// the only one), with 9, which must be the process's exit code.
pub fn last_code() -> i32 {
    let spawned = thread::spawn(|| {
        while sys::process_info(sys::process_id()).map_or(0, |i| i.threads) != 1 {
            sys::yield_now();
        }
        9
    });
    match spawned {
        Ok(handle) => core::mem::forget(handle),
        Err(_) => return 200,
    }
    sys::thread_exit(3)
}

/// `thread-fault`: a second thread touches unmapped memory; the whole process must end with
/// the fault while the first thread is parked.
pub fn fault() -> i32 {
    let spawned = thread::spawn(|| {
        time::sleep_ms(10);
        vessel_rt::arch::provoke(vessel_rt::arch::Fault::NullRead);
        0
    });
    match spawned {
        Ok(handle) => core::mem::forget(handle),
        Err(_) => return 200,
    }
    blocked()
}

/// `thread-hog [park]`: starts parked threads until refused. Exit code: how many started, if
/// the refusal was `QuotaExceeded`; 250 otherwise. With `park`, it parks too instead.
pub fn hog(then_park: bool) -> i32 {
    let mut started = 0;
    loop {
        match thread::spawn(blocked) {
            Ok(handle) => {
                core::mem::forget(handle);
                started += 1;
            }
            Err(Error::QuotaExceeded) if then_park => return blocked(),
            Err(Error::QuotaExceeded) => return started,
            Err(_) => return 250,
        }
    }
}

/// `thread-wait-cap`: waits for a thread of another process through a capability the parent
/// passed; exits with the code that thread ended with (250 if the wait failed).
pub fn wait_foreign(cap: Cap) -> i32 {
    match sys::thread_wait(cap.0).map(|s| s.exit()) {
        Ok(vessel_rt::abi::Exit::Code(code)) => code as i32,
        _ => 250,
    }
}

/// `thread-kill-cap`: tries to kill a thread of another process through a capability the
/// parent passed; 0 if refused with `AccessDenied`.
pub fn kill_foreign(cap: Cap) -> i32 {
    match sys::thread_kill(cap.0) {
        Err(Error::AccessDenied) => 0,
        Ok(()) => 1,
        Err(_) => 2,
    }
}

/// `fs-clobber <rounds>`: loads `fs` with the user data selector (which sets its base to 0)
/// before every yield. The kernel must give every other thread its own `fs` base back anyway.
pub fn fs_clobber(rounds: u64) -> i32 {
    for _ in 0..rounds {
        // SAFETY: only this thread's `fs` changes, and this thread never uses `fs` again: it
        // makes no IPC call (which would read its IPC buffer address through `fs`).
        unsafe { core::arch::asm!("mov fs, {sel:x}", sel = in(reg) 0x1bu16, options(nostack, preserves_flags)) };
        sys::yield_now();
    }
    0
}
