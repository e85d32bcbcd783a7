//! The `raft-sim` command line, for any [`Service`]: replay one seed, sweep
//! many with a progress bar, a summary and one replay command per failing
//! seed, replay a scenario file, shrink a failure, draw a timeline.
//!
//! ```text
//! raft-sim --seed 42                 # one seed, summary; --trace FILE for JSONL, -v to print the trace
//! raft-sim --seeds 0..1000 --swarm   # sweep on all cores, failing seeds with replay commands
//! raft-sim --seed 42 --timeline t.html   # one seed drawn as an HTML/SVG timeline
//! raft-sim --seed 7 --save-scenario s.json; raft-sim --replay s.json   # a run as editable data
//! raft-sim --seed 7 --shrink         # the failure, shrunk to a short scenario
//! ```
//!
//! Your own program gets all of it with one call:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     raft_sim::cli::main(raft_sim::kv::KvService, "cargo run --release -p raft-sim --")
//! }
//! ```
//!
//! Exit codes: 0 pass, 1 usage, 2 safety, 3 liveness, 4 panic in core, 5 nondeterminism,
//! 6 a checker undecided (linearizability search out of budget), 7 a sweep under
//! `--require-coverage` that passed but left a coverage goal unreached.

use crate::checkers::FailureClass;
use crate::history::OpStatus;
use crate::scenario::Scenario;
use crate::service::Service;
use crate::swarm::{Overrides, scenario_from_seed};
use crate::sweep::{RunConfig, install_quiet_panic_hook, run_with, sweep_with};
use crate::timeline::{SharedBuf, Tee};
use crate::trace::Trace;
use crate::world::RunReport;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Instant as WallClock;

/// The command line: one seed, a sweep, a replay or a shrink (see the module docs).
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// Run one seed and print a summary.
    #[arg(long, conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Sweep a range of seeds `A..B` on all cores.
    #[arg(long, value_parser = parse_range)]
    pub seeds: Option<(u64, u64)>,
    /// Threads for a sweep (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Swarm mode: each seed picks its own knobs and fault mix.
    #[arg(long)]
    pub swarm: bool,
    /// Node count.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Simulated duration in milliseconds.
    #[arg(long)]
    pub duration_ms: Option<u64>,
    /// Datagram loss in parts per million.
    #[arg(long)]
    pub drop_ppm: Option<u32>,
    /// Datagram duplication in parts per million.
    #[arg(long)]
    pub dup_ppm: Option<u32>,
    /// Random stream break per frame, in parts per million.
    #[arg(long)]
    pub stream_break_ppm: Option<u32>,
    /// Mean milliseconds between scheduled faults (0: none).
    #[arg(long)]
    pub fault_interval_ms: Option<u64>,
    /// Client processes.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Disable the membership nemesis (by default members are added and
    /// removed during runs).
    #[arg(long)]
    pub no_membership: bool,
    /// Lease reads on in every seed (swarm mode draws them in half the seeds anyway).
    #[arg(long)]
    pub lease_reads: bool,
    /// Largest clock drift in ppm. Above half the lease bound (10,000 ppm) it is
    /// outside the model: with --lease-reads the linearizability oracle must object.
    #[arg(long)]
    pub drift_ppm_max: Option<u64>,
    /// A hostile member sends protocol-violating frames and messages (every
    /// seed in default mode, half the swarm seeds of 3 nodes or more).
    #[arg(long)]
    pub hostile: bool,
    /// Write the trace as JSONL to this file (single seed).
    #[arg(long)]
    pub trace: Option<std::path::PathBuf>,
    /// Render the run as a self-contained HTML timeline (inline SVG) to this file (single seed).
    #[arg(long, conflicts_with = "seeds")]
    pub timeline: Option<std::path::PathBuf>,
    /// The timeline's message window in simulated seconds, `A..B` (default: the last 2 s
    /// before the failure or the end).
    #[arg(long, value_parser = crate::timeline::parse_window, requires = "timeline")]
    pub timeline_window: Option<(u64, u64)>,
    /// Print every trace record (single seed).
    #[arg(short, long)]
    pub verbose: bool,
    /// Run the seed twice and compare digests (single seed).
    #[arg(long)]
    pub check_determinism: bool,
    /// Write the seed's scenario (knobs and fault schedule) as JSON to this file.
    #[arg(long)]
    pub save_scenario: Option<std::path::PathBuf>,
    /// Shrink the failing seed (or --replay scenario) and write `shrunk-<seed>.json`.
    #[arg(long)]
    pub shrink: bool,
    /// Runs the shrinker may spend.
    #[arg(long, default_value_t = 300)]
    pub shrink_runs: u32,
    /// Run the scenario in this JSON file (as written by --save-scenario, maybe edited).
    #[arg(long, conflicts_with_all = ["seed", "seeds"])]
    pub replay: Option<std::path::PathBuf>,
    /// Exit 7 if the sweep passes but leaves a coverage goal unreached (CI).
    #[arg(long, requires = "seeds")]
    pub require_coverage: bool,
}

