//! A run as data: every dial ([`Knobs`]) and the timed fault schedule.
//!
//! The seed derives a `Scenario` (see [`crate::swarm`]); micro-randomness
//! (each message's delay, each disk latency, each client's next op) is drawn
//! during the run from seed-derived streams. Keeping the schedule as data is
//! what makes a failing run editable and, later, shrinkable.

use crate::network::NetKnobs;
use crate::rng::Ppm;
use raft_core::{NodeId, NodeOptions, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every dial of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knobs {
    /// Number of nodes (all voters).
    pub nodes: usize,
    /// Total simulated time.
    pub duration_ms: u64,
    /// When the chaos phase ends and the heal begins; liveness is judged at
    /// `duration_ms` (so `duration_ms - chaos_ms` is the liveness bound).
    pub chaos_ms: u64,
    /// The core's minimum election timeout.
    pub election_timeout_ms: u64,
    /// The core's heartbeat interval.
    pub heartbeat_ms: u64,
    /// The core's per-follower stream budget.
    pub stream_budget_bytes: u64,
    /// The core's largest chunk in entries.
    pub batch_entries_max: usize,
    /// When the core asks for snapshots.
    pub snapshot_policy: SnapshotPolicy,
    /// Entries kept behind a snapshot.
    pub snapshot_trailing_entries: u64,
    /// How long the FSM takes to write a snapshot: it is captured when the
    /// core asks (a consistent point) and reported, stored, that much later
    /// while the node goes on replicating and applying.
    pub snapshot_duration_ms: u64,
    /// Network dials.
    pub net: NetKnobs,
    /// Least fsync latency.
    pub fsync_min_ns: u64,
    /// Mean of the exponential part of an fsync latency.
    pub fsync_mean_ns: u64,
    /// A node whose disk is `sick_slowdown` times slower (a gray failure).
    pub sick_node: Option<usize>,
    /// The sick disk's slowdown.
    pub sick_slowdown: u64,
    /// Chance that a crash tears the first lost append.
    pub torn_append: Ppm,
    /// Largest clock drift magnitude, in ppm.
    pub drift_ppm_max: u64,
    /// Each node's clock drift in ppm, by world index, instead of a random
    /// draw within `drift_ppm_max` (for scripted clock scenarios).
    #[serde(default)]
    pub drift_ppm_fixed: Vec<i64>,
    /// Concurrent client processes.
    pub clients: usize,
    /// Keys the clients touch.
    pub keys: u64,
    /// Mean think time between one client's operations.
    pub op_interval_mean_ms: u64,
    /// How long a client waits before recording an unknown outcome.
    pub client_timeout_ms: u64,
    /// Share of reads among operations.
    pub read: Ppm,
    /// Share of compare-and-sets among writes.
    pub cas: Ppm,
    /// A deliberate bug, for tests that prove the oracles notice (never in sweeps).
    #[serde(default)]
    pub mutant: Mutant,
    /// Leaders serve reads from a lease (`NodeOptions::lease_reads`).
    #[serde(default)]
    pub lease_reads: bool,
    /// The core's in-memory log budget (`NodeOptions::log_cache_bytes_max`):
    /// a small one makes streams and applies read entries back from the
    /// disk model all the time.
    #[serde(default = "default_log_cache_bytes_max")]
    pub log_cache_bytes_max: u64,
    /// The bound on clock-rate drift the core's leases assume
    /// (`NodeOptions::clock_drift_ppm_max`); see [`Knobs::drift_within_lease_bound`].
    #[serde(default = "default_clock_drift_ppm_max")]
    pub clock_drift_ppm_max: u64,
    /// A member that also sends protocol-violating frames and messages.
    #[serde(default)]
    pub hostile: Option<HostileKnobs>,
}

fn default_clock_drift_ppm_max() -> u64 {
    raft_core::NodeOptions::new(raft_core::NodeId(1)).clock_drift_ppm_max
}

/// The hostile member: one node whose own (correct) behaviour is interleaved
/// with frames and messages a correct receiver must refuse (see
/// [`crate::hostile`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostileKnobs {
    /// Its world index.
    pub node: usize,
    /// Chance, per frame or message it sends, that an attack goes out with it.
    pub rate: Ppm,
}

