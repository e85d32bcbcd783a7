//! A peer that sends well-formed frames and messages which break the
//! protocol: the node refuses each with a typed `Violation` (a follower also
//! closes the stream) and keeps its log, and never panics.
use crate::harness::*;
use bytes::Bytes;
use raft_core::*;

const LEADER: NodeId = NodeId(1);
const ME: NodeId = NodeId(2);
const TERM: u64 = 6;

fn e(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Command,
        data: Bytes::new(),
    }
}

fn chunk(prev: (u64, u64), commit: u64, entries: Vec<LogEntry>) -> Frame {
    Frame::Chunk {
        term: Term(TERM),
        prev_index: LogIndex(prev.0),
        prev_term: Term(prev.1),
        leader_commit: LogIndex(commit),
        entries: entries.into(),
    }
}

/// A follower in term 6 whose log 1..=10 (terms 1,1,2,2,3,3,4,4,5,5) is
/// committed through 10, with the stream that committed it.
struct Follower {
    node: Node,
    stream: StreamId,
    now: Instant,
}

impl Follower {
    fn new() -> Follower {
        let mut f = Follower::restarted(None, (1..=10).map(|i| e(i, i.div_ceil(2))).collect());
        let actions = f.frame(chunk((10, 5), 10, vec![]));
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Refused { .. })),
            "{actions:?}"
        );
        assert_eq!(f.node.commit_index(), LogIndex(10));
        f
    }

    /// A follower in term 6 restarted from `snapshot` and `entries`, with the
    /// stream it opened at the leader's first heartbeat; nothing committed.
    fn restarted(snapshot: Option<SnapshotMeta>, entries: Vec<LogEntry>) -> Follower {
        let mut node = Node::new(
            NodeOptions::new(ME),
            RecoveredState {
                hard_state: HardState {
                    cluster_id: Some(CLUSTER),
                    term: Term(TERM),
                    vote: None,
                },
                snapshot,
                entries,
                stored: None,
            },
            7,
            Instant(0),
        )
        .expect("a consistent log");
        let actions = node.step(
            Instant(1),
            Event::MessageReceived(heartbeat(LEADER, ME, TERM, 0)),
        );
        let stream = opened_stream(&actions);
        Follower {
            node,
            stream,
            now: Instant(1),
        }
    }

    fn frame(&mut self, frame: Frame) -> Vec<Action> {
        self.now = self.now + Duration::from_millis(1);
        self.node.step(
            self.now,
            Event::FrameReceived {
                stream: self.stream,
                frame,
            },
        )
    }

    /// Closes the stream and lets the follower open a fresh one (no frame
    /// yet); returns its handshake.
    fn reopen(&mut self) -> StreamOpen {
        self.now = self.now + Duration::from_millis(1);
        self.node.step(
            self.now,
            Event::StreamClosed {
                stream: self.stream,
            },
        );
        self.now = self.now + self.node.options().reconnect_delay;
        let actions = self.node.step(self.now, Event::Tick);
        self.stream = opened_stream(&actions);
        actions
            .into_iter()
            .find_map(|a| match a {
                Action::OpenStream { open, .. } => Some(open),
                _ => None,
            })
            .expect("opened above")
    }

    /// `frame` is refused with `violation`: the stream closes and the log,
    /// its commit index and its applied index stay as they were.
    fn assert_refused(&mut self, frame: Frame, violation: Violation) {
        let before = (
            self.node.last_index(),
            self.node.last_term(),
            self.node.commit_index(),
        );
        let stream = self.stream;
        let actions = self.frame(frame);
        assert!(
            actions.contains(&Action::Refused {
                peer: LEADER,
                reason: Refusal::Misbehaving(violation.clone()),
            }),
            "expected {violation:?}, got {actions:?}"
        );
        assert!(actions.contains(&Action::CloseStream {
            stream,
            peer: LEADER
        }));
        assert!(
            !actions.iter().any(|a| matches!(
                a,
                Action::AppendLog(_)
                    | Action::TruncateLog { .. }
                    | Action::InstallSnapshot { .. }
                    | Action::OpenStream { .. }
            )),
            "a refused frame changes nothing and the stream reopens only after a delay: {actions:?}"
        );
        let after = (
            self.node.last_index(),
            self.node.last_term(),
            self.node.commit_index(),
        );
        assert_eq!(before, after);
        self.node.check_invariants();
    }
}

