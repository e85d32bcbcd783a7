//! Shrinking a failing run (SIMULATION §2.15): greedy delta debugging over the
//! scenario as data, each candidate re-run with the same seed and kept if it
//! fails with the same *signature* (failure class and checker name, not the
//! exact message). Per-subsystem RNG streams keep unrelated draws stable while
//! the scenario changes, so most edits preserve the failure.
//!
//! Steps: cut the duration to just past a safety failure; remove fault events
//! (halves, quarters, ... singles); remove clients; zero each network fault
//! intensity. A run budget bounds the search.

use crate::checkers::FailureClass;
use crate::kv::KvService;
use crate::rng::Ppm;
use crate::scenario::Scenario;
use crate::service::Service;
use crate::sweep::run_with;
use crate::trace::Trace;
use crate::world::RunReport;

/// What identifies "the same failure".
pub type Signature = (FailureClass, &'static str);

/// The signature of a report, if it failed.
pub fn signature(report: &RunReport) -> Option<Signature> {
    report.failure.as_ref().map(|f| (f.class, f.checker))
}

/// The outcome of a shrink.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing scenario found.
    pub scenario: Scenario,
    /// Its report.
    pub report: RunReport,
    /// Candidate runs spent.
    pub runs: u32,
}

struct Search<'s, S: Service> {
    service: &'s S,
    target: Signature,
    best: Scenario,
    report: RunReport,
    runs: u32,
    max_runs: u32,
}

impl<S: Service> Search<'_, S> {
    /// Runs `candidate`; keeps it if it fails the same way.
    fn try_keep(&mut self, candidate: Scenario) -> bool {
        if self.runs >= self.max_runs {
            return false;
        }
        self.runs += 1;
        let report = run_with(self.service, candidate.clone(), Trace::new(200, false));
        if signature(&report) == Some(self.target) {
            self.best = candidate;
            self.report = report;
            true
        } else {
            false
        }
    }
}

/// Shrinks a failing key-value `scenario` (see [`shrink_with`]).
pub fn shrink(scenario: Scenario, max_runs: u32) -> Option<Shrunk> {
    shrink_with(&KvService, scenario, max_runs)
}

/// Shrinks `scenario` of `service`, which must fail, spending at most
/// `max_runs` runs. Returns `None` if it does not fail.
pub fn shrink_with<S: Service>(service: &S, scenario: Scenario, max_runs: u32) -> Option<Shrunk> {
    let report = run_with(service, scenario.clone(), Trace::new(200, false));
    let target = signature(&report)?;
    let mut s = Search {
        service,
        target,
        best: scenario,
        report,
        runs: 1,
        max_runs,
    };

    // 1. A safety failure needs nothing after it. Clients go quiet for the
    // last 4 election timeouts of a run, so the cut keeps that much more:
    // every client decision up to the failure stays the same.
    if target.0 == FailureClass::Safety {
        let quiet_ms = 4 * s.best.knobs.election_timeout_ms;
        let fail_ms = s.report.sim_ns / 1_000_000 + 1 + quiet_ms;
        if fail_ms < s.best.knobs.duration_ms {
            let mut c = s.best.clone();
            c.knobs.duration_ms = fail_ms;
            c.knobs.chaos_ms = c.knobs.chaos_ms.min(fail_ms);
            c.faults.retain(|f| f.at_ms < fail_ms);
            s.try_keep(c);
        }
    }

    // 2. Remove fault events, in chunks from half the list down to one.
    let mut chunk = s.best.faults.len().div_ceil(2).max(1);
    while chunk >= 1 && !s.best.faults.is_empty() {
        let mut start = 0;
        while start < s.best.faults.len() {
            let mut c = s.best.clone();
            let end = (start + chunk).min(c.faults.len());
            c.faults.drain(start..end);
            if !s.try_keep(c) {
                start += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }

    // 3. Fewer clients.
    while s.best.knobs.clients > 1 {
        let mut c = s.best.clone();
        c.knobs.clients -= 1;
        if !s.try_keep(c) {
            break;
        }
    }

    // 4. Zero each network fault intensity.
    type Knob = fn(&mut Scenario);
    let zeroes: [Knob; 4] = [
        |c| c.knobs.net.drop = Ppm::NEVER,
        |c| c.knobs.net.duplicate = Ppm::NEVER,
        |c| c.knobs.net.tail = Ppm::NEVER,
        |c| c.knobs.net.stream_break = Ppm::NEVER,
    ];
    for zero in zeroes {
        let mut c = s.best.clone();
        zero(&mut c);
        if c != s.best {
            s.try_keep(c);
        }
    }

    Some(Shrunk {
        scenario: s.best,
        report: s.report,
        runs: s.runs,
    })
}
