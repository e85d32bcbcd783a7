//! The world: hosts (a real `raft_core::Node` with its disk, clock and state
//! machine), the network, the clients, the checkers and one event queue
//! ordered by `(time, seq)`.
//!
//! The step loop: pop the earliest event; drop it if its target is down or
//! belongs to an older incarnation; turn it into a core `Event`; step the node
//! at its local time; check its invariants; execute the actions strictly in
//! order (see [`crate::driver`]); run the per-step checkers; re-arm its wake-up
//! (a `Wake` with a generation, so stale wake-ups are skipped without heap
//! deletion). The run stops at the first failure or at the end, where the
//! liveness judgment runs.

use crate::checkers::election::ElectionSafety;
use crate::checkers::log::GlobalLog;
use crate::checkers::writes::AckedWrites;
use crate::checkers::{Failure, FailureClass};
use crate::history::OpRecord;
use crate::kv::KvService;
use crate::network::{NetEvent, Network};
use crate::queue::EventQueue;
use crate::rng::{SimRng, StreamKind};
use crate::scenario::{Fault, Scenario};
use crate::service::Service;
use crate::trace::{BreakCause, Fact, Trace};
use crate::workload::{Clients, End};
use raft_core::{
    Duration, Event, Instant, LogIndex, Message, NodeId, NodeOptions, RequestId, StreamOpen,
};
use std::collections::BTreeMap;

pub(crate) use crate::host::disk_timing;
pub use crate::host::{ApplyWaiter, BOOTSTRAP_TOKEN, Host, index_of, initial_members};
pub use crate::queue::SimEvent;

/// A user check run after every event; `Err(why)` fails the run as a safety
/// failure named after the invariant.
pub type Invariant<S = KvService> = Box<dyn FnMut(&World<S>) -> Result<(), String>>;

/// A predicate on the world; the fault it guards is applied after the first
/// event at whose end it holds.
pub type Trigger<S = KvService> = Box<dyn FnMut(&World<S>) -> bool>;

/// Which datagrams to hold: `(from, to, message)` (world indexes) at the
/// moment it would arrive.
pub type Hold = Box<dyn FnMut(usize, usize, &Message) -> bool>;

/// Events a run may process: a fixed allowance plus this many per simulated
/// second (typical runs use 2,000–10,000); beyond it the run is a livelock.
pub const EVENT_BUDGET_PER_SIM_S: u64 = 200_000;
/// The fixed part of the event budget.
pub const EVENT_BUDGET_BASE: u64 = 1_000_000;

/// The first request id the nemesis uses; client ids stay below it.
pub const NEMESIS_REQUEST_BASE: u64 = 1 << 62;

/// The first request id of the drivers' bootstrap requests (node index and
/// incarnation below it); clients and the nemesis stay below this range, so
/// a bootstrap's completion is never taken for theirs.
pub const BOOTSTRAP_REQUEST_BASE: u64 = 3 << 62;

/// Client requests reach a node (and answers come back) after this long.
pub const CLIENT_LATENCY_NS: u64 = 50_000;

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The trace digest.
    pub digest: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated time reached.
    pub sim_ns: u64,
    /// The failure, if any.
    pub failure: Option<Failure>,
    /// The client history.
    pub history: Vec<OpRecord>,
    /// Terms that had a leader.
    pub leader_terms: usize,
    /// The highest committed index.
    pub committed: LogIndex,
    /// Writes acknowledged to clients.
    pub acked_writes: usize,
    /// The last trace lines (on failure).
    pub trace_tail: Vec<String>,
    /// How often each rare event of interest happened ("sometimes" coverage).
    pub coverage: BTreeMap<&'static str, u64>,
}

