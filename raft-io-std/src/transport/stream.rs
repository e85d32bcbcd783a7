//! Replication streams: a follower opens one to its leader (`OpenStream`);
//! both ends then run a reader (frames in, to the driver) and a writer
//! (the stream's queue out). When the queue is empty and the writer idle,
//! the driver writes a frame to the socket itself, without waiting
//! (`send_now`), and queues only what the socket did not take: on an idle
//! stream a frame then crosses no thread before the network. A stream's queue is bounded: when it is full the
//! stream is closed and the core, told `StreamClosed`, reopens it.
//!
//! Each stream has exactly one *owner* thread (the one that connected or
//! accepted it, which becomes its reader). Only the owner reports
//! `StreamClosed`, once, and only if the core did not close the stream itself.

use super::hello::{ConnectionKind, Control, Hello, HelloReply};
use super::outbox::{Outbox, PushError};
use super::units::{ReadError, UnitReader};
use super::{ConnectError, Shared, bump, connect_with_hello, lock};
use crate::storage::{SnapshotReader, SnapshotStore};
use bytes::Bytes;
use raft_core::wire::{self, SNAPSHOT_CHUNK_BYTES_MAX, WireUnit};
use raft_core::{Event, Frame, NodeId, SnapshotMeta, StreamId, StreamOpen};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a stream's writer sends, in order.
pub(super) enum Outgoing {
    Frame(Frame),
    /// The tail of a frame the driver began writing itself (`send_now`)
    /// and the socket could not take at once.
    Unsent(Vec<u8>),
    /// Part of a stored snapshot (`Action::SendSnapshot`), read from disk by
    /// the writer and sent as frames.
    Snapshot {
        meta: SnapshotMeta,
        window: Window,
    },
}

/// Budget bytes a queued snapshot is charged (its frames are produced lazily).
const SNAPSHOT_COST: u64 = 40;

pub(super) struct StreamSlot {
    id: StreamId,
    outbox: Outbox<Outgoing>,
    socket: Mutex<Option<TcpStream>>,
    closed_locally: AtomicBool,
}

impl StreamSlot {
    fn new(shared: &Shared, id: StreamId) -> Arc<StreamSlot> {
        Arc::new(StreamSlot {
            id,
            outbox: Outbox::new(
                shared.opts.stream_queue_frames_max,
                shared.opts.stream_queue_bytes_max,
            ),
            socket: Mutex::new(None),
            closed_locally: AtomicBool::new(false),
        })
    }

    /// Closes the stream on the core's order: nothing is reported for it.
    pub(super) fn close_locally(&self) {
        self.closed_locally.store(true, Ordering::SeqCst);
        self.break_off();
    }

    /// Stops the writer and breaks the connection; the owner notices and finishes.
    fn break_off(&self) {
        self.outbox.close();
        if let Some(s) = lock(&self.socket).as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Records the connected socket, unless the stream was closed meanwhile.
    fn attach(&self, socket: &TcpStream) -> bool {
        let mut slot = lock(&self.socket);
        if self.outbox.is_closed() {
            return false;
        }
        match socket.try_clone() {
            Ok(s) => {
                *slot = Some(s);
                true
            }
            Err(_) => false,
        }
    }
}

/// `Action::OpenStream`: connect to the leader on a new thread.
pub(super) fn open(shared: &Arc<Shared>, stream: StreamId, leader: NodeId, open: StreamOpen) {
    let slot = StreamSlot::new(shared, stream);
    lock(&shared.streams).insert(stream, Arc::clone(&slot));
    let thread_shared = Arc::clone(shared);
    shared.spawn(&format!("raft-stream-{:x}", stream.0), move || {
        let shared = thread_shared;
        let hello = Hello {
            cluster_id: Some(open.cluster_id),
            from: Some(open.follower),
            to: Some(leader),
            address: Some(shared.advertise.clone()),
            kind: ConnectionKind::Stream { stream, open },
        };
        let result = match shared.address_of(leader) {
            Some(address) => {
                connect_with_hello(&shared.opts, &address, hello).map_err(|e| (address, e))
            }
            None => Err((
                String::new(),
                ConnectError::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no address for leader {leader}"),
                )),
            )),
        };
        match result {
            Ok(socket) => {
                bump(&shared.counters.streams_opened, 1);
                serve(&shared, &slot, socket);
            }
            Err((address, e)) => {
                tracing::debug!(%stream, %leader, address, "stream open failed: {e}")
            }
        }
        finish(&shared, &slot);
    });
}

