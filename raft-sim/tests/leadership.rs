//! Leadership timing as scripted scenarios: how fast an isolated leader gives
//! up, how a leader that removes itself hands over, and how a restarted node
//! keeps the vote-refusal window that leader leases rely on. Every oracle must
//! stay silent, and each scenario measures the one timing rule it is about
//! from the trace.

use raft_core::Instant;
use raft_sim::rng::Ppm;
use raft_sim::scenario::{Fault, Knobs, Scenario, Shape, Timed};
use raft_sim::trace::{Trace, TraceRecord};
use raft_sim::world::World;

/// A network that loses and delays nothing unusual, clocks that do not
/// drift: the timings measured are then the core's alone.
fn quiet(nodes: usize) -> Knobs {
    let mut k = Knobs {
        nodes,
        duration_ms: 12_000,
        chaos_ms: 8_000,
        ..Knobs::default()
    };
    k.net.drop = Ppm::NEVER;
    k.net.duplicate = Ppm::NEVER;
    k.net.tail = Ppm::NEVER;
    k.net.stream_break = Ppm::NEVER;
    k
}

fn run(seed: u64, knobs: Knobs, faults: Vec<Timed<Fault>>) -> World {
    let mut w = World::new(
        Scenario {
            seed,
            knobs,
            faults,
        },
        Trace::new(2_000_000, false),
    );
    w.run();
    assert_eq!(w.failure(), None, "seed {seed}: an oracle objected");
    w
}

fn ms(t: Instant) -> u64 {
    t.0 / 1_000_000
}

fn records(w: &World) -> Vec<TraceRecord> {
    w.trace.tail(usize::MAX).cloned().collect()
}

/// The node that last became leader before `before`, and when.
fn leader_before(trace: &[TraceRecord], before: Instant) -> (usize, Instant) {
    let r = trace
        .iter()
        .rev()
        .find(|r| r.at <= before && r.text.contains("-> RoleChanged Leader"))
        .expect("a leader was elected");
    (r.node.expect("a node's record"), r.at)
}

/// Whether a step record of the leader shows a follower reaching it: a
/// heartbeat response, an ack or a stream handshake (what counts as "heard").
fn follower_reached(r: &TraceRecord, leader: usize) -> bool {
    r.node == Some(leader)
        && (r.text.contains("<- Recv") && r.text.contains("HeartbeatResp")
            || r.text.contains("<- FrameRecv") && r.text.contains("Ack")
            || r.text.contains("<- StreamOpened"))
}

/// Check-quorum: a leader isolated at any phase of its heartbeat and
/// check-quorum timers steps down exactly one election timeout after the
/// last time a quorum (here: itself and one follower) was heard from, and
/// so within `T` of the isolation, never up to `2T` as with a fixed period.
#[test]
fn an_isolated_leader_steps_down_one_election_timeout_after_its_last_quorum_contact() {
    let k = quiet(3);
    let timeout_ms = k.election_timeout_ms;
    // Isolation times spread over one election timeout, not multiples of the
    // heartbeat interval, so every phase of the leader's timers is hit.
    for (seed, isolate_ms) in (0..8u64).map(|s| (s, 3_000 + s * 67)) {
        let w = run(
            seed,
            k.clone(),
            vec![Timed::at(
                isolate_ms,
                Fault::Partition(Shape::IsolateLeader),
            )],
        );
        let trace = records(&w);
        let isolated = Instant(isolate_ms * 1_000_000);
        let (leader, _) = leader_before(&trace, isolated);
        let step_down = trace
            .iter()
            .find(|r| {
                r.at >= isolated
                    && r.node == Some(leader)
                    && r.text.contains("-> RoleChanged Follower")
            })
            .unwrap_or_else(|| panic!("seed {seed}: the isolated leader never stepped down"))
            .at;
        let contact = trace
            .iter()
            .rev()
            .find(|r| r.at <= step_down && follower_reached(r, leader))
            .expect("the leader heard from a follower")
            .at;
        assert!(contact <= isolated, "nothing crosses the partition");
        assert_eq!(
            step_down.0 - contact.0,
            timeout_ms * 1_000_000,
            "seed {seed}: isolated at {isolate_ms} ms, last heard at {} ms, stepped down at {} ms",
            ms(contact),
            ms(step_down)
        );
    }
}

