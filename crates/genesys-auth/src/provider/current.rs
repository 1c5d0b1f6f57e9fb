//! The provider's current token, and per-thread copies of it.
//!
//! Cloning one shared `Arc` from several threads makes its reference count bounce between cores
//! (measured: 41 ns a call from one thread, 106 ns from two). So each thread serves its own copy
//! of the fresh token, from a cell of its own that only it reads.
//!
//! The token changes only through [`CurrentToken::set`] and [`CurrentToken::clear_if`], and both
//! retire every copy: the generation advances, so that no reader serves an old copy, and every
//! cell is emptied from the retiring thread, so that no copy of a forgotten token stays in
//! memory, even in a thread that never calls again.
//!
//! Emptying another thread's cell while it may be reading it is the one delicate step. The
//! reader marks itself `reading` and then loads the copy; the retirer swaps the copy out and
//! then checks `reading`, and frees the copy only once the reader is done. The two sides need a
//! full barrier between their store and their load (Dekker's pattern); the reader's, on the
//! path that runs millions of times, is a compiler fence only, and the retirer's, which runs at
//! a refresh, is `membarrier(2)`, which makes every thread of the process pass a barrier
//! ([`crate::sync::barrier`]; where the kernel lacks it, both sides use a full fence).

use std::cell::{RefCell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use arc_swap::{ArcSwapOption, Guard};

use crate::grant::AccessToken;
use crate::sync::barrier::{expedited, heavy_barrier, light_barrier};
use crate::sync::lock;

/// The token held, with the points where it becomes refresh-due and where it counts as expired.
pub(super) struct Cached {
    pub(super) token: Arc<AccessToken>,
    pub(super) refresh_at: Instant,
    pub(super) hard_expiry: Instant,
}

/// One thread's copy of one provider's token, on a cache line of its own. Only its thread reads
/// it and puts copies in; any thread may take the copy out (see the module's notes).
#[repr(align(64))]
struct Cell {
    /// Set while the owning thread reads `token`.
    reading: AtomicBool,
    /// The copy, an `Arc<AccessToken>` as a raw pointer, or null. Whoever swaps a pointer out
    /// owns it.
    token: AtomicPtr<AccessToken>,
    /// The generation the copy was made at and when it becomes refresh-due: written and read
    /// by the owning thread only.
    meta: UnsafeCell<(u64, Instant)>,
}

// SAFETY: `reading` and `token` are atomics; `meta` is touched only by the thread that owns the
// cell (through its thread-local list), never through the registry other threads use.
unsafe impl Sync for Cell {}

impl Default for Cell {
    fn default() -> Self {
        Self {
            reading: AtomicBool::new(false),
            token: AtomicPtr::new(std::ptr::null_mut()),
            // Never read before the first put: `token` is null until then.
            meta: UnsafeCell::new((0, Instant::now())),
        }
    }
}

impl Cell {
    /// Puts a copy in, dropping what was there (the owning thread only).
    fn put(&self, generation: u64, refresh_at: Instant, token: Arc<AccessToken>) {
        // SAFETY: only the owning thread, which is here, reads or writes `meta`.
        unsafe { *self.meta.get() = (generation, refresh_at) };
        let old = self
            .token
            .swap(Arc::into_raw(token).cast_mut(), Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: every non-null pointer here came from `Arc::into_raw`, and the swap made
            // this call its only owner; only this thread reads through it, and it is not reading.
            drop(unsafe { Arc::from_raw(old) });
        }
    }

    /// The copy, if it was made at `generation` and is fresh at `now` (the owning thread only).
    fn read(&self, generation: u64, now: Instant, expedited: bool) -> Option<Arc<AccessToken>> {
        self.reading.store(true, Ordering::Relaxed);
        light_barrier(expedited);
        let p = self.token.load(Ordering::Acquire);
        // SAFETY: only the owning thread, which is here, reads or writes `meta`.
        let (made_at, refresh_at) = unsafe { *self.meta.get() };
        let token = (!p.is_null() && made_at == generation && now < refresh_at).then(|| {
            // SAFETY: `p` is a live `Arc<AccessToken>` owned by the cell: a thread that takes
            // it out waits for `reading` to be false before dropping it, and the barrier pair
            // makes it see `reading` set if this load saw the pointer.
            unsafe {
                Arc::increment_strong_count(p);
                Arc::from_raw(p)
            }
        });
        self.reading.store(false, Ordering::Release);
        token
    }

    /// Takes the copy out, for the caller to drop once the owner is not reading it.
    fn take_raw(&self) -> *mut AccessToken {
        self.token.swap(std::ptr::null_mut(), Ordering::AcqRel)
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        let p = *self.token.get_mut();
        if !p.is_null() {
            // SAFETY: the cell is being dropped, so no thread can read or swap it any more.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

/// Providers are told apart in the threads' cell lists by a number never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How many providers a thread keeps cells for; a thread using more evicts the oldest.
const CELLS_PER_THREAD: usize = 4;

/// A thread's cells: (provider id, cell), and the next entry to evict.
type ThreadCells = (usize, [Option<(u64, Arc<Cell>)>; CELLS_PER_THREAD]);

thread_local! {
    static CELLS: RefCell<ThreadCells> = const { RefCell::new((0, [None, None, None, None])) };
}

pub(super) struct CurrentToken {
    id: u64,
    /// Whether the barrier pair is the fast one (asked once, here, not on every read).
    expedited: bool,
    /// Advanced at every change of the token; copies of an older generation are never served.
    generation: AtomicU64,
    shared: ArcSwapOption<Cached>,
    /// Every thread's cell for this provider, so that a change can empty them all.
    cells: Mutex<Vec<Weak<Cell>>>,
}

impl CurrentToken {
    pub(super) fn new() -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            expedited: expedited(),
            generation: AtomicU64::new(0),
            shared: ArcSwapOption::empty(),
            cells: Mutex::new(Vec::new()),
        }
    }

    /// The generation now; read it before [`CurrentToken::load`] and pass it to
    /// [`CurrentToken::keep_copy`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// This thread's copy, if it is of the current token and still fresh at `now`.
    pub(super) fn fresh_copy(&self, generation: u64, now: Instant) -> Option<Arc<AccessToken>> {
        CELLS
            .try_with(|cells| {
                let cells = cells.try_borrow().ok()?;
                let (_, cell) = cells.1.iter().flatten().find(|(id, _)| *id == self.id)?;
                cell.read(generation, now, self.expedited)
            })
            .ok()
            .flatten()
    }

    /// The token held, for the slow path.
    pub(super) fn load(&self) -> Guard<Option<Arc<Cached>>> {
        self.shared.load()
    }

    /// The token held, as an `Arc` of its own.
    pub(super) fn load_full(&self) -> Option<Arc<Cached>> {
        self.shared.load_full()
    }

    /// Makes this thread's copy of `c`, read at `generation`, and returns it.
    pub(super) fn keep_copy(&self, generation: u64, c: &Cached) -> Arc<AccessToken> {
        let token = Arc::new(AccessToken::clone(&c.token));
        let Some(cell) = self.own_cell() else {
            return token;
        };
        // Put in only if the token has not changed since `generation` was read, and inside a
        // `reading` section: a change advances the generation and then waits for sections in
        // progress, so a copy of an old token is never left behind (see `drain`).
        cell.reading.store(true, Ordering::Relaxed);
        light_barrier(self.expedited);
        if self.generation() == generation {
            cell.put(generation, c.refresh_at, token.clone());
        }
        cell.reading.store(false, Ordering::Release);
        token
    }

    /// This thread's cell for this provider, made and registered on first use.
    fn own_cell(&self) -> Option<Arc<Cell>> {
        CELLS
            .try_with(|cells| {
                let mut cells = cells.try_borrow_mut().ok()?;
                if let Some((_, cell)) = cells.1.iter().flatten().find(|(id, _)| *id == self.id) {
                    return Some(cell.clone());
                }
                let cell = Arc::new(Cell::default());
                {
                    let mut all = lock(&self.cells);
                    all.retain(|w| w.strong_count() > 0);
                    all.push(Arc::downgrade(&cell));
                }
                let at = cells.0;
                cells.0 = (at + 1) % CELLS_PER_THREAD;
                // An evicted cell is dropped here, by its own thread, with its copy.
                cells.1[at] = Some((self.id, cell.clone()));
                Some(cell)
            })
            .ok()
            .flatten()
    }

    /// Replaces the token held (`None` forgets it) and retires every copy; returns the old one.
    pub(super) fn set(&self, c: Option<Arc<Cached>>) -> Option<Arc<Cached>> {
        let old = self.shared.swap(c);
        self.retire_copies();
        old
    }

    /// Drops the token held if `matches` says so, and retires every copy.
    pub(super) fn clear_if(&self, matches: impl Fn(&Cached) -> bool) {
        self.shared.rcu(|cur| match cur {
            Some(c) if matches(c) => None,
            other => other.clone(),
        });
        self.retire_copies();
    }

    fn retire_copies(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(self.drain());
    }

    /// Takes every thread's copy out, once no thread is reading it. First it waits for the
    /// `reading` sections in progress, so that a copy being put in (of a generation this change
    /// has just ended) is in the cell when the cells are emptied; then it empties them and waits
    /// again, for readers that loaded a copy just before it was taken.
    fn drain(&self) -> Vec<Arc<AccessToken>> {
        let cells: Vec<Arc<Cell>> = lock(&self.cells).iter().filter_map(Weak::upgrade).collect();
        if cells.is_empty() {
            return Vec::new();
        }
        let wait = |cell: &Cell| {
            while cell.reading.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        };
        heavy_barrier();
        cells.iter().for_each(|c| wait(c));
        let taken: Vec<(&Arc<Cell>, *mut AccessToken)> = cells
            .iter()
            .filter_map(|cell| {
                let p = cell.take_raw();
                (!p.is_null()).then_some((cell, p))
            })
            .collect();
        if taken.is_empty() {
            return Vec::new();
        }
        heavy_barrier();
        taken
            .into_iter()
            .map(|(cell, p)| {
                wait(cell);
                // SAFETY: swapped out above, so this thread owns it, and its reader is done.
                unsafe { Arc::from_raw(p.cast_const()) }
            })
            .collect()
    }

    /// How many copies are held now, and whether any holds `secret` (for tests). Taking them
    /// out to look is the only safe way to look; their threads make new ones.
    #[cfg(test)]
    pub(super) fn copies_of(&self, secret: &str) -> (usize, bool) {
        let held = self.drain();
        (held.len(), held.iter().any(|t| t.secret() == secret))
    }
}

impl Drop for CurrentToken {
    /// A provider dropped leaves no copy of its token in any thread.
    fn drop(&mut self) {
        drop(self.drain());
    }
}
