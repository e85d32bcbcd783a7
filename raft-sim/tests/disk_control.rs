//! A test's hand on one node's disk, through the public API only: fsyncs
//! held and forced, and bit rot of a synced entry, which the node's next
//! start refuses while the others go on.

use raft_core::{EntryKind, Instant, LogIndex};
use raft_sim::disk::{DiskDamage, RotError};
use raft_sim::scenario::{Fault, Knobs, Scenario};
use raft_sim::trace::{Fact, Trace};
use raft_sim::world::World;
use std::cell::RefCell;
use std::rc::Rc;

const S: u64 = 1_000_000_000;

fn world(seed: u64) -> World {
    let knobs = Knobs {
        nodes: 3,
        duration_ms: 20_000,
        chaos_ms: 8_000,
        ..Knobs::default()
    };
    let scenario = Scenario {
        seed,
        knobs,
        faults: Vec::new(),
    };
    World::new(scenario, Trace::new(0, false))
}

/// Every fact about node `node` recorded from now on.
fn facts_of(w: &mut World, node: usize) -> Rc<RefCell<Vec<Fact>>> {
    let seen: Rc<RefCell<Vec<Fact>>> = Rc::default();
    let sink = seen.clone();
    w.on_trace(move |r| {
        if r.node == Some(node) {
            sink.borrow_mut().push(r.fact.clone())
        }
    });
    seen
}

#[test]
fn a_node_whose_fsyncs_are_held_makes_nothing_durable_until_told() {
    let mut w = world(41);
    w.run_until(Instant(3 * S));
    let leader = w.current_leader().expect("a leader after 3 s");
    let follower = (leader + 1) % 3;
    let seen = facts_of(&mut w, follower);
    w.hold_fsyncs(follower, true);
    let durable = w.disk(follower).last_index();
    let commit = w.node(leader).expect("up").commit_index();
    w.run_until(Instant(4 * S));
    let appended = w.node(follower).expect("up").last_index();
    assert!(appended > durable, "the follower appended nothing in 1 s");
    assert_eq!(w.disk(follower).last_index(), durable, "nothing synced");
    assert!(w.disk(follower).pending_count() > 0);
    assert!(
        !seen
            .borrow()
            .iter()
            .any(|f| matches!(f, Fact::LogPersisted { .. })),
        "a held disk reported a write durable"
    );
    assert!(
        w.node(leader).expect("up").commit_index() > commit,
        "the leader and the other follower commit without it"
    );
    assert!(w.fsync_now(follower));
    assert_eq!(w.disk(follower).pending_count(), 0);
    assert!(w.disk(follower).last_index() >= appended);
    let persisted = seen.borrow().iter().any(
        |f| matches!(f, Fact::LogPersisted { index, .. } if *index == w.disk(follower).last_index()),
    );
    assert!(persisted, "the forced fsync is reported to the node");
    // Still held: the writes after the forced fsync wait again.
    w.run_until(Instant(5 * S));
    assert!(w.disk(follower).pending_count() > 0);
    w.hold_fsyncs(follower, false);
    w.run();
    assert_eq!(w.failure(), None);
    assert_eq!(w.disk(follower).pending_count(), 0);
}

#[test]
fn a_rotten_synced_entry_keeps_its_node_down_and_the_others_go_on() {
    let mut w = world(42);
    w.run_until(Instant(4 * S));
    let leader = w.current_leader().expect("a leader after 4 s");
    let victim = (leader + 1) % 3;
    let commit = w.node(leader).expect("up").commit_index();
    // A client write the victim has synced and the cluster has committed.
    let entry = w
        .disk(victim)
        .recovered_entries()
        .into_iter()
        .map(|e| e.entry)
        .find(|e| e.kind == EntryKind::Command && e.index <= commit && !e.data.is_empty())
        .expect("a committed write on the victim's disk after 4 s");
    assert_eq!(
        w.rot_synced_byte(victim, LogIndex(commit.0 + 10_000), 0),
        Err(RotError::NotDurable(LogIndex(commit.0 + 10_000)))
    );
    w.rot_synced_byte(victim, entry.index, 1)
        .expect("a byte of a synced entry rots");
    let seen = facts_of(&mut w, victim);
    w.inject(Fault::Crash { node: victim });
    w.inject(Fault::Restart { node: victim });
    assert!(w.node(victim).is_none(), "the node refused to start");
    let damage = DiskDamage::CorruptRecord {
        index: entry.index,
        term: entry.term,
        offset: 1,
    };
    assert_eq!(w.start_refusal(victim), Some(damage));
    assert!(
        seen.borrow().contains(&Fact::StartRefused { damage }),
        "the refusal is in the trace"
    );
    let before = w.node(leader).map(|n| n.commit_index());
    // The heal restarts every node: the victim refuses again; the two others
    // stay safe and live, and the end judgments pass without it.
    w.run();
    assert_eq!(w.failure(), None);
    assert!(w.node(victim).is_none());
    let after = (0..3)
        .filter_map(|i| w.node(i))
        .map(|n| n.commit_index())
        .max();
    assert!(
        after > before,
        "the others committed on: {before:?} -> {after:?}"
    );
}
