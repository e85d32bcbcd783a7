//! The linearizability checker against generated histories: every history cut
//! from a sequential execution of registers is accepted, and every history with
//! a read of a value nobody wrote is rejected, with an explanation that holds up.

use proptest::prelude::*;
use proptest::sample::Index;
use raft_sim::linearizability::{Call, CheckOptions, LinOp, Verdict, Violation, check};
use std::collections::BTreeMap;

/// A value no generated operation writes (written values are small).
const NEVER_WRITTEN: u64 = u64::MAX;

/// One operation of the sequential execution and the interval recorded around it.
#[derive(Clone, Debug)]
struct Step {
    key: u64,
    kind: Kind,
    /// Time from the previous operation's linearization point to this one's.
    gap_ns: u64,
    /// How long before its linearization point the op was invoked.
    lead_ns: u64,
    /// How long after its linearization point the op completed.
    lag_ns: u64,
    /// The client never learned the outcome.
    indeterminate: bool,
    /// For an indeterminate op: whether it took effect at all.
    took_effect: bool,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Put,
    Get,
    /// `hit`: expect the current value (swaps) or another one (fails, mostly).
    Cas {
        hit: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![
        Just(Kind::Put),
        Just(Kind::Get),
        any::<bool>().prop_map(|hit| Kind::Cas { hit }),
    ];
    let timing = (1..20u64, 0..60u64, 0..60u64);
    let outcome = (prop::bool::weighted(0.05), any::<bool>());
    (0..3u64, kind, timing, outcome).prop_map(
        |(key, kind, (gap_ns, lead_ns, lag_ns), (indeterminate, took_effect))| Step {
            key,
            kind,
            gap_ns,
            lead_ns,
            lag_ns,
            indeterminate,
            took_effect,
        },
    )
}

/// Runs `steps` one after another on a register per key (each at its own
/// linearization point) and records an interval around each point. Written
/// values are unique, or repeat with period `value_count` if it is given.
fn history(steps: &[Step], value_count: Option<u64>) -> Vec<LinOp> {
    let mut registers: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    let mut point_ns = 1_000;
    let mut ops = Vec::with_capacity(steps.len());
    for (n, step) in (0u64..).zip(steps) {
        point_ns += step.gap_ns;
        let value = 1 + value_count.map_or(n, |count| n % count);
        let register = registers.entry(step.key).or_default();
        let happens = !step.indeterminate || step.took_effect;
        let call = match step.kind {
            Kind::Put => {
                if happens {
                    *register = Some(value);
                }
                Call::Put { value }
            }
            Kind::Get => Call::Get {
                observed: *register,
            },
            Kind::Cas { hit } => {
                let from = match (hit, *register) {
                    (true, current) => current,
                    (false, None) => Some(value),
                    (false, Some(current)) if current % 2 == 0 => None,
                    (false, Some(current)) => Some(current + 1),
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
        ops.push(LinOp {
            client: n,
            key: step.key,
            call,
            invoke_ns: point_ns - step.lead_ns,
            complete_ns: (!step.indeterminate).then_some(point_ns + step.lag_ns),
        });
    }
    ops
}

/// Makes the completed read `pick` chooses observe a value nobody wrote;
/// returns its index, or `None` if there is no completed read.
fn corrupt_a_read(ops: &mut [LinOp], pick: Index) -> Option<usize> {
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].complete_ns.is_some() && matches!(ops[i].call, Call::Get { .. }))
        .collect();
    if reads.is_empty() {
        return None;
    }
    let read = *pick.get(&reads);
    ops[read].call = Call::Get {
        observed: Some(NEVER_WRITTEN),
    };
    Some(read)
}

/// Replays `prefix` on an empty register, checking each recorded result and the
/// real-time order; returns the register's value or the first problem.
fn replay(ops: &[LinOp], prefix: &[usize]) -> Result<Option<u64>, String> {
    let mut register = None;
    for (position, &i) in prefix.iter().enumerate() {
        let op = &ops[i];
        if let Some(&earlier) = prefix[..position]
            .iter()
            .find(|&&earlier| ops[earlier].invoke_ns > op.complete_ns.unwrap_or(u64::MAX))
        {
            return Err(format!(
                "#{earlier} placed before #{i}, which completed first"
            ));
        }
        let known = |swapped: Option<bool>| swapped.filter(|_| op.complete_ns.is_some());
        register =
            match op.call {
                Call::Put { value } => Some(value),
                Call::Get { observed } if observed == register => register,
                Call::Cas { from, to, swapped }
                    if known(swapped).is_none_or(|s| s == (from == register)) =>
                {
                    if from == register { Some(to) } else { register }
                }
                _ => {
                    return Err(format!(
                        "#{i} ({op}) is impossible on register {register:?}"
                    ));
                }
            };
    }
    Ok(register)
}

/// Checks that `violation` explains `ops`: its prefix is a legal start of a
/// linearization that ends in its state, and the ops it names fit their roles.
fn assert_explains(ops: &[LinOp], violation: &Violation) -> Result<(), TestCaseError> {
    let text = violation.describe(ops);
    prop_assert_eq!(
        replay(ops, &violation.prefix),
        Ok(violation.state),
        "{}",
        text
    );
    let stuck = &ops[violation.stuck];
    prop_assert_eq!(stuck.key, violation.key, "{}", text);
    let Some(stuck_complete_ns) = stuck.complete_ns else {
        return Err(TestCaseError::fail(format!(
            "only a completed op can be stuck: {text}"
        )));
    };
    for &i in &violation.concurrent {
        prop_assert!(
            ops[i].invoke_ns <= stuck_complete_ns,
            "#{} is not concurrent: {}",
            i,
            text
        );
    }
    for &i in &violation.waiting {
        let needs_state = match ops[i].call {
            Call::Get { observed } => observed == violation.state,
            Call::Cas {
                from,
                swapped: Some(true),
                ..
            } => from == violation.state,
            Call::Put { .. } | Call::Cas { .. } => false,
        };
        prop_assert!(
            needs_state && ops[i].complete_ns.is_some(),
            "#{} is not waiting: {}",
            i,
            text
        );
    }
    for i in violation
        .concurrent
        .iter()
        .chain(&violation.waiting)
        .chain([&violation.stuck])
    {
        prop_assert!(
            !violation.prefix.contains(i),
            "#{} is in the prefix: {}",
            i,
            text
        );
    }
    Ok(())
}

/// A small arbitrary history (not necessarily linearizable) on one key. With
/// `unique`, op `i` writes `10 + i`; otherwise written values repeat in `1..4`.
fn small_history(unique: bool) -> impl Strategy<Value = Vec<LinOp>> {
    let value = 0..12u64;
    let op = (
        0..4u8,
        value.clone(),
        value,
        any::<bool>(),
        0..3u8,
        0..20u64,
        0..10u64,
        prop::bool::weighted(0.25),
    );
    prop::collection::vec(op, 0..8).prop_map(move |specs| {
        (0u64..)
            .zip(specs)
            .map(
                |(i, (kind, a, b, swapped, known, invoke_ns, duration_ns, indeterminate))| {
                    let written = if unique { 10 + i } else { 1 + a % 3 };
                    // Observed values: absent, something written, or nothing written.
                    let seen = |v: u64| match v % 4 {
                        0 => None,
                        _ if unique => Some(10 + v % 9),
                        _ => Some(v % 5),
                    };
                    let call = match kind {
                        0 => Call::Put { value: written },
                        1 => Call::Get { observed: seen(b) },
                        _ => Call::Cas {
                            from: seen(b),
                            to: written,
                            swapped: (known > 0).then_some(swapped),
                        },
                    };
                    LinOp {
                        client: i,
                        key: 1,
                        call,
                        invoke_ns,
                        complete_ns: (!indeterminate).then_some(invoke_ns + duration_ns),
                    }
                },
            )
            .collect()
    })
}

/// Whether `ops` is linearizable, by trying every order of every subset of the
/// indeterminate ops together with all completed ones: no pruning, no memo.
fn brute_force_linearizable(ops: &[LinOp]) -> bool {
    fn extend(ops: &[LinOp], placed: &mut Vec<bool>, register: Option<u64>) -> bool {
        if ops
            .iter()
            .zip(placed.iter())
            .all(|(op, &placed)| placed || op.complete_ns.is_none())
        {
            return true;
        }
        for i in 0..ops.len() {
            let must_wait = (0..ops.len())
                .any(|j| !placed[j] && ops[j].complete_ns.is_some_and(|c| c < ops[i].invoke_ns));
            if placed[i] || must_wait {
                continue;
            }
            let known = |swapped: Option<bool>| swapped.filter(|_| ops[i].complete_ns.is_some());
            let after = match ops[i].call {
                Call::Put { value } => Some(value),
                Call::Get { observed } if ops[i].complete_ns.is_none() || observed == register => {
                    register
                }
                Call::Cas { from, to, swapped }
                    if known(swapped).is_none_or(|s| s == (from == register)) =>
                {
                    if from == register { Some(to) } else { register }
                }
                _ => continue,
            };
            placed[i] = true;
            let found = extend(ops, placed, after);
            placed[i] = false;
            if found {
                return true;
            }
        }
        false
    }
    extend(ops, &mut vec![false; ops.len()], None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sequential_executions_with_overlapping_intervals_are_linearizable(
        steps in prop::collection::vec(step(), 0..150),
    ) {
        let ops = history(&steps, None);
        prop_assert_eq!(check(&ops, &CheckOptions::default()), Verdict::Linearizable);
    }

    #[test]
    fn sequential_executions_that_repeat_values_are_linearizable(
        steps in prop::collection::vec(step(), 0..80),
        value_count in 1..4u64,
    ) {
        let ops = history(&steps, Some(value_count));
        prop_assert_eq!(check(&ops, &CheckOptions::default()), Verdict::Linearizable);
    }

    #[test]
    fn verdicts_on_small_arbitrary_histories_match_an_exhaustive_search(
        ops in prop_oneof![small_history(true), small_history(false)],
    ) {
        let verdict = check(&ops, &CheckOptions::default());
        let expected = brute_force_linearizable(&ops);
        match &verdict {
            Verdict::Linearizable => prop_assert!(expected, "accepted a non-linearizable history"),
            Verdict::NotLinearizable(violation) => {
                prop_assert!(!expected, "rejected a linearizable history: {}", violation.describe(&ops));
                assert_explains(&ops, violation)?;
            }
            Verdict::Unknown { .. } => prop_assert!(false, "ran out of budget on {} ops", ops.len()),
        }
    }

    #[test]
    fn reading_a_value_never_written_is_rejected_with_a_consistent_explanation(
        steps in prop::collection::vec(step(), 1..150),
        pick: Index,
    ) {
        let mut ops = history(&steps, None);
        let read = corrupt_a_read(&mut ops, pick);
        prop_assume!(read.is_some());
        let Verdict::NotLinearizable(violation) = check(&ops, &CheckOptions::default()) else {
            return Err(TestCaseError::fail("a read of a value never written was accepted"));
        };
        prop_assert_eq!(Some(violation.key), read.map(|read| ops[read].key));
        assert_explains(&ops, &violation)?;
    }

    #[test]
    fn reading_a_value_never_written_is_rejected_when_values_repeat(
        steps in prop::collection::vec(step(), 1..80),
        value_count in 1..4u64,
        pick: Index,
    ) {
        let mut ops = history(&steps, Some(value_count));
        let read = corrupt_a_read(&mut ops, pick);
        prop_assume!(read.is_some());
        let Verdict::NotLinearizable(violation) = check(&ops, &CheckOptions::default()) else {
            return Err(TestCaseError::fail("a read of a value never written was accepted"));
        };
        let mut written: Vec<u64> = ops
            .iter()
            .filter(|op| op.key == violation.key)
            .filter_map(|op| match op.call {
                Call::Put { value } | Call::Cas { to: value, .. } => Some(value),
                Call::Get { .. } => None,
            })
            .collect();
        written.sort_unstable();
        if written.windows(2).any(|pair| pair[0] == pair[1]) {
            prop_assert!(violation.waiting.is_empty(), "repeated values switch the overwrite rule off");
        }
        assert_explains(&ops, &violation)?;
    }
}
