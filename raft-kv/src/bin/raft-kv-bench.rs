//! `raft-kv-bench`: a cluster benchmark of raft-io-std.
//!
//! Starts a cluster of in-process nodes (default 3) on loopback TCP, with
//! their logs on disk and every fsync real, the key-value state machine of
//! `raft-kv` as FSM; runs concurrent clients that each put a value and wait
//! for its commit, in a loop; prints one JSON line.
//!
//! A client is a thread that keeps `--inflight` puts in flight
//! (`RaftNode::submit`, then `PendingProposal::wait` on the oldest), so
//! `--clients 4 --inflight 256` keeps 1,024 puts in flight from 4 threads;
//! `--inflight 1` (the default) is a client that waits for each put.
//!
//! ```text
//! cargo run --release -p raft-kv --bin raft-kv-bench -- \
//!     [--clients 32] [--inflight 1] [--payload-bytes 128] [--seconds 10] [--warmup-seconds 1] [--nodes 3] [--dir DIR]
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `ops_per_sec` | puts committed per second, all clients together |
//! | `in_flight` | clients × inflight: puts submitted and not yet committed, at most |
//! | `latency_us_p50`, `_p99`, `_p999`, `_max` | from the client's `submit` until `wait` returned (committed) |
//! | `fsyncs_per_sec` | WAL fsyncs per second, all nodes together (`Metrics::wal_fsyncs`) |
//! | `leader_fsyncs_per_sec`, `leader_entries_per_fsync` | the same on the leader alone, and its group-commit batch |
//! | `leader_moves` | times the clients followed a new leader; when not 0, the `leader_` figures mix two nodes |
//! | `wire_bytes_per_entry` | bytes all nodes wrote to their peers (`TransportMetrics::bytes_sent`: entries, acks, heartbeats) per committed entry |
//!
//! Only the measured window counts (after the warm-up). The data directory
//! defaults to a new one under the system's temporary directory, removed at
//! the end; pass `--dir` to measure another disk.

use raft_io_std::{Error, NodeConfig, RaftNode};
use raft_kv::kv::{Kv, KvCommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    clients: usize,
    inflight: usize,
    payload_bytes: usize,
    duration: Duration,
    warmup: Duration,
    nodes: usize,
    dir: Option<PathBuf>,
}

const USAGE: &str = "raft-kv-bench [--clients N] [--inflight N] [--payload-bytes N] [--seconds S] \
                     [--warmup-seconds S] [--nodes N] [--dir DIR]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        clients: 32,
        inflight: 1,
        payload_bytes: 128,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        nodes: 3,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let seconds = |v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|s| *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{flag}: {v:?} is not a number of seconds"))
        };
        let count = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: {v:?} is not a count"))
        };
        match flag.as_str() {
            "--clients" => args.clients = count(value()?)?.max(1),
            "--inflight" => args.inflight = count(value()?)?.max(1),
            "--payload-bytes" => args.payload_bytes = count(value()?)?,
            "--seconds" => args.duration = seconds(value()?)?,
            "--warmup-seconds" => args.warmup = seconds(value()?)?,
            "--nodes" => args.nodes = count(value()?)?.clamp(1, 9),
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Counters of the whole cluster at one moment.
#[derive(Clone, Copy, Default)]
struct Sample {
    at: Option<Instant>,
    commit: u64,
    fsyncs: u64,
    leader_fsyncs: u64,
    bytes_sent: u64,
}

/// The position in `nodes` of the node that node `at` believes leads, if known.
fn leader_of(nodes: &[RaftNode], at: usize) -> Option<usize> {
    let (id, _) = nodes[at].leader()?;
    nodes.iter().position(|n| n.id() == Some(id))
}

fn sample(nodes: &[RaftNode], leader: usize) -> Result<Sample, String> {
    let mut s = Sample {
        at: Some(Instant::now()),
        ..Sample::default()
    };
    for (i, node) in nodes.iter().enumerate() {
        let m = node.metrics().map_err(|e| e.to_string())?;
        s.fsyncs += m.wal_fsyncs;
        s.bytes_sent += m.transport.bytes_sent;
        if i == leader {
            s.commit = m.commit.0;
            s.leader_fsyncs = m.wal_fsyncs;
        }
    }
    Ok(s)
}

/// Polls `condition` until it holds or `patience` passes.
fn wait_until(
    what: &str,
    patience: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + patience;
    while !condition() {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(10)); // polling interval
    }
    Ok(())
}

