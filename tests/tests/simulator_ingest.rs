//! The simulator's ingest scenario against a real gateway: every acknowledged point is
//! stored exactly once and delivered live. Small and bounded; the load figures come from
//! the release-build runs in docs/benchmarks.md.

use simulator::{run_ingest, IngestConfig};
use tests::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_point_is_stored_exactly_once_over_tls() {
    let gateway = TestGateway::start_with_window(std::time::Duration::from_millis(20));
    let mut config = IngestConfig::new(
        gateway.http_base(),
        gateway.mqtt_tls(),
        gateway.admin_token.clone(),
    );
    config.target.tls_server_name = Some("localhost".into());
    config.units = 20;
    config.rate_per_unit = 10.0;
    config.duration = std::time::Duration::from_secs(2);
    let report = run_ingest(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.points_sent, 20 * 10 * 2);
    assert_eq!(report.points_stored, report.points_acked);
    assert_eq!(report.missing, 0);
    assert_eq!(report.duplicates, 0);
    assert!(report.sse_received >= report.points_acked);
    assert!(report.publish_to_sse.samples > 0 && report.publish_to_stored.samples > 0);
}