/// Deliberately broken behaviour, used only by `tests/oracles_catch_bugs.rs`
/// to prove that each oracle can fail (SIMULATION §2.17).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mutant {
    /// Everything as it should be.
    #[default]
    None,
    /// The driver never writes the hard state (votes and terms are not durable).
    SkipHardState,
    /// The driver reports `LogPersisted` at once, before the fsync.
    EarlyLogPersisted,
    /// The core counts an earlier-term entry committed by replica count
    /// (Raft §5.4.2 broken); needs raft-sim's `mutants` feature.
    CommitByCount,
    /// The core accepts a membership change before its leader committed an
    /// entry of its term; needs raft-sim's `mutants` feature.
    ChangeBeforeTermCommit,
    /// The core accepts a membership change while another is uncommitted;
    /// needs raft-sim's `mutants` feature.
    ChangesInFlight,
}

fn default_log_cache_bytes_max() -> u64 {
    NodeOptions::new(NodeId(1)).log_cache_bytes_max
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            nodes: 5,
            duration_ms: 30_000,
            chaos_ms: 20_000,
            election_timeout_ms: 500,
            heartbeat_ms: 150,
            stream_budget_bytes: 4 << 20,
            batch_entries_max: 1024,
            snapshot_policy: SnapshotPolicy::every_entries(8_192),
            snapshot_trailing_entries: 1_024,
            snapshot_duration_ms: 0,
            log_cache_bytes_max: default_log_cache_bytes_max(),
            net: NetKnobs::default(),
            fsync_min_ns: 200_000,
            fsync_mean_ns: 1_000_000,
            sick_node: None,
            sick_slowdown: 1,
            torn_append: Ppm(500_000),
            drift_ppm_max: 0,
            drift_ppm_fixed: Vec::new(),
            clients: 4,
            keys: 3,
            op_interval_mean_ms: 20,
            client_timeout_ms: 3_000,
            read: Ppm(300_000),
            cas: Ppm(300_000),
            mutant: Mutant::None,
            lease_reads: false,
            clock_drift_ppm_max: default_clock_drift_ppm_max(),
            hostile: None,
        }
    }
}

impl Knobs {
    /// Whether the clocks stay inside the drift bound the leases assume. Each
    /// clock runs within ±`drift_ppm_max` of true time, so two clocks differ in
    /// rate by up to about twice that; a lease of `T * (1 - bound)` on the
    /// slowest clock ends before a vote-refusal window of `T` on the fastest
    /// exactly when `(1 - bound) * (1 + d) <= 1 - d`, i.e. `bound >= 2d / (1 + d)`,
    /// which `2d <= bound` implies.
    pub fn drift_within_lease_bound(&self) -> bool {
        let fixed = self.drift_ppm_fixed.iter().map(|d| d.unsigned_abs());
        let d = fixed.fold(self.drift_ppm_max, u64::max);
        2 * d <= self.clock_drift_ppm_max
    }

    /// The calm network and disk the liveness phase switches to.
    pub fn healed_net(&self) -> NetKnobs {
        NetKnobs {
            tail: Ppm::NEVER,
            drop: Ppm::NEVER,
            duplicate: Ppm::NEVER,
            stream_break: Ppm::NEVER,
            ..self.net.clone()
        }
    }
}

