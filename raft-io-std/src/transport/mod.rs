//! The TCP transport: one listener per node, std threads per connection.
//!
//! Three kinds of connection, each announced by a [`hello::Hello`] that the
//! accepting side checks (cluster id, sender, recipient) and answers:
//!
//! | kind | opened by | carries | when full / broken |
//! |---|---|---|---|
//! | `Messages` | every node, one per peer it sends to | `raft_core::Message` datagrams, one way | the per-peer queue drops its oldest message; the connection is re-established with exponential backoff |
//! | `Stream` | a follower, to its leader (`Action::OpenStream`) | the stream's frames, both ways | a full queue closes the stream; a broken one is reported to the core as `Event::StreamClosed`, and the core reopens it |
//! | `Admin` | a joiner (or a member forwarding a change to the leader) | one [`hello::AdminRequest`], one [`hello::AdminResponse`] | the caller retries |
//!
//! Votes and heartbeats therefore never queue behind stream data: they have
//! their own connection, their own queue, and their own channel into the
//! driver. A connection whose bytes do not decode is closed with a warning;
//! nothing a peer sends can panic the node. A hello from another cluster is
//! refused with a [`hello::HelloRefusal::ForeignCluster`], logged on both sides.
//!
//! The transport makes no protocol decisions: it moves what the core asks it
//! to move and reports what arrives.

pub mod hello;
mod listener;
mod outbox;
mod peer;
mod stream;
mod units;

use self::hello::{AdminRequest, AdminResponse, Control, Hello, HelloRefusal, HelloReply};
use self::outbox::Outbox;
use self::stream::StreamSlot;
pub(crate) use self::stream::Window;
use crate::storage::SnapshotStore;
use crossbeam_channel::Sender;
use raft_core::{
    ClusterId, Config, Event, Frame, Message, NodeId, SnapshotMeta, StreamId, StreamOpen,
};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;

/// Tunables of the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportOptions {
    /// How long a TCP connect may take. Default 1 s.
    pub connect_timeout: Duration,
    /// How long to wait for the other side's hello, hello reply or admin
    /// request. Default 2 s.
    pub handshake_timeout: Duration,
    /// A write that makes no progress for this long breaks the connection.
    /// Default 10 s.
    pub write_timeout: Duration,
    /// The first wait before reconnecting a message connection; it doubles up
    /// to `reconnect_backoff_max`. Default 10 ms.
    pub reconnect_backoff_min: Duration,
    /// The longest wait between reconnect attempts. Default 1 s.
    pub reconnect_backoff_max: Duration,
    /// Messages queued per peer before the oldest are dropped. Default 1,024.
    pub message_queue_max: usize,
    /// Frames queued on one stream before it is closed. Default 65,536.
    pub stream_queue_frames_max: usize,
    /// Bytes (`Frame::budget_bytes`) queued on one stream before it is
    /// closed. Default 64 MiB, well above the core's default stream budget.
    pub stream_queue_bytes_max: u64,
    /// Events from the network waiting for the driver, per channel (messages,
    /// streams). A full message channel drops; a full stream channel makes the
    /// stream's reader wait (TCP back-pressure). Default 4,096.
    pub inbound_queue_max: usize,
    /// Snapshot bytes per `SnapshotChunk` frame. Default 1 MiB.
    pub snapshot_chunk_bytes: usize,
    /// How long an admin request may take (a join waits for its commit). Default 10 s.
    pub admin_timeout: Duration,
    /// Incoming connections served at once (each holds a thread and a
    /// descriptor until it ends); one more is closed as soon as it is
    /// accepted, before its hello is read. Default 1,024, far above what a
    /// cluster's own members open (a message connection per peer, a stream
    /// per follower), so only a flood of connections reaches it.
    pub connections_max: usize,
}

