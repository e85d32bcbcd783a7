//! `--timeline out.html`: one run drawn as a self-contained HTML page of inline SVG.
//!
//! The timeline is built from the run's trace records (the same JSONL that
//! `--trace` writes, see [`parse_jsonl`]), the scenario (fault shapes) and the
//! report (client history, failure). Two panels share the lanes: the whole run
//! (roles, terms, down and paused spans, partitions, crashes, applied index,
//! client operations) and a window (by default the last two simulated seconds
//! before the end or the failure) that adds message arrows and stream markers.
//! Tooltips are SVG `<title>` elements; there is no script and no external resource.

use crate::history::OpStatus;
use crate::scenario::{Fault, Scenario, Shape};
use crate::world::RunReport;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Nanoseconds per second.
const SEC: u64 = 1_000_000_000;
/// Default message window: this long before the end (or failure).
pub const DEFAULT_WINDOW_NS: u64 = 2 * SEC;
/// At most this many vote arrows in the window; more are sampled evenly.
const VOTE_ARROWS_MAX: usize = 1500;
/// At most this many chunk (and, separately, ack) arrows in the window.
const STREAM_ARROWS_MAX: usize = 300;
/// Drawing width of the time axis, in pixels.
const PLOT_W: f64 = 1400.0;
/// Left margin for lane labels.
const LEFT: f64 = 70.0;
/// Height of a node lane's role bar.
const BAR_H: f64 = 18.0;
/// Height of the applied-index strip under each node lane.
const STRIP_H: f64 = 10.0;
/// Vertical distance between lanes.
const LANE_H: f64 = BAR_H + STRIP_H + 8.0;

/// One trace record as the timeline reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Simulated time in nanoseconds.
    pub at_ns: u64,
    /// The node (0-based world index), if any.
    pub node: Option<usize>,
    /// The record's text.
    pub text: String,
}

/// Parses `--trace` JSONL (`{"seq", "at_ns", "node" (1-based), "text"}` per line);
/// lines that do not parse are skipped.
pub fn parse_jsonl(jsonl: &str) -> Vec<Record> {
    jsonl
        .lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(Record {
                at_ns: v.get("at_ns")?.as_u64()?,
                node: v
                    .get("node")
                    .and_then(|n| n.as_u64())
                    .map(|n| (n as usize).saturating_sub(1)),
                text: v.get("text")?.as_str()?.to_string(),
            })
        })
        .collect()
}

/// An in-memory sink for the trace's JSONL, shared with the caller.
#[derive(Clone, Debug, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    /// The bytes written so far, as text.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes everything to two sinks (the `--trace` file and the timeline's buffer).
pub struct Tee<A: Write, B: Write>(pub A, pub B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Parses a `--timeline-window A..B` value in seconds (e.g. `10..12.5`) into nanoseconds.
pub fn parse_window(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or("expected A..B (seconds)")?;
    let secs = |x: &str| -> Result<u64, String> {
        let x = x.trim().trim_end_matches('s');
        let v: f64 = x.parse().map_err(|e| format!("{x}: {e}"))?;
        if !v.is_finite() || v < 0.0 {
            return Err(format!("{x}: not a time"));
        }
        Ok((v * 1e9).round() as u64)
    };
    let (a, b) = (secs(a)?, secs(b)?);
    if a >= b {
        return Err(format!("empty window {s}"));
    }
    Ok((a, b))
}

/// A node's role, as the lane colors it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    Learner,
}

impl Role {
    fn from_name(s: &str) -> Option<Role> {
        Some(match s {
            "Follower" => Role::Follower,
            "PreCandidate" => Role::PreCandidate,
            "Candidate" => Role::Candidate,
            "Leader" => Role::Leader,
            "Learner" => Role::Learner,
            _ => return None,
        })
    }
    fn from_glyph(c: char) -> Option<Role> {
        Some(match c {
            'F' => Role::Follower,
            'P' => Role::PreCandidate,
            'C' => Role::Candidate,
            'L' => Role::Leader,
            'l' => Role::Learner,
            _ => return None,
        })
    }
    fn color(self) -> &'static str {
        match self {
            Role::Follower => "#c8c8c8",
            Role::PreCandidate => "#fff3b0",
            Role::Candidate => "#f5d000",
            Role::Leader => "#3cb043",
            Role::Learner => "#6fa8dc",
        }
    }
    fn glyph(self) -> char {
        match self {
            Role::Follower => 'F',
            Role::PreCandidate => 'P',
            Role::Candidate => 'C',
            Role::Leader => 'L',
            Role::Learner => 'l',
        }
    }
}

