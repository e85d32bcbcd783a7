//! The node: all protocol state of one server, and the single entry point
//! [`Node::step`].
//!
//! The protocol is split by idea: [`election`](self) (timeouts, pre-vote,
//! votes, role changes), `leader` (heartbeats, check-quorum, commit), `cursor`
//! (the leader's per-follower stream), `receiver` (the follower's end of the
//! stream), `client` (proposals and reads), `membership`, `transfer`,
//! `snapshot`, and `invariants`.

mod bootstrap;
mod client;
mod cursor;
mod election;
mod invariants;
mod leader;
mod log;
mod log_read;
mod membership;
mod receiver;
mod recovery;
mod snapshot;
mod transfer;

use crate::action::Action;
use crate::config::Config;
use crate::entry::LogEntry;
use crate::error::{Refusal, Violation};
use crate::event::Event;
use crate::message::{Message, MessageBody, SnapshotMeta};
use crate::options::{LogSince, NodeOptions};
use crate::state::{HardState, Role};
use crate::time::{Duration, Instant};
use crate::types::{ClusterId, LogIndex, NodeId, Term};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use self::election::Campaign;
use self::leader::LeaderState;
pub(crate) use self::log::RaftLog;
use self::membership::ConfigLog;
use self::receiver::FollowerState;
pub use self::recovery::{RecoveredState, RecoveryError, StoredEntries};

/// A leader's view of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerStatus {
    /// The follower.
    pub id: NodeId,
    /// Highest index known durable on it.
    pub match_index: LogIndex,
    /// Next index to stream.
    pub next_index: LogIndex,
    /// Bytes sent but not acknowledged.
    pub inflight_bytes: u64,
    /// Whether it has an open stream.
    pub streaming: bool,
}

/// A snapshot of a node's state for metrics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Highest committed index it knows.
    pub commit: LogIndex,
    /// Highest index handed to `Apply`.
    pub applied: LogIndex,
    /// First index still in the log.
    pub first_index: LogIndex,
    /// Last index in its log.
    pub last_index: LogIndex,
    /// Highest durable index.
    pub durable: LogIndex,
    /// The first entry held in memory (past `last_index` when none is); the
    /// driver's storage serves the ones before it.
    pub cache_start: LogIndex,
    /// The bytes of the entries held in memory (see
    /// [`NodeOptions::log_cache_bytes_max`](crate::NodeOptions::log_cache_bytes_max)).
    pub cached_bytes: u64,
    /// Per-follower replication (leader only).
    pub followers: Vec<FollowerStatus>,
}

/// The role-specific state: replication cursors exist only inside a leader,
/// vote tallies only inside a campaign.
#[allow(clippy::large_enum_variant)] // one per node; boxing the follower buys nothing
pub(crate) enum RoleState {
    Follower(FollowerState),
    PreCandidate(Campaign),
    Candidate(Campaign),
    Leader(Box<LeaderState>),
}

