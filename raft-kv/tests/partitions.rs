//! Real network faults between real `raft-kv` processes, each node in its
//! own network namespace (`tests/netns/`): a node cut off, the leader cut
//! off, one-way cuts, a bridge node, and degraded links (random loss, rate
//! limits, delay and jitter), while clients run gets, puts and
//! compare-and-swaps.
//!
//! Every test then heals the network and requires that the cluster
//! recovers: a leader every node follows (within `support::PATIENCE`) and a
//! write that commits (within the client's patience). The client history,
//! with a final read of every key, must be linearizable
//! (`raft_sim::linearizability`): an acknowledged write that was lost shows
//! up there as a stale read. Last, every node must hold the same state.
//!
//! The tests need root, iproute2 and nftables; elsewhere each says plainly
//! that it is skipped and why (`RAFT_PARTITIONS=required` makes that a
//! failure, as in CI). `just partitions` runs them; docs/operations.md says
//! how to run them by hand.

mod netns;
mod support;

use netns::Hit;
use netns::cluster::NetCluster;
use netns::proxy::{Counters, Faults};
use raft_sim::linearizability::{CheckOptions, Verdict, check};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::client::{KvClient, Tally, final_reads, run_client};

const NODES: usize = 3;
const CLIENTS: u64 = 4;
const KEYS: u64 = 4;
/// Entries the cluster commits before a fault.
const WARM_UP: u64 = 50;
/// Entries committed under a fault where a majority can still talk: enough
/// that clients are caught mid-request and a cut-off node falls behind.
const PROGRESS: u64 = 300;

/// One test's cluster and the clients working on it.
struct Run {
    name: &'static str,
    started: Instant,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
    nodes: NetCluster,
    /// Last: dropped after the cluster and its namespaces.
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Run {
    /// Starts the cluster and the clients; `None` when this machine cannot
    /// run the test (it says why).
    fn start(name: &'static str, proxied: bool) -> Option<Run> {
        let one_at_a_time = netns::exclusive();
        if !netns::can_run(name) {
            return None;
        }
        let started = Instant::now();
        let nodes = match proxied {
            false => NetCluster::start(NODES),
            true => NetCluster::start_proxied(NODES),
        };
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let http = nodes.cluster.http_addresses();
        let clients = (1..=CLIENTS)
            .map(|c| {
                let (http, stop) = (http.clone(), Arc::clone(&stop));
                std::thread::spawn(move || run_client(c, http, KEYS, &stop, epoch))
            })
            .collect();
        eprintln!("[{name}] cluster up in {:?}", started.elapsed());
        Some(Run {
            name,
            started,
            epoch,
            stop,
            clients,
            nodes,
            _one_at_a_time: one_at_a_time,
        })
    }

    fn all(&self) -> Vec<usize> {
        (0..NODES).collect()
    }

    /// The current leader (every node follows it) and its term.
    fn leader(&self) -> (usize, u64) {
        let (leader, status) = self.nodes.cluster.wait_leader(0);
        (leader, status["term"].as_u64().unwrap())
    }

    /// Asserts that node `cut` could not follow the `majority` while cut
    /// off: they committed [`PROGRESS`] entries it cannot know of (a cut
    /// that let traffic through fails here). Half of them, because a cut
    /// leader may have committed a few entries its followers had not yet
    /// heard of when their progress began to count.
    fn assert_fell_behind(&self, cut: usize, majority: &[usize]) {
        let behind = self.nodes.commit_among(&[cut]);
        let ahead = self.nodes.commit_among(majority);
        assert!(
            behind + PROGRESS / 2 <= ahead,
            "node {cut} followed while cut off: commit {behind}, nodes {majority:?} at {ahead}"
        );
        eprintln!(
            "[{}] node {cut} cut off at commit {behind}, nodes {majority:?} at {ahead}",
            self.name
        );
    }

    /// [`Run::assert_fell_behind`] for a node cut off from the leader of
    /// `term` only: if an election (a slow machine) moved leadership to a
    /// node it can reach, it follows, as it should.
    fn assert_fell_behind_unless_leadership_moved(&self, cut: usize, others: &[usize], term: u64) {
        let (leader, status) = self.nodes.wait_leader_among(others, 0);
        if status["term"].as_u64() == Some(term) {
            self.assert_fell_behind(cut, others);
        } else {
            eprintln!(
                "[{}] leadership moved to node {leader} (term {}) during the cut",
                self.name, status["term"]
            );
        }
    }

    /// Heals the network; waits for a leader every node follows and for a
    /// write to commit through it; prints how long each took. Returns what
    /// the faults hit.
    fn heal_and_recover(&mut self) -> Hit {
        let hit = self.nodes.net.heal();
        let healed = Instant::now();
        let (leader, status) = self.nodes.cluster.wait_leader(0);
        let leader_after = healed.elapsed();
        let mut kv = KvClient::new(self.nodes.cluster.http_addresses(), leader);
        kv.must_put("after-heal", self.name);
        eprintln!(
            "[{}] after the heal: node {leader} leads term {} for every node in {leader_after:?}, \
             a write committed in {:?}",
            self.name,
            status["term"],
            healed.elapsed()
        );
        hit
    }

    /// Stops the clients, reads every key once more, and checks the history
    /// and that every node holds the same state.
    fn finish(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut tally = Tally::default();
        for c in std::mem::take(&mut self.clients) {
            tally.merge(c.join().expect("a client thread panicked"));
        }
        let http = self.nodes.cluster.http_addresses();
        tally.ops.extend(final_reads(http, KEYS, 0, self.epoch));
        eprintln!(
            "[{}] {} ops: {} acknowledged, {} unknown outcome, {} certainly not applied",
            self.name,
            tally.ops.len(),
            tally.ok,
            tally.unknown,
            tally.not_applied
        );
        match check(&tally.ops, &CheckOptions::default()) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable(v) => panic!("{}", v.describe(&tally.ops)),
            unknown => panic!("{unknown}"),
        }
        for i in 0..NODES {
            self.nodes.cluster.wait_caught_up(i);
        }
        let fsm = self.nodes.cluster.wait_converged();
        eprintln!(
            "[{}] linearizable; every node holds {fsm}; {:?} in all",
            self.name,
            self.started.elapsed()
        );
    }
}

