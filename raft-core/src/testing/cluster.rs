//! The cluster: its hosts, its clock and its queue of events, and the helpers
//! that set it up and run it to a condition.

use super::{Disk, Host, StateMachine};
use crate::{
    Action, Bootstrap, ClusterId, Completion, Duration, Event, HardState, Instant, LogIndex,
    MembershipChange, Node, NodeId, NodeOptions, Proposal, RecoveredState, RequestError, RequestId,
    Role, StreamId,
};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The token of the clusters [`Cluster::new`] bootstraps.
pub const BOOTSTRAP_TOKEN: u64 = 0x5eed;

/// The step of the clock in [`Cluster::run_for`]: every due node is ticked
/// at most once per step.
const TICK: Duration = Duration::from_millis(5);

/// The longest a `run_until` helper runs before it calls the run a livelock.
const RUN_LIMIT: Duration = Duration::from_secs(10);

/// The address the harness gives node `id`.
pub fn address(id: NodeId) -> String {
    format!("node-{}", id.0)
}

/// `options` with commit notices sent within the step that moved the commit
/// index, so [`Cluster::settle`] (which lets no time pass) leaves followers
/// applied.
pub fn immediate_commit_notices(options: NodeOptions) -> NodeOptions {
    NodeOptions {
        commit_notify_delay: Duration::ZERO,
        ..options
    }
}

/// One step of one node, as [`Cluster::record_steps`] keeps it.
#[derive(Clone, Debug)]
pub struct Step {
    /// The node stepped.
    pub node: NodeId,
    /// The event it was given.
    pub event: Event,
    /// The actions it returned.
    pub actions: Vec<Action>,
}

/// An in-memory cluster of [`Node`]s driven by the test; see the
/// [module docs](super).
///
/// `M` is the test's [`StateMachine`]; `()` (the default) keeps only the
/// record of applied entries.
pub struct Cluster<M = ()> {
    pub(super) hosts: BTreeMap<NodeId, Host<M>>,
    pub(super) now: Instant,
    pub(super) queue: VecDeque<(NodeId, Event)>,
    /// Open streams: (follower, leader).
    pub(super) streams: BTreeMap<StreamId, (NodeId, NodeId)>,
    /// Directed links that drop everything.
    pub(super) cut: BTreeSet<(NodeId, NodeId)>,
    pub(super) completions: Vec<(NodeId, RequestId, Result<Completion, RequestError>)>,
    next_request: u64,
    pub(super) options: NodeOptions,
    seed: u64,
    pub(super) new_state_machine: Box<dyn FnMut(NodeId) -> M>,
    pub(super) record_actions: bool,
    /// Per stream: snapshot bytes a leader put on it, and the last
    /// `SnapshotAck` its follower sent back.
    pub(super) snapshot_flow: BTreeMap<StreamId, (u64, u64)>,
    pub(super) snapshot_inflight_max: u64,
    pub(super) snapshot_chunk_bytes: usize,
    pub(super) steps: Option<Vec<Step>>,
    pub(super) allocation_counter: Option<fn() -> u64>,
    pub(super) core_allocations: u64,
    /// Every step's actions are written here and executed from here.
    pub(super) buffer: Vec<Action>,
    /// `ReadLog` actions served so far.
    pub(super) log_reads: u64,
}

impl Cluster {
    /// `n` nodes bootstrapped from one member list, with a leader elected
    /// and every entry applied everywhere. Commit notices leave within the
    /// step that moved the commit index ([`immediate_commit_notices`]), so
    /// [`settle`](Cluster::settle) leaves every node applied.
    pub fn new(n: u64) -> Cluster {
        Cluster::with_options(n, immediate_commit_notices(NodeOptions::new(NodeId(1))))
    }

    /// As [`new`](Cluster::new), every node with `options` (its `id`
    /// replaced by the node's).
    pub fn with_options(n: u64, options: NodeOptions) -> Cluster {
        Cluster::with_state_machine(n, options, 0, |_| ())
    }

