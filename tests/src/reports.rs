//! One check of a scenario's report files, shared by the end-to-end tests of every scenario
//! that writes one: the test gateway runs in the test process, so its pid is ours and the
//! memory series must have been read.

use std::path::PathBuf;

use serde::Serialize;
use simulator::report::write_report;

/// Writes `report` and `page` as `<scenario>-<run_id>` into a fresh temporary directory and
/// checks both files: the JSON carries the run id and a timeline with memory read from this
/// process, the page its title, a chart and the memory series. Returns the parsed JSON for
/// the caller's own checks; the directory is removed.
pub fn check_written_report<R: Serialize>(
    scenario: &str,
    run_id: &str,
    report: &R,
    page: &str,
) -> serde_json::Value {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "fleetgate-{scenario}-report-{}-{run_id}",
        std::process::id()
    ));
    let written = write_report(&dir, scenario, run_id, report, page).expect("written");
    assert!(written.json.exists() && written.html.exists());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written.json).expect("json file"))
            .expect("valid json");
    assert_eq!(json["run_id"], run_id);
    let samples = json["timeline"]["samples"].as_array().expect("samples");
    assert!(!samples.is_empty());
    assert!(
        samples.iter().any(|sample| sample["gateway_rss_kib"]
            .as_u64()
            .is_some_and(|kib| kib > 0)),
        "no memory sample in {samples:?}"
    );
    assert_eq!(json["timeline"]["gateway_pid"], std::process::id());
    let html = std::fs::read_to_string(&written.html).expect("html file");
    assert!(html.contains(&format!("Fleetgate {scenario} run {run_id}")));
    assert!(html.contains("<svg"));
    assert!(html.contains(&format!("VmRSS of pid {}", std::process::id())));
    std::fs::remove_dir_all(&dir).expect("temporary report directory removed");
    json
}