/// The leader's side: a follower's hello for a stream passed the checks.
pub(super) fn accept(
    shared: &Arc<Shared>,
    mut socket: TcpStream,
    stream: StreamId,
    open: StreamOpen,
) {
    let slot = StreamSlot::new(shared, stream);
    {
        let mut streams = lock(&shared.streams);
        if streams.contains_key(&stream) {
            drop(streams);
            tracing::warn!(%stream, "a second connection for an open stream; refused");
            bump(&shared.counters.hellos_refused, 1);
            let refusal = super::hello::HelloRefusal::Invalid("duplicate stream id".into());
            let _ = super::hello::write_control(
                &mut socket,
                &Control::HelloReply(HelloReply::Refused(refusal)),
            );
            return;
        }
        streams.insert(stream, Arc::clone(&slot));
    }
    if super::hello::write_control(&mut socket, &Control::HelloReply(HelloReply::Accepted)).is_err()
    {
        slot.closed_locally.store(true, Ordering::SeqCst); // the core never heard of it
        finish(shared, &slot);
        return;
    }
    bump(&shared.counters.streams_opened, 1);
    if shared
        .sinks
        .streams
        .send(Event::StreamOpened { stream, open })
        .is_ok()
    {
        serve(shared, &slot, socket);
    }
    finish(shared, &slot);
}

/// Runs an established stream: a writer thread for the queue, and the
/// reader loop on this thread until the connection ends.
fn serve(shared: &Arc<Shared>, slot: &Arc<StreamSlot>, socket: TcpStream) {
    let Ok(_guard) = shared.register(&socket) else {
        return;
    };
    if !slot.attach(&socket) {
        return;
    }
    let Ok(writer_socket) = socket.try_clone() else {
        return;
    };
    let (writer_shared, writer_slot) = (Arc::clone(shared), Arc::clone(slot));
    shared.spawn(&format!("raft-stream-w-{:x}", slot.id.0), move || {
        write_loop(&writer_shared, &writer_slot, writer_socket)
    });
    let stream = slot.id;
    let mut reader = UnitReader::new();
    let mut socket = &socket;
    loop {
        match reader.next(&mut socket) {
            Ok(Some(WireUnit::Frame(frame))) => {
                let event = Event::FrameReceived { stream, frame };
                if shared.sinks.streams.send(event).is_err() {
                    break;
                }
            }
            Ok(Some(other)) => {
                tracing::warn!(%stream, "peer sent {other} on a stream; closing it");
                bump(&shared.counters.malformed_connections, 1);
                break;
            }
            Ok(None) => break,
            Err(ReadError::Io(e)) => {
                tracing::debug!(%stream, "stream read ended: {e}");
                break;
            }
            Err(e) => {
                if !slot.closed_locally.load(Ordering::SeqCst) {
                    tracing::warn!(%stream, "stream closed: {e}");
                    bump(&shared.counters.malformed_connections, 1);
                }
                break;
            }
        }
    }
}

/// The owner's last act: forget the stream and tell the core, unless the
/// core closed it.
fn finish(shared: &Shared, slot: &Arc<StreamSlot>) {
    slot.break_off();
    {
        let mut streams = lock(&shared.streams);
        if streams.get(&slot.id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            streams.remove(&slot.id);
        }
    }
    if !slot.closed_locally.load(Ordering::SeqCst) && !shared.closing.load(Ordering::SeqCst) {
        let _ = shared
            .sinks
            .streams
            .send(Event::StreamClosed { stream: slot.id });
    }
}

