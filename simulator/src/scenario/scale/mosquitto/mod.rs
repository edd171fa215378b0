//! The mosquitto side by side of the scale run (`--mosquitto <binary>`): after the gateway's
//! half, the same number of units, with the same client code (`hold.rs`, `unit.rs`,
//! `conn.rs`), from the same source addresses, hold idle mutual-TLS sessions with a Debian
//! mosquitto started for the run, so the report can put memory per idle unit of both
//! brokers side by side.
//!
//! Order: print mosquitto's version (proves the binary runs), make the throwaway
//! certificates (`pki.rs`: the gateway CA's key is not the simulator's to use), start
//! mosquitto on a free loopback port (`broker.rs`), retain one small key set per unit on
//! `/tenants/{id}/keys` through a publisher identity, let it settle and read its RSS; then
//! open every unit's session, wait until each holds its key set, settle, read the RSS
//! again; end the sessions and stop (kill and reap) mosquitto. Every failure becomes an
//! error of the section, never of the run: the gateway's figures stand on their own.
//!
//! The units dial from the same source addresses as with the gateway. The gateway's
//! sessions, just closed by the units, keep their source ports in TIME_WAIT for about a
//! minute, so the sources need room for twice the units (see the `--mosquitto` help).

mod broker;
mod pki;
mod report;

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rumqttc::mqttbytes::v4::Packet;
use tokio::time::Instant;

use super::conn::{Dial, Identity, Session};
use super::hold::HeldUnits;
use super::unit::{lock, Tally, UnitPlan};
use super::{ANSWER_TIMEOUT, SETTLE};
use crate::scenario::ErrorLog;
use broker::{Mosquitto, Setup};
use pki::ThrowawayCa;

pub use report::MosquittoReport;

/// The certificate CN of the identity that retains the key sets.
const PUBLISHER: &str = "fleetgatesimkeysetpublisher";
/// What the gateway sends a unit without keys: its whole (empty) key set.
const KEY_SET: &[u8] = br#"{"version":0,"keys":[]}"#;
/// Retained publishes awaiting their PUBACK at once.
const PUBLISH_WINDOW: usize = 64;

/// What mosquitto's half needs from the run.
pub(super) struct SideBySide<'a> {
    pub(super) binary: &'a Path,
    /// The units that held a session with the gateway, in order; as many connect here.
    pub(super) devices: Vec<String>,
    /// How the gateway was dialled: its server name, keep-alive and timeouts are reused.
    pub(super) gateway_dial: &'a Dial,
    pub(super) server_name: &'a str,
    pub(super) sources: &'a [IpAddr],
    pub(super) connect_parallelism: usize,
    pub(super) max_failures: u64,
    pub(super) quiet: bool,
    /// The gateway's KiB per idle unit in this run.
    pub(super) gateway_kib_per_unit: Option<f64>,
}

/// Runs mosquitto's half; problems are the section's `errors`.
pub(super) async fn run_side_by_side(side: SideBySide<'_>) -> MosquittoReport {
    let mut report = MosquittoReport {
        binary: side.binary.display().to_string(),
        setup: report::SETUP.to_owned(),
        units: side.devices.len() as u64,
        gateway_kib_per_unit: side.gateway_kib_per_unit,
        ..MosquittoReport::default()
    };
    let errors = ErrorLog::default();
    match prepare(&side, &mut report).await {
        Ok(prepared) => measure(&side, prepared, &mut report, &errors).await,
        Err(error) => errors.push(error),
    }
    report.errors = errors.into_entries();
    report.compute();
    report
}

/// The run's certificates: the CA's, the server's, the publisher's and one per unit.
struct Prepared {
    ca_pem: String,
    server: pki::Pems,
    publisher: pki::Pems,
    units: Vec<pki::Pems>,
}

async fn prepare(side: &SideBySide<'_>, report: &mut MosquittoReport) -> Result<Prepared, String> {
    report.version = broker::version(side.binary).await.map_err(|error| {
        format!("{error} (scripts/setup.sh installs mosquitto at /usr/sbin/mosquitto)")
    })?;
    let devices = side.devices.clone();
    let server_name = side.server_name.to_owned();
    tokio::task::spawn_blocking(move || {
        let ca = ThrowawayCa::new()?;
        let units = devices
            .iter()
            .map(|device| ca.client(device))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Prepared {
            server: ca.server(&server_name)?,
            publisher: ca.client(PUBLISHER)?,
            ca_pem: ca.ca_pem,
            units,
        })
    })
    .await
    .map_err(|error| format!("making the throwaway certificates failed: {error}"))?
}

