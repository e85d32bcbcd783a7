//! One process per data directory: an exclusive advisory lock on
//! `<dir>/LOCK`, held for as long as the node is open.
//!
//! Two processes on one directory would each recover the same log and then
//! write it: a twin's recovery could truncate a tail the other has just
//! acknowledged. The lock is taken before any file of the directory is read;
//! the operating system releases it when the holder exits, even by SIGKILL,
//! so a stale `LOCK` file never keeps a directory shut. The holder's pid is
//! written into the file, for the error a second process reports.

use super::StorageError;
use fs4::FileExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// The held lock of a data directory; released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    // Holding the open file holds the lock (flock: per open file description).
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if missing and locks it, or fails with
    /// [`StorageError::Locked`] naming the directory and, when the file says,
    /// the holder's pid.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StorageError> {
        // Durably: everything the node stores lives in `dir`, so its entry
        // in its parent must survive a crash as surely as the files in it.
        super::create_data_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        // Called through the trait: newer std has an inherent `File::try_lock`
        // of its own, which the workspace's minimum Rust lacks.
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse::<u32>().ok());
                return Err(StorageError::Locked {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(StorageError::io("lock", &path, e)),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(|e| StorageError::io("write", &path, e))?;
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_directory_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        match DataDirLock::acquire(dir.path()) {
            Err(StorageError::Locked { dir: d, holder }) => {
                assert_eq!(d, dir.path());
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        DataDirLock::acquire(dir.path()).expect("released on drop");
    }

    #[test]
    fn a_new_data_directory_is_made_durable_in_its_parent_before_anything_is_written_in_it() {
        // The node's vote and log live inside the data directory: if its own
        // entry in its parent (and any parent created with it) is not
        // fsynced, a power cut can take the whole directory away after the
        // node acknowledged entries or voted, and it restarts as a new node.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("node");
        super::super::durable::synced_dirs::take();
        let _held = DataDirLock::acquire(&dir).unwrap();
        crate::storage::IdentityStore::open(&dir).unwrap();
        crate::storage::open(&dir, &crate::storage::StorageOptions::default()).unwrap();
        let synced = super::super::durable::synced_dirs::take();
        for parent in [tmp.path(), &tmp.path().join("a")] {
            assert!(
                synced.iter().any(|d| d == parent),
                "{} never fsynced after creating its child; synced: {synced:?}",
                parent.display()
            );
        }
    }
}
