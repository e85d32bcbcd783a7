//! A snapshot transfer cut short by a broken stream resumes on the next
//! stream from the bytes the follower stored, instead of from byte 0.
use crate::harness::*;
use raft_core::*;

fn count(h: &Host, f: impl Fn(&Action) -> bool) -> usize {
    h.actions().iter().filter(|a| f(a)).count()
}

/// The offsets at which `h` stored snapshot chunks, in order.
fn stored_offsets(h: &Host) -> Vec<u64> {
    h.actions()
        .iter()
        .filter_map(|a| match a {
            Action::ReceiveSnapshotChunk { offset, .. } => Some(*offset),
            _ => None,
        })
        .collect()
}

/// The stream budget of [`follower_behind_a_snapshot`].
const BUDGET: u64 = 800;

/// A cluster whose leader compacted past a crashed follower: 120 padded
/// writes, snapshots every 50 entries in 250-byte chunks under a budget of
/// [`BUDGET`]. Returns the cluster, the leader, the follower (still down)
/// and the size of the leader's snapshot.
fn follower_behind_a_snapshot() -> (Cluster, NodeId, NodeId, u64) {
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            stream_budget_bytes: BUDGET,
            snapshot_policy: SnapshotPolicy::every_entries(50),
            snapshot_trailing_entries: 2,
            ..NodeOptions::new(NodeId(1))
        },
    );
    c.set_snapshot_chunk_bytes(250);
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    for i in 0..120 {
        c.propose(format!("write {i:>4} with some padding to make it weigh").as_bytes());
        c.settle();
    }
    let size = c.host(leader).disk.snapshot.as_ref().unwrap().1.len() as u64;
    (c, leader, f, size)
}

/// A follower far behind, a snapshot of many budgets on its way, and the
/// leader-to-follower link cut once `chunks` chunks arrived.
fn transfer_cut_after(chunks: usize) -> (Cluster, NodeId, NodeId, u64) {
    let (mut c, leader, f, size) = follower_behind_a_snapshot();
    assert!(
        size > 4 * BUDGET,
        "a snapshot of many budgets: {size} bytes"
    );
    c.restart(f);
    // One event at a time, so the cut lands in the middle of the transfer.
    step_until_stored(&mut c, f, chunks);
    assert!(
        stored_offsets(c.host(f)).len() >= chunks,
        "the transfer stalled"
    );
    c.cut(leader, f);
    c.run_for(Duration::from_millis(20));
    c.heal();
    (c, leader, f, size)
}

/// Delivers one message or fires the earliest timer at a time until `f` has
/// stored `chunks` chunks of the incoming snapshot (so a cut can land in the
/// middle of a transfer), or 100,000 events have passed.
fn step_until_stored(c: &mut Cluster, f: NodeId, chunks: usize) {
    for _ in 0..100_000 {
        if stored_offsets(c.host(f)).len() >= chunks {
            return;
        }
        if !c.deliver_next() {
            let (due, id) = c
                .ids()
                .into_iter()
                .map(|id| (c.node(id).next_deadline(), id))
                .min()
                .unwrap();
            c.advance_to(due.max(c.now()));
            c.step(id, Event::Tick);
        }
    }
}

#[test]
fn a_broken_transfer_resumes_where_the_follower_stopped() {
    let (mut c, leader, f, size) = transfer_cut_after(6);
    c.run_for(Duration::from_millis(1_000));

    let offsets = stored_offsets(c.host(f));
    assert_eq!(
        offsets.iter().filter(|o| **o == 0).count(),
        1,
        "the transfer never started over: {offsets:?}"
    );
    // Every byte was stored once: the offsets only go up.
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    let resumed = c.host(leader).actions().iter().any(|a| {
        matches!(a, Action::SendSnapshot { offset, first: true, .. } if *offset > 0 && *offset < size)
    });
    assert!(resumed, "the leader resumed the transfer past byte 0");
    assert_eq!(
        count(c.host(f), |a| matches!(a, Action::InstallSnapshot { .. })),
        1
    );
    assert_eq!(c.commands(f).len(), 120);
    c.assert_state_machine_safety();
}

#[test]
fn a_transfer_whose_snapshot_was_replaced_meanwhile_starts_over_with_the_new_one() {
    let (mut c, leader, f, _) = transfer_cut_after(6);
    // While the stream is down, the leader takes a newer snapshot: the
    // follower's offer names one the leader no longer sends.
    c.isolate(f);
    for i in 0..60 {
        c.propose(format!("more {i:>4} with some padding to make it weigh").as_bytes());
        c.settle();
    }
    c.heal();
    c.run_for(Duration::from_millis(1_000));

    let offsets = stored_offsets(c.host(f));
    assert_eq!(
        offsets.iter().filter(|o| **o == 0).count(),
        2,
        "the second snapshot from byte 0: {offsets:?}"
    );
    // The leader did not offer to resume the old snapshot's bytes into the
    // new one (same term, another index): the follower refused nothing.
    for id in [leader, f] {
        let refused: Vec<_> = c
            .host(id)
            .actions()
            .iter()
            .filter(|a| matches!(a, Action::Refused { .. }))
            .collect();
        assert!(refused.is_empty(), "node {id}: {refused:?}");
    }
    assert_eq!(
        count(c.host(f), |a| matches!(a, Action::InstallSnapshot { .. })),
        1
    );
    assert_eq!(c.commands(f).len(), 180);
    c.assert_state_machine_safety();
}

