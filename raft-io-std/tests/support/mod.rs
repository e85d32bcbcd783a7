//! What raft-io-std's cluster tests share: a list state machine whose
//! snapshot writers and applies a test can hold at a gate, members whose
//! directories outlive their processes, and polling waits.
//!
//! Nothing sleeps to synchronize: every wait polls a condition against a
//! generous deadline (real networks and disks have no virtual clock).
// Each test file uses some of these.
#![allow(dead_code, unused_imports)]

pub use raft_core::{
    Bootstrap, Duration as CoreDuration, EntryKind, InvalidOptions, LogEntry, LogIndex, NodeId,
    Outcome, RequestError, Role, SnapshotPolicy,
};
pub use raft_io_std::{Error, Fsm, NodeConfig, RaftNode, SnapshotSource};
pub use std::io::{self, Read, Write};
pub use std::sync::{Arc, Condvar, Mutex};
pub use std::time::{Duration, Instant};

/// Generous: CI machines are slow and shared.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The commands a node applied, readable by the test, and gates that can
/// hold its snapshot writers and its applies.
#[derive(Clone, Default)]
pub struct Applied(pub Arc<Mutex<(Vec<String>, LogIndex)>>, pub Gate, pub Gate);

impl Applied {
    pub fn commands(&self) -> Vec<String> {
        self.0.lock().unwrap().0.clone()
    }
}

/// While held, whoever passes waits (as a slow disk or a huge state would
/// make a snapshot writer, or a slow state machine an apply); it counts the
/// passes that started.
#[derive(Clone, Default)]
pub struct Gate(pub Arc<(Mutex<(bool, u64)>, Condvar)>);

impl Gate {
    pub fn hold(&self) {
        self.0.0.lock().unwrap().0 = true;
    }
    pub fn release(&self) {
        self.0.0.lock().unwrap().0 = false;
        self.0.1.notify_all();
    }
    pub fn started(&self) -> u64 {
        self.0.0.lock().unwrap().1
    }
    pub fn pass(&self) {
        let (lock, cv) = &*self.0;
        let mut state = lock.lock().unwrap();
        state.1 += 1;
        while state.0 {
            state = cv.wait(state).unwrap();
        }
    }
}

/// Opens a held gate when dropped, so a failing test does not leave a
/// worker stuck on it (and the node's close waiting for that worker).
pub struct ReleaseOnDrop(pub Vec<Gate>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(Gate::release);
    }
}

pub struct ListFsm(pub Applied);

impl ListFsm {
    pub fn encode(&self) -> Vec<u8> {
        let s = self.0.0.lock().unwrap();
        let mut out = format!("{}\n", s.1.0).into_bytes();
        for c in &s.0 {
            out.extend_from_slice(c.as_bytes());
            out.push(b'\n');
        }
        out
    }
}

impl Fsm for ListFsm {
    fn apply(&mut self, entry: &LogEntry) {
        self.0.2.pass();
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
        w.write_all(&self.encode())
    }
    fn snapshot_source(&mut self) -> Option<SnapshotSource> {
        let (state, gate) = (self.encode(), self.0.1.clone());
        Some(Box::new(move |w| {
            gate.pass();
            w.write_all(&state)
        }))
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

/// One node of a test cluster: its directory outlives its process.
pub struct Member {
    pub dir: tempfile::TempDir,
    pub address: String,
    pub applied: Applied,
    pub node: Option<RaftNode>,
}

pub fn config(listen: &str, tweak: impl Fn(&mut NodeConfig)) -> NodeConfig {
    let mut c = NodeConfig::new(listen);
    c.options.election_timeout = CoreDuration::from_millis(300);
    c.options.heartbeat_interval = CoreDuration::from_millis(50);
    c.request_timeout = PATIENCE;
    tweak(&mut c);
    c
}

impl Member {
    pub fn open(tweak: &impl Fn(&mut NodeConfig)) -> Member {
        let dir = tempfile::tempdir().unwrap();
        let applied = Applied::default();
        let node = RaftNode::open(
            dir.path(),
            config("127.0.0.1:0", tweak),
            ListFsm(applied.clone()),
        )
        .unwrap();
        Member {
            dir,
            address: node.address().to_string(),
            applied,
            node: Some(node),
        }
    }

    pub fn node(&self) -> &RaftNode {
        self.node.as_ref().expect("member is running")
    }

    pub fn close(&mut self) {
        if let Some(node) = self.node.take() {
            node.close().unwrap();
        }
    }

    /// Reopens the same directory on the same address, with a fresh FSM.
    pub fn reopen(&mut self, tweak: &impl Fn(&mut NodeConfig)) {
        assert!(self.node.is_none());
        self.applied = Applied::default();
        let node = RaftNode::open(
            self.dir.path(),
            config(&self.address, tweak),
            ListFsm(self.applied.clone()),
        )
        .unwrap();
        self.node = Some(node);
    }
}

pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10)); // polling interval, not synchronization
    }
}