fn write_loop(shared: &Shared, slot: &StreamSlot, mut socket: TcpStream) {
    let mut buf = Vec::new();
    let mut source = SnapshotSource::default();
    let result = (|| -> io::Result<()> {
        while let Some(batch) = slot.outbox.pop_all() {
            buf.clear();
            for item in batch {
                match item {
                    Outgoing::Frame(frame) => wire::encode(&WireUnit::Frame(frame), &mut buf),
                    Outgoing::Unsent(bytes) => buf.extend_from_slice(&bytes),
                    Outgoing::Snapshot { meta, window } => {
                        socket.write_all(&buf)?;
                        bump(&shared.counters.bytes_sent, buf.len() as u64);
                        buf.clear();
                        write_snapshot(shared, &mut socket, &mut source, &meta, window)?;
                    }
                }
            }
            socket.write_all(&buf)?;
            bump(&shared.counters.bytes_sent, buf.len() as u64);
        }
        Ok(())
    })();
    if let Err(e) = result {
        if !slot.closed_locally.load(Ordering::SeqCst) {
            tracing::debug!(stream = %slot.id, "stream write failed: {e}");
        }
    }
    slot.break_off();
}

/// The snapshot a stream's writer is sending, kept open from its first window
/// to its last.
///
/// Two reasons not to reopen the file per window: a window starts where the
/// previous one ended, so an open reader is already there (reopening would
/// read the body again from its first byte to skip to the window: quadratic
/// in the snapshot's size, 32 GiB of reads for 512 MiB in 4 MiB windows); and
/// the open file stays readable after the store prunes it (a newer snapshot
/// was taken meanwhile), so a transfer in progress is not cut short by the
/// leader's own compaction.
#[derive(Default)]
struct SnapshotSource {
    open: Option<SnapshotReader>,
}

impl SnapshotSource {
    /// A reader of `meta` positioned at `offset`: the open one when it is
    /// there, else the stored file, opened and read up to `offset`.
    fn at(
        &mut self,
        store: &SnapshotStore,
        meta: &SnapshotMeta,
        offset: u64,
    ) -> io::Result<&mut SnapshotReader> {
        let reusable = self
            .open
            .as_ref()
            .is_some_and(|r| r.meta() == meta && r.position() == offset);
        if !reusable {
            self.open = None;
            let mut reader = store
                .reader(meta)
                .map_err(|e| io::Error::other(format!("open snapshot {meta}: {e}")))?;
            io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
            self.open = Some(reader);
        }
        Ok(self.open.as_mut().expect("opened above"))
    }
}

/// Sends the `window` of the stored snapshot `meta` as frames (see
/// `raft_core::wire::snapshot_window_frames`). A snapshot no longer stored
/// (and not already open) fails the write, which breaks the stream: the core
/// starts over.
fn write_snapshot(
    shared: &Shared,
    socket: &mut TcpStream,
    source: &mut SnapshotSource,
    meta: &SnapshotMeta,
    window: Window,
) -> io::Result<()> {
    let reader = source.at(&shared.snapshots, meta, window.offset)?;
    let (size, crc) = (reader.body_bytes(), reader.body_crc());
    let mut buf = Vec::new();
    let chunk_bytes = shared.opts.snapshot_chunk_bytes;
    if window.first && window.offset == 0 {
        tracing::info!("sending {meta} ({size} bytes)");
    } else if window.first {
        tracing::info!("resuming {meta} at byte {} of {size}", window.offset);
        bump(&shared.counters.snapshots_resumed, 1);
    }
    snapshot_frames_from(meta, reader, size, crc, chunk_bytes, window, |frame| {
        buf.clear();
        wire::encode(&WireUnit::Frame(frame), &mut buf);
        socket.write_all(&buf)?;
        bump(&shared.counters.bytes_sent, buf.len() as u64);
        Ok(())
    })?;
    if window.offset.saturating_add(window.bytes_max) >= size {
        bump(&shared.counters.snapshots_sent, 1);
        source.open = None;
    }
    Ok(())
}

/// The bytes of a snapshot one `Action::SendSnapshot` covers.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub(crate) offset: u64,
    pub(crate) bytes_max: u64,
    /// The window opens the transfer on its stream: it leads with `SnapshotBegin`.
    pub(crate) first: bool,
}

