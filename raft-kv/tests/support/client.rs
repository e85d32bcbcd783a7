//! An HTTP client of `raft-kv` that follows redirects to the leader, retries
//! what certainly did not apply, and records every operation for
//! `raft_sim::linearizability`.

use raft_sim::linearizability::{Call, LinOp};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one operation keeps retrying definite failures (no leader, a
/// node down) before it gives up.
const OP_PATIENCE: Duration = Duration::from_secs(15);
/// The pause between two tries of an operation.
const RETRY_BACKOFF: Duration = Duration::from_millis(20);
/// Redirects followed before trying another node.
const REDIRECTS_MAX: usize = 4;

/// An HTTP agent that returns every status as a response and follows no
/// redirect by itself.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// `GET url` as JSON, if it answers 200.
pub fn get_json(agent: &ureq::Agent, url: &str) -> Option<Value> {
    let mut response = agent.get(url).call().ok()?;
    if response.status() != 200 {
        return None;
    }
    serde_json::from_slice(&response.body_mut().read_to_vec().ok()?).ok()
}

/// What became of a request.
#[derive(Debug)]
pub enum Answer {
    /// An answer other than a redirect or a 5xx: 2xx, 404, 409, 400...
    Done { status: u16, body: Vec<u8> },
    /// Certainly not applied: every try was refused before it could apply.
    NotApplied(String),
    /// May have been applied (a broken connection, a timeout, a lost leadership).
    Unknown(String),
}

/// One response, as far as the client cares.
struct Reply {
    status: u16,
    outcome: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
}

/// A client of a cluster whose nodes serve HTTP at `nodes`.
pub struct KvClient {
    nodes: Vec<String>,
    next: usize,
    agent: ureq::Agent,
    request_timeout: Duration,
}

impl KvClient {
    pub fn new(nodes: Vec<String>, first: usize) -> KvClient {
        let request_timeout = Duration::from_secs(20);
        KvClient {
            next: first % nodes.len(),
            nodes,
            agent: agent(request_timeout),
            request_timeout,
        }
    }

    fn send(&self, method: &str, url: &str, body: &[u8]) -> Result<Reply, ureq::Error> {
        let mut response = match method {
            "GET" => self.agent.get(url).call()?,
            "DELETE" => self.agent.delete(url).call()?,
            "PUT" => self.agent.put(url).send(body)?,
            "POST" => self.agent.post(url).send(body)?,
            other => panic!("unsupported method {other}"),
        };
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let (outcome, location) = (header("Raft-Outcome"), header("Location"));
        Ok(Reply {
            status: response.status().as_u16(),
            outcome,
            location,
            body: response.body_mut().read_to_vec()?,
        })
    }

    /// Sends `method path` to the cluster: follows redirects, moves on to
    /// another node while failures are definite, until it has an answer or
    /// [`OP_PATIENCE`] passes.
    pub fn call(&mut self, method: &str, path: &str, body: &[u8]) -> Answer {
        let deadline = Instant::now() + OP_PATIENCE;
        let mut target = self.nodes[self.next].clone();
        let mut redirects = 0;
        let mut last = String::from("no try");
        while Instant::now() < deadline {
            let url = format!("http://{target}{path}");
            match self.send(method, &url, body) {
                Ok(r) if r.status == 307 && redirects < REDIRECTS_MAX => {
                    redirects += 1;
                    let location = r.location.unwrap_or_default();
                    let host = location.trim_start_matches("http://");
                    target = host.split('/').next().unwrap_or_default().to_string();
                    continue;
                }
                Ok(r)
                    if r.status == 307
                        || (r.status >= 500 && r.outcome.as_deref() == Some("definite")) =>
                {
                    last = format!(
                        "{target}: {} {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    );
                }
                Ok(r) if r.status >= 500 => {
                    return Answer::Unknown(format!(
                        "{target}: {} {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
                Ok(r) => {
                    return Answer::Done {
                        status: r.status,
                        body: r.body,
                    };
                }
                Err(e) => {
                    // Pooled connections to a killed process are dead: start afresh.
                    self.agent = agent(self.request_timeout);
                    if !is_connect_failure(&e) {
                        return Answer::Unknown(format!("{target}: {e}"));
                    }
                    last = format!("{target}: {e}");
                }
            }
            self.next = (self.next + 1) % self.nodes.len();
            target = self.nodes[self.next].clone();
            redirects = 0;
            std::thread::sleep(RETRY_BACKOFF); // backoff between tries, not synchronization
        }
        Answer::NotApplied(format!("gave up; last: {last}"))
    }

    pub fn get(&mut self, key: &str) -> Answer {
        self.call("GET", &format!("/kv/{key}"), b"")
    }

    pub fn put(&mut self, key: &str, value: &str) -> Answer {
        self.call("PUT", &format!("/kv/{key}"), value.as_bytes())
    }

    pub fn cas(&mut self, key: &str, from: Option<&str>, to: &str) -> Answer {
        let body = serde_json::json!({ "from": from, "to": to }).to_string();
        self.call("POST", &format!("/kv/{key}/cas"), body.as_bytes())
    }

    /// A write that must succeed (test setup).
    pub fn must_put(&mut self, key: &str, value: &str) {
        match self.put(key, value) {
            Answer::Done { status: 200, .. } => {}
            other => panic!("put {key}={value}: {other:?}"),
        }
    }

    /// A read that must succeed: the value, or `None` if absent.
    pub fn must_get(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            Answer::Done { status: 200, body } => Some(String::from_utf8(body).unwrap()),
            Answer::Done { status: 404, .. } => None,
            other => panic!("get {key}: {other:?}"),
        }
    }
}

/// The connection was never made: the request cannot have been delivered.
fn is_connect_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

/// What one client did.
#[derive(Debug, Default)]
pub struct Tally {
    pub ops: Vec<LinOp>,
    pub ok: u64,
    pub unknown: u64,
    pub not_applied: u64,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.ops.extend(other.ops);
        self.ok += other.ok;
        self.unknown += other.unknown;
        self.not_applied += other.not_applied;
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn key_name(key: u64) -> String {
    format!("k{key}")
}

/// Runs random gets, puts and compare-and-swaps on `keys` keys until `stop`
/// is set; every value written is unique (`client * 1e9 + sequence`).
/// Times are nanoseconds since `epoch`.
pub fn run_client(
    client: u64,
    nodes: Vec<String>,
    keys: u64,
    stop: &AtomicBool,
    epoch: Instant,
) -> Tally {
    let mut kv = KvClient::new(nodes, client as usize);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (client + 1).wrapping_mul(0x1000_0000_01b3));
    let mut tally = Tally::default();
    let mut last_seen: Vec<Option<u64>> = vec![None; keys as usize];
    let now = || epoch.elapsed().as_nanos() as u64;
    for seq in 1.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let key = rng.below(keys);
        let name = key_name(key);
        let value = client * 1_000_000_000 + seq;
        let invoke_ns = now();
        let (call, answer) = match rng.below(10) {
            0..=3 => (Call::Get { observed: None }, kv.get(&name)),
            4..=7 => (Call::Put { value }, kv.put(&name, &value.to_string())),
            _ => {
                let from = last_seen[key as usize];
                let answer = kv.cas(
                    &name,
                    from.map(|v| v.to_string()).as_deref(),
                    &value.to_string(),
                );
                (
                    Call::Cas {
                        from,
                        to: value,
                        swapped: None,
                    },
                    answer,
                )
            }
        };
        let complete_ns = now();
        let (call, complete_ns) = match (call, answer) {
            (_, Answer::NotApplied(_)) => {
                tally.not_applied += 1;
                continue;
            }
            (Call::Get { .. }, Answer::Unknown(_)) => {
                tally.unknown += 1; // a read with no answer constrains nothing
                continue;
            }
            (call, Answer::Unknown(_)) => {
                tally.unknown += 1;
                (call, None)
            }
            (Call::Get { .. }, Answer::Done { status, body }) => {
                let observed = match status {
                    200 => Some(String::from_utf8(body).unwrap().parse::<u64>().unwrap()),
                    404 => None,
                    _ => panic!("get {name}: {status} {}", String::from_utf8_lossy(&body)),
                };
                last_seen[key as usize] = observed;
                (Call::Get { observed }, Some(complete_ns))
            }
            (Call::Put { value }, Answer::Done { status, body }) => {
                assert_eq!(status, 200, "put: {}", String::from_utf8_lossy(&body));
                last_seen[key as usize] = Some(value);
                (Call::Put { value }, Some(complete_ns))
            }
            (Call::Cas { from, to, .. }, Answer::Done { status, body }) => {
                let swapped = match status {
                    200 => true,
                    409 => false,
                    _ => panic!("cas {name}: {status} {}", String::from_utf8_lossy(&body)),
                };
                if swapped {
                    last_seen[key as usize] = Some(to);
                }
                (
                    Call::Cas {
                        from,
                        to,
                        swapped: Some(swapped),
                    },
                    Some(complete_ns),
                )
            }
        };
        if complete_ns.is_some() {
            tally.ok += 1;
        }
        tally.ops.push(LinOp {
            client,
            key,
            call,
            invoke_ns,
            complete_ns,
        });
    }
    tally
}

/// One final read of every key (after the clients stopped), as operations of
/// client `client`: a lost acknowledged write would show up as a stale read.
pub fn final_reads(nodes: Vec<String>, keys: u64, client: u64, epoch: Instant) -> Vec<LinOp> {
    let mut kv = KvClient::new(nodes, 0);
    (0..keys)
        .map(|key| {
            let invoke_ns = epoch.elapsed().as_nanos() as u64;
            let observed = kv
                .must_get(&key_name(key))
                .map(|v| v.parse::<u64>().unwrap());
            LinOp {
                client,
                key,
                call: Call::Get { observed },
                invoke_ns,
                complete_ns: Some(epoch.elapsed().as_nanos() as u64),
            }
        })
        .collect()
}
