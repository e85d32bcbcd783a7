//! The openraft 0.9 driver, written after its getting-started guide and the
//! `raft-kv-memstore` example: a `RaftLogStorage` over an in-memory map, a
//! `RaftStateMachine` that counts commands, and a `RaftNetwork` whose client
//! calls the target `Raft` handle directly (the request and response structs
//! are moved, never serialized). Clients call `client_write`, which returns
//! once the leader applied the entry.
//!
//! Settings matched with ours: heartbeat 150 ms, election timeout 500 to
//! 1000 ms, at most 4096 entries per append (1 MiB of 256-byte entries), no
//! snapshots. openraft has no pre-vote; its leader lease plays the part of
//! check-quorum.
//!
//! Shapes: one tokio current-thread runtime for all three nodes and the
//! clients, or one current-thread runtime per node on its own thread (the
//! clients on the leader's).

use crate::Shape;
use crate::meter::{Meter, Outcome, Workload};
use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Config, Entry, EntryPayload, LogId, RaftLogReader, RaftNetwork, RaftNetworkFactory,
    RaftSnapshotBuilder, SnapshotMeta, SnapshotPolicy, StorageError, StoredMembership, Vote,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

openraft::declare_raft_types!(
    /// The bench's types: a command is a shared byte buffer; applying it answers nothing.
    pub TypeConfig:
        D = Bytes,
        R = (),
);

type NodeId = u64;
type Raft = openraft::Raft<TypeConfig>;

/// The in-memory log, shared with the log reader that replication uses.
#[derive(Default)]
struct LogInner {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
}

#[derive(Clone, Default)]
struct LogStore(Arc<Mutex<LogInner>>);

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.0.lock().expect("log lock");
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.0.lock().expect("log lock");
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.purged);
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.0.lock().expect("log lock").vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.0.lock().expect("log lock").vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.0.lock().expect("log lock").committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.0.lock().expect("log lock").committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        {
            let mut inner = self.0.lock().expect("log lock");
            for e in entries {
                inner.entries.insert(e.log_id.index, e);
            }
        }
        // In memory, written is durable.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.0.lock().expect("log lock");
        inner.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.0.lock().expect("log lock");
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        inner.purged = Some(log_id);
        Ok(())
    }
}

/// The counting state machine.
#[derive(Clone)]
struct StateMachine {
    applied_commands: Arc<AtomicU64>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        panic!("snapshots are off in this benchmark")
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<NodeId>>,
            StoredMembership<NodeId, openraft::BasicNode>,
        ),
        StorageError<NodeId>,
    > {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for e in entries {
            self.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Normal(_) => {
                    self.applied_commands.fetch_add(1, Ordering::Relaxed);
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                }
                EntryPayload::Blank => {}
            }
            replies.push(());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        panic!("snapshots are off in this benchmark")
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        panic!("snapshots are off in this benchmark")
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(None)
    }
}

/// Every node's `Raft` handle, filled once all three exist.
type Router = Arc<OnceLock<BTreeMap<NodeId, Raft>>>;

struct Network {
    router: Router,
}

struct Connection {
    target: NodeId,
    router: Router,
}

