//! Client requests: proposals (answered with their index once committed),
//! linearizable reads (ReadIndex, or an opt-in lease), and `initialize`.

use super::leader::{PendingChange, PendingRead};
use super::{Node, RoleState};
use crate::action::{Action, Completion};
use crate::config::{Config, Member, MemberRole};
use crate::entry::EntryKind;
use crate::error::{Outcome, RequestError};
use crate::event::Proposal;
use crate::types::{ClusterId, LogIndex, RequestId, Term};
use rand_core::RngCore;

impl Node {
    pub(crate) fn complete(&mut self, id: RequestId, result: Result<Completion, RequestError>) {
        self.emit(Action::CompleteRequest { id, result });
    }

    fn not_leader(&self) -> RequestError {
        RequestError::NotLeader {
            leader: self.leader(),
            outcome: Outcome::Definite,
        }
    }

    /// Why this node cannot take a client request now, if it cannot.
    fn refuse_request(&self) -> Option<RequestError> {
        if self.hs.cluster_id.is_none() {
            return Some(RequestError::NotInitialized);
        }
        let RoleState::Leader(l) = &self.role else {
            return Some(self.not_leader());
        };
        if l.pending_requests() >= self.opts.pending_requests_max {
            return Some(RequestError::Busy);
        }
        None
    }

    pub(crate) fn on_propose(&mut self, proposals: Vec<Proposal>) {
        let refusal = self.refuse_request().or_else(|| match &self.role {
            RoleState::Leader(l) if l.transfer.is_some() => Some(RequestError::TransferInProgress),
            _ => None,
        });
        if let Some(err) = refusal {
            for p in proposals {
                self.complete(p.id, Err(err.clone()));
            }
            return;
        }
        // No temporary vectors: refuse the oversized in place, note each
        // write's index, then append the batch as one shared run of entries.
        let limit = self.opts.entry_bytes_max;
        let fits = |p: &Proposal| p.data.len() as u64 <= limit;
        let mut fitting = 0;
        for p in &proposals {
            if fits(p) {
                fitting += 1;
            } else {
                let bytes = p.data.len() as u64;
                self.complete(p.id, Err(RequestError::TooLarge { bytes, limit }));
            }
        }
        if fitting == 0 {
            return;
        }
        let first = self.log.last_index().next();
        let RoleState::Leader(l) = &mut self.role else {
            unreachable!("checked: leading")
        };
        // Their completions wait for a commit, which no step reaches before
        // the append below.
        for (i, p) in proposals.iter().filter(|p| fits(p)).enumerate() {
            l.writes.push_back((LogIndex(first.0 + i as u64), p.id));
        }
        let command = |p: Proposal| (EntryKind::Command, p.data);
        if fitting == proposals.len() {
            // A `map` over the vector: the entries in one allocation.
            self.append_as_leader(proposals.into_iter().map(command));
        } else {
            let fitting: Vec<_> = proposals.into_iter().filter(fits).map(command).collect();
            self.append_as_leader(fitting);
        }
        // A lone voter commits as soon as its own log is durable; nothing to wait for here.
    }

    pub(crate) fn on_read(&mut self, id: RequestId) {
        if let Some(err) = self.refuse_request() {
            self.complete(id, Err(err));
            return;
        }
        let ready = self.leader_ready();
        let now = self.now;
        let commit = self.commit;
        let lease_reads = self.opts.lease_reads;
        let RoleState::Leader(l) = &mut self.role else {
            unreachable!("checked")
        };
        if !ready {
            // The commit index may lag what earlier leaders committed until an
            // entry of this term commits (thesis §6.4): wait for it.
            l.reads_not_ready.push_back(id);
            return;
        }
        let lease_valid = lease_reads && l.transfer.is_none() && l.lease.holds_at(now);
        if lease_valid {
            self.complete(id, Ok(Completion::Read { index: commit }));
            return;
        }
        // ReadIndex: confirm leadership with a fresh heartbeat round; reads that
        // arrive in the same step share it. Not a round of an earlier step,
        // even at this instant: it may have been answered before this read
        // arrived, and a later term elected meanwhile (a driver whose clock
        // is coarser than a round trip, or the in-memory cluster).
        let round_fresh = l.round_step == self.steps;
        if !round_fresh {
            self.send_heartbeats();
        }
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let round = l.round;
        l.reads.push_back(PendingRead {
            id,
            index: commit,
            round,
        });
        self.serve_reads_ready();
    }

    /// Answers reads whose round a quorum confirmed.
    pub(crate) fn serve_reads_ready(&mut self) {
        if !matches!(&self.role, RoleState::Leader(l) if !l.reads.is_empty()) {
            return; // every commit comes here: skip the quorum arithmetic
        }
        let confirmed = self.quorum_round();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        while l.reads.front().is_some_and(|r| r.round <= confirmed) {
            let r = l.reads.pop_front().expect("checked");
            self.out.push(Action::CompleteRequest {
                id: r.id,
                result: Ok(Completion::Read { index: r.index }),
            });
        }
    }

    pub(crate) fn on_initialize(&mut self, id: RequestId, address: String) {
        if self.hs.cluster_id.is_some() {
            return self.complete(id, Err(RequestError::AlreadyInitialized));
        }
        // Recovery refuses a log or snapshot without a cluster id
        // (`RecoveryError::NoClusterId`) and nothing is appended before one
        // is set, so a node without one holds nothing to overwrite.
        assert!(
            self.log.is_empty() && self.snapshot.is_none(),
            "a node without a cluster id holds a log"
        );
        if address.is_empty() {
            return self.complete(id, Err(RequestError::NodeAddressRequired));
        }
        let cluster_id = ClusterId(self.rng.next_u64() | 1);
        let me = self.id();
        let config = Config {
            cluster_id,
            index: LogIndex(1),
            max_node_id: me,
            members: vec![Member {
                id: me,
                address,
                role: MemberRole::Voter,
            }],
        };
        self.hs.cluster_id = Some(cluster_id);
        self.hs.term = self.hs.term.max(Term(0)).next();
        self.hs.vote = Some(me);
        self.persist_hard_state();
        self.role = RoleState::Candidate(super::election::Campaign {
            term: self.hs.term,
            granted: [me].into_iter().collect(),
        });
        self.become_leader();
        let index = self.append_as_leader([(EntryKind::Initialize, config.encode())]);
        let RoleState::Leader(l) = &mut self.role else {
            unreachable!("just became leader")
        };
        l.change = Some(PendingChange {
            id,
            index,
            node: me,
            initialize: true,
        });
    }
}
