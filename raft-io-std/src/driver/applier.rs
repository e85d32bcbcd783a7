//! The applier thread: owns the user's FSM and runs, in order, what the
//! driver hands it: committed entries (`Action::Apply`), snapshots of the FSM
//! (`Action::TakeSnapshot`) and restores from a received snapshot
//! (`Action::InstallSnapshot`). It publishes the applied index for `wait_applied`, and
//! reports `SnapshotTaken` / `SnapshotInstalled` back to the driver.
//!
//! A slow FSM never stalls heartbeats: the driver only queues work here (the
//! queue is bounded; when it is full the driver parks the work and stops
//! reading replication streams, which is the back-pressure on a client
//! outrunning its state machine).
//!
//! A snapshot is captured here, at the applied point, then written and made
//! durable on a thread of its own when the FSM offers a
//! [`SnapshotSource`](crate::fsm::SnapshotSource), so applies go on while it
//! is written; otherwise `Fsm::snapshot` writes it here.

use super::Input;
use super::view::View;
use crate::fsm::Fsm;
use crate::storage::SnapshotStore;
use crossbeam_channel::Sender;
use raft_core::{Config, Entries, Event, LogIndex, SnapshotMeta, Term};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Work for the applier, in log order.
pub(crate) enum ApplyOp {
    Apply(Entries),
    TakeSnapshot,
    Install(SnapshotMeta),
}

/// Where the FSM stands: the last entry it saw and the configuration in force there.
#[derive(Clone, Debug, Default)]
pub(crate) struct AppliedPoint {
    pub(crate) index: LogIndex,
    pub(crate) term: Term,
    pub(crate) config: Config,
}

impl AppliedPoint {
    pub(crate) fn at(meta: &SnapshotMeta) -> AppliedPoint {
        AppliedPoint {
            index: meta.index,
            term: meta.term,
            config: meta.config.clone(),
        }
    }
}

pub(crate) struct Applier {
    ops: Option<Sender<ApplyOp>>,
    thread: Option<JoinHandle<()>>,
}

struct Context {
    fsm: Box<dyn Fsm>,
    point: AppliedPoint,
    snapshots: Arc<SnapshotStore>,
    view: Arc<View>,
    driver: Sender<Input>,
    /// The thread writing the last snapshot captured, if one was started.
    snapshot_writer: Option<JoinHandle<()>>,
}

/// Tells the driver if the applier dies (an FSM panic), so the node stops
/// instead of waiting forever.
struct DeathNotice(Sender<Input>);

impl Drop for DeathNotice {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(Input::Fatal("the FSM panicked".into()));
        }
    }
}

impl Applier {
    pub(crate) fn spawn(
        fsm: Box<dyn Fsm>,
        point: AppliedPoint,
        snapshots: Arc<SnapshotStore>,
        view: Arc<View>,
        driver: Sender<Input>,
        queue_max: usize,
    ) -> std::io::Result<Applier> {
        // Crossbeam on purpose, although its receiver spins and calls
        // `sched_yield` before it sleeps (the cost `reply.rs` removed for
        // client waiters): there is one applier per node, and while it yields
        // between batches the driver, the busiest thread, finds it awake and
        // need not wake it. std's channel, which sleeps at once, saved the
        // applier 40 % of its CPU at 1 client, but the driver had to wake it
        // 2.6 times as often at 128 clients, where throughput fell in 12 of
        // 16 paired `raft-kv-bench` runs (docs/performance.md, "The workers'
        // queues").
        let (ops, rx) = crossbeam_channel::bounded(queue_max.max(1));
        let span = tracing::Span::current();
        let thread = std::thread::Builder::new()
            .name("raft-applier".into())
            .spawn(move || {
                let _entered = span.enter();
                let _notice = DeathNotice(driver.clone());
                let mut cx = Context {
                    fsm,
                    point,
                    snapshots,
                    view,
                    driver,
                    snapshot_writer: None,
                };
                for op in rx {
                    if let Err(e) = cx.run(op) {
                        tracing::error!("applier stopped: {e}");
                        let _ = cx.driver.send(Input::Fatal(e));
                        break;
                    }
                }
                // The data directory is released after close: no writer may outlive it.
                if let Some(writer) = cx.snapshot_writer.take() {
                    let _ = writer.join();
                }
            })?;
        Ok(Applier {
            ops: Some(ops),
            thread: Some(thread),
        })
    }