/// The exit code of a passing sweep that left a coverage goal unreached
/// under `--require-coverage`.
const COVERAGE_MISSED: i32 = 7;

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or("expected A..B")?;
    let a: u64 = a.parse().map_err(|e| format!("{a}: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("{b}: {e}"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            nodes: self.nodes,
            duration_ms: self.duration_ms,
            drop_ppm: self.drop_ppm,
            dup_ppm: self.dup_ppm,
            stream_break_ppm: self.stream_break_ppm,
            fault_interval_ms: self.fault_interval_ms,
            clients: self.clients,
            no_membership: self.no_membership,
            lease_reads: self.lease_reads,
            drift_ppm_max: self.drift_ppm_max,
            hostile: self.hostile,
        }
    }

    /// The flags that change a run, as they must appear in a replay command.
    fn replay_flags(&self) -> String {
        let mut s = String::new();
        if self.swarm {
            s.push_str(" --swarm");
        }
        let switches = [
            (self.no_membership, " --no-membership"),
            (self.lease_reads, " --lease-reads"),
            (self.hostile, " --hostile"),
        ];
        for (on, flag) in switches {
            if on {
                s.push_str(flag);
            }
        }
        let pairs: [(&str, Option<u64>); 8] = [
            ("--drift-ppm-max", self.drift_ppm_max),
            ("--nodes", self.nodes.map(|v| v as u64)),
            ("--duration-ms", self.duration_ms),
            ("--drop-ppm", self.drop_ppm.map(u64::from)),
            ("--dup-ppm", self.dup_ppm.map(u64::from)),
            ("--stream-break-ppm", self.stream_break_ppm.map(u64::from)),
            ("--fault-interval-ms", self.fault_interval_ms),
            ("--clients", self.clients.map(|v| v as u64)),
        ];
        for (flag, v) in pairs {
            if let Some(v) = v {
                s.push_str(&format!(" {flag} {v}"));
            }
        }
        s
    }
}

impl Cli {
    /// Parses a command line (the first argument is the program name), as
    /// `raft-sim` would; `Err` is the usage text or the error, for a person.
    pub fn from_args(
        args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<Cli, String> {
        Cli::try_parse_from(args).map_err(|e| e.to_string())
    }
}

/// A command line bound to a service and to the command that runs it.
struct Program<'a, S> {
    service: &'a S,
    cli: &'a Cli,
    /// How a person runs this program again (`cargo run ... --`).
    command: &'a str,
}

impl<S: Service> Program<'_, S> {
    fn replay_command(&self, seed: u64) -> String {
        format!("{} --seed {seed}{}", self.command, self.cli.replay_flags())
    }
}

/// Runs the command line in the process's arguments against `service`;
/// `command` is how a person runs this program (`cargo run --release -p
/// raft-sim --`), for the replay commands it prints.
pub fn main<S: Service>(service: S, command: &str) -> ExitCode {
    main_from(service, command, std::env::args_os())
}

/// [`main`] with explicit arguments (the first is the program name).
pub fn main_from<S: Service>(
    service: S,
    command: &str,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return ExitCode::from(if usage { 1 } else { 0 });
        }
    };
    install_quiet_panic_hook();
    ExitCode::from(run(&service, command, &cli) as u8)
}

