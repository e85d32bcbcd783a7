//! A node that keeps only `log_cache_bytes_max` bytes of its log in memory,
//! on real sockets and files: entries older than its cache are read back from
//! the write-ahead log (`Action::ReadLog`, served by the log writer thread)
//! for a follower's stream and for the apply path, and recovery loads only
//! the tail of the log that fits the cache.
//!
//! Nothing sleeps to synchronize: every wait polls a condition against a
//! generous deadline (real networks and disks have no virtual clock).

use raft_core::{
    Bootstrap, Duration as CoreDuration, EntryKind, LogEntry, LogIndex, NodeId, Role,
    SnapshotPolicy,
};
use raft_io_std::storage::{self, StorageOptions};
use raft_io_std::{Fsm, NodeConfig, RaftNode};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous: CI machines are slow and shared.
const PATIENCE: Duration = Duration::from_secs(30);

/// A cache far smaller than the log the tests write.
const CACHE_BYTES: u64 = 4 << 10;

/// Each command's size: 40 of them are several times the cache.
const COMMAND_BYTES: usize = 300;

/// The commands a node applied.
#[derive(Clone, Default)]
struct Applied(Arc<Mutex<(Vec<String>, LogIndex)>>);

impl Applied {
    fn commands(&self) -> Vec<String> {
        self.0.lock().unwrap().0.clone()
    }
}

struct ListFsm(Applied);

impl Fsm for ListFsm {
    fn apply(&mut self, entry: &LogEntry) {
        let mut s = self.0.0.lock().unwrap();
        if entry.kind == EntryKind::Command {
            s.0.push(String::from_utf8(entry.data.to_vec()).unwrap());
        }
        s.1 = entry.index;
    }
    fn index(&self) -> LogIndex {
        self.0.0.lock().unwrap().1
    }
    fn snapshot(&mut self, w: &mut dyn Write) -> io::Result<()> {
        let s = self.0.0.lock().unwrap();
        writeln!(w, "{}", s.1.0)?;
        for c in &s.0 {
            writeln!(w, "{c}")?;
        }
        Ok(())
    }
    fn restore(&mut self, r: &mut dyn Read) -> io::Result<()> {
        let mut text = String::new();
        r.read_to_string(&mut text)?;
        let mut lines = text.lines();
        let index = lines
            .next()
            .unwrap_or("0")
            .parse()
            .map_err(io::Error::other)?;
        *self.0.0.lock().unwrap() = (lines.map(String::from).collect(), LogIndex(index));
        Ok(())
    }
}

/// One node: its directory outlives its process.
struct Member {
    dir: tempfile::TempDir,
    address: String,
    applied: Applied,
    node: Option<RaftNode>,
}

/// A tiny cache, and no snapshots: every entry stays in the log, so a
/// follower behind and a restarted node need the entries read back.
fn config(listen: &str) -> NodeConfig {
    let mut c = NodeConfig::new(listen);
    c.options.election_timeout = CoreDuration::from_millis(300);
    c.options.heartbeat_interval = CoreDuration::from_millis(50);
    c.options.log_cache_bytes_max = CACHE_BYTES;
    c.options.snapshot_policy = SnapshotPolicy::NEVER;
    c.request_timeout = PATIENCE;
    c
}

impl Member {
    fn open() -> Member {
        let dir = tempfile::tempdir().unwrap();
        let applied = Applied::default();
        let node =
            RaftNode::open(dir.path(), config("127.0.0.1:0"), ListFsm(applied.clone())).unwrap();
        Member {
            dir,
            address: node.address().to_string(),
            applied,
            node: Some(node),
        }
    }

    fn node(&self) -> &RaftNode {
        self.node.as_ref().expect("member is running")
    }

    fn close(&mut self) {
        if let Some(node) = self.node.take() {
            node.close().unwrap();
        }
    }

    /// Reopens the same directory on the same address, with an empty FSM.
    fn reopen(&mut self) {
        assert!(self.node.is_none());
        self.applied = Applied::default();
        let node = RaftNode::open(
            self.dir.path(),
            config(&self.address),
            ListFsm(self.applied.clone()),
        )
        .unwrap();
        self.node = Some(node);
    }
}

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10)); // polling interval, not synchronization
    }
}

