//! A counter service written against the public API, correct and with two
//! flaws the oracles must catch: replicas that remember which instance they
//! are (state not a function of the log: the state-digest oracle) and reads
//! that lag one command behind (the linearizability check against the
//! service's own model).

use raft_sim::rng::{Ppm, SimRng};
use raft_sim::scenario::Knobs;
use raft_sim::service::{Model, Request, RequestOf, Service, StateMachine, Workload};
use raft_sim::swarm::Overrides;
use raft_sim::sweep::{FAILURE_TAIL, RunConfig, run_seed_with, sweep_with};
use raft_sim::trace::Trace;
use std::cell::Cell;

thread_local! {
    /// Instances made so far on this thread (each seed runs on one thread).
    static MADE: Cell<u64> = const { Cell::new(0) };
}

/// A deliberate flaw of the counter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flaw {
    None,
    /// Its state also holds which instance it is, so two replicas never agree.
    Leaky,
    /// A read answers the count before the last command.
    LaggingReads,
}

/// Counts the commands applied.
struct Counter {
    count: u64,
    instance: u64,
    flaw: Flaw,
}

impl StateMachine for Counter {
    type Command = ();
    type Query = ();
    type Output = u64;

    fn apply(&mut self, _: &()) -> u64 {
        self.count += 1;
        self.count
    }
    fn read(&self, _: &()) -> u64 {
        if self.flaw == Flaw::LaggingReads {
            self.count.saturating_sub(1)
        } else {
            self.count
        }
    }
    fn snapshot(&self) -> Vec<u8> {
        self.count.to_le_bytes().to_vec()
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.count = u64::from_le_bytes(bytes.try_into().map_err(|_| "not 8 bytes")?);
        Ok(())
    }
    fn digest(&self) -> u64 {
        if self.flaw == Flaw::Leaky {
            self.count ^ (self.instance << 32)
        } else {
            self.count
        }
    }
}

struct Clicks;

impl Workload for Clicks {
    type Machine = Counter;
    fn next(&mut self, rng: &mut SimRng) -> RequestOf<Counter> {
        if rng.chance(Ppm(200_000)) {
            Request::Read(())
        } else {
            Request::Write(())
        }
    }
}

struct Count;

impl Model for Count {
    type Machine = Counter;
    type State = u64;
    fn init(&self) -> u64 {
        0
    }
    fn step(&self, state: &mut u64, request: &RequestOf<Counter>) -> u64 {
        if let Request::Write(()) = request {
            *state += 1;
        }
        *state
    }
}

#[derive(Clone, Copy)]
struct CounterService {
    flaw: Flaw,
}

impl Service for CounterService {
    type Machine = Counter;
    type Workload = Clicks;
    type Model = Count;
    fn machine(&self) -> Counter {
        let instance = MADE.with(|m| {
            m.set(m.get() + 1);
            m.get()
        });
        Counter {
            count: 0,
            instance,
            flaw: self.flaw,
        }
    }
    fn workload(&self, _: &Knobs) -> Clicks {
        Clicks
    }
    fn model(&self) -> Count {
        Count
    }
}

fn config() -> RunConfig {
    RunConfig {
        swarm: false,
        overrides: Overrides {
            duration_ms: Some(10_000),
            ..Overrides::default()
        },
    }
}

#[test]
fn replicas_of_a_deterministic_state_machine_agree() {
    for seed in 0..3 {
        let r = run_seed_with(
            &CounterService { flaw: Flaw::None },
            seed,
            &config(),
            Trace::new(200, false),
        );
        if let Some(f) = &r.failure {
            panic!("seed {seed}: {f}\n{}", r.trace_tail.join("\n"));
        }
    }
}

#[test]
fn replicas_whose_state_is_not_a_function_of_the_log_are_caught() {
    for seed in 0..3 {
        let r = run_seed_with(
            &CounterService { flaw: Flaw::Leaky },
            seed,
            &config(),
            Trace::new(200, false),
        );
        let f = r
            .failure
            .unwrap_or_else(|| panic!("seed {seed}: divergent replicas went unnoticed"));
        assert_eq!(f.checker, "state-digest", "seed {seed}: {f}");
    }
}

#[test]
fn reads_that_lag_behind_the_log_are_not_linearizable() {
    for seed in 0..3 {
        let service = CounterService {
            flaw: Flaw::LaggingReads,
        };
        let r = run_seed_with(&service, seed, &config(), Trace::new(200, false));
        let f = r
            .failure
            .unwrap_or_else(|| panic!("seed {seed}: stale reads went unnoticed"));
        assert_eq!(f.checker, "linearizability", "seed {seed}: {f}");
    }
}

/// A sweep runs each seed without formatting its trace, then replays a
/// failing seed to report its tail: the tail and the digest must be those
/// of the seed run alone with a ring.
#[test]
fn a_failing_seed_of_a_sweep_reports_the_tail_of_the_same_run() {
    let service = CounterService {
        flaw: Flaw::LaggingReads,
    };
    let summary = sweep_with(&service, 0, 1, 1, &config(), &|_| {});
    let [swept] = summary.failures.as_slice() else {
        panic!("seed 0 of the lagging reads should fail");
    };
    let alone = run_seed_with(&service, 0, &config(), Trace::new(FAILURE_TAIL, false));
    assert_eq!(swept.digest, alone.digest);
    assert_eq!(swept.trace_tail.len(), FAILURE_TAIL);
    assert_eq!(swept.trace_tail, alone.trace_tail);
}