/// The example: commit 10 with term(10) = 5 receives
/// `Chunk{prev=(10,1), entries=[(11,1)]}`. It used to pass the checks (prev
/// within the committed prefix was taken on trust) and panic in the append.
#[test]
fn a_chunk_whose_prev_contradicts_a_committed_entry_is_refused_without_a_panic() {
    let mut f = Follower::new();
    f.assert_refused(
        chunk((10, 1), 10, vec![e(11, 1)]),
        Violation::ContradictsCommitted(LogIndex(10)),
    );
}

#[test]
fn a_chunk_rewriting_committed_entries_is_refused() {
    let mut f = Follower::new();
    f.reopen();
    // From the start of the log, with the committed entries' terms flattened
    // to 1 and one new entry whose term would then decrease in our log.
    let entries = (1..=11).map(|i| e(i, 1)).collect();
    f.assert_refused(
        chunk((0, 0), 0, entries),
        Violation::ContradictsCommitted(LogIndex(3)),
    );
}

#[test]
fn chunk_terms_that_decrease_or_pass_the_stream_term_are_refused() {
    let mut f = Follower::new();
    f.assert_refused(
        chunk((10, 5), 10, vec![e(11, 6), e(12, 5)]),
        Violation::TermsDecrease(LogIndex(12)),
    );
    f.reopen();
    f.assert_refused(
        chunk((10, 5), 10, vec![e(11, 4)]),
        Violation::TermsDecrease(LogIndex(11)),
    );
    f.reopen();
    f.assert_refused(
        chunk((10, 5), 10, vec![e(11, 7)]),
        Violation::TermAboveStream {
            index: LogIndex(11),
            term: Term(7),
        },
    );
    f.reopen();
    f.assert_refused(
        chunk((10, 7), 10, vec![]),
        Violation::TermAboveStream {
            index: LogIndex(10),
            term: Term(7),
        },
    );
    f.reopen();
    let mut other_term = chunk((10, 5), 10, vec![]);
    if let Frame::Chunk { term, .. } = &mut other_term {
        *term = Term(5);
    }
    f.assert_refused(
        other_term,
        Violation::ChunkOfAnotherTerm {
            chunk: Term(5),
            stream: Term(6),
        },
    );
}

#[test]
fn chunk_entries_that_skip_an_index_are_refused() {
    // The codec refuses these too; the core does not rely on it.
    let mut f = Follower::new();
    f.assert_refused(
        chunk((10, 5), 10, vec![e(11, 6), e(13, 6)]),
        Violation::EntriesNotContiguous(LogIndex(13)),
    );
}

#[test]
fn a_chunk_claiming_a_commit_beyond_its_last_entry_is_refused() {
    let mut f = Follower::new();
    f.assert_refused(
        chunk((10, 5), 12, vec![e(11, 6)]),
        Violation::CommitBeyondChunk {
            commit: LogIndex(12),
            last: LogIndex(11),
        },
    );
}

#[test]
fn a_first_chunk_starting_beyond_the_log_is_refused() {
    let mut f = Follower::new();
    f.reopen();
    f.assert_refused(
        chunk((15, 5), 10, vec![e(16, 6)]),
        Violation::PrevBeyondLog {
            prev: LogIndex(15),
            last: LogIndex(10),
        },
    );
}

#[test]
fn duplicated_and_reordered_chunks_are_refused() {
    let mut f = Follower::new();
    let first = chunk((10, 5), 10, vec![e(11, 6)]);
    assert!(
        f.frame(first.clone())
            .iter()
            .any(|a| matches!(a, Action::AppendLog(_)))
    );
    f.assert_refused(
        first,
        Violation::ChunkOutOfOrder {
            expected: LogIndex(11),
            prev: LogIndex(10),
        },
    );
    f.reopen();
    assert!(
        f.frame(chunk((11, 6), 10, vec![]))
            .iter()
            .all(|a| !matches!(a, Action::Refused { .. }))
    );
    // A chunk that would follow one not yet received.
    f.assert_refused(
        chunk((12, 6), 10, vec![e(13, 6)]),
        Violation::ChunkOutOfOrder {
            expected: LogIndex(11),
            prev: LogIndex(12),
        },
    );
}

