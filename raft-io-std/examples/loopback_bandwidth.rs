//! Measures how many bytes per second one TCP connection over loopback
//! carries on this machine: the ceiling for a replication stream between two
//! local nodes. Prints one JSON object.
//!
//! ```text
//! cargo run --release -p raft-io-std --example loopback_bandwidth -- [--seconds N] [--write-bytes N]
//! ```
//!
//! A writer thread sends `--write-bytes` (default 64 KiB) per `write` call
//! for `--seconds` (default 3) with `TCP_NODELAY` set, as the transport does;
//! a reader thread reads and discards.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn parse_args() -> Result<(Duration, usize), String> {
    let (mut seconds, mut write_bytes) = (3.0f64, 64usize << 10);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--write-bytes" => {
                write_bytes = value.parse().map_err(|e| format!("--write-bytes: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((Duration::from_secs_f64(seconds), write_bytes.max(1)))
}

fn main() -> std::io::Result<()> {
    let (duration, write_bytes) = parse_args().map_err(std::io::Error::other)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut socket, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            match socket.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut socket = TcpStream::connect(address)?;
    socket.set_nodelay(true)?;
    let chunk = vec![0xa5u8; write_bytes];
    let started = Instant::now();
    let mut writes = 0u64;
    while started.elapsed() < duration {
        socket.write_all(&chunk)?;
        writes += 1;
    }
    socket.shutdown(std::net::Shutdown::Write)?;
    let received = reader.join().expect("reader thread")?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes_per_sec = received as f64 / seconds;
    println!(
        "{{\"seconds\":{seconds:.3},\"write_bytes\":{write_bytes},\"writes\":{writes},\"bytes\":{received},\
         \"mib_per_sec\":{:.1},\"gbit_per_sec\":{:.2}}}",
        bytes_per_sec / (1 << 20) as f64,
        bytes_per_sec * 8.0 / 1e9
    );
    Ok(())
}
