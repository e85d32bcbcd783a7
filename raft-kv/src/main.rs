//! `raft-kv`: the example replicated key-value server of raft-io-std.
//!
//! One process runs one node: a [`RaftNode`] whose state machine is the
//! [`raft_kv::kv`] map, and an HTTP server (hyper on tokio, [`server`]) in
//! front of it. `raft-kv --help` and `docs/operations.md` tell how to run
//! it; [`http`] has the API.
//!
//! A follower must be able to send clients to the leader's HTTP address, and
//! `GET /status` shows every member's. Each node sees that the replicated
//! state (`KvCommand::SetHttp`) holds its own HTTP address: the leader
//! proposes it itself, a follower asks the leader to
//! (`PUT /members/{id}/http`), whenever the state holds no address or
//! another one for it.

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
mod saturate;
mod server;
mod shutdown;

use args::{Cli, NodeArgs, Start, Sub};
use clap::Parser;
use raft_core::{ClusterId, Duration as CoreDuration, NodeId, Role};
use raft_io_std::{NodeConfig, RaftNode};
use raft_kv::kv::{Kv, KvCommand};
use shutdown::Shutdown;
use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the announcer looks at the role while this node's HTTP address
/// is not recorded (a new leader records it this soon).
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How often the main thread checks that the node still runs, and the
/// announcer that the recorded HTTP address is still this node's.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How often a follower whose HTTP address is not recorded asks the leader
/// to record it.
const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(250);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match &cli.command {
        Some(Sub::LocalCluster(local)) => &local.tuning.log,
        Some(Sub::Saturate(load)) => &load.tuning.log,
        None => &cli.node.tuning.log,
    };
    if let Err(e) = log::install(filter) {
        eprintln!("raft-kv: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Sub::LocalCluster(local)) => local::run(&local),
        Some(Sub::Saturate(load)) => saturate::run(&load),
        None => {
            let node = cli.node;
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

/// A flag clap requires whenever no subcommand is given.
fn required<'a, T: ?Sized>(value: Option<&'a T>, flag: &str) -> &'a T {
    value.unwrap_or_else(|| panic!("clap requires {flag} without a subcommand"))
}

fn data_dir(args: &NodeArgs) -> &Path {
    required(args.data.as_deref(), "--data")
}

fn node_config(args: &NodeArgs) -> NodeConfig {
    let mut config = NodeConfig::new(required(args.raft.as_deref(), "--raft"));
    let t = &args.tuning;
    let options = &mut config.options;
    let policy = &mut options.snapshot_policy;
    if let Some(n) = t.snapshot_entries_max {
        policy.log_entries_max = n;
    }
    if let Some(n) = t.snapshot_log_bytes_min {
        policy.log_bytes_min = n;
    }
    if let Some(n) = t.snapshot_log_percent {
        policy.log_percent = n;
    }
    if let Some(n) = t.snapshot_trailing {
        options.snapshot_trailing_entries = n;
    }
    if let Some(n) = t.log_cache_bytes_max {
        options.log_cache_bytes_max = n;
    }
    if let Some(n) = t.stream_budget_bytes {
        options.stream_budget_bytes = n;
    }
    if let Some(ms) = t.election_timeout_ms {
        options.election_timeout = CoreDuration::from_millis(ms);
    }
    if let Some(ms) = t.heartbeat_ms {
        options.heartbeat_interval = CoreDuration::from_millis(ms);
    }
    config.request_timeout = t.request_timeout();
    config
}

fn limits(t: &args::Tuning) -> server::Limits {
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    server::Limits {
        connections_max: size(t.connections_max),
        header_bytes_max: size(t.header_bytes_max),
        header_timeout: Duration::from_millis(t.header_timeout_ms),
        body_timeout: Duration::from_millis(t.body_timeout_ms),
        write_timeout: Duration::from_millis(t.write_timeout_ms),
        body_memory_bytes: size(t.body_memory_bytes),
        threads: size(t.http_threads),
    }
}

fn serve(args: &NodeArgs) -> Result<(), String> {
    let t = &args.tuning;
    if let (Some(ms), Some(hb)) = (t.election_timeout_ms, t.heartbeat_ms) {
        if hb * 2 > ms {
            return Err(format!(
                "--heartbeat-ms {hb} must be at most half of --election-timeout-ms {ms}"
            ));
        }
    }
    let shutdown = Shutdown::install(args.exit_on_stdin_close)?;
    let http = required(args.http.as_deref(), "--http");
    let listener =
        TcpListener::bind(http).map_err(|e| format!("cannot listen for HTTP on {http}: {e}"))?;
    let http_address = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let kv = Kv::default();
    let data = data_dir(args);
    let node = RaftNode::open(data, node_config(args), kv.fsm())
        .map_err(|e| format!("cannot open {}: {e}", data.display()))?;
    let node = Arc::new(node);
    say!("listening raft={} http={http_address}", node.address());

    let id = become_member(&node, args)?;
    let cluster = node.cluster_id().map_or(0, |c| c.0);
    say!("ready id={} cluster={cluster}", id.0);
    tracing::info!(
        "node {id} of cluster {cluster}: raft {} http {http_address}",
        node.address()
    );

    let service = Arc::new(http::Service {
        node: Arc::clone(&node),
        kv: kv.clone(),
        http: http_address.clone(),
        timeout: t.request_timeout(),
    });
    let server = server::Server::start(listener, service, limits(t))
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    {
        let (node, kv, shutdown) = (Arc::clone(&node), kv.clone(), Arc::clone(&shutdown));
        std::thread::Builder::new()
            .name("announce-http".into())
            .spawn(move || announce_http(&node, &kv, id, &http_address, &shutdown))
            .map_err(|e| e.to_string())?;
    }

    wait_for_shutdown(&node, &shutdown);
    tracing::info!("closing");
    server.stop();
    node.close()
        .map_err(|e| format!("node stopped with an error: {e}"))
}

/// Bootstraps, initializes, joins or resumes; returns the node's id.
fn become_member(node: &RaftNode, args: &NodeArgs) -> Result<NodeId, String> {
    let data = data_dir(args);
    let id = match (node.id(), args.start()) {
        // A new directory takes its place in the list; a restart repeats
        // the flags, and the node checks its directory is of that cluster.
        (_, Start::Bootstrap { id, bootstrap }) => {
            node.bootstrap(id, &bootstrap).map_err(|e| {
                format!(
                    "bootstrap as node {id} of cluster {} failed ({} holds {}): {e}",
                    bootstrap.cluster_id().0,
                    data.display(),
                    node.id().map_or("no node".to_string(), |n| format!(
                        "node {n} of cluster {:?}",
                        node.cluster_id().map(|c| c.0)
                    ))
                )
            })?;
            id
        }
        (Some(id), Start::Join(address)) => {
            // A restart may repeat its --join; a directory of another
            // cluster must not quietly resume that cluster instead.
            let ours = node.cluster_id();
            let theirs = node
                .probe_cluster(&address)
                .map_err(|e| format!("cannot ask {address} for its cluster: {e}"))?;
            if theirs != ours {
                let name = |c: Option<ClusterId>| c.map_or("none".to_string(), |c| c.0.to_string());
                return Err(format!(
                    "{} belongs to cluster {} as node {id}, but --join {address} is in cluster {}: \
                     give this node a new data directory to join that cluster",
                    data.display(),
                    name(ours),
                    name(theirs)
                ));
            }
            id
        }
        (Some(id), start) => {
            if start == Start::Init {
                tracing::info!(
                    "{} already belongs to cluster {:?} as node {id}; --init ignored",
                    data.display(),
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
            .join(&address)
            .map_err(|e| format!("join through {address} failed: {e}"))?,
        (None, Start::Resume) => {
            return Err(format!(
                "{} holds no node: start it with --bootstrap (a new cluster from its member \
                 list), --init (a new cluster of one) or --join ADDR",
                data.display()
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

/// Sees that the replicated state holds this node's HTTP address: as leader
/// it proposes it; as follower it asks the leader to, over HTTP.
fn announce_http(node: &RaftNode, kv: &Kv, id: NodeId, http: &str, shutdown: &Shutdown) {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut next_ask = Instant::now();
    loop {
        let recorded = kv.http_address(id).as_deref() == Some(http);
        if !recorded {
            match node.role() {
                Role::Leader => {
                    let command = KvCommand::SetHttp {
                        node: id,
                        address: http.to_string(),
                    };
                    match node.propose(command.encode()) {
                        Ok(index) => tracing::info!("recorded HTTP address {http} at {index}"),
                        Err(e) => tracing::debug!("recording HTTP address failed: {e}"),
                    }
                }
                _ if Instant::now() >= next_ask => {
                    next_ask = Instant::now() + ANNOUNCE_INTERVAL;
                    let leader_http = node
                        .leader()
                        .and_then(|(leader, _)| kv.http_address(leader));
                    if let Some(leader_http) = leader_http {
                        let url = format!("http://{leader_http}/members/{}/http", id.0);
                        match agent.put(&url).send(http) {
                            Ok(r) if r.status() == 200 => {
                                tracing::info!("asked {leader_http} to record HTTP address {http}")
                            }
                            Ok(r) => tracing::debug!("{url} answered {}", r.status()),
                            Err(e) => tracing::debug!("{url}: {e}"),
                        }
                    }
                }
                _ => {}
            }
        }
        // A wait for the next look at the role, not synchronization.
        let pause = if recorded {
            CHECK_INTERVAL
        } else {
            POLL_INTERVAL
        };
        if shutdown.wait(pause) {
            return;
        }
    }
}

/// Returns on SIGINT/SIGTERM, when stdin closes (if asked), or when the node
/// stops by itself (a storage or FSM failure).
fn wait_for_shutdown(node: &RaftNode, shutdown: &Shutdown) {
    while !shutdown.wait(CHECK_INTERVAL) {
        if node.metrics().is_err() {
            tracing::error!("the node stopped");
            return;
        }
    }
}
