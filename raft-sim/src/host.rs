//! One simulated server: a real `raft_core::Node` (while up) with its disk,
//! clock, state machine and the simulator's bookkeeping around it, and the
//! member list the initial servers are bootstrapped with.
//!
//! A run starts as a deployment does: every initial member starts on an
//! empty disk and its driver steps it with `Event::BootstrapRequested` for
//! the same [`Bootstrap`] list, again on every restart (repeating a
//! bootstrap changes nothing, and finishes one that crashed before its first
//! entry was durable). Nodes the membership nemesis adds join the running
//! cluster instead.

use crate::checkers::log::LogMirror;
use crate::clock::Clock;
use crate::disk::{DiskTiming, SimDisk, StoredSnapshot};
use crate::rng::SimRng;
use crate::scenario::Scenario;
use crate::service::{Replica, StateMachine};
use raft_core::{Bootstrap, Instant, LogIndex, Node, NodeId, RequestId, Role, SnapshotMeta, Term};

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
    /// The list its driver bootstraps it with on every start (initial
    /// members); `None` for a node that joins a running cluster.
    pub bootstrap: Option<Bootstrap>,
}

impl<M: StateMachine> Host<M> {
    /// A host that has not started yet, on `disk` with `clock`.
    pub(crate) fn fresh(machine: M, disk: SimDisk, clock: Clock) -> Host<M> {
        Host {
            node: None,
            disk,
            clock,
            incarnation: 0,
            fsm: Replica::new(machine),
            mirror: LogMirror::default(),
            wake_generation: 0,
            wake_at: Instant::NEVER,
            incoming: None,
            snapshot_writing: None,
            role: Role::Follower,
            term: Term(0),
            commit: LogIndex(0),
            waiters: Vec::new(),
            step_applies: Vec::new(),
            steps: 0,
            last_apply_at: Instant::ZERO,
            paused_until: None,
            bootstrap: None,
        }
    }

    /// Initial member `i` of `scenario` before its first start: its clock
    /// drawn from `clock_rng`, its disk empty, and `bootstrap` the list its
    /// driver gives it on every start.
    pub(crate) fn initial(
        machine: M,
        i: usize,
        scenario: &Scenario,
        bootstrap: Bootstrap,
        clock_rng: &mut SimRng,
    ) -> Host<M> {
        let k = &scenario.knobs;
        let drawn = if k.drift_ppm_max == 0 {
            0
        } else {
            clock_rng.between(0, 2 * k.drift_ppm_max) as i64 - k.drift_ppm_max as i64
        };
        let drift = k.drift_ppm_fixed.get(i).copied().unwrap_or(drawn);
        let clock = Clock::new(clock_rng.below(1_000_000_000), drift);
        let disk = SimDisk::new(disk_timing(scenario, i));
        let mut host = Host::fresh(machine, disk, clock);
        host.bootstrap = Some(bootstrap);
        host
    }
}

/// The token of every simulated cluster's bootstrap (one cluster per world;
/// tests that want a foreign cluster change the token or the list).
pub const BOOTSTRAP_TOKEN: u64 = 0x5eed;

/// The world index of a node id (ids are 1-based).
pub fn index_of(id: NodeId, n: usize) -> Option<usize> {
    (id.0 >= 1 && (id.0 as usize) <= n).then(|| id.0 as usize - 1)
}

/// The list every initial member of an `n`-node world is bootstrapped with:
/// nodes `1..=n` as voters at addresses `sim-N`, token [`BOOTSTRAP_TOKEN`].
/// Its cluster id is the world's.
pub fn initial_members(n: usize) -> Bootstrap {
    let members = (1..=n as u64).map(|i| (NodeId(i), format!("sim-{i}")));
    Bootstrap::new(BOOTSTRAP_TOKEN, members).expect("ids 1..=n with distinct addresses")
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
