//! Memory bounded in bytes: a node keeps at most `log_cache_bytes_max` bytes
//! of durable entries in memory and reads older ones back through the
//! driver (`Action::ReadLog`), for a follower's stream and for the apply
//! path; a driver may recover without loading the log's front
//! (`RecoveredState::stored`).
use crate::harness::*;
use raft_core::*;

const CACHE: u64 = 2048;
const VALUE: usize = 100;

fn small_cache() -> NodeOptions {
    immediate_commit_notices(NodeOptions {
        log_cache_bytes_max: CACHE,
        snapshot_policy: SnapshotPolicy::NEVER,
        ..NodeOptions::new(NodeId(1))
    })
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("w{i:05}").into_bytes();
    v.resize(VALUE, b'.');
    v
}

/// Every node holds at most the budget plus one append batch (here, one
/// proposal) of durable entries, and every entry it holds is durable or newer.
fn assert_within_budget(c: &Cluster) {
    let one = LogEntry {
        index: LogIndex(1),
        term: Term(1),
        kind: EntryKind::Command,
        data: value(0).into(),
    }
    .budget_bytes();
    for id in c.ids() {
        if !c.host(id).is_up() {
            continue;
        }
        let status = c.node(id).status();
        assert!(
            status.cached_bytes <= CACHE + one,
            "node {id} holds {} bytes, budget {CACHE}",
            status.cached_bytes
        );
        assert!(
            status.cache_start <= status.durable.next(),
            "node {id}: {status:?}"
        );
    }
}

#[test]
fn a_follower_far_behind_catches_up_from_entries_read_back() {
    let mut c = Cluster::with_options(3, small_cache());
    let leader = c.leader().expect("a leader");
    let behind = c.others(leader)[0];
    c.isolate(behind);
    for i in 0..200 {
        c.propose(&value(i));
        c.settle();
        assert_within_budget(&c);
    }
    let status = c.node(leader).status();
    assert!(
        status.cache_start > LogIndex(150),
        "the leader still holds entries from {}",
        status.cache_start
    );
    assert_eq!(c.log_reads(), 0, "nothing needed reading yet");
    c.heal();
    c.run_for(Duration::from_millis(2_000));
    assert!(c.log_reads() > 0, "the follower's entries came from reads");
    // Reads ask only for evicted entries (durable, so what the disk holds
    // whatever is still on its way to it), never past the cache's start,
    // and for as many as a batch carries: a whole batch, or every evicted
    // entry left.
    let cache_start = c.node(leader).status().cache_start;
    let batch = c.options().batch_entries_max;
    for a in c.host(leader).actions() {
        if let Action::ReadLog {
            from, count_max, ..
        } = a
        {
            let end = from.0 + *count_max as u64;
            assert!(
                end <= cache_start.0,
                "a read from {from} of {count_max} reaches the cache at {cache_start}"
            );
            assert!(
                *count_max == batch || end == cache_start.0,
                "a read from {from} of {count_max}: neither a batch ({batch}) nor up to the cache at {cache_start}"
            );
        }
    }
    assert_within_budget(&c);
    let all = c.commands(leader);
    assert_eq!(all.len(), 200);
    assert_eq!(c.commands(behind), all, "the follower applied every entry");
    c.assert_state_machine_safety();
}

#[test]
fn after_a_restart_of_every_node_committed_entries_are_applied_from_reads() {
    let mut c = Cluster::with_options(3, small_cache());
    for i in 0..100 {
        c.propose(&value(i));
        c.settle();
    }
    let before = c.commands(c.leader().unwrap());
    assert_eq!(before.len(), 100);
    let ids = c.ids();
    for &id in &ids {
        c.crash(id);
    }
    for &id in &ids {
        // The harness recovers within the budget: the log's front stays
        // on its disk, described by `StoredEntries`.
        c.restart(id);
        let status = c.node(id).status();
        assert!(status.cache_start > LogIndex(50), "node {id}: {status:?}");
    }
    let reads = c.log_reads();
    c.run_for(Duration::from_millis(3_000));
    assert!(c.log_reads() > reads, "the apply path read entries back");
    for &id in &ids {
        let applied = c.commands(id);
        assert_eq!(
            applied[..100],
            before[..],
            "node {id} re-applied the same log"
        );
    }
    c.propose(b"after");
    c.settle();
    assert_within_budget(&c);
    c.assert_state_machine_safety();
}

