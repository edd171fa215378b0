//! The visibility scenario: an owner grants its assets to sub-accounts while the units
//! stream, then takes the grants back one at a time, and the run checks from outside that
//! each removal cut the grantee off at the moment its `DELETE` answered (DESIGN.md
//! section 2: "when `DELETE` of a visibility grant returns, no later point of that asset
//! reaches the removed account").
//!
//! Order of a run: provision the owner's fleet (shared with the ingest scenario), create the
//! grantee sub-accounts, grant every asset to every grantee (one bulk call each), check the
//! listings, open one SSE stream per grantee, connect the units and let them publish, wait
//! until every grantee has received every connected asset (a cut-off of a delivery that
//! never started proves nothing), remove the grants in a seeded random order, keep
//! streaming for the settle period, stop, and judge (see `cutoff.rs` for how).
//!
//! From the units' first tick until the streams close, `timeline.rs` samples the points
//! the grantees' live streams delivered per second (counted centrally by the stream
//! readers, every point on a grantee's stream) and, given the gateway's pid, its memory;
//! `page.rs` draws the report.

pub(crate) mod cutoff;
mod page;
mod report;
pub(crate) mod setup;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fleet::{connect_fleet, disconnect_all, new_run_id};
use super::publish::{drive_unit, PublishPlan, UnitJob, UnitOutcome};
use super::timeline::{sample_timeline, Timeline, SAMPLE_INTERVAL};
use super::{check_run_id, progress_bar, ErrorLog, ScenarioError};
use crate::api::{AccountId, ApiClient, ApiError, AssetId, SseStream};
use crate::scenario::Target;
use crate::stats::LatencyRecorder;
use crate::telemetry::{now_us, whole_number, SENT_US_SENSOR};
use crate::unit::BrokerAddr;
use cutoff::{plan_removals, CutoffLedger, PlannedRemoval};
use setup::{count_live_grants, share_fleet, Grantee, SharedFleet};

pub use cutoff::Violation;
pub use page::visibility_page;
pub use report::{RemovalRecord, VisibilityReport};

pub const MAX_UNITS: usize = 10_000;
pub const MAX_GRANTEES: usize = 100;
/// Bounds the removal phase: each removal is one sequential round trip.
pub const MAX_GRANTS: usize = 10_000;
pub const MAX_RATE_PER_UNIT: f64 = 100.0;
pub const MAX_SETTLE: Duration = Duration::from_secs(600);
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);
pub const MAX_REMOVAL_PAUSE: Duration = Duration::from_secs(10);
/// The longest the units stream; it caps each unit's points, so a run whose removals take
/// longer than this reports it instead of streaming forever.
pub const MAX_STREAMING: Duration = Duration::from_secs(3600);
/// Bounds memory (one flag per point is kept until the end) over all units.
pub const MAX_TOTAL_POINTS: u64 = 50_000_000;
const MAX_PARALLELISM: usize = 1024;
/// Gives every unit task time to be scheduled before the first tick.
const START_DELAY: Duration = Duration::from_millis(100);
/// How long the streams stay open after the units stopped, for points still on the way.
const STREAM_DRAIN: Duration = Duration::from_secs(1);
const DELIVERY_POLL: Duration = Duration::from_millis(20);

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct VisibilityConfig {
    /// The gateway, and the platform administrator's token the run sets itself up with.
    pub target: Target,
    pub units: usize,
    /// Sub-accounts of the owner that each receive every asset.
    pub grantees: usize,
    /// Points per second per unit.
    pub rate_per_unit: f64,
    /// How long the units keep streaming after the last removal answered.
    pub settle: Duration,
    /// How long to wait for the first delivery of every pair and for the last
    /// acknowledgements.
    pub delivery_timeout: Duration,
    /// Each removal waits a random time up to this first (see `PlannedRemoval::pause`).
    pub max_removal_pause: Duration,
    /// API calls and connection attempts in flight at once during setup and checks.
    pub parallelism: usize,
    /// No progress bar.
    pub quiet: bool,
    /// Names the run's accounts, devices and assets; random when `None`.
    pub run_id: Option<String>,
    /// Seeds the removal order; random when `None`, and reported either way.
    pub seed: Option<u64>,
    /// The gateway's process on this machine, whose memory the timeline samples; `None`:
    /// memory is not measured.
    pub gateway_pid: Option<u32>,
}

