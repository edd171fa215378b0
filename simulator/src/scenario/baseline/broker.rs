//! The bare broker the baseline measures: rumqttd `RUMQTTD_VERSION` from crates.io,
//! embedded with the router and connection settings the gateway's own embedded rumqttd had
//! until its MQTT transport replaced it (docs/transport.md), one plain-TCP listener on
//! loopback without authentication, and a local link that drains every telemetry publish
//! and only counts it (the "sink" where the gateway decodes, fans out and stores).
//!
//! This is the upstream crate as published, not the patched copy the workspace once
//! vendored (that copy and its `[patch.crates-io]` are gone). Upstream 0.20 awaits each TLS
//! handshake inside its accept loop, which is why the gateway carried a patch; the baseline
//! serves plain TCP only, so there is no handshake to await and the difference does not
//! reach its figures.
//!
//! rumqttd has no shutdown: `Broker::start` joins its listener threads forever, and the
//! router and sink threads live as long as the process. So the broker is one per process
//! (`shared_broker`), started on first use and reused by every later run; runs tell their
//! points apart by device id (each run registers its devices with the sink). Before a broker
//! is handed out, a probe unit publishes one point through it and the sink must see it: that
//! proves the listener is this broker (a bind-probed port can be taken by another process
//! between the probe and rumqttd's own bind) and that the sink still drains. If the probe
//! fails, a new broker is started on a new port; the old one's threads stay parked.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rumqttd::local::LinkRx;
use rumqttd::{ConnectionSettings, Notification, RouterConfig, ServerSettings};
use serde::Deserialize;

use crate::stats::LatencyRecorder;
use crate::telemetry::{now_us, whole_number, SENT_US_SENSOR};
use crate::unit::{BrokerAddr, SimUnit, UnitOptions};

/// The rumqttd the baseline embeds, for the reports. It must match the `rumqttd` entry of
/// the workspace's Cargo.lock (a test below reads the lock file); change both together.
pub(crate) const RUMQTTD_VERSION: &str = "0.20.0";

/// The router and connection settings of the rumqttd the gateway embedded before its own
/// transport (gateway/src/broker.rs, removed with it), kept so the yardstick stays the
/// same broker the earlier baseline figures were measured against.
const MAX_BROKER_PAYLOAD: usize = 64 * 1024;
const SEGMENT_SIZE: usize = 16 * 1024 * 1024;
const SEGMENT_COUNT: usize = 8;
const MAX_CONNECTIONS: usize = 200_000;
const MAX_OUTGOING_PACKET_COUNT: u64 = 200;
const CONNECTION_TIMEOUT_MS: u16 = 60_000;
const MAX_INFLIGHT_COUNT: usize = 1000;
const NEXT_CONNECTION_DELAY_MS: u64 = 1;

/// The filter the sink drains: the contract's telemetry topic of every unit.
const TELEMETRY_FILTER: &str = "/tenants/+/telemetry";
/// How many brokers one acquisition may start before giving up (each failed one leaves
/// parked threads behind, so this stays small).
const START_ATTEMPTS: usize = 3;
/// How long the probe point may take from connect to the sink.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long rumqttd may take to bind its listener after its thread starts.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the sink counted for one run.
#[derive(Debug, Default)]
pub(crate) struct RunSink {
    /// Telemetry publishes of this run's devices the sink drained.
    pub(crate) drained: AtomicU64,
    /// Drained publishes whose payload carried no readable `sensors.sent_us`.
    pub(crate) untracked: AtomicU64,
    /// Publish→sink latency, from the payload's `sent_us` to the sink's clock.
    latency: Mutex<LatencyRecorder>,
}

