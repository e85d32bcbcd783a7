//! The driver: steps a node and executes its actions against the in-memory
//! disks and links, as the driver contract in the crate docs says.

use super::{Cluster, Persist, StateMachine, Step};
use crate::{Action, Event, Frame, LogIndex, NodeId, SnapshotMeta, StreamId, wire};
use bytes::Bytes;

impl<M: StateMachine> Cluster<M> {
    /// Steps node `to` with `event` now and executes its actions (the events
    /// they cause are queued). A crashed or unknown node ignores it.
    pub fn step(&mut self, to: NodeId, event: Event) {
        let now = self.now;
        let Some(host) = self.hosts.get_mut(&to) else {
            return;
        };
        if !host.up {
            return;
        }
        let traced = self.steps.is_some().then(|| event.clone());
        let mut actions = std::mem::take(&mut self.buffer);
        let before = self.allocation_counter.map(|count| count());
        host.node.step_into(now, event, &mut actions);
        if let (Some(count), Some(before)) = (self.allocation_counter, before) {
            self.core_allocations += count() - before;
        }
        host.node.check_invariants();
        if let (Some(steps), Some(event)) = (&mut self.steps, traced) {
            let actions = actions.clone();
            steps.push(Step {
                node: to,
                event,
                actions,
            });
        }
        if self.record_actions {
            host.actions.extend(actions.iter().cloned());
        }
        for action in actions.drain(..) {
            self.execute(to, action);
        }
        self.buffer = actions;
    }

    /// Makes the appends of node `at` durable up to index `through` and
    /// queues the `LogPersisted` report.
    pub fn persist(&mut self, at: NodeId, through: LogIndex) {
        if let Some((index, term)) = self.host_mut(at).disk.persist_through(through) {
            self.push(at, Event::LogPersisted { index, term });
        }
    }