    /// Queues work if the queue has room; hands it back if it is full (the
    /// driver never waits for the FSM). Fails if the applier stopped.
    pub(crate) fn try_submit(&self, op: ApplyOp) -> Result<Result<(), ApplyOp>, String> {
        let ops = self.ops.as_ref().ok_or("applier closed")?;
        match ops.try_send(op) {
            Ok(()) => Ok(Ok(())),
            Err(crossbeam_channel::TrySendError::Full(op)) => Ok(Err(op)),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                Err("the applier stopped".to_string())
            }
        }
    }

    /// Lets the applier finish what is queued, then joins it.
    pub(crate) fn close(&mut self) {
        self.ops = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        self.close();
    }
}

impl Context {
    fn run(&mut self, op: ApplyOp) -> Result<(), String> {
        match op {
            ApplyOp::Apply(entries) => {
                for e in &entries {
                    if e.index > self.fsm.index() {
                        self.fsm.apply(e);
                    }
                    self.point.index = e.index;
                    self.point.term = e.term;
                    if e.kind.is_config() {
                        match Config::decode(&e.data) {
                            Ok(config) => self.point.config = config,
                            Err(err) => {
                                return Err(format!(
                                    "membership entry {} does not decode: {err}",
                                    e.index
                                ));
                            }
                        }
                    }
                }
                self.view.set_applied(self.point.index);
                Ok(())
            }
            ApplyOp::TakeSnapshot => self.take_snapshot(),
            ApplyOp::Install(meta) => {
                let mut reader = self
                    .snapshots
                    .reader(&meta)
                    .map_err(|e| format!("open received {meta}: {e}"))?;
                self.fsm
                    .restore(&mut reader)
                    .map_err(|e| format!("restore the FSM from {meta}: {e}"))?;
                tracing::info!("FSM restored from {meta}");
                self.point = AppliedPoint::at(&meta);
                self.view.set_applied(meta.index);
                let _ = self
                    .driver
                    .send(Input::Event(Event::SnapshotInstalled { meta }));
                Ok(())
            }
        }
    }

    /// Snapshots the FSM at the point it reached and reports `SnapshotTaken`
    /// once the snapshot is durable: from a thread of its own if the FSM
    /// offers a source, from here otherwise.
    fn take_snapshot(&mut self) -> Result<(), String> {
        let point = &self.point;
        let newest = self
            .snapshots
            .latest()
            .map_err(|e| format!("read snapshots: {e}"))?;
        if point.index.0 == 0 || newest.as_ref().is_some_and(|s| s.index >= point.index) {
            // Nothing new to cover; the core ignores the report.
            let report = Event::SnapshotTaken {
                index: point.index,
                bytes: 0,
            };
            let _ = self.driver.send(Input::Event(report));
            return Ok(());
        }
        let meta = SnapshotMeta {
            index: point.index,
            term: point.term,
            config: point.config.clone(),
        };
        // The core asks for one snapshot at a time: the last writer has
        // reported, so this join returns at once.
        if let Some(writer) = self.snapshot_writer.take() {
            let _ = writer.join();
        }
        let started = std::time::Instant::now();
        let Some(source) = self.fsm.snapshot_source() else {
            let fsm = &mut self.fsm;
            let bytes = write_snapshot(&self.snapshots, &meta, |w| fsm.snapshot(w))?;
            self.view.snapshot_taken(bytes, started.elapsed());
            let report = Event::SnapshotTaken {
                index: meta.index,
                bytes,
            };
            let _ = self.driver.send(Input::Event(report));
            return Ok(());
        };
        let (snapshots, driver) = (Arc::clone(&self.snapshots), self.driver.clone());
        let view = Arc::clone(&self.view);
        let span = tracing::Span::current();
        let writer = std::thread::Builder::new()
            .name("raft-snapshot".into())
            .spawn(move || {
                let _entered = span.enter();
                let _notice = DeathNotice(driver.clone());
                let input = match write_snapshot(&snapshots, &meta, source) {
                    Ok(bytes) => {
                        view.snapshot_taken(bytes, started.elapsed());
                        Input::Event(Event::SnapshotTaken {
                            index: meta.index,
                            bytes,
                        })
                    }
                    Err(e) => Input::Fatal(e),
                };
                let _ = driver.send(input);
            })
            .map_err(|e| format!("spawn the snapshot writer: {e}"))?;
        self.snapshot_writer = Some(writer);
        Ok(())
    }
}

/// Writes snapshot `meta` with `write` and makes it durable; returns its bytes.
fn write_snapshot(
    snapshots: &SnapshotStore,
    meta: &SnapshotMeta,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<u64, String> {
    let mut writer = snapshots
        .create(meta.clone())
        .map_err(|e| format!("create {meta}: {e}"))?;
    write(&mut writer).map_err(|e| format!("FSM snapshot for {meta}: {e}"))?;
    let bytes = writer.bytes_written();
    writer.finish().map_err(|e| format!("finish {meta}: {e}"))?;
    tracing::info!("took {meta} ({bytes} bytes)");
    Ok(bytes)
}
