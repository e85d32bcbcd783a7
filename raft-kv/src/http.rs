//! The HTTP API of `raft-kv`.
//!
//! | request | answer |
//! |---|---|
//! | `GET /kv/{key}` | 200 and the value (after a read barrier), 404 if absent |
//! | `PUT /kv/{key}`, value as body | 200 `{"index": N}` once committed |
//! | `POST /kv/{key}/cas`, `{"from": v or null, "to": v}` | 200 if swapped, 409 if the value differs |
//! | `DELETE /kv/{key}` | 200 `{"index": N, "existed": bool}` |
//! | `GET /status` | 200, the node's state as JSON |
//! | `POST /members`, a raft address (text, or `{"raft": ...}`) | 200 `{"id": N}` |
//! | `DELETE /members/{id}` | 200 `{"removed": N}`, 404 if it is no member |
//! | `PUT /members/{id}/http`, an HTTP address as body | 200 `{"index": N}`: records member `id`'s HTTP address (followers announce theirs to the leader so) |
//!
//! A node that is not the leader answers key requests with 307 and the
//! leader's HTTP address in `Location`, or 503 while it knows of none. Every
//! error has a JSON body `{"error": ..., "outcome": "definite" | "unknown"}`
//! and the same outcome in a `Raft-Outcome` header: *definite* means the
//! request certainly did not take effect (safe to retry anywhere), *unknown*
//! that it may still take effect.
//!
//! This module decides replies; `server` runs the connections (limits,
//! timeouts) and hands each request, its body read in full, to
//! [`Service::route`] on a blocking thread, except puts: those it begins
//! with [`Service::start_put`] and awaits without a thread.

use bytes::Bytes;
use hyper::Method;
use raft_core::{LogIndex, MemberRole, NodeId, Outcome, RequestError, Role};
use raft_io_std::{Error, PendingProposal, RaftNode};
use raft_kv::kv::{Applied, Kv, KvCommand};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The largest value a PUT or CAS may carry.
pub const VALUE_BYTES_MAX: usize = 4 << 20;

/// A response before it is sent.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, value: Value) -> Reply {
        Reply {
            status,
            body: value.to_string().into_bytes(),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// An error reply with its outcome in the body and in `Raft-Outcome`.
    pub fn error(status: u16, outcome: Outcome, message: impl std::fmt::Display) -> Reply {
        let outcome = outcome_name(outcome);
        let mut reply = Reply::json(
            status,
            json!({ "error": message.to_string(), "outcome": outcome }),
        );
        reply.headers.push(("Raft-Outcome", outcome.to_string()));
        reply
    }

    /// A 400 whose request certainly did not take effect.
    pub fn bad_request(message: impl std::fmt::Display) -> Reply {
        Reply::error(400, Outcome::Definite, message)
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Definite => "definite",
        Outcome::Unknown => "unknown",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
        Role::Learner => "learner",
    }
}

/// A request [`Service::start_put`] began.
pub enum Started {
    /// Decided already (a bad key, or the node refused at once).
    Replied(Reply),
    /// A put waiting for its commit.
    Committing(PendingProposal),
}

/// Answers requests for one node.
pub struct Service {
    pub node: Arc<RaftNode>,
    pub kv: Kv,
    /// This node's HTTP address, as clients reach it.
    pub http: String,
    /// How long a read barrier or a wait for an applied entry may take.
    pub timeout: Duration,
}

impl Service {
    /// Decides the reply to a request whose body (at most
    /// [`body_bytes_max`] of its method and path) was read in full. `url` is
    /// the request's path and query. Blocks while the node works.
    pub fn route(&self, method: &Method, url: &str, body: Bytes) -> Reply {
        let path = url.split(['?', '#']).next().unwrap_or_default();
        let method = method.clone();
        if path == "/status" {
            return match method {
                Method::GET => self.status(),
                _ => not_allowed("GET"),
            };
        }
        if path == "/members" {
            return match method {
                Method::POST => self.add_member(&body),
                _ => not_allowed("POST"),
            };
        }
        if let Some(rest) = path.strip_prefix("/members/") {
            let (id, http) = match rest.strip_suffix("/http") {
                Some(id) => (id, true),
                None => (rest, false),
            };
            let Some(id) = id.parse::<u64>().ok().filter(|&id| id > 0) else {
                return Reply::bad_request(format!("{id:?} is not a node id"));
            };
            return match (method, http) {
                (Method::DELETE, false) => self.remove_member(NodeId(id)),
                (Method::PUT, true) => self.record_http(NodeId(id), &body, url),
                (_, false) => not_allowed("DELETE"),
                (_, true) => not_allowed("PUT"),
            };
        }
        let Some(rest) = path.strip_prefix("/kv/") else {
            return Reply::error(404, Outcome::Definite, format!("no such resource {path}"));
        };
        let (rest, cas) = match (&method, rest.strip_suffix("/cas")) {
            (&Method::POST, Some(key)) => (key, true),
            _ => (rest, false),
        };
        let key = match decode_key(rest) {
            Ok(key) => key,
            Err(e) => return Reply::bad_request(e),
        };
        match method {
            Method::GET => self.get(&key, url),
            Method::PUT => self.write(KvCommand::Put { key, value: body }, url),
            Method::DELETE => self.write(KvCommand::Delete { key }, url),
            Method::POST if cas => match parse_cas(&body) {
                Ok((from, to)) => self.write(KvCommand::Cas { key, from, to }, url),
                Err(reply) => reply,
            },
            _ => not_allowed("GET, PUT, DELETE; POST /kv/{key}/cas"),
        }
    }

