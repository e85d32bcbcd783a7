//! Whole clusters in one process, on real loopback sockets and temp dirs:
//! forming from a bootstrap list and by initialize + join, applying, restarts, leader loss, snapshots,
//! and a node of another cluster being refused.
//!
//! Nothing sleeps to synchronize: every wait polls a condition against a
//! generous deadline (real networks and disks have no virtual clock).
mod support;
use support::*;

#[test]
fn three_nodes_form_a_cluster_by_initialize_and_join_and_replicate_commands() {
    let members = three_nodes_joined(|_| {});
    // Node 1 leads unless a slow machine delayed its heartbeats past an
    // election timeout; the test holds either way.
    let leader = leader_of(&members);
    let (follower, other) = ((leader + 1) % 3, (leader + 2) % 3);
    let leader_id = NodeId(leader as u64 + 1);
    let node = members[leader].node();
    let cluster = node.cluster_id().unwrap();
    assert!(
        members
            .iter()
            .all(|m| m.node().cluster_id() == Some(cluster))
    );
    let mut ids: Vec<NodeId> = members.iter().map(|m| m.node().id().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, vec![NodeId(1), NodeId(2), NodeId(3)]);

    let commands: Vec<String> = (0..50).map(|i| format!("set k{i} {i}")).collect();
    let last = apply_all(node, commands.clone());
    node.wait_applied(last, PATIENCE).unwrap();
    assert_all_applied(&members, &commands);

    // Reads: a barrier on the leader covers every committed write.
    assert!(node.read_barrier(PATIENCE).unwrap() >= last);
    // A local flush waits for what the node knows committed, and returns it.
    let flushed = node.apply_barrier(PATIENCE).unwrap();
    assert!(flushed >= last && node.applied_index() >= flushed);
    // A follower refuses, naming the leader and its address.
    match members[follower].node().propose("nope") {
        Err(Error::Request(RequestError::NotLeader {
            leader: Some(id),
            outcome: Outcome::Definite,
        })) => {
            assert_eq!(id, leader_id);
            let (_, address) = members[follower].node().leader().unwrap();
            assert_eq!(address, members[leader].address);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        members[follower].node().leader(),
        Some((leader_id, members[leader].address.clone()))
    );

    // Metrics: the leader sees both followers caught up.
    eventually("followers to catch up in the leader's metrics", || {
        let m = node.metrics().unwrap();
        m.role == Role::Leader
            && m.commit >= last
            && m.followers.len() == 2
            && m.followers.iter().all(|f| f.lag == 0 && f.streaming)
    });
    let m = members[other].node().metrics().unwrap();
    assert_eq!(
        (m.id, m.role, m.leader),
        (
            Some(NodeId(other as u64 + 1)),
            Role::Follower,
            Some(leader_id)
        )
    );
    eventually("a follower's FSM to reach the commit", || {
        members[other].node().metrics().unwrap().applied >= last
    });
    assert!(matches!(
        node.initialize(),
        Err(Error::Request(RequestError::AlreadyInitialized))
    ));
}

#[test]
fn three_nodes_bootstrapped_from_one_list_replicate_and_may_repeat_the_bootstrap() {
    let mut members = three_nodes(|_| {});
    let bootstrap = bootstrap_of(&members);
    for m in &members {
        assert_eq!(m.node().cluster_id(), Some(bootstrap.cluster_id()));
        assert_eq!(m.node().config().voters().count(), 3);
    }
    let leader = leader_of(&members);
    let commands: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    apply_all(members[leader].node(), commands.clone());
    assert_all_applied(&members, &commands);

    // A repeat is a no-op, on this run and after a restart (raft-kv repeats
    // its --bootstrap flags on every start); another id is refused.
    let follower = (leader + 1) % 3;
    let id = NodeId(follower as u64 + 1);
    let node = members[follower].node();
    assert_eq!(
        node.bootstrap(id, &bootstrap).unwrap(),
        bootstrap.cluster_id()
    );
    let other = NodeId((follower as u64 + 1) % 3 + 1);
    assert!(matches!(
        node.bootstrap(other, &bootstrap),
        Err(Error::Request(RequestError::AlreadyInitialized))
    ));
    members[follower].close();
    members[follower].reopen(&|_| {});
    let node = members[follower].node();
    assert_eq!(node.id(), Some(id));
    assert_eq!(
        node.bootstrap(id, &bootstrap).unwrap(),
        bootstrap.cluster_id()
    );
    assert_all_applied(&members, &commands);

    // A node of another list is another cluster: refused, never a member.
    let mut stranger = Member::open(&|_| {});
    let mut list: Vec<(NodeId, String)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (NodeId(i as u64 + 1), m.address.clone()))
        .collect();
    list[follower].1 = stranger.address.clone();
    let theirs = Bootstrap::new(TOKEN, list).unwrap();
    assert_ne!(theirs.cluster_id(), bootstrap.cluster_id());
    stranger.node().bootstrap(id, &theirs).unwrap();
    eventually("the others to refuse the stranger as foreign", || {
        let t = stranger.node().metrics().unwrap().transport;
        t.last_refusal
            .as_deref()
            .is_some_and(|r| r.contains("foreign cluster"))
    });
    assert_ne!(
        stranger.node().role(),
        Role::Leader,
        "no quorum of its list"
    );
    assert_eq!(stranger.applied.commands(), Vec::<String>::new());
    stranger.close();
}

