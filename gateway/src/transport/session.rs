//! One task per connection: the CONNECT, then the packet loop.
//!
//! The loop reads the socket only while the session may take another publish: fewer than
//! `receive_maximum` unacknowledged and a global ingest permit in hand. Otherwise the bytes
//! wait in the kernel and TCP pushes back on the unit; its keep alive is not judged while
//! the gateway is the one holding it up. Acknowledgements leave in arrival order
//! (`FuturesOrdered`), each once the backend's verdict is in.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use futures_util::FutureExt;
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::acl::{self, Denied, Grant};
use super::codec::{self, AckReason, ConnAckLimits, ConnectRefusal, In, ServerDisconnect, Writer};
use super::metrics::TransportMetrics;
use super::registry::{Delivery, Mailbox, Persisted, Registry};
use super::tls::PeerIdentity;
use super::{Backend, CloseReason, Peer, UnitMessage, Verdict};

/// What every session shares.
pub(crate) struct Shared {
    pub backend: Arc<dyn Backend>,
    pub registry: Arc<Registry>,
    /// Publishes waiting on the store, gateway-wide (`Limits::ingest_permits`).
    pub permits: Arc<Semaphore>,
}

/// An acknowledgement waiting for its verdict; holds its ingest permit until then.
struct Ack {
    packet_id: u16,
    qos: QoS,
    verdict: Verdict,
}

type AckFuture = BoxFuture<'static, Ack>;

/// Read buffer sizes: small while a session is idle, so thousands of idle units cost
/// little; larger once reads fill it (a busy unit).
const IDLE_READ: usize = 256;
const BUSY_READ: usize = 16 * 1024;

struct Session<S> {
    stream: S,
    writer: Writer,
    out: BytesMut,
    buf: BytesMut,
    busy: bool,
    /// The last turn did not read (held up by the gateway): the next turn that reads starts
    /// the unit's keep alive afresh.
    held_up: bool,
    peer: Peer,
    /// Whether the session's state outlives the connection (persistent session).
    keep_state: bool,
    mailbox: Arc<Mailbox>,
    deliveries: Option<mpsc::Receiver<Delivery>>,
    acks: FuturesOrdered<AckFuture>,
    in_flight: HashSet<u16>,
    awaiting_release: HashSet<u16>,
    spare: Option<OwnedSemaphorePermit>,
    subscriptions: Vec<(String, QoS)>,
    next_packet_id: u16,
    keep_alive: Option<Duration>,
    deadline: Instant,
    /// An MQTT 3.1.1 PUBLISH over the packet limit being skipped: the bytes still to drop,
    /// then the refusal to acknowledge it with (none for QoS 0).
    skipping: Option<(usize, Option<(u16, QoS)>)>,
    shared: Arc<Shared>,
}

/// What to do with a packet over the limit.
enum Oversize {
    /// Skip its bytes, then acknowledge it as refused.
    Skip,
    /// Its head is not all here yet.
    NeedMore,
    Close(CloseReason),
}

fn metrics(shared: &Shared) -> &TransportMetrics {
    &shared.registry.metrics
}

/// Runs a connection from its first byte to its close.
pub(crate) async fn run<S>(mut stream: S, shared: Arc<Shared>, identity: Option<PeerIdentity>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limits = shared.registry.limits.clone();
    let mut buf = BytesMut::with_capacity(IDLE_READ);
    // The phases before and after the session (reading the CONNECT, resuming, handling one
    // packet, closing) run boxed: an `async fn` reserves room for its largest `.await` for
    // as long as it lives, and an idle unit's task would carry all of them (dhat measured
    // the session task at 9.8 KB a unit before).
    let connect = match Box::pin(read_connect(&mut stream, &mut buf, &limits)).await {
        Ok(connect) => connect,
        Err((reason, refusal)) => {
            TransportMetrics::count(&metrics(&shared).refusals, "reason", reason);
            if let Some(out) = refusal {
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
            }
            return;
        }
    };
    let writer = Writer {
        version: connect.version,
    };
    let (peer, admitted) = match admit(&shared, &connect, identity, writer) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let _ = stream.write_all(&refusal).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    shared.backend.opened(&peer, admitted.took_over).await;
    TransportMetrics::count(&metrics(&shared).connects, "role", role_label(peer.role));
    metrics(&shared).sessions.inc();
    let mut out = BytesMut::new();
    writer.connack(
        &mut out,
        None,
        admitted.resumed.is_some(),
        &connack_limits(&limits, connect.session_expiry_s),
    );
    let keep_alive = (connect.keep_alive > 0)
        .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
    let mut session = Session {
        stream,
        writer,
        out,
        buf,
        busy: false,
        held_up: false,
        skipping: None,
        peer,
        // MQTT 5 §3.1.2.11.2: a session expiry of 0 (the default) ends the session with
        // the connection, clean start or not; MQTT 3.1.1 keeps it until a clean session.
        keep_state: !connect.clean
            && (connect.version == codec::Version::V4 || connect.session_expiry_s.unwrap_or(0) > 0),
        mailbox: admitted.mailbox,
        deliveries: admitted.deliveries,
        acks: FuturesOrdered::new(),
        in_flight: HashSet::new(),
        awaiting_release: HashSet::new(),
        spare: None,
        subscriptions: Vec::new(),
        next_packet_id: 0,
        keep_alive,
        deadline: Instant::now() + keep_alive.unwrap_or(Duration::ZERO),
        shared: shared.clone(),
    };
    let reason = session.serve(admitted.resumed).await;
    Box::pin(session.finish(reason, admitted.ended)).await;
}