    /// Begins a `PUT /kv/{key}` without blocking: submits the put and hands
    /// back its pending commit for the caller to await, so a server keeps
    /// thousands of puts in flight without a thread each (then
    /// [`Service::put_committed`] decides the reply). `None` for any other
    /// request, which [`Service::route`] answers.
    pub fn start_put(&self, method: &Method, url: &str, body: &Bytes) -> Option<Started> {
        let path = url.split(['?', '#']).next().unwrap_or_default();
        let rest = path.strip_prefix("/kv/")?;
        if method != Method::PUT {
            return None;
        }
        let key = match decode_key(rest) {
            Ok(key) => key,
            Err(e) => return Some(Started::Replied(Reply::bad_request(e))),
        };
        let value = body.clone();
        Some(
            match self.node.submit(KvCommand::Put { key, value }.encode()) {
                Ok(pending) => Started::Committing(pending),
                Err(e) => Started::Replied(self.failure(e, url)),
            },
        )
    }

    /// The reply to a put [`Service::start_put`] began, once its commit
    /// (or its failure) is known.
    pub fn put_committed(&self, committed: Result<LogIndex, Error>, url: &str) -> Reply {
        match committed {
            Ok(index) => Reply::json(200, json!({ "index": index.0 })),
            Err(e) => self.failure(e, url),
        }
    }

    /// A linearizable read: a read barrier, then the local state.
    fn get(&self, key: &str, url: &str) -> Reply {
        match self.node.read_barrier(self.timeout) {
            Ok(_) => match self.kv.get(key) {
                Some(value) => Reply {
                    status: 200,
                    body: value.to_vec(),
                    content_type: "application/octet-stream",
                    headers: Vec::new(),
                },
                None => Reply::error(404, Outcome::Definite, format!("no key {key:?}")),
            },
            Err(e) => self.failure(e, url),
        }
    }

    /// Proposes a command; for a `Cas` or `Delete`, waits until it is
    /// applied here to learn its result.
    fn write(&self, command: KvCommand, url: &str) -> Reply {
        let wants_result = matches!(command, KvCommand::Cas { .. } | KvCommand::Delete { .. });
        let index = match self.node.propose(command.encode()) {
            Ok(index) => index,
            Err(e) => return self.failure(e, url),
        };
        if !wants_result {
            return Reply::json(200, json!({ "index": index.0 }));
        }
        if let Err(e) = self.node.wait_applied(index, self.timeout) {
            let why = format!("committed at {index}, but not applied here: {e}");
            return Reply::error(504, Outcome::Unknown, why);
        }
        match self.kv.take_result(index) {
            Some(Applied::Swapped(true)) => Reply::json(200, json!({ "index": index.0 })),
            Some(Applied::Swapped(false)) => Reply::error(
                409,
                Outcome::Definite,
                "the current value differs from \"from\"",
            ),
            Some(Applied::Deleted(existed)) => {
                Reply::json(200, json!({ "index": index.0, "existed": existed }))
            }
            None => Reply::error(
                500,
                Outcome::Unknown,
                format!("committed at {index}, but its result is gone"),
            ),
        }
    }

    fn add_member(&self, body: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(body).trim().to_string();
        let address = if text.starts_with('{') {
            let parsed = serde_json::from_str::<Value>(&text);
            match parsed.as_ref().ok().and_then(|v| {
                v.get("raft")
                    .or_else(|| v.get("address"))
                    .and_then(Value::as_str)
            }) {
                Some(a) => a.to_string(),
                None => return Reply::bad_request("expected {\"raft\": \"host:port\"}"),
            }
        } else {
            text
        };
        if address.is_empty() || !address.contains(':') {
            return Reply::bad_request(format!("{address:?} is not a raft address (host:port)"));
        }
        match self.node.add_peer(&address) {
            Ok(id) => Reply::json(200, json!({ "id": id.0, "raft": address })),
            Err(e) => self.failure(e, "/members"),
        }
    }

