//! `bench-peers`: the same in-memory workload against raft-core, raft-rs 0.7
//! and openraft 0.9, side by side.
//!
//! Three voters in one process, the log in memory, messages moved as structs,
//! no fsync, a state machine that counts commands. Each run forms a cluster,
//! applies `--warmup` entries, then measures `--entries` entries of
//! `--entry-bytes` bytes with at most K proposals in flight (submitted and not
//! yet applied by the leader): throughput, latency from submission until the
//! leader applied the entry (p50, p99), process CPU time per entry, and with
//! `--features count-allocations` heap allocations per entry. At the end every
//! node must have applied every entry. Two shapes: every node on one thread,
//! and one thread per node.
//!
//! Prints one JSON line per run, then a markdown table of medians with ratios.
//! Runs are interleaved (run 1 of every case, then run 2, ...) so that noise
//! from a shared machine spreads over all peers alike.
//!
//! ```text
//! cargo run --release --manifest-path bench-peers/Cargo.toml -- \
//!     [--runs 3] [--entries 100000] [--warmup 10000] [--inflight 1,64,1024] \
//!     [--shapes one-thread,thread-per-node] [--peers raft-core,raft-rs,openraft] [--entry-bytes 256]
//! ```

mod meter;
mod openraft_peer;
mod ours;
mod raftrs;

use meter::{Meter, Workload};
use std::process::ExitCode;
use std::sync::Arc;

/// Where the three nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    OneThread,
    ThreadPerNode,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::OneThread => "one-thread",
            Shape::ThreadPerNode => "thread-per-node",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Shape::OneThread => "one thread",
            Shape::ThreadPerNode => "thread per node",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    RaftCore,
    RaftRs,
    OpenRaft,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::RaftCore => "raft-core",
            Peer::RaftRs => "raft-rs",
            Peer::OpenRaft => "openraft",
        }
    }
}

struct Args {
    runs: usize,
    entries: u64,
    warmup: u64,
    entry_bytes: usize,
    inflight: Vec<usize>,
    shapes: Vec<Shape>,
    peers: Vec<Peer>,
}

