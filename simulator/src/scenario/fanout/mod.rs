//! The fan-out scenario: an owner's units stream telemetry while every asset is shared
//! with many accounts, each holding a live stream, and the run checks from outside what a
//! fleet operator relies on: every acknowledged point reaches every grantee exactly once,
//! and never an account that holds no grant. It measures the cost of sharing: per-delivery
//! latency, how far apart the first and last grantee get the same point, deliveries per
//! second, and the gateway's memory while it fans out.
//!
//! Order of a run: provision the owner's fleet, create the grantee sub-accounts and one
//! sub-account granted nothing (the outsider), grant every asset to every grantee (one
//! bulk call each, the sharing scenarios' setup), check the grantees' listings,
//! open one stream per grantee and one for the outsider, connect the units and publish a
//! fixed number of points, wait until the streams delivered what was acknowledged, drain,
//! then read back the history of a sample of grantees (every acknowledged point there once)
//! and the outsider's (404 for every asset).

mod ledger;
mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::fleet::{connect_fleet, disconnect_all, Fleet};
use super::measure::{verify_storage, VerifyTarget};
use super::publish::{join_units, spawn_units, Drive, PublishPlan};
use super::runner::{self, Run, Scenario};
use super::sharing::setup::{share_fleet, Grantee};
use super::sharing::streams::{
    create_outsider, expect_history_refused, open_streams, wait_until_zero, watch_stream,
    StreamReaders, MAX_PARALLELISM,
};
use super::timeline::{Sampler, Timeline};
use super::{check_count, check_duration, check_rate, RunOptions, ScenarioError};
use crate::api::AssetId;
use crate::scenario::Target;
use crate::unit::SimUnit;
use ledger::FanoutLedger;

pub use report::FanoutReport;

pub const MAX_UNITS: usize = 1_000;
pub const MAX_GRANTEES: usize = 500;
/// Bounds the grants (and the setup's bulk calls) one run creates.
pub const MAX_PAIRS: usize = 10_000;
pub const MAX_RATE_PER_UNIT: f64 = 100.0;
pub const MAX_DURATION: Duration = Duration::from_secs(600);
pub const MAX_SETTLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Bounds the ledger: one byte per (grantee, point).
pub const MAX_DELIVERIES: u64 = 50_000_000;
/// How long the streams stay open once the expected deliveries are in, so that
/// duplicates and leaks still on the way are seen.
const STREAM_DRAIN: Duration = Duration::from_millis(500);

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// The gateway, and the platform administrator's token the run sets itself up with.
    pub target: Target,
    pub units: usize,
    /// Sub-accounts of the owner that are each granted every asset and hold a live stream.
    pub grantees: usize,
    /// Points per second per unit.
    pub rate_per_unit: f64,
    /// How long the units publish.
    pub duration: Duration,
    /// Grantees whose history of every asset is read back after the run (the first ones).
    pub history_sample: usize,
    /// How long to wait for acknowledgements, live deliveries and history to catch up.
    pub settle_timeout: Duration,
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
}

impl FanoutConfig {
    /// Defaults: 5 units, 20 grantees, 2 points/s each for 10 s, history of 3 grantees,
    /// plain MQTT, quiet; against
    /// `target`, which may use TLS.
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 5,
            grantees: 20,
            rate_per_unit: 2.0,
            duration: Duration::from_secs(10),
            history_sample: 3,
            settle_timeout: Duration::from_secs(30),
            run: RunOptions::default(),
        }
    }

    /// `rate × duration`, rounded: the exact number of points each unit sends.
    pub fn points_per_unit(&self) -> u64 {
        (self.rate_per_unit * self.duration.as_secs_f64()).round() as u64
    }

    /// Refuses settings that would run unbounded or measure nothing, naming the setting.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::InvalidConfig(message));
        check_count("units", self.units, MAX_UNITS)?;
        check_count("grantees", self.grantees, MAX_GRANTEES)?;
        let pairs = self.units.saturating_mul(self.grantees);
        if pairs > MAX_PAIRS {
            return invalid(format!(
                "units × grantees = {pairs} grants, more than the {MAX_PAIRS} one run may create"
            ));
        }
        check_rate(self.rate_per_unit, MAX_RATE_PER_UNIT)?;
        check_duration("duration", self.duration, MAX_DURATION, false)?;
        if self.points_per_unit() == 0 {
            return invalid("rate × duration rounds to zero points per unit".to_owned());
        }
        let deliveries = self.points_per_unit().saturating_mul(pairs as u64);
        if deliveries > MAX_DELIVERIES {
            return invalid(format!(
                "units × grantees × rate × duration = {deliveries} deliveries, more than the \
                 {MAX_DELIVERIES} one run may track"
            ));
        }
        if !(1..=self.grantees).contains(&self.history_sample) {
            return invalid(format!(
                "history sample must be 1..=grantees ({}), got {}",
                self.grantees, self.history_sample
            ));
        }
        check_duration(
            "settle timeout",
            self.settle_timeout,
            MAX_SETTLE_TIMEOUT,
            false,
        )?;
        self.run.validate(MAX_PARALLELISM)
    }
}

