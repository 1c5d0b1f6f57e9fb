//! The provider's current token, and per-thread copies of it.
//!
//! Cloning one shared `Arc` from several threads makes its reference count bounce between cores
//! (measured: 41 ns a call from one thread, 106 ns from two). So each thread serves its own copy
//! of the fresh token, in a slot of this provider's that threads are spread over; a copy's count
//! stays on the threads of its slot.
//!
//! The token changes only through [`CurrentToken::set`] and [`CurrentToken::clear_if`], and both
//! retire every copy: the generation advances, so that no reader serves an old copy, and every
//! slot is emptied, so that no copy of a forgotten token stays in memory. A reader that made its
//! copy while the token changed empties its slot again.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use arc_swap::{ArcSwapOption, Guard};

use crate::grant::AccessToken;

/// Slots for per-thread copies; threads beyond this share slots (and their counts).
const SLOTS: usize = 64;

/// The token held, with the points where it becomes refresh-due and where it counts as expired.
pub(super) struct Cached {
    pub(super) token: Arc<AccessToken>,
    pub(super) refresh_at: Instant,
    pub(super) hard_expiry: Instant,
}

/// A copy of a fresh token for the threads of one slot.
struct Copy {
    generation: u64,
    refresh_at: Instant,
    token: Arc<AccessToken>,
}

/// A slot on a cache line of its own, so that threads of different slots do not share one.
#[repr(align(128))]
#[derive(Default)]
struct Slot(ArcSwapOption<Copy>);

pub(super) struct CurrentToken {
    /// Advanced at every change of the token; copies of an older generation are never served.
    generation: AtomicU64,
    shared: ArcSwapOption<Cached>,
    copies: Box<[Slot]>,
}

impl CurrentToken {
    pub(super) fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            shared: ArcSwapOption::empty(),
            copies: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }

    /// The generation now; read it before [`CurrentToken::load`] and pass it to
    /// [`CurrentToken::keep_copy`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// This thread's copy, if it is of the current token and still fresh at `now`.
    pub(super) fn fresh_copy(&self, generation: u64, now: Instant) -> Option<Arc<AccessToken>> {
        let slot = self.copies[thread_slot()].0.load();
        let c = slot.as_ref()?;
        (c.generation == generation && now < c.refresh_at).then(|| c.token.clone())
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
        let slot = &self.copies[thread_slot()].0;
        slot.store(Some(Arc::new(Copy {
            generation,
            refresh_at: c.refresh_at,
            token: token.clone(),
        })));
        // The token changed while the copy was made: the change may have emptied the slots
        // before this store, so this copy must not stay behind.
        if self.generation() != generation {
            slot.store(None);
        }
        token
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
        for slot in self.copies.iter() {
            if slot.0.load().is_some() {
                slot.0.store(None);
            }
        }
    }

    /// How many copies are held now, and whether any holds `secret` (for tests).
    #[cfg(test)]
    pub(super) fn copies_of(&self, secret: &str) -> (usize, bool) {
        let held: Vec<_> = self.copies.iter().filter_map(|s| s.0.load_full()).collect();
        let any = held.iter().any(|c| c.token.secret() == secret);
        (held.len(), any)
    }
}

/// This thread's slot: threads are given slots in turn, on first use.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|s| {
        let slot = s.get();
        if slot != usize::MAX {
            return slot;
        }
        let slot = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
        s.set(slot);
        slot
    })
}