/// A message from one lane to another.
#[derive(Clone, Debug)]
struct Arrow {
    from: usize,
    to: usize,
    sent: u64,
    recv: u64,
    text: String,
}

/// Everything the drawing needs, extracted from the records.
#[derive(Debug, Default)]
struct Model {
    n: usize,
    end: u64,
    failure: Option<(u64, String)>,
    /// Per node: (time, role, term) at every change.
    roles: Vec<Vec<(u64, Role, u64)>>,
    /// Per node: down spans.
    down: Vec<Vec<(u64, u64)>>,
    /// Per node: paused spans.
    paused: Vec<Vec<(u64, u64)>>,
    /// Per node: (time, last applied index).
    applied: Vec<Vec<(u64, u64)>>,
    /// (time, node, what): crash, restart, stream open/close.
    markers: Vec<(u64, usize, &'static str, String)>,
    /// Partition spans with their label.
    partitions: Vec<(u64, u64, String)>,
    /// Dropped messages: (time, sender, text).
    drops: Vec<(u64, usize, String)>,
    votes: Vec<Arrow>,
    chunks: Vec<Arrow>,
    acks: Vec<Arrow>,
    /// Client lanes needed once client processes are packed into them.
    client_lanes: usize,
    /// Client operations: (lane, invoke, drawn end, outcome, finished, description).
    ops: Vec<(usize, u64, u64, OpStatus, bool, String)>,
}

/// Packs client processes into as few lanes as possible (a process whose
/// write ended unknown is retired and a new one takes over, as in Jepsen), and
/// ends a never-completed operation after the client timeout.
fn client_ops(m: &mut Model, report: &RunReport, timeout_ns: u64) {
    let mut spans: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let drawn_end = |op: &crate::history::OpRecord| {
        op.complete_ns
            .unwrap_or_else(|| (op.invoke_ns + timeout_ns).min(m.end))
    };
    for op in &report.history {
        let e = spans.entry(op.client).or_insert((op.invoke_ns, 0));
        e.0 = e.0.min(op.invoke_ns);
        e.1 = e.1.max(drawn_end(op));
    }
    let mut order: Vec<(u64, u64, u64)> = spans.iter().map(|(c, s)| (s.0, *c, s.1)).collect();
    order.sort_unstable();
    let mut free_at: Vec<u64> = Vec::new();
    let mut lane_of: BTreeMap<u64, usize> = BTreeMap::new();
    for (start, client, end) in order {
        let lane = match free_at.iter().position(|&f| f <= start) {
            Some(l) => l,
            None => {
                free_at.push(0);
                free_at.len() - 1
            }
        };
        free_at[lane] = end;
        lane_of.insert(client, lane);
    }
    m.client_lanes = free_at.len();
    for op in &report.history {
        let lane = lane_of.get(&op.client).copied().unwrap_or(0);
        let text = match op.complete_ns {
            Some(_) => op.to_string(),
            None => format!("{op} (never completed)"),
        };
        m.ops.push((
            lane,
            op.invoke_ns,
            drawn_end(op),
            op.outcome,
            op.complete_ns.is_some(),
            text,
        ));
    }
}

fn node_set(v: &[usize]) -> String {
    let names: Vec<String> = v.iter().map(|i| format!("n{}", i + 1)).collect();
    format!("{{{}}}", names.join(","))
}

fn rest(n: usize, excluded: &[usize]) -> Vec<usize> {
    (0..n).filter(|i| !excluded.contains(i)).collect()
}

/// The partition's groups in 1-based node names.
fn shape_label(shape: &Shape, n: usize, leader: Option<usize>) -> String {
    match shape {
        Shape::Isolate { node } => {
            format!("{} | {}", node_set(&[*node]), node_set(&rest(n, &[*node])))
        }
        Shape::IsolateLeader => match leader {
            Some(l) => format!("leader {} | {}", node_set(&[l]), node_set(&rest(n, &[l]))),
            None => "isolate leader (none)".to_string(),
        },
        Shape::Split { side } => format!("{} | {}", node_set(side), node_set(&rest(n, side))),
        Shape::Bridge { bridge, left } => {
            let mut other = rest(n, left);
            other.retain(|i| i != bridge);
            format!(
                "{} | {} bridged by n{}",
                node_set(left),
                node_set(&other),
                bridge + 1
            )
        }
        Shape::LeaderAndOne { pick } => match leader {
            Some(l) => {
                let side = crate::scenario::pair_with(l, *pick, n.max(2));
                format!(
                    "leader and one {} | {}",
                    node_set(&side),
                    node_set(&rest(n, &side))
                )
            }
            None => "leader and one (no leader)".to_string(),
        },
        Shape::MuteOutbound { node } => format!("n{} mute (cannot send)", node + 1),
        Shape::DeafInbound { node } => format!("n{} deaf (cannot receive)", node + 1),
    }
}

/// Message kinds drawn as vote arrows.
fn is_vote(msg: &str) -> bool {
    ["PreVote", "PreVoteResp", "Vote", "VoteResp"]
        .iter()
        .any(|k| msg.split_whitespace().nth(2) == Some(k))
}

fn build(scenario: &Scenario, report: &RunReport, records: &[Record]) -> Model {
    let n = scenario.knobs.nodes;
    let mut b = Builder {
        m: Model {
            n,
            end: report.sim_ns.max(records.last().map_or(0, |r| r.at_ns)),
            roles: vec![vec![(0, Role::Follower, 1)]; n],
            down: vec![Vec::new(); n],
            paused: vec![Vec::new(); n],
            applied: vec![vec![(0, 0)]; n],
            ..Model::default()
        },
        down_since: vec![None; n],
        pause_since: vec![None; n],
        partition_since: None,
        faults: scenario.faults.iter(),
        sends: BTreeMap::new(),
        frames: BTreeMap::new(),
    };
    for r in records {
        let (t, text) = (r.at_ns, r.text.as_str());
        if let Some(f) = text.strip_prefix("FAILURE ") {
            b.m.failure.get_or_insert((t, f.to_string()));
        }
        match r.node.filter(|&i| i < n) {
            Some(i) => {
                let _ = b.lifecycle(i, t, text)
                    || b.message(i, t, text)
                    || b.stream(i, t, text)
                    || b.step_glyph(i, t, text);
            }
            None => b.cluster(t, text),
        }
    }
    b.finish(report, scenario.knobs.client_timeout_ms * 1_000_000)
}

/// The model being read out of a trace, with what is open at the record at hand.
struct Builder<'a> {
    m: Model,
    down_since: Vec<Option<u64>>,
    pause_since: Vec<Option<u64>>,
    partition_since: Option<(u64, String)>,
    /// The scheduled faults not yet matched to a record.
    faults: std::slice::Iter<'a, crate::scenario::Timed<Fault>>,
    /// Votes sent and not yet received, by text.
    sends: BTreeMap<String, VecDeque<(usize, u64)>>,
    /// Frames sent and not yet received, by text.
    frames: BTreeMap<String, VecDeque<(usize, u64)>>,
}