#[test]
fn a_bootstrap_that_does_not_list_the_node_is_refused_and_leaves_it_empty() {
    let mut lone = Member::open(&|_| {});
    let bootstrap = Bootstrap::new(TOKEN, [(NodeId(1), "127.0.0.1:1".to_string())]).unwrap();
    assert!(matches!(
        lone.node().bootstrap(NodeId(2), &bootstrap),
        Err(Error::Request(raft_core::RequestError::NodeNotFound(
            NodeId(2)
        )))
    ));
    assert_eq!(lone.node().id(), None);
    lone.close();
    lone.reopen(&|_| {});
    assert_eq!(lone.node().id(), None, "no identity was written");
    assert!(matches!(
        lone.node().propose("x"),
        Err(Error::Request(RequestError::NotInitialized))
    ));
}

#[test]
fn a_closed_follower_reopens_and_catches_up() {
    let mut members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let follower = (leader + 1) % 3;
    let mut expected: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
    apply_all(members[leader].node(), expected.clone());
    assert_all_applied(&members, &expected);

    members[follower].close();
    let more: Vec<String> = (0..30).map(|i| format!("b{i}")).collect();
    apply_all(members[leader].node(), more.clone()); // a quorum of two commits them
    expected.extend(more);

    members[follower].reopen(&|_| {});
    assert_eq!(
        members[follower].node().id(),
        Some(NodeId(follower as u64 + 1))
    );
    assert_all_applied(&members, &expected);
    assert!(matches!(
        RaftNode::open(
            members[follower].dir.path(),
            config("127.0.0.1:0", |_| {}),
            ListFsm(Applied::default())
        ),
        Err(Error::AlreadyOpen(_))
    ));
}

#[test]
fn closing_the_leader_elects_a_new_one_that_accepts_commands() {
    let mut members = three_nodes(|_| {});
    let old = leader_of(&members);
    let old_term = members[old].node().term();
    let mut expected: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    apply_all(members[old].node(), expected.clone());
    members[old].close();

    let new = leader_of(&members);
    assert_ne!(new, old);
    assert!(members[new].node().term() > old_term);
    let more: Vec<String> = (0..10).map(|i| format!("y{i}")).collect();
    let last = apply_all(members[new].node(), more.clone());
    expected.extend(more);
    assert_all_applied(&members, &expected);

    // The old leader comes back as a follower and catches up.
    members[old].reopen(&|_| {});
    assert_all_applied(&members, &expected);
    eventually("the old leader to follow the new one", || {
        members[old].node().leader().map(|(id, _)| id) == members[new].node().id()
            && members[old].node().applied_index() >= last
    });
}

