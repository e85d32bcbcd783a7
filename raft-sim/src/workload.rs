//! Simulated clients and the history they record.
//!
//! Each client process has at most one outstanding operation (Jepsen's
//! process model). What it asks comes from the service's
//! [`crate::service::Workload`]. Writes go to a node as `ProposeRequested`
//! with the encoded command; reads as `ReadRequested`, served from that
//! node's state machine once it has applied the read index. A definite error
//! records the op as failed and the process goes on (to the leader hint if
//! any); an unknown outcome (timeout, leadership lost after the append, the
//! node crashed under the request) records it as unknown and the process
//! retires: a fresh process id takes its place.
//!
//! [`Clients`] owns the history and the op-generation randomness; the world
//! owns delivery and asks the workload what to send and what a completion means.

use crate::history::{ClientId, OpStatus};
use crate::rng::SimRng;
use crate::scenario::Knobs;
use crate::service::{Op, OpOf, Request, StateMachine, Workload, encode_command};
use bytes::Bytes;
use raft_core::{Instant, RequestId};
use std::collections::BTreeMap;

/// What a client asks a node, on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Append this command (the encoded command and its op id).
    Write(Bytes),
    /// A linearizable read (the query stays with the client's op).
    Read,
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
    pub request: Wire,
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

/// Every client, the generator of their requests and the history.
pub struct Clients<G: Workload> {
    generator: G,
    rng: SimRng,
    nodes: usize,
    think_mean_ns: u64,
    timeout_ns: u64,
    clients: Vec<Client>,
    next_process: ClientId,
    next_request: u64,
    history: Vec<OpOf<G::Machine>>,
    /// Request id → (client slot, op index).
    requests: BTreeMap<RequestId, (usize, usize)>,
}

impl<G: Workload> Clients<G> {
    /// The cluster grew to `nodes` servers: clients may be sent to the new ones.
    pub fn set_nodes(&mut self, nodes: usize) {
        self.nodes = nodes;
    }

    /// Clients per the knobs, each starting on a random node, asking what
    /// `generator` draws.
    pub fn new(knobs: &Knobs, generator: G, mut rng: SimRng) -> Clients<G> {
        let clients = (0..knobs.clients)
            .map(|c| Client {
                process: c as u64,
                target: rng.below(knobs.nodes as u64) as usize,
                outstanding: None,
            })
            .collect();
        Clients {
            generator,
            rng,
            nodes: knobs.nodes,
            think_mean_ns: knobs.op_interval_mean_ms * 1_000_000,
            timeout_ns: knobs.client_timeout_ms * 1_000_000,
            clients,
            next_process: knobs.clients as u64,
            next_request: 1,
            history: Vec::new(),
            requests: BTreeMap::new(),
        }
    }

    /// Number of client slots.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The recorded history.
    pub fn history(&self) -> &[OpOf<G::Machine>] {
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
        let request = self.generator.next(&mut self.rng);
        let op_index = self.history.len();
        let wire = match &request {
            Request::Write(command) => Wire::Write(encode_command(op_index as u64, command)),
            Request::Read(_) => Wire::Read,
        };
        let c = &mut self.clients[client];
        self.history.push(Op {
            id: op_index as u64,
            client: c.process,
            request,
            output: None,
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
            request: wire,
            deadline: Instant(now.0 + self.timeout_ns),
        }
    }

    /// Which client slot and op a request id belongs to, if still outstanding.
    pub fn lookup(&self, id: RequestId) -> Option<(usize, &OpOf<G::Machine>)> {
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

    /// Ends request `id` at `now`; `hint` redirects the process. Returns the
    /// client slot and the finished op's id if the request was still outstanding.
    pub fn finish(
        &mut self,
        id: RequestId,
        now: Instant,
        end: End<<G::Machine as StateMachine>::Output>,
        hint: Option<usize>,
    ) -> Option<(usize, u64)> {
        let (client, op_index) = self.requests.remove(&id)?;
        let c = &mut self.clients[client];
        if c.outstanding.as_ref().is_none_or(|o| o.id != id) {
            return None;
        }
        c.outstanding = None;
        let op = &mut self.history[op_index];
        let ok = matches!(end, End::Ok(_));
        match end {
            End::Ok(output) => {
                op.outcome = OpStatus::Ok;
                op.complete_ns = Some(now.0);
                self.generator.observe(&op.request, &output);
                op.output = Some(output);
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
            None if !ok => {
                let other = self.rng.below(self.nodes.max(2) as u64 - 1) as usize;
                if other >= c.target {
                    (other + 1) % self.nodes.max(1)
                } else {
                    other
                }
            }
            None => c.target,
        };
        Some((client, op_index as u64))
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
pub enum End<O> {
    /// Done, with what it returned.
    Ok(O),
    /// Certainly did not happen.
    Failed,
    /// May or may not have happened.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpStatus;
    use crate::kv::{KvOp, KvOutput, KvWorkload};
    use crate::rng::{Ppm, StreamKind};

    fn workload(read: u32) -> Clients<KvWorkload> {
        let knobs = Knobs {
            clients: 2,
            nodes: 3,
            keys: 1,
            read: Ppm(read),
            cas: Ppm(1_000_000),
            ..Knobs::default()
        };
        Clients::new(
            &knobs,
            KvWorkload::new(&knobs),
            SimRng::new(1, StreamKind::Workload),
        )
    }

    #[test]
    fn values_are_unique_and_cas_targets_the_last_seen_value() {
        let mut w = workload(0);
        let a = w.invoke(0, Instant(10));
        w.finish(a.id, Instant(20), End::Ok(KvOutput::Written), None);
        let b = w.invoke(0, Instant(30));
        let h = w.history();
        assert_eq!(h[0].request, Request::Write(KvOp::Put { key: 0, value: 1 }));
        assert_eq!(
            h[1].request,
            Request::Write(KvOp::Cas {
                key: 0,
                from: 1,
                to: 2
            })
        );
        assert!(matches!(b.request, Wire::Write(_)));
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
            w.finish(a.id, Instant(6_000), End::Ok(KvOutput::Written), None)
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
