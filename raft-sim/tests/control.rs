//! Control of a run from outside, through the public API only: stepping,
//! running to a time, faults now or when a predicate on the cluster holds,
//! user invariants after every event, and inspection of every node.

use raft_core::{Instant, LogIndex, MessageBody, Role};
use raft_sim::scenario::{Fault, Knobs, Scenario, Shape};
use raft_sim::trace::{Fact, FrameKind, Trace, TraceRecord};
use raft_sim::world::World;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

const S: u64 = 1_000_000_000;

fn world(seed: u64) -> World {
    world_with(seed, |_| {})
}

fn world_with(seed: u64, adjust: impl FnOnce(&mut Knobs)) -> World {
    let mut knobs = Knobs {
        nodes: 3,
        duration_ms: 20_000,
        chaos_ms: 8_000,
        ..Knobs::default()
    };
    adjust(&mut knobs);
    let scenario = Scenario {
        seed,
        knobs,
        faults: Vec::new(),
    };
    World::new(scenario, Trace::new(10_000, false))
}

#[test]
fn run_until_processes_every_event_due_by_then_and_none_later() {
    let mut w = world(1);
    assert!(w.run_until(Instant(2 * S)));
    assert_eq!(w.now, Instant(2 * S));
    let next = w
        .next_event_at()
        .expect("a running cluster has timers queued");
    assert!(
        next > Instant(2 * S),
        "an event due at {next} was left behind"
    );
}

#[test]
fn step_processes_one_event_at_a_time_in_time_order() {
    let mut w = world(2);
    for n in 1..=1_000 {
        let due = w.next_event_at().expect("events queued");
        assert!(w.step(), "the run ended early");
        assert_eq!(w.now, due);
        assert_eq!(w.report().events, n);
    }
}

#[test]
fn every_node_can_be_inspected_between_steps() {
    let mut w = world(3);
    w.run_until(Instant(3 * S));
    assert_eq!(w.node_count(), 3);
    for i in 0..w.node_count() {
        let node = w.node(i).expect("no fault was injected, every node is up");
        // The driver persists the hard state before the node acts on it.
        assert_eq!(w.disk(i).hard_state().term, node.term());
        assert!(w.disk(i).last_index() <= node.last_index());
        assert!(w.state_machine(i).applied() <= node.commit_index());
    }
    let leader = w.current_leader().expect("a leader after 3 s");
    assert_eq!(w.node(leader).map(|n| n.role()), Some(Role::Leader));
}

#[test]
fn a_crash_now_takes_the_leader_down_and_the_others_elect_another() {
    let mut w = world(4);
    w.run_until(Instant(3 * S));
    let old = w.current_leader().expect("a leader after 3 s");
    let term = w.node(old).map(|n| n.term()).expect("up");
    w.inject(Fault::Crash { node: old });
    assert!(w.node(old).is_none(), "the crash is immediate");
    w.run_until(Instant(6 * S));
    let new = w.current_leader().expect("a leader among the two others");
    assert_ne!(new, old);
    assert!(w.node(new).map(|n| n.term()) > Some(term));
    w.inject(Fault::Restart { node: old });
    assert!(w.node(old).is_some(), "the restart is immediate");
    w.run();
    assert_eq!(w.failure(), None);
}

#[test]
fn a_fault_waits_for_its_predicate_then_isolates_whoever_leads() {
    let mut w = world(5);
    let fired: Rc<Cell<Option<(usize, Instant)>>> = Rc::default();
    let seen = fired.clone();
    let when = move |w: &World| {
        let ready = w
            .current_leader()
            .filter(|&l| w.node(l).is_some_and(|n| n.commit_index() >= LogIndex(5)));
        if let Some(l) = ready.filter(|_| seen.get().is_none()) {
            seen.set(Some((l, w.now)));
        }
        ready.is_some()
    };
    w.inject_when(when, Fault::Partition(Shape::IsolateLeader));
    w.run_until(Instant(7 * S));
    let (old, at) = fired.get().expect("a leader committed index 5 within 7 s");
    assert!(at > Instant::ZERO);
    let new = w
        .current_leader()
        .expect("the majority side elects a leader");
    assert_ne!(new, old, "n{} still leads while cut off", old + 1);
    assert_eq!(w.failure(), None);
}

#[test]
fn a_user_invariant_runs_after_every_event() {
    let mut w = world(6);
    let calls = Rc::new(Cell::new(0u64));
    let counted = calls.clone();
    w.add_invariant("counts its calls", move |_| {
        counted.set(counted.get() + 1);
        Ok(())
    });
    w.run();
    assert_eq!(w.failure(), None);
    assert_eq!(calls.get(), w.report().events);
}

