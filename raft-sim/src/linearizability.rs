//! Linearizability checking of a client history against a register model.
//!
//! The checker answers one question about a recorded client history: is there a
//! total order of the operations that (a) respects real time — an operation that
//! completed before another was invoked comes first — and (b) is a legal
//! sequential execution of one register per key? (SIMULATION.md §2.11 item 8.)
//!
//! # Input
//!
//! A slice of [`LinOp`], in any order. Each operation names its key, what it did
//! ([`Call`]), when it was invoked and, if the client learned the outcome, when
//! it completed. Times are the simulator's global clock in nanoseconds. The
//! simulator's recorded history ([`crate::history::Op`]) converts with
//! [`LinOp::from_history`], or is checked directly by [`check_history`].
//!
//! - *Completed* (`complete_ns: Some(_)`): the operation took effect exactly once
//!   at some instant in `[invoke_ns, complete_ns]`, with the recorded result.
//! - *Indeterminate* (`complete_ns: None`, the client saw a timeout or another
//!   unknown-outcome error): it may have taken effect at any instant after
//!   `invoke_ns`, or not at all. Its recorded result is ignored: a pending `Get`
//!   constrains nothing and is dropped, a pending `Cas` is checked as "swapped if
//!   the register held `from`".
//! - *Failed definitely* (the operation certainly did not and will not happen):
//!   the caller leaves it out.
//!
//! An operation that completes at the very nanosecond another is invoked is
//! treated as concurrent with it (calls sort before returns on equal times), the
//! permissive reading: the checker never reports a violation that depends on how
//! a tie was broken.
//!
//! # Model
//!
//! Every key is an independent register holding `Option<u64>`, initially `None`.
//! `Put` sets it; `Get` observes it; `Cas { from, to }` sets it to `Some(to)` if
//! and only if it holds `from`, and reports whether it swapped. The workload
//! writes unique values (§2.9); the checker verifies that per key and uses it
//! when it holds (below), but stays correct without it.
//!
//! # Algorithm
//!
//! Linearizability is compositional (Herlihy & Wing), so the history is split by
//! key and every key is checked on its own (Porcupine's P-compositionality).
//! Per key the checker runs the Wing–Gong–Lowe search: the history becomes a
//! doubly linked list of call and return events in time order; the search
//! repeatedly linearizes a call that appears before the first remaining return
//! and whose result the model accepts, lifting it (and its return) out of the
//! list, and backtracks when it reaches a return whose call it could not
//! linearize. Lowe's memoization prunes every configuration already explored:
//! the cache holds pairs of (set of linearized operations, register value), the
//! set hashed incrementally (Zobrist hashing) so a lookup costs O(1) plus one
//! comparison on a hit, and stored as the positions where its bits flip so that
//! an entry costs a few words, not a bit per operation of the key's history.
//! An indeterminate operation has no return event: the search succeeds once
//! every completed operation is linearized, and the indeterminate ones left
//! over are the ones that never took effect.
//!
//! Four reductions keep the search close to linear on realistic histories;
//! none changes the verdict:
//!
//! - *Reads go first.* A read-only operation (a `Get`, a `Cas` known to have
//!   failed) that is a candidate and whose result matches the register can be
//!   linearized right away without loss of generality, so the search takes it
//!   as a forced move and never tries the alternatives in that configuration.
//! - *A needed value is not overwritten.* When the key's written values are
//!   unique, a value once overwritten never returns; a write is refused while a
//!   completed operation that can only succeed on the current value (a read of
//!   it, a `Cas` from it that swapped) is still to be placed.
//! - *Unobserved values are interchangeable.* Values no operation reads or
//!   expects behave alike in every future, so the cache records them as one.
//! - *Indeterminate operations are placed only where they can matter.* One
//!   that would change nothing, or write a value nobody observes while no
//!   possibly-failing `Cas` expects the value it would hide, is left out.
//!
//! The search is exponential in the worst case, so each key gets a budget
//! ([`CheckOptions`]); running out yields [`Verdict::Unknown`], which the
//! simulator reports as a warning with the seed, never as a pass.
//!
//! # Example
//!
//! ```
//! use raft_sim::linearizability::{check, Call, CheckOptions, LinOp, Verdict};
//!
//! let op = |client, call, invoke_ns, complete_ns| LinOp {
//!     client,
//!     key: 7,
//!     call,
//!     invoke_ns,
//!     complete_ns: Some(complete_ns),
//! };
//! let ops = [
//!     op(1, Call::Put { value: 1 }, 0, 10),
//!     op(1, Call::Put { value: 2 }, 20, 30),
//!     // A read invoked after the second put completed must not see the first.
//!     op(2, Call::Get { observed: Some(1) }, 40, 50),
//! ];
//! let Verdict::NotLinearizable(violation) = check(&ops, &CheckOptions::default()) else {
//!     panic!("a stale read must be rejected");
//! };
//! // After `put 1`, `put 2` had to come next, but the read still needed 1.
//! assert_eq!(violation.prefix, [0]);
//! assert_eq!((violation.stuck, violation.state, violation.waiting.as_slice()), (1, Some(1), &[2][..]));
//! println!("{}", violation.describe(&ops));
//! ```

