//! What the hot path allocates inside the core, counted by a global
//! allocator: a batch of proposals is gathered into one allocation, and the
//! log, the `AppendLog`, every follower's chunk and every node's `Apply`
//! share it.
// A counting global allocator is the one place that needs `unsafe`.
#![allow(unsafe_code)]

// The one harness of raft-core's tests, shared with `tests/it`.
#[path = "it/harness.rs"]
mod harness;

use bytes::Bytes;
use harness::Cluster;
use raft_core::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Per thread: the test harness runs tests on threads of their own.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: during thread teardown the counter may be gone.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Proposes `batch` commands at the leader and runs the cluster until every
/// node applied them; returns the allocations the nodes' steps made.
fn commit_batch(c: &mut Cluster, batch: u64) -> u64 {
    let leader = c.leader().expect("a leader");
    let payload = Bytes::from(vec![0xab; 256]);
    let proposals = (0..batch)
        .map(|_| Proposal {
            id: c.request_id(),
            data: payload.clone(),
        })
        .collect();
    let before = c.core_allocations();
    c.push(leader, Event::ProposeRequested { proposals });
    c.settle();
    c.clear_completions();
    c.core_allocations() - before
}

fn counting_cluster() -> Cluster {
    let options = NodeOptions {
        snapshot_policy: SnapshotPolicy::NEVER,
        ..NodeOptions::new(NodeId(1))
    };
    let mut c = Cluster::with_options(3, harness::immediate_commit_notices(options));
    c.record_actions(false);
    c.count_allocations(allocations);
    c
}

#[test]
fn a_batch_committed_on_three_nodes_costs_the_core_one_allocation() {
    for batch in [1, 3, 64] {
        let mut c = counting_cluster();
        // Warm up: the queues inside the nodes grow to their working size.
        for _ in 0..32 {
            commit_batch(&mut c, batch);
        }
        let counts: Vec<u64> = (0..8).map(|_| commit_batch(&mut c, batch)).collect();
        assert!(
            counts.iter().all(|&n| n == 1),
            "allocations of the nodes' steps per batch of {batch}: {counts:?}"
        );
        let last = c.node(NodeId(1)).last_index();
        for id in c.ids() {
            assert_eq!(c.node(id).applied_index(), last, "node {id} applied all");
        }
    }
}

#[test]
fn a_batch_is_shared_by_the_log_the_append_every_chunk_and_every_apply() {
    let mut c = Cluster::new(3);
    let leader = c.leader().expect("a leader");
    c.clear_actions();
    let proposals = (0..3)
        .map(|i| Proposal {
            id: RequestId(1000 + i),
            data: Bytes::from(format!("w{i}")),
        })
        .collect();
    c.push(leader, Event::ProposeRequested { proposals });
    c.settle();
    let appended = c
        .host(leader)
        .actions()
        .iter()
        .find_map(|a| match a {
            Action::AppendLog(entries) => Some(entries.clone()),
            _ => None,
        })
        .expect("the leader appended the batch");
    assert_eq!(appended.len(), 3);
    let shares = |entries: &Entries| {
        entries
            .iter()
            .position(|e| e.index == appended[0].index)
            .is_some_and(|i| std::ptr::eq(&entries[i], &appended[0]))
    };
    let mut chunks = 0;
    let mut applies = 0;
    for (id, h) in c.hosts() {
        for a in h.actions() {
            match a {
                Action::SendFrame {
                    frame: Frame::Chunk { entries, .. },
                    ..
                } if !entries.is_empty() => {
                    assert!(shares(entries), "node {id} copied the batch into a chunk");
                    chunks += 1;
                }
                Action::AppendLog(entries) => {
                    assert!(shares(entries), "node {id} copied the batch to append it");
                }
                Action::Apply(entries) => {
                    assert!(shares(entries), "node {id} copied the batch to apply it");
                    applies += 1;
                }
                _ => {}
            }
        }
    }
    assert_eq!(chunks, 2, "one chunk per follower");
    assert_eq!(applies, 3, "one apply per node");
    assert!(
        c.node(leader)
            .log_entries()
            .any(|e| std::ptr::eq(e, &appended[0])),
        "the leader's log holds a copy"
    );
}
