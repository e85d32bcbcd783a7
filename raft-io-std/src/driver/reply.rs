//! The answer to one client request: a one-shot slot the driver fills and
//! the caller waits on.
//!
//! Not a channel: a channel's receiver spins and yields the CPU in a loop
//! before it sleeps, which is cheap for one waiter and ruinous for hundreds
//! (128 clients blocked in `propose` spent a fifth of the machine in
//! `sched_yield`, measured with `perf` on `raft-kv-bench --clients 128`). A
//! waiter here sleeps on a condition variable at once, and the driver's
//! answer costs one lock and one wake-up.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

enum Slot<T> {
    Waiting,
    Answered(T),
    /// The answering side was dropped without answering.
    Abandoned,
    /// The answer was taken.
    Taken,
}

struct Shared<T> {
    slot: Mutex<Slot<T>>,
    answered: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The driver's side: answers once. Dropped unanswered, the waiter learns
/// that no answer will come.
pub(crate) struct Answer<T>(Arc<Shared<T>>);

/// The caller's side.
pub(crate) struct Awaited<T>(Arc<Shared<T>>);

/// Why no answer was taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// The deadline passed first.
    Timeout,
    /// The answering side was dropped without answering.
    Abandoned,
}

/// A new request's two sides.
pub(crate) fn pair<T>() -> (Answer<T>, Awaited<T>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot::Waiting),
        answered: Condvar::new(),
    });
    (Answer(Arc::clone(&shared)), Awaited(shared))
}

impl<T> Answer<T> {
    /// Answers, waking the waiter; an answer after the first is ignored.
    pub(crate) fn send(&self, value: T) {
        let mut slot = self.0.lock();
        if matches!(*slot, Slot::Waiting) {
            *slot = Slot::Answered(value);
            drop(slot);
            self.0.answered.notify_one();
        }
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        let mut slot = self.0.lock();
        if matches!(*slot, Slot::Waiting) {
            *slot = Slot::Abandoned;
            drop(slot);
            self.0.answered.notify_one();
        }
    }
}

impl<T> Awaited<T> {
    /// Waits until the answer arrives or `deadline` passes.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Result<T, NoAnswer> {
        let mut slot = self.0.lock();
        while matches!(*slot, Slot::Waiting) {
            let now = Instant::now();
            if now >= deadline {
                return Err(NoAnswer::Timeout);
            }
            slot = self
                .0
                .answered
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Answered(value) => Ok(value),
            Slot::Waiting | Slot::Abandoned | Slot::Taken => Err(NoAnswer::Abandoned),
        }
    }

    /// Whether [`Awaited::wait_until`] would return at once.
    pub(crate) fn is_settled(&self) -> bool {
        !matches!(*self.0.lock(), Slot::Waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_first_answer_is_taken_once() {
        let (answer, awaited) = pair();
        assert!(!awaited.is_settled());
        answer.send(1);
        answer.send(2);
        assert!(awaited.is_settled());
        assert_eq!(awaited.wait_until(Instant::now()), Ok(1));
        // Taken: asking again says no answer will come.
        assert_eq!(awaited.wait_until(Instant::now()), Err(NoAnswer::Abandoned));
    }

    #[test]
    fn an_answer_dropped_unsent_wakes_the_waiter() {
        let (answer, awaited) = pair::<u32>();
        let far = Instant::now() + Duration::from_secs(3600);
        let waiter = std::thread::spawn(move || awaited.wait_until(far));
        drop(answer);
        assert_eq!(waiter.join().unwrap(), Err(NoAnswer::Abandoned));
    }

    #[test]
    fn an_answer_from_another_thread_wakes_the_waiter() {
        let (answer, awaited) = pair();
        let far = Instant::now() + Duration::from_secs(3600);
        let waiter = std::thread::spawn(move || awaited.wait_until(far));
        answer.send("done");
        assert_eq!(waiter.join().unwrap(), Ok("done"));
    }

    #[test]
    fn no_answer_by_the_deadline_is_a_timeout() {
        let (_answer, awaited) = pair::<u32>();
        let soon = Instant::now() + Duration::from_millis(5);
        assert_eq!(awaited.wait_until(soon), Err(NoAnswer::Timeout));
        assert!(!awaited.is_settled());
    }
}