impl Default for TransportOptions {
    fn default() -> TransportOptions {
        TransportOptions {
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
            reconnect_backoff_min: Duration::from_millis(10),
            reconnect_backoff_max: Duration::from_secs(1),
            message_queue_max: 1024,
            stream_queue_frames_max: 65_536,
            stream_queue_bytes_max: 64 << 20,
            inbound_queue_max: 4096,
            snapshot_chunk_bytes: 1 << 20,
            admin_timeout: Duration::from_secs(10),
            connections_max: 1024,
        }
    }
}

/// Counters of the transport, for operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportMetrics {
    /// Messages written to a peer's connection.
    pub messages_sent: u64,
    /// Messages dropped: queue full, peer unreachable, or no address known.
    pub messages_dropped: u64,
    /// Messages received and handed to the driver.
    pub messages_received: u64,
    /// Streams accepted or opened successfully.
    pub streams_opened: u64,
    /// Streams closed because their queue was full.
    pub streams_overflowed: u64,
    /// Snapshots sent whole on a stream.
    pub snapshots_sent: u64,
    /// Snapshot transfers resumed on a new stream past byte 0, after the
    /// last one broke (`raft_core::StreamOpen::resume`).
    pub snapshots_resumed: u64,
    /// Hellos this node refused (foreign cluster, misdirected, malformed).
    pub hellos_refused: u64,
    /// Times a peer refused this node's hello.
    pub refused_by_peers: u64,
    /// Connections closed because their bytes did not decode.
    pub malformed_connections: u64,
    /// Incoming connections closed at once because `connections_max` were
    /// being served.
    pub connections_refused: u64,
    /// The last refusal this node received, as text.
    pub last_refusal: Option<String>,
    /// Bytes written to message and stream connections after their hello
    /// (`raft_core::wire` records, snapshots included).
    pub bytes_sent: u64,
}