/// The simulated world of one seed, running service `S` (the key-value store
/// unless told otherwise).
///
/// Generic rather than boxed: invariants and inspection get the user's own
/// state machine type back ([`World::state_machine`]) without downcasting,
/// and the apply path stays monomorphized.
pub struct World<S: Service = KvService> {
    /// The service under test.
    pub service: S,
    /// Its sequential model (the linearizability oracle).
    pub model: S::Model,
    /// The scenario being run.
    pub scenario: Scenario,
    /// Global simulated time.
    pub now: Instant,
    /// The servers.
    pub hosts: Vec<Host<S::Machine>>,
    /// The network.
    pub net: Network,
    /// Clients and history.
    pub workload: Clients<S::Workload>,
    /// The trace.
    pub trace: Trace,
    pub(crate) queue: EventQueue,
    /// The voters of the node being stepped, before the step (a buffer
    /// reused across steps, see [`World::step_node`]).
    pub(crate) voters_before: Vec<NodeId>,
    /// The chain digests of the entries an `AppendLog` appends (a buffer
    /// reused across appends).
    pub(crate) digests_scratch: Vec<u64>,
    /// What a completed fsync made durable (a buffer reused across fsyncs).
    pub(crate) notices_scratch: Vec<crate::disk::DiskNotice>,
    pub(crate) net_rng: SimRng,
    pub(crate) disk_rng: SimRng,
    pub(crate) election: ElectionSafety,
    pub(crate) global: GlobalLog,
    pub(crate) acked: AckedWrites,
    /// Handshakes of streams being opened, by stream id.
    pub(crate) opens: BTreeMap<raft_core::StreamId, StreamOpen>,
    pub(crate) events: u64,
    pub(crate) coverage: BTreeMap<&'static str, u64>,
    pub(crate) heal_at: Option<Instant>,
    pub(crate) last_role_change: Instant,
    /// How many times the liveness judgment was postponed for laggards still catching up.
    pub(crate) liveness_extensions: u32,
    /// Requests the nemesis made of a node (transfers, membership changes), by id.
    pub(crate) nemesis_requests: BTreeMap<RequestId, (usize, String)>,
    /// The next nemesis request id (a range disjoint from the clients').
    pub(crate) next_nemesis_request: u64,
    /// Cut the next elected leader off with the reachable node of this rank.
    pub(crate) split_next_leader: Option<usize>,
    /// Ask the next elected leader to add a node at once.
    pub(crate) add_at_next_election: bool,
    /// Nodes to crash as soon as they have a multi-entry append pending.
    pub(crate) crash_armed: std::collections::BTreeSet<usize>,
    /// The list the initial members are bootstrapped with: the world's
    /// cluster id is its.
    pub(crate) cluster: raft_core::Bootstrap,
    /// The hostile member's state (attacks are drawn from its own stream).
    pub(crate) hostile: Option<crate::hostile::Hostile>,
    /// User checks run after every event (see [`World::add_invariant`]).
    pub(crate) invariants: Vec<(&'static str, Invariant<S>)>,
    /// Faults waiting for their predicate (see [`World::inject_when`]).
    pub(crate) triggers: Vec<(Trigger<S>, Fault)>,
    /// Core options set per node (see [`World::set_options`]).
    pub(crate) node_options: BTreeMap<usize, NodeOptions>,
    /// Which datagrams to hold (see [`World::hold_datagrams`]).
    pub(crate) holds: Vec<Hold>,
    /// Datagrams held, in arrival order: `(from, to, message)`.
    pub(crate) held: Vec<(usize, usize, Message)>,
    /// Rules on datagrams and frames (see [`World::intercept`]).
    pub(crate) rules: Vec<crate::intercept::Rule>,
    /// Datagrams a rule reordered, waiting for the next one on their link.
    pub(crate) reordered: Vec<(usize, usize, Message)>,
    /// Nodes whose last start was refused on a damaged disk.
    pub(crate) refusals: BTreeMap<usize, crate::disk::DiskDamage>,
    failure: Option<Failure>,
    pub(crate) done: bool,
}

impl World<KvService> {
    /// Builds the key-value world of `scenario`; `trace` decides what is
    /// echoed and kept.
    pub fn new(scenario: Scenario, trace: Trace) -> World {
        World::with_service(KvService, scenario, trace)
    }
}

impl<S: Service> World<S> {
    /// Builds the world of `scenario` running `service`; `trace` decides what
    /// is echoed and kept.
    pub fn with_service(service: S, scenario: Scenario, trace: Trace) -> World<S> {
        let k = &scenario.knobs;
        let seed = scenario.seed;
        let mut clock_rng = SimRng::new(seed, StreamKind::Clock);
        let disk_rng = SimRng::new(seed, StreamKind::Disk);
        let cluster = initial_members(k.nodes);
        let hosts = (0..k.nodes)
            .map(|i| {
                let machine = service.machine();
                Host::initial(machine, i, &scenario, cluster.clone(), &mut clock_rng)
            })
            .collect();
        let net = Network::new(k.nodes, k.net.clone());
        let workload = Clients::new(
            k,
            service.workload(k),
            SimRng::new(seed, StreamKind::Workload),
        );
        let model = service.model();
        let mut w = World {
            service,
            model,
            now: Instant::ZERO,
            hosts,
            net,
            workload,
            trace,
            queue: EventQueue::default(),
            voters_before: Vec::new(),
            digests_scratch: Vec::new(),
            notices_scratch: Vec::new(),
            net_rng: SimRng::new(seed, StreamKind::Network),
            disk_rng,
            election: ElectionSafety::default(),
            global: GlobalLog::default(),
            acked: AckedWrites::default(),
            opens: BTreeMap::new(),
            events: 0,
            coverage: BTreeMap::new(),
            heal_at: None,
            last_role_change: Instant::ZERO,
            liveness_extensions: 0,
            nemesis_requests: BTreeMap::new(),
            next_nemesis_request: NEMESIS_REQUEST_BASE,
            crash_armed: std::collections::BTreeSet::new(),
            split_next_leader: None,
            add_at_next_election: false,
            cluster,
            hostile: k
                .hostile
                .clone()
                .map(|h| crate::hostile::Hostile::new(h, SimRng::new(seed, StreamKind::Hostile))),
            invariants: Vec::new(),
            triggers: Vec::new(),
            node_options: BTreeMap::new(),
            holds: Vec::new(),
            held: Vec::new(),
            rules: Vec::new(),
            reordered: Vec::new(),
            refusals: BTreeMap::new(),
            failure: None,
            done: false,
            scenario,
        };
        w.trace.record(
            Instant::ZERO,
            None,
            Fact::RunStarted { seed },
            format!("seed {} knobs: {}", seed, w.scenario.knobs),
        );
        if w.scenario.knobs.lease_reads {
            w.cover(crate::coverage::RUN_WITH_LEASE_READS);
        }
        if w.scenario.knobs.log_cache_bytes_max <= 4_096 {
            w.cover(crate::coverage::RUN_WITH_SMALL_LOG_CACHE);
        }
        if w.scenario.knobs.hostile.is_some() {
            w.cover(crate::coverage::RUN_WITH_HOSTILE);
        }
        for f in w.scenario.faults.clone() {
            w.schedule(Instant(f.at_ms * 1_000_000), SimEvent::Fault(f.what));
        }
        let k = &w.scenario.knobs;
        let (chaos, duration) = (k.chaos_ms, k.duration_ms);
        w.schedule(Instant(chaos * 1_000_000), SimEvent::Heal);
        w.schedule(Instant(duration * 1_000_000), SimEvent::End);
        for i in 0..w.hosts.len() {
            w.start_node(i);
        }
        for c in 0..w.workload.client_count() {
            let at = Instant(w.workload.think_ns() + 100_000_000);
            w.schedule(at, SimEvent::ClientInvoke { client: c });
        }
        let service = w.service.clone();
        service.prepare(&mut w);
        w
    }

