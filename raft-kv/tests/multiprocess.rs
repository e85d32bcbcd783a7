//! Whole clusters of `raft-kv` processes on loopback sockets and temporary
//! directories: leaders killed with SIGKILL under concurrent clients, a torn
//! log tail, catching up by snapshot, membership changes, and a process
//! started with another cluster's data.
//!
//! Client histories are checked with `raft_sim::linearizability`; waits poll
//! conditions against generous deadlines (`support::PATIENCE`).

mod support;

use raft_sim::linearizability::{CheckOptions, Verdict, check};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use support::client::{KvClient, Tally, final_reads, run_client};
use support::{Cluster, FAST, eventually, wait_for};

/// Starts `count` workload clients against `nodes`; stop them with the flag.
fn start_clients(
    count: u64,
    nodes: Vec<String>,
    keys: u64,
    epoch: Instant,
) -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<Tally>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let clients = (0..count)
        .map(|c| {
            let (nodes, stop) = (nodes.clone(), Arc::clone(&stop));
            std::thread::spawn(move || run_client(c + 1, nodes, keys, &stop, epoch))
        })
        .collect();
    (stop, clients)
}

fn assert_linearizable(tally: &Tally) {
    match check(&tally.ops, &CheckOptions::default()) {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable(v) => panic!("{}", v.describe(&tally.ops)),
        unknown => panic!("{unknown}"),
    }
}

/// A node's commit index, for progress checks.
fn commit_of(status: &Value) -> u64 {
    status["commit"].as_u64().unwrap_or(0)
}

#[test]
fn history_stays_linearizable_while_leaders_are_killed_and_restarted() {
    let started = Instant::now();
    let mut cluster = Cluster::start(3, &[]);
    let epoch = Instant::now();
    let keys = 4;
    let (stop, clients) = start_clients(4, cluster.http_addresses(), keys, epoch);

    for round in 0..8 {
        let (leader, status) = cluster.wait_leader(0);
        let term = status["term"].as_u64().unwrap();
        // Let the clients get some writes through this leader first.
        let commit = commit_of(&status);
        eventually(
            &format!("round {round}: progress under leader {leader}"),
            || {
                cluster
                    .status(leader)
                    .is_some_and(|s| commit_of(&s) >= commit + 100)
            },
        );
        cluster.kill(leader);
        let (next, _) = cluster.wait_leader(term);
        assert_ne!(next, leader);
        cluster.restart(leader);
        // Every other round, the next kill may come while it still catches up.
        if round % 2 == 0 {
            cluster.wait_caught_up(leader);
        }
    }
    // Progress after the last restart, then stop.
    let (leader, status) = cluster.wait_leader(0);
    let commit = commit_of(&status);
    eventually("progress after the last restart", || {
        cluster
            .status(leader)
            .is_some_and(|s| commit_of(&s) >= commit + 100)
    });
    stop.store(true, Ordering::SeqCst);
    let mut tally = Tally::default();
    for c in clients {
        tally.merge(c.join().unwrap());
    }
    tally
        .ops
        .extend(final_reads(cluster.http_addresses(), keys, 99, epoch));
    eprintln!(
        "{} ops: {} acknowledged, {} unknown outcome, {} certainly not applied; {:?} so far",
        tally.ops.len(),
        tally.ok,
        tally.unknown,
        tally.not_applied,
        started.elapsed()
    );
    assert!(tally.ok > 100, "too little got through: {tally:?}");
    assert_linearizable(&tally);
    let fsm = cluster.wait_converged();
    eprintln!("converged at {fsm}; {:?} in all", started.elapsed());
}

#[test]
fn follower_with_a_torn_log_tail_recovers_and_catches_up() {
    let mut cluster = Cluster::start(3, &[]);
    let mut client = KvClient::new(cluster.http_addresses(), 0);
    for i in 0..100 {
        client.must_put(&format!("a{i}"), &i.to_string());
    }
    let (leader, _) = cluster.wait_leader(0);
    let follower = (leader + 1) % 3;
    cluster.wait_caught_up(follower);
    cluster.kill(follower);

    let segment = support::last_wal_segment(&cluster.slots[follower].data);
    let records = support::tear_last_record(&segment);
    assert!(records > 0);
    for i in 0..50 {
        client.must_put(&format!("b{i}"), &i.to_string());
    }
    cluster.restart(follower);
    cluster.wait_caught_up(follower);
    let log = std::fs::read_to_string(&cluster.slots[follower].log).unwrap();
    assert!(
        log.contains("torn log tail"),
        "recovery did not report the torn tail:\n{log}"
    );
    assert_eq!(client.must_get("a99").as_deref(), Some("99"));
    assert_eq!(client.must_get("b49").as_deref(), Some("49"));
    cluster.wait_converged();
}

