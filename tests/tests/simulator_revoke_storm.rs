//! The simulator's revoke-storm scenario against a real gateway over TLS: every grant taken
//! back at once with several calls in flight (one `DELETE` per grant, and bulk removal),
//! no point published after a removal's answer reaches its grantee, grantees get 404, the
//! owner keeps every point, and the report files are written. Small and bounded.

use std::time::Duration;

use simulator::scenario::revoke_storm::write_revoke_storm_report;
use simulator::{run_revoke_storm, RevokeMode, RevokeStormConfig, ScenarioError};
use tests::TestGateway;

fn small(gateway: &TestGateway, mode: RevokeMode) -> RevokeStormConfig {
    let mut config = RevokeStormConfig::new(
        gateway.http_base(),
        gateway.mqtt_tls(),
        gateway.admin_token.clone(),
    );
    config.target.tls_server_name = Some("localhost".into());
    config.units = 4;
    config.grantees = 5;
    config.rate_per_unit = 10.0;
    config.concurrency = 8;
    config.mode = mode;
    config.settle = Duration::from_secs(1);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_deletes_keeps_the_cut_off() {
    let gateway = TestGateway::start_with_window(Duration::from_millis(20));
    let report = run_revoke_storm(&small(&gateway, RevokeMode::Individual))
        .await
        .expect("scenario runs");
    eprintln!("{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.calls.len(), 20);
    assert_eq!(report.grants_removed, 20);
    assert_eq!(report.violations, 0);
    assert_eq!(report.history_refused, 20);
    assert_eq!(report.removal_latency.samples, 20);
    assert!(report.points_delivered > 0);

    let dir = std::env::temp_dir().join(format!("fleetgate-storm-report-{}", std::process::id()));
    let written = write_revoke_storm_report(&report, &dir).expect("written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written.json).expect("json")).expect("valid");
    assert_eq!(json["mode"], "individual");
    assert_eq!(json["grants_removed"], 20);
    let html = std::fs::read_to_string(&written.html).expect("html");
    assert_eq!(html.matches("<svg").count(), 3);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_bulk_removals_keeps_the_cut_off() {
    let gateway = TestGateway::start_with_window(Duration::from_millis(20));
    let report = run_revoke_storm(&small(&gateway, RevokeMode::Bulk))
        .await
        .expect("scenario runs");
    eprintln!("{report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.calls.len(), 5, "one call per grantee");
    assert_eq!(report.grants_removed, 20);
    assert_eq!(report.history_refused, 20);
}

#[tokio::test]
async fn refused_settings_create_nothing() {
    let gateway = TestGateway::start();
    let mut config = small(&gateway, RevokeMode::Individual);
    config.concurrency = 0;
    let error = run_revoke_storm(&config).await.expect_err("refused");
    assert!(matches!(error, ScenarioError::InvalidConfig(_)), "{error}");
    assert!(error.to_string().contains("concurrency"), "{error}");
}
