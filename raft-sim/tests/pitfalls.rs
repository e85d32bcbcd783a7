//! The classic Raft pitfalls as scripted scenarios: each schedule builds the
//! situation that broke real implementations, and every oracle (election
//! safety, log matching, leader completeness, the commit rule against the
//! durable quorum, state-machine safety, acknowledged writes, linearizability,
//! liveness after the heal) must stay silent.
//! The membership-change race and the removed node that keeps campaigning
//! are in `tests/membership.rs`, with the membership nemesis.

use raft_core::Role;
use raft_sim::rng::Ppm;
use raft_sim::scenario::{Fault, Knobs, Scenario, Shape, Timed};
use raft_sim::trace::Trace;
use raft_sim::world::World;

fn knobs(nodes: usize) -> Knobs {
    Knobs {
        nodes,
        duration_ms: 24_000,
        chaos_ms: 12_000,
        ..Knobs::default()
    }
}

/// A network that loses nothing: elections then only come from the schedule.
fn quiet(mut k: Knobs) -> Knobs {
    k.net.drop = Ppm::NEVER;
    k.net.duplicate = Ppm::NEVER;
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

fn leader(w: &World) -> Option<usize> {
    w.hosts
        .iter()
        .position(|h| h.node.is_some() && h.role == Role::Leader)
}

/// Figure 8: leaders crash right after replicating to a minority, again and
/// again, so entries of old terms sit on a majority without being committed
/// by their own leader. The commit-rule oracle checks every commit advance.
#[test]
fn leaders_crashing_mid_replication_never_commit_an_old_term_by_count() {
    for seed in 0..4 {
        let mut faults = Vec::new();
        for round in 0..5u64 {
            let t = 1_000 + round * 2_000;
            // Cut the leader off from most followers, let it take writes, crash it.
            faults.push(Timed::at(t, Fault::Partition(Shape::IsolateLeader)));
            faults.push(Timed::at(t + 300, Fault::Heal));
            faults.push(Timed::at(
                t + 310,
                Fault::Crash {
                    node: (round as usize) % 5,
                },
            ));
            faults.push(Timed::at(
                t + 1_200,
                Fault::Restart {
                    node: (round as usize) % 5,
                },
            ));
        }
        run(seed, knobs(5), faults);
    }
}

/// A partitioned node times out again and again; with pre-vote it never
/// raises its term, so rejoining does not depose the healthy leader.
#[test]
fn a_partitioned_node_rejoining_does_not_depose_the_leader() {
    let w = run(
        1,
        quiet(knobs(5)),
        vec![
            Timed::at(3_000, Fault::Partition(Shape::Isolate { node: 4 })),
            Timed::at(9_000, Fault::Heal),
        ],
    );
    assert_eq!(w.report().leader_terms, 1, "one leader for the whole run");
    assert!(
        w.hosts.iter().all(|h| h.term == w.hosts[0].term),
        "the isolated node never raised its term"
    );
}

/// The old leader, cut off, takes writes the new majority never sees: its log
/// grows longer than the new leader's. On healing it must truncate that
/// suffix (never a committed entry) and converge.
#[test]
fn a_follower_whose_conflicting_log_is_longer_than_the_leaders_converges() {
    for seed in 0..4 {
        let w = run(
            seed,
            knobs(5),
            vec![
                Timed::at(2_000, Fault::Partition(Shape::IsolateLeader)),
                Timed::at(8_000, Fault::Heal),
            ],
        );
        assert!(
            w.report().leader_terms >= 2,
            "seed {seed}: the majority elected a new leader"
        );
        assert!(
            w.trace
                .tail(usize::MAX)
                .any(|r| r.text.contains("TruncateLog")),
            "seed {seed}: the deposed leader truncated its uncommitted suffix"
        );
    }
}

/// A leader cut off from every follower steps down (check-quorum) instead of
/// holding clients forever; the majority elects another.
#[test]
fn a_leader_cut_off_from_all_followers_steps_down() {
    let mut w = World::new(
        Scenario {
            seed: 2,
            knobs: quiet(knobs(3)),
            faults: vec![Timed::at(3_000, Fault::Partition(Shape::IsolateLeader))],
        },
        Trace::new(2_000_000, false),
    );
    w.run();
    let old = w
        .trace
        .tail(usize::MAX)
        .find(|r| r.text.contains("RoleChanged Leader"))
        .and_then(|r| r.node);
    let stepped_down = w.trace.tail(usize::MAX).any(|r| {
        r.node == old
            && r.at.0 > 3_000_000_000
            && r.at.0 < 5_000_000_000
            && r.text.contains("RoleChanged Follower")
    });
    assert!(
        stepped_down,
        "the isolated leader stepped down within a few election timeouts"
    );
    assert_ne!(leader(&w), None);
}

/// A follower far behind a compacted log receives a snapshot on its stream
/// while the leader keeps taking writes, then the entries after it.
#[test]
fn a_snapshot_installed_while_entries_keep_streaming() {
    let mut k = knobs(3);
    k.snapshot_policy = raft_core::SnapshotPolicy::every_entries(40);
    k.snapshot_trailing_entries = 5;
    let w = run(
        3,
        k,
        vec![
            Timed::at(1_000, Fault::Crash { node: 2 }),
            Timed::at(7_000, Fault::Restart { node: 2 }),
        ],
    );
    let installed = w
        .trace
        .tail(usize::MAX)
        .filter(|r| r.text.contains("InstallSnapshot"))
        .count();
    assert!(installed >= 1, "the restarted follower was sent a snapshot");
}

/// Crashes between an append and its fsync: a slow disk, nodes crashed while
/// appends are pending, torn last writes. Nothing acknowledged may be lost.
#[test]
fn crashes_between_append_and_fsync_lose_nothing_acknowledged() {
    for seed in 0..4 {
        let mut k = knobs(3);
        k.fsync_min_ns = 5_000_000;
        k.fsync_mean_ns = 20_000_000;
        k.torn_append = Ppm(1_000_000);
        let mut faults = Vec::new();
        for round in 0..6u64 {
            let node = (round as usize + seed as usize) % 3;
            faults.push(Timed::at(1_000 + round * 1_500, Fault::Crash { node }));
            faults.push(Timed::at(1_700 + round * 1_500, Fault::Restart { node }));
        }
        let w = run(seed, k, faults);
        assert!(w.report().acked_writes > 0);
    }
}

/// Streams break in the middle of chunks (slow links, so frames are in
/// flight) and are reopened; nothing is applied twice or skipped.
#[test]
fn streams_breaking_mid_chunk_are_reopened_without_gaps() {
    for seed in 0..4 {
        let mut k = knobs(3);
        k.net.bandwidth_bytes_per_s = 200_000;
        let mut faults = Vec::new();
        for round in 0..20u64 {
            faults.push(Timed::at(
                500 + round * 500,
                Fault::BreakStreams {
                    node: (round % 3) as usize,
                },
            ));
        }
        let w = run(seed, k, faults);
        let reopened = w
            .trace
            .tail(usize::MAX)
            .filter(|r| r.text.contains("OpenStream"))
            .count();
        assert!(
            reopened > 20,
            "seed {seed}: streams were reopened ({reopened})"
        );
    }
}