#[test]
fn a_follower_far_behind_is_sent_a_snapshot() {
    let small_snapshots = |c: &mut NodeConfig| {
        c.options.snapshot_policy = SnapshotPolicy::every_entries(16);
        c.options.snapshot_trailing_entries = 4;
        c.transport.snapshot_chunk_bytes = 64; // many chunks
    };
    let mut members = three_nodes(small_snapshots);
    let leader = leader_of(&members);
    let follower = (leader + 1) % 3;
    members[follower].close();
    let expected: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
    apply_all(members[leader].node(), expected.clone());

    members[follower].reopen(&small_snapshots);
    assert_all_applied(&members, &expected);
    let sent = members[leader]
        .node()
        .metrics()
        .unwrap()
        .transport
        .snapshots_sent;
    assert!(sent >= 1, "the leader sent a snapshot");
    // 100 commands, a snapshot due every 16: the leader took several, each
    // counted with its size and duration.
    let taken = members[leader].node().metrics().unwrap().snapshots;
    assert!(taken.taken >= 100 / 16 - 1, "{taken:?}");
    assert!(
        taken.last_bytes > 0 && taken.max_ms >= taken.last_ms,
        "{taken:?}"
    );
    // It installed a snapshot: its log no longer starts at 1, and it can
    // restart from that snapshot.
    members[follower].close();
    members[follower].reopen(&small_snapshots);
    eventually("the restarted follower to restore and catch up", || {
        members[follower].applied.commands() == expected
    });
}

#[test]
fn after_a_restart_the_trailing_log_brings_a_briefly_away_follower_up_to_date_without_a_snapshot() {
    const TRAILING: u64 = 64;
    let trailing_window = |c: &mut NodeConfig| {
        c.options.snapshot_policy = SnapshotPolicy::every_entries(16);
        c.options.snapshot_trailing_entries = TRAILING;
    };
    let mut members = three_nodes(trailing_window);
    let leader = leader_of(&members);
    let away = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let mut expected: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
    apply_all(members[leader].node(), expected.clone());
    assert_all_applied(&members, &expected);
    let away_last = members[away].node().metrics().unwrap().last_index;

    // The follower steps away; the others take writes and snapshot past it.
    members[away].close();
    let more: Vec<String> = (0..40).map(|i| format!("b{i}")).collect();
    apply_all(members[leader].node(), more.clone());
    expected.extend(more);
    eventually("both to snapshot past the absent follower's log", || {
        [leader, other].iter().all(|&m| {
            let metrics = members[m].node().metrics().unwrap();
            metrics.snapshot_index > away_last && metrics.applied.0 >= away_last.0 + 40
        })
    });

    // Both restart, so whichever leads next recovered its log from disk.
    members[leader].close();
    members[other].close();
    members[leader].reopen(&trailing_window);
    members[other].reopen(&trailing_window);
    for m in [leader, other] {
        let metrics = members[m].node().metrics().unwrap();
        assert!(
            metrics.snapshot_index > away_last && metrics.first_index <= away_last,
            "node {m} recovered its log from {} with a snapshot at {}: the trailing window \
             behind the snapshot must still hold the absent follower's next entry {}",
            metrics.first_index,
            metrics.snapshot_index,
            away_last.next()
        );
    }
    eventually("a leader after the restart", || {
        members[leader].node().leader().is_some()
    });

    members[away].reopen(&trailing_window);
    assert_all_applied(&members, &expected);
    let sent: u64 = [leader, other]
        .iter()
        .map(|&m| {
            members[m]
                .node()
                .metrics()
                .unwrap()
                .transport
                .snapshots_sent
        })
        .sum();
    assert_eq!(
        sent, 0,
        "the follower caught up from the log, not a snapshot"
    );
}

