//! The transport's own control records: the hello that opens every
//! connection, its reply, and the admin request/response pair.
//!
//! Every connection starts with the connecting side writing a [`Hello`]; the
//! accepting side answers with a [`HelloReply`] and, if it accepted, both
//! sides continue with `raft_core::wire` records (messages, or a stream's
//! frames), or with one [`AdminRequest`] and one [`AdminResponse`].
//!
//! A control record is framed like a wire record, with its own magic so a
//! stray client (an HTTP probe, a port scanner) is told apart at once:
//!
//! ```text
//! offset  bytes  field
//!  0      4      magic    "SRFT"
//!  4      1      version  2 (1 before StreamOpen::resume)
//!  5      4      len      payload bytes, u32 LE, at most CONTROL_PAYLOAD_BYTES_MAX
//!  9      4      crc      CRC-32 (IEEE) of the payload, u32 LE
//! 13      len    payload  postcard(Control)
//! ```

use raft_core::{ClusterId, LogIndex, NodeId, RequestError, StreamId, StreamOpen};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use thiserror::Error;

const MAGIC: [u8; 4] = *b"SRFT";
const VERSION: u8 = 2;
const HEADER_BYTES: usize = 13;
/// The largest control payload, in bytes (a hello or an admin exchange is tiny).
pub const CONTROL_PAYLOAD_BYTES_MAX: usize = 64 << 10;

/// What a connection will carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionKind {
    /// Datagram messages from the connecting node (votes, heartbeats), one way.
    Messages,
    /// A replication stream, opened by a follower to its leader; frames both ways.
    Stream {
        /// The stream's id, chosen by the follower's core.
        stream: StreamId,
        /// The core's handshake.
        open: StreamOpen,
    },
    /// One admin request and its response, from a node that may not be a member.
    Admin,
}

/// The first record on every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The connecting node's cluster (`None` for a node that has not joined yet).
    pub cluster_id: Option<ClusterId>,
    /// The connecting node's id, if it has one.
    pub from: Option<NodeId>,
    /// The node it means to reach, if it knows (a message's or stream's recipient).
    pub to: Option<NodeId>,
    /// Where the connecting node listens. A node that just joined learns its
    /// leader's address from it before the configuration reaches its log.
    pub address: Option<String>,
    /// What the connection carries.
    pub kind: ConnectionKind,
}

/// Why a hello was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum HelloRefusal {
    /// The two nodes belong to different clusters (or the acceptor has none yet).
    #[error("foreign cluster: we are {ours:?}, you said {theirs:?}")]
    ForeignCluster {
        /// The acceptor's cluster.
        ours: Option<ClusterId>,
        /// The connector's cluster.
        theirs: Option<ClusterId>,
    },
    /// The connector meant another node (the address now belongs to someone else).
    #[error("misdirected: this is {ours:?}, you wanted {theirs:?}")]
    Misdirected {
        /// The acceptor's id.
        ours: Option<NodeId>,
        /// The id the connector wanted.
        theirs: Option<NodeId>,
    },
    /// The hello is not acceptable for this kind of connection.
    #[error("bad hello: {0}")]
    Invalid(String),
}

/// The acceptor's answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Go on.
    Accepted,
    /// The connection will be closed.
    Refused(HelloRefusal),
}

/// A membership request from outside the leader (a joiner, or a member
/// forwarding `add_peer`/`remove_peer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// A new node at `address` asks to join; the answer carries its id.
    Join {
        /// Where the new node listens.
        address: String,
    },
    /// Add a node at `address` (forwarded `add_peer`).
    Add {
        /// Where the new node listens.
        address: String,
    },
    /// Remove member `id` (forwarded `remove_peer` or `leave`).
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// The answer to an [`AdminRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminResponse {
    /// The change committed.
    Changed {
        /// The node added (its new id) or removed.
        node: NodeId,
        /// The cluster.
        cluster_id: ClusterId,
        /// The change's log index.
        index: LogIndex,
    },
    /// Ask the leader instead.
    Redirect {
        /// The leader.
        leader: NodeId,
        /// Its address.
        address: String,
    },
    /// The core refused the change.
    Failed(RequestError),
    /// The node cannot serve admin requests now (not started, closing, timed out).
    Unavailable(String),
}

/// Every control record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`HelloReply`].
    HelloReply(HelloReply),
    /// See [`AdminRequest`].
    AdminRequest(AdminRequest),
    /// See [`AdminResponse`].
    AdminResponse(AdminResponse),
}

/// A control record that could not be read.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The connection failed or timed out.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a control record of this version.
    #[error("malformed control record: {0}")]
    Malformed(String),
}

