//! Stamps and readings the field relies on: two readings stamped in one millisecond are
//! both kept (history, live and counts alike) while a redelivery of one is stored once; the
//! gateway's own stamps come from its clock, never from stored data (a unit whose clock
//! ran ahead cannot drag them into the future across a restart); and the device status
//! shows how far a unit's clock runs from the gateway's.

use std::time::Duration;

use serde_json::{json, Value};
use simulator::api::{AssetId, HistoryQuery};
use tests::{Fleet, TestGateway};

async fn history(admin: &simulator::ApiClient) -> Vec<simulator::api::Point> {
    admin
        .telemetry_all(&AssetId::new("ex1"), &HistoryQuery::default())
        .await
        .expect("history")
}

async fn status(admin: &simulator::ApiClient) -> Value {
    let (status, body) = admin
        .get_raw("/v1/devices/unit1/status")
        .await
        .expect("status");
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_readings_in_one_millisecond_are_both_kept_and_a_redelivery_once() {
    let gateway = TestGateway::start_with_manual_clock();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    let mut live = fleet
        .admin
        .stream("/v1/assets/ex1/stream")
        .await
        .expect("stream");
    let t = gateway.now_ms() - 1_000;
    for fuel in [10, 90] {
        let point = json!({"ts": t, "fuel_pct": fuel});
        unit.publish_point(&point).await.expect("acked");
    }
    // The same reading again (a unit resending it): one reading, not two.
    let again = json!({"ts": t, "fuel_pct": 90});
    unit.publish_point(&again).await.expect("acked");
    // Unstamped points share the (manual, unmoving) clock's millisecond: all kept too.
    for fuel in [1, 2] {
        let point = json!({"fuel_pct": fuel});
        unit.publish_point(&point).await.expect("acked");
    }

    let mut seen = Vec::new();
    while let Some(Ok(point)) = live.next_point(Duration::from_millis(500)).await {
        seen.extend(point.fuel_pct);
    }
    assert_eq!(seen[..2], [10.0, 90.0], "live shows both readings of T");
    let stored = tests::eventually(|| async {
        Some(history(&fleet.admin).await).filter(|points| points.len() >= 4)
    })
    .await
    .expect("stored");
    let fuels: Vec<_> = stored.iter().map(|p| (p.ts_ms, p.fuel_pct)).collect();
    let now = gateway.now_ms();
    assert_eq!(
        fuels,
        [
            (t, Some(10.0)),
            (t, Some(90.0)),
            (now, Some(1.0)),
            (now, Some(2.0))
        ],
        "both readings of each millisecond, in arrival order; the resent one once"
    );
    let latest = fleet
        .admin
        .get_raw("/v1/assets/ex1/latest")
        .await
        .expect("latest");
    assert_eq!(
        latest.1["fuel_pct"], 2.0,
        "the newest reading of the newest millisecond"
    );
    // A page of one never splits a millisecond, and the next page goes on after it.
    let (_, page) = fleet
        .admin
        .get_raw("/v1/assets/ex1/telemetry?limit=1")
        .await
        .expect("page");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2), "{page}");
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let path = format!("/v1/assets/ex1/telemetry?limit=1&cursor={cursor}");
    let (_, next) = fleet.admin.get_raw(&path).await.expect("page");
    assert_eq!(next["items"][0]["fuel_pct"], 1.0, "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_stamps_never_run_ahead_of_its_clock_and_status_shows_the_skew() {
    let mut gateway = TestGateway::start_with_manual_clock();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    let ahead = gateway.now_ms() + 240_000;
    unit.publish_point(&json!({"ts": ahead, "fuel_pct": 1}))
        .await
        .expect("inside the five-minute allowance");
    let body = status(&fleet.admin).await;
    assert_eq!(
        body["clock_offset_ms"], 240_000,
        "the unit runs four minutes ahead"
    );
    // A buffered upload from an hour ago says nothing about the unit's clock.
    let hour_ago = gateway.now_ms() - 3_600_000;
    unit.publish_point(&json!({"ts": hour_ago, "fuel_pct": 0}))
        .await
        .expect("acked");
    assert_eq!(status(&fleet.admin).await["clock_offset_ms"], 240_000);
    unit.kill();

    gateway.restart();
    let admin = fleet.admin.rebase(&gateway.http_base());
    let options = fleet.unit_options("unit1");
    let unit = simulator::SimUnit::connect(simulator::UnitOptions {
        broker: gateway.mqtt_tls(),
        ..options
    })
    .await
    .expect("reconnects");
    unit.publish_point(&json!({"fuel_pct": 2}))
        .await
        .expect("acked");
    let points = tests::eventually(|| async {
        Some(history(&admin).await).filter(|points| points.len() >= 3)
    })
    .await
    .expect("stored");
    let stamped = points
        .iter()
        .find(|p| p.fuel_pct == Some(2.0))
        .expect("stored");
    assert_eq!(
        stamped.ts_ms,
        gateway.now_ms(),
        "stamped by the gateway's clock, not after the unit's future point"
    );
    assert!(
        status(&admin).await["clock_offset_ms"].is_null(),
        "no sample since the restart"
    );
}

/// The PUBACK of an unstamped QoS 1 point is lost, the gateway restarts, the unit resends
/// the packet with DUP: it gets the stamp of its first delivery (kept in the store, not
/// only in the device actor's memory), so history holds it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_a_restart_keeps_its_first_stamp() {
    use rumqttc::mqttbytes::v4::Packet;
    use tests::raw::RawClient;
    let mut gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let payload = br#"{"sensors":{"dup_r":1}}"#;
    let (mut first, _) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 30, false).await;
    first
        .publish("/tenants/unit1/telemetry", payload, 11, false)
        .await;
    assert!(matches!(first.recv(tests::WAIT).await, Some(Packet::PubAck(a)) if a.pkid == 11));
    drop(first);
    gateway.restart();
    let (mut again, _) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 30, false).await;
    again
        .publish("/tenants/unit1/telemetry", payload, 11, true)
        .await;
    assert!(matches!(again.recv(tests::WAIT).await, Some(Packet::PubAck(a)) if a.pkid == 11));
    let points = history(&fleet.admin.rebase(&gateway.http_base())).await;
    assert_eq!(points.len(), 1, "one reading, not two: {points:?}");
}