    /// The core options of node `i`.
    pub fn options(&self, i: usize) -> NodeOptions {
        if let Some(o) = self.node_options.get(&i) {
            return o.clone();
        }
        let k = &self.scenario.knobs;
        NodeOptions {
            election_timeout: Duration::from_millis(k.election_timeout_ms),
            heartbeat_interval: Duration::from_millis(k.heartbeat_ms),
            stream_budget_bytes: k.stream_budget_bytes,
            batch_entries_max: k.batch_entries_max,
            log_cache_bytes_max: k.log_cache_bytes_max,
            snapshot_policy: k.snapshot_policy,
            snapshot_trailing_entries: k.snapshot_trailing_entries,
            lease_reads: k.lease_reads,
            clock_drift_ppm_max: k.clock_drift_ppm_max,
            #[cfg(feature = "mutants")]
            mutants: raft_core::Mutants {
                commit_by_count: k.mutant == crate::scenario::Mutant::CommitByCount,
                change_before_term_commit: k.mutant
                    == crate::scenario::Mutant::ChangeBeforeTermCommit,
                changes_in_flight: k.mutant == crate::scenario::Mutant::ChangesInFlight,
            },
            ..NodeOptions::new(NodeId(i as u64 + 1))
        }
    }

    /// Queues `event` at `at` (never in the past).
    pub fn schedule(&mut self, at: Instant, event: SimEvent) {
        self.queue.push(at.max(self.now), event);
    }

