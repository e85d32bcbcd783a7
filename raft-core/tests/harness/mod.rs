//! A small deterministic in-memory cluster for tests and benches: nodes wired
//! by FIFO queues, disks that persist on demand, and an FSM that records what
//! it applied. The full fault-injecting world lives in raft-sim.
#![allow(dead_code, missing_docs)]

use bytes::Bytes;
use raft_core::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a driver within a memory budget recovers from `durable`: the tail
/// whose bytes fit `budget` as entries, the front as `StoredEntries`.
pub fn recover_within(durable: &[LogEntry], budget: u64) -> (Option<StoredEntries>, Vec<LogEntry>) {
    let mut bytes = 0;
    let kept = durable
        .iter()
        .rev()
        .take_while(|e| {
            bytes += e.budget_bytes();
            bytes <= budget
        })
        .count();
    let (front, tail) = durable.split_at(durable.len() - kept);
    let Some(last) = front.last() else {
        return (None, tail.to_vec());
    };
    let mut term_starts: Vec<(LogIndex, Term)> = Vec::new();
    for e in front {
        if term_starts.last().is_none_or(|&(_, t)| t != e.term) {
            term_starts.push((e.index, e.term));
        }
    }
    let stored = StoredEntries {
        term_starts,
        last: last.index,
        config_entries: front
            .iter()
            .filter(|e| e.kind.is_config())
            .cloned()
            .collect(),
    };
    (Some(stored), tail.to_vec())
}

/// What a host does with appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Durable at once (LogPersisted follows the append in the queue).
    Immediately,
    /// Held until the test calls `persist`.
    Manually,
}

pub struct Disk {
    pub hard_state: HardState,
    pub entries: Vec<LogEntry>,
    pub snapshot: Option<(SnapshotMeta, Bytes)>,
    /// Appended but not yet durable.
    pub pending: Vec<LogEntry>,
    pub incoming: Vec<u8>,
}

pub struct Host {
    pub node: Node,
    pub disk: Disk,
    pub applied: Vec<LogEntry>,
    pub up: bool,
    pub persist: Persist,
    pub actions: Vec<Action>,
    pub seed: u64,
}

#[derive(Clone, Debug)]
enum Delivery {
    Event(NodeId, Event),
}

pub struct Cluster {
    pub hosts: BTreeMap<NodeId, Host>,
    pub now: Instant,
    /// `ReadLog` actions served so far.
    pub reads: u64,
    queue: VecDeque<Delivery>,
    streams: BTreeMap<StreamId, (NodeId, NodeId)>,
    /// Directed links that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub completions: Vec<(NodeId, RequestId, Result<Completion, RequestError>)>,
    pub next_request: u64,
    pub options: NodeOptions,
    pub delivered: u64,
    /// Keep every action in `Host::actions` (tests inspect them; benches do not).
    pub record: bool,
    /// Per stream: snapshot bytes a leader put on it, and the last
    /// `SnapshotAck` its follower sent back.
    snapshot_flow: BTreeMap<StreamId, (u64, u64)>,
    /// The most snapshot bytes ever on a stream ahead of its follower's ack.
    pub snapshot_inflight_max: u64,
    /// Bytes per `SnapshotChunk` the hosts send.
    pub snapshot_chunk_bytes: usize,
    /// With `Some`, every step in order: the node, its event, its actions
    /// (the golden scripts print them).
    pub steps: Option<Vec<(NodeId, Event, Vec<Action>)>>,
    /// With `Some`, reads a count of heap allocations so far; the allocations
    /// made inside the nodes' steps add up in `core_allocations`.
    pub allocation_counter: Option<fn() -> u64>,
    pub core_allocations: u64,
    /// Every step's actions are written here and executed from here.
    buffer: Vec<Action>,
}

/// `options` with commit notices sent within the step that moved the commit
/// index, so `settle` (which lets no time pass) leaves followers applied.
pub fn immediate_commit_notices(options: NodeOptions) -> NodeOptions {
    NodeOptions {
        commit_notify_delay: Duration::ZERO,
        ..options
    }
}

pub fn addr(id: NodeId) -> String {
    format!("node-{}", id.0)
}

impl Cluster {
    /// `n` fresh nodes bootstrapped from one member list, with a leader
    /// elected and its first entries applied everywhere. A commit index
    /// reaches idle followers within the step that moved it
    /// (`commit_notify_delay` zero), so `settle` leaves every node applied.
    pub fn new(n: u64) -> Cluster {
        Cluster::with_options(n, immediate_commit_notices(NodeOptions::new(NodeId(1))))
    }

