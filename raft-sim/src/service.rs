//! The service under test: your state machine, your clients and your
//! specification, plugged into the simulator.
//!
//! A simulated cluster runs the real `raft_core::Node` on every server. What
//! the servers replicate is up to you; three traits describe it:
//!
//! * [`StateMachine`]: what each replica applies (commands), answers (queries),
//!   snapshots and restores, and a digest of its state (replicas that applied
//!   the same prefix of the log must have the same digest).
//! * [`Workload`]: what the simulated clients ask, one request at a time per
//!   client, drawn from the simulator's seeded randomness.
//! * [`Model`]: a sequential specification of the service; the client history
//!   of every run is checked to be linearizable against it.
//!
//! A [`Service`] ties them together and makes fresh instances. The key-value
//! store the `raft-sim` command line tests ([`crate::kv::KvService`]) is one
//! implementation; `raft-sim/examples/bank.rs` is another, written against
//! this module and [`crate::cli`] only.
//!
//! The simulator owns the plumbing around them: it wraps each command with
//! the id of the client operation that issued it (so it can tell whose entry
//! an index holds), keeps the applied index, term and configuration beside
//! your machine (see [`Replica`]), prefixes your snapshot bytes with the
//! applied position, answers reads once the server has applied the index its
//! node returned, and records every operation in the history.

use crate::history::OpStatus;
use crate::rng::SimRng;
use crate::scenario::Knobs;
use bytes::Bytes;
use raft_core::{Config, EntryKind, LogEntry, LogIndex, Term};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;

/// What a client asks of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Request<C, Q> {
    /// A command: appended to the log, applied by every replica once committed.
    Write(C),
    /// A linearizable read: served by the server the client asked, from its
    /// state machine, once it has applied the index its node returned.
    Read(Q),
}

/// The request type of state machine `M`.
pub type RequestOf<M> = Request<<M as StateMachine>::Command, <M as StateMachine>::Query>;

/// A replicated state machine: one instance per server, rebuilt from its
/// snapshot (or from nothing) every time the server restarts.
///
/// Everything must be deterministic: no clock, no randomness, no iteration
/// over a `HashMap` with random state. The simulator replays a seed byte for
/// byte only if your machine does.
pub trait StateMachine: 'static {
    /// What a write carries (serialized into the log entry).
    type Command: Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What a read asks.
    type Query: Clone + fmt::Debug + Send + Sync + 'static;
    /// What a command or a query returns to the client.
    type Output: Clone + fmt::Debug + PartialEq + Send + Sync + 'static;

    /// Applies one committed command and returns its result.
    fn apply(&mut self, command: &Self::Command) -> Self::Output;

    /// Answers a query from the current state.
    fn read(&self, query: &Self::Query) -> Self::Output;

    /// The output of a command that does not depend on the state (a blind
    /// write), if it is one: the client is then answered as soon as its node
    /// reports the command written, without waiting for the apply.
    fn blind_output(&self, command: &Self::Command) -> Option<Self::Output> {
        let _ = command;
        None
    }

    /// Serializes the whole state (the snapshot's bytes).
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with the one `bytes` (from [`StateMachine::snapshot`])
    /// describes. An `Err` fails the run: a snapshot must always restore.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String>;

    /// A digest of the state: two replicas that applied the same log prefix
    /// must report the same digest (checked at the end of every run).
    fn digest(&self) -> u64;
}

/// The simulated clients' requests: the simulator asks for the next request
/// whenever a client is ready, and reports each successful result.
pub trait Workload: 'static {
    /// The state machine the requests are for.
    type Machine: StateMachine;

    /// The next request, drawn from `rng` (the workload's own seeded stream).
    fn next(&mut self, rng: &mut SimRng) -> RequestOf<Self::Machine>;

    /// `request` completed with `output` (only successful completions are
    /// reported), e.g. to aim later requests at values seen.
    fn observe(
        &mut self,
        request: &RequestOf<Self::Machine>,
        output: &<Self::Machine as StateMachine>::Output,
    ) {
        let _ = (request, output);
    }
}

