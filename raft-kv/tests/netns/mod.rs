//! Real network faults between real `raft-kv` processes: each node in its
//! own Linux network namespace, joined by a bridge, with faults applied by
//! the kernel (nftables drops, `tc tbf` rate limits) or by a userspace
//! proxy of our own (delay, jitter, reordering between connections).
//!
//! The layout, for a run that claimed the subnet `10.213.K.0/24`:
//!
//! ```text
//!  root namespace                 hub namespace             node namespaces
//!  rkv213nK 10.213.K.254 ─veth─ uplink ┐
//!  (test clients, proxies)             br0 ── p0 ─veth─ eth0 10.213.K.1  (node 0)
//!                                          ── p1 ─veth─ eth0 10.213.K.2  (node 1)
//!                                          ── p2 ─veth─ eth0 10.213.K.3  (node 2)
//! ```
//!
//! Partitions are nftables rules in a bridge-family table of the hub: they
//! match node addresses only, so clients (at `.254`) always reach every
//! node, as a client of a real deployment does when only the links between
//! servers fail. Traffic is only ever sent to these namespaces.
//!
//! Everything is torn down when [`Net`] drops, also when a test fails:
//! deleting a namespace takes its veths, bridge, nftables tables and qdiscs
//! with it. Names carry the test process's pid, so parallel runs do not
//! collide, and a run sweeps away what a killed run (whose pid is gone)
//! left behind. The subnet `K` is claimed by creating the root-side link
//! `rkv213nK`, which fails if another run holds it.

pub mod cluster;
pub mod proxy;

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The raft port of every node (each node has an address of its own).
pub const RAFT_PORT: u16 = 7000;
/// The HTTP port of every node.
pub const HTTP_PORT: u16 = 8000;

/// The first part of every namespace name this harness creates.
const PREFIX: &str = "rkvpart";
/// Subnets `10.213.1.0/24` to `10.213.SUBNETS.0/24` may be claimed.
const SUBNETS: u32 = 250;
/// The host part of the root namespace's address in each subnet.
const ROOT_HOST: u8 = 254;

/// Environment variable: `required` makes a machine that cannot create
/// namespaces fail the tests instead of skipping them (CI as root); `off`
/// skips them (CI runs them in a step of their own).
pub const MODE_VAR: &str = "RAFT_PARTITIONS";

/// One test at a time in this binary: each runs a 3-node cluster and the
/// machine has two cores.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next one starts on a fresh network.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `program args`; its stdout, or what went wrong.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// [`run`] where failure is a broken test setup.
fn must(program: &str, args: &[&str]) -> String {
    run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Why this machine cannot create network namespaces, if it cannot.
fn cannot_create_namespaces() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if uid != "0" {
        return Some(format!("not root (effective uid {uid})"));
    }
    for (program, flag, package) in [
        ("ip", "-V", "iproute2"),
        ("tc", "-V", "iproute2"),
        ("nft", "--version", "nftables"),
    ] {
        if run(program, &[flag]).is_err() {
            return Some(format!("no `{program}` command (Debian package {package})"));
        }
    }
    let probe = format!("{PREFIX}-{}-probe", std::process::id());
    if let Err(e) = run("ip", &["netns", "add", &probe]) {
        return Some(e);
    }
    let _ = run("ip", &["netns", "del", &probe]);
    None
}

/// Whether the partition tests run here. When they cannot, says so plainly
/// (or panics, under `RAFT_PARTITIONS=required`).
pub fn can_run(test: &str) -> bool {
    let mode = std::env::var(MODE_VAR).unwrap_or_default();
    if mode == "off" {
        eprintln!("SKIPPED {test}: {MODE_VAR}=off");
        return false;
    }
    match cannot_create_namespaces() {
        None => true,
        Some(why) if mode == "required" => {
            panic!("{MODE_VAR}=required but network namespaces cannot be created: {why}")
        }
        Some(why) => {
            eprintln!(
                "SKIPPED {test}: cannot create network namespaces: {why}. \
                 The partition tests need root, iproute2 and nftables."
            );
            false
        }
    }
}

