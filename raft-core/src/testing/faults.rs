//! What the test controls between steps: the queue of events, the links and
//! the nodes' lives.

use super::{Cluster, StateMachine};
use crate::{Event, Node, NodeId, RecoveredState, StreamId};

/// The most events [`Cluster::settle`] delivers before it calls the run a
/// livelock.
const SETTLE_DELIVERIES_MAX: u64 = 1_000_000;

impl<M: StateMachine> Cluster<M> {
    /// Queues `event` for node `to`, behind everything queued.
    pub fn push(&mut self, to: NodeId, event: Event) {
        self.queue.push_back((to, event));
    }

    /// The queued events in delivery order, each with its node.
    pub fn queued(&self) -> impl Iterator<Item = (NodeId, &Event)> {
        self.queue.iter().map(|(to, event)| (*to, event))
    }

    /// Removes the queued events for which `matches` holds and returns them
    /// in order: drop them, or [`push`](Cluster::push) them back later to
    /// deliver them late.
    pub fn take_queued(
        &mut self,
        mut matches: impl FnMut(NodeId, &Event) -> bool,
    ) -> Vec<(NodeId, Event)> {
        let mut taken = Vec::new();
        let mut kept = std::collections::VecDeque::with_capacity(self.queue.len());
        for (to, event) in self.queue.drain(..) {
            if matches(to, &event) {
                taken.push((to, event));
            } else {
                kept.push_back((to, event));
            }
        }
        self.queue = kept;
        taken
    }

    /// Delivers the first queued event; returns whether there was one.
    pub fn deliver_next(&mut self) -> bool {
        let Some((to, event)) = self.queue.pop_front() else {
            return false;
        };
        self.step(to, event);
        true
    }

    /// Delivers queued events, and those they cause, until none is left. No
    /// time passes.
    ///
    /// # Panics
    /// After a million deliveries: the nodes livelock.
    pub fn settle(&mut self) {
        let mut delivered = 0;
        while self.deliver_next() {
            delivered += 1;
            assert!(
                delivered < SETTLE_DELIVERIES_MAX,
                "livelock: the cluster never settles"
            );
        }
    }

    /// Drops everything `from` sends to `to` from now on (one direction); a
    /// stream between them breaks at its next frame.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Cuts both directions between `a` and every other node.
    pub fn isolate(&mut self, a: NodeId) {
        self.partition(&[a]);
    }

    /// Cuts both directions between the nodes in `side` and every node not
    /// in it.
    pub fn partition(&mut self, side: &[NodeId]) {
        for a in side.iter().copied() {
            for b in self.ids() {
                if !side.contains(&b) {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
        }
    }

    /// Undoes every cut.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes node `id`: what its disk had not made durable is lost, its
    /// streams close at their other ends, and it ignores events until
    /// [`restart`](Cluster::restart).
    pub fn crash(&mut self, id: NodeId) {
        let host = self.host_mut(id);
        host.up = false;
        host.disk.lose_unsynced();
        let dead: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, (f, l))| *f == id || *l == id)
            .map(|(&s, _)| s)
            .collect();
        for stream in dead {
            let (f, l) = self.streams.remove(&stream).expect("an open stream");
            let other = if f == id { l } else { f };
            self.push(other, Event::StreamClosed { stream });
        }
    }

    /// Restarts node `id` from its disk (with a new seed, as a new process
    /// would draw), its state machine restored from the disk's snapshot.
    ///
    /// # Panics
    /// If the node refuses what its disk holds (a test that rewrote the disk
    /// into an inconsistent state).
    pub fn restart(&mut self, id: NodeId) {
        let now = self.now;
        let options = self.options_of(id);
        let state_machine = (self.new_state_machine)(id);
        let host = self.host_mut(id);
        host.seed += 7919;
        // Within the node's memory budget: the log's front stays on the
        // disk, described by `StoredEntries`, and is read back when needed.
        let cache_bytes_max = options.log_cache_bytes_max;
        let recovered = RecoveredState {
            hard_state: host.disk.hard_state.clone(),
            snapshot: host.disk.snapshot.as_ref().map(|(meta, _)| meta.clone()),
            entries: host.disk.entries.clone(),
            stored: None,
        }
        .split_stored(cache_bytes_max);
        host.node = Node::new(options, recovered, host.seed, now)
            .unwrap_or_else(|e| panic!("node {id} does not recover from its disk: {e}"));
        match host.disk.snapshot.clone() {
            Some((meta, data)) => host.restore(&data, state_machine, meta.config),
            None => {
                host.applied.clear();
                host.applied_config = None;
                host.state_machine = state_machine;
            }
        }
        host.up = true;
    }
}
