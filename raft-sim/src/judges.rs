//! The judges at the end of a run: liveness (after the heal), acknowledged
//! writes and linearizability of the client history.

use crate::checkers::liveness::{self, LivenessInput, NodeSummary};
use crate::checkers::{Failure, FailureClass};
use crate::service::{Judgment, Model, StateMachine};
use crate::trace::Fact;
use crate::world::{SimEvent, World};
use raft_core::{Instant, LogIndex, Role, Term};

/// How many times the liveness judgment may be postponed for laggards that
/// are still making progress (each postponement is at least 2 s).
pub const LIVENESS_EXTENSIONS_MAX: u32 = 30;

impl<S: crate::service::Service> World<S> {
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
                Fact::Judgment,
                "liveness not judged: the heal phase is shorter than 10 election timeouts".into(),
            );
            return true;
        }
        // Only the members of the configuration in force must converge: a
        // removed node keeps running but is no longer part of the cluster.
        // Nor must a node whose disk rotted: it refuses to start until an
        // operator replaces it, and the others must go on without it.
        let members: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| self.is_member(i) && !self.refusals.contains_key(&i))
            .collect();
        let nodes: Vec<NodeSummary> = members
            .iter()
            .map(|&i| match &self.hosts[i].node {
                Some(n) => NodeSummary {
                    up: true,
                    role: n.role(),
                    term: n.term(),
                    commit: n.commit_index(),
                    applied: self.hosts[i].fsm.applied(),
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
                    Fact::Judgment,
                    format!(
                        "liveness: laggards still catching up, judging again in {}ms ({f})",
                        wait / 1_000_000
                    ),
                );
                self.schedule(Instant(self.now.0 + wait), SimEvent::End);
                return false;
            }
            for (&i, s) in members.iter().zip(&nodes) {
                let text = format!("{s:?}");
                self.trace.record(self.now, Some(i), Fact::Judgment, text);
            }
            self.fail(f);
        }
        if let Err(f) = self.acked.check(&self.global) {
            self.fail(f);
        }
        true
    }

    /// Servers up that applied the same prefix of the log must hold the same
    /// state: the state machine is deterministic, or replication is not enough.
    pub(crate) fn judge_state_agreement(&mut self) {
        let mut seen: std::collections::BTreeMap<LogIndex, (usize, u64)> = Default::default();
        for (i, h) in self.hosts.iter().enumerate() {
            if h.node.is_none() || h.fsm.applied() == LogIndex(0) {
                continue;
            }
            let digest = h.fsm.machine().digest();
            match seen.get(&h.fsm.applied()) {
                Some(&(j, d)) if d != digest => {
                    let text = format!(
                        "n{} and n{} applied through {} but their state digests differ ({d:016x} vs {digest:016x})",
                        j + 1,
                        i + 1,
                        h.fsm.applied()
                    );
                    return self.fail(Failure::safety("state-digest", text));
                }
                Some(_) => {}
                None => {
                    seen.insert(h.fsm.applied(), (i, digest));
                }
            }
        }
    }

    /// The client history must be linearizable; a search out of budget is
    /// reported as undecided, never as a pass.
    pub(crate) fn judge_linearizability(&mut self) {
        match self.model.check(self.workload.history()) {
            Judgment::Linearizable => {}
            Judgment::NotLinearizable(text) => {
                self.fail(Failure::safety("linearizability", text));
            }
            Judgment::Undecided(text) => {
                self.fail(Failure {
                    class: FailureClass::Undecided,
                    checker: "linearizability",
                    message: text,
                });
            }
        }
    }
}