/// Does what the command line `cli` asks of `service` (one seed, a sweep with
/// its progress bar, summary and replay commands, a replay or a shrink) and
/// returns the exit code. `cli` may be built in code, e.g.
/// `Cli::from_args(["bank", "--seeds", "0..100"])`.
pub fn run<S: Service>(service: &S, command: &str, cli: &Cli) -> i32 {
    let config = RunConfig {
        swarm: cli.swarm,
        overrides: cli.overrides(),
    };
    let p = Program {
        service,
        cli,
        command,
    };
    match (cli.seed, cli.seeds, &cli.replay) {
        (Some(seed), None, None) => run_one(
            &p,
            scenario_from_seed(seed, config.swarm, &config.overrides),
        ),
        (None, Some((a, b)), None) => run_sweep(&p, a, b, &config),
        (None, None, Some(path)) => match load_scenario(path) {
            Ok(scenario) => run_one(&p, scenario),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                1
            }
        },
        _ => {
            eprintln!("give --seed N, --seeds A..B or --replay FILE (see --help)");
            1
        }
    }
}

fn load_scenario(path: &std::path::Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn run_one<S: Service>(p: &Program<'_, S>, scenario: Scenario) -> i32 {
    let cli = p.cli;
    if cli.shrink {
        return run_shrink(p, scenario);
    }
    let seed = scenario.seed;
    if let Some(path) = &cli.save_scenario {
        let json = serde_json::to_string_pretty(&scenario).expect("a Scenario always serializes");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("cannot write {}: {e}", path.display());
            return 1;
        }
    }
    let replay = match &cli.replay {
        Some(path) => format!("{} --replay {}", p.command, path.display()),
        None => p.replay_command(seed),
    };
    println!("seed {seed}{}", cli.replay_flags());
    println!("knobs: {}", scenario.knobs);
    println!("faults: {}", scenario.faults.len());
    for f in &scenario.faults {
        println!("  {:>7}ms {}", f.at_ms, f.what);
    }
    let (trace, timeline_buf) = match single_trace(cli) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let wall = WallClock::now();
    let report = run_with(p.service, scenario.clone(), trace);
    let wall_s = wall.elapsed().as_secs_f64();
    print_summary(&report, wall_s);
    if let (Some(path), Some(buf)) = (&cli.timeline, &timeline_buf) {
        let records = crate::timeline::parse_jsonl(&buf.text());
        let html = crate::timeline::render(&scenario, &report, &records, cli.timeline_window);
        if let Err(e) = std::fs::write(path, html) {
            eprintln!("cannot write {}: {e}", path.display());
            return 1;
        }
        println!("timeline: {}", path.display());
    }
    if cli.check_determinism {
        let again = run_with(p.service, scenario, Trace::new(0, false));
        if again.digest != report.digest {
            println!(
                "NONDETERMINISM: digest {:016x} then {:016x}",
                report.digest, again.digest
            );
            println!("replay: {replay}");
            return FailureClass::Nondeterminism.exit_code();
        }
        println!("determinism: second run has the same digest");
    }
    match &report.failure {
        None => 0,
        Some(f) => {
            println!("--- last {} trace records ---", report.trace_tail.len());
            for line in &report.trace_tail {
                println!("{line}");
            }
            println!("FAILED: {f}");
            println!("replay: {replay}");
            f.class.exit_code()
        }
    }
}

/// The trace of a single-seed run: the last 200 records kept (all with
/// `-v`), echoed with `-v`, written as JSONL to `--trace` and kept in memory
/// for `--timeline`.
fn single_trace(cli: &Cli) -> Result<(Trace, Option<SharedBuf>), i32> {
    let mut trace = Trace::new(if cli.verbose { 0 } else { 200 }, cli.verbose);
    let timeline_buf = cli.timeline.as_ref().map(|_| SharedBuf::default());
    let file = match &cli.trace {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("cannot create {}: {e}", path.display());
                return Err(1);
            }
        },
        None => None,
    };
    match (file, &timeline_buf) {
        (Some(f), Some(buf)) => trace = trace.with_jsonl(Box::new(Tee(f, buf.clone()))),
        (Some(f), None) => trace = trace.with_jsonl(Box::new(f)),
        (None, Some(buf)) => trace = trace.with_jsonl(Box::new(buf.clone())),
        (None, None) => {}
    }
    Ok((trace, timeline_buf))
}