mod search;

use crate::history::{self, OpKind, OpStatus};
use search::{KeyOutcome, check_key};
use std::collections::BTreeMap;
use std::fmt;

/// One client operation on one key, as the checker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinOp {
    /// The client process that issued the operation (for explanations only).
    pub client: u64,
    /// The key; operations on different keys are checked independently.
    pub key: u64,
    /// What the operation asked for and, if known, what it observed.
    pub call: Call,
    /// When the client invoked the operation (global simulated time).
    pub invoke_ns: u64,
    /// When the client learned the outcome; `None` if it never did (indeterminate:
    /// the operation may take effect any time after `invoke_ns`, or not at all).
    pub complete_ns: Option<u64>,
}

/// A register operation and its recorded result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Set the register to `Some(value)`.
    Put {
        /// The value written (unique across the history in the simulator's workload).
        value: u64,
    },
    /// Read the register.
    Get {
        /// The value the read returned; `None` means the key was absent.
        observed: Option<u64>,
    },
    /// Set the register to `Some(to)` if it holds `from`.
    Cas {
        /// The expected value; `None` expects the key to be absent.
        from: Option<u64>,
        /// The value written on a match.
        to: u64,
        /// Whether it swapped, if known; `None` leaves it to the model.
        swapped: Option<bool>,
    },
}

/// Limits on the search for one key; exceeding either yields [`Verdict::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Search steps (a step tries one call or takes back one) allowed per key.
    pub max_steps_per_key: u64,
    /// Bytes the memoization cache of one key may hold.
    pub max_memo_bytes_per_key: usize,
}

impl Default for CheckOptions {
    /// Ten million steps (about half a second in a release build, measured on a
    /// pathological history) and at most 256 MiB of cache per key.
    fn default() -> Self {
        Self {
            max_steps_per_key: 10_000_000,
            max_memo_bytes_per_key: 256 << 20,
        }
    }
}

/// The outcome of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's history has a linearization.
    Linearizable,
    /// Some key's history has none; the violation on the lowest such key.
    NotLinearizable(Violation),
    /// No key is known to be non-linearizable, but the search on `key` (the
    /// lowest one) ran out of budget after `steps` steps.
    Unknown {
        /// The key whose search was cut short.
        key: u64,
        /// Steps taken when the budget (steps or cache bytes) ran out.
        steps: u64,
    },
}

/// Why a key's history is not linearizable: the longest linearizable prefix the
/// search found, and the operation that could not be placed after it.
///
/// Operations are indices into the slice given to [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key.
    pub key: u64,
    /// The longest prefix of a linearization found, in linearization order.
    pub prefix: Vec<usize>,
    /// The register value after `prefix`.
    pub state: Option<u64>,
    /// The completed operation, not in `prefix`, with the earliest completion:
    /// it had to come next or right after one of `concurrent`, and no such
    /// order works — its result is impossible on `state`, or placing it (or
    /// the writes before it) would overwrite a value `waiting` still needs.
    pub stuck: usize,
    /// The other operations invoked before `stuck` completed and not in `prefix`:
    /// the candidates the search tried before giving up on this prefix.
    pub concurrent: Vec<usize>,
    /// Completed operations, other than `stuck` and not in `prefix`, that can
    /// only succeed while the register holds `state` (reads of it, a `Cas` from
    /// it that swapped); with unique written values, no write may go next while
    /// they wait. Empty when the key's written values are not unique.
    pub waiting: Vec<usize>,
}

/// How many operations of the prefix [`Violation::describe`] shows.
const DESCRIBE_PREFIX_TAIL_COUNT: usize = 8;

impl Violation {
    /// A multi-line explanation naming the operations involved; `ops` must be the
    /// slice given to [`check`] (or to [`check_history`]).
    pub fn describe<Op: fmt::Display>(&self, ops: &[Op]) -> String {
        let mut text = format!("{self}\n");
        let shown = self.prefix.len().min(DESCRIBE_PREFIX_TAIL_COUNT);
        let hidden = self.prefix.len() - shown;
        if hidden > 0 {
            text += &format!("  prefix: ... {hidden} earlier ops\n");
        }
        for &i in &self.prefix[hidden..] {
            text += &format!("  prefix: #{i} {}\n", ops[i]);
        }
        text += &format!("  state:  {}\n", DisplayValue(self.state));
        text += &format!("  stuck:  #{} {}\n", self.stuck, ops[self.stuck]);
        for &i in &self.concurrent {
            text += &format!("  concurrent: #{i} {}\n", ops[i]);
        }
        for &i in &self.waiting {
            text += &format!("  waiting: #{i} {}\n", ops[i]);
        }
        text
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {}: op #{} cannot follow the longest linearizable prefix ({} ops, register {}; {} concurrent ops, {} waiting)",
            self.key,
            self.stuck,
            self.prefix.len(),
            DisplayValue(self.state),
            self.concurrent.len(),
            self.waiting.len()
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => f.write_str("linearizable"),
            Verdict::NotLinearizable(violation) => write!(f, "not linearizable: {violation}"),
            Verdict::Unknown { key, steps } => {
                write!(
                    f,
                    "unknown: search budget for key {key} exhausted after {steps} steps"
                )
            }
        }
    }
}

