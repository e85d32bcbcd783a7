//! Running seeds: one seed with full output, or many seeds on all cores.
//!
//! Parallelism is only across seeds: scoped threads pull seed numbers from an
//! atomic counter; each seed runs single-threaded. Results are sorted by seed,
//! so a sweep's summary is deterministic too (wall-clock figures aside).

use crate::checkers::FailureClass;
pub use crate::coverage::{
    LEASE_READ, LOG_READ_FOR_APPLY, LOG_READ_FOR_STREAM, RUN_WITH_HOSTILE, RUN_WITH_LEASE_READS,
    RUN_WITH_SMALL_LOG_CACHE,
};
use crate::kv::KvService;
use crate::scenario::Scenario;
use crate::service::Service;
use crate::swarm::{Overrides, scenario_from_seed};
use crate::trace::Trace;
use crate::world::{RunReport, run_service_with};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook with one that records the panic (message and
/// location) for [`take_last_panic`] instead of printing it, so a sweep's
/// output stays readable; the report carries the text.
pub fn install_quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
    }));
}

/// The last panic recorded on this thread by the quiet hook.
pub fn take_last_panic() -> Option<String> {
    LAST_PANIC.with(|p| p.borrow_mut().take())
}

/// How to run each seed.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// Swarm mode: per-seed knobs and fault mix.
    pub swarm: bool,
    /// Command-line overrides.
    pub overrides: Overrides,
}

/// Runs one key-value seed (see [`run_seed_with`]).
pub fn run_seed(seed: u64, config: &RunConfig, trace: Trace) -> RunReport {
    run_seed_with(&KvService, seed, config, trace)
}

/// Runs one seed of `service`: its scenario drawn from the seed and
/// `config`, `trace` deciding what is echoed, written and kept.
pub fn run_seed_with<S: Service>(
    service: &S,
    seed: u64,
    config: &RunConfig,
    trace: Trace,
) -> RunReport {
    run_with(
        service,
        scenario_from_seed(seed, config.swarm, &config.overrides),
        trace,
    )
}

/// Runs an explicit key-value scenario (see [`run_with`]).
pub fn run(scenario: Scenario, trace: Trace) -> RunReport {
    run_with(&KvService, scenario, trace)
}

/// Runs an explicit scenario (a seed's, or one loaded from a file) of
/// `service`; a panic's report carries the panic message and location.
pub fn run_with<S: Service>(service: &S, scenario: Scenario, trace: Trace) -> RunReport {
    run_inner(service, scenario, trace, true)
}

/// [`run_with`], with the client history in the report only if `history`.
fn run_inner<S: Service>(
    service: &S,
    scenario: Scenario,
    trace: Trace,
    history: bool,
) -> RunReport {
    let mut report = run_service_with(service, scenario, trace, history);
    if let Some(f) = &mut report.failure {
        if f.class == FailureClass::Panic {
            if let Some(text) = take_last_panic() {
                f.message = text;
            }
        }
    }
    report
}

/// One seed's outcome in a sweep (the history is dropped to save memory).
#[derive(Clone, Debug)]
pub struct SeedResult {
    /// The report, without its history.
    pub report: RunReport,
}

/// What a sweep did.
#[derive(Clone, Debug, Default)]
pub struct SweepSummary {
    /// Seeds run.
    pub seeds: u64,
    /// Simulated nanoseconds, summed.
    pub sim_ns: u64,
    /// Events processed, summed.
    pub events: u64,
    /// Failing seeds, sorted by seed.
    pub failures: Vec<RunReport>,
    /// Rare events of interest, summed over all seeds.
    pub coverage: BTreeMap<&'static str, u64>,
}

/// Rare events a sweep should reach; one that never happens means the
/// simulator never exercised that branch (SIMULATION §2.10).
pub const COVERAGE_GOALS: [&str; 11] = [
    crate::coverage::BOOTSTRAPPED,
    crate::coverage::BOOTSTRAP_REPEATED,
    "leader elected",
    "log truncated (conflicting suffix)",
    "snapshot sent on a stream",
    "snapshot installed",
    "stream reopened below the last index (after a mismatch)",
    "vote refused: leader alive",
    "crash tore an append",
    "stream broke after a long stall",
    "request outcome unknown (leadership lost after append)",
];