    /// No nodes yet: add them with [`add_host`](Cluster::add_host) or
    /// [`bootstrap`](Cluster::bootstrap). The clock starts at 1 s.
    pub fn empty(options: NodeOptions) -> Cluster {
        Cluster::empty_with_state_machine(options, 0, |_| ())
    }

    /// `n` fresh nodes the dynamic way: node 1 initializes a cluster and the
    /// others join one by one, each promoted before the next asks.
    pub fn initialized_then_joined(n: u64) -> Cluster {
        let mut c = Cluster::empty(NodeOptions::new(NodeId(1)));
        c.add_host(NodeId(1), None);
        let id = c.request_id();
        let address = address(NodeId(1));
        c.push(NodeId(1), Event::InitializeRequested { id, address });
        c.settle();
        assert!(
            matches!(c.result(id), Some(Ok(Completion::Initialized { .. }))),
            "initialize failed: {:?}",
            c.result(id)
        );
        for _ in 1..n {
            c.join();
        }
        c
    }
}

impl<M: StateMachine> Cluster<M> {
    /// `n` nodes bootstrapped from one member list, with a leader elected
    /// and every entry applied everywhere, each node with `options` (its
    /// `id` replaced) and the state machine `new_state_machine` makes for
    /// it. Node `i` draws its randomness from `seed + 1000 + i` (a restart
    /// draws anew); different seeds give different election timeouts.
    /// [`Cluster::new`] is this with seed 0, no state machine and
    /// [`immediate_commit_notices`].
    pub fn with_state_machine(
        n: u64,
        options: NodeOptions,
        seed: u64,
        new_state_machine: impl FnMut(NodeId) -> M + 'static,
    ) -> Cluster<M> {
        let mut c = Cluster::empty_with_state_machine(options, seed, new_state_machine);
        c.bootstrap(n);
        c.run_until_settled_leader();
        c
    }

    /// No nodes yet; the hosts added later get state machines from
    /// `new_state_machine`, and seeds derived from `seed`.
    pub fn empty_with_state_machine(
        options: NodeOptions,
        seed: u64,
        new_state_machine: impl FnMut(NodeId) -> M + 'static,
    ) -> Cluster<M> {
        Cluster {
            hosts: BTreeMap::new(),
            now: Instant(1_000_000_000),
            queue: VecDeque::new(),
            streams: BTreeMap::new(),
            cut: BTreeSet::new(),
            completions: Vec::new(),
            next_request: 1,
            options,
            seed: seed.wrapping_add(1000),
            new_state_machine: Box::new(new_state_machine),
            record_actions: true,
            snapshot_flow: BTreeMap::new(),
            snapshot_inflight_max: 0,
            snapshot_chunk_bytes: 64,
            steps: None,
            allocation_counter: None,
            core_allocations: 0,
            buffer: Vec::new(),
            log_reads: 0,
        }
    }

    /// Adds nodes 1..=`n`, gives each the same [`Bootstrap`] and delivers
    /// until the queue is empty (no time passes: no leader yet).
    ///
    /// # Panics
    /// If a node refuses the bootstrap.
    pub fn bootstrap(&mut self, n: u64) {
        let members = (1..=n).map(|i| (NodeId(i), address(NodeId(i))));
        let bootstrap = Bootstrap::new(BOOTSTRAP_TOKEN, members).expect("a valid member list");
        let mut requests = Vec::new();
        for i in 1..=n {
            self.add_host(NodeId(i), None);
            let id = self.request_id();
            requests.push(id);
            let bootstrap = bootstrap.clone();
            self.push(NodeId(i), Event::BootstrapRequested { id, bootstrap });
        }
        self.settle();
        for id in requests {
            assert!(
                matches!(self.result(id), Some(Ok(Completion::Initialized { .. }))),
                "bootstrap failed: {:?}",
                self.result(id)
            );
        }
    }

