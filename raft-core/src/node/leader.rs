//! The leader's term: heartbeats on their own channel, check-quorum, the
//! commit rule, and stepping down.

use super::cursor::Cursor;
use super::{Node, RoleState};
use crate::action::{Action, Completion};
use crate::entries::Entries;
use crate::entry::{EntryKind, LogEntry};
use crate::error::{Outcome, RequestError};
use crate::message::MessageBody;
use crate::node::FollowerStatus;
use crate::quorum::{committed_index, quorum_value};
use crate::time::Instant;
use crate::types::{LogIndex, NodeId, RequestId, Term};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

/// A read waiting for its heartbeat round to be confirmed by a quorum.
pub(crate) struct PendingRead {
    pub(crate) id: RequestId,
    pub(crate) index: LogIndex,
    pub(crate) round: u64,
}

/// A membership change (or an initialize) waiting to commit.
pub(crate) struct PendingChange {
    pub(crate) id: RequestId,
    pub(crate) index: LogIndex,
    pub(crate) node: NodeId,
    pub(crate) initialize: bool,
}

/// What a leader may serve from its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lease {
    /// Reads are safe until here (the past, before any round is confirmed).
    Until(Instant),
    /// `TimeoutNow` left this term: the target may already lead a later term,
    /// so no lease read is safe for the rest of this term, whatever rounds
    /// a quorum confirms afterwards.
    Forfeited,
}

impl Lease {
    pub(crate) fn holds_at(self, now: Instant) -> bool {
        matches!(self, Lease::Until(until) if now < until)
    }

    fn extend_to(&mut self, until: Instant) {
        if let Lease::Until(current) = self {
            *current = (*current).max(until);
        }
    }
}

/// A leadership transfer in progress.
pub(crate) struct Transfer {
    pub(crate) id: Option<RequestId>,
    pub(crate) target: NodeId,
    pub(crate) deadline: Instant,
    pub(crate) timeout_now_sent: bool,
}

/// State that exists only while leading.
pub(crate) struct LeaderState {
    /// The term led (`hs.term` moves first when a later term deposes us).
    pub(crate) term: Term,
    pub(crate) cursors: BTreeMap<NodeId, Cursor>,
    pub(crate) heartbeat_due: Instant,
    pub(crate) check_quorum_due: Instant,
    /// When idle followers that have not heard the commit index get a chunk
    /// without entries that says it (`NEVER` when none is held back).
    pub(crate) commit_notify_due: Instant,
    /// The last heartbeat round sent, and when each recent round left.
    pub(crate) round: u64,
    pub(crate) round_sent_at: VecDeque<(u64, Instant)>,
    /// The step ([`Node::steps`]) the last round left in.
    pub(crate) round_step: u64,
    /// How long lease reads are safe, if at all.
    pub(crate) lease: Lease,
    /// The first index of this term (its `Nop` or `Initialize`).
    pub(crate) term_start: LogIndex,
    pub(crate) writes: VecDeque<(LogIndex, RequestId)>,
    pub(crate) reads: VecDeque<PendingRead>,
    /// Reads that arrived before an entry of this term committed.
    pub(crate) reads_not_ready: VecDeque<RequestId>,
    pub(crate) change: Option<PendingChange>,
    pub(crate) transfer: Option<Transfer>,
    /// Reused for quorum arithmetic so a commit check allocates nothing.
    pub(crate) scratch: Vec<LogIndex>,
    /// The commit index when something last lowered the durable quorum index
    /// legally (election, a configuration change, a follower's match reset):
    /// commit never exceeds the larger of this and the quorum index now.
    pub(crate) commit_floor: LogIndex,
}

impl LeaderState {
    pub(crate) fn next_deadline(&self) -> Instant {
        let transfer = self
            .transfer
            .as_ref()
            .map_or(Instant::NEVER, |t| t.deadline);
        self.heartbeat_due
            .min(self.check_quorum_due)
            .min(self.commit_notify_due)
            .min(transfer)
    }

    pub(crate) fn follower_status(&self) -> Vec<FollowerStatus> {
        self.cursors.iter().map(|(&id, c)| c.status(id)).collect()
    }

    pub(crate) fn pending_requests(&self) -> usize {
        self.writes.len() + self.reads.len() + self.reads_not_ready.len()
    }
}