#[test]
fn a_chunk_contradicting_what_its_own_stream_validated_is_refused() {
    let mut f = Follower::new();
    f.frame(chunk((10, 5), 10, vec![e(11, 6), e(12, 6)]));
    // Entries 11 and 12 are uncommitted, but this stream vouched for them.
    f.assert_refused(
        chunk((12, 5), 10, vec![]),
        Violation::ContradictsValidated(LogIndex(12)),
    );
}

fn snapshot_meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
        config: Config {
            cluster_id: CLUSTER,
            index: LogIndex(1),
            max_node_id: ME,
            members: vec![Member {
                id: LEADER,
                address: "a".into(),
                role: MemberRole::Voter,
            }],
        },
    }
}

fn snapshot_begin(index: u64, term: u64) -> Frame {
    Frame::SnapshotBegin {
        meta: snapshot_meta(index, term),
        size: 4,
        offset: 0,
    }
}

#[test]
fn a_snapshot_behind_the_stream_is_refused() {
    let mut f = Follower::new();
    f.frame(chunk((10, 5), 10, vec![e(11, 6), e(12, 6)]));
    f.assert_refused(
        snapshot_begin(11, 6),
        Violation::SnapshotRewindsStream {
            snapshot: LogIndex(11),
            stream: LogIndex(12),
        },
    );
}

#[test]
fn a_snapshot_that_contradicts_the_committed_prefix_is_refused() {
    let mut f = Follower::new();
    f.reopen();
    // Inside the committed prefix with another term at its index.
    f.assert_refused(
        snapshot_begin(8, 3),
        Violation::ContradictsCommitted(LogIndex(8)),
    );
    f.reopen();
    // Beyond it, but of a term below our committed entry's.
    f.assert_refused(
        snapshot_begin(20, 4),
        Violation::ContradictsCommitted(LogIndex(10)),
    );
    f.reopen();
    f.assert_refused(
        snapshot_begin(20, 7),
        Violation::SnapshotTermAboveStream(Term(7)),
    );
}

#[test]
fn frames_out_of_place_in_a_snapshot_transfer_are_refused() {
    let mut f = Follower::new();
    let meta = snapshot_meta(20, 6);
    let frames = wire::snapshot_frames(&meta, &Bytes::from_static(b"abcdefgh"), 4);
    let [begin, first, second, end] = &frames[..] else {
        panic!("{frames:?}")
    };
    f.frame(begin.clone());
    f.assert_refused(chunk((10, 5), 10, vec![]), Violation::ChunkInsideSnapshot);
    f.reopen();
    f.frame(begin.clone());
    f.assert_refused(begin.clone(), Violation::SnapshotInsideSnapshot);
    f.reopen();
    f.frame(begin.clone());
    f.assert_refused(
        second.clone(),
        Violation::SnapshotChunkOutOfPlace {
            offset: 4,
            expected: 0,
        },
    );
    f.reopen();
    f.frame(begin.clone());
    f.frame(first.clone());
    f.assert_refused(
        first.clone(),
        Violation::SnapshotChunkOutOfPlace {
            offset: 0,
            expected: 4,
        },
    );
    f.reopen();
    f.frame(begin.clone());
    f.frame(first.clone());
    f.assert_refused(end.clone(), Violation::SnapshotCorrupt);
    f.reopen();
    f.assert_refused(end.clone(), Violation::SnapshotDataOutsideSnapshot);
}

#[test]
fn an_ack_sent_to_a_follower_is_refused() {
    let mut f = Follower::new();
    f.assert_refused(
        Frame::Ack {
            durable: LogIndex(3),
        },
        Violation::WrongDirection,
    );
}

/// The honest counterpart of the refusals above: a snapshot beyond the
/// committed prefix, then the chunk after it, are accepted.
#[test]
fn an_honest_snapshot_then_chunk_is_accepted() {
    let mut f = Follower::new();
    let meta = snapshot_meta(20, 6);
    let mut installs = Vec::new();
    for frame in wire::snapshot_frames(&meta, &Bytes::from_static(b"abcdefgh"), 4) {
        let actions = f.frame(frame);
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Refused { .. })),
            "{actions:?}"
        );
        installs.extend(actions.into_iter().filter_map(|a| match a {
            Action::InstallSnapshot { meta } => Some(meta),
            _ => None,
        }));
    }
    assert_eq!(installs, vec![meta.clone()]);
    let held = f.frame(chunk((20, 6), 21, vec![e(21, 6)]));
    assert!(held.is_empty(), "held until the snapshot lands: {held:?}");
    f.now = f.now + Duration::from_millis(1);
    let actions = f
        .node
        .step(f.now, Event::SnapshotInstalled { meta: meta.clone() });
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::AppendLog(es) if es[0].index == LogIndex(21))),
        "{actions:?}"
    );
    assert_eq!(f.node.commit_index(), LogIndex(21));
}

