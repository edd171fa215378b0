//! Keys end to end (rule 6, DESIGN section 4 key topics): a key change reaches the unit's
//! retained key set before the answer, which names delivered and pending units; a unit
//! that reconnects gets the current set; versions only rise, across restarts too; expired
//! keys drop off at `valid_to`; access events come back; and every refusal.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use rumqttc::QoS;
use serde_json::{json, Value};
use simulator::SimUnit;
use tests::{call, eventually, publish_acked, Fleet, TestGateway, WAIT};

fn rfc3339(ms: u64) -> String {
    simulator::telemetry::rfc3339_from_ms(ms).expect("time")
}

/// A unit that holds its key set like firmware: it acknowledges every version it receives.
/// Returns the latest set it received, for inspection.
async fn key_holder(fleet: &Fleet, device: &str) -> (Arc<SimUnit>, Arc<tokio::sync::Mutex<Value>>) {
    let unit = Arc::new(fleet.connect(device).await);
    let topic = format!("/tenants/{device}/keys");
    unit.subscribe(&topic, QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    let held = Arc::new(tokio::sync::Mutex::new(Value::Null));
    let (reader, store, ack_topic) = (
        unit.clone(),
        held.clone(),
        format!("/tenants/{device}/keys/ack"),
    );
    tokio::spawn(async move {
        for _ in 0..10_000 {
            let Some(message) = reader.next_message(Duration::from_secs(30)).await else {
                break;
            };
            let Ok(set) = message.json() else { continue };
            let ack = json!({"version": set["version"]}).to_string().into_bytes();
            *store.lock().await = set;
            if let Ok(waiter) = reader
                .publish(&ack_topic, ack, QoS::AtLeastOnce, false)
                .await
            {
                let _ = waiter.wait_timeout(Duration::from_secs(5)).await;
            }
        }
    });
    (unit, held)
}

fn key_body(assets: &[&str], access_type: &str, from: u64, to: u64) -> Value {
    json!({"personal": false, "asset_ids": assets, "access_type": access_type,
           "valid_from": rfc3339(from), "valid_to": rfc3339(to)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reaches_online_units_before_the_answer_and_offline_units_on_reconnect() {
    let mut gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let (_unit1, held) = key_holder(&fleet, "unit1").await;
    let now = gateway.now_ms();

    let (status, created) = call(
        &fleet.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(
            &["ex1", "ex2"],
            "keypad_pin",
            now,
            now + 3_600_000,
        )),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let pin = created["key"]["credential"]
        .as_str()
        .expect("pin")
        .to_owned();
    assert!(
        pin.len() == 6 && pin.chars().all(|c| c.is_ascii_digit()),
        "a generated 6-digit PIN: {pin}"
    );
    assert_eq!(created["distribution"]["delivered"], json!(["unit1"]));
    assert_eq!(
        created["distribution"]["pending"],
        json!(["unit2"]),
        "unit2 is offline"
    );
    let set = held.lock().await.clone();
    assert_eq!(set["version"], 1);
    assert_eq!(set["keys"][0]["credential"], pin.as_str());
    let (_, status1) = fleet
        .admin
        .get_raw("/v1/devices/unit1/status")
        .await
        .expect("status");
    assert_eq!(status1["key_version_acked"], 1);

    // unit2 connects later and receives the retained set; its ack is recorded.
    let (_unit2, held2) = key_holder(&fleet, "unit2").await;
    let acked = eventually(|| async {
        let (_, status) = fleet
            .admin
            .get_raw("/v1/devices/unit2/status")
            .await
            .expect("status");
        (status["key_version_acked"] == 1).then_some(())
    })
    .await;
    assert!(acked.is_some(), "unit2 acknowledged after reconnecting");
    assert_eq!(held2.lock().await["keys"][0]["credential"], pin.as_str());

    // A second keypad key on the same asset never reuses the PIN.
    let (_, second) = call(
        &fleet.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "keypad_pin", now, now + 3_600_000)),
    )
    .await;
    assert_ne!(second["key"]["credential"], pin.as_str());
    assert_eq!(held.lock().await["version"], 2);

    // Versions only rise, across a restart too; the retained set is there after it.
    drop(_unit1);
    drop(_unit2);
    gateway.restart();
    let fleet_admin = fleet.admin.rebase(&gateway.http_base());
    let fleet = Fleet {
        admin: fleet_admin,
        tls_broker: gateway.mqtt_tls(),
        ..fleet
    };
    let (_unit1, held) = key_holder(&fleet, "unit1").await;
    let retained = eventually(|| async { (held.lock().await["version"] == 2).then_some(()) }).await;
    assert!(
        retained.is_some(),
        "the retained set survives the gateway's restart"
    );
    let id = second["key"]["id"].as_str().expect("id");
    let (status, edited) = call(
        &fleet.admin,
        Method::PATCH,
        &format!("/v1/keys/{id}"),
        Some(json!({"description": "night shift", "valid_to": rfc3339(now + 7_200_000)})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["key"]["description"], "night shift");
    assert_eq!(edited["distribution"]["delivered"], json!(["unit1"]));
    assert_eq!(
        held.lock().await["version"],
        3,
        "the version keeps rising after a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_drop_off_at_valid_to() {
    let gateway = TestGateway::start_with_manual_clock();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (_unit, held) = key_holder(&fleet, "unit1").await;
    let now = gateway.now_ms();
    let (status, _) = call(
        &fleet.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "digital_key", now, now + 60_000)),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(&fleet.admin, Method::POST, "/v1/keys", Some(json!({"personal": false, "asset_ids": ["ex1"], "access_type": "dualid_tag", "credential": "TAG42", "valid_from": rfc3339(now + 30_000), "valid_to": rfc3339(now + 3_600_000)}))).await;
    assert_eq!(status, 201, "a future key is in the set already");
    assert_eq!(held.lock().await["keys"].as_array().map(Vec::len), Some(2));
    gateway.advance(Duration::from_secs(61));
    let dropped = eventually(|| async {
        let set = held.lock().await.clone();
        (set["keys"].as_array().map(Vec::len) == Some(1)).then_some(set)
    })
    .await
    .expect("the expired key dropped off");
    assert_eq!(dropped["keys"][0]["credential"], "TAG42");
    assert_eq!(dropped["version"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_events_come_back_to_the_owner() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    let mut live = fleet.admin.stream("/v1/stream").await.expect("stream");
    let ts = gateway.now_ms() - 1000;
    let event =
        json!({"ts": ts, "key_id": "key1", "result": "denied", "reason": "expired"}).to_string();
    publish_acked(&unit, "/tenants/unit1/events/access", event.into_bytes()).await;
    let received = live.next_timeout(WAIT).await.expect("live").expect("event");
    assert_eq!(received.event, "access");
    assert_eq!(received.data["result"], "denied");
    let events = eventually(|| async {
        let (_, body) = fleet
            .admin
            .get_raw("/v1/assets/ex1/access-events")
            .await
            .expect("events");
        body["items"]
            .as_array()
            .filter(|items| !items.is_empty())
            .cloned()
    })
    .await
    .expect("stored");
    assert_eq!(events[0]["key_id"], "key1");
    assert_eq!(events[0]["ts_ms"], ts);
    // A malformed event is refused and shown in the status, like telemetry.
    publish_acked(
        &unit,
        "/tenants/unit1/events/access",
        br#"{"result":"maybe"}"#.to_vec(),
    )
    .await;
    let error = eventually(|| async {
        let (_, status) = fleet
            .admin
            .get_raw("/v1/devices/unit1/status")
            .await
            .expect("status");
        status["last_error"]
            .as_str()
            .filter(|e| e.contains("result"))
            .map(str::to_owned)
    })
    .await;
    assert!(error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_refusals() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    owner.unit_with_asset("unit1", "ex1").await;
    let (status, _) = call(
        &owner.admin,
        Method::POST,
        "/v1/devices",
        Some(json!({"id": "plain1", "capabilities": {"keypad": true}})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &owner.admin,
        Method::POST,
        "/v1/assets",
        Some(json!({"id": "ex2", "name": "x", "device_id": "plain1"})),
    )
    .await;
    assert_eq!(status, 201);
    let now = gateway.now_ms();
    let hour = 3_600_000;

    let (status, problem) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1", "ex2"], "dualid_tag", now, now + hour)),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1", "ex2"], "digital_key", now, now + hour)),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("ex2"),
        "names the asset: {problem}"
    );
    let (status, problem) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "keypad_pin", now + hour, now)),
    )
    .await;
    assert_eq!((status, problem["field"].clone()), (422, json!("valid_to")));
    let (status, problem) = call(&owner.admin, Method::POST, "/v1/keys", Some(json!({"personal": true, "asset_ids": ["ex1"], "access_type": "keypad_pin", "valid_from": rfc3339(now), "valid_to": rfc3339(now + hour)}))).await;
    assert_eq!(
        (status, problem["field"].clone()),
        (422, json!("operator_id"))
    );
    let (status, problem) = call(&owner.admin, Method::POST, "/v1/keys", Some(json!({"personal": false, "asset_ids": ["ex1"], "access_type": "keypad_pin", "credential": "1234", "valid_from": rfc3339(now), "valid_to": rfc3339(now + hour)}))).await;
    assert_eq!(
        (status, problem["field"].clone()),
        (422, json!("credential"))
    );
    let (status, _) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "laser", now, now + hour)),
    )
    .await;
    assert_eq!(status, 422);
    let viewer = owner.user(simulator::api::UserRole::Viewer).await;
    let (status, _) = call(
        &viewer,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "keypad_pin", now, now + hour)),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &depot.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "keypad_pin", now, now + hour)),
    )
    .await;
    assert_eq!(status, 404, "another account's asset");
    let granted = owner.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201);
    let (status, problem) = call(
        &depot.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "keypad_pin", now, now + hour)),
    )
    .await;
    assert_eq!(
        status, 403,
        "a grantee never keys a shared asset: {problem}"
    );

    // After creation only valid_to and the description change; bulk calls are all-or-nothing.
    let (_, created) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys",
        Some(key_body(&["ex1"], "keypad_pin", now, now + hour)),
    )
    .await;
    let id = created["key"]["id"].as_str().expect("id").to_owned();
    let (status, problem) = call(
        &owner.admin,
        Method::PATCH,
        &format!("/v1/keys/{id}"),
        Some(json!({"access_type": "digital_key"})),
    )
    .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (422, json!("access_type"))
    );
    let (status, dry) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys/bulk-delete?dry_run=true",
        Some(json!({"ids": [id]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(dry["dry_run"], true);
    let (status, _) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys/bulk-delete",
        Some(json!({"ids": [id, "keynope"]})),
    )
    .await;
    assert_eq!(status, 404);
    let (_, listed) = owner.admin.get_raw("/v1/keys").await.expect("list");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "nothing deleted by the dry run or the refused call"
    );
    let (status, edited) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys/bulk-edit",
        Some(json!({"ids": [id], "valid_to": rfc3339(now + 2 * hour)})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    let (status, _) = call(
        &owner.admin,
        Method::POST,
        "/v1/keys/bulk-delete",
        Some(json!({"ids": [id]})),
    )
    .await;
    assert_eq!(status, 200);
}

/// The key wizard's review: `?dry_run=true` checks every rule and answers the key and the
/// units it would reach, storing nothing and pushing nothing; its refusals are the real
/// call's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reviews_a_key_without_storing_or_pushing_it() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let (_unit1, held) = key_holder(&fleet, "unit1").await;
    let now = gateway.now_ms();
    let body = key_body(&["ex1", "ex2"], "digital_key", now, now + 3_600_000);
    let (status, review) = call(
        &fleet.admin,
        Method::POST,
        "/v1/keys?dry_run=true",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 200, "{review}");
    assert_eq!(review["dry_run"], true);
    assert_eq!(review["distribution"]["pending"], json!(["unit1", "unit2"]));
    assert_eq!(review["distribution"]["delivered"], json!([]));
    let (_, listed) = call(&fleet.admin, Method::GET, "/v1/keys", None).await;
    assert_eq!(listed["items"], json!([]), "nothing stored");
    // The set the unit got when it subscribed (version 0), and nothing after it.
    let first = tests::eventually(|| async {
        let version = held.lock().await["version"].as_u64();
        version.filter(|v| *v == 0)
    })
    .await;
    assert_eq!(first, Some(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(held.lock().await["version"], 0, "nothing pushed");
    let backwards = key_body(&["ex1"], "digital_key", now + 3_600_000, now);
    let (status, problem) = call(
        &fleet.admin,
        Method::POST,
        "/v1/keys?dry_run=true",
        Some(backwards),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = call(
        &fleet.admin,
        Method::POST,
        "/v1/keys?dry_run=maybe",
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("dry_run")),
        "{problem}"
    );
    let (status, created) = call(&fleet.admin, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(
        (status, created["dry_run"].as_bool()),
        (201, Some(false)),
        "{created}"
    );
    assert_eq!(created["distribution"]["delivered"], json!(["unit1"]));
}
