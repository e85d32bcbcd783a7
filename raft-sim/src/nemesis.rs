//! The nemesis and the judges: scheduled faults (partitions, crashes,
//! restarts, stream breaks), the heal that starts the liveness phase, the
//! end-of-run judgments (liveness, acknowledged writes, linearizability), and
//! the clients' invoke/finish plumbing.

use crate::checkers::liveness::{self, LivenessInput, NodeSummary};
use crate::checkers::{Failure, FailureClass};
use crate::disk::DiskTiming;
use crate::scenario::Fault;
use crate::workload::{End, Request};
use crate::world::{CLIENT_LATENCY_NS, SimEvent, World, disk_timing};
use raft_core::{
    Completion, Event, Instant, LogIndex, NodeId, Proposal, RequestError, RequestId, Role, Term,
};

/// How many times the liveness judgment may be postponed for laggards that
/// are still making progress (each postponement is at least 2 s).
pub const LIVENESS_EXTENSIONS_MAX: u32 = 30;

/// The first request id the nemesis uses; client ids stay below it.
pub const NEMESIS_REQUEST_BASE: u64 = 1 << 62;

impl World {
    pub(crate) fn apply_fault(&mut self, f: Fault) {
        if self.heal_at.is_some() {
            return;
        }
        self.trace.record(self.now, None, format!("fault: {f}"));
        match f {
            Fault::Partition(shape) => {
                let leader = self.current_leader();
                let blocked = shape.blocked(self.hosts.len(), leader);
                let follow = self.net.set_blocked(blocked, self.now);
                self.schedule_net(follow);
            }
            Fault::Heal => {
                let n = self.hosts.len();
                let follow = self.net.set_blocked(vec![false; n * n], self.now);
                self.schedule_net(follow);
            }
            Fault::Crash { node } => self.crash(node),
            Fault::SplitNextLeader { pick } => self.split_next_leader = Some(pick),
            Fault::AddAtNextElection => self.add_at_next_election = true,
            Fault::TwoChanges { node } => {
                self.request_add();
                self.request_remove_now(node);
            }
            Fault::CrashMidAppend { node } => {
                if self.hosts[node].node.is_some() {
                    self.crash_armed.insert(node);
                }
            }
            Fault::Restart { node } => {
                self.crash_armed.remove(&node);
                if self.hosts[node].node.is_none() {
                    self.start_node(node);
                }
            }
            Fault::Pause { node, ms } => {
                if self.hosts[node].node.is_some() {
                    self.cover("node paused");
                    self.hosts[node].paused_until = Some(Instant(self.now.0 + ms * 1_000_000));
                }
            }
            Fault::BreakStreams { node } => {
                let follow = self.net.crash(node, self.now, &mut self.net_rng);
                self.schedule_net(follow);
            }
            Fault::TransferLeadership { target } => {
                let target = target.map(|t| NodeId(t as u64 + 1));
                self.ask_leader("transfer", |id| Event::TransferLeadershipRequested {
                    id,
                    target,
                });
            }
            Fault::AddMember => self.request_add(),
            Fault::RemoveMember { node } => self.request_remove(node),
        }
    }

    /// Node `i` was just elected: cut it off with one node it reaches, if armed.
    pub(crate) fn on_leader_elected(&mut self, i: usize) {
        if self.heal_at.is_some() {
            return;
        }
        if std::mem::take(&mut self.add_at_next_election) {
            self.request_add();
        }
        let Some(pick) = self.split_next_leader.take() else {
            return;
        };
        let n = self.hosts.len();
        let reach: Vec<usize> = (0..n)
            .filter(|&x| x != i && self.net.path_up(i, x) && self.net.path_up(x, i))
            .collect();
        let Some(&with) = reach.get(pick % reach.len().max(1)) else {
            return;
        };
        let side = vec![i.min(with), i.max(with)];
        self.cover("new leader cut off with one follower");
        self.trace.record(
            self.now,
            Some(i),
            format!("fault: cut the new leader off with n{}", with + 1),
        );
        let follow = self.net.set_blocked(
            crate::scenario::Shape::Split { side }.blocked(n, None),
            self.now,
        );
        self.schedule_net(follow);
    }

