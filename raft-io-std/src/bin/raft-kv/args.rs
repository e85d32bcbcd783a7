//! The command line of `raft-kv`.

use std::path::PathBuf;
use std::time::Duration;
use tracing::Level;

pub const USAGE: &str = "\
raft-kv: a replicated key-value server over HTTP (an example of raft-io-std)

USAGE:
  raft-kv --data DIR --raft ADDR --http ADDR (--init | --join RAFT_ADDR) [OPTIONS]
  raft-kv local-cluster [--nodes N] [--base-port PORT] [--keep] [NODE OPTIONS]

A new data directory needs --init (the first node of a new cluster: it gets id 1)
or --join (any member's raft address: the leader assigns the next id). A directory
that already belongs to a cluster resumes, and --init/--join are ignored: restart a
node with the same --data, --raft and --http as before.

Ids are assigned by the cluster, never chosen: --id N only checks that the node
is (or became) N, and refuses to start otherwise.

OPTIONS:
  --id N                     check the node's id
  --snapshot-threshold N     take a snapshot after N applied entries (default 8192)
  --snapshot-trailing N      entries kept in the log behind a snapshot (default 1024)
  --election-timeout-ms N    minimum election timeout (default 500)
  --heartbeat-ms N           heartbeat interval (default 150)
  --request-timeout-ms N     how long a write, read or join may take (default 10000)
  --http-threads N           threads answering HTTP requests (default 16)
  --log LEVEL                error, warn, info, debug or trace (default info); to stderr
  --exit-on-stdin-close      close the node and exit when stdin reaches its end
                             (lets a parent process take its children down with it)

STDOUT (one line each, for scripts):
  listening raft=ADDR http=ADDR     once both listeners are bound (port 0 picks one)
  ready id=N cluster=ID             once the node is a member

local-cluster starts N (default 3) nodes on 127.0.0.1 with their data in a new
temporary directory, prints how to reach them, and runs until Ctrl-C, when it stops
them and removes the directory (unless --keep).
";

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeArgs {
    pub data: PathBuf,
    pub raft: String,
    pub http: String,
    pub start: Start,
    pub id: Option<u64>,
    pub tuning: Tuning,
    pub exit_on_stdin_close: bool,
}

/// What a node does on a new data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    Init,
    Join(String),
    /// Neither flag: only a directory that already belongs to a cluster starts.
    Resume,
}

/// Options that local-cluster passes on to its nodes unchanged.
#[derive(Clone, Debug)]
pub struct Tuning {
    pub snapshot_threshold: Option<u64>,
    pub snapshot_trailing: Option<u64>,
    pub election_timeout_ms: Option<u64>,
    pub heartbeat_ms: Option<u64>,
    pub request_timeout: Duration,
    pub http_threads: usize,
    pub log: Level,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            snapshot_threshold: None,
            snapshot_trailing: None,
            election_timeout_ms: None,
            heartbeat_ms: None,
            request_timeout: Duration::from_secs(10),
            http_threads: 16,
            log: Level::INFO,
        }
    }
}

impl Tuning {
    /// The flags that reproduce these options.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        let mut push = |name: &str, value: String| {
            flags.push(name.to_string());
            flags.push(value);
        };
        let optional = [
            ("--snapshot-threshold", self.snapshot_threshold),
            ("--snapshot-trailing", self.snapshot_trailing),
            ("--election-timeout-ms", self.election_timeout_ms),
            ("--heartbeat-ms", self.heartbeat_ms),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                push(name, v.to_string());
            }
        }
        push(
            "--request-timeout-ms",
            self.request_timeout.as_millis().to_string(),
        );
        push("--http-threads", self.http_threads.to_string());
        push("--log", self.log.to_string().to_lowercase());
        flags
    }
}

/// The options of `raft-kv local-cluster`.
#[derive(Clone, Debug)]
pub struct LocalArgs {
    pub nodes: usize,
    pub base_port: u16,
    pub keep: bool,
    pub tuning: Tuning,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Node(NodeArgs),
    Local(LocalArgs),
    Help,
}

/// Walks the arguments; every flag but the switches takes one value.
struct Cursor<I: Iterator<Item = String>>(I);

impl<I: Iterator<Item = String>> Cursor<I> {
    fn value(&mut self, flag: &str) -> Result<String, String> {
        self.0.next().ok_or_else(|| format!("{flag} needs a value"))
    }

    fn number<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, String> {
        let v = self.value(flag)?;
        v.parse()
            .map_err(|_| format!("{flag}: {v:?} is not a valid number"))
    }
}

