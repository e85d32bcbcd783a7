//! One simulated server: a real `raft_core::Node` (while up) with its disk,
//! clock, state machine and the simulator's bookkeeping around it, and the
//! durable state every server boots from.

use crate::checkers::log::LogMirror;
use crate::clock::Clock;
use crate::disk::{DiskTiming, SimDisk, StoredSnapshot};
use crate::rng::SimRng;
use crate::scenario::Scenario;
use crate::service::{Replica, StateMachine};
use raft_core::{
    ClusterId, Config, EntryKind, HardState, Instant, LogEntry, LogIndex, Member, MemberRole, Node,
    NodeId, RecoveredState, RequestId, Role, SnapshotMeta, Term,
};

/// Waiting for a node's state machine to reach an index before answering a client.
#[derive(Clone, Debug)]
pub struct ApplyWaiter {
    /// The request.
    pub id: RequestId,
    /// The index to reach.
    pub index: LogIndex,
    /// A read (answered from the state machine) or a write waiting for its result.
    pub read: bool,
    /// The client op's id (its query; for a write, to check the applied
    /// command is the client's).
    pub op_id: u64,
}

/// One simulated server.
pub struct Host<M: StateMachine> {
    /// The core node, `None` while crashed.
    pub node: Option<Node>,
    /// Its disk (survives crashes).
    pub disk: SimDisk,
    /// Its clock.
    pub clock: Clock,
    /// Restarts so far.
    pub incarnation: u64,
    /// Its state machine (volatile).
    pub fsm: Replica<M>,
    /// The digest mirror of its in-memory log.
    pub mirror: LogMirror,
    /// The current wake generation.
    pub wake_generation: u64,
    /// When the current wake fires (global).
    pub wake_at: Instant,
    /// A snapshot being received.
    pub incoming: Option<(SnapshotMeta, Vec<u8>)>,
    /// A snapshot the FSM is writing (see `Knobs::snapshot_duration_ms`):
    /// stored when its `SnapshotTaken` is delivered, lost in a crash.
    pub snapshot_writing: Option<StoredSnapshot>,
    /// The last role it reported.
    pub role: Role,
    /// The term of that report.
    pub term: Term,
    /// The commit index last observed.
    pub commit: LogIndex,
    /// Clients waiting for its state machine.
    pub waiters: Vec<ApplyWaiter>,
    /// Applies executed in the current step, checked after the commit is observed.
    pub step_applies: Vec<(LogIndex, u64)>,
    /// Steps taken (all incarnations), for sampling expensive checks.
    pub steps: u64,
    /// When its state machine last applied an entry.
    pub last_apply_at: Instant,
    /// Paused until then: events for it wait (re-queued in order).
    pub paused_until: Option<Instant>,
}

impl<M: StateMachine> Host<M> {
    /// A host that has not started yet, on `disk` with `clock`.
    pub(crate) fn fresh(
        machine: M,
        disk: SimDisk,
        clock: Clock,
        mirror: LogMirror,
        term: Term,
    ) -> Host<M> {
        Host {
            node: None,
            disk,
            clock,
            incarnation: 0,
            fsm: Replica::new(machine),
            mirror,
            wake_generation: 0,
            wake_at: Instant::NEVER,
            incoming: None,
            snapshot_writing: None,
            role: Role::Follower,
            term,
            commit: LogIndex(0),
            waiters: Vec::new(),
            step_applies: Vec::new(),
            steps: 0,
            last_apply_at: Instant::ZERO,
            paused_until: None,
        }
    }

    /// Host `i` of `scenario` before its first start: its clock drawn from
    /// `clock_rng`, its disk holding `boot` durably.
    pub(crate) fn booted(
        machine: M,
        i: usize,
        scenario: &Scenario,
        boot: &RecoveredState,
        clock_rng: &mut SimRng,
        disk_rng: &mut SimRng,
    ) -> Host<M> {
        let k = &scenario.knobs;
        let drawn = if k.drift_ppm_max == 0 {
            0
        } else {
            clock_rng.between(0, 2 * k.drift_ppm_max) as i64 - k.drift_ppm_max as i64
        };
        let drift = k.drift_ppm_fixed.get(i).copied().unwrap_or(drawn);
        let clock = Clock::new(clock_rng.below(1_000_000_000), drift);
        let mut disk = SimDisk::new(disk_timing(scenario, i));
        disk.persist_hard_state(boot.hard_state.clone());
        let mut mirror = LogMirror::default();
        let digests = mirror
            .append(&boot.entries)
            .expect("bootstrap log is contiguous");
        let entries = boot
            .entries
            .iter()
            .zip(&digests)
            .map(|(e, d)| crate::disk::DiskEntry {
                entry: e.clone(),
                digest: *d,
            })
            .collect();
        let f = disk
            .submit(
                crate::disk::DiskOp::Append(entries),
                Instant::ZERO,
                disk_rng,
            )
            .expect("idle disk");
        disk.complete_fsync(f.upto, f.at, disk_rng);
        Host::fresh(machine, disk, clock, mirror, Term(1))
    }
}

/// The cluster id every simulated node starts with.
pub const CLUSTER: ClusterId = ClusterId(0x5eed);

/// The world index of a node id (ids are 1-based).
pub fn index_of(id: NodeId, n: usize) -> Option<usize> {
    (id.0 >= 1 && (id.0 as usize) <= n).then(|| id.0 as usize - 1)
}

/// The durable state every node starts from: one `Initialize` entry (term 1)
/// whose configuration names all `n` nodes as voters. (Equivalent to node 1
/// initializing and the others joining, without spending simulated time on it.)
pub fn bootstrap_state(n: usize) -> RecoveredState {
    let members = (1..=n as u64)
        .map(|i| Member {
            id: NodeId(i),
            address: format!("sim-{i}"),
            role: MemberRole::Voter,
        })
        .collect();
    let config = Config {
        cluster_id: CLUSTER,
        index: LogIndex(1),
        max_node_id: NodeId(n as u64),
        members,
    };
    RecoveredState {
        hard_state: HardState {
            cluster_id: Some(CLUSTER),
            term: Term(1),
            vote: None,
        },
        snapshot: None,
        entries: vec![LogEntry {
            index: LogIndex(1),
            term: Term(1),
            kind: EntryKind::Initialize,
            data: config.encode(),
        }],
    }
}

/// The disk timing of node `i` under the scenario's knobs.
pub(crate) fn disk_timing(s: &Scenario, i: usize) -> DiskTiming {
    let k = &s.knobs;
    DiskTiming {
        fsync_min_ns: k.fsync_min_ns,
        fsync_mean_ns: k.fsync_mean_ns,
        slowdown: if k.sick_node == Some(i) {
            k.sick_slowdown
        } else {
            1
        },
        torn_append: k.torn_append,
    }
}
