//! One simulated telematics unit: an MQTT session that behaves like the real hardware
//! (retained `online` status, `offline` as its last will, QoS 1 telemetry) and tells its
//! caller exactly when the broker acknowledged each message.
//!
//! Knowing the moment of each PUBACK is the point of this module: the gateway's durability
//! promise is about acknowledged points, so the scenarios must know which points were
//! acknowledged. rumqttc's event loop runs in its own task and reports packets to an
//! `AckTracker` (see `acks.rs` for how publishes are matched to acknowledgements).
//!
//! A `SimUnit` is one session: it does not reconnect. When the connection drops, every
//! pending and later request fails with the reason, and a test that wants a reconnect
//! connects a new `SimUnit` with the same options.
//!
//! Key handling (hold the retained key set, ack it, decide access attempts) sits on top of a
//! session in `keys.rs` (`KeyHolder`), with its pure rules in `keyset.rs`.

mod acks;
mod keys;
mod keyset;
pub(crate) mod tls;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::topics;
use acks::{AckKind, AckTracker, Completion};

pub use keys::{HolderStats, KeyHolder, TakenSet};
pub use keyset::{
    credential_hint, decide, offer, AccessReport, Decision, HeldKey, KeySet, KeySetError, Offer,
};

/// How many requests may wait in rumqttc's channel before `publish` waits for room; this is
/// the back-pressure that keeps a fast producer from queueing without bound.
const REQUEST_CHANNEL_CAPACITY: usize = 64;
/// Large enough for the malformed-input tests to send oversized payloads and see what the
/// broker does with them, instead of rumqttc refusing locally.
const MAX_PACKET_BYTES: usize = 1 << 20;
/// How long a clean `disconnect` waits for the `offline` status and the socket to close.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a unit operation failed. Cloneable because one connection failure is reported to every
/// caller that was waiting on that connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no CONNACK within {0:?}")]
    ConnectTimeout(Duration),
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    #[error("session closed")]
    Closed,
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("cannot encode payload: {0}")]
    Encode(String),
    #[error("request refused by the MQTT client: {0}")]
    InvalidRequest(String),
    #[error("the broker refused the subscription")]
    SubscribeRefused,
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

/// A broker address as `host:port` (IPv6 hosts in brackets: `[::1]:1883`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
}

impl FromStr for BrokerAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not host:port"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        let port = port
            .parse()
            .map_err(|_| format!("{text:?} has no valid port"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(formatter, "[{}]:{}", self.host, self.port)
        } else {
            write!(formatter, "{}:{}", self.host, self.port)
        }
    }
}

/// How a unit reaches the broker.
#[derive(Clone, PartialEq, Eq)]
pub enum MqttTransport {
    /// The development listener: plain TCP, no topic isolation.
    Plain,
    /// Mutual TLS with the unit's own certificate. `server_name` must match the gateway
    /// certificate's SAN (e.g. `localhost`); the TCP connection goes to the broker address's
    /// port on that name.
    Tls {
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
        server_name: String,
    },
}

impl fmt::Debug for MqttTransport {
    /// Leaves out the PEM text: a private key has no place in logs or test output.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MqttTransport::Plain => formatter.write_str("Plain"),
            MqttTransport::Tls { server_name, .. } => formatter
                .debug_struct("Tls")
                .field("server_name", server_name)
                .finish_non_exhaustive(),
        }
    }
}

/// Everything needed to open one session.
#[derive(Debug, Clone)]
pub struct UnitOptions {
    /// The MQTT client id; for a unit, its device id.
    pub client_id: String,
    pub broker: BrokerAddr,
    pub transport: MqttTransport,
    /// At least one second (rumqttc's minimum); shorter values are raised.
    pub keep_alive: Duration,
    /// Behave like a unit: retained `offline` last will and retained `online` after connect,
    /// both on `/tenants/{client_id}/status`. Off for observers such as account integrations.
    pub announce_status: bool,
    pub connect_timeout: Duration,
    /// Unacknowledged QoS 1 publishes allowed at once.
    pub max_inflight: u16,
    /// Send each packet at once instead of letting the kernel hold small writes until the
    /// previous one is acknowledged (Nagle). Off by default, like most unit stacks; a
    /// scenario that times request/response round trips (a key set and its ack) turns it on,
    /// because with it off the unit's ack waits up to the peer's delayed-ACK timer (~40 ms
    /// on Linux) behind its own PUBACK, and that delay is the simulator's, not the gateway's.
    pub tcp_nodelay: bool,
}