/// Deletes the namespaces of runs whose process is gone (a test killed
/// before its guards ran).
fn sweep_dead_runs() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let mut parts = name.split('-');
        if parts.next() != Some(PREFIX) {
            continue;
        }
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("[net] removing namespace {name} left by dead process {pid}");
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// The namespaces, links and fault rules of one test's cluster.
pub struct Net {
    hub: String,
    /// One namespace per node, in node order.
    nodes: Vec<String>,
    /// The root namespace's end of the uplink, once created.
    uplink: Option<String>,
    subnet: u8,
    /// Nodes whose links carry a rate limit.
    shaped: Vec<usize>,
}

impl Net {
    /// Namespaces for `count` nodes on a bridge, reachable from the root
    /// namespace. Panics if a step fails (what was made is removed).
    pub fn new(count: usize) -> Net {
        assert!(count < ROOT_HOST as usize);
        sweep_dead_runs();
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        let mut net = Net {
            hub: format!("{tag}-hub"),
            nodes: Vec::new(),
            uplink: None,
            subnet: 0,
            shaped: Vec::new(),
        };
        must("ip", &["netns", "add", &net.hub]);
        net.hub_ip(&["link", "set", "lo", "up"]);
        net.hub_ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        net.hub_ip(&["link", "set", "br0", "up"]);
        net.claim_subnet();
        for i in 0..count {
            let ns = format!("{tag}-n{i}");
            must("ip", &["netns", "add", &ns]);
            net.nodes.push(ns.clone());
            let port = format!("p{i}");
            net.hub_ip(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ]);
            net.hub_ip(&["link", "set", &port, "master", "br0", "up"]);
            let address = format!("{}/24", net.ip(i));
            must("ip", &["-n", &ns, "addr", "add", &address, "dev", "eth0"]);
            must("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        }
        net.hub_nft(&["add table bridge faults"])
            .and_then(|_| {
                net.hub_nft(&[
                    "add chain bridge faults forward { type filter hook forward priority 0; policy accept; }",
                ])
            })
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "[net] {count} namespaces {tag}-n* on 10.213.{}.0/24",
            net.subnet
        );
        net
    }

