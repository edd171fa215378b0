//! The ingest scenario: many units publish telemetry at a steady rate, and the report says
//! how fast the gateway took it, how quickly points reached a live subscriber and history,
//! and whether every acknowledged point was stored exactly once.
//!
//! Order of a run: provision the fleet (its own account, admin, devices, bound assets),
//! open the account's SSE stream *before* any unit connects (so every point has a live
//! subscriber), connect the units, publish while the storage probe samples (see
//! `measure.rs` for the method), wait for the SSE count to catch up, then read every
//! asset's history and compare sequence numbers with what the broker acknowledged. While the
//! units publish, `timeline.rs` samples acknowledgements per second and, given the gateway's
//! pid, its memory, for the report's charts (written by the command line, not here).
//! Latencies use the sender's and receiver's wall clocks, which are the same clock when the
//! simulator runs on one machine, as it does in tests.
//!
//! With `baseline` on, the same load first runs against a bare embedded rumqttd
//! (`baseline/`), and the report gives the gateway's throughput as a ratio of the bare
//! broker's. The baseline goes first because both share the machine's cores: this way the
//! gateway is idle while the bare broker is measured (its run has not begun), and the bare
//! broker is idle while the gateway is (its units are disconnected and its threads parked,
//! whereas a gateway that just finished still commits, fans out and frees memory); and a
//! baseline that cannot start says so before the long gateway run instead of after it.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Serialize, Serializer};
use tokio::sync::watch;
use tokio::time::Instant;

use super::baseline::{run_baseline, BaselineLoad, BaselineReport};
use super::fleet::{connect_units, disconnect_all, new_run_id, provision};
use super::measure::{
    consume_sse, probe_storage, verify_storage, wait_for_count, ProbeTarget, VerifyTarget,
};
use super::publish::{drive_unit, PublishPlan, UnitJob, UnitOutcome};
use super::timeline::{sample_timeline, Timeline, SAMPLE_INTERVAL};
use super::{progress_bar, ErrorLog, ScenarioError};
use crate::api::AccountId;
use crate::scenario::Target;
use crate::stats::{LatencyRecorder, Percentiles};
use crate::unit::{BrokerAddr, SimUnit};

pub const MAX_UNITS: usize = 100_000;
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
pub const MAX_RATE_PER_UNIT: f64 = 1000.0;
/// Bounds memory (one flag per point is kept until the final check) and run time.
pub const MAX_TOTAL_POINTS: u64 = 50_000_000;
const MAX_PARALLELISM: usize = 1024;
/// Gives every unit task time to be scheduled before the first tick.
const START_DELAY: Duration = Duration::from_millis(100);

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// The gateway, and the platform administrator's token the run sets itself up with.
    pub target: Target,
    pub units: usize,
    /// Points per second per unit.
    pub rate_per_unit: f64,
    pub duration: Duration,
    /// API calls and connection attempts in flight at once during setup and checking.
    pub parallelism: usize,
    /// How long to wait for acknowledgements, SSE delivery and history to catch up.
    pub settle_timeout: Duration,
    /// No progress bar.
    pub quiet: bool,
    /// Names the run's account, devices and assets; random when `None`.
    pub run_id: Option<String>,
    /// The gateway's process id when it runs on this machine: its resident memory is then
    /// sampled each second from `/proc/<pid>/status`. `None`: memory is not measured.
    pub gateway_pid: Option<u32>,
    /// Run the same load against a bare embedded rumqttd first and report the gateway's
    /// throughput as a ratio of it. Off in [`Self::new`]; the command line turns it on.
    pub baseline: bool,
}

impl IngestConfig {
    /// Defaults: 10 units, 1 point/s each, 10 s, plain MQTT, quiet.
    pub fn new(
        http_base: impl Into<String>,
        mqtt: BrokerAddr,
        admin_token: impl Into<String>,
    ) -> Self {
        Self::for_target(Target::new(http_base, mqtt, admin_token))
    }

