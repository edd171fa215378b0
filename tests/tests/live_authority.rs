//! Live streams carry their authority: when what a stream's principal relied on ends
//! (support access revoked, expired or its case closed, a grant of the one asset it shows
//! removed), the stream ends before the call that ended it answers (an expiry: at its
//! instant), and every other stream keeps delivering. A client that goes away right after
//! sending the revoke or the removal does not keep the stream or the points flowing. (actix
//! finished such handlers in our runs either way; that a dropped handler cannot cancel a
//! change is proven where it is made, `actors::completing` (used by the directory and by
//! `gateway::http::completing`), whose test drops the caller midway.)

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use simulator::api::SseStream;
use simulator::ApiClient;
use tests::{call, eventually, send_and_hang_up, stream_ended, Fleet, TestGateway};

const WAIT: Duration = Duration::from_secs(5);

async fn account_stream(client: &ApiClient, fleet: &Fleet) -> SseStream {
    let path = format!("/v1/stream?account_id={}", fleet.account_id);
    client.stream(&path).await.expect("stream opens")
}

/// The next point's `fuel_pct`, skipping other events.
async fn next_fuel(stream: &mut SseStream) -> f64 {
    let point = stream
        .next_point(WAIT)
        .await
        .expect("a point within 5 s")
        .expect("a readable point");
    point.fuel_pct.expect("fuel_pct")
}

async fn has_ended(stream: &mut SseStream) -> bool {
    stream_ended(stream, WAIT).await
}

/// A unit on `asset` that publishes one point with the given fuel level.
struct Unit {
    unit: simulator::SimUnit,
}

impl Unit {
    async fn start(fleet: &Fleet, device: &str, asset: &str) -> Unit {
        fleet.unit_with_asset(device, asset).await;
        Unit {
            unit: fleet.connect(device).await,
        }
    }