/// A heartbeat in the largest term used to be obeyed; the next election
/// timeout then overflowed the term. Found next by fuzzing (step_node): a
/// peer's term of `u64::MAX - 1` let the node's own campaigns reach the
/// largest term and overflow at the following one. Terms above `Term::LIMIT`
/// are refused.
#[test]
fn messages_with_terms_above_the_limit_are_refused_and_the_node_still_campaigns() {
    let config = Config {
        cluster_id: CLUSTER,
        index: LogIndex(1),
        max_node_id: NodeId(3),
        members: (1..=3)
            .map(|id| Member {
                id: NodeId(id),
                address: format!("n{id}"),
                role: MemberRole::Voter,
            })
            .collect(),
    };
    let entry = LogEntry {
        index: LogIndex(1),
        term: Term(1),
        kind: EntryKind::Initialize,
        data: config.encode(),
    };
    let hard_state = HardState {
        cluster_id: Some(CLUSTER),
        term: Term(1),
        vote: None,
    };
    let recovered = RecoveredState {
        hard_state,
        snapshot: None,
        entries: vec![entry],
        stored: None,
    };
    let mut node = Node::new(NodeOptions::new(ME), recovered, 3, Instant(0)).unwrap();
    for term in [u64::MAX, u64::MAX - 1, Term::LIMIT.0 + 1] {
        let mut hb = heartbeat(NodeId(3), ME, 0, 0);
        hb.term = Term(term);
        let actions = node.step(Instant(1), Event::MessageReceived(hb));
        assert!(
            actions.contains(&Action::Refused {
                peer: NodeId(3),
                reason: Refusal::Misbehaving(Violation::TermExhausted(Term(term))),
            }),
            "{actions:?}"
        );
        assert_eq!(node.term(), Term(1));
    }
    let later = node.next_deadline();
    node.step(later, Event::Tick);
    assert_eq!(node.role(), Role::PreCandidate);
    // The limit itself is a term the node takes.
    let mut hb = heartbeat(NodeId(3), ME, 0, 0);
    hb.term = Term::LIMIT;
    let actions = node.step(later, Event::MessageReceived(hb));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Refused { .. })),
        "{actions:?}"
    );
    assert_eq!(node.term(), Term::LIMIT);
    assert_eq!(node.leader(), Some(NodeId(3)));
}

