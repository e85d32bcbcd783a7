//! The replicated key-value state machine the simulated clients use.
//!
//! Commands are `put` and `cas` (reads go through `ReadRequested` and read the
//! map directly once the node has applied far enough). Each command carries the
//! history op id that issued it, so the simulator can tell which command an
//! index holds. The snapshot is the serialized map plus the applied position.

use crate::digest::{hash_bytes, mix};
use crate::history::{Key, Value};
use bytes::Bytes;
use raft_core::{Config, EntryKind, LogEntry, LogIndex, Term};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A state-changing client operation, as stored in a `Command` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: Key,
        /// The value.
        value: Value,
    },
    /// If `key` holds `from`, set it to `to`.
    Cas {
        /// The key.
        key: Key,
        /// The expected value.
        from: Value,
        /// The new value.
        to: Value,
    },
}

/// A command: the op and the history op id that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCommand {
    /// The issuing operation's id in the history (or a probe id).
    pub op_id: u64,
    /// What to do.
    pub op: KvOp,
}

impl KvCommand {
    /// Encodes the command as an entry payload.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("a KvCommand always serializes"))
    }
    /// Decodes an entry payload; `None` if it is not a command of ours.
    pub fn decode(data: &[u8]) -> Option<KvCommand> {
        postcard::from_bytes(data).ok()
    }
}

/// What applying one command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The op id of the command.
    pub op_id: u64,
    /// For a cas, whether it matched; `true` for a put.
    pub ok: bool,
}

/// The serialized form of a snapshot.
#[derive(Serialize, Deserialize)]
struct KvImage {
    index: u64,
    term: u64,
    map: Vec<(Key, Value)>,
}

/// How many apply results a node keeps for clients to collect.
const RESULTS_KEPT: usize = 4096;

/// One node's key-value state machine (volatile: rebuilt from the snapshot on restart).
#[derive(Clone, Debug, Default)]
pub struct KvFsm {
    map: BTreeMap<Key, Value>,
    applied: LogIndex,
    applied_term: Term,
    config: Option<Config>,
    results: BTreeMap<LogIndex, Applied>,
}

impl KvFsm {
    /// The last applied index.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }
    /// The term of the last applied entry.
    pub fn applied_term(&self) -> Term {
        self.applied_term
    }
    /// The membership configuration in force at the applied index, if known.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }
    /// The value of `key`.
    pub fn get(&self, key: Key) -> Option<Value> {
        self.map.get(&key).copied()
    }
    /// The result of applying the command at `index`, if still kept.
    pub fn result_at(&self, index: LogIndex) -> Option<Applied> {
        self.results.get(&index).copied()
    }

    /// Applies one committed entry. Returns an error text if the entry is not
    /// the next one (the caller reports it as a state-machine safety failure).
    pub fn apply(&mut self, entry: &LogEntry) -> Result<(), String> {
        if entry.index != self.applied.next() {
            return Err(format!(
                "apply {} after applied {}",
                entry.index, self.applied
            ));
        }
        self.applied = entry.index;
        self.applied_term = entry.term;
        match entry.kind {
            EntryKind::Command => {
                if let Some(cmd) = KvCommand::decode(&entry.data) {
                    let ok = match cmd.op {
                        KvOp::Put { key, value } => {
                            self.map.insert(key, value);
                            true
                        }
                        KvOp::Cas { key, from, to } => {
                            let hit = self.map.get(&key) == Some(&from);
                            if hit {
                                self.map.insert(key, to);
                            }
                            hit
                        }
                    };
                    self.results.insert(
                        entry.index,
                        Applied {
                            op_id: cmd.op_id,
                            ok,
                        },
                    );
                    if self.results.len() > RESULTS_KEPT {
                        self.results.pop_first();
                    }
                }
            }
            EntryKind::Nop => {}
            _ => {
                if let Ok(config) = Config::decode(&entry.data) {
                    self.config = Some(config);
                }
            }
        }
        Ok(())
    }

    /// Serializes the state (the snapshot's bytes).
    pub fn snapshot_bytes(&self) -> Bytes {
        let image = KvImage {
            index: self.applied.0,
            term: self.applied_term.0,
            map: self.map.iter().map(|(k, v)| (*k, *v)).collect(),
        };
        Bytes::from(postcard::to_allocvec(&image).expect("a KvImage always serializes"))
    }

    /// Rebuilds the state from snapshot bytes and the snapshot's configuration.
    pub fn restore(bytes: &[u8], config: Config) -> Result<KvFsm, String> {
        let image: KvImage =
            postcard::from_bytes(bytes).map_err(|e| format!("bad snapshot bytes: {e}"))?;
        Ok(KvFsm {
            map: image.map.into_iter().collect(),
            applied: LogIndex(image.index),
            applied_term: Term(image.term),
            config: Some(config),
            results: BTreeMap::new(),
        })
    }

    /// A digest of the map and the applied position (for state agreement checks).
    pub fn state_digest(&self) -> u64 {
        let mut h = mix(self.applied.0, self.applied_term.0);
        for (k, v) in &self.map {
            h = mix(mix(h, *k), *v);
        }
        mix(h, hash_bytes(b"kv"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(index: u64, op_id: u64, op: KvOp) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(1),
            kind: EntryKind::Command,
            data: KvCommand { op_id, op }.encode(),
        }
    }

    #[test]
    fn cas_applies_only_on_match_and_results_are_kept() {
        let mut kv = KvFsm::default();
        kv.apply(&cmd(1, 10, KvOp::Put { key: 1, value: 5 }))
            .unwrap();
        kv.apply(&cmd(
            2,
            11,
            KvOp::Cas {
                key: 1,
                from: 4,
                to: 6,
            },
        ))
        .unwrap();
        assert_eq!(kv.get(1), Some(5));
        kv.apply(&cmd(
            3,
            12,
            KvOp::Cas {
                key: 1,
                from: 5,
                to: 7,
            },
        ))
        .unwrap();
        assert_eq!(kv.get(1), Some(7));
        assert_eq!(
            kv.result_at(LogIndex(2)),
            Some(Applied {
                op_id: 11,
                ok: false
            })
        );
        assert_eq!(
            kv.result_at(LogIndex(3)),
            Some(Applied {
                op_id: 12,
                ok: true
            })
        );
    }

    #[test]
    fn applying_out_of_order_is_an_error() {
        let mut kv = KvFsm::default();
        assert!(
            kv.apply(&cmd(2, 1, KvOp::Put { key: 1, value: 1 }))
                .is_err()
        );
    }

    #[test]
    fn snapshot_round_trips_state() {
        let mut kv = KvFsm::default();
        kv.apply(&cmd(1, 10, KvOp::Put { key: 3, value: 9 }))
            .unwrap();
        let restored = KvFsm::restore(&kv.snapshot_bytes(), Config::default()).unwrap();
        assert_eq!(restored.get(3), Some(9));
        assert_eq!(restored.applied(), LogIndex(1));
        assert_eq!(restored.state_digest(), kv.state_digest());
    }
}