#[test]
fn a_snapshot_held_for_many_election_timeouts_stalls_neither_writes_nor_the_leader() {
    let snapshot_often = |c: &mut NodeConfig| {
        c.options.snapshot_policy = SnapshotPolicy::every_entries(16);
    };
    let members = three_nodes(snapshot_often);
    let leader = leader_of(&members);
    for m in &members {
        m.applied.1.hold();
    }
    let _release = ReleaseOnDrop(members.iter().map(|m| m.applied.1.clone()).collect());
    let mut expected: Vec<String> = (0..20).map(|i| format!("a{i}")).collect();
    apply_all(members[leader].node(), expected.clone());
    eventually("every member to start writing a snapshot", || {
        members.iter().all(|m| m.applied.1.started() >= 1)
    });
    let term = members[leader].node().term();

    // Every snapshot writer is stuck; the cluster goes on committing and
    // applying, and the leader heartbeats through many election timeouts
    // (300 ms; heartbeats every 50 ms).
    let more: Vec<String> = (0..60).map(|i| format!("b{i}")).collect();
    apply_all(members[leader].node(), more.clone());
    expected.extend(more);
    assert_all_applied(&members, &expected);
    let heard = |m: &Member| m.node().metrics().unwrap().transport.messages_received;
    let follower = (leader + 1) % 3;
    let before = heard(&members[follower]);
    eventually(
        "the follower to hear 60 more messages (5 election timeouts of heartbeats)",
        || heard(&members[follower]) >= before + 60,
    );
    for m in &members {
        assert_eq!(
            m.node().term(),
            term,
            "no election while snapshots are written"
        );
        assert_eq!(m.node().metrics().unwrap().snapshot_index, LogIndex(0));
    }

    for m in &members {
        m.applied.1.release();
    }
    eventually("the snapshots to land", || {
        members
            .iter()
            .all(|m| m.node().metrics().unwrap().snapshot_index > LogIndex(0))
    });
    assert_eq!(members[leader].node().term(), term);
}

#[test]
fn a_stuck_state_machine_on_the_leader_stops_neither_its_heartbeats_nor_its_leadership() {
    let tiny_apply_queue = |c: &mut NodeConfig| c.apply_queue_max = 1;
    let members = three_nodes(tiny_apply_queue);
    let leader = leader_of(&members);
    let term = members[leader].node().term();
    let gate = members[leader].applied.2.clone();
    gate.hold();
    let _release = ReleaseOnDrop(vec![gate.clone()]);
    let commands: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
    std::thread::scope(|s| {
        // The applier takes one batch and sticks; its queue (one batch)
        // fills; the driver must park the rest rather than wait.
        let writer = s.spawn(|| apply_all(members[leader].node(), commands.clone()));
        eventually("the leader's FSM to be stuck on an apply", || {
            gate.started() >= 1
        });
        let heard = |m: &Member| m.node().metrics().unwrap().transport.messages_received;
        let followers = [(leader + 1) % 3, (leader + 2) % 3];
        let before = followers.map(|f| heard(&members[f]));
        eventually(
            "each follower to hear 60 more messages (5 election timeouts of heartbeats)",
            || {
                followers
                    .iter()
                    .zip(before)
                    .all(|(&f, b)| heard(&members[f]) >= b + 60)
            },
        );
        for m in &members {
            assert_eq!(
                m.node().term(),
                term,
                "no election while the leader's FSM is stuck"
            );
        }
        assert_eq!(members[leader].node().role(), Role::Leader);
        gate.release();
        writer.join().unwrap();
    });
    assert_all_applied(&members, &commands);
}