impl VisibilityConfig {
    /// Defaults: 5 units, 2 grantees, 5 points/s each, 3 s settle, plain MQTT, quiet.
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
            units: 5,
            grantees: 2,
            rate_per_unit: 5.0,
            settle: Duration::from_secs(3),
            delivery_timeout: Duration::from_secs(30),
            max_removal_pause: Duration::from_millis(20),
            parallelism: 32,
            quiet: true,
            run_id: None,
            seed: None,
            gateway_pid: None,
        }
    }

    /// The most points one unit may send: `MAX_STREAMING` at the rate, less if the run's
    /// total would pass `MAX_TOTAL_POINTS`. Units normally stop long before.
    pub fn points_cap_per_unit(&self) -> u64 {
        let by_time = (self.rate_per_unit * MAX_STREAMING.as_secs_f64()).ceil() as u64;
        by_time.min(MAX_TOTAL_POINTS / self.units.max(1) as u64)
    }

    /// Refuses settings that would run unbounded or measure nothing, naming the setting.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::InvalidConfig(message));
        if !(1..=MAX_UNITS).contains(&self.units) {
            return invalid(format!("units must be 1..={MAX_UNITS}, got {}", self.units));
        }
        if !(1..=MAX_GRANTEES).contains(&self.grantees) {
            return invalid(format!(
                "grantees must be 1..={MAX_GRANTEES}, got {}",
                self.grantees
            ));
        }
        if self.units.saturating_mul(self.grantees) > MAX_GRANTS {
            return invalid(format!(
                "units × grantees = {} grants, more than the {MAX_GRANTS} one run may remove",
                self.units.saturating_mul(self.grantees)
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
        let bounded = |name: &str, value: Duration, max: Duration, zero_ok: bool| {
            if (value.is_zero() && !zero_ok) || value > max {
                let lower = if zero_ok { "at least 0" } else { "more than 0" };
                Err(ScenarioError::InvalidConfig(format!(
                    "{name} must be {lower} and at most {max:?}, got {value:?}"
                )))
            } else {
                Ok(())
            }
        };
        bounded("settle", self.settle, MAX_SETTLE, false)?;
        bounded(
            "delivery timeout",
            self.delivery_timeout,
            MAX_DELIVERY_TIMEOUT,
            false,
        )?;
        bounded(
            "removal pause",
            self.max_removal_pause,
            MAX_REMOVAL_PAUSE,
            true,
        )?;
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return invalid(format!(
                "parallelism must be 1..={MAX_PARALLELISM}, got {}",
                self.parallelism
            ));
        }
        check_run_id(self.run_id.as_deref())
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no stream or unit could start); everything else is in the report.
pub async fn run_visibility(config: &VisibilityConfig) -> Result<VisibilityReport, ScenarioError> {
    config.validate()?;
    let run_id = config.run_id.clone().unwrap_or_else(new_run_id);
    let seed = config.seed.unwrap_or_else(rand::random);
    let parallelism = config.parallelism;
    let errors = Arc::new(ErrorLog::default());
    let SharedFleet {
        fleet,
        owner_admin,
        grantees,
        assets,
        granted,
        ..
    } = share_fleet(
        &config.target,
        &run_id,
        config.units,
        config.grantees,
        parallelism,
        &errors,
    )
    .await?;
    let ledger = Arc::new(Mutex::new(CutoffLedger::new(
        grantees
            .iter()
            .map(|grantee| grantee.account.id.clone())
            .collect(),
        &assets,
    )));

    // Streams open before any unit publishes, so every point has its subscribers.
    let streams = open_streams(&grantees, parallelism).await?;
    let (stop_streams, stop_streams_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let watchers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(grantee, stream)| {
            tokio::spawn(watch_grantee(
                grantee,
                grantees[grantee].account.id.clone(),
                stream,
                ledger.clone(),
                stop_streams_rx.clone(),
                errors.clone(),
                delivered.clone(),
            ))
        })
        .collect();

    let units = match connect_fleet(&fleet, &config.target, parallelism, &errors).await {
        Ok(units) => units,
        Err(error) => {
            stop_streams.send_replace(true);
            return Err(error);
        }
    };
    let streaming_assets: Vec<AssetId> = units
        .iter()
        .map(|(machine, _)| fleet.machines[*machine].asset_id.clone())
        .collect();

    let plan = PublishPlan {
        points_per_unit: config.points_cap_per_unit(),
        period: Duration::from_secs_f64(1.0 / config.rate_per_unit),
        start: Instant::now() + START_DELAY,
        units: units.len(),
        ack_timeout: config.delivery_timeout,
    };
    // The measured phase: from the units' first tick until the streams close.
    let (streams_closed, streams_closed_rx) = watch::channel(false);
    let timeline_task = tokio::spawn(sample_timeline(
        delivered.clone(),
        config.gateway_pid,
        Some(config.target.http_base.clone()),
        plan.start,
        SAMPLE_INTERVAL,
        streams_closed_rx,
    ));
    let (stop_units, stop_units_rx) = watch::channel(false);
    let unit_tasks: Vec<_> = units
        .iter()
        .enumerate()
        .map(|(position, (machine, unit))| {
            tokio::spawn(drive_unit(UnitJob {
                unit: unit.clone(),
                position,
                seed: *machine as u64,
                plan,
                sample_slot: Arc::new(Mutex::new(None)),
                progress: indicatif::ProgressBar::hidden(),
                errors: errors.clone(),
                stop: Some(stop_units_rx.clone()),
                acked: None,
                ack_latency: None,
            }))
        })
        .collect();

    wait_for_first_deliveries(&ledger, &streaming_assets, config.delivery_timeout, &errors).await;
    let grants_live_at_start =
        count_live_grants(&owner_admin, &grantees, &assets, parallelism, &errors).await;
    let expected_grants = (grantees.len() * assets.len()) as u64;
    if grants_live_at_start != expected_grants {
        errors.push(format!(
            "{grants_live_at_start} of {expected_grants} grants listed as active before the removals"
        ));
    }

    let removal_plan = plan_removals(granted, seed, config.max_removal_pause);
    let (removals, removal_latency) = remove_all(
        &owner_admin,
        &grantees,
        removal_plan,
        &ledger,
        &errors,
        config.quiet,
    )
    .await;

    tokio::time::sleep(config.settle).await;
    stop_units.send_replace(true);
    let mut outcomes: Vec<UnitOutcome> = Vec::with_capacity(unit_tasks.len());
    for task in unit_tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => errors.push(format!("a unit task failed: {error}")),
        }
    }
    let capped = outcomes
        .iter()
        .filter(|outcome| outcome.sent >= plan.points_per_unit)
        .count();
    if capped > 0 {
        errors.push(format!(
            "{capped} units reached their cap of {} points before the run ended, so later \
             removals were checked against fewer points",
            plan.points_per_unit
        ));
    }
    tokio::time::sleep(STREAM_DRAIN.min(config.settle)).await;
    stop_streams.send_replace(true);
    let mut delivery_latency = LatencyRecorder::new();
    for watcher in watchers {
        match watcher.await {
            Ok(latency) => delivery_latency.merge(&latency),
            Err(error) => errors.push(format!("a stream reader failed: {error}")),
        }
    }
    streams_closed.send_replace(true);
    let timeline = timeline_task.await.unwrap_or_else(|error| {
        errors.push(format!("the timeline sampler failed: {error}"));
        Timeline::default()
    });

    let live_after =
        count_live_grants(&owner_admin, &grantees, &assets, parallelism, &errors).await;
    if live_after > 0 {
        errors.push(format!(
            "{live_after} grants still listed as active after every removal"
        ));
    }
    disconnect_all(units, parallelism, &errors).await;

    // Every reader is done; taking the ledger out (rather than unwrapping the Arc) also
    // works if one of them was lost instead of joined.
    let tally = std::mem::replace(&mut *lock(&ledger), CutoffLedger::new(Vec::new(), &[])).finish();
    if tally.foreign > 0 {
        errors.push(format!(
            "grantees received {} points of assets never granted to them",
            tally.foreign
        ));
    }
    if tally.untracked > 0 {
        errors.push(format!(
            "{} delivered points carried no readable sensors.{SENT_US_SENSOR}",
            tally.untracked
        ));
    }
    let points_sent = outcomes.iter().map(|outcome| outcome.sent).sum();
    let points_acked = outcomes
        .iter()
        .map(|outcome| outcome.acknowledged.iter().filter(|acked| **acked).count() as u64)
        .sum();
    Ok(VisibilityReport {
        run_id,
        account_id: fleet.account.id,
        seed,
        units: plan.units,
        grantees: grantees.len(),
        grants_live_at_start,
        removals,
        removal_latency: removal_latency.percentiles(),
        violations: tally.violations,
        violation_examples: tally.examples,
        points_sent,
        points_acked,
        points_delivered: tally.delivered,
        delivery_latency: delivery_latency.percentiles(),
        timeline,
        errors: ErrorLog::finish(errors),
    })
}