/// The chunks of snapshot 20/6 (12 bytes, 4 per chunk) the follower stores.
fn stored_chunks(actions: &[Action]) -> Vec<(u64, Bytes)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ReceiveSnapshotChunk { offset, data, .. } => Some((*offset, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_snapshot_transfer_resumes_only_from_the_bytes_the_follower_stores() {
    let meta = snapshot_meta(20, 6);
    let data = Bytes::from_static(b"abcdefghijkl");
    let window = |offset, first| wire::snapshot_window_frames(&meta, &data, offset, 4, first, 4);
    let resume_at = |received| {
        Some(SnapshotResume {
            index: LogIndex(20),
            term: Term(6),
            received,
        })
    };

    // Two chunks arrive, then the stream breaks: the follower offers to go on.
    let mut f = Follower::new();
    for frame in [window(0, true), window(4, false)].concat() {
        f.frame(frame);
    }
    assert_eq!(f.reopen().resume, resume_at(8));
    // The leader resumes there: the chunks continue the stored bytes and the
    // snapshot installs once.
    let mut actions = Vec::new();
    for frame in window(8, true) {
        actions.extend(f.frame(frame));
    }
    assert_eq!(stored_chunks(&actions), vec![(8, data.slice(8..))]);
    assert_eq!(installs(&actions), 1, "{actions:?}");

    // A resume the follower did not offer, anywhere else or of another
    // snapshot, is refused, and the part held is forgotten.
    let mut f = Follower::new();
    for frame in [window(0, true), window(4, false)].concat() {
        f.frame(frame);
    }
    f.reopen();
    f.assert_refused(
        window(4, true)[0].clone(),
        Violation::SnapshotResumeMismatch { offset: 4, held: 8 },
    );
    assert_eq!(f.reopen().resume, None, "refused: the transfer starts over");
    let mut f = Follower::new();
    f.frame(window(0, true)[0].clone());
    f.frame(window(0, true)[1].clone());
    f.reopen();
    let other = snapshot_meta(22, 6);
    let begin = wire::snapshot_window_frames(&other, &data, 4, 4, true, 4)[0].clone();
    f.assert_refused(
        begin,
        Violation::SnapshotResumeMismatch { offset: 4, held: 4 },
    );

    // A leader may ignore the offer and start over from byte 0.
    let mut f = Follower::new();
    f.frame(window(0, true)[0].clone());
    f.frame(window(0, true)[1].clone());
    assert_eq!(f.reopen().resume, resume_at(4));
    let mut actions = Vec::new();
    for frame in wire::snapshot_frames(&meta, &data, 4) {
        actions.extend(f.frame(frame));
    }
    assert_eq!(stored_chunks(&actions)[0], (0, data.slice(..4)));
    assert_eq!(installs(&actions), 1);

    // Or go on with entries: the part held is no longer needed.
    let mut f = Follower::new();
    f.frame(window(0, true)[0].clone());
    f.frame(window(0, true)[1].clone());
    f.reopen();
    f.frame(chunk((10, 5), 10, vec![]));
    assert_eq!(f.reopen().resume, None);

    // Nothing is offered for a snapshot we already hold (it is not stored).
    let mut f = Follower::new();
    let held = snapshot_meta(10, 5);
    let frames = wire::snapshot_window_frames(&held, &data, 0, 4, true, 4);
    for frame in frames {
        f.frame(frame);
    }
    assert_eq!(f.reopen().resume, None);
}

/// Feeds an honest snapshot transfer of `meta` (8 bytes, 4 per chunk): no
/// frame may be refused. Returns the actions of all its frames.
fn honest_snapshot(f: &mut Follower, meta: &SnapshotMeta) -> Vec<Action> {
    let mut all = Vec::new();
    for frame in wire::snapshot_frames(meta, &Bytes::from_static(b"abcdefgh"), 4) {
        let actions = f.frame(frame);
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Refused { .. })),
            "{meta}: {actions:?}"
        );
        all.extend(actions);
    }
    all
}

fn installs(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::InstallSnapshot { .. }))
        .count()
}

#[test]
fn a_snapshot_where_the_stream_stands_that_agrees_with_the_commit_is_acked_but_not_installed() {
    let mut f = Follower::new();
    // Exactly at the stream's position and our commit index, with its term.
    let actions = honest_snapshot(&mut f, &snapshot_meta(10, 5));
    assert_eq!(installs(&actions), 0, "we hold it already: {actions:?}");
    let whole = Frame::SnapshotAck {
        received: 8,
        size: 8,
    };
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SendFrame { frame, .. } if *frame == whole)),
        "the leader's budget is freed: {actions:?}"
    );
    // The stream goes on right after it.
    let actions = f.frame(chunk((10, 5), 11, vec![e(11, 6)]));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::AppendLog(es) if es[0].index == LogIndex(11))),
        "{actions:?}"
    );
}

#[test]
fn snapshots_at_the_edges_of_what_is_allowed_are_installed() {
    // Its term equals the term at our commit index.
    let mut f = Follower::new();
    assert_eq!(installs(&honest_snapshot(&mut f, &snapshot_meta(20, 5))), 1);
    // Its configuration came from its own last entry.
    let mut f = Follower::new();
    let mut meta = snapshot_meta(20, 6);
    meta.config.index = LogIndex(20);
    assert_eq!(installs(&honest_snapshot(&mut f, &meta)), 1);
}

#[test]
fn a_whole_snapshot_whose_end_carries_another_checksum_is_refused() {
    let mut f = Follower::new();
    let meta = snapshot_meta(20, 6);
    let frames = wire::snapshot_frames(&meta, &Bytes::from_static(b"abcdefgh"), 4);
    let [begin, first, second, Frame::SnapshotEnd { crc }] = &frames[..] else {
        panic!("{frames:?}")
    };
    for frame in [begin, first, second] {
        f.frame(frame.clone());
    }
    f.assert_refused(
        Frame::SnapshotEnd {
            crc: crc.wrapping_add(1),
        },
        Violation::SnapshotCorrupt,
    );
}

