//! One idle unit's MQTT session, held open with as little client machinery as possible.
//!
//! rumqttc cannot choose the local address of its socket, and the point of the scale run is
//! to spread tens of thousands of connections over several loopback source addresses (each
//! source address has its own ~28,000 ephemeral ports). So this module opens the socket
//! itself (bound to the source address), runs the same rustls client configuration the
//! other units use, and frames packets with rumqttc's own MQTT 3.1.1 codec (`mqttbytes`):
//! the protocol bytes are the library's, only the socket is ours.
//!
//! A session does what an idle unit does: CONNECT with the `offline` last will, a retained
//! `online` status, a QoS 1 subscription to its key set (acknowledging what it is sent),
//! PINGREQ within the keep-alive, and on command a ping round, a probe point, or a clean
//! DISCONNECT. The same sessions, with the same code, also measure mosquitto (`mosquitto/`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Disconnect, LastWill, Packet, PingReq, PubAck, Publish,
    Subscribe,
};
use rumqttc::mqttbytes::{Error as MqttError, QoS};
use rumqttc::tokio_rustls::{rustls, TlsConnector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::time::Instant;

use crate::topics;

/// Largest packet accepted from the broker (the key sets an idle unit might be sent).
const MAX_INCOMING: usize = 256 * 1024;

/// The byte stream under a session: plain TCP or TLS over it.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How to reach the broker.
#[derive(Clone)]
pub(crate) struct Dial {
    pub(crate) broker: SocketAddr,
    /// `Some`: mutual TLS with this server name.
    pub(crate) tls_server_name: Option<rustls::pki_types::ServerName<'static>>,
    pub(crate) keep_alive: Duration,
    pub(crate) timeout: Duration,
}

/// One unit's credentials: its id, and for TLS the PEM texts its registration returned.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) device_id: String,
    pub(crate) tls: Option<(String, String, String)>,
}

/// Where the attempt to open a session stopped, so the report can say which limit was hit
/// first (ports, file descriptors, TLS, the broker's refusal, time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Failure {
    /// Creating or binding the socket (`EMFILE`: out of file descriptors; `EADDRINUSE` /
    /// `EADDRNOTAVAIL`: the source address is out of ports).
    Socket(String),
    /// The TCP connect (`ECONNREFUSED`: the listener's backlog, or nothing listening).
    Connect(String),
    Tls(String),
    /// CONNACK with a refusal code, or a protocol error.
    Mqtt(String),
    /// No answer in time; names the stage.
    Timeout(&'static str),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Socket(reason) => write!(formatter, "socket: {reason}"),
            Failure::Connect(reason) => write!(formatter, "TCP connect: {reason}"),
            Failure::Tls(reason) => write!(formatter, "TLS: {reason}"),
            Failure::Mqtt(reason) => write!(formatter, "MQTT: {reason}"),
            Failure::Timeout(stage) => write!(formatter, "timed out in {stage}"),
        }
    }
}

/// The error kind without the varying details (addresses, ids), for grouping.
fn io_reason(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => format!("{} (os error {code})", error.kind()),
        None => error.kind().to_string(),
    }
}

/// An open session.
pub(crate) struct Session {
    stream: Box<dyn Stream>,
    incoming: BytesMut,
    outgoing: BytesMut,
    next_pkid: u16,
}