fn lock(ledger: &Mutex<CutoffLedger>) -> MutexGuard<'_, CutoffLedger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn open_streams(
    grantees: &[Grantee],
    parallelism: usize,
) -> Result<Vec<SseStream>, ScenarioError> {
    stream::iter(grantees)
        .map(|grantee| async move {
            grantee
                .client
                .stream("/v1/stream")
                .await
                .map_err(ScenarioError::api(format!(
                    "open the live stream of grantee {}",
                    grantee.account.id
                )))
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await
}

/// Reads one grantee's live stream into the ledger until `stop` flips, counting each point
/// in `delivered` (the timeline's series); returns the send → delivery latencies it saw.
async fn watch_grantee(
    grantee: usize,
    grantee_id: AccountId,
    mut stream: SseStream,
    ledger: Arc<Mutex<CutoffLedger>>,
    mut stop: watch::Receiver<bool>,
    errors: Arc<ErrorLog>,
    delivered: Arc<AtomicU64>,
) -> LatencyRecorder {
    let mut latency = LatencyRecorder::new();
    let mut unreadable = 0u64;
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            _ = stop.changed() => return latency,
        };
        let decoded = match event {
            None => {
                errors.push(format!(
                    "the live stream of grantee {grantee_id} ended before the run did"
                ));
                return latency;
            }
            Some(Ok(event)) => match event.point() {
                None => continue,
                Some(point) => point.map_err(|error| error.to_string()),
            },
            Some(Err(error @ ApiError::Decode { .. })) => Err(error.to_string()),
            Some(Err(error)) => {
                errors.push(format!(
                    "the live stream of grantee {grantee_id} broke: {error}"
                ));
                return latency;
            }
        };
        let point = match decoded {
            Ok(point) => point,
            Err(problem) => {
                unreadable += 1;
                if unreadable == 1 {
                    errors.push(format!(
                        "grantee {grantee_id}: a live event could not be read: {problem}"
                    ));
                }
                continue;
            }
        };
        let received_us = now_us();
        let sent_us = point.sensor(SENT_US_SENSOR).and_then(whole_number);
        lock(&ledger).observe(grantee, &point.asset_id, sent_us, received_us);
        delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(sent_us) = sent_us {
            latency.record_between(sent_us, received_us);
        }
    }
}

