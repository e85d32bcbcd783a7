//! Simulated clients and the history they record.
//!
//! Each client process has at most one outstanding operation (Jepsen's
//! process model). Writes (`put`, `cas`) go to a node as `ProposeRequested`
//! with an encoded [`KvCommand`]; reads as `ReadRequested`, served from that
//! node's state machine once it has applied the read index. A definite error
//! records the op as failed and the process goes on (to the leader hint if
//! any); an unknown outcome (timeout, leadership lost after the append, the
//! node crashed under the request) records it as unknown and the process
//! retires: a fresh process id takes its place.
//!
//! The workload owns the history and the op-generation randomness; the world
//! owns delivery and asks the workload what to send and what a completion means.

use crate::history::{ClientId, Key, Op, OpKind, OpStatus, Value};
use crate::kv::{KvCommand, KvOp};
use crate::rng::{Ppm, SimRng};
use crate::scenario::Knobs;
use bytes::Bytes;
use raft_core::{Instant, RequestId};
use std::collections::BTreeMap;

/// What a client asks a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Append this command.
    Write(Bytes),
    /// A linearizable read of `key`.
    Read(Key),
}

/// One request the world must deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The client slot.
    pub client: usize,
    /// The node it goes to.
    pub node: usize,
    /// The request id the node will echo.
    pub id: RequestId,
    /// What it asks.
    pub request: Request,
    /// When the client gives up.
    pub deadline: Instant,
}

#[derive(Clone, Debug)]
struct Outstanding {
    id: RequestId,
    node: usize,
}

#[derive(Clone, Debug)]
struct Client {
    process: ClientId,
    target: usize,
    outstanding: Option<Outstanding>,
}

/// Every client and the history.
#[derive(Debug)]
pub struct Workload {
    rng: SimRng,
    nodes: usize,
    keys: u64,
    read: Ppm,
    cas: Ppm,
    think_mean_ns: u64,
    timeout_ns: u64,
    clients: Vec<Client>,
    next_process: ClientId,
    next_value: Value,
    next_request: u64,
    /// The last value each key was seen or written with (cas targets).
    seen: BTreeMap<Key, Value>,
    history: Vec<Op>,
    /// Request id → (client slot, op index).
    requests: BTreeMap<RequestId, (usize, usize)>,
}

impl Workload {
    /// The cluster grew to `nodes` servers: clients may be sent to the new ones.
    pub fn set_nodes(&mut self, nodes: usize) {
        self.nodes = nodes;
    }

    /// Clients per the knobs, each starting on a random node.
    pub fn new(knobs: &Knobs, mut rng: SimRng) -> Workload {
        let clients = (0..knobs.clients)
            .map(|c| Client {
                process: c as u64,
                target: rng.below(knobs.nodes as u64) as usize,
                outstanding: None,
            })
            .collect();
        Workload {
            rng,
            nodes: knobs.nodes,
            keys: knobs.keys.max(1),
            read: knobs.read,
            cas: knobs.cas,
            think_mean_ns: knobs.op_interval_mean_ms * 1_000_000,
            timeout_ns: knobs.client_timeout_ms * 1_000_000,
            clients,
            next_process: knobs.clients as u64,
            next_value: 1,
            next_request: 1,
            seen: BTreeMap::new(),
            history: Vec::new(),
            requests: BTreeMap::new(),
        }
    }

    /// Number of client slots.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The recorded history.
    pub fn history(&self) -> &[Op] {
        &self.history
    }

    /// A think time before a client's next operation.
    pub fn think_ns(&mut self) -> u64 {
        self.rng.exponential_ns(self.think_mean_ns)
    }

    /// Client `client` invokes its next operation at `now`.
    pub fn invoke(&mut self, client: usize, now: Instant) -> Invocation {
        assert!(
            self.clients[client].outstanding.is_none(),
            "client {client} already has an op outstanding"
        );
        let key = self.rng.below(self.keys);
        let (kind, request, value_op) = if self.rng.chance(self.read) {
            (OpKind::Get { result: None }, Request::Read(key), None)
        } else {
            let to = self.next_value;
            self.next_value += 1;
            match self.seen.get(&key) {
                Some(&from) if self.rng.chance(self.cas) => (
                    OpKind::Cas { from, to, ok: None },
                    Request::Write(Bytes::new()),
                    Some(KvOp::Cas { key, from, to }),
                ),
                _ => (
                    OpKind::Put { value: to },
                    Request::Write(Bytes::new()),
                    Some(KvOp::Put { key, value: to }),
                ),
            }
        };
        let op_index = self.history.len();
        let request = match (request, value_op) {
            (Request::Write(_), Some(op)) => Request::Write(
                KvCommand {
                    op_id: op_index as u64,
                    op,
                }
                .encode(),
            ),
            (r, _) => r,
        };
        let c = &mut self.clients[client];
        self.history.push(Op {
            id: op_index as u64,
            client: c.process,
            key,
            kind,
            invoke_ns: now.0,
            complete_ns: None,
            outcome: OpStatus::Unknown,
        });
        let id = RequestId(self.next_request);
        self.next_request += 1;
        c.outstanding = Some(Outstanding { id, node: c.target });
        self.requests.insert(id, (client, op_index));
        Invocation {
            client,
            node: c.target,
            id,
            request,
            deadline: Instant(now.0 + self.timeout_ns),
        }
    }

    /// Which client slot and op a request id belongs to, if still outstanding.
    pub fn lookup(&self, id: RequestId) -> Option<(usize, &Op)> {
        let &(client, op) = self.requests.get(&id)?;
        let out = self.clients[client].outstanding.as_ref()?;
        (out.id == id).then(|| (client, &self.history[op]))
    }

