//! Persistent sessions (clean session 0) across a takeover: MQTT 3.1.1 §3.1.2.4 keeps the
//! session's state when the same client connects again, also while its old connection is
//! still open (a unit reconnecting over a new route before the old one timed out).

use rumqttc::mqttbytes::v4::{self, Packet};
use rumqttc::mqttbytes::QoS;
use tests::raw::RawClient;
use tests::{Fleet, TestGateway, WAIT};

/// A persistent session taken over by a new connection while the old one is still open
/// (a unit reconnecting before the gateway saw its old connection end) keeps its state:
/// session present 1 and the key set sent at once (MQTT 3.1.1 §3.1.2.4). A clean takeover
/// starts afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_taken_over_keeps_its_subscription() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let plain = gateway.mqtt_plain();
    let (mut first, _) = RawClient::connect(&plain, "unit1", 30, false).await;
    first
        .send(Packet::Subscribe(v4::Subscribe::new(
            "/tenants/unit1/keys",
            QoS::AtLeastOnce,
        )))
        .await;
    assert!(matches!(first.recv(WAIT).await, Some(Packet::SubAck(_))));
    assert!(matches!(first.recv(WAIT).await, Some(Packet::Publish(_))));
    // No DISCONNECT: the first connection is still open when the second arrives.
    let (mut second, ack) = RawClient::connect(&plain, "unit1", 30, false).await;
    assert!(
        ack.expect("connack").session_present,
        "the session was kept"
    );
    match second.recv(WAIT).await {
        Some(Packet::Publish(p)) => assert_eq!(p.topic, "/tenants/unit1/keys"),
        other => panic!("expected the key set, got {other:?}"),
    }
    let (_, clean) = RawClient::connect(&plain, "unit1", 30, true).await;
    assert!(
        !clean.expect("connack").session_present,
        "a clean session starts afresh"
    );
}
