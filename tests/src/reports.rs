//! What the end-to-end tests of the simulator's scenarios share: the target and run options
//! they all start from (the test gateway over TLS, its memory sampled: it runs in the test
//! process, so its pid is ours), and one check of a scenario's report files.

use std::path::PathBuf;

use simulator::report::write;
use simulator::{RunOptions, ScenarioReport, Target};

use crate::TestGateway;

/// The test gateway's TLS listener, as the scenarios' units reach it.
pub fn tls_target(gateway: &TestGateway) -> Target {
    Target {
        tls_server_name: Some("localhost".into()),
        ..Target::new(
            gateway.http_base(),
            gateway.mqtt_tls(),
            gateway.admin_token.clone(),
        )
    }
}

/// The default run options with this process's memory sampled: the test gateway runs in
/// the test process.
pub fn sampled_run() -> RunOptions {
    RunOptions {
        gateway_pid: Some(std::process::id()),
        ..RunOptions::default()
    }
}

/// Writes `report` into a fresh temporary directory as the command line writes it and
/// checks both files: the JSON carries the run id, the checks, and a timeline with memory
/// read from this process; the page its title, a chart and the memory series. Returns the
/// parsed JSON and the page for the caller's own checks; the directory is removed.
pub fn check_written_report<R: ScenarioReport>(report: &R) -> (serde_json::Value, String) {
    let (json, html) = read_written(report);
    let samples = json["timeline"]["samples"].as_array().expect("samples");
    assert!(!samples.is_empty());
    assert!(
        samples.iter().any(|sample| sample["gateway_rss_kib"]
            .as_u64()
            .is_some_and(|kib| kib > 0)),
        "no memory sample in {samples:?}"
    );
    // With the pid the memory is VmRSS; without it, the gateway's own /metrics.
    match json["timeline"]["gateway_pid"].as_u64() {
        Some(pid) => {
            assert_eq!(pid, u64::from(std::process::id()));
            assert!(html.contains(&format!("VmRSS of pid {pid}")));
        }
        None => assert!(html.contains("process_resident_memory_bytes from /metrics")),
    }
    (json, html)
}

/// Writes `report` into a fresh temporary directory, checks what every report's files
/// carry (run id, checks, title, a chart) and returns them read back; the directory is
/// removed.
pub fn read_written<R: ScenarioReport>(report: &R) -> (serde_json::Value, String) {
    let run_id = report.run_id();
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "fleetgate-{}-report-{}-{run_id}",
        R::SCENARIO,
        std::process::id()
    ));
    let written = write(report, &dir).expect("written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written.json).expect("json file"))
            .expect("valid json");
    assert_eq!(json["run_id"], run_id);
    assert_eq!(
        json["checks"].as_array().map(Vec::len),
        Some(report.checks().len())
    );
    let html = std::fs::read_to_string(&written.html).expect("html file");
    assert!(html.contains(&format!("Fleetgate {} run {run_id}", R::SCENARIO)));
    assert!(html.contains("<svg") && !html.contains("<script"));
    std::fs::remove_dir_all(&dir).expect("temporary report directory removed");
    (json, html)
}
