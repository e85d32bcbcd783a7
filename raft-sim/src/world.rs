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
use crate::checkers::log::{GlobalLog, LogMirror};
use crate::checkers::writes::AckedWrites;
use crate::checkers::{Failure, FailureClass};
use crate::clock::Clock;
use crate::disk::{DiskTiming, SimDisk};
use crate::history::Op;
use crate::kv::KvFsm;
use crate::network::{NetEvent, Network};
use crate::rng::{SimRng, StreamKind};
use crate::scenario::{Fault, Scenario};
use crate::trace::Trace;
use crate::workload::{End, Workload};
use raft_core::{
    ClusterId, Config, Duration, EntryKind, Event, HardState, Instant, LogEntry, LogIndex, Member,
    MemberRole, Message, MessageBody, Node, NodeId, NodeOptions, RecoveredState, RequestId, Role,
    SnapshotMeta, StreamOpen, Term,
};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// Events a run may process: a fixed allowance plus this many per simulated
/// second (typical runs use 2,000–10,000); beyond it the run is a livelock.
pub const EVENT_BUDGET_PER_SIM_S: u64 = 200_000;
/// The fixed part of the event budget.
pub const EVENT_BUDGET_BASE: u64 = 1_000_000;

/// The first request id the nemesis uses; client ids stay below it.
pub const NEMESIS_REQUEST_BASE: u64 = 1 << 62;

/// Client requests reach a node (and answers come back) after this long.
pub const CLIENT_LATENCY_NS: u64 = 50_000;

/// Something scheduled.
#[derive(Clone, Debug)]
pub enum SimEvent {
    /// A datagram arrives.
    Message {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// The datagram.
        msg: Message,
    },
    /// A network follow-up (stream connect, frame delivery, stall check, close notice).
    Net(NetEvent),
    /// An fsync of node `node` completes.
    Fsync {
        /// The node.
        node: usize,
        /// Its incarnation when the fsync started.
        incarnation: u64,
        /// The fsync's token.
        upto: u64,
    },
    /// A core event for a node (client requests, snapshot reports).
    Deliver {
        /// The node.
        node: usize,
        /// Its incarnation when this was sent.
        incarnation: u64,
        /// The event.
        event: Event,
    },
    /// The node's timer.
    Wake {
        /// The node.
        node: usize,
        /// Skip unless it matches the host's current generation.
        generation: u64,
    },
    /// A client invokes its next operation.
    ClientInvoke {
        /// The client slot.
        client: usize,
    },
    /// A client gives up on a request.
    ClientTimeout {
        /// The request.
        id: RequestId,
    },
    /// A scheduled fault.
    Fault(Fault),
    /// The chaos phase ends: heal everything.
    Heal,
    /// The run ends.
    End,
}

