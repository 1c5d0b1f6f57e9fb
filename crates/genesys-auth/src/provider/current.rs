//! The provider's current token, and per-thread copies of it, in safe code only.
//!
//! Cloning one shared `Arc` from several threads makes its reference count bounce between cores:
//! an `ArcSwap` load and clone took 6 ns from one thread and 30–34 ns from two and eight (the
//! `read_options` benchmarks, threads running in parallel), which would put a cached `token()`
//! past 50 ns. So each thread serves its own copy of the fresh token: an `Arc<AccessToken>` of
//! its own, sharing the token's text with every other copy, in a slot that only its thread reads
//! (6 ns at any thread count). A plain thread-local copy is 4 ns cheaper, but no other thread can
//! reach it: a thread that stops calling would keep a forgotten token in memory until it ends.
//!
//! Every change of the token advances a generation, and a copy is served only if it was made at
//! the generation read when the call began: no call that begins after a change is served a copy
//! made before it. The change then empties every slot it can lock at once, so that a thread
//! that never calls again keeps no copy; a slot its thread is reading right now is left (the
//! copy in it is of an old generation, never served, and replaced at that thread's next call).
//! No change ever waits for a reader, and no reader waits for a change: both sides only
//! `try_lock` a slot.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError, Weak};
use std::time::Instant;

use arc_swap::{ArcSwapOption, Guard};

use crate::grant::AccessToken;
use crate::sync::lock;

/// The token held, with the points where it becomes refresh-due and where it counts as expired.
pub(super) struct Cached {
    pub(super) token: Arc<AccessToken>,
    pub(super) refresh_at: Instant,
    pub(super) hard_expiry: Instant,
}

/// One thread's copy of one provider's token, with the generation it was made at.
struct Copy {
    generation: u64,
    refresh_at: Instant,
    token: Arc<AccessToken>,
}

/// A thread's slot for one provider's copy.
type Slot = Mutex<Option<Copy>>;

/// One entry of a thread's slot list.
struct ThreadSlot {
    provider: u64,
    /// Gone once the provider is dropped: the entry is then pruned.
    alive: Weak<()>,
    slot: Arc<Slot>,
}

/// Providers are told apart in the threads' slot lists by a number never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's slots, one per provider it has read from (no fixed limit: a thread that uses
    /// many providers keeps a copy of each rather than evicting and remaking them).
    static SLOTS: RefCell<Vec<ThreadSlot>> = const { RefCell::new(Vec::new()) };
}

pub(super) struct CurrentToken {
    id: u64,
    alive: Arc<()>,
    /// Advanced at every change of the token; copies of an older generation are never served.
    generation: AtomicU64,
    shared: ArcSwapOption<Cached>,
    /// Every thread's slot for this provider, so that a change can empty them.
    slots: Mutex<Vec<Weak<Slot>>>,
}

impl CurrentToken {
    pub(super) fn new() -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            generation: AtomicU64::new(0),
            shared: ArcSwapOption::empty(),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The generation now; read it before [`CurrentToken::load`] and pass it to
    /// [`CurrentToken::keep_copy`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// This thread's copy, if it was made at `generation` and is still fresh at `now`.
    pub(super) fn fresh_copy(&self, generation: u64, now: Instant) -> Option<Arc<AccessToken>> {
        SLOTS
            .try_with(|slots| {
                let slots = slots.try_borrow().ok()?;
                let mine = slots.iter().find(|s| s.provider == self.id)?;
                // Busy only while a change is emptying it: the slow path serves meanwhile.
                let copy = mine.slot.try_lock().ok()?;
                let c = copy.as_ref()?;
                (c.generation == generation && now < c.refresh_at).then(|| c.token.clone())
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
        let Some(slot) = self.own_slot() else {
            return token;
        };
        if let Ok(mut s) = slot.try_lock() {
            // Serving checks the generation anyway; this only keeps a copy of a token that has
            // already changed from being left behind.
            if self.generation() == generation {
                *s = Some(Copy {
                    generation,
                    refresh_at: c.refresh_at,
                    token: token.clone(),
                });
            }
        }
        token
    }

    /// This thread's slot for this provider, made and registered on first use.
    fn own_slot(&self) -> Option<Arc<Slot>> {
        SLOTS
            .try_with(|slots| {
                let mut slots = slots.try_borrow_mut().ok()?;
                if let Some(mine) = slots.iter().find(|s| s.provider == self.id) {
                    return Some(mine.slot.clone());
                }
                // Slots of providers since dropped (emptied then) go when a new one comes.
                slots.retain(|s| s.alive.strong_count() > 0);
                let slot = Arc::new(Slot::default());
                {
                    let mut all = lock(&self.slots);
                    all.retain(|w| w.strong_count() > 0);
                    all.push(Arc::downgrade(&slot));
                }
                slots.push(ThreadSlot {
                    provider: self.id,
                    alive: Arc::downgrade(&self.alive),
                    slot: slot.clone(),
                });
                Some(slot)
            })
            .ok()
            .flatten()
    }

    /// Replaces the token held (`None` forgets it) and retires every copy; returns the old one.
    pub(super) fn set(&self, c: Option<Arc<Cached>>) -> Option<Arc<Cached>> {
        let old = self.shared.swap(c);
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(self.empty_slots());
        old
    }

    /// Takes the copies out of every slot not being read at this instant, without waiting for
    /// any. Those left are of an older generation, never served.
    fn empty_slots(&self) -> Vec<Copy> {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).iter().filter_map(Weak::upgrade).collect();
        slots
            .iter()
            .filter_map(|s| match s.try_lock() {
                Ok(mut c) => c.take(),
                Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
                Err(TryLockError::WouldBlock) => None,
            })
            .collect()
    }

    /// How many copies are held now, and whether any holds `secret` (for tests).
    #[cfg(test)]
    pub(super) fn copies_of(&self, secret: &str) -> (usize, bool) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).iter().filter_map(Weak::upgrade).collect();
        let copies: Vec<Arc<AccessToken>> = slots
            .iter()
            .filter_map(|s| lock(s).as_ref().map(|c| c.token.clone()))
            .collect();
        (copies.len(), copies.iter().any(|t| t.secret() == secret))
    }
}

impl Drop for CurrentToken {
    /// A provider dropped leaves no copy of its token in any thread (no thread can be reading a
    /// provider being dropped, so every slot is free).
    fn drop(&mut self) {
        drop(self.empty_slots());
    }
}
