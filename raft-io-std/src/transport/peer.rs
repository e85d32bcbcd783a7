//! Outgoing message connections: one per peer this node sends datagrams to,
//! each with its own queue and writer thread, re-established with
//! exponential backoff. Datagrams are best effort: a full queue drops its
//! oldest message, and messages that find the peer unreachable are dropped.

use super::hello::{ConnectionKind, Hello};
use super::outbox::{Outbox, PushError};
use super::{ConnectError, Peer, Shared, bump, connect_with_hello, lock};
use raft_core::wire::{self, WireUnit};
use raft_core::{Message, NodeId};
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Bytes a queued message is charged (the queue is limited by count).
const MESSAGE_COST: u64 = 1;

pub(super) fn send(shared: &Arc<Shared>, message: Message) {
    let to = message.to;
    let outbox = {
        let mut peers = lock(&shared.peers);
        match peers.get(&to) {
            Some(peer) => Arc::clone(&peer.outbox),
            None => {
                if shared.closing.load(Ordering::SeqCst) {
                    return;
                }
                let Some(address) = shared.address_of(to) else {
                    bump(&shared.counters.messages_dropped, 1);
                    tracing::debug!(%to, "no address for message recipient; dropped");
                    return;
                };
                let outbox = Arc::new(Outbox::new(shared.opts.message_queue_max, u64::MAX));
                peers.insert(
                    to,
                    Peer {
                        address: address.clone(),
                        outbox: Arc::clone(&outbox),
                    },
                );
                let (thread_shared, thread_outbox) = (Arc::clone(shared), Arc::clone(&outbox));
                shared.spawn(&format!("raft-peer-{}", to.0), move || {
                    run(&thread_shared, to, &address, &thread_outbox)
                });
                outbox
            }
        }
    };
    match outbox.push_dropping_oldest(message, MESSAGE_COST) {
        Ok(0) => {}
        Ok(dropped) => bump(&shared.counters.messages_dropped, dropped as u64),
        Err(PushError::Closed | PushError::Full) => bump(&shared.counters.messages_dropped, 1),
    }
}

/// The writer thread of one peer: connect on demand, write what is queued,
/// reconnect after a failure once the backoff has passed.
fn run(shared: &Arc<Shared>, to: NodeId, address: &str, outbox: &Outbox<Message>) {
    let opts = &shared.opts;
    let mut conn: Option<(TcpStream, super::SocketGuard)> = None;
    let mut backoff = opts.reconnect_backoff_min;
    let mut retry_at = Instant::now();
    let mut buf = Vec::new();
    while let Some(batch) = outbox.pop_all() {
        if conn.is_none() {
            if Instant::now() < retry_at {
                bump(&shared.counters.messages_dropped, batch.len() as u64);
                continue;
            }
            let me = shared.me();
            let hello = Hello {
                cluster_id: me.cluster_id,
                from: me.id,
                to: Some(to),
                address: Some(shared.advertise.clone()),
                kind: ConnectionKind::Messages,
            };
            let connected = connect_with_hello(opts, address, hello).and_then(|s| {
                let guard = shared.register(&s).map_err(ConnectError::Io)?;
                Ok((s, guard))
            });
            match connected {
                Ok(c) => {
                    tracing::debug!(%to, address, "message connection up");
                    conn = Some(c);
                    backoff = opts.reconnect_backoff_min;
                }
                Err(e) => {
                    if let ConnectError::Refused(r) = &e {
                        shared.note_refusal(address, r);
                    } else {
                        tracing::debug!(%to, address, "message connection failed: {e}");
                    }
                    retry_at = Instant::now() + backoff;
                    backoff = (backoff * 2).min(opts.reconnect_backoff_max);
                    bump(&shared.counters.messages_dropped, batch.len() as u64);
                    // Whatever queued while connecting is stale by now.
                    bump(&shared.counters.messages_dropped, outbox.clear() as u64);
                    continue;
                }
            }
        }
        buf.clear();
        let count = batch.len() as u64;
        for m in batch {
            wire::encode(&WireUnit::Message(m), &mut buf);
        }
        let (socket, _) = conn.as_mut().expect("connected above");
        match socket.write_all(&buf) {
            Ok(()) => {
                bump(&shared.counters.messages_sent, count);
                bump(&shared.counters.bytes_sent, buf.len() as u64);
            }
            Err(e) => {
                tracing::debug!(%to, address, "message connection broke: {e}");
                bump(&shared.counters.messages_dropped, count);
                conn = None;
                retry_at = Instant::now();
            }
        }
    }
}
