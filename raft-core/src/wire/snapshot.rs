//! Snapshots on a stream: cut into frames by the sender ([`snapshot_frames`]),
//! checked frame by frame by the receiver ([`SnapshotAssembler`]).
//!
//! A transfer is `SnapshotBegin { meta, size, offset: 0 }`, then
//! `SnapshotChunk`s whose offsets are consecutive from 0 and each carry the
//! CRC-32 of their bytes, then `SnapshotEnd` with the CRC-32 of the whole
//! snapshot. An empty snapshot has no chunks. A transfer cut short by a broken
//! stream may resume on the next one: `SnapshotBegin { offset }` with the
//! offset the receiver reached, then the chunks from there on.

use super::FRAME_BYTES_MAX;
use crate::message::{Frame, SnapshotMeta};
use bytes::Bytes;
use thiserror::Error;

/// The most snapshot bytes one `SnapshotChunk` carries: what fits in one record
/// next to the chunk's offset and checksum. [`snapshot_frames`] clamps to it.
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = FRAME_BYTES_MAX - 64;

/// Cuts a snapshot into the frames that carry it on a stream: `SnapshotBegin`,
/// one `SnapshotChunk` per `chunk_bytes` of `data` (the last may be shorter;
/// each shares `data`'s memory), and `SnapshotEnd`.
///
/// `chunk_bytes` above [`SNAPSHOT_CHUNK_BYTES_MAX`] is clamped to it.
///
/// # Panics
///
/// If `chunk_bytes` is 0.
///
/// # Example
///
/// ```
/// use raft_core::wire::{snapshot_frames, SnapshotAssembler, SnapshotProgress};
/// use raft_core::{Config, LogIndex, SnapshotMeta, Term};
///
/// let meta = SnapshotMeta { index: LogIndex(10), term: Term(2), config: Config::default() };
/// let data = bytes::Bytes::from_static(b"the state machine at index 10");
/// let frames = snapshot_frames(&meta, &data, 8);
/// assert_eq!(frames.len(), 1 + 4 + 1);
///
/// let mut assembler = SnapshotAssembler::new();
/// let mut received = Vec::new();
/// for frame in &frames {
///     match assembler.feed(frame)? {
///         SnapshotProgress::Started => {}
///         SnapshotProgress::Chunk { offset, data } => {
///             assert_eq!(offset, received.len() as u64);
///             received.extend_from_slice(&data);
///         }
///         SnapshotProgress::Complete { meta: done } => assert_eq!(done, meta),
///     }
/// }
/// assert_eq!(received, data);
/// # Ok::<(), raft_core::wire::SnapshotError>(())
/// ```
pub fn snapshot_frames(meta: &SnapshotMeta, data: &Bytes, chunk_bytes: usize) -> Vec<Frame> {
    snapshot_window_frames(meta, data, 0, u64::MAX, true, chunk_bytes)
}

/// The frames of one `Action::SendSnapshot` window: the part of
/// [`snapshot_frames`] that carries the bytes `offset..offset + bytes_max`
/// (clipped to the snapshot), led by `SnapshotBegin { offset }` when `first`
/// (the window opens the transfer on its stream) and closed by `SnapshotEnd`
/// when the window reaches the snapshot's end. A window that starts past the
/// end is empty but for its `SnapshotBegin`. Consecutive windows, each
/// starting where the last one ended and the first of them `first`,
/// concatenate to [`snapshot_frames`] (chunk boundaries aside).
///
/// # Panics
///
/// If `chunk_bytes` is 0.
pub fn snapshot_window_frames(
    meta: &SnapshotMeta,
    data: &Bytes,
    offset: u64,
    bytes_max: u64,
    first: bool,
    chunk_bytes: usize,
) -> Vec<Frame> {
    assert!(chunk_bytes > 0, "snapshot chunk_bytes must be positive");
    let chunk_bytes = chunk_bytes.min(SNAPSHOT_CHUNK_BYTES_MAX);
    let size = data.len() as u64;
    let mut frames = Vec::new();
    if first {
        frames.push(Frame::SnapshotBegin {
            meta: meta.clone(),
            size,
            offset: offset.min(size),
        });
    }
    if offset > size {
        return frames;
    }
    let end = offset.saturating_add(bytes_max).min(size);
    let (mut at, end) = (offset as usize, end as usize);
    while at < end {
        let to = end.min(at + chunk_bytes);
        let chunk = data.slice(at..to);
        let crc = crc32fast::hash(&chunk);
        frames.push(Frame::SnapshotChunk {
            offset: at as u64,
            data: chunk,
            crc,
        });
        at = to;
    }
    // The window that reaches the end closes the transfer; one that starts
    // at the end sends nothing again (unless it opens the transfer).
    if end == data.len() && (at > offset as usize || first) {
        frames.push(Frame::SnapshotEnd {
            crc: crc32fast::hash(data),
        });
    }
    frames
}

