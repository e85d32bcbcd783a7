//! Requests from the handle and from admin connections, turned into core events.

use super::{Command, Driver, Input, PROPOSE_BATCH_BYTES_MAX, PROPOSE_BATCH_MAX, Pending};
use crate::error::Error;
use crate::metrics::{FollowerLag, LogReadMetrics, Metrics};
use crate::storage::Identity;
use crate::transport::AdminCall;
use crate::transport::hello::{AdminRequest, AdminResponse};
use raft_core::{
    Bootstrap, ClusterId, Event, LogIndex, MembershipChange, NodeId, Proposal, RequestError, Role,
    Term,
};

impl Driver {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Initialize { reply } => {
                if self.node.is_none() {
                    let identity = Identity {
                        node_id: NodeId(1),
                        cluster_id: None,
                    };
                    if let Err(e) = self
                        .identity
                        .save(&identity)
                        .map_err(Error::from)
                        .and_then(|()| self.start_node(NodeId(1)))
                    {
                        reply.send(Err(e));
                        return;
                    }
                }
                // The core answers (AlreadyInitialized, LogExists, or Initialized once committed).
                let id = self.register(Pending::Client(reply));
                let address = self.advertise.clone();
                self.step(Event::InitializeRequested { id, address });
            }
            Command::Bootstrap {
                node,
                bootstrap,
                reply,
            } => {
                if let Err(e) = self.start_bootstrapped(node, &bootstrap) {
                    reply.send(Err(e));
                    return;
                }
                // The core answers: Initialized, or why it will not touch its state.
                let id = self.register(Pending::Client(reply));
                self.step(Event::BootstrapRequested { id, bootstrap });
            }
            Command::StartJoined {
                node,
                cluster_id,
                reply,
            } => {
                let _ = reply.send(self.start_joined(node, cluster_id));
            }
            Command::Propose { data, reply } => {
                if self.refuse_without_node(&reply) {
                    return;
                }
                let id = self.register(Pending::Client(reply));
                let proposals = self.gather_proposals(Proposal { id, data });
                self.step(Event::ProposeRequested { proposals });
            }
            Command::Read { reply } => {
                if self.refuse_without_node(&reply) {
                    return;
                }
                let id = self.register(Pending::Client(reply));
                self.step(Event::ReadRequested { id });
            }
            Command::ChangeMembership { change, reply } => {
                if self.refuse_without_node(&reply) {
                    return;
                }
                let id = self.register(Pending::Client(reply));
                self.step(Event::ChangeMembershipRequested { id, change });
            }
            Command::TransferLeadership { target, reply } => {
                if self.refuse_without_node(&reply) {
                    return;
                }
                let id = self.register(Pending::Client(reply));
                self.step(Event::TransferLeadershipRequested { id, target });
            }
            Command::Metrics { reply } => {
                let _ = reply.send(self.metrics());
            }
            Command::Close => unreachable!("handled by the loop"),
        }
    }

    /// `first` and the proposals already queued right behind it, as one
    /// batch: one step, one `AppendLog` (one write, one fsync), one chunk per
    /// follower, however many clients submitted. Stops at the first other
    /// input (kept for the next turn of the loop, so inputs keep their order)
    /// or at [`PROPOSE_BATCH_MAX`] proposals or [`PROPOSE_BATCH_BYTES_MAX`]
    /// bytes, so one step stays short.
    fn gather_proposals(&mut self, first: Proposal) -> Vec<Proposal> {
        let mut bytes = first.data.len();
        let mut proposals = vec![first];
        while proposals.len() < PROPOSE_BATCH_MAX && bytes < PROPOSE_BATCH_BYTES_MAX {
            match self.internal_rx.try_recv() {
                Ok(Input::Command(Command::Propose { data, reply })) => {
                    bytes += data.len();
                    let id = self.register(Pending::Client(reply));
                    proposals.push(Proposal { id, data });
                }
                Ok(other) => {
                    self.deferred = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        proposals
    }

    fn refuse_without_node(&self, reply: &super::Reply) -> bool {
        if self.node.is_some() {
            return false;
        }
        reply.send(Err(RequestError::NotInitialized.into()));
        true
    }

    /// Records who we are in `bootstrap`'s cluster, durably, then starts the
    /// core; a node already running must be `node` (the core then checks
    /// that its cluster is the bootstrap's).
    fn start_bootstrapped(&mut self, node: NodeId, bootstrap: &Bootstrap) -> Result<(), Error> {
        // Checked before anything is written: a refused bootstrap leaves no identity behind.
        let Some(member) = bootstrap.config().member(node) else {
            return Err(Error::Request(RequestError::NodeNotFound(node)));
        };
        if member.address != self.advertise {
            tracing::warn!(
                "the bootstrap list gives node {node} the address {}, but it advertises {}",
                member.address,
                self.advertise
            );
        }
        match &self.node {
            Some(running) if running.id() != node => {
                Err(Error::Request(RequestError::AlreadyInitialized))
            }
            Some(_) => Ok(()),
            None => {
                self.identity.save(&Identity {
                    node_id: node,
                    cluster_id: Some(bootstrap.cluster_id()),
                })?;
                self.start_node(node)
            }
        }
    }

    /// The leader admitted us: record who we are, durably, then start the core.
    fn start_joined(&mut self, node: NodeId, cluster_id: ClusterId) -> Result<(), Error> {
        if self.node.is_some() {
            return Err(RequestError::AlreadyInitialized.into());
        }
        self.identity.save(&Identity {
            node_id: node,
            cluster_id: Some(cluster_id),
        })?;
        let recovered = self.recovered.get_or_insert_with(Default::default);
        recovered.hard_state.cluster_id = Some(cluster_id);
        self.hard_state.save(&recovered.hard_state)?;
        self.start_node(node)
    }

    pub(super) fn on_admin(&mut self, call: AdminCall) {
        let Some(node) = &self.node else {
            let why = "this node has not initialized or joined a cluster";
            let _ = call.reply.send(AdminResponse::Unavailable(why.into()));
            return;
        };
        if call.cluster_id.is_some() && call.cluster_id != node.cluster_id() {
            let _ = call
                .reply
                .send(AdminResponse::Unavailable("foreign cluster".into()));
            return;
        }
        // Only a joiner has no cluster yet; members forwarding add_peer or
        // remove_peer say theirs. Without this, any client reaching the port,
        // knowing nothing of the cluster, could remove its members.
        if call.cluster_id.is_none() && !matches!(call.request, AdminRequest::Join { .. }) {
            let why = "only a join may come without the caller's cluster id";
            let _ = call.reply.send(AdminResponse::Unavailable(why.into()));
            return;
        }
        let (change, joining) = match call.request {
            AdminRequest::Join { address } => (MembershipChange::Add { address }, true),
            AdminRequest::Add { address } => (MembershipChange::Add { address }, false),
            AdminRequest::Remove { id } => (MembershipChange::Remove { id }, false),
        };
        let id = self.register(Pending::Admin {
            joining,
            reply: call.reply,
        });
        self.step(Event::ChangeMembershipRequested { id, change });
    }

    fn metrics(&self) -> Metrics {
        let applied = self.view.applied();
        let transport = self.transport.metrics();
        let wal = self.log.as_ref().map(|l| l.metrics());
        let wal_fsyncs = wal.as_ref().map_or(0, |m| m.fsyncs());
        let log_reads = wal.map_or_else(LogReadMetrics::default, |m| LogReadMetrics {
            reads: m.reads(),
            entries: m.entries_read(),
            bytes: m.bytes_read(),
        });
        let Some(node) = &self.node else {
            return Metrics {
                id: None,
                role: Role::Learner,
                term: Term(0),
                leader: None,
                commit: Default::default(),
                applied,
                first_index: Default::default(),
                last_index: Default::default(),
                snapshot_index: Default::default(),
                durable: Default::default(),
                followers: Vec::new(),
                transport,
                wal_fsyncs,
                snapshots: self.view.snapshots(),
                log_reads,
            };
        };
        let status = node.status();
        let followers = status
            .followers
            .iter()
            .map(|f| FollowerLag {
                id: f.id,
                match_index: f.match_index,
                lag: status.last_index.0.saturating_sub(f.match_index.0),
                streaming: f.streaming,
                inflight_bytes: f.inflight_bytes,
            })
            .collect();
        Metrics {
            id: Some(status.id),
            role: status.role,
            term: status.term,
            leader: status.leader,
            commit: status.commit,
            applied,
            first_index: status.first_index,
            last_index: status.last_index,
            snapshot_index: node.snapshot().map_or(LogIndex(0), |s| s.index),
            durable: status.durable,
            followers,
            transport,
            wal_fsyncs,
            snapshots: self.view.snapshots(),
            log_reads,
        }
    }
}
