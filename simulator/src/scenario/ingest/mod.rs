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
//! Every acknowledged point also gives its publish→ack round trip, timed by the unit
//! itself (`unit::AckWaiter::wait_round_trip`) into one histogram for the run: the gateway
//! sends a PUBACK only after the commit that stores the point, so this is what a unit waits
//! for durability. The report and its text, JSON and page are in `report.rs`.
//!
//! With `baseline` on, the same load first runs against a bare embedded rumqttd from
//! crates.io (`baseline/`), and the report gives the gateway's throughput as a ratio of the
//! bare broker's, naming that broker and how it differs from the gateway run. The baseline goes first because both share the machine's cores: this way the
//! gateway is idle while the bare broker is measured (its run has not begun), and the bare
//! broker is idle while the gateway is (its units are disconnected and its threads parked,
//! whereas a gateway that just finished still commits, fans out and frees memory); and a
//! baseline that cannot start says so before the long gateway run instead of after it.

mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::baseline::{run_baseline, BaselineLoad, BaselineReport};
use super::fleet::{connect_fleet, disconnect_all, provision, Fleet};
use super::measure::{
    consume_sse, probe_storage, verify_storage, wait_for_count, ProbeTarget, VerifyTarget,
};
use super::publish::{
    ack_latency_recorder, acked_total, join_units, percentiles_of, spawn_units, Drive, PublishPlan,
    SampleSlot, UnitOutcome,
};
use super::runner::{self, Run, Scenario};
use super::timeline::{Sampler, Timeline};
use super::{progress_bar, ErrorLog, RunOptions, ScenarioError};
use crate::scenario::Target;
use crate::stats::{LatencyRecorder, SeqTally};
use crate::unit::SimUnit;

use report::throughput_ratio;
pub use report::IngestReport;

pub const MAX_UNITS: usize = 100_000;
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
pub const MAX_RATE_PER_UNIT: f64 = 1000.0;
/// Bounds memory (one flag per point is kept until the final check) and run time.
pub const MAX_TOTAL_POINTS: u64 = 50_000_000;
const MAX_PARALLELISM: usize = 1024;

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// The gateway, and the platform administrator's token the run sets itself up with.
    pub target: Target,
    pub units: usize,
    /// Points per second per unit.
    pub rate_per_unit: f64,
    pub duration: Duration,
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
    /// How long to wait for acknowledgements, SSE delivery and history to catch up.
    pub settle_timeout: Duration,
    /// Run the same load against a bare embedded rumqttd first and report the gateway's
    /// throughput as a ratio of it. Off in [`Self::new`]; the command line turns it on.
    pub baseline: bool,
}

impl IngestConfig {
    /// Defaults: 10 units, 1 point/s each, 10 s, plain MQTT, quiet; against
    /// `target`, which may use TLS.
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 10,
            rate_per_unit: 1.0,
            duration: Duration::from_secs(10),
            run: RunOptions::default(),
            settle_timeout: Duration::from_secs(30),
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
        self.run.validate(MAX_PARALLELISM)
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no unit connected); everything else is in the report.
pub async fn run_ingest(config: &IngestConfig) -> Result<IngestReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

/// What setup made: the bare broker's run (when asked for), the fleet, its live stream and
/// the connected units.
pub(crate) struct IngestSetup {
    baseline: Option<BaselineReport>,
    fleet: Fleet,
    live: Option<LiveStream>,
    units: Vec<(usize, Arc<SimUnit>)>,
}

/// What the load measured, and what settle added: the live stream's count and latency.
pub(crate) struct IngestLoad {
    load: Load,
    sse_received: u64,
    sse_latency: LatencyRecorder,
}

impl Scenario for IngestConfig {
    type Setup = IngestSetup;
    type Load = IngestLoad;
    type Report = IngestReport;

    /// The baseline first (see the module doc for why), then the fleet, the account's live
    /// stream (open before any unit connects) and the units.
    async fn setup(&self, run: &Run) -> Result<IngestSetup, ScenarioError> {
        let baseline = if self.baseline {
            run_baseline_first(self, &run.id, &run.errors).await
        } else {
            None
        };
        let platform_admin = self
            .target
            .platform_admin()
            .map_err(ScenarioError::api("gateway URL"))?;
        let fleet = provision(&platform_admin, &run.id, self.units, self.run.parallelism).await?;
        let live = LiveStream::open(&fleet, &run.errors).await?;
        let parallelism = self.run.parallelism;
        let units = match connect_fleet(&fleet, &self.target, parallelism, &run.errors).await {
            Ok(units) => units,
            Err(error) => {
                live.stop();
                return Err(error);
            }
        };
        Ok(IngestSetup {
            baseline,
            fleet,
            live: Some(live),
            units,
        })
    }

    async fn load(&self, run: &Run, setup: &mut IngestSetup) -> IngestLoad {
        IngestLoad {
            load: publish_load(self, &setup.fleet, &setup.units, &run.errors).await,
            sse_received: 0,
            sse_latency: LatencyRecorder::new(),
        }
    }

