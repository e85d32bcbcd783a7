//! The raft-core driver: the crate-root driver contract executed in memory.
//! Everything that names raft-core's API lives in this one file.
//!
//! Cluster formation is the documented one: node 1 initializes, the others
//! join through the leader (learner, caught up, promoted). Appends are
//! "durable" at once (`LogPersisted` follows each `AppendLog`); the log the
//! driver keeps is a `Vec` in memory; streams and datagrams are moved as
//! structs through queues (one thread) or channels (one thread per node).

use crate::Shape;
use crate::meter::{Inflight, Meter, Outcome, Workload};
use bytes::Bytes;
use raft_core::{
    Action, Completion, EntryKind, Event, LogEntry, MembershipChange, Node, NodeId, NodeOptions,
    Proposal, RecoveredState, RequestError, RequestId, Role, SnapshotPolicy,
};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Options matched with the peers: a chunk carries at most 1 MiB and a
/// follower's stream may run 256 MiB ahead of its ack (raft-rs: 1 MiB per
/// message, 256 messages in flight). Pre-vote and check-quorum are always on.
fn options(id: NodeId) -> NodeOptions {
    NodeOptions {
        batch_bytes_max: 1 << 20,
        batch_entries_max: 1 << 20,
        stream_budget_bytes: 256 << 20,
        // The log stays in memory for the whole run, as raft-rs's MemStorage does.
        snapshot_policy: SnapshotPolicy::NEVER,
        ..NodeOptions::new(id)
    }
}

/// One node and what its driver keeps: the in-memory log, the FSM (a
/// counter).
struct Host {
    node: Node,
    log: Vec<LogEntry>,
    applied_commands: u64,
    local: VecDeque<Event>,
    /// Every step's actions, written by `Node::step_into` and drained.
    actions: Vec<Action>,
}

/// Where a host's outgoing events go.
trait Outbox {
    fn send(&mut self, to: NodeId, event: Event);
}

impl Host {
    fn new(id: NodeId, cluster: Option<raft_core::ClusterId>, epoch: Instant) -> Host {
        let recovered = RecoveredState {
            hard_state: raft_core::HardState {
                cluster_id: cluster,
                ..Default::default()
            },
            ..RecoveredState::default()
        };
        let node = Node::new(options(id), recovered, 1000 + id.0, now(epoch)).expect("valid node");
        Host {
            node,
            log: Vec::new(),
            applied_commands: 0,
            local: VecDeque::new(),
            actions: Vec::new(),
        }
    }

    /// Steps one event and executes its actions; returns the leader's
    /// completions and how many commands it applied.
    fn step(
        &mut self,
        at: raft_core::Instant,
        event: Event,
        out: &mut impl Outbox,
        completions: &mut Vec<(RequestId, Result<Completion, RequestError>)>,
    ) -> u64 {
        let me = self.node.id();
        let mut applied = 0;
        let mut actions = std::mem::take(&mut self.actions);
        self.node.step_into(at, event, &mut actions);
        for action in actions.drain(..) {
            match action {
                Action::Send(m) => out.send(m.to, Event::MessageReceived(m)),
                Action::OpenStream {
                    stream,
                    leader,
                    open,
                } => out.send(leader, Event::StreamOpened { stream, open }),
                // Stream actions name the node at the other end: no table of streams.
                Action::SendFrame {
                    stream,
                    peer,
                    frame,
                } => out.send(peer, Event::FrameReceived { stream, frame }),
                Action::CloseStream { stream, peer } => {
                    out.send(peer, Event::StreamClosed { stream })
                }
                Action::PersistHardState(_) => {}
                Action::AppendLog(entries) => {
                    let last = entries.last().expect("an append appends");
                    self.local.push_back(Event::LogPersisted {
                        index: last.index,
                        term: last.term,
                    });
                    self.log.extend(entries);
                }
                Action::TruncateLog { from } => self.log.retain(|e| e.index < from),
                Action::CompactLog { through } => self.log.retain(|e| e.index > through),
                Action::Apply(entries) => {
                    let n = entries
                        .iter()
                        .filter(|e| e.kind == EntryKind::Command)
                        .count() as u64;
                    self.applied_commands += n;
                    applied += n;
                }
                Action::CompleteRequest { id, result } => completions.push((id, result)),
                Action::TakeSnapshot
                | Action::SendSnapshot { .. }
                | Action::ReceiveSnapshotChunk { .. }
                | Action::InstallSnapshot { .. } => {
                    panic!("node {me}: no snapshot is configured in this benchmark")
                }
                Action::RoleChanged { .. } | Action::ConfigChanged(_) | Action::Refused { .. } => {}
                other => panic!("node {me}: this benchmark does not execute {other}"),
            }
        }
        self.actions = actions;
        applied
    }
}

fn now(epoch: Instant) -> raft_core::Instant {
    raft_core::Instant(epoch.elapsed().as_nanos() as u64)
}

/// The one-thread world: one queue of (recipient, event).
struct Queue(VecDeque<(NodeId, Event)>);

