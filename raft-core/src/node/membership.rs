//! Membership: single-server changes (thesis §4.1), one at a time, only once
//! the leader has committed an entry of its own term. A configuration takes
//! effect when appended. New nodes join as learners and are promoted to
//! voters once they have caught up.

use super::leader::PendingChange;
use super::{Node, RoleState};
use crate::config::{Config, Member, MemberRole};
use crate::entry::EntryKind;
use crate::entry::LogEntry;
use crate::error::RequestError;
use crate::event::MembershipChange;
use crate::message::SnapshotMeta;
use crate::node::cursor::Cursor;
use crate::types::{LogIndex, NodeId, RequestId};

/// The configurations in the log: the one a snapshot (or nothing) fixed, and
/// those of membership entries after it, in index order.
#[derive(Clone, Debug)]
pub(crate) struct ConfigLog {
    base: Config,
    appended: Vec<Config>,
    /// Bumped by every change, so a step that changed no configuration
    /// (nearly all of them) learns so without comparing member lists.
    version: u64,
}

impl ConfigLog {
    /// The configurations of the snapshot and of the membership entries
    /// `config_entries` (those of the log after its base, in order).
    pub(crate) fn recover<'a>(
        snapshot: Option<&SnapshotMeta>,
        config_entries: impl Iterator<Item = &'a LogEntry>,
    ) -> Result<ConfigLog, LogIndex> {
        let base = snapshot.map(|s| s.config.clone()).unwrap_or_default();
        let mut configs = ConfigLog {
            base,
            appended: Vec::new(),
            version: 0,
        };
        for e in config_entries.filter(|e| e.kind.is_config()) {
            // A trailing window behind the snapshot may hold the entry of
            // its configuration, or older ones. (Without a snapshot the
            // base index is 0, below every entry.)
            if e.index <= configs.base.index {
                continue;
            }
            let config = Config::decode(&e.data).map_err(|_| e.index)?;
            configs.push(e.index, config);
        }
        Ok(configs)
    }

    /// The configuration in force: the latest appended.
    pub(crate) fn latest(&self) -> &Config {
        self.appended.last().unwrap_or(&self.base)
    }

    /// Changes whenever the configurations may have: equal versions of one
    /// log mean an unchanged [`ConfigLog::latest`].
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The configuration in force at `index`.
    pub(crate) fn at(&self, index: LogIndex) -> &Config {
        self.appended
            .iter()
            .rev()
            .find(|c| c.index <= index)
            .unwrap_or(&self.base)
    }

    pub(crate) fn push(&mut self, index: LogIndex, mut config: Config) {
        assert!(
            index > self.latest().index,
            "configs are appended in index order"
        );
        config.index = index;
        self.appended.push(config);
        self.version += 1;
    }

    /// Forgets configurations of truncated entries.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) {
        self.appended.retain(|c| c.index < from);
        self.version += 1;
    }

    /// Folds configurations at or before `index` into the base (after compaction).
    pub(crate) fn compact_through(&mut self, index: LogIndex) {
        while self.appended.first().is_some_and(|c| c.index <= index) {
            self.base = self.appended.remove(0);
        }
        self.version += 1;
    }

    pub(crate) fn reset_to(&mut self, config: Config) {
        self.base = config;
        self.appended.clear();
        self.version += 1;
    }
}

impl Node {
    pub(crate) fn on_change_membership(&mut self, id: RequestId, change: MembershipChange) {
        match self.check_change(&change) {
            Err(e) => self.complete(id, Err(e)),
            Ok((kind, config, node)) => self.append_config(id, kind, config, node),
        }
    }

    /// The rules a change must pass, and the configuration it produces.
    fn check_change(
        &self,
        change: &MembershipChange,
    ) -> Result<(EntryKind, Config, NodeId), RequestError> {
        if self.hs.cluster_id.is_none() {
            return Err(RequestError::NotInitialized);
        }
        let RoleState::Leader(l) = &self.role else {
            return Err(RequestError::NotLeader {
                leader: self.leader(),
                outcome: crate::error::Outcome::Definite,
            });
        };
        if l.transfer.is_some() {
            return Err(RequestError::TransferInProgress);
        }
        let mutants = self.opts.mutants();
        if !self.leader_ready() && !mutants.change_before_term_commit {
            return Err(RequestError::LeaderNotReady);
        }
        let current = self.configs.latest();
        let in_flight = l.change.is_some() || current.index > self.commit;
        if in_flight && !mutants.changes_in_flight {
            return Err(RequestError::ChangeInProgress);
        }
        let mut next = current.clone();
        match change {
            MembershipChange::Add { address } | MembershipChange::AddWithId { address, .. } => {
                if address.is_empty() {
                    return Err(RequestError::NodeAddressRequired);
                }
                if current.members.iter().any(|m| &m.address == address) {
                    return Err(RequestError::DuplicateNodeAddress(address.clone()));
                }
                let id = match change {
                    MembershipChange::AddWithId { id, .. } if current.member(*id).is_some() => {
                        return Err(RequestError::DuplicateNodeId(*id));
                    }
                    // Ids are never reused: a removed member's id stays
                    // retired, so stale traffic naming it cannot reach a
                    // newcomer.
                    MembershipChange::AddWithId { id, .. } if *id <= current.max_node_id => {
                        return Err(RequestError::InvalidNodeId(*id));
                    }
                    MembershipChange::AddWithId { id, .. } => *id,
                    // An id taken by `AddWithId` may be the largest there is:
                    // no id is left to assign then, and none is reused.
                    _ => match current.max_node_id.0.checked_add(1) {
                        Some(id) => NodeId(id),
                        None => return Err(RequestError::InvalidNodeId(current.max_node_id)),
                    },
                };
                next.max_node_id = id;
                next.members.push(Member {
                    id,
                    address: address.clone(),
                    role: MemberRole::Learner,
                });
                Ok((EntryKind::AddPeer, next, id))
            }
            MembershipChange::Remove { id } => {
                if id.0 == 0 || *id > current.max_node_id {
                    return Err(RequestError::InvalidNodeId(*id));
                }
                let Some(member) = current.member(*id) else {
                    return Err(RequestError::NodeNotFound(*id));
                };
                if member.role == MemberRole::Voter && current.voter_count() == 1 {
                    // Removing the last voter would leave nobody to commit anything.
                    return Err(RequestError::InvalidNodeId(*id));
                }
                next.members.retain(|m| m.id != *id);
                Ok((EntryKind::RemovePeer, next, *id))
            }
        }
    }

