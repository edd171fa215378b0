//! The simulator's keys scenario against a real gateway over TLS: units hold, acknowledge
//! and enforce their key sets, and their decisions match what the key API shows, from
//! outside. Small and bounded; figures for 1,000 units are in docs/benchmarks.md. The
//! run's report is written as the command line writes it, and read back.

use simulator::report::write_report;
use simulator::scenario::keys::keys_page;
use simulator::{run_keys, KeysConfig, KeysReport};
use tests::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_enforce_exactly_the_keys_the_api_shows() {
    let gateway = TestGateway::start();
    let mut config = KeysConfig::new(
        gateway.http_base(),
        gateway.mqtt_tls(),
        gateway.admin_token.clone(),
    );
    config.target.tls_server_name = Some("localhost".into());
    config.units = 4;
    config.short_lived = std::time::Duration::from_secs(2);
    // The test gateway runs in this process.
    config.gateway_pid = Some(std::process::id());
    let report = run_keys(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert!(report.timeline.has_memory(), "{:?}", report.timeline);
    let unit_changes = report
        .timeline
        .samples
        .last()
        .map(|sample| sample.acked_total);
    assert!(unit_changes.is_some_and(|changes| changes > 0));
    check_written_report(&report, &keys_page(&report));
}

/// Writes the run's report into a fresh temporary directory and checks both files: the JSON
/// carries the run id and the timeline with memory read, the page its title and charts.
fn check_written_report(report: &KeysReport, page: &str) {
    let dir = std::env::temp_dir().join(format!(
        "fleetgate-keys-report-{}-{}",
        std::process::id(),
        report.run_id
    ));
    let written = write_report(&dir, "keys", &report.run_id, report, page).expect("written");
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
    assert!(html.contains(&format!("Fleetgate keys run {}", report.run_id)));
    assert!(html.contains("<svg"));
    assert!(html.contains(&format!("VmRSS of pid {}", std::process::id())));
    std::fs::remove_dir_all(&dir).expect("temporary report directory removed");
}