#[test]
fn a_broken_user_invariant_fails_the_run_at_once_under_its_name() {
    let mut w = world(7);
    w.add_invariant("commit stays below 5", |w| {
        let top = (0..w.node_count())
            .filter_map(|i| w.node(i))
            .map(|n| n.commit_index())
            .max();
        match top {
            Some(c) if c >= LogIndex(5) => Err(format!("commit reached {c}")),
            _ => Ok(()),
        }
    });
    let ran = w.run_until(Instant(10 * S));
    assert!(!ran, "the run goes on past a broken invariant");
    let f = w.failure().expect("the invariant failed");
    assert_eq!(f.checker, "commit stays below 5");
    assert!(w.now < Instant(10 * S));
}

/// The example of docs/simulation.md ("Driving a run from a test"), kept compiling and passing.
#[test]
fn the_guide_example_runs_clean() {
    let mut w = world(5);
    w.inject_when(
        |w| {
            w.current_leader()
                .and_then(|l| w.node(l))
                .is_some_and(|n| n.commit_index() >= LogIndex(5))
        },
        Fault::Partition(Shape::IsolateLeader),
    );
    w.add_invariant("terms agree", |w| {
        (0..w.node_count())
            .filter_map(|i| w.node(i).map(|n| (i, n)))
            .find(|(i, n)| w.disk(*i).hard_state().term != n.term())
            .map_or(Ok(()), |(i, _)| {
                Err(format!("n{} acts on a term it has not persisted", i + 1))
            })
    });
    w.run_until(Instant(3 * S));
    let leader = w.current_leader().expect("a leader");
    w.inject(Fault::Crash { node: leader });
    while w.step() {}
    assert_eq!(w.failure(), None);
}

#[test]
fn each_node_can_have_its_own_clock_drift() {
    let mut w = world_with(8, |k| k.drift_ppm_fixed = vec![1_000, 0, -1_000]);
    w.run_until(Instant(S));
    let before: Vec<Instant> = (0..3).map(|i| w.local_time(i)).collect();
    w.run_until(Instant(11 * S));
    let elapsed: Vec<i64> = (0..3)
        .map(|i| (w.local_time(i).0 - before[i].0) as i64 - 10 * S as i64)
        .collect();
    // 10 simulated seconds at +1,000 / 0 / -1,000 ppm, to the nanosecond of rounding.
    assert!((elapsed[0] - 10_000_000).abs() <= 1, "{elapsed:?}");
    assert_eq!(elapsed[1], 0);
    assert!((elapsed[2] + 10_000_000).abs() <= 1, "{elapsed:?}");
    w.run();
    assert_eq!(w.failure(), None);
}

#[test]
fn a_crash_can_fall_between_an_append_and_its_fsync() {
    let mut w = world(9);
    let caught: Rc<Cell<Option<(LogIndex, LogIndex)>>> = Rc::default();
    let seen = caught.clone();
    let node = 1;
    // Appended in memory beyond the durable log: its fsync has not completed.
    let when = move |w: &World| {
        let in_memory = w.node(node).map(|n| n.last_index());
        let durable = w.disk(node).last_index();
        let pending = in_memory.is_some_and(|m| m > durable) && w.disk(node).pending_count() > 0;
        if pending && seen.get().is_none() {
            seen.set(in_memory.map(|m| (m, durable)));
        }
        pending
    };
    w.inject_when(when, Fault::Crash { node });
    w.run_until(Instant(7 * S));
    let (in_memory, durable) = caught.get().expect("n2 appended entries within 7 s");
    assert!(in_memory > durable, "{in_memory} was durable already");
    assert!(w.node(node).is_none(), "n2 is down until restarted");
    assert_eq!(
        w.disk(node).pending_count(),
        0,
        "the crash resolved its pending writes"
    );
    w.inject(Fault::Restart { node });
    w.run();
    assert_eq!(w.failure(), None);
}

#[test]
fn a_node_restarts_with_the_options_set_for_it() {
    let mut w = world(10);
    w.run_until(Instant(2 * S));
    let defaults = w.options(2);
    let slow = raft_core::NodeOptions {
        election_timeout: raft_core::Duration::from_millis(
            3 * defaults.election_timeout.as_millis(),
        ),
        ..defaults.clone()
    };
    w.inject(Fault::Crash { node: 2 });
    w.set_options(2, slow.clone());
    w.inject(Fault::Restart { node: 2 });
    let running = w.node(2).map(|n| n.options().election_timeout);
    assert_eq!(running, Some(slow.election_timeout));
    assert_eq!(
        w.node(0).map(|n| n.options().election_timeout),
        Some(defaults.election_timeout)
    );
    w.run();
    assert_eq!(w.failure(), None);
}

