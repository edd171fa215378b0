//! MQTT 3.1.1 and 5 on one port, framed by the rumqtt family's packet codec
//! (`rumqttc::mqttbytes::v4` and `rumqttc::v5::mqttbytes::v5`).
//!
//! rumqttc with `default-features = false` brings the codec and about 50 crates, against
//! about 340 for `rumqttd::protocol` (axum, hyper, a metrics exporter) and rumqttd's older
//! rustls; its readers return errors rather than panicking on packets a server never
//! expects. Even so, the packet type is checked here before a body is decoded: a client may
//! send only the packets of MQTT 3.1.1 §2.2.1 / MQTT 5 §2.1.2 that flow client to server.
//!
//! The session code speaks one vocabulary, [`In`], whatever the version; this module maps
//! it to and from each version's packets, including the reason codes only MQTT 5 carries.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5;
use rumqttc::v5::mqttbytes::QoS as QoS5;

fn from_qos5(qos: QoS5) -> QoS {
    match qos {
        QoS5::AtMostOnce => QoS::AtMostOnce,
        QoS5::AtLeastOnce => QoS::AtLeastOnce,
        QoS5::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn to_qos5(qos: QoS) -> QoS5 {
    match qos {
        QoS::AtMostOnce => QoS5::AtMostOnce,
        QoS::AtLeastOnce => QoS5::AtLeastOnce,
        QoS::ExactlyOnce => QoS5::ExactlyOnce,
    }
}

/// Which protocol the CONNECT asked for (its protocol level byte, MQTT 3.1.1 §3.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V4,
    V5,
}

/// A CONNECT, whatever its version.
#[derive(Debug, Clone)]
pub struct Connect {
    pub version: Version,
    pub client_id: String,
    /// Seconds; 0 turns keep alive off (MQTT 3.1.1 §3.1.2.10).
    pub keep_alive: u16,
    /// Clean session (3.1.1) or clean start (5).
    pub clean: bool,
    /// MQTT 5 receive maximum the client asked for (how many QoS 1/2 publishes it takes
    /// unacknowledged from us); unused, we send few.
    pub session_expiry_s: Option<u32>,
}

/// A packet from a client, after its type was checked.
#[derive(Debug, Clone)]
pub enum In {
    Publish {
        topic: String,
        payload: Bytes,
        qos: QoS,
        packet_id: u16,
        dup: bool,
    },
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        packet_id: u16,
        filters: Vec<(String, QoS)>,
    },
    Unsubscribe {
        packet_id: u16,
        filters: Vec<String>,
    },
    PingReq,
    Disconnect,
}

/// Why a byte stream is not an acceptable MQTT conversation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("packet of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("the first packet is not a CONNECT")]
    NotConnect,
    #[error("unsupported protocol level {0}")]
    ProtocolLevel(u8),
    #[error("a client may not send packet type {0}")]
    ForbiddenType(u8),
    #[error("malformed packet: {0}")]
    Malformed(String),
}

/// More bytes are needed before a packet can be framed.
pub const NEED_MORE: Result<Option<In>, Violation> = Ok(None);

/// Reads the fixed header: packet type nibble, header length and total frame length, if
/// enough bytes are there (MQTT 3.1.1 §2.2.3, remaining length of at most four bytes).
fn frame(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, Violation> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut length = 0usize;
    for (index, byte) in buf.iter().skip(1).take(4).enumerate() {
        length |= usize::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            let header = 1 + index + 1;
            return Ok(Some((first >> 4, header, header + length)));
        }
    }
    if buf.len() >= 5 {
        return Err(Violation::Malformed(
            "remaining length over four bytes".into(),
        ));
    }
    Ok(None)
}

/// The head of a PUBLISH over the packet limit, as the session needs it to skip the rest
/// and acknowledge it as refused: MQTT 3.1.1 has no way to announce a limit, so closing
/// the connection would make the unit send the same packet again for ever (§3.3.5 lets
/// the server acknowledge a PUBLISH it does not deliver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    /// The whole packet's size, bytes (header included).
    pub size: usize,
    pub qos: QoS,
    /// 0 for QoS 0.
    pub packet_id: u16,
}