fn print_summary(r: &RunReport, wall_s: f64) {
    let count = |o: OpStatus| r.history.iter().filter(|op| op.outcome == o).count();
    println!(
        "seed {} | {:.3} sim-s | {} events | digest {:016x} | leader terms {} | committed {} | acked writes {} \
         | ops ok {} failed {} unknown {} | wall {:.3}s ({:.0} sim-s/s)",
        r.seed,
        r.sim_ns as f64 / 1e9,
        r.events,
        r.digest,
        r.leader_terms,
        r.committed,
        r.acked_writes,
        count(OpStatus::Ok),
        count(OpStatus::Failed),
        count(OpStatus::Unknown),
        wall_s,
        r.sim_ns as f64 / 1e9 / wall_s.max(1e-9),
    );
    match &r.failure {
        None => println!("PASS"),
        Some(f) => println!("verdict: {f}"),
    }
}

fn run_sweep<S: Service>(p: &Program<'_, S>, a: u64, b: u64, config: &RunConfig) -> i32 {
    let cli = p.cli;
    let jobs = cli
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = ProgressBar::new(b - a);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} seeds, {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let failed = std::sync::atomic::AtomicU64::new(0);
    let wall = WallClock::now();
    let summary = sweep_with(p.service, a, b, jobs, config, &|r: &RunReport| {
        if let Some(f) = &r.failure {
            let n = failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let line = format!("seed {} FAILED: {f}", r.seed);
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
            bar.set_message(format!("{n} failing"));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let wall_s = wall.elapsed().as_secs_f64().max(1e-9);
    let sim_s = summary.sim_ns as f64 / 1e9;
    println!(
        "seeds {} | simulated {:.1}s | wall {:.2}s | {:.0} sim-s per wall-s | {:.0} seeds/min | {:.0} events/s | {} jobs",
        summary.seeds,
        sim_s,
        wall_s,
        sim_s / wall_s,
        summary.seeds as f64 * 60.0 / wall_s,
        summary.events as f64 / wall_s,
        jobs
    );
    println!("coverage:");
    for (what, count) in &summary.coverage {
        println!("  {count:>9}  {what}");
    }
    let missed = summary.missed_goals();
    if !missed.is_empty() {
        println!("coverage goals never reached: {}", missed.join("; "));
    }
    let uncovered = cli.require_coverage && !missed.is_empty();
    if summary.failures.is_empty() {
        println!("all seeds passed");
    } else {
        println!("{} failing seeds:", summary.failures.len());
        for r in &summary.failures {
            let f = r.failure.as_ref().expect("failures only");
            println!("  seed {}: {f}", r.seed);
            println!("    {}", p.replay_command(r.seed));
        }
    }
    match summary.exit_code() {
        0 if uncovered => COVERAGE_MISSED,
        code => code,
    }
}

fn run_shrink<S: Service>(p: &Program<'_, S>, scenario: Scenario) -> i32 {
    let cli = p.cli;
    let seed = scenario.seed;
    let (faults, clients) = (scenario.faults.len(), scenario.knobs.clients);
    let duration = scenario.knobs.duration_ms;
    let Some(shrunk) = crate::shrink::shrink_with(p.service, scenario, cli.shrink_runs) else {
        println!("seed {seed} passes: nothing to shrink");
        return 0;
    };
    let path = format!("shrunk-{seed}.json");
    let json =
        serde_json::to_string_pretty(&shrunk.scenario).expect("a Scenario always serializes");
    if let Err(e) = std::fs::write(&path, json) {
        eprintln!("cannot write {path}: {e}");
        return 1;
    }
    let s = &shrunk.scenario;
    let f = shrunk.report.failure.as_ref().expect("a shrunk run fails");
    println!(
        "shrunk in {} runs: faults {faults} -> {}, clients {clients} -> {}, duration {duration}ms -> {}ms, events {}",
        shrunk.runs,
        s.faults.len(),
        s.knobs.clients,
        s.knobs.duration_ms,
        shrunk.report.events
    );
    for fault in &s.faults {
        println!("  {:>7}ms {}", fault.at_ms, fault.what);
    }
    println!("FAILED: {f}");
    println!("replay: {} --replay {path} -v", p.command);
    f.class.exit_code()
}