    /// The defaults of [`Self::new`] against `target` (which may use TLS).
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 10,
            rate_per_unit: 1.0,
            duration: Duration::from_secs(10),
            parallelism: 32,
            settle_timeout: Duration::from_secs(30),
            quiet: true,
            run_id: None,
            gateway_pid: None,
            baseline: false,
        }
    }

    /// `rate × duration`, rounded: the exact number of points each unit sends.
    pub fn points_per_unit(&self) -> u64 {
        (self.rate_per_unit * self.duration.as_secs_f64()).round() as u64
    }

    /// `units × rate`: the load the run offers, whatever the broker can take.
    pub fn offered_points_per_sec(&self) -> f64 {
        self.units as f64 * self.rate_per_unit
    }

    /// Refuses settings that would run unbounded or measure nothing, with a message that
    /// names the setting.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::InvalidConfig(message));
        if !(1..=MAX_UNITS).contains(&self.units) {
            return invalid(format!("units must be 1..={MAX_UNITS}, got {}", self.units));
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return invalid(format!(
                "duration must be more than 0 and at most {} s, got {:?}",
                MAX_DURATION.as_secs(),
                self.duration
            ));
        }
        if !(self.rate_per_unit.is_finite()
            && self.rate_per_unit > 0.0
            && self.rate_per_unit <= MAX_RATE_PER_UNIT)
        {
            return invalid(format!(
                "rate must be more than 0 and at most {MAX_RATE_PER_UNIT} points/s per unit, got {}",
                self.rate_per_unit
            ));
        }
        let per_unit = self.points_per_unit();
        if per_unit == 0 {
            return invalid("rate × duration rounds to zero points per unit".to_owned());
        }
        let total = per_unit.saturating_mul(self.units as u64);
        if total > MAX_TOTAL_POINTS {
            return invalid(format!(
                "units × rate × duration = {total} points, more than the {MAX_TOTAL_POINTS} one run may send"
            ));
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return invalid(format!(
                "parallelism must be 1..={MAX_PARALLELISM}, got {}",
                self.parallelism
            ));
        }
        if let Some(run_id) = &self.run_id {
            let fits = (1..=16).contains(&run_id.len())
                && run_id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            if !fits {
                return invalid(format!(
                    "run id must be 1..=16 lowercase ASCII letters or digits, got {run_id:?}"
                ));
            }
        }
        Ok(())
    }
}

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub run_id: String,
    /// The account the run created; its assets are `sim-{run_id}-a{index}`.
    pub account_id: AccountId,
    /// Units that connected and published.
    pub units: usize,
    pub points_sent: u64,
    /// Points the broker acknowledged (PUBACK): the ones the gateway must store.
    pub points_acked: u64,
    /// History rows carrying this run's sequence numbers, duplicates included.
    pub points_stored: u64,
    /// Acknowledged points absent from history.
    pub missing: u64,
    /// History rows beyond the first for the same point.
    pub duplicates: u64,
    /// `point` events on the account's SSE stream.
    pub sse_received: u64,
    /// From the first scheduled send until the last unit had all its acknowledgements
    /// (serialized as seconds).
    #[serde(serialize_with = "as_seconds")]
    pub elapsed: Duration,
    /// `points_acked / elapsed`.
    pub points_per_sec: f64,
    pub publish_to_sse: Percentiles,
    pub publish_to_stored: Percentiles,
    /// Acknowledgements per second and gateway memory, sampled each second while the units
    /// publish.
    pub timeline: Timeline,
    /// `units × rate`: what the run offered; a throughput below it means something could
    /// not keep up.
    pub offered_points_per_sec: f64,
    /// Whether the gateway run used TLS (the baseline is always plain TCP, so the ratio
    /// then includes the cost of TLS).
    pub gateway_tls: bool,
    /// The same load against a bare rumqttd; `None` when not asked for or not startable
    /// (then `errors` says why).
    pub baseline: Option<BaselineReport>,
    /// `points_per_sec / baseline.points_per_sec`: the gateway's share of what the bare
    /// broker carried. A share of the broker's *limit* only when `baseline_at_limit`.
    pub throughput_ratio: Option<f64>,
    /// Whether the bare broker fell short of the offered rate, so that its throughput is
    /// its limit on this machine; `false`: both only carried the offered load.
    pub baseline_at_limit: Option<bool>,
    pub errors: Vec<String>,
}

