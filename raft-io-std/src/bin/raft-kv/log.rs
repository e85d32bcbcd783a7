//! A small `tracing` subscriber: one line per event on stderr, no spans.
//!
//! A process runs one node, so the node's span adds nothing; a dependency
//! on `tracing-subscriber` would add more than this file does.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Writes events at `max` and more severe to stderr:
/// `1712345678.123 WARN raft_io_std::node: message key=value`.
pub struct StderrLog {
    max: Level,
    next_span: AtomicU64,
}

impl StderrLog {
    /// Installs the subscriber for the whole process.
    pub fn install(max: Level) {
        let log = StderrLog {
            max,
            next_span: AtomicU64::new(1),
        };
        // Only fails if one is installed already, which main never does twice.
        let _ = tracing::subscriber::set_global_default(log);
    }
}

/// Collects an event's fields: the message first, then `key=value` pairs.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let meta = event.metadata();
        let text = format!(
            "{}.{:03} {} {}: {}{}\n",
            now.as_secs(),
            now.subsec_millis(),
            meta.level(),
            meta.target(),
            line.message,
            line.fields
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