impl Outbox for Queue {
    fn send(&mut self, to: NodeId, event: Event) {
        self.0.push_back((to, event));
    }
}

/// Steps every queued event (and each host's own `LogPersisted`s) and ticks
/// due timers; returns commands the leader applied.
fn pump(
    hosts: &mut BTreeMap<NodeId, Host>,
    queue: &mut Queue,
    epoch: Instant,
    leader: Option<NodeId>,
    completions: &mut Vec<(RequestId, Result<Completion, RequestError>)>,
) -> u64 {
    let mut leader_applied = 0;
    loop {
        let t = now(epoch);
        for (id, h) in hosts.iter_mut() {
            if h.node.next_deadline() <= t {
                let n = h.step(t, Event::Tick, queue, completions);
                if Some(*id) == leader {
                    leader_applied += n;
                }
            }
        }
        let mut progressed = false;
        while let Some((to, event)) = queue.0.pop_front() {
            progressed = true;
            // A node the leader already added may not be started yet; its
            // messages are lost, as on a network.
            let Some(h) = hosts.get_mut(&to) else {
                continue;
            };
            let mut n = h.step(t, event, queue, completions);
            while let Some(e) = h.local.pop_front() {
                n += h.step(t, e, queue, completions);
            }
            if Some(to) == leader {
                leader_applied += n;
            }
        }
        for (id, h) in hosts.iter_mut() {
            while let Some(e) = h.local.pop_front() {
                progressed = true;
                let n = h.step(t, e, queue, completions);
                if Some(*id) == leader {
                    leader_applied += n;
                }
            }
        }
        if !progressed {
            return leader_applied;
        }
    }
}

