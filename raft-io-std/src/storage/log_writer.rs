//! Group commit: a dedicated thread that owns the [`Wal`], writes log operations
//! as they arrive and makes them durable with as few fsyncs as possible.
//!
//! The thread takes one operation from a bounded channel (blocking if there is
//! none), then every operation already waiting, up to
//! [`LogWriterOptions::batch_ops_max`]; writes each; then issues **one** fsync
//! for all of them and reports the log's last `(index, term)` as durable. While
//! it waits for the disk, new operations queue up and form the next batch, so
//! the fsync rate adapts to the disk: under load many entries share an fsync,
//! when idle each append is synced at once.
//!
//! The driver turns [`LogReport::Persisted`] into
//! `raft_core::Event::LogPersisted { index, term }`: every operation submitted
//! before the report, appends and truncations, is durable. A
//! [`LogReport::Failed`] means the log can no longer be trusted: the node must
//! stop.
//!
//! Reads ([`LogOp::Read`], `raft_core::Action::ReadLog`) run here too, in
//! submission order, so a read sees every append, truncation and compaction
//! submitted before it (written; the core only asks for durable entries),
//! and the driver thread never waits for the disk to read. Each is answered
//! at once with [`LogReport::Read`], before the batch's fsync; a read that
//! fails (damaged bytes) fails the writer like a failed write.

use super::error::StorageError;
use super::metrics::WalMetrics;
use super::wal::Wal;
use raft_core::{Entries, LogIndex, LogReader, Term};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

/// An operation on the log, executed in submission order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOp {
    /// [`Wal::append`]: `raft_core::Action::AppendLog`.
    Append(Entries),
    /// [`Wal::truncate`]: `raft_core::Action::TruncateLog`.
    Truncate {
        /// The first index removed.
        from: LogIndex,
    },
    /// [`Wal::compact`]: `raft_core::Action::CompactLog` (and the log part of
    /// installing a snapshot).
    Compact {
        /// The last index that may be deleted.
        through: LogIndex,
    },
    /// [`Wal::read`]: `raft_core::Action::ReadLog`, answered with [`LogReport::Read`].
    Read {
        /// Who asked (echoed).
        reader: LogReader,
        /// The first index wanted (echoed).
        from: LogIndex,
        /// The most entries.
        count_max: usize,
        /// The most bytes (at least one entry).
        bytes_max: u64,
    },
}

/// What the writer thread tells the driver.
#[derive(Clone, Debug)]
pub enum LogReport {
    /// Every operation submitted before this report is durable; the log ends at
    /// `index` with `term`. Not sent for a batch that left the log empty or
    /// only compacted it.
    Persisted {
        /// The log's last index.
        index: LogIndex,
        /// The term of that entry.
        term: Term,
    },
    /// The answer to a [`LogOp::Read`]: `raft_core::Event::LogRead`.
    Read {
        /// The read's `reader`.
        reader: LogReader,
        /// The read's `from`.
        from: LogIndex,
        /// The entries from `from` on (none if the log does not hold `from`).
        entries: Entries,
    },
    /// An operation or fsync failed; the writer has stopped. Sent once, last.
    Failed(Arc<StorageError>),
}

/// Tunables of a [`LogWriter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogWriterOptions {
    /// Operations that may wait in the channel; [`LogWriter::submit`] blocks
    /// beyond that (back-pressure on the driver). Default 1,024; 0 makes every
    /// submit wait for the writer to take the operation.
    pub queue_ops_max: usize,
    /// The most operations written before an fsync (at least 1). Default 256.
    pub batch_ops_max: usize,
}

impl Default for LogWriterOptions {
    fn default() -> LogWriterOptions {
        LogWriterOptions {
            queue_ops_max: 1024,
            batch_ops_max: 256,
        }
    }
}

/// The handle of the group-commit thread. Dropping it closes the channel and
/// waits for the thread to finish what was submitted.
#[derive(Debug)]
pub struct LogWriter {
    sender: Option<SyncSender<LogOp>>,
    thread: Option<JoinHandle<Result<Wal, Arc<StorageError>>>>,
    failure: Arc<OnceLock<Arc<StorageError>>>,
    metrics: Arc<WalMetrics>,
}

impl LogWriter {
    /// Starts the thread, which owns `wal` until [`LogWriter::close`], and calls
    /// `report` (on that thread) after every durable batch.
    ///
    /// `report` must not block for long: the writer waits for it before the
    /// next batch.
    pub fn spawn(
        wal: Wal,
        options: LogWriterOptions,
        report: impl FnMut(LogReport) + Send + 'static,
    ) -> Result<LogWriter, StorageError> {
        let (sender, receiver) = mpsc::sync_channel(options.queue_ops_max);
        let batch_ops_max = options.batch_ops_max.max(1);
        let failure = Arc::new(OnceLock::new());
        let metrics = wal.metrics();
        let dir = wal.dir().to_path_buf();
        let thread = {
            let failure = Arc::clone(&failure);
            std::thread::Builder::new()
                .name("raft-log-writer".into())
                .spawn(move || run(wal, receiver, batch_ops_max, report, &failure))
                .map_err(|e| StorageError::io("spawn log writer for", dir, e))?
        };
        Ok(LogWriter {
            sender: Some(sender),
            thread: Some(thread),
            failure,
            metrics,
        })
    }

