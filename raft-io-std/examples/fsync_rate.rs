//! Measures how fast this disk makes writes durable, and what group commit
//! makes of it. Prints one JSON object.
//!
//! ```text
//! cargo run --release -p raft-io-std --example fsync_rate -- [--dir PATH] [--seconds N] [--payload-bytes N]
//! ```
//!
//! * `raw`: append 4 KiB to a file and `fdatasync`, in a loop.
//! * `wal_sync_each`: append one entry to a [`Wal`] and sync it, in a loop
//!   (the latency of one durable append with no concurrency).
//! * `group_commit`: one thread submits one-entry appends to a [`LogWriter`] as
//!   fast as the bounded queue takes them; the writer batches them per fsync.
//!
//! The directory defaults to a fresh one under the system temp dir (which may be
//! a RAM disk on some systems: pass `--dir` on the disk you care about).

use bytes::Bytes;
use raft_core::{EntryKind, LogEntry, LogIndex, Term};
use raft_io_std::storage::{LogOp, LogReport, LogWriter, LogWriterOptions, Wal};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Args {
    dir: PathBuf,
    duration: Duration,
    payload_bytes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: std::env::temp_dir().join(format!(
            "fsync-rate-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        )),
        duration: Duration::from_secs(2),
        payload_bytes: 128,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => {
                args.dir =
                    PathBuf::from(value()?).join(format!("fsync-rate-{}", std::process::id()));
            }
            "--seconds" => {
                let s: f64 = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                args.duration = Duration::from_secs_f64(s);
            }
            "--payload-bytes" => {
                args.payload_bytes = value()?
                    .parse()
                    .map_err(|e| format!("--payload-bytes: {e}"))?
            }
            "--help" | "-h" => {
                return Err(
                    "usage: fsync_rate [--dir PATH] [--seconds N] [--payload-bytes N]".into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn entry(index: u64, payload: &Bytes) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(1),
        kind: EntryKind::Command,
        data: payload.clone(),
    }
}

fn percentile(sorted_us: &[f64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    sorted_us[i]
}

/// `(fsyncs, seconds, latencies in µs sorted)`
fn raw(args: &Args) -> std::io::Result<(u64, f64, Vec<f64>)> {
    let path = args.dir.join("raw.bin");
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    let block = vec![0x5Au8; 4096];
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < args.duration {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok((latencies.len() as u64, seconds, latencies))
}

fn wal_sync_each(args: &Args, payload: &Bytes) -> Result<(u64, f64, Vec<f64>), String> {
    let (mut wal, _) = Wal::open(args.dir.join("wal-sync-each")).map_err(|e| e.to_string())?;
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut index = 1;
    while start.elapsed() < args.duration {
        let t = Instant::now();
        wal.append(&[entry(index, payload)])
            .map_err(|e| e.to_string())?;
        wal.sync().map_err(|e| e.to_string())?;
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
        index += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok((index - 1, seconds, latencies))
}

/// `(entries, fsyncs, reports, seconds)`
fn group_commit(args: &Args, payload: &Bytes) -> Result<(u64, u64, u64, f64), String> {
    let (wal, _) = Wal::open(args.dir.join("wal-group-commit")).map_err(|e| e.to_string())?;
    let reports = Arc::new(AtomicU64::new(0));
    let durable = Arc::new(AtomicU64::new(0));
    let (r, d) = (Arc::clone(&reports), Arc::clone(&durable));
    let writer = LogWriter::spawn(wal, LogWriterOptions::default(), move |report| {
        if let LogReport::Persisted { index, .. } = report {
            r.fetch_add(1, Ordering::Relaxed);
            d.store(index.0, Ordering::Relaxed);
        }
    })
    .map_err(|e| e.to_string())?;
    let metrics = writer.metrics();
    let fsyncs_before = metrics.fsyncs();
    let start = Instant::now();
    let mut index = 1;
    while start.elapsed() < args.duration {
        writer
            .submit(LogOp::Append([entry(index, payload)].into()))
            .map_err(|e| e.to_string())?;
        index += 1;
    }
    writer.close().map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let entries = durable.load(Ordering::Relaxed);
    assert_eq!(
        entries,
        index - 1,
        "every submitted entry is reported durable by close"
    );
    Ok((
        entries,
        metrics.fsyncs() - fsyncs_before,
        reports.load(Ordering::Relaxed),
        seconds,
    ))
}

fn run(args: &Args) -> Result<String, String> {
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("create {}: {e}", args.dir.display()))?;
    let payload = Bytes::from(vec![0xA5u8; args.payload_bytes]);
    let (raw_fsyncs, raw_s, raw_lat) = raw(args).map_err(|e| e.to_string())?;
    let (each_entries, each_s, each_lat) = wal_sync_each(args, &payload)?;
    let (gc_entries, gc_fsyncs, gc_reports, gc_s) = group_commit(args, &payload)?;
    Ok(format!(
        concat!(
            "{{\"dir\":{:?},\"seconds_per_phase\":{},\"payload_bytes\":{},",
            "\"raw\":{{\"fsyncs\":{},\"fsyncs_per_sec\":{:.0},\"latency_us_p50\":{:.0},\"latency_us_p99\":{:.0}}},",
            "\"wal_sync_each\":{{\"entries\":{},\"entries_per_sec\":{:.0},\"latency_us_p50\":{:.0},\"latency_us_p99\":{:.0}}},",
            "\"group_commit\":{{\"entries\":{},\"entries_per_sec\":{:.0},\"fsyncs\":{},\"fsyncs_per_sec\":{:.0},",
            "\"reports\":{},\"entries_per_fsync\":{:.1}}}}}"
        ),
        args.dir.display().to_string(),
        args.duration.as_secs_f64(),
        args.payload_bytes,
        raw_fsyncs,
        raw_fsyncs as f64 / raw_s,
        percentile(&raw_lat, 0.5),
        percentile(&raw_lat, 0.99),
        each_entries,
        each_entries as f64 / each_s,
        percentile(&each_lat, 0.5),
        percentile(&each_lat, 0.99),
        gc_entries,
        gc_entries as f64 / gc_s,
        gc_fsyncs,
        gc_fsyncs as f64 / gc_s,
        gc_reports,
        gc_entries as f64 / gc_fsyncs.max(1) as f64,
    ))
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let result = run(&args);
    let _ = std::fs::remove_dir_all(&args.dir);
    match result {
        Ok(json) => println!("{json}"),
        Err(message) => {
            eprintln!("fsync_rate: {message}");
            std::process::exit(1);
        }
    }
}
