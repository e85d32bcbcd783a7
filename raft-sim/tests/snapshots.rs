//! Snapshots off the hot path: a state machine that takes several election
//! timeouts to write each snapshot (`Knobs::snapshot_duration_ms`) while the
//! cluster takes writes. The node must go on heartbeating, replicating and
//! applying meanwhile: no election, and no write waits for a snapshot.

use raft_core::SnapshotPolicy;
use raft_sim::rng::Ppm;
use raft_sim::scenario::{Knobs, Scenario};
use raft_sim::trace::Trace;
use raft_sim::world::World;

#[test]
fn snapshots_that_take_four_election_timeouts_cause_no_election_and_stall_no_write() {
    for seed in 0..3 {
        let mut k = Knobs {
            nodes: 3,
            duration_ms: 20_000,
            chaos_ms: 10_000,
            snapshot_policy: SnapshotPolicy::every_entries(50),
            snapshot_trailing_entries: 20,
            ..Knobs::default()
        };
        k.snapshot_duration_ms = 4 * k.election_timeout_ms;
        // A network that loses nothing: an election could only come from the node.
        k.net.drop = Ppm::NEVER;
        k.net.duplicate = Ppm::NEVER;
        k.net.stream_break = Ppm::NEVER;
        let mut w = World::new(
            Scenario {
                seed,
                knobs: k.clone(),
                faults: Vec::new(),
            },
            Trace::new(2_000_000, false),
        );
        w.run();
        assert_eq!(w.failure(), None, "seed {seed}: an oracle objected");

        let records = || w.trace.tail(usize::MAX);
        let taken = records()
            .filter(|r| r.text.contains("SnapshotTaken"))
            .count();
        assert!(
            taken >= 3 * k.nodes,
            "seed {seed}: only {taken} snapshots landed"
        );
        let leaders = records()
            .filter(|r| r.text.contains("RoleChanged Leader"))
            .count();
        assert_eq!(leaders, 1, "seed {seed}: one election, at the start");

        let writes: Vec<_> = w
            .workload
            .history()
            .iter()
            .filter(|o| o.is_write())
            .collect();
        assert!(writes.len() > 200, "seed {seed}: {} writes", writes.len());
        for o in &writes {
            let Some(done) = o.complete_ns else {
                continue; // invoked at the very end of the run
            };
            // Virtual time: a write waits for replication and fsyncs, never
            // for a snapshot (each takes 2 s here).
            let latency_ms = (done - o.invoke_ns) / 1_000_000;
            assert!(
                latency_ms < k.election_timeout_ms,
                "seed {seed}: write {} took {latency_ms} ms",
                o.id
            );
        }
    }
}