    /// Until the live stream delivered every acknowledged point (or the settle timeout).
    async fn settle(&self, run: &Run, setup: &mut IngestSetup, load: &mut IngestLoad) {
        let points_acked = acked_total(&load.load.outcomes);
        if let Some(live) = setup.live.take() {
            (load.sse_received, load.sse_latency) =
                live.finish(points_acked, self, &run.errors).await;
        }
    }

    /// Every asset's history against what its unit had acknowledged.
    async fn check(&self, run: Run, setup: IngestSetup, load: IngestLoad) -> IngestReport {
        let IngestLoad {
            load,
            sse_received,
            sse_latency,
        } = load;
        let points_acked = acked_total(&load.outcomes);
        let points_sent: u64 = load.outcomes.iter().map(|outcome| outcome.sent).sum();
        let tally = verify(self, &setup.fleet, &setup.units, load.outcomes, &run.errors).await;
        let units_connected = setup.units.len();
        disconnect_all(setup.units, self.run.parallelism, &run.errors).await;
        let seconds = load.elapsed.as_secs_f64();
        let points_per_sec = if seconds > 0.0 {
            points_acked as f64 / seconds
        } else {
            0.0
        };
        let offered = self.offered_points_per_sec();
        let baseline = setup.baseline;
        IngestReport {
            run_id: run.id.clone(),
            account_id: setup.fleet.account.id,
            units: units_connected,
            points_sent,
            points_acked,
            points_stored: tally.stored_rows,
            missing: tally.missing,
            duplicates: tally.duplicates,
            sse_received,
            elapsed: load.elapsed,
            points_per_sec,
            publish_to_sse: sse_latency.percentiles(),
            publish_to_stored: load.store_latency.percentiles(),
            publish_to_ack: load.ack_latency,
            timeline: load.timeline,
            offered_points_per_sec: offered,
            gateway_tls: self.target.tls_server_name.is_some(),
            throughput_ratio: throughput_ratio(points_per_sec, baseline.as_ref()),
            baseline_at_limit: baseline.as_ref().map(|baseline| baseline.at_limit(offered)),
            baseline,
            errors: run.finish_errors(),
        }
    }
}

/// Reads every asset's history and compares it with what its unit had acknowledged.
async fn verify(
    config: &IngestConfig,
    fleet: &Fleet,
    units: &[(usize, Arc<SimUnit>)],
    outcomes: Vec<UnitOutcome>,
    errors: &ErrorLog,
) -> SeqTally {
    let targets = outcomes
        .into_iter()
        .map(|outcome| VerifyTarget {
            asset_id: fleet.machines[units[outcome.position].0].asset_id.clone(),
            acknowledged: outcome.acknowledged,
        })
        .collect();
    let deadline = Instant::now() + config.settle_timeout;
    verify_storage(
        &fleet.client,
        targets,
        config.run.parallelism,
        deadline,
        errors,
    )
    .await
}

/// The same load against the bare broker, before the gateway run (see the module doc for
/// why first). A baseline that cannot start is an error of the report, not of the run.
async fn run_baseline_first(
    config: &IngestConfig,
    run_id: &str,
    errors: &ErrorLog,
) -> Option<BaselineReport> {
    let load = BaselineLoad {
        run_id: run_id.to_owned(),
        units: config.units,
        rate_per_unit: config.rate_per_unit,
        points_per_unit: config.points_per_unit(),
        parallelism: config.run.parallelism,
        settle_timeout: config.settle_timeout,
        quiet: config.run.quiet,
        gateway_tls: config.target.tls_server_name.is_some(),
    };
    match run_baseline(&load).await {
        Ok(report) => Some(report),
        Err(problem) => {
            errors.push(format!("baseline: {problem}"));
            None
        }
    }
}

/// The account's live stream, read from before the first unit connects on a thread and
/// runtime of its own, with its own HTTP connection: on the simulator's runtime the reader
/// waited behind a thousand units' tasks (each commit wakes them all with their PUBACKs),
/// and that wait was counted as the gateway's publish→SSE latency.
struct LiveStream {
    received: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    task: tokio::sync::oneshot::Receiver<LatencyRecorder>,
}

