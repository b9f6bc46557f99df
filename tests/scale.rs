//! The scale harness at a small size: `subnet scale` runs node processes
//! with heartbeats far faster than the default (overload on a 2-core
//! machine), and resident memory per node after 2 minutes stays within
//! [`MAX_GROWTH`] of its value after 30 s; every address book completes,
//! no node dies, and every node keeps answering its admin protocol and
//! `/metrics`.

use std::process::Command;

/// Node processes.
const NODES: &str = "16";
/// Seconds between two heartbeats of each node (the default is 15).
const HEARTBEAT_INTERVAL: &str = "0.1";
/// Mean and largest resident memory per node at 2 min, over their values
/// at 30 s, at most.
const MAX_GROWTH: f64 = 1.25;

#[test]
fn memory_per_node_stays_flat_under_overload() {
    let output = Command::new(env!("CARGO_BIN_EXE_subnet"))
        .args(["scale", "--nodes", NODES])
        .args(["--heartbeat-interval", HEARTBEAT_INTERVAL])
        .args(["--duration", "125", "--sample", "5", "--json"])
        .output()
        .expect("subnet scale runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "subnet scale failed: {stderr}\n{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON");
    println!("{report:#}");
    assert_eq!(report["dead"], 0);
    assert_eq!(report["books_incomplete"], 0);
    for kind in ["admin", "metrics"] {
        assert_eq!(report[kind]["failed"], 0, "{kind} always answered");
    }
    let at = |second: u64, field: &str| {
        report["memory"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["at_s"] == second)
            .unwrap_or_else(|| panic!("memory at {second} s"))[field]
            .as_f64()
            .unwrap()
    };
    for field in ["rss_mean_mib", "rss_max_mib"] {
        let (early, late) = (at(30, field), at(120, field));
        assert!(
            late <= early * MAX_GROWTH,
            "{field}: {early} MiB at 30 s, {late} MiB at 2 min"
        );
    }
    // Overload indeed: the nodes received far more heartbeats than a
    // default subnet of this size would send them.
    assert!(report["heartbeats_received_per_node_s"].as_f64().unwrap() > 10.0);
}
