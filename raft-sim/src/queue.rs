//! The event queue: events in `(time, seq)` order, where `seq` is a counter
//! assigned at insertion, so equal times pop in insertion order and the
//! order of a run is total and deterministic.
//!
//! A radix heap: simulated time never goes back (an event is scheduled no
//! earlier than the last one popped), so an event waits in the bucket of
//! the highest bit in which its time differs from the last popped time, and
//! a push is a bucket index and a `Vec` push. Only when no event is due at
//! the last popped time is the lowest non-empty bucket spread out again,
//! relative to its earliest time; an event moves down a few buckets in its
//! life instead of sifting through a binary heap of a thousand (mostly
//! superseded wake-ups, whose randomized election deadlines come in no
//! order a FIFO lane could keep). The events due at the last popped time
//! wait in insertion order, which gives exactly the binary heap's `(time,
//! seq)` order.

use crate::network::NetEvent;
use crate::scenario::Fault;
use raft_core::{Event, Instant, Message, RequestId};
use std::collections::VecDeque;

/// Something scheduled.
#[derive(Clone, Debug)]
pub enum SimEvent {
    /// A datagram arrives.
    Message {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// The datagram.
        msg: Message,
    },
    /// A datagram a rule delayed, or one released after a hold: delivered
    /// without being judged again (see [`crate::intercept`]).
    MessageLate {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// The datagram.
        msg: Message,
    },
    /// A network follow-up (stream connect, frame delivery, stall check, close notice).
    Net(NetEvent),
    /// An fsync of node `node` completes.
    Fsync {
        /// The node.
        node: usize,
        /// Its incarnation when the fsync started.
        incarnation: u64,
        /// The fsync's token.
        upto: u64,
    },
    /// A core event for a node (client requests, snapshot reports).
    Deliver {
        /// The node.
        node: usize,
        /// Its incarnation when this was sent.
        incarnation: u64,
        /// The event.
        event: Event,
    },
    /// The driver of an initial member bootstraps it (just after each start).
    Bootstrap {
        /// The node.
        node: usize,
        /// Its incarnation when it started.
        incarnation: u64,
    },
    /// The node's timer.
    Wake {
        /// The node.
        node: usize,
        /// Skip unless it matches the host's current generation.
        generation: u64,
    },
    /// A client invokes its next operation.
    ClientInvoke {
        /// The client slot.
        client: usize,
    },
    /// A client gives up on a request.
    ClientTimeout {
        /// The request.
        id: RequestId,
    },
    /// A scheduled fault.
    Fault(Fault),
    /// The chaos phase ends: heal everything.
    Heal,
    /// The run ends.
    End,
}

/// A queued event's order key and where the event waits. The events
/// themselves stay put in [`EventQueue::slots`], so moving an entry from
/// bucket to bucket moves 24 bytes instead of a whole `SimEvent` (a
/// message with its body).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Queued {
    at: Instant,
    seq: u64,
    slot: u32,
}

/// Buckets of events later than the last popped time: bucket `b` holds
/// those whose time differs from it first in bit `b` (counting from the
/// top, see [`bucket_of`]).
const BUCKETS: usize = 64;

/// The bucket of time `at` relative to `base` (`at > base`): the index of
/// the highest bit in which they differ.
fn bucket_of(base: u64, at: u64) -> usize {
    debug_assert!(at > base);
    (63 - (at ^ base).leading_zeros()) as usize
}

/// Scheduled events in `(time, seq)` order.
pub(crate) struct EventQueue {
    /// The last popped time (or the time the earliest bucket was spread
    /// relative to): no queued event is earlier.
    base: u64,
    /// The events due at `base`, in insertion (`seq`) order.
    due: VecDeque<Queued>,
    /// The later events, by [`bucket_of`] relative to `base`, in no order.
    buckets: [Vec<Queued>; BUCKETS],
    /// Bit `b` set iff `buckets[b]` is not empty.
    occupied: u64,
    seq: u64,
    /// The queued events, indexed by [`Queued::slot`]; `None` is free.
    slots: Vec<Option<SimEvent>>,
    /// Free indexes of `slots`, reused before `slots` grows.
    free: Vec<u32>,
}

impl Default for EventQueue {
    fn default() -> EventQueue {
        EventQueue {
            base: 0,
            due: VecDeque::new(),
            buckets: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
            seq: 0,
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl EventQueue {
    /// Queues `event` at `at`, after everything already queued at `at`.
    /// `at` is never before the last popped event's time (the world
    /// schedules nothing in its past).
    // Inlined (as `pop`): every event passes through both, and the event
    // is moved once less on each side.
    #[inline]
    pub(crate) fn push(&mut self, at: Instant, event: SimEvent) {
        assert!(
            at.0 >= self.base,
            "an event at {at} is scheduled before the last popped time {}",
            Instant(self.base)
        );
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                debug_assert!(self.slots[slot as usize].is_none());
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 queued events");
                self.slots.push(Some(event));
                slot
            }
        };
        let q = Queued {
            at,
            seq: self.seq,
            slot,
        };
        if at.0 == self.base {
            // Its `seq` is the highest yet: the due events stay in order.
            self.due.push_back(q);
        } else {
            let b = bucket_of(self.base, at.0);
            self.buckets[b].push(q);
            self.occupied |= 1 << b;
        }
    }

    /// When the earliest event is due.
    pub(crate) fn peek_at(&self) -> Option<Instant> {
        if !self.due.is_empty() {
            return Some(Instant(self.base));
        }
        if self.occupied == 0 {
            return None;
        }
        let b = self.occupied.trailing_zeros() as usize;
        self.buckets[b].iter().map(|q| q.at).min()
    }

    /// The earliest event, with its time.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(Instant, SimEvent)> {
        let q = match self.due.pop_front() {
            Some(q) => q,
            None => self.spread()?,
        };
        let event = self.slots[q.slot as usize].take().unwrap_or_else(|| {
            panic!(
                "queue slot {} of the event at {} (seq {}) is empty",
                q.slot, q.at, q.seq
            )
        });
        self.free.push(q.slot);
        Some((q.at, event))
    }

