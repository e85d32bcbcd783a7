//! Assertions about a node's state that hold after every step. A failure is
//! a bug in the core (or a driver that broke the contract): it panics with
//! the node, its term and the values that disagree.

use super::{Node, RoleState};
use crate::types::LogIndex;

impl Node {
    /// Checks every invariant of this node's state; panics on the first broken one.
    pub fn check_invariants(&self) {
        let id = self.id();
        let term = self.hs.term;
        // O(1) per step, so simulators can check after every event.
        self.log.check_ends();
        let last = self.log.last_index();
        assert!(
            self.applied <= self.commit,
            "node {id} {term}: applied {} > commit {}",
            self.applied,
            self.commit
        );
        assert!(
            self.commit <= last,
            "node {id} {term}: commit {} > last index {last}",
            self.commit
        );
        assert!(
            self.log.last_term() <= term,
            "node {id} {term}: log term {} above current term",
            self.log.last_term()
        );
        if let Some(s) = &self.snapshot {
            assert!(
                s.index <= self.commit,
                "node {id} {term}: snapshot {} beyond commit {}",
                s.index,
                self.commit
            );
            assert!(
                self.log.base_index() <= s.index,
                "node {id} {term}: log base {} past snapshot {}",
                self.log.base_index(),
                s.index
            );
        } else {
            assert_eq!(
                self.log.base_index(),
                LogIndex(0),
                "node {id} {term}: compacted without a snapshot"
            );
        }
        assert!(
            self.configs.latest().index <= last.max(self.log.base_index()),
            "node {id}: config beyond the log"
        );
        // One vote per term: once persisted, a vote stands for the rest of its term.
        if let Some((voted_term, voted_for)) = self.persisted_vote {
            if voted_term == term {
                assert_eq!(
                    self.hs.vote,
                    Some(voted_for),
                    "node {id} {term}: vote changed within the term after it was persisted"
                );
            }
        }
        match &self.role {
            RoleState::Leader(l) => {
                assert_eq!(
                    self.hs.vote,
                    Some(id),
                    "node {id} {term}: leader did not vote for itself"
                );
                for (peer, c) in &l.cursors {
                    assert!(
                        c.match_index <= last,
                        "node {id} {term}: match of {peer} {} > last {last}",
                        c.match_index
                    );
                    assert!(
                        c.next <= last.next(),
                        "node {id} {term}: next of {peer} {} > last+1",
                        c.next
                    );
                    assert!(c.stream.is_some() || c.sent_through() == c.match_index);
                }
                assert!(
                    self.log.term_at(l.term_start).is_none_or(|t| t == term),
                    "term start is ours"
                );
                // Commit <= the durable quorum index (the leader counting only
                // its own durable entries), except for what was committed before
                // the quorum index last dropped legally: a configuration change
                // (a voter removed or promoted) or a follower's match reset. The
                // simulator checks each commit against the disks' ground truth.
                let quorum_index = self.durable_quorum_index(&l.cursors);
                assert!(
                    self.commit <= quorum_index.max(l.commit_floor),
                    "node {id} {term}: commit {} above the durable quorum index {quorum_index} \
                     (floor {})",
                    self.commit,
                    l.commit_floor
                );
            }
            RoleState::Candidate(c) => {
                assert_eq!(c.term, term, "node {id}: candidate tally of another term");
                assert_eq!(
                    self.hs.vote,
                    Some(id),
                    "node {id} {term}: candidate did not vote for itself"
                );
            }
            RoleState::PreCandidate(c) => assert_eq!(
                c.term,
                term.next(),
                "node {id}: pre-vote for the wrong term"
            ),
            RoleState::Follower(f) => {
                assert_eq!(f.term, term, "node {id}: follower state of another term");
                if let Some(s) = &f.stream {
                    assert!(
                        s.validated <= last.max(self.log.base_index()),
                        "node {id}: validated past the log"
                    );
                }
            }
        }
    }
}