    /// Whether a message from `from` reaches `to`: the link is not cut and
    /// `to` runs.
    pub(super) fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to)) && self.hosts.get(&to).is_some_and(|h| h.up)
    }

    fn execute(&mut self, at: NodeId, action: Action) {
        match action {
            Action::Send(m) => {
                if self.link_up(m.from, m.to) {
                    self.push(m.to, Event::MessageReceived(m));
                }
            }
            Action::OpenStream {
                stream,
                leader,
                open,
            } => {
                if self.link_up(at, leader) && self.link_up(leader, at) {
                    self.streams.insert(stream, (at, leader));
                    self.push(leader, Event::StreamOpened { stream, open });
                } else {
                    self.push(at, Event::StreamClosed { stream });
                }
            }
            Action::SendFrame {
                stream,
                peer,
                frame,
            } => self.send_frame(at, stream, peer, frame),
            Action::SendSnapshot {
                stream,
                peer,
                meta,
                offset,
                bytes_max,
                first,
            } => self.send_snapshot(at, stream, peer, meta, (offset, bytes_max), first),
            Action::CloseStream { stream, peer } => {
                if let Some((f, l)) = self.streams.remove(&stream) {
                    let other = if f == at { l } else { f };
                    assert_eq!(peer, other, "{at} closes {stream} naming the wrong peer");
                    self.push(other, Event::StreamClosed { stream });
                }
            }
            Action::PersistHardState(hs) => self.host_mut(at).disk.hard_state = hs,
            Action::AppendLog(entries) => {
                let host = self.host_mut(at);
                host.disk.pending.extend(entries);
                if host.persist == Persist::Immediately {
                    self.persist(at, LogIndex(u64::MAX));
                }
            }
            Action::TruncateLog { from } => self.host_mut(at).disk.truncate(from),
            Action::CompactLog { through } => {
                self.host_mut(at).disk.entries.retain(|e| e.index > through);
            }
            Action::Apply(entries) => {
                let record = self.record_actions;
                self.host_mut(at).apply(entries, record);
            }
            Action::TakeSnapshot => self.take_snapshot(at),
            Action::ReceiveSnapshotChunk { offset, data, .. } => {
                let disk = &mut self.host_mut(at).disk;
                if offset == 0 {
                    disk.incoming.clear();
                }
                // The driver contract: a chunk continues the stored bytes
                // exactly, on the same stream or a resumed one.
                assert_eq!(
                    offset,
                    disk.incoming.len() as u64,
                    "node {at}: a snapshot chunk must continue the bytes stored"
                );
                disk.incoming.extend_from_slice(&data);
            }
            Action::InstallSnapshot { meta } => self.install_snapshot(at, meta),
            Action::ReadLog {
                reader,
                from,
                count_max,
                bytes_max,
            } => {
                let entries = self.host(at).disk.read(from, count_max, bytes_max);
                let entries = entries.iter().cloned().collect();
                self.log_reads += 1;
                self.push(
                    at,
                    Event::LogRead {
                        reader,
                        from,
                        entries,
                    },
                );
            }
            Action::CompleteRequest { id, result } => self.completions.push((at, id, result)),
            // Inside the crate this match is exhaustive: a new action does
            // not compile until the harness executes it.
            Action::RoleChanged { .. } | Action::ConfigChanged(_) | Action::Refused { .. } => {}
        }
    }

    fn send_snapshot(
        &mut self,
        at: NodeId,
        stream: StreamId,
        peer: NodeId,
        meta: SnapshotMeta,
        (offset, bytes_max): (u64, u64),
        first: bool,
    ) {
        let (held, data) = self
            .host(at)
            .disk
            .snapshot
            .clone()
            .expect("a snapshot to send");
        if held != meta {
            // Replaced by a newer one: the transfer starts over.
            self.execute(at, Action::CloseStream { stream, peer });
            return;
        }
        let chunk_bytes = self.snapshot_chunk_bytes;
        let frames =
            wire::snapshot_window_frames(&meta, &data, offset, bytes_max, first, chunk_bytes);
        for frame in frames {
            self.send_frame(at, stream, peer, frame);
        }
    }

    fn take_snapshot(&mut self, at: NodeId) {
        let host = self.host_mut(at);
        let index = host.applied_index();
        let data = host.snapshot_bytes();
        let meta = SnapshotMeta {
            index,
            term: host
                .node
                .term_at(index)
                .expect("the term of the applied index"),
            config: host
                .applied_config
                .clone()
                .expect("a configuration applied or restored before any snapshot"),
        };
        let bytes = data.len() as u64;
        host.disk.snapshot = Some((meta, data));
        self.push(at, Event::SnapshotTaken { index, bytes });
    }

    fn install_snapshot(&mut self, at: NodeId, meta: SnapshotMeta) {
        let state_machine = (self.new_state_machine)(at);
        let host = self.host_mut(at);
        let data = Bytes::from(std::mem::take(&mut host.disk.incoming));
        host.restore(&data, state_machine, meta.config.clone());
        host.disk.snapshot = Some((meta.clone(), data));
        host.disk.entries.clear();
        host.disk.pending.clear();
        self.push(at, Event::SnapshotInstalled { meta });
    }

    fn send_frame(&mut self, from: NodeId, stream: StreamId, peer: NodeId, frame: Frame) {
        let Some(&(f, l)) = self.streams.get(&stream) else {
            return;
        };
        let to = if f == from { l } else { f };
        assert_eq!(peer, to, "{from} writes on {stream} naming the wrong peer");
        let flow = self.snapshot_flow.entry(stream).or_default();
        match &frame {
            Frame::SnapshotBegin { offset, .. } => *flow = (*offset, *offset),
            Frame::SnapshotChunk { data, .. } => flow.0 += data.len() as u64,
            Frame::SnapshotAck { received, .. } => flow.1 = *received,
            _ => {}
        }
        self.snapshot_inflight_max = self.snapshot_inflight_max.max(flow.0 - flow.1);
        if self.link_up(from, to) {
            self.push(to, Event::FrameReceived { stream, frame });
        } else {
            // A cut breaks the stream, as a TCP timeout would.
            self.streams.remove(&stream);
            self.push(f, Event::StreamClosed { stream });
            self.push(l, Event::StreamClosed { stream });
        }
    }
}