impl Drop for Run {
    /// A failing test stops its clients before its nodes and namespaces go:
    /// they must not outlive it and talk to the next test's cluster, which
    /// reuses the addresses.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.clients.drain(..) {
            let _ = c.join();
        }
    }
}

#[test]
fn a_follower_cut_off_from_the_others_catches_up_after_the_heal() {
    let Some(mut run) = Run::start("follower cut off", false) else {
        return;
    };
    let (leader, term) = run.leader();
    run.nodes
        .wait_progress(&run.all(), WARM_UP, "before the cut");
    let cut = (leader + 1) % NODES;
    run.nodes.net.isolate(cut);
    let majority = run.nodes.others(&[cut]);
    run.nodes
        .wait_progress(&majority, PROGRESS, "while a follower is cut off");
    run.assert_fell_behind(cut, &majority);
    assert!(run.heal_and_recover().packets_dropped > 0);
    let (_, term_after) = run.leader();
    eprintln!(
        "[{}] term {term} before the cut, {term_after} after",
        run.name
    );
    run.finish();
}

#[test]
fn a_leader_cut_off_from_the_others_is_replaced_and_loses_no_acknowledged_write() {
    let Some(mut run) = Run::start("leader cut off", false) else {
        return;
    };
    run.nodes
        .wait_progress(&run.all(), WARM_UP, "before the cut");
    for round in 0..3 {
        let (leader, term) = run.leader();
        run.nodes.net.isolate(leader);
        let cut_at = Instant::now();
        let majority = run.nodes.others(&[leader]);
        let (next, status) = run.nodes.wait_leader_among(&majority, term);
        eprintln!(
            "[{}] round {round}: node {leader} (term {term}) cut off; node {next} leads term {} after {:?}",
            run.name,
            status["term"],
            cut_at.elapsed()
        );
        // Check-quorum: the old leader notices it cannot reach a quorum.
        support::eventually("the cut-off leader to step down", || {
            run.nodes
                .cluster
                .status(leader)
                .is_some_and(|s| s["role"] != "leader")
        });
        eprintln!(
            "[{}] round {round}: node {leader} stepped down {:?} after the cut",
            run.name,
            cut_at.elapsed()
        );
        run.nodes
            .wait_progress(&majority, PROGRESS, "under the new leader");
        run.assert_fell_behind(leader, &majority);
        assert!(run.heal_and_recover().packets_dropped > 0);
    }
    run.finish();
}

