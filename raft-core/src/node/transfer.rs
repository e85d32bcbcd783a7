//! Leadership transfer (thesis §3.10): the leader stops taking proposals,
//! brings the target up to date, and sends it `TimeoutNow`; the target
//! campaigns at once and voters grant even though they heard from the old
//! leader recently. If the target has not taken over within an election
//! timeout, the transfer is abandoned.
//!
//! Success is reported only on evidence: a leader that steps down with a
//! transfer pending (whatever the cause: the target's campaign, check-quorum,
//! another node's later term) keeps the request in a [`TransferWatch`] and
//! answers it once it hears a leader of a later term (the target:
//! `Transferred`; anyone else: `TransferSuperseded`), or after an election
//! timeout of silence (`TransferUnconfirmed`).

use super::leader::{Lease, Transfer};
use super::{Node, RoleState};
use crate::action::Completion;
use crate::error::RequestError;
use crate::message::MessageBody;
use crate::time::Instant;
use crate::types::{NodeId, RequestId, Term};

/// A transfer whose leader stepped down before seeing how it ended.
pub(crate) struct TransferWatch {
    id: RequestId,
    target: NodeId,
    /// The term the node led when it stepped down.
    term: Term,
    /// When to give up waiting for a successor.
    pub(crate) deadline: Instant,
}

impl Node {
    pub(crate) fn on_transfer(&mut self, id: RequestId, target: Option<NodeId>) {
        let me = self.id();
        let config = self.configs.latest();
        let RoleState::Leader(l) = &self.role else {
            let err = RequestError::NotLeader {
                leader: self.leader(),
                outcome: crate::error::Outcome::Definite,
            };
            return self.complete(id, Err(err));
        };
        if l.transfer.is_some() {
            return self.complete(id, Err(RequestError::TransferInProgress));
        }
        let target = match target {
            Some(t) if t == me => {
                return self.complete(id, Ok(Completion::Transferred { term: self.hs.term }));
            }
            Some(t) if !config.is_voter(t) => {
                return self.complete(id, Err(RequestError::NodeNotFound(t)));
            }
            Some(t) => t,
            None => match self.most_caught_up_voter() {
                Some(v) => v,
                None => return self.complete(id, Err(RequestError::NodeNotFound(me))),
            },
        };
        self.start_transfer(Some(id), target);
    }

    /// The other voter with the highest match index (the lowest id on a tie).
    fn most_caught_up_voter(&self) -> Option<NodeId> {
        let me = self.id();
        let RoleState::Leader(l) = &self.role else {
            return None;
        };
        self.configs
            .latest()
            .voters()
            .filter(|&v| v != me)
            .max_by_key(|v| {
                (
                    l.cursors.get(v).map(|c| c.match_index),
                    std::cmp::Reverse(*v),
                )
            })
    }

    fn start_transfer(&mut self, id: Option<RequestId>, target: NodeId) {
        let deadline = self.now + self.opts.election_timeout;
        if let RoleState::Leader(l) = &mut self.role {
            l.transfer = Some(Transfer {
                id,
                target,
                deadline,
                timeout_now_sent: false,
            });
        }
        self.maybe_send_timeout_now();
    }

    /// Whether this node leads a configuration that no longer has it as a
    /// voter, and that configuration has committed.
    fn removal_committed(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
            && !self.is_voter()
            && self.configs.latest().index <= self.commit
    }

    /// Our own removal committed: rather than leave the cluster leaderless
    /// for an election timeout, hand leadership to the most caught-up voter
    /// (a transfer already under way keeps its target), then step down.
    pub(crate) fn hand_over_after_removal(&mut self) {
        if !self.removal_committed() {
            return;
        }
        let transferring = matches!(&self.role, RoleState::Leader(l) if l.transfer.is_some());
        match self.most_caught_up_voter() {
            Some(target) if !transferring => self.start_transfer(None, target),
            _ => self.maybe_step_down_after_removal(),
        }
    }

    /// Steps down a leader whose removal committed once there is nothing left
    /// to hand over: `TimeoutNow` has left, or the transfer was abandoned.
    fn maybe_step_down_after_removal(&mut self) {
        let handing_over = matches!(&self.role,
            RoleState::Leader(l) if l.transfer.as_ref().is_some_and(|t| !t.timeout_now_sent));
        if self.removal_committed() && !handing_over {
            self.become_follower(None);
        }
    }

    /// Sends `TimeoutNow` once the target holds our whole log durably.
    pub(crate) fn maybe_send_timeout_now(&mut self) {
        let last = self.log.last_index();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let Some(t) = l.transfer.as_mut() else { return };
        if t.timeout_now_sent {
            return;
        }
        let caught_up = l
            .cursors
            .get(&t.target)
            .is_some_and(|c| c.match_index >= last);
        if caught_up {
            t.timeout_now_sent = true;
            // The target campaigns past every follower's stickiness, so the
            // quorum that backs our lease no longer protects it.
            l.lease = Lease::Forfeited;
            let target = t.target;
            self.send(target, MessageBody::TimeoutNow);
            self.maybe_step_down_after_removal();
        }
    }

    pub(crate) fn on_transfer_timer(&mut self) {
        let now = self.now;
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        if l.transfer.as_ref().is_some_and(|t| now >= t.deadline) {
            let t = l.transfer.take().expect("checked");
            if let Some(id) = t.id {
                // Once `TimeoutNow` left, the target may still act on it.
                let err = if t.timeout_now_sent {
                    RequestError::TransferUnconfirmed(t.target)
                } else {
                    RequestError::TransferTimedOut(t.target)
                };
                self.complete(id, Err(err));
            }
            self.maybe_step_down_after_removal();
            // Promotions wait while a transfer runs: a learner that caught
            // up meanwhile is promoted now, not at the next write.
            self.maybe_promote_learner();
        }
    }

    /// Keeps a stepped-down leader's transfer request until its outcome is known.
    pub(crate) fn watch_transfer(&mut self, id: RequestId, target: NodeId, term: Term) {
        let watch = TransferWatch {
            id,
            target,
            term,
            deadline: self.now + self.opts.election_timeout,
        };
        if let Some(old) = self.transfer_watch.replace(watch) {
            // Only a leader starts a transfer, and becoming leader settles any
            // watch (it leads a later term), so this is an older one's end.
            self.complete(old.id, Err(RequestError::TransferUnconfirmed(old.target)));
        }
    }

    /// Answers a watched transfer once a leader of a later term is known, or
    /// once the wait is over.
    pub(crate) fn maybe_settle_transfer_watch(&mut self) {
        let Some(w) = &self.transfer_watch else {
            return;
        };
        let term = self.hs.term;
        let result = match self.leader() {
            Some(leader) if term > w.term && leader == w.target => {
                Ok(Completion::Transferred { term })
            }
            Some(leader) if term > w.term => Err(RequestError::TransferSuperseded {
                target: w.target,
                leader,
                term,
            }),
            _ if self.now >= w.deadline => Err(RequestError::TransferUnconfirmed(w.target)),
            _ => return,
        };
        let id = w.id;
        self.transfer_watch = None;
        self.complete(id, result);
    }
}
