//! The MQTT transport the gateway owns (docs/design.md section 4, docs/transport.md): a
//! PUBACK means the point is stored, sessions are keyed by identity and their ends are
//! seen, the closed topic space is enforced as an ACL, and limits hold. Each test is a
//! behaviour the embedded general-purpose broker got wrong.

use std::time::Duration;

use rumqttc::mqttbytes::v4::{self, Packet};
use rumqttc::mqttbytes::QoS;
use serde_json::{json, Value};
use simulator::api::{AssetId, HistoryQuery};
use simulator::{SimUnit, UnitOptions};
use tests::raw::RawClient;
use tests::{Fleet, TestGateway, WAIT};

async fn status(fleet: &Fleet, device: &str) -> Value {
    let (code, body) = fleet
        .admin
        .get_raw(&format!("/v1/devices/{device}/status"))
        .await
        .expect("status");
    assert_eq!(code, 200, "{body}");
    body
}

async fn stored(fleet: &Fleet, asset: &str) -> Vec<simulator::api::Point> {
    fleet
        .admin
        .telemetry_all(&AssetId::new(asset), &HistoryQuery::default())
        .await
        .expect("history")
}

/// Waits until the unit's status satisfies `check`, and returns it.
async fn status_where(fleet: &Fleet, device: &str, check: impl Fn(&Value) -> bool) -> Value {
    let found = tests::eventually(|| async {
        let now = status(fleet, device).await;
        check(&now).then_some(now)
    })
    .await;
    match found {
        Some(found) => found,
        None => panic!("status never matched: {}", status(fleet, device).await),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puback_means_the_point_is_stored() {
    // A long commit window: a broker that acknowledges on arrival answers long before the
    // point is in the store; Fleetgate answers after the commit.
    let gateway = TestGateway::start_with_window(Duration::from_millis(400));
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let unit = fleet.connect("unit1").await;
    for n in 1..=3 {
        unit.publish_point(&json!({"fuel_pct": n}))
            .await
            .expect("acknowledged");
        // Read at once: no polling, no flush.
        assert_eq!(
            stored(&fleet, "ex1").await.len(),
            n,
            "acknowledged means stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_point_without_ts_is_stored_once() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let plain = gateway.mqtt_plain();
    let (mut first, ack) = RawClient::connect(&plain, "unit1", 30, false).await;
    assert!(ack.is_some(), "connected");
    first
        .publish("/tenants/unit1/telemetry", br#"{"fuel_pct":5}"#, 7, false)
        .await;
    assert!(matches!(first.recv(WAIT).await, Some(Packet::PubAck(a)) if a.pkid == 7));
    // The PUBACK was lost on the way (the unit never saw it): it reconnects and resends the
    // same packet with DUP set. The gateway stamps it as before, so it is stored once.
    drop(first);
    let (mut again, _) = RawClient::connect(&plain, "unit1", 30, false).await;
    again
        .publish("/tenants/unit1/telemetry", br#"{"fuel_pct":5}"#, 7, true)
        .await;
    assert!(matches!(again.recv(WAIT).await, Some(Packet::PubAck(a)) if a.pkid == 7));
    assert_eq!(
        stored(&fleet, "ex1").await.len(),
        1,
        "a redelivery is one point"
    );
    // A new point that happens to reuse the packet id (no DUP) is a new point.
    again
        .publish("/tenants/unit1/telemetry", br#"{"fuel_pct":5}"#, 7, false)
        .await;
    assert!(matches!(again.recv(WAIT).await, Some(Packet::PubAck(_))));
    assert_eq!(stored(&fleet, "ex1").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_the_certificates_and_its_end_is_seen() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let with_client_id = |id: &str| UnitOptions {
        client_id: id.to_owned(),
        ..fleet.unit_options("unit1")
    };
    let first = SimUnit::connect(with_client_id("unit1-a"))
        .await
        .expect("first");
    status_where(&fleet, "unit1", |s| s["online"] == true).await;
    // Same certificate, another client id: the same unit, so it takes the session over.
    let second = SimUnit::connect(with_client_id("unit1-b"))
        .await
        .expect("second");
    let taken = status_where(&fleet, "unit1", |s| s["takeovers"] == 1).await;
    assert_eq!(taken["online"], true, "{taken}");
    assert_eq!(taken["last_disconnect_reason"], "taken_over", "{taken}");
    let dead = tokio::time::timeout(WAIT, first.publish_point(&json!({"fuel_pct": 1}))).await;
    assert!(!matches!(dead, Ok(Ok(()))), "the first session is closed");
    second
        .publish_point(&json!({"fuel_pct": 2}))
        .await
        .expect("the second session serves");
    // Dropped without DISCONNECT: no will needed, the transport sees the socket end.
    second.kill();
    let gone = status_where(&fleet, "unit1", |s| s["online"] == false).await;
    assert_eq!(gone["last_disconnect_reason"], "connection_lost", "{gone}");
    let takeovers = fleet.metric_line("fleetgate_mqtt_takeovers_total").await;
    assert_eq!(
        takeovers.as_deref(),
        Some("fleetgate_mqtt_takeovers_total 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_set_follows_every_subscribe_and_a_resumed_session() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let plain = gateway.mqtt_plain();
    let subscribe =
        || Packet::Subscribe(v4::Subscribe::new("/tenants/unit1/keys", QoS::AtLeastOnce));
    let key_set = |packet: Option<Packet>| match packet {
        Some(Packet::Publish(p)) if p.topic == "/tenants/unit1/keys" => {
            assert!(p.retain, "sent as a retained message");
            serde_json::from_slice::<Value>(&p.payload).expect("json")
        }
        other => panic!("expected the key set, got {other:?}"),
    };
    let (mut unit, _) = RawClient::connect(&plain, "unit1", 30, false).await;
    unit.send(subscribe()).await;
    assert!(matches!(unit.recv(WAIT).await, Some(Packet::SubAck(_))));
    assert_eq!(key_set(unit.recv(WAIT).await)["version"], 0);
    unit.send(Packet::Disconnect).await;
    // Persistent session resumed: session present, and the set arrives without asking.
    let (mut back, ack) = RawClient::connect(&plain, "unit1", 30, false).await;
    assert!(
        ack.expect("connack").session_present,
        "the session was kept"
    );
    assert_eq!(key_set(back.recv(WAIT).await)["version"], 0);
    // A unit that wiped its key store subscribes again: it gets the set again (§3.8.4).
    back.send(subscribe()).await;
    assert!(matches!(back.recv(WAIT).await, Some(Packet::SubAck(_))));
    assert_eq!(key_set(back.recv(WAIT).await)["keys"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closed_topic_space_refuses_every_sibling_and_says_so() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let (mut unit, _) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 30, true).await;
    let siblings = [
        "/tenants/unit1/telemetry/",
        "/tenants/unit1/Telemetry",
        "/tenants/unit1//telemetry",
        "/tenants/unit1/keys",
        "/tenants/unit2/telemetry",
    ];
    for (index, topic) in siblings.iter().enumerate() {
        let packet_id = index as u16 + 1;
        unit.publish(topic, br#"{"version":1,"keys":[]}"#, packet_id, false)
            .await;
        // Refused for good: acknowledged (MQTT 3.1.1 §3.3.5-2), never resent, never kept.
        assert!(
            matches!(unit.recv(WAIT).await, Some(Packet::PubAck(a)) if a.pkid == packet_id),
            "{topic}"
        );
    }
    let mut wildcard = v4::Subscribe::new("/tenants/unit1/#", QoS::AtLeastOnce);
    wildcard.pkid = 40;
    unit.send(Packet::Subscribe(wildcard)).await;
    match unit.recv(WAIT).await {
        Some(Packet::SubAck(ack)) => assert_eq!(
            ack.return_codes,
            vec![v4::SubscribeReasonCode::Failure],
            "only the unit's own keys may be subscribed"
        ),
        other => panic!("expected a SUBACK, got {other:?}"),
    }
    // An acknowledgement for a key-set version never sent is refused and counted.
    unit.publish(
        "/tenants/unit1/keys/ack",
        br#"{"version":999999}"#,
        41,
        false,
    )
    .await;
    assert!(matches!(unit.recv(WAIT).await, Some(Packet::PubAck(_))));
    unit.publish("/tenants/unit1/telemetry", br#"{"fuel_pct":3}"#, 42, false)
        .await;
    assert!(matches!(unit.recv(WAIT).await, Some(Packet::PubAck(a)) if a.pkid == 42));
    assert_eq!(stored(&fleet, "ex1").await.len(), 1, "only the real point");
    assert!(stored(&fleet, "ex2").await.is_empty(), "nothing forged");
    let now = status(&fleet, "unit1").await;
    assert_eq!(now["key_version_acked"], Value::Null, "{now}");
    assert!(
        now["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("never sent"),
        "{now}"
    );
    for (line, count) in [
        (
            "fleetgate_mqtt_acl_denied_total{kind=\"publish\",reason=\"topic_not_allowed\"}",
            4,
        ),
        (
            "fleetgate_mqtt_acl_denied_total{kind=\"publish\",reason=\"other_tenant\"}",
            1,
        ),
        (
            "fleetgate_mqtt_acl_denied_total{kind=\"subscribe\",reason=\"topic_not_allowed\"}",
            1,
        ),
    ] {
        let found = fleet.metric_line(line).await;
        assert_eq!(found, Some(format!("{line} {count}")));
    }
    let ack = fleet
        .metric_line("fleetgate_points_dropped_total{reason=\"key_ack_unknown_version\"}")
        .await;
    assert!(ack.is_some(), "the bogus ack is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integration_reads_its_asset_topics_and_publishes_nothing() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let account = fleet.account_id.to_string();
    let (mut integration, ack) =
        RawClient::connect(&gateway.mqtt_plain(), &account, 30, true).await;
    assert!(ack.is_some());
    let topic = format!("/tenants/{account}/assets/ex1/telemetry");
    integration
        .publish(&topic, br#"{"asset_id":"ex1","fuel_pct":1}"#, 1, false)
        .await;
    assert!(matches!(
        integration.recv(WAIT).await,
        Some(Packet::PubAck(_))
    ));
    let refused = fleet
        .metric_line(
            "fleetgate_mqtt_acl_denied_total{kind=\"publish\",reason=\"topic_not_allowed\"}",
        )
        .await;
    assert!(refused.is_some(), "an integration may not publish");
    assert!(stored(&fleet, "ex1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_clients_get_reason_codes() {
    use rumqttc::v5::mqttbytes::v5::{Packet as P5, PubAckReason};
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (host, port) = gateway.mqtt_plain();
    let (client, mut events) = AsyncClient::new(MqttOptions::new("unit1", host, port), 10);
    let cases = [
        (
            "/tenants/unit1/telemetry",
            r#"{"lat":95}"#,
            PubAckReason::PayloadFormatInvalid,
        ),
        (
            "/tenants/unit2/telemetry",
            r#"{"lat":5}"#,
            PubAckReason::NotAuthorized,
        ),
        (
            "/tenants/unit1/telemetry",
            r#"{"lat":5}"#,
            PubAckReason::Success,
        ),
    ];
    for (topic, payload, _) in &cases {
        client
            .publish(*topic, Q5::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .expect("queued");
    }
    let mut reasons = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while reasons.len() < cases.len() {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(Event::Incoming(P5::PubAck(ack)))) => reasons.push(ack.reason),
            Ok(Ok(_)) => {}
            other => panic!("MQTT 5 session failed: {other:?}"),
        }
    }
    let expected: Vec<PubAckReason> = cases.iter().map(|(_, _, reason)| *reason).collect();
    assert_eq!(reasons, expected, "in order, each with its reason");
    assert_eq!(stored(&fleet, "ex1").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_clients_dial_by_ip_in_both_protocol_versions() {
    let gateway = TestGateway::start_with(|config| {
        config.mqtt_tls_names = vec!["localhost".into(), "127.0.0.1".into()];
    });
    let fleet = Fleet::create(&gateway, "Acme").await;
    let dir = fleet.unit_files("unit1", "ex1").await;
    let port = gateway.mqtt_tls().port.to_string();
    for version in ["mqttv311", "mqttv5"] {
        let output = std::process::Command::new("mosquitto_pub")
            .current_dir(dir.path())
            .args([
                "--cafile",
                "ca.pem",
                "--cert",
                "unit1.pem",
                "--key",
                "unit1.key",
            ])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                version,
                "-i",
                "unit1",
                "-q",
                "1",
            ])
            .args(["-t", "/tenants/unit1/telemetry", "-m", r#"{"fuel_pct":12}"#])
            .output()
            .expect("mosquitto_pub is installed (scripts/setup.sh)");
        assert!(
            output.status.success(),
            "{version} by IP: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(fleet.history("ex1", 2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_protocol_violations_close_one_session_and_no_other() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let plain = gateway.mqtt_plain();
    // A 65 KB client id: refused (3.1.1 0x02 identifier rejected).
    let long_id = "u".repeat(65_000);
    let (_, ack) = RawClient::connect(&plain, &long_id, 30, true).await;
    assert_eq!(
        ack.map(|a| a.code),
        Some(v4::ConnectReturnCode::BadClientId)
    );
    // MQTT 3.1 (protocol level 3): 0x01 unacceptable protocol version.
    let mut old = RawClient::open(&plain).await;
    let mut connect = bytes::BytesMut::new();
    v4::Connect::new("unit1")
        .write(&mut connect)
        .expect("encodes");
    connect[8] = 3; // the protocol level byte after "\0\x04MQTT"
    old.send_bytes(&connect).await;
    match old.recv(WAIT).await {
        Some(Packet::ConnAck(ack)) => {
            assert_eq!(ack.code, v4::ConnectReturnCode::RefusedProtocolVersion)
        }
        other => panic!("expected a CONNACK, got {other:?}"),
    }
    // A packet only a server sends (CONNACK), and a 1 MiB PUBLISH of QoS 3: closed. (A
    // well-formed PUBLISH over the limit is skipped and refused instead: tests/oversized.rs.)
    for bytes in [&[0x20u8, 0x02, 0x00, 0x00][..], &[0x36, 0x80, 0x80, 0x40]] {
        let (mut unit, ack) = RawClient::connect(&plain, "unit1", 30, true).await;
        assert!(ack.is_some());
        unit.send_bytes(bytes).await;
        assert!(unit.closed(WAIT).await, "closed after {bytes:?}");
    }
    // Keep alive (MQTT 3.1.1 §3.1.2.10): silent for 1.5 x 1 s, the session ends.
    let (mut quiet, _) = RawClient::connect(&plain, "unit1", 1, true).await;
    assert!(quiet.closed(WAIT).await, "closed for keep alive");
    let ended = status_where(&fleet, "unit1", |s| s["online"] == false).await;
    assert_eq!(
        ended["last_disconnect_reason"], "keep_alive_timeout",
        "{ended}"
    );
    // And the gateway serves the next unit as before.
    let unit = fleet.connect("unit1").await;
    unit.publish_point(&json!({"fuel_pct": 9}))
        .await
        .expect("served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_on_sessions_and_live_streams_answer_instead_of_failing() {
    let gateway = TestGateway::start_with(|config| {
        config.mqtt_limits.max_sessions = 1;
        config.sse_max_streams = 3;
        config.sse_max_streams_per_principal = 2;
    });
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    fleet.unit_with_asset("unit2", "ex2").await;
    let plain = gateway.mqtt_plain();
    let (mut first, ack) = RawClient::connect(&plain, "unit1", 30, true).await;
    assert_eq!(ack.map(|a| a.code), Some(v4::ConnectReturnCode::Success));
    let (_second, ack) = RawClient::connect(&plain, "unit2", 30, true).await;
    assert_eq!(
        ack.map(|a| a.code),
        Some(v4::ConnectReturnCode::ServiceUnavailable),
        "over the session cap: refused with a CONNACK"
    );
    let one = fleet
        .admin
        .stream("/v1/stream")
        .await
        .expect("first stream");
    let _two = fleet
        .admin
        .stream("/v1/stream")
        .await
        .expect("second stream");
    let third = fleet
        .admin
        .request_raw(reqwest::Method::GET, "/v1/stream", None)
        .await;
    assert_eq!(third.map(|r| r.status).ok(), Some(429), "per principal");
    let again = reqwest::Client::new()
        .get(format!("{}/v1/stream", gateway.http_base()))
        .bearer_auth(&fleet.admin_token)
        .send()
        .await
        .expect("answer");
    assert_eq!(again.status().as_u16(), 429);
    let retry = again
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    assert_eq!(
        retry.as_deref(),
        Some("30"),
        "when a dead stream's slot is free again"
    );
    let viewer = fleet.user(simulator::api::UserRole::Viewer).await;
    let _other = viewer
        .stream("/v1/stream")
        .await
        .expect("another principal");
    let over = viewer
        .request_raw(reqwest::Method::GET, "/v1/stream", None)
        .await;
    assert_eq!(over.map(|r| r.status).ok(), Some(503), "gateway-wide");
    drop(one);
    // The server notices a closed stream when it next writes to it: send it a point.
    let mut freed = None;
    for packet_id in 1..=40 {
        first
            .publish(
                "/tenants/unit1/telemetry",
                br#"{"fuel_pct":1}"#,
                packet_id,
                false,
            )
            .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(stream) = viewer.stream("/v1/stream").await {
            freed = Some(stream);
            break;
        }
    }
    assert!(freed.is_some(), "a closed stream frees its place");
    let (code, _) = fleet.admin.get_raw("/healthz").await.expect("HTTP answers");
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_slows_the_units_and_loses_nothing() {
    // A store slowed on purpose (a 300 ms commit window) and a small ingest budget: units
    // publish as fast as they can; the transport stops reading them while the store is
    // behind. Every acknowledged point is stored, none twice, and no session is dropped.
    let gateway = TestGateway::start_with(|config| {
        config.commit_window = Duration::from_millis(300);
        config.mqtt_limits.ingest_permits = 16;
        config.mqtt_limits.receive_maximum = 4;
    });
    let fleet = Fleet::create(&gateway, "Acme").await;
    let mut tasks = Vec::new();
    for n in 0..4 {
        fleet
            .unit_with_asset(&format!("unit{n}"), &format!("ex{n}"))
            .await;
        let unit = fleet.connect(&format!("unit{n}")).await;
        tasks.push(tokio::spawn(async move {
            // Fire all, then collect: many in flight, far more than the gateway takes.
            let mut waiters = Vec::new();
            for seq in 0..60 {
                let point = json!({"fuel_pct": 1, "sensors": {"seq": seq}});
                let waiter = unit
                    .publish(
                        &simulator::topics::telemetry(unit.client_id()),
                        serde_json::to_vec(&point).expect("json"),
                        rumqttc::QoS::AtLeastOnce,
                        false,
                    )
                    .await
                    .expect("queued");
                waiters.push(waiter);
            }
            let mut acked = 0;
            for waiter in waiters {
                acked += usize::from(waiter.wait_timeout(Duration::from_secs(60)).await.is_ok());
            }
            acked
        }));
    }
    let mut acked = 0;
    for task in tasks {
        acked += task.await.expect("unit task");
    }
    let mut kept = 0;
    for n in 0..4 {
        kept += stored(&fleet, &format!("ex{n}")).await.len();
    }
    assert_eq!(acked, 240, "every point was acknowledged in the end");
    assert_eq!(kept, acked, "stored == acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_held_up_by_the_store_is_not_dropped_for_keep_alive() {
    // A 2 s commit window and 4 publishes in flight per session: the gateway stops reading
    // this unit for about 2 s at a time, longer than 1.5 x its 1 s keep alive. The time
    // is the gateway's, not the unit's silence: the session must survive.
    let gateway = TestGateway::start_with(|config| {
        config.commit_window = Duration::from_millis(2000);
        config.mqtt_limits.receive_maximum = 4;
    });
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (mut unit, _) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 1, true).await;
    for packet_id in 1..=8u16 {
        let point = format!(r#"{{"fuel_pct":{packet_id}}}"#);
        unit.publish(
            "/tenants/unit1/telemetry",
            point.as_bytes(),
            packet_id,
            false,
        )
        .await;
    }
    let started = std::time::Instant::now();
    let mut acked = Vec::new();
    while acked.len() < 8 {
        match unit.recv(Duration::from_secs(10)).await {
            Some(Packet::PubAck(ack)) => acked.push(ack.pkid),
            other => panic!(
                "after {acked:?} in {:?}: expected PUBACKs, got {other:?}; status {}",
                started.elapsed(),
                status(&fleet, "unit1").await
            ),
        }
    }
    assert_eq!(acked, (1..=8).collect::<Vec<u16>>(), "in order");
    assert_eq!(stored(&fleet, "ex1").await.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_acknowledges_what_it_commits_then_says_goodbye() {
    use rumqttc::v5::mqttbytes::v5::{
        self as m5, DisconnectReasonCode, Packet as P5, PubAckReason,
    };
    use rumqttc::v5::mqttbytes::QoS as Q5;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A 1 s commit window: the point is still uncommitted when the stop begins.
    let mut gateway = TestGateway::start_with_window(Duration::from_millis(1000));
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (host, port) = gateway.mqtt_plain();
    // A raw MQTT 5 conversation, so every packet the gateway sends is seen as sent.
    let mut socket = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .expect("TCP");
    let mut out = tests::raw::v5_connect("unit1");
    let mut publish = m5::Publish::new(
        "/tenants/unit1/telemetry",
        Q5::AtLeastOnce,
        br#"{"fuel_pct":7}"#.to_vec(),
        None,
    );
    publish.pkid = 1;
    publish.write(&mut out).expect("encodes");
    socket.write_all(&out).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| gateway.stop());
    let mut received = bytes::BytesMut::new();
    let mut seen = Vec::new();
    let mut bytes_in = Vec::new();
    let _ = tokio::time::timeout(WAIT, socket.read_to_end(&mut bytes_in)).await;
    received.extend_from_slice(&bytes_in);
    while let Ok(packet) = P5::read(&mut received, None) {
        match packet {
            P5::PubAck(ack) => seen.push(format!("puback {:?}", ack.reason)),
            P5::Disconnect(d) => seen.push(format!("disconnect {:?}", d.reason_code)),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        vec![
            format!("puback {:?}", PubAckReason::Success),
            format!("disconnect {:?}", DisconnectReasonCode::ServerShuttingDown),
        ],
        "the commit is acknowledged before the goodbye"
    );
    gateway.restart();
    let admin =
        simulator::ApiClient::new(&gateway.http_base(), fleet.admin_token.clone()).expect("client");
    let points = admin
        .telemetry_all(&AssetId::new("ex1"), &HistoryQuery::default())
        .await
        .expect("history");
    assert_eq!(points.len(), 1, "what was acknowledged is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_publishes_and_reads_its_key_set_over_tls_by_ip() {
    let gateway = TestGateway::start_with(|config| {
        config.mqtt_tls_names = vec!["localhost".into(), "127.0.0.1".into()];
    });
    let fleet = Fleet::create(&gateway, "Acme").await;
    let dir = fleet.unit_files("unit1", "ex1").await;
    let script = r#"
import json, sys
import paho.mqtt.publish as publish
import paho.mqtt.subscribe as subscribe
host, port, device = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tls = {"ca_certs": "ca.pem", "certfile": "unit1.pem", "keyfile": "unit1.key"}
publish.single("/tenants/%s/telemetry" % device, json.dumps({"fuel_pct": 33}), qos=1,
               hostname=host, port=port, client_id=device, tls=tls)
message = subscribe.simple("/tenants/%s/keys" % device, qos=1, hostname=host, port=port,
                           client_id=device, tls=tls)
print(message.payload.decode())
"#;
    let port = gateway.mqtt_tls().port.to_string();
    // Debian's python3 (where python3-paho-mqtt installs), not whichever is first on PATH.
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("/usr/bin/python3")
            .current_dir(dir.path())
            .args(["-c", script, "127.0.0.1", &port, "unit1"])
            .output(),
    )
    .await
    .expect("paho finishes in time")
    .expect("python3 with paho is installed (scripts/setup.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key_set: Value = serde_json::from_slice(&output.stdout).expect("the key set as JSON");
    assert_eq!(key_set["version"], 0);
    assert_eq!(fleet.history("ex1", 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_is_received_after_the_commit_and_stored_once_and_qos0_is_stored() {
    let gateway = TestGateway::start_with_window(Duration::from_millis(300));
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (mut unit, _) = RawClient::connect(&gateway.mqtt_plain(), "unit1", 30, true).await;
    let topic = "/tenants/unit1/telemetry";
    unit.publish_qos(topic, br#"{"fuel_pct":1}"#, QoS::ExactlyOnce, 9, false)
        .await;
    assert!(matches!(unit.recv(WAIT).await, Some(Packet::PubRec(r)) if r.pkid == 9));
    assert_eq!(
        stored(&fleet, "ex1").await.len(),
        1,
        "PUBREC after the commit"
    );
    // The PUBREC was lost: the unit resends before PUBREL. Received again, stored once.
    unit.publish_qos(topic, br#"{"fuel_pct":1}"#, QoS::ExactlyOnce, 9, true)
        .await;
    assert!(matches!(unit.recv(WAIT).await, Some(Packet::PubRec(r)) if r.pkid == 9));
    unit.send(Packet::PubRel(v4::PubRel::new(9))).await;
    assert!(matches!(unit.recv(WAIT).await, Some(Packet::PubComp(c)) if c.pkid == 9));
    assert_eq!(stored(&fleet, "ex1").await.len(), 1, "exactly once");
    // QoS 0: nothing to acknowledge; stored while the store keeps up.
    unit.publish_qos(topic, br#"{"fuel_pct":2}"#, QoS::AtMostOnce, 0, false)
        .await;
    assert_eq!(fleet.history("ex1", 2).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_integration_gets_what_arrived_while_it_was_away() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let account = fleet.account_id.to_string();
    let plain = gateway.mqtt_plain();
    RawClient::away_integration(&plain, &account).await;
    let unit = fleet.connect("unit1").await;
    for n in 1..=3 {
        unit.publish_point(&json!({"fuel_pct": n}))
            .await
            .expect("acknowledged");
    }
    let (mut back, ack) = RawClient::connect(&plain, &account, 30, false).await;
    assert!(ack.expect("connack").session_present);
    let mut fuel = Vec::new();
    while fuel.len() < 3 {
        match back.recv(WAIT).await {
            Some(Packet::Publish(p)) => {
                let point: Value = serde_json::from_slice(&p.payload).expect("json");
                fuel.push(point["fuel_pct"].as_f64().expect("fuel"));
            }
            other => panic!("after {fuel:?}: expected the queued points, got {other:?}"),
        }
    }
    assert_eq!(fuel, vec![1.0, 2.0, 3.0], "in order, none lost while away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_goodbye_without_reason_is_a_clean_disconnect() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("unit1", "ex1").await;
    let (host, port) = gateway.mqtt_plain();
    let mut socket = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .expect("TCP");
    socket
        .write_all(&tests::raw::v5_connect("unit1"))
        .await
        .expect("CONNECT");
    status_where(&fleet, "unit1", |s| s["online"] == true).await;
    // What mosquitto_pub -V mqttv5 sends: DISCONNECT, remaining length 0 (MQTT 5 §3.14.2.1).
    socket.write_all(&[0xE0, 0x00]).await.expect("DISCONNECT");
    let _ = tokio::time::timeout(WAIT, socket.read_to_end(&mut Vec::new())).await;
    let ended = status_where(&fleet, "unit1", |s| s["online"] == false).await;
    assert_eq!(
        ended["last_disconnect_reason"], "client_disconnect",
        "{ended}"
    );
}
