//! Fleetgate's own MQTT transport: the unit and integration sessions, owned end to end.
//!
//! Fleetgate is a gateway with a closed topic space, not a general broker (docs/design.md
//! section 4; docs/transport.md says why it left the embedded rumqttd). This module knows
//! MQTT and TLS and nothing of accounts, grants or storage: it talks to the rest of the
//! gateway through the [`Backend`] trait, which the gateway implements over its actors.
//!
//! # Layout
//! - [`codec`]: MQTT 3.1.1 and 5 framing on one port (rumqttc's `mqttbytes`).
//! - [`acl`]: the closed topic space, decided by structure.
//! - [`tls`]: rustls server config, the run-time deny list, the peer's identity.
//! - `tls_stream`: the unit session's TLS stream on rustls's unbuffered API (an idle
//!   session holds no TLS buffer) and its handshake.
//! - `registry`: live sessions by identity (takeover, close on demand, persistent state).
//! - `session`: one task per connection: CONNECT, the packet loop, ordered acks.
//! - `listener`: accept loops, the handshake cap, the connection cap.
//! - [`metrics`]: what the transport counts, rendered into `/metrics`.
//!
//! **Invariant:** a QoS 1 or 2 publish is acknowledged only when the [`Backend`] said it is
//! stored or refused for good, in the order the publishes arrived (MQTT 3.1.1 §4.6).
//! **Invariant:** every queue is bounded: a session holds at most `receive_maximum`
//! unacknowledged publishes and the whole transport at most `ingest_permits`; past that it
//! stops reading its socket (push back). Live output to integrations is shed and counted.

pub mod acl;
pub mod codec;
mod listener;
pub mod metrics;
mod registry;
mod session;
pub mod tls;
mod tls_stream;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;

pub use acl::{Denied, Role, UnitTopic};
pub use codec::AckReason;
pub use listener::{Transport, TransportHandle};

/// Bounds that keep one session, or a storm of them, from taking the gateway down.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest client id accepted, in bytes (MQTT 5 §3.1.3.1 lets servers refuse long ones).
    pub max_client_id: usize,
    /// Longest topic name or filter, in bytes.
    pub max_topic: usize,
    /// Largest packet accepted, in bytes (announced as MQTT 5 maximum packet size). Above
    /// the 4 KiB telemetry limit on purpose: an oversize point must arrive to be counted.
    pub max_packet: usize,
    /// Subscriptions one session may hold.
    pub max_subscriptions: usize,
    /// QoS 1/2 publishes a session may have unacknowledged before it stops reading
    /// (announced as MQTT 5 receive maximum).
    pub receive_maximum: u16,
    /// Publishes waiting on the store across all sessions; past it every session stops
    /// reading until the store catches up.
    pub ingest_permits: usize,
    /// Live points queued for one integration session before they are shed.
    pub integration_queue: usize,
    /// Points kept for an offline persistent integration session (in memory, lost on
    /// restart) before they are shed.
    pub offline_queue: usize,
    /// Open sessions; a CONNECT beyond it is refused (quota exceeded / server unavailable).
    pub max_sessions: usize,
    /// TLS handshakes in progress at once; later connections wait for a slot.
    pub max_handshakes: usize,
    /// Deadline for the TLS handshake and for the CONNECT that must follow, each.
    pub handshake_timeout: Duration,
    /// How long shutdown waits for in-flight acknowledgements before it closes sessions.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_client_id: 128,
            max_topic: 256,
            max_packet: 64 * 1024,
            max_subscriptions: 16,
            receive_maximum: 64,
            ingest_permits: 65_536,
            integration_queue: 1024,
            offline_queue: 1024,
            max_sessions: 50_000,
            max_handshakes: 128,
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Where to listen.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// Mutual TLS, identity from the client certificate.
    pub tls: Option<(SocketAddr, tls::TlsFiles)>,
    /// Development only (loopback): identity from the client id, no authentication.
    pub plain: Option<SocketAddr>,
}

/// Identifies one connection of an identity; a takeover gives the identity a new one.
pub type SessionId = u64;

/// Whatever the backend wants to find again for every publish of a session (for the
/// gateway: the unit's actor address), so it is looked up once per session, not per point.
pub type Link = Arc<dyn std::any::Any + Send + Sync>;

/// What the backend says about an identity it accepts.
#[derive(Clone)]
pub struct Identified {
    pub role: Role,
    pub link: Option<Link>,
}

