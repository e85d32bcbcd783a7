//! The Wing–Gong–Lowe search over one key's history.

use super::{Call, CheckOptions, LinOp, Violation};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::hash::BuildHasherDefault;

/// The result of the search on one key.
pub(super) enum KeyOutcome {
    Linearizable,
    NotLinearizable(Violation),
    Unknown { steps: u64 },
}

/// Checks the history `ops[i]` for each `i` in `indices`, all on `key`.
///
/// A failed search is run a second time, identically, to explain its deepest
/// dead end: copying the prefix at every new deepest dead end would cost
/// quadratic time on long histories that turn out linearizable.
pub(super) fn check_key(
    ops: &[LinOp],
    indices: &[usize],
    key: u64,
    options: &CheckOptions,
) -> KeyOutcome {
    match KeySearch::new(ops, indices).run(key, options, None) {
        SearchEnd::Linearizable => KeyOutcome::Linearizable,
        SearchEnd::Unknown { steps } => KeyOutcome::Unknown { steps },
        SearchEnd::NotLinearizable {
            deepest_dead_end_step,
        } => match KeySearch::new(ops, indices).run(key, options, Some(deepest_dead_end_step)) {
            SearchEnd::Explained(violation) => KeyOutcome::NotLinearizable(violation),
            _ => unreachable!("the search is deterministic, so it meets the same dead end"),
        },
        SearchEnd::Explained(_) => unreachable!("no dead end was asked for"),
    }
}

/// How [`KeySearch::run`] ended.
enum SearchEnd {
    Linearizable,
    Unknown {
        steps: u64,
    },
    /// No linearization; the deepest dead end was met at this step.
    NotLinearizable {
        deepest_dead_end_step: u64,
    },
    /// The dead end asked for.
    Explained(Violation),
}

/// A register value as a dense id: [`ABSENT`], then the values some op
/// observes (ids `1..=observed_count`), then the values written but never
/// observed.
type ValueId = u32;

/// The id of "no value": the register's initial state.
const ABSENT: ValueId = 0;

/// An op's call with its values as ids.
#[derive(Clone, Copy, Debug)]
enum Move {
    Put {
        to: ValueId,
    },
    Get {
        observed: ValueId,
    },
    Cas {
        from: ValueId,
        to: ValueId,
        swapped: Option<bool>,
    },
}

impl Move {
    /// The register value after this move from `state`, or `None` if the
    /// move's recorded result is impossible there.
    fn apply(self, state: ValueId) -> Option<ValueId> {
        match self {
            Move::Put { to } => Some(to),
            Move::Get { observed } => (observed == state).then_some(state),
            Move::Cas { from, to, swapped } => {
                let matched = state == from;
                match swapped {
                    Some(swapped) if swapped != matched => None,
                    _ => Some(if matched { to } else { state }),
                }
            }
        }
    }

    /// Whether the move never changes the register, whatever it holds.
    fn is_read_only(self) -> bool {
        matches!(
            self,
            Move::Get { .. }
                | Move::Cas {
                    swapped: Some(false),
                    ..
                }
        )
    }

    /// The value the move can only succeed on, if there is one.
    fn requires(self) -> Option<ValueId> {
        match self {
            Move::Get { observed } => Some(observed),
            Move::Cas {
                from,
                swapped: Some(true),
                ..
            } => Some(from),
            Move::Put { .. } | Move::Cas { .. } => None,
        }
    }
}

/// One node of the event list. Node 0 is the head sentinel; the list is circular.
#[derive(Clone, Copy, Debug)]
enum Node {
    Head,
    /// The invocation of local op `op`; `ret` is its return node, `None` for an
    /// indeterminate op.
    Call {
        op: u32,
        ret: Option<u32>,
    },
    /// The completion of local op `op`.
    Return {
        op: u32,
    },
}

const HEAD: u32 = 0;

/// A move of the search: the call node linearized, the register value before
/// it, and the node where the scan of the configuration before it goes on if
/// the move fails — `None` for a forced move, whose failure fails that
/// configuration.
struct Frame {
    call: u32,
    before: ValueId,
    then: Option<u32>,
}

