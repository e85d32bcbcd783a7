//! The event queue: a min-heap of `(time, seq, event)`, where `seq` is a
//! counter assigned at insertion, so equal times pop in insertion order and
//! the order of a run is total and deterministic.

use crate::network::NetEvent;
use crate::scenario::Fault;
use raft_core::{Event, Instant, Message, RequestId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

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

/// Scheduled events in `(time, seq)` order.
#[derive(Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Queued>,
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
        self.heap.push(Queued {
            at,
            seq: self.seq,
            slot,
        });
    }

    /// When the earliest event is due.
    pub(crate) fn peek_at(&self) -> Option<Instant> {
        self.heap.peek().map(|q| q.at)
    }

    /// The earliest event, with its time.
    pub(crate) fn pop(&mut self) -> Option<(Instant, SimEvent)> {
        let q = self.heap.pop()?;
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
