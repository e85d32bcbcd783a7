//! The storage error vocabulary, by who is at fault.
//!
//! * **The bytes on disk** ([`StorageError::Corrupt`]): a file that is not what
//!   this code wrote. Always names the file and the byte offset where the damage
//!   starts, and says what is wrong ([`Corruption`]). Recovery never drops such
//!   data silently; the node must not start until an operator looks.
//! * **The environment** ([`StorageError::Io`]): the operating system refused
//!   an operation; names the operation and the path.
//! * **The caller** ([`StorageError::NotContiguous`],
//!   [`StorageError::TruncateOutOfRange`], [`StorageError::EntryTooLarge`],
//!   [`StorageError::SnapshotOffset`], ...): an API misuse, which a correct
//!   driver never produces.
//! * **An earlier failure** ([`StorageError::Poisoned`],
//!   [`StorageError::WriterFailed`]): after a failed write or fsync the state of
//!   a file is unknown, so the store refuses every later write.

use raft_core::{LogIndex, Term};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Everything that can go wrong in durable storage.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"open"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A file holds bytes this code did not write.
    #[error("corrupt {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage starts (the start of the damaged record or header).
        offset: u64,
        /// What is wrong.
        reason: Corruption,
    },
    /// The files of one store disagree with each other (for example the log
    /// starts after the newest snapshot ends).
    #[error("inconsistent storage in {}: {reason}", path.display())]
    Inconsistent {
        /// The directory.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
    /// Another process holds the data directory's lock (`<dir>/LOCK`): one
    /// process per data directory.
    #[error("data directory {} is in use by another process{}", dir.display(), holder.map_or(String::new(), |pid| format!(" (pid {pid})")))]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it into the lock file, if readable.
        holder: Option<u32>,
    },
    /// An append whose first entry does not follow the log's last entry.
    #[error("append of entry {found} does not follow the last index; expected {expected}")]
    NotContiguous {
        /// The index the next entry must have.
        expected: LogIndex,
        /// The index it had.
        found: LogIndex,
    },
    /// A truncation outside `first..=last + 1` of the log.
    #[error("truncate from {from} is outside the log {first}..={last} (+1)")]
    TruncateOutOfRange {
        /// The requested first index to remove.
        from: LogIndex,
        /// The log's first index.
        first: LogIndex,
        /// The log's last index.
        last: LogIndex,
    },
    /// An entry with more data than a log record can hold.
    #[error("entry {index} holds {bytes} bytes of data, above the limit of {bytes_max}")]
    EntryTooLarge {
        /// The entry.
        index: LogIndex,
        /// The size of its data.
        bytes: u64,
        /// The limit ([`crate::storage::record::ENTRY_DATA_BYTES_MAX`]).
        bytes_max: u64,
    },
    /// A snapshot chunk that does not continue where the previous one ended.
    #[error("snapshot chunk at offset {found}, expected {expected}")]
    SnapshotOffset {
        /// The number of bytes written so far.
        expected: u64,
        /// The chunk's offset.
        found: u64,
    },
    /// No snapshot with this index and term is stored.
    #[error("no snapshot {index}/{term} in {}", dir.display())]
    SnapshotNotFound {
        /// The snapshot directory.
        dir: PathBuf,
        /// The requested index.
        index: LogIndex,
        /// The requested term.
        term: Term,
    },
    /// An earlier write or fsync of this store failed; nothing more is written.
    #[error("{} refuses writes after an earlier failure", path.display())]
    Poisoned {
        /// The store's directory.
        path: PathBuf,
    },
    /// The log writer thread stopped after this failure.
    #[error("log writer failed: {0}")]
    WriterFailed(Arc<StorageError>),
    /// The log writer thread is gone (it panicked or was shut down).
    #[error("log writer stopped")]
    WriterStopped,
}

