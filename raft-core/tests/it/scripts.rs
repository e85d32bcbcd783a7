//! Golden protocol scripts: `tests/scripts/*.txt` tell a story of the
//! protocol, in the manner of etcd raft's data-driven interaction tests.
//! Each block is a command for a small deterministic in-memory cluster (the
//! harness), then `----`, then what the nodes did, one line per event and
//! per action, in their one-line `Display` form:
//!
//! ```text
//! # Node 2's timer fires first: it asks for pre-votes.
//! wake
//! ----
//! 2 <- Tick
//!   Send 2->1 t2 PreVoteRequest ...
//! ```
//!
//! The test replays every script and compares the output byte for byte. A
//! script that no longer matches fails with a diff of each block that
//! changed. After a deliberate change, rewrite them and review the diff:
//! `REWRITE_SCRIPTS=1 cargo test -p raft-core --test it scripts::`.
//!
//! Commands (ids are node ids):
//! * `bootstrap N [snapshot_entries=K] [snapshot_trailing=K]`: N fresh
//!   nodes, each stepped with the same bootstrap list; no time passes.
//! * `wake`: move the clock to the earliest deadline of a running node, tick
//!   that node, and deliver everything that follows.
//! * `run MS`: tick every node every 5 ms for MS ms, delivering everything.
//! * `settle`: deliver everything queued.
//! * `propose ID TEXT`, `add ID` (a learner, through node ID), `remove ID
//!   MEMBER`, `transfer ID TARGET`: client requests to node ID, then `settle`.
//! * `start-joined ID CLUSTER`: start the empty node ID that `add` admitted.
//! * `isolate ID`, `heal`: cut node ID off from every other, or undo all cuts.
//! * `persist ID manual|auto`: hold node ID's appends in memory, or make them
//!   (and all it holds) durable now and from now on.
//! * `crash ID`, `restart ID`: lose what was not durable; start from disk.
//! * `show all` / `show WORD...`: from now on print only actions whose
//!   `Display` has one of the WORDs (`Apply`, `Chunk`, `TimeoutNow`, ...),
//!   and the events that caused them.
//! * `status`, `log ID`: one line per node; the entries node ID holds.

use crate::harness::*;
use raft_core::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A script run: the cluster and the output filter.
struct Runner {
    c: Cluster,
    show: Option<Vec<String>>,
}

fn id_arg(args: &[&str], i: usize) -> NodeId {
    NodeId(
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("argument {i} of {args:?} must be a node id")),
    )
}

impl Runner {
    fn new() -> Runner {
        Runner {
            c: Cluster::empty(immediate_commit_notices(NodeOptions::new(NodeId(1)))),
            show: None,
        }
    }