/// One server's protocol state. See the crate docs for the driver contract.
pub struct Node {
    pub(crate) opts: NodeOptions,
    pub(crate) rng: ChaCha8Rng,
    /// The time of the step being processed.
    pub(crate) now: Instant,
    /// Steps taken so far, the current one included: tells apart steps of
    /// one instant.
    pub(crate) steps: u64,
    pub(crate) hs: HardState,
    pub(crate) log: RaftLog,
    pub(crate) configs: ConfigLog,
    pub(crate) commit: LogIndex,
    pub(crate) applied: LogIndex,
    /// The index a `ReadLog` for the apply path asked for, until its answer.
    pub(crate) apply_reading: Option<LogIndex>,
    pub(crate) snapshot: Option<SnapshotMeta>,
    /// A `TakeSnapshot` is outstanding.
    pub(crate) snapshot_requested: bool,
    /// The size of the last snapshot taken or installed (0 when unknown).
    pub(crate) snapshot_bytes: u64,
    /// The log applied after the last snapshot's index, for the snapshot policy.
    pub(crate) log_since_snapshot: LogSince,
    /// An `InstallSnapshot` is outstanding: no stream, no campaign, no apply until it lands.
    pub(crate) installing: Option<SnapshotMeta>,
    /// A snapshot arriving on the follower's stream, or the part of one that
    /// arrived before its stream broke (kept to offer to resume it on the
    /// next stream: `StreamOpen::resume`).
    pub(crate) incoming: Option<receiver::IncomingSnapshot>,
    pub(crate) role: RoleState,
    /// When a follower or candidate gives up waiting and campaigns.
    pub(crate) election_deadline: Instant,
    /// Until when a restarted node refuses votes and pre-votes: before it
    /// stopped it may have answered a leader within `T`, and that answer may
    /// back a lease (`None` for a node that never saw a term).
    pub(crate) votes_refused_until: Option<Instant>,
    /// Until when this node, having heard a leader as a follower, refuses
    /// votes and pre-votes though it no longer follows that leader: a later
    /// term learnt from an answer to an old request of its own does not
    /// release the promise its heartbeat answers made.
    pub(crate) leader_heard_until: Instant,
    /// Actions produced by the current step.
    pub(crate) out: Vec<Action>,
    /// Where in `out` this step's `PersistHardState` sits, if it has one.
    hard_state_slot: Option<usize>,
    /// What the driver was last told about role, term and leader.
    reported_role: Option<(Role, Term, Option<NodeId>)>,
    reported_config: Option<Config>,
    /// The [`ConfigLog::version`] `reported_config` was last compared
    /// with: while it holds, the comparison would find them equal again.
    reported_config_version: u64,
    /// The vote persisted by the last step, with its term: within that term
    /// it may never change (one vote per term; checked by `check_invariants`).
    persisted_vote: Option<(Term, NodeId)>,
    /// A transfer request this node took as leader and stepped down before
    /// seeing its end; it outlives the leader role.
    pub(crate) transfer_watch: Option<transfer::TransferWatch>,
}

impl Node {
    /// Builds a node from its options and what the driver recovered from disk.
    ///
    /// `rng_seed` seeds every random choice the node makes (election timeouts,
    /// cluster and stream ids), so the same seed and the same events replay the
    /// same actions. Fails, with a [`RecoveryError`] naming what disagrees,
    /// if the options are invalid or the recovered state is inconsistent.
    pub fn new(
        options: NodeOptions,
        recovered: RecoveredState,
        rng_seed: u64,
        now: Instant,
    ) -> Result<Node, RecoveryError> {
        let recovery::Recovered {
            hard_state,
            snapshot,
            log,
            configs,
        } = recovery::recover(&options, recovered)?;
        let hard_state_term = hard_state.term;
        let start = snapshot.as_ref().map_or(LogIndex(0), |s| s.index);
        let mut node = Node {
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            now,
            steps: 0,
            hs: hard_state,
            log,
            configs,
            commit: start,
            applied: start,
            apply_reading: None,
            snapshot,
            snapshot_requested: false,
            snapshot_bytes: 0,
            log_since_snapshot: LogSince::default(),
            installing: None,
            incoming: None,
            role: RoleState::Follower(FollowerState::new(hard_state_term, None)),
            election_deadline: Instant::NEVER,
            votes_refused_until: (hard_state_term > Term(0))
                .then(|| now + options.election_timeout),
            leader_heard_until: Instant::ZERO,
            out: Vec::new(),
            hard_state_slot: None,
            reported_role: None,
            reported_config: None,
            reported_config_version: 0,
            persisted_vote: None,
            transfer_watch: None,
            opts: options,
        };
        node.reset_election_deadline();
        node.reported_config = Some(node.configs.latest().clone());
        node.reported_config_version = node.configs.version();
        node.reported_role = Some((node.role(), node.hs.term, node.leader()));
        node.record_persisted_vote();
        node.check_invariants();
        Ok(node)
    }

    /// Feeds one event at time `now`; returns the actions to execute, in order.
    ///
    /// `now` must not go backwards between calls. Timers that are due at `now`
    /// fire within this step, whatever the event. The convenience form of
    /// [`Node::step_into`]: it allocates a fresh vector whenever the step has
    /// anything to say.
    pub fn step(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.step_into(now, event, &mut out);
        out
    }