impl Connection {
    fn raft(&self) -> &Raft {
        &self
            .router
            .get()
            .expect("the router is filled before any RPC")[&self.target]
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &openraft::BasicNode) -> Connection {
        Connection {
            target,
            router: Arc::clone(&self.router),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        AppendEntriesResponse<NodeId>,
        RPCError<NodeId, openraft::BasicNode, RaftError<NodeId>>,
    > {
        self.raft()
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, openraft::BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.raft()
            .install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, openraft::BasicNode, RaftError<NodeId>>>
    {
        self.raft()
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn config() -> Arc<Config> {
    let c = Config {
        cluster_name: "bench-peers".into(),
        heartbeat_interval: 150,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        max_payload_entries: 4096,
        snapshot_policy: SnapshotPolicy::Never,
        ..Config::default()
    };
    Arc::new(c.validate().expect("a valid openraft config"))
}

async fn new_node(id: NodeId, router: Router, applied: Arc<AtomicU64>) -> Raft {
    let sm = StateMachine {
        applied_commands: applied,
        last_applied: None,
        membership: StoredMembership::default(),
    };
    Raft::new(id, config(), Network { router }, LogStore::default(), sm)
        .await
        .expect("an openraft node")
}

/// Node 1 initializes the three voters and becomes leader.
async fn form_cluster(router: &Router) {
    let rafts = router.get().expect("router filled");
    let members: BTreeSet<NodeId> = (1..=3).collect();
    rafts[&1].initialize(members).await.expect("initialize");
    rafts[&1]
        .wait(Some(Duration::from_secs(30)))
        .current_leader(1, "node 1 leads")
        .await
        .expect("openraft: no leader");
}

/// `inflight` client tasks write in a loop until `total` entries are written.
async fn clients(raft: Raft, w: Workload, meter: Arc<Meter>) -> Vec<u64> {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let payload = Bytes::from(vec![0xab; w.entry_bytes]);
    let tasks: Vec<_> = (0..w.inflight)
        .map(|_| {
            let (raft, next, done, meter, payload) = (
                raft.clone(),
                Arc::clone(&next),
                Arc::clone(&done),
                Arc::clone(&meter),
                payload.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < w.total() {
                    let started = Instant::now();
                    raft.client_write(payload.clone())
                        .await
                        .expect("openraft write");
                    let took = started.elapsed().as_nanos() as u64;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n > w.warmup {
                        latencies.push(took);
                    }
                    if n == w.warmup {
                        meter.start();
                    }
                    if n == w.total() {
                        meter.stop();
                    }
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a client task"));
    }
    all
}

/// Waits (bounded) for every node to apply every command.
async fn all_applied(applied: &[Arc<AtomicU64>], w: Workload) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied
        .iter()
        .any(|a| a.load(Ordering::Relaxed) < w.total())
    {
        assert!(
            Instant::now() < deadline,
            "openraft: a follower never applied everything"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub fn run(shape: Shape, w: Workload, meter: Arc<Meter>) -> Outcome {
    let applied: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let router: Router = Arc::new(OnceLock::new());
    let latencies = match shape {
        Shape::OneThread => {
            let rt = runtime();
            rt.block_on(async {
                let mut rafts = BTreeMap::new();
                for id in 1..=3 {
                    let raft = new_node(
                        id,
                        Arc::clone(&router),
                        Arc::clone(&applied[id as usize - 1]),
                    )
                    .await;
                    rafts.insert(id, raft);
                }
                let _ = router.set(rafts);
                form_cluster(&router).await;
                let leader = router.get().expect("router")[&1].clone();
                let latencies = clients(leader, w, meter).await;
                all_applied(&applied, w).await;
                for raft in router.get().expect("router").values() {
                    let _ = raft.shutdown().await;
                }
                latencies
            })
        }
        Shape::ThreadPerNode => {
            // Each node lives on its own thread's runtime; a handle to the
            // runtime lets the bench spawn the clients on the leader's.
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let threads: Vec<_> = (1..=3u64)
                .map(|id| {
                    let (router, applied, ready_tx, mut stop_rx) = (
                        Arc::clone(&router),
                        Arc::clone(&applied[id as usize - 1]),
                        ready_tx.clone(),
                        stop_rx.clone(),
                    );
                    std::thread::spawn(move || {
                        let rt = runtime();
                        rt.block_on(async move {
                            let raft = new_node(id, router, applied).await;
                            ready_tx
                                .send((id, raft.clone(), tokio::runtime::Handle::current()))
                                .expect("bench alive");
                            let _ = stop_rx.wait_for(|s| *s).await;
                            let _ = raft.shutdown().await;
                        });
                    })
                })
                .collect();
            let mut rafts = BTreeMap::new();
            let mut handles = BTreeMap::new();
            for _ in 0..3 {
                let (id, raft, handle) = ready_rx.recv().expect("a node thread");
                rafts.insert(id, raft);
                handles.insert(id, handle);
            }
            let _ = router.set(rafts);
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let (r, a) = (Arc::clone(&router), applied.clone());
            handles[&1].spawn(async move {
                form_cluster(&r).await;
                let leader = r.get().expect("router")[&1].clone();
                let latencies = clients(leader, w, meter).await;
                all_applied(&a, w).await;
                let _ = done_tx.send(latencies);
            });
            let latencies = done_rx.recv().expect("the leader's clients finished");
            let _ = stop_tx.send(true);
            for t in threads {
                t.join().expect("a node thread panicked");
            }
            latencies
        }
    };
    Outcome {
        latencies_ns: latencies,
        applied: applied.iter().map(|a| a.load(Ordering::Relaxed)).collect(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