impl fmt::Display for Knobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.net;
        write!(
            f,
            "nodes={} duration={}ms chaos={}ms election={}ms heartbeat={}ms budget={}B batch={} cache={}B snap={}/{}%/{}/{}/{} \
             | net delay={}+{}us drop={} dup={} tail={} stream lat={}us bw={}B/s break={} break_after={}ms \
             detect={}..{}ms | disk fsync={}+{}us sick={:?}x{} torn={} | drift<={}ppm \
             | clients={} keys={} interval={}ms timeout={}ms read={} cas={}{}{}{}",
            self.nodes,
            self.duration_ms,
            self.chaos_ms,
            self.election_timeout_ms,
            self.heartbeat_ms,
            self.stream_budget_bytes,
            self.batch_entries_max,
            self.log_cache_bytes_max,
            self.snapshot_policy.log_bytes_min,
            self.snapshot_policy.log_percent,
            self.snapshot_policy.log_entries_max,
            self.snapshot_trailing_entries,
            self.snapshot_duration_ms,
            n.delay_min_ns / 1_000,
            n.delay_mean_ns / 1_000,
            n.drop.0,
            n.duplicate.0,
            n.tail.0,
            n.stream_latency_ns / 1_000,
            n.bandwidth_bytes_per_s,
            n.stream_break.0,
            n.stream_break_after_ns / 1_000_000,
            n.detect_min_ns / 1_000_000,
            n.detect_max_ns / 1_000_000,
            self.fsync_min_ns / 1_000,
            self.fsync_mean_ns / 1_000,
            self.sick_node,
            self.sick_slowdown,
            self.torn_append.0,
            self.drift_ppm_max,
            self.clients,
            self.keys,
            self.op_interval_mean_ms,
            self.client_timeout_ms,
            self.read.0,
            self.cas.0,
            if self.mutant == Mutant::None {
                String::new()
            } else {
                format!(" | MUTANT {:?}", self.mutant)
            },
            if self.lease_reads {
                format!(" | lease reads (bound {}ppm)", self.clock_drift_ppm_max)
            } else {
                String::new()
            },
            match &self.hostile {
                Some(h) => format!(" | hostile n{} rate={}", h.node + 1, h.rate.0),
                None => String::new(),
            },
        )
    }
}

/// A shape of network partition (node indexes are 0-based world indexes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Shape {
    /// One node cut off from all others, both ways.
    Isolate {
        /// The node.
        node: usize,
    },
    /// The current leader (resolved when the fault fires) cut off both ways.
    IsolateLeader,
    /// `side` and the rest cannot talk (minority/majority or any split).
    Split {
        /// One side.
        side: Vec<usize>,
    },
    /// `left` and `right` cannot talk, but `bridge` talks to both.
    Bridge {
        /// The node that reaches both halves.
        bridge: usize,
        /// One half (the other is everyone else but the bridge).
        left: Vec<usize>,
    },
    /// The current leader (resolved when the fault fires) and one other node,
    /// the `pick`-th of the others, cut off together from the rest: the
    /// leader keeps appending client writes that reach that one node only.
    LeaderAndOne {
        /// Which of the other nodes goes with the leader (modulo their count).
        pick: usize,
    },
    /// Packets from `node` to everyone else are lost; it still receives.
    MuteOutbound {
        /// The node.
        node: usize,
    },
    /// Packets to `node` from everyone else are lost; it can still send.
    DeafInbound {
        /// The node.
        node: usize,
    },
}

