//! Scenario generation from a seed: knobs and fault mix (swarm testing).
//!
//! In swarm mode each seed enables a random non-empty subset of fault
//! families, each with a weight in 1..=100 (TigerBeetle's
//! `random_enum_weights`), and picks intensities across wide ranges,
//! including extreme-but-legal values (a budget of about one chunk, chunks of
//! one entry, snapshots every few entries, a heartbeat of half the election
//! timeout). Without swarm, the defaults of [`Knobs`] and an even fault mix
//! apply. Command-line [`Overrides`] win over both and appear in the replay
//! command.

use crate::rng::{Ppm, SimRng, StreamKind};
use crate::scenario::{Fault, HostileKnobs, Knobs, Scenario, Shape, Timed};
use raft_core::SnapshotPolicy;
use serde::{Deserialize, Serialize};

/// Settings given on the command line; each replaces the generated value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// Node count.
    pub nodes: Option<usize>,
    /// Total simulated milliseconds.
    pub duration_ms: Option<u64>,
    /// Datagram loss, ppm.
    pub drop_ppm: Option<u32>,
    /// Datagram duplication, ppm.
    pub dup_ppm: Option<u32>,
    /// Random stream break per frame, ppm.
    pub stream_break_ppm: Option<u32>,
    /// Mean milliseconds between scheduled faults (0: no scheduled faults).
    pub fault_interval_ms: Option<u64>,
    /// Client processes.
    pub clients: Option<usize>,
    /// Disable the membership nemesis (on by default: members are added and
    /// removed during runs).
    #[serde(default)]
    pub no_membership: bool,
    /// Lease reads on in every seed (swarm mode also draws them by itself).
    #[serde(default)]
    pub lease_reads: bool,
    /// Largest clock drift, ppm; beyond half the lease bound it is outside the
    /// model (the negative mode the linearizability oracle must catch).
    #[serde(default)]
    pub drift_ppm_max: Option<u64>,
    /// Draw a hostile member (always in default mode, in half the swarm seeds).
    #[serde(default)]
    pub hostile: bool,
}

/// Fault families the schedule draws from, with weights (0: disabled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultMix {
    /// Partitions of every shape (each followed by a heal).
    pub partition: u64,
    /// Crash and later restart.
    pub crash: u64,
    /// Break every stream of a node.
    pub stream_break: u64,
    /// Pause a node (a GC pause or a stopped VM): it processes nothing, then resumes.
    pub pause: u64,
    /// Ask the leader to transfer leadership (to a random node or to the best voter).
    #[serde(default)]
    pub transfer: u64,
    /// Ask the leader to add a node or to remove one (within the safety envelope).
    #[serde(default)]
    pub membership: u64,
    /// Mean milliseconds between faults.
    pub interval_ms: u64,
}

/// Builds the scenario of `seed`.
pub fn scenario_from_seed(seed: u64, swarm: bool, overrides: &Overrides) -> Scenario {
    let mut rng = SimRng::new(seed, StreamKind::Swarm);
    let (mut knobs, mut mix) = if swarm {
        (swarm_knobs(&mut rng), swarm_mix(&mut rng))
    } else {
        (
            Knobs::default(),
            FaultMix {
                partition: 4,
                crash: 4,
                stream_break: 4,
                pause: 4,
                transfer: 1,
                membership: 1,
                interval_ms: 3_000,
            },
        )
    };
    // Families added later draw from their own stream, so the draws above
    // (and every seed's knobs and schedule) stay what they were.
    let mut reach = SimRng::new(seed, StreamKind::Reach);
    reach_knobs(&mut knobs, &mut reach, swarm, overrides);
    apply_overrides(&mut knobs, &mut mix, overrides);
    let mut schedule_rng = SimRng::new(seed, StreamKind::Schedule);
    let faults = schedule(&knobs, &mix, &mut schedule_rng, &mut reach);
    Scenario {
        seed,
        knobs,
        faults,
    }
}

