//! Numbered work done a few at a time and handed on in number order: how `api --paginate`
//! fetches the pages of a list paged by page number. What is fetched but waits for an earlier
//! number counts against the window, so the reorder buffer never holds more than the window;
//! the window may change between launches (the rate limit's headers shrink it). Nothing is
//! spawned: dropping the future (the command's deadline) drops every request in flight.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::ops::RangeInclusive;

use futures_util::stream::{FuturesUnordered, StreamExt as _};

/// Runs `fetch(n)` for every `n` in `numbers`, with at most `window` (read before each launch,
/// at least 1) fetched or waiting at a time, and hands each result to `emit` in number order.
/// The first error in number order ends it: nothing after that number is emitted or started,
/// and every number before it is emitted first, as a one-at-a-time run would have.
pub async fn in_order<T, E, Fut>(
    numbers: RangeInclusive<u64>,
    window: &Cell<usize>,
    mut fetch: impl FnMut(u64) -> Fut,
    mut emit: impl FnMut(u64, T) -> Result<(), E>,
) -> Result<(), E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut due = *numbers.start();
    let mut pending = numbers.peekable();
    // The lowest number that failed: nothing after it is started.
    let mut stop = u64::MAX;
    let mut running = FuturesUnordered::new();
    let mut done: BTreeMap<u64, Result<T, E>> = BTreeMap::new();
    loop {
        while running.len() + done.len() < window.get().max(1) {
            let Some(n) = pending.next_if(|n| *n <= stop) else {
                break;
            };
            let work = fetch(n);
            running.push(async move { (n, work.await) });
        }
        let Some((n, result)) = running.next().await else {
            return Ok(());
        };
        if result.is_err() {
            stop = stop.min(n);
        }
        done.insert(n, result);
        while let Some(result) = done.remove(&due) {
            emit(due, result?)?;
            let Some(next) = due.checked_add(1) else {
                return Ok(());
            };
            due = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::rc::Rc;
    use std::time::Duration;

    /// What a run did: the numbers emitted in order, the most in flight at once, and the error.
    struct Run {
        emitted: Vec<u64>,
        most_in_flight: usize,
        most_held: usize,
        error: Option<u64>,
    }

    /// Runs `in_order` over 1..=delays.len() on tokio's paused clock (no real waiting): number
    /// n takes delays[n-1] ms, numbers in `fail` fail, and after `shrink_after` answers the
    /// window becomes `shrunk`.
    fn run(
        delays: &[u64],
        window: usize,
        fail: &[u64],
        shrink: Option<(usize, usize)>,
    ) -> (Run, Vec<(usize, usize)>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let w = Cell::new(window);
            let in_flight = Rc::new(Cell::new(0usize));
            let answered = Rc::new(Cell::new(0usize));
            let most = Rc::new(Cell::new(0usize));
            // (window then, in flight then) at every launch.
            let launches = Rc::new(std::cell::RefCell::new(Vec::new()));
            let mut emitted = Vec::new();
            let mut most_held = 0usize;
            let held = Rc::new(Cell::new(0usize));
            let result = in_order(
                1..=delays.len() as u64,
                &w,
                |n| {
                    let (in_flight, answered, most, held) = (
                        in_flight.clone(),
                        answered.clone(),
                        most.clone(),
                        held.clone(),
                    );
                    in_flight.set(in_flight.get() + 1);
                    most.set(most.get().max(in_flight.get()));
                    launches
                        .borrow_mut()
                        .push((w.get(), in_flight.get() + held.get()));
                    let delay = delays[(n - 1) as usize];
                    let fails = fail.contains(&n);
                    let w = &w;
                    async move {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        in_flight.set(in_flight.get() - 1);
                        held.set(held.get() + 1);
                        answered.set(answered.get() + 1);
                        if let Some((after, to)) = shrink
                            && answered.get() == after
                        {
                            w.set(to);
                        }
                        if fails { Err(n) } else { Ok(n) }
                    }
                },
                |n, v| {
                    assert_eq!(n, v);
                    most_held = most_held.max(held.get());
                    held.set(held.get() - 1);
                    emitted.push(n);
                    Ok(())
                },
            )
            .await;
            let launches = launches.borrow().clone();
            (
                Run {
                    emitted,
                    most_in_flight: most.get(),
                    most_held,
                    error: result.err(),
                },
                launches,
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever order the answers come in, they are handed on in number order, every one
        /// once, with never more than the window in flight or held. Without the reorder
        /// buffer (emitting as answers arrive), the order check fails.
        #[test]
        fn answers_in_any_order_come_out_in_number_order(
            delays in proptest::collection::vec(0u64..50, 1..60),
            window in 1usize..9,
        ) {
            let (r, _) = run(&delays, window, &[], None);
            let want: Vec<u64> = (1..=delays.len() as u64).collect();
            prop_assert_eq!(r.emitted, want);
            prop_assert!(r.most_in_flight <= window, "{} in flight", r.most_in_flight);
            prop_assert!(r.most_held <= window, "{} held", r.most_held);
            prop_assert_eq!(r.error, None);
        }

        /// A failing number ends the run with its error, after every number before it and
        /// none after it.
        #[test]
        fn the_first_failure_in_number_order_ends_it(
            delays in proptest::collection::vec(0u64..50, 2..40),
            window in 1usize..9,
            fails in proptest::collection::vec(1u64..40, 1..4),
        ) {
            let n = delays.len() as u64;
            let fails: Vec<u64> = fails.into_iter().map(|f| (f - 1) % n + 1).collect();
            let first = *fails.iter().min().unwrap();
            let (r, _) = run(&delays, window, &fails, None);
            prop_assert_eq!(r.error, Some(first));
            prop_assert_eq!(r.emitted, (1..first).collect::<Vec<_>>());
        }

        /// A window that shrinks is respected from the next launch on.
        #[test]
        fn a_shrunk_window_is_respected(
            delays in proptest::collection::vec(0u64..50, 10..40),
            after in 1usize..10,
        ) {
            let (r, launches) = run(&delays, 8, &[], Some((after, 1)));
            prop_assert_eq!(r.emitted.len(), delays.len());
            for (w, busy) in launches {
                prop_assert!(busy <= w, "{busy} busy with a window of {w}");
            }
        }
    }

    /// With one at a time, each number starts only after the one before it was handed on.
    #[test]
    fn a_window_of_one_is_sequential() {
        let (r, launches) = run(&[30, 1, 20, 5, 0], 1, &[], None);
        assert_eq!(r.emitted, vec![1, 2, 3, 4, 5]);
        assert_eq!(r.most_in_flight, 1);
        assert!(launches.iter().all(|(_, busy)| *busy == 1), "{launches:?}");
    }

    /// Answers that come back last-first are still handed on first-first.
    #[test]
    fn answers_in_reverse_are_reordered() {
        let (r, _) = run(&[40, 30, 20, 10], 4, &[], None);
        assert_eq!(r.emitted, vec![1, 2, 3, 4]);
        assert_eq!(r.most_in_flight, 4);
    }
}
