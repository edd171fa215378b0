//! Tenant sharing to several targets and into partner organizations (rule 5, Perspio's
//! service-provider and cross-country cases): each target of an asset is added and removed
//! on its own (a `PUT` still replaces them all with one); without a partnership the source's
//! admin cannot reach another organization's account; with one it shares into it, that
//! account's admin may stop the share from the mirror's side, and the share ends with the
//! partnership.

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
    assert_eq!(telemetry_target(&acme).await, json!([]));
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
    assert_ne!(telemetry_target(&acme).await, json!([]));
    let (status, _) = call(
        &acme.platform,
        Method::DELETE,
        &format!("/v1/partnerships/{id}"),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status}");
    assert_eq!(telemetry_target(&acme).await, json!([]));
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

async fn latest_fuel(fleet: &Fleet, asset: &str) -> Value {
    let path = format!("/v1/assets/{asset}/latest");
    call(&fleet.admin, Method::GET, &path, None).await.1["fuel_pct"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_shares_into_several_targets_each_added_and_removed_on_its_own() {
    let gateway = TestGateway::start();
    let root = Fleet::create(&gateway, "Holding").await;
    let source = root.child(&gateway, "Contractor").await;
    let (a, b) = (
        root.child(&gateway, "Customer A").await,
        root.child(&gateway, "Customer B").await,
    );
    source.unit_with_asset("unit1", "ex1").await;
    let on = |rest: &str| {
        format!(
            "/v1/assets/ex1/sharing/{rest}?account_id={}",
            source.account_id
        )
    };
    let target = |fleet: &Fleet, id: &str| json!({"target_account_id": fleet.account_id.to_string(), "target_asset_id": id});
    for (fleet, id) in [(&a, "a-ex1"), (&b, "b-ex1")] {
        let (status, added) = call(
            &root.admin,
            Method::POST,
            &on("telemetry/targets"),
            Some(target(fleet, id)),
        )
        .await;
        assert_eq!(status, 200, "{added}");
    }
    let (_, sharing) = call(
        &root.admin,
        Method::GET,
        &on("").replace("sharing/?", "sharing?"),
        None,
    )
    .await;
    assert_eq!(
        sharing["telemetry"].as_array().map(Vec::len),
        Some(2),
        "{sharing}"
    );
    let unit = source.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 10}))
        .await
        .expect("stored");
    for (fleet, id) in [(&a, "a-ex1"), (&b, "b-ex1")] {
        let fuel = eventually(|| async {
            Some(latest_fuel(fleet, id).await).filter(|f| f == &json!(10.0))
        })
        .await;
        assert!(fuel.is_some(), "{id} shows the point");
    }

    // Removing one target leaves the other sharing.
    let one = on(&format!("telemetry/targets/{}/a-ex1", a.account_id));
    let (status, _) = call(&root.admin, Method::DELETE, &one, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&root.admin, Method::DELETE, &one, None).await;
    assert_eq!(status, 404, "no longer a target");
    unit.publish_point(&json!({"fuel_pct": 20}))
        .await
        .expect("stored");
    let fuel =
        eventually(|| async { Some(latest_fuel(&b, "b-ex1").await).filter(|f| f == &json!(20.0)) })
            .await;
    assert!(fuel.is_some(), "the other target goes on");
    assert_eq!(
        latest_fuel(&a, "a-ex1").await,
        json!(10.0),
        "the removed one stops"
    );

    // A PUT replaces every target with one; an unknown kind names no route.
    let (status, replaced) = call(
        &root.admin,
        Method::PUT,
        &on("telemetry"),
        Some(target(&a, "a-ex1")),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    let targets: Vec<_> = replaced["sharing"]["telemetry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target_asset_id"].clone())
        .collect();
    assert_eq!(targets, [json!("a-ex1")]);
    let (status, _) = call(
        &root.admin,
        Method::POST,
        &on("bogus/targets"),
        Some(target(&a, "x")),
    )
    .await;
    assert_eq!(status, 404);
}
