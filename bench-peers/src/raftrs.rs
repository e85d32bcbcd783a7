//! The raft-rs 0.7 driver, written after its `single_mem_node` and
//! `five_mem_node` examples: `RawNode` over `MemStorage`, a loop that steps
//! the messages that arrived, ticks on time, and then handles one `Ready`
//! (send messages, append entries, persist the hard state, send the
//! persisted messages, `advance`, apply committed entries, `advance_apply`).
//!
//! Settings matched with ours: 1 MiB per message, 256 messages in flight,
//! pre-vote and check-quorum on; a 50 ms tick with election after 10 ticks
//! (500 ms) and heartbeats every 3 (150 ms). The three voters are in the
//! initial configuration of every node's storage, and node 1 campaigns.

use crate::Shape;
use crate::meter::{Inflight, Meter, Outcome, Workload};
use raft::StateRole;
use raft::prelude::*;
use raft::storage::MemStorage;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(50);

fn config(id: u64) -> Config {
    let c = Config {
        id,
        election_tick: 10,
        heartbeat_tick: 3,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        pre_vote: true,
        check_quorum: true,
        applied: 0,
        ..Default::default()
    };
    c.validate().expect("a valid raft-rs config");
    c
}

struct Host {
    raw: RawNode<MemStorage>,
    applied_commands: u64,
    next_tick: Instant,
}

impl Host {
    fn new(id: u64, logger: &slog::Logger) -> Host {
        let storage = MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
        Host {
            raw: RawNode::new(&config(id), storage, logger).expect("a raft-rs node"),
            applied_commands: 0,
            next_tick: Instant::now() + TICK,
        }
    }

    fn maybe_tick(&mut self) {
        let now = Instant::now();
        if now >= self.next_tick {
            self.raw.tick();
            self.next_tick = now + TICK;
        }
    }

    /// Handles one `Ready` if there is one; returns the commands applied.
    fn on_ready(&mut self, send: &mut impl FnMut(Message)) -> u64 {
        if !self.raw.has_ready() {
            return 0;
        }
        let store = self.raw.raft.raft_log.store.clone();
        let mut ready = self.raw.ready();
        for m in ready.take_messages() {
            send(m);
        }
        assert!(ready.snapshot().is_empty(), "no snapshot in this benchmark");
        let mut applied = apply(ready.take_committed_entries());
        if !ready.entries().is_empty() {
            store
                .wl()
                .append(ready.entries())
                .expect("append to MemStorage");
        }
        if let Some(hs) = ready.hs() {
            store.wl().set_hardstate(hs.clone());
        }
        for m in ready.take_persisted_messages() {
            send(m);
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            store.wl().mut_hard_state().set_commit(commit);
        }
        for m in light.take_messages() {
            send(m);
        }
        applied += apply(light.take_committed_entries());
        self.raw.advance_apply();
        self.applied_commands += applied;
        applied
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }
}

