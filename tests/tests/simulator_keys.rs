//! The simulator's keys scenario against a real gateway over TLS: units hold, acknowledge
//! and enforce their key sets, and their decisions match what the key API shows, from
//! outside. Small and bounded; figures for 1,000 units are in docs/benchmarks.md. The
//! run's report is written as the command line writes it, and read back.

use simulator::scenario::keys::keys_page;
use simulator::{run_keys, KeysConfig};
use tests::{check_written_report, TestGateway};

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
    check_written_report("keys", &report.run_id, &report, &keys_page(&report));
}
