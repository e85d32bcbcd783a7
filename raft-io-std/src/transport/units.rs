//! Reading `raft_core::wire` records from a byte stream.

use raft_core::DecodeError;
use raft_core::wire::{self, WireUnit};
use std::io::{self, Read};
use thiserror::Error;

/// Bytes asked of the socket per read.
const READ_BYTES: usize = 64 << 10;

/// Why a connection stopped yielding units.
#[derive(Debug, Error)]
pub(crate) enum ReadError {
    /// The socket failed (or was shut down).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a valid record: close the connection.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// The peer closed the connection in the middle of a record.
    #[error("connection closed inside a record ({0} bytes pending)")]
    Cut(usize),
}

/// Splits a byte stream into [`WireUnit`]s. Memory stays at most one record
/// (the codec refuses a record above `wire::FRAME_BYTES_MAX` from its header)
/// plus one read.
pub(crate) struct UnitReader {
    buf: Vec<u8>,
    start: usize,
}

impl UnitReader {
    pub(crate) fn new() -> UnitReader {
        UnitReader {
            buf: Vec::with_capacity(READ_BYTES),
            start: 0,
        }
    }

    /// The next unit; `Ok(None)` when the peer closed cleanly between records.
    pub(crate) fn next(&mut self, r: &mut impl Read) -> Result<Option<WireUnit>, ReadError> {
        loop {
            if let Some((unit, used)) = wire::decode(&self.buf[self.start..])? {
                self.start += used;
                return Ok(Some(unit));
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let filled = self.buf.len();
            self.buf.resize(filled + READ_BYTES, 0);
            let n = loop {
                match r.read(&mut self.buf[filled..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(filled);
                        return Err(ReadError::Io(e));
                    }
                }
            };
            self.buf.truncate(filled + n);
            if n == 0 {
                return match filled {
                    0 => Ok(None),
                    pending => Err(ReadError::Cut(pending)),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{Frame, LogIndex};

    /// Hands out its bytes a few at a time, like a slow socket.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn acks(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 1..=n {
            wire::encode(
                &WireUnit::Frame(Frame::Ack {
                    durable: LogIndex(i),
                }),
                &mut out,
            );
        }
        out
    }

    #[test]
    fn units_arrive_whole_however_the_bytes_are_cut() {
        let bytes = acks(50);
        for piece in [1, 3, 17, 1000] {
            let mut r = Trickle(&bytes, piece);
            let mut reader = UnitReader::new();
            let mut got = 0;
            while let Some(unit) = reader.next(&mut r).unwrap() {
                got += 1;
                assert_eq!(
                    unit,
                    WireUnit::Frame(Frame::Ack {
                        durable: LogIndex(got)
                    })
                );
            }
            assert_eq!(got, 50);
        }
    }

    /// A header, then zeros for ever, counting what was read.
    struct Endless {
        header: Vec<u8>,
        read: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len();
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.header.get(self.read + i).copied().unwrap_or(0);
            }
            self.read += n;
            Ok(n)
        }
    }

    #[test]
    fn a_length_prefix_above_the_limit_is_refused_from_the_header_alone() {
        // A well-formed header (its checksum right) announcing 4 GiB.
        let mut header = acks(1)[..14].to_vec();
        header[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&header[..10]);
        header[10..14].copy_from_slice(&crc.to_le_bytes());
        let mut peer = Endless { header, read: 0 };
        let mut reader = UnitReader::new();
        assert!(matches!(
            reader.next(&mut peer),
            Err(ReadError::Malformed(DecodeError::TooLarge { .. }))
        ));
        // Refused after the first read: nothing buffered towards the 4 GiB.
        assert_eq!(peer.read, READ_BYTES);
        assert!(reader.buf.capacity() <= 2 * READ_BYTES);
    }

    #[test]
    fn garbage_is_an_error_and_a_cut_record_is_reported() {
        let mut reader = UnitReader::new();
        let garbage = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert!(matches!(
            reader.next(&mut &garbage[..]),
            Err(ReadError::Malformed(_))
        ));
        let bytes = acks(1);
        let mut reader = UnitReader::new();
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(reader.next(&mut &cut[..]), Err(ReadError::Cut(_))));
    }
}
