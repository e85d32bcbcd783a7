//! Loopback addresses for processes that must be named before they start.
//!
//! A cluster's member list names every node's raft address before any node
//! runs, so the address is found free by binding it, then released for the
//! node to bind. Between the two, another socket may take it. Port 0 would
//! let the OS pick from its ephemeral range, which is exactly where every
//! other `bind(0)` (each node's HTTP listener, say) and every outgoing
//! connection pick theirs too. So the ports here are drawn at random from
//! just below that range, where the OS never hands one out by itself: only
//! another picker drawing the same port in the same instant can collide.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::TcpListener;

/// How many ports below the ephemeral range are candidates.
const SPAN: u16 = 12_000;
/// Draws per address before giving up on the range and asking for port 0.
const DRAWS_MAX: usize = 200;

/// `n` distinct loopback addresses (`127.0.0.1:PORT`) free a moment ago.
///
/// # Examples
/// ```
/// let addresses = raft_kv::ports::free_loopback_addresses(3).unwrap();
/// assert_eq!(addresses.len(), 3);
/// assert!(addresses.iter().all(|a| a.starts_with("127.0.0.1:")));
/// ```
pub fn free_loopback_addresses(n: usize) -> io::Result<Vec<String>> {
    let low = ephemeral_start();
    let first = low.saturating_sub(SPAN).max(1024);
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    let mut draws = RandomState::new().build_hasher();
    draws.write_u32(std::process::id());
    while held.len() < n {
        let mut listener = None;
        if first < low {
            for _ in 0..DRAWS_MAX {
                draws.write_usize(held.len());
                let port = first + (draws.finish() % u64::from(low - first)) as u16;
                // A port drawn before (or anyone's listener) fails to bind,
                // and another is drawn.
                if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                    listener = Some(l);
                    break;
                }
            }
        }
        held.push(match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0")?,
        });
    }
    held.iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect()
}

/// Where the range the OS picks ports from (for port 0 and outgoing
/// connections) starts: Linux says it in /proc; elsewhere, the IANA range's
/// start, which most systems use.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(49152)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_free_and_outside_the_ephemeral_range() {
        let addresses = free_loopback_addresses(16).unwrap();
        let mut ports: Vec<u16> = addresses
            .iter()
            .map(|a| a.rsplit_once(':').unwrap().1.parse().unwrap())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 16, "{addresses:?}");
        let low = ephemeral_start();
        assert!(ports.iter().all(|&p| p < low), "{ports:?} reach {low}");
        for a in &addresses {
            TcpListener::bind(a.as_str()).unwrap();
        }
    }
}
