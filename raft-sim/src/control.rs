//! Control of a run from outside: stepping, running to a time, faults now or
//! when a predicate on the cluster holds, user invariants after every event,
//! and inspection of each node between steps.

use crate::checkers::Failure;
use crate::disk::SimDisk;
use crate::scenario::Fault;
use crate::service::{Replica, Service};
use crate::world::{SimEvent, World};
use raft_core::{Bootstrap, Instant, Message, Node, NodeOptions};

impl<S: Service> World<S> {
    /// Processes every event due at or before `at`, then sets the clock to
    /// `at` (unless the run ended first). Returns whether the run goes on.
    pub fn run_until(&mut self, at: Instant) -> bool {
        while !self.done && self.next_event_at().is_some_and(|t| t <= at) {
            self.step();
        }
        if !self.done && at > self.now {
            self.now = at;
        }
        !self.done
    }

    /// When the next event is due, if any is queued.
    pub fn next_event_at(&self) -> Option<Instant> {
        self.queue.peek_at()
    }

    /// Whether the run ended (at its end, on a failure or with nothing queued).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Checks `check` after every event from now on; the first `Err` fails
    /// the run with checker `name`.
    pub fn add_invariant(
        &mut self,
        name: &'static str,
        check: impl FnMut(&World<S>) -> Result<(), String> + 'static,
    ) {
        self.invariants.push((name, Box::new(check)));
    }

    /// Applies `fault` (as [`World::inject`] does) after the first event at
    /// whose end `when` holds, once.
    pub fn inject_when(&mut self, when: impl FnMut(&World<S>) -> bool + 'static, fault: Fault) {
        self.triggers.push((Box::new(when), fault));
    }

    /// Holds, from now on until [`World::release_held`], every datagram for
    /// which `matches(from, to, message)` holds when it would arrive (traced
    /// as `held`); other datagrams and stream frames flow as usual.
    pub fn hold_datagrams(
        &mut self,
        matches: impl FnMut(usize, usize, &Message) -> bool + 'static,
    ) {
        self.holds.push(Box::new(matches));
    }

    /// Datagrams held so far and not released.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Stops holding and delivers every held datagram now, in the order they
    /// were held (a partition in place at this moment still drops them).
    /// Returns how many.
    pub fn release_held(&mut self) -> usize {
        self.holds.clear();
        let held = std::mem::take(&mut self.held);
        let count = held.len();
        self.trace
            .record(self.now, None, format!("release {count} held datagrams"));
        for (from, to, msg) in held {
            self.schedule(self.now, SimEvent::Message { from, to, msg });
        }
        count
    }

    /// Holds `msg` if a hold rule matches it, else hands it back.
    pub(crate) fn hold_or_pass(&mut self, from: usize, to: usize, msg: Message) -> Option<Message> {
        if self.holds.is_empty() {
            return Some(msg);
        }
        let mut holds = std::mem::take(&mut self.holds);
        let hold = holds.iter_mut().any(|h| h(from, to, &msg));
        self.holds.append(&mut holds);
        if !hold {
            return Some(msg);
        }
        self.trace.record(self.now, Some(to), format!("held {msg}"));
        self.held.push((from, to, msg));
        None
    }

    /// How many servers the world has (members or not, up or down).
    pub fn node_count(&self) -> usize {
        self.hosts.len()
    }

    /// Server `i`'s core node, `None` while it is down: its role, term, log,
    /// commit index and configuration are read through `raft_core::Node`.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.hosts[i].node.as_ref()
    }

    /// Server `i`'s disk: its durable hard state, log and snapshot.
    pub fn disk(&self, i: usize) -> &SimDisk {
        &self.hosts[i].disk
    }

    /// Server `i`'s clock now: the local time its node sees.
    pub fn local_time(&self, i: usize) -> Instant {
        self.hosts[i].clock.local(self.now)
    }

    /// Starts node `i` with `options` from its next start on (a restart
    /// after [`Fault::Crash`]); `options.id` must be its id, `i + 1`.
    pub fn set_options(&mut self, i: usize, options: NodeOptions) {
        self.node_options.insert(i, options);
    }

    /// Bootstraps initial member `i` with `bootstrap` instead of the
    /// world's list, from its next bootstrap on: called before the first
    /// step, its first start already uses it. (A different list or token
    /// makes it a cluster of its own, which the others must refuse; the
    /// oracles leave it out ([`World::is_foreign`]), but the liveness
    /// judgment at the end may pick it into the core it expects to
    /// converge, so such a run stops before the end.)
    pub fn set_bootstrap(&mut self, i: usize, bootstrap: Bootstrap) {
        self.hosts[i].bootstrap = Some(bootstrap);
    }

    /// Server `i`'s state machine (what it has applied), with its applied
    /// index, term and configuration ([`Replica::machine`] is yours).
    pub fn state_machine(&self, i: usize) -> &Replica<S::Machine> {
        &self.hosts[i].fsm
    }

    /// Fires the triggers whose predicate holds, then runs the invariants.
    pub(crate) fn run_user_hooks(&mut self) {
        let mut triggers = std::mem::take(&mut self.triggers);
        let mut fired = Vec::new();
        triggers.retain_mut(|(when, fault)| {
            let now = when(self);
            if now {
                fired.push(fault.clone());
            }
            !now
        });
        self.triggers.append(&mut triggers);
        for f in fired {
            self.inject(f);
        }
        let mut invariants = std::mem::take(&mut self.invariants);
        let broken = invariants
            .iter_mut()
            .find_map(|(name, check)| check(self).err().map(|why| (*name, why)));
        self.invariants.append(&mut invariants);
        if let Some((name, why)) = broken {
            self.fail(Failure::safety(name, why));
        }
    }
}