#[test]
fn node_far_behind_catches_up_by_snapshot_after_restart() {
    let flags = ["--snapshot-entries-max", "64", "--snapshot-trailing", "16"];
    let mut cluster = Cluster::start(3, &flags);
    let mut client = KvClient::new(cluster.http_addresses(), 0);
    let (leader, _) = cluster.wait_leader(0);
    let behind = (leader + 2) % 3;
    cluster.kill(behind);
    for i in 0..400 {
        client.must_put(&format!("key{}", i % 50), &i.to_string());
    }
    // Snapshots sent by the others (whichever of them leads meanwhile).
    let others: Vec<usize> = (0..3).filter(|&i| i != behind).collect();
    let snapshots_sent = |c: &Cluster| -> u64 {
        others
            .iter()
            .map(|&i| {
                c.status(i).unwrap()["transport"]["snapshots_sent"]
                    .as_u64()
                    .unwrap()
            })
            .sum()
    };
    let before = snapshots_sent(&cluster);
    cluster.restart(behind);
    cluster.wait_caught_up(behind);
    let after = snapshots_sent(&cluster);
    assert!(
        after > before,
        "node {behind} caught up without a snapshot ({before} sent before, {after} after)"
    );
    let snapshots = std::fs::read_dir(cluster.slots[behind].data.join("snapshots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "snap"))
        })
        .count();
    assert!(snapshots > 0, "no snapshot stored on the restarted node");
    cluster.wait_converged();
    assert_eq!(client.must_get("key49").as_deref(), Some("399"));
}

