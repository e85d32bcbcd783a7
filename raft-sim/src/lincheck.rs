//! A linearizability checker for any [`Model`]: the Wing–Gong–Lowe search
//! over the whole history, memoizing (operations placed, model state) pairs.
//!
//! Operations that failed definitely are left out; a read whose outcome is
//! unknown constrains nothing and is left out; a write whose outcome is
//! unknown may take effect at any point after its invocation, or never. The
//! next operation placed must have been invoked before every remaining
//! completed operation returned (ties count as concurrent); the search
//! succeeds once every completed operation is placed.
//!
//! This is the default of [`Model::check`]. It knows nothing about the model
//! beyond its states, so it suits small histories and small states (the bank
//! example: a few thousand operations of a handful of clients); a model with
//! independent parts (keys) gains much from a specialized checker.

use crate::history::OpStatus;
use crate::service::{Judgment, Model, OpOf, Request, StateMachine};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, DefaultHasher};

/// Bounds on the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Configurations explored before the verdict is [`Judgment::Undecided`].
    pub max_steps: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps: 5_000_000,
        }
    }
}

/// One operation as the search sees it.
struct Entry<'h, M: StateMachine> {
    /// Its position in the history given.
    at: usize,
    request: &'h crate::service::RequestOf<M>,
    /// `None`: unknown outcome (its output is not checked, it may never happen).
    output: Option<&'h M::Output>,
    invoke: u64,
    complete: u64,
}

/// Checks `history` against `model` within `budget`.
pub fn check<L: Model>(model: &L, history: &[OpOf<L::Machine>], budget: &Budget) -> Judgment {
    let mut ops: Vec<Entry<'_, L::Machine>> = Vec::new();
    for (at, op) in history.iter().enumerate() {
        match (op.outcome, &op.request) {
            (OpStatus::Failed, _) | (OpStatus::Unknown, Request::Read(_)) => {}
            (OpStatus::Ok, _) => {
                let (Some(output), Some(complete)) = (&op.output, op.complete_ns) else {
                    return Judgment::NotLinearizable(format!(
                        "op {at} ended ok without an output or a completion time"
                    ));
                };
                ops.push(Entry {
                    at,
                    request: &op.request,
                    output: Some(output),
                    invoke: op.invoke_ns,
                    complete,
                });
            }
            (OpStatus::Unknown, Request::Write(_)) => ops.push(Entry {
                at,
                request: &op.request,
                output: None,
                invoke: op.invoke_ns,
                complete: u64::MAX,
            }),
        }
    }
    ops.sort_by_key(|e| (e.invoke, e.at));
    let mut search = Search {
        model,
        ops: &ops,
        seen: HashSet::default(),
        steps: 0,
        budget: budget.max_steps,
        best: Vec::new(),
    };
    let mut placed = vec![0u64; ops.len().div_ceil(64)];
    let mut path = Vec::new();
    match search.dfs(&mut placed, &model.init(), &mut path) {
        Some(true) => Judgment::Linearizable,
        Some(false) => Judgment::NotLinearizable(search.explain(history)),
        None => Judgment::Undecided(format!(
            "search ran out of budget after {} configurations ({} operations)",
            search.steps,
            ops.len()
        )),
    }
}

type Seen<S> = HashSet<(Vec<u64>, S), BuildHasherDefault<DefaultHasher>>;

struct Search<'a, 'h, L: Model> {
    model: &'a L,
    ops: &'a [Entry<'h, L::Machine>],
    /// Configurations known to fail (a fixed hasher: deterministic).
    seen: Seen<L::State>,
    steps: u64,
    budget: u64,
    /// The longest prefix placed (history positions), for the explanation.
    best: Vec<usize>,
}

impl<L: Model> Search<'_, '_, L> {
    fn is_placed(placed: &[u64], i: usize) -> bool {
        placed[i / 64] & (1 << (i % 64)) != 0
    }

    /// `Some(true)` if the remaining operations can be placed from `state`,
    /// `Some(false)` if not, `None` when out of budget.
    fn dfs(&mut self, placed: &mut [u64], state: &L::State, path: &mut Vec<usize>) -> Option<bool> {
        // Every operation still to place must come before the earliest
        // return among the completed ones left.
        let horizon = (0..self.ops.len())
            .filter(|&i| !Self::is_placed(placed, i) && self.ops[i].output.is_some())
            .map(|i| self.ops[i].complete)
            .min();
        let Some(horizon) = horizon else {
            return Some(true);
        };
        if !self.seen.insert((placed.to_vec(), state.clone())) {
            return Some(false);
        }
        self.steps += 1;
        if self.steps > self.budget {
            return None;
        }
        if path.len() > self.best.len() {
            self.best = path.iter().map(|&i| self.ops[i].at).collect();
        }
        for i in 0..self.ops.len() {
            let op = &self.ops[i];
            if op.invoke > horizon {
                break;
            }
            if Self::is_placed(placed, i) {
                continue;
            }
            let mut next = state.clone();
            let output = self.model.step(&mut next, op.request);
            if op.output.is_some_and(|o| *o != output) {
                continue;
            }
            placed[i / 64] |= 1 << (i % 64);
            path.push(i);
            let found = self.dfs(placed, &next, path);
            path.pop();
            placed[i / 64] &= !(1 << (i % 64));
            if found != Some(false) {
                return found;
            }
        }
        Some(false)
    }

