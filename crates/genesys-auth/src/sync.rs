//! Locking that survives a panic elsewhere, and the barrier pair of the per-thread token copies.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, ignoring poisoning: every value guarded in this crate stays consistent across a
/// panic (each is replaced whole, or is a plain list), so a panic in one caller must not turn
/// every later caller's lock into a second panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An asymmetric barrier pair for a read path that runs far more often than the writes that
/// must be ordered against it: [`light_barrier`] on the read side is a compiler fence, and
/// [`heavy_barrier`] on the write side makes every thread of the process pass a full barrier
/// (Linux `membarrier(2)`, private expedited). Where that is not available, both are full
/// fences. Between a store and a load on each side, the pair gives Dekker's guarantee: at least
/// one side sees the other's store.
pub(crate) mod barrier {
    use std::sync::OnceLock;
    use std::sync::atomic::{Ordering, compiler_fence, fence};

    /// Whether `membarrier` private expedited works here; registered on first use. Readers ask
    /// once, when their structure is made, and pass the answer to [`light_barrier`].
    pub(crate) fn expedited() -> bool {
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| {
            #[cfg(target_os = "linux")]
            {
                linux::register()
            }
            #[cfg(not(target_os = "linux"))]
            {
                false
            }
        })
    }

    /// The read side's barrier; `expedited` is what [`expedited`] answered.
    #[inline]
    pub(crate) fn light_barrier(expedited: bool) {
        if expedited {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The write side's barrier.
    pub(crate) fn heavy_barrier() {
        #[cfg(target_os = "linux")]
        if expedited() {
            if linux::barrier() {
                return;
            }
            // Registration belongs to the process's memory: a child of fork(2) may have to
            // register again before it may ask.
            if linux::register() && linux::barrier() {
                return;
            }
            // Registered at first use but refused now: readers used compiler fences, and a
            // store they made before their load may still be in a core's store buffer, which
            // drains within microseconds. Wait far longer than that, then fence.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        fence(Ordering::SeqCst);
    }

    #[cfg(target_os = "linux")]
    mod linux {
        const QUERY: libc::c_int = 0;
        const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
        const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

        fn membarrier(cmd: libc::c_int) -> libc::c_long {
            // SAFETY: membarrier takes a command and flags by value and touches no memory of
            // ours; an unknown command or a kernel without it answers an error.
            unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_uint) }
        }

        /// Registers this process for private expedited barriers; whether it can have them.
        pub(super) fn register() -> bool {
            let cmds = membarrier(QUERY);
            let needed = libc::c_long::from(PRIVATE_EXPEDITED | REGISTER_PRIVATE_EXPEDITED);
            cmds >= 0 && cmds & needed == needed && membarrier(REGISTER_PRIVATE_EXPEDITED) == 0
        }

        /// One barrier on every running thread of this process; whether the kernel did it.
        pub(super) fn barrier() -> bool {
            membarrier(PRIVATE_EXPEDITED) == 0
        }
    }
}
