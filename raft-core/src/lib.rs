//! # raft-core: streaming Raft, sans IO
//!
//! One [`Node`] holds all protocol state of one server. The driver (the
//! simulator, the std adapter, or yours) feeds it [`Event`]s with the current
//! time and executes the [`Action`]s it returns, in order:
//!
//! ```text
//! actions = node.step(now, event)
//! ```
//!
//! The library never reads a clock, opens a socket or touches a file, and all
//! its randomness comes from the seed you give [`Node::new`]: the same seed and
//! the same events produce the same actions, byte for byte.
//!
//! ## The streaming protocol in one paragraph
//! Heartbeats (small datagrams with the term and commit index) are separate
//! from replication. A follower that hears from a leader opens one long-lived
//! *stream* to it, saying where its log stands; the leader answers with chunks
//! of entries back to back, bounded by a byte budget, and the follower acks
//! its *durable* index on the same stream. See `docs/protocol.md`.
//!
//! ## The driver contract
//! * Execute actions strictly in the order given. [`Node::step_into`] writes
//!   them into a buffer the driver owns and reuses (appending, after whatever
//!   it holds); [`Node::step`] returns them in a fresh vector.
//! * [`Action::PersistHardState`] must be durable before any later action runs
//!   (a vote reaches disk before the message that grants it).
//! * [`Action::AppendLog`] and [`Action::TruncateLog`] may complete
//!   asynchronously but in order; report each durable prefix with
//!   [`Event::LogPersisted`] naming the last entry it covers (group commit:
//!   one report may cover many appends).
//! * [`Action::InstallSnapshot`] runs after every earlier log operation and
//!   discards the whole log durably; [`Event::SnapshotInstalled`] comes after
//!   their `LogPersisted` reports.
//! * Deliver datagrams best effort; deliver stream frames FIFO and report a
//!   broken stream with [`Event::StreamClosed`] on each side.
//!   [`Action::SendFrame`], [`Action::SendSnapshot`] and
//!   [`Action::CloseStream`] name the node at the stream's other end, so a
//!   driver that moves frames between nodes needs no table of streams. Write the frames
//!   of an [`Action::SendSnapshot`] back to back, before any later
//!   [`Action::SendFrame`] on that stream.
//! * Wake the node at [`Node::next_deadline`] with [`Event::Tick`].
//! * The entries of [`Action::AppendLog`], [`Action::Apply`] and
//!   [`Frame::Chunk`] are [`Entries`]: one allocation per batch, shared by the
//!   node's log and every action and chunk that carries them. Keep them by
//!   cloning (no entry is copied) or iterate them by value for owned entries.
//! * On restart, hand [`Node::new`] the durable hard state, the latest
//!   snapshot's meta (the FSM restored from it) and the durable entries
//!   ([`RecoveredState`]; the log's front may stay on disk, described by
//!   [`StoredEntries`]); an inconsistent handover, or invalid options, is a
//!   [`RecoveryError`], never a panic.
//! * The node keeps at most [`NodeOptions::log_cache_bytes_max`] bytes of
//!   durable entries in memory. Answer every [`Action::ReadLog`] with
//!   [`Event::LogRead`]: the durable entries it asks for, read back from the
//!   log's storage (off the step loop if the disk may be slow).
//!
//! ## Starting a cluster
//! Give every member the same [`Bootstrap`] (the voters' ids and addresses,
//! and a token) in [`Event::BootstrapRequested`]: each persists the same
//! first entry and they elect a leader; the cluster id is derived from the
//! list, so nodes given different lists never mix, and a node that already
//! has state is never overwritten (see [`Bootstrap`]). Or, dynamically, one
//! node takes [`Event::InitializeRequested`] and the others join through the
//! leader ([`MembershipChange::Add`]).
//!
//! Everything a peer sends is input: a message or frame that breaks the
//! protocol is refused ([`Action::Refused`] with a [`Violation`]), never
//! trusted and never a panic.
//!
//! ## A driver loop
//! ```
//! use raft_core::*;
//! use std::collections::VecDeque;
//!
//! // One node that initializes a cluster of its own and commits a command.
//! let mut now = Instant(0);
//! let mut node = Node::new(NodeOptions::new(NodeId(1)), RecoveredState::default(), 42, now).unwrap();
//! let mut inbox = VecDeque::from([
//!     Event::InitializeRequested { id: RequestId(1), address: "127.0.0.1:7001".into() },
//!     Event::ProposeRequested { proposals: vec![Proposal { id: RequestId(2), data: "set x 1".into() }] },
//! ]);
//! let mut disk: Vec<LogEntry> = Vec::new();
//! let mut applied = Vec::new();
//! let mut done = Vec::new();
//! while let Some(event) = inbox.pop_front() {
//!     for action in node.step(now, event) {
//!         match action {
//!             Action::PersistHardState(_hs) => { /* write and fsync before going on */ }
//!             Action::AppendLog(entries) => {
//!                 // A real driver fsyncs in a group-commit thread, then reports.
//!                 let last = entries.last().unwrap();
//!                 inbox.push_back(Event::LogPersisted { index: last.index, term: last.term });
//!                 disk.extend(entries);
//!             }
//!             Action::Apply(entries) => applied.extend(entries),
//!             Action::CompleteRequest { id, result } => done.push((id, result)),
//!             _ => {} // sends, streams, snapshots: nothing to do for a lone node
//!         }
//!     }
//!     now = now + Duration::from_millis(1);
//! }
//! assert_eq!(node.role(), Role::Leader);
//! assert_eq!(done[1], (RequestId(2), Ok(Completion::Written { index: LogIndex(2) })));
//! assert_eq!(applied.last().unwrap().data, "set x 1");
//! ```
//!
//! ## Where each rule lives
//! The protocol's rules, the function that implements each (paths under
//! `src/`: the node's modules are private, so these are plain paths), the
//! test that proves it (under `tests/`), and the golden script that tells it
//! as a story (`tests/scripts/`, replayed byte for byte by
//! `tests/it/scripts.rs`; rewrite them with
//! `REWRITE_SCRIPTS=1 cargo test -p raft-core --test it scripts::`).
//! The same table is in `docs/protocol.md`.
//!
//! | rule (DESIGN §3) | implemented by | proved by | story |
//! |---|---|---|---|
//! | election: timeout drawn from `[T, 2T)`, one vote per term, durable before it is sent | `node/election.rs`: `Node::on_election_timeout`, `become_candidate`, `on_vote_request`; `node/mod.rs`: `Node::random_election_timeout` | `tests/it/election.rs`: `election_timeout_is_drawn_from_t_to_2t`, `one_vote_per_term`, `a_vote_is_durable_before_the_response_leaves`, `a_candidate_with_an_older_log_is_refused` | `election.txt` |
//! | pre-vote: no term change without a quorum that would vote | `node/election.rs`: `become_pre_candidate`, `on_pre_vote_request` | `tests/it/election.rs`: `pre_vote_keeps_a_partitioned_node_from_raising_its_term` | `conflicting_suffix.txt` |
//! | check-quorum, and no votes while a live leader was heard | `node/leader.rs`: `Node::on_leader_timers`, `check_quorum_deadline`; `node/election.rs`: `on_vote_request` | `tests/it/election.rs`: `leader_steps_down_when_quorum_silent_for_election_timeout`, `votes_refused_while_a_live_leader_was_heard_recently` | `stream_reopen.txt` |
//! | stream open: start where both logs provably agree, never below the follower's commit | `node/receiver.rs`: `Node::maybe_open_stream`; `node/cursor.rs`: `Node::on_stream_opened` | `tests/it/replication.rs`: `a_restarted_follower_resumes_its_stream_from_its_own_log`; `tests/it/safety.rs`: `a_stream_from_a_foreign_cluster_or_a_non_member_is_closed` | `election.txt` |
//! | chunk check: contiguity and `prev`, reject with a lower probe and reopen | `node/receiver.rs`: `Node::on_chunk`, `lower_probe` | `tests/it/replication.rs`: `a_chunk_that_does_not_match_makes_the_follower_reopen_with_a_lower_probe`; `tests/it/hostile_peer.rs` (one test per forged chunk) | `stream_reopen.txt` |
//! | truncation: a conflicting uncommitted suffix, never a committed entry | `node/receiver.rs`: `Node::on_chunk` (`TruncateLog`) | `tests/it/replication.rs`: `a_follower_truncates_a_conflicting_uncommitted_suffix_and_converges`; `tests/it/hostile_peer.rs`: `a_chunk_rewriting_committed_entries_is_refused` | `conflicting_suffix.txt` |
//! | ack: only durable entries, as validated by this stream | `node/receiver.rs`: `Node::maybe_ack` | `tests/it/replication.rs`: `a_follower_acks_only_durable_entries`, `a_follower_never_applies_past_what_the_current_leader_validated` | `election.txt` |
//! | commit rule: durable on a quorum, an entry of the current term (§5.4.2) | `node/leader.rs`: `Node::maybe_advance_commit`, `become_leader` (the `Nop`) | `tests/it/safety.rs`: `an_earlier_term_entry_is_not_committed_by_replica_count`, `figure_8_test_fails_when_the_current_term_rule_is_removed`; `tests/it/replication.rs`: `an_entry_commits_only_once_durable_on_a_quorum_including_the_leaders_own_fsync` | `stream_reopen.txt` |
//! | reads: ReadIndex after a heartbeat round and this term's first commit | `node/client.rs`: `Node::on_read`, `serve_reads_ready` | `tests/it/client.rs`: `a_read_index_waits_for_a_quorum_to_confirm_leadership`, `a_read_on_a_fresh_leader_waits_for_its_first_commit`, `a_late_answer_to_a_heartbeat_of_an_earlier_term_confirms_no_read` | |
//! | lease: opt-in, shortened by the drift bound, void after `TimeoutNow` | `node/leader.rs`: `Lease::holds_at`; `node/client.rs`: `Node::on_read` | `tests/it/client.rs`: `lease_reads_skip_the_heartbeat_round_while_the_lease_holds`, `a_leader_that_sent_timeout_now_serves_no_lease_read_for_the_rest_of_its_term`, `a_follower_that_answered_a_round_refuses_votes_for_a_timeout_whatever_term_it_learns` | |
//! | membership: one change at a time, after a commit of the leader's term; learners promoted once caught up | `node/membership.rs`: `Node::check_change`, `maybe_promote_learner` | `tests/it/membership.rs`: `only_one_membership_change_may_be_in_flight`, `a_change_waits_until_the_leader_committed_an_entry_of_its_term`, `a_new_node_joins_as_a_learner_and_is_promoted_once_caught_up` | `membership.txt` |
//! | transfer: stop proposals, bring the target up to date, `TimeoutNow` | `node/transfer.rs`: `Node::on_transfer`, `maybe_send_timeout_now`; `node/election.rs`: `on_timeout_now` | `tests/it/election.rs`: `timeout_now_makes_the_target_campaign_past_leader_stickiness`; `tests/it/membership.rs`: `proposals_wait_out_a_leadership_transfer`; `tests/it/client.rs`: `a_transfer_abandoned_after_timeout_now_left_has_an_unknown_outcome` | `transfer.txt` |
//! | snapshot: compaction after a snapshot; a follower behind it gets the snapshot on its stream, then entries | `node/snapshot.rs`: `Node::maybe_request_snapshot`, `on_snapshot_taken`; `node/cursor.rs`: `Node::replicate` (`SendSnapshot`); `node/receiver.rs`: `on_snapshot_end` | `tests/it/compaction.rs`: `a_follower_behind_the_compaction_point_gets_the_snapshot_then_the_entries`, `a_snapshot_on_the_stream_never_runs_more_than_the_budget_ahead_of_the_followers_acks` | `snapshot.txt` |
//! | static bootstrap: one first entry per cluster id | `bootstrap.rs`: `Bootstrap::new`; `node/bootstrap.rs`: `Node::on_bootstrap` | `tests/it/bootstrap.rs`: `nodes_given_different_lists_refuse_each_other_and_never_mix_logs`, `bootstrapping_again_with_the_same_list_succeeds_and_changes_nothing` | `election.txt` |

