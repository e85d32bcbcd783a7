//! When a node process stops: on SIGINT or SIGTERM (a second one kills at
//! once), or when stdin closes (`--exit-on-stdin-close`).
//!
//! Threads wait for it on a condition variable rather than polling a flag:
//! an idle node's main thread and HTTP announcer used to wake 50 times a
//! second each just to look at it (measured with `perf stat` on an idle
//! `raft-kv local-cluster`).

use signal_hook::consts::{SIGINT, SIGTERM};
use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Whether the process was asked to stop, and a way to wait for it.
#[derive(Default)]
pub struct Shutdown {
    asked: Mutex<bool>,
    changed: Condvar,
}

impl Shutdown {
    /// Handles SIGINT and SIGTERM, and a closed stdin if asked to.
    pub fn install(exit_on_stdin_close: bool) -> Result<Arc<Shutdown>, String> {
        let shutdown = Arc::new(Shutdown::default());
        // A signal handler may not take a lock: the first signal sets this
        // flag (which makes a second one kill at once) and wakes a thread
        // that blocks on the signals and asks for the shutdown.
        let first_seen = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&first_seen))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&first_seen)))
                .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
        }
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .map_err(|e| format!("cannot handle signals: {e}"))?;
        let asker = Arc::clone(&shutdown);
        std::thread::Builder::new()
            .name("signal-watch".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    asker.ask();
                }
            })
            .map_err(|e| e.to_string())?;
        if exit_on_stdin_close {
            let asker = Arc::clone(&shutdown);
            std::thread::Builder::new()
                .name("stdin-watch".into())
                .spawn(move || {
                    let mut sink = [0u8; 256];
                    let mut stdin = std::io::stdin();
                    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                    asker.ask();
                })
                .map_err(|e| e.to_string())?;
        }
        Ok(shutdown)
    }

    /// Asks every waiter to stop.
    pub fn ask(&self) {
        *self.lock() = true;
        self.changed.notify_all();
    }

    /// Waits until a stop is asked for or `timeout` passes; whether it was.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut asked = self.lock();
        while !*asked {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            asked = self
                .changed
                .wait_timeout(asked, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        // A waiter that panicked leaves a plain bool behind: still valid.
        self.asked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_ends_when_asked_from_another_thread() {
        let shutdown = Arc::new(Shutdown::default());
        assert!(!shutdown.wait(Duration::ZERO));
        let asker = Arc::clone(&shutdown);
        let thread = std::thread::spawn(move || asker.ask());
        // A day: only the ask can end this wait.
        assert!(shutdown.wait(Duration::from_secs(86_400)));
        assert!(shutdown.wait(Duration::ZERO), "an ask is kept");
        thread.join().unwrap();
    }

    #[test]
    fn a_wait_without_an_ask_times_out_and_one_after_an_ask_returns_at_once() {
        let shutdown = Shutdown::default();
        assert!(!shutdown.wait(Duration::from_millis(1)));
        shutdown.ask();
        assert!(shutdown.wait(Duration::ZERO), "asked before the wait");
    }
}