/// Why a snapshot transfer was refused. After any of these the transfer is
/// dead: the receiver should close the stream and let the leader start over.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A frame that is not part of a snapshot transfer (a chunk of entries, an ack).
    #[error("not a snapshot frame")]
    NotSnapshotFrame,
    /// A `SnapshotChunk` or `SnapshotEnd` with no transfer in progress.
    #[error("snapshot frame before SnapshotBegin")]
    NotStarted,
    /// A `SnapshotBegin` while a transfer is in progress.
    #[error("SnapshotBegin while a snapshot transfer is in progress")]
    AlreadyStarted,
    /// A chunk that does not start where the previous one ended.
    #[error("snapshot chunk at offset {offset}, expected {expected}")]
    OffsetMismatch {
        /// The offset the next chunk must have.
        expected: u64,
        /// The chunk's offset.
        offset: u64,
    },
    /// A chunk that runs past the size declared by `SnapshotBegin`.
    #[error("snapshot chunk of {len} bytes at offset {offset} runs past the declared size {size}")]
    PastEnd {
        /// The declared size.
        size: u64,
        /// The chunk's offset.
        offset: u64,
        /// The chunk's length.
        len: u64,
    },
    /// A `SnapshotBegin` that resumes at `offset`, where the transfer held
    /// (if any) reached `held` bytes or is of another snapshot.
    #[error("SnapshotBegin resumes at offset {offset}, but the transfer held is at {held}")]
    NotResumable {
        /// Where the `SnapshotBegin` resumes.
        offset: u64,
        /// Bytes received of the transfer held (0 if none or another snapshot).
        held: u64,
    },
    /// A chunk whose bytes do not match its checksum.
    #[error(
        "snapshot chunk at offset {offset}: checksum stored {stored:08x}, computed {computed:08x}"
    )]
    ChunkChecksum {
        /// The chunk's offset.
        offset: u64,
        /// The checksum in the frame.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// `SnapshotEnd` before every declared byte arrived.
    #[error("SnapshotEnd after {received} of {size} bytes")]
    Incomplete {
        /// The declared size.
        size: u64,
        /// The bytes received.
        received: u64,
    },
    /// Every chunk matched its own checksum, but the whole does not match `SnapshotEnd`'s.
    #[error("snapshot checksum: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The checksum in `SnapshotEnd`.
        stored: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
}

/// What feeding one frame to a [`SnapshotAssembler`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotProgress {
    /// `SnapshotBegin` accepted: a transfer started.
    Started,
    /// A chunk passed its checks: store `data` at `offset`.
    Chunk {
        /// Byte offset of `data` in the snapshot.
        offset: u64,
        /// The verified bytes (sharing the frame's memory).
        data: Bytes,
    },
    /// `SnapshotEnd` accepted: every byte arrived and the whole checksum
    /// matches. The assembler is idle again.
    Complete {
        /// The snapshot that is now complete.
        meta: SnapshotMeta,
    },
}

/// The receiving side of a snapshot transfer: checks that chunks arrive in
/// order, inside the declared size and intact, and that the whole matches the
/// final checksum. It keeps no snapshot bytes (only a running checksum): the
/// caller stores each verified chunk as it comes.
///
/// Pure and cheap; one per stream. Any error leaves it idle (the transfer is
/// abandoned), as does completion.
///
/// See [`snapshot_frames`] for an example.
#[derive(Clone, Debug, Default)]
pub struct SnapshotAssembler {
    transfer: Option<Transfer>,
}

/// A transfer in progress.
#[derive(Clone, Debug)]
struct Transfer {
    meta: SnapshotMeta,
    size: u64,
    received: u64,
    crc: crc32fast::Hasher,
    /// Its stream broke ([`SnapshotAssembler::stream_closed`]): only a
    /// `SnapshotBegin` may follow.
    cut_short: bool,
}

impl SnapshotAssembler {
    /// An idle assembler, waiting for `SnapshotBegin`.
    pub fn new() -> SnapshotAssembler {
        SnapshotAssembler::default()
    }

