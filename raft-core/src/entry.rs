//! Log entries.

use crate::types::{LogIndex, Term};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a log entry means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EntryKind {
    /// A user command, applied to the FSM.
    Command,
    /// Appended by a new leader so an entry of its own term can commit (Raft §5.4.2).
    Nop,
    /// The first entry of a cluster; `data` is the encoded initial [`crate::Config`].
    Initialize,
    /// Adds a learner; `data` is the encoded new [`crate::Config`].
    AddPeer,
    /// Promotes a caught-up learner to voter; `data` is the encoded new [`crate::Config`].
    PromotePeer,
    /// Removes a member; `data` is the encoded new [`crate::Config`].
    RemovePeer,
}

impl EntryKind {
    /// Whether entries of this kind carry a membership configuration.
    pub fn is_config(self) -> bool {
        matches!(
            self,
            EntryKind::Initialize
                | EntryKind::AddPeer
                | EntryKind::PromotePeer
                | EntryKind::RemovePeer
        )
    }
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogEntry {
    /// Its position, 1-based.
    pub index: LogIndex,
    /// The term of the leader that created it.
    pub term: Term,
    /// What it means.
    pub kind: EntryKind,
    /// The payload: the command for `Command`, the encoded config for membership kinds.
    pub data: Bytes,
}

impl LogEntry {
    /// Bytes this entry costs against a stream's budget (payload plus a fixed header).
    pub fn budget_bytes(&self) -> u64 {
        self.data.len() as u64 + 24
    }
}

impl fmt::Display for LogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {:?} {}B",
            self.index,
            self.term,
            self.kind,
            self.data.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(payload_bytes: usize) -> LogEntry {
        LogEntry {
            index: LogIndex(7),
            term: Term(2),
            kind: EntryKind::Command,
            data: Bytes::from(vec![0xab; payload_bytes]),
        }
    }

    #[test]
    fn an_entry_costs_its_payload_plus_a_fixed_header_against_the_stream_budget() {
        let header = command(0).budget_bytes();
        // Empty entries (nops, tiny commands) must still use up the budget,
        // or a leader could put any number of them in flight.
        assert!(header > 0, "an empty entry costs nothing");
        for payload_bytes in [1, 100, 64 << 10] {
            assert_eq!(
                command(payload_bytes).budget_bytes(),
                header + payload_bytes as u64,
                "an entry of {payload_bytes} payload bytes"
            );
        }
    }
}