#[test]
fn a_node_of_another_cluster_is_refused_at_the_hello() {
    let mut members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let victim = (leader + 1) % 3;
    let address = members[victim].address.clone();
    members[victim].close();

    // Another cluster's node now listens where the victim did.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = RaftNode::open(
        stranger_dir.path(),
        config(&address, |_| {}),
        ListFsm(Applied::default()),
    )
    .unwrap();
    let other_cluster = stranger.initialize().unwrap();
    assert_ne!(Some(other_cluster), members[leader].node().cluster_id());

    // The leader keeps knocking with heartbeats; the stranger refuses each
    // hello, and the leader is told why.
    eventually("the stranger to refuse the leader", || {
        stranger.metrics().unwrap().transport.hellos_refused > 0
    });
    eventually("the leader to learn it was refused", || {
        let t = members[leader].node().metrics().unwrap().transport;
        t.refused_by_peers > 0
            && t.last_refusal
                .as_deref()
                .is_some_and(|r| r.contains("foreign cluster"))
    });
    // Nothing crossed: the stranger is still alone in its own cluster.
    assert_eq!(stranger.config().members.len(), 1);
    assert_eq!(stranger.role(), Role::Leader);
    // And the cluster still commits with its two remaining members.
    let index = members[leader].node().propose("still alive").unwrap();
    members[leader]
        .node()
        .wait_applied(index, PATIENCE)
        .unwrap();
}

#[test]
fn a_member_can_leave_and_a_peer_can_be_removed() {
    let members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let follower = (leader + 1) % 3;
    let id = members[follower].node().id().unwrap();
    members[follower].node().leave().unwrap();
    // The leaver may never hear of its own removal (the leader stops
    // streaming to it when the change is appended); the others do.
    eventually("the remaining members to see two members", || {
        members
            .iter()
            .filter(|m| m.node().id() != Some(id))
            .all(|m| !m.node().config().contains(id) && m.node().config().members.len() == 2)
    });
    let index = members[leader].node().propose("after leave").unwrap();
    members[leader]
        .node()
        .wait_applied(index, PATIENCE)
        .unwrap();
    assert!(matches!(
        members[leader].node().remove_peer(id),
        Err(Error::Request(raft_core::RequestError::NodeNotFound(_)))
    ));
}

#[test]
fn a_whole_cluster_restarts_from_its_data_dirs() {
    let mut members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let mut expected: Vec<String> = (0..25).map(|i| format!("before {i}")).collect();
    apply_all(members[leader].node(), expected.clone());
    assert_all_applied(&members, &expected);
    for m in &mut members {
        m.close();
    }
    for m in &mut members {
        m.reopen(&|_| {});
    }
    let leader = leader_of(&members);
    let more: Vec<String> = (0..5).map(|i| format!("after {i}")).collect();
    apply_all(members[leader].node(), more.clone());
    expected.extend(more);
    assert_all_applied(&members, &expected);
}

#[test]
fn malformed_bytes_close_the_connection_and_the_node_carries_on() {
    use raft_io_std::transport::hello::{self, ConnectionKind, Control, Hello, HelloReply};
    use std::net::TcpStream;
    let single = Member::open(&|_| {});
    let node = single.node();
    node.initialize().unwrap();
    let garbage: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[0xff; 64],
        b"SRFT\x01\xff\xff\xff\xff\0\0\0\0", // a control header claiming 4 GiB
    ];
    for bytes in garbage {
        let mut s = TcpStream::connect(&single.address).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(bytes).unwrap();
        let mut rest = Vec::new();
        // The node closes the connection (EOF or reset), never hangs or panics.
        let _ = s.read_to_end(&mut rest);
    }
    // A valid hello, then bytes that are not a wire record.
    let hello = Control::Hello(Hello {
        cluster_id: node.cluster_id(),
        from: Some(NodeId(9)),
        to: node.id(),
        address: None,
        kind: ConnectionKind::Messages,
    });
    let mut s = TcpStream::connect(&single.address).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(&hello::encode_control(&hello)).unwrap();
    assert_eq!(
        hello::read_control(&mut s).unwrap(),
        Control::HelloReply(HelloReply::Accepted)
    );
    s.write_all(&[1u8; 100]).unwrap();
    let _ = s.read_to_end(&mut Vec::new());
    eventually("the node to count the malformed connections", || {
        node.metrics().unwrap().transport.malformed_connections > garbage.len() as u64
    });
    let index = node.propose("still fine").unwrap();
    node.wait_applied(index, PATIENCE).unwrap();
    assert_eq!(single.applied.commands(), vec!["still fine".to_string()]);
}

