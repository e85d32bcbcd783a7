//! Election safety (one leader per term, global knowledge that survives
//! crashes) and per-node monotonicity of term, vote and commit.

use super::Failure;
use raft_core::{HardState, LogIndex, Term};
use std::collections::BTreeMap;

/// At most one leader per term.
#[derive(Clone, Debug, Default)]
pub struct ElectionSafety {
    leaders_by_term: BTreeMap<Term, usize>,
}

impl ElectionSafety {
    /// `node` announced itself leader of `term`.
    pub fn on_leader(&mut self, node: usize, term: Term) -> Result<(), Failure> {
        match self.leaders_by_term.insert(term, node) {
            Some(other) if other != node => Err(Failure::safety(
                "election-safety",
                format!("two leaders in {term}: n{} and n{}", other + 1, node + 1),
            )),
            _ => Ok(()),
        }
    }

    /// The number of terms that had a leader.
    pub fn terms_with_leader(&self) -> usize {
        self.leaders_by_term.len()
    }
}

/// A durable hard-state change must never lower the term nor change a vote
/// within a term.
pub fn check_hard_state(node: usize, old: &HardState, new: &HardState) -> Result<(), Failure> {
    if new.term < old.term {
        return Err(Failure::safety(
            "monotonic-term",
            format!("n{} persisted {} after {}", node + 1, new.term, old.term),
        ));
    }
    if new.term == old.term && old.vote.is_some() && new.vote != old.vote {
        return Err(Failure::safety(
            "one-vote-per-term",
            format!(
                "n{} changed its vote in {} from {:?} to {:?}",
                node + 1,
                new.term,
                old.vote,
                new.vote
            ),
        ));
    }
    if old.cluster_id.is_some() && new.cluster_id != old.cluster_id {
        return Err(Failure::safety(
            "cluster-id",
            format!("n{} changed its cluster id", node + 1),
        ));
    }
    Ok(())
}

/// Commit never decreases within one incarnation.
pub fn check_commit(node: usize, old: LogIndex, new: LogIndex) -> Result<(), Failure> {
    if new < old {
        return Err(Failure::safety(
            "monotonic-commit",
            format!("n{} commit went from {} to {}", node + 1, old, new),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::NodeId;

    #[test]
    fn two_leaders_in_one_term_fail_election_safety() {
        let mut e = ElectionSafety::default();
        e.on_leader(0, Term(3)).unwrap();
        e.on_leader(0, Term(3)).unwrap();
        e.on_leader(1, Term(4)).unwrap();
        assert_eq!(
            e.on_leader(2, Term(3)).unwrap_err().checker,
            "election-safety"
        );
    }

    #[test]
    fn term_regression_and_vote_change_fail() {
        let hs = |t, v: Option<u64>| HardState {
            cluster_id: None,
            term: Term(t),
            vote: v.map(NodeId),
        };
        assert!(check_hard_state(0, &hs(2, Some(1)), &hs(3, Some(2))).is_ok());
        assert!(check_hard_state(0, &hs(2, None), &hs(2, Some(2))).is_ok());
        assert_eq!(
            check_hard_state(0, &hs(3, None), &hs(2, None))
                .unwrap_err()
                .checker,
            "monotonic-term"
        );
        assert_eq!(
            check_hard_state(0, &hs(2, Some(1)), &hs(2, Some(2)))
                .unwrap_err()
                .checker,
            "one-vote-per-term"
        );
        assert!(check_commit(0, LogIndex(5), LogIndex(4)).is_err());
    }
}
