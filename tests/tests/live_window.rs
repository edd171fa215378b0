//! One window rule for live and history (rule 2 for grants, rule 5 for mirrors): whether an
//! account is shown a point is judged by the point's own `ts`, never by when it arrives.
//! A unit's buffered upload stamped before a grant started reaches the owner but not the
//! grantee — not on its SSE stream, not on its MQTT topic, not in its history or latest;
//! a point stamped after a grant's end is not the grantee's either, even while the grant
//! is still in force; and a mirror is shown only what was stamped while it was shared.

use std::time::Duration;

use serde_json::json;
use simulator::api::SseStream;
use simulator::SimUnit;
use tests::{Fleet, TestGateway, WAIT};

const HOUR_MS: u64 = 3_600_000;

async fn stream_of(fleet: &Fleet, asset: &str) -> SseStream {
    let path = format!("/v1/assets/{asset}/stream?account_id={}", fleet.account_id);
    fleet.admin.stream(&path).await.expect("stream opens")
}

/// The `fuel_pct` of every point the stream delivers until it is quiet for 500 ms.
async fn drain(stream: &mut SseStream) -> Vec<f64> {
    let mut out = Vec::new();
    while let Some(Ok(point)) = stream.next_point(Duration::from_millis(500)).await {
        out.extend(point.fuel_pct);
    }
    out
}

async fn publish(unit: &SimUnit, point: serde_json::Value) {
    unit.publish_point(&point).await.expect("acknowledged");
}

fn fuels(points: &[simulator::api::Point]) -> Vec<f64> {
    points.iter().filter_map(|point| point.fuel_pct).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffered_point_from_before_a_grant_is_the_owners_alone_live_and_in_history() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let granted = acme.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let mut grantee = stream_of(&depot, "ex1").await;
    let mut owner = stream_of(&acme, "ex1").await;
    let integration = depot.integration_observer().await;
    let topic = format!("/tenants/{}/assets/ex1/telemetry", depot.account_id);
    integration
        .subscribe(&topic, rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribed");

    let hour_ago = gateway.now_ms() - HOUR_MS;
    publish(&unit, json!({"ts": hour_ago, "fuel_pct": 1})).await;
    publish(&unit, json!({"fuel_pct": 2})).await;
    assert_eq!(drain(&mut owner).await, [1.0, 2.0], "the owner sees both");
    assert_eq!(
        drain(&mut grantee).await,
        [2.0],
        "stamped before the grant: hidden live"
    );
    let message = integration
        .next_message(WAIT)
        .await
        .expect("on the MQTT topic");
    assert_eq!(
        message.json().expect("json")["fuel_pct"],
        2.0,
        "and on MQTT"
    );
    assert!(integration
        .next_message(Duration::from_millis(300))
        .await
        .is_none());
    assert_eq!(
        fuels(&depot.history("ex1", 1).await),
        [2.0],
        "as in history"
    );
    assert_eq!(fuels(&acme.history("ex1", 2).await), [1.0, 2.0]);

    // The newest arrival is stamped before the grant: the grantee's latest stays 2.
    publish(&unit, json!({"ts": hour_ago + 1, "fuel_pct": 3})).await;
    let (_, latest) = depot
        .admin
        .get_raw("/v1/assets/ex1/latest")
        .await
        .expect("latest");
    assert_eq!(latest["fuel_pct"], 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_stamped_after_a_grants_end_is_not_the_grantees_while_it_is_in_force() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    acme.unit_with_asset("unit1", "ex1").await;
    let unit = acme.connect("unit1").await;
    let now = gateway.now_ms();
    let until =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now + 60_000) * 1_000_000)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("time");
    let granted = acme.grant(&depot, &["ex1"], json!({"until": until})).await;
    assert_eq!(granted.status, 201, "{granted:?}");
    let mut grantee = stream_of(&depot, "ex1").await;
    let mut owner = stream_of(&acme, "ex1").await;

    // Two minutes ahead (inside the five-minute allowance for unit clocks): after the end.
    publish(&unit, json!({"ts": now + 120_000, "fuel_pct": 1})).await;
    // Stamped after the grant was made, so inside its window (it starts when made).
    let inside = gateway.now_ms();
    publish(&unit, json!({"ts": inside, "fuel_pct": 2})).await;
    assert_eq!(drain(&mut owner).await, [1.0, 2.0]);
    assert_eq!(
        drain(&mut grantee).await,
        [2.0],
        "stamped after the end: hidden live"
    );
    assert_eq!(
        fuels(&depot.history("ex1", 1).await),
        [2.0],
        "as in history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_is_shown_only_what_was_stamped_while_it_was_shared() {
    let gateway = TestGateway::start();
    let holding = Fleet::create(&gateway, "Holding").await;
    let source = holding.child(&gateway, "Contractor").await;
    let target = holding.child(&gateway, "Customer").await;
    source.unit_with_asset("unit1", "ex1").await;
    let unit = source.connect("unit1").await;
    let share = format!(
        "/v1/assets/ex1/sharing/telemetry?account_id={}",
        source.account_id
    );
    let body = json!({"target_account_id": target.account_id.to_string(), "target_asset_id": "m1"});
    let shared = holding
        .admin
        .request_raw(reqwest::Method::PUT, &share, Some(&body))
        .await
        .expect("answer");
    assert_eq!(shared.status, 200, "{shared:?}");
    let mut mirror = stream_of(&target, "m1").await;
    let mut own = stream_of(&source, "ex1").await;

    publish(
        &unit,
        json!({"ts": gateway.now_ms() - HOUR_MS, "fuel_pct": 1}),
    )
    .await;
    publish(&unit, json!({"fuel_pct": 2})).await;
    assert_eq!(drain(&mut own).await, [1.0, 2.0]);
    assert_eq!(
        drain(&mut mirror).await,
        [2.0],
        "stamped before the share: hidden live"
    );
    assert_eq!(
        fuels(&target.history("m1", 1).await),
        [2.0],
        "as in history"
    );
}
