//! The membership nemesis: hosts that join mid-run, removals within the safety
//! envelope, and the configuration in force that the oracles judge against.

use crate::clock::Clock;
use crate::disk::SimDisk;
use crate::trace::Fact;
use crate::world::{Host, World, disk_timing};
use raft_core::{Config, Event, HardState, MembershipChange, NodeId, Term};

/// The most servers a run grows to (initial ones plus joiners).
pub const HOSTS_MAX: usize = 9;

/// The fewest voters a removal may leave.
pub const VOTERS_MIN: usize = 3;

impl<S: crate::service::Service> World<S> {
    /// The configuration in force: the current leader's, if there is one.
    pub fn config_in_force(&self) -> Option<&Config> {
        let leader = self.current_leader()?;
        self.hosts[leader].node.as_ref().map(|n| n.config())
    }

    /// Whether node `i` is a member (voter or learner) of the configuration in
    /// force; every node counts as one while there is no leader.
    pub fn is_member(&self, i: usize) -> bool {
        self.config_in_force()
            .is_none_or(|c| c.contains(NodeId(i as u64 + 1)))
    }

    /// The nemesis asks the leader to add a node (the host is created when a
    /// configuration first names it).
    pub(crate) fn request_add(&mut self) {
        if self.hosts.len() >= HOSTS_MAX || self.membership_outstanding() {
            self.trace
                .record(self.now, None, Fact::Nemesis, "nemesis add: skipped".into());
            return;
        }
        let address = format!("sim-{}", self.hosts.len() + 1);
        self.ask_leader("add", |id| Event::ChangeMembershipRequested {
            id,
            change: MembershipChange::Add { address },
        });
    }

    /// The nemesis asks the leader to remove `node`, unless that would leave
    /// fewer than [`VOTERS_MIN`] voters or another change is outstanding.
    pub(crate) fn request_remove(&mut self, node: usize) {
        if self.membership_outstanding() {
            self.trace.record(
                self.now,
                None,
                Fact::Nemesis,
                format!("nemesis remove n{}: skipped", node + 1),
            );
            return;
        }
        self.request_remove_now(node);
    }

    /// Asks the leader to remove `node` even while another change is
    /// outstanding (the leader must refuse it), unless that would leave fewer
    /// than [`VOTERS_MIN`] voters.
    pub(crate) fn request_remove_now(&mut self, node: usize) {
        let id = NodeId(node as u64 + 1);
        let allowed = self
            .config_in_force()
            .is_some_and(|c| c.contains(id) && (!c.is_voter(id) || c.voter_count() > VOTERS_MIN));
        if !allowed {
            self.trace.record(
                self.now,
                None,
                Fact::Nemesis,
                format!("nemesis remove n{}: skipped", node + 1),
            );
            return;
        }
        self.ask_leader("remove", |rid| Event::ChangeMembershipRequested {
            id: rid,
            change: MembershipChange::Remove { id },
        });
    }

    /// Whether a membership change asked by the nemesis has not completed yet.
    fn membership_outstanding(&self) -> bool {
        self.nemesis_requests
            .values()
            .any(|(_, what)| what == "add" || what == "remove")
    }

    /// A node reported a configuration: create the hosts of members it names
    /// that do not exist yet (ids are assigned contiguously, `max_node_id + 1`).
    pub(crate) fn on_config_changed(&mut self, config: &Config) {
        let top = config
            .members
            .iter()
            .map(|m| m.id.0 as usize)
            .max()
            .unwrap_or(0);
        while self.hosts.len() < top.min(HOSTS_MAX) {
            self.add_host();
        }
    }

    /// Creates, wires in and starts a new host with an empty disk that only
    /// knows the cluster id; it learns everything else from the leader.
    fn add_host(&mut self) {
        let i = self.hosts.len();
        let mut disk = SimDisk::new(disk_timing(&self.scenario, i));
        disk.persist_hard_state(HardState {
            cluster_id: Some(self.cluster_id()),
            term: Term(0),
            vote: None,
        });
        let offset = (i as u64).wrapping_mul(0x9e37_79b9) % 1_000_000_000;
        let clock = Clock::new(offset, 0);
        self.hosts
            .push(Host::fresh(self.service.machine(), disk, clock));
        self.net.add_node();
        self.workload.set_nodes(self.hosts.len());
        self.cover("member host added");
        let text = "joins with an empty disk".to_string();
        self.trace.record(self.now, Some(i), Fact::Joined, text);
        self.start_node(i);
    }
}
