//! The node: all protocol state of one server.

use crate::action::{Action, HardState, Role};
use crate::config::Config;
use crate::entry::LogEntry;
use crate::event::Event;
use crate::message::SnapshotMeta;
use crate::options::NodeOptions;
use crate::time::Instant;
use crate::types::{ClusterId, LogIndex, NodeId, Term};

/// What the driver recovered from durable storage at startup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The last installed or taken snapshot, if any.
    pub snapshot: Option<SnapshotMeta>,
    /// The durable log entries after the snapshot (or from index 1), contiguous.
    pub entries: Vec<LogEntry>,
}

/// A leader's view of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerStatus {
    /// The follower.
    pub id: NodeId,
    /// Highest index known durable on it.
    pub match_index: LogIndex,
    /// Next index to stream.
    pub next_index: LogIndex,
    /// Bytes sent but not acknowledged.
    pub inflight_bytes: u64,
    /// Whether it has an open stream.
    pub streaming: bool,
}

/// A snapshot of a node's state for metrics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Highest committed index it knows.
    pub commit: LogIndex,
    /// Highest index handed to `Apply`.
    pub applied: LogIndex,
    /// Last index in its log.
    pub last_index: LogIndex,
    /// Highest durable index.
    pub durable: LogIndex,
    /// Per-follower replication (leader only).
    pub followers: Vec<FollowerStatus>,
}

/// One server's protocol state. See the crate docs for the driver contract.
pub struct Node {
    options: NodeOptions,
    hard_state: HardState,
    config: Config,
    commit: LogIndex,
}

impl Node {
    /// Builds a node from its options and what the driver recovered from disk.
    pub fn new(options: NodeOptions, recovered: RecoveredState, rng_seed: u64, now: Instant) -> Node {
        let _ = (rng_seed, now, &recovered.entries, &recovered.snapshot);
        Node { options, hard_state: recovered.hard_state, config: Config::default(), commit: LogIndex(0) }
    }
    /// Feeds one event at time `now`; returns the actions to execute in order.
    pub fn step(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let _ = (now, event);
        Vec::new()
    }
    /// When the node next needs a `Tick`.
    pub fn next_deadline(&self) -> Instant {
        Instant::NEVER
    }
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.options.id
    }
    /// Its cluster, once initialized or joined.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        self.hard_state.cluster_id
    }
    /// The membership configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }
}