/// The bytes of one control record.
pub fn encode_control(control: &Control) -> Vec<u8> {
    let payload = postcard::to_allocvec(control).expect("control records always serialize");
    assert!(
        payload.len() <= CONTROL_PAYLOAD_BYTES_MAX,
        "control record of {} bytes",
        payload.len()
    );
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Writes one control record.
pub fn write_control(w: &mut impl Write, control: &Control) -> io::Result<()> {
    w.write_all(&encode_control(control))?;
    w.flush()
}

/// Reads exactly one control record (and not a byte more, so wire records
/// that follow stay in the socket). Never panics, whatever the bytes.
pub fn read_control(r: &mut impl Read) -> Result<Control, ControlError> {
    let mut header = [0u8; HEADER_BYTES];
    r.read_exact(&mut header)?;
    let malformed = |why: String| Err(ControlError::Malformed(why));
    if header[0..4] != MAGIC {
        return malformed("bad magic (not a raft node?)".into());
    }
    if header[4] != VERSION {
        return malformed(format!("unsupported version {}", header[4]));
    }
    let len = u32::from_le_bytes([header[5], header[6], header[7], header[8]]) as usize;
    if len > CONTROL_PAYLOAD_BYTES_MAX {
        return malformed(format!("length {len} above {CONTROL_PAYLOAD_BYTES_MAX}"));
    }
    let stored = u32::from_le_bytes([header[9], header[10], header[11], header[12]]);
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    let computed = crc32fast::hash(&payload);
    if stored != computed {
        return malformed(format!("checksum {computed:08x}, stored {stored:08x}"));
    }
    match postcard::take_from_bytes::<Control>(&payload) {
        Ok((control, [])) => Ok(control),
        Ok((_, rest)) => malformed(format!("{} bytes after the record", rest.len())),
        Err(e) => malformed(e.to_string()),
    }
}

/// Reads a socket until one deadline for the whole exchange. A read timeout
/// alone bounds each read, not the exchange: a peer sending a byte now and
/// then, each within the timeout, would hold the connection (its thread, its
/// slot among `connections_max`) for as long as it cares to.
pub(crate) struct DeadlineReader<'a> {
    socket: &'a TcpStream,
    deadline: Instant,
}

impl<'a> DeadlineReader<'a> {
    /// Reads from `socket` for at most `within` from now.
    pub(crate) fn new(socket: &'a TcpStream, within: Duration) -> DeadlineReader<'a> {
        DeadlineReader {
            socket,
            deadline: Instant::now() + within,
        }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake deadline passed",
            ));
        }
        self.socket.set_read_timeout(Some(left))?;
        let mut socket = self.socket;
        socket.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::Term;

    fn samples() -> Vec<Control> {
        vec![
            Control::Hello(Hello {
                cluster_id: Some(ClusterId(9)),
                from: Some(NodeId(2)),
                to: Some(NodeId(1)),
                address: Some("127.0.0.1:2".into()),
                kind: ConnectionKind::Stream {
                    stream: StreamId(77),
                    open: StreamOpen {
                        cluster_id: ClusterId(9),
                        follower: NodeId(2),
                        leader: NodeId(1),
                        term: Term(3),
                        probe_index: LogIndex(10),
                        probe_term: Term(2),
                        commit: LogIndex(9),
                        resume: None,
                    },
                },
            }),
            Control::HelloReply(HelloReply::Refused(HelloRefusal::ForeignCluster {
                ours: Some(ClusterId(1)),
                theirs: Some(ClusterId(2)),
            })),
            Control::AdminRequest(AdminRequest::Join {
                address: "127.0.0.1:1".into(),
            }),
            Control::AdminResponse(AdminResponse::Failed(RequestError::LeaderNotReady)),
        ]
    }

    #[test]
    fn control_records_round_trip_one_at_a_time() {
        let mut bytes = Vec::new();
        for c in samples() {
            bytes.extend_from_slice(&encode_control(&c));
        }
        bytes.extend_from_slice(b"rest");
        let mut r = &bytes[..];
        for c in samples() {
            assert_eq!(read_control(&mut r).unwrap(), c);
        }
        assert_eq!(r, b"rest", "nothing read past the records");
    }

    #[test]
    fn damaged_or_cut_records_are_errors_not_panics() {
        let bytes = encode_control(&samples()[0]);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(read_control(&mut &damaged[..]).is_err(), "flip at {i}");
            assert!(read_control(&mut &bytes[..i]).is_err(), "cut at {i}");
        }
        assert!(read_control(&mut &b"GET / HTTP/1.1\r\n\r\n"[..]).is_err());
    }
}