/// The search state for one key.
struct KeySearch {
    /// Local op index → index into the caller's slice.
    input: Vec<usize>,
    moves: Vec<Move>,
    /// Value id → value.
    values: Vec<Option<u64>>,
    /// Ids above this are never observed, so they are interchangeable: the memo
    /// records them all as `observed_count + 1`.
    observed_count: ValueId,
    /// What the ops not yet linearized ask of the register.
    demand: Demand,
    /// The event list: call and return nodes in time order, linked by `next`
    /// and `prev`; linearized ops are lifted out of it.
    nodes: Vec<Node>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// The moves made so far; their calls, in order, are the current prefix.
    stack: Vec<Frame>,
    linearized: Linearized,
    memo: Memo,
    /// The register value after the current prefix.
    state: ValueId,
    /// Completed ops not yet linearized; the search succeeds at zero.
    remaining_count: usize,
}

impl KeySearch {
    /// Prepares the search over `ops[i]` for each `i` in `indices` (one key).
    fn new(ops: &[LinOp], indices: &[usize]) -> Self {
        let mut input = Vec::with_capacity(indices.len());
        let mut calls = Vec::with_capacity(indices.len());
        // (time, is_return, local op): calls sort before returns on equal times.
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * indices.len());
        for &i in indices {
            let op = &ops[i];
            let call = match (op.complete_ns, op.call) {
                (Some(_), call) => call,
                // A read whose outcome is unknown constrains nothing.
                (None, Call::Get { .. }) => continue,
                (None, Call::Put { value }) => Call::Put { value },
                (None, Call::Cas { from, to, .. }) => Call::Cas {
                    from,
                    to,
                    swapped: None,
                },
            };
            let local = u32::try_from(input.len())
                .ok()
                .filter(|&local| local < u32::MAX / 2)
                .unwrap_or_else(|| panic!("key {} holds too many operations", op.key));
            input.push(i);
            calls.push(call);
            events.push((op.invoke_ns, false, local));
            if let Some(complete_ns) = op.complete_ns {
                events.push((complete_ns, true, local));
            }
        }
        events.sort_unstable();

        let (values, observed_count, moves) = intern_values(&calls);
        let mut written: Vec<u64> = calls
            .iter()
            .filter_map(|call| match *call {
                Call::Put { value } | Call::Cas { to: value, .. } => Some(value),
                Call::Get { .. } => None,
            })
            .collect();
        written.sort_unstable();
        let unique_writes = written.windows(2).all(|pair| pair[0] != pair[1]);

