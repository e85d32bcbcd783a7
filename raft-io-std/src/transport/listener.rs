//! The accepting side: read the hello, check it, answer it, and hand the
//! connection to what it announced (messages, a stream, an admin request).

use super::hello::{
    self, AdminRequest, AdminResponse, ConnectionKind, Control, DeadlineReader, Hello,
    HelloRefusal, HelloReply,
};
use super::units::{ReadError, UnitReader};
use super::{AdminCall, Shared, bump, lock, stream};
use crossbeam_channel::RecvTimeoutError;
use raft_core::wire::WireUnit;
use raft_core::{Event, NodeId};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) fn accept_loop(shared: &Arc<Shared>, listener: TcpListener) {
    for conn in listener.incoming() {
        if shared.closing.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(socket) => {
                // Counted here, on the one accepting thread, so a flood cannot
                // race past the bound however fast its connections arrive.
                let Some(slot) = InboundSlot::take(shared) else {
                    bump(&shared.counters.connections_refused, 1);
                    tracing::warn!(
                        peer = ?socket.peer_addr().ok(),
                        "{} incoming connections already served; closed",
                        shared.opts.connections_max
                    );
                    drop(socket);
                    continue;
                };
                let thread_shared = Arc::clone(shared);
                shared.spawn("raft-conn", move || {
                    let _slot = slot;
                    handle(&thread_shared, socket)
                });
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                // Out of descriptors or similar: give the system a moment.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// One of the `connections_max` incoming connections served at once, held
/// by its thread until the connection ends (or dropped with the closure if
/// the thread could not be spawned).
struct InboundSlot(Arc<Shared>);

impl InboundSlot {
    fn take(shared: &Arc<Shared>) -> Option<InboundSlot> {
        let max = shared.opts.connections_max;
        shared
            .inbound
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| InboundSlot(Arc::clone(shared)))
    }
}

impl Drop for InboundSlot {
    fn drop(&mut self) {
        self.0.inbound.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle(shared: &Arc<Shared>, mut socket: TcpStream) {
    let peer = socket
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let Ok(_guard) = shared.register(&socket) else {
        return;
    };
    let setup = socket
        .set_nodelay(true)
        .and_then(|()| socket.set_write_timeout(Some(shared.opts.write_timeout)));
    if setup.is_err() {
        return;
    }
    let within = shared.opts.handshake_timeout;
    let hello = match hello::read_control(&mut DeadlineReader::new(&socket, within)) {
        Ok(Control::Hello(h)) => h,
        Ok(other) => {
            tracing::warn!(%peer, "connection began with {other:?}, not a hello; closed");
            bump(&shared.counters.malformed_connections, 1);
            return;
        }
        Err(hello::ControlError::Io(e)) => {
            tracing::debug!(%peer, "no hello: {e}");
            return;
        }
        Err(e) => {
            tracing::warn!(%peer, "malformed hello: {e}; closed");
            bump(&shared.counters.malformed_connections, 1);
            return;
        }
    };
    if let Err(refusal) = check(shared, &hello) {
        let ours = shared.me().cluster_id;
        bump(&shared.counters.hellos_refused, 1);
        if ours.is_some() {
            tracing::warn!(%peer, from = ?hello.from, "refused a connection: {refusal}");
        } else {
            tracing::debug!(%peer, "refused a connection before joining a cluster: {refusal}");
        }
        let reply = Control::HelloReply(HelloReply::Refused(refusal));
        let _ = hello::write_control(&mut socket, &reply);
        let _ = socket.shutdown(Shutdown::Write);
        return;
    }
    if socket.set_read_timeout(None).is_err() {
        return;
    }
    let Hello {
        cluster_id,
        from,
        kind,
        address,
        ..
    } = hello;
    if let (Some(from), Some(address)) = (from, address.as_deref()) {
        shared.learn_address(from, address);
    }
    match kind {
        ConnectionKind::Messages => {
            let from = from.expect("checked");
            // Claimed before the reply: once the peer hears it was accepted,
            // a newer connection of its own must find this one to replace.
            let Ok(_current) = CurrentMessageConn::claim(shared, &socket, from, &peer) else {
                return;
            };
            let accepted = Control::HelloReply(HelloReply::Accepted);
            if hello::write_control(&mut socket, &accepted).is_ok() {
                read_messages(shared, &socket, from, &peer);
            }
        }
        ConnectionKind::Stream { stream, open } => {
            stream::accept(shared, socket, stream, open);
        }
        ConnectionKind::Admin => admin(shared, socket, cluster_id, &peer),
    }
}

/// The checks a hello must pass.
fn check(shared: &Shared, hello: &Hello) -> Result<(), HelloRefusal> {
    let me = shared.me();
    let foreign = || HelloRefusal::ForeignCluster {
        ours: me.cluster_id,
        theirs: hello.cluster_id,
    };
    if let ConnectionKind::Admin = hello.kind {
        // A joiner has no cluster yet; a member forwarding a change must be ours.
        return match hello.cluster_id {
            Some(_) if hello.cluster_id != me.cluster_id => Err(foreign()),
            _ => Ok(()),
        };
    }
    if hello.cluster_id.is_none() || hello.cluster_id != me.cluster_id {
        return Err(foreign());
    }
    if hello.from.is_none() {
        return Err(HelloRefusal::Invalid(
            "a member's hello without its id".into(),
        ));
    }
    if hello.to.is_some() && hello.to != me.id {
        return Err(HelloRefusal::Misdirected {
            ours: me.id,
            theirs: hello.to,
        });
    }
    if let ConnectionKind::Stream { open, .. } = &hello.kind {
        let consistent = Some(open.cluster_id) == hello.cluster_id
            && Some(open.follower) == hello.from
            && Some(open.leader) == me.id;
        if !consistent {
            return Err(HelloRefusal::Invalid(
                "stream handshake disagrees with the hello".into(),
            ));
        }
    }
    Ok(())
}

/// An incoming message connection: datagrams from `from` until it closes.
fn read_messages(shared: &Shared, socket: &TcpStream, from: NodeId, peer: &str) {
    let cluster_id = shared.me().cluster_id;
    let mut reader = UnitReader::new();
    let mut socket = socket;
    loop {
        match reader.next(&mut socket) {
            Ok(Some(WireUnit::Message(m)))
                if m.from == from && Some(m.cluster_id) == cluster_id =>
            {
                match shared.sinks.messages.try_send(Event::MessageReceived(m)) {
                    Ok(()) => bump(&shared.counters.messages_received, 1),
                    Err(crossbeam_channel::TrySendError::Full(_)) => {
                        bump(&shared.counters.messages_dropped, 1)
                    }
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => return,
                }
            }
            Ok(Some(other)) => {
                tracing::warn!(%peer, %from, "unexpected {other} on a message connection; closed");
                bump(&shared.counters.malformed_connections, 1);
                return;
            }
            Ok(None) => return,
            Err(ReadError::Io(e)) => {
                tracing::debug!(%peer, %from, "message connection ended: {e}");
                return;
            }
            Err(e) => {
                tracing::warn!(%peer, %from, "message connection closed: {e}");
                bump(&shared.counters.malformed_connections, 1);
                return;
            }
        }
    }
}

/// The newest message connection from a peer, in `Shared::message_conns`
/// while it is served.
struct CurrentMessageConn<'a> {
    shared: &'a Shared,
    from: NodeId,
    key: u64,
}

impl<'a> CurrentMessageConn<'a> {
    /// Records `socket` as `from`'s message connection and ends the one it replaces.
    fn claim(
        shared: &'a Shared,
        socket: &TcpStream,
        from: NodeId,
        peer: &str,
    ) -> std::io::Result<CurrentMessageConn<'a>> {
        let key = shared.next_socket.fetch_add(1, Ordering::Relaxed);
        let clone = socket.try_clone()?;
        let replaced = lock(&shared.message_conns).insert(from, (key, clone));
        if let Some((_, old)) = replaced {
            tracing::debug!(%peer, %from, "a new message connection from {from} ends its old one");
            let _ = old.shutdown(Shutdown::Both);
        }
        Ok(CurrentMessageConn { shared, from, key })
    }
}

impl Drop for CurrentMessageConn<'_> {
    fn drop(&mut self) {
        let mut conns = lock(&self.shared.message_conns);
        if conns
            .get(&self.from)
            .is_some_and(|(key, _)| *key == self.key)
        {
            conns.remove(&self.from);
        }
    }
}

/// One admin request, answered by the driver.
fn admin(
    shared: &Shared,
    mut socket: TcpStream,
    cluster_id: Option<raft_core::ClusterId>,
    peer: &str,
) {
    let accepted = Control::HelloReply(HelloReply::Accepted);
    if hello::write_control(&mut socket, &accepted).is_err() {
        return;
    }
    let within = shared.opts.handshake_timeout;
    let request: AdminRequest = match hello::read_control(&mut DeadlineReader::new(&socket, within))
    {
        Ok(Control::AdminRequest(r)) => r,
        Ok(other) => {
            tracing::warn!(%peer, "expected an admin request, got {other:?}; closed");
            return;
        }
        Err(e) => {
            tracing::debug!(%peer, "no admin request: {e}");
            return;
        }
    };
    tracing::info!(%peer, "admin request {request:?}");
    let (reply, answer) = crossbeam_channel::bounded(1);
    let call = AdminCall {
        request,
        cluster_id,
        reply,
    };
    let response = if !(shared.sinks.admin)(call) {
        AdminResponse::Unavailable("node is closing".into())
    } else {
        match answer.recv_timeout(shared.opts.admin_timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => AdminResponse::Unavailable("timed out".into()),
            Err(RecvTimeoutError::Disconnected) => {
                AdminResponse::Unavailable("node is closing".into())
            }
        }
    };
    let _ = hello::write_control(&mut socket, &Control::AdminResponse(response));
}