/// Parses a tuning flag if `flag` is one; `Ok(false)` if it is not.
fn tuning_flag<I: Iterator<Item = String>>(
    tuning: &mut Tuning,
    flag: &str,
    args: &mut Cursor<I>,
) -> Result<bool, String> {
    match flag {
        "--snapshot-threshold" => tuning.snapshot_threshold = Some(args.number(flag)?),
        "--snapshot-trailing" => tuning.snapshot_trailing = Some(args.number(flag)?),
        "--election-timeout-ms" => tuning.election_timeout_ms = Some(args.number(flag)?),
        "--heartbeat-ms" => tuning.heartbeat_ms = Some(args.number(flag)?),
        "--request-timeout-ms" => {
            tuning.request_timeout = Duration::from_millis(args.number(flag)?)
        }
        "--http-threads" => tuning.http_threads = args.number::<usize>(flag)?.max(1),
        "--log" => {
            let v = args.value(flag)?;
            tuning.log = v
                .parse()
                .map_err(|_| format!("--log: {v:?} is not error, warn, info, debug or trace"))?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = Cursor(args.into_iter().peekable());
    if args.0.peek().map(String::as_str) == Some("local-cluster") {
        args.0.next();
        return parse_local(args);
    }
    let (mut data, mut raft, mut http, mut id) = (None, None, None, None);
    let (mut init, mut join) = (false, None);
    let mut tuning = Tuning::default();
    let mut exit_on_stdin_close = false;
    while let Some(flag) = args.0.next() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--data" => data = Some(PathBuf::from(args.value(&flag)?)),
            "--raft" => raft = Some(args.value(&flag)?),
            "--http" => http = Some(args.value(&flag)?),
            "--id" => id = Some(args.number(&flag)?),
            "--init" => init = true,
            "--join" => join = Some(args.value(&flag)?),
            "--exit-on-stdin-close" => exit_on_stdin_close = true,
            other => {
                if !tuning_flag(&mut tuning, other, &mut args)? {
                    return Err(format!("unknown argument {other:?}"));
                }
            }
        }
    }
    let start = match (init, join) {
        (true, Some(_)) => return Err("--init and --join exclude each other".into()),
        (true, None) => Start::Init,
        (false, Some(address)) => Start::Join(address),
        (false, None) => Start::Resume,
    };
    if id == Some(0) {
        return Err("--id 0: node ids start at 1".into());
    }
    Ok(Command::Node(NodeArgs {
        data: data.ok_or("--data DIR is required")?,
        raft: raft.ok_or("--raft ADDR is required")?,
        http: http.ok_or("--http ADDR is required")?,
        start,
        id,
        tuning,
        exit_on_stdin_close,
    }))
}

fn parse_local<I: Iterator<Item = String>>(mut args: Cursor<I>) -> Result<Command, String> {
    let mut local = LocalArgs {
        nodes: 3,
        base_port: 0,
        keep: false,
        tuning: Tuning::default(),
    };
    while let Some(flag) = args.0.next() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--nodes" => local.nodes = args.number(&flag)?,
            "--base-port" => local.base_port = args.number(&flag)?,
            "--keep" => local.keep = true,
            other => {
                if !tuning_flag(&mut local.tuning, other, &mut args)? {
                    return Err(format!("unknown argument {other:?}"));
                }
            }
        }
    }
    if !(1..=9).contains(&local.nodes) {
        return Err("--nodes must be between 1 and 9".into());
    }
    Ok(Command::Local(local))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn a_node_command_line_parses() {
        let Ok(Command::Node(node)) = parse_str(
            "--data /d --raft 127.0.0.1:1 --http 127.0.0.1:2 --join 127.0.0.1:3 --id 2 --snapshot-threshold 64 --log debug",
        ) else {
            panic!("expected a node command");
        };
        assert_eq!(node.start, Start::Join("127.0.0.1:3".into()));
        assert_eq!(node.id, Some(2));
        assert_eq!(node.tuning.snapshot_threshold, Some(64));
        assert_eq!(node.tuning.log, Level::DEBUG);
    }

    #[test]
    fn tuning_flags_round_trip_through_to_flags() {
        let Ok(Command::Local(local)) =
            parse_str("local-cluster --nodes 5 --heartbeat-ms 40 --snapshot-trailing 7")
        else {
            panic!("expected local-cluster");
        };
        let mut line = vec!["--data", "d", "--raft", "r", "--http", "h"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        line.extend(local.tuning.to_flags());
        let Ok(Command::Node(node)) = parse(line) else {
            panic!("expected a node command");
        };
        assert_eq!(node.tuning.heartbeat_ms, Some(40));
        assert_eq!(node.tuning.snapshot_trailing, Some(7));
        assert_eq!(local.nodes, 5);
    }

    #[test]
    fn mistakes_are_reported() {
        for (line, expected) in [
            ("--data d --raft r --http h --init --join x", "exclude"),
            ("--data d --raft r", "--http"),
            ("--data d --raft r --http h --id zero", "not a valid number"),
            ("--data d --raft r --http h --id 0", "start at 1"),
            ("--data d --raft r --http h --bogus", "unknown argument"),
            ("--data", "needs a value"),
            ("local-cluster --nodes 0", "between 1 and 9"),
        ] {
            let err = parse_str(line).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