/// [`Oversized`] when `buf` starts with a PUBLISH whose topic and packet id are buffered;
/// `Ok(None)` when more bytes are needed; a violation when it is no PUBLISH, its QoS is 3
/// or its topic is longer than `max_topic` (the session then closes, as before).
pub fn oversized_publish(buf: &[u8], max_topic: usize) -> Result<Option<Oversized>, Violation> {
    let Some((kind, header, size)) = frame(buf)? else {
        return Ok(None);
    };
    if kind != 3 {
        return Err(Violation::TooLarge(size));
    }
    let qos = match (buf[0] >> 1) & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => return Err(Violation::Malformed("PUBLISH with QoS 3".into())),
    };
    let Some(topic_len) = buf.get(header..header + 2) else {
        return Ok(None);
    };
    let topic_len = usize::from(u16::from_be_bytes([topic_len[0], topic_len[1]]));
    if topic_len > max_topic {
        return Err(Violation::TooLarge(size));
    }
    let id_at = header + 2 + topic_len;
    let packet_id = match qos {
        QoS::AtMostOnce => 0,
        _ => match buf.get(id_at..id_at + 2) {
            Some(id) => u16::from_be_bytes([id[0], id[1]]),
            None => return Ok(None),
        },
    };
    Ok(Some(Oversized {
        size,
        qos,
        packet_id,
    }))
}

/// Reads the CONNECT that must open a conversation. `Ok(None)`: more bytes needed.
pub fn read_connect(buf: &mut BytesMut, max_packet: usize) -> Result<Option<Connect>, Violation> {
    let Some((kind, header, length)) = frame(buf)? else {
        return Ok(None);
    };
    if kind != 1 {
        return Err(Violation::NotConnect);
    }
    if length > max_packet {
        return Err(Violation::TooLarge(length));
    }
    if buf.len() < length {
        return Ok(None);
    }
    // The protocol level follows the protocol name: 2 bytes of length, "MQTT", 1 byte.
    let level = buf
        .get(header + 6)
        .copied()
        .ok_or_else(|| Violation::Malformed("CONNECT too short".into()))?;
    let malformed = |err: &dyn std::fmt::Display| Violation::Malformed(err.to_string());
    match level {
        4 => match v4::Packet::read(buf, max_packet).map_err(|e| malformed(&e))? {
            v4::Packet::Connect(c) => Ok(Some(Connect {
                version: Version::V4,
                client_id: c.client_id,
                keep_alive: c.keep_alive,
                clean: c.clean_session,
                session_expiry_s: None,
            })),
            _ => Err(Violation::NotConnect),
        },
        5 => match v5::Packet::read(buf, Some(max_packet as u32)).map_err(|e| malformed(&e))? {
            v5::Packet::Connect(c, _, _) => Ok(Some(Connect {
                version: Version::V5,
                client_id: c.client_id,
                keep_alive: c.keep_alive,
                clean: c.clean_start,
                session_expiry_s: c.properties.and_then(|p| p.session_expiry_interval),
            })),
            _ => Err(Violation::NotConnect),
        },
        other => Err(Violation::ProtocolLevel(other)),
    }
}

