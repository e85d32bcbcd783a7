//! The user-facing handle: open a data directory, initialize or join a
//! cluster, propose commands, wait until they are applied, read
//! linearizably, change membership, and watch the node.

use crate::driver::applier::{AppliedPoint, Applier};
use crate::driver::reply::{self, Awaited, NoAnswer};
use crate::driver::view::{Ended, View, WaitError};
use crate::driver::{Command, Driver, Input, spawn_log_writer};
use crate::error::{Error, Result};
use crate::fsm::Fsm;
use crate::metrics::Metrics;
use crate::storage::{self, DataDirLock, IdentityStore, LogWriterOptions, StorageOptions};
use crate::transport::hello::{AdminRequest, AdminResponse, HelloRefusal};
use crate::transport::{self, ConnectError, Sinks, Transport, TransportOptions};
use bytes::Bytes;
use crossbeam_channel::Sender;
use raft_core::{
    Bootstrap, ClusterId, Completion, Config, LogIndex, MembershipChange, NodeId, NodeOptions,
    Outcome, RequestError, Role, Term,
};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The address to listen on, e.g. `"127.0.0.1:7001"` (port 0 picks one).
    pub listen: String,
    /// The address peers use to reach this node; default: the bound address.
    /// It is recorded in the cluster's configuration when the node
    /// initializes or joins, so a restarted node must listen there again.
    pub advertise: Option<String>,
    /// The protocol's timings and limits. `id` is ignored: a node's id is
    /// assigned by `initialize` (1) or by the leader on `join`.
    pub options: NodeOptions,
    /// Storage tunables.
    pub storage: StorageOptions,
    /// Group-commit tunables.
    pub log_writer: LogWriterOptions,
    /// Transport tunables.
    pub transport: TransportOptions,
    /// Batches of committed entries that may wait for the FSM. Default 1,024.
    pub apply_queue_max: usize,
    /// How long `propose`, `initialize` and membership changes wait for their
    /// outcome. Default 30 s.
    pub request_timeout: Duration,
    /// The seed of the core's random choices (election timeouts, cluster and
    /// stream ids). Default: fresh randomness from the OS.
    pub seed: Option<u64>,
}

impl NodeConfig {
    /// Defaults for a node listening on `listen`.
    ///
    /// ```
    /// let config = raft_io_std::NodeConfig::new("127.0.0.1:0");
    /// assert_eq!(config.options.election_timeout, raft_core::Duration::from_millis(500));
    /// ```
    pub fn new(listen: impl Into<String>) -> NodeConfig {
        NodeConfig {
            listen: listen.into(),
            advertise: None,
            options: NodeOptions::new(NodeId(1)),
            storage: StorageOptions::default(),
            log_writer: LogWriterOptions::default(),
            transport: TransportOptions::default(),
            apply_queue_max: 1024,
            request_timeout: Duration::from_secs(30),
            seed: None,
        }
    }
}