#[derive(Default)]
struct Counters {
    messages_sent: AtomicU64,
    messages_dropped: AtomicU64,
    messages_received: AtomicU64,
    streams_opened: AtomicU64,
    streams_overflowed: AtomicU64,
    snapshots_sent: AtomicU64,
    snapshots_resumed: AtomicU64,
    hellos_refused: AtomicU64,
    refused_by_peers: AtomicU64,
    malformed_connections: AtomicU64,
    connections_refused: AtomicU64,
    last_refusal: Mutex<Option<String>>,
    bytes_sent: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An admin request arriving from the network, for the driver to answer.
pub(crate) struct AdminCall {
    pub(crate) request: AdminRequest,
    /// The caller's cluster, from its hello (`None` for a joiner).
    pub(crate) cluster_id: Option<ClusterId>,
    pub(crate) reply: Sender<AdminResponse>,
}

/// Where the transport delivers what arrives.
pub(crate) struct Sinks {
    /// Datagrams (`MessageReceived`); `try_send`, dropped when full.
    pub(crate) messages: Sender<Event>,
    /// Stream events (`StreamOpened`, `FrameReceived`, `StreamClosed`); blocking.
    pub(crate) streams: Sender<Event>,
    /// Admin requests; the driver answers on the call's reply channel.
    pub(crate) admin: Box<dyn Fn(AdminCall) -> bool + Send + Sync>,
}

/// Who this node is, as far as the transport knows.
#[derive(Clone, Copy, Debug, Default)]
struct Me {
    id: Option<NodeId>,
    cluster_id: Option<ClusterId>,
}

struct Peer {
    address: String,
    outbox: Arc<Outbox<Message>>,
}

/// Counts live connection threads so `shutdown` can wait for them.
#[derive(Default)]
struct ThreadGroup {
    live: Mutex<usize>,
    done: Condvar,
}

struct Shared {
    opts: TransportOptions,
    local_addr: SocketAddr,
    /// Our own address, announced in every hello.
    advertise: String,
    me: RwLock<Me>,
    /// Members' addresses from the configuration in force.
    addresses: RwLock<BTreeMap<NodeId, String>>,
    /// Addresses announced in peers' hellos, for nodes the configuration
    /// does not list yet (a joiner's leader, before its log has the config).
    learned: RwLock<BTreeMap<NodeId, String>>,
    peers: Mutex<BTreeMap<NodeId, Peer>>,
    streams: Mutex<HashMap<StreamId, Arc<StreamSlot>>>,
    sinks: Sinks,
    snapshots: Arc<SnapshotStore>,
    closing: AtomicBool,
    sockets: Mutex<HashMap<u64, TcpStream>>,
    /// The incoming message connection served for each peer (keyed as
    /// `sockets`): a peer has one, so a new one ends the old, which may be
    /// half-open for ever (a peer that lost power sends no FIN).
    message_conns: Mutex<HashMap<NodeId, (u64, TcpStream)>>,
    next_socket: AtomicU64,
    threads: ThreadGroup,
    /// Incoming connections being served (bounded by `connections_max`).
    inbound: AtomicUsize,
    counters: Counters,
}

/// Removes a socket from the shutdown registry when its connection ends.
struct SocketGuard {
    shared: Arc<Shared>,
    key: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.shared.sockets).remove(&self.key) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Shared {
    fn me(&self) -> Me {
        *self.me.read().unwrap_or_else(|e| e.into_inner())
    }

    fn address_of(&self, id: NodeId) -> Option<String> {
        let configured = self
            .addresses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        configured.or_else(|| {
            self.learned
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .cloned()
        })
    }

    /// Remembers where `id` said it listens (used only while the
    /// configuration does not list it).
    fn learn_address(&self, id: NodeId, address: &str) {
        let mut learned = self.learned.write().unwrap_or_else(|e| e.into_inner());
        if learned.get(&id).map(String::as_str) != Some(address) {
            learned.insert(id, address.to_string());
        }
    }

    /// Registers `socket` so `shutdown` can break it; the guard unregisters it.
    fn register(self: &Arc<Self>, socket: &TcpStream) -> io::Result<SocketGuard> {
        let key = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let clone = socket.try_clone()?;
        if self.closing.load(Ordering::SeqCst) {
            let _ = clone.shutdown(std::net::Shutdown::Both);
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "transport closing",
            ));
        }
        lock(&self.sockets).insert(key, clone);
        Ok(SocketGuard {
            shared: Arc::clone(self),
            key,
        })
    }

    /// Runs `f` on a new thread counted in the thread group, inside the
    /// caller's tracing span.
    fn spawn(self: &Arc<Self>, name: &str, f: impl FnOnce() + Send + 'static) {
        struct Exit(Arc<Shared>);
        impl Drop for Exit {
            fn drop(&mut self) {
                let mut live = lock(&self.0.threads.live);
                *live -= 1;
                self.0.threads.done.notify_all();
            }
        }
        *lock(&self.threads.live) += 1;
        let exit = Exit(Arc::clone(self));
        let span = tracing::Span::current();
        let spawned = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _exit = exit;
                let _entered = span.enter();
                f();
            });
        if let Err(e) = spawned {
            // The closure (and its Exit guard) was dropped: the count is right.
            tracing::error!("cannot spawn transport thread {name}: {e}");
        }
    }

    fn note_refusal(&self, address: &str, refusal: &HelloRefusal) {
        bump(&self.counters.refused_by_peers, 1);
        let text = format!("{address} refused us: {refusal}");
        match refusal {
            HelloRefusal::ForeignCluster { ours: Some(_), .. }
            | HelloRefusal::Misdirected { .. } => {
                tracing::error!("{text}")
            }
            // A peer that has not initialized or joined yet: normal while it joins.
            _ => tracing::debug!("{text}"),
        }
        *lock(&self.counters.last_refusal) = Some(text);
    }
}

