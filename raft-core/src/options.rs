//! Tunables of one node. The defaults match the original design's timings.

use crate::time::Duration;
use crate::types::NodeId;
use crate::wire::FRAME_BYTES_MAX;
use serde::{Deserialize, Serialize};
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
    /// How long a leader may hold back a new commit index from a follower
    /// that has no entries to receive. The next chunk of entries carries the
    /// commit index anyway, so under load a follower learns it from that
    /// chunk; only a follower still idle when this delay has passed gets a
    /// chunk with no entries that says it. One such chunk then covers every
    /// commit index move since: a move no longer costs an empty chunk per
    /// follower. It delays a follower's `Apply`, never the leader's, nor a
    /// client's answer. Zero sends at most one such chunk per follower per
    /// step. At most `heartbeat_interval`. Default 1 ms.
    pub commit_notify_delay: Duration,
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
    pub batch_entries_max: usize,
    /// The most payload bytes in one chunk. Default 1 MiB.
    pub batch_bytes_max: u64,
    /// The most bytes of durable entries (as [`LogEntry::budget_bytes`](crate::LogEntry::budget_bytes)
    /// counts them) the node keeps in memory: a cache of the most recent
    /// ones. Older entries are read back through the driver
    /// ([`Action::ReadLog`](crate::Action::ReadLog)) when a follower's
    /// stream or the apply path needs them. Entries not yet durable are
    /// always held, on top of this: a leader's proposals until the driver
    /// persists them, a follower's chunks likewise (at most the leader's
    /// `stream_budget_bytes`). The cache is evicted a whole append batch at a
    /// time, so it may exceed this by one batch (`batch_bytes_max`, or one
    /// entry of up to `entry_bytes_max`). Default 64 MiB; 0 keeps nothing
    /// durable in memory.
    pub log_cache_bytes_max: u64,
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
    pub entry_bytes_max: u64,
    /// The most client requests (proposals, reads, changes) waiting at once.
    /// Default 65,536.
    pub pending_requests_max: usize,
    /// Serve reads from a leader lease instead of a heartbeat round. Off by default.
    /// Safe only while clocks drift apart by less than `clock_drift_ppm_max`.
    ///
    /// The lease rests on two refusals, each timed by the refusing node's own
    /// clock: a follower refuses votes and pre-votes for `election_timeout`
    /// after it last heard from its leader (whatever later term it learns of
    /// meanwhile), and a node that recovered a term
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
    pub clock_drift_ppm_max: u64,
    /// When to ask the driver for a snapshot: by bytes of log applied since
    /// the last one, relative to that snapshot's size. See [`SnapshotPolicy`].
    pub snapshot_policy: SnapshotPolicy,
    /// Entries kept in the log behind a snapshot so a briefly disconnected
    /// follower resumes without needing the snapshot. Default 1,024.
    pub snapshot_trailing_entries: u64,
    /// Deliberate protocol bugs, so tests can prove that the simulator's
    /// oracles notice them. Exists only with the `mutants` cargo feature.
    #[cfg(feature = "mutants")]
    pub mutants: Mutants,
}