        let mut nodes = Vec::with_capacity(events.len() + 1);
        nodes.push(Node::Head);
        let mut call_node = vec![HEAD; input.len()];
        let mut demand = Demand::new(values.len(), unique_writes);
        let mut remaining_count = 0;
        for &(_, is_return, op) in &events {
            let node = nodes.len() as u32;
            if is_return {
                remaining_count += 1;
                let Node::Call { ret, .. } = &mut nodes[call_node[op as usize] as usize] else {
                    unreachable!("op {op}'s call node precedes its return node");
                };
                *ret = Some(node);
                nodes.push(Node::Return { op });
            } else {
                call_node[op as usize] = node;
                nodes.push(Node::Call { op, ret: None });
            }
        }
        for (op, &node) in moves.iter().zip(&call_node) {
            let Node::Call { ret, .. } = nodes[node as usize] else {
                unreachable!("every op has a call node");
            };
            demand.add(*op, ret.is_some());
        }
        let len = nodes.len() as u32;
        let linearized = Linearized::new(input.len());
        let memo = Memo::default();
        Self {
            input,
            moves,
            values,
            observed_count,
            demand,
            nodes,
            next: (0..len).map(|n| (n + 1) % len).collect(),
            prev: (0..len).map(|n| (n + len - 1) % len).collect(),
            stack: Vec::new(),
            linearized,
            memo,
            state: ABSENT,
            remaining_count,
        }
    }

    /// Searches for a linearization of the key's history. With `explain_step`,
    /// stops at the dead end met at that step and explains it.
    fn run(mut self, key: u64, options: &CheckOptions, explain_step: Option<u64>) -> SearchEnd {
        // The deepest dead end so far: (prefix length, step).
        let mut deepest: Option<(usize, u64)> = None;
        let mut steps: u64 = 0;
        // The next node to try in the current configuration; `None` right after
        // entering one, before its forced read is looked for.
        let mut cursor: Option<u32> = None;
        while self.remaining_count > 0 {
            steps += 1;
            if steps > options.max_steps_per_key {
                return SearchEnd::Unknown { steps };
            }
            // The move to try, and where the scan goes on if it fails.
            let (node, forced) = match cursor {
                Some(node) => (node, false),
                None => match self.first_possible_read() {
                    Some(read) => (read, true),
                    None => (self.next[HEAD as usize], false),
                },
            };
            let then = (!forced).then(|| self.next[node as usize]);
            match self.nodes[node as usize] {
                Node::Call { op, ret } => {
                    if self.maybe_linearize(node, op, ret, then) {
                        if self.memo.bytes() > options.max_memo_bytes_per_key {
                            return SearchEnd::Unknown { steps };
                        }
                        cursor = None;
                        continue;
                    }
                    if then.is_some() {
                        cursor = then;
                        continue;
                    }
                }
                Node::Return { op } => {
                    // The op completing here was not linearized: a dead end.
                    if explain_step == Some(steps) {
                        return SearchEnd::Explained(self.explain(key, node, op));
                    }
                    if deepest.is_none_or(|(depth, _)| self.stack.len() > depth) {
                        deepest = Some((self.stack.len(), steps));
                    }
                }
                Node::Head => unreachable!(
                    "{} completed ops remain, so a return node precedes the list's end",
                    self.remaining_count
                ),
            }
            match self.backtrack() {
                Some(node) => cursor = Some(node),
                None => {
                    let (_, step) = deepest.expect("every failure starts at a return node");
                    return SearchEnd::NotLinearizable {
                        deepest_dead_end_step: step,
                    };
                }
            }
        }
        SearchEnd::Linearizable
    }

    /// Linearizes local op `op` (its call is `node`, its return `ret`) next if
    /// the register allows its result, [`Demand::refuses`] does not rule the
    /// move out, and the configuration reached is new; says whether it did.
    fn maybe_linearize(&mut self, node: u32, op: u32, ret: Option<u32>, then: Option<u32>) -> bool {
        let placed = self.moves[op as usize];
        let completed = ret.is_some();
        let Some(after) = placed.apply(self.state) else {
            return false;
        };
        let unobserved = after > self.observed_count;
        if self
            .demand
            .refuses(placed, completed, self.state, after, unobserved)
        {
            return false;
        }
        self.linearized.insert(op);
        let memo_state = after.min(self.observed_count + 1);
        let hash = self.linearized.hash ^ mix64(u64::from(memo_state) ^ STATE_SALT);
        if !self.memo.insert(hash, &self.linearized.words, memo_state) {
            self.linearized.remove(op);
            return false;
        }
        self.demand.remove(placed, completed);
        self.stack.push(Frame {
            call: node,
            before: self.state,
            then,
        });
        self.state = after;
        self.lift(node, ret);
        self.remaining_count -= usize::from(ret.is_some());
        true
    }

    /// Undoes moves until one whose configuration has candidates left (a forced
    /// move's failure fails the configuration it was made in); returns where
    /// that configuration's scan goes on, or `None` if every prefix failed.
    fn backtrack(&mut self) -> Option<u32> {
        loop {
            let frame = self.stack.pop()?;
            let Node::Call { op, ret } = self.nodes[frame.call as usize] else {
                unreachable!("the stack holds call nodes only");
            };
            self.unlift(frame.call, ret);
            self.linearized.remove(op);
            self.remaining_count += usize::from(ret.is_some());
            self.demand.add(self.moves[op as usize], ret.is_some());
            self.state = frame.before;
            if frame.then.is_some() {
                return frame.then;
            }
        }
    }

    /// The first candidate (a call before the first return) that only reads and
    /// whose recorded result the register produces now.
    ///
    /// Such a read can go first without loss of generality: if any
    /// linearization extends the current prefix, moving the read to its front
    /// gives another one (the read changes nothing, every op that had to
    /// precede it is already in the prefix, and it sees the same value). So the
    /// search takes it as a forced move and never tries the alternatives.
    fn first_possible_read(&self) -> Option<u32> {
        let mut node = self.next[HEAD as usize];
        while let Node::Call { op, .. } = self.nodes[node as usize] {
            let candidate = self.moves[op as usize];
            if candidate.is_read_only() && candidate.apply(self.state).is_some() {
                return Some(node);
            }
            node = self.next[node as usize];
        }
        None
    }

    fn unlink(&mut self, n: u32) {
        let (p, q) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = q;
        self.prev[q as usize] = p;
    }

    fn relink(&mut self, n: u32) {
        let (p, q) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = n;
        self.prev[q as usize] = n;
    }

    /// Removes a call node and its return node from the list.
    fn lift(&mut self, call: u32, ret: Option<u32>) {
        self.unlink(call);
        if let Some(ret) = ret {
            self.unlink(ret);
        }
    }

    /// Undoes [`Self::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, call: u32, ret: Option<u32>) {
        if let Some(ret) = ret {
            self.relink(ret);
        }
        self.relink(call);
    }

    /// The explanation of a dead end: the current prefix, and `ret_node`, the
    /// return of local op `stuck`, reached before `stuck` was placed.
    fn explain(&self, key: u64, ret_node: u32, stuck: u32) -> Violation {
        let prefix = self
            .stack
            .iter()
            .map(|frame| match self.nodes[frame.call as usize] {
                Node::Call { op, .. } => self.input[op as usize],
                _ => unreachable!("the stack holds call nodes only"),
            })
            .collect();
        let mut concurrent = Vec::new();
        let mut node = self.next[HEAD as usize];
        while node != ret_node {
            if let Node::Call { op, .. } = self.nodes[node as usize] {
                if op != stuck {
                    concurrent.push(self.input[op as usize]);
                }
            }
            node = self.next[node as usize];
        }
        let mut waiting = Vec::new();
        if self.demand.needed_by.is_some() {
            let mut node = self.next[HEAD as usize];
            while node != HEAD {
                if let Node::Return { op } = self.nodes[node as usize] {
                    if op != stuck && self.moves[op as usize].requires() == Some(self.state) {
                        waiting.push(self.input[op as usize]);
                    }
                }
                node = self.next[node as usize];
            }
        }
        Violation {
            key,
            prefix,
            state: self.values[self.state as usize],
            stuck: self.input[stuck as usize],
            concurrent,
            waiting,
        }
    }
}

