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
    match search.run(model.init()) {
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

    /// `Some(true)` if every operation can be placed from `init`,
    /// `Some(false)` if not, `None` when out of budget. Depth-first with an
    /// explicit stack: a history of many thousand operations is that deep.
    fn run(&mut self, init: L::State) -> Option<bool> {
        struct Frame<S> {
            state: S,
            /// The earliest return among the completed operations left.
            horizon: u64,
            /// The next operation to try from this configuration.
            next: usize,
        }
        let mut placed = vec![0u64; self.ops.len().div_ceil(64)];
        // Operations placed to reach each frame above the first.
        let mut path: Vec<usize> = Vec::new();
        let mut stack: Vec<Frame<L::State>> = Vec::new();
        let mut arriving = Some(init);
        loop {
            if let Some(state) = arriving.take() {
                let horizon = (0..self.ops.len())
                    .filter(|&i| !Self::is_placed(&placed, i) && self.ops[i].output.is_some())
                    .map(|i| self.ops[i].complete)
                    .min();
                let Some(horizon) = horizon else {
                    return Some(true);
                };
                if self.seen.insert((placed.clone(), state.clone())) {
                    self.steps += 1;
                    if self.steps > self.budget {
                        return None;
                    }
                    if path.len() > self.best.len() {
                        self.best = path.iter().map(|&i| self.ops[i].at).collect();
                    }
                    stack.push(Frame {
                        state,
                        horizon,
                        next: 0,
                    });
                } else if let Some(i) = path.pop() {
                    // Explored before, in vain: back to the parent.
                    placed[i / 64] &= !(1 << (i % 64));
                }
            }
            let Some(top) = stack.last_mut() else {
                return Some(false);
            };
            let mut child = None;
            while top.next < self.ops.len() {
                let i = top.next;
                top.next += 1;
                let op = &self.ops[i];
                if op.invoke > top.horizon {
                    top.next = self.ops.len();
                    break;
                }
                if Self::is_placed(&placed, i) {
                    continue;
                }
                let mut next = top.state.clone();
                let output = self.model.step(&mut next, op.request);
                if op.output.is_none_or(|o| *o == output) {
                    child = Some((i, next));
                    break;
                }
            }
            match child {
                Some((i, state)) => {
                    placed[i / 64] |= 1 << (i % 64);
                    path.push(i);
                    arriving = Some(state);
                }
                None => {
                    stack.pop();
                    if let Some(i) = path.pop() {
                        placed[i / 64] &= !(1 << (i % 64));
                    }
                }
            }
        }
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
    fn a_long_history_is_decided_on_a_small_stack() {
        let h: Vec<OpOf<KvStore>> = (0..3_000u64)
            .map(|i| {
                let t = 10 * i;
                if i % 2 == 0 {
                    op(i, put(i), Some(KvOutput::Written), (t, Some(t + 5)))
                } else {
                    op(i, Request::Read(0), read(Some(i - 1)), (t, Some(t + 5)))
                }
            })
            .collect();
        let verdict = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || check(&Registers, &h, &Budget::default()))
            .expect("a thread")
            .join()
            .expect("no stack overflow");
        assert_eq!(verdict, Judgment::Linearizable);
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