/// Data directories open in this process: a second `open` is refused.
static OPEN_DIRS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Holds a data directory open, against this process (a set of open
/// directories) and others (the directory's file lock); released when the
/// node is closed.
struct DirLock {
    dir: PathBuf,
    file: Option<DataDirLock>,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock> {
        // Durably (see `create_data_dir`); canonicalizing needs it to exist.
        storage::create_data_dir(dir)?;
        let dir = dir.canonicalize()?;
        let mut open = OPEN_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        if !open.insert(dir.clone()) {
            return Err(Error::AlreadyOpen(dir));
        }
        match DataDirLock::acquire(&dir) {
            Ok(file) => Ok(DirLock {
                dir,
                file: Some(file),
            }),
            Err(e) => {
                open.remove(&dir);
                Err(e.into())
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // The file lock first: once the set forgets the directory, this
        // process may open it again at once.
        self.file.take();
        OPEN_DIRS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.dir);
    }
}

/// A member of a replicated log: the handle to one node's driver thread.
///
/// All methods take `&self`; share the handle between threads with an `Arc`.
/// Dropping it closes the node.
///
/// ```no_run
/// use raft_io_std::{Fsm, NodeConfig, RaftNode};
/// # fn demo(fsm: impl Fsm, other_fsm: impl Fsm) -> raft_io_std::Result<()> {
/// let first = RaftNode::open("/var/lib/app/n1", NodeConfig::new("10.0.0.1:7001"), fsm)?;
/// first.initialize()?;
/// let index = first.propose("set x 1")?;      // returns once committed
/// first.wait_applied(index, std::time::Duration::from_secs(1))?; // and applied here
///
/// let second = RaftNode::open("/var/lib/app/n2", NodeConfig::new("10.0.0.2:7001"), other_fsm)?;
/// second.join("10.0.0.1:7001")?;            // any member; a follower redirects
/// # Ok(()) }
/// ```
pub struct RaftNode {
    inputs: Sender<Input>,
    view: Arc<View>,
    address: String,
    config: NodeConfig,
    driver: Mutex<Option<JoinHandle<()>>>,
    dir: Mutex<Option<DirLock>>,
    span: tracing::Span,
}

/// The longest chain of redirects a membership request follows.
const REDIRECTS_MAX: usize = 8;

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

impl RaftNode {
    /// Opens (creating if needed) the node whose data lives in `path`, binds
    /// its listener and starts its threads.
    ///
    /// A directory that already belongs to a cluster resumes: its FSM is
    /// restored from the newest snapshot and the node rejoins its peers. A new
    /// directory waits for [`RaftNode::bootstrap`], [`RaftNode::initialize`]
    /// or [`RaftNode::join`].
    pub fn open(path: impl AsRef<Path>, config: NodeConfig, fsm: impl Fsm) -> Result<RaftNode> {
        let path = path.as_ref();
        // Found now, not at `initialize` after the directory was claimed.
        NodeOptions {
            id: NodeId(1),
            ..config.options.clone()
        }
        .validate()
        .map_err(Error::InvalidConfig)?;
        let dir = DirLock::acquire(path)?;
        let (identity_store, identity) = IdentityStore::open(path)?;
        // Only the log's tail that fits the node's cache is loaded; the
        // node reads the rest back through `Action::ReadLog`.
        let opened =
            storage::open_within(path, &config.storage, config.options.log_cache_bytes_max)?;
        if let Some(torn) = &opened.torn_tail {
            tracing::warn!("recovery cut a torn log tail: {torn:?}");
        }
        let mut hard_state = opened.hard_state;
        let mut state = opened.state;
        let inconsistent = |reason: &str| Error::Inconsistent {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let has_log =
            !state.entries.is_empty() || state.stored.is_some() || state.snapshot.is_some();
        let start = match (identity, state.hard_state.cluster_id) {
            (None, Some(_)) => {
                return Err(inconsistent("a cluster's hard state but no node identity"));
            }
            (None, None) if has_log => return Err(inconsistent("a log but no node identity")),
            (None, None) => None,
            (Some(i), Some(c)) if i.cluster_id.is_some_and(|ic| ic != c) => {
                return Err(inconsistent(
                    "the identity and the hard state name different clusters",
                ));
            }
            // An initialize killed after the core persisted the new cluster's
            // hard state but before its first entry was durable: nothing of
            // that cluster was committed or seen by anyone, and a node with
            // its cluster id but no configuration could never be initialized,
            // bootstrapped or joined again. Forget the cluster (the term stays:
            // terms never go back) and wait for `initialize` anew.
            (Some(i), Some(_)) if i.cluster_id.is_none() && !has_log => {
                state.hard_state.cluster_id = None;
                hard_state.save(&state.hard_state)?;
                None
            }
            (Some(i), Some(_)) => Some(i.node_id),
            (Some(i), None) => match i.cluster_id {
                // A joiner that crashed between recording its identity and its hard state.
                Some(c) => {
                    state.hard_state.cluster_id = Some(c);
                    hard_state.save(&state.hard_state)?;
                    Some(i.node_id)
                }
                // An initialize that never reached its hard state: start afresh.
                None if has_log => return Err(inconsistent("a log but no cluster id")),
                None => None,
            },
        };

        let span = tracing::info_span!(
            "raft",
            addr = tracing::field::Empty,
            node = tracing::field::Empty
        );
        let _entered = span.enter();
        let snapshots = Arc::new(opened.snapshots);
        let mut fsm: Box<dyn Fsm> = Box::new(fsm);
        let point = match &state.snapshot {
            Some(meta) => {
                if fsm.index() < meta.index {
                    let mut reader = snapshots.reader(meta)?;
                    fsm.restore(&mut reader).map_err(Error::Fsm)?;
                    tracing::info!("FSM restored from {meta}");
                }
                AppliedPoint::at(meta)
            }
            None => AppliedPoint::default(),
        };
        let listener = TcpListener::bind(&config.listen)?;
        let address = match &config.advertise {
            Some(a) => a.clone(),
            None => listener.local_addr()?.to_string(),
        };
        span.record("addr", address.as_str());

        let (internal_tx, internal_rx) = crossbeam_channel::unbounded();
        let (messages_tx, messages_rx) =
            crossbeam_channel::bounded(config.transport.inbound_queue_max.max(1));
        let (streams_tx, streams_rx) =
            crossbeam_channel::bounded(config.transport.inbound_queue_max.max(1));
        let view = Arc::new(View::new(point.index));
        let applier = Applier::spawn(
            fsm,
            point,
            Arc::clone(&snapshots),
            Arc::clone(&view),
            internal_tx.clone(),
            config.apply_queue_max,
        )?;
        let log = spawn_log_writer(opened.wal, config.log_writer.clone(), internal_tx.clone())?;
        let admin_tx = internal_tx.clone();
        let sinks = Sinks {
            messages: messages_tx,
            streams: streams_tx,
            admin: Box::new(move |call| admin_tx.send(Input::Admin(call)).is_ok()),
        };
        let transport = Transport::start(
            listener,
            address.clone(),
            config.transport.clone(),
            sinks,
            Arc::clone(&snapshots),
        )?;
        let mut driver = Driver::new(
            config.options.clone(),
            config.seed.unwrap_or_else(random_seed),
            address.clone(),
            hard_state,
            identity_store,
            state,
            log,
            config.log_writer.clone(),
            snapshots,
            applier,
            transport,
            Arc::clone(&view),
            (internal_tx.clone(), internal_rx, messages_rx, streams_rx),
        );
        if let Some(id) = start {
            driver.start_node(id)?;
        }
        let thread_span = span.clone();
        let thread = std::thread::Builder::new()
            .name("raft-driver".into())
            .spawn(move || {
                let _entered = thread_span.enter();
                driver.run()
            })?;
        drop(_entered);
        Ok(RaftNode {
            inputs: internal_tx,
            view,
            address,
            config,
            driver: Mutex::new(Some(thread)),
            dir: Mutex::new(Some(dir)),
            span,
        })
    }

    /// The address peers reach this node at.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn ended_error(&self) -> Error {
        match self.view.ended() {
            Some(Ended::Stopped(why)) => Error::Stopped(why),
            _ => Error::Closed,
        }
    }

    /// Sends a command to the driver and waits up to `timeout` for its answer.
    fn request(
        &self,
        make: impl FnOnce(crate::driver::Reply) -> Command,
        timeout: Duration,
        outcome_on_timeout: Outcome,
    ) -> Result<Completion> {
        let answer = self.send_command(make)?;
        answer_by(
            &answer,
            Instant::now() + timeout,
            outcome_on_timeout,
            &self.view,
        )
    }

    /// Hands the driver a command carrying the answering side of a new
    /// reply; returns the waiting side. Fails once the node has ended.
    fn send_command(
        &self,
        make: impl FnOnce(crate::driver::Reply) -> Command,
    ) -> Result<Awaited<Result<Completion>>> {
        let (reply, answer) = reply::pair();
        if self.inputs.send(Input::Command(make(reply))).is_err() || self.view.ended().is_some() {
            return Err(self.ended_error());
        }
        Ok(answer)
    }

    /// Makes this node, with an empty log, the first member (id 1) of a new
    /// cluster. Returns once the cluster's first entry is committed.
    pub fn initialize(&self) -> Result<ClusterId> {
        let timeout = self.config.request_timeout;
        match self.request(
            |reply| Command::Initialize { reply },
            timeout,
            Outcome::Unknown,
        )? {
            Completion::Initialized { cluster_id } => Ok(cluster_id),
            other => Err(Error::Internal(format!("unexpected completion {other:?}"))),
        }
    }

    /// Makes this node member `id` of the new cluster `bootstrap` lists: give
    /// every member the same list (ids and the addresses they advertise) and
    /// token, each its own id, and they elect a leader among themselves; no
    /// member waits for another. Returns the cluster id (derived from the
    /// list and token) once this node holds the cluster's first entry.
    ///
    /// Calling it again with the same list, on this run or after a restart,
    /// succeeds and changes nothing; a data directory of another cluster, or
    /// of another node, is refused (`Error::Request` with
    /// [`RequestError::AlreadyInitialized`](raft_core::RequestError::AlreadyInitialized)
    /// or [`RequestError::LogExists`](raft_core::RequestError::LogExists)),
    /// as is an `id` not in the list. The guarantees
    /// when lists differ between nodes are on [`raft_core::Bootstrap`].
    ///
    /// ```no_run
    /// use raft_core::{Bootstrap, NodeId};
    /// use raft_io_std::{Fsm, NodeConfig, RaftNode};
    /// # fn demo(fsm: impl Fsm) -> raft_io_std::Result<()> {
    /// let members = (1..=3).map(|i| (NodeId(i), format!("10.0.0.{i}:7001")));
    /// let bootstrap = Bootstrap::new(0x5eed, members).expect("a valid list");
    /// // On 10.0.0.2 (and likewise on the others, each with its own id):
    /// let node = RaftNode::open("/var/lib/app/n2", NodeConfig::new("10.0.0.2:7001"), fsm)?;
    /// node.bootstrap(NodeId(2), &bootstrap)?;
    /// # Ok(()) }
    /// ```
    pub fn bootstrap(&self, id: NodeId, bootstrap: &Bootstrap) -> Result<ClusterId> {
        let timeout = self.config.request_timeout;
        let bootstrap = bootstrap.clone();
        match self.request(
            |reply| Command::Bootstrap {
                node: id,
                bootstrap,
                reply,
            },
            timeout,
            Outcome::Unknown,
        )? {
            Completion::Initialized { cluster_id } => Ok(cluster_id),
            other => Err(Error::Internal(format!("unexpected completion {other:?}"))),
        }
    }

    /// Asks the cluster that `address` (any member) belongs to for
    /// membership. A follower redirects to its leader; the leader adds this
    /// node as a learner, and answers with its id once that is committed. The
    /// node then starts, catches up, and is promoted to voter by the leader.
    ///
    /// Retries unreachable members and transient refusals (a leader not
    /// ready yet, another change in progress) until `request_timeout`.
    pub fn join(&self, address: &str) -> Result<NodeId> {
        if self.view.get().id.is_some() {
            return Err(RequestError::AlreadyInitialized.into());
        }
        let request = AdminRequest::Join {
            address: self.address.clone(),
        };
        let (node, cluster_id) = self.admin_with_retries(address, None, None, request)?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        let start = Command::StartJoined {
            node,
            cluster_id,
            reply,
        };
        if self.inputs.send(Input::Command(start)).is_err() {
            return Err(self.ended_error());
        }
        answer
            .recv()
            .map_err(|_| Error::Abandoned("node closed while joining".into()))??;
        let _entered = self.span.enter();
        tracing::info!("joined {cluster_id} as {node}");
        Ok(node)
    }

    /// The cluster of the node at `address`, as its hello check says: this
    /// node's own when it accepts this node's hello, the one it names when it
    /// refuses it as foreign (`None`: it belongs to no cluster yet). For a
    /// node that restarts with the address it was told to join: a data
    /// directory of another cluster must not resume that cluster quietly.
    ///
    /// Needs this node to belong to a cluster ([`RequestError::NotInitialized`]);
    /// [`Error::Join`] when the address cannot be asked.
    pub fn probe_cluster(&self, address: &str) -> Result<Option<ClusterId>> {
        let view = self.view.get();
        let Some(ours) = view.cluster_id else {
            return Err(RequestError::NotInitialized.into());
        };
        let opts = &self.config.transport;
        match transport::probe_cluster(opts, address, ours, view.id) {
            Ok(()) => Ok(Some(ours)),
            Err(ConnectError::Refused(HelloRefusal::ForeignCluster { ours: theirs, .. })) => {
                Ok(theirs)
            }
            Err(e) => Err(Error::Join(format!("{address}: {e}"))),
        }
    }

    /// Sends an admin request to `address`, following redirects to the
    /// leader and retrying transient failures until `request_timeout`.
    fn admin_with_retries(
        &self,
        address: &str,
        cluster_id: Option<ClusterId>,
        from: Option<NodeId>,
        request: AdminRequest,
    ) -> Result<(NodeId, ClusterId)> {
        let deadline = Instant::now() + self.config.request_timeout;
        let opts = &self.config.transport;
        let mut target = address.to_string();
        let mut redirects = 0;
        let mut backoff = opts.reconnect_backoff_min.max(Duration::from_millis(10));
        loop {
            let transient =
                match transport::admin_call(opts, &target, cluster_id, from, request.clone()) {
                    Ok(AdminResponse::Changed {
                        node, cluster_id, ..
                    }) => return Ok((node, cluster_id)),
                    Ok(AdminResponse::Redirect { address, .. }) if redirects < REDIRECTS_MAX => {
                        redirects += 1;
                        target = address;
                        continue;
                    }
                    Ok(AdminResponse::Failed(
                        e @ (RequestError::LeaderNotReady
                        | RequestError::ChangeInProgress
                        | RequestError::NotLeader { leader: None, .. }
                        | RequestError::TransferInProgress
                        | RequestError::Busy),
                    )) => e.to_string(),
                    Ok(AdminResponse::Failed(e)) => return Err(Error::Request(e)),
                    Ok(AdminResponse::Unavailable(why)) => why,
                    Ok(AdminResponse::Redirect { .. }) => "too many redirects".to_string(),
                    Err(ConnectError::Refused(r)) => {
                        return Err(Error::Join(format!("{target} refused us: {r}")));
                    }
                    Err(e) => e.to_string(),
                };
            if Instant::now() + backoff >= deadline {
                return Err(Error::Join(format!("{target}: {transient}")));
            }
            tracing::debug!(parent: &self.span, "admin request to {target} failed ({transient}); retrying");
            // Waiting out a transient refusal before asking again (not test synchronization).
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(opts.reconnect_backoff_max);
            target = address.to_string();
            redirects = 0;
        }
    }

    /// Applies a membership change here if this node leads, else forwards it
    /// to the leader.
    fn change_membership(&self, change: MembershipChange) -> Result<NodeId> {
        let timeout = self.config.request_timeout;
        let local = self.request(
            |reply| Command::ChangeMembership {
                change: change.clone(),
                reply,
            },
            timeout,
            Outcome::Unknown,
        );
        match local {
            Ok(Completion::MembershipChanged { node, .. }) => Ok(node),
            Ok(other) => Err(Error::Internal(format!("unexpected completion {other:?}"))),
            Err(Error::Request(RequestError::NotLeader {
                leader: Some(leader),
                outcome: Outcome::Definite,
            })) => {
                let view = self.view.get();
                let Some(address) = view.config.member(leader).map(|m| m.address.clone()) else {
                    return Err(RequestError::NotLeader {
                        leader: Some(leader),
                        outcome: Outcome::Definite,
                    }
                    .into());
                };
                let request = match change {
                    MembershipChange::Add { address } => AdminRequest::Add { address },
                    MembershipChange::Remove { id } => AdminRequest::Remove { id },
                    other => {
                        return Err(Error::Internal(format!(
                            "a membership change the admin protocol cannot forward: {other:?}"
                        )));
                    }
                };
                let (node, _) =
                    self.admin_with_retries(&address, view.cluster_id, view.id, request)?;
                Ok(node)
            }
            Err(e) => Err(e),
        }
    }

    /// Adds a node at `address` as a learner (promoted once caught up);
    /// returns the id it was assigned. Forwarded to the leader if needed.
    pub fn add_peer(&self, address: &str) -> Result<NodeId> {
        self.change_membership(MembershipChange::Add {
            address: address.to_string(),
        })
    }

    /// Removes member `id`. Forwarded to the leader if needed.
    pub fn remove_peer(&self, id: NodeId) -> Result<()> {
        self.change_membership(MembershipChange::Remove { id })
            .map(|_| ())
    }

    /// Removes this node from its cluster.
    pub fn leave(&self) -> Result<()> {
        let id = self.view.get().id.ok_or(RequestError::NotInitialized)?;
        self.remove_peer(id)
    }

    /// Moves leadership to `target` (or the most caught-up voter). Returns the
    /// new leader's term.
    pub fn transfer_leadership(&self, target: Option<NodeId>) -> Result<Term> {
        let timeout = self.config.request_timeout;
        let make = |reply| Command::TransferLeadership { target, reply };
        match self.request(make, timeout, Outcome::Unknown)? {
            Completion::Transferred { term } => Ok(term),
            other => Err(Error::Internal(format!("unexpected completion {other:?}"))),
        }
    }

    /// Proposes `command` for the replicated log; returns its index once it
    /// is committed (durable on a quorum), not once it is applied: the FSM
    /// runs on its own thread, and a caller that needs the result waits with
    /// [`RaftNode::wait_applied`]. Returning at commit lets a caller batch many
    /// proposals before one wait, and keeps a slow FSM from holding the
    /// request's timeout hostage.
    ///
    /// Only the leader accepts commands: a follower answers
    /// [`RequestError::NotLeader`] (in [`Error::Request`]) naming the leader it
    /// knows, whose address [`RaftNode::leader`] gives.
    pub fn propose(&self, command: impl Into<Bytes>) -> Result<LogIndex> {
        self.submit(command)?.wait()
    }

    /// Proposes `command` without waiting: what [`RaftNode::propose`] does,
    /// split in two, so one thread can keep many proposals in flight
    /// (pipelining) and wait for each later with [`PendingProposal::wait`].
    ///
    /// Proposals submitted back to back reach the log as one batch: one
    /// write, one fsync and one chunk per follower for all of them. They are
    /// appended in submission order (from one thread), so their indexes
    /// increase in that order.
    ///
    /// Fails at once only when the node has closed or stopped; everything
    /// else (not the leader, the request timeout) is the answer of `wait`.
    ///
    /// ```no_run
    /// # fn demo(node: &raft_io_std::RaftNode) -> raft_io_std::Result<()> {
    /// let pending: Vec<_> = (0..64)
    ///     .map(|i| node.submit(format!("set k{i} {i}")))
    ///     .collect::<Result<_, _>>()?;
    /// for p in pending {
    ///     let index = p.wait()?; // committed, in submission order
    ///     # let _ = index;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn submit(&self, command: impl Into<Bytes>) -> Result<PendingProposal> {
        let data = command.into();
        let deadline = Instant::now() + self.config.request_timeout;
        let answer = self.send_command(|reply| Command::Propose { data, reply })?;
        Ok(PendingProposal {
            answer,
            deadline,
            view: Arc::clone(&self.view),
        })
    }

    /// Waits until this node's FSM has applied `index`.
    pub fn wait_applied(&self, index: LogIndex, timeout: Duration) -> Result<()> {
        match self.view.wait_applied(index, Instant::now() + timeout) {
            Ok(()) => Ok(()),
            Err(WaitError::Timeout) => Err(Error::Timeout {
                outcome: Outcome::Definite,
            }),
            Err(WaitError::Ended(Ended::Closed)) => Err(Error::Closed),
            Err(WaitError::Ended(Ended::Stopped(why))) => Err(Error::Stopped(why)),
        }
    }

    /// An apply barrier: waits until this node's FSM has applied everything
    /// this node knew to be committed when called. Local (no network round,
    /// no fsync), for a
    /// follower serving possibly stale reads or a caller about to snapshot.
    /// Returns the index it waited for.
    pub fn apply_barrier(&self, timeout: Duration) -> Result<LogIndex> {
        let deadline = Instant::now() + timeout;
        let commit = self.metrics()?.commit;
        self.wait_applied(commit, deadline.saturating_duration_since(Instant::now()))?;
        Ok(commit)
    }

    /// A linearizable read barrier (ReadIndex): confirms leadership with a
    /// heartbeat round, then waits until this node's FSM has applied
    /// everything committed before the call. Read the FSM after it returns.
    /// Only the leader serves reads.
    pub fn read_barrier(&self, timeout: Duration) -> Result<LogIndex> {
        let deadline = Instant::now() + timeout;
        let index =
            match self.request(|reply| Command::Read { reply }, timeout, Outcome::Definite)? {
                Completion::Read { index } => index,
                other => return Err(Error::Internal(format!("unexpected completion {other:?}"))),
            };
        self.wait_applied(index, deadline.saturating_duration_since(Instant::now()))?;
        Ok(index)
    }

    /// The leader this node knows of, and its address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let view = self.view.get();
        let leader = view.leader?;
        let address = view.config.member(leader).map(|m| m.address.clone())?;
        Some((leader, address))
    }

    /// The role this node plays now.
    pub fn role(&self) -> Role {
        self.view.get().role
    }

    /// Its current term.
    pub fn term(&self) -> Term {
        self.view.get().term
    }

    /// Its id, once it initialized or joined.
    pub fn id(&self) -> Option<NodeId> {
        self.view.get().id
    }

    /// Its cluster, once it initialized or joined.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        self.view.get().cluster_id
    }

    /// The membership configuration in force here.
    pub fn config(&self) -> Config {
        self.view.get().config
    }

    /// The highest index this node's FSM has applied.
    pub fn applied_index(&self) -> LogIndex {
        self.view.applied()
    }

    /// Role, term, commit and applied indexes, per-follower lag and transport counters.
    pub fn metrics(&self) -> Result<Metrics> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self
            .inputs
            .send(Input::Command(Command::Metrics { reply }))
            .is_err()
        {
            return Err(self.ended_error());
        }
        answer
            .recv_timeout(self.config.request_timeout)
            .map_err(|_| self.ended_error())
    }

    /// Stops the node: pending requests fail, connections close, the log is
    /// flushed, the applier finishes what it was given, and the data
    /// directory is released. Idempotent.
    pub fn close(&self) -> Result<()> {
        let _ = self.inputs.send(Input::Command(Command::Close));
        let thread = self.driver.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.dir.lock().unwrap_or_else(|e| e.into_inner()).take();
        match self.view.ended() {
            Some(Ended::Stopped(why)) => Err(Error::Stopped(why)),
            _ => Ok(()),
        }
    }
}