impl fmt::Display for LinOp {
    /// `c3 k1 cas 4->9 ok [100..250]`; an indeterminate op ends in `..?]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c{} k{} {} [{}..",
            self.client, self.key, self.call, self.invoke_ns
        )?;
        match self.complete_ns {
            Some(complete_ns) => write!(f, "{complete_ns}]"),
            None => f.write_str("?]"),
        }
    }
}

impl fmt::Display for Call {
    /// `put 4`, `get -> nil`, `cas nil->9 ok`, `cas 4->9 failed`, `cas 4->9 ?`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Call::Put { value } => write!(f, "put {value}"),
            Call::Get { observed } => write!(f, "get -> {}", DisplayValue(observed)),
            Call::Cas { from, to, swapped } => {
                let outcome = match swapped {
                    Some(true) => "ok",
                    Some(false) => "failed",
                    None => "?",
                };
                write!(f, "cas {}->{to} {outcome}", DisplayValue(from))
            }
        }
    }
}

/// A register value for display: the number, or `nil` when absent.
struct DisplayValue(Option<u64>);

impl fmt::Display for DisplayValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value}"),
            None => f.write_str("nil"),
        }
    }
}

/// Checks `ops` for linearizability, key by key in ascending key order.
///
/// Returns the violation on the lowest non-linearizable key if there is one,
/// otherwise [`Verdict::Unknown`] for the lowest key whose search ran out of
/// budget, otherwise [`Verdict::Linearizable`]. Deterministic: the same input
/// in the same order always gives the same verdict and explanation.
///
/// # Panics
///
/// If an operation completes before it was invoked, or one key holds more than
/// `u32::MAX / 2` operations: the history recorder is broken.
pub fn check(ops: &[LinOp], options: &CheckOptions) -> Verdict {
    let mut by_key: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(complete_ns) = op.complete_ns {
            assert!(
                complete_ns >= op.invoke_ns,
                "op #{i} ({op}) completes at {complete_ns} before its invoke at {}",
                op.invoke_ns
            );
        }
        by_key.entry(op.key).or_default().push(i);
    }
    let mut first_unknown = None;
    for (&key, indices) in &by_key {
        match check_key(ops, indices, key, options) {
            KeyOutcome::Linearizable => {}
            KeyOutcome::NotLinearizable(violation) => return Verdict::NotLinearizable(violation),
            KeyOutcome::Unknown { steps } => {
                first_unknown.get_or_insert(Verdict::Unknown { key, steps });
            }
        }
    }
    first_unknown.unwrap_or(Verdict::Linearizable)
}

impl LinOp {
    /// The checker's view of a recorded operation: `None` if it failed
    /// definitely (it did not happen); indeterminate if its outcome is unknown.
    ///
    /// # Panics
    ///
    /// If an operation with outcome `Ok` has no completion time: the history
    /// recorder is broken.
    pub fn from_history(op: &history::Op) -> Option<LinOp> {
        let complete_ns = match op.outcome {
            OpStatus::Failed => return None,
            OpStatus::Unknown => None,
            OpStatus::Ok => Some(
                op.complete_ns
                    .unwrap_or_else(|| panic!("{op} completed Ok without a completion time")),
            ),
        };
        let call = match op.kind {
            OpKind::Put { value } => Call::Put { value },
            OpKind::Get { result } => Call::Get { observed: result },
            OpKind::Cas { from, to, ok } => Call::Cas {
                from: Some(from),
                to,
                swapped: ok,
            },
        };
        Some(LinOp {
            client: op.client,
            key: op.key,
            call,
            invoke_ns: op.invoke_ns,
            complete_ns,
        })
    }
}

/// [`check`] on a recorded history; the violation's operations are indices
/// into `ops`, so [`Violation::describe`] takes `ops` too.
///
/// # Panics
///
/// As [`check`] and [`LinOp::from_history`].
pub fn check_history(ops: &[history::Op], options: &CheckOptions) -> Verdict {
    let (origins, lin_ops): (Vec<usize>, Vec<LinOp>) = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| Some((i, LinOp::from_history(op)?)))
        .unzip();
    match check(&lin_ops, options) {
        Verdict::NotLinearizable(mut violation) => {
            let origin = |i: &mut usize| *i = origins[*i];
            violation.prefix.iter_mut().for_each(origin);
            origin(&mut violation.stuck);
            violation.concurrent.iter_mut().for_each(origin);
            violation.waiting.iter_mut().for_each(origin);
            Verdict::NotLinearizable(violation)
        }
        verdict => verdict,
    }
}

#[cfg(test)]
mod tests;