    /// Claims a free subnet by creating its root-side link.
    fn claim_subnet(&mut self) {
        let start = std::process::id() % SUBNETS;
        for offset in 0..SUBNETS {
            let k = (start + offset) % SUBNETS + 1;
            let link = format!("rkv213n{k}");
            match run(
                "ip",
                &[
                    "link", "add", &link, "type", "veth", "peer", "name", "uplink", "netns",
                    &self.hub,
                ],
            ) {
                Ok(_) => {
                    self.uplink = Some(link.clone());
                    self.subnet = k as u8;
                    let address = format!("{}/24", self.client_ip());
                    must("ip", &["addr", "add", &address, "dev", &link]);
                    must("ip", &["link", "set", &link, "up"]);
                    self.hub_ip(&["link", "set", "uplink", "master", "br0", "up"]);
                    return;
                }
                Err(e) if e.contains("File exists") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free subnet in 10.213.1-{SUBNETS}.0/24");
    }

    fn hub_ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.hub];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    fn hub_nft(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", &self.hub, "nft"];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Node `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, i as u8 + 1)
    }

    /// The root namespace's address: where clients and proxies are.
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, ROOT_HOST)
    }

    /// Node `i`'s namespace.
    pub fn namespace(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    pub fn count(&self) -> usize {
        self.nodes.len()
    }

    fn add_rule(&self, rule: &str) {
        self.hub_nft(&[&format!("add rule bridge faults forward {rule}")])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Drops every packet from node `from` to node `to`.
    pub fn cut_one_way(&self, from: usize, to: usize) {
        eprintln!("[net] drop {from} -> {to}");
        self.add_rule(&format!(
            "ip saddr {} ip daddr {} counter drop",
            self.ip(from),
            self.ip(to)
        ));
    }

    /// Drops every packet between nodes `a` and `b`.
    pub fn cut(&self, a: usize, b: usize) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Cuts node `i` off from every other node.
    pub fn isolate(&self, i: usize) {
        for j in (0..self.count()).filter(|&j| j != i) {
            self.cut(i, j);
        }
    }

    /// Drops `percent` of the packets from `from` to `to`, at random.
    pub fn drop_at_random(&self, from: usize, to: usize, percent: u32) {
        eprintln!("[net] drop {percent}% of {from} -> {to}");
        self.add_rule(&format!(
            "ip saddr {} ip daddr {} numgen random mod 100 < {percent} counter drop",
            self.ip(from),
            self.ip(to)
        ));
    }

    /// Limits node `i`'s link to `kbit` kilobits per second each way
    /// (`tc tbf` on both ends of its veth).
    pub fn rate_limit(&mut self, i: usize, kbit: u32) {
        eprintln!("[net] rate limit node {i} to {kbit} kbit/s each way");
        let rate = format!("{kbit}kbit");
        let tbf = [
            "root", "tbf", "rate", &rate, "burst", "16kb", "latency", "100ms",
        ];
        let port = format!("p{i}");
        for (ns, dev) in [(self.nodes[i].as_str(), "eth0"), (self.hub.as_str(), &port)] {
            let mut args = vec!["-n", ns, "qdisc", "replace", "dev", dev];
            args.extend_from_slice(&tbf);
            must("tc", &args);
        }
        self.shaped.push(i);
    }

    /// Sends node `from`'s raft connections to node `to` through `proxy`
    /// (an address in the root namespace): a destination NAT rule in
    /// `from`'s namespace. Affects connections opened afterwards.
    pub fn route_through(&self, from: usize, to: usize, proxy: std::net::SocketAddr) {
        let ns = self.nodes[from].as_str();
        let nft = |command: &str| must("ip", &["netns", "exec", ns, "nft", command]);
        // `add` of an existing table or chain is a no-op.
        nft("add table ip proxy");
        nft("add chain ip proxy output { type nat hook output priority -100; policy accept; }");
        nft(&format!(
            "add rule ip proxy output ip daddr {} tcp dport {RAFT_PORT} dnat to {proxy}",
            self.ip(to)
        ));
    }

    /// Removes every drop rule and rate limit; says how much traffic they
    /// hit (a fault that hit nothing tested nothing).
    pub fn heal(&mut self) -> Hit {
        let rules = self
            .hub_nft(&["list chain bridge faults forward"])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut hit = Hit {
            packets_dropped: numbers_after(&rules, "counter packets ").sum(),
            ..Hit::default()
        };
        self.hub_nft(&["flush chain bridge faults forward"])
            .unwrap_or_else(|e| panic!("{e}"));
        for i in std::mem::take(&mut self.shaped) {
            let port = format!("p{i}");
            for (ns, dev) in [(self.nodes[i].as_str(), "eth0"), (self.hub.as_str(), &port)] {
                let stats = must("tc", &["-s", "-n", ns, "qdisc", "show", "dev", dev]);
                hit.packets_over_rate += numbers_after(&stats, "overlimits ").sum::<u64>();
                must("tc", &["-n", ns, "qdisc", "del", "dev", dev, "root"]);
            }
        }
        eprintln!("[net] heal: {hit:?}");
        hit
    }
}

/// What the faults of [`Net`] did to traffic, from the kernel's counters.
#[derive(Debug, Default)]
pub struct Hit {
    /// Packets the nftables rules dropped.
    pub packets_dropped: u64,
    /// Times a rate-limited link held a packet back (`tc` "overlimits").
    pub packets_over_rate: u64,
}

/// The numbers that follow each `label` in `text`.
fn numbers_after<'a>(text: &'a str, label: &'a str) -> impl Iterator<Item = u64> + 'a {
    text.split(label).skip(1).map(move |rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no number after {label:?} in {text}"))
    })
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its links (and their veth peers), its
        // bridge, nftables tables and qdiscs.
        for ns in self.nodes.iter().chain([&self.hub]) {
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("[net] cleanup: {e}");
            }
        }
        if let Some(link) = &self.uplink {
            // Normally gone with its peer in the hub; only a leftover is removed here.
            if run("ip", &["link", "show", link]).is_ok() {
                let _ = run("ip", &["link", "del", link]);
            }
        }
    }
}
