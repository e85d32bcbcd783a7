//! The state-digest oracle: replicas that applied the same log prefix must
//! hold the same state. A counter service written against the public API
//! passes; the same service whose replicas remember which instance they are
//! (a state machine that is not a function of its log) is caught.

use raft_sim::rng::{Ppm, SimRng};
use raft_sim::scenario::Knobs;
use raft_sim::service::{Model, Request, RequestOf, Service, StateMachine, Workload};
use raft_sim::swarm::Overrides;
use raft_sim::sweep::{RunConfig, run_seed_with};
use raft_sim::trace::Trace;
use std::cell::Cell;

thread_local! {
    /// Instances made so far on this thread (each seed runs on one thread).
    static MADE: Cell<u64> = const { Cell::new(0) };
}

/// Counts the commands applied; with `leaky`, its state also holds which
/// instance it is, so two replicas never agree.
struct Counter {
    count: u64,
    instance: u64,
    leaky: bool,
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
        self.count
    }
    fn snapshot(&self) -> Vec<u8> {
        self.count.to_le_bytes().to_vec()
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.count = u64::from_le_bytes(bytes.try_into().map_err(|_| "not 8 bytes")?);
        Ok(())
    }
    fn digest(&self) -> u64 {
        if self.leaky {
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
    leaky: bool,
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
            leaky: self.leaky,
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
            &CounterService { leaky: false },
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
            &CounterService { leaky: true },
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