    fn remove_member(&self, id: NodeId) -> Reply {
        // The core refuses an id above any it has assigned as invalid; to a
        // client both are the same absent resource.
        if !self.node.config().contains(id) {
            return Reply::error(404, Outcome::Definite, format!("node {id} is no member"));
        }
        match self.node.remove_peer(id) {
            Ok(()) => Reply::json(200, json!({ "removed": id.0 })),
            Err(e) => self.failure(e, "/members"),
        }
    }

    /// Records a member's HTTP address in the replicated state (on the
    /// leader; a follower redirects).
    fn record_http(&self, id: NodeId, body: &[u8], url: &str) -> Reply {
        let Ok(address) = std::str::from_utf8(body).map(str::trim) else {
            return Reply::bad_request("the HTTP address is not UTF-8");
        };
        if address.is_empty() || !address.contains(':') {
            return Reply::bad_request(format!("{address:?} is not an HTTP address (host:port)"));
        }
        if !self.node.config().contains(id) {
            return Reply::error(404, Outcome::Definite, format!("node {id} is no member"));
        }
        if self.kv.http_address(id).as_deref() == Some(address) {
            return Reply::json(200, json!({ "index": null }));
        }
        let command = KvCommand::SetHttp {
            node: id,
            address: address.to_string(),
        };
        match self.node.propose(command.encode()) {
            Ok(index) => Reply::json(200, json!({ "index": index.0 })),
            Err(e) => self.failure(e, url),
        }
    }

    fn status(&self) -> Reply {
        let metrics = match self.node.metrics() {
            Ok(m) => m,
            Err(e) => return self.failure(e, "/status"),
        };
        let config = self.node.config();
        let member_json = |id: NodeId| {
            let m = config.member(id);
            json!({
                "id": id.0,
                "raft": m.map(|m| m.address.clone()),
                "http": self.kv.http_address(id),
                "role": m.map(|m| match m.role {
                    MemberRole::Voter => "voter",
                    MemberRole::Learner => "learner",
                }),
            })
        };
        let digest = self.kv.digest();
        let t = &metrics.transport;
        let value = json!({
            "id": metrics.id.map(|id| id.0),
            "cluster_id": self.node.cluster_id().map(|c| c.0),
            "raft": self.node.address(),
            "http": self.http,
            "role": role_name(metrics.role),
            "term": metrics.term.0,
            "leader": metrics.leader.map(member_json),
            "commit": metrics.commit.0,
            "applied": metrics.applied.0,
            "last_index": metrics.last_index.0,
            "durable": metrics.durable.0,
            "members": config.members.iter().map(|m| member_json(m.id)).collect::<Vec<_>>(),
            "followers": metrics.followers.iter().map(|f| json!({
                "id": f.id.0,
                "match_index": f.match_index.0,
                "lag": f.lag,
                "streaming": f.streaming,
                "inflight_bytes": f.inflight_bytes,
            })).collect::<Vec<_>>(),
            "fsm": {
                "index": digest.index.0,
                "keys": digest.keys,
                "digest": format!("{:016x}", digest.hash),
            },
            "transport": {
                "messages_sent": t.messages_sent,
                "messages_dropped": t.messages_dropped,
                "messages_received": t.messages_received,
                "streams_opened": t.streams_opened,
                "streams_overflowed": t.streams_overflowed,
                "snapshots_sent": t.snapshots_sent,
                "snapshots_resumed": t.snapshots_resumed,
                "hellos_refused": t.hellos_refused,
                "refused_by_peers": t.refused_by_peers,
                "malformed_connections": t.malformed_connections,
                "last_refusal": t.last_refusal,
                "bytes_sent": t.bytes_sent,
            },
            "wal_fsyncs": metrics.wal_fsyncs,
            "first_index": metrics.first_index.0,
            "snapshot_index": metrics.snapshot_index.0,
            "snapshots": {
                "taken": metrics.snapshots.taken,
                "last_bytes": metrics.snapshots.last_bytes,
                "last_ms": metrics.snapshots.last_ms,
                "max_ms": metrics.snapshots.max_ms,
            },
            "log_reads": {
                "reads": metrics.log_reads.reads,
                "entries": metrics.log_reads.entries,
                "bytes": metrics.log_reads.bytes,
            },
        });
        Reply::json(200, value)
    }