impl UnitOptions {
    /// A unit with device id `device_id` on the plain listener.
    pub fn unit(device_id: impl Into<String>, broker: BrokerAddr) -> Self {
        Self {
            client_id: device_id.into(),
            broker,
            transport: MqttTransport::Plain,
            keep_alive: Duration::from_secs(30),
            announce_status: true,
            connect_timeout: Duration::from_secs(10),
            max_inflight: 100,
            tcp_nodelay: false,
        }
    }

    /// A client that only listens (no status announcements), e.g. an account integration.
    pub fn observer(client_id: impl Into<String>, broker: BrokerAddr) -> Self {
        Self {
            announce_status: false,
            ..Self::unit(client_id, broker)
        }
    }

    pub fn with_transport(mut self, transport: MqttTransport) -> Self {
        self.transport = transport;
        self
    }

    pub fn with_tcp_nodelay(mut self, tcp_nodelay: bool) -> Self {
        self.tcp_nodelay = tcp_nodelay;
        self
    }

    fn mqtt_options(&self) -> Result<MqttOptions, UnitError> {
        let host = match &self.transport {
            MqttTransport::Plain => self.broker.host.clone(),
            MqttTransport::Tls { server_name, .. } => server_name.clone(),
        };
        let mut options = MqttOptions::new(self.client_id.clone(), host, self.broker.port);
        options
            .set_keep_alive(self.keep_alive.max(Duration::from_secs(1)))
            .set_clean_session(true)
            .set_inflight(self.max_inflight.max(1))
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if self.announce_status {
            options.set_last_will(LastWill::new(
                topics::status(&self.client_id),
                "offline",
                QoS::AtLeastOnce,
                true,
            ));
        }
        if let MqttTransport::Tls {
            ca_pem,
            cert_pem,
            key_pem,
            ..
        } = &self.transport
        {
            let config = tls::client_config(ca_pem, cert_pem, key_pem)?;
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(config),
            )));
        }
        Ok(options)
    }
}

/// A message the broker delivered on one of this session's subscriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
    pub qos: QoS,
}

impl ReceivedMessage {
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }
}

/// Resolves when the broker acknowledged one message (see `SimUnit::publish`).
#[must_use = "dropping the waiter forgets whether the broker acknowledged the message"]
#[derive(Debug)]
pub struct AckWaiter {
    completion: Completion,
}

impl AckWaiter {
    pub async fn wait(self) -> Result<(), UnitError> {
        self.wait_round_trip().await.map(|_| ())
    }

    /// Like `wait`, and says how long the acknowledgement took: from the moment rumqttc
    /// reported the publish written to the socket to the moment it reported the PUBACK
    /// (QoS 1) or PUBCOMP (QoS 2). Time spent queued in the simulator's own request
    /// channel or in rumqttc's in-flight window is not part of it. `None` for QoS 0, which
    /// has no acknowledgement.
    pub async fn wait_round_trip(self) -> Result<Option<Duration>, UnitError> {
        self.completion.await.unwrap_or(Err(UnitError::Closed))
    }

    /// Like `wait`, bounded by `timeout`.
    pub async fn wait_timeout(self, timeout: Duration) -> Result<(), UnitError> {
        tokio::time::timeout(timeout, self.wait())
            .await
            .unwrap_or_else(|_| Err(UnitError::Timeout("acknowledgement".to_owned())))
    }
}

/// State shared between a `SimUnit` and its event-loop task.
struct Shared {
    tracker: Mutex<AckTracker>,
    /// QoS ≥ 1 publishes handed to rumqttc.
    published: AtomicU64,
    /// QoS ≥ 1 publishes the broker acknowledged.
    acked: AtomicU64,
    /// Woken on every acknowledgement and on failure, for `wait_all_acked`.
    progress: Notify,
    connected: AtomicBool,
}

impl Shared {
    fn tracker(&self) -> MutexGuard<'_, AckTracker> {
        // The tracker holds no invariant a panicking holder could break halfway through
        // that matters more than continuing; take it even if poisoned.
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fail(&self, error: UnitError) {
        self.connected.store(false, Ordering::SeqCst);
        self.tracker().fail(error);
        self.progress.notify_waiters();
    }
}