/// A cluster of small caches after `writes` writes, one follower of its
/// leader crashed and restarted: returns it, its leader and the follower.
fn follower_restarted_after(writes: usize) -> (Cluster, NodeId, NodeId) {
    let mut c = Cluster::with_options(3, small_cache());
    for i in 0..writes {
        c.propose(&value(i));
        c.settle();
    }
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    c.restart(f);
    (c, leader, f)
}

/// The apply path of a restarted follower reads back the committed entries
/// that are not in memory, and only those: a read reaches no further than
/// the first cached entry (the driver's log may not hold those yet, and the
/// node has them anyway).
#[test]
fn a_restarted_follower_applies_its_evicted_entries_from_reads_that_stop_at_its_cache() {
    let (mut c, leader, f) = follower_restarted_after(100);
    let cache_start = c.node(f).status().cache_start;
    assert!(cache_start > LogIndex(50), "{:?}", c.node(f).status());
    c.host_mut(f).clear_actions();
    let reads = c.log_reads();
    c.run_until("the follower applies the log again", |c| {
        c.commands(f).len() >= 100
    });
    assert!(c.log_reads() > reads, "the apply path read entries back");
    assert_eq!(c.node(f).status().cache_start, cache_start, "nothing new");
    for a in c.host(f).actions() {
        if let Action::ReadLog {
            from, count_max, ..
        } = a
        {
            assert!(
                from.0 + *count_max as u64 <= cache_start.0,
                "a read from {from} of {count_max} reaches the cache at {cache_start}"
            );
        }
    }
    assert_eq!(c.commands(f), c.commands(leader));
}

/// However few entries lie outside the cache after a restart (down to one,
/// a read of a single entry), the apply path reads them and goes on.
#[test]
fn a_restarted_follower_applies_however_few_evicted_entries_it_has() {
    let mut single_entry_read = false;
    for writes in 10..=24 {
        let (mut c, leader, f) = follower_restarted_after(writes);
        single_entry_read |= c.node(f).status().cache_start == LogIndex(2);
        c.run_until("the follower applies the log again", |c| {
            c.commands(f).len() >= writes
        });
        assert_eq!(c.commands(f), c.commands(leader), "{writes} writes");
    }
    assert!(single_entry_read, "no restart left exactly entry 1 outside");
}

#[test]
fn a_repeated_bootstrap_is_recognised_with_entry_one_evicted() {
    let mut c = Cluster::with_options(3, small_cache());
    repeat_bootstrap_with_entry_one_evicted(&mut c);
}

#[test]
fn a_repeated_bootstrap_is_recognised_with_entry_one_evicted_behind_a_snapshot() {
    // A snapshot folds entry 1's configuration into its own; a trailing
    // window keeps entry 1 in the log, evicted from memory.
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            snapshot_policy: SnapshotPolicy::every_entries(20),
            snapshot_trailing_entries: 1_000,
            ..small_cache()
        },
    );
    repeat_bootstrap_with_entry_one_evicted(&mut c);
}