/// What the ops not yet linearized ask of the register, by value id; the
/// search consults it to refuse moves that cannot help.
struct Demand {
    /// Completed ops that can only succeed on the value: reads of it, `Cas`
    /// ops from it that swapped. `None` when the key's written values repeat.
    needed_by: Option<Vec<u32>>,
    /// `Cas` ops not known to have swapped, by expected value: the ops that a
    /// write of a value nobody observes can make fail.
    doubted_by: Vec<u32>,
}

impl Demand {
    fn new(value_count: usize, unique_writes: bool) -> Self {
        Self {
            needed_by: unique_writes.then(|| vec![0; value_count]),
            doubted_by: vec![0; value_count],
        }
    }

    /// The values `m` demands: the one it needs (if `completed`) and the one
    /// it doubts.
    fn of(m: Move, completed: bool) -> (Option<ValueId>, Option<ValueId>) {
        let doubts = match m {
            Move::Cas {
                from,
                swapped: None | Some(false),
                ..
            } => Some(from),
            Move::Put { .. } | Move::Get { .. } | Move::Cas { .. } => None,
        };
        (m.requires().filter(|_| completed), doubts)
    }

    /// Counts `m` as not yet linearized.
    fn add(&mut self, m: Move, completed: bool) {
        let (needs, doubts) = Self::of(m, completed);
        if let (Some(needed_by), Some(value)) = (&mut self.needed_by, needs) {
            needed_by[value as usize] += 1;
        }
        if let Some(value) = doubts {
            self.doubted_by[value as usize] += 1;
        }
    }