pub(crate) fn as_seconds<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl IngestReport {
    /// Everything sent was acknowledged, stored exactly once and delivered live, and
    /// nothing went wrong on the way.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.missing == 0
            && self.duplicates == 0
            && self.points_acked == self.points_sent
            && self.sse_received >= self.points_acked
            && self.baseline.as_ref().is_none_or(BaselineReport::is_clean)
    }

    /// Acknowledged points that were also stored, per second. rumqttd acknowledges on
    /// arrival, so under overload `points_per_sec` measures the broker front and this one
    /// what the gateway really kept.
    pub fn stored_per_sec(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.points_acked.saturating_sub(self.missing) as f64 / seconds
        } else {
            0.0
        }
    }

    /// `stored_per_sec / baseline.points_per_sec`: the honest share of the bare broker.
    pub fn stored_ratio(&self) -> Option<f64> {
        throughput_ratio(self.stored_per_sec(), self.baseline.as_ref())
    }
}

/// `gateway / baseline` when both are measured and the baseline carried anything.
fn throughput_ratio(gateway_per_sec: f64, baseline: Option<&BaselineReport>) -> Option<f64> {
    let baseline_per_sec = baseline?.points_per_sec;
    (baseline_per_sec > 0.0 && gateway_per_sec.is_finite())
        .then(|| gateway_per_sec / baseline_per_sec)
}