impl Node {
    /// The highest index durable on a quorum of the voters in force: the
    /// leader's own durable index and its followers' match indexes.
    fn durable_quorum_index(
        &self,
        cursors: &std::collections::BTreeMap<crate::types::NodeId, super::cursor::Cursor>,
    ) -> LogIndex {
        let config = self.configs.latest();
        let durable_on = |v| {
            if v == self.id() {
                self.log.durable()
            } else {
                cursors.get(&v).map_or(LogIndex(0), |c| c.match_index)
            }
        };
        // `quorum::committed_index` over the voters' durable indexes,
        // gathered on the stack: this runs after every step in debug builds
        // (and in the simulator), so it allocates nothing, and it looks each
        // follower's cursor up once rather than once per candidate.
        let quorum = config.quorum();
        let mut durable = [LogIndex(0); 16];
        let mut n = 0;
        for v in config.voters() {
            if n == durable.len() {
                // A larger cluster than any test runs: count per candidate.
                return config
                    .voters()
                    .map(durable_on)
                    .filter(|&candidate| {
                        config
                            .voters()
                            .filter(|&v| durable_on(v) >= candidate)
                            .count()
                            >= quorum
                    })
                    .max()
                    .unwrap_or(LogIndex(0));
            }
            durable[n] = durable_on(v);
            n += 1;
        }
        crate::quorum::committed_index(&durable[..n], quorum)
    }

    /// Something may lower the durable quorum index below the commit index
    /// legally: what is committed so far stays committed.
    pub(crate) fn note_quorum_index_may_drop(&mut self) {
        let commit = self.commit;
        if let RoleState::Leader(l) = &mut self.role {
            l.commit_floor = commit;
        }
    }

    /// Remembers the vote this step persisted, for the one-vote-per-term check.
    pub(crate) fn record_persisted_vote(&mut self) {
        self.persisted_vote = self.hs.vote.map(|v| (self.hs.term, v));
    }
}

#[cfg(test)]
mod tests {
    use crate::action::Action;
    use crate::event::{Event, Proposal};
    use crate::message::{Message, MessageBody};
    use crate::node::{Node, RecoveredState};
    use crate::options::NodeOptions;
    use crate::time::Instant;
    use crate::types::{ClusterId, LogIndex, NodeId, RequestId, Term};

    /// A lone node that initialized its cluster and committed its first entry.
    fn lone_leader() -> Node {
        let mut node = Node::new(
            NodeOptions::new(NodeId(1)),
            RecoveredState::default(),
            1,
            Instant(0),
        )
        .unwrap();
        let actions = node.step(
            Instant(1),
            Event::InitializeRequested {
                id: RequestId(1),
                address: "n1".into(),
            },
        );
        let last = actions
            .iter()
            .find_map(|a| match a {
                Action::AppendLog(es) => es.last().cloned(),
                _ => None,
            })
            .unwrap();
        node.step(
            Instant(2),
            Event::LogPersisted {
                index: last.index,
                term: last.term,
            },
        );
        assert_eq!(node.commit_index(), last.index);
        node
    }

    #[test]
    #[should_panic(expected = "above the durable quorum index")]
    fn a_leader_commit_beyond_its_durable_quorum_index_is_caught() {
        let mut node = lone_leader();
        node.step(
            Instant(3),
            Event::ProposeRequested {
                proposals: vec![Proposal {
                    id: RequestId(2),
                    data: "x".into(),
                }],
            },
        );
        // Appended, not yet durable: committing it would be the bug.
        node.commit = node.last_index();
        node.check_invariants();
    }

    #[test]
    #[should_panic(expected = "vote changed within the term")]
    fn a_second_vote_in_one_term_is_caught() {
        let mut node = Node::new(
            NodeOptions::new(NodeId(2)),
            RecoveredState {
                hard_state: crate::state::HardState {
                    cluster_id: Some(ClusterId(9)),
                    term: Term(1),
                    vote: None,
                },
                ..Default::default()
            },
            1,
            Instant(0),
        )
        .unwrap();
        let request = Message {
            cluster_id: ClusterId(9),
            from: NodeId(1),
            to: NodeId(2),
            term: Term(2),
            body: MessageBody::VoteRequest {
                last_index: LogIndex(0),
                last_term: Term(0),
                transfer: false,
            },
        };
        // After the restart's vote-refusal window (one election timeout).
        let timeout = NodeOptions::new(NodeId(2)).election_timeout;
        let after_window = Instant(0) + timeout + timeout;
        node.step(after_window, Event::MessageReceived(request));
        assert_eq!(node.vote(), Some(NodeId(1)));
        node.hs.vote = Some(NodeId(3));
        node.check_invariants();
    }
}