    /// Counts `m` as linearized.
    fn remove(&mut self, m: Move, completed: bool) {
        let (needs, doubts) = Self::of(m, completed);
        if let (Some(needed_by), Some(value)) = (&mut self.needed_by, needs) {
            needed_by[value as usize] -= 1;
        }
        if let Some(value) = doubts {
            self.doubted_by[value as usize] -= 1;
        }
    }

    /// Whether moving the register from `state` to `after` with `m` (whose
    /// recorded result allows it) can be skipped, because it leads nowhere or
    /// because leaving it out loses no linearization:
    ///
    /// - With unique written values a value once overwritten never comes back,
    ///   so overwriting one that a completed op still needs leads nowhere.
    /// - An indeterminate op may be left out. Leaving out one that changes
    ///   nothing changes nothing. Leaving out one that writes a value nobody
    ///   observes (`unobserved`) keeps the register at `state` until the next
    ///   write, which is harmless unless a `Cas` that may fail expects `state`
    ///   (reads and a swapping `Cas` cannot run on the unobserved value anyway).
    fn refuses(
        &self,
        m: Move,
        completed: bool,
        state: ValueId,
        after: ValueId,
        unobserved: bool,
    ) -> bool {
        let (needs, doubts) = Self::of(m, completed);
        let others = |counts: &[u32], own: Option<ValueId>| {
            counts[state as usize] - u32::from(own == Some(state))
        };
        let strands_a_read = self
            .needed_by
            .as_ref()
            .is_some_and(|needed_by| after != state && others(needed_by, needs) > 0);
        let needless =
            !completed && (after == state || (unobserved && others(&self.doubted_by, doubts) == 0));
        strands_a_read || needless
    }
}

/// Numbers the values of `calls` (see [`ValueId`]): returns the id → value
/// table, how many values are observed, and the calls as moves.
fn intern_values(calls: &[Call]) -> (Vec<Option<u64>>, ValueId, Vec<Move>) {
    let mut observed = BTreeMap::new();
    for call in calls {
        if let Call::Get {
            observed: Some(value),
        }
        | Call::Cas {
            from: Some(value), ..
        } = *call
        {
            observed.insert(value, ABSENT);
        }
    }
    let mut values = vec![None];
    for (value, id) in &mut observed {
        *id = values.len() as ValueId;
        values.push(Some(*value));
    }
    let observed_count = observed.len() as ValueId;
    let mut ids = observed;
    let mut id = |value: Option<u64>| match value {
        None => ABSENT,
        Some(value) => *ids.entry(value).or_insert_with(|| {
            values.push(Some(value));
            (values.len() - 1) as ValueId
        }),
    };
    let moves = calls
        .iter()
        .map(|call| match *call {
            Call::Put { value } => Move::Put {
                to: id(Some(value)),
            },
            Call::Get { observed } => Move::Get {
                observed: id(observed),
            },
            Call::Cas { from, to, swapped } => Move::Cas {
                from: id(from),
                to: id(Some(to)),
                swapped,
            },
        })
        .collect();
    (values, observed_count, moves)
}

/// The set of linearized local ops as a bitset, with its Zobrist hash (the XOR
/// of a fixed pseudo-random word per member) maintained incrementally.
struct Linearized {
    words: Vec<u64>,
    hash: u64,
}

impl Linearized {
    fn new(op_count: usize) -> Self {
        Self {
            words: vec![0; op_count.div_ceil(64).max(1)],
            hash: 0,
        }
    }

    fn insert(&mut self, op: u32) {
        self.words[op as usize / 64] |= 1 << (op % 64);
        self.hash ^= mix64(u64::from(op));
    }

    fn remove(&mut self, op: u32) {
        self.words[op as usize / 64] &= !(1 << (op % 64));
        self.hash ^= mix64(u64::from(op));
    }
}

/// Keeps a register value's share of a memo hash apart from every op's share.
const STATE_SALT: u64 = 0x5555_5555_0000_0000;

