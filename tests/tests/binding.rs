//! Which unit reports for an asset, and what a unit's hardware supports: a swapped-in
//! unit gets the asset's keys and the old one an empty set, the asset keeps its history
//! across the swap, and no change may leave a live key on a unit that cannot use it (409
//! naming the keys).

use std::time::Duration;

use reqwest::Method;
use rumqttc::QoS;
use serde_json::{json, Value};
use tests::{call, Fleet, TestGateway};

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("time")
}

/// The key set `device` holds: what a fresh subscription to its `keys` topic delivers.
async fn key_set(fleet: &Fleet, device: &str) -> Value {
    let unit = fleet.connect(device).await;
    unit.subscribe(&format!("/tenants/{device}/keys"), QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let message = unit
        .next_message(Duration::from_secs(10))
        .await
        .expect("a key set on subscribe");
    message.json().expect("a JSON key set")
}

async fn keypad_key(fleet: &Fleet, gateway: &TestGateway, asset: &str) -> String {
    let now = gateway.now_ms();
    let body = json!({"personal": false, "asset_ids": [asset], "access_type": "keypad_pin",
        "valid_from": rfc3339(now), "valid_to": rfc3339(now + 3_600_000)});
    let (status, created) = call(&fleet.admin, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["key"]["id"].as_str().unwrap().to_owned()
}

async fn swap(fleet: &Fleet, asset: &str, device: Value) -> (u16, Value) {
    let path = format!("/v1/assets/{asset}/unit");
    call(
        &fleet.admin,
        Method::PUT,
        &path,
        Some(json!({"device_id": device})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_in_unit_gets_the_keys_and_the_asset_keeps_its_history() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("old1", "ex1").await;
    fleet.register("new1").await;
    let key = keypad_key(&fleet, &gateway, "ex1").await;
    let before = fleet.connect("old1").await;
    before
        .publish_point(&json!({"fuel_pct": 10}))
        .await
        .expect("stored");
    drop(before);

    let (status, answer) = swap(&fleet, "ex1", json!("new1")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["device_id"], "new1");
    let new_set = key_set(&fleet, "new1").await;
    assert_eq!(new_set["keys"][0]["id"], key.as_str(), "{new_set}");
    let old_set = key_set(&fleet, "old1").await;
    assert_eq!(
        old_set["keys"],
        json!([]),
        "the old unit's set empties: {old_set}"
    );

    // The asset's history spans both units; the old unit no longer reports for it.
    let after = fleet.connect("new1").await;
    after
        .publish_point(&json!({"fuel_pct": 90}))
        .await
        .expect("stored");
    let stray = fleet.connect("old1").await;
    let _ = stray.publish_point(&json!({"fuel_pct": 55})).await;
    let points = fleet.history("ex1", 2).await;
    let fuel: Vec<_> = points.iter().map(|p| p.fuel_pct).collect();
    assert_eq!(fuel, [Some(10.0), Some(90.0)], "{points:?}");
    let (_, asset) = call(&fleet.admin, Method::GET, "/v1/assets/ex1", None).await;
    assert_eq!(asset["device_id"], "new1", "{asset}");

    // `null` leaves the asset without a unit; the audit tells the story.
    let (status, _) = swap(&fleet, "ex1", Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(key_set(&fleet, "new1").await["keys"], json!([]));
    let (_, audit) = call(
        &fleet.admin,
        Method::GET,
        "/v1/audit?action=asset.unit",
        None,
    )
    .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(2), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_change_leaves_a_live_key_on_a_unit_that_cannot_use_it() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let plain = json!({"id": "bare1", "capabilities": {"bluetooth_relay": true}});
    let (status, _) = call(&fleet.admin, Method::POST, "/v1/devices", Some(plain)).await;
    assert_eq!(status, 201);
    let key = keypad_key(&fleet, &gateway, "ex1").await;

    // A unit without a keypad may not take over an asset with a keypad key.
    let (status, refused) = swap(&fleet, "ex1", json!("bare1")).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains(&key),
        "{refused}"
    );
    // Nor may the keypad be taken off the unit that holds it.
    let caps = json!({"capabilities": {"bluetooth_relay": true, "dualid": true}});
    let (status, refused) = call(
        &fleet.admin,
        Method::PATCH,
        "/v1/devices/unit1",
        Some(caps.clone()),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().contains(&key),
        "{refused}"
    );

    // Once the key is gone, both go through.
    let (status, _) = call(
        &fleet.admin,
        Method::DELETE,
        &format!("/v1/keys/{key}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, changed) =
        call(&fleet.admin, Method::PATCH, "/v1/devices/unit1", Some(caps)).await;
    assert_eq!(
        (status, changed["capabilities"]["keypad"].clone()),
        (200, json!(false))
    );
    let path = "/v1/audit?action=device.capabilities";
    let (_, audit) = call(&fleet.admin, Method::GET, path, None).await;
    let last = &audit["items"].as_array().expect("items").last().cloned();
    assert_eq!(
        last.as_ref().map(|entry| entry["after"].clone()),
        Some(json!("bluetooth_relay, dualid")),
        "the fitted hardware in words: {audit}"
    );
    let (status, _) = swap(&fleet, "ex1", json!("bare1")).await;
    assert_eq!(status, 200);

    // A unit reports for one asset; a stranger's unit is unknown; the field is required.
    let (status, refused) = swap(&fleet, "ex1", json!("unit2")).await;
    assert_eq!(status, 409, "{refused}");
    let other = Fleet::create(&gateway, "Other").await;
    other.register("theirs1").await;
    assert_eq!(swap(&fleet, "ex1", json!("theirs1")).await.0, 404);
    let (status, refused) = call(
        &fleet.admin,
        Method::PUT,
        "/v1/assets/ex1/unit",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, refused["field"].clone()),
        (422, json!("device_id"))
    );
}

async fn key_on(fleet: &Fleet, gateway: &TestGateway, assets: &[&str]) -> String {
    let now = gateway.now_ms();
    let body = json!({"personal": false, "asset_ids": assets, "access_type": "digital_key",
        "valid_from": rfc3339(now), "valid_to": rfc3339(now + 3_600_000)});
    let (status, created) = call(&fleet.admin, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["key"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_asset_takes_its_grants_keys_and_streams_with_it_first() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let depot = fleet.child(&gateway, "Depot").await;
    assert_eq!(fleet.grant(&depot, &["ex1"], json!({})).await.status, 201);
    let alone = key_on(&fleet, &gateway, &["ex1"]).await;
    let shared = key_on(&fleet, &gateway, &["ex1", "ex2"]).await;
    let unit = fleet.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 40}))
        .await
        .expect("stored");
    let mut grantee_stream = depot
        .admin
        .stream("/v1/assets/ex1/stream")
        .await
        .expect("stream");

    let (status, deleted) = call(&fleet.admin, Method::DELETE, "/v1/assets/ex1", None).await;
    assert_eq!(status, 200, "{deleted}");
    assert!(
        tests::stream_ended(&mut grantee_stream, Duration::from_secs(5)).await,
        "the grantee's stream of the asset ends"
    );
    for client in [&fleet.admin, &depot.admin] {
        let (status, _) = call(client, Method::GET, "/v1/assets/ex1", None).await;
        assert_eq!(status, 404);
    }
    let (_, grants) = call(&depot.admin, Method::GET, "/v1/visibility/grants", None).await;
    assert_eq!(grants["items"], json!([]), "{grants}");

    // A key of that asset alone is gone; a key of more assets keeps the others.
    let (_, keys) = call(&fleet.admin, Method::GET, "/v1/keys", None).await;
    let items = keys["items"].as_array().unwrap();
    assert!(
        items.iter().all(|key| key["id"] != alone.as_str()),
        "{keys}"
    );
    let kept = items
        .iter()
        .find(|key| key["id"] == shared.as_str())
        .expect("kept");
    assert_eq!(kept["asset_ids"], json!(["ex2"]));
    assert_eq!(key_set(&fleet, "unit1").await["keys"], json!([]));
    assert_eq!(
        key_set(&fleet, "unit2").await["keys"][0]["id"],
        shared.as_str()
    );

    // Every end is audited; a new asset under the old id starts with no history.
    let (_, audit) = call(&fleet.admin, Method::GET, "/v1/audit", None).await;
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for action in ["asset.delete", "grant.remove", "key.delete", "key.update"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    let body = json!({"id": "ex1", "name": "again", "device_id": "unit1"});
    let (status, _) = call(&fleet.admin, Method::POST, "/v1/assets", Some(body)).await;
    assert_eq!(status, 201);
    let (status, history) = call(&fleet.admin, Method::GET, "/v1/assets/ex1/telemetry", None).await;
    assert_eq!(
        (status, history["items"].clone()),
        (200, json!([])),
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_edit_is_audited_in_words() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let body = json!({"serial": "SN-1"});
    let (status, _) = call(&fleet.admin, Method::PATCH, "/v1/assets/ex1", Some(body)).await;
    assert_eq!(status, 200);
    let path = "/v1/audit?action=asset.update";
    let (_, audit) = call(&fleet.admin, Method::GET, path, None).await;
    let entry = &audit["items"][0];
    let before = entry["before"].as_str().unwrap_or_default();
    let after = entry["after"].as_str().unwrap_or_default();
    assert!(before.ends_with(", no serial"), "{audit}");
    assert!(after.ends_with(", serial \"SN-1\""), "{audit}");
    assert!(!format!("{before}{after}").contains("Some("), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_unit_is_told_its_key_set_is_empty_before_its_session_closes() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("u1", "ex1").await;
    let key = keypad_key(&fleet, &gateway, "ex1").await;
    let unit = fleet.connect("u1").await;
    unit.subscribe("/tenants/u1/keys", QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let held = unit
        .next_message(Duration::from_secs(10))
        .await
        .expect("the key set on subscribe");
    let held = held.json().expect("a JSON key set");
    assert_eq!(held["keys"][0]["id"], key.as_str(), "{held}");

    let (status, body) = call(&fleet.admin, Method::DELETE, "/v1/devices/u1", None).await;
    assert_eq!(status, 204, "{body}");
    // The unit can never connect again (its certificates are revoked): the empty set is
    // the last thing it hears, or it would go on opening for the key until it ends.
    let emptied = unit
        .next_message(Duration::from_secs(10))
        .await
        .expect("an empty key set before the close");
    let emptied = emptied.json().expect("a JSON key set");
    assert_eq!(emptied["keys"], json!([]), "{emptied}");
    assert!(
        emptied["version"].as_u64() > held["version"].as_u64(),
        "{emptied} after {held}"
    );
}