    pub fn with_options(n: u64, options: NodeOptions) -> Cluster {
        let mut c = Cluster::empty(options);
        let bootstrap = Bootstrap::new(TOKEN, (1..=n).map(|i| (NodeId(i), addr(NodeId(i)))))
            .expect("a valid member list");
        let mut requests = Vec::new();
        for i in 1..=n {
            c.add_host(NodeId(i), None);
            let id = c.request_id();
            requests.push(id);
            let bootstrap = bootstrap.clone();
            c.push(NodeId(i), Event::BootstrapRequested { id, bootstrap });
        }
        c.settle();
        for id in requests {
            assert!(
                matches!(c.result(id), Some(Ok(Completion::Initialized { .. }))),
                "bootstrap failed: {:?}",
                c.result(id)
            );
        }
        c.run_until_settled_leader();
        c
    }

    /// `n` fresh nodes the dynamic way: node 1 initializes and the others
    /// join one by one, each promoted before the next asks.
    pub fn initialized_then_joined(n: u64) -> Cluster {
        let mut c = Cluster::empty(NodeOptions::new(NodeId(1)));
        c.add_host(NodeId(1), None);
        let id = c.request_id();
        c.push(
            NodeId(1),
            Event::InitializeRequested {
                id,
                address: addr(NodeId(1)),
            },
        );
        c.settle();
        assert!(
            matches!(c.result(id), Some(Ok(Completion::Initialized { .. }))),
            "initialize failed"
        );
        for _ in 1..n {
            c.join();
        }
        c
    }

    /// No nodes yet.
    pub fn empty(options: NodeOptions) -> Cluster {
        Cluster {
            hosts: BTreeMap::new(),
            now: Instant(1_000_000_000),
            reads: 0,
            queue: VecDeque::new(),
            streams: BTreeMap::new(),
            cut: BTreeSet::new(),
            completions: Vec::new(),
            next_request: 1,
            options,
            delivered: 0,
            record: true,
            snapshot_flow: BTreeMap::new(),
            snapshot_inflight_max: 0,
            snapshot_chunk_bytes: 64,
            steps: None,
            allocation_counter: None,
            core_allocations: 0,
            buffer: Vec::new(),
        }
    }

    /// Runs until one leader has applied every entry it holds on every node;
    /// bounded by simulated time.
    pub fn run_until_settled_leader(&mut self) {
        for _ in 0..2_000 {
            if let Some(leader) = self.leader() {
                let last = self.hosts[&leader].node.last_index();
                if self.hosts.values().all(|h| h.node.applied_index() == last) {
                    return;
                }
            }
            self.run_for(Duration::from_millis(5));
        }
        panic!("no leader settled within 10 s of simulated time");
    }

    /// Adds a node through the leader and lets it catch up and be promoted.
    pub fn join(&mut self) -> NodeId {
        let leader = self.leader().expect("a leader to join through");
        let address = addr(self.hosts[&leader].node.config().max_node_id.next());
        let id = self.request_id();
        self.push(
            leader,
            Event::ChangeMembershipRequested {
                id,
                change: MembershipChange::Add { address },
            },
        );
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

    pub fn add_host(&mut self, id: NodeId, cluster_id: Option<ClusterId>) {
        let hard_state = HardState {
            cluster_id,
            ..HardState::default()
        };
        let seed = 1000 + id.0;
        let node = Node::new(
            NodeOptions {
                id,
                ..self.options.clone()
            },
            RecoveredState {
                hard_state: hard_state.clone(),
                ..RecoveredState::default()
            },
            seed,
            self.now,
        )
        .expect("fresh node");
        let disk = Disk {
            hard_state,
            entries: Vec::new(),
            snapshot: None,
            pending: Vec::new(),
            incoming: Vec::new(),
        };
        self.hosts.insert(
            id,
            Host {
                node,
                disk,
                applied: Vec::new(),
                up: true,
                persist: Persist::Immediately,
                actions: Vec::new(),
                seed,
            },
        );
    }

    pub fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    pub fn result(&self, id: RequestId) -> Option<Result<Completion, RequestError>> {
        self.completions
            .iter()
            .find(|(_, r, _)| *r == id)
            .map(|(_, _, res)| res.clone())
    }

    pub fn push(&mut self, to: NodeId, event: Event) {
        self.queue.push_back(Delivery::Event(to, event));
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.hosts[&NodeId(id)].node
    }

    pub fn leader(&self) -> Option<NodeId> {
        let leaders: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.up && h.node.role() == Role::Leader)
            .map(|(&id, _)| id)
            .collect();
        leaders
            .iter()
            .copied()
            .max_by_key(|id| self.hosts[id].node.term())
    }