    /// The request ids outstanding at `node`.
    pub fn outstanding_at(&self, node: usize) -> Vec<RequestId> {
        self.clients
            .iter()
            .filter_map(|c| c.outstanding.as_ref())
            .filter(|o| o.node == node)
            .map(|o| o.id)
            .collect()
    }

    /// Ends request `id` at `now`. `result` is `Some(value)` for a get's value
    /// (`Some(None)`: key absent), `ok` for a cas; `hint` redirects the
    /// process. Returns the client slot and the finished op if the request was
    /// still outstanding.
    pub fn finish(
        &mut self,
        id: RequestId,
        now: Instant,
        end: End,
        hint: Option<usize>,
    ) -> Option<(usize, Op)> {
        let (client, op_index) = self.requests.remove(&id)?;
        let c = &mut self.clients[client];
        if c.outstanding.as_ref().is_none_or(|o| o.id != id) {
            return None;
        }
        c.outstanding = None;
        let op = &mut self.history[op_index];
        match end {
            End::Ok { read, cas_ok } => {
                op.outcome = OpStatus::Ok;
                op.complete_ns = Some(now.0);
                match &mut op.kind {
                    OpKind::Get { result } => {
                        *result = read;
                        if let Some(v) = read {
                            self.seen.insert(op.key, v);
                        }
                    }
                    OpKind::Cas { to, ok, .. } => {
                        *ok = Some(cas_ok);
                        if cas_ok {
                            self.seen.insert(op.key, *to);
                        }
                    }
                    OpKind::Put { value } => {
                        self.seen.insert(op.key, *value);
                    }
                }
            }
            End::Failed => {
                op.outcome = OpStatus::Failed;
                op.complete_ns = Some(now.0);
            }
            End::Unknown => {
                op.outcome = OpStatus::Unknown;
                op.complete_ns = None;
                if op.is_write() {
                    c.process = self.next_process;
                    self.next_process += 1;
                }
            }
        }
        c.target = match hint {
            Some(h) => h,
            None if !matches!(end, End::Ok { .. }) => {
                let other = self.rng.below(self.nodes.max(2) as u64 - 1) as usize;
                if other >= c.target {
                    (other + 1) % self.nodes.max(1)
                } else {
                    other
                }
            }
            None => c.target,
        };
        Some((client, self.history[op_index]))
    }

    /// Ops invoked at or after `since` that were writes and completed ok.
    pub fn writes_ok_since(&self, since: Instant) -> u64 {
        self.history
            .iter()
            .filter(|o| o.invoke_ns >= since.0 && o.is_write() && o.outcome == OpStatus::Ok)
            .count() as u64
    }

    /// Ops invoked at or after `since` that did not complete ok or definitely
    /// (unknown outcomes), plus ops still outstanding that were invoked then.
    pub fn unknown_since(&self, since: Instant) -> usize {
        self.history
            .iter()
            .filter(|o| o.invoke_ns >= since.0 && o.outcome == OpStatus::Unknown)
            .count()
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Done: a get's value, a cas's verdict (ignored for other kinds).
    Ok {
        /// The value a get read.
        read: Option<Value>,
        /// Whether a cas matched.
        cas_ok: bool,
    },
    /// Certainly did not happen.
    Failed,
    /// May or may not have happened.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StreamKind;

    fn workload(read: u32) -> Workload {
        let knobs = Knobs {
            clients: 2,
            nodes: 3,
            keys: 1,
            read: Ppm(read),
            cas: Ppm(1_000_000),
            ..Knobs::default()
        };
        Workload::new(&knobs, SimRng::new(1, StreamKind::Workload))
    }

    #[test]
    fn values_are_unique_and_cas_targets_the_last_seen_value() {
        let mut w = workload(0);
        let a = w.invoke(0, Instant(10));
        w.finish(
            a.id,
            Instant(20),
            End::Ok {
                read: None,
                cas_ok: true,
            },
            None,
        );
        let b = w.invoke(0, Instant(30));
        let h = w.history();
        assert_eq!(h[0].kind, OpKind::Put { value: 1 });
        assert_eq!(
            h[1].kind,
            OpKind::Cas {
                from: 1,
                to: 2,
                ok: None
            }
        );
        assert!(matches!(b.request, Request::Write(_)));
    }

    #[test]
    fn an_unknown_write_retires_the_process_and_late_completions_are_ignored() {
        let mut w = workload(0);
        let a = w.invoke(1, Instant(10));
        assert_eq!(
            w.finish(a.id, Instant(5_000), End::Unknown, None)
                .map(|(c, _)| c),
            Some(1)
        );
        assert_eq!(w.history()[0].complete_ns, None);
        assert!(
            w.finish(
                a.id,
                Instant(6_000),
                End::Ok {
                    read: None,
                    cas_ok: true
                },
                None
            )
            .is_none()
        );
        w.invoke(1, Instant(7_000));
        assert_ne!(
            w.history()[1].client,
            w.history()[0].client,
            "a fresh process after an unknown outcome"
        );
    }

    #[test]
    fn a_definite_failure_keeps_the_process_and_follows_the_hint() {
        let mut w = workload(1_000_000);
        let a = w.invoke(0, Instant(10));
        w.finish(a.id, Instant(20), End::Failed, Some(2));
        let b = w.invoke(0, Instant(30));
        assert_eq!(b.node, 2);
        assert_eq!(w.history()[0].client, w.history()[1].client);
        assert_eq!(w.history()[0].outcome, OpStatus::Failed);
    }
}