impl Node {
    pub(crate) fn leader_state(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// Whether the leader has committed an entry of its own term: only then
    /// does its commit index reflect everything committed before it (§8), and
    /// only then may it change membership.
    pub(crate) fn leader_ready(&self) -> bool {
        match &self.role {
            RoleState::Leader(l) => self.commit >= l.term_start,
            _ => false,
        }
    }

    pub(crate) fn become_leader(&mut self) {
        assert!(
            matches!(self.role, RoleState::Candidate(_)) || self.log.is_empty(),
            "node {}: only a candidate (or an initializing node) becomes leader",
            self.id()
        );
        assert_eq!(self.hs.vote, Some(self.id()), "a leader voted for itself");
        let now = self.now;
        // As in `sync_cursors_with_config`: a member an uncommitted change
        // of our log removes keeps its cursor until that change commits, or
        // it would never receive the entry that removes it.
        let committed = self.configs.at(self.commit);
        let cursors = self
            .config()
            .members
            .iter()
            .chain(committed.members.iter())
            .filter(|m| m.id != self.id())
            .map(|m| (m.id, Cursor::new(self.log.last_index().next(), now)))
            .collect();
        self.role = RoleState::Leader(Box::new(LeaderState {
            term: self.hs.term,
            cursors,
            heartbeat_due: now,
            commit_notify_due: Instant::NEVER,
            check_quorum_due: now + self.opts.election_timeout,
            round: 0,
            round_sent_at: VecDeque::new(),
            round_step: 0,
            lease: Lease::Until(Instant::ZERO),
            term_start: self.log.last_index().next(),
            writes: VecDeque::new(),
            reads: VecDeque::new(),
            reads_not_ready: VecDeque::new(),
            change: None,
            transfer: None,
            scratch: Vec::new(),
            commit_floor: self.commit,
        }));
        if !self.log.is_empty() {
            // Raft §5.4.2: entries of earlier terms commit only under one of ours.
            self.append_as_leader([(EntryKind::Nop, Bytes::new())]);
        }
        self.send_heartbeats();
    }

    /// Appends new entries of the current term and starts streaming them.
    ///
    /// The entries are gathered once, into one allocation when `items` knows
    /// its length (a `map` over a `Vec` or an array), and shared from then on
    /// by the log, the `AppendLog` and every follower's chunk.
    pub(crate) fn append_as_leader(
        &mut self,
        items: impl IntoIterator<Item = (EntryKind, Bytes)>,
    ) -> LogIndex {
        let term = self.hs.term;
        let mut index = self.log.last_index();
        let entries: Entries = items
            .into_iter()
            .map(|(kind, data)| {
                index = index.next();
                LogEntry {
                    index,
                    term,
                    kind,
                    data,
                }
            })
            .collect();
        self.log.append(entries.clone());
        let mut config_changed = false;
        for e in entries.iter().filter(|e| e.kind.is_config()) {
            let config =
                crate::config::Config::decode(&e.data).expect("the leader encodes valid configs");
            self.configs.push(e.index, config);
            config_changed = true;
        }
        self.emit(Action::AppendLog(entries));
        let now = self.now;
        if let Some(l) = self.leader_state() {
            for c in l.cursors.values_mut() {
                c.note_append(now, index);
            }
        }
        if config_changed {
            self.sync_cursors_with_config();
        }
        self.replicate_all();
        index
    }

    pub(crate) fn send_heartbeats(&mut self) {
        let now = self.now;
        let interval = self.opts.heartbeat_interval;
        let commit = self.commit;
        let step = self.steps;
        let Some(l) = self.leader_state() else { return };
        l.round += 1;
        l.round_step = step;
        let round = l.round;
        l.round_sent_at.push_back((round, now));
        while l.round_sent_at.len() > 64 {
            l.round_sent_at.pop_front();
        }
        l.heartbeat_due = now + interval;
        let beats: Vec<(NodeId, LogIndex)> = l
            .cursors
            .iter()
            .map(|(&id, c)| (id, commit.min(c.sent_through())))
            .collect();
        for (to, commit) in beats {
            self.send(to, MessageBody::Heartbeat { commit, round });
        }
        // A lone voter confirms its own rounds.
        self.confirm_rounds();
    }

    pub(crate) fn on_heartbeat_response(
        &mut self,
        from: NodeId,
        term: Term,
        round: u64,
        _streaming: bool,
    ) {
        if term > self.hs.term {
            self.step_down_to(term, None);
            return;
        }
        if term < self.hs.term {
            return;
        }
        let now = self.now;
        let Some(l) = self.leader_state() else { return };
        let Some(c) = l.cursors.get_mut(&from) else {
            return;
        };
        c.last_heard = now;
        if round <= l.round {
            c.acked_round = c.acked_round.max(round);
        }
        self.confirm_rounds();
    }

    /// The highest heartbeat round a quorum of voters has answered (the leader
    /// answers its own rounds at once).
    pub(crate) fn quorum_round(&self) -> u64 {
        let RoleState::Leader(l) = &self.role else {
            return 0;
        };
        let config = self.configs.latest();
        let rounds = config.voters().map(|v| {
            LogIndex(if v == self.id() {
                l.round
            } else {
                l.cursors.get(&v).map_or(0, |c| c.acked_round)
            })
        });
        // Every answered heartbeat and every read asks this: gathered on the
        // stack for clusters of up to `SMALL` voters rather than into a new
        // `Vec` each time (`&self`, so the leader's scratch is out of reach).
        const SMALL: usize = 16;
        let mut small = [LogIndex(0); SMALL];
        let mut n = 0;
        let mut large = Vec::new();
        for r in rounds {
            if n < SMALL {
                small[n] = r;
            } else {
                if large.is_empty() {
                    large.extend_from_slice(&small);
                }
                large.push(r);
            }
            n += 1;
        }
        // No voter at all counts as round 0 (the array's first slot).
        let rounds = if n > SMALL {
            &large[..]
        } else {
            &small[..n.max(1)]
        };
        committed_index(rounds, config.quorum().max(1)).0
    }

    /// A quorum answered a round: reads waiting on it may go, and the lease extends.
    fn confirm_rounds(&mut self) {
        let confirmed = self.quorum_round();
        let lease = self.opts.lease_duration();
        let Some(l) = self.leader_state() else { return };
        while l.round_sent_at.front().is_some_and(|&(r, _)| r < confirmed) {
            l.round_sent_at.pop_front();
        }
        if let Some(&(r, sent_at)) = l.round_sent_at.front() {
            if r == confirmed {
                l.lease.extend_to(sent_at + lease);
            }
        }
        self.serve_reads_ready();
    }

    pub(crate) fn on_leader_timers(&mut self) {
        let now = self.now;
        let Some(l) = self.leader_state() else { return };
        if now >= l.heartbeat_due {
            self.send_heartbeats();
        }
        let Some(l) = self.leader_state() else { return };
        if now >= l.check_quorum_due {
            let due = self.check_quorum_deadline();
            if now >= due {
                // Check-quorum: a leader cut off from a quorum steps down, so
                // clients stop waiting on it and the majority side can elect.
                self.become_follower(None);
                return;
            }
            if let Some(l) = self.leader_state() {
                l.check_quorum_due = due;
            }
        }
        self.on_transfer_timer();
        if self
            .leader_state()
            .is_some_and(|l| now >= l.commit_notify_due)
        {
            self.notify_commit();
        }
    }

    /// When this leader must step down unless it hears from more voters: one
    /// election timeout after the latest instant by which a quorum of voters
    /// (itself, if a voter, counting as heard now) had been heard from.
    ///
    /// Last-heard instants only move forward, so a deadline computed earlier
    /// is never later than this one while the voters stay the same: the timer
    /// need only be recomputed when it fires and when the voters change.
    fn check_quorum_deadline(&self) -> Instant {
        let me = self.id();
        let now = self.now;
        let timeout = self.opts.election_timeout;
        let config = self.configs.latest();
        let RoleState::Leader(l) = &self.role else {
            return Instant::NEVER;
        };
        let heard: Vec<Instant> = config
            .voters()
            .map(|v| {
                if v == me {
                    now
                } else {
                    l.cursors.get(&v).map_or(Instant::ZERO, |c| c.last_heard)
                }
            })
            .collect();
        let contact = quorum_value(&heard, config.quorum().max(1)).unwrap_or(Instant::ZERO);
        contact + timeout
    }

    /// Re-arms check-quorum for a new set of voters (a quorum of them may
    /// have been heard from earlier than of the old set).
    pub(crate) fn rearm_check_quorum(&mut self) {
        let due = self.check_quorum_deadline();
        if let Some(l) = self.leader_state() {
            l.check_quorum_due = due;
        }
    }

    /// The commit rule: the highest index durable on a quorum of voters, if
    /// that entry is of the current term (Raft §5.4.2).
    pub(crate) fn maybe_advance_commit(&mut self) {
        let me = self.id();
        let durable = self.log.durable();
        let config = self.configs.latest();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        l.scratch.clear();
        for v in config.voters() {
            let m = if v == me {
                durable
            } else {
                l.cursors.get(&v).map_or(LogIndex(0), |c| c.match_index)
            };
            l.scratch.push(m);
        }
        if l.scratch.is_empty() {
            return;
        }
        let q = committed_index(&l.scratch, config.quorum());
        if q <= self.commit {
            return;
        }
        let current_term_only = !self.opts.mutants().commit_by_count;
        if current_term_only && self.log.term_at(q) != Some(self.hs.term) {
            return;
        }
        self.advance_commit_to(q);
        self.on_leader_commit();
    }

    /// Everything that waits on the commit index.
    fn on_leader_commit(&mut self) {
        let commit = self.commit;
        let cluster_id = self.hs.cluster_id.expect("a leader has a cluster");
        // The completions go straight out (`role` and `out` are disjoint
        // fields): a commit allocates no list of them.
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let done = &mut self.out;
        while l.writes.front().is_some_and(|&(i, _)| i <= commit) {
            let (index, id) = l.writes.pop_front().expect("checked");
            done.push(Action::CompleteRequest {
                id,
                result: Ok(Completion::Written { index }),
            });
        }
        if l.change.as_ref().is_some_and(|c| c.index <= commit) {
            let c = l.change.take().expect("checked");
            let result = if c.initialize {
                Completion::Initialized { cluster_id }
            } else {
                Completion::MembershipChanged {
                    index: c.index,
                    node: c.node,
                    cluster_id,
                }
            };
            done.push(Action::CompleteRequest {
                id: c.id,
                result: Ok(result),
            });
        }
        let ready_reads: Vec<RequestId> = l.reads_not_ready.drain(..).collect();
        for id in ready_reads {
            self.on_read(id);
        }
        let latest = self.configs.latest();
        let removal_committed = matches!(&self.role, RoleState::Leader(l)
            if latest.index <= commit && l.cursors.keys().any(|&id| !latest.contains(id)));
        // Send the commit first, at once: a removed member learns that its
        // removal committed before its cursor goes, and the followers of a
        // leader that removed itself learn it before it steps down.
        if removal_committed || !self.is_voter() {
            self.notify_commit();
        } else {
            self.send_commit_updates();
        }
        if removal_committed {
            self.sync_cursors_with_config();
        }
        if !self.is_voter() && self.configs.latest().index <= self.commit {
            self.hand_over_after_removal();
            return;
        }
        self.maybe_promote_learner();
        self.maybe_send_timeout_now();
    }

    /// Leaving the leader role: close every stream and answer every waiting request.
    pub(crate) fn on_step_down(&mut self) {
        let RoleState::Leader(l) = std::mem::replace(
            &mut self.role,
            RoleState::Follower(super::receiver::FollowerState::new(self.hs.term, None)),
        ) else {
            unreachable!("on_step_down called on a leader")
        };
        let l = *l;
        for (&peer, c) in &l.cursors {
            if let Some(stream) = c.stream {
                self.emit(Action::CloseStream { stream, peer });
            }
        }
        let unknown = RequestError::NotLeader {
            leader: None,
            outcome: Outcome::Unknown,
        };
        let definite = RequestError::NotLeader {
            leader: None,
            outcome: Outcome::Definite,
        };
        for (_, id) in l.writes {
            self.emit(Action::CompleteRequest {
                id,
                result: Err(unknown.clone()),
            });
        }
        for r in l.reads {
            self.emit(Action::CompleteRequest {
                id: r.id,
                result: Err(definite.clone()),
            });
        }
        for id in l.reads_not_ready {
            self.emit(Action::CompleteRequest {
                id,
                result: Err(definite.clone()),
            });
        }
        if let Some(c) = l.change {
            self.emit(Action::CompleteRequest {
                id: c.id,
                result: Err(unknown.clone()),
            });
        }
        if let Some(Transfer {
            id: Some(id),
            target,
            ..
        }) = l.transfer
        {
            // Stepping down proves nothing about the target: wait to hear who
            // leads next. (`enter_term` may already have moved `hs.term`.)
            self.watch_transfer(id, target, l.term);
        }
    }
}
