//! Executing the core's actions, in order, per the driver contract.

use super::applier::ApplyOp;
use super::{Driver, Pending, spawn_log_writer};
use crate::error::Error;
use crate::storage::{LogOp, LogWriter, StorageError};
use crate::transport::Window;
use crate::transport::hello::AdminResponse;
use bytes::Bytes;
use raft_core::{Action, Completion, MemberRole, Refusal, RequestError, RequestId, SnapshotMeta};

impl Driver {
    pub(super) fn execute(&mut self, action: Action) -> Result<(), Error> {
        match action {
            Action::Send(message) => self.transport.send(message),
            Action::OpenStream {
                stream,
                leader,
                open,
            } => self.transport.open_stream(stream, leader, open),
            Action::SendFrame { stream, frame, .. } => self.transport.send_frame(stream, frame),
            Action::SendSnapshot {
                stream,
                meta,
                offset,
                bytes_max,
                first,
                ..
            } => {
                let window = Window {
                    offset,
                    bytes_max,
                    first,
                };
                self.transport.send_snapshot(stream, meta, window)
            }
            Action::CloseStream { stream, .. } => self.transport.close_stream(stream),
            Action::PersistHardState(hs) => {
                // Durable when save returns: before any later action runs.
                self.hard_state.save(&hs)?;
                let known = self.view.get().cluster_id;
                if hs.cluster_id != known {
                    if let (Some(id), Some(cluster)) =
                        (self.node.as_ref().map(|n| n.id()), hs.cluster_id)
                    {
                        self.transport.set_identity(id, Some(cluster));
                    }
                    self.view.update(|v| v.cluster_id = hs.cluster_id);
                }
            }
            Action::AppendLog(entries) => self.queue_log(LogOp::Append(entries))?,
            Action::TruncateLog { from } => self.queue_log(LogOp::Truncate { from })?,
            Action::CompactLog { through } => self.queue_log(LogOp::Compact { through })?,
            // Behind every earlier log operation, so it reads the log as they
            // left it; the log writer answers with `LogRead`.
            Action::ReadLog {
                reader,
                from,
                count_max,
                bytes_max,
            } => self.queue_log(LogOp::Read {
                reader,
                from,
                count_max,
                bytes_max,
            })?,
            Action::Apply(entries) => self.queue_apply(ApplyOp::Apply(entries))?,
            Action::TakeSnapshot => self.queue_apply(ApplyOp::TakeSnapshot)?,
            Action::ReceiveSnapshotChunk { meta, offset, data } => {
                self.receive_snapshot_chunk(meta, offset, &data)?
            }
            Action::InstallSnapshot { meta } => self.install_snapshot(meta)?,
            Action::CompleteRequest { id, result } => self.complete(id, result),
            Action::RoleChanged { role, term, leader } => {
                tracing::info!(?role, %term, leader = ?leader.map(|l| l.0), "role changed");
                self.view.update(|v| {
                    v.role = role;
                    v.term = term;
                    v.leader = leader;
                });
            }
            Action::ConfigChanged(config) => {
                tracing::info!("configuration {config}");
                self.transport.set_config(&config);
                self.view.update(|v| v.config = config);
            }
            Action::Refused { peer, reason } => match reason {
                Refusal::ForeignCluster { .. } | Refusal::Misbehaving(_) => {
                    tracing::warn!(%peer, "refused: {reason}")
                }
                _ => tracing::debug!(%peer, "refused: {reason}"),
            },
            // Skipping an order could break the durability contract: a
            // raft-core newer than this driver stops the node instead.
            other => {
                return Err(Error::Internal(format!(
                    "an action this driver does not know: {other}"
                )));
            }
        }
        Ok(())
    }

    pub(super) fn log_writer(&self) -> Result<&LogWriter, Error> {
        self.log
            .as_ref()
            .ok_or(Error::Storage(StorageError::WriterStopped))
    }

