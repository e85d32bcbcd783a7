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

struct Queued {
    at: Instant,
    seq: u64,
    event: SimEvent,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed, so the max-heap pops the earliest `(at, seq)`.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Scheduled events in `(time, seq)` order.
#[derive(Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Queued>,
    seq: u64,
}

impl EventQueue {
    /// Queues `event` at `at`, after everything already queued at `at`.
    pub(crate) fn push(&mut self, at: Instant, event: SimEvent) {
        self.seq += 1;
        self.heap.push(Queued {
            at,
            seq: self.seq,
            event,
        });
    }

    /// When the earliest event is due.
    pub(crate) fn peek_at(&self) -> Option<Instant> {
        self.heap.peek().map(|q| q.at)
    }

    /// The earliest event, with its time.
    pub(crate) fn pop(&mut self) -> Option<(Instant, SimEvent)> {
        self.heap.pop().map(|q| (q.at, q.event))
    }
}