    pub(crate) fn schedule_net(&mut self, items: Vec<(Instant, NetEvent)>) {
        for (at, e) in items {
            self.schedule(at, SimEvent::Net(e));
        }
    }

    /// Counts one occurrence of a rare event of interest.
    pub(crate) fn cover(&mut self, what: &'static str) {
        *self.coverage.entry(what).or_default() += 1;
    }

    /// Records a failure (the first one wins) and stops the run.
    pub(crate) fn fail(&mut self, f: Failure) {
        if self.failure.is_none() {
            let fact = Fact::Failed { checker: f.checker };
            self.trace
                .record(self.now, None, fact, format!("FAILURE {f}"));
            self.failure = Some(f);
        }
        self.done = true;
    }

    /// The cluster id of the world: its initial members' bootstrap's.
    pub fn cluster_id(&self) -> raft_core::ClusterId {
        self.cluster.cluster_id()
    }

    /// Whether node `i` was bootstrapped into another cluster than the
    /// world's ([`World::set_bootstrap`]). The cluster-wide oracles (log
    /// matching, committed prefix, election safety, applies) judge the
    /// world's cluster: such a node is a cluster of its own, whose entry 1
    /// legitimately differs, and what is checked of it is that it stays out.
    pub fn is_foreign(&self, i: usize) -> bool {
        self.hosts[i]
            .bootstrap
            .as_ref()
            .is_some_and(|b| b.cluster_id() != self.cluster_id())
    }

    /// Whether node `i` is up, with its incarnation.
    pub fn up_incarnation(&self, i: usize) -> Option<u64> {
        self.hosts[i]
            .node
            .as_ref()
            .map(|_| self.hosts[i].incarnation)
    }

    /// Runs to the end or the first failure.
    pub fn run(&mut self) {
        while self.step() {}
    }

    /// Processes the earliest event (stepping the node it is for, if any),
    /// then fires the faults whose predicate now holds and checks the user
    /// invariants. Returns whether the run goes on: `false` once it ended
    /// (at its end, on a failure, or with nothing left to do).
    pub fn step(&mut self) -> bool {
        if self.done {
            return false;
        }
        let Some((at, event)) = self.queue.pop() else {
            self.done = true;
            return false;
        };
        debug_assert!(at >= self.now, "time went backwards");
        self.now = at;
        self.events += 1;
        if self.events % 4_096 == 0 {
            self.net.collect_garbage();
        }
        let k = &self.scenario.knobs;
        let budget = EVENT_BUDGET_BASE + EVENT_BUDGET_PER_SIM_S * k.duration_ms / 1_000;
        if self.events > budget {
            let f = Failure::liveness(
                "event-budget",
                format!("more than {budget} events: something wakes far too often (a livelock?)"),
            );
            self.fail(f);
            return false;
        }
        self.handle(event);
        if !self.triggers.is_empty() || !self.invariants.is_empty() {
            self.run_user_hooks();
        }
        !self.done
    }

    /// The report of the run so far.
    pub fn report(&self) -> RunReport {
        self.report_with(true)
    }