    /// Delivers a nemesis request to the current leader, if there is one;
    /// its outcome is traced when the leader completes it.
    pub(crate) fn ask_leader(&mut self, what: &str, event: impl FnOnce(RequestId) -> Event) {
        let Some(leader) = self.current_leader() else {
            self.trace
                .record(self.now, None, format!("nemesis {what}: no leader"));
            return;
        };
        let Some(incarnation) = self.up_incarnation(leader) else {
            return;
        };
        let id = RequestId(self.next_nemesis_request);
        self.next_nemesis_request += 1;
        self.nemesis_requests.insert(id, (leader, what.to_string()));
        self.trace.record(
            self.now,
            Some(leader),
            format!("nemesis {what}: asked as {id}"),
        );
        self.schedule(
            Instant(self.now.0 + CLIENT_LATENCY_NS),
            SimEvent::Deliver {
                node: leader,
                incarnation,
                event: event(id),
            },
        );
    }

    /// Traces the outcome of a nemesis request; `true` if `id` was one.
    pub(crate) fn nemesis_complete(
        &mut self,
        i: usize,
        id: RequestId,
        result: &Result<Completion, RequestError>,
    ) -> bool {
        let Some((_, what)) = self.nemesis_requests.remove(&id) else {
            return false;
        };
        match result {
            Ok(Completion::Transferred { .. }) => self.cover("leadership transferred"),
            Ok(Completion::MembershipChanged { .. }) => self.cover("membership changed"),
            Err(RequestError::TransferTimedOut(_)) => self.cover("leadership transfer timed out"),
            Ok(_) => self.cover("nemesis request succeeded"),
            Err(_) => self.cover("nemesis request refused"),
        }
        self.trace.record(
            self.now,
            Some(i),
            format!("nemesis {what} {id}: {result:?}"),
        );
        true
    }

    pub(crate) fn crash(&mut self, i: usize) {
        if self.hosts[i].node.is_none() {
            return;
        }
        let account = self.hosts[i].disk.crash(&mut self.disk_rng);
        if let Some(v) = self.hosts[i].disk.take_violations().into_iter().next() {
            return self.fail(Failure::safety(
                "driver-contract",
                format!("n{}: {v}", i + 1),
            ));
        }
        if account.contains("torn") {
            self.cover("crash tore an append");
        }
        self.cover("crash");
        self.trace
            .record(self.now, Some(i), format!("crash: {account}"));
        let host = &mut self.hosts[i];
        host.node = None;
        host.paused_until = None;
        host.incarnation += 1;
        host.incoming = None;
        host.snapshot_writing = None;
        host.waiters.clear();
        host.wake_generation += 1;
        host.wake_at = Instant::NEVER;
        self.nemesis_requests.retain(|_, (node, _)| *node != i);
        let follow = self.net.crash(i, self.now, &mut self.net_rng);
        self.schedule_net(follow);
        self.net.collect_garbage();
        for id in self.workload.outstanding_at(i) {
            let end = match self.workload.lookup(id) {
                Some((_, op)) if op.is_write() => End::Unknown,
                _ => End::Failed,
            };
            self.client_finish(id, end, None, "node crashed");
        }
    }

    /// The leader of the highest term among running nodes, if any.
    pub fn current_leader(&self) -> Option<usize> {
        (0..self.hosts.len())
            .filter(|&i| {
                self.hosts[i]
                    .node
                    .as_ref()
                    .is_some_and(|n| n.role() == Role::Leader)
            })
            .max_by_key(|&i| self.hosts[i].node.as_ref().map(|n| n.term()))
    }

    /// The chaos phase ends: restart every node, heal the network and the disks.
    pub(crate) fn heal(&mut self) {
        self.heal_at = Some(self.now);
        self.crash_armed.clear();
        self.split_next_leader = None;
        self.add_at_next_election = false;
        self.trace
            .record(self.now, None, "heal: liveness phase begins".to_string());
        let n = self.hosts.len();
        let follow = self.net.set_blocked(vec![false; n * n], self.now);
        self.schedule_net(follow);
        let calm = self.scenario.knobs.healed_net();
        self.net.set_knobs(calm);
        for i in 0..n {
            let timing = DiskTiming {
                slowdown: 1,
                ..disk_timing(&self.scenario, i)
            };
            self.hosts[i].disk.set_timing(timing);
            if self.hosts[i].node.is_none() {
                self.start_node(i);
            }
        }
    }