struct Queued {
    at: Instant,
    seq: u64,
    event: SimEvent,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    /// Reversed, so the max-heap pops the earliest `(at, seq)`.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Waiting for a node's state machine to reach an index before answering a client.
#[derive(Clone, Debug)]
pub struct ApplyWaiter {
    /// The request.
    pub id: RequestId,
    /// The index to reach.
    pub index: LogIndex,
    /// The read's key, or `None` for a write waiting for its cas result.
    pub read_key: Option<u64>,
    /// The write's op id (to check the applied command is the client's).
    pub op_id: u64,
}

/// One simulated server.
pub struct Host {
    /// The core node, `None` while crashed.
    pub node: Option<Node>,
    /// Its disk (survives crashes).
    pub disk: SimDisk,
    /// Its clock.
    pub clock: Clock,
    /// Restarts so far.
    pub incarnation: u64,
    /// Its state machine (volatile).
    pub kv: KvFsm,
    /// The digest mirror of its in-memory log.
    pub mirror: LogMirror,
    /// The current wake generation.
    pub wake_generation: u64,
    /// When the current wake fires (global).
    pub wake_at: Instant,
    /// A snapshot being received.
    pub incoming: Option<(SnapshotMeta, Vec<u8>)>,
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
    pub history: Vec<Op>,
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

/// The simulated world of one seed.
pub struct World {
    /// The scenario being run.
    pub scenario: Scenario,
    /// Global simulated time.
    pub now: Instant,
    /// The servers.
    pub hosts: Vec<Host>,
    /// The network.
    pub net: Network,
    /// Clients and history.
    pub workload: Workload,
    /// The trace.
    pub trace: Trace,
    queue: BinaryHeap<Queued>,
    seq: u64,
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
    /// The hostile member's state (attacks are drawn from its own stream).
    pub(crate) hostile: Option<crate::hostile::Hostile>,
    failure: Option<Failure>,
    done: bool,
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

impl World {
    /// Builds the world of `scenario`; `trace` decides what is echoed and kept.
    pub fn new(scenario: Scenario, trace: Trace) -> World {
        let k = &scenario.knobs;
        let seed = scenario.seed;
        let mut clock_rng = SimRng::new(seed, StreamKind::Clock);
        let mut disk_rng = SimRng::new(seed, StreamKind::Disk);
        let boot = bootstrap_state(k.nodes);
        let hosts = (0..k.nodes)
            .map(|i| {
                let drawn = if k.drift_ppm_max == 0 {
                    0
                } else {
                    clock_rng.between(0, 2 * k.drift_ppm_max) as i64 - k.drift_ppm_max as i64
                };
                let drift = k.drift_ppm_fixed.get(i).copied().unwrap_or(drawn);
                let clock = Clock::new(clock_rng.below(1_000_000_000), drift);
                let mut disk = SimDisk::new(disk_timing(&scenario, i));
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
                        &mut disk_rng,
                    )
                    .expect("idle disk");
                disk.complete_fsync(f.upto, f.at, &mut disk_rng);
                Host::fresh(disk, clock, mirror, Term(1))
            })
            .collect();
        let net = Network::new(k.nodes, k.net.clone());
        let workload = Workload::new(k, SimRng::new(seed, StreamKind::Workload));
        let mut w = World {
            now: Instant::ZERO,
            hosts,
            net,
            workload,
            trace,
            queue: BinaryHeap::new(),
            seq: 0,
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
            hostile: k
                .hostile
                .clone()
                .map(|h| crate::hostile::Hostile::new(h, SimRng::new(seed, StreamKind::Hostile))),
            failure: None,
            done: false,
            scenario,
        };
        w.trace.record(
            Instant::ZERO,
            None,
            format!("seed {} knobs: {}", seed, w.scenario.knobs),
        );
        if w.scenario.knobs.lease_reads {
            w.cover(crate::coverage::RUN_WITH_LEASE_READS);
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
        w
    }

    /// The core options of node `i`.
    pub fn options(&self, i: usize) -> NodeOptions {
        let k = &self.scenario.knobs;
        NodeOptions {
            election_timeout: Duration::from_millis(k.election_timeout_ms),
            heartbeat_interval: Duration::from_millis(k.heartbeat_ms),
            stream_budget_bytes: k.stream_budget_bytes,
            max_batch_entries: k.max_batch_entries,
            snapshot_threshold: k.snapshot_threshold,
            snapshot_trailing_entries: k.snapshot_trailing_entries,
            lease_reads: k.lease_reads,
            max_clock_drift_ppm: k.max_clock_drift_ppm,
            mutants: raft_core::options::Mutants {
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
        let at = at.max(self.now);
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            event,
        });
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
            self.trace.record(self.now, None, format!("FAILURE {f}"));
            self.failure = Some(f);
        }
        self.done = true;
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
        let k = &self.scenario.knobs;
        let budget = EVENT_BUDGET_BASE + EVENT_BUDGET_PER_SIM_S * k.duration_ms / 1_000;
        while !self.done {
            let Some(q) = self.queue.pop() else { break };
            debug_assert!(q.at >= self.now, "time went backwards");
            self.now = q.at;
            self.events += 1;
            if self.events % 4_096 == 0 {
                self.net.collect_garbage();
            }
            if self.events > budget {
                let f = Failure::liveness(
                    "event-budget",
                    format!(
                        "more than {budget} events: something wakes far too often (a livelock?)"
                    ),
                );
                return self.fail(f);
            }
            self.handle(q.event);
        }
    }