    /// Feeds one event at time `now` and appends the actions to execute, in
    /// order, to `out`, after whatever it already holds.
    ///
    /// A driver that keeps one buffer per node, executes (drains) it after
    /// each step and hands it back, allocates nothing per step for the list of
    /// actions. Actions already in `out` are not looked at; the driver
    /// executes them before this step's, as if they came from an earlier
    /// `step`.
    pub fn step_into(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        // This step's actions go to the caller's buffer directly; `hard_state_slot`
        // indexes into it, so it may hold earlier actions at no cost.
        debug_assert!(self.out.is_empty(), "the last step handed over its actions");
        std::mem::swap(&mut self.out, out);
        self.step_actions(now, event);
        std::mem::swap(&mut self.out, out);
    }

    fn step_actions(&mut self, now: Instant, event: Event) {
        assert!(
            now >= self.now,
            "node {}: time went backwards from {} to {now}",
            self.id(),
            self.now
        );
        self.now = now;
        self.steps += 1;
        let commit_before = self.commit;
        let term_before = self.hs.term;
        match event {
            Event::Tick => {}
            Event::MessageReceived(m) => self.on_message(m),
            Event::StreamOpened { stream, open } => self.on_stream_opened(stream, open),
            Event::FrameReceived { stream, frame } => self.on_frame(stream, frame),
            Event::StreamClosed { stream } => self.on_stream_closed(stream),
            Event::LogPersisted { index, term } => self.on_log_persisted(index, term),
            Event::LogRead {
                reader,
                from,
                entries,
            } => self.on_log_read(reader, from, entries),
            Event::SnapshotTaken { index, bytes } => self.on_snapshot_taken(index, bytes),
            Event::SnapshotInstalled { meta } => self.on_snapshot_installed(meta),
            Event::ProposeRequested { proposals } => self.on_propose(proposals),
            Event::ReadRequested { id } => self.on_read(id),
            Event::ChangeMembershipRequested { id, change } => {
                self.on_change_membership(id, change)
            }
            Event::TransferLeadershipRequested { id, target } => self.on_transfer(id, target),
            Event::InitializeRequested { id, address } => self.on_initialize(id, address),
            Event::BootstrapRequested { id, bootstrap } => self.on_bootstrap(id, bootstrap),
        }
        self.fire_timers();
        self.maybe_settle_transfer_watch();
        self.report_changes();
        assert!(
            self.commit >= commit_before,
            "node {}: commit went back",
            self.id()
        );
        assert!(
            self.hs.term >= term_before,
            "node {}: term went back",
            self.id()
        );
        #[cfg(debug_assertions)]
        self.check_invariants();
        self.record_persisted_vote();
        self.hard_state_slot = None;
    }

