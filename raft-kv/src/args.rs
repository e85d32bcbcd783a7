//! The command line of `raft-kv` (clap, derived).

use clap::{Args, Parser, Subcommand};
use raft_core::{Bootstrap, NodeId};
use std::path::PathBuf;
use std::time::Duration;

/// raft-kv: a replicated key-value server over HTTP (an example of raft-io-std).
///
/// A new data directory needs --bootstrap (every member of a new cluster
/// started with the same list and --cluster-token, each with its own --id),
/// --init (the first node of a new cluster: it gets id 1) or --join (any
/// member's raft address: the leader assigns the next id). A directory that
/// already belongs to a cluster resumes: restart a node with the same
/// --data, --raft and --http as before (repeating its --bootstrap flags is
/// fine; a --bootstrap or --join that names another cluster is refused).
///
/// With --init and --join, ids are assigned by the cluster: --id N only
/// checks that the node is (or became) N, and refuses to start otherwise.
///
/// On stdout, one line each, for scripts: `listening raft=ADDR http=ADDR`
/// once both listeners are bound (port 0 picks one), then `ready id=N
/// cluster=ID` once the node is a member.
#[derive(Debug, Parser)]
#[command(
    name = "raft-kv",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Sub>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// N nodes on 127.0.0.1 with their data in a new temporary directory,
    /// until Ctrl-C, when it stops them and removes the directory (unless
    /// --keep).
    LocalCluster(LocalArgs),
    /// A local cluster under sustained writes for a while, then one JSON
    /// line: throughput, latency, elections, snapshots, peak memory per
    /// node, and (with --down-at) how long a follower that was down takes
    /// to catch up while the load goes on. docs/operations.md, "Saturation".
    Saturate(SaturateArgs),
}