fn lock(ledger: &Mutex<FanoutLedger>) -> MutexGuard<'_, FanoutLedger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no stream or unit could start); everything else is in the report.
pub async fn run_fanout(config: &FanoutConfig) -> Result<FanoutReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

/// What setup made: the shared fleet, the outsider, the ledger the stream readers fill and
/// the connected units.
pub(crate) struct FanoutSetup {
    fleet: Fleet,
    grantees: Vec<Grantee>,
    outsider: Grantee,
    assets: Vec<AssetId>,
    ledger: Arc<Mutex<FanoutLedger>>,
    /// Deliveries to grantees so far, for the timeline.
    deliveries: Arc<AtomicU64>,
    streams: StreamReaders,
    units: Vec<(usize, Arc<SimUnit>)>,
}

/// What the load measured, completed by settle.
pub(crate) struct FanoutLoad {
    start: Instant,
    sampler: Option<Sampler>,
    timeline: Timeline,
    /// Acknowledgement flags by machine index, lined up with the ledger's assets.
    acknowledged: Vec<Vec<bool>>,
    points_sent: u64,
    elapsed_s: f64,
}

impl Scenario for FanoutConfig {
    type Setup = FanoutSetup;
    type Load = FanoutLoad;
    type Report = FanoutReport;

    /// The fleet shared with every grantee and an outsider granted nothing, then their
    /// streams, open before any unit publishes so every point has all its subscribers.
    async fn setup(&self, run: &Run) -> Result<FanoutSetup, ScenarioError> {
        let shared = share_fleet(
            &self.target,
            &run.id,
            self.units,
            self.grantees,
            self.run.parallelism,
            &run.errors,
        )
        .await?;
        let outsider =
            create_outsider(&shared.platform_admin, &shared.fleet.account.id, &run.id).await?;
        let grantee_ids = shared
            .grantees
            .iter()
            .map(|grantee| grantee.account.id.clone());
        let ledger = Arc::new(Mutex::new(FanoutLedger::new(
            grantee_ids.collect(),
            &shared.assets,
            self.points_per_unit(),
        )));
        let deliveries = Arc::new(AtomicU64::new(0));
        let streams =
            watch_accounts(&shared.grantees, &outsider, &ledger, &deliveries, run, self).await?;
        let units = match connect_fleet(
            &shared.fleet,
            &self.target,
            self.run.parallelism,
            &run.errors,
        )
        .await
        {
            Ok(units) => units,
            Err(error) => {
                streams.stop.send_replace(true);
                return Err(error);
            }
        };
        Ok(FanoutSetup {
            fleet: shared.fleet,
            grantees: shared.grantees,
            outsider,
            assets: shared.assets,
            ledger,
            deliveries,
            streams,
            units,
        })
    }

    /// Every unit publishes the planned points while the timeline counts deliveries.
    async fn load(&self, run: &Run, setup: &mut FanoutSetup) -> FanoutLoad {
        let plan = PublishPlan::new(
            self.points_per_unit(),
            self.rate_per_unit,
            setup.units.len(),
            self.settle_timeout,
        );
        let sampler = Sampler::start(
            setup.deliveries.clone(),
            self.run.gateway_pid,
            Some(self.target.http_base.clone()),
            plan.start,
        );
        let tasks = spawn_units(&setup.units, plan, Drive::default(), &run.errors);
        let mut acknowledged: Vec<Vec<bool>> = vec![Vec::new(); setup.assets.len()];
        let mut points_sent = 0u64;
        let outcomes = join_units(tasks, &run.errors).await;
        for (outcome, (machine, _)) in outcomes.into_iter().zip(&setup.units) {
            if let Some(outcome) = outcome {
                points_sent += outcome.sent;
                acknowledged[*machine] = outcome.acknowledged;
            }
        }
        FanoutLoad {
            start: plan.start,
            sampler: Some(sampler),
            timeline: Timeline::default(),
            acknowledged,
            points_sent,
            elapsed_s: 0.0,
        }
    }