/// A transfer cut short is not a snapshot, even when the end's checksum is
/// right for the bytes that did arrive: installing it would hand the state
/// machine half of its state.
#[test]
fn a_snapshot_that_ends_before_its_declared_size_is_refused_even_with_a_matching_checksum() {
    let mut f = Follower::new();
    let meta = snapshot_meta(20, 6);
    let frames = wire::snapshot_frames(&meta, &Bytes::from_static(b"abcdefgh"), 4);
    let [begin, first, _second, _end] = &frames[..] else {
        panic!("{frames:?}")
    };
    for frame in [begin, first] {
        f.frame(frame.clone());
    }
    f.assert_refused(
        Frame::SnapshotEnd {
            crc: crc32fast::hash(b"abcd"),
        },
        Violation::SnapshotCorrupt,
    );
}

/// A heartbeat may commit, from the log the stream already delivered, the
/// very index a snapshot in transfer ends at. The follower has then applied
/// everything the snapshot holds: the end of the transfer is acked but
/// installs nothing (an install would rebuild the state machine under
/// entries it already applied).
#[test]
fn a_snapshot_that_the_commit_reaches_while_it_streams_in_is_not_installed() {
    let mut f = Follower::new();
    f.frame(chunk((10, 5), 10, (11..=20).map(|i| e(i, 6)).collect()));
    let meta = snapshot_meta(20, 6);
    let frames = wire::snapshot_frames(&meta, &Bytes::from_static(b"abcdefgh"), 4);
    let [begin, first, second, end] = &frames[..] else {
        panic!("{frames:?}")
    };
    let mut actions = Vec::new();
    for frame in [begin, first] {
        actions.extend(f.frame(frame.clone()));
    }
    f.now = f.now + Duration::from_millis(1);
    actions.extend(f.node.step(
        f.now,
        Event::MessageReceived(heartbeat(LEADER, ME, TERM, 20)),
    ));
    assert_eq!(f.node.commit_index(), LogIndex(20));
    assert_eq!(f.node.applied_index(), LogIndex(20));
    for frame in [second, end] {
        actions.extend(f.frame(frame.clone()));
    }
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Refused { .. })),
        "{actions:?}"
    );
    assert_eq!(installs(&actions), 0, "{actions:?}");
    assert_eq!(f.node.applied_index(), LogIndex(20));
    f.node.check_invariants();
}

#[test]
fn a_follower_whose_stream_breaks_while_it_installs_a_snapshot_reopens_only_once_installed() {
    let mut f = Follower::new();
    let meta = snapshot_meta(20, 6);
    assert_eq!(installs(&honest_snapshot(&mut f, &meta)), 1);
    f.now = f.now + Duration::from_millis(1);
    f.node.step(f.now, Event::StreamClosed { stream: f.stream });
    // The reconnect delay passes while the driver still installs: no stream
    // may open before the install lands, so no wake-up is due for it either
    // (a deadline that stays in the past makes a driver spin).
    f.now = f.now + f.node.options().reconnect_delay;
    let actions = f.node.step(f.now, Event::Tick);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::OpenStream { .. })),
        "{actions:?}"
    );
    assert!(
        f.node.next_deadline() > f.now,
        "asks for {} at {}",
        f.node.next_deadline(),
        f.now
    );
    f.now = f.now + Duration::from_millis(1);
    let actions = f.node.step(f.now, Event::SnapshotInstalled { meta });
    assert_ne!(opened_stream(&actions), f.stream);
}

#[test]
fn a_follower_installing_a_snapshot_holds_a_budget_of_chunks_but_closes_a_stream_that_floods_it() {
    let mut f = Follower::new();
    assert_eq!(installs(&honest_snapshot(&mut f, &snapshot_meta(20, 6))), 1);
    let opts = f.node.options().clone();
    let payload = Bytes::from(vec![0; opts.batch_bytes_max as usize]);
    let stream = f.stream;
    let mut held_bytes = 0;
    let mut closed_at = None;
    for index in 21..85 {
        let frame = chunk(
            (index - 1, 6),
            20,
            vec![LogEntry {
                data: payload.clone(),
                ..e(index, 6)
            }],
        );
        held_bytes += frame.budget_bytes();
        let actions = f.frame(frame);
        if actions.contains(&Action::CloseStream {
            stream,
            peer: LEADER,
        }) {
            closed_at = Some(held_bytes);
            break;
        }
    }
    let closed_at = closed_at.expect("the flood is cut off");
    // An honest leader has at most its budget in flight, and a chunk may
    // straddle its end.
    let honest_max = opts.stream_budget_bytes + 2 * opts.batch_bytes_max;
    assert!(closed_at > honest_max, "closed at {closed_at}");
    assert!(
        closed_at <= 2 * opts.stream_budget_bytes + 2 * opts.batch_bytes_max + 1024,
        "held {closed_at} bytes"
    );
}

