use super::*;
use crate::swarm::{Overrides, scenario_from_seed};
use crate::sweep::run;
use crate::trace::Trace;

/// Runs `seed` for `ms` simulated milliseconds and renders its timeline.
fn render_seed(seed: u64, ms: u64) -> String {
    let overrides = Overrides {
        duration_ms: Some(ms),
        ..Overrides::default()
    };
    let scenario = scenario_from_seed(seed, false, &overrides);
    let buf = SharedBuf::default();
    let trace = Trace::new(0, false).with_jsonl(Box::new(buf.clone()));
    let report = run(scenario.clone(), trace);
    let records = parse_jsonl(&buf.text());
    assert!(!records.is_empty());
    render(&scenario, &report, &records, None)
}

#[test]
fn renders_a_well_formed_page_with_one_lane_per_node() {
    let html = render_seed(1, 3000);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<svg"));
    for tag in ["svg", "g", "title", "text", "html", "body", "head"] {
        let open =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}> opened {open} times, closed {close}");
    }
    let nodes = crate::swarm::scenario_from_seed(1, false, &Overrides::default())
        .knobs
        .nodes;
    for i in 1..=nodes {
        // One lane per node in each of the two panels.
        assert_eq!(html.matches(&format!("id=\"lane-n{i}\"")).count(), 2);
    }
    assert!(!html.contains(&format!("id=\"lane-n{}\"", nodes + 1)));
    assert!(html.contains("#3cb043"), "a leader was elected and drawn");
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(render_seed(2, 2000), render_seed(2, 2000));
}

#[test]
fn jsonl_round_trips_node_numbers_and_windows_parse() {
    let r = parse_jsonl(
        "{\"seq\":0,\"at_ns\":5,\"node\":2,\"text\":\"x\"}\nnot json\n{\"seq\":1,\"at_ns\":6,\"node\":null,\"text\":\"y\"}",
    );
    assert_eq!(r.len(), 2);
    assert_eq!(
        (r[0].at_ns, r[0].node, r[0].text.as_str()),
        (5, Some(1), "x")
    );
    assert_eq!(r[1].node, None);
    assert_eq!(parse_window("10..12.5"), Ok((10 * SEC, 12 * SEC + SEC / 2)));
    assert!(parse_window("3..1").is_err());
    assert!(parse_window("x..1").is_err());
}

#[test]
fn partition_labels_name_groups_one_based() {
    assert_eq!(
        shape_label(&Shape::Split { side: vec![0, 1] }, 5, None),
        "{n1,n2} | {n3,n4,n5}"
    );
    assert_eq!(
        shape_label(
            &Shape::Bridge {
                bridge: 2,
                left: vec![0, 1]
            },
            5,
            None
        ),
        "{n1,n2} | {n4,n5} bridged by n3"
    );
    assert_eq!(
        shape_label(&Shape::IsolateLeader, 3, Some(1)),
        "leader {n2} | {n1,n3}"
    );
}

/// A hand-made failing run: crash, restart, partition, votes and a failure.
#[test]
fn draws_faults_votes_and_the_failure_and_centers_the_window_on_it() {
    use crate::checkers::Failure;
    use crate::scenario::Timed;
    let mut scenario = scenario_from_seed(0, false, &Overrides::default());
    scenario.knobs.nodes = 3;
    scenario.faults = vec![Timed::at(
        1000,
        Fault::Partition(Shape::Isolate { node: 2 }),
    )];
    let rec = |ms: u64, node: Option<usize>, text: &str| Record {
        at_ns: ms * 1_000_000,
        node,
        text: text.to_string(),
    };
    let records = vec![
        rec(600, Some(0), "-> RoleChanged Candidate t2 leader=None"),
        rec(600, Some(0), "-> Send 1->2 t2 Vote last=1/t1"),
        rec(601, Some(1), "F1 <- Recv 1->2 t2 Vote last=1/t1"),
        rec(602, Some(0), "-> RoleChanged Leader t2 leader=Some(1)"),
        rec(1000, None, "fault: partition Isolate { node: 2 }"),
        rec(1500, Some(2), "crash: disk kept 0/0 pending ops"),
        rec(2000, Some(2), "start incarnation 1 from disk (last 1)"),
        rec(2500, None, "FAILURE safety/election-safety: two leaders"),
    ];
    let report = RunReport {
        seed: 0,
        digest: 0,
        events: 0,
        sim_ns: 4 * SEC,
        failure: Some(Failure::safety("election-safety", "two leaders".into())),
        history: Vec::new(),
        leader_terms: 1,
        committed: raft_core::LogIndex(0),
        acked_writes: 0,
        trace_tail: Vec::new(),
        coverage: BTreeMap::new(),
    };
    let html = render(&scenario, &report, &records, None);
    assert!(html.contains("FAILED at 2.500000s"));
    assert!(html.contains("Window 0.500000s .. 2.500000s"));
    assert!(html.contains("{n3} | {n1,n2}"), "partition labeled");
    assert!(
        html.contains("n1-&gt;n2 0.600000s .. 0.601000s"),
        "vote arrow"
    );
    assert!(html.contains("n3 down 1.500000s .. 2.000000s"));
    assert!(html.contains("n1 Leader term 2"));
    assert!(html.contains("url(#hv)"));
}