impl LiveStream {
    async fn open(fleet: &Fleet, errors: &Arc<ErrorLog>) -> Result<LiveStream, ScenarioError> {
        let client = fleet.client.rebase(fleet.client.base_url().as_str());
        let received = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (done, task) = tokio::sync::oneshot::channel();
        let (counter, errors) = (received.clone(), errors.clone());
        let reader = move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let error = format!("start the SSE reader's runtime: {error}");
                    let _ = opened_tx.send(Err(ScenarioError::Setup(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                let sse = match client.stream("/v1/stream").await {
                    Ok(sse) => sse,
                    Err(error) => {
                        let step = ScenarioError::api("open the account's live stream");
                        let _ = opened_tx.send(Err(step(error)));
                        return;
                    }
                };
                let _ = opened_tx.send(Ok(()));
                let _ = done.send(consume_sse(sse, counter, stop_rx, errors).await);
            });
        };
        std::thread::Builder::new()
            .name("sse-reader".into())
            .spawn(reader)
            .map_err(|error| ScenarioError::Setup(format!("start the SSE reader: {error}")))?;
        match opened.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(ScenarioError::Setup("the SSE reader stopped".into())),
        }
        Ok(LiveStream {
            received,
            stop,
            task,
        })
    }
    fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits (up to the settle timeout) until the stream delivered `points_acked` points,
    /// then stops reading: the points it delivered and their publish→SSE latencies.
    async fn finish(
        self,
        points_acked: u64,
        config: &IngestConfig,
        errors: &ErrorLog,
    ) -> (u64, LatencyRecorder) {
        let deadline = Instant::now() + config.settle_timeout;
        if !wait_for_count(&self.received, points_acked, deadline).await {
            errors.push(format!(
                "SSE delivered {} of {points_acked} acknowledged points within {:?}",
                self.received.load(Ordering::Relaxed),
                config.settle_timeout
            ));
        }
        self.stop();
        let latency = self.task.await.unwrap_or_else(|_| {
            errors.push("the SSE reader stopped without its figures".to_owned());
            LatencyRecorder::new()
        });
        (self.received.load(Ordering::Relaxed), latency)
    }
}

/// Starts the storage probe (see `measure.rs`) over every unit's sample slot; it samples
/// until `sending_done` flips.
fn start_probe(
    config: &IngestConfig,
    fleet: &Fleet,
    units: &[(usize, Arc<SimUnit>)],
    slots: &[SampleSlot],
    plan: &PublishPlan,
    sending_done: watch::Receiver<bool>,
    errors: &Arc<ErrorLog>,
) -> JoinHandle<LatencyRecorder> {
    let probe_targets = units
        .iter()
        .zip(slots)
        .map(|((machine, _), slot)| ProbeTarget {
            slot: slot.clone(),
            asset_id: fleet.machines[*machine].asset_id.clone(),
        })
        .collect();
    tokio::spawn(probe_storage(
        fleet.client.clone(),
        probe_targets,
        sending_done,
        plan.period * 2 + Duration::from_secs(1),
        config.settle_timeout,
        errors.clone(),
    ))
}

/// What the publishing phase measured.
struct Load {
    outcomes: Vec<UnitOutcome>,
    /// From the first scheduled send until the last unit had all its acknowledgements.
    elapsed: Duration,
    timeline: Timeline,
    store_latency: LatencyRecorder,
    ack_latency: crate::stats::Percentiles,
}

/// Every unit sends its points on the plan's schedule while the storage probe samples
/// publish→stored and the timeline samples acknowledgements (and memory) each second.
async fn publish_load(
    config: &IngestConfig,
    fleet: &Fleet,
    units: &[(usize, Arc<SimUnit>)],
    errors: &Arc<ErrorLog>,
) -> Load {
    let plan = PublishPlan::new(
        config.points_per_unit(),
        config.rate_per_unit,
        units.len(),
        config.settle_timeout,
    );
    let total = plan.points_per_unit * units.len() as u64;
    let progress = progress_bar(total, "acknowledged", config.run.quiet);
    let slots: Vec<SampleSlot> = units.iter().map(|_| Arc::new(Mutex::new(None))).collect();
    let (sending_done, sending_done_rx) = watch::channel(false);
    let probe_task = start_probe(config, fleet, units, &slots, &plan, sending_done_rx, errors);
    let acked_counter = Arc::new(AtomicU64::new(0));
    let ack_latency = ack_latency_recorder();
    let sampler = Sampler::start(
        acked_counter.clone(),
        config.run.gateway_pid,
        Some(config.target.http_base.clone()),
        plan.start,
    );
    let drive = Drive {
        sample_slots: Some(slots),
        progress: Some(progress.clone()),
        stop: None,
        acked: Some(acked_counter),
        ack_latency: Some(ack_latency.clone()),
    };
    let tasks = spawn_units(units, plan, drive, errors);
    let outcomes = join_units(tasks, errors)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = plan.start.elapsed();
    let timeline = sampler.finish(errors).await;
    progress.finish_and_clear();
    let _ = sending_done.send(true);
    let store_latency = probe_task.await.unwrap_or_else(|error| {
        errors.push(format!("the storage probe failed: {error}"));
        LatencyRecorder::new()
    });
    Load {
        outcomes,
        elapsed,
        timeline,
        store_latency,
        ack_latency: percentiles_of(&ack_latency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::options::assert_run_options_checked;

    fn config() -> IngestConfig {
        IngestConfig::for_target(Target::unreachable())
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
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            IngestConfig { run, ..config() }.validate()
        });
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
}
