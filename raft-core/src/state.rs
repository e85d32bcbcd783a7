//! What a node is: the durable state it keeps besides its log
//! ([`HardState`]) and the role it plays ([`Role`]).

use crate::types::{ClusterId, NodeId, Term};
use serde::{Deserialize, Serialize};

/// The durable part of a node's state besides its log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HardState {
    /// The cluster this node belongs to (`None` until it initializes or joins).
    pub cluster_id: Option<ClusterId>,
    /// The current term.
    pub term: Term,
    /// Whom this node voted for in `term`.
    pub vote: Option<NodeId>,
}

/// The role a node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking whether it could win an election, without changing its term.
    PreCandidate,
    /// Campaigning in its term.
    Candidate,
    /// Leading its term.
    Leader,
    /// A non-voting member (or a node not in the configuration): follows, never campaigns.
    Learner,
}