/// Starts mosquitto, retains the key sets, holds the units, reads the memory, stops it.
async fn measure(
    side: &SideBySide<'_>,
    prepared: Prepared,
    report: &mut MosquittoReport,
    errors: &ErrorLog,
) {
    let setup = Setup {
        binary: side.binary,
        ip: side.gateway_dial.broker.ip(),
        ca_pem: &prepared.ca_pem,
        server: &prepared.server,
        publisher: PUBLISHER,
    };
    let mosquitto = match Mosquitto::start(&setup).await {
        Ok(mosquitto) => mosquitto,
        Err(error) => return errors.push(error),
    };
    report.listener = Some(mosquitto.addr.to_string());
    let dial = Arc::new(Dial {
        broker: mosquitto.addr,
        ..side.gateway_dial.clone()
    });
    let tls =
        |pems: &pki::Pems| Some((prepared.ca_pem.clone(), pems.cert.clone(), pems.key.clone()));
    let publisher = Identity {
        device_id: PUBLISHER.to_owned(),
        tls: tls(&prepared.publisher),
    };
    let source = side.sources.first().copied().unwrap_or(dial.broker.ip());
    if let Err(error) = retain_key_sets(&dial, source, &publisher, &side.devices).await {
        errors.push(format!("retaining the key sets: {error}"));
    } else {
        tokio::time::sleep(SETTLE).await;
        report.rss_before_kib = read_rss(&mosquitto, "before the units", errors);
        let plans = side
            .devices
            .iter()
            .zip(&prepared.units)
            .enumerate()
            .map(|(index, (device, pems))| UnitPlan {
                source: side.sources[index % side.sources.len().max(1)],
                identity: Identity {
                    device_id: device.clone(),
                    tls: tls(pems),
                },
                probe: false,
            })
            .collect();
        hold_units(side, plans, dial, &mosquitto, report, errors).await;
    }
    if let Err(error) = mosquitto.stop().await {
        errors.push(error);
    }
}

/// Opens every unit's session, waits until each holds its key set, settles, reads the
/// RSS, and ends the sessions.
async fn hold_units(
    side: &SideBySide<'_>,
    plans: Vec<UnitPlan>,
    dial: Arc<Dial>,
    mosquitto: &Mosquitto,
    report: &mut MosquittoReport,
    errors: &ErrorLog,
) {
    let tally = Arc::new(Tally::new(Instant::now(), side.max_failures));
    let held = HeldUnits::start(plans, dial, tally.clone(), side.connect_parallelism);
    held.wait_opened("mosquitto sessions", side.quiet).await;
    if !held.wait_key_sets().await {
        errors.push(format!(
            "units still without their key set {ANSWER_TIMEOUT:?} after the last opening"
        ));
    }
    tokio::time::sleep(SETTLE).await;
    report.rss_idle_kib = read_rss(mosquitto, "with the units idle", errors);
    report.sessions_opened = tally.opened.load(Ordering::Relaxed);
    report.key_sets_received = tally.key_sets.load(Ordering::Relaxed);
    report.sessions_dropped = tally.dropped.load(Ordering::Relaxed);
    report.connect_latency = lock(&tally.connect).percentiles();
    report.key_set_latency = lock(&tally.key_set).percentiles();
    held.stop(errors).await;
    for (failure, count) in tally.failures() {
        errors.push(format!("{count} openings failed: {failure}"));
    }
    for reason in tally.drop_reasons() {
        errors.push(reason);
    }
}

fn read_rss(mosquitto: &Mosquitto, when: &str, errors: &ErrorLog) -> Option<u64> {
    mosquitto
        .rss_kib()
        .map_err(|error| {
            errors.push(format!(
                "mosquitto (pid {}) RSS {when}: {error}",
                mosquitto.pid()
            ))
        })
        .ok()
}

/// Retains [`KEY_SET`] on every device's `keys` topic through the publisher's session, at
/// most [`PUBLISH_WINDOW`] unacknowledged at once, within [`ANSWER_TIMEOUT`].
async fn retain_key_sets(
    dial: &Dial,
    source: IpAddr,
    publisher: &Identity,
    devices: &[String],
) -> Result<(), String> {
    let (mut session, _) = Session::open(source, dial, publisher)
        .await
        .map_err(|failure| format!("the publisher's session: {failure}"))?;
    let publishing = async {
        let mut awaiting = std::collections::HashSet::new();
        let mut next = devices.iter();
        loop {
            while awaiting.len() < PUBLISH_WINDOW {
                let Some(device) = next.next() else { break };
                let topic = crate::topics::keys(device);
                let pkid = session
                    .publish(&topic, KEY_SET.to_vec(), true)
                    .await
                    .map_err(|error| format!("publishing {topic}: {error}"))?;
                awaiting.insert(pkid);
            }
            if awaiting.is_empty() {
                return Ok(());
            }
            // Anything else (the PUBACK of the publisher's own status) is not ours.
            if let Packet::PubAck(ack) = session.next_packet().await? {
                awaiting.remove(&ack.pkid);
            }
        }
    };
    let published = tokio::time::timeout(ANSWER_TIMEOUT, publishing)
        .await
        .unwrap_or_else(|_| Err(format!("not acknowledged within {ANSWER_TIMEOUT:?}")));
    session.disconnect().await;
    published
}
