//! The ingest scenario's yardstick: the same units, at the same rate, for the same time,
//! with the same payloads and the same publish machinery (`publish.rs`), against a bare
//! embedded rumqttd from crates.io (version `broker::RUMQTTD_VERSION`, as Cargo.lock
//! pins it) whose local link only counts what it receives (`broker.rs`). What a broker with
//! nothing behind it carries on this machine is the yardstick: the ingest report states the
//! gateway's throughput as a ratio of it, and says which broker that was
//! ([`BaselineReport::broker`]).
//!
//! The ratio is "of the limit" only when the offered load (units × rate) is more than the
//! bare broker can take; below that, both carry the offered load and the ratio only says
//! the gateway kept up. The report says which case a run was in (`at_limit`).
//!
//! The baseline always uses plain TCP without authentication; when the gateway run used
//! TLS the ratio also contains the cost of TLS. rumqttd acknowledges a publish on arrival
//! while the gateway acknowledges after the commit that stores it, so the two publish→ack
//! figures differ by design. The bare broker runs inside the simulator's
//! process, the gateway in its own: both share the machine's cores with the publishers.

mod broker;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use serde::Serialize;
use tokio::time::Instant;

use super::fleet::disconnect_all;
use super::measure::wait_for_count;
use super::publish::{
    ack_latency_recorder, acked_total, join_units, percentiles_of, spawn_units, Drive, PublishPlan,
    UnitOutcome,
};
use super::timeline::{Sampler, Timeline};
use super::{progress_bar, ErrorLog};
use crate::stats::{as_seconds, Percentiles};
use crate::unit::{BrokerAddr, SimUnit, UnitOptions};

/// The bare broker's mean rate below this share of the offered rate means it could not
/// take the offered load: its throughput is then its limit on this machine.
pub const LIMIT_SHARE: f64 = 0.9;

/// The load of one baseline run: the ingest run's own settings.
#[derive(Debug, Clone)]
pub(crate) struct BaselineLoad {
    pub(crate) run_id: String,
    pub(crate) units: usize,
    pub(crate) rate_per_unit: f64,
    pub(crate) points_per_unit: u64,
    pub(crate) parallelism: usize,
    pub(crate) settle_timeout: Duration,
    pub(crate) quiet: bool,
    /// Whether the gateway run this baseline is compared with uses TLS (for
    /// [`BaselineReport::broker`]).
    pub(crate) gateway_tls: bool,
}

/// Which broker the baseline is and how it differs from the gateway run, in one line:
/// e.g. `rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS`.
pub(crate) fn describe_broker(gateway_tls: bool) -> String {
    let gateway = if gateway_tls {
        "the gateway ran TLS"
    } else {
        "the gateway ran plain TCP too"
    };
    format!(
        "rumqttd {} (crates.io), plain TCP; {gateway}",
        broker::RUMQTTD_VERSION
    )
}

/// What the bare broker carried.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineReport {
    /// Which broker this is and how it differs from the gateway run: its crate and version
    /// (as Cargo.lock pins it), its transport and the gateway's.
    pub broker: String,
    /// The bare broker's listener (loopback, plain TCP, no authentication).
    pub broker_addr: String,
    pub transport: String,
    /// Units that connected and published.
    pub units: usize,
    pub points_sent: u64,
    /// Points the bare broker acknowledged (PUBACK).
    pub points_acked: u64,
    /// Telemetry publishes of this run the sink took off the local link; equal to
    /// `points_acked` when the broker lost nothing.
    pub sink_drained: u64,
    /// From the first scheduled send until the last unit had all its acknowledgements
    /// (serialized as seconds), measured exactly as for the gateway.
    #[serde(serialize_with = "as_seconds")]
    pub elapsed: Duration,
    /// `points_acked / elapsed`: the denominator of the ingest report's throughput ratio.
    pub points_per_sec: f64,
    /// From the unit's send (`sensors.sent_us`) to the sink.
    pub publish_to_sink: Percentiles,
    /// Every acknowledged point's PUBLISH written → PUBACK, as for the gateway; rumqttd
    /// acknowledges on arrival, before the sink sees the point.
    pub publish_to_ack: Percentiles,
    /// Acknowledgements per second while the units publish (no memory series: the bare
    /// broker lives inside the simulator's own process).
    pub timeline: Timeline,
    pub errors: Vec<String>,
}

