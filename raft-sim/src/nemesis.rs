//! The nemesis: scheduled faults (partitions, crashes, restarts, stream
//! breaks), requests it makes of the leader (transfers, membership changes)
//! and the heal that starts the liveness phase.

use crate::checkers::Failure;
use crate::disk::DiskTiming;
use crate::scenario::Fault;
use crate::trace::Fact;
use crate::workload::End;
use crate::world::{CLIENT_LATENCY_NS, SimEvent, World, disk_timing};
use raft_core::{Completion, Event, Instant, NodeId, RequestError, RequestId, Role};

impl<S: crate::service::Service> World<S> {
    /// A scheduled fault: applied during the chaos phase, ignored after the heal.
    pub(crate) fn apply_fault(&mut self, f: Fault) {
        if self.heal_at.is_none() {
            self.inject(f);
        }
    }

    /// Applies fault `f` now, whatever the phase: partitions (`IsolateLeader`
    /// cuts off whoever leads now), crashes, restarts, pauses, stream breaks,
    /// leadership transfers and membership changes (see [`Fault`]).
    pub fn inject(&mut self, f: Fault) {
        let text = format!("fault: {f}");
        self.trace
            .record(self.now, None, Fact::Fault(f.clone()), text);
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
            Fact::LeaderCutOff { with },
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
            let text = format!("nemesis {what}: no leader");
            self.trace.record(self.now, None, Fact::Nemesis, text);
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
            Fact::Nemesis,
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
            Err(RequestError::TransferUnconfirmed(_)) => {
                self.cover("leadership transfer unconfirmed")
            }
            Ok(_) => self.cover("nemesis request succeeded"),
            Err(_) => self.cover("nemesis request refused"),
        }
        self.trace.record(
            self.now,
            Some(i),
            Fact::Nemesis,
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
        if account.torn.is_some() {
            self.cover("crash tore an append");
        }
        self.cover("crash");
        let text = format!("crash: {account}");
        self.trace
            .record(self.now, Some(i), Fact::Crashed { account }, text);
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
        let text = "heal: liveness phase begins".to_string();
        self.trace.record(self.now, None, Fact::Healed, text);
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
}
