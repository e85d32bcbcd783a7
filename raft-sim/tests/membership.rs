//! Scenario tests of the leadership and membership nemeses: transfers under
//! load keep every acknowledged write, and the oracles follow the
//! configuration in force.

use raft_sim::scenario::{Fault, Knobs, Scenario, Timed};
use raft_sim::trace::Trace;
use raft_sim::world::World;

fn scenario(nodes: usize, faults: Vec<Timed<Fault>>) -> Scenario {
    let knobs = Knobs {
        nodes,
        duration_ms: 20_000,
        chaos_ms: 10_000,
        clients: 4,
        op_interval_mean_ms: 10,
        ..Knobs::default()
    };
    Scenario {
        seed: 5,
        knobs,
        faults,
    }
}

fn run(s: Scenario) -> World {
    let mut w = World::new(s, Trace::new(1_000_000, false));
    w.run();
    assert_eq!(w.failure(), None, "the run failed");
    w
}

fn at(ms: u64, what: Fault) -> Timed<Fault> {
    Timed { at_ms: ms, what }
}

fn lines(w: &World, needle: &str) -> Vec<String> {
    w.trace
        .tail(usize::MAX)
        .filter(|r| r.text.contains(needle))
        .map(|r| r.to_string())
        .collect()
}

#[test]
fn leadership_transfers_under_load_keep_every_acknowledged_write() {
    let faults = (1..=8)
        .map(|k| {
            let target = (k % 2 == 0).then_some(k % 3);
            at(1_000 * k as u64, Fault::TransferLeadership { target })
        })
        .collect();
    let w = run(scenario(3, faults));
    let done = lines(&w, "Transferred");
    assert!(done.len() >= 2, "few transfers completed: {done:?}");
    let report = w.report();
    assert!(report.acked_writes > 100, "too few writes acknowledged");
    assert!(report.leader_terms >= 3, "leadership never moved");
}
