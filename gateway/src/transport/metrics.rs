//! What the transport counts. Its own prometheus-client registry (prefix `fleetgate_mqtt`),
//! rendered after the actors' metrics by `/metrics`, so the transport stays independent of
//! the actors crate.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// Counters and gauges of the MQTT transport.
#[derive(Debug)]
pub struct TransportMetrics {
    registry: Registry,
    /// Open sessions (CONNACK sent, not yet closed).
    pub sessions: Gauge,
    /// Open TCP connections, sessions or not yet.
    pub connections: Gauge,
    /// Sessions opened, by role.
    pub connects: Family<Labels, Counter>,
    /// Sessions ended, by reason (`taken_over`, `keep_alive_timeout`, ...).
    pub disconnects: Family<Labels, Counter>,
    /// Session takeovers: a second connection of one identity replaced the first.
    pub takeovers: Counter,
    /// Completed TLS handshakes (a session may still be refused at CONNECT).
    pub handshakes: Counter,
    /// Failed TLS handshakes, by reason (`revoked`, `bad_certificate`, `timeout`, `error`).
    pub handshake_failures: Family<Labels, Counter>,
    /// Connections refused or ended before or at CONNECT, by reason (`connection_cap`,
    /// `no_identity`, `connect_timeout`, `closed_before_connect`, `malformed_connect`,
    /// `protocol_level`, `bad_client_id`, `unknown_identity`, `session_cap`).
    pub refusals: Family<Labels, Counter>,
    /// Publishes and subscriptions the ACL refused, by kind and reason.
    pub acl_denied: Family<Labels, Counter>,
    /// QoS 0 publishes shed because the store was behind.
    pub qos0_shed: Counter,
    /// Live points not queued for a slow or offline integration session.
    pub integration_shed: Counter,
    /// Queued integration points dropped because their account's access ended meanwhile.
    pub integration_withdrawn: Counter,
    /// Failed `accept` calls (for example out of file descriptors).
    pub accept_errors: Counter,
}

impl Default for TransportMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl TransportMetrics {
    pub fn new() -> TransportMetrics {
        let mut registry = Registry::with_prefix("fleetgate_mqtt");
        let metrics = TransportMetrics {
            registry: Registry::default(),
            sessions: Gauge::default(),
            connections: Gauge::default(),
            connects: Family::default(),
            disconnects: Family::default(),
            takeovers: Counter::default(),
            handshakes: Counter::default(),
            handshake_failures: Family::default(),
            refusals: Family::default(),
            acl_denied: Family::default(),
            qos0_shed: Counter::default(),
            integration_shed: Counter::default(),
            integration_withdrawn: Counter::default(),
            accept_errors: Counter::default(),
        };
        registry.register("sessions", "Open MQTT sessions", metrics.sessions.clone());
        registry.register(
            "connections",
            "Open MQTT TCP connections",
            metrics.connections.clone(),
        );
        registry.register("connects", "Sessions opened", metrics.connects.clone());
        registry.register(
            "disconnects",
            "Sessions ended, by reason",
            metrics.disconnects.clone(),
        );
        registry.register("takeovers", "Session takeovers", metrics.takeovers.clone());
        registry.register(
            "handshakes",
            "Completed TLS handshakes",
            metrics.handshakes.clone(),
        );
        registry.register(
            "handshake_failures",
            "Failed TLS handshakes, by reason",
            metrics.handshake_failures.clone(),
        );
        registry.register(
            "refusals",
            "Connections refused, by reason",
            metrics.refusals.clone(),
        );
        registry.register(
            "acl_denied",
            "Publishes and subscriptions refused by the topic ACL",
            metrics.acl_denied.clone(),
        );
        registry.register(
            "qos0_shed",
            "QoS 0 publishes shed while the store was behind",
            metrics.qos0_shed.clone(),
        );
        registry.register(
            "integration_shed",
            "Live points shed for slow or offline integration sessions",
            metrics.integration_shed.clone(),
        );
        registry.register(
            "integration_withdrawn",
            "Queued integration points dropped because the account's access to them ended",
            metrics.integration_withdrawn.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accepts on the MQTT listeners",
            metrics.accept_errors.clone(),
        );
        TransportMetrics {
            registry,
            ..metrics
        }
    }

    pub(crate) fn count(family: &Family<Labels, Counter>, key: &'static str, value: &'static str) {
        family.get_or_create(&vec![(key, value)]).inc();
    }

    /// The Prometheus text exposition, without the closing `# EOF` line so it can follow
    /// another registry's output.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out.trim_end_matches("# EOF\n").to_owned()
    }
}