    fn append_config(&mut self, id: RequestId, kind: EntryKind, config: Config, node: NodeId) {
        let mut config = config;
        config.index = self.log.last_index().next();
        let index = self.append_as_leader(vec![(kind, config.encode())]);
        if let RoleState::Leader(l) = &mut self.role {
            l.change = Some(PendingChange {
                id,
                index,
                node,
                initialize: false,
            });
        }
    }

    /// Keeps one cursor per member other than ourselves (see below for removed ones).
    pub(crate) fn sync_cursors_with_config(&mut self) {
        // A new configuration may count other voters than the one that committed.
        self.note_quorum_index_may_drop();
        let me = self.id();
        let now = self.now;
        let next = self.log.last_index().next();
        // Members of the latest configuration, and, until its removal commits,
        // a removed member too: it must receive the entry that removes it, or
        // it would go on believing it votes.
        let committed = self.configs.at(self.commit);
        let members: Vec<NodeId> = self
            .configs
            .latest()
            .members
            .iter()
            .chain(committed.members.iter())
            .map(|m| m.id)
            .filter(|&m| m != me)
            .collect();
        let RoleState::Leader(l) = &mut self.role else {
            return;
        };
        let mut closed = Vec::new();
        l.cursors.retain(|id, c| {
            let keep = members.contains(id);
            if !keep {
                closed.extend(c.stream.map(|stream| (stream, *id)));
            }
            keep
        });
        for m in members {
            l.cursors.entry(m).or_insert_with(|| Cursor::new(next, now));
        }
        for (stream, peer) in closed {
            self.emit(crate::action::Action::CloseStream { stream, peer });
        }
        self.rearm_check_quorum();
    }

    /// Promotes a learner that keeps up: its last catch-up round took less
    /// than an election timeout and it trails the leader's log by at most
    /// `promotion_lag_entries` entries and `promotion_lag_bytes` bytes (thesis
    /// §4.2.1). Waiting for it to reach the commit index instead could wait
    /// for ever while writes keep flowing.
    pub(crate) fn maybe_promote_learner(&mut self) {
        if !self.leader_ready() {
            return;
        }
        let current = self.configs.latest();
        let RoleState::Leader(l) = &self.role else {
            return;
        };
        if l.change.is_some() || l.transfer.is_some() || current.index > self.commit {
            return;
        }
        let caught_up = current.members.iter().find(|m| {
            m.role == MemberRole::Learner
                && l.cursors.get(&m.id).is_some_and(|c| {
                    c.keeps_up(self.now, self.opts.election_timeout)
                        && self.lags_within_promotion_bound(c.match_index)
                })
        });
        let Some(learner) = caught_up.map(|m| m.id) else {
            return;
        };
        let mut next = current.clone();
        for m in next.members.iter_mut().filter(|m| m.id == learner) {
            m.role = MemberRole::Voter;
        }
        next.index = self.log.last_index().next();
        // Promotions are not client requests: nothing waits on them.
        self.append_as_leader(vec![(EntryKind::PromotePeer, next.encode())]);
    }

    /// Whether a follower durable through `match_index` trails our log by at
    /// most the promotion bounds (entries it lacks that we compacted count as
    /// beyond them: it needs a snapshot first).
    fn lags_within_promotion_bound(&self, match_index: LogIndex) -> bool {
        let last = self.log.last_index();
        let lag = last.0.saturating_sub(match_index.0);
        if lag > self.opts.promotion_lag_entries || match_index < self.log.base_index() {
            return false;
        }
        let bound = self.opts.promotion_lag_bytes;
        self.log.bytes_after(match_index, bound) <= bound
    }
}
