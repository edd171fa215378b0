//! The embedded rumqttd broker: its configuration, its listeners, and the one link the
//! gateway uses to read units' messages and publish to units and integrations.
//!
//! Facts that shaped this file (see shared/RUMQTTD-NOTES.md):
//! - `Broker::start` blocks forever, so it gets its own thread and is never stopped; the
//!   process exit ends it.
//! - rumqttd binds its listeners itself and never reports the address, so port 0 is
//!   resolved here (bind, read the port, release) and readiness is a successful connect.
//! - `LinkTx` sends block when the router is busy, so one thread owns it ([`MqttOut`]).
//! - The router keeps a ring of `segment size x count` per subscription filter; a reader
//!   slower than that loses messages (counted through `CursorJump` alerts).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use actors::MqttPublisher;
use anyhow::{bail, Context as _};
use bytes::Bytes;
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish};
use rumqttd::{ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};
use tokio::sync::mpsc;

/// Largest MQTT payload the broker accepts. Bigger than the 4 KiB telemetry limit on
/// purpose: an oversize point must reach the gateway to be counted, not vanish in the
/// broker with a silent disconnect.
pub const MAX_BROKER_PAYLOAD: usize = 64 * 1024;
/// Per-filter ring: 16 MiB x 8 segments, about 12 s of 50,000 points/s of 200 B.
pub const SEGMENT_SIZE: usize = 16 * 1024 * 1024;
pub const SEGMENT_COUNT: usize = 8;

/// PEM files for the TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// The running broker's addresses and the gateway's link to it.
pub struct EmbeddedBroker {
    pub plain_addr: Option<SocketAddr>,
    pub tls_addr: Option<SocketAddr>,
    pub link_rx: LinkRx,
    pub alerts: rumqttd::alerts::AlertsLink,
    pub out: MqttOut,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("plain_addr", &self.plain_addr)
            .field("tls_addr", &self.tls_addr)
            .finish_non_exhaustive()
    }
}

/// Filters the gateway reads. One level of `+` each: integration topics
/// (`/tenants/{a}/assets/{x}/telemetry`) do not match them.
pub const INGEST_FILTERS: [&str; 4] = [
    "/tenants/+/telemetry",
    "/tenants/+/status",
    "/tenants/+/keys/ack",
    "/tenants/+/events/access",
];

fn free_port(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe =
        TcpListener::bind(addr).with_context(|| format!("probing a free port on {addr}"))?;
    Ok(probe.local_addr()?)
}

fn server(name: &str, listen: SocketAddr, tls: Option<TlsConfig>) -> ServerSettings {
    ServerSettings {
        name: name.to_owned(),
        listen,
        tls,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: MAX_BROKER_PAYLOAD,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

fn wait_listening(addr: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let target = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("the MQTT listener on {addr} did not come up (port taken?)")
}

pub fn start(
    plain: Option<SocketAddr>,
    tls: Option<(SocketAddr, TlsFiles)>,
) -> anyhow::Result<EmbeddedBroker> {
    if plain.is_none() && tls.is_none() {
        bail!("no MQTT listener configured: set --mqtt-tls-addr or --mqtt-plain-addr");
    }
    let mut servers = HashMap::new();
    let plain_addr = plain.map(free_port).transpose()?;
    if let Some(addr) = plain_addr {
        servers.insert("plain".to_owned(), server("mqtt-plain", addr, None));
    }
    let mut tls_addr = None;
    if let Some((addr, files)) = tls {
        let addr = free_port(addr)?;
        let settings = TlsConfig::Rustls {
            capath: Some(files.ca),
            certpath: files.cert,
            keypath: files.key,
        };
        servers.insert("tls".to_owned(), server("mqtt-tls", addr, Some(settings)));
        tls_addr = Some(addr);
    }
    // Both kinds must be configured: rumqttd's timer unwraps the meters interval even
    // when only alerts are asked for (a panic on its timer thread, seen in 0.20.0).
    let metrics = serde_json::from_value(serde_json::json!({
        "alerts": {"push_interval": 1},
        "meters": {"push_interval": 3600}
    }))
    .context("alert settings")?;
    let config = rumqttd::Config {
        router: RouterConfig {
            max_connections: 200_000,
            max_outgoing_packet_count: 200,
            max_segment_size: SEGMENT_SIZE,
            max_segment_count: SEGMENT_COUNT,
            ..RouterConfig::default()
        },
        v4: Some(servers),
        metrics: Some(metrics),
        ..rumqttd::Config::default()
    };
    let mut broker = rumqttd::Broker::new(config);
    let (mut link_tx, link_rx) = broker.link("fleetgate").context("opening the local link")?;
    for filter in INGEST_FILTERS {
        link_tx
            .subscribe(filter)
            .context("subscribing the local link")?;
    }
    let alerts = broker.alerts().context("opening the alerts link")?;
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(err) = broker.start() {
                tracing::error!(%err, "embedded broker stopped");
            }
        })?;
    for addr in plain_addr.iter().chain(tls_addr.iter()) {
        wait_listening(*addr, Duration::from_secs(10))?;
    }
    Ok(EmbeddedBroker {
        plain_addr,
        tls_addr,
        link_rx,
        alerts,
        out: MqttOut::spawn(link_tx)?,
    })
}

/// The single owner of the local link's sending half.
#[derive(Debug, Clone)]
pub struct MqttOut {
    queue: mpsc::UnboundedSender<(String, Bytes, bool)>,
}

impl MqttOut {
    fn spawn(mut link_tx: LinkTx) -> anyhow::Result<MqttOut> {
        let (queue, mut inbox) = mpsc::unbounded_channel::<(String, Bytes, bool)>();
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        std::thread::Builder::new()
            .name("mqtt-out".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some((topic, payload, retain)) = inbox.recv().await {
                        let publish = Publish::new(Bytes::from(topic), payload, retain);
                        if let Err(err) = link_tx.send(Packet::Publish(publish, None)).await {
                            tracing::error!(%err, "local link closed; MQTT output stops");
                            break;
                        }
                    }
                })
            })?;
        Ok(MqttOut { queue })
    }
}

impl MqttPublisher for MqttOut {
    fn publish(&self, topic: String, payload: Bytes, retain: bool) {
        let _ = self.queue.send((topic, payload, retain));
    }
}
