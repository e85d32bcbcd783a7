//! Elections (Raft §5.2) with pre-vote and leader stickiness (thesis §9.6):
//! a node campaigns only after a randomized timeout in `[T, 2T)`, first asks
//! whether it could win without changing its term, and nobody grants a vote
//! while it has heard from a live leader within `T`, nor within `T` of a
//! restart (so leader leases survive restarts).

use super::receiver::FollowerState;
use super::{Node, RoleState};
use crate::error::Refusal;
use crate::message::MessageBody;
use crate::quorum::is_majority;
use crate::state::HardState;
use crate::time::Instant;
use crate::types::{LogIndex, NodeId, Term};
use std::collections::BTreeSet;

/// The tally of one campaign (pre-vote or vote).
pub(crate) struct Campaign {
    /// The term campaigned in (for a pre-vote: the term it would take).
    pub(crate) term: Term,
    pub(crate) granted: BTreeSet<NodeId>,
}

impl Node {
    /// Why this node refuses to help anyone else campaign now, if it does:
    /// it heard from a live leader within the election timeout (or is the
    /// leader), or it started less than an election timeout ago.
    ///
    /// Both windows protect leader leases. An answer to a heartbeat round
    /// promises "no vote for anyone else for `T` by my clock"; a restart
    /// forgets when that answer was given, so a restarted node keeps the
    /// promise by refusing for `T` from its start, which begins after any
    /// answer it gave before stopping. A node that never saw a term (hard
    /// state term 0) gave none and refuses nothing: a fresh cluster elects
    /// at once. A node never refuses itself: a lone voter's own campaign is
    /// not delayed, and a campaign starts no sooner than `T` after start.
    fn campaign_refusal(&self) -> Option<Refusal> {
        let heard_leader = match &self.role {
            RoleState::Leader(_) => true,
            RoleState::Follower(f) => {
                f.leader.is_some()
                    && f.last_heard
                        .is_some_and(|t| self.now < t + self.opts.election_timeout)
            }
            _ => false,
        };
        if heard_leader || self.now < self.leader_heard_until {
            Some(Refusal::LeaderAlive(self.leader()))
        } else if self.votes_refused_until.is_some_and(|t| self.now < t) {
            Some(Refusal::RecentlyStarted)
        } else {
            None
        }
    }

    /// Whether a candidate's log is at least as up to date as ours (§5.4.1).
    fn candidate_log_ok(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }

    pub(crate) fn on_election_timeout(&mut self) {
        let can_campaign =
            self.is_voter() && self.installing.is_none() && self.hs.cluster_id.is_some();
        if !can_campaign {
            // Learners and removed nodes wait; they never disrupt the cluster.
            self.reset_election_deadline();
            return;
        }
        self.become_pre_candidate();
    }

    /// Becomes (or stays) a follower of `leader` in the current term.
    pub(crate) fn become_follower(&mut self, leader: Option<NodeId>) {
        if let RoleState::Follower(f) = &self.role {
            if let (Some(_), Some(heard)) = (f.leader, f.last_heard) {
                // Its answers promised no vote for `T` from `heard`: the
                // promise outlives the follower state it was made in.
                let until = heard + self.opts.election_timeout;
                self.leader_heard_until = self.leader_heard_until.max(until);
            }
        }
        let was_leader = matches!(self.role, RoleState::Leader(_));
        if was_leader {
            self.on_step_down();
        }
        let term = self.hs.term;
        if !was_leader
            && matches!(&self.role, RoleState::Follower(f) if f.leader == leader && f.term == term)
        {
            return;
        }
        self.close_follower_stream();
        self.role = RoleState::Follower(FollowerState::new(term, leader));
        self.reset_election_deadline();
    }

    /// Moves to `term` (if higher) as a follower of `leader`, when known.
    pub(crate) fn step_down_to(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.hs.term {
            self.enter_term(term);
        }
        self.become_follower(leader);
    }

    fn become_pre_candidate(&mut self) {
        if let RoleState::Leader(_) = self.role {
            unreachable!("a leader has no election timer");
        }
        self.close_follower_stream();
        let term = self.hs.term.next();
        let mut granted = BTreeSet::new();
        granted.insert(self.id());
        self.role = RoleState::PreCandidate(Campaign { term, granted });
        self.reset_election_deadline();
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let voters: Vec<NodeId> = self.config().voters().filter(|&v| v != self.id()).collect();
        for v in voters {
            self.send_with_term(
                v,
                term,
                MessageBody::PreVoteRequest {
                    last_index,
                    last_term,
                },
            );
        }
        self.maybe_win_pre_vote();
    }