impl Session {
    /// Opens a session from `source` (port chosen by the kernel): socket, TCP, TLS, CONNACK,
    /// and returns how long that took; then sends the retained `online` status at QoS 1
    /// without waiting for its PUBACK (an idle unit does not wait either; the PUBACK is read
    /// by [`Session::next_packet`]).
    pub(crate) async fn open(
        source: IpAddr,
        dial: &Dial,
        identity: &Identity,
    ) -> Result<(Session, Duration), Failure> {
        let started = Instant::now();
        let socket = match dial.broker {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|error| Failure::Socket(io_reason(&error)))?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|error| Failure::Socket(io_reason(&error)))?;
        let tcp = tokio::time::timeout(dial.timeout, socket.connect(dial.broker))
            .await
            .map_err(|_| Failure::Timeout("TCP connect"))?
            .map_err(|error| Failure::Connect(io_reason(&error)))?;
        // Small packets (pings, acks) must not wait for Nagle's timer.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match (&dial.tls_server_name, &identity.tls) {
            (Some(server_name), Some((ca_pem, cert_pem, key_pem))) => {
                let config = crate::unit::tls::client_config(ca_pem, cert_pem, key_pem)
                    .map_err(|error| Failure::Tls(error.to_string()))?;
                let connector = TlsConnector::from(Arc::new(config));
                let tls =
                    tokio::time::timeout(dial.timeout, connector.connect(server_name.clone(), tcp))
                        .await
                        .map_err(|_| Failure::Timeout("TLS handshake"))?
                        .map_err(|error| Failure::Tls(io_reason(&error)))?;
                Box::new(tls)
            }
            (Some(_), None) => {
                return Err(Failure::Tls(format!(
                    "device {} has no certificate",
                    identity.device_id
                )))
            }
            (None, _) => Box::new(tcp),
        };
        let mut session = Session {
            stream,
            incoming: BytesMut::with_capacity(64),
            outgoing: BytesMut::with_capacity(256),
            next_pkid: 1,
        };
        let status = topics::status(&identity.device_id);
        let mut connect = Connect::new(identity.device_id.clone());
        connect.keep_alive = u16::try_from(dial.keep_alive.as_secs()).unwrap_or(u16::MAX);
        connect.clean_session = true;
        connect.last_will = Some(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
        session
            .send(|buffer| connect.write(buffer))
            .await
            .map_err(|error| Failure::Mqtt(format!("sending CONNECT: {}", io_reason(&error))))?;
        let connack = tokio::time::timeout(dial.timeout, session.next_packet())
            .await
            .map_err(|_| Failure::Timeout("waiting for CONNACK"))?
            .map_err(|error| Failure::Mqtt(format!("reading CONNACK: {error}")))?;
        match connack {
            Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Success,
                ..
            }) => {}
            Packet::ConnAck(ConnAck { code, .. }) => {
                return Err(Failure::Mqtt(format!("CONNACK refused: {code:?}")))
            }
            other => {
                return Err(Failure::Mqtt(format!(
                    "expected CONNACK, got {:?}",
                    packet_name(&other)
                )))
            }
        }
        let opening = started.elapsed();
        session
            .publish(&status, b"online".to_vec(), true)
            .await
            .map_err(|error| Failure::Mqtt(format!("sending online status: {error}")))?;
        Ok((session, opening))
    }

    async fn send(
        &mut self,
        write: impl FnOnce(&mut BytesMut) -> Result<usize, MqttError>,
    ) -> io::Result<()> {
        self.outgoing.clear();
        write(&mut self.outgoing)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))?;
        self.stream.write_all(&self.outgoing).await?;
        self.stream.flush().await
    }

    pub(crate) async fn ping(&mut self) -> io::Result<()> {
        self.send(|buffer| PingReq.write(buffer)).await
    }

    /// The next packet id (1..=65535, then around again).
    fn take_pkid(&mut self) -> u16 {
        let pkid = self.next_pkid;
        self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
        pkid
    }

    /// A QoS 1 publish; returns its packet id, to match the PUBACK.
    pub(crate) async fn publish(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> io::Result<u16> {
        let pkid = self.take_pkid();
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload);
        publish.pkid = pkid;
        publish.retain = retain;
        self.send(|buffer| publish.write(buffer)).await?;
        Ok(pkid)
    }

    /// A QoS 1 subscription to `filter`; returns its packet id, to match the SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str) -> io::Result<u16> {
        let mut subscribe = Subscribe::new(filter, QoS::AtLeastOnce);
        subscribe.pkid = self.take_pkid();
        self.send(|buffer| subscribe.write(buffer)).await?;
        Ok(subscribe.pkid)
    }

    /// Acknowledges a QoS 1 publish the broker sent.
    pub(crate) async fn puback(&mut self, pkid: u16) -> io::Result<()> {
        self.send(|buffer| PubAck::new(pkid).write(buffer)).await
    }

    /// A clean end: DISCONNECT, so the broker drops the last will (the unit said nothing
    /// went wrong), then close the stream.
    pub(crate) async fn disconnect(mut self) {
        let _ = self.send(|buffer| Disconnect.write(buffer)).await;
        let _ = self.stream.shutdown().await;
    }

    /// The next whole packet from the broker. Cancel-safe: bytes read before a cancel stay
    /// in the buffer for the next call.
    pub(crate) async fn next_packet(&mut self) -> Result<Packet, String> {
        loop {
            match Packet::read(&mut self.incoming, MAX_INCOMING) {
                Ok(packet) => return Ok(packet),
                Err(MqttError::InsufficientBytes(wanted)) => {
                    self.incoming.reserve(wanted.max(64));
                }
                Err(error) => return Err(format!("bad packet from the broker: {error}")),
            }
            let read = self
                .stream
                .read_buf(&mut self.incoming)
                .await
                .map_err(|error| io_reason(&error))?;
            if read == 0 {
                return Err("the broker closed the connection".to_owned());
            }
        }
    }
}

/// A packet's type for messages (never its payload).
pub(crate) fn packet_name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}