/// Waits until `deadline` for the driver's answer to one request.
fn answer_by(
    answer: &Awaited<Result<Completion>>,
    deadline: Instant,
    outcome_on_timeout: Outcome,
    view: &View,
) -> Result<Completion> {
    match answer.wait_until(deadline) {
        Ok(result) => result,
        Err(NoAnswer::Timeout) => Err(Error::Timeout {
            outcome: outcome_on_timeout,
        }),
        Err(NoAnswer::Abandoned) => Err(abandoned(view)),
    }
}

/// The error of a request the driver dropped unanswered: it stopped or closed.
fn abandoned(view: &View) -> Error {
    match view.ended() {
        Some(Ended::Stopped(why)) => Error::Abandoned(why),
        _ => Error::Abandoned("node closed".into()),
    }
}

/// A proposal in flight, from [`RaftNode::submit`].
///
/// Dropping it does not withdraw the proposal: the command may still be
/// committed and applied; only its answer is lost.
#[must_use = "a proposal's outcome is known only by waiting for it"]
pub struct PendingProposal {
    answer: Awaited<Result<Completion>>,
    /// Submission plus the node's `request_timeout`.
    deadline: Instant,
    view: Arc<View>,
}

impl PendingProposal {
    /// Waits until the proposal is committed and returns its index, as
    /// [`RaftNode::propose`] does: errors are the same, and the wait ends
    /// with [`Error::Timeout`] (outcome unknown) once the node's
    /// `request_timeout` has passed since the submission.
    pub fn wait(self) -> Result<LogIndex> {
        PendingProposal::completed(answer_by(
            &self.answer,
            self.deadline,
            Outcome::Unknown,
            &self.view,
        ))
    }