    /// Queues `op`, blocking while the queue is full. Fails once the writer
    /// has stopped.
    pub fn submit(&self, op: LogOp) -> Result<(), StorageError> {
        let sender = self
            .sender
            .as_ref()
            .expect("the sender lives until close or drop");
        sender.send(op).map_err(|_| self.stopped())
    }

    /// Queues `op` if the queue has room; hands it back if it is full (for a
    /// caller that must not wait for the disk). Fails once the writer has
    /// stopped.
    pub fn try_submit(&self, op: LogOp) -> Result<Result<(), LogOp>, StorageError> {
        let sender = self
            .sender
            .as_ref()
            .expect("the sender lives until close or drop");
        match sender.try_send(op) {
            Ok(()) => Ok(Ok(())),
            Err(mpsc::TrySendError::Full(op)) => Ok(Err(op)),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(self.stopped()),
        }
    }

    /// The log's counters (fsyncs, bytes, entries), live.
    pub fn metrics(&self) -> Arc<WalMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The failure that stopped the writer, if it has failed.
    pub fn failure(&self) -> Option<Arc<StorageError>> {
        self.failure.get().cloned()
    }

    /// Finishes every submitted operation (the last batch is synced and
    /// reported), stops the thread and hands back the log.
    pub fn close(mut self) -> Result<Wal, StorageError> {
        self.sender = None;
        let thread = self
            .thread
            .take()
            .expect("the thread is joined only here or on drop");
        match thread.join() {
            Ok(Ok(wal)) => Ok(wal),
            Ok(Err(failure)) => Err(StorageError::WriterFailed(failure)),
            Err(_) => Err(StorageError::WriterStopped),
        }
    }

