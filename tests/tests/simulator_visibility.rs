//! The simulator's visibility scenario against a real gateway over TLS: grants are removed
//! while units stream, and no point published after a removal's answer reaches the
//! removed account. Small and bounded; load figures are in docs/benchmarks.md. The run's
//! report is written as the command line writes it, and read back.

use simulator::scenario::visibility::{run_visibility, VisibilityConfig};
use simulator::ScenarioReport;
use tests::{check_written_report, sampled_run, tls_target, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_cut_off_grantees_before_their_answer() {
    let gateway = TestGateway::start();
    let config = VisibilityConfig {
        units: 4,
        grantees: 3,
        rate_per_unit: 20.0,
        settle: std::time::Duration::from_secs(1),
        run: sampled_run(),
        ..VisibilityConfig::for_target(tls_target(&gateway))
    };
    let report = run_visibility(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.removals.len(), 12);
    assert_eq!(report.violations, 0);
    assert!(report.points_delivered > 0);
    assert!(report.delivery_latency.samples > 0);
    assert!(report.timeline.has_memory(), "{:?}", report.timeline);
    check_written_report(&report);
}