/// SplitMix64's finalizer: a fixed bijection that spreads bits.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Lowe's cache of explored configurations: (linearized set, register value).
///
/// Entries live in flat arenas (no allocation per entry); `heads` maps a hash to
/// the newest entry with that hash, and `chain` links to the next older one.
///
/// A linearized set is stored run-length encoded: the sorted positions at which
/// its bits flip between zero and one. The search places ops roughly in time
/// order, so a set is a long run of placed ops, a few holes (indeterminate ops
/// left out, which stay out for the rest of the path) and a small window of ops
/// in flight: a handful of flips, where a plain bitset costs one bit per op of
/// the key's history. Histories of a hundred thousand ops on one key then fit
/// the cache; with a prefix-only compression one early hole kept every entry as
/// wide as the whole history. The form is canonical (the bitset has a fixed
/// length and zeros past its last flip), so two sets are equal exactly when
/// their flip lists are.
#[derive(Default)]
struct Memo {
    heads: HashMap<u64, u32, BuildHasherDefault<DefaultHasher>>,
    flips: Vec<u32>,
    /// Per entry: (start in `flips`, flip count).
    spans: Vec<(u32, u32)>,
    states: Vec<ValueId>,
    chain: Vec<Option<u32>>,
    /// The flip list of the set being inserted, reused between inserts.
    scratch: Vec<u32>,
}

impl Memo {
    /// Records a configuration; `false` if it was already there.
    fn insert(&mut self, hash: u64, bits: &[u64], state: ValueId) -> bool {
        encode_flips(bits, &mut self.scratch);
        let new = self.states.len() as u32;
        let older = match self.heads.entry(hash) {
            Entry::Occupied(mut head) => {
                let mut entry = Some(*head.get());
                while let Some(e) = entry {
                    let e = e as usize;
                    let (start, len) = self.spans[e];
                    let (start, len) = (start as usize, len as usize);
                    if self.states[e] == state && self.flips[start..start + len] == *self.scratch {
                        return false;
                    }
                    entry = self.chain[e];
                }
                Some(head.insert(new))
            }
            Entry::Vacant(head) => {
                head.insert(new);
                None
            }
        };
        self.spans
            .push((self.flips.len() as u32, self.scratch.len() as u32));
        self.flips.extend_from_slice(&self.scratch);
        self.states.push(state);
        self.chain.push(older);
        true
    }

    /// Approximate heap bytes held.
    fn bytes(&self) -> usize {
        let per_entry =
            size_of::<ValueId>() + size_of::<Option<u32>>() + size_of::<(u32, u32)>() + 16;
        self.flips.len() * size_of::<u32>() + self.states.len() * per_entry
    }
}

/// Writes into `flips` the positions at which `bits` (bit `i` of word `w` is
/// position `64 * w + i`) changes value, starting from zero.
fn encode_flips(bits: &[u64], flips: &mut Vec<u32>) {
    flips.clear();
    let mut ones = false;
    for (word_index, &word) in (0u32..).zip(bits) {
        // The bits that differ from the value of the current run.
        let mut differ = if ones { !word } else { word };
        while differ != 0 {
            let bit = differ.trailing_zeros();
            flips.push(word_index * 64 + bit);
            ones = !ones;
            let above = u64::MAX.checked_shl(bit + 1).unwrap_or(0);
            differ = if ones { !word } else { word } & above;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode_flips;
    use proptest::prelude::*;

    /// Rebuilds a bitset of `words` words from its flip list.
    fn decode_flips(flips: &[u32], words: usize) -> Vec<u64> {
        let mut bits = vec![0u64; words];
        for pair in flips.chunks(2) {
            let end = pair.get(1).map_or(words as u32 * 64, |&end| end);
            for position in pair[0]..end {
                bits[(position / 64) as usize] |= 1 << (position % 64);
            }
        }
        bits
    }

    proptest! {
        /// The memo compares flip lists in place of sets, so the encoding must
        /// lose nothing: distinct sets would otherwise share a cache entry and
        /// the search would skip a configuration it never explored.
        #[test]
        fn a_flip_list_is_the_set_it_encodes(
            bits in prop::collection::vec(
                prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
                0..8,
            )
        ) {
            let mut flips = Vec::new();
            encode_flips(&bits, &mut flips);
            prop_assert!(flips.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(decode_flips(&flips, bits.len()), bits);
        }
    }
}
