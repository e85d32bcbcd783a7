//! Cluster membership: who votes, who only listens, and where to reach them.
//!
//! A configuration lives in the log (entries of kind `Initialize`, `AddPeer`,
//! `PromotePeer`, `RemovePeer` carry the whole new configuration, encoded) and
//! takes effect on a node as soon as it is appended, committed or not (Ongaro's
//! single-server changes). Only one change may be uncommitted at a time.

use crate::types::{ClusterId, LogIndex, NodeId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a member counts toward quorums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberRole {
    /// Votes in elections and counts toward commit quorums.
    Voter,
    /// Receives the log but neither votes nor counts; promoted once caught up.
    Learner,
}

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The member's id.
    pub id: NodeId,
    /// Where the driver reaches it (opaque to the core; `host:port` for the std adapter).
    pub address: String,
    /// Voter or learner.
    pub role: MemberRole,
}

/// The membership configuration of a cluster at one log index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// The cluster this configuration belongs to.
    pub cluster_id: ClusterId,
    /// The log index of the entry that introduced this configuration.
    pub index: LogIndex,
    /// The highest node id ever assigned; the next join gets `max_node_id + 1`.
    pub max_node_id: NodeId,
    /// Members sorted by id.
    pub members: Vec<Member>,
}

impl Config {
    /// The member with `id`, if any.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
    /// Whether `id` is a voter.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.member(id).is_some_and(|m| m.role == MemberRole::Voter)
    }
    /// Whether `id` is a member in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.member(id).is_some()
    }
    /// Ids of the voters, ascending.
    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Voter)
            .map(|m| m.id)
    }
    /// Number of voters.
    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }
    /// The smallest number of voters that forms a majority.
    pub fn quorum(&self) -> usize {
        self.voter_count() / 2 + 1
    }
    /// Encodes this configuration as the payload of a membership entry.
    pub fn encode(&self) -> bytes::Bytes {
        bytes::Bytes::from(postcard::to_allocvec(self).expect("a Config always serializes"))
    }
    /// Decodes a membership entry's payload.
    pub fn decode(bytes: &[u8]) -> Result<Config, crate::error::DecodeError> {
        let (config, rest): (Config, _) = postcard::take_from_bytes(bytes)
            .map_err(|e| crate::error::DecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(crate::error::DecodeError::Invalid(
                "trailing bytes after a config",
            ));
        }
        config.validate()?;
        Ok(config)
    }
    /// Checks the structural rules a configuration must satisfy: members sorted by
    /// unique id, ids at most `max_node_id`, non-empty unique addresses.
    pub fn validate(&self) -> Result<(), crate::error::DecodeError> {
        use crate::error::DecodeError::Invalid;
        for pair in self.members.windows(2) {
            if pair[0].id >= pair[1].id {
                return Err(Invalid("config members not sorted by unique id"));
            }
        }
        for (i, m) in self.members.iter().enumerate() {
            if m.id.0 == 0 || m.id > self.max_node_id {
                return Err(Invalid("config member id is 0 or above max_node_id"));
            }
            if m.address.is_empty() {
                return Err(Invalid("config member has an empty address"));
            }
            if self.members[..i].iter().any(|o| o.address == m.address) {
                return Err(Invalid("config has a duplicate member address"));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} {{", self.cluster_id, self.index)?;
        for (i, m) in self.members.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let tag = match m.role {
                MemberRole::Voter => "",
                MemberRole::Learner => "(l)",
            };
            write!(f, "{sep}{}{tag}", m.id)?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, role: MemberRole) -> Member {
        Member {
            id: NodeId(id),
            address: format!("node-{id}"),
            role,
        }
    }

    #[test]
    fn a_config_contains_its_voters_and_learners_and_no_one_else() {
        let config = Config {
            cluster_id: ClusterId(9),
            index: LogIndex(4),
            max_node_id: NodeId(4),
            members: vec![
                member(1, MemberRole::Voter),
                member(2, MemberRole::Learner),
                member(4, MemberRole::Voter),
            ],
        };
        assert!(config.contains(NodeId(1)) && config.is_voter(NodeId(1)));
        assert!(config.contains(NodeId(2)) && !config.is_voter(NodeId(2)));
        // Node 3 was assigned once (max_node_id is 4) and has left.
        assert!(!config.contains(NodeId(3)) && !config.is_voter(NodeId(3)));
        assert!(!config.contains(NodeId(5)));
        assert_eq!(config.voters().collect::<Vec<_>>(), [NodeId(1), NodeId(4)]);
        assert_eq!(config.quorum(), 2);
    }
}
