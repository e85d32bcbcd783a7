//! Hostile clients against one `raft-kv` process: lying and malformed
//! framing, slow bodies, huge heads, floods of idle connections, garbage on
//! the raft port.
//!
//! Each attack runs while a canary opens a fresh connection and asks
//! `GET /status` again and again; afterwards every canary request must have
//! been answered (200) within [`CANARY_BOUND`], the node must still be up,
//! and its resident memory and thread count (from `/proc/<pid>/status`,
//! sampled between canary requests) must have stayed within bounds.
//!
//! The node runs with short limits (`HOSTILE`) so attacks end quickly. The
//! cases run one at a time (a lock), so that one attack's load does not
//! delay another's canary. Every loop is bounded in count and time.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Cluster, eventually};

/// The limits the attacked node runs with.
const HOSTILE: &[&str] = &[
    "--header-timeout-ms",
    "1000",
    "--body-timeout-ms",
    "2000",
    "--write-timeout-ms",
    "2000",
];
/// The longest a canary request may wait for its answer. Generous (debug
/// builds, a shared 2-core machine), yet far below "never": the old server
/// left canaries unanswered for as long as an attack lasted.
const CANARY_BOUND: Duration = Duration::from_secs(5);
/// Resident memory the node may gain during an attack. Bodies are capped by
/// the body budget (64 MiB by default, far from reached here) and heads by
/// 64 KiB per connection.
const RSS_GROWTH_KIB_MAX: u64 = 96 << 10;
/// Threads the node may run at most: its own (driver, applier, log writer,
/// transport), two HTTP workers and up to `--http-threads` (8 in the tests'
/// flags) blocking threads. The old server ran one thread per connection.
const THREADS_MAX: u64 = 64;
/// How long an attack thread may go on at most.
const ATTACK_SECONDS_MAX: Duration = Duration::from_secs(8);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `VmRSS` (KiB) and `Threads` of a process.
fn rss_and_threads(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

/// One `GET /status` on a new connection: the status code, or why none came.
fn ask_status(http: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(http).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(CANARY_BOUND)).unwrap();
    s.set_write_timeout(Some(CANARY_BOUND)).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: canary\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not a status line: {:?}", String::from_utf8_lossy(&head)))
}

/// What the canary saw.
struct CanaryReport {
    answered: u64,
    slowest: Duration,
    failures: Vec<String>,
    peak_rss_kib: u64,
    peak_threads: u64,
}

/// The attacked node.
struct Target {
    cluster: Cluster,
    http: String,
    raft: String,
    pid: u32,
}

impl Target {
    fn start() -> Target {
        let cluster = Cluster::start(1, HOSTILE);
        let slot = &cluster.slots[0];
        let pid = slot.process.as_ref().unwrap().pid();
        let (http, raft) = (slot.http.clone(), slot.raft.clone());
        // The node records its HTTP address once it leads: wait for that write,
        // so the baseline below is taken from a settled node.
        eventually("the node to lead and record its address", || {
            cluster
                .status(0)
                .is_some_and(|s| s["role"] == "leader" && s["members"][0]["http"] == http.as_str())
        });
        Target {
            cluster,
            http,
            raft,
            pid,
        }
    }

    fn alive(&mut self) -> bool {
        let process = self.cluster.slots[0].process.as_mut().unwrap();
        rss_and_threads(process.pid()).is_some() && ask_status(&self.http) == Ok(200)
    }

