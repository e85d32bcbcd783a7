//! Helpers for the multi-process tests: `raft-kv` processes with their data
//! in temporary directories, on loopback ports chosen by the OS, and an HTTP
//! client that records a history for the linearizability checker.
//!
//! Every process is killed when its guard drops (also when a test fails),
//! and each one exits by itself if the test process dies (`raft-kv
//! --exit-on-stdin-close` with a pipe as stdin). Waits poll a condition
//! against a generous deadline; nothing sleeps to synchronize.

#![allow(dead_code)] // each test file uses its own part of the helpers

pub mod client;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Generous: debug builds on a shared 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Flags every test node gets: short timings so elections are quick.
pub const FAST: &[&str] = &[
    "--election-timeout-ms",
    "300",
    "--heartbeat-ms",
    "50",
    "--request-timeout-ms",
    "5000",
    "--http-threads",
    "8",
];

/// Polls `condition` until it holds; panics after [`PATIENCE`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20)); // polling interval, not synchronization
    }
}

/// Polls `f` until it returns `Some`; panics after [`PATIENCE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let mut out = None;
    eventually(what, || {
        out = f();
        out.is_some()
    });
    out.expect("set when the condition held")
}

/// A free loopback address (see [`raft_kv::ports`] for the small race of
/// naming an address before its process binds it).
pub fn free_address() -> String {
    free_addresses(1).remove(0)
}

/// `n` distinct free loopback addresses.
pub fn free_addresses(n: usize) -> Vec<String> {
    raft_kv::ports::free_loopback_addresses(n).unwrap()
}

/// The flags that start node `i + 1` of a new cluster of the nodes at
/// `addresses` (`--bootstrap`, a `--cluster-token` of this run, `--id`), one
/// list per node.
pub fn bootstrap_flags(addresses: &[String]) -> Vec<Vec<String>> {
    let list = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    // Unique per run: a stray node of an earlier run on a reused port is foreign.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let token = (nanos ^ u64::from(std::process::id())).to_string();
    (1..=addresses.len())
        .map(|id| {
            [
                "--bootstrap",
                &list,
                "--cluster-token",
                &token,
                "--id",
                &id.to_string(),
            ]
            .map(String::from)
            .to_vec()
        })
        .collect()
}

/// One running `raft-kv` process; killed (SIGKILL) when dropped.
pub struct Process {
    child: Child,
    _stdin: ChildStdin,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself; its exit code.
    pub fn wait_exit(mut self) -> Option<i32> {
        self.wait_exit_code()
    }

    fn wait_exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "process did not exit");
            std::thread::sleep(Duration::from_millis(20)); // polling interval
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// What a started process printed on stdout.
pub enum Started {
    /// `listening` then `ready`: the node is a member.
    Ready { raft: String, http: String, id: u64 },
    /// It exited before `ready`; its exit code.
    Exited(Option<i32>),
}

/// One node of a test: its directory and addresses outlive its processes.
pub struct Slot {
    pub data: PathBuf,
    pub log: PathBuf,
    pub raft: String,
    pub http: String,
    pub id: u64,
    /// Flags given at every start (after the common ones).
    pub flags: Vec<String>,
    /// The flags of its first start (`--bootstrap ...`, `--init`, `--join ADDR`).
    pub start: Vec<String>,
    pub process: Option<Process>,
}

/// The `raft-kv` executable: this build's, or the one `RAFT_KV_BIN` names
/// (to run the tests against another build, an older one included).
pub fn raft_kv_bin() -> PathBuf {
    std::env::var_os("RAFT_KV_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_raft-kv")),
        PathBuf::from,
    )
}

/// Starts `raft-kv` with `args`, stderr appended to `log`; waits for its
/// `ready` line (or its exit).
pub fn spawn(args: &[String], log: &Path) -> (Option<Process>, Started) {
    spawn_command(Command::new(raft_kv_bin()), args, log)
}

/// [`spawn`] through `command`, which must run `raft-kv` with the arguments
/// added to it (e.g. `ip netns exec NS path/to/raft-kv`).
pub fn spawn_command(
    mut command: Command,
    args: &[String],
    log: &Path,
) -> (Option<Process>, Started) {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = command
        .args(args)
        .arg("--exit-on-stdin-close")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("start raft-kv");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut process = Process {
        child,
        _stdin: stdin,
    };
    let (mut raft, mut http) = (String::new(), String::new());
    let deadline = Instant::now() + PATIENCE;
    loop {
        match lines.recv_deadline(deadline) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("listening ") {
                    for field in rest.split_whitespace() {
                        match field.split_once('=') {
                            Some(("raft", a)) => raft = a.to_string(),
                            Some(("http", a)) => http = a.to_string(),
                            _ => {}
                        }
                    }
                } else if let Some(rest) = line.strip_prefix("ready id=") {
                    let id = rest.split_whitespace().next().unwrap().parse().unwrap();
                    return (Some(process), Started::Ready { raft, http, id });
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                // stdout closed before `ready`: the process is exiting.
                return (None, Started::Exited(process.wait_exit_code()));
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                panic!(
                    "raft-kv {args:?} did not become ready:\n{}",
                    log_tail(log, 40)
                )
            }
        }
    }
}

