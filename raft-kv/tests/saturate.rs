//! `raft-kv saturate` end to end, briefly: a real cluster of processes under
//! load, a follower killed and restarted, and the one JSON line a script
//! reads. (The long runs and their figures: docs/operations.md, "Saturation".)

use serde_json::Value;
use std::process::Command;

#[test]
fn a_short_saturation_run_reports_its_load_and_a_follower_catching_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
        .args(["saturate", "--clients", "4", "--value-bytes", "64"])
        .args(["--seconds", "12", "--down-at", "1", "--down-for", "2"])
        .args(["--snapshot-entries-max", "200"])
        .output()
        .expect("raft-kv runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert!(report["ops"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["nodes"].as_array().unwrap().len(), 3, "{report}");
    for node in report["nodes"].as_array().unwrap() {
        assert!(node["rss_mib_max"].as_u64().unwrap() > 0, "{report}");
    }
    // Snapshots every 200 entries: the nodes that stayed up took some.
    let snapshots: u64 = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["snapshots"].as_u64().unwrap())
        .sum();
    assert!(snapshots > 0, "{report}");
    // The follower came back and caught up within the run.
    let down = &report["down"];
    assert!(down["caught_up_s"].as_f64().is_some(), "{report}\n{stderr}");
    assert!(down["caught_up_to"].as_u64().unwrap() > 0, "{report}");
}