    /// Runs `attack` while a canary asks for the node's status; checks the
    /// canary, the node's life, memory and threads; returns the attack's result.
    fn under_attack<T>(&mut self, what: &str, attack: impl FnOnce(&Target) -> T) -> T {
        let (rss_before, _) = rss_and_threads(self.pid).expect("the node runs");
        let stop = Arc::new(AtomicBool::new(false));
        let first_answer = Arc::new(AtomicBool::new(false));
        let canary = {
            let (http, pid, stop) = (self.http.clone(), self.pid, Arc::clone(&stop));
            let first_answer = Arc::clone(&first_answer);
            std::thread::spawn(move || {
                let mut report = CanaryReport {
                    answered: 0,
                    slowest: Duration::ZERO,
                    failures: Vec::new(),
                    peak_rss_kib: 0,
                    peak_threads: 0,
                };
                let deadline = Instant::now() + ATTACK_SECONDS_MAX * 3;
                for _ in 0..10_000 {
                    if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break;
                    }
                    if let Some((rss, threads)) = rss_and_threads(pid) {
                        report.peak_rss_kib = report.peak_rss_kib.max(rss);
                        report.peak_threads = report.peak_threads.max(threads);
                    }
                    let asked = Instant::now();
                    match ask_status(&http) {
                        Ok(200) => {
                            report.answered += 1;
                            first_answer.store(true, Ordering::SeqCst);
                        }
                        Ok(code) => report.failures.push(format!("status {code}")),
                        Err(e) => report.failures.push(e),
                    }
                    report.slowest = report.slowest.max(asked.elapsed());
                    // Pacing, so the canary is a client, not a load.
                    std::thread::sleep(Duration::from_millis(50));
                }
                report
            })
        };
        // The attack starts once the canary flies, so it is watched throughout.
        eventually("the canary's first answer", || {
            first_answer.load(Ordering::SeqCst) || canary.is_finished()
        });
        let result = attack(self);
        stop.store(true, Ordering::SeqCst);
        let report = canary.join().unwrap();
        assert!(self.alive(), "{what}: the node is down");
        assert!(
            report.failures.is_empty() && report.answered > 0,
            "{what}: canary answered {} times, failed {:?}",
            report.answered,
            report.failures
        );
        assert!(
            report.slowest <= CANARY_BOUND,
            "{what}: a canary waited {:?}",
            report.slowest
        );
        assert!(
            report.peak_rss_kib <= rss_before + RSS_GROWTH_KIB_MAX,
            "{what}: RSS grew from {rss_before} KiB to {} KiB",
            report.peak_rss_kib
        );
        assert!(
            report.peak_threads <= THREADS_MAX,
            "{what}: {} threads",
            report.peak_threads
        );
        result
    }
}

/// Sends `request` on a new connection and reads until the server closes
/// it (or `patience` passes): what it answered, or `None` for a close
/// without an answer.
fn exchange(http: &str, request: &[u8], patience: Duration) -> (Option<u16>, Instant) {
    let Ok(mut s) = TcpStream::connect(http) else {
        return (None, Instant::now()); // nobody listens: the node is gone
    };
    s.set_read_timeout(Some(patience)).unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let code = std::str::from_utf8(answer.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse().ok());
    (code, Instant::now())
}

/// Whether the server closed `s` within `patience`: a read returns the end
/// (after any answer) or a reset.
fn closed_by_server(mut s: &TcpStream, patience: Duration) -> bool {
    s.set_read_timeout(Some(patience)).unwrap();
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
    false
}

fn key_absent(target: &Target, key: &str) -> bool {
    let url = format!("http://{}/kv/{key}", target.http);
    target.cluster.agent.get(&url).call().unwrap().status() == 404
}