/// The last `lines` lines of a log file.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A set of `raft-kv` processes sharing one temporary directory.
pub struct Cluster {
    pub root: tempfile::TempDir,
    pub slots: Vec<Slot>,
    pub agent: ureq::Agent,
}

impl Cluster {
    /// An empty cluster (no process yet).
    pub fn empty() -> Cluster {
        Cluster {
            root: tempfile::tempdir().unwrap(),
            slots: Vec::new(),
            agent: client::agent(Duration::from_secs(5)),
        }
    }

    /// `n` nodes bootstrapped from one member list (`--bootstrap`); returns
    /// once every node is a voter.
    pub fn start(n: usize, flags: &[&str]) -> Cluster {
        let mut cluster = Cluster::empty();
        let addresses = free_addresses(n);
        for (raft, start) in addresses.iter().zip(bootstrap_flags(&addresses)) {
            cluster.add_slot_started(raft, flags, &start);
        }
        cluster.wait_all_voters();
        cluster
    }

    /// `n` nodes the dynamic way: the first initializes, the others join
    /// through it; returns once every node is a voter.
    pub fn start_joined(n: usize, flags: &[&str]) -> Cluster {
        let mut cluster = Cluster::empty();
        cluster.add_slot(flags, None);
        let first = cluster.slots[0].raft.clone();
        for _ in 1..n {
            cluster.add_slot(flags, Some(&first));
        }
        cluster.wait_all_voters();
        cluster
    }

    /// Starts a new node (`--init` when `join` is `None`); returns its index.
    pub fn add_slot(&mut self, flags: &[&str], join: Option<&str>) -> usize {
        self.add_slot_at("127.0.0.1:0", flags, join)
    }

    /// [`Cluster::add_slot`] with a raft address chosen beforehand.
    pub fn add_slot_at(&mut self, raft: &str, flags: &[&str], join: Option<&str>) -> usize {
        let start = match join {
            None => vec!["--init".to_string()],
            Some(a) => vec!["--join".to_string(), a.to_string()],
        };
        self.add_slot_started(raft, flags, &start)
    }

    /// Starts a new node at `raft` with `start`, its flags for a new
    /// directory; returns its index.
    fn add_slot_started(&mut self, raft: &str, flags: &[&str], start: &[String]) -> usize {
        let i = self.slots.len();
        let data = self.root.path().join(format!("n{i}"));
        let log = self.root.path().join(format!("n{i}.log"));
        let mut slot = Slot {
            data,
            log,
            raft: raft.into(),
            http: "127.0.0.1:0".into(),
            id: 0,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            start: start.to_vec(),
            process: None,
        };
        match Self::launch(&mut slot, start) {
            Started::Ready { .. } => {}
            Started::Exited(code) => panic!(
                "node {i} exited ({code:?}) at its first start:\n{}",
                log_tail(&slot.log, 40)
            ),
        }
        self.slots.push(slot);
        i
    }

    fn launch(slot: &mut Slot, extra: &[String]) -> Started {
        let mut args = vec![
            "--data".to_string(),
            slot.data.display().to_string(),
            "--raft".into(),
            slot.raft.clone(),
            "--http".into(),
            slot.http.clone(),
        ];
        args.extend(FAST.iter().map(|s| s.to_string()));
        args.extend(slot.flags.iter().cloned());
        args.extend(extra.iter().cloned());
        let (process, started) = spawn(&args, &slot.log);
        if let Started::Ready { raft, http, id } = &started {
            slot.raft = raft.clone();
            slot.http = http.clone();
            slot.id = *id;
        }
        slot.process = process;
        started
    }

