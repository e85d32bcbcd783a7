//! Logs: `tracing-subscriber`'s formatter on stderr, filtered by `--log`
//! (or `RUST_LOG`) in its `EnvFilter` syntax.

use tracing_subscriber::EnvFilter;

/// Installs the process's subscriber; a filter that does not parse is an
/// error for the command line to report.
pub fn install(filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("--log {filter:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init()
        .map_err(|e| e.to_string())
}