    /// The reply to a failed request: a redirect to the leader when this
    /// node is not it, otherwise an error saying whether it may still apply.
    fn failure(&self, e: Error, url: &str) -> Reply {
        match e {
            Error::Request(RequestError::NotLeader {
                leader,
                outcome: Outcome::Definite,
            }) => match leader.and_then(|id| Some((id, self.kv.http_address(id)?))) {
                Some((id, http)) => {
                    let location = format!("http://{http}{url}");
                    let mut reply =
                        Reply::json(307, json!({ "leader": id.0, "location": location.clone() }));
                    reply.headers.push(("Location", location));
                    reply.headers.push(("Raft-Outcome", "definite".into()));
                    reply
                }
                None => {
                    let why = match leader {
                        Some(id) => format!("the leader {id}'s HTTP address is not known yet"),
                        None => "no leader known".to_string(),
                    };
                    let mut reply = Reply::error(503, Outcome::Definite, why);
                    reply.headers.push(("Retry-After", "1".into()));
                    reply
                }
            },
            Error::Request(RequestError::NotLeader { .. }) => Reply::error(
                503,
                Outcome::Unknown,
                "leadership was lost while the request was in flight",
            ),
            Error::Timeout { outcome } => Reply::error(504, outcome, e),
            Error::Request(ref r) => {
                let status = match r {
                    RequestError::TooLarge { .. } => 413,
                    RequestError::NodeNotFound(_) => 404,
                    RequestError::InvalidNodeId(_) | RequestError::NodeAddressRequired => 400,
                    RequestError::DuplicateNodeId(_) | RequestError::DuplicateNodeAddress(_) => 409,
                    _ => 503,
                };
                Reply::error(status, r.outcome(), e)
            }
            Error::Join(_) => Reply::error(502, e.outcome(), e),
            Error::Closed | Error::Stopped(_) | Error::Abandoned(_) => {
                Reply::error(503, e.outcome(), e)
            }
            e => Reply::error(500, e.outcome(), e),
        }
    }
}

fn not_allowed(allow: &str) -> Reply {
    let mut reply = Reply::error(
        405,
        Outcome::Definite,
        format!("method not allowed: {allow}"),
    );
    reply.headers.push(("Allow", allow.to_string()));
    reply
}

/// The largest body the request for `method` and `path` may carry; 0 for
/// a request whose body is ignored (never read).
pub fn body_bytes_max(method: &Method, path: &str) -> usize {
    match *method {
        Method::PUT if path.starts_with("/kv/") => VALUE_BYTES_MAX,
        Method::POST if path.starts_with("/kv/") && path.ends_with("/cas") => {
            2 * VALUE_BYTES_MAX + 1024
        }
        Method::POST if path == "/members" => 4096,
        Method::PUT if path.starts_with("/members/") => 4096,
        _ => 0,
    }
}

/// A key from the URL: percent-decoded, UTF-8, not empty.
pub fn decode_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => out.push(b),
                None => return Err(format!("bad percent-encoding in key {raw:?}")),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let key = String::from_utf8(out).map_err(|_| format!("key {raw:?} is not UTF-8"))?;
    if key.is_empty() {
        return Err("empty key".into());
    }
    Ok(key)
}

/// The body of a CAS: `{"from": string or null, "to": string}`.
fn parse_cas(body: &[u8]) -> Result<(Option<Bytes>, Bytes), Reply> {
    let bad = |why: &str| {
        Reply::bad_request(format!(
            "{why}; expected {{\"from\": \"old\" or null, \"to\": \"new\"}}"
        ))
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("not JSON ({e})")))?;
    let from = match value.get("from") {
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Bytes::from(s.clone().into_bytes())),
        Some(_) => return Err(bad("\"from\" must be a string or null")),
        None => return Err(bad("\"from\" is missing")),
    };
    let to = match value.get("to") {
        Some(Value::String(s)) => Bytes::from(s.clone().into_bytes()),
        Some(_) => return Err(bad("\"to\" must be a string")),
        None => return Err(bad("\"to\" is missing")),
    };
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_and_checked() {
        assert_eq!(decode_key("a%2Fb%20c").unwrap(), "a/b c");
        assert_eq!(decode_key("plain").unwrap(), "plain");
        assert!(decode_key("").is_err());
        assert!(decode_key("bad%2").is_err());
        assert!(decode_key("bad%zz").is_err());
        assert!(decode_key("%ff").is_err(), "not UTF-8");
    }

    #[test]
    fn cas_bodies_are_parsed_or_refused_with_400() {
        let (from, to) = parse_cas(br#"{"from": null, "to": "x"}"#).unwrap();
        assert_eq!((from, &to[..]), (None, &b"x"[..]));
        let (from, _) = parse_cas(br#"{"from": "a", "to": "b"}"#).unwrap();
        assert_eq!(from.as_deref(), Some(&b"a"[..]));
        for body in [
            &b"nope"[..],
            br#"{"to": "x"}"#,
            br#"{"from": 1, "to": "x"}"#,
            br#"{"from": null}"#,
        ] {
            let reply = parse_cas(body).unwrap_err();
            assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(body));
        }
    }
}