/// Waits until every grantee has received a point of every streaming asset, or the timeout
/// passes (then the pairs still dark are an error: their cut-off cannot be judged).
async fn wait_for_first_deliveries(
    ledger: &Mutex<CutoffLedger>,
    assets: &[AssetId],
    timeout: Duration,
    errors: &ErrorLog,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let (undelivered, example) = lock(ledger).undelivered(assets);
        if undelivered == 0 {
            return;
        }
        if Instant::now() >= deadline {
            if let Some((grantee, asset)) = example {
                errors.push(format!(
                    "{undelivered} granted pairs saw no point within {timeout:?} \
                     (e.g. {grantee} never received {asset})"
                ));
            }
            return;
        }
        tokio::time::sleep(DELIVERY_POLL).await;
    }
}

/// Sends the removals one at a time, in plan order, marking each in the ledger around the
/// round trip (request stamp under the lock, answer stamp right after the answer).
async fn remove_all(
    owner_admin: &ApiClient,
    grantees: &[Grantee],
    plan: Vec<PlannedRemoval>,
    ledger: &Mutex<CutoffLedger>,
    errors: &ErrorLog,
    quiet: bool,
) -> (Vec<RemovalRecord>, LatencyRecorder) {
    let progress = progress_bar(plan.len() as u64, "grants removed", quiet);
    let mut latency = LatencyRecorder::new();
    let mut records = Vec::with_capacity(plan.len());
    for step in plan {
        tokio::time::sleep(step.pause).await;
        let grantee = grantees[step.grantee].account.id.clone();
        let requested_us = {
            let mut ledger = lock(ledger);
            let requested_us = now_us();
            ledger.removal_requested(step.grantee, &step.asset_id, requested_us);
            requested_us
        };
        let outcome = owner_admin.delete_grant(&step.grant_id).await;
        let answered_us = now_us();
        let status = match outcome {
            Ok(status) => {
                lock(ledger).removal_answered(step.grantee, &step.asset_id, answered_us);
                latency.record_between(requested_us, answered_us);
                if status != 204 {
                    errors.push(format!(
                        "removing grant {} answered {status}, not 204",
                        step.grant_id
                    ));
                }
                Some(status)
            }
            Err(error) => {
                lock(ledger).removal_failed(step.grantee, &step.asset_id);
                errors.push(format!("removing grant {}: {error}", step.grant_id));
                error.status()
            }
        };
        records.push(RemovalRecord {
            grant_id: step.grant_id,
            grantee,
            asset_id: step.asset_id,
            requested_us,
            answered_us: status.map(|_| answered_us),
            status,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    (records, latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> VisibilityConfig {
        VisibilityConfig::new(
            "http://127.0.0.1:1",
            "127.0.0.1:1883".parse().expect("addr"),
            "token",
        )
    }

    #[test]
    fn defaults_are_valid_and_bounded() {
        assert!(config().validate().is_ok());
        assert_eq!(config().points_cap_per_unit(), 5 * 3600);
        let many = VisibilityConfig {
            units: MAX_UNITS,
            ..config()
        };
        assert_eq!(
            many.points_cap_per_unit(),
            MAX_TOTAL_POINTS / MAX_UNITS as u64
        );
    }

    #[test]
    fn bounds_are_enforced_and_named() {
        let refused = |config: VisibilityConfig, word: &str| {
            let error = config.validate().expect_err("refused");
            assert!(error.to_string().contains(word), "{error}");
        };
        refused(
            VisibilityConfig {
                units: 0,
                ..config()
            },
            "units",
        );
        refused(
            VisibilityConfig {
                grantees: 0,
                ..config()
            },
            "grantees",
        );
        refused(
            VisibilityConfig {
                grantees: MAX_GRANTEES + 1,
                ..config()
            },
            "grantees",
        );
        refused(
            VisibilityConfig {
                units: 5_001,
                grantees: 2,
                ..config()
            },
            "grants",
        );
        refused(
            VisibilityConfig {
                rate_per_unit: f64::INFINITY,
                ..config()
            },
            "rate",
        );
        refused(
            VisibilityConfig {
                settle: Duration::ZERO,
                ..config()
            },
            "settle",
        );
        refused(
            VisibilityConfig {
                delivery_timeout: MAX_DELIVERY_TIMEOUT + Duration::from_secs(1),
                ..config()
            },
            "delivery timeout",
        );
        refused(
            VisibilityConfig {
                max_removal_pause: Duration::from_secs(11),
                ..config()
            },
            "removal pause",
        );
        refused(
            VisibilityConfig {
                run_id: Some("Not-Ok".into()),
                ..config()
            },
            "run id",
        );
        let no_pause = VisibilityConfig {
            max_removal_pause: Duration::ZERO,
            ..config()
        };
        assert!(no_pause.validate().is_ok());
    }

    #[tokio::test]
    async fn unreachable_gateway_is_an_error_not_a_report() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let config = VisibilityConfig::new(
            format!("http://{address}"),
            "127.0.0.1:1".parse().expect("addr"),
            "token",
        );
        let error = run_visibility(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
