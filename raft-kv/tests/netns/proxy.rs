//! A userspace TCP fault proxy for what the kernel here cannot do
//! (`tc netem` is missing): delay and jitter, and with them reordering
//! between connections.
//!
//! Bytes within one connection stay in order, as TCP keeps them; but each
//! chunk read is held for `delay` plus a random part of `jitter`, drawn
//! independently on every connection, so what a node sends on different
//! connections (votes and heartbeats, a stream, its acks) arrives in another
//! order than it was sent.
//!
//! Bounded: at most [`CONNECTIONS_MAX`] connections at once (more are
//! refused by closing them), at most [`CHUNKS_IN_FLIGHT`] chunks of at most
//! [`CHUNK_BYTES`] held per direction (the reader then stops reading, and TCP
//! pushes back on the sender). Four threads per connection (a reader and a
//! writer each way), all joined when the proxy drops.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CONNECTIONS_MAX: usize = 32;
pub const CHUNKS_IN_FLIGHT: usize = 64;
pub const CHUNK_BYTES: usize = 16 * 1024;
/// How often the accept loop looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What the proxy does to the bytes it carries.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Every chunk is held at least this long.
    pub delay: Duration,
    /// Plus a uniformly random part of this.
    pub jitter: Duration,
}

/// What the proxy has carried so far.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub chunks: AtomicU64,
    pub bytes: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    stop: AtomicBool,
    faults: Mutex<Faults>,
    /// Both sockets of each live connection, to shut them down on drop.
    live: Mutex<BTreeMap<u64, [TcpStream; 2]>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    counters: Counters,
}

/// One listening proxy in front of one upstream address.
pub struct Proxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `ip` (a port the OS picks) and forwards to `upstream`.
    pub fn start(ip: IpAddr, upstream: SocketAddr, faults: Faults) -> Proxy {
        let listener = TcpListener::bind((ip, 0)).expect("bind the proxy");
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            faults: Mutex::new(faults),
            live: Mutex::new(BTreeMap::new()),
            threads: Mutex::new(Vec::new()),
            counters: Counters::default(),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("proxy-{address}"))
                .spawn(move || accept_loop(&listener, &shared))
                .unwrap()
        };
        Proxy {
            address,
            shared,
            accept: Some(accept),
        }
    }

    /// Where nodes connect to reach the upstream through the proxy.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Changes the faults of chunks read from now on.
    pub fn set(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for [a, b] in self.shared.live.lock().unwrap().values() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap());
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut next_id = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((down, _)) => {
                next_id += 1;
                if connect(shared, next_id, down).is_err() {
                    // The upstream is down or unreachable: the caller sees
                    // its connection closed, as it would see a dead peer.
                    shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => panic!("proxy accept: {e}"),
        }
    }
}

/// Connects `down` (a node that called us) to the upstream and starts the
/// four pump threads; refuses it (closes it) when at the limit or when the
/// upstream cannot be reached, as an unreachable peer would.
fn connect(shared: &Arc<Shared>, id: u64, down: TcpStream) -> std::io::Result<()> {
    let c = &shared.counters;
    if shared.live.lock().unwrap().len() >= CONNECTIONS_MAX {
        c.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    down.set_nonblocking(false)?;
    let up = TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT)?;
    down.set_nodelay(true)?;
    up.set_nodelay(true)?;
    c.connections.fetch_add(1, Ordering::Relaxed);
    shared
        .live
        .lock()
        .unwrap()
        .insert(id, [down.try_clone()?, up.try_clone()?]);
    let mut threads = Vec::with_capacity(4);
    for (direction, from, to) in [(0, down.try_clone()?, up.try_clone()?), (1, up, down)] {
        let (tx, rx) = crossbeam_channel::bounded::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
        let reader = {
            let shared = Arc::clone(shared);
            let seed = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ direction;
            move || read_side(&shared, from, &tx, seed)
        };
        let writer = {
            let shared = Arc::clone(shared);
            move || write_side(&shared, id, to, &rx)
        };
        threads.push(std::thread::spawn(reader));
        threads.push(std::thread::spawn(writer));
    }
    let mut all = shared.threads.lock().unwrap();
    all.retain(|t| !t.is_finished());
    all.extend(threads);
    Ok(())
}

/// Reads chunks and stamps each with the time it may be delivered.
fn read_side(
    shared: &Shared,
    mut from: TcpStream,
    tx: &crossbeam_channel::Sender<(Instant, Vec<u8>)>,
    seed: u64,
) {
    let mut rng = seed | 1;
    let mut last = Instant::now();
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let faults = *shared.faults.lock().unwrap();
        // xorshift64: a fixed sequence per connection and direction.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let jitter_ns = faults.jitter.as_nanos() as u64;
        let extra = Duration::from_nanos(if jitter_ns == 0 { 0 } else { rng % jitter_ns });
        // Never before the previous chunk: the stream stays in order.
        last = last.max(Instant::now() + faults.delay + extra);
        if tx.send((last, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
}

/// Writes chunks when they are due; closes both sockets when done.
fn write_side(
    shared: &Shared,
    id: u64,
    mut to: TcpStream,
    rx: &crossbeam_channel::Receiver<(Instant, Vec<u8>)>,
) {
    while let Ok((due, chunk)) = rx.recv() {
        let wait = due.saturating_duration_since(Instant::now());
        std::thread::sleep(wait); // the injected delay itself
        if to.write_all(&chunk).is_err() {
            break;
        }
        shared.counters.chunks.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown(Shutdown::Both);
    if let Some([a, b]) = shared.live.lock().unwrap().remove(&id) {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}