    async fn publish(&self, fuel: f64) {
        self.unit
            .publish_point(&json!({"fuel_pct": fuel}))
            .await
            .expect("published and acknowledged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_ends_the_staff_stream_and_only_that_one() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let unit = Unit::start(&acme, "unit1", "ex1").await;
    let (support, id) = acme.approved_support("14d").await;
    let mut staff_stream = account_stream(&support, &acme).await;
    let mut admin_stream = account_stream(&acme.admin, &acme).await;
    unit.publish(10.0).await;
    assert_eq!(next_fuel(&mut staff_stream).await, 10.0);
    assert_eq!(next_fuel(&mut admin_stream).await, 10.0);

    let path = format!("/v1/support-access/requests/{id}/revoke");
    let (status, revoked) = call(&acme.admin, Method::POST, &path, None).await;
    assert_eq!(status, 200, "{revoked}");
    unit.publish(20.0).await;
    assert!(
        has_ended(&mut staff_stream).await,
        "the revoked staff member's stream ends"
    );
    assert_eq!(
        next_fuel(&mut admin_stream).await,
        20.0,
        "the admin's goes on"
    );
    // Opening a new one is refused like any request after the revoke.
    let path = format!("/v1/stream?account_id={}", acme.account_id);
    assert!(support.stream(&path).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_ends_the_staff_stream_at_its_instant() {
    let gateway = TestGateway::start_with_manual_clock();
    let acme = Fleet::create(&gateway, "Acme").await;
    let unit = Unit::start(&acme, "unit1", "ex1").await;
    let (support, _) = acme.approved_support("24h").await;
    let mut staff_stream = account_stream(&support, &acme).await;
    let mut admin_stream = account_stream(&acme.admin, &acme).await;
    gateway.advance(Duration::from_secs(24 * 3600 - 1));
    unit.publish(30.0).await;
    assert_eq!(
        next_fuel(&mut staff_stream).await,
        30.0,
        "a second before the end"
    );
    assert_eq!(next_fuel(&mut admin_stream).await, 30.0);

    gateway.advance(Duration::from_secs(1));
    assert!(
        has_ended(&mut staff_stream).await,
        "ends when the access does"
    );
    unit.publish(40.0).await;
    assert_eq!(next_fuel(&mut admin_stream).await, 40.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_support_case_ends_the_case_stream() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let unit = Unit::start(&acme, "unit1", "ex1").await;
    let (tech, _) = acme.staff("tech_support").await;
    let body = json!({"account_id": acme.account_id.to_string(), "ticket_id": "TCK-9"});
    let (status, case) = call(&tech, Method::POST, "/v1/support-cases", Some(body)).await;
    assert_eq!(status, 201, "{case}");
    let mut tech_stream = account_stream(&tech, &acme).await;
    let mut admin_stream = account_stream(&acme.admin, &acme).await;
    unit.publish(50.0).await;
    assert_eq!(next_fuel(&mut tech_stream).await, 50.0);
    assert_eq!(next_fuel(&mut admin_stream).await, 50.0);

    let path = format!(
        "/v1/support-cases/{}/close",
        case["id"].as_str().expect("id")
    );
    let (status, closed) = call(&tech, Method::POST, &path, None).await;
    assert_eq!(status, 200, "{closed}");
    assert!(has_ended(&mut tech_stream).await);
    unit.publish(60.0).await;
    assert_eq!(next_fuel(&mut admin_stream).await, 60.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_grant_ends_the_assets_stream_and_narrows_the_accounts() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let shared = Unit::start(&acme, "unit1", "ex1").await;
    let kept = Unit::start(&acme, "unit2", "ex2").await;
    let granted = acme.grant(&depot, &["ex1", "ex2"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let grant_of = |asset: &str| {
        granted.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|grant| grant["asset_id"] == asset)
            .and_then(|grant| grant["id"].as_str())
            .expect("grant id")
            .to_owned()
    };
    let mut asset_stream = depot
        .admin
        .stream("/v1/assets/ex1/stream")
        .await
        .expect("open");
    let mut other_asset = depot
        .admin
        .stream("/v1/assets/ex2/stream")
        .await
        .expect("open");
    let mut depot_stream = depot.admin.stream("/v1/stream").await.expect("open");
    shared.publish(70.0).await;
    assert_eq!(next_fuel(&mut asset_stream).await, 70.0);
    assert_eq!(next_fuel(&mut depot_stream).await, 70.0);

    let (status, body) = tests::remove_grant(&acme.admin, &grant_of("ex1")).await;
    assert!(status == 200 || status == 204, "{status} {body}");
    assert!(
        has_ended(&mut asset_stream).await,
        "the stream of the asset it lost ends"
    );
    shared.publish(80.0).await;
    kept.publish(90.0).await;
    assert_eq!(
        next_fuel(&mut depot_stream).await,
        90.0,
        "the account's stream stays open and no longer carries ex1"
    );
    assert_eq!(next_fuel(&mut other_asset).await, 90.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_whose_caller_hangs_up_still_ends_the_stream() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (support, id) = acme.approved_support("14d").await;
    let mut staff_stream = account_stream(&support, &acme).await;

    // The revoke as raw HTTP, the connection closed right after the request is sent.
    let path = format!("/v1/support-access/requests/{id}/revoke");
    send_and_hang_up(&gateway, "POST", &path, &acme.admin_token).await;

    let archived = eventually(|| async {
        let path = format!(
            "/v1/accounts/{}/support-access?state=archived",
            acme.account_id
        );
        let (_, body) = call(&acme.admin, Method::GET, &path, None).await;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await
    .expect("the revoke was committed");
    assert_eq!(archived[0]["state"], "revoked");
    assert!(has_ended(&mut staff_stream).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_removal_whose_caller_hangs_up_still_cuts_the_grantee_off() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let unit = Unit::start(&acme, "unit1", "ex1").await;
    let granted = acme.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let grant_id = granted.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut depot_stream = depot.admin.stream("/v1/stream").await.expect("open");
    let mut acme_stream = account_stream(&acme.admin, &acme).await;
    unit.publish(1.0).await;
    assert_eq!(next_fuel(&mut depot_stream).await, 1.0);
    assert_eq!(next_fuel(&mut acme_stream).await, 1.0);

    let path = format!("/v1/visibility/grants/{grant_id}");
    send_and_hang_up(&gateway, "DELETE", &path, &acme.admin_token).await;
    eventually(|| async {
        let status = depot
            .admin
            .get_raw("/v1/assets/ex1")
            .await
            .expect("answer")
            .0;
        (status == 404).then_some(())
    })
    .await
    .expect("the removal was committed");
    // The re-bind follows the commit by moments; had it been skipped, the grantee would
    // keep every point. So: the grantee must stop receiving within a few points.
    for attempt in 2..12 {
        let fuel = f64::from(attempt);
        unit.publish(fuel).await;
        assert_eq!(next_fuel(&mut acme_stream).await, fuel);
        if depot_stream
            .next_point(Duration::from_millis(300))
            .await
            .is_none()
        {
            return;
        }
    }
    panic!("the removed grantee kept receiving points after its client hung up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_grant_ends_the_assets_stream_at_its_instant() {
    let gateway = TestGateway::start_with_manual_clock();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let unit = Unit::start(&acme, "unit1", "ex1").await;
    let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let until = until
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    let granted = acme.grant(&depot, &["ex1"], json!({"until": until})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let path = format!("/v1/assets/ex1/stream?account_id={}", depot.account_id);
    let mut depot_stream = depot.admin.stream(&path).await.expect("open");
    let mut acme_stream = account_stream(&acme.admin, &acme).await;
    unit.publish(1.0).await;
    assert_eq!(next_fuel(&mut depot_stream).await, 1.0);
    assert_eq!(next_fuel(&mut acme_stream).await, 1.0);

    gateway.advance(Duration::from_secs(3600 + 1));
    assert!(
        has_ended(&mut depot_stream).await,
        "the grantee's stream of the asset ends when the grant does"
    );
    unit.publish(2.0).await;
    assert_eq!(
        next_fuel(&mut acme_stream).await,
        2.0,
        "the owner's goes on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_partnership_ends_the_partners_stream_of_the_shared_asset() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let partner = Fleet::create(&gateway, "Rentals").await;
    let unit = Unit::start(&owner, "unit1", "ex1").await;
    let partnership = owner.partnership(&partner).await;
    let granted = owner.grant(&partner, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let path = format!("/v1/assets/ex1/stream?account_id={}", partner.account_id);
    let mut partner_stream = partner.admin.stream(&path).await.expect("open");
    let mut owner_stream = account_stream(&owner.admin, &owner).await;
    unit.publish(1.0).await;
    assert_eq!(next_fuel(&mut partner_stream).await, 1.0);
    assert_eq!(next_fuel(&mut owner_stream).await, 1.0);

    let end = format!("/v1/partnerships/{partnership}");
    let (status, ended) = call(&owner.platform, Method::DELETE, &end, None).await;
    assert_eq!(status, 200, "{ended}");
    assert!(
        has_ended(&mut partner_stream).await,
        "its grants ended with it"
    );
    unit.publish(2.0).await;
    assert_eq!(
        next_fuel(&mut owner_stream).await,
        2.0,
        "the owner's goes on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_stream_ends_and_no_one_elses() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let unit = Unit::start(&acme, "unit1", "ex1").await;
    let created = acme
        .admin
        .create_user(&acme.account_id, "Vic", simulator::api::UserRole::Viewer)
        .await
        .expect("user");
    let viewer = acme.admin.with_token(created.token);
    let mut viewer_stream = account_stream(&viewer, &acme).await;
    let mut admin_stream = account_stream(&acme.admin, &acme).await;
    unit.publish(1.0).await;
    assert_eq!(next_fuel(&mut viewer_stream).await, 1.0);
    assert_eq!(next_fuel(&mut admin_stream).await, 1.0);

    let path = format!("/v1/accounts/{}/users/{}", acme.account_id, created.id);
    let (status, _) = call(&acme.admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert!(
        has_ended(&mut viewer_stream).await,
        "ends before the answer"
    );
    unit.publish(2.0).await;
    assert_eq!(
        next_fuel(&mut admin_stream).await,
        2.0,
        "the admin's goes on"
    );
}
