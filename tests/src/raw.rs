//! A raw MQTT 3.1.1 client on a plain socket, for tests that need what client libraries
//! hide: chosen packet ids, the DUP flag, a keep alive that is never honoured, packets a
//! client never sends, or bytes that are not MQTT at all. Framing is rumqttc's codec.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{self, Packet};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection to the development listener (client id = identity).
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    /// Opens TCP to `host:port` without sending anything.
    pub async fn open(addr: &(String, u16)) -> RawClient {
        let stream = TcpStream::connect((addr.0.as_str(), addr.1))
            .await
            .expect("TCP connects");
        RawClient {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Opens and sends CONNECT; returns the client and the CONNACK's return code.
    pub async fn connect(
        addr: &(String, u16),
        client_id: &str,
        keep_alive_s: u16,
        clean: bool,
    ) -> (RawClient, Option<v4::ConnAck>) {
        let mut client = Self::open(addr).await;
        let mut connect = v4::Connect::new(client_id);
        connect.keep_alive = keep_alive_s;
        connect.clean_session = clean;
        client.send(Packet::Connect(connect)).await;
        let connack = match client.recv(Duration::from_secs(5)).await {
            Some(Packet::ConnAck(ack)) => Some(ack),
            _ => None,
        };
        (client, connack)
    }

    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.write(&mut out, 1 << 20).expect("encodes");
        self.send_bytes(&out).await;
    }

    /// Writes bytes as they are; a closed socket is not an error here (the test asks
    /// [`RawClient::closed`]).
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// A QoS 1 publish with a chosen packet id and DUP flag.
    pub async fn publish(&mut self, topic: &str, payload: &[u8], packet_id: u16, dup: bool) {
        self.publish_qos(topic, payload, QoS::AtLeastOnce, packet_id, dup)
            .await;
    }

    /// A publish at any QoS (the packet id is left out for QoS 0).
    pub async fn publish_qos(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        packet_id: u16,
        dup: bool,
    ) {
        let mut publish = v4::Publish::new(topic, qos, payload.to_vec());
        publish.pkid = if qos == QoS::AtMostOnce { 0 } else { packet_id };
        publish.dup = dup;
        self.send(Packet::Publish(publish)).await;
    }

    /// An integration of `account` on the development listener subscribes to its asset
    /// topics with a persistent session (clean session 0), then disconnects: the gateway
    /// queues its points while it is away.
    pub async fn away_integration(plain: &(String, u16), account: &str) {
        let (mut integration, _) = RawClient::connect(plain, account, 30, false).await;
        let filter = format!("/tenants/{account}/assets/+/telemetry");
        let subscribe = v4::Subscribe::new(&filter, QoS::AtLeastOnce);
        integration.send(Packet::Subscribe(subscribe)).await;
        assert!(matches!(
            integration.recv(Duration::from_secs(10)).await,
            Some(Packet::SubAck(_))
        ));
        integration.send(Packet::Disconnect).await;
        assert!(integration.closed(Duration::from_secs(10)).await);
    }

    /// The next packet, or `None` on timeout or when the server closed the connection.
    pub async fn recv(&mut self, within: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(packet) = Packet::read(&mut self.buf, 1 << 20) {
                return Some(packet);
            }
            self.buf.reserve(4096);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// Reads until the server closes the connection; true if it did within `within`.
    pub async fn closed(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut scratch = [0u8; 1024];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
                Err(_) => return false,
            }
        }
    }
}

/// An MQTT 5 CONNECT (clean start, keep alive 30 s) as bytes, for raw MQTT 5 conversations.
pub fn v5_connect(client_id: &str) -> BytesMut {
    use rumqttc::v5::mqttbytes::v5::Connect;
    let mut out = BytesMut::new();
    let connect = Connect {
        keep_alive: 30,
        client_id: client_id.into(),
        clean_start: true,
        properties: None,
    };
    connect.write(&None, &None, &mut out).expect("encodes");
    out
}