impl RunSink {
    pub(crate) fn latency(&self) -> LatencyRecorder {
        lock(&self.latency).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Device id → the run it belongs to. Shared between the sink thread and the runs.
#[derive(Debug, Default)]
struct SinkRegistry {
    devices: Mutex<HashMap<String, Arc<RunSink>>>,
    /// Telemetry from devices no run registered (a run that gave up waiting, or a stranger).
    strays: AtomicU64,
}

/// Just the field the sink reads; everything else in the payload is skipped unparsed.
#[derive(Deserialize)]
struct TrackedPoint {
    #[serde(default)]
    sensors: HashMap<String, serde_json::Value>,
}

impl SinkRegistry {
    fn deliver(&self, topic: &[u8], payload: &[u8], arrived_us: u64) {
        let device = std::str::from_utf8(topic)
            .ok()
            .and_then(|topic| topic.strip_prefix("/tenants/"))
            .and_then(|rest| rest.strip_suffix("/telemetry"));
        let sink = device.and_then(|device| lock(&self.devices).get(device).cloned());
        let Some(sink) = sink else {
            self.strays.fetch_add(1, Ordering::Relaxed);
            return;
        };
        sink.drained.fetch_add(1, Ordering::Relaxed);
        match sent_us_of(payload) {
            Some(sent_us) => lock(&sink.latency).record_between(sent_us, arrived_us),
            None => {
                sink.untracked.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The `sensors.sent_us` of a telemetry payload, if it has a whole one.
fn sent_us_of(payload: &[u8]) -> Option<u64> {
    let point: TrackedPoint = serde_json::from_slice(payload).ok()?;
    point
        .sensors
        .get(SENT_US_SENSOR)?
        .as_f64()
        .and_then(whole_number)
}

/// This run's view of the sink; dropping it unregisters the run's devices.
pub(crate) struct Registration {
    registry: Arc<SinkRegistry>,
    devices: Vec<String>,
    pub(crate) sink: Arc<RunSink>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut devices = lock(&self.registry.devices);
        for device in &self.devices {
            devices.remove(device);
        }
    }
}

/// A running bare broker (see the module doc for why it is never stopped).
#[derive(Debug)]
pub(crate) struct BareBroker {
    pub(crate) addr: SocketAddr,
    registry: Arc<SinkRegistry>,
    /// Cleared by the sink thread when its link fails; such a broker is not reused.
    sink_alive: Arc<AtomicBool>,
}

impl BareBroker {
    pub(crate) fn mqtt(&self) -> BrokerAddr {
        BrokerAddr {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
        }
    }

    /// Counts telemetry of `devices` into a fresh `RunSink` until the registration drops.
    /// A device already registered by another live run is refused.
    pub(crate) fn register(&self, devices: Vec<String>) -> Result<Registration, String> {
        let sink = Arc::new(RunSink::default());
        {
            let mut registered = lock(&self.registry.devices);
            if let Some(taken) = devices
                .iter()
                .find(|device| registered.contains_key(*device))
            {
                return Err(format!(
                    "device {taken} is already registered by another baseline run"
                ));
            }
            for device in &devices {
                registered.insert(device.clone(), sink.clone());
            }
        }
        Ok(Registration {
            registry: self.registry.clone(),
            devices,
            sink,
        })
    }

    /// Telemetry the sink drained that belonged to no registered run.
    pub(crate) fn strays(&self) -> u64 {
        self.registry.strays.load(Ordering::Relaxed)
    }
}

/// The process's bare broker: the running one if it still passes the probe, else a new one.
static SHARED: tokio::sync::Mutex<Option<Arc<BareBroker>>> = tokio::sync::Mutex::const_new(None);

/// Hands out the process's bare broker, starting (or replacing) it when needed.
pub(crate) async fn shared_broker() -> Result<Arc<BareBroker>, String> {
    let mut shared = SHARED.lock().await;
    if let Some(broker) = shared.as_ref() {
        if broker.sink_alive.load(Ordering::Relaxed) && probe(broker).await.is_ok() {
            return Ok(broker.clone());
        }
        *shared = None;
    }
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let started = tokio::task::spawn_blocking(start_broker)
            .await
            .map_err(|error| format!("starting the bare broker failed: {error}"))?;
        let broker = match started {
            Ok(broker) => Arc::new(broker),
            Err(error) => {
                failures.push(error);
                continue;
            }
        };
        match probe(&broker).await {
            Ok(()) => {
                *shared = Some(broker.clone());
                return Ok(broker);
            }
            Err(error) => failures.push(format!("{}: {error}", broker.addr)),
        }
    }
    Err(format!(
        "no bare broker passed its probe in {START_ATTEMPTS} attempts: {}",
        failures.join("; ")
    ))
}

/// One point from a probe unit must reach the sink through the listener.
async fn probe(broker: &BareBroker) -> Result<(), String> {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let device = format!(
        "blprobe{}n{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    );
    let registration = broker.register(vec![device.clone()])?;
    let options = UnitOptions::observer(device, broker.mqtt());
    let unit = tokio::time::timeout(PROBE_TIMEOUT, SimUnit::connect(options))
        .await
        .map_err(|_| "probe unit: no connection".to_owned())?
        .map_err(|error| format!("probe unit: {error}"))?;
    let point = serde_json::json!({"sensors": {SENT_US_SENSOR: now_us()}});
    let sent = match unit.send_point(&point).await {
        Ok(waiter) => waiter.wait_timeout(PROBE_TIMEOUT).await,
        Err(error) => Err(error),
    };
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    while sent.is_ok()
        && registration.sink.drained.load(Ordering::Relaxed) == 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = unit.disconnect().await;
    sent.map_err(|error| format!("probe point: {error}"))?;
    if registration.sink.drained.load(Ordering::Relaxed) == 0 {
        return Err(format!(
            "the probe point was acknowledged but the sink did not see it within {PROBE_TIMEOUT:?}"
        ));
    }
    Ok(())
}

/// A free loopback port, found the way the gateway finds one: bind port 0, read it,
/// release it. The probe afterwards catches the case where someone else took it meanwhile.
fn free_loopback_addr() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("probing a free loopback port: {error}"))?;
    listener
        .local_addr()
        .map_err(|error| format!("reading the probed port: {error}"))
}

fn config(addr: SocketAddr) -> rumqttd::Config {
    let server = ServerSettings {
        name: "baseline-plain".to_owned(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: NEXT_CONNECTION_DELAY_MS,
        connections: ConnectionSettings {
            connection_timeout_ms: CONNECTION_TIMEOUT_MS,
            max_payload_size: MAX_BROKER_PAYLOAD,
            max_inflight_count: MAX_INFLIGHT_COUNT,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    rumqttd::Config {
        router: RouterConfig {
            max_connections: MAX_CONNECTIONS,
            max_outgoing_packet_count: MAX_OUTGOING_PACKET_COUNT,
            max_segment_size: SEGMENT_SIZE,
            max_segment_count: SEGMENT_COUNT,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("plain".to_owned(), server)])),
        // No alerts or meters: the baseline checks loss by counting, and the gateway's
        // alert link only feeds its /metrics.
        metrics: None,
        ..rumqttd::Config::default()
    }
}

/// Starts a broker and its sink thread; blocking (thread spawns and a bind probe).
fn start_broker() -> Result<BareBroker, String> {
    let addr = free_loopback_addr()?;
    let mut broker = rumqttd::Broker::new(config(addr));
    let (mut link_tx, link_rx) = broker
        .link("baseline-sink")
        .map_err(|error| format!("opening the sink's local link: {error}"))?;
    link_tx
        .subscribe(TELEMETRY_FILTER)
        .map_err(|error| format!("subscribing the sink: {error}"))?;
    let registry = Arc::new(SinkRegistry::default());
    let sink_alive = Arc::new(AtomicBool::new(true));
    let sink_registry = registry.clone();
    let alive = sink_alive.clone();
    std::thread::Builder::new()
        .name("baseline-sink".into())
        .spawn(move || {
            // The sending half stays alive with the sink: the link is the router's
            // connection, and nothing else owns it.
            let _link_tx = link_tx;
            drain(link_rx, &sink_registry);
            alive.store(false, Ordering::Relaxed);
        })
        .map_err(|error| format!("spawning the sink thread: {error}"))?;
    std::thread::Builder::new()
        .name("baseline-rumqttd".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%error, "bare baseline broker stopped");
            }
        })
        .map_err(|error| format!("spawning the broker thread: {error}"))?;
    wait_listening(addr)?;
    Ok(BareBroker {
        addr,
        registry,
        sink_alive,
    })
}

/// Waits until something accepts connections on `addr` (rumqttd binds on its own thread,
/// a moment after `start`, and never says when); the probe then checks that it is ours.
fn wait_listening(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!(
        "the bare broker's listener on {addr} did not come up within {LISTEN_TIMEOUT:?}"
    ))
}

