//! What an operator can read about a node.

use crate::transport::TransportMetrics;
use raft_core::{LogIndex, NodeId, Role, Term};

/// A snapshot of a node's state and counters ([`crate::RaftNode::metrics`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// This node's id (`None` before it initialized or joined).
    pub id: Option<NodeId>,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// The commit index it knows.
    pub commit: LogIndex,
    /// The highest index its FSM has applied.
    pub applied: LogIndex,
    /// The first index still in its log (entries before it are compacted;
    /// those up to `snapshot_index` are the trailing window).
    pub first_index: LogIndex,
    /// The last index in its log.
    pub last_index: LogIndex,
    /// The last index its newest snapshot covers (0 without one).
    pub snapshot_index: LogIndex,
    /// The highest index durable in its log.
    pub durable: LogIndex,
    /// Per-follower replication lag (on the leader; empty elsewhere).
    pub followers: Vec<FollowerLag>,
    /// Transport counters.
    pub transport: TransportMetrics,
    /// Fsyncs issued by the log since open.
    pub wal_fsyncs: u64,
    /// The snapshots this node took since open.
    pub snapshots: SnapshotMetrics,
    /// Entries read back from the log since open (`Action::ReadLog`: for
    /// followers' streams and the apply path, once the node's cache of
    /// `NodeOptions::log_cache_bytes_max` no longer holds them).
    pub log_reads: LogReadMetrics,
}

/// The log reads of a node since open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogReadMetrics {
    /// Reads served.
    pub reads: u64,
    /// Entries they returned.
    pub entries: u64,
    /// Payload bytes of those entries.
    pub bytes: u64,
}

/// The snapshots a node took since open (installs from a leader not
/// counted): how many, and what the last and the slowest cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMetrics {
    /// Snapshots taken and made durable.
    pub taken: u64,
    /// The last one's size in bytes.
    pub last_bytes: u64,
    /// How long the last one took, from the core's request until it was
    /// durable, in milliseconds (replication and applies go on meanwhile
    /// when the FSM offers `Fsm::snapshot_source`).
    pub last_ms: u64,
    /// The slowest so far, in milliseconds.
    pub max_ms: u64,
}

/// How far one follower is behind the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerLag {
    /// The follower.
    pub id: NodeId,
    /// The highest index known durable on it.
    pub match_index: LogIndex,
    /// Entries the leader holds beyond `match_index`.
    pub lag: u64,
    /// Whether it has a replication stream open.
    pub streaming: bool,
    /// Bytes sent on its stream and not yet acknowledged.
    pub inflight_bytes: u64,
}
