//! Guards against a full disk taking the gateway down until a restart. A test's
//! `FaultSwitch` makes the store's backend fail writes as a full disk would (no root, no
//! tmpfs); the real gateway must then report the store on `/healthz` (503), refuse HTTP
//! changes with 503 naming the store, withhold the PUBACK of a unit's QoS 1 point, and,
//! once space returns, reopen the store in process: healthy again, the change accepted,
//! and the held point stored and acknowledged.

use std::time::Duration;

use gateway::FaultSwitch;
use reqwest::Method;
use rumqttc::mqttbytes::v4::Packet;
use serde_json::json;
use tests::raw::RawClient;
use tests::{eventually, Fleet, TestGateway, WAIT};

/// `/healthz` without a token: its status and body.
async fn health(gateway: &TestGateway) -> (u16, serde_json::Value) {
    let anonymous = simulator::ApiClient::new(&gateway.http_base(), "").expect("client");
    anonymous.get_raw("/healthz").await.expect("answer")
}

async fn create_asset(admin: &simulator::ApiClient, id: &str) -> simulator::api::RawResponse {
    let body = json!({"id": id, "name": format!("machine {id}")});
    admin
        .request_raw(Method::POST, "/v1/assets", Some(&body))
        .await
        .expect("answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_refused_and_recovered_without_a_restart() {
    let disk = FaultSwitch::new();
    let switch = disk.clone();
    let gateway = TestGateway::start_with(move |config| config.store_faults = Some(switch.clone()));
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    assert_eq!(health(&gateway).await, (200, json!({"status": "ok"})));
    let (mut unit, connack) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 30, false).await;
    assert!(connack.is_some(), "the unit connected");

    disk.fill_disk();
    let point = br#"{"fuel_pct":42}"#;
    unit.publish("/tenants/unit1/telemetry", point, 11, false)
        .await;
    let (status, body) =
        eventually(|| async { Some(health(&gateway).await).filter(|(status, _)| *status == 503) })
            .await
            .expect("/healthz reports the failing store");
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["component"], "store", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("no space left"), "{body}");
    assert!(body["since_ms"].as_u64().is_some_and(|ms| ms > 0), "{body}");
    assert!(
        unit.recv(Duration::from_millis(500)).await.is_none(),
        "no PUBACK while the point is not stored"
    );
    let refused = create_asset(&fleet.admin, "ex2").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(
        refused.content_type.as_deref(),
        Some("application/problem+json")
    );
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("store"), "names the store: {refused:?}");

    disk.free_disk();
    let acked = unit.recv(WAIT).await;
    assert!(
        matches!(acked, Some(Packet::PubAck(ref ack)) if ack.pkid == 11),
        "the held point is acknowledged once stored: {acked:?}"
    );
    assert_eq!(health(&gateway).await, (200, json!({"status": "ok"})));
    let created = create_asset(&fleet.admin, "ex2").await;
    assert_eq!(created.status, 201, "{created:?}");
    let history = fleet.history("ex1", 1).await;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].fuel_pct, Some(42.0));
    for counter in [
        "fleetgate_store_write_failures_total",
        "fleetgate_store_reopens_total",
    ] {
        let line = fleet.metric_line(counter).await.expect("counted");
        let count: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        assert!(count >= 1.0, "{line}");
    }
}

/// A gateway stopped in the middle of an outage stops promptly without acknowledging the
/// held point, and the next start on the same data dir opens the recovered file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_stopped_during_an_outage_starts_again_on_its_data() {
    let disk = FaultSwitch::new();
    let switch = disk.clone();
    let mut gateway =
        TestGateway::start_with(move |config| config.store_faults = Some(switch.clone()));
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (mut unit, _) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 30, false).await;

    disk.fill_disk();
    unit.publish("/tenants/unit1/telemetry", br#"{"fuel_pct":7}"#, 3, false)
        .await;
    let down =
        eventually(|| async { Some(health(&gateway).await).filter(|(status, _)| *status == 503) })
            .await;
    assert!(down.is_some(), "the outage is reported");
    let stopping = std::time::Instant::now();
    gateway.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "stopped promptly"
    );
    let last = unit.recv(Duration::from_secs(1)).await;
    assert!(
        !matches!(last, Some(Packet::PubAck(_))),
        "never acknowledged unstored: {last:?}"
    );

    disk.free_disk();
    gateway.restart();
    assert_eq!(health(&gateway).await, (200, json!({"status": "ok"})));
    // The HTTP port changed with the restart; the admin's token did not.
    let admin =
        simulator::ApiClient::new(&gateway.http_base(), fleet.admin_token.clone()).expect("client");
    assert_eq!(create_asset(&admin, "ex2").await.status, 201);
}