#[test]
fn a_follower_that_truncates_an_uncommitted_config_entry_returns_to_the_config_before_it() {
    let voters = |max: u64| Config {
        cluster_id: CLUSTER,
        index: LogIndex(0),
        max_node_id: NodeId(max),
        members: (1..=3)
            .map(|id| Member {
                id: NodeId(id),
                address: format!("n{id}"),
                role: MemberRole::Voter,
            })
            .collect(),
    };
    let before = voters(3);
    let mut grown = voters(4);
    grown.members.push(Member {
        id: NodeId(4),
        address: "n4".into(),
        role: MemberRole::Learner,
    });
    let config_entry = |index: u64, config: &Config, kind: EntryKind| LogEntry {
        index: LogIndex(index),
        term: Term(TERM),
        kind,
        data: config.encode(),
    };
    let mut f = Follower::new();
    // The leader of term 6 commits a config at 11 and appends another at 12.
    let actions = f.frame(chunk(
        (10, 5),
        11,
        vec![
            config_entry(11, &before, EntryKind::AddPeer),
            config_entry(12, &grown, EntryKind::AddPeer),
        ],
    ));
    assert!(!actions.iter().any(|a| matches!(a, Action::Refused { .. })));
    assert_eq!(f.node.config().index, LogIndex(12));
    // The leader of term 7 never had entry 12.
    f.now = f.now + Duration::from_millis(1);
    let actions = f.node.step(
        f.now,
        Event::MessageReceived(heartbeat(NodeId(3), ME, TERM + 1, 11)),
    );
    f.stream = opened_stream(&actions);
    let actions = f.frame(Frame::Chunk {
        term: Term(TERM + 1),
        prev_index: LogIndex(11),
        prev_term: Term(TERM),
        leader_commit: LogIndex(11),
        entries: vec![e(12, TERM + 1)].into(),
    });
    assert!(
        actions.contains(&Action::TruncateLog { from: LogIndex(12) }),
        "{actions:?}"
    );
    assert_eq!(
        f.node.config(),
        &Config {
            index: LogIndex(11),
            ..before
        }
    );
}

/// Not hostile, but rare: a chunk that reaches back below the follower's
/// snapshot (entries it compacted, committed, so matching) appends only the
/// entries it lacks, and truncates nothing.
#[test]
fn a_chunk_reaching_back_below_the_snapshot_appends_only_the_new_entries() {
    let restored = (6..=10).map(|i| e(i, i.div_ceil(2))).collect();
    let mut f = Follower::restarted(Some(snapshot_meta(5, 3)), restored);
    let mut entries: Vec<LogEntry> = (3..=10).map(|i| e(i, i.div_ceil(2))).collect();
    entries.extend([e(11, 6), e(12, 6)]);
    let actions = f.frame(chunk((2, 1), 10, entries));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Refused { .. } | Action::TruncateLog { .. })),
        "{actions:?}"
    );
    assert!(
        actions.contains(&Action::AppendLog(vec![e(11, 6), e(12, 6)].into())),
        "{actions:?}"
    );
    assert_eq!(f.node.last_index(), LogIndex(12));
    assert_eq!(f.node.commit_index(), LogIndex(10));
    f.node.check_invariants();
}

/// A transfer cut short is offered for resume only while it would still be
/// installed: once a heartbeat committed its very index from the log the
/// stream delivered, the rest of it is of no use.
#[test]
fn a_transfer_the_commit_reached_is_not_offered_for_resume() {
    let mut f = Follower::new();
    f.frame(chunk((10, 5), 10, (11..=20).map(|i| e(i, 6)).collect()));
    let meta = snapshot_meta(20, 6);
    let frames = wire::snapshot_frames(&meta, &Bytes::from_static(b"abcdefgh"), 4);
    for frame in &frames[..2] {
        f.frame(frame.clone());
    }
    f.now = f.now + Duration::from_millis(1);
    f.node.step(
        f.now,
        Event::MessageReceived(heartbeat(LEADER, ME, TERM, 20)),
    );
    assert_eq!(f.node.commit_index(), LogIndex(20));
    assert_eq!(f.reopen().resume, None);
}

