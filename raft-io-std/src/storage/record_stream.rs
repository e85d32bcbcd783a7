//! A segment file read front to back through a bounded buffer, so recovery
//! holds one record (or one read chunk) of it at a time, not the whole file.

use super::error::StorageError;
use super::record::{RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX};
use std::io::Read;
use std::path::Path;

/// Bytes asked of the file per read (more when one record is larger).
const READ_CHUNK_BYTES: usize = 1 << 20;

/// The unread bytes of a file, refilled on demand.
pub(crate) struct RecordStream<'a, R> {
    path: &'a Path,
    reader: R,
    /// Bytes read from the file; `buf[start..]` are not consumed yet.
    buf: Vec<u8>,
    start: usize,
    /// The file offset of `buf[start]`.
    offset: u64,
    eof: bool,
}

impl<'a, R: Read> RecordStream<'a, R> {
    pub(crate) fn new(path: &'a Path, reader: R) -> RecordStream<'a, R> {
        RecordStream {
            path,
            reader,
            buf: Vec::new(),
            start: 0,
            offset: 0,
            eof: false,
        }
    }

    /// The file being read.
    pub(crate) fn path(&self) -> &'a Path {
        self.path
    }

    /// The file offset of the first unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The unconsumed bytes read so far.
    pub(crate) fn peek(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Consumes `n` bytes (at most what [`RecordStream::peek`] shows).
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(
            n <= self.buf.len() - self.start,
            "consume {n} of {} bytes buffered in {}",
            self.buf.len() - self.start,
            self.path.display()
        );
        self.start += n;
        self.offset += n as u64;
    }

    /// Reads until at least `n` unconsumed bytes are buffered, or the file ends.
    pub(crate) fn fill(&mut self, n: usize) -> Result<(), StorageError> {
        if self.buf.len() - self.start >= n || self.eof {
            return Ok(());
        }
        self.buf.drain(..self.start);
        self.start = 0;
        while self.buf.len() < n && !self.eof {
            let want = (n - self.buf.len()).max(READ_CHUNK_BYTES) as u64;
            // `read_to_end` of a `Take` reads `want` bytes or up to the end
            // of the file, growing the buffer without zeroing it first.
            let read = (&mut self.reader)
                .take(want)
                .read_to_end(&mut self.buf)
                .map_err(|e| StorageError::io("read", self.path, e))?;
            if (read as u64) < want {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// Buffers the whole next record if the file holds it: its header, and
    /// the payload its length field announces when that length is valid (an
    /// invalid one fails decoding with the header alone).
    pub(crate) fn fill_record(&mut self) -> Result<(), StorageError> {
        self.fill(RECORD_HEADER_BYTES)?;
        let head = self.peek();
        if head.len() < RECORD_HEADER_BYTES {
            return Ok(());
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len == 0 || len > RECORD_PAYLOAD_BYTES_MAX {
            return Ok(());
        }
        self.fill(RECORD_HEADER_BYTES + len)
    }

    /// Buffers the rest of the file (only for damage: to look for a valid
    /// record after it).
    pub(crate) fn fill_all(&mut self) -> Result<(), StorageError> {
        while !self.eof {
            let have = self.buf.len() - self.start;
            self.fill(have + READ_CHUNK_BYTES)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields at most 3 bytes per read, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out.len().min(3).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn fills_across_short_reads_and_tracks_the_offset() {
        let bytes: Vec<u8> = (0..20).collect();
        let mut s = RecordStream::new(Path::new("x"), Trickle(&bytes));
        s.fill(7).unwrap();
        assert!(s.peek().len() >= 7);
        assert_eq!(s.peek(), &bytes[..s.peek().len()]);
        s.consume(5);
        assert_eq!(s.offset(), 5);
        s.fill(10).unwrap();
        assert_eq!(&s.peek()[..10], &bytes[5..15]);
        s.fill_all().unwrap();
        assert_eq!(s.peek(), &bytes[5..]);
        s.fill(100).unwrap();
        assert_eq!(s.peek().len(), 15, "the file ended");
    }

    #[test]
    fn a_record_is_buffered_whole_and_a_bad_length_only_to_its_header() {
        let mut bytes = 5u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(b"hello and more");
        let mut s = RecordStream::new(Path::new("x"), Trickle(&bytes));
        s.fill_record().unwrap();
        assert!(s.peek().len() >= 13);
        let bad = u32::MAX.to_le_bytes().repeat(2);
        let mut s = RecordStream::new(Path::new("x"), Trickle(&bad));
        s.fill_record().unwrap();
        assert!(s.peek().len() >= RECORD_HEADER_BYTES);
        // The largest length the decoder accepts is buffered whole too:
        // a valid last record of that size read only in part would fail to
        // decode as incomplete and be cut off as a torn tail.
        let mut largest = vec![0u8; RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_MAX];
        largest[..4].copy_from_slice(&(RECORD_PAYLOAD_BYTES_MAX as u32).to_le_bytes());
        let mut s = RecordStream::new(Path::new("x"), &largest[..]);
        s.fill_record().unwrap();
        assert_eq!(s.peek().len(), largest.len());
    }

    #[test]
    fn a_large_record_is_buffered_with_at_most_a_read_more() {
        // Recovery holds one record or one read of a segment at a time
        // (the memory `Wal::open_within` documents), whatever follows it.
        let len = 2 * READ_CHUNK_BYTES;
        let mut bytes = vec![0u8; RECORD_HEADER_BYTES + len + 10 * READ_CHUNK_BYTES];
        bytes[..4].copy_from_slice(&(len as u32).to_le_bytes());
        let mut s = RecordStream::new(Path::new("x"), &bytes[..]);
        s.fill_record().unwrap();
        let held = s.peek().len();
        assert!(
            (RECORD_HEADER_BYTES + len..=RECORD_HEADER_BYTES + len + READ_CHUNK_BYTES)
                .contains(&held),
            "{held} bytes held for a record of {len}"
        );
    }
}
