//! An account's integration gets only what the account may see when the point leaves, not
//! when it was queued: a persistent session away while a grant ends finds none of that
//! asset's queued points on its return (access that ends is gone everywhere, the MQTT
//! integration included), while the points of assets it still sees wait for it as before.

use reqwest::Method;
use rumqttc::mqttbytes::v4::Packet;
use serde_json::{json, Value};
use tests::raw::RawClient;
use tests::{call, Fleet, TestGateway};

/// The depot's integration subscribes with a persistent session and goes away; answers
/// what it connects with again.
async fn away_integration(gateway: &TestGateway, depot: &Fleet) -> (String, u16) {
    let plain = gateway.mqtt_plain();
    RawClient::away_integration(&plain, &depot.account_id.to_string()).await;
    plain
}

/// One point from each of unit1 (ex1, fuel 11) and unit2 (ex2, fuel 22), acknowledged.
async fn publish_both(owner: &Fleet) {
    for (unit, fuel) in [("unit1", 11), ("unit2", 22)] {
        owner
            .connect(unit)
            .await
            .publish_point(&json!({"fuel_pct": fuel}))
            .await
            .expect("acknowledged");
    }
}

/// The integration back on its persistent session: the (asset, fuel) of what it gets.
async fn on_return(plain: &(String, u16), depot: &Fleet) -> Vec<(Value, Value)> {
    let account = depot.account_id.to_string();
    let (mut back, ack) = RawClient::connect(plain, &account, 30, false).await;
    assert!(ack.expect("connack").session_present);
    let mut got = Vec::new();
    while let Some(packet) = back.recv(std::time::Duration::from_secs(2)).await {
        if let Packet::Publish(publish) = packet {
            let point: Value = serde_json::from_slice(&publish.payload).expect("json");
            got.push((point["asset_id"].clone(), point["fuel_pct"].clone()));
        }
    }
    got
}

async fn withdrawn(gateway: &TestGateway) -> String {
    let metrics = reqwest::get(format!("{}/metrics", gateway.http_base()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    metrics
        .lines()
        .filter(|line| line.starts_with("fleetgate_mqtt_integration_withdrawn_total"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_queued_for_an_integration_leave_only_if_the_account_still_sees_them() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    owner.unit_with_asset("unit2", "ex2").await;
    let granted = owner.grant(&depot, &["ex1", "ex2"], json!({})).await;
    assert_eq!(granted.status, 201, "{}", granted.body);
    let plain = away_integration(&gateway, &depot).await;
    publish_both(&owner).await;

    owner.remove_grants(&depot, &["ex1"]).await;

    // Back: only ex2's point is there; ex1's went with the grant.
    let got = on_return(&plain, &depot).await;
    assert_eq!(got, vec![(json!("ex2"), json!(22.0))], "{got:?}");
    assert_eq!(
        withdrawn(&gateway).await,
        "fleetgate_mqtt_integration_withdrawn_total 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_that_runs_out_takes_its_queued_points_with_it() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    owner.unit_with_asset("unit2", "ex2").await;
    let until = simulator::telemetry::rfc3339_from_ms(gateway.now_ms() + 3_000).expect("time");
    let brief = owner.grant(&depot, &["ex1"], json!({"until": until})).await;
    assert_eq!(brief.status, 201, "{}", brief.body);
    let lasting = owner.grant(&depot, &["ex2"], json!({})).await;
    assert_eq!(lasting.status, 201, "{}", lasting.body);
    let plain = away_integration(&gateway, &depot).await;
    publish_both(&owner).await;

    // The scheduler ends the grant at `until`; then the depot no longer sees ex1.
    let ended = tests::eventually(|| async {
        let (status, _) = call(&depot.admin, Method::GET, "/v1/assets/ex1/latest", None).await;
        (status == 404).then_some(())
    })
    .await;
    assert!(ended.is_some(), "the grant ended");
    let got = on_return(&plain, &depot).await;
    assert_eq!(got, vec![(json!("ex2"), json!(22.0))], "{got:?}");
}