/// The token of the tests' bootstrapped clusters.
pub const TOKEN: u64 = 0x5eed;

/// The member list of `members`, ids 1, 2, 3 in order.
pub fn bootstrap_of(members: &[Member]) -> Bootstrap {
    let list = members
        .iter()
        .enumerate()
        .map(|(i, m)| (NodeId(i as u64 + 1), m.address.clone()));
    Bootstrap::new(TOKEN, list).unwrap()
}

/// Three nodes bootstrapped from one member list, with a leader they all know.
pub fn three_nodes(tweak: impl Fn(&mut NodeConfig)) -> Vec<Member> {
    let members: Vec<Member> = (0..3).map(|_| Member::open(&tweak)).collect();
    let bootstrap = bootstrap_of(&members);
    for (i, m) in members.iter().enumerate() {
        let id = NodeId(i as u64 + 1);
        assert_eq!(
            m.node().bootstrap(id, &bootstrap).unwrap(),
            bootstrap.cluster_id()
        );
    }
    leader_of(&members);
    members
}

/// Three nodes: the first initializes, the second joins through it, the
/// third through the second (a follower, which redirects to the leader).
pub fn three_nodes_joined(tweak: impl Fn(&mut NodeConfig)) -> Vec<Member> {
    let members: Vec<Member> = (0..3).map(|_| Member::open(&tweak)).collect();
    members[0].node().initialize().unwrap();
    assert_eq!(
        members[0]
            .node()
            .join(&members[1].address)
            .unwrap_err()
            .to_string(),
        Error::Request(RequestError::AlreadyInitialized).to_string()
    );
    assert_eq!(
        members[1].node().join(&members[0].address).unwrap(),
        NodeId(2)
    );
    eventually("node 2 to be promoted to voter", || {
        members[1].node().role() == Role::Follower
    });
    assert_eq!(
        members[2].node().join(&members[1].address).unwrap(),
        NodeId(3)
    );
    eventually("node 3 to be promoted to voter", || {
        members[2].node().role() == Role::Follower
            && members
                .iter()
                .all(|m| m.node().config().voters().count() == 3)
    });
    members
}

pub fn leader_of(members: &[Member]) -> usize {
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
        let agreed = running
            .iter()
            .all(|&i| members[i].node().leader().map(|(l, _)| Some(l)) == Some(id));
        found = Some(leader);
        agreed
    });
    found.unwrap()
}

pub fn apply_all(node: &RaftNode, commands: impl IntoIterator<Item = String>) -> LogIndex {
    let mut last = LogIndex(0);
    for c in commands {
        last = node.propose(c).unwrap();
    }
    last
}

pub fn assert_all_applied(members: &[Member], expected: &[String]) {
    for m in members.iter().filter(|m| m.node.is_some()) {
        eventually("every member to apply every command", || {
            m.applied.commands() == expected
        });
    }
}