/// Reads the next packet after CONNECT. `Ok(None)`: more bytes needed.
pub fn read(
    version: Version,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<In>, Violation> {
    let Some((kind, _, length)) = frame(buf)? else {
        return NEED_MORE;
    };
    // Client-to-server types only: PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE,
    // UNSUBSCRIBE, PINGREQ, DISCONNECT. A second CONNECT is a violation (§3.1.0-2), and so
    // is AUTH (15): Fleetgate authenticates by certificate, not by an MQTT 5 exchange.
    if !matches!(kind, 3..=8 | 10 | 12 | 14) {
        return Err(Violation::ForbiddenType(kind));
    }
    if length > max_packet {
        return Err(Violation::TooLarge(length));
    }
    if buf.len() < length {
        return NEED_MORE;
    }
    if kind == 14 && version == Version::V5 {
        // MQTT 5 §3.14.2.1: a DISCONNECT may carry no reason code and no properties
        // (remaining length 0, what mosquitto sends), which rumqttc's reader refuses.
        // The reason does not change what the gateway does, so it is not decoded.
        let _ = buf.split_to(length);
        return Ok(Some(In::Disconnect));
    }
    let malformed = |err: &dyn std::fmt::Display| Violation::Malformed(err.to_string());
    match version {
        Version::V4 => from_v4(v4::Packet::read(buf, max_packet).map_err(|e| malformed(&e))?),
        Version::V5 => {
            from_v5(v5::Packet::read(buf, Some(max_packet as u32)).map_err(|e| malformed(&e))?)
        }
    }
    .map(Some)
}

fn from_v4(packet: v4::Packet) -> Result<In, Violation> {
    Ok(match packet {
        v4::Packet::Publish(p) => In::Publish {
            topic: p.topic,
            payload: p.payload,
            qos: p.qos,
            packet_id: p.pkid,
            dup: p.dup,
        },
        v4::Packet::PubAck(p) => In::PubAck(p.pkid),
        v4::Packet::PubRec(p) => In::PubRec(p.pkid),
        v4::Packet::PubRel(p) => In::PubRel(p.pkid),
        v4::Packet::PubComp(p) => In::PubComp(p.pkid),
        v4::Packet::Subscribe(s) => In::Subscribe {
            packet_id: s.pkid,
            filters: s.filters.into_iter().map(|f| (f.path, f.qos)).collect(),
        },
        v4::Packet::Unsubscribe(u) => In::Unsubscribe {
            packet_id: u.pkid,
            filters: u.topics,
        },
        v4::Packet::PingReq => In::PingReq,
        v4::Packet::Disconnect => In::Disconnect,
        _ => return Err(Violation::ForbiddenType(0)),
    })
}

fn from_v5(packet: v5::Packet) -> Result<In, Violation> {
    Ok(match packet {
        v5::Packet::Publish(p) => {
            // Topic aliases are off (CONNACK topic alias maximum 0): one sent anyway is a
            // protocol error (MQTT 5 §3.3.2.3.4), not a publish to take at its word.
            if p.properties
                .as_ref()
                .is_some_and(|props| props.topic_alias.is_some())
            {
                return Err(Violation::Malformed(
                    "a topic alias, though CONNACK announced a topic alias maximum of 0".into(),
                ));
            }
            let topic = String::from_utf8(p.topic.to_vec())
                .map_err(|_| Violation::Malformed("topic is not UTF-8".into()))?;
            In::Publish {
                topic,
                payload: p.payload,
                qos: from_qos5(p.qos),
                packet_id: p.pkid,
                dup: p.dup,
            }
        }
        v5::Packet::PubAck(p) => In::PubAck(p.pkid),
        v5::Packet::PubRec(p) => In::PubRec(p.pkid),
        v5::Packet::PubRel(p) => In::PubRel(p.pkid),
        v5::Packet::PubComp(p) => In::PubComp(p.pkid),
        v5::Packet::Subscribe(s) => In::Subscribe {
            packet_id: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, from_qos5(f.qos)))
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => In::Unsubscribe {
            packet_id: u.pkid,
            filters: u.filters,
        },
        v5::Packet::PingReq(_) => In::PingReq,
        v5::Packet::Disconnect(_) => In::Disconnect,
        _ => return Err(Violation::ForbiddenType(0)),
    })
}

/// A CONNACK refusal, named by its meaning; each version has its own code
/// (MQTT 3.1.1 §3.2.2.3, MQTT 5 §3.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    /// 3.1.1 0x02 identifier rejected; 5 0x85 client identifier not valid.
    BadClientId,
    /// 3.1.1 0x05 not authorized; 5 0x87 not authorized.
    NotAuthorized,
    /// 3.1.1 0x03 server unavailable; 5 0x97 quota exceeded (a session cap is reached).
    QuotaExceeded,
    /// 3.1.1 0x03 server unavailable; 5 0x88 server unavailable.
    ServerUnavailable,
}

/// How a publish ended, as its acknowledgement says it (MQTT 5 §3.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckReason {
    Success,
    /// 0x87.
    NotAuthorized,
    /// 0x90.
    TopicNameInvalid,
    /// 0x97.
    QuotaExceeded,
    /// 0x99.
    PayloadFormatInvalid,
    /// 0x83: refused for a reason of ours that fits no other code.
    ImplementationSpecific,
}

/// Why the server ends a session, sent as a DISCONNECT in MQTT 5 (3.1.1 just closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerDisconnect {
    /// 0x8B.
    ShuttingDown,
    /// 0x8E: another connection with the same identity took over.
    SessionTakenOver,
    /// 0x8D.
    KeepAliveTimeout,
    /// 0x82.
    ProtocolError,
    /// 0x95.
    PacketTooLarge,
    /// 0x87: the identity was revoked or deregistered.
    NotAuthorized,
}

/// Server-to-client packets; each `write_*` appends one packet to `out`.
#[derive(Debug, Clone, Copy)]
pub struct Writer {
    pub version: Version,
}

/// Encoding our own well-formed packets into a buffer cannot fail; a failure would be a
/// bug here, logged rather than panicking on a live session.
fn wrote(result: Result<usize, impl std::fmt::Display>) {
    if let Err(err) = result {
        tracing::error!(%err, "encoding an MQTT packet failed");
    }
}