fn apply_overrides(knobs: &mut Knobs, mix: &mut FaultMix, o: &Overrides) {
    if let Some(n) = o.nodes {
        knobs.nodes = n.max(1);
        if knobs.sick_node.is_some_and(|s| s >= knobs.nodes) {
            knobs.sick_node = None;
        }
        if let Some(h) = &mut knobs.hostile {
            h.node %= knobs.nodes;
        }
    }
    if let Some(d) = o.duration_ms {
        knobs.duration_ms = d;
    }
    knobs.chaos_ms = chaos_ms(knobs);
    if let Some(p) = o.drop_ppm {
        knobs.net.drop = Ppm(p);
    }
    if let Some(p) = o.dup_ppm {
        knobs.net.duplicate = Ppm(p);
    }
    if let Some(p) = o.stream_break_ppm {
        knobs.net.stream_break = Ppm(p);
    }
    if let Some(i) = o.fault_interval_ms {
        mix.interval_ms = i;
    }
    if let Some(c) = o.clients {
        knobs.clients = c;
    }
    if o.no_membership {
        mix.membership = 0;
    }
    if o.lease_reads {
        knobs.lease_reads = true;
    }
    if let Some(d) = o.drift_ppm_max {
        knobs.drift_ppm_max = d;
    }
}

/// Lease reads (half the swarm seeds) and the hostile member (behind
/// `--hostile`: every seed in default mode, half the swarm seeds with at least
/// three nodes).
fn reach_knobs(k: &mut Knobs, r: &mut SimRng, swarm: bool, o: &Overrides) {
    let lease = r.chance(Ppm(500_000));
    if swarm {
        k.lease_reads = lease;
    }
    // Every swarm drift draw stays inside the bound the leases assume.
    debug_assert!(k.drift_within_lease_bound());
    let on = r.chance(Ppm(500_000));
    let node = r.below(k.nodes.max(1) as u64) as usize;
    let rate = Ppm(*r.pick(&[2_000, 10_000, 50_000]));
    if o.hostile && (!swarm || (on && k.nodes >= 3)) {
        k.hostile = Some(HostileKnobs {
            node,
            rate: if swarm { rate } else { Ppm(20_000) },
        });
    }
}

/// The chaos phase leaves at least 20 election timeouts (and 5 s) for the
/// liveness phase, or a third of the run if the run is short.
fn chaos_ms(k: &Knobs) -> u64 {
    let liveness = (20 * k.election_timeout_ms).max(5_000);
    k.duration_ms
        .saturating_sub(liveness)
        .max(k.duration_ms / 3)
}