    /// The report of the run so far, with the client history only if
    /// `history` (describing every operation costs a sweep, which drops it).
    fn report_with(&self, history: bool) -> RunReport {
        RunReport {
            seed: self.scenario.seed,
            digest: self.trace.digest(),
            events: self.events,
            sim_ns: self.now.0,
            failure: self.failure.clone(),
            history: if history {
                self.history_records()
            } else {
                Vec::new()
            },
            leader_terms: self.election.terms_with_leader(),
            committed: self.global.committed_len(),
            acked_writes: self.acked.count(),
            trace_tail: Vec::new(),
            coverage: self.coverage.clone(),
        }
    }

    /// The client history, each operation described by the service.
    fn history_records(&self) -> Vec<OpRecord> {
        self.workload
            .history()
            .iter()
            .map(|op| OpRecord {
                id: op.id,
                client: op.client,
                invoke_ns: op.invoke_ns,
                complete_ns: op.complete_ns,
                outcome: op.outcome,
                text: self.service.describe(op),
            })
            .collect()
    }

    /// The failure so far, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// The node an event is for, if it is for one.
    fn target_of(&self, event: &SimEvent) -> Option<usize> {
        match event {
            SimEvent::Message { to, .. } | SimEvent::MessageLate { to, .. } => Some(*to),
            SimEvent::Fsync { node, .. }
            | SimEvent::Deliver { node, .. }
            | SimEvent::Bootstrap { node, .. }
            | SimEvent::Wake { node, .. } => Some(*node),
            SimEvent::Net(NetEvent::Connect { stream }) => {
                self.net.endpoints(*stream).map(|(_, l)| l)
            }
            SimEvent::Net(NetEvent::DeliverFrame { stream, dir, .. }) => {
                self.net.endpoints(*stream).map(|(f, l)| {
                    if *dir == crate::network::Dir::Up {
                        l
                    } else {
                        f
                    }
                })
            }
            SimEvent::Net(NetEvent::Closed { node, .. }) => Some(*node),
            _ => None,
        }
    }

    fn handle(&mut self, event: SimEvent) {
        if let Some(i) = self.target_of(&event) {
            match self.hosts[i].paused_until {
                Some(until) if until > self.now => return self.schedule(until, event),
                Some(_) => {
                    self.hosts[i].paused_until = None;
                    let text = "resume after a pause".to_string();
                    self.trace.record(self.now, Some(i), Fact::Resumed, text);
                }
                None => {}
            }
        }
        match event {
            SimEvent::Message { from, to, msg } => {
                if let Some(msg) = self.hold_or_pass(from, to, msg) {
                    self.arrive_datagram(from, to, msg);
                }
            }
            SimEvent::MessageLate { from, to, msg } => self.deliver_datagram(from, to, msg),
            SimEvent::Net(e) => self.handle_net(e),
            SimEvent::Fsync {
                node,
                incarnation,
                upto,
            } => {
                if self.up_incarnation(node) == Some(incarnation) {
                    self.complete_fsync(node, upto);
                }
            }
            SimEvent::Deliver {
                node,
                incarnation,
                event,
            } => {
                if self.up_incarnation(node) == Some(incarnation) {
                    if let Event::SnapshotTaken { index, .. } = &event {
                        let host = &mut self.hosts[node];
                        if let Some(s) = host.snapshot_writing.take_if(|s| s.meta.index == *index) {
                            host.disk.store_snapshot(s);
                        }
                    }
                    self.step_node(node, event);
                }
            }
            SimEvent::Bootstrap { node, incarnation } => {
                if self.up_incarnation(node) == Some(incarnation) {
                    self.bootstrap(node);
                }
            }
            SimEvent::Wake { node, generation } => {
                if self.hosts[node].node.is_some() && self.hosts[node].wake_generation == generation
                {
                    self.hosts[node].wake_at = Instant::NEVER;
                    self.step_node(node, Event::Tick);
                }
            }
            SimEvent::ClientInvoke { client } => self.client_invoke(client),
            SimEvent::ClientTimeout { id } => {
                if let Some((_, op)) = self.workload.lookup(id) {
                    let end = if op.is_write() {
                        End::Unknown
                    } else {
                        End::Failed
                    };
                    self.client_finish(id, end, None, "timeout");
                }
            }
            SimEvent::Fault(f) => self.apply_fault(f),
            SimEvent::Heal => self.heal(),
            SimEvent::End => {
                if !self.judge_liveness() {
                    return;
                }
                if self.failure.is_none() {
                    self.judge_state_agreement();
                }
                if self.failure.is_none() {
                    self.judge_linearizability();
                }
                self.done = true;
            }
        }
    }