#[test]
fn a_one_way_cut_either_way_between_leader_and_follower_keeps_the_others_writing() {
    let Some(mut run) = Run::start("one-way cut", false) else {
        return;
    };
    // Leader to follower: the follower hears nothing, but what it sends
    // (pre-votes) still arrives.
    let (leader, term) = run.leader();
    run.nodes
        .wait_progress(&run.all(), WARM_UP, "before the cut");
    let follower = (leader + 1) % NODES;
    run.nodes.net.cut_one_way(leader, follower);
    let others = run.nodes.others(&[follower]);
    run.nodes.wait_progress(
        &others,
        PROGRESS,
        "with the leader's packets to a follower dropped",
    );
    run.assert_fell_behind_unless_leadership_moved(follower, &others, term);
    assert!(run.heal_and_recover().packets_dropped > 0);
    // Follower to leader: the follower may still hear the leader (TCP
    // segments arrive, their acknowledgements do not), its answers are lost.
    let (leader, _) = run.leader();
    let follower = (leader + 2) % NODES;
    run.nodes.net.cut_one_way(follower, leader);
    run.nodes.wait_progress(
        &run.nodes.others(&[follower]),
        PROGRESS,
        "with a follower's packets to the leader dropped",
    );
    assert!(run.heal_and_recover().packets_dropped > 0);
    run.finish();
}

#[test]
fn a_bridge_node_between_two_nodes_that_cannot_see_each_other_keeps_the_cluster_writing() {
    let Some(mut run) = Run::start("bridge node", false) else {
        return;
    };
    // The leader and one follower lose each other; the bridge sees both.
    let (leader, term) = run.leader();
    run.nodes
        .wait_progress(&run.all(), WARM_UP, "before the cut");
    let bridge = (leader + 1) % NODES;
    let other = (leader + 2) % NODES;
    run.nodes.net.cut(leader, other);
    run.nodes.wait_progress(
        &[leader, bridge],
        PROGRESS,
        &format!("with node {bridge} the only bridge between {leader} and {other}"),
    );
    // Followers do not relay: the node that cannot see the leader falls behind.
    run.assert_fell_behind_unless_leadership_moved(other, &[leader, bridge], term);
    assert!(run.heal_and_recover().packets_dropped > 0);
    let (_, term_after) = run.leader();
    eprintln!(
        "[{}] term {term} before the cut, {term_after} after",
        run.name
    );
    run.finish();
}

#[test]
fn links_that_lose_packets_at_random_then_rate_limited_links_keep_the_history_linearizable() {
    let Some(mut run) = Run::start("lossy and slow links", false) else {
        return;
    };
    run.nodes
        .wait_progress(&run.all(), WARM_UP, "before the faults");
    for from in 0..NODES {
        for to in (0..NODES).filter(|&to| to != from) {
            run.nodes.net.drop_at_random(from, to, 10);
        }
    }
    run.nodes
        .wait_progress(&run.all(), PROGRESS, "with 10% packet loss on every link");
    let hit = run.heal_and_recover();
    assert!(hit.packets_dropped > 0, "{hit:?}");
    // Every node's link, so whichever node leads (loss may have moved
    // leadership) sends more than its link carries.
    for i in 0..NODES {
        run.nodes.net.rate_limit(i, 256);
    }
    run.nodes
        .wait_progress(&run.all(), PROGRESS, "with every link at 256 kbit/s");
    let hit = run.heal_and_recover();
    assert!(hit.packets_over_rate > 0, "{hit:?}");
    run.finish();
}

#[test]
fn a_proxy_that_delays_and_reorders_traffic_between_nodes_keeps_the_history_linearizable() {
    let Some(mut run) = Run::start("delay and jitter", true) else {
        return;
    };
    run.nodes
        .wait_progress(&run.all(), WARM_UP, "before the faults");
    for (delay_ms, jitter_ms) in [(2, 20), (10, 120)] {
        let faults = Faults {
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
        };
        eprintln!("[{}] every link: {faults:?}", run.name);
        for proxy in &run.nodes.proxies {
            proxy.set(faults);
        }
        run.nodes
            .wait_progress(&run.all(), PROGRESS, &format!("with {faults:?}"));
    }
    for proxy in &run.nodes.proxies {
        proxy.set(Faults::default());
    }
    run.heal_and_recover();
    let carried = |f: fn(&Counters) -> &AtomicU64| -> u64 {
        run.nodes
            .proxies
            .iter()
            .map(|p| f(p.counters()).load(Ordering::Relaxed))
            .sum()
    };
    let (chunks, connections) = (carried(|c| &c.chunks), carried(|c| &c.connections));
    eprintln!(
        "[{}] the proxies carried {chunks} chunks ({} bytes) on {connections} connections, refused {}",
        run.name,
        carried(|c| &c.bytes),
        carried(|c| &c.refused)
    );
    // The leader and its followers talked through their proxies (followers
    // talk to each other only in elections).
    let (leader, _) = run.leader();
    for follower in run.nodes.others(&[leader]) {
        for (from, to) in [(leader, follower), (follower, leader)] {
            let chunks = run
                .nodes
                .proxy(from, to)
                .counters()
                .chunks
                .load(Ordering::Relaxed);
            assert!(
                chunks > 0,
                "nothing went from {from} to {to} through the proxy"
            );
        }
    }
    run.finish();
}