/// One connected MQTT session. Dropping it drops the TCP connection without a DISCONNECT,
/// which the broker treats like a crashed unit (it publishes the last will).
pub struct SimUnit {
    client_id: String,
    client: AsyncClient,
    /// Held from "register the waiter" until "request is in rumqttc's channel", so waiters
    /// are queued in exactly the order rumqttc will send the requests; `AckTracker` relies on
    /// that order to pair `Outgoing::Publish(pkid)` with its caller.
    send_order: tokio::sync::Mutex<()>,
    shared: Arc<Shared>,
    /// Messages from subscriptions, filled by the event-loop task. Unbounded because that
    /// task must never block (it also carries the acknowledgements); tests read promptly.
    messages: tokio::sync::Mutex<mpsc::UnboundedReceiver<ReceivedMessage>>,
    event_loop: JoinHandle<()>,
    status_topic: Option<String>,
}

impl SimUnit {
    /// Connects, waits for the CONNACK and, for a unit, for the broker's acknowledgement of
    /// the retained `online` status.
    pub async fn connect(options: UnitOptions) -> Result<SimUnit, UnitError> {
        let mqtt_options = options.mqtt_options()?;
        let (client, mut event_loop) = AsyncClient::new(mqtt_options, REQUEST_CHANNEL_CAPACITY);
        event_loop
            .network_options
            .set_connection_timeout(options.connect_timeout.as_secs().max(1));
        event_loop
            .network_options
            .set_tcp_nodelay(options.tcp_nodelay);
        let shared = Arc::new(Shared {
            tracker: Mutex::new(AckTracker::default()),
            published: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            progress: Notify::new(),
            connected: AtomicBool::new(false),
        });
        let (messages_tx, messages_rx) = mpsc::unbounded_channel();
        let (connack_tx, connack_rx) = oneshot::channel();
        let task = tokio::spawn(drive(event_loop, shared.clone(), messages_tx, connack_tx));

        let status_topic = options
            .announce_status
            .then(|| topics::status(&options.client_id));
        let unit = SimUnit {
            client_id: options.client_id,
            client,
            send_order: tokio::sync::Mutex::new(()),
            shared,
            messages: tokio::sync::Mutex::new(messages_rx),
            event_loop: task,
            status_topic,
        };

        match tokio::time::timeout(options.connect_timeout, connack_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => return Err(error),
            Ok(Err(_)) => return Err(UnitError::Closed),
            Err(_) => return Err(UnitError::ConnectTimeout(options.connect_timeout)),
        }
        if let Some(status_topic) = unit.status_topic.clone() {
            unit.publish(&status_topic, "online", QoS::AtLeastOnce, true)
                .await?
                .wait_timeout(options.connect_timeout)
                .await?;
        }
        Ok(unit)
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// True until the connection ends or `disconnect`/`kill` is called.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Publishes a telemetry point on `/tenants/{client_id}/telemetry` at QoS 1 and returns
    /// once the broker acknowledged it.
    pub async fn publish_point<T: Serialize + ?Sized>(&self, point: &T) -> Result<(), UnitError> {
        self.send_point(point).await?.wait().await
    }

    /// Queues a telemetry point (QoS 1) and returns as soon as rumqttc took it; the waiter
    /// resolves on the PUBACK. Lets one unit keep many points in flight.
    pub async fn send_point<T: Serialize + ?Sized>(
        &self,
        point: &T,
    ) -> Result<AckWaiter, UnitError> {
        let payload =
            serde_json::to_vec(point).map_err(|error| UnitError::Encode(error.to_string()))?;
        let topic = topics::telemetry(&self.client_id);
        self.publish(&topic, payload, QoS::AtLeastOnce, false).await
    }

    /// Publishes arbitrary bytes on any topic, unchecked (the malformed-input tests need
    /// wrong topics and wrong payloads). The waiter resolves on the acknowledgement for
    /// QoS 1/2, or once written for QoS 0.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<AckWaiter, UnitError> {
        let _order = self.send_order.lock().await;
        let (ticket, completion) = self.shared.tracker().enqueue_publish(qos)?;
        let counted = qos != QoS::AtMostOnce;
        if counted {
            self.shared.published.fetch_add(1, Ordering::SeqCst);
        }
        let handed_over = self
            .client
            .publish_bytes(topic, qos, retain, payload.into())
            .await;
        if let Err(error) = handed_over {
            self.shared.tracker().cancel_publish(ticket);
            if counted {
                self.shared.published.fetch_sub(1, Ordering::SeqCst);
            }
            return Err(self.hand_over_error(error));
        }
        Ok(AckWaiter { completion })
    }

