//! Tunables of one node. The defaults match the original design's timings.

use crate::time::Duration;
use crate::types::NodeId;
use crate::wire::MAX_FRAME_BYTES;
use thiserror::Error;

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
    /// The longest a follower waits before reopening a stream. Each open in a
    /// row that the leader refuses (or that never connects) doubles the wait
    /// from `reconnect_delay` up to this cap; any frame from the leader resets
    /// it, a heartbeat from the leader ends the wait at once, and so does a
    /// new leader or term. It bounds the load a removed member (refused for
    /// ever) puts on the leader, and the time a follower cut off from its
    /// leader's stream, but not its heartbeats, takes to notice the link is
    /// back. A cap below `reconnect_delay` turns the backoff off. Default 1 s.
    pub reconnect_delay_max: Duration,
    /// How many bytes a leader may stream to one follower beyond its last ack.
    /// Default 4 MiB.
    pub stream_budget_bytes: u64,
    /// The most entries in one chunk, one `Apply` or one proposal batch. Default 1024.
    pub max_batch_entries: usize,
    /// The most payload bytes in one chunk. Default 1 MiB.
    pub max_batch_bytes: u64,
    /// A learner is promoted to voter once its last catch-up round took less
    /// than an election timeout (thesis §4.2.1) and it trails the leader's log
    /// by at most this many entries (and `promotion_lag_bytes`), so a steady
    /// stream of writes cannot keep it a learner for ever. Default 1024.
    pub promotion_lag_entries: u64,
    /// The most bytes of entries (as counted against the stream budget) a
    /// learner may trail the leader's log by and still be promoted. Default 1 MiB.
    pub promotion_lag_bytes: u64,
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
    /// Accept a membership change before the leader has committed an entry
    /// of its own term (breaks the single-server change rule, thesis §4.1 and
    /// Ongaro's raft-dev fix of 2015).
    pub change_before_term_commit: bool,
    /// Accept a membership change while another is still uncommitted.
    pub changes_in_flight: bool,
}

impl NodeOptions {
    /// Default options for node `id`.
    pub fn new(id: NodeId) -> NodeOptions {
        NodeOptions {
            id,
            election_timeout: Duration::from_millis(500),
            heartbeat_interval: Duration::from_millis(150),
            reconnect_delay: Duration::from_millis(10),
            reconnect_delay_max: Duration::from_secs(1),
            stream_budget_bytes: 4 << 20,
            max_batch_entries: 1024,
            max_batch_bytes: 1 << 20,
            max_entry_bytes: 16 << 20,
            promotion_lag_entries: 1024,
            promotion_lag_bytes: 1 << 20,
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

    /// Checks the rules the node relies on; [`crate::Node::new`] refuses
    /// options that break one.
    pub fn validate(&self) -> Result<(), InvalidOptions> {
        if self.id.0 == 0 {
            return Err(InvalidOptions::ZeroNodeId);
        }
        if self.heartbeat_interval.as_nanos() == 0
            || self.heartbeat_interval >= self.election_timeout
        {
            return Err(InvalidOptions::HeartbeatInterval {
                heartbeat_interval: self.heartbeat_interval,
                election_timeout: self.election_timeout,
            });
        }
        if self.max_batch_entries == 0 || self.max_batch_bytes == 0 || self.stream_budget_bytes == 0
        {
            return Err(InvalidOptions::ZeroLimit);
        }
        // A chunk holds up to `max_batch_bytes`, or one entry of up to
        // `max_entry_bytes`; either must fit a wire frame with room to spare.
        let frame_bytes_max = (MAX_FRAME_BYTES / 2) as u64;
        if self.max_batch_bytes > frame_bytes_max || self.max_entry_bytes > frame_bytes_max {
            return Err(InvalidOptions::BatchTooLarge {
                limit: frame_bytes_max,
            });
        }
        Ok(())
    }
}

/// Options a node cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InvalidOptions {
    /// Node id 0 is reserved.
    #[error("node id 0 is reserved")]
    ZeroNodeId,
    /// The heartbeat interval must be positive and below the election timeout.
    #[error(
        "heartbeat interval {heartbeat_interval} must be positive and below the election timeout {election_timeout}"
    )]
    HeartbeatInterval {
        /// The heartbeat interval given.
        heartbeat_interval: Duration,
        /// The election timeout given.
        election_timeout: Duration,
    },
    /// `max_batch_entries`, `max_batch_bytes` and `stream_budget_bytes` must be positive.
    #[error("batch limits and the stream budget must be positive")]
    ZeroLimit,
    /// `max_batch_bytes` or `max_entry_bytes` above half a wire frame.
    #[error("max_batch_bytes and max_entry_bytes must be at most {limit}")]
    BatchTooLarge {
        /// The largest allowed value.
        limit: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lasts_the_election_timeout_shortened_by_the_drift_bound() {
        let opts = |timeout_ms: u64, drift_ppm: u64| NodeOptions {
            election_timeout: Duration::from_millis(timeout_ms),
            max_clock_drift_ppm: drift_ppm,
            ..NodeOptions::new(NodeId(1))
        };
        assert_eq!(
            opts(500, 10_000).lease_duration(),
            Duration::from_millis(495)
        );
        assert_eq!(
            opts(300, 200_000).lease_duration(),
            Duration::from_millis(240)
        );
        assert_eq!(opts(500, 0).lease_duration(), Duration::from_millis(500));
        // A bound of 100 % drift or more leaves no lease at all.
        assert_eq!(opts(500, 1_000_000).lease_duration(), Duration::ZERO);
        assert_eq!(opts(500, 2_000_000).lease_duration(), Duration::ZERO);
    }
}