    fn explain(&self, history: &[OpOf<L::Machine>]) -> String {
        let placed: HashSet<usize> = self.best.iter().copied().collect();
        let shown = self.best.len().saturating_sub(8);
        let mut text = format!(
            "no order of the history respects real time and the model: the longest \
             linearizable prefix has {} operations",
            self.best.len()
        );
        for &at in &self.best[shown..] {
            text += &format!("\n  prefix: {}", history[at]);
        }
        let horizon = self
            .ops
            .iter()
            .filter(|e| !placed.contains(&e.at) && e.output.is_some())
            .map(|e| e.complete)
            .min()
            .unwrap_or(u64::MAX);
        for e in self.ops.iter().filter(|e| !placed.contains(&e.at)) {
            if e.invoke <= horizon {
                text += &format!("\n  cannot follow: {}", history[e.at]);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvOp, KvOutput, KvStore};
    use crate::service::{Op, RequestOf};

    /// The key-value store's registers, checked by the generic search.
    struct Registers;

    impl Model for Registers {
        type Machine = KvStore;
        type State = KvStore;
        fn init(&self) -> KvStore {
            KvStore::default()
        }
        fn step(&self, state: &mut KvStore, request: &RequestOf<KvStore>) -> KvOutput {
            match request {
                Request::Write(c) => state.apply(c),
                Request::Read(k) => state.read(k),
            }
        }
    }

    fn op(
        id: u64,
        request: RequestOf<KvStore>,
        output: Option<KvOutput>,
        span: (u64, Option<u64>),
    ) -> OpOf<KvStore> {
        Op {
            id,
            client: id,
            request,
            output,
            invoke_ns: span.0,
            complete_ns: span.1,
            outcome: if output.is_some() {
                OpStatus::Ok
            } else {
                OpStatus::Unknown
            },
        }
    }

    fn put(value: u64) -> RequestOf<KvStore> {
        Request::Write(KvOp::Put { key: 0, value })
    }

    fn read(seen: Option<u64>) -> Option<KvOutput> {
        Some(KvOutput::Value(seen))
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        let h = [
            op(0, put(1), Some(KvOutput::Written), (0, Some(10))),
            op(1, put(2), Some(KvOutput::Written), (20, Some(40))),
            op(2, Request::Read(0), read(Some(1)), (25, Some(30))),
            op(3, Request::Read(0), read(Some(2)), (26, Some(35))),
        ];
        assert_eq!(
            check(&Registers, &h, &Budget::default()),
            Judgment::Linearizable
        );
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_not_linearizable() {
        let h = [
            op(0, put(1), Some(KvOutput::Written), (0, Some(10))),
            op(1, put(2), Some(KvOutput::Written), (20, Some(30))),
            op(2, Request::Read(0), read(Some(1)), (40, Some(50))),
        ];
        let Judgment::NotLinearizable(why) = check(&Registers, &h, &Budget::default()) else {
            panic!("a stale read must be rejected");
        };
        assert!(why.contains("op2"), "{why}");
    }

    #[test]
    fn a_write_of_unknown_outcome_may_take_effect_late_or_never() {
        let late = [
            op(0, put(1), None, (0, None)),
            op(1, Request::Read(0), read(None), (10, Some(20))),
            op(2, Request::Read(0), read(Some(1)), (30, Some(40))),
        ];
        assert_eq!(
            check(&Registers, &late, &Budget::default()),
            Judgment::Linearizable
        );
        let never = [
            op(0, put(1), None, (0, None)),
            op(1, Request::Read(0), read(None), (30, Some(40))),
        ];
        assert_eq!(
            check(&Registers, &never, &Budget::default()),
            Judgment::Linearizable
        );
    }

    #[test]
    fn running_out_of_budget_is_undecided_never_a_pass() {
        let h = [
            op(0, put(1), Some(KvOutput::Written), (0, Some(10))),
            op(1, Request::Read(0), read(Some(1)), (20, Some(30))),
        ];
        let tiny = Budget { max_steps: 1 };
        assert!(matches!(
            check(&Registers, &h, &tiny),
            Judgment::Undecided(_)
        ));
    }
}