    fn handle_net(&mut self, e: NetEvent) {
        match e {
            NetEvent::Connect { stream } => {
                let leader = self.net.endpoints(stream).map(|(_, l)| l);
                let inc = leader.and_then(|l| self.up_incarnation(l));
                let (ok, follow) = self.net.connect(stream, inc, self.now);
                self.schedule_net(follow);
                let open = self.opens.remove(&stream);
                if let (Some((leader, _)), Some(open)) = (ok, open) {
                    self.step_node(leader, Event::StreamOpened { stream, open });
                }
            }
            NetEvent::DeliverFrame {
                stream,
                dir,
                generation,
            } => {
                if !self.rules.is_empty() && self.judge_frame(stream, dir, generation) {
                    return;
                }
                let (d, follow) = self.net.deliver_one(stream, dir, generation, self.now);
                if let Some((at, e)) = follow {
                    self.schedule(at, SimEvent::Net(e));
                }
                match d {
                    crate::network::Delivery::Frame {
                        node,
                        incarnation,
                        frame,
                    } => {
                        if self.up_incarnation(node) == Some(incarnation) {
                            self.step_node(node, Event::FrameReceived { stream, frame });
                        }
                    }
                    crate::network::Delivery::Closed { node, incarnation } => {
                        if self.up_incarnation(node) == Some(incarnation) {
                            self.step_node(node, Event::StreamClosed { stream });
                        }
                    }
                    crate::network::Delivery::Nothing => {}
                }
            }
            NetEvent::StallCheck {
                stream,
                dir,
                generation,
            } => {
                let follow =
                    self.net
                        .stall_check(stream, dir, generation, self.now, &mut self.net_rng);
                if !follow.is_empty() {
                    self.cover("stream broke after a long stall");
                    self.trace.record(
                        self.now,
                        None,
                        Fact::StreamBroken {
                            stream,
                            cause: BreakCause::Stall,
                        },
                        format!("stream {stream} broke after a long stall"),
                    );
                }
                self.schedule_net(follow);
            }
            NetEvent::Closed {
                stream,
                node,
                incarnation,
            } => {
                self.opens.remove(&stream);
                if self.up_incarnation(node) == Some(incarnation) {
                    self.step_node(node, Event::StreamClosed { stream });
                }
            }
        }
    }
}

/// Runs a whole key-value seed and reports, catching panics of the core.
pub fn run_scenario(scenario: Scenario, trace: Trace) -> RunReport {
    run_service(&KvService, scenario, trace)
}

/// Runs a whole seed of `service` and reports, catching panics of the core
/// (and of the service's own code).
pub fn run_service<S: Service>(service: &S, scenario: Scenario, trace: Trace) -> RunReport {
    run_service_with(service, scenario, trace, true)
}

/// [`run_service`], with the client history in the report only if `history`.
pub(crate) fn run_service_with<S: Service>(
    service: &S,
    scenario: Scenario,
    trace: Trace,
    history: bool,
) -> RunReport {
    let mut world = World::with_service(service.clone(), scenario, trace);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run()));
    if let Err(payload) = outcome {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic with a non-string payload".to_string());
        let now = world.now;
        world
            .trace
            .record(now, None, Fact::Panicked, format!("PANIC {msg}"));
        world.failure = Some(Failure {
            class: FailureClass::Panic,
            checker: "panic",
            message: msg,
        });
    }
    let _ = world.trace.flush();
    let mut report = world.report_with(history);
    if report.failure.is_some() {
        report.trace_tail = world
            .trace
            .tail(crate::sweep::FAILURE_TAIL)
            .map(|r| r.to_string())
            .collect();
    }
    report
}