/// Decides a CONNECT: the identity (certificate or client id), its role, the registry's
/// admission. `Err` holds the refusing CONNACK, already counted.
fn admit(
    shared: &Shared,
    connect: &codec::Connect,
    identity: Option<PeerIdentity>,
    writer: Writer,
) -> Result<(Peer, super::registry::Admitted), BytesMut> {
    let limits = &shared.registry.limits;
    let refuse = |refusal: ConnectRefusal, label: &'static str| {
        TransportMetrics::count(&metrics(shared).refusals, "reason", label);
        let mut out = BytesMut::new();
        writer.connack(
            &mut out,
            Some(refusal),
            false,
            &connack_limits(limits, None),
        );
        out
    };
    let (tenant, serial) = match identity {
        Some(identity) => (identity.tenant, Some(Arc::<str>::from(identity.serial))),
        None => (connect.client_id.clone(), None),
    };
    if connect.client_id.len() > limits.max_client_id
        || (serial.is_none() && connect.client_id.is_empty())
    {
        return Err(refuse(ConnectRefusal::BadClientId, "bad_client_id"));
    }
    let Some(identified) = shared.backend.identify(&tenant) else {
        return Err(refuse(ConnectRefusal::NotAuthorized, "unknown_identity"));
    };
    let role = identified.role;
    let tenant: Arc<str> = Arc::from(tenant);
    let admitted = shared
        .registry
        .admit(&tenant, role, connect.clean, serial.clone())
        .map_err(|(refusal, label)| refuse(refusal, label))?;
    let peer = Peer {
        tenant,
        role,
        session: admitted.session,
        serial,
        link: identified.link,
    };
    Ok((peer, admitted))
}

fn role_label(role: acl::Role) -> &'static str {
    match role {
        acl::Role::Unit => "unit",
        acl::Role::Integration => "integration",
    }
}

fn connack_limits(limits: &super::Limits, session_expiry_s: Option<u32>) -> ConnAckLimits {
    ConnAckLimits {
        receive_maximum: limits.receive_maximum,
        max_packet: limits.max_packet,
        session_expiry_s,
    }
}

