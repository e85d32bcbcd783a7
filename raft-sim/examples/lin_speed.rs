//! Measures the linearizability checker's speed on generated histories and
//! prints one JSON object per case: `cargo run --release --example lin_speed`
//! (an argument runs only the cases whose name contains it).
//!
//! Histories follow Jepsen's process model: each client has one operation
//! outstanding, with a random latency and think time; an operation takes effect
//! at a random instant inside its interval, in a sequential execution of one
//! register per key with unique written values. An indeterminate operation
//! (never completed) takes effect or not at random, and its client retires in
//! favour of a fresh one. A "rejected" case then makes one completed read of the
//! highest key, in the middle of its history, return a value nobody wrote.

use raft_sim::linearizability::{Call, CheckOptions, LinOp, Verdict, check};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A case runs repeatedly until it has taken at least this long.
const CASE_DURATION_MIN: Duration = Duration::from_millis(500);

/// Histories generated per case (checked round robin).
const HISTORY_COUNT: u64 = 8;

struct Case {
    name: &'static str,
    key_count: u64,
    ops_per_key: u64,
    client_count: u64,
    latency_ns_max: u64,
    think_ns_max: u64,
    /// Chance, in percent, that an operation's outcome is indeterminate.
    indeterminate_percent: u64,
    /// Make one completed read of the highest key observe a value never
    /// written (the checker stops at the lowest violating key, so every key
    /// is still checked).
    mutate: bool,
}

const BASE: Case = Case {
    name: "10_keys_300_ops_each_5_clients",
    key_count: 10,
    ops_per_key: 300,
    client_count: 5,
    latency_ns_max: 5_000_000,
    think_ns_max: 1_000_000,
    indeterminate_percent: 2,
    mutate: false,
};

fn main() {
    let cases = [
        BASE,
        Case {
            name: "10_keys_300_ops_each_5_clients_last_key_rejected",
            mutate: true,
            ..BASE
        },
        Case {
            name: "1_key_300_ops_20_clients",
            key_count: 1,
            client_count: 20,
            ..BASE
        },
        Case {
            name: "1_key_300_ops_20_clients_10pct_indeterminate",
            key_count: 1,
            client_count: 20,
            indeterminate_percent: 10,
            ..BASE
        },
        Case {
            name: "1_key_300_ops_20_clients_rejected",
            key_count: 1,
            client_count: 20,
            mutate: true,
            ..BASE
        },
        Case {
            name: "1_key_20000_ops_10_clients",
            key_count: 1,
            ops_per_key: 20_000,
            client_count: 10,
            ..BASE
        },
    ];
    // An optional argument picks the cases whose name contains it.
    let filter = std::env::args().nth(1).unwrap_or_default();
    for case in cases.iter().filter(|case| case.name.contains(&filter)) {
        run(case);
    }
}

fn run(case: &Case) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let histories: Vec<Vec<LinOp>> = (0..HISTORY_COUNT)
        .map(|_| generate(case, &mut rng))
        .collect();
    let options = CheckOptions::default();
    let started = Instant::now();
    let (mut runs, mut op_count) = (0u64, 0u64);
    let mut verdicts = BTreeMap::new();
    while runs < HISTORY_COUNT || started.elapsed() < CASE_DURATION_MIN {
        let ops = &histories[(runs % HISTORY_COUNT) as usize];
        let verdict = match check(ops, &options) {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable(_) => "not_linearizable",
            Verdict::Unknown { .. } => "unknown",
        };
        *verdicts.entry(verdict).or_insert(0u64) += 1;
        runs += 1;
        op_count += ops.len() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    let verdicts: Vec<String> = verdicts
        .iter()
        .map(|(v, n)| format!("\"{v}\":{n}"))
        .collect();
    println!(
        "{{\"case\":\"{}\",\"keys\":{},\"ops_per_key\":{},\"clients\":{},\"indeterminate_percent\":{},\"runs\":{runs},\"ops\":{op_count},\"seconds\":{seconds:.3},\"ops_per_sec\":{:.0},\"verdicts\":{{{}}}}}",
        case.name,
        case.key_count,
        case.ops_per_key,
        case.client_count,
        case.indeterminate_percent,
        op_count as f64 / seconds,
        verdicts.join(",")
    );
}

fn below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    rng.next_u64() % bound
}

/// An operation before the register execution fills in its results.
struct Planned {
    op: LinOp,
    /// When it takes effect; `None` if it never does.
    point_ns: Option<u64>,
    /// For a `Cas`: whether it expects the value the register will hold.
    expects_current: bool,
}

/// One history, keys interleaved in time.
fn generate(case: &Case, rng: &mut ChaCha8Rng) -> Vec<LinOp> {
    let op_count = case.key_count * case.ops_per_key;
    let mut planned = Vec::with_capacity(op_count as usize);
    // Per client slot: (client id, time it is free).
    let mut slots: Vec<(u64, u64)> = (0..case.client_count).map(|c| (c, 0)).collect();
    let mut next_client = case.client_count;
    for _ in 0..op_count {
        let slot = (0..slots.len())
            .min_by_key(|&s| slots[s].1)
            .expect("at least one client");
        let (client, free_ns) = slots[slot];
        let invoke_ns = free_ns + below(rng, case.think_ns_max);
        let complete_ns = invoke_ns + 1 + below(rng, case.latency_ns_max);
        let point_ns = invoke_ns + below(rng, complete_ns - invoke_ns + 1);
        let indeterminate = below(rng, 100) < case.indeterminate_percent;
        let call = match below(rng, 3) {
            0 => Call::Put { value: 0 },
            1 => Call::Get { observed: None },
            _ => Call::Cas {
                from: None,
                to: 0,
                swapped: None,
            },
        };
        planned.push(Planned {
            op: LinOp {
                client,
                key: below(rng, case.key_count),
                call,
                invoke_ns,
                complete_ns: (!indeterminate).then_some(complete_ns),
            },
            point_ns: (!indeterminate || below(rng, 2) == 0).then_some(point_ns),
            expects_current: below(rng, 2) == 0,
        });
        slots[slot] = if indeterminate {
            next_client += 1;
            (next_client, complete_ns)
        } else {
            (client, complete_ns)
        };
    }

    // The sequential execution, in order of the instants ops take effect.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].point_ns.unwrap_or(u64::MAX), i));
    let mut registers: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    for (value, &i) in (1u64..).zip(&order) {
        let Planned {
            op,
            point_ns,
            expects_current,
        } = &mut planned[i];
        let register = registers.entry(op.key).or_default();
        let happens = point_ns.is_some();
        op.call = match op.call {
            Call::Put { .. } => {
                if happens {
                    *register = Some(value);
                }
                Call::Put { value }
            }
            Call::Get { .. } => Call::Get {
                observed: *register,
            },
            Call::Cas { .. } => {
                let from = if *expects_current {
                    *register
                } else {
                    Some(value - 1)
                };
                let swapped = from == *register;
                if happens && swapped {
                    *register = Some(value);
                }
                Call::Cas {
                    from,
                    to: value,
                    swapped: Some(swapped),
                }
            }
        };
    }
    let mut ops: Vec<LinOp> = planned.into_iter().map(|p| p.op).collect();

    if case.mutate {
        let key = case.key_count - 1;
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| {
                let op = &ops[i];
                op.key == key && op.complete_ns.is_some() && matches!(op.call, Call::Get { .. })
            })
            .collect();
        if let Some(&read) = reads.get(reads.len() / 2) {
            ops[read].call = Call::Get {
                observed: Some(u64::MAX),
            };
        }
    }
    ops
}