    /// Until every grantee has every acknowledged point (or the settle timeout), then a
    /// drain for duplicates and leaks still on the way; the streams close.
    async fn settle(&self, run: &Run, setup: &mut FanoutSetup, load: &mut FanoutLoad) {
        let points_acked = acked_flags(&load.acknowledged);
        let deliveries_expected = points_acked * setup.grantees.len() as u64;
        let short = wait_until_zero(self.settle_timeout, || {
            deliveries_expected.saturating_sub(lock(&setup.ledger).delivered())
        })
        .await;
        load.elapsed_s = load.start.elapsed().as_secs_f64();
        if short > 0 {
            run.errors.push(format!(
                "{short} of {deliveries_expected} expected deliveries had not arrived \
                 {:?} after the last acknowledgement",
                self.settle_timeout
            ));
        }
        tokio::time::sleep(STREAM_DRAIN).await;
        setup.streams.close(&run.errors).await;
        if let Some(sampler) = load.sampler.take() {
            load.timeline = sampler.finish(&run.errors).await;
        }
    }

    /// A sample of grantees reads every asset back, the outsider gets 404 for each, and
    /// the ledger is judged.
    async fn check(&self, run: Run, setup: FanoutSetup, load: FanoutLoad) -> FanoutReport {
        let (history_missing, history_duplicates) = self.read_history(&run, &setup, &load).await;
        let outsider = &setup.outsider;
        let refusals = expect_history_refused(
            &outsider.account.id,
            &outsider.client,
            &setup.assets,
            self.run.parallelism,
            &run.errors,
        )
        .await;
        let units_connected = setup.units.len();
        disconnect_all(setup.units, self.run.parallelism, &run.errors).await;
        let tally = std::mem::replace(
            &mut *lock(&setup.ledger),
            FanoutLedger::new(Vec::new(), &[], 0),
        )
        .finish(&load.acknowledged);
        for example in &tally.examples {
            run.errors.push(example.clone());
        }
        if tally.duplicates > 0 {
            run.errors.push(format!(
                "{} deliveries repeated a point a grantee had already received",
                tally.duplicates
            ));
        }
        if load.points_sent == 0 {
            run.errors.push("no unit sent a point".to_owned());
        }
        let elapsed_s = load.elapsed_s;
        FanoutReport {
            account_id: setup.fleet.account.id,
            outsider_id: setup.outsider.account.id,
            units: units_connected,
            grantees: setup.grantees.len(),
            points_sent: load.points_sent,
            points_acked: acked_flags(&load.acknowledged),
            deliveries_expected: tally.expected,
            deliveries: tally.delivered,
            missing: tally.missing,
            duplicates: tally.duplicates,
            leaked: tally.leaked,
            foreign: tally.foreign,
            untracked: tally.untracked,
            publish_to_sse: tally.publish_to_sse,
            grantee_spread: tally.grantee_spread,
            elapsed_s,
            deliveries_per_sec: if elapsed_s > 0.0 {
                tally.delivered as f64 / elapsed_s
            } else {
                0.0
            },
            history_grantees: self.history_sample,
            history_missing,
            history_duplicates,
            outsider_refused: refusals.refused,
            outsider_not_refused: refusals.not_refused,
            timeline: load.timeline,
            run_id: run.id.clone(),
            errors: run.finish_errors(),
        }
    }
}

impl FanoutConfig {
    /// The first grantees of the sample read every asset back: every acknowledged point
    /// there once. Returns the points missing and the rows repeated over all of them.
    async fn read_history(&self, run: &Run, setup: &FanoutSetup, load: &FanoutLoad) -> (u64, u64) {
        let deadline = Instant::now() + self.settle_timeout;
        let (mut missing, mut duplicates) = (0, 0);
        for grantee in setup.grantees.iter().take(self.history_sample) {
            let targets = setup
                .assets
                .iter()
                .zip(&load.acknowledged)
                .map(|(asset_id, acked)| VerifyTarget {
                    asset_id: asset_id.clone(),
                    acknowledged: acked.clone(),
                })
                .collect();
            let tally = verify_storage(
                &grantee.client,
                targets,
                self.run.parallelism,
                deadline,
                &run.errors,
            )
            .await;
            if tally.missing > 0 || tally.duplicates > 0 {
                run.errors.push(format!(
                    "grantee {}: history lacks {} acknowledged points and repeats {}",
                    grantee.account.id, tally.missing, tally.duplicates
                ));
            }
            missing += tally.missing;
            duplicates += tally.duplicates;
        }
        (missing, duplicates)
    }
}