fn repeat_bootstrap_with_entry_one_evicted(c: &mut Cluster) {
    for i in 0..50 {
        c.propose(&value(i));
        c.settle();
    }
    let leader = c.leader().unwrap();
    assert!(c.node(leader).status().cache_start > LogIndex(1));
    // ... and after a restart, with entry 1 left on the disk (`stored`).
    c.crash(leader);
    c.restart(leader);
    assert!(c.node(leader).status().cache_start > LogIndex(1));
    let bootstrap = Bootstrap::new(
        BOOTSTRAP_TOKEN,
        (1..=3).map(|i| (NodeId(i), address(NodeId(i)))),
    )
    .unwrap();
    let id = c.request_id();
    c.push(leader, Event::BootstrapRequested { id, bootstrap });
    c.settle();
    assert!(
        matches!(c.result(id), Some(Ok(Completion::Initialized { .. }))),
        "a repeat is a no-op: {:?}",
        c.result(id)
    );
    let other = Bootstrap::new(
        BOOTSTRAP_TOKEN + 1,
        (1..=3).map(|i| (NodeId(i), address(NodeId(i)))),
    )
    .unwrap();
    let id = c.request_id();
    c.push(
        leader,
        Event::BootstrapRequested {
            id,
            bootstrap: other,
        },
    );
    c.settle();
    assert!(matches!(c.result(id), Some(Err(_))), "{:?}", c.result(id));
}

#[test]
fn a_stale_read_answer_is_dropped() {
    let mut c = Cluster::with_options(3, small_cache());
    for i in 0..60 {
        c.propose(&value(i));
        c.settle();
    }
    let leader = c.leader().unwrap();
    let before = c.node(leader).status();
    // An answer nobody asked for (no stream reads, no apply read pending).
    let entries = c.host(leader).disk.entries[..3].iter().cloned().collect();
    c.push(
        leader,
        Event::LogRead {
            reader: LogReader::Apply,
            from: LogIndex(1),
            entries,
        },
    );
    c.settle();
    assert_eq!(c.node(leader).status().applied, before.applied);
    c.assert_state_machine_safety();
}

#[test]
#[should_panic(expected = "the driver's storage disagrees with what it reported durable")]
fn a_driver_answering_with_entries_that_are_not_the_log_stops_the_node() {
    let mut c = Cluster::with_options(3, small_cache());
    let leader = c.leader().unwrap();
    let behind = c.others(leader)[0];
    c.isolate(behind);
    for i in 0..100 {
        c.propose(&value(i));
        c.settle();
    }
    c.heal();
    // Run until the leader's driver answers a stream read, then forge the
    // answer: the same indexes, a later term.
    for _ in 0..100_000 {
        let forged = c
            .take_queued(|_, e| matches!(e, Event::LogRead { entries, .. } if !entries.is_empty()));
        if let Some((
            to,
            Event::LogRead {
                reader,
                from,
                entries,
            },
        )) = forged.into_iter().next()
        {
            let entries = entries
                .iter()
                .map(|e| LogEntry {
                    term: Term(e.term.0 + 1),
                    ..e.clone()
                })
                .collect();
            c.push(
                to,
                Event::LogRead {
                    reader,
                    from,
                    entries,
                },
            );
            c.settle();
            return;
        }
        if !c.deliver_next() {
            // Time passes, one event at a time (`wake_next` would deliver
            // the answer before the test sees it).
            c.advance(Duration::from_millis(10));
            for id in c.ids() {
                c.push(id, Event::Tick);
            }
        }
    }
    panic!("no read was answered");
}

/// A follower restarted with most of its log evicted applies it from reads;
/// `forge` may replace the driver's answer to one of them (given the node,
/// the last index it takes from a read, and the answer), once. Runs until
/// the follower applied all 100 commands; returns the cluster, the leader
/// and the follower, and whether an answer was replaced.
fn with_a_forged_apply_read(
    mut forge: impl FnMut(&Node, LogIndex, &Entries) -> Option<Entries>,
) -> (Cluster, NodeId, NodeId, bool) {
    let mut c = Cluster::with_options(3, small_cache());
    for i in 0..100 {
        c.propose(&value(i));
        c.settle();
    }
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    c.crash(f);
    c.restart(f);
    let mut forged = false;
    for _ in 0..100_000 {
        if c.commands(f).len() >= 100 {
            break;
        }
        if !forged {
            let answers = c.take_queued(|to, e| {
                to == f
                    && matches!(e, Event::LogRead { reader: LogReader::Apply, entries, .. }
                        if !entries.is_empty())
            });
            for (to, event) in answers {
                let Event::LogRead {
                    reader,
                    from,
                    entries,
                } = event
                else {
                    unreachable!("taken above")
                };
                let node = c.node(f);
                let through = node.commit_index().min(node.status().cache_start.prev());
                let entries = match forge(node, through, &entries) {
                    Some(other) => {
                        forged = true;
                        other
                    }
                    None => entries,
                };
                c.push(
                    to,
                    Event::LogRead {
                        reader,
                        from,
                        entries,
                    },
                );
            }
        }
        if !c.deliver_next() {
            c.advance(Duration::from_millis(10));
            for id in c.ids() {
                c.push(id, Event::Tick);
            }
        }
    }
    (c, leader, f, forged)
}