//! ## Vocabulary
//! *Propose* a command; it is *appended* to a log in memory, *persisted*
//! (durable) after an fsync, *committed* once durable on a quorum with an
//! entry of the leader's term, and *applied* when the state machine executes
//! it. Each word means that one thing, here and in raft-io-std and the docs.
//! `docs/go-api.md` maps the original Go package's methods and errors to
//! their counterparts.
//!
//! ## The surface
//! Every type is used from the crate root (`raft_core::Node`,
//! `raft_core::Event`, ...), by exactly one path. Two modules are public
//! because their items are used by path, as a family:
//!
//! * [`wire`]: the codec of what travels between nodes (`wire::encode`,
//!   `wire::decode`, the snapshot framing and its limits). Only a driver that
//!   moves bytes needs it, and its generic names (`encode`, `VERSION`) read
//!   right only behind `wire::`.
//! * [`quorum`]: the quorum arithmetic (`quorum::committed_index`,
//!   `quorum::is_majority`) as pure functions, for drivers and tests that
//!   reason about a cluster's commit point without a node.
//!
//! A third is public only with the cargo feature `testing` (off by default;
//! enable it in `[dev-dependencies]`):
//!
//! * `testing`: an in-memory cluster of nodes on one thread, with a manual
//!   clock, a queue of events the test delivers, cuts, crashes and restarts
//!   from in-memory disks, and an optional state machine of the test's own.
//!   It is what raft-core's own tests run on; `docs/simulation.md` says when
//!   to use it and when raft-sim.
//!
//! Every other module is private: its types are re-exported here, and the
//! file layout (one module per protocol idea) can change without breaking
//! anyone. Enums that will grow (new events, actions, entry kinds,
//! membership changes, errors) are `#[non_exhaustive]`: match them with a
//! wildcard arm.
//!
//! Deliberate protocol bugs, used by tests that prove the simulator's
//! oracles catch them, exist only with the `mutants` cargo feature; without
//! it, no option can switch a protocol rule off.

mod action;
mod bootstrap;
mod config;
mod entries;
mod entry;
mod error;
mod event;
mod message;
mod node;
mod options;
pub mod quorum;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod types;
pub mod wire;

pub use action::{Action, Completion, LogReader};
pub use bootstrap::{Bootstrap, BootstrapError};
pub use config::{Config, Member, MemberRole};
pub use entries::{Entries, EntriesIntoIter};
pub use entry::{EntryKind, LogEntry};
pub use error::{DecodeError, Outcome, Refusal, RequestError, Violation};
pub use event::{Event, MembershipChange, Proposal};
pub use message::{Frame, Message, MessageBody, SnapshotMeta, SnapshotResume, StreamOpen};
pub use node::{FollowerStatus, Node, RecoveredState, RecoveryError, Status, StoredEntries};
#[cfg(feature = "mutants")]
pub use options::Mutants;
pub use options::{InvalidOptions, LogSince, NodeOptions, SnapshotPolicy};
pub use state::{HardState, Role};
pub use time::{Duration, Instant};
pub use types::{ClusterId, LogIndex, NodeId, RequestId, StreamId, Term};