impl StorageError {
    /// Wraps an I/O error with the operation and path it concerns.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> StorageError {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether this error says that bytes on disk are damaged.
    pub fn is_corruption(&self) -> bool {
        match self {
            StorageError::Corrupt { .. } | StorageError::Inconsistent { .. } => true,
            StorageError::WriterFailed(inner) => inner.is_corruption(),
            _ => false,
        }
    }
}

/// What is wrong with damaged bytes.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Corruption {
    /// A log record does not decode.
    #[error("record: {0}")]
    Record(#[from] RecordError),
    /// A file header does not decode.
    #[error("header: {0}")]
    Header(#[from] HeaderError),
    /// An entry whose index does not follow the previous one.
    #[error("entry {found} where entry {expected} was expected")]
    IndexGap {
        /// The index that would have been contiguous.
        expected: LogIndex,
        /// The index found.
        found: LogIndex,
    },
    /// A segment whose first index does not follow the previous segment's last entry.
    #[error("segment starts at {found} but the log before it ends at {}", expected.0.saturating_sub(1))]
    SegmentGap {
        /// The index that would have been contiguous.
        expected: LogIndex,
        /// The segment's first index.
        found: LogIndex,
    },
    /// A truncate record outside the range its segment can hold.
    #[error("truncate from {from} outside {first}..={next}")]
    TruncateOutOfRange {
        /// The record's first index to remove.
        from: LogIndex,
        /// The segment's first index.
        first: LogIndex,
        /// The log's next index at that point.
        next: LogIndex,
    },
    /// A file name that does not match the index recorded inside the file.
    #[error("file name says {name_index} but the header says {header_index}")]
    NameMismatch {
        /// The index in the file name.
        name_index: u64,
        /// The index in the header.
        header_index: u64,
    },
    /// A file whose name is reserved for this store but does not parse.
    #[error("unexpected file name")]
    BadFileName,
    /// The body of a snapshot does not match its checksum.
    #[error("snapshot body checksum {computed:08x}, header says {stored:08x}")]
    SnapshotChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// A snapshot body shorter or longer than its header says.
    #[error("snapshot body is {found} bytes, header says {expected}")]
    SnapshotLength {
        /// The length in the header.
        expected: u64,
        /// The length found.
        found: u64,
    },
}

/// Why a log record (or a checksummed blob of another store) does not decode.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The buffer ends before the record does.
    #[error("incomplete: needs {needed} bytes, {available} available")]
    Incomplete {
        /// Bytes the record needs (header, or header plus payload).
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// A length field of zero (never written: an empty payload is not a record).
    #[error("zero length")]
    ZeroLength,
    /// A length field above the limit.
    #[error("length {len} above the limit {max}")]
    TooLarge {
        /// The length field.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The payload does not match its checksum.
    #[error("checksum {computed:08x}, stored {stored:08x}")]
    Checksum {
        /// The stored checksum.
        stored: u32,
        /// The checksum of the payload as read.
        computed: u32,
    },
    /// The checksum matches but the payload is not a valid encoding.
    #[error("malformed payload: {0}")]
    Malformed(String),
}

impl RecordError {
    /// Whether this damage looks like an interrupted write (and so may be a
    /// torn tail) rather than bytes that were written whole and are wrong.
    pub fn may_be_torn(&self) -> bool {
        !matches!(self, RecordError::Malformed(_))
    }
}

/// Why a file header does not decode.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The file is shorter than its header.
    #[error("incomplete: {available} of {needed} bytes")]
    Incomplete {
        /// The header's size.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// The magic bytes are wrong: not a file of this kind.
    #[error("bad magic bytes")]
    BadMagic,
    /// A format version this code does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u32),
    /// Reserved bits set.
    #[error("unknown flags {0:#x}")]
    UnknownFlags(u32),
    /// The header does not match its checksum.
    #[error("header checksum {computed:08x}, stored {stored:08x}")]
    Checksum {
        /// The stored checksum.
        stored: u32,
        /// The computed checksum.
        computed: u32,
    },
    /// A field with an impossible value.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}