    /// Checks the next frame of a transfer. On error the transfer is abandoned.
    pub fn feed(&mut self, frame: &Frame) -> Result<SnapshotProgress, SnapshotError> {
        let progress = self.accept(frame);
        if progress.is_err() {
            self.transfer = None;
        }
        progress
    }

    /// The snapshot being received, if a transfer is in progress.
    pub fn meta(&self) -> Option<&SnapshotMeta> {
        self.transfer.as_ref().map(|t| &t.meta)
    }

    /// The size declared by `SnapshotBegin`, if a transfer is in progress.
    pub fn size_bytes(&self) -> Option<u64> {
        self.transfer.as_ref().map(|t| t.size)
    }

    /// Bytes verified so far in the transfer in progress (0 when idle).
    pub fn received_bytes(&self) -> u64 {
        self.transfer.as_ref().map_or(0, |t| t.received)
    }

    /// Whether a transfer is in progress (or held, cut short by its stream,
    /// for a `SnapshotBegin` that resumes it).
    pub fn is_receiving(&self) -> bool {
        self.transfer.is_some()
    }

    /// Abandons the transfer in progress, if any (the stream closed and the
    /// transfer will not be resumed: call [`SnapshotAssembler::stream_closed`]
    /// instead to accept a `SnapshotBegin` that resumes it on the next stream).
    pub fn reset(&mut self) {
        self.transfer = None;
    }

    /// The stream the transfer arrives on broke: keep the transfer for a
    /// `SnapshotBegin` that resumes it on the next stream, but let one at
    /// offset 0 start over (the leader may ignore the offer to resume), and
    /// take no chunk or end before a `SnapshotBegin`.
    pub fn stream_closed(&mut self) {
        if let Some(t) = self.transfer.as_mut() {
            t.cut_short = true;
        }
    }

    /// The transfer in progress on the current stream, if any.
    fn live(&mut self) -> Option<&mut Transfer> {
        self.transfer.as_mut().filter(|t| !t.cut_short)
    }

