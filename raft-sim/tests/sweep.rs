//! Small sweeps through the public runner: default knobs and swarm mode, short
//! runs, every seed must pass every oracle (safety, liveness after the heal,
//! linearizability).

use raft_sim::swarm::Overrides;
use raft_sim::sweep::{RunConfig, sweep};

fn assert_sweep_passes(config: &RunConfig, from: u64, to: u64) {
    let summary = sweep(from, to, 2, config, &|_| {});
    assert_eq!(summary.seeds, to - from);
    let failures: Vec<String> = summary
        .failures
        .iter()
        .map(|r| {
            format!(
                "seed {}: {}\n{}",
                r.seed,
                r.failure.as_ref().expect("a failure"),
                r.trace_tail.join("\n")
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(summary.events > 0 && summary.sim_ns > 0);
}

#[test]
fn a_small_sweep_with_default_faults_passes() {
    let config = RunConfig {
        swarm: false,
        overrides: Overrides {
            duration_ms: Some(12_000),
            ..Overrides::default()
        },
    };
    assert_sweep_passes(&config, 0, 8);
}

#[test]
fn a_small_swarm_sweep_passes() {
    let config = RunConfig {
        swarm: true,
        overrides: Overrides {
            duration_ms: Some(12_000),
            ..Overrides::default()
        },
    };
    assert_sweep_passes(&config, 100, 112);
}
