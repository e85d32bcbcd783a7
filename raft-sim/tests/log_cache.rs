//! Memory bounded in bytes, in the simulator: nodes that keep no durable
//! entry in memory (`log_cache_bytes_max` 0) read every entry a stream or
//! the apply path needs back from the disk model (`Action::ReadLog`), under
//! a crash and a long absence, and the oracles see nothing wrong.

use raft_core::{Instant, LogIndex, LogReader};
use raft_sim::scenario::{Fault, Knobs, Scenario};
use raft_sim::trace::Trace;
use raft_sim::trace::{ActionKind, Fact};
use raft_sim::world::World;

#[test]
fn without_a_log_cache_a_returning_follower_catches_up_from_disk_reads() {
    for seed in 0..3 {
        let k = Knobs {
            nodes: 3,
            duration_ms: 16_000,
            chaos_ms: 10_000,
            log_cache_bytes_max: 0,
            ..Knobs::default()
        };
        let batch_bytes_max = raft_core::NodeOptions::new(raft_core::NodeId(1)).batch_bytes_max;
        let scenario = Scenario {
            seed,
            knobs: k,
            faults: Vec::new(),
        };
        let mut w = World::new(scenario, Trace::new(2_000_000, false));
        // Durable entries held in memory never exceed one append batch
        // (the budget is 0; a batch is evicted whole).
        w.add_invariant("log cache within its budget", move |w| {
            for i in 0..w.node_count() {
                let Some(n) = w.node(i) else { continue };
                let s = n.status();
                let not_durable: u64 = n
                    .log_entries()
                    .filter(|e| e.index > s.durable)
                    .map(|e| e.budget_bytes())
                    .sum();
                let durable_held = s.cached_bytes - not_durable;
                if durable_held > batch_bytes_max + 4096 {
                    return Err(format!("n{} holds {durable_held} durable bytes", i + 1));
                }
            }
            Ok(())
        });
        w.run_until(Instant(2_000_000_000));
        let leader = w.current_leader().expect("a leader");
        let away = (leader + 1) % 3;
        w.inject(Fault::Crash { node: away });
        w.run_until(Instant(7_000_000_000));
        w.inject(Fault::Restart { node: away });
        w.run();
        assert_eq!(w.failure(), None, "seed {seed}");
        // The typed trace: every read the nodes asked for.
        let reads = |apply: bool| {
            w.trace
                .tail(usize::MAX)
                .filter(|r| match r.fact {
                    Fact::Acted {
                        action: ActionKind::ReadLog { reader, .. },
                    } => (reader == LogReader::Apply) == apply,
                    _ => false,
                })
                .count()
        };
        assert!(reads(false) > 0, "seed {seed}: no stream read");
        assert!(reads(true) > 0, "seed {seed}: no apply read");
        let caught_up = w.node(away).expect("up").status().applied;
        assert!(
            caught_up > LogIndex(100),
            "seed {seed}: n{} applied {caught_up}",
            away + 1
        );
    }
}
