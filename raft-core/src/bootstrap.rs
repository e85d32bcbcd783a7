//! Static bootstrap: every node of a new cluster starts from the same member
//! list, instead of one node initializing and the others joining one by one.
//!
//! The operator gives every node the same [`Bootstrap`] (a token and the
//! voters with their addresses) and steps it with
//! [`Event::BootstrapRequested`](crate::Event::BootstrapRequested). Each node
//! then holds the same first entry, index 1 and term 1, of kind
//! [`EntryKind::Initialize`] carrying the list, and elects a leader the usual
//! way. The guarantees:
//!
//! * **The cluster id is derived from the token and the list** (as etcd
//!   derives its cluster id from `--initial-cluster` and
//!   `--initial-cluster-token`). Two nodes given different lists (or tokens)
//!   get different cluster ids, so they refuse each other's messages and
//!   streams ([`Refusal::ForeignCluster`](crate::Refusal::ForeignCluster)):
//!   within one cluster id, entry 1/1 is the same on every node, so log
//!   matching holds from the first entry on. A node given a list that
//!   differs from its peers' is a cluster of its own that never reaches a
//!   quorum of the others: it is visible (refusals), never unsafe.
//! * **A node that already has state is never overwritten.** Bootstrapping a
//!   node of another cluster fails with `AlreadyInitialized`; a node whose
//!   entry 1 differs fails with `LogExists`. Bootstrapping a node with the
//!   same list again is idempotent: it succeeds and changes nothing, so a
//!   driver may repeat its bootstrap on every restart (and one that crashed
//!   before the first entry was durable finishes it).
//! * **Every node must be in the list** it is bootstrapped with, else
//!   `NodeNotFound`: a node outside it would belong to a cluster that does
//!   not count it.
//!
//! Nodes added later join dynamically; their ids continue after the highest
//! id of the list.

use crate::config::{Config, Member, MemberRole};
use crate::entry::{EntryKind, LogEntry};
use crate::types::{ClusterId, LogIndex, NodeId, Term};
use std::fmt;
use thiserror::Error;

/// The member list (all voters) and token that a new cluster starts from.
///
/// ```
/// use raft_core::{Bootstrap, NodeId};
/// let members = [(NodeId(1), "10.0.0.1:7001"), (NodeId(2), "10.0.0.2:7001"), (NodeId(3), "10.0.0.3:7001")];
/// let a = Bootstrap::new(7, members.map(|(id, a)| (id, a.to_string()))).unwrap();
/// let b = Bootstrap::new(7, members.map(|(id, a)| (id, a.to_string())).into_iter().rev()).unwrap();
/// assert_eq!(a.cluster_id(), b.cluster_id()); // the order given does not matter
/// let other = Bootstrap::new(8, members.map(|(id, a)| (id, a.to_string()))).unwrap();
/// assert_ne!(a.cluster_id(), other.cluster_id()); // the token does
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bootstrap {
    token: u64,
    config: Config,
}

/// A member list a cluster cannot start from.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum BootstrapError {
    /// No members.
    #[error("a bootstrap needs at least one member")]
    NoMembers,
    /// Node id 0 is reserved.
    #[error("node id 0 is reserved")]
    ZeroNodeId,
    /// Two members with one id.
    #[error("duplicate node id: {0}")]
    DuplicateNodeId(NodeId),
    /// A member without an address.
    #[error("node {0} has no address")]
    NodeAddressRequired(NodeId),
    /// Two members with one address.
    #[error("duplicate node address: {0}")]
    DuplicateNodeAddress(String),
}

impl Bootstrap {
    /// The list of voters (in any order) and a token that tells this cluster
    /// apart from others with the same list (say, a fresh random number per
    /// cluster, or a deployment's name hashed).
    pub fn new(
        token: u64,
        members: impl IntoIterator<Item = (NodeId, String)>,
    ) -> Result<Bootstrap, BootstrapError> {
        let mut members: Vec<Member> = members
            .into_iter()
            .map(|(id, address)| Member {
                id,
                address,
                role: MemberRole::Voter,
            })
            .collect();
        members.sort_by_key(|m| m.id);
        for (i, m) in members.iter().enumerate() {
            if m.id.0 == 0 {
                return Err(BootstrapError::ZeroNodeId);
            }
            if i > 0 && members[i - 1].id == m.id {
                return Err(BootstrapError::DuplicateNodeId(m.id));
            }
            if m.address.is_empty() {
                return Err(BootstrapError::NodeAddressRequired(m.id));
            }
            if members[..i].iter().any(|o| o.address == m.address) {
                return Err(BootstrapError::DuplicateNodeAddress(m.address.clone()));
            }
        }
        let max_node_id = members.last().ok_or(BootstrapError::NoMembers)?.id;
        let cluster_id = derive_cluster_id(token, &members);
        let config = Config {
            cluster_id,
            index: LogIndex(1),
            max_node_id,
            members,
        };
        debug_assert!(config.validate().is_ok(), "checked above: {config}");
        Ok(Bootstrap { token, config })
    }

