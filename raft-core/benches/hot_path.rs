//! The hot path: committed entries per second through propose -> stream ->
//! ack -> commit, three nodes wired in memory, 256-byte entries, proposals in
//! batches of 1, 64 and 1024; plus allocations per committed entry, counted
//! by a global allocator and printed as JSON.
#![allow(missing_docs)]
// A counting global allocator is the one place that needs `unsafe`.
#![allow(unsafe_code)]

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use raft_core::testing::Cluster;
use raft_core::{Event, NodeOptions, Proposal, SnapshotPolicy};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ENTRY_BYTES: usize = 256;

fn cluster() -> Cluster {
    let opts = NodeOptions {
        snapshot_policy: SnapshotPolicy::NEVER,
        ..NodeOptions::new(raft_core::NodeId(1))
    };
    let mut c = Cluster::with_options(3, opts);
    c.record_actions(false);
    c
}

/// Proposes one batch at the leader and runs the cluster until it committed.
fn commit_batch(c: &mut Cluster, payload: &Bytes, batch: usize) {
    let leader = c.leader().expect("a leader");
    let proposals = (0..batch)
        .map(|_| Proposal {
            id: c.request_id(),
            data: payload.clone(),
        })
        .collect();
    c.push(leader, Event::ProposeRequested { proposals });
    c.settle();
    c.clear_completions();
}

fn bench(criterion: &mut Criterion) {
    let payload = Bytes::from(vec![0xabu8; ENTRY_BYTES]);
    let mut group = criterion.benchmark_group("propose_to_commit_3_nodes");
    for batch in [1usize, 64, 1024] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            let mut c = cluster();
            b.iter(|| commit_batch(&mut c, &payload, batch));
        });
    }
    group.finish();
}

/// Allocations per committed entry, measured outside criterion so the count
/// covers exactly the work of committing (three nodes' worth of stepping).
fn allocations_per_entry() {
    let payload = Bytes::from(vec![0xabu8; ENTRY_BYTES]);
    for batch in [1usize, 64, 1024] {
        let mut c = cluster();
        commit_batch(&mut c, &payload, batch); // warm up buffers
        let rounds = (4096 / batch).max(8);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..rounds {
            commit_batch(&mut c, &payload, batch);
        }
        let allocs = ALLOCATIONS.load(Ordering::Relaxed) - before;
        let entries = (rounds * batch) as f64;
        println!(
            "{{\"bench\":\"allocations_per_committed_entry\",\"batch\":{batch},\"entries\":{entries},\"allocations_per_entry\":{:.2}}}",
            allocs as f64 / entries
        );
    }
}

fn main() {
    allocations_per_entry();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