/// A leader that removes itself hands over with `TimeoutNow` as soon as the
/// removal commits: the next leader is elected before any remaining voter's
/// election timeout could have fired on its own, so the cluster is never
/// leaderless for an election timeout.
#[test]
fn a_leader_that_removes_itself_hands_over_before_any_election_timeout() {
    let k = quiet(5);
    let (timeout_ms, heartbeat_ms) = (k.election_timeout_ms, k.heartbeat_ms);
    let remove_ms = 3_000;
    for seed in 0..4u64 {
        // The same seed without the removal shows who leads when it is asked
        // (nothing before then depends on the fault schedule).
        let plain = records(&run(seed, k.clone(), Vec::new()));
        let (leader, _) = leader_before(&plain, Instant(remove_ms * 1_000_000));
        let w = run(
            seed,
            k.clone(),
            vec![Timed::at(remove_ms, Fault::RemoveMember { node: leader })],
        );
        let trace = records(&w);
        let done = trace
            .iter()
            .find(|r| r.text.contains("nemesis remove") && r.text.contains("MembershipChanged"))
            .unwrap_or_else(|| panic!("seed {seed}: the removal never completed"));
        assert_eq!(
            done.node,
            Some(leader),
            "seed {seed}: the leader removed itself"
        );
        let committed = done.at;
        let next = trace
            .iter()
            .find(|r| r.at >= committed && r.text.contains("-> RoleChanged Leader"))
            .unwrap_or_else(|| panic!("seed {seed}: nobody took over"));
        assert_ne!(next.node, Some(leader));
        // Each remaining voter heard the old leader within a heartbeat
        // interval before the commit, so none could campaign on its own
        // before this instant.
        let own_timeout = Instant(committed.0 + (timeout_ms - heartbeat_ms) * 1_000_000);
        assert!(
            next.at < own_timeout,
            "seed {seed}: removal committed at {} ms, next leader at {} ms",
            ms(committed),
            ms(next.at)
        );
        assert!(
            trace.iter().any(|r| r.node == next.node
                && r.at >= committed
                && r.at <= next.at
                && r.text.contains("<- Recv")
                && r.text.contains("TimeoutNow")),
            "seed {seed}: the successor was handed leadership"
        );
    }
}

/// A restarted node keeps the promise its last heartbeat answer made. The
/// leader `l` reaches `n` but not `m`; `m` campaigns in vain while `n` hears
/// `l`. Then `n` crashes and restarts at once while `l` is cut off: `l` may
/// still hold a lease that `n`'s last answer helped buy, so no leader of a
/// later term may be elected (with `n`'s vote) until `T` after that answer.
#[test]
fn a_restarted_node_grants_no_vote_that_could_cut_short_a_lease_it_backed() {
    // No writes: `m`'s log stays as up to date as `n`'s, so only the refusal
    // rules can stop `n` from voting for it.
    let k = Knobs {
        clients: 0,
        ..quiet(3)
    };
    let timeout_ns = k.election_timeout_ms * 1_000_000;
    let (bridge_ms, crash_ms) = (3_000, 5_000);
    for seed in 0..6u64 {
        let plain = records(&run(seed, k.clone(), Vec::new()));
        let (l, _) = leader_before(&plain, Instant(bridge_ms * 1_000_000));
        let (n, m) = ((l + 1) % 3, (l + 2) % 3);
        let w = run(
            seed,
            k.clone(),
            vec![
                Timed::at(
                    bridge_ms,
                    Fault::Partition(Shape::Bridge {
                        bridge: n,
                        left: vec![m],
                    }),
                ),
                Timed::at(crash_ms, Fault::Crash { node: n }),
                Timed::at(crash_ms + 5, Fault::Partition(Shape::Isolate { node: l })),
                Timed::at(crash_ms + 5, Fault::Restart { node: n }),
                Timed::at(crash_ms + 4_000, Fault::Heal),
            ],
        );
        let trace = records(&w);
        let crashed = Instant(crash_ms * 1_000_000);
        let answer = format!("-> Send {}->{} ", n + 1, l + 1);
        let last_answer = trace
            .iter()
            .rev()
            .find(|r| {
                r.at <= crashed
                    && r.node == Some(n)
                    && r.text.contains(&answer)
                    && r.text.contains("HeartbeatResp")
            })
            .expect("n answered l's heartbeats")
            .at;
        let successor = trace
            .iter()
            .find(|r| {
                r.at > Instant(bridge_ms * 1_000_000)
                    && r.node != Some(l)
                    && r.text.contains("-> RoleChanged Leader")
            })
            .unwrap_or_else(|| panic!("seed {seed}: nobody took over from the cut-off leader"));
        assert!(
            successor.at.0 >= last_answer.0 + timeout_ns,
            "seed {seed}: n{} answered n{} at {} ms, n{} was elected at {} ms",
            n + 1,
            l + 1,
            ms(last_answer),
            successor.node.expect("a node's record") + 1,
            ms(successor.at)
        );
    }
}
