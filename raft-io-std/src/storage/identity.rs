//! Who this node is: its id (and, for a node that joined, its cluster), which
//! the core's hard state does not hold.
//!
//! A node's id is assigned by the cluster: 1 by `initialize`, `max_node_id + 1`
//! by the leader when it admits a joiner. The adapter writes it here before it
//! starts the core node, so a restarted process knows who it is.
//!
//! One file, `identity`, replaced atomically like the hard state:
//!
//! ```text
//! magic "SRAFTNID" | version u32 LE (1) | len u32 LE | crc32 u32 LE over payload | payload
//! payload = postcard(Identity)
//! ```
//!
//! The cluster id is recorded for a joiner because the leader tells it before
//! the core ever persists a hard state; after a crash between this file and
//! the hard state, [`Identity::cluster_id`] still names the cluster.

use super::durable;
use super::error::{Corruption, RecordError, StorageError};
use super::small_file;
use raft_core::{ClusterId, NodeId};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

/// The identity file's name.
pub const IDENTITY_FILE: &str = "identity";

const MAGIC: [u8; 8] = *b"SRAFTNID";

/// This node's identity inside its cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The id the cluster assigned.
    pub node_id: NodeId,
    /// The cluster, when known at the time the id was assigned (a joiner);
    /// `None` for the first node, whose core chooses the cluster id.
    pub cluster_id: Option<ClusterId>,
}

/// The file's bytes for `identity`.
pub fn encode_identity(identity: &Identity) -> Vec<u8> {
    small_file::encode(MAGIC, identity)
}

/// Decodes an identity file; on damage returns the byte offset and what is wrong.
pub fn decode_identity(bytes: &[u8]) -> Result<Identity, (u64, Corruption)> {
    let identity: Identity = small_file::decode(MAGIC, bytes)?;
    if identity.node_id.0 == 0 {
        return Err((
            small_file::PAYLOAD_OFFSET,
            RecordError::Malformed("node id 0".into()).into(),
        ));
    }
    Ok(identity)
}

/// Where a node's identity lives.
#[derive(Debug)]
pub struct IdentityStore {
    dir: PathBuf,
    path: PathBuf,
    fsyncs: AtomicU64,
}

impl IdentityStore {
    /// Opens the store in `dir` (created if missing) and reads the identity:
    /// `None` for a node that has neither initialized nor joined, an error
    /// naming the file if it is damaged.
    pub fn open(dir: impl AsRef<Path>) -> Result<(IdentityStore, Option<Identity>), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let fsyncs = AtomicU64::new(0);
        durable::create_dir(&dir, &fsyncs)?;
        durable::remove_file_lazily(&dir.join(format!("{IDENTITY_FILE}.tmp")))?;
        let path = dir.join(IDENTITY_FILE);
        let identity = match fs::read(&path) {
            Ok(bytes) => {
                let identity =
                    decode_identity(&bytes).map_err(|(offset, reason)| StorageError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason,
                    })?;
                // As for the hard state: a save killed before its
                // directory fsync must not be acted on undurably.
                durable::sync_dir(&dir, &fsyncs)?;
                Some(identity)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(StorageError::io("read", &path, e)),
        };
        Ok((IdentityStore { dir, path, fsyncs }, identity))
    }

    /// Replaces the stored identity, durably, before returning.
    pub fn save(&mut self, identity: &Identity) -> Result<(), StorageError> {
        durable::write_atomically(
            &self.dir,
            IDENTITY_FILE,
            &encode_identity(identity),
            &self.fsyncs,
        )?;
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_identity_is_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, none) = IdentityStore::open(tmp.path()).unwrap();
        assert_eq!(none, None);
        let id = Identity {
            node_id: NodeId(3),
            cluster_id: Some(ClusterId(77)),
        };
        store.save(&id).unwrap();
        let (_, got) = IdentityStore::open(tmp.path()).unwrap();
        assert_eq!(got, Some(id));
    }

    #[test]
    fn every_damaged_byte_and_every_cut_is_detected() {
        let bytes = encode_identity(&Identity {
            node_id: NodeId(2),
            cluster_id: None,
        });
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(decode_identity(&damaged).is_err(), "flip at {i}");
            assert!(decode_identity(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, _) = IdentityStore::open(tmp.path()).unwrap();
        store
            .save(&Identity {
                node_id: NodeId(1),
                cluster_id: None,
            })
            .unwrap();
        fs::write(store.path(), b"garbage").unwrap();
        match IdentityStore::open(tmp.path()) {
            Err(StorageError::Corrupt { path, .. }) => assert_eq!(path, store.path()),
            other => panic!("{other:?}"),
        }
        // Only a missing file means "no identity yet": one that cannot be
        // read (here a directory in its place) must stop the open, or the
        // node would start over as a new member.
        fs::remove_file(store.path()).unwrap();
        fs::create_dir(store.path()).unwrap();
        match IdentityStore::open(tmp.path()) {
            Err(StorageError::Io { path, .. }) => assert_eq!(path, store.path()),
            other => panic!("{other:?}"),
        }
    }
}
