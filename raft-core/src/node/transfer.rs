//! Leadership transfer (thesis §3.10): the leader stops taking proposals,
//! brings the target up to date, and sends it `TimeoutNow`; the target
//! campaigns at once and voters grant even though they heard from the old
//! leader recently. If the target has not taken over within an election
//! timeout, the transfer is abandoned.

use super::leader::{Lease, Transfer};
use super::{Node, RoleState};
use crate::action::Completion;
use crate::error::RequestError;
use crate::message::MessageBody;
use crate::types::{NodeId, RequestId};

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
            None => {
                // The most caught-up other voter.
                let best = config.voters().filter(|&v| v != me).max_by_key(|v| {
                    (
                        l.cursors.get(v).map(|c| c.match_index),
                        std::cmp::Reverse(*v),
                    )
                });
                match best {
                    Some(v) => v,
                    None => return self.complete(id, Err(RequestError::NodeNotFound(me))),
                }
            }
        };
        let deadline = self.now + self.opts.election_timeout;
        if let RoleState::Leader(l) = &mut self.role {
            l.transfer = Some(Transfer {
                id: Some(id),
                target,
                deadline,
                timeout_now_sent: false,
            });
        }
        self.maybe_send_timeout_now();
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
                self.complete(id, Err(RequestError::TransferTimedOut(t.target)));
            }
        }
    }
}