    /// Restarts node `i` from its directory, on its addresses.
    pub fn restart(&mut self, i: usize) {
        assert!(self.slots[i].process.is_none(), "node {i} is running");
        match Self::launch(&mut self.slots[i], &[]) {
            Started::Ready { id, .. } => assert_eq!(id, self.slots[i].id),
            Started::Exited(code) => panic!(
                "node {i} exited ({code:?}) at restart:\n{}",
                log_tail(&self.slots[i].log, 40)
            ),
        }
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(p) = self.slots[i].process.take() {
            p.kill();
        }
    }

    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.slots.len()).filter(|&i| self.slots[i].process.is_some())
    }

    pub fn http_addresses(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.http.clone()).collect()
    }

    /// `GET /status` of node `i`, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        self.slots[i].process.as_ref()?;
        client::get_json(
            &self.agent,
            &format!("http://{}/status", self.slots[i].http),
        )
    }

    /// The running node that says it leads, with the highest term.
    pub fn leader(&self) -> Option<(usize, Value)> {
        self.running()
            .filter_map(|i| Some((i, self.status(i)?)))
            .filter(|(_, s)| s["role"] == "leader")
            .max_by_key(|(_, s)| s["term"].as_u64())
    }

    /// Waits for a leader whose term is above `after_term`, known to every
    /// running node and with its HTTP address recorded.
    pub fn wait_leader(&self, after_term: u64) -> (usize, Value) {
        wait_for("a leader known to every running node", || {
            let (i, s) = self.leader()?;
            let term = s["term"].as_u64()?;
            if term <= after_term || s["leader"]["http"].is_null() {
                return None;
            }
            let id = s["id"].as_u64()?;
            let agreed = self.running().all(|j| {
                self.status(j).is_some_and(|o| {
                    o["leader"]["id"].as_u64() == Some(id) && !o["leader"]["http"].is_null()
                })
            });
            agreed.then_some((i, s))
        })
    }

    /// Waits until the leader lists every running node as a streaming voter.
    pub fn wait_all_voters(&self) {
        eventually("every node to be a voter", || {
            let Some((_, s)) = self.leader() else {
                return false;
            };
            let members = s["members"].as_array().cloned().unwrap_or_default();
            self.running().all(|i| {
                members
                    .iter()
                    .any(|m| m["id"].as_u64() == Some(self.slots[i].id) && m["role"] == "voter")
            })
        });
    }

    /// Waits until node `i` has applied everything the leader had committed
    /// when the wait began.
    pub fn wait_caught_up(&self, i: usize) {
        let (_, leader) = self.wait_leader(0);
        let commit = leader["commit"].as_u64().unwrap();
        eventually(&format!("node {i} to apply up to {commit}"), || {
            self.status(i)
                .and_then(|s| s["applied"].as_u64())
                .is_some_and(|a| a >= commit)
        });
    }

    /// Waits until every running node has applied the same index with the
    /// same state digest (the cluster must be idle).
    pub fn wait_converged(&self) -> Value {
        wait_for("every running node to hold the same state", || {
            let digests: Vec<Value> = self
                .running()
                .map(|i| self.status(i).map(|s| s["fsm"].clone()))
                .collect::<Option<_>>()?;
            let first = digests.first()?.clone();
            digests.iter().all(|d| *d == first).then_some(first)
        })
    }

    /// Prints every node's log tail (for a failing test).
    pub fn dump_logs(&self) {
        for (i, slot) in self.slots.iter().enumerate() {
            eprintln!(
                "--- node {i} (id {}) log tail:\n{}",
                slot.id,
                log_tail(&slot.log, 30)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for slot in &mut self.slots {
            slot.process.take();
        }
    }
}

/// The newest log segment of the node whose data is in `data`.
pub fn last_wal_segment(data: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    segments.pop().expect("a log segment")
}

/// Cuts the last record of a segment in the middle and appends garbage, as
/// a crash in the middle of a write can leave it. Returns the record
/// count before the cut.
pub fn tear_last_record(segment: &Path) -> usize {
    const HEADER_BYTES: u64 = 28;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment)
        .unwrap();
    let size = file.metadata().unwrap().len();
    let (mut offset, mut last, mut records) = (HEADER_BYTES, None, 0);
    let mut header = [0u8; 8];
    while offset + 8 <= size {
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.read_exact(&mut header).unwrap();
        let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as u64;
        if len == 0 || offset + 8 + len > size {
            break;
        }
        last = Some((offset, 8 + len));
        records += 1;
        offset += 8 + len;
    }
    let (start, bytes) = last.expect("the segment holds a record");
    file.set_len(start + bytes / 2).unwrap();
    file.seek(SeekFrom::End(0)).unwrap();
    let garbage: Vec<u8> = (0..100u32).map(|i| (i * 37 % 251) as u8 ^ 0xa5).collect();
    file.write_all(&garbage).unwrap();
    file.sync_all().unwrap();
    records
}