    /// Subscribes and returns once the broker granted the subscription, so messages
    /// published afterwards are sure to arrive.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<(), UnitError> {
        let completion = {
            let _order = self.send_order.lock().await;
            let (ticket, completion) = self.shared.tracker().enqueue_subscribe()?;
            if let Err(error) = self.client.subscribe(filter, qos).await {
                self.shared.tracker().cancel_subscribe(ticket);
                return Err(self.hand_over_error(error));
            }
            completion
        };
        AckWaiter { completion }.wait().await
    }

    /// The next message from a subscription, or `None` after `timeout`.
    pub async fn next_message(&self, timeout: Duration) -> Option<ReceivedMessage> {
        let mut messages = self.messages.lock().await;
        tokio::time::timeout(timeout, messages.recv())
            .await
            .ok()
            .flatten()
    }

    /// QoS ≥ 1 publishes handed to the client so far (including the `online` status).
    pub fn published(&self) -> u64 {
        self.shared.published.load(Ordering::SeqCst)
    }

    /// QoS ≥ 1 publishes the broker acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::SeqCst)
    }

    /// Waits until every QoS ≥ 1 publish so far has been acknowledged.
    pub async fn wait_all_acked(&self, timeout: Duration) -> Result<(), UnitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if self.acked() >= self.published() {
                return Ok(());
            }
            if let Some(failure) = self.shared.tracker().failure() {
                return Err(failure.clone());
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                return Err(UnitError::Timeout(format!(
                    "{} of {} acknowledgements",
                    self.published() - self.acked().min(self.published()),
                    self.published()
                )));
            }
        }
    }

    /// Ends the session the way a unit switching off cleanly does: retained `offline`
    /// status (a clean DISCONNECT discards the last will, so it must be said explicitly),
    /// then DISCONNECT, then waits for the socket to close.
    pub async fn disconnect(mut self) -> Result<(), UnitError> {
        if let Some(status_topic) = self.status_topic.clone() {
            self.publish(&status_topic, "offline", QoS::AtLeastOnce, true)
                .await?
                .wait_timeout(DISCONNECT_TIMEOUT)
                .await?;
        }
        self.client
            .disconnect()
            .await
            .map_err(|error| self.hand_over_error(error))?;
        if tokio::time::timeout(DISCONNECT_TIMEOUT, &mut self.event_loop)
            .await
            .is_err()
        {
            return Err(UnitError::Timeout("the socket to close".to_owned()));
        }
        Ok(())
    }

    /// Drops the connection without DISCONNECT, like a unit losing power: the broker then
    /// publishes the `offline` last will.
    pub fn kill(self) {
        drop(self);
    }

    /// rumqttc refuses a request either because its event loop is gone or because the
    /// topic or filter is invalid; its error does not say which, the session state does.
    fn hand_over_error(&self, error: rumqttc::ClientError) -> UnitError {
        if let Some(failure) = self.shared.tracker().failure() {
            return failure.clone();
        }
        if self.event_loop.is_finished() {
            return UnitError::Closed;
        }
        let refused = match error {
            rumqttc::ClientError::Request(request) | rumqttc::ClientError::TryRequest(request) => {
                request
            }
        };
        let what = match refused {
            rumqttc::Request::Publish(publish) => format!("invalid topic {:?}", publish.topic),
            rumqttc::Request::Subscribe(subscribe) => format!(
                "invalid filter {:?}",
                subscribe
                    .filters
                    .iter()
                    .map(|filter| &filter.path)
                    .collect::<Vec<_>>()
            ),
            other => format!("{other:?}"),
        };
        UnitError::InvalidRequest(what)
    }
}

impl Drop for SimUnit {
    fn drop(&mut self) {
        self.event_loop.abort();
        self.shared.fail(UnitError::Closed);
    }
}