#[test]
fn a_flood_of_silent_connections_is_bounded_and_the_node_carries_on() {
    use raft_io_std::transport::hello::{self, Control, HelloReply};
    use std::net::TcpStream;
    const MAX: usize = 8;
    // Silent connections are never timed out here: only the bound can end them.
    let single = Member::open(&|c: &mut NodeConfig| {
        c.transport.connections_max = MAX;
        c.transport.handshake_timeout = Duration::from_secs(3600);
    });
    let node = single.node();
    node.initialize().unwrap();
    let silent: Vec<TcpStream> = (0..MAX)
        .map(|_| TcpStream::connect(&single.address).unwrap())
        .collect();
    // Each connection past the bound is closed by the node, though we say nothing.
    let extra = 3 * MAX;
    for i in 0..extra {
        let mut s = TcpStream::connect(&single.address).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        match s.read(&mut [0u8; 1]) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("connection {i} past the bound was kept: {other:?}"),
        }
    }
    assert_eq!(
        node.metrics().unwrap().transport.connections_refused,
        extra as u64
    );
    // Once the flood ends, a member's connection is served again.
    drop(silent);
    let hello = messages_hello_from_9(node);
    eventually("a hello to be accepted after the flood", || {
        let mut s = TcpStream::connect(&single.address).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(&hello).is_ok()
            && matches!(
                hello::read_control(&mut s),
                Ok(Control::HelloReply(HelloReply::Accepted))
            )
    });
    let index = node.propose("after the flood").unwrap();
    node.wait_applied(index, PATIENCE).unwrap();
}

