//! End to end: a unit publishes over MQTT and the owner sees the point in history, on SSE
//! and on its MQTT integration topic; malformed points are refused, counted and never
//! stored; history and status survive a restart.

use std::time::Duration;

use rumqttc::QoS;
use serde_json::json;
use simulator::api::{AssetId, DeviceId, HistoryQuery};
use simulator::telemetry::now_ms;
use tests::{publish_acked, Fleet, TestGateway, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_reaches_history_sse_latest_and_the_account_topic() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let asset = AssetId::new("ex1");

    let mut account_stream = fleet
        .admin
        .stream("/v1/stream")
        .await
        .expect("account stream");
    let mut asset_stream = fleet
        .admin
        .stream("/v1/assets/ex1/stream")
        .await
        .expect("asset stream");
    let observer = fleet.integration_observer().await;
    let topic = format!("/tenants/{}/assets/ex1/telemetry", fleet.account_id);
    observer
        .subscribe(&topic, QoS::AtLeastOnce)
        .await
        .expect("subscribed");

    let unit = fleet.connect("unit1").await;
    let ts = now_ms() - 1_000;
    unit.publish_point(&json!({"ts": ts, "lat": 59.91, "lon": 10.75, "fuel_pct": 61.5, "sensors": {"coolant_c": 88}}))
        .await
        .expect("acked");

    for stream in [&mut account_stream, &mut asset_stream] {
        let live = stream
            .next_point(WAIT)
            .await
            .expect("a live point")
            .expect("decodes");
        assert_eq!(live.asset_id, asset);
        assert_eq!(live.ts_ms, ts);
        assert_eq!(live.fuel_pct, Some(61.5));
    }
    let message = observer
        .next_message(WAIT)
        .await
        .expect("integration topic message");
    assert_eq!(message.topic, topic);
    assert_eq!(message.json().expect("json")["ts_ms"], ts);

    let latest = fleet.admin.latest(&asset).await.expect("latest");
    assert_eq!(latest.ts_ms, ts);
    assert_eq!(latest.sensor("coolant_c"), Some(88.0));

    let history = fleet.history("ex1", 1).await;
    assert_eq!(history[0].ts_ms, ts);
    assert_eq!(history[0].lat, Some(59.91));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_without_ts_gets_the_gateway_clock_and_keeps_order() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    let before = now_ms();
    for fuel in [10.0, 20.0, 30.0] {
        unit.publish_point(&json!({"fuel_pct": fuel}))
            .await
            .expect("acked");
    }
    let after = now_ms();
    let points = fleet.history("ex1", 3).await;
    assert_eq!(points.len(), 3, "three unstamped points, none overwritten");
    let fuels: Vec<_> = points.iter().map(|p| p.fuel_pct).collect();
    assert_eq!(fuels, vec![Some(10.0), Some(20.0), Some(30.0)]);
    for point in &points {
        assert!(
            point.ts_ms >= before && point.ts_ms <= after + 5,
            "{} not in [{before}, {after}]",
            point.ts_ms
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_points_are_counted_shown_and_never_stored() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    let device = DeviceId::new("unit1");
    let future = now_ms() + 3_600_000;
    let oversize = format!(r#"{{"sensors":{{"x":1}},"pad":"{}"}}"#, "a".repeat(5_000));
    let cases: Vec<(String, &str)> = vec![
        (oversize, "4096"),
        ("{not json".into(), "JSON"),
        (r#"{"lat":"north"}"#.into(), "lat"),
        (r#"{"ignition":"yes"}"#.into(), "ignition"),
        (r#"{"lat":90.5}"#.into(), "lat"),
        (r#"{"lon":181}"#.into(), "lon"),
        (r#"{"fuel_pct":101}"#.into(), "fuel_pct"),
        (r#"{"heading":400}"#.into(), "heading"),
        (r#"{"speed_kmh":-3}"#.into(), "speed_kmh"),
        (format!(r#"{{"ts":{future}}}"#), "ts"),
    ];
    let telemetry = simulator::topics::telemetry("unit1");
    for (index, (payload, names)) in cases.iter().enumerate() {
        publish_acked(&unit, &telemetry, payload.clone().into_bytes()).await;
        let status = wait_for_errors(&fleet, &device, index as u64 + 1).await;
        let last_error = status.last_error.clone().unwrap_or_default();
        assert!(
            last_error.contains(names),
            "case {index}: {last_error:?} should name {names}"
        );
    }
    // A valid point afterwards still flows: a malformed one is never fatal.
    unit.publish_point(&json!({"fuel_pct": 50}))
        .await
        .expect("acked");
    let points = fleet.history("ex1", 1).await;
    assert_eq!(
        points.len(),
        1,
        "only the valid point is stored: {points:?}"
    );
    assert_eq!(points[0].fuel_pct, Some(50.0));

    let (status, metrics) = fleet.admin.get_text("/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    for reason in [
        "too_large",
        "invalid_json",
        "wrong_type",
        "out_of_range",
        "future_ts",
    ] {
        assert!(
            metrics.contains(&format!(
                "fleetgate_points_dropped_total{{reason=\"{reason}\"}}"
            )),
            "{reason} counted"
        );
    }
}

async fn wait_for_errors(
    fleet: &Fleet,
    device: &DeviceId,
    count: u64,
) -> simulator::api::DeviceStatus {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = fleet.admin.device_status(device).await.expect("status");
        if status.error_count >= count || tokio::time::Instant::now() > deadline {
            assert_eq!(status.error_count, count, "{status:?}");
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_identity_is_refused_at_connect_and_counted() {
    // Over TLS an unregistered id has no certificate at all; on the development listener
    // the client id is the identity, and one the gateway does not know is refused at
    // CONNECT (3.1.1 return code 0x05, not authorized) before it can publish anything.
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let stranger = simulator::SimUnit::connect(simulator::UnitOptions::observer(
        "ghost",
        fleet.broker.clone(),
    ))
    .await;
    assert!(
        stranger.is_err(),
        "an unknown identity must not get a session"
    );
    let line = fleet
        .metric_line("fleetgate_mqtt_refusals_total{reason=\"unknown_identity\"}")
        .await;
    assert_eq!(
        line.as_deref(),
        Some("fleetgate_mqtt_refusals_total{reason=\"unknown_identity\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_follows_online_and_the_last_will() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let device = DeviceId::new("unit1");
    let unit = fleet.connect("unit1").await;
    wait_for_online(&fleet, &device, true).await;
    unit.kill();
    wait_for_online(&fleet, &device, false).await;
    let status = fleet.admin.device_status(&device).await.expect("status");
    assert!(status.last_seen.is_some());
}

async fn wait_for_online(fleet: &Fleet, device: &DeviceId, online: bool) {
    let reached = tests::eventually(|| async {
        let status = fleet.admin.device_status(device).await.expect("status");
        (status.online == online).then_some(())
    })
    .await;
    assert!(reached.is_some(), "never became online={online}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_status_survive_a_restart() {
    let mut gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    let start = now_ms() - 10_000;
    for i in 0..20u64 {
        unit.publish_point(&json!({"ts": start + i, "fuel_pct": i}))
            .await
            .expect("acked");
    }
    publish_acked(
        &unit,
        &simulator::topics::telemetry("unit1"),
        b"{broken".to_vec(),
    )
    .await;
    wait_for_errors(&fleet, &DeviceId::new("unit1"), 1).await;
    unit.kill();

    gateway.restart();
    let admin = fleet.admin.rebase(&gateway.http_base());
    let points = admin
        .telemetry_all(&AssetId::new("ex1"), &HistoryQuery::default())
        .await
        .expect("history after restart");
    assert_eq!(points.len(), 20, "every acknowledged point is still there");
    assert_eq!(points.last().map(|p| p.ts_ms), Some(start + 19));
    let status = admin
        .device_status(&DeviceId::new("unit1"))
        .await
        .expect("status");
    assert_eq!(status.points, 20);
    assert_eq!(status.error_count, 1);
    assert!(
        !status.online,
        "no unit is connected to a freshly started broker"
    );
    let latest = admin
        .latest(&AssetId::new("ex1"))
        .await
        .expect("latest from the store");
    assert_eq!(latest.ts_ms, start + 19);
}