const USAGE: &str = "bench-peers [--runs N] [--entries N] [--warmup N] [--entry-bytes N] \
                     [--inflight 1,64,1024] [--shapes one-thread,thread-per-node] \
                     [--peers raft-core,raft-rs,openraft]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        runs: 3,
        entries: 100_000,
        warmup: 10_000,
        entry_bytes: 256,
        inflight: vec![1, 64, 1024],
        shapes: vec![Shape::OneThread, Shape::ThreadPerNode],
        peers: vec![Peer::RaftCore, Peer::RaftRs, Peer::OpenRaft],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let count = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: {v:?} is not a positive count"))
        };
        let list = |v: &str| {
            v.split(',')
                .map(str::trim)
                .map(String::from)
                .collect::<Vec<_>>()
        };
        match flag.as_str() {
            "--runs" => args.runs = count(&value)? as usize,
            "--entries" => args.entries = count(&value)?,
            "--warmup" => args.warmup = count(&value)?,
            "--entry-bytes" => args.entry_bytes = count(&value)? as usize,
            "--inflight" => {
                args.inflight = list(&value)
                    .iter()
                    .map(|v| count(v).map(|n| n as usize))
                    .collect::<Result<_, _>>()?
            }
            "--shapes" => {
                args.shapes = list(&value)
                    .iter()
                    .map(|v| match v.as_str() {
                        "one-thread" => Ok(Shape::OneThread),
                        "thread-per-node" => Ok(Shape::ThreadPerNode),
                        other => Err(format!("unknown shape {other:?}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--peers" => {
                args.peers = list(&value)
                    .iter()
                    .map(|v| match v.as_str() {
                        "raft-core" => Ok(Peer::RaftCore),
                        "raft-rs" => Ok(Peer::RaftRs),
                        "openraft" => Ok(Peer::OpenRaft),
                        other => Err(format!("unknown peer {other:?}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(args)
}

/// The figures of one run.
#[derive(Clone, Debug)]
struct Run {
    peer: Peer,
    shape: Shape,
    inflight: usize,
    entries_per_sec: f64,
    latency_us_p50: f64,
    latency_us_p99: f64,
    cpu_us_per_entry: f64,
    allocations_per_entry: Option<f64>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn run_one(peer: Peer, shape: Shape, w: Workload, index: usize) -> Result<Run, String> {
    let meter = Arc::new(Meter::default());
    let outcome = match peer {
        Peer::RaftCore => ours::run(shape, w, &meter),
        Peer::RaftRs => raftrs::run(shape, w, &meter),
        Peer::OpenRaft => openraft_peer::run(shape, w, Arc::clone(&meter)),
    };
    if outcome.applied.len() != 3 || outcome.applied.iter().any(|&a| a != w.total()) {
        return Err(format!(
            "{} {}: nodes applied {:?} commands, expected {} each",
            peer.name(),
            shape.name(),
            outcome.applied,
            w.total()
        ));
    }
    let (start, stop) = meter
        .window()
        .ok_or_else(|| format!("{}: the measured window never closed", peer.name()))?;
    let mut latencies = outcome.latencies_ns;
    if latencies.len() as u64 != w.entries {
        return Err(format!(
            "{}: {} latencies for {} entries",
            peer.name(),
            latencies.len(),
            w.entries
        ));
    }
    latencies.sort_unstable();
    let seconds = (stop.at - start.at).as_secs_f64();
    let n = w.entries as f64;
    let r = Run {
        peer,
        shape,
        inflight: w.inflight,
        entries_per_sec: n / seconds,
        latency_us_p50: percentile(&latencies, 0.50) as f64 / 1e3,
        latency_us_p99: percentile(&latencies, 0.99) as f64 / 1e3,
        cpu_us_per_entry: (stop.cpu_ns - start.cpu_ns) as f64 / 1e3 / n,
        allocations_per_entry: start
            .allocations
            .zip(stop.allocations)
            .map(|(a, b)| (b - a) as f64 / n),
    };
    println!(
        "{{\"peer\":\"{}\",\"shape\":\"{}\",\"inflight\":{},\"run\":{},\"entries\":{},\"entry_bytes\":{},\
         \"seconds\":{:.4},\"entries_per_sec\":{:.0},\"latency_us_p50\":{:.1},\"latency_us_p99\":{:.1},\
         \"cpu_us_per_entry\":{:.3},\"allocations_per_entry\":{},\"applied\":{:?}}}",
        peer.name(),
        shape.name(),
        w.inflight,
        index,
        w.entries,
        w.entry_bytes,
        seconds,
        r.entries_per_sec,
        r.latency_us_p50,
        r.latency_us_p99,
        r.cpu_us_per_entry,
        r.allocations_per_entry
            .map_or("null".to_string(), |a| format!("{a:.2}")),
        outcome.applied,
    );
    Ok(r)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    if xs.is_empty() {
        return f64::NAN;
    }
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k/s", x / 1e3)
    } else {
        format!("{x:.0} /s")
    }
}

fn table(args: &Args, runs: &[Run]) {
    let pick = |peer: Peer, shape: Shape, k: usize, f: &dyn Fn(&Run) -> Option<f64>| {
        let xs: Vec<f64> = runs
            .iter()
            .filter(|r| r.peer == peer && r.shape == shape && r.inflight == k)
            .filter_map(f)
            .collect();
        (!xs.is_empty()).then(|| median(xs))
    };
    let ours = Peer::RaftCore;
    let others: Vec<Peer> = args.peers.iter().copied().filter(|p| *p != ours).collect();
    println!();
    println!(
        "Throughput (entries applied by the leader per second, median of {}):",
        args.runs
    );
    println!();
    let mut head = "| in flight | shape |".to_string();
    let mut rule = "|---|---|".to_string();
    for p in &args.peers {
        head += &format!(" {} |", p.name());
        rule += "---|";
    }
    if args.peers.contains(&ours) {
        for p in &others {
            head += &format!(" ours / {} |", p.name());
            rule += "---|";
        }
    }
    println!("{head}\n{rule}");
    for &shape in &args.shapes {
        for &k in &args.inflight {
            let mut line = format!("| {k} | {} |", shape.label());
            let tput = |p| pick(p, shape, k, &|r: &Run| Some(r.entries_per_sec));
            for &p in &args.peers {
                line += &format!(" {} |", tput(p).map_or("-".into(), rate));
            }
            if args.peers.contains(&ours) {
                for &p in &others {
                    let ratio = tput(ours).zip(tput(p)).map(|(a, b)| a / b);
                    line += &format!(" {} |", ratio.map_or("-".into(), |r| format!("{r:.2}")));
                }
            }
            println!("{line}");
        }
    }
    println!();
    println!(
        "Latency p50 / p99 (µs), CPU per entry (µs, all threads), allocations per entry (whole process):"
    );
    println!();
    println!("| in flight | shape | peer | p50 | p99 | CPU | allocations |");
    println!("|---|---|---|---|---|---|---|");
    for &shape in &args.shapes {
        for &k in &args.inflight {
            for &p in &args.peers {
                let f = |g: &dyn Fn(&Run) -> Option<f64>, digits: usize| {
                    pick(p, shape, k, g).map_or("-".into(), |x| format!("{x:.digits$}"))
                };
                println!(
                    "| {k} | {} | {} | {} | {} | {} | {} |",
                    shape.label(),
                    p.name(),
                    f(&|r| Some(r.latency_us_p50), 1),
                    f(&|r| Some(r.latency_us_p99), 1),
                    f(&|r| Some(r.cpu_us_per_entry), 2),
                    f(&|r| r.allocations_per_entry, 1),
                );
            }
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-peers: {e}\nusage: {USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut runs = Vec::new();
    for index in 1..=args.runs {
        for &shape in &args.shapes {
            for &k in &args.inflight {
                for &peer in &args.peers {
                    let w = Workload {
                        warmup: args.warmup,
                        entries: args.entries,
                        inflight: k,
                        entry_bytes: args.entry_bytes,
                    };
                    match run_one(peer, shape, w, index) {
                        Ok(r) => runs.push(r),
                        Err(e) => {
                            eprintln!("bench-peers: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
            }
        }
    }
    table(&args, &runs);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check every benchmark run makes, on a small workload: a driver
    /// that loses, duplicates or miscounts an entry on any node fails here
    /// (run after adapting the raft-core driver to an API change).
    #[test]
    fn every_peer_applies_every_entry_on_every_node_in_both_shapes() {
        for shape in [Shape::OneThread, Shape::ThreadPerNode] {
            for peer in [Peer::RaftCore, Peer::RaftRs, Peer::OpenRaft] {
                for inflight in [1, 64] {
                    let w = Workload {
                        warmup: 10,
                        entries: 300,
                        inflight,
                        entry_bytes: 256,
                    };
                    if let Err(e) = run_one(peer, shape, w, 0) {
                        panic!("{e}");
                    }
                }
            }
        }
    }
}