/// Switches that break a protocol rule on purpose. Public (at the crate
/// root, and as [`NodeOptions::mutants`]) only with the `mutants` feature;
/// without it the node sees them all off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
            commit_notify_delay: Duration::from_millis(1),
            reconnect_delay: Duration::from_millis(10),
            reconnect_delay_max: Duration::from_secs(1),
            stream_budget_bytes: 4 << 20,
            batch_entries_max: 1024,
            batch_bytes_max: 1 << 20,
            log_cache_bytes_max: 64 << 20,
            entry_bytes_max: 16 << 20,
            promotion_lag_entries: 1024,
            promotion_lag_bytes: 1 << 20,
            pending_requests_max: 65_536,
            lease_reads: false,
            clock_drift_ppm_max: 10_000,
            snapshot_policy: SnapshotPolicy::default(),
            snapshot_trailing_entries: 1_024,
            #[cfg(feature = "mutants")]
            mutants: Mutants::default(),
        }
    }

    /// The protocol bugs switched on: none without the `mutants` feature.
    pub(crate) fn mutants(&self) -> Mutants {
        #[cfg(feature = "mutants")]
        let mutants = self.mutants;
        #[cfg(not(feature = "mutants"))]
        let mutants = Mutants::default();
        mutants
    }

    /// The lease a quorum-acknowledged heartbeat round buys, shortened by the drift bound.
    pub fn lease_duration(&self) -> Duration {
        let ppm = 1_000_000u64.saturating_sub(self.clock_drift_ppm_max);
        Duration((self.election_timeout.as_nanos() as u128 * ppm as u128 / 1_000_000) as u64)
    }

    /// Checks the rules the node relies on; [`crate::Node::new`] refuses
    /// options that break one.
    pub fn validate(&self) -> Result<(), InvalidOptions> {
        if self.id.0 == 0 {
            return Err(InvalidOptions::ZeroNodeId);
        }
        // Check-quorum steps a leader down `election_timeout` after its last
        // quorum contact: with heartbeats more than half of that apart, one
        // slow round trip costs a healthy leader its leadership.
        if self.heartbeat_interval.as_nanos() == 0
            || self.heartbeat_interval.as_nanos() * 2 > self.election_timeout.as_nanos()
        {
            return Err(InvalidOptions::HeartbeatInterval {
                heartbeat_interval: self.heartbeat_interval,
                election_timeout: self.election_timeout,
            });
        }
        if self.commit_notify_delay > self.heartbeat_interval {
            return Err(InvalidOptions::CommitNotifyDelay {
                commit_notify_delay: self.commit_notify_delay,
                heartbeat_interval: self.heartbeat_interval,
            });
        }
        if self.batch_entries_max == 0 || self.batch_bytes_max == 0 || self.stream_budget_bytes == 0
        {
            return Err(InvalidOptions::ZeroLimit);
        }
        // A chunk holds up to `batch_bytes_max`, or one entry of up to
        // `entry_bytes_max`; either must fit a wire frame with room to spare.
        let frame_bytes_max = (FRAME_BYTES_MAX / 2) as u64;
        if self.batch_bytes_max > frame_bytes_max || self.entry_bytes_max > frame_bytes_max {
            return Err(InvalidOptions::BatchTooLarge {
                limit: frame_bytes_max,
            });
        }
        if self.snapshot_policy.log_percent == 0 {
            return Err(InvalidOptions::ZeroSnapshotPercent);
        }
        Ok(())
    }
}

/// When a node asks its driver for a snapshot (`Action::TakeSnapshot`).
///
/// The node counts the entries it applied since its last snapshot and their
/// bytes (each entry's [`LogEntry::budget_bytes`](crate::LogEntry::budget_bytes)),
/// and asks once
///
/// ```text
/// log bytes since the last snapshot >= max(log_bytes_min, log_percent% x last snapshot bytes)
/// ```
///
/// or once a cap is reached (`log_bytes_max`, `log_entries_max`), whichever
/// comes first. The last snapshot's bytes are what the driver reported in
/// `SnapshotTaken` (or the size of a snapshot the leader sent); after a
/// restart they are unknown and count as 0, so the first snapshot then waits
/// for `log_bytes_min` only.
///
/// **Why proportional.** With a fixed entry count a node snapshots its whole
/// state every `n` entries, so as the state grows with the data written the
/// total snapshot work grows with its square. Under this policy, and without
/// the caps, each snapshot `k` costs its size `S_k`, and the log written
/// before the next one, `B_(k+1)`, is at least `p x S_k` (`p = log_percent /
/// 100`). Summed over `n` snapshots after `W` bytes written:
///
/// ```text
/// S_1 + ... + S_n <= (B_2 + ... + B_n) / p + S_n <= W / p + S_n
/// ```
///
/// and `S_n` is the state's size, at most linear in `W` for any state machine
/// whose state grows no faster than its input. So total snapshot work is
/// linear in bytes written (plus at most one snapshot per restart, whose
/// ratio is forgotten); `log_bytes_min` keeps a small state from being
/// snapshotted on every few entries. The price is a log (in memory and on
/// disk) of up to `max(log_bytes_min, p x state)` bytes.
///
/// The caps bound that log instead: a cap that fires on a state larger
/// than itself gives up linearity (a whole snapshot per `log_bytes_max`
/// bytes written), which is why both are off by default.
/// `raft-core/tests/it/snapshot_policy.rs` sums the work over long write sequences.
///
/// ```
/// use raft_core::{SnapshotPolicy, LogSince};
/// let policy = SnapshotPolicy::default();
/// let since = LogSince { entries: 100_000, bytes: 100 << 20 };
/// // 100 MiB of log after a 64 MiB snapshot: due.
/// assert!(policy.is_due(since, 64 << 20));
/// // 100 MiB of log after a 1 GiB snapshot: not yet.
/// assert!(!policy.is_due(since, 1 << 30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPolicy {
    /// The least log bytes between two snapshots. Default 64 MiB.
    pub log_bytes_min: u64,
    /// Log bytes since the last snapshot, in percent of its size, that make
    /// the next one due. Above 0; the lower, the more snapshot work per byte
    /// written (`100 / log_percent` snapshot bytes per log byte) and the
    /// shorter the log. Default 100.
    pub log_percent: u64,
    /// Snapshot once this many log bytes were applied since the last one,
    /// whatever the ratio; `u64::MAX` (the default) is no cap.
    pub log_bytes_max: u64,
    /// Snapshot once this many entries were applied since the last one,
    /// whatever the ratio; `u64::MAX` (the default) is no cap.
    pub log_entries_max: u64,
}

