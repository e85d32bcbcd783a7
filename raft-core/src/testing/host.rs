//! One node of the cluster with its disk, its applied entries and its state
//! machine.

use super::{Disk, Persist, StateMachine};
use crate::{Action, Config, EntryKind, LogEntry, LogIndex, Node};
use bytes::Bytes;

/// One node with what its driver would own: a disk, the entries it applied,
/// the test's state machine, and the actions it returned.
pub struct Host<M = ()> {
    pub(super) node: Node,
    /// The node's disk. Rewrite it between [`Cluster::crash`] and
    /// [`Cluster::restart`] to start the node from a state of the test's
    /// choosing.
    ///
    /// [`Cluster::crash`]: super::Cluster::crash
    /// [`Cluster::restart`]: super::Cluster::restart
    pub disk: Disk,
    /// Whether appends are durable at once or when the test says.
    pub persist: Persist,
    /// The test's state machine (see [`StateMachine`]).
    pub state_machine: M,
    pub(super) applied: Vec<LogEntry>,
    /// The configuration in force at the last applied entry: what a
    /// snapshot taken there carries. (The node's own may be later: a
    /// configuration takes effect when appended, before it commits.)
    pub(super) applied_config: Option<Config>,
    pub(super) actions: Vec<Action>,
    pub(super) up: bool,
    pub(super) seed: u64,
}

impl<M: StateMachine> Host<M> {
    pub(super) fn new(node: Node, disk: Disk, state_machine: M, seed: u64) -> Host<M> {
        Host {
            node,
            disk,
            persist: Persist::Immediately,
            state_machine,
            applied: Vec::new(),
            applied_config: None,
            actions: Vec::new(),
            up: true,
            seed,
        }
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node, to step it by hand at a time of the test's choosing. The
    /// harness neither executes nor records what such a step returns: the
    /// test inspects the actions itself, and a disk it does not update no
    /// longer matches the node.
    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// Whether the node runs (not crashed).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Every entry the node applied, in order, since the cluster began: a
    /// snapshot carries the entries it covers. (With
    /// [`Cluster::record_actions`](super::Cluster::record_actions) off, only
    /// the last one.)
    pub fn applied(&self) -> &[LogEntry] {
        &self.applied
    }

    /// The payloads of the applied commands.
    pub fn commands(&self) -> Vec<Bytes> {
        self.applied
            .iter()
            .filter(|e| e.kind == EntryKind::Command)
            .map(|e| e.data.clone())
            .collect()
    }

    /// Every action the node returned, in order, since the last
    /// [`clear_actions`](Host::clear_actions).
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Forgets the recorded actions (a test then looks only at what follows).
    pub fn clear_actions(&mut self) {
        self.actions.clear();
    }

    /// Executes applied entries: the record, then the state machine.
    pub(super) fn apply(&mut self, entries: impl IntoIterator<Item = LogEntry>, record: bool) {
        for e in entries {
            if let Some(last) = self.applied.last() {
                assert_eq!(
                    e.index,
                    last.index.next(),
                    "node {} applies in order",
                    self.node.id()
                );
            }
            // (A test that forges what the driver reads back may hand over
            // a membership entry that does not decode: the safety check,
            // not this record, is what notices.)
            if let Some(mut config) = e
                .kind
                .is_config()
                .then(|| Config::decode(&e.data).ok())
                .flatten()
            {
                config.index = e.index;
                self.applied_config = Some(config);
            }
            self.state_machine.apply(&e);
            if record || self.applied.is_empty() {
                self.applied.push(e);
            } else {
                *self.applied.last_mut().expect("not empty") = e;
            }
        }
    }

    /// The index of the last applied entry (0 before any).
    pub(super) fn applied_index(&self) -> LogIndex {
        self.applied.last().map_or(LogIndex(0), |e| e.index)
    }

    /// The snapshot of what the node applied: the record of entries, then
    /// the state machine's bytes.
    pub(super) fn snapshot_bytes(&self) -> Bytes {
        let mut data = postcard::to_allocvec(&self.applied).expect("entries encode");
        data.extend(self.state_machine.snapshot());
        Bytes::from(data)
    }

    /// Restores the record and `state_machine` (fresh) from
    /// [`snapshot_bytes`](Host::snapshot_bytes) of a snapshot carrying `config`.
    pub(super) fn restore(&mut self, data: &[u8], mut state_machine: M, config: Config) {
        let (applied, rest) = postcard::take_from_bytes(data).expect("a snapshot of this harness");
        state_machine.restore(rest);
        self.applied = applied;
        self.applied_config = Some(config);
        self.state_machine = state_machine;
    }
}