impl fmt::Display for IngestReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "ingest run {} (account {}): {} units",
            self.run_id, self.account_id, self.units
        )?;
        writeln!(
            formatter,
            "  points:     {} sent, {} acknowledged, {} stored, {} missing, {} duplicates, {} via SSE",
            self.points_sent,
            self.points_acked,
            self.points_stored,
            self.missing,
            self.duplicates,
            self.sse_received
        )?;
        writeln!(
            formatter,
            "  throughput: {:.1} points/s over {:.2} s",
            self.points_per_sec,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(formatter, "  publish→SSE:    {}", self.publish_to_sse)?;
        writeln!(formatter, "  publish→stored: {}", self.publish_to_stored)?;
        writeln!(
            formatter,
            "  offered:    {:.1} points/s (units × rate), gateway over {}",
            self.offered_points_per_sec,
            if self.gateway_tls { "TLS" } else { "plain TCP" }
        )?;
        if let Some(baseline) = &self.baseline {
            writeln!(formatter, "{baseline}")?;
        }
        if let Some(ratio) = self.throughput_ratio {
            let meaning = if self.baseline_at_limit == Some(true) {
                "of the bare broker's limit"
            } else {
                "of the bare broker's throughput, which only carried the offered load"
            };
            let tls = if self.gateway_tls {
                " (gateway over TLS, bare broker plain)"
            } else {
                ""
            };
            writeln!(formatter, "  ratio:      {ratio:.3} {meaning}{tls}")?;
        }
        if let Some(ratio) = self.stored_ratio() {
            writeln!(
                formatter,
                "  stored:     {:.1} points/s acknowledged and stored, ratio {ratio:.3}",
                self.stored_per_sec()
            )?;
        }
        if self.errors.is_empty() {
            write!(formatter, "  errors: none")
        } else {
            write!(formatter, "  errors ({}):", self.errors.len())?;
            for error in &self.errors {
                write!(formatter, "\n    - {error}")?;
            }
            Ok(())
        }
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no unit connected); everything else is in the report.
pub async fn run_ingest(config: &IngestConfig) -> Result<IngestReport, ScenarioError> {
    config.validate()?;
    let run_id = config.run_id.clone().unwrap_or_else(new_run_id);
    let errors = Arc::new(ErrorLog::default());
    let baseline = if config.baseline {
        let load = BaselineLoad {
            run_id: run_id.clone(),
            units: config.units,
            rate_per_unit: config.rate_per_unit,
            points_per_unit: config.points_per_unit(),
            parallelism: config.parallelism,
            settle_timeout: config.settle_timeout,
            quiet: config.quiet,
        };
        match run_baseline(&load).await {
            Ok(report) => Some(report),
            Err(problem) => {
                errors.push(format!("baseline: {problem}"));
                None
            }
        }
    } else {
        None
    };
    let platform_admin = config
        .target
        .platform_admin()
        .map_err(ScenarioError::api("gateway URL"))?;
    let fleet = provision(&platform_admin, &run_id, config.units, config.parallelism).await?;

    let sse = fleet
        .client
        .stream("/v1/stream")
        .await
        .map_err(ScenarioError::api("open the account's live stream"))?;
    let sse_received = Arc::new(AtomicU64::new(0));
    let (stop_sse, stop_sse_rx) = watch::channel(false);
    let sse_task = tokio::spawn(consume_sse(
        sse,
        sse_received.clone(),
        stop_sse_rx,
        errors.clone(),
    ));

    let connected = connect_units(
        &fleet.machines,
        &config.target.mqtt,
        config.target.tls_server_name.as_deref(),
        config.parallelism,
        &errors,
    )
    .await;
    if connected.is_empty() {
        let _ = stop_sse.send(true);
        return Err(ScenarioError::NoUnits(
            errors
                .first()
                .unwrap_or_else(|| "no unit to connect".to_owned()),
        ));
    }
    let units: Vec<(usize, Arc<SimUnit>)> = connected
        .into_iter()
        .map(|(machine, unit)| (machine, Arc::new(unit)))
        .collect();

    let plan = PublishPlan {
        points_per_unit: config.points_per_unit(),
        period: Duration::from_secs_f64(1.0 / config.rate_per_unit),
        start: Instant::now() + START_DELAY,
        units: units.len(),
        ack_timeout: config.settle_timeout,
    };
    let progress = progress_bar(
        plan.points_per_unit * units.len() as u64,
        "acknowledged",
        config.quiet,
    );
    let slots: Vec<_> = units.iter().map(|_| Arc::new(Mutex::new(None))).collect();

    let (sending_done, sending_done_rx) = watch::channel(false);
    let probe_targets = units
        .iter()
        .zip(&slots)
        .map(|((machine, _), slot)| ProbeTarget {
            slot: slot.clone(),
            asset_id: fleet.machines[*machine].asset_id.clone(),
        })
        .collect();
    let probe_task = tokio::spawn(probe_storage(
        fleet.client.clone(),
        probe_targets,
        sending_done_rx,
        plan.period * 2 + Duration::from_secs(1),
        config.settle_timeout,
        errors.clone(),
    ));

    let acked_counter = Arc::new(AtomicU64::new(0));
    let (units_done, units_done_rx) = watch::channel(false);
    let timeline_task = tokio::spawn(sample_timeline(
        acked_counter.clone(),
        config.gateway_pid,
        plan.start,
        SAMPLE_INTERVAL,
        units_done_rx,
    ));

    let unit_tasks: Vec<_> = units
        .iter()
        .zip(&slots)
        .enumerate()
        .map(|(position, ((machine, unit), slot))| {
            tokio::spawn(drive_unit(UnitJob {
                unit: unit.clone(),
                position,
                seed: *machine as u64,
                plan,
                sample_slot: slot.clone(),
                progress: progress.clone(),
                errors: errors.clone(),
                stop: None,
                acked: Some(acked_counter.clone()),
            }))
        })
        .collect();
    let mut outcomes: Vec<UnitOutcome> = Vec::with_capacity(unit_tasks.len());
    for task in unit_tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => errors.push(format!("a unit task failed: {error}")),
        }
    }
    let elapsed = plan.start.elapsed();
    let _ = units_done.send(true);
    let timeline = timeline_task.await.unwrap_or_else(|error| {
        errors.push(format!("the timeline sampler failed: {error}"));
        Timeline::default()
    });
    progress.finish_and_clear();
    let _ = sending_done.send(true);
    let store_latency = probe_task.await.unwrap_or_else(|error| {
        errors.push(format!("the storage probe failed: {error}"));
        LatencyRecorder::new()
    });

    let points_sent: u64 = outcomes.iter().map(|outcome| outcome.sent).sum();
    let points_acked: u64 = outcomes
        .iter()
        .map(|outcome| outcome.acknowledged.iter().filter(|acked| **acked).count() as u64)
        .sum();

    let sse_deadline = Instant::now() + config.settle_timeout;
    if !wait_for_count(&sse_received, points_acked, sse_deadline).await {
        errors.push(format!(
            "SSE delivered {} of {points_acked} acknowledged points within {:?}",
            sse_received.load(std::sync::atomic::Ordering::Relaxed),
            config.settle_timeout
        ));
    }
    let _ = stop_sse.send(true);
    let sse_latency = sse_task.await.unwrap_or_else(|error| {
        errors.push(format!("the SSE reader failed: {error}"));
        LatencyRecorder::new()
    });
    let sse_count = sse_received.load(std::sync::atomic::Ordering::Relaxed);

    let verify_targets = outcomes
        .into_iter()
        .map(|outcome| VerifyTarget {
            asset_id: fleet.machines[units[outcome.position].0].asset_id.clone(),
            acknowledged: outcome.acknowledged,
        })
        .collect();
    let tally = verify_storage(
        &fleet.client,
        verify_targets,
        config.parallelism,
        Instant::now() + config.settle_timeout,
        &errors,
    )
    .await;

    disconnect_all(units, config.parallelism, &errors).await;

    let errors = ErrorLog::finish(errors);
    let seconds = elapsed.as_secs_f64();
    let points_per_sec = if seconds > 0.0 {
        points_acked as f64 / seconds
    } else {
        0.0
    };
    let offered = config.offered_points_per_sec();
    Ok(IngestReport {
        run_id,
        account_id: fleet.account.id,
        units: plan.units,
        points_sent,
        points_acked,
        points_stored: tally.stored_rows,
        missing: tally.missing,
        duplicates: tally.duplicates,
        sse_received: sse_count,
        elapsed,
        points_per_sec,
        publish_to_sse: sse_latency.percentiles(),
        publish_to_stored: store_latency.percentiles(),
        timeline,
        offered_points_per_sec: offered,
        gateway_tls: config.target.tls_server_name.is_some(),
        throughput_ratio: throughput_ratio(points_per_sec, baseline.as_ref()),
        baseline_at_limit: baseline.as_ref().map(|baseline| baseline.at_limit(offered)),
        baseline,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IngestConfig {
        IngestConfig::new(
            "http://127.0.0.1:1",
            "127.0.0.1:1883".parse().expect("addr"),
            "token",
        )
    }

    #[test]
    fn defaults_are_valid() {
        assert!(config().validate().is_ok());
        assert_eq!(config().points_per_unit(), 10);
    }

    #[test]
    fn bounds_are_enforced() {
        let too_long = IngestConfig {
            duration: Duration::from_secs(3601),
            ..config()
        };
        assert!(too_long.validate().is_err());
        let too_many = IngestConfig {
            units: 100_001,
            ..config()
        };
        assert!(too_many.validate().is_err());
        let no_points = IngestConfig {
            rate_per_unit: 0.01,
            duration: Duration::from_secs(1),
            ..config()
        };
        assert!(no_points.validate().is_err());
        let bad_rate = IngestConfig {
            rate_per_unit: f64::NAN,
            ..config()
        };
        assert!(bad_rate.validate().is_err());
        let huge = IngestConfig {
            units: 100_000,
            rate_per_unit: 100.0,
            duration: Duration::from_secs(3600),
            ..config()
        };
        assert!(huge.validate().is_err());
        let bad_run_id = IngestConfig {
            run_id: Some("Has-Dash".into()),
            ..config()
        };
        assert!(bad_run_id.validate().is_err());
    }

    fn report() -> IngestReport {
        IngestReport {
            run_id: "abc".into(),
            account_id: AccountId::new("a1"),
            units: 2,
            points_sent: 20,
            points_acked: 20,
            points_stored: 20,
            missing: 0,
            duplicates: 0,
            sse_received: 20,
            elapsed: Duration::from_millis(1500),
            points_per_sec: 13.3,
            publish_to_sse: Percentiles::default(),
            publish_to_stored: Percentiles::default(),
            timeline: Timeline::default(),
            offered_points_per_sec: 20.0,
            gateway_tls: false,
            baseline: None,
            throughput_ratio: None,
            baseline_at_limit: None,
            errors: Vec::new(),
        }
    }

    fn baseline(points_per_sec: f64, sink_drained: u64) -> BaselineReport {
        BaselineReport {
            broker_addr: "127.0.0.1:2".into(),
            transport: "plain TCP, no authentication".into(),
            units: 2,
            points_sent: 20,
            points_acked: 20,
            sink_drained,
            elapsed: Duration::from_millis(500),
            points_per_sec,
            publish_to_sink: Percentiles::default(),
            timeline: Timeline::default(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn ratio_needs_a_baseline_that_carried_something() {
        assert_eq!(throughput_ratio(13.3, None), None);
        let lossy = IngestReport {
            points_acked: 100,
            missing: 40,
            elapsed: Duration::from_secs(2),
            baseline: Some(baseline(60.0, 20)),
            ..report()
        };
        assert_eq!(lossy.stored_per_sec(), 30.0);
        assert_eq!(lossy.stored_ratio(), Some(0.5));
        assert_eq!(throughput_ratio(13.3, Some(&baseline(0.0, 20))), None);
        let ratio = throughput_ratio(10.0, Some(&baseline(40.0, 20))).expect("ratio");
        assert!((ratio - 0.25).abs() < 1e-9);
    }

    #[test]
    fn a_baseline_that_lost_points_makes_the_run_unclean() {
        let with = |baseline| IngestReport {
            baseline: Some(baseline),
            ..report()
        };
        assert!(with(baseline(40.0, 20)).is_clean());
        assert!(!with(baseline(40.0, 19)).is_clean());
    }

    #[test]
    fn report_shows_the_ratio_and_what_it_means() {
        let at_limit = IngestReport {
            baseline: Some(baseline(40.0, 20)),
            throughput_ratio: Some(0.5),
            baseline_at_limit: Some(true),
            gateway_tls: true,
            ..report()
        };
        let text = at_limit.to_string();
        assert!(text.contains("bare rumqttd"), "{text}");
        assert!(text.contains("0.500 of the bare broker's limit"), "{text}");
        assert!(text.contains("gateway over TLS"), "{text}");
        let json = serde_json::to_value(&at_limit).expect("json");
        assert_eq!(json["throughput_ratio"], 0.5);
        assert_eq!(json["baseline"]["sink_drained"], 20);
        assert_eq!(json["baseline"]["elapsed"], 0.5);
        let below = IngestReport {
            baseline_at_limit: Some(false),
            ..at_limit
        };
        assert!(below
            .to_string()
            .contains("which only carried the offered load"));
    }

    #[test]
    fn baseline_is_off_by_default_in_the_library() {
        assert!(!config().baseline);
        assert_eq!(
            IngestConfig {
                units: 1000,
                rate_per_unit: 100.0,
                ..config()
            }
            .offered_points_per_sec(),
            100_000.0
        );
    }

    #[test]
    fn clean_report_and_its_failure_modes() {
        assert!(report().is_clean());
        assert!(!IngestReport {
            missing: 1,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            duplicates: 1,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            points_acked: 19,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            sse_received: 19,
            ..report()
        }
        .is_clean());
        assert!(!IngestReport {
            errors: vec!["x".into()],
            ..report()
        }
        .is_clean());
    }

    #[test]
    fn report_serializes_elapsed_as_seconds_and_displays() {
        let json = serde_json::to_value(report()).expect("json");
        assert_eq!(json["elapsed"], 1.5);
        assert_eq!(json["publish_to_sse"]["samples"], 0);
        let text = report().to_string();
        assert!(text.contains("20 sent, 20 acknowledged, 20 stored"));
        assert!(text.contains("errors: none"));
    }
}