impl Builder<'_> {
    /// The leader of the highest term among running nodes, as the nemesis resolves it.
    fn leader_now(&self) -> Option<usize> {
        let roles = &self.m.roles;
        (0..self.m.n)
            .filter(|&i| self.down_since[i].is_none())
            .filter(|&i| roles[i].last().is_some_and(|r| r.1 == Role::Leader))
            .max_by_key(|&i| roles[i].last().map(|r| r.2))
    }

    fn end_partition(&mut self, t: u64) {
        if let Some((s, l)) = self.partition_since.take() {
            self.m.partitions.push((s, t, l));
        }
    }

    /// A record of no node: faults and the heal.
    fn cluster(&mut self, t: u64, text: &str) {
        if let Some(f) = text.strip_prefix("fault: ") {
            // Faults are recorded in schedule order; match the structured one.
            let fault = self
                .faults
                .find(|x| x.what.to_string() == f)
                .map(|x| &x.what);
            match fault {
                Some(Fault::Partition(shape)) => {
                    self.end_partition(t);
                    let label = shape_label(shape, self.m.n, self.leader_now());
                    self.partition_since = Some((t, label));
                }
                Some(Fault::Heal) => self.end_partition(t),
                Some(Fault::Pause { node, .. })
                    if *node < self.m.n && self.down_since[*node].is_none() =>
                {
                    self.pause_since[*node] = Some(t);
                }
                _ => {}
            }
        } else if text.starts_with("heal:") {
            self.end_partition(t);
        }
    }

    /// Role changes, crashes, restarts, resumes and applies of node `i`.
    fn lifecycle(&mut self, i: usize, t: u64, text: &str) -> bool {
        let m = &mut self.m;
        if let Some(rest) = text.strip_prefix("-> RoleChanged ") {
            let mut w = rest.split_whitespace();
            let role = w.next().and_then(Role::from_name);
            let term = w.next().and_then(|x| x.strip_prefix('t')?.parse().ok());
            if let (Some(role), Some(term)) = (role, term) {
                m.roles[i].push((t, role, term));
            }
        } else if text.starts_with("crash:") {
            self.down_since[i] = Some(t);
            if let Some(p) = self.pause_since[i].take() {
                m.paused[i].push((p, t));
            }
            m.markers.push((t, i, "crash", text.to_string()));
        } else if text.starts_with("start incarnation") {
            if let Some(d) = self.down_since[i].take() {
                m.down[i].push((d, t));
                m.markers.push((t, i, "restart", text.to_string()));
            }
        } else if text == "resume after a pause" {
            if let Some(p) = self.pause_since[i].take() {
                m.paused[i].push((p, t));
            }
        } else if let Some(rest) = text.strip_prefix("-> Apply [") {
            let last = rest.split("..=").nth(1).map(|x| x.trim_end_matches(']'));
            if let Some(last) = last.and_then(|x| x.parse().ok()) {
                m.applied[i].push((t, last));
            }
        } else {
            return false;
        }
        true
    }

    /// Votes sent and received (arrows) and drops of node `i`.
    fn message(&mut self, i: usize, t: u64, text: &str) -> bool {
        if let Some(msg) = text.strip_prefix("-> Send ") {
            let (msg, dup) = match msg.strip_suffix(" (dup)") {
                Some(m) => (m, true),
                None => (msg, false),
            };
            if is_vote(msg) {
                let q = self.sends.entry(msg.to_string()).or_default();
                q.push_back((i, t));
                if dup {
                    q.push_back((i, t));
                }
            }
        } else if let Some(msg) = text.split_once(" <- Recv ").map(|x| x.1) {
            if let Some((from, sent)) = self.sends.get_mut(msg).and_then(|q| q.pop_front()) {
                self.m.votes.push(Arrow {
                    from,
                    to: i,
                    sent,
                    recv: t,
                    text: msg.to_string(),
                });
            }
        } else if let Some(msg) = text
            .strip_prefix("-> drop ")
            .or_else(|| text.strip_prefix("drop "))
        {
            if !msg.contains(" Heartbeat") {
                self.m.drops.push((t, i, msg.to_string()));
            }
        } else {
            return false;
        }
        true
    }

    /// Frames sent and received (arrows) and stream opens and closes of node `i`.
    fn stream(&mut self, i: usize, t: u64, text: &str) -> bool {
        let m = &mut self.m;
        if let Some(frame) = text.strip_prefix("-> SendFrame ") {
            if !frame.contains(" dropped (") {
                self.frames
                    .entry(frame.to_string())
                    .or_default()
                    .push_back((i, t));
            }
        } else if let Some(frame) = text.split_once(" <- FrameRecv ").map(|x| x.1) {
            if let Some((from, sent)) = self.frames.get_mut(frame).and_then(|q| q.pop_front()) {
                let a = Arrow {
                    from,
                    to: i,
                    sent,
                    recv: t,
                    text: frame.to_string(),
                };
                if frame.contains(" Ack ") {
                    m.acks.push(a);
                } else {
                    m.chunks.push(a);
                }
            }
        } else if let Some(s) = text.strip_prefix("-> OpenStream ") {
            m.markers.push((t, i, "open", format!("open {s}")));
        } else if let Some(s) = text.split_once(" <- StreamOpened ").map(|x| x.1) {
            m.markers.push((t, i, "open", format!("opened {s}")));
        } else if let Some(s) = text.strip_prefix("-> CloseStream ") {
            m.markers.push((t, i, "close", format!("close {s}")));
        } else if let Some(s) = text.split_once(" <- StreamClosed ").map(|x| x.1) {
            m.markers.push((t, i, "close", format!("closed {s}")));
        } else if text.starts_with("stream ") && text.contains("broke") {
            m.markers.push((t, i, "close", text.to_string()));
        } else {
            return false;
        }
        true
    }

    /// Every step names the role and term before it: catches restarts and
    /// any change the RoleChanged actions did not report.
    fn step_glyph(&mut self, i: usize, t: u64, text: &str) -> bool {
        let Some((glyph, _)) = text.split_once(" <- ") else {
            return false;
        };
        let mut c = glyph.chars();
        let role = c.next().and_then(Role::from_glyph);
        let term = c.as_str().parse::<u64>().ok();
        if let (Some(role), Some(term)) = (role, term) {
            let last = self.m.roles[i].last().copied();
            if last.is_none_or(|(_, r, tm)| r != role || tm != term) {
                self.m.roles[i].push((t, role, term));
            }
        }
        true
    }

    /// Closes what is still open at the end and adds the client operations.
    fn finish(mut self, report: &RunReport, client_timeout_ns: u64) -> Model {
        let end = self.m.end;
        for (i, d) in self.down_since.iter().enumerate() {
            if let Some(d) = d {
                self.m.down[i].push((*d, end));
            }
        }
        for (i, p) in self.pause_since.iter().enumerate() {
            if let Some(p) = p {
                self.m.paused[i].push((*p, end));
            }
        }
        self.end_partition(end);
        client_ops(&mut self.m, report, client_timeout_ns);
        self.m
    }
}

