//! The simulator's support-access admin flow against a real gateway, from outside:
//! request, approve, act as admin, revoke, refused; decline; a tech support case. The
//! run's report is written as the command line writes it, and read back.

use simulator::{run_support, ScenarioReport, SupportConfig};
use tests::{check_written_report, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_support_flows_hold_from_outside() {
    let gateway = TestGateway::start();
    let mut config = SupportConfig::new(gateway.http_base(), gateway.admin_token.clone());
    config.accounts = 3;
    // The test gateway runs in this process.
    config.run.gateway_pid = Some(std::process::id());
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
    check_written_report(&report);
}