fn three_nodes() -> Vec<Member> {
    let members: Vec<Member> = (0..3).map(|_| Member::open()).collect();
    let list = members
        .iter()
        .enumerate()
        .map(|(i, m)| (NodeId(i as u64 + 1), m.address.clone()));
    let bootstrap = Bootstrap::new(0x5eed, list).unwrap();
    for (i, m) in members.iter().enumerate() {
        m.node()
            .bootstrap(NodeId(i as u64 + 1), &bootstrap)
            .unwrap();
    }
    members
}

fn leader_of(members: &[Member]) -> usize {
    let mut found = None;
    eventually("one leader that every running member knows", || {
        let running: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].node.is_some())
            .collect();
        let leaders: Vec<usize> = running
            .iter()
            .copied()
            .filter(|&i| members[i].node().role() == Role::Leader)
            .collect();
        let [leader] = leaders[..] else { return false };
        let id = members[leader].node().id();
        found = Some(leader);
        running
            .iter()
            .all(|&i| members[i].node().leader().map(|(l, _)| Some(l)) == Some(id))
    });
    found.unwrap()
}

/// `count` commands of [`COMMAND_BYTES`] each, named `{prefix}{i}`.
fn commands(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{prefix}{i:04}-{}", ".".repeat(COMMAND_BYTES)))
        .collect()
}

fn propose_all(node: &RaftNode, commands: &[String]) {
    for c in commands {
        node.propose(c.clone()).unwrap();
    }
}

fn assert_all_applied(members: &[Member], expected: &[String]) {
    for m in members.iter().filter(|m| m.node.is_some()) {
        eventually("every member to apply every command", || {
            m.applied.commands() == expected
        });
    }
}

#[test]
fn a_follower_back_after_its_leader_wrote_past_the_cache_catches_up_from_entries_read_back() {
    let mut members = three_nodes();
    let leader = leader_of(&members);
    let away = (leader + 1) % 3;
    let mut expected = commands("a", 5);
    propose_all(members[leader].node(), &expected);
    assert_all_applied(&members, &expected);

    members[away].close();
    let more = commands("b", 60); // about 20 KiB: five times the cache
    propose_all(members[leader].node(), &more);
    expected.extend(more);
    let reads_before = members[leader].node().metrics().unwrap().log_reads;

    members[away].reopen();
    assert_all_applied(&members, &expected);
    let metrics = members[leader].node().metrics().unwrap();
    assert!(
        metrics.log_reads.entries > reads_before.entries,
        "the leader streamed entries older than its cache: {:?} then {:?}",
        reads_before,
        metrics.log_reads
    );
    assert_eq!(metrics.transport.snapshots_sent, 0, "caught up by log");
}

#[test]
fn every_node_restarted_recovers_only_the_tail_and_applies_the_rest_from_reads() {
    let mut members = three_nodes();
    let leader = leader_of(&members);
    let mut expected = commands("a", 60);
    propose_all(members[leader].node(), &expected);
    assert_all_applied(&members, &expected);
    for m in &mut members {
        m.close();
    }

    // What each node will recover: the tail in memory, the rest described.
    for m in &members {
        let opened =
            storage::open_within(m.dir.path(), &StorageOptions::default(), CACHE_BYTES).unwrap();
        let state = &opened.state;
        let stored = state
            .stored
            .as_ref()
            .expect("a log past the cache leaves a stored front");
        let tail_bytes: u64 = state.entries.iter().map(LogEntry::budget_bytes).sum();
        assert!(tail_bytes <= CACHE_BYTES, "{tail_bytes} bytes recovered");
        assert_eq!(stored.term_starts[0].0, LogIndex(1));
        assert_eq!(
            state.entries.first().map(|e| e.index),
            Some(stored.last.next())
        );
        assert!(
            stored.config_entries.iter().any(|e| e.index == LogIndex(1)),
            "the bootstrap's membership entry is kept: {:?}",
            stored.config_entries
        );
    }

    // An empty FSM and no snapshot: every entry is applied from the log again.
    for m in &mut members {
        m.reopen();
    }
    assert_all_applied(&members, &expected);
    for (i, m) in members.iter().enumerate() {
        let reads = m.node().metrics().unwrap().log_reads;
        assert!(
            reads.entries >= 40,
            "node {i} applied entries it read back: {reads:?}"
        );
    }
    let leader = leader_of(&members);
    let more = commands("b", 10);
    propose_all(members[leader].node(), &more);
    expected.extend(more);
    assert_all_applied(&members, &expected);
}
