//! A PUBLISH over the packet limit from an MQTT 3.1.1 unit (which has no way to learn the
//! limit) is skipped and acknowledged as refused, counted and named in the unit's status;
//! the session goes on. Closing it instead made the unit send the same packet for ever,
//! and its later points queued behind it.

use rumqttc::mqttbytes::v4::Packet;
use rumqttc::mqttbytes::QoS;
use serde_json::Value;
use simulator::api::{AssetId, HistoryQuery};
use tests::raw::RawClient;
use tests::{Fleet, TestGateway, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_311_publish_over_the_limit_is_skipped_and_acknowledged_as_refused() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (mut unit, _) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 30, false).await;
    let topic = "/tenants/unit1/telemetry";
    let huge = vec![b' '; 70_000];
    unit.publish(topic, &huge, 9, false).await;
    assert!(
        matches!(unit.recv(WAIT).await, Some(Packet::PubAck(a)) if a.pkid == 9),
        "acknowledged (as refused), not closed"
    );
    // QoS 0 too: skipped without an acknowledgement, the session still there.
    unit.publish_qos(topic, &huge, QoS::AtMostOnce, 0, false)
        .await;
    unit.publish(topic, br#"{"fuel_pct":3}"#, 10, false).await;
    assert!(matches!(unit.recv(WAIT).await, Some(Packet::PubAck(a)) if a.pkid == 10));
    let points = fleet
        .admin
        .telemetry_all(&AssetId::new("ex1"), &HistoryQuery::default())
        .await
        .expect("history");
    assert_eq!(points.len(), 1, "only the small point is stored");

    let counted = tests::eventually(|| async {
        let (_, text) = fleet.admin.get_text("/metrics").await.expect("metrics");
        text.lines()
            .find_map(|line| {
                line.strip_prefix("fleetgate_points_dropped_total{reason=\"too_large\"} ")
            })
            .and_then(|value| value.trim().parse::<u64>().ok())
            .filter(|count| *count >= 2)
    })
    .await;
    assert_eq!(counted, Some(2));
    let (_, status) = fleet
        .admin
        .get_raw("/v1/devices/unit1/status")
        .await
        .expect("status");
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("over the 65536-byte limit"), "{status}");
    assert_eq!(status["online"], Value::Bool(true), "{status}");
}
