//! The driver: one thread that owns the `raft_core::Node` and obeys the
//! driver contract of `raft_core` (see its crate docs and `docs/protocol.md`).
//!
//! It waits on three channels and the node's next deadline:
//!
//! * *internal* (unbounded): commands from the handle, admin requests,
//!   storage reports (`LogPersisted`, `LogRead`) and applier reports
//!   (`SnapshotTaken`, `SnapshotInstalled`). Unbounded so the log writer and the applier never
//!   block on the driver while the driver may block on them (no cycle, no
//!   deadlock); each is bounded in practice by the work the driver handed out.
//! * *messages* (bounded, dropped when full) and *streams* (bounded, the
//!   stream's reader waits when full): what the transport received. Separate
//!   so a heartbeat never waits behind stream frames.
//!
//! The driver never waits for the disk or the FSM, so heartbeats and votes
//! never queue behind log writes, applies or snapshots: when the log
//! writer's or the applier's queue is full, it parks the operation (in
//! order) and stops reading *streams* until the worker drains, which is the
//! back-pressure on replication and, through commit, on clients. Messages
//! and internal inputs are read throughout. The only waits left on this
//! thread are the hard state's fsync (a vote must be durable before it is
//! sent) and the few fsyncs of resetting the log to an installed snapshot.
//!
//! Proposals queued behind one another become one step (one batch: one
//! `AppendLog`, one chunk per follower); every other input becomes one
//! `Node::step(now, event)` with `now` from a
//! monotonic clock; the returned actions run in order (`actions.rs`).
//! `PersistHardState` is synchronous (`HardStateStore::save` returns after
//! fsync); log operations go to the group-commit `LogWriter`, reads of
//! entries the node no longer holds (`ReadLog`) too (it answers each with
//! `LogRead`, so the driver never reads the disk); committed
//! entries and snapshots to the applier thread; sends and streams to the
//! transport.

mod actions;
pub(crate) mod applier;
mod commands;
pub(crate) mod reply;
pub(crate) mod view;

