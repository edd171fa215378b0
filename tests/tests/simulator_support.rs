//! The simulator's support-access admin flow against a real gateway, from outside:
//! request, approve, act as admin, revoke, refused; decline; a tech support case. The
//! run's report is written as the command line writes it, and read back.

use simulator::report::write_report;
use simulator::scenario::support::support_page;
use simulator::{run_support, SupportConfig, SupportReport};
use tests::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_support_flows_hold_from_outside() {
    let gateway = TestGateway::start();
    let mut config = SupportConfig::new(gateway.http_base(), gateway.admin_token.clone());
    config.accounts = 3;
    // The test gateway runs in this process.
    config.gateway_pid = Some(std::process::id());
    let report = run_support(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.flows_completed, report.flows_expected);
    assert_eq!(report.flows_expected, 9);
    assert!(report.timeline.has_memory(), "{:?}", report.timeline);
    let answered = report
        .timeline
        .samples
        .last()
        .map(|sample| sample.acked_total);
    let timed: u64 = report
        .latencies
        .calls
        .values()
        .map(|calls| calls.samples)
        .sum();
    // The sampler skips a last partial interval under a tenth of a second, so a short run
    // may end before its calls show in the series; it never counts more than were timed.
    assert!(
        answered.is_some_and(|answered| answered <= timed),
        "{answered:?} > {timed}"
    );
    check_written_report(&report, &support_page(&report));
}

/// Writes the run's report into a fresh temporary directory and checks both files: the JSON
/// carries the run id and the timeline with memory read, the page its title and charts.
fn check_written_report(report: &SupportReport, page: &str) {
    let dir = std::env::temp_dir().join(format!(
        "fleetgate-support-report-{}-{}",
        std::process::id(),
        report.run_id
    ));
    let written = write_report(&dir, "support", &report.run_id, report, page).expect("written");
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
    assert!(html.contains(&format!("Fleetgate support run {}", report.run_id)));
    assert!(html.contains("<svg"));
    assert!(html.contains(&format!("VmRSS of pid {}", std::process::id())));
    std::fs::remove_dir_all(&dir).expect("temporary report directory removed");
}
