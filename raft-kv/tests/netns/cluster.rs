//! `raft-kv` processes in the namespaces of a [`Net`], one per namespace,
//! listening on their namespace's address. They are held by the loopback
//! tests' [`Cluster`], whose status and wait helpers work on any HTTP
//! address; only starting a process differs (`ip netns exec`).

use super::proxy::{Faults, Proxy};
use super::{HTTP_PORT, Net, RAFT_PORT};
use crate::support::{self, Cluster, FAST, Slot, Started};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;

/// A cluster whose nodes talk over the links of a [`Net`].
pub struct NetCluster {
    // Field order is drop order: the processes go before the proxies, and
    // both before the namespaces.
    pub cluster: Cluster,
    /// With [`NetCluster::start_proxied`]: one proxy per ordered pair of nodes.
    pub proxies: Vec<Proxy>,
    pub net: Net,
}

impl NetCluster {
    /// `count` nodes, each in its own namespace, bootstrapped from one
    /// member list; returns once all are voters.
    pub fn start(count: usize) -> NetCluster {
        Self::start_with(count, false)
    }

    /// [`NetCluster::start`], with every raft connection from one node to
    /// another through a fault proxy of its own (carrying bytes unchanged
    /// until its faults are set).
    pub fn start_proxied(count: usize) -> NetCluster {
        Self::start_with(count, true)
    }

    fn start_with(count: usize, proxied: bool) -> NetCluster {
        let net = Net::new(count);
        let mut proxies = Vec::new();
        if proxied {
            for from in 0..count {
                for to in (0..count).filter(|&to| to != from) {
                    let upstream = SocketAddr::from((net.ip(to), RAFT_PORT));
                    let proxy = Proxy::start(net.client_ip().into(), upstream, Faults::default());
                    net.route_through(from, to, proxy.address());
                    proxies.push(proxy);
                }
            }
        }
        let mut nodes = NetCluster {
            cluster: Cluster::empty(),
            proxies,
            net,
        };
        let addresses: Vec<String> = (0..count)
            .map(|i| format!("{}:{RAFT_PORT}", nodes.net.ip(i)))
            .collect();
        for (i, start) in support::bootstrap_flags(&addresses).into_iter().enumerate() {
            nodes.launch(i, &start);
        }
        nodes.cluster.wait_all_voters();
        nodes
    }

    /// Starts node `i` in its namespace.
    fn launch(&mut self, i: usize, start: &[String]) {
        assert_eq!(i, self.cluster.slots.len(), "nodes start in order");
        let ip = self.net.ip(i);
        let root = self.cluster.root.path();
        let mut slot = Slot {
            data: root.join(format!("n{i}")),
            log: root.join(format!("n{i}.log")),
            raft: format!("{ip}:{RAFT_PORT}"),
            http: format!("{ip}:{HTTP_PORT}"),
            id: 0,
            flags: Vec::new(),
            start: start.to_vec(),
            process: None,
        };
        let mut args = vec![
            "--data".to_string(),
            slot.data.display().to_string(),
            "--raft".into(),
            slot.raft.clone(),
            "--http".into(),
            slot.http.clone(),
        ];
        args.extend(FAST.iter().map(|s| s.to_string()));
        args.extend(start.iter().cloned());
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.net.namespace(i)])
            .arg(support::raft_kv_bin());
        let (process, started) = support::spawn_command(command, &args, &slot.log);
        match started {
            Started::Ready { id, .. } => slot.id = id,
            Started::Exited(code) => panic!(
                "node {i} exited ({code:?}) at its first start:\n{}",
                support::log_tail(&slot.log, 40)
            ),
        }
        slot.process = process;
        self.cluster.slots.push(slot);
    }

    /// The highest commit index any node of `among` reports.
    pub fn commit_among(&self, among: &[usize]) -> u64 {
        among
            .iter()
            .filter_map(|&i| self.cluster.status(i)?["commit"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// Waits until the nodes of `among` have committed `count` more entries
    /// than when the wait began (whichever of them leads meanwhile).
    pub fn wait_progress(&self, among: &[usize], count: u64, what: &str) {
        let from = self.commit_among(among);
        support::eventually(
            &format!("{count} commits {what} (nodes {among:?}, from {from})"),
            || self.commit_among(among) >= from + count,
        );
    }

    /// Waits for a node of `among` that leads in a term above `after_term`
    /// and that every node of `among` follows; its index and status.
    pub fn wait_leader_among(&self, among: &[usize], after_term: u64) -> (usize, Value) {
        support::wait_for(
            &format!("a leader of nodes {among:?} after term {after_term}"),
            || {
                let statuses: Vec<(usize, Value)> = among
                    .iter()
                    .filter_map(|&i| Some((i, self.cluster.status(i)?)))
                    .collect();
                let (leader, status) = statuses
                    .iter()
                    .find(|(_, s)| s["role"] == "leader" && s["term"].as_u64() > Some(after_term))?
                    .clone();
                let id = status["id"].as_u64();
                let all_follow = statuses.len() == among.len()
                    && statuses
                        .iter()
                        .all(|(_, s)| s["leader"]["id"].as_u64() == id);
                all_follow.then_some((leader, status))
            },
        )
    }

    /// The proxy that carries node `from`'s connections to node `to`.
    pub fn proxy(&self, from: usize, to: usize) -> &Proxy {
        assert!(!self.proxies.is_empty(), "not started with proxies");
        assert_ne!(from, to);
        // Laid out by `start_with`: for each `from`, every other `to` in order.
        let count = self.net.count();
        &self.proxies[from * (count - 1) + to - usize::from(to > from)]
    }

    /// The nodes other than `excluded`.
    pub fn others(&self, excluded: &[usize]) -> Vec<usize> {
        (0..self.net.count())
            .filter(|i| !excluded.contains(i))
            .collect()
    }
}