/// Points acknowledged over every unit's flags.
fn acked_flags(acknowledged: &[Vec<bool>]) -> u64 {
    acknowledged
        .iter()
        .map(|acked| acked.iter().filter(|acked| **acked).count() as u64)
        .sum()
}

/// Opens a stream per grantee and one for the outsider (last), each read into the ledger:
/// a grantee's points are deliveries, any point on the outsider's stream is a leak.
async fn watch_accounts(
    grantees: &[Grantee],
    outsider: &Grantee,
    ledger: &Arc<Mutex<FanoutLedger>>,
    deliveries: &Arc<AtomicU64>,
    run: &Run,
    config: &FanoutConfig,
) -> Result<StreamReaders, ScenarioError> {
    let mut accounts: Vec<&Grantee> = grantees.iter().collect();
    accounts.push(outsider);
    let streams = open_streams(&accounts, config.run.parallelism).await?;
    let (stop, stop_rx) = watch::channel(false);
    let readers = streams
        .into_iter()
        .enumerate()
        .map(|(index, stream)| {
            let (ledger, deliveries) = (ledger.clone(), deliveries.clone());
            let account_id = accounts[index].account.id.clone();
            let is_outsider = index == grantees.len();
            let outsider_id = account_id.clone();
            tokio::spawn(watch_stream(
                account_id,
                stream,
                stop_rx.clone(),
                run.errors.clone(),
                move |arrival| {
                    if is_outsider {
                        lock(&ledger).leaked(&outsider_id, arrival.point);
                    } else {
                        lock(&ledger).observe(
                            index,
                            arrival.point,
                            arrival.sent_us,
                            arrival.received_us,
                        );
                        deliveries.fetch_add(1, Ordering::Relaxed);
                    }
                },
            ))
        })
        .collect();
    Ok(StreamReaders { stop, readers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::options::{assert_refused, assert_run_options_checked};

    fn config() -> FanoutConfig {
        FanoutConfig::for_target(Target::unreachable())
    }

    #[test]
    fn defaults_are_valid() {
        assert!(config().validate().is_ok());
        assert_eq!(config().points_per_unit(), 20);
    }

    #[test]
    fn bounds_are_enforced_and_named() {
        let refused = |config: FanoutConfig, word: &str| assert_refused(config.validate(), word);
        refused(
            FanoutConfig {
                units: 0,
                ..config()
            },
            "units",
        );
        refused(
            FanoutConfig {
                grantees: 0,
                ..config()
            },
            "grantees",
        );
        refused(
            FanoutConfig {
                grantees: MAX_GRANTEES + 1,
                ..config()
            },
            "grantees",
        );
        refused(
            FanoutConfig {
                units: 21,
                grantees: 500,
                ..config()
            },
            "units × grantees",
        );
        refused(
            FanoutConfig {
                units: 20,
                grantees: 500,
                rate_per_unit: 100.0,
                duration: Duration::from_secs(600),
                ..config()
            },
            "deliveries",
        );
        refused(
            FanoutConfig {
                rate_per_unit: f64::NAN,
                ..config()
            },
            "rate",
        );
        refused(
            FanoutConfig {
                rate_per_unit: 0.01,
                duration: Duration::from_secs(1),
                ..config()
            },
            "zero points",
        );
        refused(
            FanoutConfig {
                duration: MAX_DURATION + Duration::from_secs(1),
                ..config()
            },
            "duration",
        );
        refused(
            FanoutConfig {
                history_sample: 0,
                ..config()
            },
            "history sample",
        );
        refused(
            FanoutConfig {
                history_sample: 21,
                ..config()
            },
            "history sample",
        );
        refused(
            FanoutConfig {
                settle_timeout: Duration::ZERO,
                ..config()
            },
            "settle timeout",
        );
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            FanoutConfig { run, ..config() }.validate()
        });
        let largest = FanoutConfig {
            units: 20,
            grantees: 500,
            history_sample: 500,
            ..config()
        };
        assert!(largest.validate().is_ok());
    }

    #[tokio::test]
    async fn unreachable_gateway_is_an_error_not_a_report() {
        let config = FanoutConfig::for_target(Target::closed());
        let error = run_fanout(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