impl BaselineReport {
    /// Every point sent was acknowledged and drained, and nothing else went wrong.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.points_acked == self.points_sent
            && self.sink_drained == self.points_acked
    }

    /// Whether the bare broker fell short of the offered rate (see [`LIMIT_SHARE`]), i.e.
    /// whether its throughput is a limit rather than just the offered load.
    pub fn at_limit(&self, offered_points_per_sec: f64) -> bool {
        self.points_per_sec < LIMIT_SHARE * offered_points_per_sec
    }
}

/// Device id of baseline unit `index`: distinct from the gateway run's (`sim{run}d{i}`),
/// and alphanumeric like them.
fn device_id(run_id: &str, index: usize) -> String {
    format!("bl{run_id}u{index}")
}

/// Waits for the sink to drain what the broker acknowledged on arrival (up to `timeout`)
/// and returns what it drained; short or untracked points are errors of the run.
async fn settle_sink(
    sink: &broker::RunSink,
    points_acked: u64,
    timeout: Duration,
    errors: &ErrorLog,
) -> u64 {
    wait_for_count(&sink.drained, points_acked, Instant::now() + timeout).await;
    let sink_drained = sink.drained.load(Ordering::Relaxed);
    if sink_drained != points_acked {
        errors.push(format!(
            "the sink drained {sink_drained} points but the bare broker acknowledged \
             {points_acked} (waited {timeout:?})"
        ));
    }
    let untracked = sink.untracked.load(Ordering::Relaxed);
    if untracked > 0 {
        errors.push(format!(
            "{untracked} drained points carried no readable sensors.{}",
            crate::telemetry::SENT_US_SENSOR
        ));
    }
    sink_drained
}

/// Connects one unit per device to the bare broker (plain TCP); `Err` when none could.
async fn connect_units(
    devices: &[String],
    mqtt: &BrokerAddr,
    parallelism: usize,
    errors: &ErrorLog,
) -> Result<Vec<(usize, Arc<SimUnit>)>, String> {
    let units: Vec<(usize, Arc<SimUnit>)> = stream::iter(devices.iter().enumerate())
        .map(|(index, device)| {
            let options = UnitOptions::unit(device.clone(), mqtt.clone());
            async move {
                match SimUnit::connect(options).await {
                    Ok(unit) => Some((index, Arc::new(unit))),
                    Err(error) => {
                        errors.push(format!("unit {device}: {error}"));
                        None
                    }
                }
            }
        })
        .buffered(parallelism.max(1))
        .filter_map(std::future::ready)
        .collect()
        .await;
    if units.is_empty() {
        return Err(format!(
            "no unit could connect to the bare broker: {}",
            errors.first().unwrap_or_default()
        ));
    }
    Ok(units)
}