impl Writer {
    pub fn connack(
        self,
        out: &mut BytesMut,
        refusal: Option<ConnectRefusal>,
        session_present: bool,
        limits: &ConnAckLimits,
    ) {
        match self.version {
            Version::V4 => {
                let code = match refusal {
                    None => v4::ConnectReturnCode::Success,
                    Some(ConnectRefusal::BadClientId) => v4::ConnectReturnCode::BadClientId,
                    Some(ConnectRefusal::NotAuthorized) => v4::ConnectReturnCode::NotAuthorized,
                    Some(ConnectRefusal::QuotaExceeded | ConnectRefusal::ServerUnavailable) => {
                        v4::ConnectReturnCode::ServiceUnavailable
                    }
                };
                wrote(v4::ConnAck::new(code, session_present && refusal.is_none()).write(out));
            }
            Version::V5 => {
                let code = match refusal {
                    None => v5::ConnectReturnCode::Success,
                    Some(ConnectRefusal::BadClientId) => {
                        v5::ConnectReturnCode::ClientIdentifierNotValid
                    }
                    Some(ConnectRefusal::NotAuthorized) => v5::ConnectReturnCode::NotAuthorized,
                    Some(ConnectRefusal::QuotaExceeded) => v5::ConnectReturnCode::QuotaExceeded,
                    Some(ConnectRefusal::ServerUnavailable) => {
                        v5::ConnectReturnCode::ServerUnavailable
                    }
                };
                let properties = refusal.is_none().then(|| v5::ConnAckProperties {
                    session_expiry_interval: limits.session_expiry_s,
                    receive_max: Some(limits.receive_maximum),
                    max_packet_size: Some(limits.max_packet as u32),
                    topic_alias_max: Some(0),
                    wildcard_subscription_available: Some(1),
                    subscription_identifiers_available: Some(0),
                    shared_subscription_available: Some(0),
                    max_qos: None,
                    retain_available: None,
                    assigned_client_identifier: None,
                    reason_string: None,
                    user_properties: Vec::new(),
                    server_keep_alive: None,
                    response_information: None,
                    server_reference: None,
                    authentication_method: None,
                    authentication_data: None,
                });
                let connack = v5::ConnAck {
                    session_present: session_present && refusal.is_none(),
                    code,
                    properties,
                };
                wrote(connack.write(out));
            }
        }
    }

    pub fn puback(self, out: &mut BytesMut, packet_id: u16, reason: AckReason) {
        match self.version {
            Version::V4 => wrote(v4::PubAck::new(packet_id).write(out)),
            Version::V5 => {
                let mut ack = v5::PubAck::new(packet_id, None);
                ack.reason = match reason {
                    AckReason::Success => v5::PubAckReason::Success,
                    AckReason::NotAuthorized => v5::PubAckReason::NotAuthorized,
                    AckReason::TopicNameInvalid => v5::PubAckReason::TopicNameInvalid,
                    AckReason::QuotaExceeded => v5::PubAckReason::QuotaExceeded,
                    AckReason::PayloadFormatInvalid => v5::PubAckReason::PayloadFormatInvalid,
                    AckReason::ImplementationSpecific => {
                        v5::PubAckReason::ImplementationSpecificError
                    }
                };
                wrote(ack.write(out));
            }
        }
    }

    pub fn pubrec(self, out: &mut BytesMut, packet_id: u16, reason: AckReason) {
        match self.version {
            Version::V4 => wrote(v4::PubRec::new(packet_id).write(out)),
            Version::V5 => {
                let mut rec = v5::PubRec::new(packet_id, None);
                rec.reason = match reason {
                    AckReason::Success => v5::PubRecReason::Success,
                    AckReason::NotAuthorized => v5::PubRecReason::NotAuthorized,
                    AckReason::TopicNameInvalid => v5::PubRecReason::TopicNameInvalid,
                    AckReason::QuotaExceeded => v5::PubRecReason::QuotaExceeded,
                    AckReason::PayloadFormatInvalid => v5::PubRecReason::PayloadFormatInvalid,
                    AckReason::ImplementationSpecific => {
                        v5::PubRecReason::ImplementationSpecificError
                    }
                };
                wrote(rec.write(out));
            }
        }
    }

    pub fn pubcomp(self, out: &mut BytesMut, packet_id: u16) {
        match self.version {
            Version::V4 => wrote(v4::PubComp::new(packet_id).write(out)),
            Version::V5 => wrote(v5::PubComp::new(packet_id, None).write(out)),
        }
    }

