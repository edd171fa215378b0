//! The simulator's keys scenario against a real gateway over TLS: units hold, acknowledge
//! and enforce their key sets, and their decisions match what the key API shows, from
//! outside. Small and bounded; figures for 1,000 units are in docs/benchmarks.md.

use simulator::{run_keys, KeysConfig};
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
    let report = run_keys(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
}