/// The identity a session speaks for, as the backend sees it.
#[derive(Clone)]
pub struct Peer {
    /// The certificate's Organization (TLS) or the client id (plain listener).
    pub tenant: Arc<str>,
    pub role: Role,
    pub session: SessionId,
    /// The certificate's serial (lowercase hex), on TLS.
    pub serial: Option<Arc<str>>,
    /// The backend's [`Identified::link`].
    pub link: Option<Link>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .field("session", &self.session)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// A publish on one of a unit's topics, passed the ACL.
#[derive(Debug, Clone)]
pub struct UnitMessage {
    pub topic: UnitTopic,
    pub payload: Bytes,
    /// The MQTT packet id (QoS 1 and 2), so a redelivery can be recognised.
    pub packet_id: Option<u16>,
    /// The DUP flag: the unit says it may have sent this before (MQTT 3.1.1 §3.3.1.1).
    pub dup: bool,
}

/// How the gateway decided a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored (or applied): acknowledge.
    Accepted,
    /// Refused for good (malformed, over a limit, not allowed): acknowledge with the
    /// reason (MQTT 5) and never expect it again; `label` is what it is counted as.
    Refused(AckReason, &'static str),
    /// Could not be stored (the store failed): do not acknowledge; the session closes so
    /// the unit sends it again.
    NotStored,
}

/// Why a session ended, as the device status and the metrics name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// The socket closed or failed without a DISCONNECT.
    ConnectionLost,
    /// Nothing arrived within 1.5 times the keep alive (MQTT 3.1.1 §3.1.2.10).
    KeepAliveTimeout,
    /// A new connection with the same identity took over (MQTT 3.1.1 §3.1.4-2).
    TakenOver,
    /// The client broke the protocol; the text says how.
    ProtocolViolation(String),
    /// The certificate was revoked or the identity deregistered.
    Revoked,
    /// The gateway is shutting down.
    ShuttingDown,
    /// The store could not keep a publish; the unit will send it again.
    StoreFailed,
}

impl CloseReason {
    /// Short label for metrics and status.
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::ClientDisconnect => "client_disconnect",
            CloseReason::ConnectionLost => "connection_lost",
            CloseReason::KeepAliveTimeout => "keep_alive_timeout",
            CloseReason::TakenOver => "taken_over",
            CloseReason::ProtocolViolation(_) => "protocol_violation",
            CloseReason::Revoked => "revoked",
            CloseReason::ShuttingDown => "shutting_down",
            CloseReason::StoreFailed => "store_failed",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::ProtocolViolation(how) => write!(f, "protocol_violation: {how}"),
            other => f.write_str(other.label()),
        }
    }
}

/// What the transport needs from the rest of the gateway. Every method returns quickly;
/// the futures may wait (that is how the store pushes back on a session).
pub trait Backend: Send + Sync + 'static {
    /// Who a certificate Organization or a plain client id speaks for; `None` refuses the
    /// CONNECT as not authorized.
    fn identify(&self, tenant: &str) -> Option<Identified>;
    /// A session of `peer` is open (after a takeover, the old one's close comes later and
    /// carries the old session id).
    fn opened(&self, peer: &Peer, took_over: bool) -> BoxFuture<'static, ()>;
    /// A session of `peer` ended.
    fn closed(&self, peer: &Peer, reason: &CloseReason) -> BoxFuture<'static, ()>;
    /// A unit's publish; resolves once it is stored or refused for good.
    fn publish(&self, peer: &Peer, message: UnitMessage) -> BoxFuture<'static, Verdict>;
    /// The ACL refused a publish or a subscription (already counted by the transport).
    fn denied(&self, peer: &Peer, denied: Denied, topic: &str);
    /// A publish of `peer` was refused before it could be read (`reason` the metrics label,
    /// `detail` for the status): a packet over the limit.
    fn unreadable(&self, peer: &Peer, reason: &'static str, detail: String);
    /// The unit's current key set payload (sent on every subscribe to its `keys`).
    fn key_set(&self, peer: &Peer) -> BoxFuture<'static, Option<Bytes>>;
    /// Keeps in `queue` (points queued for an integration session of account `tenant`, as
    /// topic and payload, oldest first) only those the account may still see. Asked after
    /// access changed (see [`TransportHandle::access_changed`]): a point queued while a
    /// grant was in force must not leave once it has ended.
    fn retain_deliverable(&self, tenant: &str, queue: &mut VecDeque<(Arc<str>, Bytes)>);
}