fn swarm_knobs(r: &mut SimRng) -> Knobs {
    let mut k = Knobs {
        nodes: [1, 3, 3, 5, 5, 5, 7][r.below(7) as usize],
        ..Knobs::default()
    };
    k.election_timeout_ms = r.between(150, 1_000);
    k.heartbeat_ms = match r.below(4) {
        // The slowest heartbeat a node accepts (`InvalidOptions`).
        0 => k.election_timeout_ms / 2,
        _ => r
            .between(k.election_timeout_ms / 10, k.election_timeout_ms / 2)
            .max(1),
    };
    k.batch_entries_max = *r.pick(&[1, 4, 64, 1024]);
    k.stream_budget_bytes = *r.pick(&[200, 4_096, 65_536, 4 << 20]);
    k.snapshot_policy = *r.pick(&[
        SnapshotPolicy::NEVER,
        SnapshotPolicy::every_entries(10),
        SnapshotPolicy::every_entries(50),
        // Proportional, with floors the simulated workload's small entries reach.
        SnapshotPolicy {
            log_bytes_min: 2_048,
            log_percent: 50,
            ..SnapshotPolicy::default()
        },
        SnapshotPolicy {
            log_bytes_min: 16_384,
            log_percent: 100,
            log_entries_max: 8_192,
            ..SnapshotPolicy::default()
        },
    ]);
    k.snapshot_trailing_entries = *r.pick(&[0, 3, 100]);
    let n = &mut k.net;
    n.delay_min_ns = r.between(10_000, 2_000_000);
    n.delay_mean_ns = *r.pick(&[100_000, 1_000_000, 10_000_000]);
    n.drop = Ppm(*r.pick(&[0, 10_000, 50_000, 200_000]));
    n.duplicate = Ppm(*r.pick(&[0, 10_000, 100_000]));
    n.tail = Ppm(*r.pick(&[0, 1_000, 10_000]));
    n.stream_latency_ns = r.between(50_000, 5_000_000);
    n.bandwidth_bytes_per_s = *r.pick(&[0, 1_000_000, 100_000_000]);
    n.stream_break = Ppm(*r.pick(&[0, 100, 2_000]));
    n.stream_break_after_ns = r.between(100, 3_000) * 1_000_000;
    n.detect_min_ns = 1_000_000;
    n.detect_max_ns = *r.pick(&[50_000_000, 500_000_000, 2_000_000_000]);
    k.fsync_min_ns = r.between(10_000, 500_000);
    k.fsync_mean_ns = *r.pick(&[50_000, 1_000_000, 10_000_000]);
    if r.chance(Ppm(200_000)) {
        k.sick_node = Some(r.below(k.nodes as u64) as usize);
        k.sick_slowdown = 100;
    }
    k.torn_append = Ppm(r.below(1_000_001) as u32);
    // Within the core's documented bound (lease reads are off, so any drift is legal).
    k.drift_ppm_max = *r.pick(&[0, 100, 1_000, 5_000]);
    k.clients = r.between(1, 8) as usize;
    k.keys = r.between(1, 5);
    k.op_interval_mean_ms = *r.pick(&[1, 10, 50, 200]);
    k.client_timeout_ms = r.between(1_000, 5_000);
    k.read = Ppm(r.below(700_001) as u32);
    k.cas = Ppm(r.below(700_001) as u32);
    // Sometimes snapshots that take longer than an election timeout: the node
    // must go on replicating and voting while one is written.
    if r.chance(Ppm(250_000)) {
        k.snapshot_duration_ms = r.between(1, 4 * k.election_timeout_ms);
    }
    // Mostly a cache of a few entries, so streams and applies read entries
    // back from the disk model all the time, under every fault. (Drawn last:
    // the draws above, and so the seeds' other knobs, are unchanged.)
    k.log_cache_bytes_max = *r.pick(&[0, 300, 4_096, 64 << 20]);
    k
}

fn swarm_mix(r: &mut SimRng) -> FaultMix {
    loop {
        let mut weight = || {
            if r.chance(Ppm(600_000)) {
                r.between(1, 100)
            } else {
                0
            }
        };
        let mix = FaultMix {
            partition: weight(),
            crash: weight(),
            stream_break: weight(),
            pause: weight(),
            transfer: weight(),
            membership: weight(),
            interval_ms: 0,
        };
        let total = mix.partition + mix.crash + mix.stream_break + mix.pause;
        if total + mix.transfer + mix.membership > 0 {
            return FaultMix {
                interval_ms: r.between(300, 5_000),
                ..mix
            };
        }
    }
}

fn random_subset(r: &mut SimRng, n: usize, size: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    r.shuffle(&mut all);
    all.truncate(size);
    all.sort_unstable();
    all
}

fn random_shape(r: &mut SimRng, n: usize) -> Shape {
    match r.below(6) {
        0 => Shape::Isolate {
            node: r.below(n as u64) as usize,
        },
        1 => Shape::IsolateLeader,
        2 => Shape::Split {
            side: random_subset(r, n, (n - 1) / 2),
        },
        3 if n >= 3 => {
            let bridge = r.below(n as u64) as usize;
            let others: Vec<usize> = (0..n).filter(|&x| x != bridge).collect();
            let left = random_subset(r, others.len(), others.len() / 2)
                .into_iter()
                .map(|i| others[i])
                .collect();
            Shape::Bridge { bridge, left }
        }
        4 => Shape::MuteOutbound {
            node: r.below(n as u64) as usize,
        },
        _ => Shape::DeafInbound {
            node: r.below(n as u64) as usize,
        },
    }
}