#[test]
fn a_hello_trickled_a_byte_at_a_time_is_cut_off_at_the_handshake_deadline() {
    use std::net::TcpStream;
    // Each byte comes well within the handshake timeout of the one before,
    // but the whole hello never would: the deadline is for the hello, not per read.
    let single = Member::open(&|c: &mut NodeConfig| {
        c.transport.handshake_timeout = Duration::from_millis(500);
    });
    let node = single.node();
    node.initialize().unwrap();
    let mut s = TcpStream::connect(&single.address).unwrap();
    // A control header announcing a 60,000-byte payload, then a byte per tick.
    let mut header = b"SRFT\x02".to_vec();
    header.extend_from_slice(&60_000u32.to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    s.write_all(&header).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let cut_off = loop {
        if s.write_all(&[0]).is_err() {
            break true;
        }
        // The node closing its end shows as end of file here.
        s.set_nonblocking(true).unwrap();
        let closed = match s.read(&mut [0u8; 1]) {
            Ok(n) => n == 0,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        s.set_nonblocking(false).unwrap();
        if closed {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10)); // the trickle's pace, not synchronization
    };
    assert!(
        cut_off,
        "a trickled hello held its connection for {PATIENCE:?}"
    );
    let index = node.propose("still fine").unwrap();
    node.wait_applied(index, PATIENCE).unwrap();
}

#[test]
fn a_peers_new_message_connection_ends_its_old_one() {
    use raft_io_std::transport::hello::{self, Control, HelloReply};
    use std::net::TcpStream;
    // A peer that lost power never closes its connections; when it comes
    // back it opens a new one. The old one, silent for ever, must not keep
    // its thread and its slot among connections_max.
    let single = Member::open(&|_| {});
    let node = single.node();
    node.initialize().unwrap();
    let hello = messages_hello_from_9(node);
    let open = || {
        let mut s = TcpStream::connect(&single.address).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(&hello).unwrap();
        assert_eq!(
            hello::read_control(&mut s).unwrap(),
            Control::HelloReply(HelloReply::Accepted)
        );
        s
    };
    let mut old = open();
    let _new = open();
    match old.read(&mut [0u8; 1]) {
        Ok(0) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        other => panic!("the old message connection was kept: {other:?}"),
    }
    let index = node.propose("still fine").unwrap();
    node.wait_applied(index, PATIENCE).unwrap();
}

#[test]
fn an_admin_change_from_a_caller_without_a_cluster_id_is_refused_unless_a_join() {
    use raft_io_std::transport::hello::{
        self, AdminRequest, AdminResponse, ConnectionKind, Control, Hello, HelloReply,
    };
    use std::net::TcpStream;
    // Only a joiner has no cluster id; a member forwarding add_peer or
    // remove_peer says its own. A stray client saying none must not remove
    // (or add) members.
    let members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let victim = members[(leader + 1) % 3].node().id().unwrap();
    let mut s = TcpStream::connect(&members[leader].address).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let hello = Control::Hello(Hello {
        cluster_id: None,
        from: None,
        to: None,
        address: None,
        kind: ConnectionKind::Admin,
    });
    s.write_all(&hello::encode_control(&hello)).unwrap();
    assert_eq!(
        hello::read_control(&mut s).unwrap(),
        Control::HelloReply(HelloReply::Accepted)
    );
    let remove = Control::AdminRequest(AdminRequest::Remove { id: victim });
    s.write_all(&hello::encode_control(&remove)).unwrap();
    let response = hello::read_control(&mut s).unwrap();
    assert!(
        matches!(
            response,
            Control::AdminResponse(AdminResponse::Unavailable(_))
        ),
        "{response:?}"
    );
    assert!(members[leader].node().config().contains(victim));
}

#[test]
fn options_that_break_a_rule_are_refused_at_open_before_the_directory_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let broken = config("127.0.0.1:0", |c| {
        c.options.heartbeat_interval = c.options.election_timeout;
    });
    let opened = RaftNode::open(dir.path(), broken, ListFsm(Applied::default()));
    assert!(
        matches!(
            opened,
            Err(Error::InvalidConfig(
                InvalidOptions::HeartbeatInterval { .. }
            ))
        ),
        "{opened:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn requests_before_initialize_and_reopening_an_open_dir_are_refused() {
    let lone = Member::open(&|_| {});
    assert!(matches!(
        lone.node().propose("x"),
        Err(Error::Request(RequestError::NotInitialized))
    ));
    assert!(matches!(
        lone.node().read_barrier(PATIENCE),
        Err(Error::Request(RequestError::NotInitialized))
    ));
    assert_eq!(lone.node().id(), None);
    assert!(matches!(
        RaftNode::open(
            lone.dir.path(),
            config("127.0.0.1:0", |_| {}),
            ListFsm(Applied::default())
        ),
        Err(Error::AlreadyOpen(_))
    ));
    lone.node().close().unwrap();
    assert!(matches!(lone.node().propose("x"), Err(Error::Closed)));
    assert!(matches!(
        lone.node().wait_applied(LogIndex(1), PATIENCE),
        Err(Error::Closed)
    ));
}

#[test]
fn concurrent_clients_commit_and_every_member_applies_one_sequence() {
    let members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let node = members[leader].node();
    let indexes: Vec<LogIndex> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|c| {
                scope.spawn(move || {
                    (0..50)
                        .map(|i| node.propose(format!("c{c} {i}")).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    let mut unique = indexes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200, "every command has its own index");
    let last = *unique.last().unwrap();
    node.wait_applied(last, PATIENCE).unwrap();
    let sequence = members[leader].applied.commands();
    assert_eq!(sequence.len(), 200);
    assert_all_applied(&members, &sequence);
}

#[test]
fn leadership_moves_to_the_named_follower_on_transfer() {
    let members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let target = (leader + 1) % 3;
    let target_id = members[target].node().id().unwrap();
    let old_term = members[leader].node().term();
    let term = members[leader]
        .node()
        .transfer_leadership(Some(target_id))
        .unwrap();
    assert_eq!(leader_of(&members), target);
    assert!(term > old_term);
    assert!(members[target].node().term() >= term);
    let index = members[target]
        .node()
        .propose("under new leadership")
        .unwrap();
    members[target]
        .node()
        .wait_applied(index, PATIENCE)
        .unwrap();
}

#[test]
fn proposals_submitted_without_waiting_commit_in_submission_order() {
    let members = three_nodes(|_| {});
    let leader = leader_of(&members);
    let node = members[leader].node();
    // One thread keeps them all in flight; a metrics request in between
    // goes through the same queue as the proposals (it must neither be lost
    // nor reorder them).
    let commands: Vec<String> = (0..600).map(|i| format!("set k{i} {i}")).collect();
    let mut pending = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        pending.push(node.submit(c.clone()).unwrap());
        if i == 300 {
            assert_eq!(node.metrics().unwrap().role, Role::Leader);
        }
    }
    let indexes: Vec<LogIndex> = pending.into_iter().map(|p| p.wait().unwrap()).collect();
    assert!(
        indexes.windows(2).all(|w| w[1] == w[0].next()),
        "one leader, one thread: consecutive indexes in submission order: {indexes:?}"
    );
    node.wait_applied(*indexes.last().unwrap(), PATIENCE)
        .unwrap();
    assert_all_applied(&members, &commands);

    // Awaited on an executor that is nothing but a parked thread (no
    // runtime): the answer wakes it.
    let awaited = block_on(node.submit("set after 1").unwrap()).unwrap();
    assert!(awaited > *indexes.last().unwrap());

    // A follower's answer arrives through the pending proposal.
    let follower = (leader + 1) % 3;
    let refused = members[follower].node().submit("nope").unwrap();
    assert!(matches!(
        refused.wait(),
        Err(Error::Request(RequestError::NotLeader {
            outcome: Outcome::Definite,
            ..
        }))
    ));
    // A closed node refuses at once.
    let m = Member::open(&|_| {});
    let closed = m.node();
    closed.close().unwrap();
    assert!(matches!(closed.submit("late"), Err(Error::Closed)));
}

/// Polls `future` on this thread, parking between polls until woken.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// `initialize` persists the hard state (the new cluster id, term 1, its own
/// vote) before the log writer makes the cluster's first entry durable. A
/// node killed in between must be able to initialize again: nothing of that
/// cluster was committed or seen by anyone. It used to restart as a member of
/// a cluster with no configuration, refusing `initialize` (already
/// initialized), `bootstrap` and `join` alike, never electing a leader: the
/// directory could only be wiped.
#[test]
fn an_initialize_killed_before_its_first_entry_was_durable_can_be_repeated() {
    use raft_core::{ClusterId, HardState, NodeId, Term};
    use raft_io_std::storage::{self, Identity, IdentityStore, StorageOptions};
    let dir = tempfile::tempdir().unwrap();
    {
        // The directory as that kill leaves it.
        let (mut identity, _) = IdentityStore::open(dir.path()).unwrap();
        identity
            .save(&Identity {
                node_id: NodeId(1),
                cluster_id: None,
            })
            .unwrap();
        let mut opened = storage::open(dir.path(), &StorageOptions::default()).unwrap();
        opened
            .hard_state
            .save(&HardState {
                cluster_id: Some(ClusterId(0x5EED)),
                term: Term(1),
                vote: Some(NodeId(1)),
            })
            .unwrap();
    }
    let applied = Applied::default();
    let node = RaftNode::open(
        dir.path(),
        config("127.0.0.1:0", |_| {}),
        ListFsm(applied.clone()),
    )
    .unwrap();
    let cluster = node.initialize().unwrap();
    assert_ne!(cluster, ClusterId(0x5EED), "a new cluster");
    let index = node.propose("after the restart").unwrap();
    node.wait_applied(index, PATIENCE).unwrap();
    assert_eq!(applied.commands(), vec!["after the restart".to_string()]);
    node.close().unwrap();
}

/// The hello of a message connection from node 9 of `node`'s cluster.
fn messages_hello_from_9(node: &RaftNode) -> Vec<u8> {
    use raft_io_std::transport::hello::{self, ConnectionKind, Control, Hello};
    hello::encode_control(&Control::Hello(Hello {
        cluster_id: node.cluster_id(),
        from: Some(NodeId(9)),
        to: node.id(),
        address: None,
        kind: ConnectionKind::Messages,
    }))
}
