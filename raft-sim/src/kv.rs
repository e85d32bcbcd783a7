//! The key-value store the `raft-sim` command line tests: one implementation
//! of the [`crate::service`] traits, with nothing the simulator knows of
//! beyond them.
//!
//! Commands are `put` and `cas` on a small key set (so operations contend);
//! reads go through `ReadRequested` and read the map once the server has
//! applied far enough. Written values are unique per run, which the
//! specialized linearizability checker ([`crate::linearizability`]) relies on.

use crate::digest::{hash_bytes, mix};
use crate::history::{Key, OpKind, Value};
use crate::linearizability::{CheckOptions, Verdict, check_history};
use crate::rng::{Ppm, SimRng};
use crate::scenario::Knobs;
use crate::service::{self, Judgment, OpOf, Request, RequestOf, Service, StateMachine};
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

/// What a key-value request returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// A put was written.
    Written,
    /// Whether a cas matched (and swapped).
    Swapped(bool),
    /// The value a get read (`None`: the key had none).
    Value(Option<Value>),
}

/// One replica's map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvStore {
    map: BTreeMap<Key, Value>,
}

impl KvStore {
    /// The value of `key`.
    pub fn get(&self, key: Key) -> Option<Value> {
        self.map.get(&key).copied()
    }

    fn run(&mut self, request: &RequestOf<KvStore>) -> KvOutput {
        match request {
            Request::Write(command) => self.apply(command),
            Request::Read(key) => self.read(key),
        }
    }
}

impl StateMachine for KvStore {
    type Command = KvOp;
    type Query = Key;
    type Output = KvOutput;

    fn apply(&mut self, command: &KvOp) -> KvOutput {
        match *command {
            KvOp::Put { key, value } => {
                self.map.insert(key, value);
                KvOutput::Written
            }
            KvOp::Cas { key, from, to } => {
                let hit = self.map.get(&key) == Some(&from);
                if hit {
                    self.map.insert(key, to);
                }
                KvOutput::Swapped(hit)
            }
        }
    }

    fn read(&self, key: &Key) -> KvOutput {
        KvOutput::Value(self.get(*key))
    }

    fn blind_output(&self, command: &KvOp) -> Option<KvOutput> {
        matches!(command, KvOp::Put { .. }).then_some(KvOutput::Written)
    }

    fn snapshot(&self) -> Vec<u8> {
        let pairs: Vec<(Key, Value)> = self.map.iter().map(|(k, v)| (*k, *v)).collect();
        postcard::to_allocvec(&pairs).expect("pairs of integers always serialize")
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let pairs: Vec<(Key, Value)> =
            postcard::from_bytes(bytes).map_err(|e| format!("bad snapshot bytes: {e}"))?;
        self.map = pairs.into_iter().collect();
        Ok(())
    }

    fn digest(&self) -> u64 {
        let h = self.map.iter().fold(0, |h, (k, v)| mix(mix(h, *k), *v));
        mix(h, hash_bytes(b"kv"))
    }
}

/// Clients that read, put and cas keys of a small key set, each write with a
/// value never written before; a cas expects the last value seen for its key.
#[derive(Clone, Debug)]
pub struct KvWorkload {
    keys: u64,
    read: Ppm,
    cas: Ppm,
    next_value: Value,
    /// The last value each key was seen or written with (cas targets).
    seen: BTreeMap<Key, Value>,
}

impl KvWorkload {
    /// The workload the knobs describe (`keys`, `read`, `cas`).
    pub fn new(knobs: &Knobs) -> KvWorkload {
        KvWorkload {
            keys: knobs.keys.max(1),
            read: knobs.read,
            cas: knobs.cas,
            next_value: 1,
            seen: BTreeMap::new(),
        }
    }
}

impl service::Workload for KvWorkload {
    type Machine = KvStore;

    fn next(&mut self, rng: &mut SimRng) -> RequestOf<KvStore> {
        let key = rng.below(self.keys);
        if rng.chance(self.read) {
            return Request::Read(key);
        }
        let to = self.next_value;
        self.next_value += 1;
        match self.seen.get(&key) {
            Some(&from) if rng.chance(self.cas) => Request::Write(KvOp::Cas { key, from, to }),
            _ => Request::Write(KvOp::Put { key, value: to }),
        }
    }

    fn observe(&mut self, request: &RequestOf<KvStore>, output: &KvOutput) {
        match (request, output) {
            (Request::Read(key), KvOutput::Value(Some(v))) => {
                self.seen.insert(*key, *v);
            }
            (Request::Write(KvOp::Cas { key, to, .. }), KvOutput::Swapped(true))
            | (Request::Write(KvOp::Put { key, value: to }), _) => {
                self.seen.insert(*key, *to);
            }
            _ => {}
        }
    }
}

