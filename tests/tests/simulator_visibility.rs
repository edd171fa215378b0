//! The simulator's visibility scenario against a real gateway over TLS: grants are removed
//! while units stream, and no point published after a removal's answer reaches the
//! removed account. Small and bounded; load figures are in docs/benchmarks.md. The run's
//! report is written as the command line writes it, and read back.

use simulator::report::write_report;
use simulator::scenario::visibility::{
    run_visibility, visibility_page, VisibilityConfig, VisibilityReport,
};
use tests::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_cut_off_grantees_before_their_answer() {
    let gateway = TestGateway::start();
    let mut config = VisibilityConfig::new(
        gateway.http_base(),
        gateway.mqtt_tls(),
        gateway.admin_token.clone(),
    );
    config.target.tls_server_name = Some("localhost".into());
    config.units = 4;
    config.grantees = 3;
    config.rate_per_unit = 20.0;
    config.settle = std::time::Duration::from_secs(1);
    // The test gateway runs in this process.
    config.gateway_pid = Some(std::process::id());
    let report = run_visibility(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.removals.len(), 12);
    assert_eq!(report.violations, 0);
    assert!(report.points_delivered > 0);
    assert!(report.delivery_latency.samples > 0);
    assert!(report.timeline.has_memory(), "{:?}", report.timeline);
    check_written_report(&report, &visibility_page(&report));
}

/// Writes the run's report into a fresh temporary directory and checks both files: the JSON
/// carries the run id and the timeline with memory read, the page its title and charts.
fn check_written_report(report: &VisibilityReport, page: &str) {
    let dir = std::env::temp_dir().join(format!(
        "fleetgate-visibility-report-{}-{}",
        std::process::id(),
        report.run_id
    ));
    let written = write_report(&dir, "visibility", &report.run_id, report, page).expect("written");
    assert!(written.json.exists() && written.html.exists());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written.json).expect("json file"))
            .expect("valid json");
    assert_eq!(json["run_id"], report.run_id.as_str());
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
    assert!(html.contains(&format!("Fleetgate visibility run {}", report.run_id)));
    assert!(html.contains("<svg"));
    assert!(html.contains(&format!("VmRSS of pid {}", std::process::id())));
    std::fs::remove_dir_all(&dir).expect("temporary report directory removed");
}