    /// Steps one node with one event and executes its actions.
    pub fn step(&mut self, to: NodeId, event: Event) {
        let now = self.now;
        let Some(host) = self.hosts.get_mut(&to) else {
            return;
        };
        if !host.up {
            return;
        }
        let traced = self.steps.is_some().then(|| event.clone());
        let mut actions = std::mem::take(&mut self.buffer);
        let before = self.allocation_counter.map(|count| count());
        host.node.step_into(now, event, &mut actions);
        if let (Some(count), Some(before)) = (self.allocation_counter, before) {
            self.core_allocations += count() - before;
        }
        host.node.check_invariants();
        if let (Some(steps), Some(event)) = (&mut self.steps, traced) {
            steps.push((to, event, actions.clone()));
        }
        if self.record {
            host.actions.extend(actions.iter().cloned());
        }
        for a in actions.drain(..) {
            self.execute(to, a);
        }
        self.buffer = actions;
    }

    fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to)) && self.hosts.get(&to).is_some_and(|h| h.up)
    }

    fn execute(&mut self, at: NodeId, action: Action) {
        match action {
            Action::Send(m) => {
                if self.link_up(m.from, m.to) {
                    self.push(m.to, Event::MessageReceived(m));
                }
            }
            Action::OpenStream {
                stream,
                leader,
                open,
            } => {
                if self.link_up(at, leader) && self.link_up(leader, at) {
                    self.streams.insert(stream, (at, leader));
                    self.push(leader, Event::StreamOpened { stream, open });
                } else {
                    self.push(at, Event::StreamClosed { stream });
                }
            }
            Action::SendFrame {
                stream,
                peer,
                frame,
            } => self.send_frame(at, stream, peer, frame),
            Action::SendSnapshot {
                stream,
                peer,
                meta,
                offset,
                bytes_max,
            } => {
                let (m, data) = self.hosts[&at]
                    .disk
                    .snapshot
                    .clone()
                    .expect("a snapshot to send");
                if m != meta {
                    // Replaced by a newer one: the transfer starts over.
                    self.execute(at, Action::CloseStream { stream, peer });
                    return;
                }
                let chunk_bytes = self.snapshot_chunk_bytes;
                for frame in
                    wire::snapshot_window_frames(&meta, &data, offset, bytes_max, chunk_bytes)
                {
                    self.send_frame(at, stream, peer, frame);
                }
            }
            Action::CloseStream { stream, peer } => {
                if let Some((f, l)) = self.streams.remove(&stream) {
                    let other = if f == at { l } else { f };
                    assert_eq!(peer, other, "{at} closes {stream} naming the wrong peer");
                    self.push(other, Event::StreamClosed { stream });
                }
            }
            Action::PersistHardState(hs) => self.hosts.get_mut(&at).unwrap().disk.hard_state = hs,
            Action::AppendLog(entries) => {
                let host = self.hosts.get_mut(&at).unwrap();
                host.disk.pending.extend(entries);
                if host.persist == Persist::Immediately {
                    self.persist(at, u64::MAX);
                }
            }
            Action::TruncateLog { from } => {
                let host = self.hosts.get_mut(&at).unwrap();
                host.disk.entries.retain(|e| e.index < from);
                host.disk.pending.retain(|e| e.index < from);
            }
            Action::CompactLog { through } => {
                self.hosts
                    .get_mut(&at)
                    .unwrap()
                    .disk
                    .entries
                    .retain(|e| e.index > through);
            }
            Action::Apply(entries) => {
                let record = self.record;
                let host = self.hosts.get_mut(&at).unwrap();
                for e in entries {
                    if let Some(last) = host.applied.last() {
                        assert_eq!(e.index, last.index.next(), "node {at} applies in order");
                    }
                    if record || host.applied.is_empty() {
                        host.applied.push(e);
                    } else {
                        *host.applied.last_mut().unwrap() = e;
                    }
                }
            }
            Action::TakeSnapshot => {
                let host = self.hosts.get_mut(&at).unwrap();
                let index = host.applied.last().map_or(LogIndex(0), |e| e.index);
                let data = Bytes::from(postcard::to_allocvec(&host.applied).unwrap());
                let meta = SnapshotMeta {
                    index,
                    term: host.node.term_at(index).unwrap(),
                    config: host.node.config().clone(),
                };
                let bytes = data.len() as u64;
                host.disk.snapshot = Some((meta, data));
                self.push(at, Event::SnapshotTaken { index, bytes });
            }
            Action::ReceiveSnapshotChunk { offset, data, .. } => {
                let host = self.hosts.get_mut(&at).unwrap();
                if offset == 0 {
                    host.disk.incoming.clear();
                }
                host.disk.incoming.extend_from_slice(&data);
            }
            Action::InstallSnapshot { meta } => {
                let host = self.hosts.get_mut(&at).unwrap();
                let data = Bytes::from(std::mem::take(&mut host.disk.incoming));
                host.applied = postcard::from_bytes(&data).expect("snapshot decodes");
                host.disk.snapshot = Some((meta.clone(), data));
                host.disk.entries.clear();
                host.disk.pending.clear();
                self.push(at, Event::SnapshotInstalled { meta });
            }
            Action::ReadLog {
                reader,
                from,
                count_max,
                bytes_max,
            } => {
                let host = self.hosts.get_mut(&at).unwrap();
                let mut bytes = 0;
                let entries: Entries = host
                    .disk
                    .entries
                    .iter()
                    .filter(|e| e.index >= from)
                    .take(count_max)
                    .enumerate()
                    .take_while(|(i, e)| {
                        bytes += e.budget_bytes();
                        *i == 0 || bytes <= bytes_max
                    })
                    .map(|(_, e)| e.clone())
                    .collect();
                self.reads += 1;
                self.push(
                    at,
                    Event::LogRead {
                        reader,
                        from,
                        entries,
                    },
                );
            }
            Action::CompleteRequest { id, result } => self.completions.push((at, id, result)),
            Action::RoleChanged { .. } | Action::ConfigChanged(_) | Action::Refused { .. } => {}
            other => panic!("{at}: the test harness does not execute {other}"),
        }
    }

    fn send_frame(&mut self, from: NodeId, stream: StreamId, peer: NodeId, frame: Frame) {
        let Some(&(f, l)) = self.streams.get(&stream) else {
            return;
        };
        let other = if f == from { l } else { f };
        assert_eq!(
            peer, other,
            "{from} writes on {stream} naming the wrong peer"
        );
        let flow = self.snapshot_flow.entry(stream).or_default();
        match &frame {
            Frame::SnapshotChunk { data, .. } => flow.0 += data.len() as u64,
            Frame::SnapshotAck { received, .. } => flow.1 = *received,
            _ => {}
        }
        self.snapshot_inflight_max = self.snapshot_inflight_max.max(flow.0 - flow.1);
        let to = if f == from { l } else { f };
        if self.link_up(from, to) {
            self.push(to, Event::FrameReceived { stream, frame });
        } else {
            // A cut breaks the stream, as a TCP timeout would.
            self.streams.remove(&stream);
            self.push(f, Event::StreamClosed { stream });
            self.push(l, Event::StreamClosed { stream });
        }
    }

    /// Makes appends of `at` durable up to `through` and reports it.
    pub fn persist(&mut self, at: NodeId, through: u64) {
        let host = self.hosts.get_mut(&at).unwrap();
        let n = host
            .disk
            .pending
            .iter()
            .take_while(|e| e.index.0 <= through)
            .count();
        let done: Vec<LogEntry> = host.disk.pending.drain(..n).collect();
        if let Some(last) = done.last() {
            let (index, term) = (last.index, last.term);
            host.disk.entries.retain(|e| e.index < done[0].index);
            host.disk.entries.extend(done);
            self.push(at, Event::LogPersisted { index, term });
        }
    }

    /// Delivers queued events until none is left.
    pub fn settle(&mut self) {
        let mut budget = 1_000_000;
        while let Some(Delivery::Event(to, event)) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "livelock: the cluster never settles");
            self.delivered += 1;
            self.step(to, event);
        }
    }

    /// Advances time in small increments, ticking every node and settling.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = self.now + Duration::from_millis(5);
            let ids: Vec<NodeId> = self.hosts.keys().copied().collect();
            for id in ids {
                if self.hosts[&id].up && self.hosts[&id].node.next_deadline() <= self.now {
                    self.step(id, Event::Tick);
                }
            }
            self.settle();
        }
    }

    /// Proposes one command at the leader; returns its request id.
    pub fn propose(&mut self, data: &[u8]) -> RequestId {
        let leader = self.leader().expect("a leader");
        let id = self.request_id();
        self.push(
            leader,
            Event::ProposeRequested {
                proposals: vec![Proposal {
                    id,
                    data: Bytes::copy_from_slice(data),
                }],
            },
        );
        id
    }

    /// Crashes a node: what was not durable is lost.
    pub fn crash(&mut self, id: NodeId) {
        let host = self.hosts.get_mut(&id).unwrap();
        host.up = false;
        host.disk.pending.clear();
        host.disk.incoming.clear();
        let dead: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, (f, l))| *f == id || *l == id)
            .map(|(&s, _)| s)
            .collect();
        for s in dead {
            let (f, l) = self.streams.remove(&s).unwrap();
            let other = if f == id { l } else { f };
            self.push(other, Event::StreamClosed { stream: s });
        }
    }

    /// Restarts a crashed node from its disk.
    pub fn restart(&mut self, id: NodeId) {
        let now = self.now;
        let options = NodeOptions {
            id,
            ..self.options.clone()
        };
        let host = self.hosts.get_mut(&id).unwrap();
        host.seed += 7919;
        let (snapshot, applied) = match &host.disk.snapshot {
            Some((meta, data)) => (Some(meta.clone()), postcard::from_bytes(data).unwrap()),
            None => (None, Vec::new()),
        };
        let (stored, entries) = recover_within(&host.disk.entries, options.log_cache_bytes_max);
        let recovered = RecoveredState {
            hard_state: host.disk.hard_state.clone(),
            snapshot,
            entries,
            stored,
        };
        host.node = Node::new(options, recovered, host.seed, now).expect("recover");
        host.applied = applied;
        host.up = true;
    }

    /// Cuts both directions between `a` and every other node.
    pub fn isolate(&mut self, a: NodeId) {
        let ids: Vec<NodeId> = self.hosts.keys().copied().collect();
        for b in ids {
            if a != b {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Applied command payloads of a node.
    pub fn commands(&self, id: NodeId) -> Vec<Bytes> {
        self.hosts[&id]
            .applied
            .iter()
            .filter(|e| e.kind == EntryKind::Command)
            .map(|e| e.data.clone())
            .collect()
    }

    /// Asserts that every node's applied sequence is a prefix of the longest.
    pub fn assert_state_machine_safety(&self) {
        let longest = self
            .hosts
            .values()
            .map(|h| &h.applied)
            .max_by_key(|a| a.len())
            .unwrap();
        for (id, h) in &self.hosts {
            assert_eq!(
                &longest[..h.applied.len()],
                &h.applied[..],
                "node {id} applied a different sequence"
            );
        }
    }
}

/// The token of bootstrapped clusters.
pub const TOKEN: u64 = 0x5eed;

/// The cluster id of hand-built nodes and messages.
pub const CLUSTER: ClusterId = ClusterId(9);

/// A lone node of `CLUSTER` in `term`, with an empty log, no vote and no leader.
pub fn node_in_term(id: NodeId, term: u64) -> Node {
    let hard_state = HardState {
        cluster_id: Some(CLUSTER),
        term: Term(term),
        vote: None,
    };
    Node::new(
        NodeOptions::new(id),
        RecoveredState {
            hard_state,
            ..Default::default()
        },
        1,
        Instant(0),
    )
    .expect("a fresh node")
}

/// When a node built by `node_in_term` first grants votes: it recovered a
/// term, so it refuses them for one election timeout after its start.
pub fn voting_from() -> Instant {
    Instant(0) + NodeOptions::new(NodeId(1)).election_timeout
}

/// A heartbeat of `CLUSTER` from `from` to `to` in `term`, first round.
pub fn heartbeat(from: NodeId, to: NodeId, term: u64, commit: u64) -> Message {
    Message {
        cluster_id: CLUSTER,
        from,
        to,
        term: Term(term),
        body: MessageBody::Heartbeat {
            commit: LogIndex(commit),
            round: 1,
        },
    }
}

/// The stream a node ordered opened among `actions`.
pub fn opened_stream(actions: &[Action]) -> StreamId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::OpenStream { stream, .. } => Some(*stream),
            _ => None,
        })
        .expect("the node opens a stream")
}
