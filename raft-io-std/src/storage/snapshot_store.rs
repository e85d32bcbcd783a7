//! Snapshot files: one per snapshot, named by the index and term it covers, with
//! a header holding its [`SnapshotMeta`] and a checksum of the body.
//!
//! ```text
//! name   = <20-digit index>-<20-digit term>.snap
//! header = magic "SRAFTSNP" | version u32 LE (1) | meta_len u32 LE | body_len u64 LE
//!          | body_crc u32 LE | header_crc u32 LE over the 28 bytes before it and the meta
//! file   = header (32 bytes) | meta (postcard SnapshotMeta, meta_len bytes) | body (body_len bytes)
//! ```
//!
//! A [`SnapshotWriter`] writes to a temporary file; [`SnapshotWriter::finish`]
//! fills in the header, fsyncs, renames the file into place, fsyncs the
//! directory, then deletes all but the newest snapshots. A crash at any point
//! leaves either no new snapshot or the whole one; unfinished temporary files
//! are deleted by [`SnapshotStore::open`].

use super::durable;
use super::error::{Corruption, HeaderError, RecordError, StorageError};
use raft_core::{LogIndex, SnapshotMeta, Term};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many snapshots a store keeps by default.
pub const SNAPSHOTS_KEPT_DEFAULT: usize = 2;

const MAGIC: [u8; 8] = *b"SRAFTSNP";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 32;
/// A snapshot's metadata is a configuration; anything this long is damage.
const META_BYTES_MAX: usize = 1 << 20;
const SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// The file name of the snapshot covering `index` (whose entry has `term`).
pub fn snapshot_file_name(index: LogIndex, term: Term) -> String {
    format!("{:020}-{:020}{SUFFIX}", index.0, term.0)
}

fn parse_file_name(name: &str) -> Option<(LogIndex, Term)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (index, term) = stem.split_once('-')?;
    let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(term) {
        return None;
    }
    Some((LogIndex(index.parse().ok()?), Term(term.parse().ok()?)))
}

/// The fixed-size start of a snapshot file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    meta_len: u32,
    body_len: u64,
    body_crc: u32,
}

impl Header {
    fn encode(&self, meta: &[u8]) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.meta_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        out[24..28].copy_from_slice(&self.body_crc.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&out[0..28]);
        crc.update(meta);
        out[28..32].copy_from_slice(&crc.finalize().to_le_bytes());
        out
    }
}

/// Reads and checks the header and metadata of the snapshot file at `path`.
/// Returns the open file positioned at the start of the body.
fn read_head(path: &Path) -> Result<(Header, SnapshotMeta, BufReader<File>, u64), StorageError> {
    let corrupt = |offset: u64, reason: Corruption| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let file = File::open(path).map_err(|e| StorageError::io("open", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| StorageError::io("stat", path, e))?
        .len();
    let mut file = BufReader::new(file);
    let mut head = [0u8; HEADER_BYTES];
    if file_len < HEADER_BYTES as u64 {
        return Err(corrupt(
            0,
            HeaderError::Incomplete {
                needed: HEADER_BYTES as u64,
                available: file_len,
            }
            .into(),
        ));
    }
    file.read_exact(&mut head)
        .map_err(|e| StorageError::io("read", path, e))?;
    if head[0..8] != MAGIC {
        return Err(corrupt(0, HeaderError::BadMagic.into()));
    }
    let u32_at = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    let header = Header {
        meta_len: u32_at(12),
        body_len: u64::from_le_bytes(head[16..24].try_into().expect("8 bytes")),
        body_crc: u32_at(24),
    };
    let meta_len = header.meta_len as usize;
    if meta_len > META_BYTES_MAX || (HEADER_BYTES + meta_len) as u64 > file_len {
        let e = RecordError::TooLarge {
            len: meta_len as u64,
            max: file_len.saturating_sub(HEADER_BYTES as u64),
        };
        return Err(corrupt(12, e.into()));
    }
    let mut meta_bytes = vec![0u8; meta_len];
    file.read_exact(&mut meta_bytes)
        .map_err(|e| StorageError::io("read", path, e))?;
    let stored = u32_at(28);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[0..28]);
    crc.update(&meta_bytes);
    let computed = crc.finalize();
    if stored != computed {
        return Err(corrupt(
            0,
            HeaderError::Checksum { stored, computed }.into(),
        ));
    }
    let version = u32_at(8);
    if version != VERSION {
        return Err(corrupt(8, HeaderError::UnsupportedVersion(version).into()));
    }
    let meta = match postcard::take_from_bytes::<SnapshotMeta>(&meta_bytes) {
        Ok((meta, [])) => meta,
        Ok(_) => {
            return Err(corrupt(
                HEADER_BYTES as u64,
                RecordError::Malformed("trailing bytes".into()).into(),
            ));
        }
        Err(e) => {
            return Err(corrupt(
                HEADER_BYTES as u64,
                RecordError::Malformed(e.to_string()).into(),
            ));
        }
    };
    let body_start = (HEADER_BYTES + meta_len) as u64;
    if file_len - body_start != header.body_len {
        let e = Corruption::SnapshotLength {
            expected: header.body_len,
            found: file_len - body_start,
        };
        return Err(corrupt(body_start, e));
    }
    Ok((header, meta, file, body_start))
}