/// Reads the CONNECT within the deadline. `Err(Some(bytes))`: answer those and close;
/// `Err(None)`: just close.
/// Reads the CONNECT. `Err` holds the refusal's `reason` label and the CONNACK to send
/// before closing, if any.
async fn read_connect<S>(
    stream: &mut S,
    buf: &mut BytesMut,
    limits: &super::Limits,
) -> Result<codec::Connect, (&'static str, Option<BytesMut>)>
where
    S: AsyncRead + Unpin,
{
    let deadline = Instant::now() + limits.handshake_timeout;
    loop {
        match codec::read_connect(buf, limits.max_packet) {
            Ok(Some(connect)) => return Ok(connect),
            Ok(None) => {}
            Err(codec::Violation::ProtocolLevel(level)) => {
                // MQTT 3.1.1 §3.2.2.3: 0x01 unacceptable protocol version, then close.
                tracing::debug!(level, "CONNECT with an unsupported protocol level");
                let unacceptable = BytesMut::from(&[0x20u8, 0x02, 0x00, 0x01][..]);
                return Err(("protocol_level", Some(unacceptable)));
            }
            Err(violation) => {
                tracing::debug!(%violation, "refused a connection before CONNECT");
                return Err(("malformed_connect", None));
            }
        }
        buf.reserve(IDLE_READ);
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return Err(("closed_before_connect", None)),
            Err(_) => return Err(("connect_timeout", None)),
        }
    }
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn can_take(&self) -> bool {
        self.spare.is_some()
            && self.acks.len() < usize::from(self.shared.registry.limits.receive_maximum)
    }

    async fn serve(&mut self, resumed: Option<Persisted>) -> CloseReason {
        if let Err(reason) = Box::pin(self.resume(resumed)).await {
            return reason;
        }
        self.spare = self.shared.permits.clone().try_acquire_owned().ok();
        loop {
            if let Err(reason) = self.step().await {
                return reason;
            }
        }
    }

    /// One turn of the loop: decode what is buffered, flush, then wait for the next thing.
    async fn step(&mut self) -> Result<(), CloseReason> {
        let max_packet = self.shared.registry.limits.max_packet;
        while self.can_take() {
            if self.skip_oversized() {
                break;
            }
            match codec::read(self.writer.version, &mut self.buf, max_packet) {
                Ok(Some(packet)) => Box::pin(self.handle(packet)).await?,
                Ok(None) => break,
                Err(codec::Violation::TooLarge(size)) => match self.oversized(size, max_packet) {
                    Oversize::Skip => {}
                    Oversize::NeedMore => break,
                    Oversize::Close(reason) => return Err(reason),
                },
                Err(violation) => {
                    self.disconnect(ServerDisconnect::ProtocolError);
                    return Err(CloseReason::ProtocolViolation(violation.to_string()));
                }
            }
        }
        self.flush().await?;
        let reading = self.can_take();
        if reading == self.held_up {
            // Held up by the gateway, or reading again after it: the unit's keep alive
            // starts again when we read. Setting it only while held up left it stale when
            // the first acknowledgements of a held-up batch freed the session and the rest
            // waited for the next commit: a silent unit was dropped for keep alive then.
            self.held_up = !reading;
            self.deadline = Instant::now() + self.keep_alive.unwrap_or(Duration::ZERO);
        }
        if self.buf.is_empty() && self.buf.capacity() > BUSY_READ {
            self.buf = BytesMut::new();
        }
        let want = if self.busy { BUSY_READ } else { IDLE_READ };
        if reading && self.buf.capacity() - self.buf.len() < want / 2 {
            self.buf.reserve(want);
        }
        let room = self.buf.capacity() - self.buf.len();
        let keep_alive = self.keep_alive.is_some();
        tokio::select! {
            biased;
            () = self.mailbox.wake.notified() => self.woken()?,
            Some(ack) = self.acks.next(), if !self.acks.is_empty() => {
                self.acknowledge(ack)?;
                // One commit completes many publishes at once: acknowledge every one that
                // is ready, so they leave in one write instead of one write each.
                while let Some(Some(ack)) = self.acks.next().now_or_never() {
                    self.acknowledge(ack)?;
                }
            }
            permit = self.shared.permits.clone().acquire_owned(), if self.spare.is_none() => {
                self.spare = permit.ok();
            }
            Some((topic, payload)) = recv(&mut self.deliveries) => {
                self.send_publish(&topic, payload, false);
            }
            read = self.stream.read_buf(&mut self.buf), if reading => match read {
                Ok(0) | Err(_) => return Err(CloseReason::ConnectionLost),
                Ok(n) => {
                    self.busy = n >= room;
                    self.deadline = Instant::now() + self.keep_alive.unwrap_or(Duration::ZERO);
                }
            },
            () = tokio::time::sleep_until(self.deadline), if reading && keep_alive => {
                self.disconnect(ServerDisconnect::KeepAliveTimeout);
                return Err(CloseReason::KeepAliveTimeout);
            }
        }
        Ok(())
    }

    /// A packet over the limit. MQTT 5 clients were told the limit in CONNACK: closed with
    /// DISCONNECT 0x95 (§3.2.2.3.6). An MQTT 3.1.1 client had no way to know it, and closing
    /// would make it send the same PUBLISH for ever: its bytes are skipped as they arrive
    /// and it is acknowledged as refused (§3.3.5). Either way the refusal is counted and
    /// named in the unit's status.
    fn oversized(&mut self, size: usize, max_packet: usize) -> Oversize {
        let why = format!("packet of {size} bytes over the {max_packet}-byte limit");
        let head = match self.writer.version {
            codec::Version::V4 => {
                codec::oversized_publish(&self.buf, self.shared.registry.limits.max_topic)
            }
            codec::Version::V5 => Err(codec::Violation::TooLarge(size)),
        };
        match head {
            Ok(None) => return Oversize::NeedMore,
            Ok(Some(head)) => {
                let ack = (head.qos != QoS::AtMostOnce).then_some((head.packet_id, head.qos));
                self.skipping = Some((head.size, ack));
            }
            Err(_) => self.disconnect(ServerDisconnect::PacketTooLarge),
        }
        let (reason, detail) = ("too_large", format!("publish: {why}"));
        self.shared.backend.unreadable(&self.peer, reason, detail);
        match self.skipping {
            Some(_) => Oversize::Skip,
            None => Oversize::Close(CloseReason::ProtocolViolation(why)),
        }
    }

    /// Drops what is buffered of a PUBLISH being skipped; true while more of it is to come.
    /// Once it is all gone, its refusal is acknowledged in order with the others.
    fn skip_oversized(&mut self) -> bool {
        let Some((left, ack)) = self.skipping.as_mut() else {
            return false;
        };
        let dropped = (*left).min(self.buf.len());
        bytes::Buf::advance(&mut self.buf, dropped);
        *left -= dropped;
        if *left > 0 {
            return true;
        }
        if let Some((packet_id, qos)) = ack.take() {
            self.in_flight.insert(packet_id);
            let verdict = Verdict::Refused(AckReason::PayloadFormatInvalid, "too_large");
            let ack = Ack {
                packet_id,
                qos,
                verdict,
            };
            self.acks
                .push_back(futures_util::future::ready(ack).boxed());
        }
        self.skipping = None;
        false
    }

    /// Drops from `queue` the points the account may no longer see, counted. Asked when
    /// access changed and when a persistent session resumes: a grant that ran out is out
    /// of the history reads at its instant, before the scheduler's commit says so.
    fn withdraw_unseen(&self, queue: &mut VecDeque<Delivery>) {
        if queue.is_empty() {
            return;
        }
        let before = queue.len();
        self.shared
            .backend
            .retain_deliverable(&self.peer.tenant, queue);
        metrics(&self.shared)
            .integration_withdrawn
            .inc_by((before - queue.len()) as u64);
    }

    fn woken(&mut self) -> Result<(), CloseReason> {
        if let Some(reason) = self.mailbox.take_close() {
            return Err(reason);
        }
        if self.mailbox.take_recheck() {
            // Queued before access changed: only what the account may still see goes.
            let mut queue = drain_queue(&mut self.deliveries);
            self.withdraw_unseen(&mut queue);
            for (topic, payload) in queue {
                self.send_publish(&topic, payload, false);
            }
        }
        if let Some(keys) = self.mailbox.take_keys() {
            let topic = format!("/tenants/{}/keys", self.peer.tenant);
            if self.subscribed_qos(&topic).is_some() {
                self.send_publish(&topic, keys, true);
            }
        }
        Ok(())
    }

    fn subscribed_qos(&self, topic: &str) -> Option<QoS> {
        self.mailbox.subscribed(topic)
    }

    /// Restores a persistent session: its subscriptions, its key set, its queued points.
    async fn resume(&mut self, resumed: Option<Persisted>) -> Result<(), CloseReason> {
        let Some(resumed) = resumed else {
            return self.flush().await;
        };
        self.subscriptions = resumed.subscriptions;
        if self.peer.role == acl::Role::Unit && !self.subscriptions.is_empty() {
            self.send_key_set().await;
        }
        let mut queue = resumed.queue;
        self.withdraw_unseen(&mut queue);
        for (topic, payload) in queue {
            self.send_publish(&topic, payload, false);
        }
        self.flush().await
    }

    async fn handle(&mut self, packet: In) -> Result<(), CloseReason> {
        self.deadline = Instant::now() + self.keep_alive.unwrap_or(Duration::ZERO);
        match packet {
            In::Publish {
                topic,
                payload,
                qos,
                packet_id,
                dup,
            } => self.publish(topic, payload, qos, packet_id, dup),
            In::PubRel(packet_id) => {
                self.awaiting_release.remove(&packet_id);
                self.writer.pubcomp(&mut self.out, packet_id);
            }
            // Acknowledgements of what we sent: key sets and live points are not resent
            // within a session (a new subscribe or session sends the current state).
            In::PubAck(_) | In::PubRec(_) | In::PubComp(_) => {}
            In::Subscribe { packet_id, filters } => self.subscribe(packet_id, filters).await,
            In::Unsubscribe { packet_id, filters } => {
                let count = filters.len();
                self.subscriptions.retain(|(f, _)| !filters.contains(f));
                self.mailbox.set_subscriptions(self.subscriptions.clone());
                self.writer.unsuback(&mut self.out, packet_id, count);
            }
            In::PingReq => self.writer.pingresp(&mut self.out),
            In::Disconnect => return Err(CloseReason::ClientDisconnect),
        }
        Ok(())
    }

    fn publish(&mut self, topic: String, payload: Bytes, qos: QoS, packet_id: u16, dup: bool) {
        if qos == QoS::ExactlyOnce && self.awaiting_release.contains(&packet_id) {
            // A resent QoS 2 publish already stored: PUBREC again, store nothing.
            self.writer
                .pubrec(&mut self.out, packet_id, AckReason::Success);
            return;
        }
        if qos != QoS::AtMostOnce && self.in_flight.contains(&packet_id) {
            // A resend of one still in flight: its first copy's acknowledgement answers both.
            return;
        }
        let checked = if topic.len() > self.shared.registry.limits.max_topic {
            Err(Denied::Malformed)
        } else {
            acl::check_publish(self.peer.role, &self.peer.tenant, &topic)
        };
        let unit_topic = match checked {
            Ok(unit_topic) => unit_topic,
            Err(denied) => {
                self.deny("publish", denied, &topic);
                let reason = match denied {
                    Denied::Malformed => AckReason::TopicNameInvalid,
                    Denied::OtherTenant | Denied::NotAllowed => AckReason::NotAuthorized,
                };
                if qos != QoS::AtMostOnce {
                    self.in_flight.insert(packet_id);
                    let verdict = Verdict::Refused(reason, denied.label());
                    self.acks.push_back(
                        futures_util::future::ready(Ack {
                            packet_id,
                            qos,
                            verdict,
                        })
                        .boxed(),
                    );
                }
                return;
            }
        };
        let message = UnitMessage {
            topic: unit_topic,
            payload,
            packet_id: (qos != QoS::AtMostOnce).then_some(packet_id),
            dup,
        };
        let verdict = self.shared.backend.publish(&self.peer, message);
        if qos == QoS::AtMostOnce {
            // Best effort: stored if a permit is free now, shed and counted otherwise.
            match self.shared.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    drop(tokio::spawn(async move {
                        let _ = verdict.await;
                        drop(permit);
                    }));
                }
                Err(_) => {
                    metrics(&self.shared).qos0_shed.inc();
                }
            }
            return;
        }
        let permit = self.spare.take();
        self.spare = self.shared.permits.clone().try_acquire_owned().ok();
        self.in_flight.insert(packet_id);
        self.acks.push_back(
            async move {
                let verdict = verdict.await;
                drop(permit);
                Ack {
                    packet_id,
                    qos,
                    verdict,
                }
            }
            .boxed(),
        );
    }

    fn acknowledge(&mut self, ack: Ack) -> Result<(), CloseReason> {
        self.in_flight.remove(&ack.packet_id);
        let reason = match ack.verdict {
            Verdict::Accepted => AckReason::Success,
            Verdict::Refused(reason, _) => reason,
            Verdict::NotStored => return Err(CloseReason::StoreFailed),
        };
        match ack.qos {
            QoS::ExactlyOnce => {
                self.awaiting_release.insert(ack.packet_id);
                self.writer.pubrec(&mut self.out, ack.packet_id, reason);
            }
            _ => self.writer.puback(&mut self.out, ack.packet_id, reason),
        }
        Ok(())
    }

    async fn subscribe(&mut self, packet_id: u16, filters: Vec<(String, QoS)>) {
        let limits = self.shared.registry.limits.clone();
        let mut granted = Vec::with_capacity(filters.len());
        let mut keys = false;
        for (filter, qos) in filters {
            let known = self.subscriptions.iter().any(|(f, _)| *f == filter);
            let decided = if filter.len() > limits.max_topic {
                Err(Denied::Malformed)
            } else {
                acl::check_subscribe(self.peer.role, &self.peer.tenant, &filter)
            };
            match decided {
                Ok(_) if !known && self.subscriptions.len() >= limits.max_subscriptions => {
                    metrics(&self.shared)
                        .acl_denied
                        .get_or_create(&vec![
                            ("kind", "subscribe"),
                            ("reason", "subscription_limit"),
                        ])
                        .inc();
                    granted.push(Err(false));
                }
                Ok(grant) => {
                    // Outgoing QoS 2 would need a PUBREC/PUBREL exchange for data that is
                    // resent from the store anyway: granted at most QoS 1.
                    let qos = if qos == QoS::ExactlyOnce {
                        QoS::AtLeastOnce
                    } else {
                        qos
                    };
                    self.subscriptions.retain(|(f, _)| *f != filter);
                    self.subscriptions.push((filter, qos));
                    keys |= grant == Grant::Keys;
                    granted.push(Ok(qos));
                }
                Err(denied) => {
                    self.deny("subscribe", denied, &filter);
                    granted.push(Err(denied == Denied::Malformed));
                }
            }
        }
        self.mailbox.set_subscriptions(self.subscriptions.clone());
        self.writer.suback(&mut self.out, packet_id, &granted);
        if keys {
            // MQTT 3.1.1 §3.8.4: the retained key set follows every subscribe, from the
            // store, for clean and persistent sessions alike.
            self.send_key_set().await;
        }
    }

    async fn send_key_set(&mut self) {
        if let Some(payload) = self.shared.backend.key_set(&self.peer).await {
            let topic = format!("/tenants/{}/keys", self.peer.tenant);
            self.send_publish(&topic, payload, true);
        }
    }

    fn deny(&self, kind: &'static str, denied: Denied, topic: &str) {
        metrics(&self.shared)
            .acl_denied
            .get_or_create(&vec![("kind", kind), ("reason", denied.label())])
            .inc();
        self.shared.backend.denied(&self.peer, denied, topic);
    }

    fn send_publish(&mut self, topic: &str, payload: Bytes, retain: bool) {
        let Some(qos) = self.subscribed_qos(topic) else {
            return;
        };
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            self.next_packet_id
        };
        self.writer
            .publish(&mut self.out, topic, payload, qos, packet_id, retain);
    }

    fn disconnect(&mut self, reason: ServerDisconnect) {
        self.writer.disconnect(&mut self.out, reason);
    }

    async fn flush(&mut self) -> Result<(), CloseReason> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.stream.write_all(&self.out).await;
        let flushed = match written {
            Ok(()) => self.stream.flush().await,
            Err(err) => Err(err),
        };
        self.out.clear();
        if self.out.capacity() > BUSY_READ {
            self.out = BytesMut::new();
        }
        flushed.map_err(|_| CloseReason::ConnectionLost)
    }

    /// Ends the session: on shutdown the acknowledgements in flight go out first (the
    /// writer commits them); then the MQTT 5 DISCONNECT, the registry and the backend.
    async fn finish(mut self, reason: CloseReason, ended: tokio::sync::watch::Sender<bool>) {
        if reason == CloseReason::ShuttingDown {
            let deadline = Instant::now() + self.shared.registry.limits.drain_timeout;
            while let Ok(Some(ack)) = tokio::time::timeout_at(deadline, self.acks.next()).await {
                if self.acknowledge(ack).is_err() {
                    break;
                }
            }
        }
        let server_reason = match &reason {
            CloseReason::ShuttingDown => Some(ServerDisconnect::ShuttingDown),
            CloseReason::TakenOver => Some(ServerDisconnect::SessionTakenOver),
            CloseReason::Revoked => Some(ServerDisconnect::NotAuthorized),
            _ => None,
        };
        if let Some(server_reason) = server_reason {
            self.disconnect(server_reason);
        }
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        let keep = self.keep_state.then(|| Persisted {
            subscriptions: std::mem::take(&mut self.subscriptions),
            queue: drain_queue(&mut self.deliveries),
        });
        let shared = self.shared.clone();
        shared
            .registry
            .leave(&self.peer.tenant, self.peer.session, keep);
        metrics(&shared).sessions.dec();
        TransportMetrics::count(&metrics(&shared).disconnects, "reason", reason.label());
        shared.backend.closed(&self.peer, &reason).await;
        let _ = ended.send(true);
    }
}

async fn recv(deliveries: &mut Option<mpsc::Receiver<Delivery>>) -> Option<Delivery> {
    match deliveries {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

fn drain_queue(deliveries: &mut Option<mpsc::Receiver<Delivery>>) -> VecDeque<Delivery> {
    let mut queue = VecDeque::new();
    if let Some(receiver) = deliveries {
        while let Ok(delivery) = receiver.try_recv() {
            queue.push_back(delivery);
        }
    }
    queue
}
