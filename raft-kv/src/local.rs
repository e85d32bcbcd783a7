//! `raft-kv local-cluster`: N nodes on 127.0.0.1, data in a new temporary
//! directory, until Ctrl-C.
//!
//! Each node is this same executable, started as a child with
//! `--exit-on-stdin-close` and a pipe as stdin: if this process dies in any
//! way, even by SIGKILL, the pipes close and the children close their nodes
//! and exit. On Ctrl-C (or SIGTERM) it closes the pipes itself, waits for
//! the children, and removes the directory.

use crate::args::LocalArgs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a child may take to bind and bootstrap.
const START_PATIENCE: Duration = Duration::from_secs(60);
/// How long a child may take to close its node after its stdin closed.
const STOP_PATIENCE: Duration = Duration::from_secs(10);

pub(crate) struct Node {
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) raft: String,
    pub(crate) http: String,
    pub(crate) id: u64,
    pub(crate) log: PathBuf,
}

/// The running children; dropping it stops them.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Node>,
}

impl Cluster {
    pub(crate) fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stdin.take(); // EOF: the child closes its node and exits
        }
        let deadline = Instant::now() + STOP_PATIENCE;
        for node in &mut self.nodes {
            loop {
                match node.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = node.child.kill();
                        let _ = node.child.wait();
                        break;
                    }
                    // Polling a child's exit with a deadline.
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.nodes.clear();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn port_address(base: u16, offset: u16) -> String {
    let port = if base == 0 { 0 } else { base + offset };
    format!("127.0.0.1:{port}")
}

/// The raft addresses of nodes 1..=N: fixed ports from --base-port, or free
/// ports drawn outside the OS's ephemeral range (see [`raft_kv::ports`]).
pub(crate) fn raft_addresses(args: &LocalArgs) -> Result<Vec<String>, String> {
    if args.base_port != 0 {
        return Ok((0..args.nodes)
            .map(|i| port_address(args.base_port, i * 2))
            .collect());
    }
    raft_kv::ports::free_loopback_addresses(args.nodes.into())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// A token for a new cluster: a local cluster is never meant to meet
/// another, even one left running from an earlier run on the same ports.
pub(crate) fn fresh_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// The flags that start node `n` (1-based) of the cluster of `addresses`
/// (repeated on a restart: a bootstrap of the same list is a no-op).
pub(crate) fn bootstrap_flags(addresses: &[String], token: u64, n: u16) -> Vec<String> {
    let list = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    [
        "--bootstrap",
        &list,
        "--cluster-token",
        &token.to_string(),
        "--id",
        &n.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// Starts node `n` (1-based) with `start` (its --bootstrap flags) and waits
/// for its `ready` line.
pub(crate) fn start_node(
    args: &LocalArgs,
    dir: &Path,
    n: u16,
    raft: &str,
    start: &[String],
) -> Result<Node, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let data = dir.join(format!("n{n}"));
    let log = dir.join(format!("n{n}.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let offset = (n - 1) * 2;
    let mut command = Command::new(exe);
    command
        .arg("--data")
        .arg(&data)
        .args(["--raft", raft])
        .args(["--http", &port_address(args.base_port, offset + 1)])
        .args(start)
        .args(args.tuning.to_flags())
        .arg("--exit-on-stdin-close")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start node {n}: {e}"))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout is piped");
    // The child's stdout lines, read on a thread so a silent child cannot hang us.
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut node = Node {
        child,
        stdin,
        raft: String::new(),
        http: String::new(),
        id: 0,
        log,
    };
    let deadline = Instant::now() + START_PATIENCE;
    while node.id == 0 {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| format!("node {n} did not start; see {}", node.log.display()))?;
        if let Some(rest) = line.strip_prefix("listening ") {
            for field in rest.split_whitespace() {
                match field.split_once('=') {
                    Some(("raft", a)) => node.raft = a.to_string(),
                    Some(("http", a)) => node.http = a.to_string(),
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("ready id=") {
            node.id = rest
                .split_whitespace()
                .next()
                .and_then(|id| id.parse().ok())
                .unwrap_or(u64::MAX);
        }
    }
    Ok(node)
}

pub fn run(args: &LocalArgs) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(e) = registered {
            eprintln!("raft-kv: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let dir = match tempfile::Builder::new().prefix("raft-kv-local-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("raft-kv: cannot create a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = run_in(args, dir.path(), &stop);
    if args.keep {
        say!("data kept in {}", dir.keep().display());
    } else if let Err(e) = dir.close() {
        eprintln!("raft-kv: cannot remove the data directory: {e}");
    }
    code
}

fn run_in(args: &LocalArgs, dir: &Path, stop: &AtomicBool) -> ExitCode {
    let mut cluster = Cluster { nodes: Vec::new() };
    let addresses = match raft_addresses(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("raft-kv: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = fresh_token();
    for (n, raft) in (1..=args.nodes).zip(&addresses) {
        let start = bootstrap_flags(&addresses, token, n);
        match start_node(args, dir, n, raft, &start) {
            Ok(node) => cluster.nodes.push(node),
            Err(e) => {
                eprintln!("raft-kv: {e}");
                return ExitCode::FAILURE;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return ExitCode::SUCCESS;
        }
    }
    print_instructions(&cluster, dir);
    while !stop.load(Ordering::SeqCst) {
        for node in &mut cluster.nodes {
            if let Ok(Some(status)) = node.child.try_wait() {
                eprintln!(
                    "raft-kv: node {} exited ({status}); see {}",
                    node.id,
                    node.log.display()
                );
                return ExitCode::FAILURE;
            }
        }
        // Waiting for Ctrl-C; checks the children meanwhile.
        std::thread::sleep(Duration::from_millis(100));
    }
    say!("stopping {} nodes", cluster.nodes.len());
    cluster.stop();
    ExitCode::SUCCESS
}

fn print_instructions(cluster: &Cluster, dir: &Path) {
    let first = &cluster.nodes[0];
    say!(
        "a local cluster of {} nodes is running; data and logs in {}",
        cluster.nodes.len(),
        dir.display()
    );
    for node in &cluster.nodes {
        say!(
            "  node {}: http://{}  raft {}  pid {}  log {}",
            node.id,
            node.http,
            node.raft,
            node.child.id(),
            node.log.display()
        );
    }
    let http = &first.http;
    say!(
        "\ntry (any node answers; a follower redirects writes and reads to the leader, so use curl -L):\n\
         \x20 curl -L -X PUT --data-binary world http://{http}/kv/hello\n\
         \x20 curl -L http://{http}/kv/hello\n\
         \x20 curl -L -X POST -d '{{\"from\": \"world\", \"to\": \"raft\"}}' http://{http}/kv/hello/cas\n\
         \x20 curl -L -X DELETE http://{http}/kv/hello\n\
         \x20 curl http://{http}/status\n\
         \nCtrl-C stops the nodes and removes {}.",
        dir.display()
    );
}