    /// With nothing due at `base`: moves `base` to the earliest queued time
    /// and spreads that time's bucket out relative to it (its earliest
    /// events become due, sorted by `seq`; the rest go to lower buckets),
    /// and returns the first due. `None` if nothing is queued.
    fn spread(&mut self) -> Option<Queued> {
        debug_assert!(self.due.is_empty());
        if self.occupied == 0 {
            return None;
        }
        let b = self.occupied.trailing_zeros() as usize;
        if self.buckets[b].len() == 1 {
            // The usual case (events are rarely due at the same instant):
            // the one event is the earliest, and the other buckets keep
            // their meaning relative to its time.
            let q = self.buckets[b].pop().expect("one event");
            self.occupied &= !(1 << b);
            self.base = q.at.0;
            return Some(q);
        }
        let mut bucket = std::mem::take(&mut self.buckets[b]);
        self.occupied &= !(1 << b);
        // Every other bucket's events differ from `base` in a higher bit,
        // where this bucket's are 0: this bucket holds the earliest time.
        let base = bucket
            .iter()
            .map(|q| q.at.0)
            .min()
            .expect("an occupied bucket");
        self.base = base;
        for q in bucket.drain(..) {
            if q.at.0 == base {
                self.due.push_back(q);
            } else {
                let to = bucket_of(base, q.at.0);
                debug_assert!(to < b);
                self.buckets[to].push(q);
                self.occupied |= 1 << to;
            }
        }
        // Keep the emptied bucket's allocation for its next events.
        self.buckets[b] = bucket;
        if self.due.len() > 1 {
            self.due.make_contiguous().sort_unstable_by_key(|q| q.seq);
        }
        self.due.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events pushed at times in and out of order pop by `(time,
    /// insertion)`, like a plain heap.
    #[test]
    fn events_pop_in_time_then_insertion_order() {
        let mut q = EventQueue::default();
        let mut x: u64 = 7;
        let mut want = Vec::new();
        for i in 0..2_000u64 {
            // Half in time order (lane material), half at random.
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let at = Instant(if i % 2 == 1 { i / 40 } else { (x >> 33) % 50 });
            let event = match i % 4 {
                0 => SimEvent::Wake {
                    node: i as usize,
                    generation: 0,
                },
                1 => SimEvent::ClientTimeout { id: RequestId(i) },
                2 => SimEvent::ClientInvoke { client: i as usize },
                _ => SimEvent::Fsync {
                    node: i as usize,
                    incarnation: 0,
                    upto: 0,
                },
            };
            want.push((at, i));
            q.push(at, event);
        }
        want.sort();
        let mut got = Vec::new();
        while let Some(at) = q.peek_at() {
            let (popped_at, event) = q.pop().expect("peeked");
            assert_eq!(popped_at, at);
            let i = match event {
                SimEvent::Wake { node, .. } => node as u64,
                SimEvent::ClientTimeout { id } => id.0,
                SimEvent::ClientInvoke { client } => client as u64,
                SimEvent::Fsync { node, .. } => node as u64,
                _ => unreachable!(),
            };
            got.push((popped_at, i));
        }
        assert_eq!(got, want);
    }

    /// Pushes interleaved with pops, as a run makes them (never before the
    /// last popped time, often at it or at a time already queued), pop in
    /// exactly the order of a binary heap of `(time, insertion)`.
    #[test]
    fn interleaved_pushes_pop_like_a_heap_of_time_then_insertion() {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut q = EventQueue::default();
        let mut model = BinaryHeap::new();
        let (mut x, mut now, mut n) = (11u64, 0u64, 0u64);
        let mut next = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            x >> 33
        };
        for round in 0..20_000u64 {
            let pushes = next() % 3;
            for _ in 0..pushes {
                let at = match next() % 4 {
                    0 => now,
                    1 => now + next() % 4,
                    2 => now + next() % 1_000_000,
                    _ => now + (next() % 64) * 1_000,
                };
                n += 1;
                q.push(Instant(at), SimEvent::ClientInvoke { client: n as usize });
                model.push(Reverse((at, n)));
            }
            if round % 3 != 0 {
                assert_eq!(
                    q.peek_at(),
                    model.peek().map(|Reverse((at, _))| Instant(*at))
                );
                let got = q.pop().map(|(at, e)| match e {
                    SimEvent::ClientInvoke { client } => (at.0, client as u64),
                    _ => unreachable!(),
                });
                let want = model.pop().map(|Reverse(k)| k);
                assert_eq!(got, want);
                if let Some((at, _)) = got {
                    now = at;
                }
            }
        }
        while let Some(Reverse(want)) = model.pop() {
            let (at, e) = q.pop().expect("as many events as the model");
            let SimEvent::ClientInvoke { client } = e else {
                unreachable!()
            };
            assert_eq!((at.0, client as u64), want);
        }
        assert!(q.pop().is_none());
    }
}