/// The counting state machine: normal entries with data are commands (the
/// leader's empty entry on election is not).
fn apply(entries: Vec<Entry>) -> u64 {
    entries
        .iter()
        .filter(|e| e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty())
        .count() as u64
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

/// Three nodes; node 1 campaigns and the loop runs until it leads.
fn form_cluster() -> BTreeMap<u64, Host> {
    let logger = logger();
    let mut hosts: BTreeMap<u64, Host> = (1..=3).map(|id| (id, Host::new(id, &logger))).collect();
    hosts
        .get_mut(&1)
        .expect("node 1")
        .raw
        .campaign()
        .expect("campaign");
    let mut queue = VecDeque::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hosts[&1].is_leader() || !queue.is_empty() {
        assert!(Instant::now() < deadline, "raft-rs: no leader");
        pump(&mut hosts, &mut queue, 0);
    }
    hosts
}

/// Steps every queued message, then handles each node's `Ready`, until
/// nothing moves; returns commands the leader applied.
fn pump(hosts: &mut BTreeMap<u64, Host>, queue: &mut VecDeque<Message>, leader: u64) -> u64 {
    let mut leader_applied = 0;
    loop {
        for h in hosts.values_mut() {
            h.maybe_tick();
        }
        while let Some(m) = queue.pop_front() {
            let to = m.to;
            // A message for a stale term is an error raft-rs reports and drops.
            let _ = hosts.get_mut(&to).expect("a known node").raw.step(m);
        }
        for (&id, h) in hosts.iter_mut() {
            let n = h.on_ready(&mut |m| queue.push_back(m));
            if id == leader {
                leader_applied += n;
            }
        }
        if queue.is_empty() && hosts.values().all(|h| !h.raw.has_ready()) {
            return leader_applied;
        }
    }
}

fn propose(host: &mut Host, inflight: &mut Inflight, w: &Workload, payload: &[u8]) {
    let at = Instant::now();
    for _ in 0..inflight.room(w) {
        host.raw
            .propose(vec![], payload.to_vec())
            .expect("the leader takes a proposal");
        inflight.submitted(at);
    }
}

pub fn run(shape: Shape, w: Workload, meter: &Meter) -> Outcome {
    let hosts = form_cluster();
    match shape {
        Shape::OneThread => one_thread(hosts, w, meter),
        Shape::ThreadPerNode => thread_per_node(hosts, w, meter),
    }
}

fn one_thread(mut hosts: BTreeMap<u64, Host>, w: Workload, meter: &Meter) -> Outcome {
    let leader = 1;
    let payload = vec![0xab; w.entry_bytes];
    let mut queue = VecDeque::new();
    let mut inflight = Inflight::default();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !inflight.done(&w) {
        assert!(Instant::now() < deadline, "raft-rs: the run never finished");
        propose(
            hosts.get_mut(&leader).expect("leader"),
            &mut inflight,
            &w,
            &payload,
        );
        let n = pump(&mut hosts, &mut queue, leader);
        let t = Instant::now();
        for _ in 0..n {
            inflight.applied(t, &w, meter);
        }
        assert!(hosts[&leader].is_leader(), "raft-rs lost its leader");
    }
    // Followers learn the last commit with the next append or heartbeat.
    while hosts.values().any(|h| h.applied_commands < w.total()) {
        assert!(
            Instant::now() < deadline,
            "raft-rs: a follower never applied everything"
        );
        pump(&mut hosts, &mut queue, leader);
        std::thread::sleep(Duration::from_millis(1)); // waits for the heartbeat tick
    }
    Outcome {
        latencies_ns: inflight.latencies_ns,
        applied: hosts.values().map(|h| h.applied_commands).collect(),
    }
}

fn thread_per_node(hosts: BTreeMap<u64, Host>, w: Workload, meter: &Meter) -> Outcome {
    let leader = 1;
    let mut senders = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for &id in hosts.keys() {
        let (tx, rx) = mpsc::channel::<Message>();
        senders.insert(id, tx);
        receivers.insert(id, rx);
    }
    let applied: Arc<BTreeMap<u64, AtomicU64>> =
        Arc::new(hosts.keys().map(|&id| (id, AtomicU64::new(0))).collect());
    let all_done = Arc::new(AtomicBool::new(false));
    let mut latencies = Vec::new();
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (id, mut host) in hosts {
            let rx = receivers.remove(&id).expect("a receiver per node");
            let senders = senders.clone();
            let applied = Arc::clone(&applied);
            let all_done = Arc::clone(&all_done);
            handles.push(s.spawn(move || {
                let payload = vec![0xab; w.entry_bytes];
                let mut inflight = Inflight::default();
                let mut send = |m: Message| {
                    // A peer that already finished has dropped its receiver.
                    let _ = senders[&m.to].send(m);
                };
                let deadline = Instant::now() + Duration::from_secs(600);
                while !all_done.load(Ordering::Relaxed) {
                    assert!(Instant::now() < deadline, "raft-rs: the run never finished");
                    let mut n = 0;
                    if id == leader {
                        propose(&mut host, &mut inflight, &w, &payload);
                        n += host.on_ready(&mut send);
                    }
                    let wait = host
                        .next_tick
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(1));
                    if let Ok(m) = rx.recv_timeout(wait) {
                        let _ = host.raw.step(m);
                        while let Ok(m) = rx.try_recv() {
                            let _ = host.raw.step(m);
                        }
                    }
                    host.maybe_tick();
                    n += host.on_ready(&mut send);
                    if id == leader {
                        let t = Instant::now();
                        for _ in 0..n {
                            inflight.applied(t, &w, meter);
                        }
                    }
                    applied[&id].store(host.applied_commands, Ordering::Relaxed);
                    if id == leader
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
