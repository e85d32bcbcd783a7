//! The hard state (cluster id, term, vote), replaced atomically on every change.
//!
//! One file, `hard_state`, in the store's directory:
//!
//! ```text
//! magic "SRAFTHST" | version u32 LE (1) | len u32 LE | crc32 u32 LE over payload | payload
//! payload = postcard(HardState)
//! ```
//!
//! [`HardStateStore::save`] writes `hard_state.tmp`, fsyncs it, renames it over
//! `hard_state` and fsyncs the directory: after a crash the file holds either
//! the old or the new state, whole. A missing file is the default state (a new
//! node); a damaged one is an error naming the file.

use super::durable;
use super::error::{Corruption, StorageError};
use super::small_file;
use raft_core::HardState;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The hard state file's name.
pub const HARD_STATE_FILE: &str = "hard_state";

const MAGIC: [u8; 8] = *b"SRAFTHST";

/// The file's bytes for `state`.
pub fn encode_hard_state(state: &HardState) -> Vec<u8> {
    small_file::encode(MAGIC, state)
}

/// Decodes a hard state file; on damage returns the byte offset and what is wrong.
pub fn decode_hard_state(bytes: &[u8]) -> Result<HardState, (u64, Corruption)> {
    small_file::decode(MAGIC, bytes)
}

/// Where a node's hard state lives.
#[derive(Debug)]
pub struct HardStateStore {
    dir: PathBuf,
    path: PathBuf,
    fsyncs: Arc<AtomicU64>,
}

impl HardStateStore {
    /// Opens the store in `dir` (created if missing) and reads the state: the
    /// default if there is no file yet, an error naming the file if it is damaged.
    /// A leftover `hard_state.tmp` (a save interrupted before its rename) is deleted.
    pub fn open(dir: impl AsRef<Path>) -> Result<(HardStateStore, HardState), StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let fsyncs = Arc::new(AtomicU64::new(0));
        durable::create_dir(&dir, &fsyncs)?;
        let path = dir.join(HARD_STATE_FILE);
        durable::remove_file_lazily(&dir.join(format!("{HARD_STATE_FILE}.tmp")))?;
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let state = decode_hard_state(&bytes).map_err(|(offset, reason)| {
                    StorageError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason,
                    }
                })?;
                // A save killed between its rename and its directory fsync
                // left this state visible but not durable: make it durable
                // before the node votes or campaigns on it.
                durable::sync_dir(&dir, &fsyncs)?;
                state
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => HardState::default(),
            Err(e) => return Err(StorageError::io("read", &path, e)),
        };
        Ok((HardStateStore { dir, path, fsyncs }, state))
    }

    /// Replaces the stored state with `state`, durably, before returning.
    pub fn save(&mut self, state: &HardState) -> Result<(), StorageError> {
        durable::write_atomically(
            &self.dir,
            HARD_STATE_FILE,
            &encode_hard_state(state),
            &self.fsyncs,
        )?;
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fsyncs issued by this store (two per save: the file and the directory).
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::error::RecordError;
    use proptest::prelude::*;
    use raft_core::{ClusterId, NodeId, Term};

    fn state(term: u64, vote: Option<u64>) -> HardState {
        HardState {
            cluster_id: Some(ClusterId(0xC0FFEE)),
            term: Term(term),
            vote: vote.map(NodeId),
        }
    }

    #[test]
    fn a_missing_file_is_the_default_state() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, got) = HardStateStore::open(tmp.path().join("new")).unwrap();
        assert_eq!(got, HardState::default());
    }

    #[test]
    fn a_file_that_cannot_be_read_is_an_error_not_an_empty_state() {
        // Only a missing file means "never voted": any other failure to read
        // it (here the path is a directory) must stop the open, or a node
        // could forget its vote and vote twice in one term.
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join(HARD_STATE_FILE)).unwrap();
        let Err(err) = HardStateStore::open(tmp.path()) else {
            panic!("an unreadable hard state opened");
        };
        match &err {
            StorageError::Io { path, .. } => assert_eq!(*path, tmp.path().join(HARD_STATE_FILE)),
            other => panic!("{other:?}"),
        }
        // The environment's fault, not damaged bytes: the operator is told
        // to fix the path, not to repair or restore data.
        assert!(!err.is_corruption(), "{err}");
    }

    #[test]
    fn a_saved_state_is_read_back_and_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, _) = HardStateStore::open(tmp.path()).unwrap();
        store.save(&state(3, Some(2))).unwrap();
        store.save(&state(4, None)).unwrap();
        assert_eq!(store.fsyncs(), 4);
        let (_, got) = HardStateStore::open(tmp.path()).unwrap();
        assert_eq!(got, state(4, None));
        assert!(!tmp.path().join("hard_state.tmp").exists());
    }

    #[test]
    fn an_interrupted_save_leaves_the_old_state_and_its_temp_file_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, _) = HardStateStore::open(tmp.path()).unwrap();
        store.save(&state(7, Some(1))).unwrap();
        // A crash between writing the temp file and renaming it.
        fs::write(
            tmp.path().join("hard_state.tmp"),
            &encode_hard_state(&state(8, Some(3)))[..10],
        )
        .unwrap();
        let (_, got) = HardStateStore::open(tmp.path()).unwrap();
        assert_eq!(got, state(7, Some(1)));
        assert!(!tmp.path().join("hard_state.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, _) = HardStateStore::open(tmp.path()).unwrap();
        store.save(&state(7, Some(1))).unwrap();
        let mut bytes = fs::read(store.path()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        fs::write(store.path(), &bytes).unwrap();
        match HardStateStore::open(tmp.path()) {
            Err(StorageError::Corrupt {
                path,
                offset: 20,
                reason: Corruption::Record(RecordError::Checksum { .. }),
            }) => {
                assert_eq!(path, tmp.path().join(HARD_STATE_FILE));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_damaged_byte_and_every_cut_is_detected() {
        let bytes = encode_hard_state(&state(9, Some(4)));
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            assert!(decode_hard_state(&damaged).is_err(), "flip at {i}");
            assert!(decode_hard_state(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_hard_state(&bytes);
        }

        #[test]
        fn hard_states_round_trip(term in any::<u64>(), vote in proptest::option::of(any::<u64>()), cluster in proptest::option::of(any::<u64>())) {
            let s = HardState { cluster_id: cluster.map(ClusterId), term: Term(term), vote: vote.map(NodeId) };
            prop_assert_eq!(decode_hard_state(&encode_hard_state(&s)), Ok(s));
        }
    }
}
