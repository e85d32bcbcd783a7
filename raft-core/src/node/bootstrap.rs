//! Static bootstrap at the node: take the first entry every member of the
//! list holds, or refuse to touch state that is already there. The
//! guarantees are on [`crate::Bootstrap`].

use super::receiver::FollowerState;
use super::{Node, RoleState};
use crate::action::{Action, Completion};
use crate::bootstrap::Bootstrap;
use crate::entries::Entries;
use crate::error::RequestError;
use crate::types::{LogIndex, RequestId, Term};

impl Node {
    pub(crate) fn on_bootstrap(&mut self, id: RequestId, bootstrap: Bootstrap) {
        let result = self
            .maybe_bootstrap(&bootstrap)
            .map(|_| Completion::Initialized {
                cluster_id: bootstrap.cluster_id(),
            });
        self.complete(id, result);
    }

    /// Appends the bootstrap's first entry unless the node already holds it;
    /// says whether it appended.
    fn maybe_bootstrap(&mut self, bootstrap: &Bootstrap) -> Result<bool, RequestError> {
        let me = self.id();
        if !bootstrap.config().contains(me) {
            return Err(RequestError::NodeNotFound(me));
        }
        let cluster_id = bootstrap.cluster_id();
        let first = bootstrap.first_entry();
        match self.hs.cluster_id {
            Some(ours) if ours != cluster_id => return Err(RequestError::AlreadyInitialized),
            // Same cluster: a repeat. Entry 1 is ours already, or compacted
            // into a snapshot of this cluster; an empty log is a bootstrap
            // that stopped before the entry was durable.
            Some(_) => match self.log.get(LogIndex(1)) {
                Some(e) if *e == first => return Ok(false),
                Some(_) => return Err(RequestError::LogExists),
                None if self.log.base_index() >= LogIndex(1) => return Ok(false),
                // Evicted from memory: its configuration and term tell.
                None if self.log.last_index() >= LogIndex(1) => {
                    let same = self.log.term_at(LogIndex(1)) == Some(first.term)
                        && self
                            .configs
                            .appended_at(LogIndex(1))
                            .is_some_and(|c| c.encode() == first.data);
                    return if same {
                        Ok(false)
                    } else {
                        Err(RequestError::LogExists)
                    };
                }
                None => {}
            },
            None => {}
        }
        assert!(
            self.log.last_index() == LogIndex(0) && self.snapshot.is_none(),
            "node {me}: a log without a cluster id passed recovery"
        );
        self.hs.cluster_id = Some(cluster_id);
        if self.hs.term < Term(1) {
            self.hs.term = Term(1);
            self.hs.vote = None;
            self.role = RoleState::Follower(FollowerState::new(self.hs.term, None));
        }
        self.persist_hard_state();
        let index = first.index;
        let first = Entries::from([first]);
        self.log.append(first.clone());
        self.configs.push(index, bootstrap.config().clone());
        self.emit(Action::AppendLog(first));
        // Every member's first timeout is drawn from now, not from when the
        // driver built the node: none campaigns before it has the list.
        self.reset_election_deadline();
        Ok(true)
    }
}