    fn maybe_win_pre_vote(&mut self) {
        if let RoleState::PreCandidate(c) = &self.role {
            if is_majority(c.granted.len(), self.config().voter_count()) {
                self.become_candidate(false);
            }
        }
    }

    pub(crate) fn become_candidate(&mut self, transfer: bool) {
        self.close_follower_stream();
        self.hs.term = self.hs.term.next();
        self.hs.vote = Some(self.id());
        self.persist_hard_state();
        let mut granted = BTreeSet::new();
        granted.insert(self.id());
        self.role = RoleState::Candidate(Campaign {
            term: self.hs.term,
            granted,
        });
        self.reset_election_deadline();
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let voters: Vec<NodeId> = self.config().voters().filter(|&v| v != self.id()).collect();
        for v in voters {
            self.send(
                v,
                MessageBody::VoteRequest {
                    last_index,
                    last_term,
                    transfer,
                },
            );
        }
        self.maybe_win_vote();
    }

    fn maybe_win_vote(&mut self) {
        if let RoleState::Candidate(c) = &self.role {
            if is_majority(c.granted.len(), self.config().voter_count()) {
                self.become_leader();
            }
        }
    }

    pub(crate) fn on_pre_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
    ) {
        let refusal = if term <= self.hs.term {
            Some(Refusal::StaleTerm {
                theirs: term,
                ours: self.hs.term,
            })
        } else if let Some(refusal) = self.campaign_refusal() {
            Some(refusal)
        } else if !self.candidate_log_ok(last_index, last_term) {
            Some(Refusal::OutOfDateLog)
        } else {
            None
        };
        // A pre-vote changes nothing here: no term, no vote, no timer.
        match refusal {
            None => self.send_with_term(from, term, MessageBody::PreVoteResponse { granted: true }),
            Some(_) => self.send(from, MessageBody::PreVoteResponse { granted: false }),
        }
    }

    pub(crate) fn on_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if !granted && term > self.hs.term {
            // The responder is in a later term: there may be a leader we missed.
            self.step_down_to(term, None);
            return;
        }
        if let RoleState::PreCandidate(c) = &mut self.role {
            if granted && term == c.term && self.configs.latest().is_voter(from) {
                c.granted.insert(from);
                self.maybe_win_pre_vote();
            }
        }
    }

    pub(crate) fn on_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
        transfer: bool,
    ) {
        if term < self.hs.term {
            self.send(from, MessageBody::VoteResponse { granted: false });
            return;
        }
        if term > self.hs.term {
            if let Some(refusal) = self.campaign_refusal().filter(|_| !transfer) {
                // Leader stickiness: a live leader exists (or may, and hold a
                // lease we helped buy before a restart), so this candidate is
                // partitioned or removed; do not let it bump our term. A
                // transfer candidate passes: the leader that sent it
                // `TimeoutNow` gave up its lease for the term.
                self.refuse(from, refusal);
                return;
            }
            self.step_down_to(term, None);
        }
        let grant = match self.hs.vote {
            Some(v) if v != from => {
                self.refuse(from, Refusal::AlreadyVoted(v));
                false
            }
            _ if !self.candidate_log_ok(last_index, last_term) => {
                self.refuse(from, Refusal::OutOfDateLog);
                false
            }
            _ => true,
        };
        if grant {
            if self.hs.vote.is_none() {
                self.hs.vote = Some(from);
                self.persist_hard_state();
            }
            self.reset_election_deadline();
        }
        self.send(from, MessageBody::VoteResponse { granted: grant });
    }

    pub(crate) fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if term > self.hs.term {
            self.step_down_to(term, None);
            return;
        }
        if let RoleState::Candidate(c) = &mut self.role {
            if granted && term == c.term && self.configs.latest().is_voter(from) {
                c.granted.insert(from);
                self.maybe_win_vote();
            }
        }
    }

    pub(crate) fn on_timeout_now(&mut self, from: NodeId, term: Term) {
        let from_our_leader = term == self.hs.term && self.leader() == Some(from);
        if from_our_leader && self.is_voter() && self.installing.is_none() {
            self.become_candidate(true);
        }
    }

    /// For tests and the simulator: the hard state this node would persist now.
    pub fn hard_state(&self) -> &HardState {
        &self.hs
    }

    /// When this node will campaign if nothing is heard (followers and candidates).
    pub fn election_deadline(&self) -> Option<Instant> {
        match self.role {
            RoleState::Leader(_) => None,
            _ => Some(self.election_deadline),
        }
    }
}