#[test]
fn a_held_datagram_arrives_only_when_released() {
    let mut w = world(11);
    w.run_until(Instant(3 * S));
    let leader = w.current_leader().expect("a leader after 3 s");
    let follower = (leader + 1) % 3;
    w.hold_datagrams(move |from, to, _| from == leader && to == follower);
    let (held_from, released_at) = (w.now, Instant(3 * S + S / 2));
    w.run_until(released_at);
    let held = w.held_count();
    assert!(
        held > 0,
        "the leader sent n{} nothing in 500 ms",
        follower + 1
    );
    let prefix = format!("<- Recv {}->{} ", leader + 1, follower + 1);
    let received = |w: &World, from: Instant, to: Instant| {
        w.trace
            .tail(usize::MAX)
            .filter(|r| r.node == Some(follower) && r.at > from && r.at <= to)
            .filter(|r| r.text.contains(&prefix))
            .count()
    };
    assert_eq!(
        received(&w, held_from, released_at),
        0,
        "a held datagram arrived"
    );
    assert_eq!(w.release_held(), held);
    assert_eq!(w.held_count(), 0);
    w.run_until(Instant(released_at.0 + 1));
    assert!(
        received(&w, Instant(released_at.0 - 1), w.now) >= 1,
        "the released datagrams arrive at once"
    );
    w.run();
    assert_eq!(w.failure(), None);
}

/// Every record from now on, as a subscriber sees it.
fn subscribe(w: &mut World) -> Rc<RefCell<Vec<TraceRecord>>> {
    let seen: Rc<RefCell<Vec<TraceRecord>>> = Rc::default();
    let sink = seen.clone();
    w.on_trace(move |r| sink.borrow_mut().push(r.clone()));
    seen
}

#[test]
fn trace_records_carry_facts_a_test_matches_without_parsing_text() {
    let mut w = world(12);
    let before = w.trace.len();
    let seen = subscribe(&mut w);
    w.run_until(Instant(3 * S));
    let seen = seen.borrow();
    assert_eq!(
        seen.len() as u64,
        w.trace.len() - before,
        "one call per record"
    );
    let kept: Vec<&TraceRecord> = w.trace.records().collect();
    assert_eq!(
        &seen[seen.len() - 100..],
        &kept[kept.len() - 100..]
            .iter()
            .map(|r| (*r).clone())
            .collect::<Vec<_>>()[..]
    );
    let leader = w.current_leader().expect("a leader after 3 s");
    let elected = seen.iter().any(|r| {
        r.node == Some(leader)
            && matches!(
                r.fact,
                Fact::RoleChanged {
                    role: Role::Leader,
                    ..
                }
            )
    });
    assert!(elected, "the election is a fact of the leader's node");
    // Every heartbeat delivered was sent before, by its sender, to its receiver.
    for (k, r) in seen.iter().enumerate() {
        if let Fact::MessageDelivered {
            from,
            to,
            term,
            body: body @ MessageBody::Heartbeat { .. },
        } = &r.fact
        {
            let sent = seen[..k].iter().any(|s| {
                s.node == Some(*from)
                    && matches!(&s.fact, Fact::MessageSent { to: t, term: u, body: b, .. } if t == to && u == term && b == body)
            });
            assert!(sent, "delivered but never sent: {}", r.text);
        }
    }
    // Each follower received chunks of entries, appended them, made them
    // durable and applied them.
    for f in (0..3).filter(|&i| i != leader) {
        let of = |p: &dyn Fn(&Fact) -> bool| seen.iter().any(|r| r.node == Some(f) && p(&r.fact));
        assert!(of(
            &|x| matches!(x, Fact::FrameDelivered { frame: FrameKind::Chunk { count, .. }, .. } if *count > 0)
        ));
        assert!(of(&|x| matches!(x, Fact::Appended { .. })));
        assert!(of(&|x| matches!(x, Fact::LogPersisted { .. })));
        assert!(of(&|x| matches!(x, Fact::Applied { .. })));
    }
}

#[test]
fn a_crash_and_a_restart_are_facts_with_what_the_disk_kept() {
    let mut w = world(13);
    w.run_until(Instant(3 * S));
    let seen = subscribe(&mut w);
    w.inject(Fault::Crash { node: 2 });
    w.inject(Fault::Restart { node: 2 });
    let seen = seen.borrow();
    // (Clients waiting on it are answered in between.)
    let facts: Vec<&Fact> = seen
        .iter()
        .map(|r| &r.fact)
        .filter(|f| !matches!(f, Fact::ClientFinished { .. }))
        .collect();
    assert!(
        matches!(facts[0], Fact::Fault(Fault::Crash { node: 2 })),
        "{facts:?}"
    );
    let Fact::Crashed { account } = facts[1] else {
        panic!("{facts:?}")
    };
    assert!(account.kept <= account.pending);
    assert!(matches!(facts[2], Fact::Fault(Fault::Restart { node: 2 })));
    assert!(
        matches!(facts[3], Fact::Started { incarnation: 1, last_index } if *last_index == w.disk(2).last_index()),
        "{facts:?}"
    );
}