    /// The token it was built with.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The cluster id every node bootstrapped with this list and token gets.
    pub fn cluster_id(&self) -> ClusterId {
        self.config.cluster_id
    }

    /// The first configuration: every member a voter, in force from index 1.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The entry every bootstrapped node holds at index 1, term 1.
    pub fn first_entry(&self) -> LogEntry {
        LogEntry {
            index: LogIndex(1),
            term: Term(1),
            kind: EntryKind::Initialize,
            data: self.config.encode(),
        }
    }
}

impl fmt::Display for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.config)
    }
}

/// FNV-1a over the token and the sorted `(id, address)` pairs: stable across
/// platforms and releases (it names clusters on disk and on the wire), and
/// never 0. Not a defence against an adversary choosing lists; a guard
/// against operators' mistakes.
fn derive_cluster_id(token: u64, members: &[Member]) -> ClusterId {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    eat(b"raft-bootstrap/1");
    eat(&token.to_le_bytes());
    for m in members {
        eat(&m.id.0.to_le_bytes());
        eat(&(m.address.len() as u64).to_le_bytes());
        eat(m.address.as_bytes());
    }
    ClusterId(h | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(u64, &str)]) -> Vec<(NodeId, String)> {
        pairs
            .iter()
            .map(|&(id, a)| (NodeId(id), a.to_string()))
            .collect()
    }

    #[test]
    fn cluster_id_depends_on_every_id_address_and_the_token() {
        let base = Bootstrap::new(1, list(&[(1, "a"), (2, "b")])).unwrap();
        for other in [
            Bootstrap::new(2, list(&[(1, "a"), (2, "b")])),
            Bootstrap::new(1, list(&[(1, "a"), (3, "b")])),
            Bootstrap::new(1, list(&[(1, "a"), (2, "c")])),
            Bootstrap::new(1, list(&[(1, "a"), (2, "b"), (3, "c")])),
            Bootstrap::new(1, list(&[(1, "a")])),
        ] {
            assert_ne!(base.cluster_id(), other.unwrap().cluster_id());
        }
    }

    #[test]
    fn cluster_id_is_stable_across_releases() {
        // It names clusters on disk: a change here strands every bootstrapped cluster.
        let b = Bootstrap::new(7, list(&[(1, "127.0.0.1:7001"), (2, "127.0.0.1:7003")])).unwrap();
        assert_eq!(b.cluster_id(), ClusterId(0x9696_c1b9_e6f0_d5a3));
    }

    #[test]
    fn invalid_lists_are_refused_with_what_is_wrong() {
        for (members, want) in [
            (list(&[]), BootstrapError::NoMembers),
            (list(&[(0, "a")]), BootstrapError::ZeroNodeId),
            (
                list(&[(2, "a"), (2, "b")]),
                BootstrapError::DuplicateNodeId(NodeId(2)),
            ),
            (
                list(&[(1, "a"), (2, "")]),
                BootstrapError::NodeAddressRequired(NodeId(2)),
            ),
            (
                list(&[(1, "a"), (2, "a")]),
                BootstrapError::DuplicateNodeAddress("a".into()),
            ),
        ] {
            assert_eq!(Bootstrap::new(1, members), Err(want));
        }
    }

    #[test]
    fn first_entry_carries_the_config_at_index_one_term_one() {
        let b = Bootstrap::new(1, list(&[(3, "c"), (1, "a")])).unwrap();
        let e = b.first_entry();
        assert_eq!(
            (e.index, e.term, e.kind),
            (LogIndex(1), Term(1), EntryKind::Initialize)
        );
        let config = Config::decode(&e.data).unwrap();
        assert_eq!(&config, b.config());
        assert_eq!(config.max_node_id, NodeId(3));
        assert_eq!(config.voters().collect::<Vec<_>>(), [NodeId(1), NodeId(3)]);
    }
}