/// The key-value store's sequential specification: one register per key.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl service::Model for KvModel {
    type Machine = KvStore;
    type State = KvStore;

    fn init(&self) -> KvStore {
        KvStore::default()
    }

    fn step(&self, state: &mut KvStore, request: &RequestOf<KvStore>) -> KvOutput {
        state.run(request)
    }

    /// Keys are independent registers with unique written values: the
    /// per-key checker of [`crate::linearizability`] decides far larger
    /// histories than the generic search.
    fn check(&self, history: &[OpOf<KvStore>]) -> Judgment {
        let ops: Vec<crate::history::Op> = history.iter().map(to_register_op).collect();
        match check_history(&ops, &CheckOptions::default()) {
            Verdict::Linearizable => Judgment::Linearizable,
            Verdict::NotLinearizable(v) => Judgment::NotLinearizable(v.describe(&ops)),
            Verdict::Unknown { key, steps } => Judgment::Undecided(format!(
                "search on key {key} ran out of budget after {steps} steps"
            )),
        }
    }
}

/// A history operation in the register checker's form.
pub fn to_register_op(op: &OpOf<KvStore>) -> crate::history::Op {
    let (key, kind) = match (&op.request, op.output) {
        (Request::Write(KvOp::Put { key, value }), _) => (*key, OpKind::Put { value: *value }),
        (Request::Write(KvOp::Cas { key, from, to }), out) => (
            *key,
            OpKind::Cas {
                from: *from,
                to: *to,
                ok: match out {
                    Some(KvOutput::Swapped(ok)) => Some(ok),
                    _ => None,
                },
            },
        ),
        (Request::Read(key), out) => (
            *key,
            OpKind::Get {
                result: match out {
                    Some(KvOutput::Value(v)) => v,
                    _ => None,
                },
            },
        ),
    };
    crate::history::Op {
        id: op.id,
        client: op.client,
        key,
        kind,
        invoke_ns: op.invoke_ns,
        complete_ns: op.complete_ns,
        outcome: op.outcome,
    }
}

/// The key-value store as a [`Service`]: what `raft-sim` runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvService;

impl Service for KvService {
    type Machine = KvStore;
    type Workload = KvWorkload;
    type Model = KvModel;

    fn machine(&self) -> KvStore {
        KvStore::default()
    }
    fn workload(&self, knobs: &Knobs) -> KvWorkload {
        KvWorkload::new(knobs)
    }
    fn model(&self) -> KvModel {
        KvModel
    }
    fn describe(&self, op: &OpOf<KvStore>) -> String {
        to_register_op(op).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Replica, encode_command};
    use raft_core::{Config, EntryKind, LogEntry, LogIndex, Term};

    fn cmd(index: u64, op_id: u64, op: KvOp) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(1),
            kind: EntryKind::Command,
            data: encode_command(op_id, &op),
        }
    }

    #[test]
    fn cas_applies_only_on_match_and_results_are_kept() {
        let mut kv = Replica::new(KvStore::default());
        kv.apply(&cmd(1, 10, KvOp::Put { key: 1, value: 5 }))
            .unwrap();
        let miss = KvOp::Cas {
            key: 1,
            from: 4,
            to: 6,
        };
        kv.apply(&cmd(2, 11, miss)).unwrap();
        assert_eq!(kv.machine().get(1), Some(5));
        let hit = KvOp::Cas {
            key: 1,
            from: 5,
            to: 7,
        };
        kv.apply(&cmd(3, 12, hit)).unwrap();
        assert_eq!(kv.machine().get(1), Some(7));
        assert_eq!(
            kv.result_at(LogIndex(2)),
            Some((11, &KvOutput::Swapped(false)))
        );
        assert_eq!(
            kv.result_at(LogIndex(3)),
            Some((12, &KvOutput::Swapped(true)))
        );
    }

    #[test]
    fn applying_out_of_order_is_an_error() {
        let mut kv = Replica::new(KvStore::default());
        assert!(
            kv.apply(&cmd(2, 1, KvOp::Put { key: 1, value: 1 }))
                .is_err()
        );
    }

    #[test]
    fn snapshot_round_trips_state() {
        let mut kv = Replica::new(KvStore::default());
        kv.apply(&cmd(1, 10, KvOp::Put { key: 3, value: 9 }))
            .unwrap();
        let restored =
            Replica::restore(KvStore::default(), &kv.snapshot_bytes(), Config::default()).unwrap();
        assert_eq!(restored.machine().get(3), Some(9));
        assert_eq!(restored.applied(), LogIndex(1));
        assert_eq!(restored.machine().digest(), kv.machine().digest());
    }
}