/// The fault schedule of the chaos phase: faults at exponential intervals,
/// each partition healed after 0.5–5 s, each crash restarted after 0.2–5 s,
/// each pause lasting 0.05–3 s, at most `(n - 1) / 2` nodes down or paused at
/// once (the fault budget).
/// Half the crashes (drawn from `reach`) wait for a pending multi-entry append.
fn schedule(k: &Knobs, mix: &FaultMix, r: &mut SimRng, reach: &mut SimRng) -> Vec<Timed<Fault>> {
    let weights = [
        mix.partition,
        mix.crash,
        mix.stream_break,
        mix.pause,
        mix.transfer,
        mix.membership,
    ];
    if mix.interval_ms == 0 || weights.iter().sum::<u64>() == 0 || k.nodes < 2 {
        return Vec::new();
    }
    let mut s = Schedule {
        nodes: k.nodes,
        out: Vec::new(),
        partition_until: 0,
        down_until: vec![0; k.nodes],
        budget: (k.nodes - 1) / 2,
    };
    let mut t = 0u64;
    loop {
        t += 1 + r.exponential_ns(mix.interval_ms * 1_000_000) / 1_000_000;
        if t >= k.chaos_ms {
            break;
        }
        match r.weighted(&weights) {
            0 if t >= s.partition_until => s.partition(t, r),
            1 => s.crash(t, r, reach),
            3 => s.pause(t, r),
            family @ (2 | 4 | 5) => s.cluster_fault(family, t, r),
            _ => {}
        }
    }
    let mut out = s.out;
    divergent_episodes(k, mix, reach, &mut out);
    out.retain(|f| f.at_ms < k.chaos_ms);
    out.sort_by_key(|f| f.at_ms);
    out
}

/// A fault schedule being drawn: what it holds so far and what it must respect.
struct Schedule {
    nodes: usize,
    out: Vec<Timed<Fault>>,
    /// The current partition heals then; no other partition starts before.
    partition_until: u64,
    /// Per node: down (crashed or paused) until then.
    down_until: Vec<u64>,
    /// At most this many nodes down at once (a quorum stays up).
    budget: usize,
}

impl Schedule {
    fn push(&mut self, at_ms: u64, what: Fault) {
        self.out.push(Timed { at_ms, what });
    }

    /// Node `node` may go down at `t` without breaking the budget.
    fn may_go_down(&self, node: usize, t: u64) -> bool {
        let down = self.down_until.iter().filter(|&&u| u > t).count();
        self.down_until[node] <= t && down < self.budget
    }

    /// A partition of a random shape at `t`, healed 0.5–5 s later.
    fn partition(&mut self, t: u64, r: &mut SimRng) {
        let heal = t + r.between(500, 5_000);
        self.push(t, Fault::Partition(random_shape(r, self.nodes)));
        self.push(heal, Fault::Heal);
        self.partition_until = heal;
    }

    /// A crash at `t` (half of them waiting for a multi-entry append) and the
    /// restart 0.2–5 s later.
    fn crash(&mut self, t: u64, r: &mut SimRng, reach: &mut SimRng) {
        let node = r.below(self.nodes as u64) as usize;
        if self.may_go_down(node, t) {
            let back = t + r.between(200, 5_000);
            let what = if reach.chance(Ppm(500_000)) {
                Fault::CrashMidAppend { node }
            } else {
                Fault::Crash { node }
            };
            self.push(t, what);
            self.push(back, Fault::Restart { node });
            self.down_until[node] = back;
        }
    }

    /// A pause of 50 ms–3 s at `t`.
    fn pause(&mut self, t: u64, r: &mut SimRng) {
        let node = r.below(self.nodes as u64) as usize;
        if self.may_go_down(node, t) {
            let ms = r.between(50, 3_000);
            self.push(t, Fault::Pause { node, ms });
            self.down_until[node] = t + ms;
        }
    }