use self::applier::Applier;
use self::applier::ApplyOp;
use self::view::{Ended, View};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::storage::{
    HardStateStore, IdentityStore, LogOp, LogReport, LogWriter, LogWriterOptions, SnapshotStore,
    SnapshotWriter, Wal,
};
use crate::transport::hello::AdminResponse;
use crate::transport::{AdminCall, Transport};
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use raft_core::{
    Action, ClusterId, Completion, Event, MembershipChange, Node, NodeId, NodeOptions,
    RecoveredState, RequestId,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A reply to one client request.
pub(crate) type Reply = reply::Answer<Result<Completion, Error>>;

/// What the handle asks of the driver.
pub(crate) enum Command {
    /// Become node 1 of a new cluster.
    Initialize {
        reply: Reply,
    },
    /// Become `node` of the cluster `bootstrap` lists (or confirm it already is).
    Bootstrap {
        node: NodeId,
        bootstrap: raft_core::Bootstrap,
        reply: Reply,
    },
    /// The leader admitted this node as `node` of `cluster_id`: persist that and start.
    StartJoined {
        node: NodeId,
        cluster_id: ClusterId,
        reply: Sender<Result<(), Error>>,
    },
    Propose {
        data: Bytes,
        reply: Reply,
    },
    Read {
        reply: Reply,
    },
    ChangeMembership {
        change: MembershipChange,
        reply: Reply,
    },
    TransferLeadership {
        target: Option<NodeId>,
        reply: Reply,
    },
    Metrics {
        reply: Sender<Metrics>,
    },
    Close,
}

/// Everything the driver reacts to besides the network.
pub(crate) enum Input {
    /// An event for the core from the log writer or the applier.
    Event(Event),
    Command(Command),
    Admin(AdminCall),
    /// A worker failed: the node's durable state is unknown; stop.
    Fatal(String),
}

/// Who waits for a request's completion.
enum Pending {
    Client(Reply),
    Admin {
        joining: bool,
        reply: Sender<AdminResponse>,
    },
}

/// The driver's state. Built by the handle, then moved onto its thread.
pub(crate) struct Driver {
    pub(crate) node: Option<Node>,
    pub(crate) options: NodeOptions,
    pub(crate) seed: u64,
    pub(crate) epoch: std::time::Instant,
    pub(crate) advertise: String,
    pub(crate) hard_state: HardStateStore,
    pub(crate) identity: IdentityStore,
    /// What storage recovered, until the core node is created from it.
    pub(crate) recovered: Option<RecoveredState>,
    pub(crate) log: Option<LogWriter>,
    pub(crate) log_options: LogWriterOptions,
    pub(crate) snapshots: Arc<SnapshotStore>,
    pub(crate) incoming: Option<SnapshotWriter>,
    pub(crate) applier: Applier,
    pub(crate) transport: Transport,
    pub(crate) view: Arc<View>,
    pub(crate) internal_tx: Sender<Input>,
    pub(crate) internal_rx: Receiver<Input>,
    pub(crate) messages_rx: Receiver<Event>,
    pub(crate) streams_rx: Receiver<Event>,
    pending: HashMap<RequestId, Pending>,
    /// Log operations waiting for room in the log writer's queue, in order.
    log_parked: VecDeque<LogOp>,
    /// Applier work waiting for room in its queue, in order.
    apply_parked: VecDeque<ApplyOp>,
    next_request: u64,
    /// The buffer each step's actions are written into and executed from,
    /// reused so a step allocates no list of actions.
    actions: Vec<Action>,
    /// Set when the node must stop: the reason.
    fatal: Option<String>,
    /// An input taken from the internal channel while gathering a batch of
    /// proposals, handled before anything else is read.
    deferred: Option<Input>,
}

/// The most proposals [`Driver`] gathers into one step.
pub(crate) const PROPOSE_BATCH_MAX: usize = 1024;

/// The payload bytes past which [`Driver`] stops gathering proposals into
/// one step (a batch may exceed it by its last proposal).
pub(crate) const PROPOSE_BATCH_BYTES_MAX: usize = 1 << 20;

/// Starts the group-commit thread, reporting into the driver's internal channel.
pub(crate) fn spawn_log_writer(
    wal: Wal,
    options: LogWriterOptions,
    driver: Sender<Input>,
) -> Result<LogWriter, Error> {
    Ok(LogWriter::spawn(wal, options, move |report| {
        let input = match report {
            LogReport::Persisted { index, term } => {
                Input::Event(Event::LogPersisted { index, term })
            }
            LogReport::Read {
                reader,
                from,
                entries,
            } => Input::Event(Event::LogRead {
                reader,
                from,
                entries,
            }),
            LogReport::Failed(e) => Input::Fatal(format!("log writer failed: {e}")),
        };
        let _ = driver.send(input);
    })?)
}

/// The longest the driver sleeps without a deadline.
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often the driver retries parked work while a worker's queue is full
/// (the log writer reports after each fsync and wakes it sooner; the
/// applier does not report each batch).
const PARKED_RETRY: std::time::Duration = std::time::Duration::from_millis(1);

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        options: NodeOptions,
        seed: u64,
        advertise: String,
        hard_state: HardStateStore,
        identity: IdentityStore,
        recovered: RecoveredState,
        log: LogWriter,
        log_options: LogWriterOptions,
        snapshots: Arc<SnapshotStore>,
        applier: Applier,
        transport: Transport,
        view: Arc<View>,
        channels: (
            Sender<Input>,
            Receiver<Input>,
            Receiver<Event>,
            Receiver<Event>,
        ),
    ) -> Driver {
        let (internal_tx, internal_rx, messages_rx, streams_rx) = channels;
        Driver {
            node: None,
            options,
            seed,
            epoch: std::time::Instant::now(),
            advertise,
            hard_state,
            identity,
            recovered: Some(recovered),
            log: Some(log),
            log_options,
            snapshots,
            incoming: None,
            applier,
            transport,
            view,
            internal_tx,
            internal_rx,
            messages_rx,
            streams_rx,
            pending: HashMap::new(),
            log_parked: VecDeque::new(),
            apply_parked: VecDeque::new(),
            next_request: 0,
            actions: Vec::new(),
            fatal: None,
            deferred: None,
        }
    }

    /// The core's clock: nanoseconds since the driver was built.
    fn now(&self) -> raft_core::Instant {
        raft_core::Instant(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Runs until `Close` or a fatal error, then shuts everything down.
    pub(crate) fn run(mut self) {
        let never = crossbeam_channel::never();
        while self.fatal.is_none() {
            if let Err(e) = self.unpark() {
                self.fail(e.to_string());
                break;
            }
            let mut wait = match &self.node {
                Some(node) => {
                    let deadline = node.next_deadline();
                    std::time::Duration::from_nanos(deadline.0.saturating_sub(self.now().0))
                        .min(IDLE_WAIT)
                }
                None => IDLE_WAIT,
            };
            // A full worker queue pauses replication, never messages.
            let streams = if self.is_backlogged() {
                wait = wait.min(PARKED_RETRY);
                &never
            } else {
                &self.streams_rx
            };
            let input = match self.deferred.take() {
                Some(input) => Some(input),
                None => crossbeam_channel::select! {
                    recv(self.internal_rx) -> m => m.ok(),
                    recv(self.messages_rx) -> m => m.ok().map(Input::Event),
                    recv(streams) -> m => m.ok().map(Input::Event),
                    default(wait) => None,
                },
            };
            let keep_going = match input {
                None => {
                    self.step(Event::Tick);
                    true
                }
                Some(input) => self.handle(input),
            };
            if !keep_going {
                break;
            }
        }
        self.shut_down();
    }

    /// Whether work is parked for a worker whose queue was full.
    fn is_backlogged(&self) -> bool {
        !self.log_parked.is_empty() || !self.apply_parked.is_empty()
    }

    /// Hands parked work to the workers, in order, as far as their queues take it.
    fn unpark(&mut self) -> Result<(), Error> {
        while let Some(op) = self.log_parked.pop_front() {
            if let Err(op) = self.log_writer()?.try_submit(op)? {
                self.log_parked.push_front(op);
                break;
            }
        }
        while let Some(op) = self.apply_parked.pop_front() {
            if let Err(op) = self.applier.try_submit(op).map_err(Error::Stopped)? {
                self.apply_parked.push_front(op);
                break;
            }
        }
        Ok(())
    }

    /// Queues a log operation behind any parked one, never waiting.
    pub(crate) fn queue_log(&mut self, op: LogOp) -> Result<(), Error> {
        if !self.log_parked.is_empty() {
            self.log_parked.push_back(op);
        } else if let Err(op) = self.log_writer()?.try_submit(op)? {
            self.log_parked.push_back(op);
        }
        Ok(())
    }

    /// Queues applier work behind any parked one, never waiting.
    pub(crate) fn queue_apply(&mut self, op: ApplyOp) -> Result<(), Error> {
        if !self.apply_parked.is_empty() {
            self.apply_parked.push_back(op);
        } else if let Err(op) = self.applier.try_submit(op).map_err(Error::Stopped)? {
            self.apply_parked.push_back(op);
        }
        Ok(())
    }

    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Event(event) => self.step(event),
            Input::Command(Command::Close) => return false,
            Input::Command(command) => self.on_command(command),
            Input::Admin(call) => self.on_admin(call),
            Input::Fatal(why) => self.fail(why),
        }
        true
    }

    /// Steps the core (if it exists yet) and executes its actions in order.
    pub(crate) fn step(&mut self, event: Event) {
        let now = self.now();
        let Some(node) = self.node.as_mut() else {
            return; // not initialized or joined: nothing to tell a core
        };
        // Taken out while its actions run: executing one may step the node again
        // (which then uses a buffer of its own).
        let mut actions = std::mem::take(&mut self.actions);
        node.step_into(now, event, &mut actions);
        let mut failed = None;
        for action in actions.drain(..) {
            tracing::trace!("{action}");
            if let Err(e) = self.execute(action) {
                failed = Some(e.to_string());
                break;
            }
        }
        self.actions = actions;
        if let Some(why) = failed {
            self.fail(why);
            return;
        }
        let commit = self.node.as_ref().map(|n| n.commit_index());
        if let Some(commit) = commit {
            self.view.update(|v| v.commit = commit);
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Creates the core node, now that its id is known.
    pub(crate) fn start_node(&mut self, id: NodeId) -> Result<(), Error> {
        let recovered = self.recovered.take().unwrap_or_default();
        let options = NodeOptions {
            id,
            ..self.options.clone()
        };
        let node = Node::new(options, recovered, self.seed, self.now())?;
        tracing::Span::current().record("node", id.0);
        tracing::info!(cluster = ?node.cluster_id(), term = %node.term(), last = %node.last_index(), "node {id} started");
        self.transport.set_identity(id, node.cluster_id());
        self.transport.set_config(node.config());
        let (cluster_id, config, role, term, leader) = (
            node.cluster_id(),
            node.config().clone(),
            node.role(),
            node.term(),
            node.leader(),
        );
        self.view.update(|v| {
            v.id = Some(id);
            v.cluster_id = cluster_id;
            v.config = config;
            v.role = role;
            v.term = term;
            v.leader = leader;
        });
        self.node = Some(node);
        Ok(())
    }

    /// Stops the node after a failure that leaves its durable state unknown.
    fn fail(&mut self, why: String) {
        if self.fatal.is_none() {
            tracing::error!("stopping the node: {why}");
            self.fatal = Some(why);
        }
    }

    fn shut_down(&mut self) {
        let ended = match &self.fatal {
            Some(why) => Ended::Stopped(why.clone()),
            None => Ended::Closed,
        };
        let reason = match &ended {
            Ended::Closed => "node closed".to_string(),
            Ended::Stopped(why) => format!("node stopped: {why}"),
        };
        for (_, pending) in self.pending.drain() {
            match pending {
                Pending::Client(reply) => {
                    reply.send(Err(Error::Abandoned(reason.clone())));
                }
                Pending::Admin { reply, .. } => {
                    let _ = reply.send(AdminResponse::Unavailable(reason.clone()));
                }
            }
        }
        // Drop what the network and workers would still deliver, so no thread
        // blocks on a full channel that nobody reads any more.
        self.messages_rx = crossbeam_channel::never();
        self.streams_rx = crossbeam_channel::never();
        self.internal_rx = crossbeam_channel::never();
        self.transport.shutdown();
        if let Some(log) = self.log.take() {
            if let Err(e) = log.close() {
                tracing::warn!("closing the log: {e}");
            }
        }
        self.applier.close();
        self.incoming = None;
        self.view.end(ended);
        tracing::info!("{reason}");
    }
}
