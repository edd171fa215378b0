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

mod report;

use std::time::Duration;

use super::runner::{self, Run, Scenario};
use super::sharing::cutoff::PlannedRemoval;
use super::sharing::cutoff_run::{
    lock, points_cap_per_unit, setup_cutoff, CutoffLoad, CutoffSetup, StreamSpec,
};
use super::{
    check_count, check_duration, check_rate, progress_bar, ErrorLog, RunOptions, ScenarioError,
};
use crate::scenario::Target;
use crate::stats::LatencyRecorder;
use crate::telemetry::now_us;

pub use super::sharing::cutoff::Violation;
pub use report::{RemovalRecord, VisibilityReport};

pub use super::sharing::cutoff_run::{MAX_STREAMING, MAX_TOTAL_POINTS};

pub const MAX_UNITS: usize = 10_000;
pub const MAX_GRANTEES: usize = 100;
/// Bounds the removal phase: each removal is one sequential round trip.
pub const MAX_GRANTS: usize = 10_000;
pub const MAX_RATE_PER_UNIT: f64 = 100.0;
pub const MAX_SETTLE: Duration = Duration::from_secs(600);
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);
pub const MAX_REMOVAL_PAUSE: Duration = Duration::from_secs(10);
const MAX_PARALLELISM: usize = 1024;

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
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
    /// Seeds the removal order; random when `None`, and reported either way.
    pub seed: Option<u64>,
}

impl VisibilityConfig {
    /// Defaults: 5 units, 2 grantees, 5 points/s each, 3 s settle, plain MQTT, quiet; against
    /// `target`, which may use TLS.
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 5,
            grantees: 2,
            rate_per_unit: 5.0,
            settle: Duration::from_secs(3),
            delivery_timeout: Duration::from_secs(30),
            max_removal_pause: Duration::from_millis(20),
            run: RunOptions::default(),
            seed: None,
        }
    }

    /// The most points one unit may send (see `sharing::cutoff_run::points_cap_per_unit`).
    pub fn points_cap_per_unit(&self) -> u64 {
        points_cap_per_unit(self.rate_per_unit, self.units)
    }

    /// Refuses settings that would run unbounded or measure nothing, naming the setting.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        check_count("units", self.units, MAX_UNITS)?;
        check_count("grantees", self.grantees, MAX_GRANTEES)?;
        if self.units.saturating_mul(self.grantees) > MAX_GRANTS {
            return Err(ScenarioError::InvalidConfig(format!(
                "units × grantees = {} grants, more than the {MAX_GRANTS} one run may remove",
                self.units.saturating_mul(self.grantees)
            )));
        }
        check_rate(self.rate_per_unit, MAX_RATE_PER_UNIT)?;
        check_duration("settle", self.settle, MAX_SETTLE, false)?;
        check_duration(
            "delivery timeout",
            self.delivery_timeout,
            MAX_DELIVERY_TIMEOUT,
            false,
        )?;
        check_duration(
            "removal pause",
            self.max_removal_pause,
            MAX_REMOVAL_PAUSE,
            true,
        )?;
        self.run.validate(MAX_PARALLELISM)
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no stream or unit could start); everything else is in the report.
pub async fn run_visibility(config: &VisibilityConfig) -> Result<VisibilityReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

/// The removals, one at a time: what each answered, and their round trips.
pub(crate) type Removals = (Vec<RemovalRecord>, LatencyRecorder);

impl Scenario for VisibilityConfig {
    type Setup = CutoffSetup;
    type Load = CutoffLoad<Removals>;
    type Report = VisibilityReport;

    async fn setup(&self, run: &Run) -> Result<CutoffSetup, ScenarioError> {
        setup_cutoff(&self.target, run, self.units, self.grantees).await
    }

    /// The units stream; once every grantee gets every asset, the grants are removed one
    /// at a time in a seeded random order. The timeline counts deliveries to grantees.
    async fn load(&self, run: &Run, setup: &mut CutoffSetup) -> CutoffLoad<Removals> {
        let spec = StreamSpec {
            rate: self.rate_per_unit,
            cap: self.points_cap_per_unit(),
            delivery_timeout: self.delivery_timeout,
            counter: setup.delivered.clone(),
            seed: self.seed,
            max_pause: self.max_removal_pause,
        };
        let quiet = self.run.quiet;
        let remove =
            async |setup: &CutoffSetup, plan| remove_all(setup, plan, &run.errors, quiet).await;
        setup.stream_and_remove(run, spec, remove).await
    }

    async fn settle(&self, run: &Run, setup: &mut CutoffSetup, load: &mut CutoffLoad<Removals>) {
        setup.settle(run, load, self.settle).await;
    }

    async fn check(
        &self,
        run: Run,
        setup: CutoffSetup,
        load: CutoffLoad<Removals>,
    ) -> VisibilityReport {
        setup.grants_live(&run, 0, "after every removal").await;
        let (units, grantees) = (setup.units.len(), setup.grantees.len());
        let delivery_latency = setup.delivery_latency_percentiles();
        let (fleet, tally) = setup.finish(&run).await;
        let streamed = load.streamed;
        let (removals, removal_latency) = load.removals;
        VisibilityReport {
            account_id: fleet.account.id,
            seed: load.seed,
            units,
            grantees,
            grants_live_at_start: load.grants_live_at_start,
            removals,
            removal_latency: removal_latency.percentiles(),
            violations: tally.violations,
            violation_examples: tally.examples,
            points_sent: streamed.points_sent,
            points_acked: streamed.points_acked(),
            points_delivered: tally.delivered,
            delivery_latency,
            timeline: streamed.timeline,
            run_id: run.id.clone(),
            errors: run.finish_errors(),
        }
    }
}

/// Sends the removals one at a time, in plan order, marking each in the ledger around the
/// round trip (request stamp under the lock, answer stamp right after the answer).
async fn remove_all(
    setup: &CutoffSetup,
    plan: Vec<PlannedRemoval>,
    errors: &ErrorLog,
    quiet: bool,
) -> (Vec<RemovalRecord>, LatencyRecorder) {
    let (owner_admin, grantees, ledger) = (&setup.owner_admin, &setup.grantees, &setup.ledger);
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
    use crate::scenario::options::{assert_refused, assert_run_options_checked};

    fn config() -> VisibilityConfig {
        VisibilityConfig::for_target(Target::unreachable())
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
        let refused =
            |config: VisibilityConfig, word: &str| assert_refused(config.validate(), word);
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
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            VisibilityConfig { run, ..config() }.validate()
        });
        let no_pause = VisibilityConfig {
            max_removal_pause: Duration::ZERO,
            ..config()
        };
        assert!(no_pause.validate().is_ok());
    }

    #[tokio::test]
    async fn unreachable_gateway_is_an_error_not_a_report() {
        let config = VisibilityConfig::for_target(Target::closed());
        let error = run_visibility(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