    fn completed(result: Result<Completion>) -> Result<LogIndex> {
        match result? {
            Completion::Written { index } => Ok(index),
            other => Err(Error::Internal(format!("unexpected completion {other:?}"))),
        }
    }

    /// Whether the answer has arrived, so [`PendingProposal::wait`] would
    /// return at once.
    pub fn is_ready(&self) -> bool {
        self.answer.is_settled() || self.view.ended().is_some()
    }
}

/// Awaiting a pending proposal is [`PendingProposal::wait`] without
/// blocking a thread, on any executor (the answer wakes the task). It has no
/// deadline of its own: bound it with the runtime's timeout.
///
/// ```no_run
/// # async fn demo(node: &raft_io_std::RaftNode) -> raft_io_std::Result<()> {
/// let index = node.submit("set k v")?.await?;
/// # let _ = index;
/// # Ok(()) }
/// ```
impl std::future::Future for PendingProposal {
    type Output = Result<LogIndex>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<LogIndex>> {
        self.answer.poll_answer(cx).map(|answer| {
            PendingProposal::completed(match answer {
                Ok(result) => result,
                Err(_) => Err(abandoned(&self.view)),
            })
        })
    }
}

impl std::fmt::Debug for PendingProposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingProposal")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Drop for RaftNode {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let view = self.view.get();
        f.debug_struct("RaftNode")
            .field("address", &self.address)
            .field("id", &view.id)
            .field("role", &view.role)
            .field("term", &view.term)
            .finish()
    }
}