/// Why an outgoing connection could not be established.
#[derive(Debug, Error)]
pub(crate) enum ConnectError {
    /// TCP failed (unreachable, refused, timed out) or the address does not resolve.
    #[error("connect: {0}")]
    Io(#[from] io::Error),
    /// The peer refused our hello.
    #[error("refused: {0}")]
    Refused(HelloRefusal),
    /// The peer answered something that is not a hello reply.
    #[error("bad handshake: {0}")]
    Handshake(String),
}

fn connect(opts: &TransportOptions, address: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{address} resolves to nothing"),
    );
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, opts.connect_timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(opts.write_timeout))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to `address`, says `hello` and waits for the reply.
fn connect_with_hello(
    opts: &TransportOptions,
    address: &str,
    hello: Hello,
) -> Result<TcpStream, ConnectError> {
    let mut s = connect(opts, address)?;
    hello::write_control(&mut s, &Control::Hello(hello))?;
    let reply = hello::read_control(&mut hello::DeadlineReader::new(&s, opts.handshake_timeout));
    match reply {
        Ok(Control::HelloReply(HelloReply::Accepted)) => {
            s.set_read_timeout(None)?;
            Ok(s)
        }
        Ok(Control::HelloReply(HelloReply::Refused(r))) => Err(ConnectError::Refused(r)),
        Ok(other) => Err(ConnectError::Handshake(format!("unexpected {other:?}"))),
        Err(hello::ControlError::Io(e)) => Err(ConnectError::Io(e)),
        Err(e) => Err(ConnectError::Handshake(e.to_string())),
    }
}

/// Says this node's hello (an admin connection, no request) to the node at
/// `address`: accepted when it belongs to `cluster_id`, refused
/// ([`HelloRefusal::ForeignCluster`], naming its own) when it does not.
pub(crate) fn probe_cluster(
    opts: &TransportOptions,
    address: &str,
    cluster_id: ClusterId,
    from: Option<NodeId>,
) -> Result<(), ConnectError> {
    let hello = Hello {
        cluster_id: Some(cluster_id),
        from,
        to: None,
        address: None,
        kind: hello::ConnectionKind::Admin,
    };
    connect_with_hello(opts, address, hello).map(drop)
}

/// Sends one admin request to the node at `address` and waits for its answer.
/// Used by a joiner (with no cluster id) and by members forwarding changes.
pub(crate) fn admin_call(
    opts: &TransportOptions,
    address: &str,
    cluster_id: Option<ClusterId>,
    from: Option<NodeId>,
    request: AdminRequest,
) -> Result<AdminResponse, ConnectError> {
    let hello = Hello {
        cluster_id,
        from,
        to: None,
        address: None,
        kind: hello::ConnectionKind::Admin,
    };
    let mut s = connect_with_hello(opts, address, hello)?;
    hello::write_control(&mut s, &Control::AdminRequest(request))?;
    let within = opts.admin_timeout + opts.handshake_timeout;
    match hello::read_control(&mut hello::DeadlineReader::new(&s, within)) {
        Ok(Control::AdminResponse(r)) => Ok(r),
        Ok(other) => Err(ConnectError::Handshake(format!("unexpected {other:?}"))),
        Err(hello::ControlError::Io(e)) => Err(ConnectError::Io(e)),
        Err(e) => Err(ConnectError::Handshake(e.to_string())),
    }
}

/// The transport of one node. Dropping it shuts it down.
pub(crate) struct Transport {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Transport {
    /// Starts accepting connections on `listener`.
    pub(crate) fn start(
        listener: TcpListener,
        advertise: String,
        opts: TransportOptions,
        sinks: Sinks,
        snapshots: Arc<SnapshotStore>,
    ) -> io::Result<Transport> {
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            opts,
            local_addr,
            advertise,
            me: RwLock::new(Me::default()),
            addresses: RwLock::new(BTreeMap::new()),
            learned: RwLock::new(BTreeMap::new()),
            peers: Mutex::new(BTreeMap::new()),
            streams: Mutex::new(HashMap::new()),
            sinks,
            snapshots,
            closing: AtomicBool::new(false),
            sockets: Mutex::new(HashMap::new()),
            message_conns: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(0),
            threads: ThreadGroup::default(),
            inbound: AtomicUsize::new(0),
            counters: Counters::default(),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            let span = tracing::Span::current();
            std::thread::Builder::new()
                .name("raft-accept".into())
                .spawn(move || {
                    let _entered = span.enter();
                    listener::accept_loop(&shared, listener)
                })?
        };
        Ok(Transport {
            shared,
            accept: Some(accept),
        })
    }