/// A directory of snapshot files.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    keep: usize,
    fsyncs: Arc<AtomicU64>,
    temp_counter: AtomicU64,
}

impl SnapshotStore {
    /// Opens (or creates) the store in `dir`, keeping the newest `keep`
    /// snapshots (at least 1; [`SNAPSHOTS_KEPT_DEFAULT`] is 2). Deletes
    /// unfinished temporary files.
    pub fn open(dir: impl AsRef<Path>, keep: usize) -> Result<SnapshotStore, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        let fsyncs = Arc::new(AtomicU64::new(0));
        durable::create_dir(&dir, &fsyncs)?;
        // Synced when a snapshot is there too: a finish killed between its
        // rename and its directory fsync left the snapshot visible but not
        // durable, and recovery is about to reset the log after it.
        let mut changed_or_held = false;
        for name in list_names(&dir)? {
            if name.ends_with(TEMP_SUFFIX) {
                durable::remove_file_lazily(&dir.join(&name))?;
                changed_or_held = true;
            } else if parse_file_name(&name).is_some() {
                changed_or_held = true;
            }
        }
        if changed_or_held {
            durable::sync_dir(&dir, &fsyncs)?;
        }
        Ok(SnapshotStore {
            dir,
            keep: keep.max(1),
            fsyncs,
            temp_counter: AtomicU64::new(0),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshots stored, oldest first, by `(index, term)`.
    pub fn list(&self) -> Result<Vec<(LogIndex, Term)>, StorageError> {
        let mut found: Vec<(LogIndex, Term)> = list_names(&self.dir)?
            .iter()
            .filter_map(|n| parse_file_name(n))
            .collect();
        found.sort();
        Ok(found)
    }

    /// The metadata of the newest snapshot, if any. Its header is checked; a
    /// damaged newest snapshot is an error (never silently skipped for an older one).
    pub fn latest(&self) -> Result<Option<SnapshotMeta>, StorageError> {
        let Some(&(index, term)) = self.list()?.last() else {
            return Ok(None);
        };
        let path = self.dir.join(snapshot_file_name(index, term));
        let (_, meta, _, _) = read_head(&path)?;
        check_name(&path, index, term, &meta)?;
        Ok(Some(meta))
    }

    /// Starts writing a snapshot described by `meta` (taken from the FSM, or
    /// received from the leader chunk by chunk).
    pub fn create(&self, meta: SnapshotMeta) -> Result<SnapshotWriter, StorageError> {
        let name = snapshot_file_name(meta.index, meta.term);
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = self.dir.join(format!("{name}.{n}{TEMP_SUFFIX}"));
        let meta_bytes = postcard::to_allocvec(&meta).expect("a SnapshotMeta always serializes");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| StorageError::io("create", &temp, e))?;
        let mut file = BufWriter::with_capacity(256 << 10, file);
        let placeholder = [0u8; HEADER_BYTES];
        file.write_all(&placeholder)
            .and_then(|()| file.write_all(&meta_bytes))
            .map_err(|e| StorageError::io("write", &temp, e))?;
        Ok(SnapshotWriter {
            file: Some(file),
            temp,
            path: self.dir.join(name),
            dir: self.dir.clone(),
            meta,
            meta_bytes,
            crc: crc32fast::Hasher::new(),
            written: 0,
            keep: self.keep,
            fsyncs: Arc::clone(&self.fsyncs),
        })
    }

    /// Opens the snapshot `meta` for reading its body. The reader checks the
    /// body against its checksum as it reaches the end.
    pub fn reader(&self, meta: &SnapshotMeta) -> Result<SnapshotReader, StorageError> {
        let path = self.dir.join(snapshot_file_name(meta.index, meta.term));
        if !path.exists() {
            return Err(StorageError::SnapshotNotFound {
                dir: self.dir.clone(),
                index: meta.index,
                term: meta.term,
            });
        }
        let (header, stored_meta, file, body_start) = read_head(&path)?;
        check_name(&path, meta.index, meta.term, &stored_meta)?;
        Ok(SnapshotReader {
            body: file.take(header.body_len),
            meta: stored_meta,
            path,
            body_start,
            body_len: header.body_len,
            remaining: header.body_len,
            crc: crc32fast::Hasher::new(),
            stored_crc: header.body_crc,
        })
    }

    /// Fsyncs issued by this store and its writers.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

fn check_name(
    path: &Path,
    index: LogIndex,
    term: Term,
    meta: &SnapshotMeta,
) -> Result<(), StorageError> {
    if meta.index != index || meta.term != term {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: HEADER_BYTES as u64,
            reason: Corruption::NameMismatch {
                name_index: index.0,
                header_index: meta.index.0,
            },
        });
    }
    Ok(())
}