/// How to load a local cluster (`raft-kv saturate`).
#[derive(Clone, Debug, Args)]
pub struct SaturateArgs {
    /// How many nodes.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: u16,
    /// Concurrent clients, each with one PUT in flight.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub clients: usize,
    /// Bytes of each value.
    #[arg(long, value_name = "BYTES", default_value_t = 128)]
    pub value_bytes: usize,
    /// How long the load runs.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub seconds: u64,
    /// Keys written in turn by each client; 0 (the default): every write a
    /// new key, so the state grows with the data written.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keys: u64,
    /// Kill a follower this many seconds into the load...
    #[arg(long, value_name = "SECONDS")]
    pub down_at: Option<u64>,
    /// ...restart it this many seconds later, and time its catch-up.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub down_for: u64,
    /// Leave the data directory in place at the end.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// How to start a node.
#[derive(Clone, Debug, Args)]
pub struct NodeArgs {
    /// The node's data directory (created if missing; one process at a time).
    #[arg(long, value_name = "DIR", required = true)]
    pub data: Option<PathBuf>,
    /// The address peers reach this node's raft port on.
    #[arg(long, value_name = "ADDR", required = true)]
    pub raft: Option<String>,
    /// The address clients reach the HTTP API on.
    #[arg(long, value_name = "ADDR", required = true)]
    pub http: Option<String>,
    /// Make the first node of a new cluster (a new directory only).
    #[arg(long, conflicts_with_all = ["join", "bootstrap"])]
    pub init: bool,
    /// Start a new cluster from its member list, every member's id and raft
    /// address: `1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001`. Give every
    /// member the same list and --cluster-token, and each its own --id.
    #[arg(long, value_name = "ID=ADDR,...", value_parser = parse_members, conflicts_with = "join", requires_all = ["id", "cluster_token"])]
    pub bootstrap: Option<Members>,
    /// With --bootstrap: a number that tells this cluster apart from others
    /// started from the same list (the cluster id is derived from both).
    #[arg(long, value_name = "N", requires = "bootstrap")]
    pub cluster_token: Option<u64>,
    /// Join the cluster of the member at this raft address (a new directory,
    /// or one that already belongs to that cluster).
    #[arg(long, value_name = "RAFT_ADDR")]
    pub join: Option<String>,
    /// This node's id in the --bootstrap list; otherwise, check the node's id.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub id: Option<u64>,
    /// Close the node and exit when stdin reaches its end (lets a parent
    /// process take its children down with it).
    #[arg(long)]
    pub exit_on_stdin_close: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// A --bootstrap member list, as given (checked when the cluster is built).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members(pub Vec<(NodeId, String)>);

fn parse_members(text: &str) -> Result<Members, String> {
    let members = text
        .split(',')
        .map(|member| {
            let (id, address) = member
                .split_once('=')
                .ok_or_else(|| format!("`{member}` is not ID=ADDR"))?;
            let id: u64 = id
                .trim()
                .parse()
                .map_err(|_| format!("`{id}` in `{member}` is not a node id"))?;
            Ok((NodeId(id), address.trim().to_string()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    // Duplicates, id 0 and empty addresses: refused with a reason now, not at start.
    Bootstrap::new(0, members.clone()).map_err(|e| e.to_string())?;
    Ok(Members(members))
}

/// What a node does with its data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Member `id` of the cluster this list and token make.
    Bootstrap {
        id: NodeId,
        bootstrap: Bootstrap,
    },
    Init,
    Join(String),
    /// Neither flag: only a directory that already belongs to a cluster starts.
    Resume,
}

impl NodeArgs {
    /// `--bootstrap`, `--init`, `--join` or none.
    pub fn start(&self) -> Start {
        if let (Some(Members(members)), Some(token), Some(id)) =
            (&self.bootstrap, self.cluster_token, self.id)
        {
            let bootstrap =
                Bootstrap::new(token, members.clone()).expect("checked when the flag was parsed");
            return Start::Bootstrap {
                id: NodeId(id),
                bootstrap,
            };
        }
        match (&self.join, self.init) {
            (Some(address), _) => Start::Join(address.clone()),
            (None, true) => Start::Init,
            (None, false) => Start::Resume,
        }
    }
}

/// Options that local-cluster passes on to its nodes unchanged.
#[derive(Clone, Debug, Args)]
pub struct Tuning {
    /// Take a snapshot at the latest after N applied entries, whatever
    /// their bytes (a cap on the snapshot policy) [default: no cap].
    #[arg(long, value_name = "N")]
    pub snapshot_entries_max: Option<u64>,
    /// The least log bytes between two snapshots [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    pub snapshot_log_bytes_min: Option<u64>,
    /// Snapshot once the log since the last snapshot reaches this percentage
    /// of its size [default: 100].
    #[arg(long, value_name = "PERCENT")]
    pub snapshot_log_percent: Option<u64>,
    /// Entries kept in the log behind a snapshot [default: 1024].
    #[arg(long, value_name = "N")]
    pub snapshot_trailing: Option<u64>,
    /// The most bytes of durable log entries a node keeps in memory; older
    /// ones are read back from the log when a follower or the state machine
    /// needs them [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    pub log_cache_bytes_max: Option<u64>,
    /// How many bytes a leader streams to one follower beyond its last
    /// acknowledgement; with values of several MiB, raise it to hold several
    /// entries, or a follower catches up one entry per round trip
    /// [default: 4194304].
    #[arg(long, value_name = "BYTES")]
    pub stream_budget_bytes: Option<u64>,
    /// Minimum election timeout [default: 500].
    #[arg(long, value_name = "MS")]
    pub election_timeout_ms: Option<u64>,
    /// Heartbeat interval [default: 150].
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// How long a write, read barrier, membership change or join may take.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Threads that run requests other than puts against the node (each
    /// blocks while its request works); requests beyond wait for one. Puts
    /// wait for their commit without a thread.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub http_threads: u64,
    /// HTTP connections open at once; further ones wait in the kernel's
    /// accept queue until one closes.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub connections_max: u64,
    /// Largest request head (request line and headers); larger gets 431.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10, value_parser = clap::value_parser!(u64).range(8192..=(16 << 20)))]
    pub header_bytes_max: u64,
    /// How long a connection may take to send a request's head, counted from
    /// its opening or from the end of its previous response: also the idle
    /// limit of a kept-alive connection.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: u64,
    /// How long a request's body may take to arrive in full; slower gets 408.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_ms: u64,
    /// How long a response may stall unsent (the client does not read it)
    /// before the connection is closed.
    #[arg(long, value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout_ms: u64,
    /// Request bodies held in memory at once, all connections together;
    /// a request waits (up to its body timeout) for room, then gets 503.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range((9 << 20)..=(1 << 40)))]
    pub body_memory_bytes: u64,
    /// Log filter, in tracing-subscriber's EnvFilter syntax (`info`,
    /// `warn,raft_io_std=debug`, ...); to stderr.
    #[arg(long, value_name = "FILTER", env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

impl Tuning {
    /// How long a write, read or join may take.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The flags that reproduce these options.
    pub fn to_flags(&self) -> Vec<String> {
        let optional = [
            ("--snapshot-entries-max", self.snapshot_entries_max),
            ("--snapshot-log-bytes-min", self.snapshot_log_bytes_min),
            ("--snapshot-log-percent", self.snapshot_log_percent),
            ("--snapshot-trailing", self.snapshot_trailing),
            ("--log-cache-bytes-max", self.log_cache_bytes_max),
            ("--stream-budget-bytes", self.stream_budget_bytes),
            ("--election-timeout-ms", self.election_timeout_ms),
            ("--heartbeat-ms", self.heartbeat_ms),
        ];
        let always = [
            ("--request-timeout-ms", self.request_timeout_ms),
            ("--http-threads", self.http_threads),
            ("--connections-max", self.connections_max),
            ("--header-bytes-max", self.header_bytes_max),
            ("--header-timeout-ms", self.header_timeout_ms),
            ("--body-timeout-ms", self.body_timeout_ms),
            ("--write-timeout-ms", self.write_timeout_ms),
            ("--body-memory-bytes", self.body_memory_bytes),
        ];
        let mut flags = Vec::new();
        let set = optional
            .into_iter()
            .filter_map(|(name, v)| Some((name, v?)))
            .chain(always);
        for (name, value) in set {
            flags.push(name.to_string());
            flags.push(value.to_string());
        }
        flags.push("--log".into());
        flags.push(self.log.clone());
        flags
    }
}

/// The options of `raft-kv local-cluster`.
#[derive(Clone, Debug, Args)]
pub struct LocalArgs {
    /// How many nodes.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: u16,
    /// Node i gets raft port PORT + 2(i-1) and HTTP port one above; 0 lets
    /// the OS choose.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub base_port: u16,
    /// Leave the directory in place at the end.
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("raft-kv").chain(line.split_whitespace()))
    }

    #[test]
    fn a_node_command_line_parses() {
        let cli = parse_str(
            "--data /d --raft 127.0.0.1:1 --http 127.0.0.1:2 --join 127.0.0.1:3 --id 2 --snapshot-entries-max 64 --log debug",
        )
        .unwrap();
        assert!(cli.command.is_none());
        let node = cli.node;
        assert_eq!(node.start(), Start::Join("127.0.0.1:3".into()));
        assert_eq!(node.id, Some(2));
        assert_eq!(node.tuning.snapshot_entries_max, Some(64));
        assert_eq!(node.tuning.log, "debug");
        assert_eq!(node.tuning.connections_max, 1024);
    }

    #[test]
    fn a_bootstrap_command_line_parses_into_the_members_and_token() {
        let cli = parse_str(
            "--data /d --raft 127.0.0.1:1 --http 127.0.0.1:2 --bootstrap 2=127.0.0.1:3,1=127.0.0.1:1 --cluster-token 9 --id 1",
        )
        .unwrap();
        let members = [(NodeId(1), "127.0.0.1:1"), (NodeId(2), "127.0.0.1:3")];
        let want = Bootstrap::new(9, members.map(|(id, a)| (id, a.to_string()))).unwrap();
        assert_eq!(
            cli.node.start(),
            Start::Bootstrap {
                id: NodeId(1),
                bootstrap: want
            }
        );
    }

    #[test]
    fn tuning_flags_round_trip_through_to_flags() {
        let cli = parse_str(
            "local-cluster --nodes 5 --heartbeat-ms 40 --snapshot-trailing 7 --header-timeout-ms 900",
        )
        .unwrap();
        let Some(Sub::LocalCluster(local)) = cli.command else {
            panic!("expected local-cluster");
        };
        let mut line = ["raft-kv", "--data", "d", "--raft", "r", "--http", "h"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        line.extend(local.tuning.to_flags());
        let node = Cli::try_parse_from(line).unwrap().node;
        assert_eq!(node.tuning.heartbeat_ms, Some(40));
        assert_eq!(node.tuning.snapshot_trailing, Some(7));
        assert_eq!(node.tuning.header_timeout_ms, 900);
        assert_eq!(local.nodes, 5);
    }

    #[test]
    fn mistakes_are_reported() {
        for (line, expected) in [
            (
                "--data d --raft r --http h --init --join x",
                "cannot be used with",
            ),
            ("--data d --raft r", "--http"),
            ("--data d --raft r --http h --id zero", "invalid value"),
            ("--data d --raft r --http h --id 0", "invalid value"),
            ("--data d --raft r --http h --bogus", "unexpected argument"),
            ("--data", "a value is required"),
            ("local-cluster --nodes 0", "invalid value"),
            (
                "--data d --raft r --http h --bootstrap 1=a --cluster-token 1",
                "--id",
            ),
            (
                "--data d --raft r --http h --bootstrap 1=a --id 1",
                "--cluster-token",
            ),
            (
                "--data d --raft r --http h --bootstrap 1=a,1=b --cluster-token 1 --id 1",
                "duplicate node id",
            ),
            (
                "--data d --raft r --http h --bootstrap 1:a --cluster-token 1 --id 1",
                "is not ID=ADDR",
            ),
            (
                "--data d --raft r --http h --bootstrap 1=a --cluster-token 1 --id 1 --init",
                "cannot be used with",
            ),
            (
                "--data d --raft r --http h --header-bytes-max 10",
                "invalid value",
            ),
        ] {
            let err = parse_str(line).unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
