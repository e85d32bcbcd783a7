//! Tunables of one node. The defaults match the original design's timings.

use crate::time::Duration;
use crate::types::NodeId;

/// How a node behaves: its id, timings and limits.
///
/// ```
/// use raft_core::{NodeOptions, NodeId, Duration};
/// let opts = NodeOptions { election_timeout: Duration::from_millis(300), ..NodeOptions::new(NodeId(1)) };
/// assert_eq!(opts.heartbeat_interval, Duration::from_millis(150));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// This node's id.
    pub id: NodeId,
    /// The minimum election timeout `T`; each wait is drawn from `[T, 2T)`.
    /// Also the window in which a follower that heard from a leader (or a
    /// node that restarted with a term) refuses votes, and how long after its
    /// last quorum contact a leader steps down (check-quorum). Default 500 ms.
    pub election_timeout: Duration,
    /// How often a leader sends heartbeats. Default 150 ms.
    pub heartbeat_interval: Duration,
    /// How long a follower waits before reopening a closed stream. Default 10 ms.
    pub reconnect_delay: Duration,
    /// How often drivers flush applied entries to the FSM. Default 10 ms.
    /// (The core emits `Apply` as soon as entries commit; drivers may batch.)
    pub apply_interval: Duration,
    /// How many bytes a leader may stream to one follower beyond its last ack.
    /// Default 4 MiB.
    pub stream_budget_bytes: u64,
    /// The most entries in one chunk, one `Apply` or one proposal batch. Default 1024.
    pub max_batch_entries: usize,
    /// The most payload bytes in one chunk. Default 1 MiB.
    pub max_batch_bytes: u64,
    /// The largest command a proposal may carry; larger ones are refused with
    /// `RequestError::TooLarge`. Default 16 MiB (a chunk must fit a wire frame).
    pub max_entry_bytes: u64,
    /// The most client requests (proposals, reads, changes) waiting at once.
    /// Default 65,536.
    pub max_pending_requests: usize,
    /// Serve reads from a leader lease instead of a heartbeat round. Off by default.
    /// Safe only while clocks drift apart by less than `max_clock_drift_ppm`.
    ///
    /// The lease rests on two refusals, each timed by the refusing node's own
    /// clock: a follower refuses votes and pre-votes for `election_timeout`
    /// after it last heard from its leader, and a node that recovered a term
    /// refuses them for `election_timeout` after [`Node::new`](crate::Node::new),
    /// so a restart cannot cut short the promise its last answer made. Any
    /// later leader needs a vote from a node of the quorum that confirmed the
    /// lease's round, and none gives one before the lease (shortened by the
    /// drift bound) has ended. Transfer votes are the exception; a leader
    /// that sends `TimeoutNow` gives up its lease for the rest of its term.
    /// The full argument is in `docs/protocol.md`, *Lease reads*.
    pub lease_reads: bool,
    /// The bound on relative clock-rate drift lease reads assume, in parts per
    /// million. The lease lasts `election_timeout * (1 - drift)` from the send
    /// time of the heartbeat round a quorum acknowledged. Default 10,000 (1 %).
    pub max_clock_drift_ppm: u64,
    /// Ask the driver for a snapshot after this many entries have been applied
    /// since the last one; 0 never asks. Default 8,192.
    pub snapshot_threshold: u64,
    /// Entries kept in the log behind a snapshot so a briefly disconnected
    /// follower resumes without needing the snapshot. Default 1,024.
    pub snapshot_trailing_entries: u64,
    /// Deliberate protocol bugs, honoured only with the `mutants` cargo feature,
    /// so tests can prove that the simulator's oracles notice them.
    #[doc(hidden)]
    pub mutants: Mutants,
}

/// Switches that break a protocol rule on purpose (feature `mutants` only).
#[doc(hidden)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mutants {
    /// Count an earlier-term entry committed by replica count (breaks Raft §5.4.2).
    pub commit_by_count: bool,
    /// Acknowledge appended entries before they are durable.
    pub ack_before_durable: bool,
    /// Grant a vote to every candidate, even after voting in the term.
    pub vote_twice: bool,
}

impl NodeOptions {
    /// Default options for node `id`.
    pub fn new(id: NodeId) -> NodeOptions {
        NodeOptions {
            id,
            election_timeout: Duration::from_millis(500),
            heartbeat_interval: Duration::from_millis(150),
            reconnect_delay: Duration::from_millis(10),
            apply_interval: Duration::from_millis(10),
            stream_budget_bytes: 4 << 20,
            max_batch_entries: 1024,
            max_batch_bytes: 1 << 20,
            max_entry_bytes: 16 << 20,
            max_pending_requests: 65_536,
            lease_reads: false,
            max_clock_drift_ppm: 10_000,
            snapshot_threshold: 8_192,
            snapshot_trailing_entries: 1_024,
            mutants: Mutants::default(),
        }
    }

    /// The lease a quorum-acknowledged heartbeat round buys, shortened by the drift bound.
    pub fn lease_duration(&self) -> Duration {
        let ppm = 1_000_000u64.saturating_sub(self.max_clock_drift_ppm);
        Duration((self.election_timeout.as_nanos() as u128 * ppm as u128 / 1_000_000) as u64)
    }

    pub(crate) fn validate(&self) {
        assert!(self.id.0 != 0, "node id 0 is reserved");
        assert!(
            self.heartbeat_interval < self.election_timeout,
            "heartbeat interval {} must be below the election timeout {}",
            self.heartbeat_interval,
            self.election_timeout
        );
        assert!(
            self.max_batch_entries > 0 && self.max_batch_bytes > 0 && self.stream_budget_bytes > 0
        );
    }
}