/// A driver's answer to a read may carry more entries than were asked for;
/// the node takes only those it asked for (committed, before its cache) and
/// applies the rest from its own log.
#[test]
fn entries_a_read_answer_carries_past_what_was_asked_are_ignored() {
    // The answer that ends right before the cache, lengthened with entries
    // of the log's next indexes and terms but other data.
    let (c, leader, f, forged) = with_a_forged_apply_read(|node, through, entries| {
        if entries.last()?.index != through {
            return None;
        }
        let extra = (through.0 + 1..=through.0 + 3)
            .map(LogIndex)
            .filter_map(|index| {
                Some(LogEntry {
                    index,
                    term: node.term_at(index)?,
                    kind: EntryKind::Command,
                    data: b"not asked for".to_vec().into(),
                })
            });
        Some(entries.iter().cloned().chain(extra).collect())
    });
    assert!(forged, "no read answer ended right before the cache");
    assert_eq!(c.commands(f), c.commands(leader));
    c.assert_state_machine_safety();
}

/// The harness's safety check notices a node that applied other commands
/// than the others (here its driver read back other data under the same
/// indexes and terms, which the node cannot tell).
#[test]
#[should_panic(expected = "applied a different sequence")]
fn the_state_machine_safety_check_notices_a_node_that_applied_other_commands() {
    let (c, _, _, forged) = with_a_forged_apply_read(|_, _, entries| {
        let other = entries.iter().map(|e| LogEntry {
            data: b"other data".to_vec().into(),
            ..e.clone()
        });
        Some(other.collect())
    });
    assert!(forged);
    c.assert_state_machine_safety();
}

/// A follower 40 entries behind, with the leader's cache evicted, back in
/// touch: delivers one event at a time until the leader's driver answers a
/// read for the follower's stream, and holds that answer back. Returns the
/// leader, the follower and the answer.
fn held_stream_read(c: &mut Cluster) -> (NodeId, NodeId, Event) {
    let leader = c.leader().expect("a leader");
    let behind = c.others(leader)[0];
    c.isolate(behind);
    for i in 0..40 {
        c.propose(&value(i));
        c.settle();
    }
    assert_eq!(c.node(leader).status().first_index, LogIndex(1));
    c.heal();
    for _ in 0..100_000 {
        let held = c.take_queued(|to, e| {
            to == leader
                && matches!(
                    e,
                    Event::LogRead {
                        reader: LogReader::Stream { .. },
                        ..
                    }
                )
        });
        if let Some((_, answer)) = held.into_iter().next() {
            return (leader, behind, answer);
        }
        if !c.deliver_next() {
            c.advance(Duration::from_millis(10));
            for id in c.ids() {
                c.push(id, Event::Tick);
            }
        }
    }
    panic!("no read for the stream");
}

