//! Control of a run from outside: stepping, running to a time, faults now or
//! when a predicate on the cluster holds, user invariants after every event,
//! inspection of each node between steps, trace subscribers, holding
//! datagrams, a hand on each disk and per-link bandwidth. (Rules on
//! datagrams and frames are in [`crate::intercept`].)

use crate::checkers::Failure;
use crate::disk::{DiskDamage, RotError, SimDisk};
use crate::scenario::Fault;
use crate::service::{Replica, Service};
use crate::trace::{Fact, TraceRecord};
use crate::world::{SimEvent, World};
use raft_core::{Bootstrap, Instant, LogIndex, Message, Node, NodeOptions};

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

    /// Keeps `msg` until [`World::release_held`], traced as `held`.
    pub(crate) fn hold_message(&mut self, from: usize, to: usize, msg: Message) {
        let fact = Fact::MessageHeld {
            from,
            to,
            body: msg.body.clone(),
        };
        self.trace
            .record(self.now, Some(to), fact, format!("held {msg}"));
        self.held.push((from, to, msg));
    }

    /// Datagrams and stream frames held (or reordered and waiting) so far
    /// and not released.
    pub fn held_count(&self) -> usize {
        self.held.len() + self.reordered.len() + self.net.held_frame_count()
    }

    /// Stops the holds of [`World::hold_datagrams`] and delivers everything
    /// held now: datagrams in the order they were held (a partition in place
    /// at this moment still drops them), then reordered datagrams still
    /// waiting for a successor; held stream directions flow again, in
    /// order. Released datagrams are not judged again; rules of
    /// [`World::intercept`] stay. Returns how many datagrams and frames, as
    /// [`World::held_count`] counted them.
    pub fn release_held(&mut self) -> usize {
        self.holds.clear();
        let count = self.held_count();
        let mut datagrams = std::mem::take(&mut self.held);
        datagrams.append(&mut self.reordered);
        let (lanes, follow) = self.net.release_lanes(self.now);
        let fact = Fact::HeldReleased {
            datagrams: datagrams.len(),
            lanes,
        };
        let mut text = format!("release {} held datagrams", datagrams.len());
        if lanes > 0 {
            text.push_str(&format!(" and {lanes} held stream directions"));
        }
        self.trace.record(self.now, None, fact, text);
        for (from, to, msg) in datagrams {
            self.schedule(self.now, SimEvent::MessageLate { from, to, msg });
        }
        self.schedule_net(follow);
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
        self.hold_message(from, to, msg);
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

    /// Hands every trace record from now on to `f` as it is recorded: its
    /// [`Fact`] to match on, its text, time and node. `f` only observes.
    pub fn on_trace(&mut self, f: impl FnMut(&TraceRecord) + 'static) {
        self.trace.subscribe(f);
    }

    /// Holds (`true`) or releases (`false`) node `i`'s fsyncs: while held,
    /// its log writes stay pending (not durable, never reported persisted),
    /// until [`World::fsync_now`] or the release, which starts an fsync of
    /// what is pending. A crash meanwhile keeps a random prefix of them.
    /// The hold outlives crashes and the heal.
    pub fn hold_fsyncs(&mut self, i: usize, held: bool) {
        let disk = &mut self.hosts[i].disk;
        disk.hold_fsyncs(held);
        if let Some(due) = disk.start_pending_fsync(self.now, &mut self.disk_rng) {
            let incarnation = self.hosts[i].incarnation;
            let (node, upto) = (i, due.upto);
            let event = SimEvent::Fsync {
                node,
                incarnation,
                upto,
            };
            self.schedule(due.at, event);
        }
    }

    /// Makes node `i`'s pending writes durable now (held or not) and steps
    /// it with what became durable. Returns whether anything was pending.
    pub fn fsync_now(&mut self, i: usize) -> bool {
        let Some(upto) = self.hosts[i].disk.force_fsync() else {
            return false;
        };
        self.complete_fsync(i, upto);
        true
    }

    /// Bit rot on node `i`'s disk: changes byte `offset` of the payload of
    /// its synced log record at `index`. The node runs on (it does not read
    /// its log back); its next start finds the damage and refuses, see
    /// [`World::start_refusal`] and [`crate::disk::control`] for the rule.
    pub fn rot_synced_byte(
        &mut self,
        i: usize,
        index: LogIndex,
        offset: usize,
    ) -> Result<(), RotError> {
        self.hosts[i].disk.rot_synced_byte(index, offset)
    }

    /// Why node `i`'s last start was refused, if it was: its disk is
    /// damaged and it stays down (the liveness judgment leaves it out).
    pub fn start_refusal(&self, i: usize) -> Option<DiskDamage> {
        self.refusals.get(&i).copied()
    }

    /// Limits the directed link `from -> to` to `bytes_per_s` for stream
    /// frames (0 lifts it): a frame of `b` bytes takes `b / bytes_per_s` to
    /// transmit, queued behind the frames sent on that link before it, then
    /// the stream latency. Datagrams are not limited. Outlives the heal.
    pub fn set_link_bandwidth(&mut self, from: usize, to: usize, bytes_per_s: u64) {
        self.net.set_link_bandwidth(from, to, bytes_per_s);
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