    /// Starts a fresh node `id` with an empty disk (of cluster `cluster_id`,
    /// for a node that joins one).
    pub fn add_host(&mut self, id: NodeId, cluster_id: Option<ClusterId>) {
        let hard_state = HardState {
            cluster_id,
            ..HardState::default()
        };
        let seed = self.seed.wrapping_add(id.0);
        let recovered = RecoveredState {
            hard_state: hard_state.clone(),
            ..RecoveredState::default()
        };
        let node = Node::new(self.options_of(id), recovered, seed, self.now).expect("a fresh node");
        let state_machine = (self.new_state_machine)(id);
        let host = Host::new(node, Disk::new(hard_state), state_machine, seed);
        self.hosts.insert(id, host);
    }

    /// The cluster's options with node `id`'s id.
    pub(super) fn options_of(&self, id: NodeId) -> NodeOptions {
        NodeOptions {
            id,
            ..self.options.clone()
        }
    }

    /// Adds a node through the leader, starts it, and runs 400 ms for it to
    /// catch up and be promoted; returns its id.
    pub fn join(&mut self) -> NodeId {
        let leader = self.leader().expect("a leader to join through");
        let address = address(self.hosts[&leader].node.config().max_node_id.next());
        let id = self.request_id();
        let change = MembershipChange::Add { address };
        self.push(leader, Event::ChangeMembershipRequested { id, change });
        self.settle();
        let Some(Ok(Completion::MembershipChanged {
            node, cluster_id, ..
        })) = self.result(id)
        else {
            panic!("join failed: {:?}", self.result(id))
        };
        self.add_host(node, Some(cluster_id));
        self.run_for(Duration::from_millis(400));
        node
    }

    /// The options of nodes added or restarted from now on.
    pub fn options(&self) -> &NodeOptions {
        &self.options
    }

    /// Changes the options of nodes added or restarted from now on.
    pub fn options_mut(&mut self) -> &mut NodeOptions {
        &mut self.options
    }

    /// A request id not used before in this cluster.
    pub fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// The completion of request `id`, once a node reported it.
    pub fn result(&self, id: RequestId) -> Option<Result<Completion, RequestError>> {
        self.completions
            .iter()
            .find(|(_, r, _)| *r == id)
            .map(|(_, _, result)| result.clone())
    }

    /// Every completion so far: the node, the request, the result.
    pub fn completions(&self) -> &[(NodeId, RequestId, Result<Completion, RequestError>)] {
        &self.completions
    }

    /// Forgets the completions so far.
    pub fn clear_completions(&mut self) {
        self.completions.clear();
    }