/// The sink: takes every notification off the link until the link fails (the router is
/// gone), which for a healthy broker is the end of the process.
fn drain(mut link_rx: LinkRx, registry: &SinkRegistry) {
    loop {
        match link_rx.recv() {
            Ok(Some(Notification::Forward(forward))) => {
                registry.deliver(&forward.publish.topic, &forward.publish.payload, now_us())
            }
            // rumqttd's router stops serving a link whose buffer filled until the link
            // says it is ready again; without this the sink stalls for good.
            Ok(Some(Notification::Unschedule)) => {
                if let Err(error) = link_rx.ready() {
                    tracing::error!(%error, "baseline sink could not wake its link");
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "baseline sink link closed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_counts_registered_devices_and_strays() {
        let registry = Arc::new(SinkRegistry::default());
        let broker = BareBroker {
            addr: "127.0.0.1:1".parse().expect("addr"),
            registry: registry.clone(),
            sink_alive: Arc::new(AtomicBool::new(true)),
        };
        let registration = broker
            .register(vec!["bla".into(), "blb".into()])
            .expect("registers");
        assert!(broker.register(vec!["blb".into()]).is_err(), "taken");
        let payload = br#"{"ts":1,"lat":1.5,"sensors":{"seq":3,"sent_us":1000}}"#;
        registry.deliver(b"/tenants/bla/telemetry", payload, 3_000);
        registry.deliver(b"/tenants/blb/telemetry", b"not json", 3_000);
        registry.deliver(b"/tenants/other/telemetry", payload, 3_000);
        registry.deliver(b"/tenants/bla/status", payload, 3_000);
        assert_eq!(registration.sink.drained.load(Ordering::Relaxed), 2);
        assert_eq!(registration.sink.untracked.load(Ordering::Relaxed), 1);
        let latency = registration.sink.latency().percentiles();
        assert_eq!(latency.samples, 1);
        assert!((1_990..=2_010).contains(&latency.max_us), "{latency:?}");
        assert_eq!(broker.strays(), 2);
        drop(registration);
        registry.deliver(b"/tenants/bla/telemetry", payload, 3_000);
        assert_eq!(broker.strays(), 3, "unregistered on drop");
        assert!(broker.register(vec!["blb".into()]).is_ok(), "free again");
    }

    #[test]
    fn sent_us_is_read_from_the_sensors() {
        assert_eq!(sent_us_of(br#"{"sensors":{"sent_us":42}}"#), Some(42));
        assert_eq!(sent_us_of(br#"{"sensors":{"sent_us":4.5}}"#), None);
        assert_eq!(sent_us_of(br#"{"ts":1}"#), None);
        assert_eq!(sent_us_of(b"[]"), None);
    }

    #[test]
    fn the_version_constant_matches_cargo_lock() {
        let lock_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
        let lock = std::fs::read_to_string(lock_path).expect("the workspace's Cargo.lock");
        let entry = lock
            .split("[[package]]")
            .find(|entry| entry.contains("\nname = \"rumqttd\"\n"))
            .expect("a rumqttd entry in Cargo.lock");
        assert!(
            entry.contains(&format!("\nversion = \"{RUMQTTD_VERSION}\"\n")),
            "RUMQTTD_VERSION is {RUMQTTD_VERSION} but Cargo.lock has {entry}"
        );
        assert!(
            entry.contains("source = \"registry+https://github.com/rust-lang/crates.io-index\""),
            "the baseline's rumqttd comes from crates.io: {entry}"
        );
    }

    #[test]
    fn settings_are_the_former_gateway_brokers() {
        let config = config("127.0.0.1:1883".parse().expect("addr"));
        assert_eq!(config.router.max_segment_size, 16 * 1024 * 1024);
        assert_eq!(config.router.max_segment_count, 8);
        assert_eq!(config.router.max_outgoing_packet_count, 200);
        let servers = config.v4.expect("one v4 server");
        let server = servers.get("plain").expect("plain");
        assert!(server.tls.is_none());
        assert!(server.listen.ip().is_loopback());
        assert_eq!(server.connections.max_payload_size, 64 * 1024);
        assert!(server.connections.auth.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_shared_broker_is_reused_and_drains() {
        let first = shared_broker().await.expect("starts");
        let second = shared_broker().await.expect("reused");
        assert!(Arc::ptr_eq(&first, &second), "one broker per process");
        assert!(first.addr.ip().is_loopback());
        assert_ne!(first.addr.port(), 0);
    }
}
