//! Measures reading a write-ahead log back: what `Action::ReadLog` costs and
//! what recovery within a memory budget holds. Prints one JSON object.
//!
//! ```text
//! cargo run --release -p raft-io-std --example wal_read -- write DIR ENTRIES ENTRY_BYTES
//! cargo run --release -p raft-io-std --example wal_read -- read DIR
//! cargo run --release -p raft-io-std --example wal_read -- recover DIR CACHE_BYTES
//! ```
//!
//! * `write`: a log of `ENTRIES` commands of `ENTRY_BYTES` each, appended in
//!   batches of 256 with one sync each.
//! * `read`: reads the whole log as a follower's catch-up does (1,024 entries
//!   or 1 MiB per read), then 10,000 reads of 16 entries or 1 MiB from pseudo-random
//!   indexes (from the page cache: the file was just written or read).
//! * `recover`: opens the log keeping only `CACHE_BYTES` of entries in memory
//!   (`u64::MAX`: all of them), and reports the time and the process's peak
//!   resident memory (`VmHWM`, Linux only). Run it in its own process per
//!   budget, since the peak is the process's.

use bytes::Bytes;
use raft_core::{EntryKind, LogEntry, LogIndex, Term};
use raft_io_std::storage::{Wal, WalOptions};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str { args.get(i).map(String::as_str).unwrap_or_else(|| usage()) };
    let number = |i: usize| -> u64 { arg(i).parse().unwrap_or_else(|_| usage()) };
    match arg(0) {
        "write" => write(arg(1), number(2), number(3) as usize),
        "read" => read(arg(1)),
        "recover" => recover(arg(1), number(2)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: wal_read write DIR ENTRIES ENTRY_BYTES | read DIR | recover DIR CACHE_BYTES");
    std::process::exit(2)
}

fn write(dir: &str, entries: u64, entry_bytes: usize) {
    let (mut wal, _) = Wal::open(dir).expect("open the log");
    let data = Bytes::from(vec![b'x'; entry_bytes]);
    let started = Instant::now();
    let mut next = wal.last_index().0 + 1;
    let end = next + entries;
    while next < end {
        let batch: Vec<LogEntry> = (next..end.min(next + 256))
            .map(|i| LogEntry {
                index: LogIndex(i),
                term: Term(1),
                kind: EntryKind::Command,
                data: data.clone(),
            })
            .collect();
        next += batch.len() as u64;
        wal.append(&batch).expect("append");
        wal.sync().expect("sync");
    }
    println!(
        "{{\"entries\": {entries}, \"entry_bytes\": {entry_bytes}, \"segments\": {}, \"write_s\": {:.3}}}",
        wal.segment_count(),
        started.elapsed().as_secs_f64()
    );
}

fn read(dir: &str) {
    let (wal, _) = Wal::open_with(dir, WalOptions::default()).expect("open the log");
    let (first, last) = (wal.first_index().0, wal.last_index().0);
    let started = Instant::now();
    let (mut from, mut entries, mut bytes, mut reads) = (first, 0u64, 0u64, 0u64);
    while from <= last {
        let got = wal.read(LogIndex(from), 1024, 1 << 20).expect("read");
        from += got.len() as u64;
        entries += got.len() as u64;
        bytes += got.iter().map(|e| e.data.len() as u64).sum::<u64>();
        reads += 1;
    }
    let sequential_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let point_reads = 10_000;
    for _ in 0..point_reads {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let from = first + x % (last - first + 1);
        wal.read(LogIndex(from), 16, 1 << 20).expect("read");
    }
    let point_s = started.elapsed().as_secs_f64();
    println!(
        "{{\"sequential\": {{\"reads\": {reads}, \"entries\": {entries}, \"mib_per_s\": {:.1}, \"entries_per_s\": {:.0}}}, \
         \"point_reads_of_16_or_1mib\": {{\"reads\": {point_reads}, \"us_each\": {:.1}}}}}",
        bytes as f64 / (1 << 20) as f64 / sequential_s,
        entries as f64 / sequential_s,
        point_s * 1e6 / point_reads as f64
    );
}

fn recover(dir: &str, cache_bytes: u64) {
    let started = Instant::now();
    let (wal, recovered) =
        Wal::open_within(dir, WalOptions::default(), cache_bytes).expect("open the log");
    let held: u64 = recovered.entries.iter().map(LogEntry::budget_bytes).sum();
    println!(
        "{{\"cache_bytes\": {cache_bytes}, \"last_index\": {}, \"entries_held\": {}, \"bytes_held\": {held}, \
         \"term_runs_stored\": {}, \"recover_s\": {:.3}, \"peak_rss_kib\": {}}}",
        wal.last_index(),
        recovered.entries.len(),
        recovered.stored.as_ref().map_or(0, |s| s.term_starts.len()),
        started.elapsed().as_secs_f64(),
        peak_rss_kib().map_or("null".to_string(), |k| k.to_string())
    );
}

/// The process's peak resident set, from `/proc/self/status` (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