/// Entries follow a snapshot on the same stream without waiting: the
/// leader's step that hands the driver the snapshot's last window goes on
/// to send the entries after it, within what is left of the budget.
#[test]
fn entries_follow_the_last_window_of_a_snapshot_in_the_same_step() {
    let (mut c, leader, f, size) = follower_behind_a_snapshot();
    c.record_steps();
    c.restart(f);
    c.run_for(Duration::from_millis(1_000));
    let steps = c.take_steps();
    let last_window = steps
        .iter()
        .find(|s| {
            s.node == leader
                && s.actions.iter().any(|a| {
                    matches!(a, Action::SendSnapshot { peer, offset, bytes_max, .. }
                        if *peer == f && offset + *bytes_max == size)
                })
        })
        .expect("the snapshot's last window");
    assert!(
        last_window.actions.iter().any(|a| matches!(a,
            Action::SendFrame { peer, frame: Frame::Chunk { entries, .. }, .. }
                if *peer == f && !entries.is_empty())),
        "{:?}",
        last_window.actions
    );
    assert_eq!(c.commands(f), c.commands(leader));
}

/// A resume offer is the follower's word: one naming the leader's snapshot
/// but a byte count no snapshot reaches (a hostile or corrupted peer) must
/// not panic the leader. It sends what it can (the follower's check of the
/// `SnapshotBegin` refuses it), and the follower, once honest again, still
/// gets the snapshot and catches up.
#[test]
fn a_resume_offer_past_any_snapshot_size_does_not_panic_the_leader() {
    let (mut c, leader, f, _) = follower_behind_a_snapshot();
    let meta = c.node(leader).snapshot().cloned().expect("a snapshot");
    for received in [u64::MAX, u64::MAX - 1, u64::MAX - BUDGET / 2] {
        c.clear_actions();
        let open = StreamOpen {
            cluster_id: c.node(leader).cluster_id().unwrap(),
            follower: f,
            leader,
            term: c.node(leader).term(),
            probe_index: LogIndex(1),
            probe_term: c.node(leader).term_at(LogIndex(1)).unwrap_or(Term(1)),
            commit: LogIndex(0),
            resume: Some(SnapshotResume {
                index: meta.index,
                term: meta.term,
                received,
            }),
        };
        c.step(
            leader,
            Event::StreamOpened {
                stream: StreamId(0xbad0 + received % 7),
                open,
            },
        );
        let stream = StreamId(0xbad0 + received % 7);
        let windows: Vec<u64> = c
            .host(leader)
            .actions()
            .iter()
            .filter_map(|a| match a {
                Action::SendSnapshot {
                    stream: s, offset, ..
                } if *s == stream => Some(*offset),
                _ => None,
            })
            .collect();
        assert_eq!(windows, vec![0], "the offer ignored: from byte 0");
        // The hostile follower acks the window as if it had stored it.
        c.step(
            leader,
            Event::FrameReceived {
                stream,
                frame: Frame::SnapshotAck {
                    received,
                    size: received,
                },
            },
        );
    }
    c.restart(f);
    c.run_for(Duration::from_millis(1_000));
    assert_eq!(c.commands(f), c.commands(leader));
    c.assert_state_machine_safety();
}

/// The leader takes a newer snapshot (and compacts behind it) while an
/// older one streams to a follower on an open stream: the driver no longer
/// holds the old one, the transfer starts over with the new one, and the
/// follower ends with every command, applied once, in order.
#[test]
fn a_snapshot_taken_while_another_streams_on_an_open_stream_replaces_it() {
    let (mut c, leader, f, _) = follower_behind_a_snapshot();
    let first = c.node(leader).snapshot().cloned().unwrap();
    c.restart(f);
    // Into the transfer: some chunks stored, not all.
    step_until_stored(&mut c, f, 3);
    assert!(stored_offsets(c.host(f)).len() >= 3);
    // Writes while it streams (what reaches the follower held back, its
    // stream still open): the leader snapshots anew and compacts.
    let mut held = Vec::new();
    for i in 0..60 {
        c.propose(format!("more {i:>4} with some padding to make it weigh").as_bytes());
        loop {
            held.extend(c.take_queued(|to, _| to == f));
            if !c.deliver_next() {
                break;
            }
        }
    }
    assert!(c.node(leader).snapshot().unwrap().index > first.index);
    assert!(c.node(leader).status().first_index > first.index.next());
    for (to, event) in held {
        c.push(to, event);
    }
    c.run_for(Duration::from_millis(1_000));
    let installed: Vec<SnapshotMeta> = c
        .host(f)
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::InstallSnapshot { meta } => Some(meta.clone()),
            _ => None,
        })
        .collect();
    let offsets = stored_offsets(c.host(f));
    assert_eq!(
        offsets.iter().filter(|o| **o == 0).count(),
        2,
        "started over once, with the new snapshot: {offsets:?}"
    );
    assert_eq!(installed, [c.node(leader).snapshot().unwrap().clone()]);
    assert_eq!(c.commands(f).len(), 180);
    assert_eq!(c.commands(f), c.commands(leader));
    c.assert_state_machine_safety();
}
