//! `disk-rtt`: the two costs under the durable path of raft-kv-bench, measured
//! on this machine: `fdatasync` after appending a small record to a file
//! (what one group commit of one entry costs) and a TCP round trip on
//! loopback (what one leader-to-follower-and-back costs). Prints one JSON line.
//!
//! ```text
//! cargo run --release --manifest-path bench-peers/Cargo.toml --bin disk-rtt -- [--dir DIR] [--count 2000]
//! ```
//!
//! The file lives in `--dir` (default: the system's temporary directory, as
//! raft-kv-bench's data does) and is removed at the end.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Instant;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Writes `record_bytes` after the previous record and fdatasyncs, `count`
/// times; nanoseconds each. With `preallocate` the file already has its full
/// size (and that size is durable), so fdatasync has no metadata to write;
/// without it every write grows the file, as raft-io-std's WAL segments do.
fn fdatasync_ns(
    dir: &std::path::Path,
    count: usize,
    record_bytes: usize,
    preallocate: bool,
) -> std::io::Result<Vec<u64>> {
    let path = dir.join(format!("disk-rtt-{}", std::process::id()));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    if preallocate {
        file.write_all_at(&vec![0; count * record_bytes], 0)?;
        file.sync_all()?;
    }
    let record = vec![0x5a; record_bytes];
    let mut out = Vec::with_capacity(count);
    let mut offset = 0u64;
    for _ in 0..count {
        let t = Instant::now();
        file.write_all_at(&record, offset)?;
        file.sync_data()?;
        out.push(t.elapsed().as_nanos() as u64);
        offset += record_bytes as u64;
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(out)
}

/// `count` round trips of `message_bytes` over one loopback TCP connection
/// with Nagle off; nanoseconds each.
fn loopback_rtt_ns(count: usize, message_bytes: usize) -> std::io::Result<Vec<u64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; message_bytes];
        for _ in 0..count {
            s.read_exact(&mut buf)?;
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut s = TcpStream::connect(address)?;
    s.set_nodelay(true)?;
    let mut buf = vec![0x5a; message_bytes];
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        out.push(t.elapsed().as_nanos() as u64);
    }
    echo.join().expect("the echo thread")?;
    Ok(out)
}

fn main() -> std::io::Result<()> {
    let mut dir = std::env::temp_dir();
    let mut count = 2000usize;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--dir" => dir = PathBuf::from(value),
            "--count" => count = value.parse().unwrap_or(count).max(1),
            other => {
                eprintln!(
                    "disk-rtt: unknown argument {other:?}\nusage: disk-rtt [--dir DIR] [--count N]"
                );
                std::process::exit(2);
            }
        }
    }
    let mut sync = fdatasync_ns(&dir, count, 128, true)?;
    sync.sort_unstable();
    let mut growing = fdatasync_ns(&dir, count, 128, false)?;
    growing.sort_unstable();
    let mut rtt = loopback_rtt_ns(count * 5, 64)?;
    rtt.sort_unstable();
    let us = |v: &[u64], p| percentile(v, p) as f64 / 1e3;
    let p50 = us(&sync, 0.5);
    println!(
        "{{\"dir\":{:?},\"fdatasync_us_p50\":{:.1},\"fdatasync_us_p99\":{:.1},\"fdatasyncs_per_sec\":{:.0},\"growing_file_fdatasync_us_p50\":{:.1},\
         \"loopback_rtt_us_p50\":{:.1},\"loopback_rtt_us_p99\":{:.1},\"one_client_bound_ops_per_sec\":{:.0}}}",
        dir.display().to_string(),
        p50,
        us(&sync, 0.99),
        1e6 / p50,
        us(&growing, 0.5),
        us(&rtt, 0.5),
        us(&rtt, 0.99),
        1e6 / (p50 + us(&rtt, 0.5)),
    );
    Ok(())
}
