//! The oracles can fail: with a deliberately broken driver or core, the named
//! checker fires within a bounded number of seeds (SIMULATION §2.17). A
//! checker that never fires proves nothing.

use raft_sim::checkers::FailureClass;
use raft_sim::scenario::Mutant;
use raft_sim::swarm::Overrides;
use raft_sim::swarm::scenario_from_seed;
use raft_sim::trace::Trace;
use raft_sim::world::run_scenario;

/// Runs up to `seeds` seeds with `mutant` and returns the first failure's
/// (checker, class), if any.
fn first_failure(mutant: Mutant, seeds: u64) -> Option<(&'static str, FailureClass, u64)> {
    let overrides = Overrides {
        duration_ms: Some(8_000),
        ..Overrides::default()
    };
    for seed in 0..seeds {
        let mut scenario = scenario_from_seed(seed, false, &overrides);
        scenario.knobs.mutant = mutant;
        let report = run_scenario(scenario, Trace::new(0, false));
        if let Some(f) = report.failure {
            return Some((f.checker, f.class, seed));
        }
    }
    None
}

#[test]
fn a_driver_that_skips_the_hard_state_is_caught_sending_votes() {
    let (checker, class, _) = first_failure(Mutant::SkipHardState, 5).expect("some seed must fail");
    assert_eq!(
        (checker, class),
        ("durable-before-send", FailureClass::Safety)
    );
}

#[test]
fn a_driver_that_reports_appends_durable_before_the_fsync_is_caught() {
    let (checker, class, seed) =
        first_failure(Mutant::EarlyLogPersisted, 5).expect("some seed must fail");
    assert!(
        ["ack-durable", "durable-quorum"].contains(&checker) && class == FailureClass::Safety,
        "seed {seed}: {checker} {class:?}"
    );
}

#[test]
fn the_unmutated_seeds_used_above_pass() {
    assert_eq!(first_failure(Mutant::None, 5), None);
}

/// Counting an earlier-term entry committed by replica count breaks Raft
/// §5.4.2; the commit-rule oracle (or state-machine safety downstream) fires.
#[cfg(feature = "mutants")]
#[test]
fn a_core_that_commits_earlier_terms_by_count_is_caught() {
    let (checker, class, seed) =
        first_failure(Mutant::CommitByCount, 60).expect("some seed must fail");
    eprintln!("commit_by_count caught by {checker} at seed {seed}");
    assert!(
        [
            "commit-rule",
            "state-machine-safety",
            "leader-completeness",
            "acked-write-lost"
        ]
        .contains(&checker)
            && class == FailureClass::Safety,
        "seed {seed}: {checker} {class:?}"
    );
}

/// The shrinker keeps the failure's signature while removing faults.
#[test]
fn shrinking_a_mutant_failure_keeps_its_signature_and_drops_faults() {
    let overrides = Overrides {
        duration_ms: Some(8_000),
        fault_interval_ms: Some(500),
        ..Overrides::default()
    };
    let mut scenario = scenario_from_seed(3, false, &overrides);
    scenario.knobs.mutant = Mutant::EarlyLogPersisted;
    let before = scenario.faults.len();
    assert!(before > 2, "the scenario has faults to remove");
    let shrunk = raft_sim::shrink::shrink(scenario, 200).expect("the mutant fails");
    let f = shrunk.report.failure.expect("still failing");
    assert!(
        ["ack-durable", "durable-quorum"].contains(&f.checker),
        "{f}"
    );
    assert!(
        shrunk.scenario.faults.len() < before,
        "{} faults left of {before}",
        shrunk.scenario.faults.len()
    );
}

/// A leader whose clock runs 40 % slow, followers 40 % fast: the leader is
/// handed leadership, isolated with its clients, and keeps serving reads from
/// its lease while the others elect a new leader that commits writes.
fn lease_scenario(drift_ppm: i64) -> raft_sim::scenario::Scenario {
    use raft_sim::scenario::{Fault, Knobs, Scenario, Shape, Timed};
    let knobs = Knobs {
        nodes: 3,
        duration_ms: 14_000,
        chaos_ms: 10_000,
        lease_reads: true,
        drift_ppm_fixed: vec![-drift_ppm, drift_ppm, drift_ppm],
        keys: 1,
        read: raft_sim::rng::Ppm(700_000),
        clients: 12,
        op_interval_mean_ms: 5,
        client_timeout_ms: 200,
        ..Knobs::default()
    };
    let mut faults = Vec::new();
    for round in 0..3u64 {
        let t = 1_000 + round * 3_000;
        faults.push(Timed::at(t, Fault::TransferLeadership { target: Some(0) }));
        faults.push(Timed::at(t + 500, Fault::Partition(Shape::IsolateLeader)));
        faults.push(Timed::at(t + 2_500, Fault::Heal));
    }
    // Seeds 7, 14 and 24 of 0..25 catch the stale read since runs start by
    // static bootstrap and commit notices to idle followers wait
    // `commit_notify_delay` (seeds 18, 4, 0 and 2 did under earlier
    // schedules); the others isolate the leader when no read lands inside
    // the stale window, or leave the checker undecided. The seed is
    // schedule-dependent: when a change moves it, search 0..25 again.
    Scenario {
        seed: 7,
        knobs,
        faults,
    }
}

#[test]
fn lease_reads_with_clock_drift_beyond_the_bound_are_caught_by_linearizability() {
    let s = lease_scenario(400_000);
    assert!(!s.knobs.drift_within_lease_bound());
    let report = run_scenario(s, Trace::new(0, false));
    let f = report.failure.expect("a stale lease read must be caught");
    assert_eq!(
        (f.checker, f.class),
        ("linearizability", FailureClass::Safety),
        "{f}"
    );
}

#[test]
fn the_same_lease_scenario_passes_with_drift_inside_the_bound() {
    let s = lease_scenario(5_000);
    assert!(s.knobs.drift_within_lease_bound());
    let report = run_scenario(s, Trace::new(0, false));
    assert_eq!(report.failure, None);
}
