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
                // Commit is raised only to the durable quorum index of the
                // configuration in force at that moment (maybe_advance_commit);
                // it is not re-checked here, because a later configuration (a
                // voter removed) or a follower that lost its disk may lower the
                // quorum index below a commit that was legal when made. The
                // simulator checks each commit against the disks' ground truth.
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
