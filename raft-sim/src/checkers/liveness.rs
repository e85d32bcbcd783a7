//! Liveness after the heal (VOPR's two phases): once every node is back up and
//! the network is calm, within the bound there must be one stable leader, new
//! client writes must commit, and every node must converge on commit and apply.

use super::Failure;
use raft_core::{LogIndex, Role, Term};

/// One node's state at judgment time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSummary {
    /// Running?
    pub up: bool,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// Its commit index.
    pub commit: LogIndex,
    /// What its state machine applied.
    pub applied: LogIndex,
}

/// Everything the judgment needs.
#[derive(Clone, Debug)]
pub struct LivenessInput<'a> {
    /// Per node.
    pub nodes: &'a [NodeSummary],
    /// Simulated nanoseconds since the last role or term change anywhere.
    pub stable_ns: u64,
    /// The election timeout.
    pub election_timeout_ns: u64,
    /// Client writes invoked after the heal that completed ok.
    pub writes_ok_after_heal: u64,
    /// Client operations still waiting longer than their timeout.
    pub stuck_ops: usize,
}

/// Judges the end of the liveness phase; the failure lists every unmet requirement.
pub fn check(input: &LivenessInput<'_>) -> Result<(), Failure> {
    let mut pending = Vec::new();
    let up: Vec<&NodeSummary> = input.nodes.iter().filter(|n| n.up).collect();
    let top = up.iter().map(|n| n.term).max().unwrap_or(Term(0));
    let leaders: Vec<&&NodeSummary> = up
        .iter()
        .filter(|n| n.role == Role::Leader && n.term == top)
        .collect();
    if leaders.len() != 1 {
        pending.push(format!(
            "{} leaders in the highest term {top}",
            leaders.len()
        ));
    }
    if input.stable_ns < 3 * input.election_timeout_ns {
        pending.push(format!(
            "roles changed {}ms before the end (need 3 election timeouts of calm)",
            input.stable_ns / 1_000_000
        ));
    }
    if input.writes_ok_after_heal == 0 {
        pending.push("no client write invoked after the heal completed ok".to_string());
    }
    if input.stuck_ops > 0 {
        pending.push(format!(
            "{} client operations hang past their timeout",
            input.stuck_ops
        ));
    }
    let commits: Vec<u64> = up.iter().map(|n| n.commit.0).collect();
    let applied: Vec<u64> = up.iter().map(|n| n.applied.0).collect();
    if commits.windows(2).any(|w| w[0] != w[1])
        || applied.windows(2).any(|w| w[0] != w[1])
        || commits != applied
    {
        pending.push(format!(
            "commit {commits:?} / applied {applied:?} have not converged"
        ));
    }
    if up.len() != input.nodes.len() {
        pending.push(format!(
            "{} of {} nodes are down",
            input.nodes.len() - up.len(),
            input.nodes.len()
        ));
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(Failure::liveness("liveness", pending.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(role: Role, term: u64, commit: u64) -> NodeSummary {
        NodeSummary {
            up: true,
            role,
            term: Term(term),
            commit: LogIndex(commit),
            applied: LogIndex(commit),
        }
    }

    fn input(nodes: &[NodeSummary]) -> LivenessInput<'_> {
        LivenessInput {
            nodes,
            stable_ns: 10_000_000_000,
            election_timeout_ns: 500_000_000,
            writes_ok_after_heal: 3,
            stuck_ops: 0,
        }
    }

    #[test]
    fn a_converged_cluster_with_one_leader_is_live() {
        let nodes = [
            node(Role::Leader, 3, 10),
            node(Role::Follower, 3, 10),
            node(Role::Follower, 3, 10),
        ];
        assert!(check(&input(&nodes)).is_ok());
    }

    #[test]
    fn no_leader_or_divergent_commit_or_no_progress_fails_with_reasons() {
        let nodes = [node(Role::Follower, 3, 10), node(Role::Follower, 3, 9)];
        let err = check(&LivenessInput {
            writes_ok_after_heal: 0,
            ..input(&nodes)
        })
        .unwrap_err();
        assert_eq!(err.checker, "liveness");
        assert!(err.message.contains("0 leaders"), "{}", err.message);
        assert!(err.message.contains("not converged"), "{}", err.message);
        assert!(err.message.contains("no client write"), "{}", err.message);
    }
}
