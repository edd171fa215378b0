//! The simulator's revoke-storm scenario against a real gateway over TLS: every grant taken
//! back at once with several calls in flight (one `DELETE` per grant, and bulk removal),
//! no point published after a removal's answer reaches its grantee, grantees get 404, the
//! owner keeps every point, and the report files are written. Small and bounded.

use std::time::Duration;

use simulator::{run_revoke_storm, RevokeMode, RevokeStormConfig, ScenarioError, ScenarioReport};
use tests::{read_written, tls_target, TestGateway};

fn small(gateway: &TestGateway, mode: RevokeMode) -> RevokeStormConfig {
    RevokeStormConfig {
        units: 4,
        grantees: 5,
        rate_per_unit: 10.0,
        concurrency: 8,
        mode,
        settle: Duration::from_secs(1),
        ..RevokeStormConfig::for_target(tls_target(gateway))
    }
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

    let (json, html) = read_written(&report);
    assert_eq!(json["mode"], "individual");
    assert_eq!(json["grants_removed"], 20);
    assert_eq!(html.matches("<svg").count(), 3);
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
