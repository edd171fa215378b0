//! The simulator's fanout scenario against a real gateway over TLS: every asset shared with
//! several grantees holding live streams, each acknowledged point reaches each grantee once
//! and never the account without a grant, and the report files are written. Small and
//! bounded; load figures come from release runs.

use std::time::Duration;

use simulator::scenario::fanout::write_fanout_report;
use simulator::{run_fanout, FanoutConfig, ScenarioError};
use tests::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grantee_gets_every_point_once_and_the_outsider_nothing() {
    let gateway = TestGateway::start_with_window(Duration::from_millis(20));
    let mut config = FanoutConfig::new(
        gateway.http_base(),
        gateway.mqtt_tls(),
        gateway.admin_token.clone(),
    );
    config.target.tls_server_name = Some("localhost".into());
    config.units = 3;
    config.grantees = 4;
    config.rate_per_unit = 10.0;
    config.duration = Duration::from_secs(2);
    config.history_sample = 2;
    config.gateway_pid = Some(std::process::id());
    let report = run_fanout(&config).await.expect("scenario runs");
    eprintln!("{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.points_sent, 3 * 10 * 2);
    assert_eq!(report.deliveries_expected, report.points_acked * 4);
    assert_eq!(report.deliveries, report.deliveries_expected);
    assert_eq!(
        (report.missing, report.duplicates, report.leaked),
        (0, 0, 0)
    );
    assert_eq!(report.outsider_refused, 3);
    assert_eq!(report.publish_to_sse.samples, report.deliveries);
    assert!(report.grantee_spread.samples > 0);
    assert!(report.timeline.has_memory());

    let dir = std::env::temp_dir().join(format!("fleetgate-fanout-report-{}", std::process::id()));
    let written = write_fanout_report(&report, &dir).expect("written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written.json).expect("json")).expect("valid");
    assert_eq!(json["deliveries"], report.deliveries);
    let html = std::fs::read_to_string(&written.html).expect("html");
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains(&format!("Fleetgate fanout run {}", report.run_id)));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test]
async fn refused_settings_create_nothing() {
    let gateway = TestGateway::start();
    let mut config = FanoutConfig::new(
        gateway.http_base(),
        gateway.mqtt_tls(),
        gateway.admin_token.clone(),
    );
    config.grantees = 501;
    let error = run_fanout(&config).await.expect_err("refused");
    assert!(matches!(error, ScenarioError::InvalidConfig(_)), "{error}");
    assert!(error.to_string().contains("grantees"), "{error}");
}