#[test]
fn live_nodes_are_added_and_removed_including_the_leader() {
    // Formed the dynamic way (--init, then --join), which this test is about.
    let mut cluster = Cluster::start_joined(3, &[]);
    let mut client = KvClient::new(cluster.http_addresses(), 0);
    client.must_put("before", "1");

    // A fourth node joins through a follower (which redirects to the leader).
    let (leader, _) = cluster.wait_leader(0);
    let follower_raft = cluster.slots[(leader + 1) % 3].raft.clone();
    let fourth = cluster.add_slot(&[], Some(&follower_raft));
    assert_eq!(cluster.slots[fourth].id, 4);
    cluster.wait_all_voters();
    cluster.wait_caught_up(fourth);

    // A fifth node is added by address through the HTTP API, then started.
    let raft5 = support::free_address();
    let members = |c: &Cluster, i: usize| format!("http://{}/members", c.slots[i].http);
    let mut response = cluster
        .agent
        .post(&members(&cluster, fourth))
        .send(raft5.as_bytes())
        .unwrap();
    assert_eq!(response.status(), 200);
    let added: Value = serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(added["id"], 5);
    let first_raft = cluster.slots[0].raft.clone();
    let fifth = cluster.add_slot_at(&raft5, &["--id", "5"], Some(&first_raft));
    assert_eq!(cluster.slots[fifth].id, 5);
    cluster.wait_all_voters();
    client.must_put("five", "5");

    // Remove node 5 through a follower's API (forwarded to the leader).
    let (leader, _) = cluster.wait_leader(0);
    let other = (0..4).find(|&i| i != leader).unwrap();
    let removed = cluster
        .agent
        .delete(&format!("{}/5", members(&cluster, other)))
        .call()
        .unwrap();
    assert_eq!(removed.status(), 200);
    eventually("node 5 to leave the configuration", || {
        cluster
            .leader()
            .is_some_and(|(_, s)| s["members"].as_array().unwrap().len() == 4)
    });
    cluster.kill(fifth);

    // Remove the leader itself: it steps down and the others go on.
    let (leader, status) = cluster.wait_leader(0);
    let leader_id = cluster.slots[leader].id;
    let response = cluster
        .agent
        .delete(&format!("{}/{leader_id}", members(&cluster, leader)))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let term = status["term"].as_u64().unwrap();
    cluster.kill(leader);
    let (_, status) = cluster.wait_leader(term);
    let ids: Vec<u64> = status["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(!ids.contains(&leader_id), "{ids:?}");
    let live: Vec<String> = cluster
        .running()
        .map(|i| cluster.slots[i].http.clone())
        .collect();
    let mut client = KvClient::new(live, 0);
    client.must_put("after", "3");
    assert_eq!(client.must_get("before").as_deref(), Some("1"));
    assert_eq!(client.must_get("five").as_deref(), Some("5"));
    cluster.wait_converged();
}

#[test]
fn a_process_started_with_another_clusters_data_is_refused() {
    let mut cluster = Cluster::start(3, &[]);
    let mut client = KvClient::new(cluster.http_addresses(), 0);
    client.must_put("a", "from cluster A");

    // Cluster B: one node, its own data.
    let mut other = Cluster::start(1, &[]);
    KvClient::new(other.http_addresses(), 0).must_put("b", "from cluster B");
    let other_cluster_id = other.status(0).unwrap()["cluster_id"].as_u64().unwrap();
    other.kill(0);

    // B's data, started at the address of a follower of A.
    let (leader, _) = cluster.wait_leader(0);
    let victim = (leader + 1) % 3;
    cluster.kill(victim);
    let impostor_args: Vec<String> = [
        "--data",
        &other.slots[0].data.display().to_string(),
        "--raft",
        &cluster.slots[victim].raft,
        "--http",
        &cluster.slots[victim].http,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(FAST.iter().map(|s| s.to_string()))
    .collect();
    let (impostor, started) = support::spawn(&impostor_args, &other.slots[0].log);
    assert!(matches!(started, support::Started::Ready { id: 1, .. }));
    let impostor = impostor.unwrap();

    // A's leader is refused by it, and says why; the impostor stays in B.
    // (A refusal "we are None" comes from a joiner not yet a member, while
    // the cluster forms: only one naming B's cluster is the impostor's.)
    let by_impostor = format!("foreign cluster: we are Some(ClusterId({other_cluster_id}))");
    wait_for("A's leader to be refused by the impostor", || {
        let (_, s) = cluster.leader()?;
        let refusal = s["transport"]["last_refusal"].as_str()?.to_string();
        refusal.contains(&by_impostor).then_some(s)
    });
    let agent = support::client::agent(std::time::Duration::from_secs(5));
    let impostor_url = format!("http://{}/status", cluster.slots[victim].http);
    let impostor_status = wait_for(
        "the impostor to lead B, of which it is the only member",
        || support::client::get_json(&agent, &impostor_url).filter(|s| s["role"] == "leader"),
    );
    assert_eq!(impostor_status["cluster_id"], other_cluster_id);
    assert!(
        impostor_status["transport"]["hellos_refused"]
            .as_u64()
            .unwrap()
            > 0
    );

    // A goes on with two nodes; B's key never shows up in A.
    let live: Vec<String> = cluster
        .running()
        .map(|i| cluster.slots[i].http.clone())
        .collect();
    let mut a_client = KvClient::new(live, 0);
    a_client.must_put("a2", "still A");
    assert_eq!(a_client.must_get("b"), None);

    // The real node comes back and catches up.
    impostor.kill();
    cluster.restart(victim);
    cluster.wait_caught_up(victim);
    cluster.wait_converged();
    assert_eq!(client.must_get("a2").as_deref(), Some("still A"));
}

#[test]
fn http_api_redirects_refuses_bad_requests_and_reports_status() {
    let cluster = Cluster::start(3, &[]);
    let (leader, _) = cluster.wait_leader(0);
    let follower = (leader + 1) % 3;
    let agent = &cluster.agent;
    let url = |i: usize, path: &str| format!("http://{}{path}", cluster.slots[i].http);

    let response = agent.put(&url(follower, "/kv/x")).send("1").unwrap();
    assert_eq!(response.status(), 307);
    let location = response
        .headers()
        .get("Location")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(location, url(leader, "/kv/x"));
    assert_eq!(
        agent.get(&url(follower, "/kv/x")).call().unwrap().status(),
        307
    );

    let status =
        |r: Result<ureq::http::Response<ureq::Body>, ureq::Error>| r.unwrap().status().as_u16();
    assert_eq!(status(agent.get(&url(leader, "/kv/x")).call()), 404);
    assert_eq!(status(agent.put(&url(leader, "/kv/x")).send("1")), 200);
    let cas = |body: &str| status(agent.post(&url(leader, "/kv/x/cas")).send(body));
    assert_eq!(cas(r#"{"from": null, "to": "2"}"#), 409);
    assert_eq!(cas(r#"{"from": "1", "to": "2"}"#), 200);
    assert_eq!(cas(r#"{"from": "1"}"#), 400);
    assert_eq!(cas("not json"), 400);
    let mut got = agent.get(&url(leader, "/kv/x")).call().unwrap();
    assert_eq!(got.body_mut().read_to_string().unwrap(), "2");
    assert_eq!(status(agent.delete(&url(leader, "/kv/x")).call()), 200);
    assert_eq!(status(agent.get(&url(leader, "/kv/x")).call()), 404);
    assert_eq!(status(agent.get(&url(leader, "/kv/bad%zz")).call()), 400);
    assert_eq!(status(agent.put(&url(leader, "/kv/bad%zz")).send("1")), 400);
    assert_eq!(
        status(agent.delete(&url(leader, "/members/zero")).call()),
        400
    );
    // No member by that id, whether ever assigned or not: 404, as documented.
    for absent in ["/members/42", "/members/99"] {
        assert_eq!(status(agent.delete(&url(leader, absent)).call()), 404);
    }
    assert_eq!(status(agent.post(&url(leader, "/members")).send("")), 400);
    assert_eq!(status(agent.post(&url(leader, "/status")).send("")), 405);
    assert_eq!(status(agent.get(&url(leader, "/nothing")).call()), 404);

    let s = support::client::get_json(agent, &url(follower, "/status")).unwrap();
    assert_eq!(s["role"], "follower");
    assert_eq!(s["leader"]["id"].as_u64(), Some(cluster.slots[leader].id));
    assert_eq!(s["leader"]["http"], cluster.slots[leader].http.as_str());
    assert_eq!(s["members"].as_array().unwrap().len(), 3);
    let leader_status = support::client::get_json(agent, &url(leader, "/status")).unwrap();
    assert!(leader_status["transport"]["bytes_sent"].as_u64().unwrap() > 0);
    assert_eq!(leader_status["followers"].as_array().unwrap().len(), 2);
}

#[test]
fn every_members_http_address_shows_in_every_nodes_status() {
    let cluster = Cluster::start(3, &[]);
    let expected: Vec<(u64, String)> = cluster
        .slots
        .iter()
        .map(|s| (s.id, s.http.clone()))
        .collect();
    for i in 0..3 {
        // Followers announce their address to the leader, which records it
        // in the replicated state; every node applies it.
        wait_for("every member's HTTP address in a node's status", || {
            let status = cluster.status(i)?;
            let mut shown: Vec<(u64, String)> = status["members"]
                .as_array()?
                .iter()
                .map(|m| Some((m["id"].as_u64()?, m["http"].as_str()?.to_string())))
                .collect::<Option<_>>()?;
            shown.sort();
            (shown == expected).then_some(())
        });
    }
}

#[test]
fn a_second_process_on_a_data_directory_is_refused_naming_the_holder() {
    let cluster = Cluster::start(1, &[]);
    let slot = &cluster.slots[0];
    let holder = slot.process.as_ref().unwrap().pid();
    let twin_args: Vec<String> = [
        "--data",
        &slot.data.display().to_string(),
        "--raft",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(FAST.iter().map(|s| s.to_string()))
    .collect();
    let log = cluster.root.path().join("twin.log");
    let (_, started) = support::spawn(&twin_args, &log);
    assert!(matches!(started, support::Started::Exited(Some(1))));
    let text = std::fs::read_to_string(&log).unwrap();
    let expected = format!(
        "data directory {} is in use by another process (pid {holder})",
        slot.data.canonicalize().unwrap().display()
    );
    assert!(text.contains(&expected), "{text}");
    // The holder goes on undisturbed.
    KvClient::new(cluster.http_addresses(), 0).must_put("k", "v");
}

#[test]
fn a_directory_of_another_cluster_given_join_is_refused() {
    let mut cluster = Cluster::start(1, &[]);
    let mut other = Cluster::start(1, &[]);
    other.kill(0);
    let other_data = other.slots[0].data.display().to_string();
    let join = cluster.slots[0].raft.clone();
    let args: Vec<String> = [
        "--data",
        &other_data,
        "--raft",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--join",
        &join,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(FAST.iter().map(|s| s.to_string()))
    .collect();
    let (_, started) = support::spawn(&args, &other.slots[0].log);
    assert!(matches!(started, support::Started::Exited(Some(1))));
    let text = std::fs::read_to_string(&other.slots[0].log).unwrap();
    assert!(
        text.contains("give this node a new data directory"),
        "{text}"
    );

    // A node of this cluster restarted with its --join repeated resumes.
    cluster.kill(0);
    let own_args: Vec<String> = [
        "--data",
        &cluster.slots[0].data.display().to_string(),
        "--raft",
        &cluster.slots[0].raft,
        "--http",
        "127.0.0.1:0",
        "--join",
        &join,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(FAST.iter().map(|s| s.to_string()))
    .collect();
    let (_process, started) = support::spawn(&own_args, &cluster.slots[0].log);
    assert!(matches!(started, support::Started::Ready { id: 1, .. }));
}

#[test]
fn a_new_data_directory_without_init_or_join_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let args: Vec<String> = [
        "--data",
        &dir.path().join("data").display().to_string(),
        "--raft",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (_, started) = support::spawn(&args, &log);
    assert!(matches!(started, support::Started::Exited(Some(1))));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("--init"), "{text}");

    let mut bad_id = args.clone();
    bad_id.extend(["--init", "--id", "3"].map(String::from));
    let (_, started) = support::spawn(&bad_id, &log);
    assert!(matches!(started, support::Started::Exited(Some(1))));
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("whose id is 1")
    );
}

/// Kills a child process when dropped (a failing test leaves nothing behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn local_cluster_serves_then_stops_its_nodes_and_removes_its_data_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    // Its stderr says why, if it gives up starting.
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["local-cluster"])
        .args(FAST)
        .stdout(Stdio::piped())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut guard = KillOnDrop(child);
    let (mut dir, mut nodes) = (None, Vec::new());
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some((_, d)) = line.split_once("data and logs in ") {
            dir = Some(std::path::PathBuf::from(d));
        }
        if let Some(rest) = line.trim().strip_prefix("node ") {
            // "node 1: http://ADDR  raft ADDR  pid PID  log PATH"
            let words: Vec<&str> = rest.split_whitespace().collect();
            let http = words[1].trim_start_matches("http://").to_string();
            nodes.push((http, words[5].parse::<u32>().unwrap()));
        }
        if line.starts_with("Ctrl-C stops") {
            break;
        }
    }
    let Some(dir) = dir else {
        panic!(
            "local-cluster printed no data directory; its stderr:\n{}",
            std::fs::read_to_string(stderr.path()).unwrap()
        );
    };
    assert_eq!(nodes.len(), 3);
    assert!(dir.is_dir());
    let mut client = KvClient::new(nodes.iter().map(|(h, _)| h.clone()).collect(), 1);
    client.must_put("hello", "world");
    assert_eq!(client.must_get("hello").as_deref(), Some("world"));

    let pid = guard.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_for("local-cluster to exit", || guard.0.try_wait().unwrap());
    assert!(status.success(), "{status}");
    assert!(!dir.exists(), "{} was not removed", dir.display());
    for (_, pid) in &nodes {
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        assert!(!proc.exists(), "node process {pid} outlived local-cluster");
    }
}

#[test]
fn a_restart_may_repeat_its_bootstrap_flags_but_not_name_another_cluster() {
    let mut cluster = Cluster::start(3, &[]);
    let mut client = KvClient::new(cluster.http_addresses(), 0);
    client.must_put("k", "v");
    let (leader, _) = cluster.wait_leader(0);
    let i = (leader + 1) % 3;
    cluster.kill(i);
    let slot = &cluster.slots[i];
    let args = |start: &[String]| -> Vec<String> {
        [
            "--data",
            &slot.data.display().to_string(),
            "--raft",
            &slot.raft,
        ]
        .into_iter()
        .chain(["--http", "127.0.0.1:0"])
        .map(String::from)
        .chain(FAST.iter().map(|s| s.to_string()))
        .chain(start.iter().cloned())
        .collect()
    };
    // Another token: another cluster id, which this directory is not of.
    let mut other = slot.start.clone();
    let token = other.iter().position(|f| f == "--cluster-token").unwrap() + 1;
    other[token] = "1".into();
    let (_, started) = support::spawn(&args(&other), &slot.log);
    assert!(matches!(started, support::Started::Exited(Some(1))));
    let text = std::fs::read_to_string(&slot.log).unwrap();
    assert!(text.contains("bootstrap as node"), "{text}");

    let (_process, started) = support::spawn(&args(&slot.start), &slot.log);
    let id = slot.id;
    assert!(matches!(started, support::Started::Ready { id: got, .. } if got == id));
    assert_eq!(client.must_get("k").as_deref(), Some("v"));
}
