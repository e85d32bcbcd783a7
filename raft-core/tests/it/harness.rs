//! Helpers of raft-core's tests that hand-build single nodes and messages.
//! The in-memory cluster they share with users is `raft_core::testing`,
//! re-exported here.
// `tests/allocations.rs` includes this file too and uses only the cluster.
#![allow(dead_code, unused_imports)]

pub use raft_core::testing::*;
use raft_core::*;

/// The cluster id of hand-built nodes and messages.
pub const CLUSTER: ClusterId = ClusterId(9);

/// A lone node of `CLUSTER` in `term`, with an empty log, no vote and no leader.
pub fn node_in_term(id: NodeId, term: u64) -> Node {
    node_restarted(id, term, Vec::new())
}

/// A lone node of `CLUSTER` restarted in `term` with `entries` on its disk
/// (no snapshot), no vote and no leader.
pub fn node_restarted(id: NodeId, term: u64, entries: Vec<LogEntry>) -> Node {
    let hard_state = HardState {
        cluster_id: Some(CLUSTER),
        term: Term(term),
        vote: None,
    };
    Node::new(
        NodeOptions::new(id),
        RecoveredState {
            hard_state,
            entries,
            ..Default::default()
        },
        1,
        Instant(0),
    )
    .expect("a consistent log")
}

/// When a node built by `node_in_term` first grants votes: it recovered a
/// term, so it refuses them for one election timeout after its start.
pub fn voting_from() -> Instant {
    Instant(0) + NodeOptions::new(NodeId(1)).election_timeout
}

/// A heartbeat of `CLUSTER` from `from` to `to` in `term`, first round.
pub fn heartbeat(from: NodeId, to: NodeId, term: u64, commit: u64) -> Message {
    Message {
        cluster_id: CLUSTER,
        from,
        to,
        term: Term(term),
        body: MessageBody::Heartbeat {
            commit: LogIndex(commit),
            round: 1,
        },
    }
}

/// The stream a node ordered opened among `actions`.
pub fn opened_stream(actions: &[Action]) -> StreamId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::OpenStream { stream, .. } => Some(*stream),
            _ => None,
        })
        .expect("the node opens a stream")
}

/// Asks `at` to hand its leadership to `target` (any caught-up voter if
/// `None`); the request's id.
pub fn request_transfer(c: &mut Cluster, at: NodeId, target: Option<NodeId>) -> RequestId {
    let id = c.request_id();
    c.push(at, Event::TransferLeadershipRequested { id, target });
    id
}
