//! The event queue: events in `(time, seq)` order, where `seq` is a counter
//! assigned at insertion, so equal times pop in insertion order and the
//! order of a run is total and deterministic.
//!
//! Most events are scheduled in time order within their kind (frame
//! deliveries, client timeouts, deliveries to a node: a constant or
//! queue-ordered delay after now), so each of a few kinds has a FIFO lane:
//! an event joins its kind's lane when it is due no earlier than the lane's
//! last, and the binary heap otherwise. Every lane stays sorted by
//! `(time, seq)`, so popping the least of the heap's top and the lanes'
//! fronts gives exactly the heap-only order, at a fraction of the cost
//! (the heap held over a thousand events and every one went through it).

use crate::network::NetEvent;
use crate::scenario::Fault;
use raft_core::{Event, Instant, Message, RequestId};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

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

/// A heap entry: the order key and where the event waits. The events
/// themselves stay put in [`EventQueue::slots`], so a heap sift moves 24
/// bytes per level instead of a whole `SimEvent` (a message with its body),
/// which was several percent of a sweep.
#[derive(PartialEq, Eq)]
struct Queued {
    at: Instant,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed, so the max-heap pops the earliest `(at, seq)`. `seq` is
    /// unique, so `slot` never decides.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl Queued {
    /// The order key: the earliest `(at, seq)` pops first.
    fn key(&self) -> (Instant, u64) {
        (self.at, self.seq)
    }
}

/// How many FIFO lanes (see [`lane_of`]).
const LANES: usize = 5;

/// The lane of an event's kind, if it has one: the kinds scheduled most
/// often and (mostly) in time order. Any kind would be correct here (an
/// event out of order goes to the heap); a kind rarely in order would only
/// add a front to compare.
fn lane_of(event: &SimEvent) -> Option<usize> {
    match event {
        SimEvent::Net(NetEvent::DeliverFrame { .. }) => Some(0),
        SimEvent::Wake { .. } => Some(1),
        SimEvent::Fsync { .. } => Some(2),
        SimEvent::Deliver { .. } => Some(3),
        SimEvent::ClientTimeout { .. } => Some(4),
        _ => None,
    }
}

/// Where the earliest event waits.
#[derive(Clone, Copy)]
enum Source {
    Heap,
    Lane(usize),
}

/// Scheduled events in `(time, seq)` order.
#[derive(Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Queued>,
    /// Per kind, events in `(time, seq)` order (see the module doc).
    lanes: [VecDeque<Queued>; LANES],
    seq: u64,
    /// The queued events, indexed by [`Queued::slot`]; `None` is free.
    slots: Vec<Option<SimEvent>>,
    /// Free indexes of `slots`, reused before `slots` grows.
    free: Vec<u32>,
}

impl EventQueue {
    /// Queues `event` at `at`, after everything already queued at `at`.
    pub(crate) fn push(&mut self, at: Instant, event: SimEvent) {
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
        match lane_of(self.slots[slot as usize].as_ref().expect("just stored")) {
            Some(l) if self.lanes[l].back().is_none_or(|last| last.at <= at) => {
                self.lanes[l].push_back(q);
            }
            _ => self.heap.push(q),
        }
    }

    /// Where the earliest event waits, and its key.
    fn earliest(&self) -> Option<(Source, (Instant, u64))> {
        let mut best = self.heap.peek().map(|q| (Source::Heap, q.key()));
        for (l, lane) in self.lanes.iter().enumerate() {
            if let Some(front) = lane.front() {
                if best.is_none_or(|(_, key)| front.key() < key) {
                    best = Some((Source::Lane(l), front.key()));
                }
            }
        }
        best
    }

    /// When the earliest event is due.
    pub(crate) fn peek_at(&self) -> Option<Instant> {
        self.earliest().map(|(_, (at, _))| at)
    }

    /// The earliest event, with its time.
    pub(crate) fn pop(&mut self) -> Option<(Instant, SimEvent)> {
        let q = match self.earliest()?.0 {
            Source::Heap => self.heap.pop(),
            Source::Lane(l) => self.lanes[l].pop_front(),
        }
        .expect("the earliest source holds an event");
        let event = self.slots[q.slot as usize].take().unwrap_or_else(|| {
            panic!(
                "queue slot {} of the event at {} (seq {}) is empty",
                q.slot, q.at, q.seq
            )
        });
        self.free.push(q.slot);
        Some((q.at, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lanes change the cost, never the order: events pushed at times
    /// in and out of order pop by `(time, insertion)`, like a plain heap.
    #[test]
    fn events_pop_in_time_then_insertion_order_whatever_the_lane() {
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
}
