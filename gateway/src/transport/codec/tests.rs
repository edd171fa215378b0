//! The codec's tests: CONNECTs of either version, framing limits, client-sent packet
//! types, oversized PUBLISH heads, topic aliases, and no byte string panicking a reader.

use super::*;
use proptest::prelude::*;

fn v4_connect(id: &str) -> BytesMut {
    let mut out = BytesMut::new();
    v4::Connect::new(id).write(&mut out).expect("encodes");
    out
}

#[test]
fn both_versions_connect_on_one_port() {
    let mut buf = v4_connect("unit1");
    let connect = read_connect(&mut buf, 1024).expect("ok").expect("framed");
    assert_eq!(connect.version, Version::V4);
    assert_eq!(connect.client_id, "unit1");
    assert!(buf.is_empty());

    let mut buf = BytesMut::new();
    let c5 = v5::Connect {
        keep_alive: 30,
        client_id: "unit2".into(),
        clean_start: false,
        properties: None,
    };
    c5.write(&None, &None, &mut buf).expect("encodes");
    let connect = read_connect(&mut buf, 1024).expect("ok").expect("framed");
    assert_eq!(connect.version, Version::V5);
    assert_eq!(connect.keep_alive, 30);
    assert!(!connect.clean);
}

#[test]
fn half_a_packet_waits_and_a_server_packet_is_refused() {
    let full = v4_connect("unit1");
    let mut half = BytesMut::from(&full[..full.len() - 2]);
    assert!(read_connect(&mut half, 1024).expect("ok").is_none());
    // A client-sent CONNACK (the packet that made rumqttd's v5 reader reach
    // `unreachable!`) and a SUBACK are refused before any decoding.
    for bytes in [
        &[0x20u8, 0x02, 0x00, 0x00][..],
        &[0x90, 0x03, 0x00, 0x01, 0x00],
    ] {
        let mut buf = BytesMut::from(bytes);
        assert!(matches!(
            read(Version::V5, &mut buf, 1024),
            Err(Violation::ForbiddenType(_))
        ));
    }
    let mut connect_again = v4_connect("x");
    assert_eq!(
        read(Version::V4, &mut connect_again, 1024).unwrap_err(),
        Violation::ForbiddenType(1)
    );
}

#[test]
fn oversize_packets_are_refused_from_their_header() {
    // A PUBLISH that announces 1 MiB: refused before the body arrives.
    let mut buf = BytesMut::from(&[0x30u8, 0x80, 0x80, 0x40][..]);
    assert_eq!(
        read(Version::V4, &mut buf, 65_536).unwrap_err(),
        Violation::TooLarge(1 + 3 + 1_048_576)
    );
}

#[test]
fn an_mqtt5_disconnect_without_reason_or_properties_is_a_disconnect() {
    for bytes in [
        &[0xE0u8, 0x00][..],
        &[0xE0, 0x01, 0x00],
        &[0xE0, 0x02, 0x04, 0x00],
    ] {
        let mut buf = BytesMut::from(bytes);
        assert!(
            matches!(read(Version::V5, &mut buf, 1024), Ok(Some(In::Disconnect))),
            "{bytes:?}"
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn an_oversized_publish_is_known_by_its_head_alone() {
    let mut head = vec![0x32u8, 0x80, 0x80, 0x08]; // PUBLISH QoS 1, 131,072 bytes follow
    head.extend_from_slice(&[0, 3]);
    head.extend_from_slice(b"/t/");
    assert_eq!(
        oversized_publish(&head, 128),
        Ok(None),
        "the packet id is not there yet"
    );
    head.extend_from_slice(&[0x01, 0x02]);
    head.extend_from_slice(&[b'x'; 10]);
    assert_eq!(
        oversized_publish(&head, 128),
        Ok(Some(Oversized {
            size: 4 + 131_072,
            qos: QoS::AtLeastOnce,
            packet_id: 0x0102
        }))
    );
    assert!(
        oversized_publish(&head, 2).is_err(),
        "a topic over the limit closes"
    );
    let subscribe = [0x82u8, 0x80, 0x80, 0x08, 0, 1];
    assert!(
        oversized_publish(&subscribe, 128).is_err(),
        "only a PUBLISH is skipped"
    );
    let qos3 = [0x36u8, 0x80, 0x80, 0x08, 0, 0];
    assert!(oversized_publish(&qos3, 128).is_err());
}

#[test]
fn a_topic_alias_is_refused_as_the_connack_announced_none() {
    let publish = |alias: Option<u16>| {
        let properties = alias.map(|alias| v5::PublishProperties {
            topic_alias: Some(alias),
            ..Default::default()
        });
        let mut packet = v5::Publish::new(
            "/tenants/u1/telemetry",
            QoS5::AtLeastOnce,
            b"{}".to_vec(),
            properties,
        );
        packet.pkid = 1;
        let mut out = BytesMut::new();
        packet.write(&mut out).expect("written");
        out
    };
    assert!(matches!(
        read(Version::V5, &mut publish(None), 1024),
        Ok(Some(In::Publish { .. }))
    ));
    for alias in [0, 1] {
        assert!(
            matches!(read(Version::V5, &mut publish(Some(alias)), 1024), Err(Violation::Malformed(why)) if why.contains("topic alias")),
            "alias {alias}"
        );
    }
}

#[test]
fn a_server_disconnect_reads_back_with_its_reason() {
    let mut out = BytesMut::new();
    Writer {
        version: Version::V5,
    }
    .disconnect(&mut out, ServerDisconnect::ShuttingDown);
    match v5::Packet::read(&mut out, None).expect("a client reads it") {
        v5::Packet::Disconnect(d) => {
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::ServerShuttingDown)
        }
        other => panic!("{other:?}"),
    }
    let mut none = BytesMut::new();
    Writer {
        version: Version::V4,
    }
    .disconnect(&mut none, ServerDisconnect::ShuttingDown);
    assert!(none.is_empty(), "MQTT 3.1.1 has no server DISCONNECT");
}

proptest! {
    #[test]
    fn no_byte_string_panics_either_reader(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for version in [Version::V4, Version::V5] {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = read(version, &mut buf, 4096) {}
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = read_connect(&mut buf, 4096);
        }
    }

    #[test]
    fn valid_packets_behind_random_prefix_bytes_do_not_panic(
        first in 0u8..=255, rest in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        let mut bytes = vec![first];
        bytes.extend(rest);
        for version in [Version::V4, Version::V5] {
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = read(version, &mut buf, 4096);
        }
    }
}
