//! Scenario-level fault tests with explicit schedules: each fault does what it
//! says, and the cluster stays safe and recovers.

use raft_core::Instant;
use raft_sim::scenario::{Fault, Knobs, Scenario, Shape, Timed};
use raft_sim::trace::Trace;
use raft_sim::world::World;

fn scenario(faults: Vec<Timed<Fault>>) -> Scenario {
    let knobs = Knobs {
        nodes: 3,
        duration_ms: 20_000,
        chaos_ms: 8_000,
        ..Knobs::default()
    };
    Scenario {
        seed: 11,
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

#[test]
fn a_paused_node_processes_nothing_until_it_resumes() {
    let w = run(scenario(vec![Timed::at(
        3_000,
        Fault::Pause { node: 0, ms: 2_000 },
    )]));
    let (from, to) = (Instant(3_000_000_000), Instant(5_000_000_000));
    let during: Vec<String> = w
        .trace
        .tail(usize::MAX)
        .filter(|r| r.node == Some(0) && r.at > from && r.at < to)
        .map(|r| r.to_string())
        .collect();
    assert!(during.is_empty(), "n1 acted while paused: {during:?}");
    assert!(
        w.trace
            .tail(usize::MAX)
            .any(|r| r.node == Some(0) && r.at == to && r.text.contains("resume"))
    );
}

#[test]
fn a_crashed_node_restarts_from_its_disk_with_a_new_incarnation() {
    let w = run(scenario(vec![
        Timed::at(3_000, Fault::Crash { node: 1 }),
        Timed::at(4_000, Fault::Restart { node: 1 }),
    ]));
    assert_eq!(w.hosts[1].incarnation, 1);
    assert!(
        w.trace
            .tail(usize::MAX)
            .any(|r| r.node == Some(1) && r.text.starts_with("start incarnation 1"))
    );
}

#[test]
fn the_cluster_survives_each_partition_shape_and_heals() {
    for shape in [
        Shape::IsolateLeader,
        Shape::Isolate { node: 2 },
        Shape::Split { side: vec![0] },
        Shape::Bridge {
            bridge: 1,
            left: vec![0],
        },
        Shape::MuteOutbound { node: 0 },
        Shape::DeafInbound { node: 1 },
    ] {
        let w = run(scenario(vec![
            Timed::at(2_000, Fault::Partition(shape.clone())),
            Timed::at(5_000, Fault::Heal),
        ]));
        assert!(
            w.report().acked_writes > 0,
            "{shape:?}: no write acknowledged"
        );
    }
}