/// A stream's read that the driver answers only after the leader compacted
/// past it (the answer holds entries the log no longer has): the leader
/// drops it and sends the follower its snapshot instead.
#[test]
fn a_stream_read_answered_after_the_leader_compacted_past_it_gives_way_to_the_snapshot() {
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            snapshot_policy: SnapshotPolicy::every_entries(60),
            snapshot_trailing_entries: 0,
            ..small_cache()
        },
    );
    let (leader, behind, answer) = held_stream_read(&mut c);
    let Event::LogRead { from, .. } = answer else {
        unreachable!("a read answer")
    };
    // Writes commit on the other follower until a snapshot compacts the
    // leader's log past the read; then the answer arrives.
    let mut i = 40;
    while c.node(leader).status().first_index <= from {
        c.propose(&value(i));
        c.settle();
        i += 1;
    }
    c.push(leader, answer);
    c.run_for(Duration::from_millis(2_000));
    assert!(
        c.host(behind)
            .actions()
            .iter()
            .any(|a| matches!(a, Action::InstallSnapshot { .. })),
        "the follower caught up by the snapshot"
    );
    assert_eq!(c.commands(behind), c.commands(leader));
    c.assert_state_machine_safety();
}

/// A driver that answers a stream's read with no entries (its storage found
/// none, say, for a moment) is asked again; the follower still catches up.
#[test]
fn a_stream_read_answered_with_no_entries_is_asked_again() {
    let mut c = Cluster::with_options(3, small_cache());
    let (leader, behind, answer) = held_stream_read(&mut c);
    let Event::LogRead { reader, from, .. } = answer else {
        unreachable!("a read answer")
    };
    let reads = c.log_reads();
    c.push(
        leader,
        Event::LogRead {
            reader,
            from,
            entries: Entries::new(),
        },
    );
    c.run_for(Duration::from_millis(2_000));
    assert!(c.log_reads() > reads, "read again");
    assert_eq!(c.commands(behind), c.commands(leader));
    assert_eq!(c.commands(behind).len(), 40);
    c.assert_state_machine_safety();
}

/// Delivers one queued event, or lets 10 ms pass with a tick to every node
/// when none is queued.
fn step(c: &mut Cluster) {
    if !c.deliver_next() {
        c.advance(Duration::from_millis(10));
        for id in c.ids() {
            c.push(id, Event::Tick);
        }
    }
}

/// A restarted follower reads its log back to apply it; the answer to its
/// read is late, and meanwhile the leader compacted past the follower's log
/// and sent it a snapshot. An answer that arrives while the snapshot
/// installs is dropped: the follower applies the snapshot, then the entries
/// after it, each once and in order.
#[test]
fn an_apply_read_answered_while_a_snapshot_installs_is_dropped() {
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            snapshot_policy: SnapshotPolicy::every_entries(60),
            snapshot_trailing_entries: 0,
            ..small_cache()
        },
    );
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    for i in 0..40 {
        c.propose(&value(i));
        c.settle();
    }
    c.crash(f);
    c.restart(f);
    let apply_read = |to: NodeId, e: &Event| {
        to == f
            && matches!(
                e,
                Event::LogRead {
                    reader: LogReader::Apply,
                    ..
                }
            )
    };
    let mut held = Vec::new();
    for _ in 0..100_000 {
        held = c.take_queued(apply_read);
        if !held.is_empty() {
            break;
        }
        step(&mut c);
    }
    assert_eq!(held.len(), 1, "one apply read at a time");
    c.isolate(f);
    let mut i = 40;
    while c.node(leader).status().first_index <= c.node(f).last_index() {
        c.propose(&value(i));
        c.settle();
        i += 1;
    }
    c.heal();
    c.host_mut(f).clear_actions();
    let mut installed = Vec::new();
    for _ in 0..100_000 {
        installed = c.take_queued(|to, e| to == f && matches!(e, Event::SnapshotInstalled { .. }));
        if !installed.is_empty() {
            break;
        }
        step(&mut c);
    }
    assert_eq!(installed.len(), 1, "the follower installs the snapshot");
    // The read's answer arrives before the driver reports the install done.
    for (to, event) in held.into_iter().chain(installed) {
        c.push(to, event);
    }
    c.run_for(Duration::from_millis(2_000));
    assert_eq!(c.commands(f), c.commands(leader));
    assert_eq!(c.commands(f).len(), i);
    c.assert_state_machine_safety();
}