fn list_names(dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| StorageError::io("read directory", dir, e))? {
        let item = item.map_err(|e| StorageError::io("read directory", dir, e))?;
        if let Ok(name) = item.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// A snapshot being written. Implements [`Write`] for an FSM's
/// `snapshot(writer)`; [`SnapshotWriter::write_chunk`] for chunks received from
/// a leader. Nothing is visible until [`SnapshotWriter::finish`]; dropping the
/// writer unfinished deletes its temporary file.
#[derive(Debug)]
pub struct SnapshotWriter {
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    meta: SnapshotMeta,
    meta_bytes: Vec<u8>,
    crc: crc32fast::Hasher,
    written: u64,
    keep: usize,
    fsyncs: Arc<AtomicU64>,
}

impl SnapshotWriter {
    /// What the snapshot covers.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Body bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// CRC-32 (IEEE) of the body so far: compare with the leader's
    /// `Frame::SnapshotEnd { crc }` before finishing a received snapshot.
    pub fn crc(&self) -> u32 {
        self.crc.clone().finalize()
    }

    /// Writes a received chunk, which must start where the previous one ended.
    pub fn write_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        if offset != self.written {
            return Err(StorageError::SnapshotOffset {
                expected: self.written,
                found: offset,
            });
        }
        self.write_all(data)
            .map_err(|e| StorageError::io("write", &self.temp, e))
    }

    /// Completes the snapshot durably (header, fsync, rename, directory fsync),
    /// then deletes all but the newest snapshots. Returns its metadata.
    pub fn finish(mut self) -> Result<SnapshotMeta, StorageError> {
        let mut file = self
            .file
            .take()
            .expect("the file lives until finish or drop");
        let header = Header {
            meta_len: self.meta_bytes.len() as u32,
            body_len: self.written,
            body_crc: self.crc(),
        };
        let temp = self.temp.clone();
        let result = (|| -> Result<(), StorageError> {
            file.flush()
                .map_err(|e| StorageError::io("write", &temp, e))?;
            let mut file = file
                .into_inner()
                .map_err(|e| StorageError::io("write", &temp, e.into_error()))?;
            file.seek(SeekFrom::Start(0))
                .and_then(|_| file.write_all(&header.encode(&self.meta_bytes)))
                .map_err(|e| StorageError::io("write", &temp, e))?;
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            file.sync_all()
                .map_err(|e| StorageError::io("fsync", &temp, e))?;
            fs::rename(&temp, &self.path).map_err(|e| StorageError::io("rename", &temp, e))?;
            durable::sync_dir(&self.dir, &self.fsyncs)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        self.prune()?;
        Ok(self.meta.clone())
    }

    /// Deletes all but the newest `keep` snapshots.
    fn prune(&self) -> Result<(), StorageError> {
        let mut found: Vec<(LogIndex, Term)> = list_names(&self.dir)?
            .iter()
            .filter_map(|n| parse_file_name(n))
            .collect();
        found.sort();
        let doomed = found.len().saturating_sub(self.keep);
        for &(index, term) in &found[..doomed] {
            durable::remove_file_lazily(&self.dir.join(snapshot_file_name(index, term)))?;
        }
        if doomed > 0 {
            durable::sync_dir(&self.dir, &self.fsyncs)?;
        }
        Ok(())
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .expect("the file lives until finish or drop");
        let n = file.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("the file lives until finish or drop")
            .flush()
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// The body of a stored snapshot, for an FSM's `restore(reader)` or for
/// streaming to a follower. Reading the last byte checks the body's checksum:
/// on a mismatch that read fails with [`io::ErrorKind::InvalidData`] wrapping a
/// [`StorageError::Corrupt`], so a restore never completes from damaged bytes.
#[derive(Debug)]
pub struct SnapshotReader {
    body: io::Take<BufReader<File>>,
    meta: SnapshotMeta,
    path: PathBuf,
    body_start: u64,
    body_len: u64,
    remaining: u64,
    crc: crc32fast::Hasher,
    stored_crc: u32,
}

impl SnapshotReader {
    /// What the snapshot covers.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// The body's size in bytes.
    pub fn body_bytes(&self) -> u64 {
        self.body_len
    }

    /// The body's CRC-32 (IEEE) as recorded in the header.
    pub fn body_crc(&self) -> u32 {
        self.stored_crc
    }

    /// How many bytes of the body have been read.
    pub fn position(&self) -> u64 {
        self.body_len - self.remaining
    }

    /// Reads the rest of the body, checking it against its checksum.
    pub fn verify(mut self) -> Result<(), StorageError> {
        let path = self.path.clone();
        match io::copy(&mut self, &mut io::sink()) {
            Ok(_) => Ok(()),
            Err(e) => match e.downcast::<StorageError>() {
                Ok(storage) => Err(storage),
                Err(e) => Err(StorageError::io("read", path, e)),
            },
        }
    }
}

impl Read for SnapshotReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.body.read(buf)?;
        if n == 0 {
            let e = Corruption::SnapshotLength {
                expected: self.body_len,
                found: self.body_len - self.remaining,
            };
            let e = StorageError::Corrupt {
                path: self.path.clone(),
                offset: self.body_start,
                reason: e,
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        self.crc.update(&buf[..n]);
        self.remaining -= n as u64;
        if self.remaining == 0 {
            let computed = self.crc.clone().finalize();
            if computed != self.stored_crc {
                let reason = Corruption::SnapshotChecksum {
                    stored: self.stored_crc,
                    computed,
                };
                let e = StorageError::Corrupt {
                    path: self.path.clone(),
                    offset: self.body_start,
                    reason,
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{ClusterId, Config, Member, MemberRole, NodeId};

    fn meta(index: u64, term: u64) -> SnapshotMeta {
        let config = Config {
            cluster_id: ClusterId(7),
            index: LogIndex(1),
            max_node_id: NodeId(1),
            members: vec![Member {
                id: NodeId(1),
                address: "127.0.0.1:7001".into(),
                role: MemberRole::Voter,
            }],
        };
        SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
            config,
        }
    }

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn write(store: &SnapshotStore, index: u64, term: u64, bytes: &[u8]) -> SnapshotMeta {
        let mut writer = store.create(meta(index, term)).unwrap();
        writer.write_all(bytes).unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn a_written_snapshot_reads_back_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), SNAPSHOTS_KEPT_DEFAULT).unwrap();
        assert_eq!(store.latest().unwrap(), None);
        let m = write(&store, 10, 2, &body(100_000));
        assert_eq!(store.latest().unwrap(), Some(m.clone()));
        let mut reader = store.reader(&m).unwrap();
        assert_eq!(reader.meta(), &m);
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got, body(100_000));
        assert_eq!(
            reader.body_bytes(),
            100_000,
            "the size a transfer announces"
        );
        assert_eq!(reader.body_crc(), crc32fast::hash(&got));
    }

    #[test]
    fn a_prune_that_deletes_makes_the_deletion_durable() {
        // A deleted snapshot must not come back after a crash (the log was
        // compacted past it): the directory is synced after deleting.
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 1).unwrap();
        let before = store.fsyncs();
        write(&store, 10, 1, &body(10)); // nothing to prune
        let first = store.fsyncs() - before;
        write(&store, 20, 1, &body(10)); // prunes the first
        let second = store.fsyncs() - before - first;
        assert_eq!(store.list().unwrap(), vec![(LogIndex(20), Term(1))]);
        assert_eq!(second, first + 1, "one directory fsync for the deletion");
    }

    #[test]
    fn files_that_only_look_like_snapshots_are_neither_listed_nor_pruned() {
        // Names must be exactly two 20-digit numbers: anything else in the
        // directory is not ours to read or delete.
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 1).unwrap();
        let strangers = [
            "00000000000000000005-7.snap",
            "5-00000000000000000007.snap",
            "0000000000000000000x-00000000000000000007.snap",
        ];
        for name in strangers {
            fs::write(tmp.path().join(name), b"not a snapshot").unwrap();
        }
        write(&store, 10, 1, &body(10));
        write(&store, 20, 1, &body(10));
        assert_eq!(store.list().unwrap(), vec![(LogIndex(20), Term(1))]);
        for name in strangers {
            assert!(tmp.path().join(name).exists(), "{name} was deleted");
        }
    }

    #[test]
    fn a_header_announcing_oversized_metadata_is_refused_before_it_is_read() {
        // A damaged length field must not make the reader allocate and read
        // whatever it claims, even when the file is that long.
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        let m = write(&store, 10, 2, &body(2 << 20));
        let path = tmp.path().join(snapshot_file_name(m.index, m.term));
        let mut bytes = fs::read(&path).unwrap();
        let claimed = (META_BYTES_MAX + 1) as u32;
        bytes[12..16].copy_from_slice(&claimed.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        match store.reader(&m) {
            Err(StorageError::Corrupt {
                offset: 12,
                reason: Corruption::Record(RecordError::TooLarge { .. }),
                ..
            }) => {}
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("an oversized metadata length was accepted"),
        }
    }

    #[test]
    fn received_chunks_must_arrive_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        let data = body(1000);
        let mut writer = store.create(meta(5, 1)).unwrap();
        writer.write_chunk(0, &data[..400]).unwrap();
        let err = writer.write_chunk(500, &data[500..]).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::SnapshotOffset {
                    expected: 400,
                    found: 500
                }
            ),
            "{err}"
        );
        writer.write_chunk(400, &data[400..]).unwrap();
        // What the driver reports as the snapshot's size (the node weighs
        // its log against it to decide when to snapshot next).
        assert_eq!(writer.bytes_written(), 1000);
        assert_eq!(writer.crc(), crc32fast::hash(&data));
        let m = writer.finish().unwrap();
        store.reader(&m).unwrap().verify().unwrap();
    }

    #[test]
    fn a_flipped_body_byte_fails_the_read_with_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        let m = write(&store, 3, 1, &body(5000));
        let path = tmp.path().join(snapshot_file_name(m.index, m.term));
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len() - 1234;
        bytes[at] ^= 0x08;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(
            store.latest().unwrap(),
            Some(m.clone()),
            "the header is intact"
        );
        let mut got = Vec::new();
        let err = store.reader(&m).unwrap().read_to_end(&mut got).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        match store.reader(&m).unwrap().verify() {
            Err(StorageError::Corrupt {
                path: p,
                reason: Corruption::SnapshotChecksum { .. },
                ..
            }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_damaged_header_or_a_cut_body_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        let m = write(&store, 3, 1, &body(64));
        let path = tmp.path().join(snapshot_file_name(m.index, m.term));
        let good = fs::read(&path).unwrap();
        for at in [0usize, 9, 13, 20, 25, 30, 40] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x01;
            fs::write(&path, &bytes).unwrap();
            match store.latest() {
                Err(StorageError::Corrupt { path: p, .. }) => assert_eq!(p, path, "flip at {at}"),
                other => panic!("flip at {at}: {other:?}"),
            }
        }
        // A cut body: the error says how long it should be and how long
        // it is, from where it starts.
        let body_start = good.len() as u64 - 64;
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        match store.latest() {
            Err(StorageError::Corrupt {
                offset,
                reason: Corruption::SnapshotLength { expected, found },
                ..
            }) => assert_eq!((offset, expected, found), (body_start, 64, 63)),
            other => panic!("{other:?}"),
        }
        // Cut inside the header, or right after it: what is missing is
        // named (the header itself, then the metadata the header announces).
        fs::write(&path, &good[..HEADER_BYTES - 1]).unwrap();
        match store.latest() {
            Err(StorageError::Corrupt {
                offset: 0,
                reason: Corruption::Header(HeaderError::Incomplete { needed, available }),
                ..
            }) => assert_eq!(
                (needed, available),
                (HEADER_BYTES as u64, HEADER_BYTES as u64 - 1)
            ),
            other => panic!("{other:?}"),
        }
        fs::write(&path, &good[..HEADER_BYTES]).unwrap();
        match store.latest() {
            Err(StorageError::Corrupt {
                offset: 12,
                reason: Corruption::Record(RecordError::TooLarge { len, max: 0 }),
                ..
            }) => assert_eq!(len, body_start - HEADER_BYTES as u64),
            other => panic!("{other:?}"),
        }
        // A body cut while it is read (its length was checked when the
        // reader opened it): the read fails with the same lengths.
        let big = write(&store, 4, 1, &body(100_000));
        let big_path = tmp.path().join(snapshot_file_name(big.index, big.term));
        let big_start = fs::metadata(&big_path).unwrap().len() - 100_000;
        let mut reader = store.reader(&big).unwrap();
        reader.read_exact(&mut [0u8; 1000]).unwrap();
        let file = OpenOptions::new().write(true).open(&big_path).unwrap();
        file.set_len(big_start + 50_000).unwrap();
        match reader.verify() {
            Err(StorageError::Corrupt {
                path: p,
                offset,
                reason: Corruption::SnapshotLength { expected, found },
            }) => assert_eq!(
                (p, offset, expected, found),
                (big_path, big_start, 100_000, 50_000)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_snapshot_file_under_another_snapshot_s_name_is_refused() {
        // Files are listed, pruned and opened by name: a snapshot copied or
        // renamed under another's name must not be handed out as that one
        // (a follower would install the wrong state for the index it was
        // promised).
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        let m = write(&store, 10, 2, &body(100));
        let claimed = meta(20, 2);
        let path = tmp
            .path()
            .join(snapshot_file_name(claimed.index, claimed.term));
        fs::rename(tmp.path().join(snapshot_file_name(m.index, m.term)), &path).unwrap();
        let mismatch = |result: Result<_, StorageError>| match result {
            Err(StorageError::Corrupt {
                path: p,
                offset,
                reason:
                    Corruption::NameMismatch {
                        name_index,
                        header_index,
                    },
            }) => assert_eq!(
                (p, offset, name_index, header_index),
                (path.clone(), HEADER_BYTES as u64, 20, 10)
            ),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a snapshot of index 10 was handed out as index 20"),
        };
        mismatch(store.latest().map(|_| ()));
        mismatch(store.reader(&claimed).map(|_| ()));
    }

    #[test]
    fn only_the_newest_snapshots_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        for i in 1..=4 {
            write(&store, i * 10, 1, &body(10));
        }
        assert_eq!(
            store.list().unwrap(),
            vec![(LogIndex(30), Term(1)), (LogIndex(40), Term(1))]
        );
        assert_eq!(store.latest().unwrap().map(|m| m.index), Some(LogIndex(40)));
    }

    #[test]
    fn an_unfinished_snapshot_is_invisible_and_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        let mut writer = store.create(meta(9, 1)).unwrap();
        writer.write_all(&body(100)).unwrap();
        assert_eq!(store.latest().unwrap(), None);
        drop(writer);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        // A temp file left by a crash is removed on open.
        fs::write(tmp.path().join("x.snap.0.tmp"), b"junk").unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        let err = store.reader(&meta(9, 1)).unwrap_err();
        assert!(
            matches!(err, StorageError::SnapshotNotFound { .. }),
            "{err}"
        );
    }

    #[test]
    fn an_empty_body_is_a_valid_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(tmp.path(), 2).unwrap();
        let m = write(&store, 1, 1, &[]);
        let mut got = Vec::new();
        store.reader(&m).unwrap().read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
    }
}
