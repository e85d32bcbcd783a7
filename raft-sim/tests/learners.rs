//! Scenario tests of learner promotion: a node that joins while writes keep
//! flowing is promoted to voter once it keeps up (thesis §4.2.1), though the
//! commit index keeps moving ahead of what its disk has made durable.

use raft_core::Instant;
use raft_sim::scenario::{Fault, Knobs, Scenario, Timed};
use raft_sim::trace::Trace;
use raft_sim::world::World;

/// Three voters under a saturating write workload; a fourth node joins at 2 s
/// with a disk 40 times slower than the others, and no other fault. Each of
/// its fsyncs covers what it had received when the fsync began, which the
/// voters have long committed by the time it completes: its acks never reach
/// the commit index while writes flow.
fn saturated_join(seed: u64) -> Scenario {
    let knobs = Knobs {
        nodes: 3,
        duration_ms: 6_000,
        chaos_ms: 6_000,
        clients: 32,
        keys: 16,
        op_interval_mean_ms: 1,
        sick_node: Some(3),
        sick_slowdown: 40,
        read: raft_sim::rng::Ppm(0),
        cas: raft_sim::rng::Ppm(0),
        ..Knobs::default()
    };
    Scenario {
        seed,
        knobs,
        faults: vec![Timed::at(2_000, Fault::AddMember)],
    }
}

/// When a node first reported a configuration in which `n4` votes.
fn promoted_at(w: &World) -> Option<Instant> {
    w.trace
        .tail(usize::MAX)
        .find(|r| {
            r.text.contains("-> ConfigChanged")
                && (r.text.contains(" n4}") || r.text.contains(" n4 "))
        })
        .map(|r| r.at)
}

#[test]
fn a_node_joining_under_a_saturating_workload_is_promoted_while_writes_keep_flowing() {
    for seed in 0..2 {
        let mut w = World::new(saturated_join(seed), Trace::new(2_000_000, false));
        w.run();
        assert_eq!(w.failure(), None, "seed {seed}: the run failed");
        assert_eq!(w.hosts.len(), 4, "seed {seed}: the joiner never started");
        let at = promoted_at(&w).unwrap_or_else(|| panic!("seed {seed}: n4 was never promoted"));
        let writes_after = w
            .trace
            .tail(usize::MAX)
            .filter(|r| r.at > at && r.text.contains("Written"))
            .count();
        assert!(
            writes_after > 100,
            "seed {seed}: promoted at {at}, but only {writes_after} writes came after it"
        );
        let leader = w.current_leader().expect("a leader at the end");
        let config = w.hosts[leader].node.as_ref().unwrap().config();
        assert!(
            config.is_voter(raft_core::NodeId(4)),
            "seed {seed}: {config}"
        );
    }
}
