//! A bounded queue in front of a connection's writer thread, limited both in
//! items and in bytes. What happens when it is full is the caller's policy:
//! a message queue drops its oldest datagram, a stream queue closes the stream.
//!
//! A producer may also write to the connection itself, skipping the writer
//! thread, while the queue is empty and the writer idle ([`Outbox::try_hold`]
//! then [`Outbox::release`]): the writer takes nothing while the producer
//! holds the connection, and the producer holds it only when everything
//! queued before was written, so bytes go out in the order they were given.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Why an item was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue is at its item or byte limit.
    Full,
    /// The queue was closed: its connection is gone.
    Closed,
}

struct State<T> {
    items: VecDeque<(T, u64)>,
    bytes: u64,
    closed: bool,
    /// The consumer took a batch and is writing it (until its next `pop_all`).
    writing: bool,
    /// A producer holds the connection to write to it directly.
    held: bool,
}

/// A multi-producer, single-consumer queue with item and byte limits.
pub(crate) struct Outbox<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    items_max: usize,
    bytes_max: u64,
}

impl<T> Outbox<T> {
    pub(crate) fn new(items_max: usize, bytes_max: u64) -> Outbox<T> {
        Outbox {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                closed: false,
                writing: false,
                held: false,
            }),
            ready: Condvar::new(),
            items_max: items_max.max(1),
            bytes_max: bytes_max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` costing `bytes`, or says why not. An item larger than the
    /// whole byte limit is still accepted into an empty queue, so one big
    /// frame can always pass.
    pub(crate) fn push(&self, item: T, bytes: u64) -> Result<(), PushError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PushError::Closed);
        }
        let over_bytes = !s.items.is_empty() && s.bytes + bytes > self.bytes_max;
        if s.items.len() >= self.items_max || over_bytes {
            return Err(PushError::Full);
        }
        s.bytes += bytes;
        s.items.push_back((item, bytes));
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues `item`, dropping the oldest items to make room. Returns how many
    /// were dropped (datagram semantics: the newest heartbeat matters most).
    pub(crate) fn push_dropping_oldest(&self, item: T, bytes: u64) -> Result<usize, PushError> {
        let mut s = self.lock();
        if s.closed {
            return Err(PushError::Closed);
        }
        let mut dropped = 0;
        while !s.items.is_empty()
            && (s.items.len() >= self.items_max || s.bytes + bytes > self.bytes_max)
        {
            let (_, b) = s.items.pop_front().expect("not empty");
            s.bytes -= b;
            dropped += 1;
        }
        s.bytes += bytes;
        s.items.push_back((item, bytes));
        drop(s);
        self.ready.notify_one();
        Ok(dropped)
    }

    /// Waits for items and takes them all; `None` once closed (queued items
    /// of a closed queue are discarded: their connection is gone). The
    /// consumer writes a batch until it calls `pop_all` again: meanwhile no
    /// producer holds the connection.
    pub(crate) fn pop_all(&self) -> Option<Vec<T>> {
        let mut s = self.lock();
        s.writing = false;
        loop {
            if s.closed {
                return None;
            }
            if !s.items.is_empty() && !s.held {
                s.bytes = 0;
                s.writing = true;
                return Some(s.items.drain(..).map(|(item, _)| item).collect());
            }
            s = self.ready.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Takes the connection for a direct write, if nothing is queued and the
    /// consumer is not writing: everything given before has been written.
    /// The caller must [`Outbox::release`] it.
    pub(crate) fn try_hold(&self) -> bool {
        let mut s = self.lock();
        let free = !s.closed && s.items.is_empty() && !s.writing && !s.held;
        if free {
            s.held = true;
        }
        free
    }

    /// Gives the connection back after a direct write, with what the write
    /// could not send (`unsent`, costing `bytes`), which goes first.
    pub(crate) fn release(&self, unsent: Option<T>, bytes: u64) {
        let mut s = self.lock();
        debug_assert!(s.held, "release without try_hold");
        s.held = false;
        if let Some(item) = unsent {
            s.bytes += bytes;
            s.items.push_front((item, bytes));
        }
        // Wake the consumer only for work: a wake-up for nothing is the
        // very hand-off a direct write saves.
        let work = !s.items.is_empty();
        drop(s);
        if work {
            self.ready.notify_one();
        }
    }

    /// Discards everything queued; returns how many items.
    pub(crate) fn clear(&self) -> usize {
        let mut s = self.lock();
        s.bytes = 0;
        let n = s.items.len();
        s.items.clear();
        n
    }

    /// Closes the queue: pushes fail, the consumer's `pop_all` returns `None`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_by_items_and_by_bytes() {
        let q = Outbox::new(2, 100);
        assert_eq!(q.push(1, 10), Ok(()));
        assert_eq!(q.push(2, 95), Err(PushError::Full));
        assert_eq!(q.push(2, 10), Ok(()));
        assert_eq!(q.push(3, 1), Err(PushError::Full));
        assert_eq!(q.pop_all(), Some(vec![1, 2]));
        assert_eq!(q.push(4, 1000), Ok(()), "one oversized item passes alone");
    }

    #[test]
    fn dropping_oldest_keeps_the_newest() {
        let q = Outbox::new(2, 1000);
        for i in 0..5 {
            q.push_dropping_oldest(i, 1).unwrap();
        }
        assert_eq!(q.pop_all(), Some(vec![3, 4]));
    }

    #[test]
    fn the_connection_is_held_only_when_everything_before_was_written() {
        let q = Outbox::new(8, 1000);
        assert!(q.try_hold(), "empty and idle");
        assert!(!q.try_hold(), "held already");
        q.release(Some(1), 1);
        // Unsent bytes of a direct write go before anything queued later.
        q.push(2, 1).unwrap();
        assert!(!q.try_hold(), "items queued");
        assert_eq!(q.pop_all(), Some(vec![1, 2]));
        assert!(!q.try_hold(), "the consumer is writing its batch");
        q.push(3, 1).unwrap();
        assert_eq!(q.pop_all(), Some(vec![3]));
        q.close();
        assert!(!q.try_hold(), "closed");
    }

    #[test]
    fn the_consumer_takes_nothing_while_a_producer_holds_the_connection() {
        let q = std::sync::Arc::new(Outbox::new(8, 1000));
        assert!(q.try_hold());
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || q.pop_all())
        };
        // Queued while held (not done by the driver, but the queue must
        // still keep the order): the consumer waits for the release.
        q.push(2, 1).unwrap();
        q.release(Some(1), 1);
        assert_eq!(consumer.join().unwrap(), Some(vec![1, 2]));
    }

    #[test]
    fn a_closed_queue_refuses_and_wakes_its_consumer() {
        let q = std::sync::Arc::new(Outbox::<u8>::new(4, 4));
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || q.pop_all())
        };
        q.close();
        assert_eq!(consumer.join().unwrap(), None);
        assert_eq!(q.push(1, 1), Err(PushError::Closed));
    }
}
