//! The run's trace: one record per thing that happened, each with a typed
//! [`Fact`] (what a program matches on) and a one-line text (what a person
//! reads), folded into a rolling 64-bit digest (the determinism check), kept
//! in a bounded ring (the tail printed on failure), handed to subscribers
//! ([`Trace::subscribe`]), and optionally written as text to stdout or as
//! JSONL to a file.
//!
//! The digest is made of the facts (plus the text of the few facts whose
//! text says which, see [`Fact::text_says_more`]), so a trace that nobody
//! reads never formats a line: a sweep keeps no ring
//! ([`Trace::new`] with a capacity of 0) and [`Trace::text`] then returns an
//! empty string without formatting. Formatting every record was most of a
//! sweep's time. `-v`, the JSONL and the timeline are made of the text alone.

use crate::digest::{hash_bytes, mix, mix_hash};
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
    /// Whether anything reads the records' text: a ring, `echo`, the JSONL
    /// or a subscriber. Without, [`Trace::text`] formats nothing.
    wants_text: bool,
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
            wants_text: ring_cap > 0 || echo,
            spare: String::new(),
        }
    }

    /// Whether anything reads the records' text (a ring, `-v`, the JSONL, a
    /// subscriber): if not, [`Trace::text`] returns an empty string and a
    /// caller may skip work that only feeds the text.
    pub fn wants_text(&self) -> bool {
        self.wants_text
    }

    /// Formats a record's text into a recycled buffer (the text of a record
    /// the ring let go), to hand to [`Trace::record`]. Same text as
    /// `format!`, without an allocation per record once the ring is full;
    /// an empty string, formatting nothing, when nothing reads the text
    /// ([`Trace::wants_text`]). A fact whose text says more than the fact
    /// ([`Fact::text_says_more`]) must get its text from `format!` instead:
    /// the digest reads it.
    #[inline]
    pub fn text(&mut self, args: fmt::Arguments<'_>) -> String {
        // Inlined, so a sweep (which reads no text) tests a flag at each
        // record instead of calling out with the arguments built.
        if !self.wants_text {
            return String::new();
        }
        self.format(args)
    }

    /// [`Trace::text`] when some reader wants it.
    #[inline(never)]
    fn format(&mut self, args: fmt::Arguments<'_>) -> String {
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
        self.wants_text = true;
        self
    }

    /// Hands every record from now on to `f`, in order, as it is recorded
    /// (whatever the ring keeps). `f` only observes: it cannot change the run.
    pub fn subscribe(&mut self, f: impl FnMut(&TraceRecord) + 'static) {
        self.subscribers.push(Box::new(f));
        self.wants_text = true;
    }

    /// Records one thing that happened: `fact` for programs, `text` for
    /// people (empty if nothing reads it, see [`Trace::text`]).
    pub fn record(&mut self, at: Instant, node: Option<usize>, fact: Fact, text: String) {
        let mut digest = mix_hash(
            mix(mix(self.digest, at.0), node.map_or(0, |n| n as u64 + 1)),
            &fact,
        );
        if fact.text_says_more() {
            debug_assert!(!text.is_empty(), "{fact:?} needs its text in the digest");
            digest = mix(digest, hash_bytes(text.as_bytes()));
        }
        self.digest = digest;
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
    fn digest_depends_on_time_node_and_fact() {
        let mut a = Trace::new(2, false);
        let mut b = Trace::new(2, false);
        a.record(Instant(1), Some(0), Fact::Resumed, "x".into());
        b.record(Instant(1), Some(0), Fact::Resumed, "x".into());
        assert_eq!(a.digest(), b.digest());
        b.record(Instant(2), Some(0), Fact::Resumed, "y".into());
        a.record(Instant(2), Some(1), Fact::Resumed, "y".into());
        assert_ne!(a.digest(), b.digest(), "the node counts");
        let (mut c, mut d) = (Trace::new(0, false), Trace::new(0, false));
        c.record(Instant(1), None, Fact::Resumed, String::new());
        d.record(Instant(2), None, Fact::Resumed, String::new());
        assert_ne!(c.digest(), d.digest(), "the time counts");
        let (mut c, mut d) = (Trace::new(0, false), Trace::new(0, false));
        c.record(Instant(1), None, Fact::Resumed, String::new());
        d.record(Instant(1), None, Fact::Healed, String::new());
        assert_ne!(c.digest(), d.digest(), "the fact counts");
    }

    #[test]
    fn the_digest_reads_the_text_only_where_the_fact_does_not_say_it_all() {
        let digest = |fact: Fact, text: &str| {
            let mut t = Trace::new(1, false);
            t.record(Instant(1), None, fact, text.into());
            t.digest()
        };
        assert_eq!(digest(Fact::Healed, "a"), digest(Fact::Healed, "b"));
        assert_ne!(digest(Fact::Nemesis, "a"), digest(Fact::Nemesis, "b"));
    }

    #[test]
    fn a_trace_nobody_reads_formats_nothing() {
        let mut t = Trace::new(0, false);
        assert!(!t.wants_text());
        assert_eq!(t.text(format_args!("x{}", 1)), "");
        t.subscribe(|_| {});
        assert!(t.wants_text());
        assert_eq!(t.text(format_args!("x{}", 1)), "x1");
        assert!(Trace::new(1, false).wants_text());
        assert!(Trace::new(0, true).wants_text());
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
