//! Tenant sharing into a partner organization (rule 5, Perspio's service-provider and
//! cross-country cases): without a partnership the source's admin cannot reach another
//! organization's account; with one it shares into it, that account's admin may stop the
//! share from the mirror's side, and the share ends with the partnership.

use reqwest::Method;
use serde_json::{json, Value};
use tests::{call, eventually, Fleet, TestGateway};

fn share_body(target: &Fleet) -> Value {
    json!({"target_account_id": target.account_id.to_string(), "target_asset_id": "acme-ex1"})
}

async fn telemetry_target(owner: &Fleet) -> Value {
    let (status, sharing) = call(&owner.admin, Method::GET, "/v1/assets/ex1/sharing", None).await;
    assert_eq!(status, 200, "{sharing}");
    sharing["telemetry"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_organization_receives_a_share_and_may_stop_it() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let service = Fleet::create(&gateway, "Service Partner").await;
    let stranger = Fleet::create(&gateway, "Stranger").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let path = "/v1/assets/ex1/sharing/telemetry";

    // No partnership: another organization's account is out of reach (and unseen).
    let (status, _) = call(&acme.admin, Method::PUT, path, Some(share_body(&service))).await;
    assert_eq!(status, 404);

    let id = acme.partnership(&service).await;
    let (status, shared) = call(&acme.admin, Method::PUT, path, Some(share_body(&service))).await;
    assert_eq!(status, 200, "{shared}");
    let unit = acme.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 33}))
        .await
        .expect("stored");
    let mirrored = eventually(|| async {
        let (status, latest) = call(
            &service.admin,
            Method::GET,
            "/v1/assets/acme-ex1/latest",
            None,
        )
        .await;
        (status == 200).then_some(latest)
    })
    .await
    .expect("the partner's mirror shows the point");
    assert_eq!(mirrored["fuel_pct"], 33.0);

    // Someone else cannot stop it; the partner's admin can, from its side.
    let mirror_side = "/v1/assets/acme-ex1/sharing/telemetry";
    let (status, _) = call(&stranger.admin, Method::DELETE, mirror_side, None).await;
    assert_eq!(status, 404);
    let (status, stopped) = call(&service.admin, Method::DELETE, mirror_side, None).await;
    assert_eq!(status, 204, "{stopped}");
    assert_eq!(telemetry_target(&acme).await, Value::Null);
    let (_, audit) = call(
        &service.admin,
        Method::GET,
        "/v1/audit?action=sharing",
        None,
    )
    .await;
    assert!(
        audit.to_string().contains("sharing.telemetry.stop"),
        "{audit}"
    );

    // Shared again, then the partnership ends: the share ends with it.
    let (status, _) = call(&acme.admin, Method::PUT, path, Some(share_body(&service))).await;
    assert_eq!(status, 200);
    assert_ne!(telemetry_target(&acme).await, Value::Null);
    let (status, _) = call(
        &acme.platform,
        Method::DELETE,
        &format!("/v1/partnerships/{id}"),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status}");
    assert_eq!(telemetry_target(&acme).await, Value::Null);
    unit.publish_point(&json!({"fuel_pct": 77}))
        .await
        .expect("stored");
    let (_, latest) = call(
        &service.admin,
        Method::GET,
        "/v1/assets/acme-ex1/latest",
        None,
    )
    .await;
    assert_eq!(
        latest["fuel_pct"], 33.0,
        "nothing after the end reaches the mirror"
    );
}