impl Window {
    /// The whole snapshot.
    #[cfg(test)]
    pub(super) const ALL: Window = Window {
        offset: 0,
        bytes_max: u64::MAX,
        first: true,
    };
}

/// The frames of `raft_core::wire::snapshot_window_frames`, produced from a reader
/// positioned at the window's first byte, one chunk at a time so a large
/// snapshot never sits in memory whole.
pub(super) fn snapshot_frames_from(
    meta: &SnapshotMeta,
    mut body: impl Read,
    size: u64,
    crc: u32,
    chunk_bytes: usize,
    window: Window,
    mut emit: impl FnMut(Frame) -> io::Result<()>,
) -> io::Result<()> {
    let chunk_bytes = chunk_bytes.clamp(1, SNAPSHOT_CHUNK_BYTES_MAX);
    let start = window.offset;
    if window.first {
        emit(Frame::SnapshotBegin {
            meta: meta.clone(),
            size,
            offset: start.min(size),
        })?;
    }
    if start > size {
        return Ok(());
    }
    let end = start.saturating_add(window.bytes_max).min(size);
    let mut data = vec![0u8; chunk_bytes.min((end - start) as usize)];
    let mut offset = start;
    while offset < end {
        let n = (chunk_bytes as u64).min(end - offset) as usize;
        body.read_exact(&mut data[..n])?;
        emit(Frame::SnapshotChunk {
            offset,
            data: Bytes::copy_from_slice(&data[..n]),
            crc: crc32fast::hash(&data[..n]),
        })?;
        offset += n as u64;
    }
    // As in the core: the window that reaches the end closes the transfer.
    if end == size && (offset > start || window.first) {
        emit(Frame::SnapshotEnd { crc })?;
    }
    Ok(())
}

/// `Action::SendFrame`: written at once by the calling thread (the
/// driver) when the stream's queue is empty and its writer idle, else queued
/// for the writer.
pub(super) fn send_frame(shared: &Shared, stream: StreamId, frame: Frame) {
    let cost = frame.budget_bytes();
    let Some(slot) = lock(&shared.streams).get(&stream).cloned() else {
        return; // gone: its StreamClosed was (or will be) reported
    };
    if let Err(frame) = send_now(shared, &slot, frame) {
        push_to(shared, &slot, Outgoing::Frame(frame), cost);
    }
}

/// Writes `frame` to the stream's socket from this thread without waiting,
/// if nothing queued is still unwritten: one thread hand-off fewer per
/// frame, which on an idle stream is most of a frame's latency (a hand-off
/// to the sleeping writer costs 20 to 30 µs on a small virtual machine, the
/// whole loopback round trip 12 µs). Whatever the socket does not take at
/// once is queued for the writer, ahead of anything later. Hands the frame
/// back when the writer must send it.
#[cfg(unix)]
fn send_now(shared: &Shared, slot: &StreamSlot, frame: Frame) -> Result<(), Frame> {
    if !slot.outbox.try_hold() {
        return Err(frame);
    }
    // Held: the writer takes nothing until the release below.
    let connected = lock(&slot.socket);
    let Some(socket) = connected.as_ref() else {
        drop(connected);
        slot.outbox.release(None, 0);
        return Err(frame); // not connected yet: the writer sends it once it is
    };
    let cost = frame.budget_bytes();
    let written = ENCODED.with_borrow_mut(|buf| {
        buf.clear();
        wire::encode(&WireUnit::Frame(frame), buf);
        let written = send_without_waiting(socket, buf);
        // A large chunk's buffer is not kept for the small frames after it.
        if buf.capacity() > ENCODED_KEPT_BYTES_MAX {
            *buf = Vec::new();
        }
        written
    });
    drop(connected);
    match written {
        Ok((sent, unsent)) => {
            bump(&shared.counters.bytes_sent, sent);
            slot.outbox.release(unsent.map(Outgoing::Unsent), cost);
        }
        Err(e) => {
            tracing::debug!(stream = %slot.id, "stream write failed: {e}");
            slot.outbox.release(None, 0);
            slot.break_off();
        }
    }
    Ok(())
}