    /// Runs one command; returns what it printed.
    fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (command, args) = words.split_first().expect("a command");
        let mut out = String::new();
        self.c.record_steps();
        match *command {
            "bootstrap" => self.bootstrap(args),
            "wake" => {
                self.c.wake_next().expect("a running node");
            }
            "run" => {
                let ms = args[0].parse().expect("run MS");
                self.c.run_for(Duration::from_millis(ms));
            }
            "settle" => self.c.settle(),
            "propose" => {
                let id = self.c.request_id();
                let data = bytes::Bytes::from(args[1..].join(" "));
                let proposals = vec![Proposal { id, data }];
                self.c
                    .push(id_arg(args, 0), Event::ProposeRequested { proposals });
                self.c.settle();
            }
            "add" => {
                let to = id_arg(args, 0);
                let next = self.c.node(to).config().max_node_id.next();
                let id = self.c.request_id();
                let change = MembershipChange::Add {
                    address: address(next),
                };
                self.c
                    .push(to, Event::ChangeMembershipRequested { id, change });
                self.c.settle();
            }
            "remove" => {
                let id = self.c.request_id();
                let change = MembershipChange::Remove {
                    id: id_arg(args, 1),
                };
                self.c.push(
                    id_arg(args, 0),
                    Event::ChangeMembershipRequested { id, change },
                );
                self.c.settle();
            }
            "start-joined" => {
                let cluster = args[1]
                    .trim_start_matches('c')
                    .parse()
                    .expect("a cluster id");
                self.c.add_host(id_arg(args, 0), Some(ClusterId(cluster)));
            }
            "transfer" => {
                let id = self.c.request_id();
                let target = Some(id_arg(args, 1));
                self.c.push(
                    id_arg(args, 0),
                    Event::TransferLeadershipRequested { id, target },
                );
                self.c.settle();
            }
            "isolate" => self.c.isolate(id_arg(args, 0)),
            "heal" => self.c.heal(),
            "persist" => {
                let id = id_arg(args, 0);
                let mode = match args.get(1) {
                    Some(&"manual") => Persist::Manually,
                    Some(&"auto") => Persist::Immediately,
                    other => panic!("persist ID manual|auto, not {other:?}"),
                };
                self.c.host_mut(id).persist = mode;
                if mode == Persist::Immediately {
                    self.c.persist(id, LogIndex(u64::MAX));
                    self.c.settle();
                }
            }
            "crash" => self.c.crash(id_arg(args, 0)),
            "restart" => self.c.restart(id_arg(args, 0)),
            "show" => {
                self.show = match args {
                    ["all"] => None,
                    kinds => Some(kinds.iter().map(|k| k.to_string()).collect()),
                }
            }
            "status" => {
                for (id, h) in self.c.hosts() {
                    let n = h.node();
                    let _ = writeln!(
                        out,
                        "{id} {:?} {} leader={:?} last={}/{} durable={} commit={} applied={}{}",
                        n.role(),
                        n.term(),
                        n.leader().map(|l| l.0),
                        n.last_index(),
                        n.last_term(),
                        n.durable_index(),
                        n.commit_index(),
                        n.applied_index(),
                        if h.is_up() { "" } else { " (down)" },
                    );
                }
            }
            "log" => {
                let node = &self.c.node(id_arg(args, 0));
                if let Some(s) = node.snapshot() {
                    let _ = writeln!(out, "{s}");
                }
                for e in node.log_entries() {
                    match e.kind {
                        EntryKind::Command => {
                            let _ = writeln!(out, "{e} {:?}", String::from_utf8_lossy(&e.data));
                        }
                        _ => {
                            let _ = writeln!(out, "{e}");
                        }
                    }
                }
            }
            other => panic!("unknown command {other:?}"),
        }
        for step in self.c.take_steps() {
            self.print_step(&mut out, step.node, &step.event, &step.actions);
        }
        if out.is_empty() {
            out.push_str("ok\n");
        }
        out
    }

    fn bootstrap(&mut self, args: &[&str]) {
        let n: u64 = args[0].parse().expect("bootstrap N");
        // The stories tell each commit notice in the step that moved the
        // commit index; tests/it/replication.rs covers the delayed ones.
        let mut options = immediate_commit_notices(NodeOptions::new(NodeId(1)));
        for setting in &args[1..] {
            let (key, value) = setting.split_once('=').expect("KEY=VALUE");
            let value: u64 = value.parse().expect("a number");
            match key {
                "snapshot_entries" => {
                    options.snapshot_policy = SnapshotPolicy::every_entries(value)
                }
                "snapshot_trailing" => options.snapshot_trailing_entries = value,
                other => panic!("unknown option {other}"),
            }
        }
        *self.c.options_mut() = options;
        self.c.bootstrap(n);
    }

    fn shown(&self, action: &str) -> bool {
        self.show.as_ref().is_none_or(|kinds| {
            action
                .split_whitespace()
                .any(|w| kinds.iter().any(|k| k == w))
        })
    }

    fn print_step(&self, out: &mut String, node: NodeId, event: &Event, actions: &[Action]) {
        let lines: Vec<String> = actions
            .iter()
            .map(|a| a.to_string())
            .filter(|a| self.shown(a))
            .collect();
        // A tick that did nothing is not part of the story.
        if lines.is_empty() && (self.show.is_some() || matches!(event, Event::Tick)) {
            return;
        }
        let _ = writeln!(out, "{} <- {event}", node.0);
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// One block of a script: its comment lines, command and recorded output.
struct Block {
    comments: Vec<String>,
    command: String,
    output: Vec<String>,
}

fn parse(path: &Path, text: &str) -> (Vec<Block>, Vec<String>) {
    let mut blocks = Vec::new();
    let mut comments = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.starts_with('#') || line.trim().is_empty() {
            comments.push(line.to_string());
            continue;
        }
        let command = line.to_string();
        match lines.next() {
            Some((_, "----")) => {}
            _ => panic!(
                "{}:{}: `{command}` must be followed by a `----` line",
                path.display(),
                n + 1
            ),
        }
        let output = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.is_empty())
            .map(String::from)
            .collect();
        blocks.push(Block {
            comments: std::mem::take(&mut comments),
            command,
            output,
        });
    }
    (blocks, comments)
}

/// A line diff of two short texts (longest common subsequence).
fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            let _ = writeln!(out, "   {}", expected[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, " - {}", expected[i]);
            i += 1;
        } else {
            let _ = writeln!(out, " + {}", actual[j]);
            j += 1;
        }
    }
    out
}

/// Replays one script; returns its text as it now runs, and the diffs of
/// the blocks whose output changed.
fn replay(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let (blocks, trailing) = parse(path, &text);
    let mut runner = Runner::new();
    let mut rewritten = String::new();
    let mut diffs = Vec::new();
    for block in blocks {
        let actual: Vec<String> = runner
            .run(&block.command)
            .lines()
            .map(String::from)
            .collect();
        if actual != block.output {
            diffs.push(format!(
                "{}: `{}` (- recorded, + now):\n{}",
                path.display(),
                block.command,
                diff(&block.output, &actual)
            ));
        }
        for c in &block.comments {
            let _ = writeln!(rewritten, "{c}");
        }
        let _ = writeln!(rewritten, "{}\n----", block.command);
        for line in &actual {
            let _ = writeln!(rewritten, "{line}");
        }
        rewritten.push('\n');
    }
    for c in trailing.iter().skip_while(|c| c.trim().is_empty()) {
        let _ = writeln!(rewritten, "{c}");
    }
    while rewritten.ends_with("\n\n") {
        rewritten.pop();
    }
    (rewritten, diffs)
}

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_protocol_script_replays_exactly_as_recorded() {
    let rewrite = std::env::var_os("REWRITE_SCRIPTS").is_some();
    let paths = scripts();
    assert!(!paths.is_empty(), "no scripts in tests/scripts");
    let mut failures = Vec::new();
    for path in paths {
        let (rewritten, diffs) = replay(&path);
        if rewrite {
            #[allow(clippy::disallowed_methods)] // a test rewriting its own scripts, not the core
            std::fs::write(&path, rewritten).unwrap();
        } else {
            failures.extend(diffs);
        }
    }
    assert!(
        failures.is_empty(),
        "{} script block(s) no longer match; if the change is meant, run \
         REWRITE_SCRIPTS=1 cargo test -p raft-core --test it scripts:: and review the diff\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_changed_line_is_reported_as_a_diff() {
    let expected = ["a", "b", "c"].map(String::from);
    let actual = ["a", "B", "c", "d"].map(String::from);
    assert_eq!(diff(&expected, &actual), "   a\n - b\n + B\n   c\n + d\n");
}
