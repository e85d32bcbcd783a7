//! `raft-kv saturate`: a local cluster under sustained writes, and what the
//! load cost it.
//!
//! It starts the nodes as `local-cluster` does (real processes, real fsync,
//! loopback TCP), runs `--clients` writers for `--seconds`, and samples every
//! node's `/status` and resident memory once a second. At the end it prints
//! one JSON line:
//!
//! | field | meaning |
//! |---|---|
//! | `ops`, `ops_per_sec`, `errors` | PUTs answered 200, their rate, and the rest |
//! | `errors_by_kind` | the rest by kind: `http 503`, `client timeout`, `io ...` |
//! | `latency_ms_p50`, `_p99`, `_max` | from a PUT's send until its answer |
//! | `elections` | terms begun after the first leader's (each is an election; pre-votes that failed raise no term) |
//! | `leaders_seen` | distinct (term, leader) pairs observed |
//! | `nodes[]` | per node: `rss_mib_max`, `snapshots` (taken), `snapshot_ms_max`, `snapshot_mib_last` |
//! | `down` | with `--down-at`: the follower, its catch-up time after the restart, and whether it got a snapshot |
//!
//! Sampling once a second can miss a term that lasted less than a second;
//! `elections` counts terms, so it misses none.

use crate::args::{LocalArgs, SaturateArgs};
use crate::local::{Cluster, bootstrap_flags, fresh_token, raft_addresses, start_node};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long one PUT may take before the client counts it as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client waits before retrying after a refusal (no leader yet,
/// a node down): a backoff, not a synchronization.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// How long a restarted follower may take to catch up before the run says so.
const CATCH_UP_PATIENCE: Duration = Duration::from_secs(1800);

/// What the monitor learned about one node.
#[derive(Default)]
struct NodeFigures {
    rss_kib_max: u64,
    /// Snapshots taken by earlier processes of this node (a restart counts
    /// from zero again).
    snapshots_before: u64,
    snapshots: u64,
    snapshot_ms_max: u64,
    snapshot_bytes_last: u64,
}

pub fn run(args: &SaturateArgs) -> ExitCode {
    let dir = match tempfile::Builder::new()
        .prefix("raft-kv-saturate-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("raft-kv: cannot create a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = run_in(args, dir.path());
    if args.keep {
        eprintln!("data kept in {}", dir.keep().display());
    }
    match result {
        Ok(report) => {
            say!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raft-kv saturate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_in(args: &SaturateArgs, dir: &Path) -> Result<Value, String> {
    let local = LocalArgs {
        nodes: args.nodes,
        base_port: 0,
        keep: args.keep,
        tuning: args.tuning.clone(),
    };
    let addresses = raft_addresses(&local)?;
    let token = fresh_token();
    let mut cluster = Cluster { nodes: Vec::new() };
    for (n, raft) in (1..=args.nodes).zip(&addresses) {
        let flags = bootstrap_flags(&addresses, token, n);
        cluster
            .nodes
            .push(start_node(&local, dir, n, raft, &flags)?);
    }
    let agent = agent();
    let https = Arc::new(RwLock::new(
        cluster
            .nodes
            .iter()
            .map(|n| n.http.clone())
            .collect::<Vec<_>>(),
    ));
    let first = wait_for_leader(&agent, &https.read().unwrap(), Duration::from_secs(60))?;
    eprintln!(
        "saturate: {} nodes up, leader n{} in term {}; {} clients for {} s",
        args.nodes, first.1, first.0, args.clients, args.seconds
    );

    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let value = "v".repeat(args.value_bytes);
    let clients: Vec<_> = (0..args.clients)
        .map(|c| {
            let (stop, ops, errors, latencies) = (
                Arc::clone(&stop),
                Arc::clone(&ops),
                Arc::clone(&errors),
                Arc::clone(&latencies),
            );
            let (https, value, keys) = (Arc::clone(&https), value.clone(), args.keys);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                client(c, &https, &value, keys, &stop, &ops, &errors, &mut mine);
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();

    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut figures: Vec<NodeFigures> = (0..cluster.nodes.len())
        .map(|_| NodeFigures::default())
        .collect();
    let mut max_term = first.0;
    let mut leaders = std::collections::BTreeSet::from([first]);
    let mut down: Option<Down> = None;
    let mut down_report = Value::Null;
    let mut next_progress = started + Duration::from_secs(10);
    while Instant::now() < end {
        // Sampling pace: once a second.
        std::thread::sleep(Duration::from_secs(1));
        let elapsed = started.elapsed().as_secs();
        let statuses: Vec<Option<Value>> = https
            .read()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let alive = down
                    .as_ref()
                    .is_none_or(|d| d.node != i || d.restarted.is_some());
                alive.then(|| status(&agent, h)).flatten()
            })
            .collect();
        for (i, s) in statuses.iter().enumerate() {
            if let Some(rss) = rss_kib(cluster.nodes[i].child.id()) {
                figures[i].rss_kib_max = figures[i].rss_kib_max.max(rss);
            }
            let Some(s) = s else { continue };
            let term = s["term"].as_u64().unwrap_or(0);
            max_term = max_term.max(term);
            if let Some(leader) = s["leader"]["id"].as_u64() {
                leaders.insert((term, leader));
            }
            let snaps = &s["snapshots"];
            let f = &mut figures[i];
            let taken = snaps["taken"].as_u64().unwrap_or(0);
            f.snapshots = f.snapshots.max(f.snapshots_before + taken);
            f.snapshot_ms_max = f.snapshot_ms_max.max(snaps["max_ms"].as_u64().unwrap_or(0));
            if taken > 0 {
                f.snapshot_bytes_last = snaps["last_bytes"].as_u64().unwrap_or(0);
            }
        }
        if let Some(at) = args.down_at {
            down_step(
                args,
                at,
                elapsed,
                &local,
                dir,
                &addresses,
                token,
                &agent,
                &https,
                &statuses,
                &mut cluster,
                &mut down,
                &mut down_report,
                &mut figures,
            )?;
        }
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(10);
            eprintln!(
                "saturate: {elapsed} s, {} ops, {} errors, term {max_term}, rss MiB {:?}",
                ops.load(Ordering::Relaxed),
                errors.total(),
                figures
                    .iter()
                    .map(|f| f.rss_kib_max / 1024)
                    .collect::<Vec<_>>()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    if let Some(d) = &down
        && d.caught_up.is_none()
    {
        down_report = json!({ "node": d.node + 1, "caught_up_s": null,
            "note": "the run ended before the restarted follower caught up" });
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |&us| us as f64 / 1000.0)
    };
    let ops = ops.load(Ordering::Relaxed);
    let report = json!({
        "nodes_count": args.nodes,
        "clients": args.clients,
        "value_bytes": args.value_bytes,
        "seconds": seconds,
        "ops": ops,
        "ops_per_sec": ops as f64 / seconds,
        "errors": errors.total(),
        "errors_by_kind": errors.by_kind(),
        "latency_ms_p50": pct(0.50),
        "latency_ms_p99": pct(0.99),
        "latency_ms_max": pct(1.0),
        "elections": max_term - first.0,
        "leaders_seen": leaders.len(),
        "nodes": figures.iter().enumerate().map(|(i, f)| json!({
            "id": i + 1,
            "rss_mib_max": f.rss_kib_max / 1024,
            "snapshots": f.snapshots,
            "snapshot_ms_max": f.snapshot_ms_max,
            "snapshot_mib_last": f.snapshot_bytes_last as f64 / (1 << 20) as f64,
        })).collect::<Vec<_>>(),
        "down": down_report,
    });
    cluster.stop();
    Ok(report)
}

/// A follower taken down for a while.
struct Down {
    node: usize,
    restarted: Option<(Instant, u64)>,
    caught_up: Option<Duration>,
    snapshot_index_before: u64,
}

/// Kills a follower at `at` seconds, restarts it `down_for` later, and
/// reports once it applied what the leader had committed at the restart.
#[allow(clippy::too_many_arguments)]
fn down_step(
    args: &SaturateArgs,
    at: u64,
    elapsed: u64,
    local: &LocalArgs,
    dir: &Path,
    addresses: &[String],
    token: u64,
    agent: &ureq::Agent,
    https: &RwLock<Vec<String>>,
    statuses: &[Option<Value>],
    cluster: &mut Cluster,
    down: &mut Option<Down>,
    report: &mut Value,
    figures: &mut [NodeFigures],
) -> Result<(), String> {
    let leader_commit = || {
        statuses
            .iter()
            .flatten()
            .find(|s| s["role"] == "leader")
            .and_then(|s| s["commit"].as_u64())
    };
    match down {
        None if elapsed >= at => {
            let Some(i) = statuses
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s["role"] == "follower"))
            else {
                return Ok(()); // no follower this second: try the next
            };
            let snapshot_index_before = statuses[i]
                .as_ref()
                .map_or(0, |s| s["snapshot_index"].as_u64().unwrap_or(0));
            let node = &mut cluster.nodes[i];
            let _ = node.child.kill();
            let _ = node.child.wait();
            eprintln!("saturate: {elapsed} s, killed follower n{}", i + 1);
            *down = Some(Down {
                node: i,
                restarted: None,
                caught_up: None,
                snapshot_index_before,
            });
        }
        Some(d) if d.restarted.is_none() && elapsed >= at + args.down_for => {
            let Some(commit) = leader_commit() else {
                return Ok(());
            };
            let n = d.node as u16 + 1;
            let flags = bootstrap_flags(addresses, token, n);
            let node = start_node(local, dir, n, &addresses[d.node], &flags)?;
            https.write().unwrap()[d.node] = node.http.clone();
            cluster.nodes[d.node] = node;
            // A new process: its memory and counters start again.
            let f = &mut figures[d.node];
            f.rss_kib_max = 0;
            f.snapshots_before = f.snapshots;
            d.restarted = Some((Instant::now(), commit));
            eprintln!("saturate: {elapsed} s, restarted n{n}; catching up to {commit}");
        }
        Some(d) if d.caught_up.is_none() => {
            let Some((since, target)) = d.restarted else {
                return Ok(());
            };
            let h = https.read().unwrap()[d.node].clone();
            let s = status(agent, &h);
            let applied = s.as_ref().and_then(|s| s["applied"].as_u64()).unwrap_or(0);
            if applied >= target {
                let took = since.elapsed();
                d.caught_up = Some(took);
                let snapshot_index = s
                    .as_ref()
                    .and_then(|s| s["snapshot_index"].as_u64())
                    .unwrap_or(0);
                // A snapshot newer than its own, which it did not take since
                // the restart: the leader sent it.
                let f = &figures[d.node];
                let by_snapshot =
                    snapshot_index > d.snapshot_index_before && f.snapshots == f.snapshots_before;
                *report = json!({
                    "node": d.node + 1,
                    "down_s": args.down_for,
                    "caught_up_to": target,
                    "caught_up_s": took.as_secs_f64(),
                    "by_snapshot": by_snapshot,
                });
                eprintln!(
                    "saturate: n{} caught up in {:.1} s ({})",
                    d.node + 1,
                    took.as_secs_f64(),
                    if by_snapshot { "snapshot" } else { "log" }
                );
            } else if since.elapsed() > CATCH_UP_PATIENCE {
                return Err(format!("n{} did not catch up", d.node + 1));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Answers other than 200 (and redirects to the leader), by kind: an HTTP
/// status, the client's own timeout, or an I/O error.
#[derive(Default)]
struct Errors(Mutex<BTreeMap<String, u64>>);

impl Errors {
    fn record(&self, kind: String) {
        *self.0.lock().unwrap().entry(kind).or_default() += 1;
    }

    fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }

    fn by_kind(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
}

/// One writer: PUTs until `stop`, following the leader.
#[allow(clippy::too_many_arguments)]
fn client(
    c: usize,
    https: &RwLock<Vec<String>>,
    value: &str,
    keys: u64,
    stop: &AtomicBool,
    ops: &AtomicU64,
    errors: &Errors,
    latencies_us: &mut Vec<u32>,
) {
    let mut agent = agent();
    let mut target = {
        // One guard: a second read lock taken while a writer (a restart)
        // waits may deadlock.
        let nodes = https.read().unwrap();
        nodes[c % nodes.len()].clone()
    };
    let mut next = c;
    let mut seq: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = if keys == 0 {
            format!("c{c}-{seq}")
        } else {
            format!("c{c}-{}", seq % keys)
        };
        let sent = Instant::now();
        let answer = agent
            .put(&format!("http://{target}/kv/{key}"))
            .send(value.as_bytes());
        match answer {
            Ok(r) if r.status() == 200 => {
                latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                ops.fetch_add(1, Ordering::Relaxed);
                seq += 1;
            }
            Ok(r) if r.status() == 307 => {
                let location = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_default();
                let host = location.trim_start_matches("http://");
                target = host.split('/').next().unwrap_or_default().to_string();
            }
            other => {
                errors.record(match &other {
                    Ok(r) => format!("http {}", r.status().as_u16()),
                    Err(ureq::Error::Timeout(_)) => "client timeout".to_string(),
                    Err(ureq::Error::Io(e)) => format!("io {:?}", e.kind()),
                    Err(_) => "other transport error".to_string(),
                });
                if other.is_err() {
                    // Pooled connections to a killed process are dead.
                    agent = self::agent();
                }
                next += 1;
                let nodes = https.read().unwrap();
                target = nodes[next % nodes.len()].clone();
                drop(nodes);
                std::thread::sleep(RETRY_BACKOFF);
            }
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

fn status(agent: &ureq::Agent, http: &str) -> Option<Value> {
    let mut r = agent.get(&format!("http://{http}/status")).call().ok()?;
    if r.status() != 200 {
        return None;
    }
    serde_json::from_slice(&r.body_mut().read_to_vec().ok()?).ok()
}

/// The first (term, leader id) every node agrees on, within `patience`.
fn wait_for_leader(
    agent: &ureq::Agent,
    https: &[String],
    patience: Duration,
) -> Result<(u64, u64), String> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let seen: Vec<Option<(u64, u64)>> = https
            .iter()
            .map(|h| {
                let s = status(agent, h)?;
                Some((s["term"].as_u64()?, s["leader"]["id"].as_u64()?))
            })
            .collect();
        if let Some(Some(first)) = seen.first()
            && seen.iter().all(|s| s.as_ref() == Some(first))
        {
            return Ok(*first);
        }
        // Polling the nodes' status until they agree, with a deadline.
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("no leader agreed on within a minute".into())
}

/// The resident set size of process `pid` in KiB, from `/proc` (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