/// Goals that apply only when some seed of the sweep ran the feature that
/// reaches them: `(goal, the coverage mark such a seed leaves)`.
pub fn conditional_goals() -> Vec<(&'static str, &'static str)> {
    let mut goals = vec![
        (LEASE_READ, RUN_WITH_LEASE_READS),
        (LOG_READ_FOR_STREAM, RUN_WITH_SMALL_LOG_CACHE),
        (LOG_READ_FOR_APPLY, RUN_WITH_SMALL_LOG_CACHE),
    ];
    for a in crate::hostile::Attack::ALL {
        goals.push((a.name(), RUN_WITH_HOSTILE));
    }
    goals
}

impl SweepSummary {
    /// The coverage goals never reached (conditional ones only where their
    /// feature ran in some seed).
    pub fn missed_goals(&self) -> Vec<&'static str> {
        let conditional = conditional_goals()
            .into_iter()
            .filter(|(_, mark)| self.coverage.contains_key(mark))
            .map(|(goal, _)| goal);
        COVERAGE_GOALS
            .iter()
            .copied()
            .chain(conditional)
            .filter(|g| !self.coverage.contains_key(g))
            .collect()
    }
}

impl SweepSummary {
    /// The worst exit code among the failures (0 if none).
    pub fn exit_code(&self) -> i32 {
        self.failures
            .iter()
            .filter_map(|r| r.failure.as_ref())
            .map(|f| f.class.exit_code())
            .max()
            .unwrap_or(0)
    }
}

/// How many trace records a failing seed's report shows.
pub const FAILURE_TAIL: usize = 200;

/// Runs one seed of a sweep: with a trace that keeps and formats nothing
/// (formatting every record was most of a seed's time), then, only if the
/// seed fails, again with a ring of [`FAILURE_TAIL`] records to report the
/// tail. The replay is the same run (a seed is deterministic); should its
/// digest differ, the tail says so first.
/// The report carries no client history (a sweep keeps none).
fn sweep_seed<S: Service>(service: &S, seed: u64, config: &RunConfig) -> RunReport {
    let run = |trace| {
        let scenario = scenario_from_seed(seed, config.swarm, &config.overrides);
        run_inner(service, scenario, trace, false)
    };
    let mut report = run(Trace::new(0, false));
    if report.failure.is_some() {
        let replay = run(Trace::new(FAILURE_TAIL, false));
        if replay.digest != report.digest {
            report.trace_tail.push(format!(
                "(nondeterminism: the replay's digest {:016x} differs from the run's {:016x}; the tail below is the replay's)",
                replay.digest, report.digest
            ));
        }
        report.trace_tail.extend(replay.trace_tail);
    }
    report
}

/// Runs key-value seeds `from..to` (see [`sweep_with`]).
pub fn sweep(
    from: u64,
    to: u64,
    jobs: usize,
    config: &RunConfig,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> SweepSummary {
    sweep_with(&KvService, from, to, jobs, config, progress)
}

/// Runs seeds `from..to` of `service` on `jobs` threads; `progress` is
/// called after each seed.
pub fn sweep_with<S: Service>(
    service: &S,
    from: u64,
    to: u64,
    jobs: usize,
    config: &RunConfig,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> SweepSummary {
    let next = AtomicU64::new(from);
    let results: Mutex<Vec<RunReport>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= to {
                        break;
                    }
                    let report = sweep_seed(service, seed, config);
                    progress(&report);
                    results
                        .lock()
                        .expect("no thread panics while holding the lock")
                        .push(report);
                }
            });
        }
    });
    let mut all = results.into_inner().expect("threads joined");
    all.sort_by_key(|r| r.seed);
    let mut summary = SweepSummary {
        seeds: all.len() as u64,
        ..SweepSummary::default()
    };
    for r in all {
        summary.sim_ns += r.sim_ns;
        summary.events += r.events;
        for (k, v) in &r.coverage {
            *summary.coverage.entry(k).or_default() += v;
        }
        if r.failure.is_some() {
            summary.failures.push(r);
        }
    }
    summary
}