    /// `granted[i]`: the QoS granted to filter `i`, or `None` for a refusal (3.1.1 0x80,
    /// 5 0x87 not authorized or 0x8F filter invalid).
    pub fn suback(self, out: &mut BytesMut, packet_id: u16, granted: &[Result<QoS, bool>]) {
        match self.version {
            Version::V4 => {
                let codes = granted
                    .iter()
                    .map(|g| match g {
                        Ok(qos) => v4::SubscribeReasonCode::Success(*qos),
                        Err(_) => v4::SubscribeReasonCode::Failure,
                    })
                    .collect();
                wrote(v4::SubAck::new(packet_id, codes).write(out));
            }
            Version::V5 => {
                let codes = granted
                    .iter()
                    .map(|g| match g {
                        Ok(qos) => v5::SubscribeReasonCode::Success(to_qos5(*qos)),
                        Err(true) => v5::SubscribeReasonCode::TopicFilterInvalid,
                        Err(false) => v5::SubscribeReasonCode::NotAuthorized,
                    })
                    .collect();
                let suback = v5::SubAck {
                    pkid: packet_id,
                    return_codes: codes,
                    properties: None,
                };
                wrote(suback.write(out));
            }
        }
    }

    pub fn unsuback(self, out: &mut BytesMut, packet_id: u16, count: usize) {
        match self.version {
            Version::V4 => wrote(v4::UnsubAck::new(packet_id).write(out)),
            Version::V5 => {
                let unsuback = v5::UnsubAck {
                    pkid: packet_id,
                    reasons: vec![v5::UnsubAckReason::Success; count],
                    properties: None,
                };
                wrote(unsuback.write(out));
            }
        }
    }

    pub fn pingresp(self, out: &mut BytesMut) {
        match self.version {
            Version::V4 => wrote(v4::PingResp.write(out)),
            Version::V5 => wrote(v5::PingResp::write(out)),
        }
    }

    /// A publish to the client; `packet_id` must be non-zero for QoS 1.
    pub fn publish(
        self,
        out: &mut BytesMut,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        packet_id: u16,
        retain: bool,
    ) {
        match self.version {
            Version::V4 => {
                let mut publish = v4::Publish::from_bytes(topic, qos, payload);
                publish.pkid = packet_id;
                publish.retain = retain;
                wrote(publish.write(out));
            }
            Version::V5 => {
                let mut publish = v5::Publish::new(topic, to_qos5(qos), payload, None);
                publish.pkid = packet_id;
                publish.retain = retain;
                wrote(publish.write(out));
            }
        }
    }

    /// MQTT 5 sends the reason; MQTT 3.1.1 has no server DISCONNECT and just closes.
    pub fn disconnect(self, out: &mut BytesMut, reason: ServerDisconnect) {
        if self.version == Version::V4 {
            return;
        }
        let (code, why) = match reason {
            ServerDisconnect::ShuttingDown => (
                v5::DisconnectReasonCode::ServerShuttingDown,
                "the gateway is shutting down",
            ),
            ServerDisconnect::SessionTakenOver => (
                v5::DisconnectReasonCode::SessionTakenOver,
                "a new connection with the same identity took the session over",
            ),
            ServerDisconnect::KeepAliveTimeout => (
                v5::DisconnectReasonCode::KeepAliveTimeout,
                "nothing arrived within 1.5 times the keep alive",
            ),
            ServerDisconnect::ProtocolError => {
                (v5::DisconnectReasonCode::ProtocolError, "protocol error")
            }
            ServerDisconnect::PacketTooLarge => (
                v5::DisconnectReasonCode::PacketTooLarge,
                "packet over the announced maximum packet size",
            ),
            ServerDisconnect::NotAuthorized => (
                v5::DisconnectReasonCode::NotAuthorized,
                "the identity was revoked",
            ),
        };
        // Properties are always written (here a reason string): rumqttc's reader cannot
        // parse a DISCONNECT whose properties are left out, which MQTT 5 §3.14.2.2.1 allows.
        let disconnect = v5::Disconnect {
            reason_code: code,
            properties: Some(v5::DisconnectProperties {
                session_expiry_interval: None,
                reason_string: Some(why.to_owned()),
                user_properties: Vec::new(),
                server_reference: None,
            }),
        };
        wrote(disconnect.write(out));
    }
}

/// What a successful MQTT 5 CONNACK announces.
#[derive(Debug, Clone)]
pub struct ConnAckLimits {
    /// Receive maximum: QoS 1 and 2 publishes the client may have unacknowledged.
    pub receive_maximum: u16,
    /// Maximum packet size in bytes.
    pub max_packet: usize,
    pub session_expiry_s: Option<u32>,
}

#[cfg(test)]
mod tests;
