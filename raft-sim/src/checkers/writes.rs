//! No acknowledged write lost: the entry a client was told committed at an
//! index stays the committed entry at that index forever.

use super::Failure;
use super::log::GlobalLog;
use raft_core::LogIndex;
use std::collections::BTreeMap;

/// Writes acknowledged to clients, by index.
#[derive(Clone, Debug, Default)]
pub struct AckedWrites {
    acked: BTreeMap<u64, (u64, u64)>,
}

impl AckedWrites {
    /// A client was told op `op_id` committed at `index`, whose chain digest
    /// on the completing node is `digest`.
    pub fn on_ack(&mut self, index: LogIndex, op_id: u64, digest: u64) -> Result<(), Failure> {
        match self.acked.insert(index.0, (op_id, digest)) {
            Some((other, d)) if other != op_id || d != digest => Err(Failure::safety(
                "acked-write-lost",
                format!("index {index} acknowledged for op{other} and later for op{op_id}"),
            )),
            _ => Ok(()),
        }
    }

    /// Every acknowledged write agrees with the committed prefix.
    pub fn check(&self, global: &GlobalLog) -> Result<(), Failure> {
        for (&i, &(op, d)) in &self.acked {
            if let Some(c) = global.committed_at(LogIndex(i)) {
                if c != d {
                    return Err(Failure::safety(
                        "acked-write-lost",
                        format!(
                            "op{op} was acknowledged at {i} but a different entry is committed there"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The highest acknowledged index.
    pub fn highest(&self) -> LogIndex {
        LogIndex(self.acked.last_key_value().map_or(0, |(i, _)| *i))
    }

    /// How many writes were acknowledged.
    pub fn count(&self) -> usize {
        self.acked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::log::LogMirror;
    use bytes::Bytes;
    use raft_core::{EntryKind, LogEntry, Term};

    #[test]
    fn an_acknowledged_write_replaced_in_the_committed_prefix_fails() {
        let mut acked = AckedWrites::default();
        let mut m = LogMirror::default();
        let e = |t| LogEntry {
            index: LogIndex(1),
            term: Term(t),
            kind: EntryKind::Command,
            data: Bytes::new(),
        };
        let d_old = m.append(&[e(1)]).unwrap()[0];
        acked.on_ack(LogIndex(1), 7, d_old).unwrap();
        let mut other = LogMirror::default();
        other.append(&[e(2)]).unwrap();
        let mut g = GlobalLog::default();
        g.on_commit(1, Term(1), LogIndex(0), LogIndex(1), &other)
            .unwrap();
        assert_eq!(acked.check(&g).unwrap_err().checker, "acked-write-lost");
        assert!(acked.on_ack(LogIndex(1), 8, d_old).is_err());
    }
}
