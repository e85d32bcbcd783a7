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
    /// The last `ring_cap` records: in order from `head` to the end, then
    /// from the start to `head` (a full ring overwrites its oldest record in
    /// place rather than moving records in and out).
    ring: Vec<TraceRecord>,
    head: usize,
    ring_cap: usize,
    echo: bool,
    jsonl: Option<Box<dyn Write + Send>>,
    subscribers: Vec<Subscriber>,
    /// The text buffer of the record last pushed out of the ring, handed
    /// back by [`Trace::text`]: formatting every record into a fresh
    /// `String` grown from empty was a large share of a sweep's time.
    spare: String,
}

/// The capacity a text buffer starts with: most records fit, so
/// formatting one rarely reallocates.
const TEXT_CAPACITY: usize = 128;

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
            ring: Vec::new(),
            head: 0,
            ring_cap,
            echo,
            jsonl: None,
            subscribers: Vec::new(),
            spare: String::new(),
        }
    }

    /// Formats a record's text into a recycled buffer (the text of a record
    /// the ring let go), to hand to [`Trace::record`]. Same text as
    /// `format!`, without an allocation per record once the ring is full.
    pub fn text(&mut self, args: fmt::Arguments<'_>) -> String {
        let mut text = std::mem::take(&mut self.spare);
        text.clear();
        if text.capacity() == 0 {
            text.reserve(TEXT_CAPACITY);
        }
        fmt::Write::write_fmt(&mut text, args).expect("formatting into a String cannot fail");
        text
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
        let seq = self.seq;
        self.seq += 1;
        let watched = self.echo || self.jsonl.is_some() || !self.subscribers.is_empty();
        if self.ring_cap == 0 {
            if watched {
                let rec = TraceRecord {
                    seq,
                    at,
                    node,
                    fact,
                    text,
                };
                emit(&mut self.subscribers, self.echo, &mut self.jsonl, &rec);
                self.spare = rec.text;
            } else {
                self.spare = text;
            }
            return;
        }
        let rec = if self.ring.len() < self.ring_cap {
            self.ring.push(TraceRecord {
                seq,
                at,
                node,
                fact,
                text,
            });
            self.ring.len() - 1
        } else {
            // The sweep's hot path: overwrite the oldest record in place.
            let k = self.head;
            self.head = (k + 1) % self.ring_cap;
            let slot = &mut self.ring[k];
            slot.seq = seq;
            slot.at = at;
            slot.node = node;
            slot.fact = fact;
            self.spare = std::mem::replace(&mut slot.text, text);
            k
        };
        if watched {
            let rec = &self.ring[rec];
            emit(&mut self.subscribers, self.echo, &mut self.jsonl, rec);
        }
    }

    /// The records kept, oldest first.
    fn kept(&self) -> impl Iterator<Item = &TraceRecord> {
        self.ring[self.head..].iter().chain(&self.ring[..self.head])
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
        self.kept()
    }

    /// The last `n` records kept.
    pub fn tail(&self, n: usize) -> impl Iterator<Item = &TraceRecord> {
        self.kept().skip(self.ring.len().saturating_sub(n))
    }

    /// Flushes the JSONL output.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.jsonl {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// Hands `rec` to the subscribers, stdout (`echo`) and the JSONL output.
fn emit(
    subscribers: &mut [Subscriber],
    echo: bool,
    jsonl: &mut Option<Box<dyn Write + Send>>,
    rec: &TraceRecord,
) {
    for f in subscribers {
        f(rec);
    }
    if echo {
        println!("{rec}");
    }
    if let Some(out) = jsonl {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

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
        let seqs: Vec<u64> = t.records().map(|r| r.seq).collect();
        assert_eq!(seqs, [3, 4]);
        assert_eq!(t.len(), 5);
        assert_eq!(
            format!("{}", t.tail(1).next().unwrap()),
            "     0.000000s --  r4"
        );
    }

    #[test]
    fn a_subscriber_sees_every_record_in_order_whatever_the_ring_keeps() {
        for cap in [0, 1, 3] {
            let mut t = Trace::new(cap, false);
            let seen: Rc<RefCell<Vec<(u64, String)>>> = Rc::default();
            let sink = seen.clone();
            t.subscribe(move |r| sink.borrow_mut().push((r.seq, r.text.clone())));
            for i in 0..5 {
                t.record(Instant(i), None, Fact::Healed, format!("r{i}"));
            }
            let want: Vec<(u64, String)> = (0..5).map(|i| (i, format!("r{i}"))).collect();
            assert_eq!(*seen.borrow(), want, "ring of {cap}");
            assert_eq!(t.records().count(), cap.min(5));
        }
    }

    /// Every step and every datagram or frame makes a fact, which the ring
    /// moves: a payload (an entry, a `Vec`) slipping into one would cost
    /// every sweep.
    #[test]
    fn a_fact_stays_within_a_cache_line() {
        assert!(std::mem::size_of::<Fact>() <= 64);
    }
}