    /// A fault of the cluster's streams or membership: family 2 breaks a
    /// node's streams, 4 transfers leadership, 5 adds or removes a member.
    fn cluster_fault(&mut self, family: usize, t: u64, r: &mut SimRng) {
        let what = match family {
            2 => Fault::BreakStreams {
                node: r.below(self.nodes as u64) as usize,
            },
            4 => {
                let target = if r.chance(Ppm(500_000)) {
                    Some(r.below(self.nodes as u64) as usize)
                } else {
                    None
                };
                Fault::TransferLeadership { target }
            }
            _ => {
                if r.chance(Ppm(500_000)) {
                    Fault::AddMember
                } else {
                    Fault::RemoveMember {
                        node: r.below(self.nodes as u64) as usize,
                    }
                }
            }
        };
        self.push(t, what);
    }
}

/// Up to two episodes that make logs diverge in three terms at one index
/// (see [`Fault::SplitNextLeader`]): the leader and one node cut off, the next
/// leader cut off with one node at its election, a heal 2–5 s later. They need
/// five nodes (each cut leaves a majority behind) and the partition family.
fn divergent_episodes(k: &Knobs, mix: &FaultMix, r: &mut SimRng, out: &mut Vec<Timed<Fault>>) {
    let episodes = r.below(3);
    if k.nodes < 5 || mix.partition == 0 || k.chaos_ms < 2_000 {
        return;
    }
    for _ in 0..episodes {
        let t = r.between(1_000, k.chaos_ms - 1_000);
        let heal = t + r.between(2_000, 5_000);
        let (a, b) = (r.below(8) as usize, r.below(8) as usize);
        out.push(Timed {
            at_ms: t,
            what: Fault::Partition(Shape::LeaderAndOne { pick: a }),
        });
        out.push(Timed {
            at_ms: t,
            what: Fault::SplitNextLeader { pick: b },
        });
        out.push(Timed {
            at_ms: heal,
            what: Fault::Heal,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_membership(s: &Scenario) -> bool {
        s.faults
            .iter()
            .any(|f| matches!(f.what, Fault::AddMember | Fault::RemoveMember { .. }))
    }

    #[test]
    fn membership_faults_unless_disabled_and_transfers_by_default() {
        let on = Overrides::default();
        let off = Overrides {
            no_membership: true,
            ..Overrides::default()
        };
        let seeds = 0..40;
        for swarm in [false, true] {
            assert!(
                seeds
                    .clone()
                    .all(|s| !has_membership(&scenario_from_seed(s, swarm, &off)))
            );
            assert!(
                seeds
                    .clone()
                    .any(|s| has_membership(&scenario_from_seed(s, swarm, &on)))
            );
        }
        assert!(seeds.clone().any(|s| {
            scenario_from_seed(s, false, &off)
                .faults
                .iter()
                .any(|f| matches!(f.what, Fault::TransferLeadership { .. }))
        }));
    }

    #[test]
    fn the_same_seed_gives_the_same_scenario_and_seeds_differ() {
        let a = scenario_from_seed(5, true, &Overrides::default());
        assert_eq!(a, scenario_from_seed(5, true, &Overrides::default()));
        assert_ne!(a, scenario_from_seed(6, true, &Overrides::default()));
    }

    #[test]
    fn crashes_respect_the_fault_budget() {
        for seed in 0..50 {
            let s = scenario_from_seed(
                seed,
                true,
                &Overrides {
                    nodes: Some(5),
                    ..Overrides::default()
                },
            );
            let mut down = 0usize;
            for f in &s.faults {
                match f.what {
                    Fault::Crash { .. } | Fault::CrashMidAppend { .. } => down += 1,
                    Fault::Restart { .. } => down -= 1,
                    _ => {}
                }
                assert!(down <= 2, "seed {seed}: {down} down");
            }
            assert!(s.faults.iter().all(|f| f.at_ms < s.knobs.chaos_ms));
        }
    }

    #[test]
    fn overrides_win_and_zero_interval_means_no_faults() {
        let o = Overrides {
            nodes: Some(3),
            duration_ms: Some(9_000),
            fault_interval_ms: Some(0),
            ..Overrides::default()
        };
        let s = scenario_from_seed(1, true, &o);
        assert_eq!(s.knobs.nodes, 3);
        assert_eq!(s.knobs.duration_ms, 9_000);
        assert!(s.faults.is_empty());
    }
}