    /// The node `id`.
    ///
    /// # Panics
    /// If the cluster has no node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.host(id).node
    }

    /// The host of node `id`.
    ///
    /// # Panics
    /// If the cluster has no node `id`.
    pub fn host(&self, id: NodeId) -> &Host<M> {
        self.hosts
            .get(&id)
            .unwrap_or_else(|| panic!("the cluster has no node {id}"))
    }

    /// The host of node `id`, to change its disk, persist mode or state
    /// machine.
    ///
    /// # Panics
    /// If the cluster has no node `id`.
    pub fn host_mut(&mut self, id: NodeId) -> &mut Host<M> {
        self.hosts
            .get_mut(&id)
            .unwrap_or_else(|| panic!("the cluster has no node {id}"))
    }

    /// Every host, by ascending id.
    pub fn hosts(&self) -> impl Iterator<Item = (NodeId, &Host<M>)> {
        self.hosts.iter().map(|(&id, h)| (id, h))
    }

    /// Every node's id, ascending.
    pub fn ids(&self) -> Vec<NodeId> {
        self.hosts.keys().copied().collect()
    }

    /// Every node's id but `id`, ascending (a leader's followers, say).
    pub fn others(&self, id: NodeId) -> Vec<NodeId> {
        self.hosts
            .keys()
            .copied()
            .filter(|&other| other != id)
            .collect()
    }

    /// Forgets every host's recorded actions.
    pub fn clear_actions(&mut self) {
        for h in self.hosts.values_mut() {
            h.clear_actions();
        }
    }

    /// Whether hosts record the actions their nodes return (on by default;
    /// off, a host also keeps only its last applied entry, so a long
    /// benchmark's memory stays flat).
    pub fn record_actions(&mut self, on: bool) {
        self.record_actions = on;
    }

    /// From now on, keeps every step (node, event, actions) until
    /// [`take_steps`](Cluster::take_steps).
    pub fn record_steps(&mut self) {
        self.steps.get_or_insert_with(Vec::new);
    }

    /// The steps kept since [`record_steps`](Cluster::record_steps); stops
    /// keeping them.
    pub fn take_steps(&mut self) -> Vec<Step> {
        self.steps.take().unwrap_or_default()
    }

    /// Counts, with `counter` (a count of heap allocations so far), the
    /// allocations made inside the nodes' steps; read the sum with
    /// [`core_allocations`](Cluster::core_allocations).
    pub fn count_allocations(&mut self, counter: fn() -> u64) {
        self.allocation_counter = Some(counter);
    }

    /// The allocations counted inside the nodes' steps so far.
    pub fn core_allocations(&self) -> u64 {
        self.core_allocations
    }

    /// The most snapshot bytes ever on a stream ahead of its follower's ack.
    pub fn snapshot_inflight_max(&self) -> u64 {
        self.snapshot_inflight_max
    }

    /// Sets the bytes per `SnapshotChunk` that hosts send (64 by default,
    /// so small snapshots take several chunks).
    ///
    /// # Panics
    /// If `bytes` is 0.
    pub fn set_snapshot_chunk_bytes(&mut self, bytes: usize) {
        assert!(bytes > 0, "snapshot chunks carry at least one byte");
        self.snapshot_chunk_bytes = bytes;
    }

    /// The leader of the highest term among running nodes.
    pub fn leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.up && h.node.role() == Role::Leader)
            .max_by_key(|(_, h)| h.node.term())
            .map(|(&id, _)| id)
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// How many [`Action::ReadLog`] the hosts served from their disks (the
    /// nodes' log caches, `NodeOptions::log_cache_bytes_max`, evicted what
    /// they asked for).
    pub fn log_reads(&self) -> u64 {
        self.log_reads
    }

    /// Moves the clock by `d` without stepping any node.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Moves the clock to `t` without stepping any node.
    ///
    /// # Panics
    /// If `t` is before now: the clock never goes back.
    pub fn advance_to(&mut self, t: Instant) {
        assert!(
            t >= self.now,
            "the clock goes back from {} to {t}",
            self.now
        );
        self.now = t;
    }

    /// Advances time in steps of 5 ms, ticking every running node whose
    /// deadline has come and delivering everything after each step.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = self.now + TICK;
            for id in self.ids() {
                if self.hosts[&id].up && self.hosts[&id].node.next_deadline() <= self.now {
                    self.step(id, Event::Tick);
                }
            }
            self.settle();
        }
    }

    /// Moves the clock to the earliest deadline of a running node, ticks
    /// that node and delivers everything; returns the node, or `None` when
    /// no node runs.
    pub fn wake_next(&mut self) -> Option<NodeId> {
        let (due, id) = self
            .hosts
            .iter()
            .filter(|(_, h)| h.up)
            .map(|(&id, h)| (h.node.next_deadline(), id))
            .min()?;
        self.now = self.now.max(due);
        self.step(id, Event::Tick);
        self.settle();
        Some(id)
    }

    /// Runs the cluster ([`run_for`](Cluster::run_for) in 5 ms steps) until
    /// `done` holds.
    ///
    /// # Panics
    /// If it does not within 10 s of simulated time: the cluster livelocks
    /// (or `what` needs a fault the test did not heal).
    pub fn run_until(&mut self, what: &str, mut done: impl FnMut(&Cluster<M>) -> bool) {
        let end = self.now + RUN_LIMIT;
        while !done(self) {
            assert!(
                self.now < end,
                "not reached within {RUN_LIMIT:?} of simulated time: {what}"
            );
            self.run_for(TICK);
        }
    }

    /// Runs until a running leader has committed `index`.
    ///
    /// # Panics
    /// As [`run_until`](Cluster::run_until).
    pub fn run_until_committed(&mut self, index: LogIndex) {
        self.run_until(&format!("a leader commits {index}"), |c| {
            c.leader()
                .is_some_and(|l| c.hosts[&l].node.commit_index() >= index)
        });
    }

    /// Runs until every running node of the leader's configuration has
    /// applied `index`.
    ///
    /// # Panics
    /// As [`run_until`](Cluster::run_until).
    pub fn run_until_applied(&mut self, index: LogIndex) {
        self.run_until(&format!("every running member applies {index}"), |c| {
            let Some(leader) = c.leader() else {
                return false;
            };
            let config = c.hosts[&leader].node.config();
            c.hosts
                .iter()
                .filter(|(id, h)| h.up && config.contains(**id))
                .all(|(_, h)| h.applied_index() >= index)
        });
    }

    /// Runs until one leader has applied every entry it holds on every
    /// node (crashed ones included).
    ///
    /// # Panics
    /// If that takes more than 10 s of simulated time.
    pub fn run_until_settled_leader(&mut self) {
        self.run_until("a leader whose entries every node applied", |c| {
            c.leader().is_some_and(|l| {
                let last = c.hosts[&l].node.last_index();
                c.hosts.values().all(|h| h.node.applied_index() == last)
            })
        });
    }

    /// Makes `target` the leader: it waits for a leader, asks it to transfer
    /// leadership to `target` unless it is `target`, and runs until
    /// `target` leads and has committed the entry of its term.
    ///
    /// # Panics
    /// If that takes more than 10 s of simulated time (`target` cut off, not
    /// a voter, crashed).
    pub fn elect(&mut self, target: NodeId) {
        self.run_until("a leader", |c| c.leader().is_some());
        let leader = self.leader().expect("a leader");
        if leader != target {
            let id = self.request_id();
            let event = Event::TransferLeadershipRequested {
                id,
                target: Some(target),
            };
            self.push(leader, event);
        }
        self.run_until(&format!("{target} leads and committed its term"), |c| {
            c.leader() == Some(target) && {
                let node = &c.hosts[&target].node;
                node.term_at(node.commit_index()) == Some(node.term())
            }
        });
    }

    /// Queues a proposal of one command at the leader; returns its request
    /// id (see [`result`](Cluster::result)).
    ///
    /// # Panics
    /// If no node leads.
    pub fn propose(&mut self, data: &[u8]) -> RequestId {
        let leader = self.leader().expect("a leader to propose to");
        let id = self.request_id();
        let data = Bytes::copy_from_slice(data);
        let proposals = vec![Proposal { id, data }];
        self.push(leader, Event::ProposeRequested { proposals });
        id
    }

    /// Runs until a node leads, proposes one command there and runs until it
    /// committed; returns its index.
    ///
    /// # Panics
    /// If the proposal fails, or a leader or the commit takes more than 10 s
    /// of simulated time.
    pub fn commit(&mut self, data: &[u8]) -> LogIndex {
        self.run_until("a leader", |c| c.leader().is_some());
        let id = self.propose(data);
        self.settle();
        self.run_until(&format!("{id} completes"), |c| c.result(id).is_some());
        match self.result(id) {
            Some(Ok(Completion::Written { index })) => index,
            other => panic!("the proposal {id} failed: {other:?}"),
        }
    }

    /// Applied command payloads of node `id`.
    pub fn commands(&self, id: NodeId) -> Vec<Bytes> {
        self.host(id).commands()
    }

    /// Asserts that every node's applied sequence is a prefix of the longest.
    pub fn assert_state_machine_safety(&self) {
        let Some(longest) = self
            .hosts
            .values()
            .map(|h| &h.applied)
            .max_by_key(|a| a.len())
        else {
            return;
        };
        for (id, h) in &self.hosts {
            assert_eq!(
                &longest[..h.applied.len()],
                &h.applied[..],
                "node {id} applied a different sequence"
            );
        }
    }
}
