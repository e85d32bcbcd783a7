//! The bank example (`examples/bank.rs`) as a test: correct, it passes; with
//! its deliberate bug (a transfer to the same account mints money), the
//! "money is conserved" invariant objects and the failure shrinks.

#[allow(dead_code)]
#[path = "../examples/bank.rs"]
mod bank;

use bank::BankService;
use raft_sim::shrink::{shrink_with, signature};
use raft_sim::swarm::{Overrides, scenario_from_seed};
use raft_sim::sweep::{RunConfig, run_seed_with};
use raft_sim::trace::Trace;

fn config() -> RunConfig {
    RunConfig {
        swarm: false,
        overrides: Overrides {
            duration_ms: Some(12_000),
            ..Overrides::default()
        },
    }
}

#[test]
fn the_correct_bank_passes_every_oracle() {
    for seed in 0..4 {
        let r = run_seed_with(
            &BankService { bug: false },
            seed,
            &config(),
            Trace::new(200, false),
        );
        if let Some(f) = &r.failure {
            panic!("seed {seed}: {f}\n{}", r.trace_tail.join("\n"));
        }
        assert!(
            r.acked_writes > 100,
            "seed {seed}: {} transfers acked",
            r.acked_writes
        );
    }
}

#[test]
fn the_buggy_bank_breaks_money_conservation_on_every_seed() {
    for seed in 0..4 {
        let r = run_seed_with(
            &BankService { bug: true },
            seed,
            &config(),
            Trace::new(200, false),
        );
        let f = r
            .failure
            .unwrap_or_else(|| panic!("seed {seed}: the minting bug went unnoticed"));
        assert_eq!(f.checker, "money-conserved", "seed {seed}: {f}");
    }
}

#[test]
fn the_buggy_banks_failure_shrinks_to_fewer_faults_and_a_shorter_run() {
    let service = BankService { bug: true };
    let scenario = scenario_from_seed(0, false, &config().overrides);
    let (faults, clients) = (scenario.faults.len(), scenario.knobs.clients);
    let duration = scenario.knobs.duration_ms;
    let shrunk = shrink_with(&service, scenario, 60).expect("the buggy bank fails");
    assert_eq!(
        signature(&shrunk.report).map(|s| s.1),
        Some("money-conserved")
    );
    let s = &shrunk.scenario;
    assert!(
        s.faults.len() < faults.max(1)
            && s.knobs.clients <= clients
            && s.knobs.duration_ms < duration,
        "faults {faults} -> {}, clients {clients} -> {}, duration {duration}ms -> {}ms",
        s.faults.len(),
        s.knobs.clients,
        s.knobs.duration_ms
    );
}

#[test]
fn the_command_line_runs_the_bank_and_exits_with_the_failure_class() {
    use raft_sim::cli::{Cli, run};
    let command = "cargo run --release -p raft-sim --example bank --";
    let cli = |args: &[&str]| Cli::from_args(["bank"].iter().chain(args)).expect("valid flags");
    let sweep = cli(&["--seeds", "0..2", "--jobs", "1", "--duration-ms", "12000"]);
    assert_eq!(run(&BankService { bug: false }, command, &sweep), 0);
    let one = cli(&["--seed", "1", "--duration-ms", "12000"]);
    assert_eq!(run(&BankService { bug: true }, command, &one), 2, "safety");
}
