//! The simulator's scale scenario against a real gateway, small: every unit holds a TLS
//! session from one of two loopback source addresses with its key set, answers the ping
//! round, and the probe points are stored; a broker that refuses connections is reported as
//! the first limit instead of hanging the run; and the mosquitto side by side (Debian's
//! mosquitto, installed by scripts/setup.sh) measures memory per idle TLS unit of both
//! brokers with the same units. The 50,000-session figures come from the release run in
//! docs/benchmarks.md.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use simulator::{run_scale, ScaleConfig, ScenarioReport};
use tests::{check_written_report, sampled_run, tls_target as target, TestGateway};

/// Where scripts/setup.sh installs Debian's mosquitto (never left running).
const MOSQUITTO: &str = "/usr/sbin/mosquitto";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unit_holds_a_session_and_the_gateway_serves_them_all() {
    let gateway = TestGateway::start();
    let config = ScaleConfig {
        units: 40,
        sources: vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2])],
        hold: Duration::from_secs(1),
        probes: 4,
        run: sampled_run(),
        ..ScaleConfig::for_target(target(&gateway))
    };
    let report = run_scale(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.sessions_opened, 40);
    assert_eq!(report.key_sets_received, 40, "every unit holds its key set");
    assert_eq!(report.sessions_dropped, 0);
    assert_eq!(report.ping_answers, 40);
    assert_eq!(report.ping_rtt.samples, 40);
    assert_eq!((report.probe_acks, report.probes_counted), (4, 4));
    assert!(report.first_limit.is_none());
    assert_eq!(report.sources, ["127.0.0.1", "127.0.0.2"]);
    assert!(report.memory.full.gateway_kib.is_some());
    assert!(report.memory.gateway_kib_per_session.is_some());
    let page = simulator::report::page(&report);
    assert!(page.contains("Fleetgate scale run") && page.contains("<svg"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_broker_is_the_first_limit_and_the_run_gives_up() {
    let gateway = TestGateway::start();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let mut target = target(&gateway);
    target.mqtt = format!("127.0.0.1:{port}").parse().expect("addr");
    let config = ScaleConfig {
        units: 20,
        connect_parallelism: 1,
        max_failures: 3,
        hold: Duration::ZERO,
        probes: 0,
        ..ScaleConfig::for_target(target)
    };
    let report = run_scale(&config).await.expect("scenario runs");
    assert!(!report.is_clean());
    assert_eq!(report.sessions_opened, 0);
    let first = report.first_limit.as_ref().expect("a first limit");
    assert!(first.failure.starts_with("TCP connect"), "{first:?}");
    assert_eq!(first.sessions_open_before, 0);
    assert!(report.sessions_failed >= 3);
    assert!(report.units_skipped > 0, "{report}");
    assert_eq!(
        report.sessions_failed + report.units_skipped,
        20,
        "every unit is accounted for"
    );
}

/// A client that opens TCP to the TLS listener and never says a word must not keep other
/// units out. The gateway's transport runs handshakes beside its accept loop, each with a
/// deadline (docs/transport.md). Upstream rumqttd 0.20, which the gateway embedded before,
/// awaited each handshake inside its accept loop, so this one socket stopped every unit
/// from connecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_does_not_block_other_units() {
    let gateway = TestGateway::start();
    let tls = gateway.mqtt_tls();
    let stalled = std::net::TcpStream::connect((tls.host.as_str(), tls.port)).expect("connect");
    let config = ScaleConfig {
        units: 10,
        hold: Duration::ZERO,
        probes: 1,
        connect_timeout: Duration::from_secs(8),
        ..ScaleConfig::for_target(target(&gateway))
    };
    let report = run_scale(&config).await.expect("scenario runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.sessions_opened, 10);
    drop(stalled);
}

/// The side by side: the same 50 units hold idle mutual-TLS sessions (subscribed, holding
/// their key set) with the gateway and then with a mosquitto the run starts and stops, and
/// the report gives memory per idle unit of both. The test gateway runs in this process,
/// so its figure here also holds the simulator's side of each session: the test checks
/// that both are measured, not how they compare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_idle_tls_unit_is_measured_for_the_gateway_and_mosquitto() {
    assert!(
        Path::new(MOSQUITTO).is_file(),
        "{MOSQUITTO} is missing: run scripts/setup.sh, which installs Debian's mosquitto for \
         the scale run's side by side"
    );
    let gateway = TestGateway::start();
    let config = ScaleConfig {
        units: 50,
        sources: vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2])],
        hold: Duration::ZERO,
        probes: 2,
        run: sampled_run(),
        mosquitto: Some(MOSQUITTO.into()),
        ..ScaleConfig::for_target(target(&gateway))
    };
    let report = run_scale(&config).await.expect("scenario runs");
    eprintln!("{report}");
    assert!(report.is_clean(), "{report}");
    let mosquitto = report.mosquitto.as_ref().expect("the mosquitto section");
    assert!(
        mosquitto.version.starts_with("mosquitto version"),
        "{mosquitto:?}"
    );
    assert_eq!(
        mosquitto.units, report.sessions_opened,
        "the same unit count"
    );
    assert_eq!(
        (mosquitto.sessions_opened, mosquitto.key_sets_received),
        (50, 50)
    );
    let gateway_kib = report
        .memory
        .gateway_kib_per_session
        .expect("gateway figure");
    let mosquitto_kib = mosquitto.mosquitto_kib_per_unit.expect("mosquitto figure");
    assert!(gateway_kib > 0.0 && mosquitto_kib > 0.0, "{report}");
    assert_eq!(mosquitto.gateway_kib_per_unit, Some(gateway_kib));
    assert!(mosquitto
        .gateway_to_mosquitto
        .is_some_and(|ratio| ratio > 0.0));

    let (json, page) = check_written_report(&report);
    let section = &json["mosquitto"];
    assert!(
        section["mosquitto_kib_per_unit"].as_f64() > Some(0.0),
        "{section}"
    );
    assert!(
        section["gateway_kib_per_unit"].as_f64() > Some(0.0),
        "{section}"
    );
    assert!(page.contains("Memory per idle TLS unit: gateway and mosquitto"));

    // mosquitto was stopped: its listener is gone.
    let listener = mosquitto.listener.as_deref().expect("it listened");
    let refused = std::net::TcpStream::connect_timeout(
        &listener.parse().expect("address"),
        Duration::from_secs(1),
    );
    assert!(refused.is_err(), "mosquitto still listens on {listener}");
}
