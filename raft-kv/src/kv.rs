//! The replicated key-value state machine of the example server (`raft-kv`).
//!
//! [`KvFsm`] is the [`Fsm`] the node's applier runs; [`Kv`] is a handle to
//! the same state for the HTTP threads (read the map after a read barrier,
//! collect the result of a compare-and-swap after its entry is applied).
//!
//! Commands ([`KvCommand`]) travel in `Command` entries, encoded with
//! postcard. Besides the user's map the state holds the *HTTP address of
//! every node that has led* (`KvCommand::SetHttp`, proposed by a node when it
//! becomes leader): that is how a follower finds the address to redirect
//! clients to. It lives beside the user's keys, not among them, so no client
//! write can clobber it.
//!
//! ```
//! use raft_kv::kv::{Applied, Kv, KvCommand};
//! use raft_core::{EntryKind, LogEntry, LogIndex, Term};
//! use raft_io_std::Fsm;
//!
//! let kv = Kv::default();
//! let mut fsm = kv.fsm();
//! let entry = |index, command: KvCommand| LogEntry {
//!     index: LogIndex(index),
//!     term: Term(1),
//!     kind: EntryKind::Command,
//!     data: command.encode(),
//! };
//! fsm.apply(&entry(1, KvCommand::Put { key: "k".into(), value: "a".into() }));
//! fsm.apply(&entry(2, KvCommand::Cas { key: "k".into(), from: Some("b".into()), to: "c".into() }));
//! assert_eq!(kv.get("k").as_deref(), Some(&b"a"[..]));
//! assert_eq!(kv.take_result(LogIndex(2)), Some(Applied::Swapped(false)));
//! assert_eq!(fsm.index(), LogIndex(2));
//! ```

use bytes::Bytes;
use raft_core::{EntryKind, LogEntry, LogIndex, NodeId};
use raft_io_std::{Fsm, SnapshotSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A command in the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Bytes,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `to` if it holds `from` (`None`: if it is absent).
    Cas {
        /// The key.
        key: String,
        /// The expected value; `None` expects the key to be absent.
        from: Option<Bytes>,
        /// The value written on a match.
        to: Bytes,
    },
    /// Records where node `node` serves HTTP (proposed by a new leader).
    SetHttp {
        /// The node.
        node: NodeId,
        /// Its HTTP address, `host:port`.
        address: String,
    },
}

impl KvCommand {
    /// The command as an entry's payload.
    pub fn encode(&self) -> Bytes {
        Bytes::from(postcard::to_allocvec(self).expect("a KvCommand always serializes"))
    }

    /// Decodes an entry's payload.
    pub fn decode(bytes: &[u8]) -> Result<KvCommand, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// What applying a command did, for the client that proposed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A `Cas`: whether it swapped.
    Swapped(bool),
    /// A `Delete`: whether the key existed.
    Deleted(bool),
}

/// Results kept for clients to collect; older ones are dropped first. A
/// client collects its result right after its entry is applied, so only a
/// backlog of this many unanswered entries could push one out.
const RESULTS_KEPT_MAX: usize = 65_536;

/// The version byte that starts a snapshot of this state machine.
const SNAPSHOT_VERSION: u8 = 1;

/// The whole replicated state, as a snapshot stores it. Cloning it copies
/// the keys but shares the values (`Bytes`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    /// The last entry applied.
    index: u64,
    /// The user's keys.
    map: BTreeMap<String, Bytes>,
    /// Node id to HTTP address, for redirects.
    http: BTreeMap<u64, String>,
}

#[derive(Debug, Default)]
struct Inner {
    state: State,
    /// Results of applied `Cas` and `Delete` commands, by index (not
    /// replicated state: a restored node starts with none).
    results: BTreeMap<u64, Applied>,
}

/// A shared handle to a key-value state: cheap to clone, readable from any thread.
#[derive(Clone, Debug, Default)]
pub struct Kv(Arc<RwLock<Inner>>);

/// A digest of the replicated state at one index, to compare replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// The index the state reflects.
    pub index: LogIndex,
    /// The number of user keys.
    pub keys: usize,
    /// FNV-1a over every key and value (and the HTTP addresses), in key order.
    pub hash: u64,
}

impl Kv {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The state machine to hand to [`raft_io_std::RaftNode::open`]; it shares this state.
    pub fn fsm(&self) -> KvFsm {
        KvFsm(self.clone())
    }