    /// Judges liveness at the end of the run. Returns `false` if the judgment
    /// was postponed: nodes still catching up (applying within the last two
    /// election timeouts) get more time, as the catch-up of a large lag under a
    /// tiny stream budget legitimately takes longer than any fixed bound.
    pub(crate) fn judge_liveness(&mut self) -> bool {
        let Some(heal) = self.heal_at else {
            return true;
        };
        let et = self.scenario.knobs.election_timeout_ms * 1_000_000;
        if self.now.0 - heal.0 < 10 * et {
            self.trace.record(
                self.now,
                None,
                "liveness not judged: the heal phase is shorter than 10 election timeouts".into(),
            );
            return true;
        }
        // Only the members of the configuration in force must converge: a
        // removed node keeps running but is no longer part of the cluster.
        let members: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.is_member(i))
            .collect();
        let nodes: Vec<NodeSummary> = members
            .iter()
            .map(|&i| match &self.hosts[i].node {
                Some(n) => NodeSummary {
                    up: true,
                    role: n.role(),
                    term: n.term(),
                    commit: n.commit_index(),
                    applied: self.hosts[i].kv.applied(),
                },
                None => NodeSummary {
                    up: false,
                    role: Role::Follower,
                    term: Term(0),
                    commit: LogIndex(0),
                    applied: LogIndex(0),
                },
            })
            .collect();
        let settle = Instant(heal.0 + 10 * et);
        let input = LivenessInput {
            nodes: &nodes,
            stable_ns: self.now.0.saturating_sub(self.last_role_change.0),
            election_timeout_ns: et,
            writes_ok_after_heal: self.workload.writes_ok_since(heal),
            stuck_ops: self.workload.unknown_since(settle),
        };
        if let Err(f) = liveness::check(&input) {
            let top = nodes.iter().map(|n| n.applied).max().unwrap_or(LogIndex(0));
            let catching_up = members.iter().zip(&nodes).all(|(&i, n)| {
                let h = &self.hosts[i];
                !n.up || n.applied == top || self.now.0.saturating_sub(h.last_apply_at.0) < 2 * et
            });
            if catching_up && self.liveness_extensions < LIVENESS_EXTENSIONS_MAX {
                self.liveness_extensions += 1;
                let wait = (4 * et).max(2_000_000_000);
                self.trace.record(
                    self.now,
                    None,
                    format!(
                        "liveness: laggards still catching up, judging again in {}ms ({f})",
                        wait / 1_000_000
                    ),
                );
                self.schedule(Instant(self.now.0 + wait), SimEvent::End);
                return false;
            }
            for (&i, s) in members.iter().zip(&nodes) {
                self.trace.record(self.now, Some(i), format!("{s:?}"));
            }
            self.fail(f);
        }
        if let Err(f) = self.acked.check(&self.global) {
            self.fail(f);
        }
        true
    }

    /// The client history must be linearizable; a search out of budget is
    /// reported as undecided, never as a pass.
    pub(crate) fn judge_linearizability(&mut self) {
        let history = self.workload.history();
        let verdict = crate::linearizability::check_history(
            history,
            &crate::linearizability::CheckOptions::default(),
        );
        match verdict {
            crate::linearizability::Verdict::Linearizable => {}
            crate::linearizability::Verdict::NotLinearizable(v) => {
                let text = v.describe(history);
                self.fail(Failure::safety("linearizability", text));
            }
            crate::linearizability::Verdict::Unknown { key, steps } => {
                let text = format!("search on key {key} ran out of budget after {steps} steps");
                self.fail(Failure {
                    class: FailureClass::Undecided,
                    checker: "linearizability",
                    message: text,
                });
            }
        }
    }

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
            Request::Write(data) => Event::ProposeRequested {
                proposals: vec![Proposal { id: inv.id, data }],
            },
            Request::Read(_) => Event::ReadRequested { id: inv.id },
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
        end: End,
        hint: Option<usize>,
        why: &str,
    ) {
        let at = Instant(self.now.0 + CLIENT_LATENCY_NS);
        if let Some((client, op)) = self.workload.finish(id, at, end, hint) {
            self.trace
                .record(self.now, None, format!("client {client} {op} ({why})"));
            let next = Instant(at.0 + self.workload.think_ns());
            self.schedule(next, SimEvent::ClientInvoke { client });
        }
    }
}