/// A sequential specification of the service: what one request does to the
/// state, and what it returns, when requests run one at a time.
///
/// The history of every run is checked against it: there must be an order of
/// the operations that respects real time (an operation that completed before
/// another began comes first) in which every completed operation returns what
/// it returned in the run.
pub trait Model: 'static {
    /// The state machine the model specifies.
    type Machine: StateMachine;
    /// The model's state (hashed and compared to prune the search).
    type State: Clone + Eq + Hash;

    /// The state before any request.
    fn init(&self) -> Self::State;

    /// Runs `request` on `state` and returns its output.
    fn step(
        &self,
        state: &mut Self::State,
        request: &RequestOf<Self::Machine>,
    ) -> <Self::Machine as StateMachine>::Output;

    /// Checks a history. The default runs the generic search
    /// ([`crate::lincheck::check`]) with its default budget; override it with
    /// a faster checker specialized to your model (the key-value store does).
    fn check(&self, history: &[OpOf<Self::Machine>]) -> Judgment
    where
        Self: Sized,
    {
        crate::lincheck::check(self, history, &crate::lincheck::Budget::default())
    }
}

/// The verdict on a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgment {
    /// Some order respects real time and the model.
    Linearizable,
    /// No order does; why, for a person.
    NotLinearizable(String),
    /// The search ran out of budget: not a pass (reported as undecided).
    Undecided(String),
}

/// Everything the simulator needs to know about the service under test.
pub trait Service: Clone + Send + Sync + 'static {
    /// The replicated state machine.
    type Machine: StateMachine;
    /// The client workload.
    type Workload: Workload<Machine = Self::Machine>;
    /// The sequential specification.
    type Model: Model<Machine = Self::Machine>;

    /// A state machine in its initial state (each server, at each start,
    /// before its snapshot is restored).
    fn machine(&self) -> Self::Machine;
    /// The workload of one run.
    fn workload(&self, knobs: &Knobs) -> Self::Workload;
    /// The model the run's history is checked against.
    fn model(&self) -> Self::Model;
    /// Called on every world of this service before it runs: add your
    /// invariants ([`crate::world::World::add_invariant`]), faults or holds
    /// here, and every seed, sweep and shrink checks them.
    fn prepare(&self, world: &mut crate::world::World<Self>) {
        let _ = world;
    }
    /// One line describing a history operation, for the trace and reports.
    fn describe(&self, op: &OpOf<Self::Machine>) -> String {
        op.to_string()
    }
}

/// One client operation in the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op<C, Q, O> {
    /// Position in the history (invocation order).
    pub id: u64,
    /// The client process; fresh after a write whose outcome is unknown.
    pub client: u64,
    /// What it asked.
    pub request: Request<C, Q>,
    /// What it got back (only for [`OpStatus::Ok`]).
    pub output: Option<O>,
    /// When the client invoked it (global simulated nanoseconds).
    pub invoke_ns: u64,
    /// When it completed; `None` unless it ended [`OpStatus::Ok`] or [`OpStatus::Failed`].
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: OpStatus,
}

/// The history operation type of state machine `M`.
pub type OpOf<M> =
    Op<<M as StateMachine>::Command, <M as StateMachine>::Query, <M as StateMachine>::Output>;

impl<C, Q, O> Op<C, Q, O> {
    /// Whether the operation is a write.
    pub fn is_write(&self) -> bool {
        matches!(self.request, Request::Write(_))
    }
}

impl<C: fmt::Debug, Q: fmt::Debug, O: fmt::Debug> fmt::Display for Op<C, Q, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self
            .complete_ns
            .map_or_else(|| "?".to_string(), |c| c.to_string());
        write!(f, "op{} c{} ", self.id, self.client)?;
        match &self.request {
            Request::Write(c) => write!(f, "write {c:?}")?,
            Request::Read(q) => write!(f, "read {q:?}")?,
        }
        if let Some(o) = &self.output {
            write!(f, " -> {o:?}")?;
        }
        write!(f, " [{}..{end}] {:?}", self.invoke_ns, self.outcome)
    }
}

