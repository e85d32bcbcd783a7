//! The run's trace: one record per thing that happened, each with a typed
//! [`Fact`] (what a program matches on) and a one-line text (what a person
//! reads), folded into a rolling 64-bit digest (the determinism check), kept
//! in a bounded ring (the tail printed on failure), handed to subscribers
//! ([`Trace::subscribe`]), and optionally written as text to stdout or as
//! JSONL to a file.
//!
//! The digest, `-v` and the JSONL are made of the text alone, so adding a
//! fact to a record changes no digest and no replay.

use crate::digest::{hash_bytes, mix};
use raft_core::Instant;
use std::collections::VecDeque;
use std::fmt;
use std::io::Write;

mod fact;
pub use fact::{ActionKind, BreakCause, DropReason, Fact, FrameKind, Input};

/// One trace record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// Position in the run.
    pub seq: u64,
    /// Global simulated time.
    pub at: Instant,
    /// The node it concerns (world index), if any.
    pub node: Option<usize>,
    /// What happened, as data.
    pub fact: Fact,
    /// What happened, one line.
    pub text: String,
}

/// A function every record is handed to, as it is recorded.
pub type Subscriber = Box<dyn FnMut(&TraceRecord)>;

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}", self.at);
        match self.node {
            Some(n) => write!(f, "{at:>14} n{:<2} {}", n + 1, self.text),
            None => write!(f, "{at:>14} --  {}", self.text),
        }
    }
}

/// Where records go besides the digest.
pub struct Trace {
    digest: u64,
    seq: u64,
    ring: VecDeque<TraceRecord>,
    ring_cap: usize,
    echo: bool,
    jsonl: Option<Box<dyn Write + Send>>,
    subscribers: Vec<Subscriber>,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Trace {{ seq: {}, digest: {:016x} }}",
            self.seq, self.digest
        )
    }
}

impl Trace {
    /// A trace keeping the last `ring_cap` records; `echo` prints each record to stdout.
    pub fn new(ring_cap: usize, echo: bool) -> Trace {
        Trace {
            digest: 0,
            seq: 0,
            ring: VecDeque::new(),
            ring_cap,
            echo,
            jsonl: None,
            subscribers: Vec::new(),
        }
    }

    /// Also writes every record as one JSON object per line.
    pub fn with_jsonl(mut self, out: Box<dyn Write + Send>) -> Trace {
        self.jsonl = Some(out);
        self
    }

    /// Hands every record from now on to `f`, in order, as it is recorded
    /// (whatever the ring keeps). `f` only observes: it cannot change the run.
    pub fn subscribe(&mut self, f: impl FnMut(&TraceRecord) + 'static) {
        self.subscribers.push(Box::new(f));
    }

    /// Records one thing that happened: `fact` for programs, `text` for people.
    pub fn record(&mut self, at: Instant, node: Option<usize>, fact: Fact, text: String) {
        self.digest = mix(
            mix(mix(self.digest, at.0), node.map_or(0, |n| n as u64 + 1)),
            hash_bytes(text.as_bytes()),
        );
        let rec = TraceRecord {
            seq: self.seq,
            at,
            node,
            fact,
            text,
        };
        self.seq += 1;
        for f in &mut self.subscribers {
            f(&rec);
        }
        if self.echo {
            println!("{rec}");
        }
        if let Some(out) = &mut self.jsonl {
            let line = serde_json::json!({
                "seq": rec.seq,
                "at_ns": rec.at.0,
                "node": rec.node.map(|n| n + 1),
                "text": rec.text,
            });
            // A failing trace file must not change the run: ignore write errors here
            // and let the caller's flush report them.
            let _ = writeln!(out, "{line}");
        }
        if self.ring_cap > 0 {
            if self.ring.len() == self.ring_cap {
                self.ring.pop_front();
            }
            self.ring.push_back(rec);
        }
    }

    /// The rolling digest of every record so far.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// How many records so far.
    pub fn len(&self) -> u64 {
        self.seq
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.seq == 0
    }

    /// Every record the ring keeps (the last `ring_cap`), oldest first.
    pub fn records(&self) -> impl Iterator<Item = &TraceRecord> {
        self.ring.iter()
    }

    /// The last `n` records kept.
    pub fn tail(&self, n: usize) -> impl Iterator<Item = &TraceRecord> {
        self.ring.iter().skip(self.ring.len().saturating_sub(n))
    }

    /// Flushes the JSONL output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.jsonl {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_time_node_and_text() {
        let mut a = Trace::new(2, false);
        let mut b = Trace::new(2, false);
        a.record(Instant(1), Some(0), Fact::Resumed, "x".into());
        b.record(Instant(1), Some(0), Fact::Resumed, "x".into());
        assert_eq!(a.digest(), b.digest());
        b.record(Instant(2), Some(0), Fact::Resumed, "y".into());
        a.record(Instant(2), Some(1), Fact::Resumed, "y".into());
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn ring_keeps_only_the_tail() {
        let mut t = Trace::new(2, false);
        for i in 0..5 {
            t.record(Instant(i), None, Fact::Healed, format!("r{i}"));
        }
        let texts: Vec<&str> = t.tail(10).map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["r3", "r4"]);
        assert_eq!(t.len(), 5);
        assert_eq!(
            format!("{}", t.tail(1).next().unwrap()),
            "     0.000000s --  r4"
        );
    }
}
