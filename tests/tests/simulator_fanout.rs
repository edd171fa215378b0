//! The simulator's fanout scenario against a real gateway over TLS: every asset shared with
//! several grantees holding live streams, each acknowledged point reaches each grantee once
//! and never the account without a grant, and the report files are written. Small and
//! bounded; load figures come from release runs.

use std::time::Duration;

use simulator::{run_fanout, FanoutConfig, ScenarioError, ScenarioReport};
use tests::{check_written_report, sampled_run, tls_target, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grantee_gets_every_point_once_and_the_outsider_nothing() {
    let gateway = TestGateway::start_with_window(Duration::from_millis(20));
    let config = FanoutConfig {
        units: 3,
        grantees: 4,
        rate_per_unit: 10.0,
        duration: Duration::from_secs(2),
        history_sample: 2,
        run: sampled_run(),
        ..FanoutConfig::for_target(tls_target(&gateway))
    };
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

    let (json, html) = check_written_report(&report);
    assert_eq!(json["deliveries"], report.deliveries);
    assert_eq!(html.matches("<svg").count(), 3);
}

#[tokio::test]
async fn refused_settings_create_nothing() {
    let gateway = TestGateway::start();
    let config = FanoutConfig {
        grantees: 501,
        ..FanoutConfig::for_target(tls_target(&gateway))
    };
    let error = run_fanout(&config).await.expect_err("refused");
    assert!(matches!(error, ScenarioError::InvalidConfig(_)), "{error}");
    assert!(error.to_string().contains("grantees"), "{error}");
}