impl Shape {
    /// The blocked matrix (`[from * n + to]`) of this shape, `leader` resolving
    /// [`Shape::IsolateLeader`] (no leader: nothing blocked).
    pub fn blocked(&self, n: usize, leader: Option<usize>) -> Vec<bool> {
        if let Shape::LeaderAndOne { pick } = self {
            return match leader.filter(|_| n >= 2) {
                Some(l) => Shape::Split {
                    side: pair_with(l, *pick, n),
                }
                .blocked(n, None),
                None => vec![false; n * n],
            };
        }
        let mut m = vec![false; n * n];
        let mut cut = |a: usize, b: usize| {
            if a != b && a < n && b < n {
                m[a * n + b] = true;
            }
        };
        match self {
            Shape::Isolate { node } => {
                for o in 0..n {
                    cut(*node, o);
                    cut(o, *node);
                }
            }
            Shape::IsolateLeader => {
                if let Some(node) = leader {
                    for o in 0..n {
                        cut(node, o);
                        cut(o, node);
                    }
                }
            }
            Shape::Split { side } => {
                for a in side {
                    for b in (0..n).filter(|b| !side.contains(b)) {
                        cut(*a, b);
                        cut(b, *a);
                    }
                }
            }
            Shape::Bridge { bridge, left } => {
                for a in left.iter().filter(|a| *a != bridge) {
                    for b in (0..n).filter(|b| !left.contains(b) && b != bridge) {
                        cut(*a, b);
                        cut(b, *a);
                    }
                }
            }
            Shape::LeaderAndOne { .. } => unreachable!("resolved above"),
            Shape::MuteOutbound { node } => (0..n).for_each(|o| cut(*node, o)),
            Shape::DeafInbound { node } => (0..n).for_each(|o| cut(o, *node)),
        }
        m
    }
}

/// Node `l` and the `pick`-th of the other `n - 1` nodes, in index order.
pub fn pair_with(l: usize, pick: usize, n: usize) -> Vec<usize> {
    let others: Vec<usize> = (0..n).filter(|&x| x != l).collect();
    let mut side = vec![l, others[pick % others.len()]];
    side.sort_unstable();
    side
}

/// A fault the schedule injects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub enum Fault {
    /// Replace the connectivity by this shape.
    Partition(Shape),
    /// Restore full connectivity.
    Heal,
    /// Crash a node (volatile state lost; the disk keeps a prefix of pending ops).
    Crash {
        /// The node.
        node: usize,
    },
    /// Crash a node at the first moment it has an append of several entries
    /// pending (not yet durable), so the crash loses or tears it; no crash if
    /// that moment does not come before the node's scheduled restart.
    CrashMidAppend {
        /// The node.
        node: usize,
    },
    /// The next node elected leader (during the chaos phase) is cut off at
    /// once, with the `pick`-th of the nodes it can reach, from everyone else.
    /// After a [`Shape::LeaderAndOne`] partition this leaves three logs that
    /// diverge at the same index in three terms: the old leader's pair, the
    /// new leader's pair (whose entries reached nobody else) and the rest,
    /// which elect a leader from the old pair; when the partition heals, the
    /// new leader's follower holds a later-term entry than its leader where
    /// their logs part, so its stream's first chunk mismatches and it reopens
    /// lower.
    SplitNextLeader {
        /// Which reachable node goes with the new leader.
        pick: usize,
    },
    /// The next node elected leader (during the chaos phase) is asked to add
    /// a node at once, before it can have committed an entry of its term.
    AddAtNextElection,
    /// Ask the current leader to add a node and, in the same instant, to
    /// remove `node`: the second must wait for the first to commit.
    TwoChanges {
        /// The node to remove (a world index).
        node: usize,
    },
    /// Restart a crashed node from its disk.
    Restart {
        /// The node.
        node: usize,
    },
    /// Pause a node for `ms`: it processes nothing (events for it wait), then
    /// resumes with its clock having run on (a GC pause, a stopped VM).
    Pause {
        /// The node.
        node: usize,
        /// How long, in milliseconds.
        ms: u64,
    },
    /// Break every open stream of a node (a NIC reset).
    BreakStreams {
        /// The node.
        node: usize,
    },
    /// Ask the current leader (if any) to hand leadership over to `target`
    /// (a world index), or to the most caught-up voter if `None`.
    TransferLeadership {
        /// The node to hand over to.
        target: Option<usize>,
    },
    /// Ask the current leader to add a new node; once a configuration names
    /// it, the world creates its host (fresh disk, wired in, clients may use it).
    AddMember,
    /// Ask the current leader to remove `node` (a world index); the removed
    /// node keeps running. Skipped if it would leave fewer than 3 voters.
    RemoveMember {
        /// The node.
        node: usize,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(s) => write!(f, "partition {s:?}"),
            Fault::Heal => write!(f, "heal"),
            Fault::Crash { node } => write!(f, "crash {node}"),
            Fault::CrashMidAppend { node } => write!(f, "crash {node} mid-append"),
            Fault::SplitNextLeader { pick } => {
                write!(f, "cut the next leader off with reachable node #{pick}")
            }
            Fault::AddAtNextElection => write!(f, "add a member at the next election"),
            Fault::TwoChanges { node } => write!(f, "add a member and remove {node} at once"),
            Fault::Restart { node } => write!(f, "restart {node}"),
            Fault::BreakStreams { node } => write!(f, "break streams of {node}"),
            Fault::Pause { node, ms } => write!(f, "pause {node} for {ms}ms"),
            Fault::TransferLeadership { target: Some(t) } => {
                write!(f, "transfer leadership to {t}")
            }
            Fault::TransferLeadership { target: None } => write!(f, "transfer leadership"),
            Fault::AddMember => write!(f, "add a member"),
            Fault::RemoveMember { node } => write!(f, "remove member {node}"),
        }
    }
}