    /// The value of `key` in the applied state (linearizable only after a
    /// read barrier on the leader).
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.read().state.map.get(key).cloned()
    }

    /// Where node `id` serves HTTP, if it ever led.
    pub fn http_address(&self, id: NodeId) -> Option<String> {
        self.read().state.http.get(&id.0).cloned()
    }

    /// Takes the result of the `Cas` or `Delete` applied at `index`.
    pub fn take_result(&self, index: LogIndex) -> Option<Applied> {
        self.write().results.remove(&index.0)
    }

    /// The index of the last applied entry, the key count and a hash of the state.
    pub fn digest(&self) -> Digest {
        let inner = self.read();
        let mut hash = Fnv::default();
        for (k, v) in &inner.state.map {
            hash.field(k.as_bytes());
            hash.field(v);
        }
        for (id, address) in &inner.state.http {
            hash.field(&id.to_le_bytes());
            hash.field(address.as_bytes());
        }
        Digest {
            index: LogIndex(inner.state.index),
            keys: inner.state.map.len(),
            hash: hash.0,
        }
    }
}

/// FNV-1a, 64 bits: a stable hash (unlike std's randomly seeded one).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Hashes a length-prefixed field, so `("ab", "c")` and `("a", "bc")` differ.
    fn field(&mut self, bytes: &[u8]) {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The [`Fsm`] of the key-value server: applies [`KvCommand`]s to a [`Kv`].
#[derive(Debug)]
pub struct KvFsm(Kv);

impl KvFsm {
    /// The state, encoded as a snapshot holds it (after the version byte).
    fn encode(&self) -> io::Result<Vec<u8>> {
        let inner = self.0.read();
        postcard::to_allocvec(&inner.state).map_err(io::Error::other)
    }
}

impl Fsm for KvFsm {
    fn apply(&mut self, entry: &LogEntry) {
        let mut inner = self.0.write();
        inner.state.index = entry.index.0;
        if entry.kind != EntryKind::Command {
            return;
        }
        let command = match KvCommand::decode(&entry.data) {
            Ok(c) => c,
            Err(e) => {
                // Deterministic on every replica: the entry is skipped everywhere.
                tracing::warn!(index = %entry.index, "skipping an entry that is not a KvCommand: {e}");
                return;
            }
        };
        let map = &mut inner.state.map;
        let result = match command {
            KvCommand::Put { key, value } => {
                map.insert(key, value);
                None
            }
            KvCommand::Delete { key } => Some(Applied::Deleted(map.remove(&key).is_some())),
            KvCommand::Cas { key, from, to } => {
                let swapped = map.get(&key) == from.as_ref();
                if swapped {
                    map.insert(key, to);
                }
                Some(Applied::Swapped(swapped))
            }
            KvCommand::SetHttp { node, address } => {
                inner.state.http.insert(node.0, address);
                None
            }
        };
        if let Some(result) = result {
            inner.results.insert(entry.index.0, result);
            if inner.results.len() > RESULTS_KEPT_MAX {
                inner.results.pop_first();
            }
        }
    }

    fn index(&self) -> LogIndex {
        LogIndex(self.0.read().state.index)
    }

    fn snapshot(&mut self, w: &mut dyn Write) -> io::Result<()> {
        let bytes = self.encode()?;
        w.write_all(&[SNAPSHOT_VERSION])?;
        w.write_all(&bytes)
    }

    /// The map is encoded in memory at the applied point (the only part that
    /// holds up applies); writing and syncing it to the file, the slow part,
    /// runs on the snapshot thread.
    fn snapshot_source(&mut self) -> Option<SnapshotSource> {
        // The consistent point: a clone of the state (its keys; the values
        // are shared), encoded straight into the file on the snapshot
        // thread. Encoding here instead would hold a second copy of every
        // value until the file is written.
        let state = self.0.read().state.clone();
        Some(Box::new(move |w| {
            w.write_all(&[SNAPSHOT_VERSION])?;
            postcard::to_io(&state, w).map_err(io::Error::other)?;
            Ok(())
        }))
    }

    fn restore(&mut self, r: &mut dyn Read) -> io::Result<()> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)?;
        let state: State = match bytes.split_first() {
            Some((&SNAPSHOT_VERSION, body)) => postcard::from_bytes(body)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            Some((v, _)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown kv snapshot version {v}"),
                ));
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "empty kv snapshot",
                ));
            }
        };
        let mut inner = self.0.write();
        inner.state = state;
        inner.results.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::Term;

    fn command(index: u64, c: KvCommand) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(1),
            kind: EntryKind::Command,
            data: c.encode(),
        }
    }

    fn put(key: &str, value: &str) -> KvCommand {
        KvCommand::Put {
            key: key.into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    #[test]
    fn cas_from_absent_swaps_only_when_the_key_is_absent() {
        let kv = Kv::default();
        let mut fsm = kv.fsm();
        let cas = |to: &str| KvCommand::Cas {
            key: "k".into(),
            from: None,
            to: Bytes::copy_from_slice(to.as_bytes()),
        };
        fsm.apply(&command(1, cas("a")));
        fsm.apply(&command(2, cas("b")));
        assert_eq!(kv.take_result(LogIndex(1)), Some(Applied::Swapped(true)));
        assert_eq!(kv.take_result(LogIndex(2)), Some(Applied::Swapped(false)));
        assert_eq!(kv.take_result(LogIndex(2)), None, "a result is taken once");
        assert_eq!(kv.get("k"), Some(Bytes::from_static(b"a")));
    }

    #[test]
    fn delete_reports_whether_the_key_existed() {
        let kv = Kv::default();
        let mut fsm = kv.fsm();
        fsm.apply(&command(1, put("k", "v")));
        let delete = KvCommand::Delete { key: "k".into() };
        fsm.apply(&command(2, delete.clone()));
        fsm.apply(&command(3, delete));
        assert_eq!(kv.take_result(LogIndex(2)), Some(Applied::Deleted(true)));
        assert_eq!(kv.take_result(LogIndex(3)), Some(Applied::Deleted(false)));
        assert_eq!(kv.get("k"), None);
    }

    #[test]
    fn a_snapshot_source_writes_the_state_as_of_its_capture_not_of_its_write() {
        let kv = Kv::default();
        let mut fsm = kv.fsm();
        fsm.apply(&command(1, put("a", "1")));
        let mut inline = Vec::new();
        fsm.snapshot(&mut inline).unwrap();
        let source = fsm
            .snapshot_source()
            .expect("the kv FSM captures its state");
        // Applies go on before the snapshot thread writes.
        fsm.apply(&command(2, put("a", "2")));
        let mut written = Vec::new();
        source(&mut written).unwrap();
        assert_eq!(written, inline);
    }

    #[test]
    fn snapshot_then_restore_reproduces_the_state_and_its_index() {
        let kv = Kv::default();
        let mut fsm = kv.fsm();
        fsm.apply(&command(1, put("a", "1")));
        fsm.apply(&command(
            2,
            KvCommand::SetHttp {
                node: NodeId(1),
                address: "127.0.0.1:8001".into(),
            },
        ));
        fsm.apply(&LogEntry {
            index: LogIndex(3),
            term: Term(2),
            kind: EntryKind::Nop,
            data: Bytes::new(),
        });
        let mut image = Vec::new();
        fsm.snapshot(&mut image).unwrap();

        let copy = Kv::default();
        copy.fsm().restore(&mut &image[..]).unwrap();
        assert_eq!(copy.digest(), kv.digest());
        assert_eq!(copy.digest().index, LogIndex(3));
        assert_eq!(
            copy.http_address(NodeId(1)).as_deref(),
            Some("127.0.0.1:8001")
        );
    }

    #[test]
    fn a_damaged_snapshot_is_an_error_not_a_panic() {
        let kv = Kv::default();
        for image in [
            &b""[..],
            &[9u8, 1, 2][..],
            &[SNAPSHOT_VERSION, 0xff, 0xff][..],
        ] {
            let err = kv.fsm().restore(&mut &image[..]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{image:?}");
        }
    }

    #[test]
    fn an_undecodable_command_is_skipped_but_advances_the_index() {
        let kv = Kv::default();
        let mut fsm = kv.fsm();
        fsm.apply(&LogEntry {
            index: LogIndex(1),
            term: Term(1),
            kind: EntryKind::Command,
            data: Bytes::from_static(b"\xff\xff\xff"),
        });
        assert_eq!(fsm.index(), LogIndex(1));
        assert_eq!(kv.digest().keys, 0);
    }

    #[test]
    fn digests_differ_when_one_value_differs() {
        let (a, b) = (Kv::default(), Kv::default());
        a.fsm().apply(&command(1, put("k", "ab")));
        b.fsm().apply(&command(1, put("k", "ac")));
        assert_ne!(a.digest().hash, b.digest().hash);
    }
}