#[test]
fn a_huge_content_length_on_a_bodiless_request_is_answered_without_reading_it() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    let codes = target.under_attack("Content-Length 1e12 on GET /status", |t| {
        (0..5)
            .map(|_| {
                let request =
                    b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n";
                exchange(&t.http, request, CANARY_BOUND).0
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(codes, vec![Some(200); 5]);
}

#[test]
fn negative_and_conflicting_content_lengths_are_refused_with_400_and_commit_nothing() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    let codes = target.under_attack("bad Content-Length framing", |t| {
        [
            &b"PUT /kv/negative HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"[..],
            b"PUT /kv/twice HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
            b"PUT /kv/split HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 5\r\n\r\nabcde",
            b"PUT /kv/letters HTTP/1.1\r\nHost: x\r\nContent-Length: five\r\n\r\nabcde",
        ]
        .iter()
        .map(|request| exchange(&t.http, request, CANARY_BOUND).0)
        .collect::<Vec<_>>()
    });
    assert_eq!(codes, vec![Some(400); 4]);
    for key in ["negative", "twice", "split", "letters"] {
        assert!(key_absent(&target, key), "{key} was committed");
    }
}

#[test]
fn slowloris_bodies_are_cut_off_while_other_clients_are_served() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    let codes = target.under_attack("32 dribbled 100 KB PUT bodies", |t| {
        let dribblers: Vec<_> = (0..32)
            .map(|i| {
                let http = t.http.clone();
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(&http).unwrap();
                    let head = format!(
                        "PUT /kv/slow{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                    );
                    s.write_all(head.as_bytes()).unwrap();
                    let started = Instant::now();
                    // One byte every 100 ms: 100 KB would take nearly three hours.
                    for _ in 0..100_000 {
                        if started.elapsed() > ATTACK_SECONDS_MAX || s.write_all(b"v").is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        if closed_by_server_now(&mut s) {
                            break;
                        }
                    }
                    let (code, _) = read_answer(&mut s);
                    code
                })
            })
            .collect();
        dribblers
            .into_iter()
            .map(|d| d.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(codes, vec![Some(408); 32], "each slow body gets 408");
    assert!(key_absent(&target, "slow0"));
}

/// Whether the server has answered or closed `s` (a non-blocking peek).
fn closed_by_server_now(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let answered =
        !matches!(s.peek(&mut byte), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    answered
}

/// Reads whatever answer `s` carries until the server closes it.
fn read_answer(s: &mut TcpStream) -> (Option<u16>, usize) {
    s.set_read_timeout(Some(CANARY_BOUND)).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let code = std::str::from_utf8(answer.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse().ok());
    (code, answer.len())
}

#[test]
fn chunked_bodies_that_never_end_are_cut_off_at_the_body_timeout() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    let codes = target.under_attack("16 endless chunked bodies", |t| {
        let senders: Vec<_> = (0..16)
            .map(|i| {
                let http = t.http.clone();
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(&http).unwrap();
                    let head = format!(
                        "PUT /kv/chunked{i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    );
                    s.write_all(head.as_bytes()).unwrap();
                    let started = Instant::now();
                    for _ in 0..1000 {
                        if started.elapsed() > ATTACK_SECONDS_MAX
                            || s.write_all(b"4\r\nmore\r\n").is_err()
                            || closed_by_server_now(&mut s)
                        {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    read_answer(&mut s).0
                })
            })
            .collect();
        senders
            .into_iter()
            .map(|s| s.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(codes, vec![Some(408); 16]);
    assert!(key_absent(&target, "chunked0"));
}

#[test]
fn a_256_mib_header_line_is_refused_after_the_head_limit() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    let (sent, cut_off) = target.under_attack("a 256 MiB header line", |t| {
        let mut s = TcpStream::connect(&t.http).unwrap();
        s.set_write_timeout(Some(CANARY_BOUND)).unwrap();
        s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            .unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let started = Instant::now();
        let mut sent = 0usize;
        while sent < 256 << 20 && started.elapsed() < ATTACK_SECONDS_MAX {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                // The server answered 431 and closed: the rest is refused.
                Err(_) => return (sent, true),
            }
        }
        (sent, false)
    });
    // What got through before the close is the head limit plus the two
    // sockets' buffers, not the line.
    assert!(
        cut_off && sent < 32 << 20,
        "the server took {sent} bytes of one header line without closing"
    );
}

#[test]
fn a_flood_of_idle_connections_is_closed_at_the_header_timeout() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    let idle = target.under_attack("1500 idle connections", |t| {
        let idle: Vec<TcpStream> = (0..1500)
            .filter_map(|_| TcpStream::connect(&t.http).ok())
            .collect();
        // Hold them while the canary asks through two header timeouts.
        std::thread::sleep(Duration::from_secs(3));
        idle
    });
    assert_eq!(idle.len(), 1500, "every connection was accepted or queued");
    // Those accepted first are long closed; those queued beyond the
    // connection cap are accepted as others close, then time out too.
    let patience = CANARY_BOUND;
    let open = idle
        .iter()
        .filter(|s| !closed_by_server(s, patience))
        .count();
    assert_eq!(open, 0, "idle connections the server never closed");
}

#[test]
fn junk_without_a_newline_is_closed_at_the_header_timeout() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    let closed = target.under_attack("junk without a newline", |t| {
        // Bytes no request starts with (answered 400 at once), and a request
        // line that never ends (closed at the header timeout).
        let junk: Vec<TcpStream> = (0..8)
            .map(|i| {
                let mut s = TcpStream::connect(&t.http).unwrap();
                let bytes: &[u8] = if i % 2 == 0 {
                    b"\x16\x03\x01 this is no HTTP request and it never ends"
                } else {
                    b"GET /this-request-line-never-ends-and-has-no-newline"
                };
                s.write_all(bytes).unwrap();
                s
            })
            .collect();
        junk.iter()
            .filter(|s| closed_by_server(s, CANARY_BOUND))
            .count()
    });
    assert_eq!(closed, 8);
}

#[test]
fn random_bytes_on_the_raft_port_leave_the_node_serving() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut target = Target::start();
    target.under_attack("garbage on the raft port", |t| {
        // A fixed xorshift stream: reproducible garbage.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut garbage = |n: usize| {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect::<Vec<u8>>()
        };
        let mut lying = b"SRFT\x01".to_vec(); // the control magic, then a 4 GiB length
        lying.extend([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        for i in 0..64 {
            let Ok(mut s) = TcpStream::connect(&t.raft) else {
                continue;
            };
            s.set_write_timeout(Some(CANARY_BOUND)).unwrap();
            let bytes = if i % 8 == 0 {
                lying.clone()
            } else {
                garbage(64 << 10)
            };
            let _ = s.write_all(&bytes);
        }
    });
    let put = format!("http://{}/kv/after", target.http);
    let agent = &target.cluster.agent;
    assert_eq!(
        agent.put(&put).send("still writable").unwrap().status(),
        200
    );
    let status = target.cluster.status(0).unwrap();
    assert!(
        status["transport"]["malformed_connections"]
            .as_u64()
            .unwrap()
            > 0
    );
}
