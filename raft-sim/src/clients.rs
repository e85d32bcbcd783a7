//! The clients' plumbing: invoking operations on a node, routing the node's
//! completions back (a write's result or a read's value once the node has
//! applied the index) and recording each end in the history.

use crate::checkers::Failure;
use crate::digest::hash_bytes;
use crate::service::{Request, Service, StateMachine, encode_command};
use crate::trace::Fact;
use crate::workload::{End, Wire};
use crate::world::{ApplyWaiter, CLIENT_LATENCY_NS, SimEvent, World, index_of};
use raft_core::{Completion, Event, Instant, LogIndex, Proposal, RequestError, RequestId};

impl<S: Service> World<S> {
    /// A client invokes its next operation.
    pub(crate) fn client_invoke(&mut self, client: usize) {
        // Clients go quiet for the last 4 election timeouts so that commit and
        // apply can converge before the liveness judgment.
        let k = &self.scenario.knobs;
        let quiet_ns = 4 * k.election_timeout_ms * 1_000_000;
        if self.now.0 + quiet_ns >= k.duration_ms * 1_000_000 {
            return;
        }
        let inv = self.workload.invoke(client, self.now);
        let node = inv.node;
        let Some(incarnation) = self.up_incarnation(node) else {
            self.client_finish(inv.id, End::Failed, None, "connection refused");
            return;
        };
        let event = match inv.request {
            Wire::Write(data) => Event::ProposeRequested {
                proposals: vec![Proposal { id: inv.id, data }],
            },
            Wire::Read => Event::ReadRequested { id: inv.id },
        };
        self.schedule(
            Instant(self.now.0 + CLIENT_LATENCY_NS),
            SimEvent::Deliver {
                node,
                incarnation,
                event,
            },
        );
        self.schedule(inv.deadline, SimEvent::ClientTimeout { id: inv.id });
    }

    /// Records the end of a request and schedules the client's next op.
    pub(crate) fn client_finish(
        &mut self,
        id: RequestId,
        end: End<<S::Machine as StateMachine>::Output>,
        hint: Option<usize>,
        why: &str,
    ) {
        let at = Instant(self.now.0 + CLIENT_LATENCY_NS);
        if let Some((client, op_index)) = self.workload.finish(id, at, end, hint) {
            // Describing the operation is most of the text's cost: skip it
            // when nothing reads the text.
            let text = if self.trace.wants_text() {
                let op = self
                    .service
                    .describe(&self.workload.history()[op_index as usize]);
                self.trace
                    .text(format_args!("client {client} {op} ({why})"))
            } else {
                String::new()
            };
            let fact = Fact::ClientFinished {
                client,
                op: op_index,
            };
            self.trace.record(self.now, None, fact, text);
            let next = Instant(at.0 + self.workload.think_ns());
            self.schedule(next, SimEvent::ClientInvoke { client });
        }
    }

    /// Routes a completion to the client that asked.
    pub(crate) fn on_complete(
        &mut self,
        i: usize,
        id: RequestId,
        result: Result<Completion, RequestError>,
    ) -> Result<(), Failure> {
        if self.bootstrap_complete(i, id, &result)? || self.nemesis_complete(i, id, &result) {
            return Ok(());
        }
        let Some((_, op)) = self.workload.lookup(id) else {
            return Ok(());
        };
        let op_id = op.id;
        match result {
            Ok(Completion::Written { index }) => self.on_written(i, id, op_id, index)?,
            Ok(Completion::Read { index }) => {
                self.hosts[i].waiters.push(ApplyWaiter {
                    id,
                    index,
                    read: true,
                    op_id,
                });
                self.serve_waiters(i);
            }
            Ok(other) => {
                return Err(Failure::safety(
                    "completion",
                    format!("n{} completed {id} with {other:?}", i + 1),
                ));
            }
            Err(e) => {
                let n = self.hosts.len();
                let hint = match &e {
                    RequestError::NotLeader { leader, .. } => leader.and_then(|l| index_of(l, n)),
                    _ => None,
                };
                if e.outcome() == raft_core::Outcome::Unknown {
                    self.cover("request outcome unknown (leadership lost after append)");
                }
                let end = match e.outcome() {
                    raft_core::Outcome::Definite => End::Failed,
                    raft_core::Outcome::Unknown => End::Unknown,
                };
                self.client_finish(id, end, hint, &e.to_string());
            }
        }
        Ok(())
    }

    /// Node `i` reports client op `op_id` (request `id`) written at `index`:
    /// it must be the op's command; a blind write is answered at once, any
    /// other once node `i` has applied it (its result comes from the state
    /// machine).
    fn on_written(
        &mut self,
        i: usize,
        id: RequestId,
        op_id: u64,
        index: LogIndex,
    ) -> Result<(), Failure> {
        let host = &self.hosts[i];
        let Some(Request::Write(command)) = self
            .workload
            .history()
            .get(op_id as usize)
            .map(|op| &op.request)
        else {
            return Ok(());
        };
        let ours =
            host.mirror.payload_hash_at(index) == Some(hash_bytes(&encode_command(op_id, command)));
        if !ours {
            return Err(Failure::safety(
                "completion",
                format!(
                    "n{} reported op{op_id} written at {index}, which holds another entry",
                    i + 1,
                ),
            ));
        }
        let blind = host.fsm.machine().blind_output(command);
        let digest = host.mirror.at(index).map_or(0, |(_, d)| d);
        self.acked.on_ack(index, op_id, digest)?;
        if let Some(output) = blind {
            self.client_finish(id, End::Ok(output), None, "written");
            return Ok(());
        }
        self.hosts[i].waiters.push(ApplyWaiter {
            id,
            index,
            read: false,
            op_id,
        });
        self.serve_waiters(i);
        Ok(())
    }

    /// Answers every client whose index node `i` has now applied.
    pub(crate) fn serve_waiters(&mut self, i: usize) {
        let applied = self.hosts[i].fsm.applied();
        // Most applies answer nobody: split (and allocate) only when some
        // waiter is ready.
        if !self.hosts[i].waiters.iter().any(|w| w.index <= applied) {
            return;
        }
        let (ready, waiting): (Vec<ApplyWaiter>, Vec<ApplyWaiter>) =
            std::mem::take(&mut self.hosts[i].waiters)
                .into_iter()
                .partition(|w| w.index <= applied);
        self.hosts[i].waiters = waiting;
        for w in ready {
            let fsm = &self.hosts[i].fsm;
            let end = if w.read {
                match self
                    .workload
                    .history()
                    .get(w.op_id as usize)
                    .map(|op| &op.request)
                {
                    Some(Request::Read(query)) => End::Ok(fsm.machine().read(query)),
                    _ => End::Unknown,
                }
            } else {
                match fsm.result_at(w.index) {
                    Some((op_id, output)) if op_id == w.op_id => End::Ok(output.clone()),
                    // Applied before this node kept results (restored from a snapshot).
                    _ => End::Unknown,
                }
            };
            self.client_finish(w.id, end, None, "served");
        }
    }
}