/// Escapes text for XML content and attributes.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

fn secs(ns: u64) -> String {
    format!("{:.6}s", ns as f64 / 1e9)
}

/// Keeps at most `max` of `v` inside `[t0, t1]`, evenly spaced.
fn thin(v: &[Arrow], t0: u64, t1: u64, max: usize) -> (Vec<&Arrow>, usize) {
    let inside: Vec<&Arrow> = v.iter().filter(|a| a.recv >= t0 && a.sent <= t1).collect();
    let total = inside.len();
    if total <= max {
        return (inside, total);
    }
    let kept = (0..max).map(|k| inside[k * total / max]).collect();
    (kept, total)
}

mod svg;

/// Renders the run as a self-contained HTML page. `window` (nanoseconds) bounds
/// the message panel; by default it is the last two seconds before the failure
/// or the end.
pub fn render(
    scenario: &Scenario,
    report: &RunReport,
    records: &[Record],
    window: Option<(u64, u64)>,
) -> String {
    let m = build(scenario, report, records);
    let focus = m.failure.as_ref().map_or(m.end, |f| f.0);
    let (w0, w1) = window.unwrap_or((focus.saturating_sub(DEFAULT_WINDOW_NS), focus.max(1)));
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        h,
        "<title>raft-sim timeline, seed {}</title>",
        scenario.seed
    );
    h.push_str(
        "<style>body{font-family:sans-serif;font-size:13px;margin:12px}\
         svg text{font-family:monospace;font-size:11px}\
         .legend span{display:inline-block;padding:1px 6px;margin-right:6px;border:1px solid #888}</style>\n",
    );
    h.push_str("</head>\n<body>\n");
    let verdict = match &m.failure {
        Some((t, f)) => format!("FAILED at {}: {}", secs(*t), esc(f)),
        None => match &report.failure {
            Some(f) => format!("FAILED: {}", esc(&f.to_string())),
            None => "PASS".to_string(),
        },
    };
    let _ = writeln!(
        h,
        "<h2>seed {} &mdash; {} nodes, {} simulated &mdash; {}</h2>",
        scenario.seed,
        m.n,
        secs(m.end),
        verdict
    );
    let _ = writeln!(h, "<p>knobs: {}</p>", esc(&scenario.knobs.to_string()));
    h.push_str(svg::LEGEND);
    h.push_str(svg::DEFS);
    let _ = writeln!(h, "<h3>Whole run: 0 .. {}</h3>", secs(m.end));
    svg::panel(&mut h, &m, 0, m.end.max(1), false);
    let _ = writeln!(
        h,
        "<h3>Window {} .. {} with messages</h3>",
        secs(w0),
        secs(w1)
    );
    svg::panel(&mut h, &m, w0, w1, true);
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests;
