//! `raft-kv`: the example replicated key-value server of raft-io-std.
//!
//! One process runs one node: a [`RaftNode`] whose state machine is the
//! [`raft_io_std::kv`] map, and an HTTP server (`tiny_http`) in front of it.
//! `raft-kv --help` and `docs/operations.md` tell how to run it;
//! [`http`] has the API.
//!
//! A follower must be able to send clients to the leader's HTTP address. A
//! node records its own HTTP address in the replicated state
//! (`KvCommand::SetHttp`) whenever it is the leader and the state holds no
//! address or another one for it; followers read it from there.

/// `println!` that ignores a closed stdout (`raft-kv local-cluster | head`,
/// or a parent that stopped reading) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod args;
mod http;
mod local;
mod log;

use args::{Command, NodeArgs, Start};
use raft_core::{Duration as CoreDuration, NodeId, Role};
use raft_io_std::kv::{Kv, KvCommand};
use raft_io_std::{NodeConfig, RaftNode};
use std::io::Read;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the main thread checks for a signal, a closed stdin or a stopped
/// node, and the announcer for a new leadership.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

fn main() -> ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("raft-kv: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Command::Local(local) => {
            log::StderrLog::install(local.tuning.log);
            local::run(&local)
        }
        Command::Node(node) => {
            log::StderrLog::install(node.tuning.log);
            match serve(&node) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("raft-kv: {e}");
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Set by SIGINT or SIGTERM (a second one kills at once), or when stdin closes.
fn shutdown_flag(exit_on_stdin_close: bool) -> Result<Arc<AtomicBool>, String> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    if exit_on_stdin_close {
        let flag = Arc::clone(&flag);
        std::thread::Builder::new()
            .name("stdin-watch".into())
            .spawn(move || {
                let mut sink = [0u8; 256];
                let mut stdin = std::io::stdin();
                while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                flag.store(true, Ordering::SeqCst);
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(flag)
}

fn node_config(args: &NodeArgs) -> NodeConfig {
    let mut config = NodeConfig::new(args.raft.clone());
    let t = &args.tuning;
    let options = &mut config.options;
    if let Some(n) = t.snapshot_threshold {
        options.snapshot_threshold = n;
    }
    if let Some(n) = t.snapshot_trailing {
        options.snapshot_trailing_entries = n;
    }
    if let Some(ms) = t.election_timeout_ms {
        options.election_timeout = CoreDuration::from_millis(ms);
    }
    if let Some(ms) = t.heartbeat_ms {
        options.heartbeat_interval = CoreDuration::from_millis(ms);
    }
    config.request_timeout = t.request_timeout;
    config
}

fn serve(args: &NodeArgs) -> Result<(), String> {
    let t = &args.tuning;
    if let (Some(ms), Some(hb)) = (t.election_timeout_ms, t.heartbeat_ms) {
        if hb >= ms {
            return Err(format!(
                "--heartbeat-ms {hb} must be below --election-timeout-ms {ms}"
            ));
        }
    }
    let shutdown = shutdown_flag(args.exit_on_stdin_close)?;
    let listener = TcpListener::bind(&args.http)
        .map_err(|e| format!("cannot listen for HTTP on {}: {e}", args.http))?;
    let http_address = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let kv = Kv::default();
    let node = RaftNode::open(&args.data, node_config(args), kv.fsm())
        .map_err(|e| format!("cannot open {}: {e}", args.data.display()))?;
    let node = Arc::new(node);
    say!("listening raft={} http={http_address}", node.address());

    let id = become_member(&node, args)?;
    let cluster = node.cluster_id().map_or(0, |c| c.0);
    say!("ready id={} cluster={cluster}", id.0);
    tracing::info!(
        "node {id} of cluster {cluster}: raft {} http {http_address}",
        node.address()
    );

    let server = Arc::new(
        tiny_http::Server::from_listener(listener, None)
            .map_err(|e| format!("cannot start the HTTP server: {e}"))?,
    );
    let service = Arc::new(http::Service {
        node: Arc::clone(&node),
        kv: kv.clone(),
        http: http_address.clone(),
        timeout: t.request_timeout,
    });
    for i in 0..t.http_threads {
        let (server, service) = (Arc::clone(&server), Arc::clone(&service));
        std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || {
                while let Ok(request) = server.recv() {
                    service.handle(request);
                }
            })
            .map_err(|e| e.to_string())?;
    }
    {
        let (node, kv, shutdown) = (Arc::clone(&node), kv.clone(), Arc::clone(&shutdown));
        std::thread::Builder::new()
            .name("announce-http".into())
            .spawn(move || announce_http(&node, &kv, id, &http_address, &shutdown))
            .map_err(|e| e.to_string())?;
    }

    wait_for_shutdown(&node, &shutdown);
    tracing::info!("closing");
    server.unblock();
    node.close()
        .map_err(|e| format!("node stopped with an error: {e}"))
}

/// Initializes, joins or resumes; returns the node's id.
fn become_member(node: &RaftNode, args: &NodeArgs) -> Result<NodeId, String> {
    let id = match (node.id(), &args.start) {
        (Some(id), start) => {
            if *start != Start::Resume {
                tracing::info!(
                    "{} already belongs to cluster {:?} as node {id}; --init/--join ignored",
                    args.data.display(),
                    node.cluster_id()
                );
            }
            id
        }
        (None, Start::Init) => {
            if let Some(want) = args.id.filter(|&want| want != 1) {
                return Err(format!(
                    "--init makes the first node of a cluster, whose id is 1, not {want}"
                ));
            }
            node.initialize()
                .map_err(|e| format!("initialize failed: {e}"))?;
            NodeId(1)
        }
        (None, Start::Join(address)) => node
            .join(address)
            .map_err(|e| format!("join through {address} failed: {e}"))?,
        (None, Start::Resume) => {
            return Err(format!(
                "{} holds no node: start it with --init (a new cluster) or --join ADDR",
                args.data.display()
            ));
        }
    };
    match args.id {
        Some(want) if want != id.0 => Err(format!(
            "this node is {id}, not the --id {want} asked for (ids are assigned by the cluster)"
        )),
        _ => Ok(id),
    }
}

/// Records this node's HTTP address in the replicated state whenever it
/// leads and the state does not hold that address for it yet.
fn announce_http(node: &RaftNode, kv: &Kv, id: NodeId, http: &str, shutdown: &AtomicBool) {
    while !shutdown.load(Ordering::SeqCst) {
        if node.state() == Role::Leader && kv.http_address(id).as_deref() != Some(http) {
            let command = KvCommand::SetHttp {
                node: id,
                address: http.to_string(),
            };
            match node.apply(command.encode()) {
                Ok(index) => tracing::info!("recorded HTTP address {http} at {index}"),
                Err(e) => tracing::debug!("recording HTTP address failed: {e}"),
            }
        }
        // A wait for the next check of the role, not synchronization.
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Returns on SIGINT/SIGTERM, when stdin closes (if asked), or when the node
/// stops by itself (a storage or FSM failure).
fn wait_for_shutdown(node: &RaftNode, shutdown: &AtomicBool) {
    let mut polls = 0u64;
    while !shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(POLL_INTERVAL);
        polls += 1;
        // Every second: is the node still running?
        if polls % 50 == 0 && node.metrics().is_err() {
            tracing::error!("the node stopped");
            return;
        }
    }
}
