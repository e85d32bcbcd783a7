//! The answer to one client request: a one-shot slot the driver fills and
//! the caller waits on.
//!
//! Not a channel: a channel's receiver spins and yields the CPU in a loop
//! before it sleeps, which is cheap for one waiter and ruinous for hundreds
//! (128 clients blocked in `propose` spent a fifth of the machine in
//! `sched_yield`, measured with `perf` on `raft-kv-bench --clients 128`). A
//! waiter here sleeps on a condition variable at once, and the driver's
//! answer costs one lock and one wake-up.
//!
//! An async caller polls instead (`PendingProposal` is a `Future`): the
//! slot keeps the task's waker, which the answer wakes. No runtime is
//! involved, so any executor can await it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

enum Slot<T> {
    Waiting,
    Answered(T),
    /// The answering side was dropped without answering.
    Abandoned,
    /// The answer was taken.
    Taken,
}

struct State<T> {
    slot: Slot<T>,
    /// The task that last polled, woken by the answer.
    waker: Option<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    answered: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Settles a waiting slot as `settled` and wakes whoever waits.
    fn settle(&self, settled: Slot<T>) {
        let mut state = self.lock();
        if !matches!(state.slot, Slot::Waiting) {
            return;
        }
        state.slot = settled;
        let waker = state.waker.take();
        drop(state);
        self.answered.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
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
        state: Mutex::new(State {
            slot: Slot::Waiting,
            waker: None,
        }),
        answered: Condvar::new(),
    });
    (Answer(Arc::clone(&shared)), Awaited(shared))
}

impl<T> Answer<T> {
    /// Answers, waking the waiter; an answer after the first is ignored.
    pub(crate) fn send(&self, value: T) {
        self.0.settle(Slot::Answered(value));
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        self.0.settle(Slot::Abandoned);
    }
}

impl<T> Awaited<T> {
    /// Waits until the answer arrives or `deadline` passes.
    pub(crate) fn wait_until(&self, deadline: Instant) -> Result<T, NoAnswer> {
        let mut state = self.0.lock();
        while matches!(state.slot, Slot::Waiting) {
            state = wait_until(&self.0.answered, state, deadline).ok_or(NoAnswer::Timeout)?;
        }
        take(&mut state.slot)
    }

    /// The answer if it has arrived; else remembers `cx`'s waker, which the
    /// answer wakes. Never [`NoAnswer::Timeout`]: a poller keeps its own time.
    pub(crate) fn poll_answer(&self, cx: &mut Context<'_>) -> Poll<Result<T, NoAnswer>> {
        let mut state = self.0.lock();
        if matches!(state.slot, Slot::Waiting) {
            state.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(take(&mut state.slot))
    }

    /// Whether [`Awaited::wait_until`] would return at once.
    pub(crate) fn is_settled(&self) -> bool {
        !matches!(self.0.lock().slot, Slot::Waiting)
    }
}

/// Waits on `condvar` until it is notified (or wakes spuriously) or
/// `deadline` passes; `None` once the deadline has passed.
pub(crate) fn wait_until<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Instant,
) -> Option<MutexGuard<'a, T>> {
    let now = Instant::now();
    if now >= deadline {
        return None;
    }
    let (guard, _) = condvar
        .wait_timeout(guard, deadline - now)
        .unwrap_or_else(|e| e.into_inner());
    Some(guard)
}

/// Takes a settled slot's answer, leaving it taken.
fn take<T>(slot: &mut Slot<T>) -> Result<T, NoAnswer> {
    match std::mem::replace(slot, Slot::Taken) {
        Slot::Answered(value) => Ok(value),
        Slot::Waiting | Slot::Abandoned | Slot::Taken => Err(NoAnswer::Abandoned),
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
    fn a_poller_is_woken_by_the_answer() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::Wake;
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        let (answer, awaited) = pair();
        assert!(awaited.poll_answer(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        answer.send(7);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(awaited.poll_answer(&mut cx), Poll::Ready(Ok(7)));
    }

    #[test]
    fn no_answer_by_the_deadline_is_a_timeout() {
        let (_answer, awaited) = pair::<u32>();
        let soon = Instant::now() + Duration::from_millis(5);
        assert_eq!(awaited.wait_until(soon), Err(NoAnswer::Timeout));
        assert!(!awaited.is_settled());
    }
}