    /// Stores part of a snapshot the leader is sending; chunks come in order.
    fn receive_snapshot_chunk(
        &mut self,
        meta: SnapshotMeta,
        offset: u64,
        data: &Bytes,
    ) -> Result<(), Error> {
        let fresh = offset == 0 || self.incoming.as_ref().is_none_or(|w| w.meta() != &meta);
        if fresh {
            // A new transfer (or a retransmission): a dropped writer deletes its temp file.
            self.incoming = Some(self.snapshots.create(meta)?);
        }
        let writer = self.incoming.as_mut().expect("created above");
        writer.write_chunk(offset, data)?;
        Ok(())
    }

    /// `InstallSnapshot`: make the received snapshot durable, reset the log
    /// after every earlier log operation, then have the applier restore the
    /// FSM from it; the applier reports `SnapshotInstalled`.
    ///
    /// The log writer is closed to reset the log: closing finishes (and
    /// reports) every operation submitted before, so their `LogPersisted`
    /// reports are queued before `SnapshotInstalled` can be. Installs are
    /// rare; this briefly blocks the driver for a few fsyncs, never for the
    /// FSM's restore, which runs on the applier.
    fn install_snapshot(&mut self, meta: SnapshotMeta) -> Result<(), Error> {
        let writer = match self.incoming.take() {
            Some(w) if w.meta() == &meta => w,
            _ => self.snapshots.create(meta.clone())?, // an empty snapshot has no chunks
        };
        writer.finish()?;
        let log = self
            .log
            .take()
            .ok_or(Error::Storage(StorageError::WriterStopped))?;
        // Parked operations come before the reset; waiting here is part of
        // the few fsyncs an install costs.
        for op in self.log_parked.drain(..) {
            log.submit(op)?;
        }
        let mut wal = log.close()?;
        if wal.last_index() >= meta.index {
            let from = meta.index.max(wal.first_index());
            wal.truncate(from)?;
        }
        // `meta.index` is now past the log's end: this starts a new log after it.
        wal.compact(meta.index)?;
        wal.sync()?;
        tracing::info!("log reset after {meta}");
        self.log = Some(spawn_log_writer(
            wal,
            self.log_options.clone(),
            self.internal_tx.clone(),
        )?);
        self.queue_apply(ApplyOp::Install(meta))
    }

    /// Answers whoever waits for request `id`.
    fn complete(&mut self, id: RequestId, result: Result<Completion, RequestError>) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        match pending {
            Pending::Client(reply) => {
                reply.send(result.map_err(Error::Request));
            }
            Pending::Admin { joining, reply } => {
                let _ = reply.send(self.admin_response(joining, result));
            }
        }
    }

    pub(super) fn register(&mut self, pending: Pending) -> RequestId {
        let id = self.request_id();
        self.pending.insert(id, pending);
        id
    }

    fn admin_response(
        &self,
        joining: bool,
        result: Result<Completion, RequestError>,
    ) -> AdminResponse {
        let view = self.view.get();
        let (config, commit) = (view.config, view.commit);
        match result {
            Ok(Completion::MembershipChanged {
                index,
                node,
                cluster_id,
            }) => AdminResponse::Changed {
                node,
                cluster_id,
                index,
            },
            Err(RequestError::NotLeader {
                leader: Some(leader),
                ..
            }) if config.member(leader).is_some() => AdminResponse::Redirect {
                leader,
                address: config.member(leader).expect("checked").address.clone(),
            },
            // A joiner retrying after its answer was lost: it is already in,
            // as a learner that has not caught up yet. (A voter with that
            // address is not handed out again: a node that lost its disk must
            // not take a voter's place.)
            Err(RequestError::DuplicateNodeAddress(address)) if joining => {
                match config.members.iter().find(|m| m.address == address) {
                    Some(m) if m.role == MemberRole::Learner && config.index <= commit => {
                        AdminResponse::Changed {
                            node: m.id,
                            cluster_id: config.cluster_id,
                            index: config.index,
                        }
                    }
                    Some(m) if m.role == MemberRole::Learner => {
                        AdminResponse::Failed(RequestError::ChangeInProgress)
                    }
                    _ => AdminResponse::Failed(RequestError::DuplicateNodeAddress(address)),
                }
            }
            Err(e) => AdminResponse::Failed(e),
            Ok(other) => AdminResponse::Unavailable(format!("unexpected completion {other:?}")),
        }
    }
}