#[cfg(unix)]
thread_local! {
    /// The driver's encoding buffer for `send_now`, reused across frames.
    static ENCODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sends what the socket takes of `bytes` without waiting: the bytes sent,
/// and the rest if the socket's buffer filled up.
#[cfg(unix)]
fn send_without_waiting(socket: &TcpStream, bytes: &[u8]) -> io::Result<(u64, Option<Vec<u8>>)> {
    use rustix::io::Errno;
    use rustix::net::SendFlags;
    let mut sent = 0;
    while sent < bytes.len() {
        match rustix::net::send(
            socket,
            &bytes[sent..],
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        ) {
            // A socket that takes nothing of a non-empty buffer is full.
            Ok(0) => return Ok((sent as u64, Some(bytes[sent..].to_vec()))),
            Ok(n) => sent += n,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return Ok((sent as u64, Some(bytes[sent..].to_vec()))),
            Err(e) => return Err(e.into()),
        }
    }
    Ok((sent as u64, None))
}

/// Elsewhere the writer thread sends every frame.
#[cfg(not(unix))]
fn send_now(_: &Shared, _: &StreamSlot, frame: Frame) -> Result<(), Frame> {
    Err(frame)
}

/// The largest encoding buffer `send_now` keeps between frames.
#[cfg(unix)]
const ENCODED_KEPT_BYTES_MAX: usize = 1 << 20;

/// `Action::SendSnapshot`.
pub(super) fn send_snapshot(shared: &Shared, stream: StreamId, meta: SnapshotMeta, window: Window) {
    let item = Outgoing::Snapshot { meta, window };
    push(shared, stream, item, SNAPSHOT_COST);
}

fn push(shared: &Shared, stream: StreamId, item: Outgoing, cost: u64) {
    let Some(slot) = lock(&shared.streams).get(&stream).cloned() else {
        return; // gone: its StreamClosed was (or will be) reported
    };
    push_to(shared, &slot, item, cost);
}

fn push_to(shared: &Shared, slot: &StreamSlot, item: Outgoing, cost: u64) {
    let stream = slot.id;
    match slot.outbox.push(item, cost) {
        Ok(()) | Err(PushError::Closed) => {}
        Err(PushError::Full) => {
            tracing::warn!(%stream, "stream queue full; closing the stream (the core reopens it)");
            bump(&shared.counters.streams_overflowed, 1);
            slot.break_off();
        }
    }
}

/// `Action::CloseStream`.
pub(super) fn close(shared: &Shared, stream: StreamId) {
    let slot = lock(&shared.streams).remove(&stream);
    if let Some(slot) = slot {
        slot.close_locally();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{Config, LogIndex, Term};

    #[test]
    fn streamed_snapshot_frames_equal_the_cores_snapshot_frames() {
        let meta = SnapshotMeta {
            index: LogIndex(10),
            term: Term(2),
            config: Config::default(),
        };
        for size in [0usize, 1, 7, 8, 9, 100] {
            let data = Bytes::from((0..size).map(|i| i as u8).collect::<Vec<u8>>());
            let expected = raft_core::wire::snapshot_frames(&meta, &data, 8);
            let mut got = Vec::new();
            snapshot_frames_from(
                &meta,
                &data[..],
                size as u64,
                crc32fast::hash(&data),
                8,
                Window::ALL,
                |f| {
                    got.push(f);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(got, expected, "size {size}");
        }
    }

    #[test]
    fn a_streamed_window_equals_the_cores_window() {
        let meta = SnapshotMeta {
            index: LogIndex(10),
            term: Term(2),
            config: Config::default(),
        };
        let data = Bytes::from((0..100u8).collect::<Vec<u8>>());
        let windows = [(0, 0), (0, 30), (30, 30), (90, 30), (30, 70), (100, 5)];
        for ((offset, bytes_max), first) in
            windows.into_iter().flat_map(|w| [(w, false), (w, true)])
        {
            let expected =
                raft_core::wire::snapshot_window_frames(&meta, &data, offset, bytes_max, first, 8);
            let mut got = Vec::new();
            let window = Window {
                offset,
                bytes_max,
                first,
            };
            let crc = crc32fast::hash(&data);
            let body = &data[(offset as usize).min(data.len())..];
            snapshot_frames_from(&meta, body, 100, crc, 8, window, |f| {
                got.push(f);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, expected, "window {offset}+{bytes_max}");
        }
    }

    fn store_with(dir: &std::path::Path, index: u64, body: &[u8]) -> (SnapshotStore, SnapshotMeta) {
        let store = SnapshotStore::open(dir, 1).unwrap();
        let meta = SnapshotMeta {
            index: LogIndex(index),
            term: Term(1),
            config: Config::default(),
        };
        let mut writer = store.create(meta.clone()).unwrap();
        writer.write_chunk(0, body).unwrap();
        writer.finish().unwrap();
        (store, meta)
    }

    fn read_window(
        source: &mut SnapshotSource,
        store: &SnapshotStore,
        meta: &SnapshotMeta,
        offset: u64,
        n: usize,
    ) -> io::Result<Vec<u8>> {
        let reader = source.at(store, meta, offset)?;
        let mut got = vec![0; n];
        reader.read_exact(&mut got)?;
        Ok(got)
    }

    #[cfg(unix)]
    #[test]
    fn a_direct_send_never_waits_and_hands_back_what_the_socket_did_not_take() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        // Nobody reads yet: the socket's buffers fill, and the send returns
        // with the rest instead of waiting for the reader.
        let block: Vec<u8> = (0..1 << 20).map(|i| i as u8).collect();
        let mut sent_total = 0u64;
        let rest = loop {
            let (sent, rest) = send_without_waiting(&sender, &block).unwrap();
            sent_total += sent;
            if let Some(rest) = rest {
                assert_eq!(sent as usize + rest.len(), block.len());
                assert_eq!(rest[..], block[sent as usize..]);
                break rest;
            }
            assert!(sent_total < 1 << 30, "a socket buffer of a gigabyte?");
        };
        drop(sender);
        let mut received = Vec::new();
        receiver.read_to_end(&mut received).unwrap();
        assert_eq!(received.len() as u64, sent_total);
        assert!(received.chunks(block.len()).all(|c| c == &block[..c.len()]));
        assert!(!rest.is_empty());
    }

    #[test]
    fn a_transfer_outlives_the_pruning_of_its_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let (store, old) = store_with(tmp.path(), 10, &body);
        let mut source = SnapshotSource::default();
        assert_eq!(
            read_window(&mut source, &store, &old, 0, 80).unwrap(),
            body[..80]
        );

        // A newer snapshot: the store keeps one, so the old file is removed.
        let (store, _new) = store_with(tmp.path(), 20, b"newer");
        assert!(store.reader(&old).is_err(), "the old snapshot is pruned");

        // The transfer in progress goes on from the open file, to the end,
        // checksum included.
        assert_eq!(
            read_window(&mut source, &store, &old, 80, 120).unwrap(),
            body[80..]
        );
        let reader = source.at(&store, &old, 200).unwrap();
        assert_eq!(reader.read(&mut [0; 8]).unwrap(), 0);

        // A window that does not follow the last one needs the file again.
        let mut fresh = SnapshotSource::default();
        assert!(fresh.at(&store, &old, 80).is_err());
    }

    #[test]
    fn a_transfer_may_start_past_the_first_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..100u8).collect();
        let (store, meta) = store_with(tmp.path(), 10, &body);
        let mut source = SnapshotSource::default();
        assert_eq!(
            read_window(&mut source, &store, &meta, 40, 30).unwrap(),
            body[40..70]
        );
        // Going back re-opens the file: the reader cannot seek backwards.
        assert_eq!(
            read_window(&mut source, &store, &meta, 10, 10).unwrap(),
            body[10..20]
        );
        assert_eq!(
            read_window(&mut source, &store, &meta, 20, 80).unwrap(),
            body[20..]
        );
    }
}