/// A follower's ack of entries the leader has not sent it yet (held back by
/// the stream budget) vouches for entries it cannot hold: the leader refuses
/// it and closes the stream, and its match index does not move.
#[test]
fn an_ack_of_entries_not_yet_sent_is_refused_by_the_leader() {
    let mut c = Cluster::with_options(
        3,
        NodeOptions {
            stream_budget_bytes: 300,
            ..NodeOptions::new(NodeId(1))
        },
    );
    let leader = c.leader().unwrap();
    let f = c.others(leader)[0];
    let stream = c
        .host(f)
        .actions()
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::OpenStream { stream, .. } => Some(*stream),
            _ => None,
        })
        .expect("the follower's stream");
    let target = LogIndex(c.node(leader).last_index().0 + 20);
    for i in 0..20 {
        c.propose(format!("{i:0>100}").as_bytes());
    }
    while c.node(leader).last_index() < target {
        assert!(c.deliver_next(), "the proposals reach the leader");
    }
    let status = c.node(leader).status();
    let cursor = status.followers.iter().find(|s| s.id == f).unwrap().clone();
    assert!(
        cursor.streaming && cursor.next_index <= target,
        "{cursor:?}"
    );
    c.clear_actions();
    c.step(
        leader,
        Event::FrameReceived {
            stream,
            frame: Frame::Ack { durable: target },
        },
    );
    let actions = c.host(leader).actions();
    assert!(
        actions.contains(&Action::Refused {
            peer: f,
            reason: Refusal::Misbehaving(Violation::AckBeyondSent {
                durable: target,
                sent: cursor.next_index.prev(),
            }),
        }),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::CloseStream { stream, peer: f }));
    let status = c.node(leader).status();
    let after = status.followers.iter().find(|s| s.id == f).unwrap();
    assert_eq!(after.match_index, cursor.match_index);
}

/// The limit on what a follower holds while it installs is "at most": a
/// stream holding exactly two budgets and a batch stays open, one byte more
/// closes it.
#[test]
fn a_follower_installing_a_snapshot_holds_exactly_its_limit_of_chunks() {
    let mut f = Follower::new();
    assert_eq!(installs(&honest_snapshot(&mut f, &snapshot_meta(20, 6))), 1);
    let opts = f.node.options().clone();
    let limit = 2 * opts.stream_budget_bytes + opts.batch_bytes_max;
    let stream = f.stream;
    let frame_of = |index: u64, len: u64| {
        chunk(
            (index - 1, 6),
            20,
            vec![LogEntry {
                data: Bytes::from(vec![0; len as usize]),
                ..e(index, 6)
            }],
        )
    };
    let overhead = frame_of(21, 0).budget_bytes();
    let closes = |actions: &[Action]| {
        actions.contains(&Action::CloseStream {
            stream,
            peer: LEADER,
        })
    };
    let (mut held, mut index) = (0, 21);
    while held < limit {
        let len = (limit - held - overhead).min(opts.batch_bytes_max);
        let frame = frame_of(index, len);
        held += frame.budget_bytes();
        assert!(!closes(&f.frame(frame)), "closed holding {held} of {limit}");
        index += 1;
    }
    assert_eq!(held, limit);
    assert!(closes(&f.frame(frame_of(index, 0))), "open past {limit}");
}

/// Every byte of a transfer arrived but its end did not: nothing is left
/// to resume (a leader resuming at the size would send no chunk, so no ack
/// would tell it the size); the follower does not offer it, and the next
/// transfer starts over.
#[test]
fn a_transfer_missing_only_its_end_is_not_offered_for_resume() {
    let mut f = Follower::new();
    let meta = snapshot_meta(20, 6);
    let frames = wire::snapshot_frames(&meta, &Bytes::from_static(b"abcdefgh"), 4);
    let [begin, first, second, _end] = &frames[..] else {
        panic!("{frames:?}")
    };
    for frame in [begin, first, second] {
        f.frame(frame.clone());
    }
    assert_eq!(f.reopen().resume, None);
}