fn start_cluster(args: &Args, root: &std::path::Path) -> Result<Vec<RaftNode>, String> {
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let kv = Kv::default();
        let node = RaftNode::open(
            root.join(format!("n{}", i + 1)),
            NodeConfig::new("127.0.0.1:0"),
            kv.fsm(),
        )
        .map_err(|e| format!("open node {}: {e}", i + 1))?;
        if i == 0 {
            node.initialize().map_err(|e| format!("initialize: {e}"))?;
        } else {
            node.join(nodes.first().map(RaftNode::address).unwrap_or_default())
                .map_err(|e| format!("join: {e}"))?;
        }
        nodes.push(node);
    }
    let expected = args.nodes;
    wait_until("every node to be a voter", Duration::from_secs(60), || {
        nodes[0].config().voter_count() == expected
    })?;
    Ok(nodes)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn run(args: &Args) -> Result<String, String> {
    let root = match &args.dir {
        Some(d) => d.join(format!("raft-kv-bench-{}", std::process::id())),
        None => std::env::temp_dir().join(format!("raft-kv-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let result = measure(args, &root);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn measure(args: &Args, root: &std::path::Path) -> Result<String, String> {
    let nodes = Arc::new(start_cluster(args, root)?);
    let payload = bytes::Bytes::from(vec![b'x'; args.payload_bytes]);
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    // Where clients send: the node that answered last as leader.
    let leader = Arc::new(AtomicUsize::new(leader_of(&nodes, 0).unwrap_or(0)));
    let moves = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..args.clients)
        .map(|c| {
            let (nodes, payload) = (Arc::clone(&nodes), payload.clone());
            let (stop, measuring, errors, leader, moves) = (
                Arc::clone(&stop),
                Arc::clone(&measuring),
                Arc::clone(&errors),
                Arc::clone(&leader),
                Arc::clone(&moves),
            );
            let inflight = args.inflight;
            std::thread::spawn(move || {
                let mut latencies_ns = Vec::new();
                let mut in_flight = std::collections::VecDeque::with_capacity(inflight);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) || !in_flight.is_empty() {
                    // Keep `inflight` puts submitted, then wait for the oldest.
                    while !stop.load(Ordering::Relaxed) && in_flight.len() < inflight {
                        let command = KvCommand::Put {
                            key: format!("c{c}-{}", i % 1024),
                            value: payload.clone(),
                        };
                        i += 1;
                        let at = leader.load(Ordering::Relaxed);
                        match nodes[at].submit(command.encode()) {
                            Ok(pending) => in_flight.push_back((Instant::now(), pending)),
                            Err(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                    let Some((started, pending)) = in_flight.pop_front() else {
                        continue;
                    };
                    let result = pending.wait();
                    let took = started.elapsed();
                    if let Err(e) = &result {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if let Error::Request(raft_core::RequestError::NotLeader {
                            leader: hint,
                            ..
                        }) = e
                        {
                            // Follow the hint; without one, ask the others.
                            let next = hint
                                .and_then(|id| nodes.iter().position(|n| n.id() == Some(id)))
                                .or_else(|| (0..nodes.len()).find_map(|i| leader_of(&nodes, i)));
                            match next {
                                Some(i) => {
                                    if leader.swap(i, Ordering::Relaxed) != i {
                                        moves.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                // An election is under way.
                                None => std::thread::sleep(Duration::from_millis(10)),
                            }
                        }
                    } else if measuring.load(Ordering::Relaxed) {
                        latencies_ns.push(took.as_nanos() as u64);
                    }
                }
                latencies_ns
            })
        })
        .collect();
    std::thread::sleep(args.warmup); // the warm-up period itself
    let before = sample(&nodes, leader.load(Ordering::Relaxed))?;
    measuring.store(true, Ordering::SeqCst);
    std::thread::sleep(args.duration); // the measured period itself
    measuring.store(false, Ordering::SeqCst);
    let after = sample(&nodes, leader.load(Ordering::Relaxed))?;
    stop.store(true, Ordering::SeqCst);
    let mut latencies: Vec<u64> = Vec::new();
    for c in clients {
        latencies.extend(c.join().map_err(|_| "a client panicked".to_string())?);
    }
    latencies.sort_unstable();
    let seconds = after
        .at
        .zip(before.at)
        .map_or(0.0, |(a, b)| (a - b).as_secs_f64());
    let entries = after.commit.saturating_sub(before.commit).max(1);
    let leader_fsyncs = after
        .leader_fsyncs
        .saturating_sub(before.leader_fsyncs)
        .max(1);
    let us = |p| percentile(&latencies, p) as f64 / 1_000.0;
    let line = serde_json::json!({
        "nodes": args.nodes,
        "clients": args.clients,
        "in_flight": args.clients * args.inflight,
        "payload_bytes": args.payload_bytes,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "ops": latencies.len(),
        "ops_per_sec": (latencies.len() as f64 / seconds).round(),
        "latency_us_p50": us(0.50),
        "latency_us_p99": us(0.99),
        "latency_us_p999": us(0.999),
        "latency_us_max": latencies.last().copied().unwrap_or(0) as f64 / 1_000.0,
        "fsyncs_per_sec": ((after.fsyncs - before.fsyncs) as f64 / seconds).round(),
        "leader_fsyncs_per_sec": (leader_fsyncs as f64 / seconds).round(),
        "leader_entries_per_fsync": (entries as f64 / leader_fsyncs as f64 * 10.0).round() / 10.0,
        "wire_bytes_per_entry": ((after.bytes_sent - before.bytes_sent) as f64 / entries as f64).round(),
        "errors": errors.load(Ordering::Relaxed),
        "leader_moves": moves.load(Ordering::Relaxed),
    });
    for node in nodes.iter() {
        let _ = node.close();
    }
    Ok(line.to_string())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("raft-kv-bench: {e}");
            }
            eprintln!("usage: {USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raft-kv-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
