//! File-system operations that survive a crash: fsync a directory, create or
//! replace a file atomically, remove a file durably. Every fsync is counted in
//! the counter passed in, so benchmarks can report fsyncs per second.

use super::error::StorageError;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Makes the directory entries of `dir` (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path, fsyncs: &AtomicU64) -> Result<(), StorageError> {
    #[cfg(test)]
    synced_dirs::record(dir);
    let handle = File::open(dir).map_err(|e| StorageError::io("open directory", dir, e))?;
    fsyncs.fetch_add(1, Ordering::Relaxed);
    handle
        .sync_all()
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// Creates `dir` (and its missing parents) if missing, durably: every
/// directory created and the existing one it was created in are fsynced,
/// so each new directory's entry in its parent survives a crash.
pub(crate) fn create_dir(dir: &Path, fsyncs: &AtomicU64) -> Result<(), StorageError> {
    // The missing directories, deepest first, and the first that exists.
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.is_dir() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => {
                at = Path::new("."); // a relative path's first component
                break;
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
    for created in missing {
        sync_dir(created, fsyncs)?;
    }
    sync_dir(at, fsyncs)
}

/// Writes `bytes` as the file `dir/name`, atomically: a reader (or a recovery
/// after a crash) sees either the old file (or none) or the whole new one.
///
/// Writes `dir/name.tmp`, fsyncs it, renames it over `dir/name`, fsyncs `dir`.
/// Returns the open new file, positioned after `bytes`.
pub(crate) fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    fsyncs: &AtomicU64,
) -> Result<(File, PathBuf), StorageError> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|e| StorageError::io("create", &temp, e))?;
    file.write_all(bytes)
        .map_err(|e| StorageError::io("write", &temp, e))?;
    fsyncs.fetch_add(1, Ordering::Relaxed);
    file.sync_all()
        .map_err(|e| StorageError::io("fsync", &temp, e))?;
    fs::rename(&temp, &path).map_err(|e| StorageError::io("rename", &temp, e))?;
    sync_dir(dir, fsyncs)?;
    Ok((file, path))
}

/// Removes `path` and fsyncs its directory.
pub(crate) fn remove_file(path: &Path, fsyncs: &AtomicU64) -> Result<(), StorageError> {
    remove_file_lazily(path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")), fsyncs)
}

/// Removes `path` without fsyncing its directory (the caller does, once).
/// A file that is already gone counts as removed.
pub(crate) fn remove_file_lazily(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

/// A record of the directories this thread fsynced, so tests can check that
/// a new file's or directory's entry was made durable (no fault injection
/// can observe a missing directory fsync short of a power cut).
#[cfg(test)]
pub(crate) mod synced_dirs {
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    thread_local! {
        static SYNCED: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    }

    pub(crate) fn record(dir: &Path) {
        SYNCED.with(|s| s.borrow_mut().push(dir.to_path_buf()));
    }

    /// The directories fsynced on this thread since the last call.
    pub(crate) fn take() -> Vec<PathBuf> {
        SYNCED.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_synced_with_every_parent_it_needed_and_an_old_one_costs_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let fsyncs = AtomicU64::new(0);
        let dir = tmp.path().join("a").join("b").join("c");
        create_dir(&dir, &fsyncs).unwrap();
        assert!(dir.is_dir());
        // c, b and a themselves, and the existing directory a was made in.
        assert_eq!(fsyncs.load(Ordering::Relaxed), 4);
        create_dir(&dir, &fsyncs).unwrap();
        assert_eq!(fsyncs.load(Ordering::Relaxed), 4, "nothing to make durable");
        create_dir(&tmp.path().join("a").join("d"), &fsyncs).unwrap();
        assert_eq!(fsyncs.load(Ordering::Relaxed), 6, "d and a");
    }

    #[test]
    fn a_file_already_gone_counts_as_removed_and_a_failed_removal_is_an_error() {
        // Callers delete segments and snapshots that must not come back
        // (a truncated suffix, a pruned snapshot): a removal that fails is
        // reported, never taken for done.
        let tmp = tempfile::tempdir().unwrap();
        let fsyncs = AtomicU64::new(0);
        remove_file(&tmp.path().join("gone"), &fsyncs).unwrap();
        let dir = tmp.path().join("a-directory");
        fs::create_dir(&dir).unwrap();
        match remove_file(&dir, &fsyncs) {
            Err(StorageError::Io {
                op: "remove", path, ..
            }) => assert_eq!(path, dir),
            other => panic!("{other:?}"),
        }
        assert!(dir.exists());
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        let fsyncs = AtomicU64::new(0);
        assert!(matches!(
            create_dir(&file.join("sub"), &fsyncs),
            Err(StorageError::Io { .. })
        ));
    }
}