    fn accept(&mut self, frame: &Frame) -> Result<SnapshotProgress, SnapshotError> {
        match frame {
            Frame::SnapshotBegin { meta, size, offset } if *offset > 0 => {
                // Resuming: the transfer held, cut short where this begins.
                let held = self
                    .transfer
                    .as_ref()
                    .filter(|t| t.meta == *meta && t.size == *size)
                    .map_or(0, |t| t.received);
                if held != *offset {
                    return Err(SnapshotError::NotResumable {
                        offset: *offset,
                        held,
                    });
                }
                if let Some(t) = self.transfer.as_mut() {
                    t.cut_short = false;
                }
                Ok(SnapshotProgress::Started)
            }
            Frame::SnapshotBegin { meta, size, .. } => {
                if self.transfer.as_ref().is_some_and(|t| !t.cut_short) {
                    return Err(SnapshotError::AlreadyStarted);
                }
                self.transfer = Some(Transfer {
                    meta: meta.clone(),
                    size: *size,
                    received: 0,
                    crc: crc32fast::Hasher::new(),
                    cut_short: false,
                });
                Ok(SnapshotProgress::Started)
            }
            Frame::SnapshotChunk { offset, data, crc } => {
                let transfer = self.live().ok_or(SnapshotError::NotStarted)?;
                if *offset != transfer.received {
                    return Err(SnapshotError::OffsetMismatch {
                        expected: transfer.received,
                        offset: *offset,
                    });
                }
                let len = data.len() as u64;
                let end = offset.checked_add(len).filter(|end| *end <= transfer.size);
                let Some(end) = end else {
                    return Err(SnapshotError::PastEnd {
                        size: transfer.size,
                        offset: *offset,
                        len,
                    });
                };
                let computed = crc32fast::hash(data);
                if computed != *crc {
                    return Err(SnapshotError::ChunkChecksum {
                        offset: *offset,
                        stored: *crc,
                        computed,
                    });
                }
                transfer.crc.update(data);
                transfer.received = end;
                Ok(SnapshotProgress::Chunk {
                    offset: *offset,
                    data: data.clone(),
                })
            }
            Frame::SnapshotEnd { crc } => {
                self.live().ok_or(SnapshotError::NotStarted)?;
                let transfer = self.transfer.take().expect("live");
                if transfer.received != transfer.size {
                    return Err(SnapshotError::Incomplete {
                        size: transfer.size,
                        received: transfer.received,
                    });
                }
                let computed = transfer.crc.finalize();
                if computed != *crc {
                    return Err(SnapshotError::Checksum {
                        stored: *crc,
                        computed,
                    });
                }
                Ok(SnapshotProgress::Complete {
                    meta: transfer.meta,
                })
            }
            Frame::Chunk { .. } | Frame::Ack { .. } | Frame::SnapshotAck { .. } => {
                Err(SnapshotError::NotSnapshotFrame)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::types::{LogIndex, Term};

    fn meta() -> SnapshotMeta {
        SnapshotMeta {
            index: LogIndex(10),
            term: Term(2),
            config: Config::default(),
        }
    }

    fn data() -> Bytes {
        Bytes::from((0..100u8).collect::<Vec<u8>>())
    }

    /// Feeds frames and returns the first error, or the bytes and meta assembled.
    fn assemble(frames: &[Frame]) -> Result<(Vec<u8>, Option<SnapshotMeta>), SnapshotError> {
        assemble_into(&mut SnapshotAssembler::new(), frames)
    }

    #[test]
    fn frames_reassemble_to_the_snapshot() {
        for chunk_bytes in [1, 7, 50, 100, 1000] {
            let frames = snapshot_frames(&meta(), &data(), chunk_bytes);
            assert_eq!(frames.len(), 2 + 100usize.div_ceil(chunk_bytes));
            assert_eq!(assemble(&frames), Ok((data().to_vec(), Some(meta()))));
        }
    }

    #[test]
    fn consecutive_windows_reassemble_to_the_snapshot_with_one_begin_and_one_end() {
        for window in [1u64, 30, 99, 100, 1000] {
            let mut frames = Vec::new();
            let mut offset = 0;
            loop {
                let first = offset == 0;
                frames.extend(snapshot_window_frames(
                    &meta(),
                    &data(),
                    offset,
                    window,
                    first,
                    7,
                ));
                offset += window;
                if offset >= 100 {
                    break;
                }
            }
            let begins = frames
                .iter()
                .filter(|f| matches!(f, Frame::SnapshotBegin { .. }));
            let ends = frames
                .iter()
                .filter(|f| matches!(f, Frame::SnapshotEnd { .. }));
            assert_eq!((begins.count(), ends.count()), (1, 1), "window {window}");
            assert_eq!(assemble(&frames), Ok((data().to_vec(), Some(meta()))));
        }
        assert!(snapshot_window_frames(&meta(), &data(), 100, 10, false, 7).is_empty());
        assert!(snapshot_window_frames(&meta(), &data(), 101, 10, false, 7).is_empty());
        assert_eq!(
            snapshot_window_frames(&meta(), &Bytes::new(), 0, 10, true, 7).len(),
            2
        );
    }

    #[test]
    fn a_transfer_cut_short_resumes_where_the_receiver_stopped() {
        let mut assembler = SnapshotAssembler::new();
        let mut bytes = Vec::new();
        let mut feed = |assembler: &mut SnapshotAssembler, frames: Vec<Frame>| {
            for frame in &frames {
                if let SnapshotProgress::Chunk { data, .. } = assembler.feed(frame)? {
                    bytes.extend_from_slice(&data);
                }
            }
            Ok::<_, SnapshotError>(())
        };
        // The first stream carries 40 bytes, then breaks.
        feed(
            &mut assembler,
            snapshot_window_frames(&meta(), &data(), 0, 40, true, 7),
        )
        .unwrap();
        assert_eq!(assembler.received_bytes(), 40);

        // The next resumes at 40, with a Begin of its own.
        let resumed = snapshot_window_frames(&meta(), &data(), 40, 100, true, 7);
        assert_eq!(
            resumed[0],
            Frame::SnapshotBegin {
                meta: meta(),
                size: 100,
                offset: 40
            }
        );
        feed(&mut assembler, resumed).unwrap();
        assert_eq!(bytes, data().to_vec());
        assert!(!assembler.is_receiving(), "complete");

        // A resume anywhere else, or of another snapshot, is refused.
        let mut assembler = SnapshotAssembler::new();
        let wrong = snapshot_window_frames(&meta(), &data(), 40, 10, true, 7);
        assert_eq!(
            assembler.feed(&wrong[0]),
            Err(SnapshotError::NotResumable {
                offset: 40,
                held: 0
            })
        );
        let first = snapshot_window_frames(&meta(), &data(), 0, 30, true, 7);
        for frame in &first {
            assembler.feed(frame).unwrap();
        }
        assert_eq!(
            assembler.feed(&wrong[0]),
            Err(SnapshotError::NotResumable {
                offset: 40,
                held: 30
            })
        );
        let mut other = meta();
        other.index = LogIndex(11);
        for frame in &first {
            assembler.feed(frame).unwrap();
        }
        let begin = Frame::SnapshotBegin {
            meta: other,
            size: 100,
            offset: 30,
        };
        assert_eq!(
            assembler.feed(&begin),
            Err(SnapshotError::NotResumable {
                offset: 30,
                held: 0
            })
        );
    }

    #[test]
    fn a_transfer_cut_short_may_start_over_from_byte_0_on_the_next_stream() {
        // The first stream carries 40 bytes, then breaks; the driver keeps
        // the transfer to resume it, as the protocol lets it.
        let mut assembler = SnapshotAssembler::new();
        for frame in &snapshot_window_frames(&meta(), &data(), 0, 40, true, 7) {
            assembler.feed(frame).unwrap();
        }
        assembler.stream_closed();
        assert_eq!(assembler.received_bytes(), 40, "held for a resume");
        // The leader ignored the offer (it sends another snapshot, or it
        // restarted): the next stream starts over at byte 0, which is no
        // Begin inside a transfer.
        let mut other = meta();
        other.index = LogIndex(12);
        assert_eq!(
            assemble_into(&mut assembler, &snapshot_frames(&other, &data(), 7)),
            Ok((data().to_vec(), Some(other)))
        );
        // Within one stream a second Begin is still out of place.
        let frames = snapshot_frames(&meta(), &data(), 7);
        assembler.feed(&frames[0]).unwrap();
        assert_eq!(
            assembler.feed(&frames[0]),
            Err(SnapshotError::AlreadyStarted)
        );
        // Nor does a chunk continue a transfer its stream cut short
        // without a Begin that resumes it.
        let mut assembler = SnapshotAssembler::new();
        assembler.feed(&frames[0]).unwrap();
        assembler.feed(&frames[1]).unwrap();
        assembler.stream_closed();
        assert_eq!(assembler.feed(&frames[2]), Err(SnapshotError::NotStarted));
        assert!(!assembler.is_receiving());
    }

    /// Feeds `frames` to `assembler`, as [`assemble`] does to a fresh one.
    /// Feeds frames to `assembler`, which may hold an earlier transfer.
    fn assemble_into(
        assembler: &mut SnapshotAssembler,
        frames: &[Frame],
    ) -> Result<(Vec<u8>, Option<SnapshotMeta>), SnapshotError> {
        let mut bytes = Vec::new();
        let mut done = None;
        for frame in frames {
            match assembler.feed(frame)? {
                SnapshotProgress::Started => {}
                SnapshotProgress::Chunk { data, .. } => bytes.extend_from_slice(&data),
                SnapshotProgress::Complete { meta } => done = Some(meta),
            }
        }
        Ok((bytes, done))
    }

    #[test]
    fn empty_snapshot_is_begin_then_end() {
        let frames = snapshot_frames(&meta(), &Bytes::new(), 8);
        assert_eq!(
            frames,
            vec![
                Frame::SnapshotBegin {
                    meta: meta(),
                    size: 0,
                    offset: 0
                },
                Frame::SnapshotEnd { crc: 0 }
            ]
        );
        assert_eq!(assemble(&frames), Ok((vec![], Some(meta()))));
    }

    #[test]
    #[should_panic(expected = "chunk_bytes must be positive")]
    fn zero_chunk_bytes_is_a_caller_bug() {
        snapshot_frames(&meta(), &data(), 0);
    }

    #[test]
    fn missing_chunk_is_an_offset_mismatch() {
        let mut frames = snapshot_frames(&meta(), &data(), 30);
        frames.remove(2);
        assert_eq!(
            assemble(&frames),
            Err(SnapshotError::OffsetMismatch {
                expected: 30,
                offset: 60
            })
        );
    }

    #[test]
    fn corrupted_chunk_fails_its_checksum() {
        let mut frames = snapshot_frames(&meta(), &data(), 30);
        if let Frame::SnapshotChunk { data, .. } = &mut frames[2] {
            let mut bytes = data.to_vec();
            bytes[0] ^= 1;
            *data = Bytes::from(bytes);
        }
        assert!(matches!(
            assemble(&frames),
            Err(SnapshotError::ChunkChecksum { offset: 30, .. })
        ));
    }

    #[test]
    fn chunk_past_the_declared_size_is_refused() {
        let mut frames = snapshot_frames(&meta(), &data(), 30);
        frames[0] = Frame::SnapshotBegin {
            meta: meta(),
            size: 50,
            offset: 0,
        };
        assert_eq!(
            assemble(&frames),
            Err(SnapshotError::PastEnd {
                size: 50,
                offset: 30,
                len: 30
            })
        );
    }

    #[test]
    fn chunk_whose_end_overflows_is_refused_not_wrapped() {
        let mut assembler = SnapshotAssembler::new();
        assembler
            .feed(&Frame::SnapshotBegin {
                meta: meta(),
                size: u64::MAX,
                offset: 0,
            })
            .unwrap();
        let big = Bytes::from(vec![0; 10]);
        let crc = crc32fast::hash(&big);
        // No test can send 2^64 bytes first: put the transfer where a real one could be.
        assembler.transfer.as_mut().unwrap().received = u64::MAX - 5;
        let chunk = Frame::SnapshotChunk {
            offset: u64::MAX - 5,
            data: big,
            crc,
        };
        assert_eq!(
            assembler.feed(&chunk),
            Err(SnapshotError::PastEnd {
                size: u64::MAX,
                offset: u64::MAX - 5,
                len: 10
            })
        );
        assert!(!assembler.is_receiving());
    }

    #[test]
    fn end_before_every_byte_is_incomplete() {
        let mut frames = snapshot_frames(&meta(), &data(), 30);
        frames.remove(4);
        assert_eq!(
            assemble(&frames),
            Err(SnapshotError::Incomplete {
                size: 100,
                received: 90
            })
        );
    }

    #[test]
    fn wrong_whole_checksum_is_refused() {
        let mut frames = snapshot_frames(&meta(), &data(), 30);
        let last = frames.len() - 1;
        frames[last] = Frame::SnapshotEnd { crc: 0xdead_beef };
        assert!(matches!(
            assemble(&frames),
            Err(SnapshotError::Checksum {
                stored: 0xdead_beef,
                ..
            })
        ));
    }

    #[test]
    fn frames_out_of_place_are_refused_and_reset_the_transfer() {
        let frames = snapshot_frames(&meta(), &data(), 30);
        let mut assembler = SnapshotAssembler::new();
        assert_eq!(assembler.feed(&frames[1]), Err(SnapshotError::NotStarted));
        assert_eq!(assembler.feed(&frames[5]), Err(SnapshotError::NotStarted));
        assembler.feed(&frames[0]).unwrap();
        assembler.feed(&frames[1]).unwrap();
        assert_eq!(assembler.received_bytes(), 30);
        assert_eq!(assembler.size_bytes(), Some(100));
        assert_eq!(assembler.meta(), Some(&meta()));
        assert_eq!(
            assembler.feed(&frames[0]),
            Err(SnapshotError::AlreadyStarted)
        );
        assert!(!assembler.is_receiving());
        assert_eq!(
            assembler.feed(&Frame::Ack {
                durable: LogIndex(1)
            }),
            Err(SnapshotError::NotSnapshotFrame)
        );
        // A fresh transfer after the failed one goes through.
        assert_eq!(assemble(&frames), Ok((data().to_vec(), Some(meta()))));
    }

    #[test]
    fn assembler_is_idle_after_completion_and_can_receive_again() {
        let frames = snapshot_frames(&meta(), &data(), 64);
        let mut assembler = SnapshotAssembler::new();
        for round in 0..2 {
            for frame in &frames {
                assembler
                    .feed(frame)
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
            assert!(!assembler.is_receiving());
            assert_eq!(assembler.received_bytes(), 0);
        }
    }

    #[test]
    fn a_reset_abandons_the_transfer_in_progress_and_a_new_one_may_begin() {
        let frames = snapshot_frames(&meta(), &data(), 64);
        let mut assembler = SnapshotAssembler::new();
        assembler.feed(&frames[0]).unwrap();
        assembler.feed(&frames[1]).unwrap();
        assert!(assembler.is_receiving());
        assert!(assembler.received_bytes() > 0);
        // The stream closed for good: the driver resets, and a transfer
        // from byte 0 on the next stream is accepted whole.
        assembler.reset();
        assert!(!assembler.is_receiving());
        assert_eq!(assembler.received_bytes(), 0);
        let mut done = false;
        for frame in &frames {
            done = matches!(assembler.feed(frame), Ok(SnapshotProgress::Complete { .. }));
        }
        assert!(done, "the new transfer completes");
    }
}