/// Runs the load against the process's bare broker. `Err` (why, in words) only when no
/// broker could be started or no unit connected; the rest is in the report.
pub(crate) async fn run_baseline(load: &BaselineLoad) -> Result<BaselineReport, String> {
    let broker = broker::shared_broker().await?;
    let devices: Vec<String> = (0..load.units)
        .map(|index| device_id(&load.run_id, index))
        .collect();
    let registration = broker.register(devices.clone())?;
    let errors = Arc::new(ErrorLog::default());
    let strays_before = broker.strays();

    let units = connect_units(&devices, &broker.mqtt(), load.parallelism, &errors).await?;

    let plan = PublishPlan::new(
        load.points_per_unit,
        load.rate_per_unit,
        units.len(),
        load.settle_timeout,
    );
    let progress = progress_bar(
        plan.points_per_unit * units.len() as u64,
        "acknowledged by the bare broker",
        load.quiet,
    );
    let acked_counter = Arc::new(AtomicU64::new(0));
    let ack_latency = ack_latency_recorder();
    // The bare broker lives in this process: no gateway memory to sample.
    let sampler = Sampler::start(acked_counter.clone(), None, None, plan.start);
    // The gateway run seeds unit `index` the same way: same payloads. Nobody probes
    // storage here.
    let drive = Drive {
        progress: Some(progress.clone()),
        acked: Some(acked_counter),
        ack_latency: Some(ack_latency.clone()),
        ..Drive::default()
    };
    let tasks = spawn_units(&units, plan, drive, &errors);
    let outcomes: Vec<UnitOutcome> = join_units(tasks, &errors)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = plan.start.elapsed();
    let timeline = sampler.finish(&errors).await;
    progress.finish_and_clear();

    let points_sent: u64 = outcomes.iter().map(|outcome| outcome.sent).sum();
    let points_acked = acked_total(&outcomes);
    let sink = registration.sink.clone();
    let sink_drained = settle_sink(&sink, points_acked, load.settle_timeout, &errors).await;
    disconnect_all(units, load.parallelism, &errors).await;
    let strays = broker.strays().saturating_sub(strays_before);
    if strays > 0 {
        // Not this run's error unless its own devices are missing, but worth knowing.
        tracing::info!("the bare broker's sink saw {strays} points of unregistered devices");
    }
    drop(registration);

    let seconds = elapsed.as_secs_f64();
    Ok(BaselineReport {
        broker: describe_broker(load.gateway_tls),
        broker_addr: broker.addr.to_string(),
        transport: "plain TCP, no authentication".to_owned(),
        units: plan.units,
        points_sent,
        points_acked,
        sink_drained,
        elapsed,
        points_per_sec: if seconds > 0.0 {
            points_acked as f64 / seconds
        } else {
            0.0
        },
        publish_to_sink: sink.latency().percentiles(),
        publish_to_ack: percentiles_of(&ack_latency),
        timeline,
        errors: ErrorLog::finish(errors),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> BaselineReport {
        BaselineReport {
            broker: describe_broker(true),
            broker_addr: "127.0.0.1:1".into(),
            transport: "plain TCP, no authentication".into(),
            units: 2,
            points_sent: 20,
            points_acked: 20,
            sink_drained: 20,
            elapsed: Duration::from_millis(500),
            points_per_sec: 40.0,
            publish_to_sink: Percentiles::default(),
            publish_to_ack: Percentiles::default(),
            timeline: Timeline::default(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn the_broker_line_names_the_crate_its_transport_and_the_gateways() {
        assert_eq!(
            describe_broker(true),
            "rumqttd 0.20.0 (crates.io), plain TCP; the gateway ran TLS"
        );
        assert!(describe_broker(false).ends_with("the gateway ran plain TCP too"));
    }

    #[test]
    fn clean_only_when_everything_acked_was_drained() {
        assert!(report().is_clean());
        assert!(!BaselineReport {
            sink_drained: 19,
            ..report()
        }
        .is_clean());
        assert!(!BaselineReport {
            sink_drained: 21,
            ..report()
        }
        .is_clean());
        assert!(!BaselineReport {
            points_acked: 19,
            sink_drained: 19,
            ..report()
        }
        .is_clean());
        assert!(!BaselineReport {
            errors: vec!["x".into()],
            ..report()
        }
        .is_clean());
    }

    #[test]
    fn at_limit_only_below_the_offered_rate() {
        assert!(!report().at_limit(40.0));
        assert!(!report().at_limit(44.0));
        assert!(report().at_limit(100.0));
    }

    #[test]
    fn device_ids_are_alphanumeric_and_distinct_from_the_gateway_runs() {
        let id = device_id("abc123", 99_999);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!id.starts_with("sim"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_load_is_acked_and_drained_twice_in_one_process() {
        for run_id in ["blt1", "blt2"] {
            let load = BaselineLoad {
                run_id: run_id.into(),
                units: 3,
                rate_per_unit: 20.0,
                points_per_unit: 10,
                parallelism: 4,
                settle_timeout: Duration::from_secs(10),
                quiet: true,
                gateway_tls: false,
            };
            let report = run_baseline(&load).await.expect("baseline runs");
            assert!(report.is_clean(), "{report:?}");
            assert_eq!(report.points_sent, 30);
            assert_eq!(report.sink_drained, 30);
            assert_eq!(report.publish_to_sink.samples, 30);
            assert_eq!(
                report.publish_to_ack.samples, 30,
                "one per acknowledged point"
            );
            assert!(report.publish_to_ack.p50_us <= report.publish_to_ack.p99_us);
            assert!(report.points_per_sec > 0.0);
        }
    }
}