    /// Records who this node is (once it initialized or joined); hellos are
    /// checked against it.
    pub(crate) fn set_identity(&self, id: NodeId, cluster_id: Option<ClusterId>) {
        *self.shared.me.write().unwrap_or_else(|e| e.into_inner()) = Me {
            id: Some(id),
            cluster_id,
        };
    }

    /// Takes the members' addresses from the configuration in force; drops
    /// message connections to nodes that left or moved.
    pub(crate) fn set_config(&self, config: &Config) {
        let addresses: BTreeMap<NodeId, String> = config
            .members
            .iter()
            .map(|m| (m.id, m.address.clone()))
            .collect();
        let mut peers = lock(&self.shared.peers);
        peers.retain(|id, peer| {
            let keep = addresses.get(id) == Some(&peer.address);
            if !keep {
                peer.outbox.close();
            }
            keep
        });
        *self
            .shared
            .addresses
            .write()
            .unwrap_or_else(|e| e.into_inner()) = addresses;
    }

    /// Sends a datagram, best effort.
    pub(crate) fn send(&self, message: Message) {
        peer::send(&self.shared, message);
    }

    /// Opens stream `stream` to `leader`, saying `open`; a failure is reported
    /// as `StreamClosed`.
    pub(crate) fn open_stream(&self, stream: StreamId, leader: NodeId, open: StreamOpen) {
        stream::open(&self.shared, stream, leader, open);
    }

    /// Queues a frame on a stream (dropped if the stream is gone; a full queue
    /// closes the stream).
    pub(crate) fn send_frame(&self, stream: StreamId, frame: Frame) {
        stream::send_frame(&self.shared, stream, frame);
    }

    /// Queues bytes `offset..offset + bytes_max` of the snapshot `meta` on a
    /// stream: its writer reads them from the file and writes them as frames,
    /// in order with the frames queued after them.
    pub(crate) fn send_snapshot(
        &self,
        stream: StreamId,
        meta: SnapshotMeta,
        window: stream::Window,
    ) {
        stream::send_snapshot(&self.shared, stream, meta, window);
    }

    /// Closes a stream on the core's order (no `StreamClosed` is reported for it).
    pub(crate) fn close_stream(&self, stream: StreamId) {
        stream::close(&self.shared, stream);
    }

    /// The counters, now.
    pub(crate) fn metrics(&self) -> TransportMetrics {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TransportMetrics {
            messages_sent: get(&c.messages_sent),
            messages_dropped: get(&c.messages_dropped),
            messages_received: get(&c.messages_received),
            streams_opened: get(&c.streams_opened),
            streams_overflowed: get(&c.streams_overflowed),
            snapshots_sent: get(&c.snapshots_sent),
            snapshots_resumed: get(&c.snapshots_resumed),
            hellos_refused: get(&c.hellos_refused),
            refused_by_peers: get(&c.refused_by_peers),
            malformed_connections: get(&c.malformed_connections),
            connections_refused: get(&c.connections_refused),
            last_refusal: lock(&c.last_refusal).clone(),
            bytes_sent: get(&c.bytes_sent),
        }
    }

    /// Stops accepting, breaks every connection and waits (boundedly) for
    /// the connection threads to end.
    pub(crate) fn shutdown(&mut self) {
        let shared = &self.shared;
        if shared.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        for (_, peer) in std::mem::take(&mut *lock(&shared.peers)) {
            peer.outbox.close();
        }
        for (_, slot) in std::mem::take(&mut *lock(&shared.streams)) {
            slot.close_locally();
        }
        for (_, socket) in lock(&shared.sockets).drain() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        // Wake the accept loop with a connection of our own.
        let mut wake = shared.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, shared.opts.connect_timeout);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut live = lock(&shared.threads.live);
        while *live > 0 {
            let now = std::time::Instant::now();
            if now >= deadline {
                tracing::warn!("{} transport threads still running after shutdown", *live);
                break;
            }
            live = shared
                .threads
                .done
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.shutdown();
    }
}
