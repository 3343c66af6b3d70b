//! The request timeout, without a timer per request.
//!
//! A request that has to wait registers its deadline and waker in its thread's table; a
//! single task sweeps the tables every [`SWEEP_INTERVAL`] and wakes the requests that are
//! overdue, which then end with [`Elapsed`]. Requests that finish in time only insert and
//! remove a table entry, under a lock that only the sweeper (and a request that moved to
//! another thread) ever shares. A tokio timer per request did the same job at a measurable
//! price: each registration and cancellation takes a lock the runtime's time driver also
//! takes while parking, and parked workers were woken more often; one table for all threads
//! moved its lock between the cores on every request (docs/performance.md).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use slab::Slab;
use thread_local::ThreadLocal;

/// How often overdue requests are looked for: a request is abandoned at most this long after
/// its deadline.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// The deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// One thread's waiting requests.
#[derive(Debug, Default)]
struct Table(Mutex<Slab<(Instant, Waker)>>);

impl Table {
    fn lock(&self) -> MutexGuard<'_, Slab<(Instant, Waker)>> {
        // The table is consistent after every single operation, so a panic elsewhere while
        // it was held leaves nothing to repair.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The tables of waiting requests, one per thread, shared by every request of one service.
/// Each table has cache lines of its own: `ThreadLocal` keeps several threads' values side by
/// side, and one thread locking its table must not take the line of another's.
#[derive(Debug, Default)]
pub struct Deadlines {
    tables: Arc<ThreadLocal<CachePadded<Table>>>,
    sweeper: OnceLock<()>,
}

impl Deadlines {
    /// Runs `future` until it finishes or `deadline` passes (noticed within
    /// [`SWEEP_INTERVAL`]), whichever comes first. Must be awaited within a tokio runtime.
    pub async fn run<F: Future>(&self, deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
        let mut future = pin!(future);
        let mut entry = Entry {
            deadlines: self,
            slot: None,
        };
        poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(output));
            }
            if Instant::now() >= deadline {
                return Poll::Ready(Err(Elapsed));
            }
            entry.wait(deadline, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// How many requests are waiting with a deadline.
    pub fn waiting(&self) -> usize {
        self.tables.iter().map(|table| table.lock().len()).sum()
    }

    fn start_sweeper(&self) {
        self.sweeper.get_or_init(|| {
            tokio::spawn(sweep(Arc::downgrade(&self.tables)));
        });
    }
}

/// Wakes overdue requests until the tables are gone.
async fn sweep(tables: Weak<ThreadLocal<CachePadded<Table>>>) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(tables) = tables.upgrade() else {
            return;
        };
        let now = Instant::now();
        for table in tables.iter() {
            for (_, (deadline, waker)) in table.lock().iter() {
                if *deadline <= now {
                    waker.wake_by_ref();
                }
            }
        }
    }
}

/// One request's place in a table, taken when it first waits and given back when it ends.
struct Entry<'a> {
    deadlines: &'a Deadlines,
    slot: Option<(&'a Table, usize, Waker)>,
}

impl Entry<'_> {
    fn wait(&mut self, deadline: Instant, waker: &Waker) {
        match &mut self.slot {
            Some((_, _, known)) if known.will_wake(waker) => {}
            Some((table, key, known)) => {
                known.clone_from(waker);
                if let Some(slot) = table.lock().get_mut(*key) {
                    slot.1 = waker.clone();
                }
            }
            None => {
                self.deadlines.start_sweeper();
                let table: &Table = self.deadlines.tables.get_or(CachePadded::default);
                let key = table.lock().insert((deadline, waker.clone()));
                self.slot = Some((table, key, waker.clone()));
            }
        }
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Some((table, key, _)) = self.slot.take() {
            table.lock().try_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_future_that_finishes_in_time_leaves_no_entry() {
        let deadlines = Deadlines::default();
        let deadline = Instant::now() + Duration::from_secs(5);
        let output = deadlines
            .run(deadline, async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                7
            })
            .await;
        assert_eq!(output, Ok(7));
        assert_eq!(deadlines.waiting(), 0);
    }

    #[tokio::test]
    async fn a_future_that_never_finishes_ends_soon_after_its_deadline() {
        let deadlines = Deadlines::default();
        let started = Instant::now();
        let output = deadlines
            .run(
                started + Duration::from_millis(250),
                std::future::pending::<()>(),
            )
            .await;
        let took = started.elapsed();
        assert_eq!(output, Err(Elapsed));
        assert!(took >= Duration::from_millis(250), "ended early: {took:?}");
        assert!(
            took < Duration::from_millis(250) + SWEEP_INTERVAL * 5,
            "ended late: {took:?}"
        );
        assert_eq!(deadlines.waiting(), 0);
    }

    #[tokio::test]
    async fn waiting_requests_are_counted_until_they_end() {
        let deadlines = Arc::new(Deadlines::default());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let waiting = {
            let deadlines = Arc::clone(&deadlines);
            tokio::spawn(async move {
                deadlines
                    .run(Instant::now() + Duration::from_secs(30), released)
                    .await
            })
        };
        for _ in 0..100 {
            if deadlines.waiting() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(deadlines.waiting(), 1);
        assert!(release.send(()).is_ok());
        let output = waiting.await.map_err(|e| e.to_string());
        assert!(matches!(output, Ok(Ok(Ok(())))), "{output:?}");
        assert_eq!(deadlines.waiting(), 0);
    }
}