    /// When the node next needs a step (a `Tick` if nothing else happens).
    pub fn next_deadline(&self) -> Instant {
        let role_deadline = match &self.role {
            RoleState::Follower(f)
                if f.leader.is_some() && f.stream.is_none() && self.installing.is_none() =>
            {
                f.reopen_at.unwrap_or(Instant::NEVER)
            }
            RoleState::Follower(_) => Instant::NEVER,
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => Instant::NEVER,
            RoleState::Leader(l) => l.next_deadline(),
        };
        let election = match &self.role {
            RoleState::Leader(_) => Instant::NEVER,
            _ => self.election_deadline,
        };
        let watch = self
            .transfer_watch
            .as_ref()
            .map_or(Instant::NEVER, |w| w.deadline);
        role_deadline.min(election).min(watch)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.opts.id
    }
    /// The options it runs with.
    pub fn options(&self) -> &NodeOptions {
        &self.opts
    }
    /// Its cluster, once initialized or joined.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        self.hs.cluster_id
    }
    /// Its current term.
    pub fn term(&self) -> Term {
        self.hs.term
    }
    /// Whom it voted for in the current term.
    pub fn vote(&self) -> Option<NodeId> {
        self.hs.vote
    }
    /// The role it plays now.
    pub fn role(&self) -> Role {
        match &self.role {
            RoleState::Leader(_) => Role::Leader,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Follower(_) if self.is_voter() => Role::Follower,
            RoleState::Follower(_) => Role::Learner,
        }
    }
    /// The leader it knows of in the current term.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(_) => Some(self.id()),
            RoleState::Follower(f) => f.leader,
            _ => None,
        }
    }
    /// The membership configuration in force (the latest appended).
    pub fn config(&self) -> &Config {
        self.configs.latest()
    }
    /// The commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }
    /// The highest index handed to the driver in `Apply`.
    pub fn applied_index(&self) -> LogIndex {
        self.applied
    }
    /// The last index in the log.
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }
    /// The term of the last entry in the log.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }
    /// The highest durable index.
    pub fn durable_index(&self) -> LogIndex {
        self.log.durable()
    }
    /// The latest snapshot this node has taken or installed.
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref()
    }
    /// The entries the node holds in memory: those from
    /// [`Status::cache_start`] on (the driver's storage holds the log).
    pub fn log_entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.log.iter()
    }
    /// The term of the entry at `index`, if the log holds it.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term_at(index)
    }
    /// Bytes sent but not yet acknowledged to each follower (leader only);
    /// unlike [`Node::status`], allocates nothing.
    pub fn inflight_bytes(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        let cursors = match &self.role {
            RoleState::Leader(l) => Some(l.cursors.iter()),
            _ => None,
        };
        cursors
            .into_iter()
            .flatten()
            .map(|(&id, c)| (id, c.status(id).inflight_bytes))
    }

    /// A summary for metrics and tests.
    pub fn status(&self) -> Status {
        Status {
            id: self.id(),
            role: self.role(),
            term: self.hs.term,
            leader: self.leader(),
            commit: self.commit,
            applied: self.applied,
            first_index: self.log.base_index().next(),
            last_index: self.log.last_index(),
            durable: self.log.durable(),
            cache_start: self.log.cache_start(),
            cached_bytes: self.log.cached_bytes(),
            followers: match &self.role {
                RoleState::Leader(l) => l.follower_status(),
                _ => Vec::new(),
            },
        }
    }

    // ----- shared helpers -----

    pub(crate) fn is_voter(&self) -> bool {
        self.configs.latest().is_voter(self.id())
    }

    /// Draws an election timeout in `[T, 2T)`.
    pub(crate) fn random_election_timeout(&mut self) -> Duration {
        let t = self.opts.election_timeout.as_nanos();
        Duration(t + self.rng.next_u64() % t.max(1))
    }

    pub(crate) fn reset_election_deadline(&mut self) {
        let timeout = self.random_election_timeout();
        self.election_deadline = self.now + timeout;
    }

    pub(crate) fn emit(&mut self, action: Action) {
        self.out.push(action);
    }

    /// Orders the hard state durable. Within one step a single write suffices:
    /// a later change updates the write already ordered, which precedes every
    /// action that depends on either value (a newer term or vote on disk is
    /// never less safe), so an election costs one fsync, not two.
    pub(crate) fn persist_hard_state(&mut self) {
        let hs = self.hs.clone();
        match self.hard_state_slot {
            Some(i) => self.out[i] = Action::PersistHardState(hs),
            None => {
                self.hard_state_slot = Some(self.out.len());
                self.emit(Action::PersistHardState(hs));
            }
        }
    }

    /// Sends a datagram to `to` in the current term.
    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.hs.term, body);
    }

    pub(crate) fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let cluster_id = self
            .hs
            .cluster_id
            .expect("only a node of a cluster sends messages");
        self.emit(Action::Send(Message {
            cluster_id,
            from: self.id(),
            to,
            term,
            body,
        }));
    }

    pub(crate) fn refuse(&mut self, peer: NodeId, reason: Refusal) {
        self.emit(Action::Refused { peer, reason });
    }

    /// Moves to a higher term, forgetting the vote; durable before anything else.
    pub(crate) fn enter_term(&mut self, term: Term) {
        assert!(
            term > self.hs.term,
            "node {}: entering term {term} from {}",
            self.id(),
            self.hs.term
        );
        self.hs.term = term;
        self.hs.vote = None;
        self.persist_hard_state();
    }

    /// Checks the envelope every datagram carries; `false` means dropped.
    fn admit(&mut self, m: &Message) -> bool {
        if self.hs.cluster_id != Some(m.cluster_id) {
            self.refuse(
                m.from,
                Refusal::ForeignCluster {
                    theirs: m.cluster_id,
                    ours: self.hs.cluster_id,
                },
            );
            return false;
        }
        if m.to != self.id() {
            self.refuse(m.from, Refusal::Misdirected(m.to));
            return false;
        }
        if m.term > Term::LIMIT {
            // Entering it could leave no next term to campaign in.
            self.refuse(
                m.from,
                Refusal::Misbehaving(Violation::TermExhausted(m.term)),
            );
            return false;
        }
        m.from != self.id()
    }

    fn on_message(&mut self, m: Message) {
        if !self.admit(&m) {
            return;
        }
        match m.body {
            MessageBody::PreVoteRequest {
                last_index,
                last_term,
            } => self.on_pre_vote_request(m.from, m.term, last_index, last_term),
            MessageBody::PreVoteResponse { granted } => {
                self.on_pre_vote_response(m.from, m.term, granted)
            }
            MessageBody::VoteRequest {
                last_index,
                last_term,
                transfer,
            } => self.on_vote_request(m.from, m.term, last_index, last_term, transfer),
            MessageBody::VoteResponse { granted } => self.on_vote_response(m.from, m.term, granted),
            MessageBody::Heartbeat { commit, round } => {
                self.on_heartbeat(m.from, m.term, commit, round)
            }
            MessageBody::HeartbeatResponse { round, streaming } => {
                self.on_heartbeat_response(m.from, m.term, round, streaming)
            }
            MessageBody::TimeoutNow => self.on_timeout_now(m.from, m.term),
        }
    }

    fn on_frame(&mut self, stream: crate::types::StreamId, frame: crate::message::Frame) {
        match self.role {
            RoleState::Leader(_) => self.on_leader_frame(stream, frame),
            RoleState::Follower(_) => self.on_follower_frame(stream, frame),
            _ => {}
        }
    }

    fn on_stream_closed(&mut self, stream: crate::types::StreamId) {
        match self.role {
            RoleState::Leader(_) => self.on_leader_stream_closed(stream),
            RoleState::Follower(_) => self.on_follower_stream_closed(stream),
            _ => {}
        }
    }

    fn on_log_persisted(&mut self, index: LogIndex, term: Term) {
        if self.log.mark_durable(index, term) {
            self.on_durable_advanced();
        }
    }

    /// More of the log is durable: a follower acks it, a leader may commit it.
    pub(crate) fn on_durable_advanced(&mut self) {
        match &self.role {
            RoleState::Leader(_) => self.maybe_advance_commit(),
            RoleState::Follower(_) => self.maybe_ack(),
            _ => {}
        }
    }

    /// Raises the commit index (never lowers it) and applies what it covers.
    pub(crate) fn advance_commit_to(&mut self, index: LogIndex) {
        if index <= self.commit {
            return;
        }
        assert!(
            index <= self.log.last_index(),
            "node {}: commit {index} past last index {}",
            self.id(),
            self.log.last_index()
        );
        self.commit = index;
        self.apply_committed();
    }

    /// Hands committed entries to the driver, in batches.
    pub(crate) fn apply_committed(&mut self) {
        if self.installing.is_some() {
            return;
        }
        while self.applied < self.commit {
            let from = self.applied.next();
            let count =
                ((self.commit.0 - self.applied.0) as usize).min(self.opts.batch_entries_max);
            if from < self.log.cache_start() {
                // Evicted from memory: `on_apply_log_read` applies them.
                self.read_for_apply(from);
                break;
            }
            let batch = self.log.slice(from, count, u64::MAX);
            assert_eq!(batch.len(), count, "committed entries are in the log");
            self.apply_batch(batch);
        }
        self.maybe_request_snapshot();
        if let RoleState::Leader(_) = self.role {
            self.serve_reads_ready();
        }
    }

    fn fire_timers(&mut self) {
        if matches!(self.role, RoleState::Leader(_)) {
            self.on_leader_timers();
        } else {
            if self.now >= self.election_deadline {
                self.on_election_timeout();
            }
            self.maybe_open_stream();
        }
    }

    /// Emits `RoleChanged`/`ConfigChanged` for whatever changed in this step.
    fn report_changes(&mut self) {
        let now_role = (self.role(), self.hs.term, self.leader());
        if self.reported_role != Some(now_role) {
            self.reported_role = Some(now_role);
            self.emit(Action::RoleChanged {
                role: now_role.0,
                term: now_role.1,
                leader: now_role.2,
            });
        }
        if self.reported_config_version == self.configs.version() {
            return;
        }
        self.reported_config_version = self.configs.version();
        if self.reported_config.as_ref() != Some(self.configs.latest()) {
            let c = self.configs.latest().clone();
            self.reported_config = Some(c.clone());
            self.emit(Action::ConfigChanged(c));
        }
    }
}
