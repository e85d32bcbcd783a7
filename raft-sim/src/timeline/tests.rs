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
