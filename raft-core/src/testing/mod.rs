//! An in-memory cluster for unit tests of protocol behaviour and of driver
//! logic (cargo feature `testing`, off by default).
//!
//! [`Cluster`] wires [`Node`](crate::Node)s together on one thread: a manual
//! clock, one FIFO queue of events that the test delivers (all at once, one at
//! a time, or after dropping or holding some), in-memory disks that persist
//! appends at once or when the test says so, and a record of what every node
//! applied. Nothing in it reads a clock, spawns a thread or draws OS
//! randomness: the nodes' seeds derive from the seed the test gives, so a test
//! replays identically every run.
//!
//! It is the harness raft-core's own tests use. For randomized whole-cluster
//! runs under partitions, crashes, torn writes and clock drift, with a
//! linearizability check, use raft-sim; see `docs/simulation.md` for which
//! one fits a test.
//!
//! ```
//! use raft_core::testing::Cluster;
//! use raft_core::{NodeId, Role};
//!
//! // Three bootstrapped nodes with a leader elected and settled.
//! let mut c = Cluster::new(3);
//! let index = c.commit(b"set x 1");
//! c.run_until_applied(index);
//! assert_eq!(c.commands(NodeId(2)), vec!["set x 1"]);
//!
//! // Cut the leader off: the others elect one of their own.
//! let old = c.leader().unwrap();
//! c.isolate(old);
//! c.run_until("a new leader", |c| c.leader().is_some_and(|l| l != old));
//! c.heal();
//! c.run_until("the old leader steps down", |c| c.node(old).role() != Role::Leader);
//! c.assert_state_machine_safety();
//! ```
//!
//! What a test can do between deliveries:
//! * the clock: [`Cluster::run_for`] (ticks due nodes and delivers),
//!   [`Cluster::advance`] (moves time without ticking), [`Cluster::wake_next`];
//! * the queue: [`Cluster::settle`], [`Cluster::deliver_next`],
//!   [`Cluster::queued`], [`Cluster::take_queued`] (drop or hold events),
//!   [`Cluster::push`] (inject or release them), [`Cluster::step`];
//! * the network: [`Cluster::cut`], [`Cluster::isolate`],
//!   [`Cluster::partition`], [`Cluster::heal`];
//! * the disks: [`Persist::Manually`] with [`Cluster::persist`], and
//!   [`Host::disk`] to read or rewrite what a crashed node restarts from;
//! * the nodes: [`Cluster::crash`], [`Cluster::restart`],
//!   [`Cluster::elect`];
//! * bounded runs that fail on livelock: [`Cluster::run_until`],
//!   [`Cluster::run_until_committed`], [`Cluster::run_until_applied`], and
//!   [`Cluster::settle`] itself.

mod cluster;
mod disk;
mod execute;
mod faults;
mod host;

pub use cluster::{BOOTSTRAP_TOKEN, Cluster, Step, address, immediate_commit_notices};
pub use disk::{Disk, Persist};
pub use host::Host;

use crate::LogEntry;

/// A state machine of the test's own, run beside the record of applied
/// entries that every [`Host`] keeps.
///
/// Every host of a cluster gets one, made by the factory given to
/// [`Cluster::with_state_machine`]. The harness calls [`apply`] for each
/// entry the node applies, in order, and [`snapshot`] when the node asks for
/// a snapshot; a node that installs a snapshot, or restarts from one, gets a
/// fresh state machine from the factory and [`restore`] with those bytes.
///
/// `()` is the state machine that does nothing: the default, for tests that
/// only look at the applied entries.
///
/// [`apply`]: StateMachine::apply
/// [`snapshot`]: StateMachine::snapshot
/// [`restore`]: StateMachine::restore
pub trait StateMachine {
    /// Executes one applied entry. Every kind is passed (the `Nop` of each
    /// term, configuration changes); most machines act on
    /// [`EntryKind::Command`](crate::EntryKind::Command) only.
    fn apply(&mut self, entry: &LogEntry);

    /// The machine's state, as bytes [`restore`](StateMachine::restore)
    /// accepts.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state by the one `snapshot` describes.
    fn restore(&mut self, snapshot: &[u8]);
}

impl StateMachine for () {
    fn apply(&mut self, _entry: &LogEntry) {}

    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore(&mut self, _snapshot: &[u8]) {}
}