/// Something at a simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed<T> {
    /// When, in simulated milliseconds.
    pub at_ms: u64,
    /// What.
    pub what: T,
}

impl<T> Timed<T> {
    /// `what` at `at_ms` simulated milliseconds: one line of a fault script.
    ///
    /// ```
    /// use raft_sim::scenario::{Fault, Timed};
    /// let faults = vec![
    ///     Timed::at(2_000, Fault::Crash { node: 0 }),
    ///     Timed::at(4_000, Fault::Restart { node: 0 }),
    /// ];
    /// assert_eq!(faults[1].at_ms, 4_000);
    /// ```
    pub fn at(at_ms: u64, what: T) -> Timed<T> {
        Timed { at_ms, what }
    }
}

/// A whole run as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The seed the micro-randomness derives from.
    pub seed: u64,
    /// The dials.
    pub knobs: Knobs,
    /// The fault schedule, by time.
    pub faults: Vec<Timed<Fault>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(m: &[bool], n: usize, a: usize, b: usize) -> bool {
        m[a * n + b]
    }

    #[test]
    fn bridge_node_reaches_both_halves_that_cannot_reach_each_other() {
        let m = Shape::Bridge {
            bridge: 2,
            left: vec![0, 1],
        }
        .blocked(5, None);
        assert!(cut(&m, 5, 0, 3) && cut(&m, 5, 4, 1));
        assert!(!cut(&m, 5, 2, 0) && !cut(&m, 5, 3, 2) && !cut(&m, 5, 0, 1) && !cut(&m, 5, 3, 4));
    }

    #[test]
    fn one_way_shapes_block_a_single_direction() {
        let m = Shape::MuteOutbound { node: 1 }.blocked(3, None);
        assert!(cut(&m, 3, 1, 0) && !cut(&m, 3, 0, 1));
        let m = Shape::DeafInbound { node: 1 }.blocked(3, None);
        assert!(!cut(&m, 3, 1, 0) && cut(&m, 3, 0, 1));
    }

    #[test]
    fn split_and_isolate_leader_cut_both_ways() {
        let m = Shape::Split { side: vec![0] }.blocked(3, None);
        assert!(cut(&m, 3, 0, 2) && cut(&m, 3, 2, 0) && !cut(&m, 3, 1, 2));
        assert!(Shape::IsolateLeader.blocked(3, None).iter().all(|b| !b));
        let m = Shape::IsolateLeader.blocked(3, Some(2));
        assert!(cut(&m, 3, 2, 1) && cut(&m, 3, 0, 2) && !cut(&m, 3, 0, 1));
    }
}
