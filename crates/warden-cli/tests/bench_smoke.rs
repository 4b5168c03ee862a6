//! `warden bench` end to end, small: every call succeeds through both paths, the figures come
//! out as JSON, and every successful call through Warden left an audit event.

use std::process::Command;

use serde_json::Value;

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

#[test]
fn a_small_bench_run_succeeds_and_reports_json() {
    let out = Command::new(WARDEN)
        .args([
            "bench",
            "--calls",
            "60",
            "--concurrency",
            "4",
            "--warmup",
            "8",
            "--rate",
            "400",
            "--json",
        ])
        .output()
        .expect("run warden bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    for path in ["direct", "warden"] {
        assert_eq!(report[path]["failures"], 0, "{report}");
        for phase in ["saturation", "fixed_rate"] {
            assert_eq!(report[path][phase]["ok"], 60, "{report}");
            assert!(
                report[path][phase]["p50_us"].as_f64() > Some(0.0),
                "{report}"
            );
            // Every call costs the process some CPU: callers, gateway and upstream run in it.
            assert!(
                report[path][phase]["cpu_us_per_call"].as_f64() > Some(0.0),
                "{report}"
            );
        }
    }
    // 8 warm-up + 60 + 60 calls through Warden, each committed before it was answered.
    assert_eq!(report["successful_warden_calls"], 128, "{report}");
    assert_eq!(report["audit_events_committed"], 128, "{report}");
    assert!(
        report["throughput_ratio_pct"].as_f64() > Some(0.0),
        "{report}"
    );
    assert!(
        report["added_cpu_us_per_call"].as_f64().is_some(),
        "{report}"
    );
}

#[test]
fn nonsense_arguments_are_refused() {
    let out = Command::new(WARDEN)
        .args(["bench", "--concurrency", "0"])
        .output()
        .expect("run warden bench");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--concurrency must be at least 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
