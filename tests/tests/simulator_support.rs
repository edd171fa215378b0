//! The simulator's support-access admin flow against a real gateway, from outside:
//! request, approve, act as admin, revoke, refused; decline; a tech support case.

use simulator::{run_support, SupportConfig};
use tests::TestGateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_support_flows_hold_from_outside() {
    let gateway = TestGateway::start();
    let mut config = SupportConfig::new(gateway.http_base(), gateway.admin_token.clone());
    config.accounts = 3;
    let report = run_support(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.flows_completed, report.flows_expected);
    assert_eq!(report.flows_expected, 9);
}