/// Node 1 initializes, nodes 2 and 3 join; returns the formed cluster.
fn form_cluster(epoch: Instant) -> (BTreeMap<NodeId, Host>, NodeId) {
    let mut hosts = BTreeMap::new();
    hosts.insert(NodeId(1), Host::new(NodeId(1), None, epoch));
    let mut queue = Queue(VecDeque::new());
    let mut completions = Vec::new();
    let address = |id: u64| format!("node-{id}");
    queue.send(
        NodeId(1),
        Event::InitializeRequested {
            id: RequestId(1),
            address: address(1),
        },
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cluster = None;
    let mut request = 1;
    let mut pending = Some(RequestId(1));
    while hosts.len() < 3 || hosts[&NodeId(1)].node.config().voter_count() < 3 {
        assert!(
            Instant::now() < deadline,
            "raft-core: the cluster never formed"
        );
        pump(&mut hosts, &mut queue, epoch, None, &mut completions);
        for (id, result) in completions.drain(..) {
            if Some(id) != pending {
                continue;
            }
            pending = None;
            match result {
                Ok(Completion::Initialized { cluster_id }) => cluster = Some(cluster_id),
                Ok(Completion::MembershipChanged {
                    node, cluster_id, ..
                }) => {
                    hosts.insert(node, Host::new(node, Some(cluster_id), epoch));
                }
                // Refused while the previous member is still a learner: ask again.
                _ => {}
            }
        }
        let joined = hosts.len() as u64;
        if cluster.is_some() && joined < 3 && pending.is_none() {
            request += 1;
            pending = Some(RequestId(request));
            queue.send(
                NodeId(1),
                Event::ChangeMembershipRequested {
                    id: RequestId(request),
                    change: MembershipChange::Add {
                        address: address(joined + 1),
                    },
                },
            );
        }
        std::thread::sleep(Duration::from_micros(200)); // lets real time reach the next timer
    }
    let leader = hosts
        .values()
        .find(|h| h.node.role() == Role::Leader)
        .map(|h| h.node.id())
        .expect("a leader");
    (hosts, leader)
}

fn proposals(inflight: &mut Inflight, w: &Workload, payload: &Bytes, next: &mut u64) -> Event {
    let n = inflight.room(w);
    let at = Instant::now();
    let proposals = (0..n)
        .map(|_| {
            inflight.submitted(at);
            *next += 1;
            Proposal {
                id: RequestId(*next),
                data: payload.clone(),
            }
        })
        .collect();
    Event::ProposeRequested { proposals }
}

/// Runs the workload; `meter` is started and stopped by the leader's driver.
pub fn run(shape: Shape, w: Workload, meter: &Meter) -> Outcome {
    let epoch = Instant::now();
    let (hosts, leader) = form_cluster(epoch);
    match shape {
        Shape::OneThread => one_thread(hosts, leader, epoch, w, meter),
        Shape::ThreadPerNode => thread_per_node(hosts, leader, epoch, w, meter),
    }
}

fn one_thread(
    mut hosts: BTreeMap<NodeId, Host>,
    leader: NodeId,
    epoch: Instant,
    w: Workload,
    meter: &Meter,
) -> Outcome {
    let payload = Bytes::from(vec![0xab; w.entry_bytes]);
    let mut queue = Queue(VecDeque::new());
    let mut inflight = Inflight::default();
    let mut completions = Vec::new();
    let mut next = 1_000;
    let base: Vec<u64> = hosts.values().map(|h| h.applied_commands).collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !inflight.done(&w) {
        assert!(
            Instant::now() < deadline,
            "raft-core: the run never finished"
        );
        if inflight.room(&w) > 0 {
            let event = proposals(&mut inflight, &w, &payload, &mut next);
            queue.send(leader, event);
        }
        let n = pump(
            &mut hosts,
            &mut queue,
            epoch,
            Some(leader),
            &mut completions,
        );
        completions.clear();
        let t = Instant::now();
        for _ in 0..n {
            inflight.applied(t, &w, meter);
        }
        assert_eq!(
            hosts[&leader].node.role(),
            Role::Leader,
            "raft-core lost its leader"
        );
    }
    // Followers learn the last commit index on the stream; let them apply it.
    while hosts
        .values()
        .zip(&base)
        .any(|(h, b)| h.applied_commands - b < w.total())
    {
        assert!(
            Instant::now() < deadline,
            "raft-core: a follower never applied everything"
        );
        pump(
            &mut hosts,
            &mut queue,
            epoch,
            Some(leader),
            &mut completions,
        );
    }
    Outcome {
        latencies_ns: inflight.latencies_ns,
        applied: hosts
            .values()
            .zip(&base)
            .map(|(h, b)| h.applied_commands - b)
            .collect(),
    }
}

/// Channels to every node; a host's own events stay on its thread.
struct Links(BTreeMap<NodeId, mpsc::Sender<Event>>);

impl Outbox for Links {
    fn send(&mut self, to: NodeId, event: Event) {
        // A peer that already finished has dropped its receiver; nothing to do.
        let _ = self.0[&to].send(event);
    }
}

fn thread_per_node(
    hosts: BTreeMap<NodeId, Host>,
    leader: NodeId,
    epoch: Instant,
    w: Workload,
    meter: &Meter,
) -> Outcome {
    let mut senders = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for &id in hosts.keys() {
        let (tx, rx) = mpsc::channel();
        senders.insert(id, tx);
        receivers.insert(id, rx);
    }
    let applied: Arc<BTreeMap<NodeId, AtomicU64>> =
        Arc::new(hosts.keys().map(|&id| (id, AtomicU64::new(0))).collect());
    let all_done = Arc::new(AtomicBool::new(false));
    let mut latencies = Vec::new();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (id, mut host) in hosts {
            let rx = receivers.remove(&id).expect("a receiver per node");
            let mut links = Links(senders.clone());
            let applied = Arc::clone(&applied);
            let all_done = Arc::clone(&all_done);
            handles.push(s.spawn(move || {
                let is_leader = id == leader;
                let payload = Bytes::from(vec![0xab; w.entry_bytes]);
                let mut inflight = Inflight::default();
                let mut completions = Vec::new();
                let mut next = 1_000;
                let base = host.applied_commands;
                let deadline = Instant::now() + Duration::from_secs(600);
                while !all_done.load(Ordering::Relaxed) {
                    assert!(
                        Instant::now() < deadline,
                        "raft-core: the run never finished"
                    );
                    if is_leader && inflight.room(&w) > 0 {
                        let event = proposals(&mut inflight, &w, &payload, &mut next);
                        host.local.push_back(event);
                    }
                    let mut n = 0;
                    let t = now(epoch);
                    if host.node.next_deadline() <= t {
                        n += host.step(t, Event::Tick, &mut links, &mut completions);
                    }
                    while let Some(e) = host.local.pop_front() {
                        n += host.step(now(epoch), e, &mut links, &mut completions);
                    }
                    // Block for the next event only when nothing of our own is pending.
                    let wait = host
                        .node
                        .next_deadline()
                        .0
                        .saturating_sub(now(epoch).0)
                        .min(1_000_000);
                    let first = if is_leader && inflight.room(&w) > 0 {
                        rx.try_recv().ok()
                    } else {
                        rx.recv_timeout(Duration::from_nanos(wait)).ok()
                    };
                    if let Some(e) = first {
                        n += host.step(now(epoch), e, &mut links, &mut completions);
                        while let Ok(e) = rx.try_recv() {
                            n += host.step(now(epoch), e, &mut links, &mut completions);
                            while let Some(e) = host.local.pop_front() {
                                n += host.step(now(epoch), e, &mut links, &mut completions);
                            }
                        }
                    }
                    completions.clear();
                    if is_leader {
                        let t = Instant::now();
                        for _ in 0..n {
                            inflight.applied(t, &w, meter);
                        }
                    }
                    let mine = host.applied_commands - base;
                    applied[&id].store(mine, Ordering::Relaxed);
                    if is_leader
                        && applied
                            .values()
                            .all(|a| a.load(Ordering::Relaxed) >= w.total())
                    {
                        all_done.store(true, Ordering::Relaxed);
                    }
                }
                inflight.latencies_ns
            }));
        }
        for h in handles {
            let l = h.join().expect("a node thread panicked");
            if !l.is_empty() {
                latencies = l;
            }
        }
    });
    Outcome {
        latencies_ns: latencies,
        applied: applied
            .values()
            .map(|a| a.load(Ordering::Relaxed))
            .collect(),
    }
}