/// The log applied since the last snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogSince {
    /// Entries applied.
    pub entries: u64,
    /// Their bytes, as [`LogEntry::budget_bytes`](crate::LogEntry::budget_bytes) counts them.
    pub bytes: u64,
}

impl SnapshotPolicy {
    /// A policy that never asks for a snapshot.
    pub const NEVER: SnapshotPolicy = SnapshotPolicy {
        log_bytes_min: u64::MAX,
        log_percent: 100,
        log_bytes_max: u64::MAX,
        log_entries_max: u64::MAX,
    };

    /// A policy that asks after every `entries` entries, whatever their
    /// bytes (a cap alone; for tests and small examples: its work is not
    /// linear in bytes written).
    pub const fn every_entries(entries: u64) -> SnapshotPolicy {
        SnapshotPolicy {
            log_entries_max: entries,
            ..SnapshotPolicy::NEVER
        }
    }

    /// Whether a snapshot is due after `since` when the last one took
    /// `last_snapshot_bytes` bytes. Never with nothing applied since.
    pub fn is_due(&self, since: LogSince, last_snapshot_bytes: u64) -> bool {
        if since.entries == 0 {
            return false;
        }
        let proportional = (last_snapshot_bytes as u128 * self.log_percent as u128 / 100)
            .min(u64::MAX as u128) as u64;
        since.bytes >= self.log_bytes_min.max(proportional)
            || since.bytes >= self.log_bytes_max
            || since.entries >= self.log_entries_max
    }
}

impl Default for SnapshotPolicy {
    fn default() -> SnapshotPolicy {
        SnapshotPolicy {
            log_bytes_min: 64 << 20,
            log_percent: 100,
            log_bytes_max: u64::MAX,
            log_entries_max: u64::MAX,
        }
    }
}

/// Options a node cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidOptions {
    /// Node id 0 is reserved.
    #[error("node id 0 is reserved")]
    ZeroNodeId,
    /// The heartbeat interval must be positive and at most half the election
    /// timeout (a leader steps down an election timeout after its last
    /// quorum contact, so a heartbeat round and its answers must fit twice).
    #[error(
        "heartbeat interval {heartbeat_interval} must be positive and at most half the election timeout {election_timeout}"
    )]
    HeartbeatInterval {
        /// The heartbeat interval given.
        heartbeat_interval: Duration,
        /// The election timeout given.
        election_timeout: Duration,
    },
    /// The commit notice delay must not exceed the heartbeat interval.
    #[error(
        "commit notify delay {commit_notify_delay} must be at most the heartbeat interval {heartbeat_interval}"
    )]
    CommitNotifyDelay {
        /// The commit notify delay given.
        commit_notify_delay: Duration,
        /// The heartbeat interval given.
        heartbeat_interval: Duration,
    },
    /// `batch_entries_max`, `batch_bytes_max` and `stream_budget_bytes` must be positive.
    #[error("batch limits and the stream budget must be positive")]
    ZeroLimit,
    /// `snapshot_policy.log_percent` is 0 (a snapshot after every entry).
    #[error("snapshot_policy.log_percent must be positive")]
    ZeroSnapshotPercent,
    /// `batch_bytes_max` or `entry_bytes_max` above half a wire frame.
    #[error("batch_bytes_max and entry_bytes_max must be at most {limit}")]
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
            clock_drift_ppm_max: drift_ppm,
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

    #[test]
    fn a_commit_notice_may_wait_at_most_a_heartbeat_interval() {
        let opts = |delay_ms: u64| NodeOptions {
            commit_notify_delay: Duration::from_millis(delay_ms),
            ..NodeOptions::new(NodeId(1))
        };
        assert_eq!(opts(0).validate(), Ok(()));
        assert_eq!(opts(150).validate(), Ok(()));
        assert_eq!(
            opts(151).validate(),
            Err(InvalidOptions::CommitNotifyDelay {
                commit_notify_delay: Duration::from_millis(151),
                heartbeat_interval: Duration::from_millis(150),
            })
        );
    }

    #[test]
    fn a_chunk_or_an_entry_may_fill_half_a_wire_frame_and_no_more() {
        let half = (FRAME_BYTES_MAX / 2) as u64;
        let opts = |batch: u64, entry: u64| NodeOptions {
            batch_bytes_max: batch,
            entry_bytes_max: entry,
            ..NodeOptions::new(NodeId(1))
        };
        assert_eq!(opts(half, half).validate(), Ok(()));
        let too_large = Err(InvalidOptions::BatchTooLarge { limit: half });
        assert_eq!(opts(half + 1, half).validate(), too_large);
        assert_eq!(opts(half, half + 1).validate(), too_large);
    }
}