/// Runs rumqttc's event loop and reports every packet that matters to the tracker. Ends at
/// the first error (no reconnect: see the module doc) or after a DISCONNECT was written.
async fn drive(
    mut event_loop: EventLoop,
    shared: Arc<Shared>,
    messages: mpsc::UnboundedSender<ReceivedMessage>,
    connack: oneshot::Sender<Result<(), UnitError>>,
) {
    let mut connack = Some(connack);
    loop {
        let event = match event_loop.poll().await {
            Ok(event) => event,
            Err(error) => {
                let failure = match connack.take() {
                    Some(connack) => {
                        let failure = UnitError::Connect(error.to_string());
                        let _ = connack.send(Err(failure.clone()));
                        failure
                    }
                    None => UnitError::ConnectionLost(error.to_string()),
                };
                shared.fail(failure);
                return;
            }
        };
        match event {
            Event::Incoming(Packet::ConnAck(_)) => {
                shared.connected.store(true, Ordering::SeqCst);
                if let Some(connack) = connack.take() {
                    let _ = connack.send(Ok(()));
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let matched = shared.tracker().publish_sent(pkid, Instant::now());
                if !matched {
                    tracing::warn!(pkid, "publish sent that no caller is waiting for");
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => record_ack(&shared, ack.pkid, AckKind::PubAck),
            Event::Incoming(Packet::PubComp(comp)) => {
                record_ack(&shared, comp.pkid, AckKind::PubComp)
            }
            Event::Outgoing(Outgoing::Subscribe(pkid)) => shared.tracker().subscribe_sent(pkid),
            Event::Incoming(Packet::SubAck(suback)) => {
                let refused = suback
                    .return_codes
                    .iter()
                    .any(|code| matches!(code, SubscribeReasonCode::Failure));
                shared.tracker().subscribe_acked(suback.pkid, refused);
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let _ = messages.send(ReceivedMessage {
                    topic: publish.topic,
                    payload: publish.payload,
                    retain: publish.retain,
                    qos: publish.qos,
                });
            }
            Event::Outgoing(Outgoing::Disconnect) => {
                shared.fail(UnitError::Closed);
                return;
            }
            _ => {}
        }
    }
}

fn record_ack(shared: &Shared, pkid: u16, kind: AckKind) {
    if shared.tracker().publish_acked(pkid, kind, Instant::now()) {
        shared.acked.fetch_add(1, Ordering::SeqCst);
        shared.progress.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_parse() {
        let v4: BrokerAddr = "127.0.0.1:1883".parse().expect("v4");
        assert_eq!(v4.host, "127.0.0.1");
        assert_eq!(v4.port, 1883);
        let v6: BrokerAddr = "[::1]:8883".parse().expect("v6");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:8883");
        assert!("localhost".parse::<BrokerAddr>().is_err());
        assert!(":1883".parse::<BrokerAddr>().is_err());
        assert!("host:99999".parse::<BrokerAddr>().is_err());
    }

    #[test]
    fn unit_options_set_the_last_will() {
        let broker: BrokerAddr = "127.0.0.1:1883".parse().expect("addr");
        let options = UnitOptions::unit("dev1", broker.clone())
            .mqtt_options()
            .expect("options");
        let will = options.last_will().expect("will");
        assert_eq!(will.topic, "/tenants/dev1/status");
        assert_eq!(&will.message[..], b"offline");
        assert!(will.retain);
        assert_eq!(will.qos, QoS::AtLeastOnce);
        let observer = UnitOptions::observer("obs", broker)
            .mqtt_options()
            .expect("options");
        assert!(observer.last_will().is_none());
    }

    #[test]
    fn nagle_stays_on_unless_asked() {
        let broker: BrokerAddr = "127.0.0.1:1883".parse().expect("addr");
        let options = UnitOptions::unit("dev1", broker);
        assert!(!options.tcp_nodelay);
        assert!(options.with_tcp_nodelay(true).tcp_nodelay);
    }

    #[test]
    fn transport_debug_hides_key_material() {
        let transport = MqttTransport::Tls {
            ca_pem: "CA".into(),
            cert_pem: "CERT".into(),
            key_pem: "SECRET KEY".into(),
            server_name: "localhost".into(),
        };
        assert!(!format!("{transport:?}").contains("SECRET"));
    }

    #[tokio::test]
    async fn connect_to_nothing_fails_cleanly() {
        // Bind then drop a listener to get a local port with nobody on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let broker = BrokerAddr {
            host: "127.0.0.1".into(),
            port,
        };
        let mut options = UnitOptions::unit("dev1", broker);
        options.connect_timeout = Duration::from_secs(2);
        let outcome = SimUnit::connect(options).await;
        assert!(
            matches!(outcome, Err(UnitError::Connect(_))),
            "{:?}",
            outcome.err()
        );
    }
}
