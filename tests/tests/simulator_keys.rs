//! The simulator's keys scenario against a real gateway over TLS: units hold, acknowledge
//! and enforce their key sets, and their decisions match what the key API shows, from
//! outside. Small and bounded; figures for 1,000 units are in docs/benchmarks.md. The
//! run's report is written as the command line writes it, and read back.

use simulator::{run_keys, KeysConfig, ScenarioReport};
use tests::{check_written_report, sampled_run, tls_target, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_enforce_exactly_the_keys_the_api_shows() {
    let gateway = TestGateway::start();
    let config = KeysConfig {
        units: 4,
        short_lived: std::time::Duration::from_secs(2),
        run: sampled_run(),
        ..KeysConfig::for_target(tls_target(&gateway))
    };
    let report = run_keys(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert!(report.timeline.has_memory(), "{:?}", report.timeline);
    let unit_changes = report
        .timeline
        .samples
        .last()
        .map(|sample| sample.acked_total);
    assert!(unit_changes.is_some_and(|changes| changes > 0));
    check_written_report(&report);
}