    /// The report of the run so far.
    pub fn report(&self) -> RunReport {
        RunReport {
            seed: self.scenario.seed,
            digest: self.trace.digest(),
            events: self.events,
            sim_ns: self.now.0,
            failure: self.failure.clone(),
            history: self.workload.history().to_vec(),
            leader_terms: self.election.terms_with_leader(),
            committed: self.global.committed_len(),
            acked_writes: self.acked.count(),
            trace_tail: Vec::new(),
            coverage: self.coverage.clone(),
        }
    }

    /// The failure so far, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// The node an event is for, if it is for one.
    fn target_of(&self, event: &SimEvent) -> Option<usize> {
        match event {
            SimEvent::Message { to, .. } => Some(*to),
            SimEvent::Fsync { node, .. }
            | SimEvent::Deliver { node, .. }
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
                    self.trace
                        .record(self.now, Some(i), "resume after a pause".to_string());
                }
                None => {}
            }
        }
        match event {
            SimEvent::Message { from, to, msg } => {
                if !self.net.path_up(from, to) {
                    self.trace.record(
                        self.now,
                        Some(to),
                        format!("drop (partitioned in flight) {msg}"),
                    );
                } else if self.hosts[to].node.is_some() {
                    self.step_message(to, msg);
                }
            }
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
                    self.step(node, event);
                }
            }
            SimEvent::Wake { node, generation } => {
                if self.hosts[node].node.is_some() && self.hosts[node].wake_generation == generation
                {
                    self.hosts[node].wake_at = Instant::NEVER;
                    self.step(node, Event::Tick);
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
                    self.judge_linearizability();
                }
                self.done = true;
            }
        }
    }

    /// Steps a datagram into node `to` and checks rules every receiver obeys
    /// whoever the sender (the hostile member included): a pre-vote request
    /// never makes it adopt the request's term; a vote goes only to a
    /// candidate whose log is at least as up to date; `TimeoutNow` starts a
    /// campaign only when it comes from the receiver's leader. (A timer due
    /// in the same step may start a campaign of the receiver's own, which
    /// moves the term by one, never to a pre-vote's term further ahead.)
    pub(crate) fn step_message(&mut self, to: usize, msg: Message) {
        let Some(node) = self.hosts[to].node.as_ref() else {
            return;
        };
        let (term0, vote0) = (node.term(), node.vote());
        let (last0, leader0, role0) = (
            (node.last_term(), node.last_index()),
            node.leader(),
            node.role(),
        );
        let (from, term, body) = (msg.from, msg.term, msg.body.clone());
        self.step(to, Event::MessageReceived(msg));
        let Some(node) = self.hosts[to]
            .node
            .as_ref()
            .filter(|_| self.failure.is_none())
        else {
            return;
        };
        let broken = match body {
            MessageBody::PreVoteRequest { .. } => (term.0 > term0.0 + 1 && node.term() >= term)
                .then(|| format!("adopted the term {term} of a pre-vote request from {from}")),
            MessageBody::VoteRequest {
                last_index,
                last_term,
                ..
            } => {
                let newly =
                    node.vote() == Some(from) && (node.term(), node.vote()) != (term0, vote0);
                (newly && (last_term, last_index) < last0).then(|| {
                    format!(
                        "voted for {from} in {term} whose log ends at {last_index}/{last_term}, behind its own {}/{}",
                        last0.1, last0.0
                    )
                })
            }
            MessageBody::TimeoutNow => (node.role() == Role::Candidate
                && role0 != Role::Candidate
                && leader0 != Some(from))
            .then(|| format!("campaigned on TimeoutNow from {from}, which it did not follow")),
            _ => None,
        };
        if let Some(why) = broken {
            self.fail(Failure::safety(
                "message-rules",
                format!("n{} {why}", to + 1),
            ));
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
                    self.step(leader, Event::StreamOpened { stream, open });
                }
            }
            NetEvent::DeliverFrame {
                stream,
                dir,
                generation,
            } => {
                let (d, follow) = self.net.deliver(stream, dir, generation, self.now);
                self.schedule_net(follow);
                match d {
                    crate::network::Delivery::Frame {
                        node,
                        incarnation,
                        frame,
                    } => {
                        if self.up_incarnation(node) == Some(incarnation) {
                            self.step(node, Event::FrameReceived { stream, frame });
                        }
                    }
                    crate::network::Delivery::Closed { node, incarnation } => {
                        if self.up_incarnation(node) == Some(incarnation) {
                            self.step(node, Event::StreamClosed { stream });
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
                    self.step(node, Event::StreamClosed { stream });
                }
            }
        }
    }

    /// Starts (or restarts) node `i` from its disk.
    pub(crate) fn start_node(&mut self, i: usize) {
        let opts = self.options(i);
        let host = &mut self.hosts[i];
        let recovered = host.disk.recover();
        let local = host.clock.local(self.now);
        let seed = SimRng::new(
            self.scenario.seed,
            StreamKind::Node {
                node: i as u64,
                incarnation: host.incarnation,
            },
        )
        .next_u64();
        host.mirror = LogMirror::default();
        host.kv = KvFsm::default();
        if let Some(s) = host.disk.snapshot() {
            match KvFsm::restore(&s.data, s.meta.config.clone()) {
                Ok(kv) => host.kv = kv,
                Err(e) => {
                    let f = Failure::safety(
                        "recovery",
                        format!("n{} snapshot does not restore: {e}", i + 1),
                    );
                    return self.fail(f);
                }
            }
            host.mirror.install(s.meta.index, s.meta.term, s.digest);
        }
        let entries = host.disk.recovered_entries();
        // Mirror the core's recovered log: entries continuing the snapshot (or
        // starting at 1) follow its base; a trailing window that starts inside
        // the snapshot begins at its first entry, as the core's recovery does.
        if let Some((first, rest)) = entries.split_first() {
            if first.entry.index == host.mirror.last_index().next() {
                host.mirror
                    .append(std::slice::from_ref(&first.entry))
                    .expect("the entry follows the base");
            } else {
                host.mirror
                    .install(first.entry.index, first.entry.term, first.digest);
            }
            for e in rest {
                if host.mirror.append(std::slice::from_ref(&e.entry)).is_err() {
                    let f = Failure::safety(
                        "recovery",
                        format!("n{} durable log is not contiguous", i + 1),
                    );
                    return self.fail(f);
                }
            }
        }
        match Node::new(opts, recovered, seed, local) {
            Ok(node) => {
                host.commit = node.commit_index();
                host.role = node.role();
                host.term = node.term();
                host.node = Some(node);
                host.wake_at = Instant::NEVER;
                let text = format!(
                    "start incarnation {} from disk (last {})",
                    host.incarnation,
                    host.disk.last_index()
                );
                self.trace.record(self.now, Some(i), text);
                self.rearm(i);
            }
            Err(e) => {
                let f = Failure::safety(
                    "recovery",
                    format!("n{} refused to start from its disk: {e}", i + 1),
                );
                self.fail(f);
            }
        }
    }

    /// Re-arms node `i`'s wake-up from its next deadline.
    pub(crate) fn rearm(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        let Some(node) = &host.node else { return };
        let local = node.next_deadline();
        let at = if local == Instant::NEVER {
            Instant::NEVER
        } else {
            host.clock.global_at(local).max(Instant(self.now.0 + 1))
        };
        if at == host.wake_at {
            return;
        }
        host.wake_generation += 1;
        host.wake_at = at;
        if at != Instant::NEVER {
            let generation = host.wake_generation;
            self.schedule(
                at,
                SimEvent::Wake {
                    node: i,
                    generation,
                },
            );
        }
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

/// Runs a whole seed and reports, catching panics of the core.
pub fn run_scenario(scenario: Scenario, trace: Trace) -> RunReport {
    let mut world = World::new(scenario, trace);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run()));
    if let Err(payload) = outcome {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic with a non-string payload".to_string());
        let now = world.now;
        world.trace.record(now, None, format!("PANIC {msg}"));
        world.failure = Some(Failure {
            class: FailureClass::Panic,
            checker: "panic",
            message: msg,
        });
    }
    let _ = world.trace.flush();
    let mut report = world.report();
    if report.failure.is_some() {
        report.trace_tail = world.trace.tail(200).map(|r| r.to_string()).collect();
    }
    report
}