/// How many apply results a replica keeps for clients to collect.
const RESULTS_KEPT: usize = 4096;

/// A server's state machine with the simulator's bookkeeping beside it: the
/// applied index and term, the configuration in force, and recent results.
pub struct Replica<M: StateMachine> {
    machine: M,
    applied: LogIndex,
    applied_term: Term,
    config: Option<Config>,
    results: BTreeMap<LogIndex, (u64, M::Output)>,
}

impl<M: StateMachine> Replica<M> {
    /// A replica of `machine` that applied nothing.
    pub fn new(machine: M) -> Replica<M> {
        Replica {
            machine,
            applied: LogIndex(0),
            applied_term: Term(0),
            config: None,
            results: BTreeMap::new(),
        }
    }

    /// The user's state machine.
    pub fn machine(&self) -> &M {
        &self.machine
    }
    /// The last applied index.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }
    /// The term of the last applied entry.
    pub fn applied_term(&self) -> Term {
        self.applied_term
    }
    /// The membership configuration in force at the applied index, if known.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }
    /// The result of the command applied at `index` and the id of the client
    /// operation that issued it, if still kept.
    pub fn result_at(&self, index: LogIndex) -> Option<(u64, &M::Output)> {
        self.results.get(&index).map(|(id, o)| (*id, o))
    }

    /// Applies one committed entry. Returns an error text if it is not the
    /// next one (the caller reports it as a state-machine safety failure).
    pub fn apply(&mut self, entry: &LogEntry) -> Result<(), String> {
        if entry.index != self.applied.next() {
            return Err(format!(
                "apply {} after applied {}",
                entry.index, self.applied
            ));
        }
        self.applied = entry.index;
        self.applied_term = entry.term;
        match entry.kind {
            EntryKind::Command => {
                // Not ours (another driver's command): nothing to apply.
                if let Some((op_id, command)) = decode_command::<M::Command>(&entry.data) {
                    let output = self.machine.apply(&command);
                    self.results.insert(entry.index, (op_id, output));
                    if self.results.len() > RESULTS_KEPT {
                        self.results.pop_first();
                    }
                }
            }
            EntryKind::Nop => {}
            _ => {
                if let Ok(config) = Config::decode(&entry.data) {
                    self.config = Some(config);
                }
            }
        }
        Ok(())
    }

    /// The snapshot's bytes: the applied position, then the machine's own.
    pub fn snapshot_bytes(&self) -> Bytes {
        let mut bytes = postcard::to_allocvec(&(self.applied.0, self.applied_term.0))
            .expect("two integers always serialize");
        bytes.extend(self.machine.snapshot());
        Bytes::from(bytes)
    }

    /// Rebuilds `machine` from snapshot bytes and the snapshot's configuration.
    pub fn restore(machine: M, bytes: &[u8], config: Config) -> Result<Replica<M>, String> {
        let ((index, term), rest) = postcard::take_from_bytes::<(u64, u64)>(bytes)
            .map_err(|e| format!("bad snapshot bytes: {e}"))?;
        let mut replica = Replica::new(machine);
        replica.machine.restore(rest)?;
        replica.applied = LogIndex(index);
        replica.applied_term = Term(term);
        replica.config = Some(config);
        Ok(replica)
    }
}

/// Encodes a command and the id of the operation that issued it as an entry payload.
pub fn encode_command<C: Serialize>(op_id: u64, command: &C) -> Bytes {
    Bytes::from(postcard::to_allocvec(&(op_id, command)).expect("a command always serializes"))
}

/// Decodes an entry payload written by [`encode_command`]; `None` if it is not one.
pub fn decode_command<C: DeserializeOwned>(data: &[u8]) -> Option<(u64, C)> {
    postcard::from_bytes(data).ok()
}