    fn stopped(&self) -> StorageError {
        match self.failure() {
            Some(failure) => StorageError::WriterFailed(failure),
            None => StorageError::WriterStopped,
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut wal: Wal,
    receiver: Receiver<LogOp>,
    batch_ops_max: usize,
    mut report: impl FnMut(LogReport),
    failure: &OnceLock<Arc<StorageError>>,
) -> Result<Wal, Arc<StorageError>> {
    while let Ok(op) = receiver.recv() {
        let mut changed = false;
        let mut result = execute(&mut wal, op, &mut changed, &mut report);
        let mut ops = 1;
        while result.is_ok() && ops < batch_ops_max {
            match receiver.try_recv() {
                Ok(op) => {
                    result = execute(&mut wal, op, &mut changed, &mut report);
                    ops += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if let Err(e) = result.and_then(|()| wal.sync()) {
            let e = Arc::new(e);
            let _ = failure.set(Arc::clone(&e));
            report(LogReport::Failed(Arc::clone(&e)));
            return Err(e);
        }
        if changed {
            if let Some(term) = wal.last_term() {
                report(LogReport::Persisted {
                    index: wal.last_index(),
                    term,
                });
            }
        }
    }
    Ok(wal)
}

fn execute(
    wal: &mut Wal,
    op: LogOp,
    changed: &mut bool,
    report: &mut impl FnMut(LogReport),
) -> Result<(), StorageError> {
    match op {
        LogOp::Append(entries) => {
            *changed = true;
            wal.append(&entries)
        }
        LogOp::Truncate { from } => {
            *changed = true;
            wal.truncate(from)
        }
        LogOp::Compact { through } => wal.compact(through),
        LogOp::Read {
            reader,
            from,
            count_max,
            bytes_max,
        } => {
            let entries = wal.read(from, count_max, bytes_max)?;
            report(LogReport::Read {
                reader,
                from,
                entries: entries.into(),
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use raft_core::{EntryKind, LogEntry};

    fn entry(index: u64, term: u64) -> LogEntry {
        LogEntry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Command,
            data: Bytes::from_static(b"x"),
        }
    }

    fn persisted(report: LogReport) -> (u64, u64) {
        match report {
            LogReport::Persisted { index, term } => (index.0, term.0),
            other => panic!("not a Persisted report: {other:?}"),
        }
    }

    /// A writer on a new log in `dir`, with default options, whose reports
    /// arrive on the returned channel.
    fn reporting_writer(dir: &std::path::Path) -> (LogWriter, mpsc::Receiver<LogReport>) {
        let (wal, _) = Wal::open(dir).unwrap();
        let (report_tx, reports) = mpsc::channel();
        let writer = LogWriter::spawn(wal, LogWriterOptions::default(), move |r| {
            report_tx.send(r).unwrap()
        })
        .unwrap();
        (writer, reports)
    }

    /// A writer on a new log in `dir` whose report callback holds it until
    /// the test opens the gate (sends on it or drops it), so the test
    /// decides exactly what queues up behind a batch. The gate comes last:
    /// dropped first, it cannot leave the writer's join waiting on it.
    fn gated_writer(
        dir: &std::path::Path,
        options: LogWriterOptions,
    ) -> (LogWriter, mpsc::Receiver<LogReport>, mpsc::Sender<()>) {
        let (wal, _) = Wal::open(dir).unwrap();
        let (report_tx, reports) = mpsc::channel();
        let (gate, gate_rx) = mpsc::channel::<()>();
        let writer = LogWriter::spawn(wal, options, move |report| {
            report_tx.send(report).unwrap();
            let _ = gate_rx.recv();
        })
        .unwrap();
        (writer, reports, gate)
    }

    #[test]
    fn operations_queued_during_an_fsync_share_the_next_fsync() {
        let tmp = tempfile::tempdir().unwrap();
        let (writer, reports, gate) = gated_writer(tmp.path(), LogWriterOptions::default());
        let metrics = writer.metrics();
        writer
            .submit(LogOp::Append(vec![entry(1, 1)].into()))
            .unwrap();
        assert_eq!(persisted(reports.recv().unwrap()), (1, 1));
        let fsyncs_after_first_batch = metrics.fsyncs();

        for i in 2..=11 {
            writer
                .submit(LogOp::Append(vec![entry(i, 1)].into()))
                .unwrap();
        }
        writer
            .submit(LogOp::Truncate { from: LogIndex(9) })
            .unwrap();
        writer
            .submit(LogOp::Append(vec![entry(9, 2)].into()))
            .unwrap();
        gate.send(()).unwrap();
        assert_eq!(persisted(reports.recv().unwrap()), (9, 2));
        assert_eq!(
            metrics.fsyncs(),
            fsyncs_after_first_batch + 1,
            "one fsync for the 12 queued operations"
        );
        drop(gate);

        let wal = writer.close().unwrap();
        assert_eq!(
            (wal.last_index(), wal.last_term()),
            (LogIndex(9), Some(Term(2)))
        );
    }

    #[test]
    fn a_batch_is_capped_at_batch_ops_max() {
        let tmp = tempfile::tempdir().unwrap();
        let options = LogWriterOptions {
            queue_ops_max: 16,
            batch_ops_max: 3,
        };
        let (writer, reports, gate) = gated_writer(tmp.path(), options);
        writer
            .submit(LogOp::Append(vec![entry(1, 1)].into()))
            .unwrap();
        assert_eq!(persisted(reports.recv().unwrap()), (1, 1));
        for i in 2..=7 {
            writer
                .submit(LogOp::Append(vec![entry(i, 1)].into()))
                .unwrap();
        }
        drop(gate);
        let got: Vec<(u64, u64)> = reports.iter().take(2).map(persisted).collect();
        assert_eq!(got, vec![(4, 1), (7, 1)]);
        writer.close().unwrap();
    }

    #[test]
    fn try_submit_queues_while_there_is_room_and_hands_the_operation_back_when_full() {
        // The driver must not wait for the disk: it tries, and keeps what
        // did not fit to submit later. What was queued is written; what was
        // handed back is the operation itself, and was not written.
        let tmp = tempfile::tempdir().unwrap();
        let options = LogWriterOptions {
            queue_ops_max: 1,
            batch_ops_max: 256,
        };
        let (writer, reports, gate) = gated_writer(tmp.path(), options);
        // Bound after the writer so that a failed assertion drops the gate
        // first: dropping the writer joins its thread, which waits on it.
        let gate = gate;
        let append = |i| LogOp::Append(vec![entry(i, 1)].into());
        writer.submit(append(1)).unwrap();
        // The writer now waits in the report of that batch, its queue empty.
        assert_eq!(persisted(reports.recv().unwrap()), (1, 1));
        assert_eq!(writer.try_submit(append(2)).unwrap(), Ok(()));
        assert_eq!(writer.try_submit(append(3)).unwrap(), Err(append(3)));
        drop(gate);
        let wal = writer.close().unwrap();
        let got: Vec<(u64, u64)> = reports.iter().map(persisted).collect();
        assert_eq!(got, vec![(2, 1)]);
        assert_eq!(wal.last_index(), LogIndex(2));
    }

    #[test]
    fn dropping_the_writer_waits_for_what_was_submitted() {
        // A driver shutting down drops its writer: what it submitted is
        // written, synced and reported before the drop returns, and the log
        // can be opened again at once.
        let tmp = tempfile::tempdir().unwrap();
        let (writer, reports) = reporting_writer(tmp.path());
        writer
            .submit(LogOp::Append(vec![entry(1, 1), entry(2, 1)].into()))
            .unwrap();
        drop(writer);
        let got: Vec<(u64, u64)> = reports.try_iter().map(persisted).collect();
        assert_eq!(got, vec![(2, 1)]);
        let (_, recovered) = Wal::open(tmp.path()).unwrap();
        assert_eq!(recovered.last_index(), LogIndex(2));
    }

    #[test]
    fn compaction_alone_reports_nothing_and_close_syncs_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let (writer, reports) = reporting_writer(tmp.path());
        writer
            .submit(LogOp::Compact {
                through: LogIndex(0),
            })
            .unwrap();
        writer
            .submit(LogOp::Append(vec![entry(1, 1), entry(2, 1)].into()))
            .unwrap();
        let wal = writer.close().unwrap();
        let got: Vec<(u64, u64)> = reports.iter().map(persisted).collect();
        assert_eq!(got.last(), Some(&(2, 1)));
        let (_, recovered) = Wal::open(wal.dir()).unwrap();
        assert_eq!(recovered.last_index(), LogIndex(2));
    }

    #[test]
    fn a_failed_operation_stops_the_writer_and_is_reported_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (writer, reports) = reporting_writer(tmp.path());
        writer
            .submit(LogOp::Append(vec![entry(5, 1)].into()))
            .unwrap();
        match reports.recv().unwrap() {
            LogReport::Failed(e) => {
                assert!(matches!(*e, StorageError::NotContiguous { .. }), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // The failure is kept for whoever asks next (recorded before the report).
        let kept = writer.failure().expect("the failure is kept");
        assert!(
            matches!(*kept, StorageError::NotContiguous { .. }),
            "{kept}"
        );
        let err = writer.close().unwrap_err();
        assert!(matches!(err, StorageError::WriterFailed(_)), "{err}");
        assert!(reports.recv().is_err(), "nothing after the failure");
    }

    fn read(from: u64, count_max: usize) -> LogOp {
        LogOp::Read {
            reader: LogReader::Apply,
            from: LogIndex(from),
            count_max,
            bytes_max: u64::MAX,
        }
    }

    fn read_report(report: LogReport) -> (u64, Vec<(u64, u64)>) {
        match report {
            LogReport::Read {
                reader: LogReader::Apply,
                from,
                entries,
            } => (
                from.0,
                entries.iter().map(|e| (e.index.0, e.term.0)).collect(),
            ),
            other => panic!("not a Read report: {other:?}"),
        }
    }

    #[test]
    fn a_read_sees_every_operation_submitted_before_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (writer, reports) = reporting_writer(tmp.path());
        let metrics = writer.metrics();
        let ops = [
            LogOp::Append(vec![entry(1, 1), entry(2, 1), entry(3, 1)].into()),
            read(2, 10),
            LogOp::Truncate { from: LogIndex(3) },
            LogOp::Append(vec![entry(3, 2), entry(4, 2)].into()),
            read(2, 2),
            read(5, 10),
        ];
        for op in ops {
            writer.submit(op).unwrap();
        }
        let wal = writer.close().unwrap();
        let reads: Vec<(u64, Vec<(u64, u64)>)> = reports
            .iter()
            .filter(|r| matches!(r, LogReport::Read { .. }))
            .map(read_report)
            .collect();
        assert_eq!(
            reads,
            vec![
                (2, vec![(2, 1), (3, 1)]),
                (2, vec![(2, 1), (3, 2)]),
                (5, vec![]),
            ]
        );
        assert_eq!(
            (
                metrics.reads(),
                metrics.entries_read(),
                metrics.bytes_read()
            ),
            (3, 4, 4)
        );
        assert_eq!(wal.last_index(), LogIndex(4));
    }

    #[test]
    fn a_read_of_damaged_bytes_stops_the_writer() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(tmp.path()).unwrap();
        wal.append(&[entry(1, 1), entry(2, 1)]).unwrap();
        wal.sync().unwrap();
        let path = wal.segment_paths()[0].clone();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let (report_tx, reports) = mpsc::channel();
        let writer = LogWriter::spawn(wal, LogWriterOptions::default(), move |r| {
            report_tx.send(r).unwrap()
        })
        .unwrap();
        writer.submit(read(1, 10)).unwrap();
        match reports.recv().unwrap() {
            LogReport::Failed(e) => assert!(e.is_corruption(), "{e}"),
            other => panic!("{other:?}"),
        }
        // What the driver gets back when it closes the writer still says
        // the bytes are damaged (not a failure to retry).
        let err = writer.close().unwrap_err();
        assert!(matches!(err, StorageError::WriterFailed(_)), "{err}");
        assert!(err.is_corruption(), "{err}");
    }
}
