//! The revoke-storm scenario: many grants live while the units stream and every grantee
//! holds a live stream, then all of them are taken back at once with many removal calls in
//! flight. The visibility scenario removes grants one at a time; this one asks whether the
//! cut-off promise (DESIGN.md section 2: when a removal answers, no later point reaches the
//! removed account) still holds when the gateway has thousands of audience changes to apply
//! together, and what that costs: removal latency under load, removals per second, memory.
//!
//! Order of a run: provision the owner's fleet and the grantee sub-accounts, grant every
//! asset to every grantee (the sharing scenarios' setup, `sharing/`), open the grantees' streams,
//! connect the units and let them stream, wait until every grantee has received every
//! asset, check the listing, run the storm (`storm.rs`), keep streaming for the settle
//! period, stop, then check that no grant is listed, that every grantee's history of every
//! asset answers 404, and that the owner's history holds every acknowledged point once.

mod report;
mod storm;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::measure::{verify_storage, VerifyTarget};
use super::runner::{self, Run, Scenario};
use super::sharing::cutoff_run::{
    points_cap_per_unit, setup_cutoff, CutoffLoad, CutoffSetup, StreamSpec, StreamedLoad,
};
use super::sharing::streams::{expect_history_refused, MAX_PARALLELISM};
use super::{check_count, check_duration, check_rate, RunOptions, ScenarioError};
use crate::scenario::Target;
use crate::stats::SeqTally;
use storm::{Storm, StormOutcome};

pub use report::RevokeStormReport;
pub use storm::{RemovalCall, RevokeMode};

pub use super::sharing::cutoff_run::{MAX_STREAMING, MAX_TOTAL_POINTS};

pub const MAX_UNITS: usize = 1_000;
pub const MAX_GRANTEES: usize = 500;
/// "Up to a few thousand" grants: each is one removal and one history check.
pub const MAX_GRANTS: usize = 5_000;
pub const MAX_RATE_PER_UNIT: f64 = 100.0;
pub const MAX_CONCURRENCY: usize = 256;
pub const MAX_SETTLE: Duration = Duration::from_secs(600);
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct RevokeStormConfig {
    /// The gateway, and the platform administrator's token the run sets itself up with.
    pub target: Target,
    pub units: usize,
    /// Sub-accounts that each receive every asset and hold a live stream.
    pub grantees: usize,
    /// Points per second per unit.
    pub rate_per_unit: f64,
    /// Removal calls in flight at once during the storm.
    pub concurrency: usize,
    pub mode: RevokeMode,
    /// How long the units keep streaming after the storm's last answer.
    pub settle: Duration,
    /// How long to wait for every grantee's first points, for the last acknowledgements and
    /// for history to catch up.
    pub delivery_timeout: Duration,
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
    /// Seeds the removal order; random when `None`, and reported either way.
    pub seed: Option<u64>,
}

impl RevokeStormConfig {
    /// Defaults: 10 units, 20 grantees (200 grants), 5 points/s each, 32 `DELETE`s in
    /// flight, 2 s settle, plain MQTT, quiet; against
    /// `target`, which may use TLS.
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 10,
            grantees: 20,
            rate_per_unit: 5.0,
            concurrency: 32,
            mode: RevokeMode::Individual,
            settle: Duration::from_secs(2),
            delivery_timeout: Duration::from_secs(30),
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
        let grants = self.units.saturating_mul(self.grantees);
        if grants > MAX_GRANTS {
            return Err(ScenarioError::InvalidConfig(format!(
                "units × grantees = {grants} grants, more than the {MAX_GRANTS} one storm may remove"
            )));
        }
        check_rate(self.rate_per_unit, MAX_RATE_PER_UNIT)?;
        check_count("concurrency", self.concurrency, MAX_CONCURRENCY)?;
        check_duration("settle", self.settle, MAX_SETTLE, false)?;
        check_duration(
            "delivery timeout",
            self.delivery_timeout,
            MAX_DELIVERY_TIMEOUT,
            false,
        )?;
        self.run.validate(MAX_PARALLELISM)
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no stream or unit could start); everything else is in the report.
pub async fn run_revoke_storm(
    config: &RevokeStormConfig,
) -> Result<RevokeStormReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

impl Scenario for RevokeStormConfig {
    type Setup = CutoffSetup;
    type Load = CutoffLoad<StormOutcome>;
    type Report = RevokeStormReport;

    async fn setup(&self, run: &Run) -> Result<CutoffSetup, ScenarioError> {
        setup_cutoff(&self.target, run, self.units, self.grantees).await
    }

    /// The units stream; once every grantee gets every asset, every grant is taken back
    /// at once (`storm.rs`). The timeline counts grants removed.
    async fn load(&self, run: &Run, setup: &mut CutoffSetup) -> CutoffLoad<StormOutcome> {
        let removed = Arc::new(AtomicU64::new(0));
        let spec = StreamSpec {
            rate: self.rate_per_unit,
            cap: self.points_cap_per_unit(),
            delivery_timeout: self.delivery_timeout,
            counter: removed.clone(),
            seed: self.seed,
            max_pause: Duration::ZERO,
        };
        let storm = async |setup: &CutoffSetup, plan| {
            let storm = Storm {
                owner_admin: &setup.owner_admin,
                grantees: &setup.grantees,
                ledger: &setup.ledger,
                removed: &removed,
                errors: &run.errors,
            };
            storm.run(plan, self.mode, self.concurrency).await
        };
        setup.stream_and_remove(run, spec, storm).await
    }

    async fn settle(
        &self,
        run: &Run,
        setup: &mut CutoffSetup,
        load: &mut CutoffLoad<StormOutcome>,
    ) {
        setup.settle(run, load, self.settle).await;
    }

    /// No grant listed, every grantee refused every asset's history, the owner's history
    /// holds every acknowledged point once; then the ledger's verdict.
    async fn check(
        &self,
        run: Run,
        setup: CutoffSetup,
        load: CutoffLoad<StormOutcome>,
    ) -> RevokeStormReport {
        let streamed = load.streamed;
        let grants_live_after = setup.grants_live(&run, 0, "after the storm").await;
        let (history_refused, history_not_refused) = self.grantee_history(&run, &setup).await;
        let owner = self.owner_history(&run, &setup, &streamed).await;
        let (units, grantees) = (setup.units.len(), setup.grantees.len());
        let grants_expected = (grantees * setup.assets.len()) as u64;
        let (fleet, tally) = setup.finish(&run).await;
        let calls = &load.removals.calls;
        let succeeded = calls.iter().filter(|call| call.succeeded);
        let grants_removed = succeeded.map(|call| call.grants as u64).sum();
        let storm_s = load.removals.elapsed_s;
        RevokeStormReport {
            account_id: fleet.account.id,
            seed: load.seed,
            mode: self.mode,
            concurrency: self.concurrency,
            units,
            grantees,
            grants_expected,
            grants_live_at_start: load.grants_live_at_start,
            grants_removed,
            grants_live_after,
            removal_latency: load.removals.latency.percentiles(),
            calls: load.removals.calls,
            storm_s,
            removals_per_sec: if storm_s > 0.0 {
                grants_removed as f64 / storm_s
            } else {
                0.0
            },
            violations: tally.violations,
            violation_examples: tally.examples,
            points_sent: streamed.points_sent,
            points_acked: streamed.points_acked(),
            points_delivered: tally.delivered,
            history_refused,
            history_not_refused,
            owner_missing: owner.missing,
            owner_duplicates: owner.duplicates,
            timeline: streamed.timeline,
            run_id: run.id.clone(),
            errors: run.finish_errors(),
        }
    }
}

impl RevokeStormConfig {
    /// Every grantee's history of every asset: (answered 404, answered otherwise).
    async fn grantee_history(&self, run: &Run, setup: &CutoffSetup) -> (u64, u64) {
        let (mut refused, mut not_refused) = (0, 0);
        for grantee in &setup.grantees {
            let tally = expect_history_refused(
                &grantee.account.id,
                &grantee.client,
                &setup.assets,
                self.run.parallelism,
                &run.errors,
            )
            .await;
            refused += tally.refused;
            not_refused += tally.not_refused;
        }
        (refused, not_refused)
    }

    /// The owner's history against what the units had acknowledged.
    async fn owner_history(
        &self,
        run: &Run,
        setup: &CutoffSetup,
        streamed: &StreamedLoad,
    ) -> SeqTally {
        let targets = setup
            .assets
            .iter()
            .zip(&streamed.acknowledged)
            .map(|(asset_id, acked)| VerifyTarget {
                asset_id: asset_id.clone(),
                acknowledged: acked.clone(),
            })
            .collect();
        let deadline = Instant::now() + self.delivery_timeout;
        let owner = verify_storage(
            &setup.owner_admin,
            targets,
            self.run.parallelism,
            deadline,
            &run.errors,
        )
        .await;
        if owner.missing > 0 || owner.duplicates > 0 {
            run.errors.push(format!(
                "the owner's history lacks {} acknowledged points and repeats {}",
                owner.missing, owner.duplicates
            ));
        }
        owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::options::{assert_refused, assert_run_options_checked};

    fn config() -> RevokeStormConfig {
        RevokeStormConfig::for_target(Target::unreachable())
    }

    #[test]
    fn defaults_are_valid_and_bounded() {
        assert!(config().validate().is_ok());
        assert_eq!(config().points_cap_per_unit(), 5 * 3600);
        let many = RevokeStormConfig {
            units: MAX_UNITS,
            grantees: 5,
            ..config()
        };
        assert!(many.validate().is_ok());
        assert_eq!(
            many.points_cap_per_unit(),
            (5 * 3600).min(MAX_TOTAL_POINTS / MAX_UNITS as u64)
        );
    }

    #[test]
    fn bounds_are_enforced_and_named() {
        let refused =
            |config: RevokeStormConfig, word: &str| assert_refused(config.validate(), word);
        refused(
            RevokeStormConfig {
                units: 0,
                ..config()
            },
            "units",
        );
        refused(
            RevokeStormConfig {
                grantees: MAX_GRANTEES + 1,
                ..config()
            },
            "grantees",
        );
        refused(
            RevokeStormConfig {
                units: 11,
                grantees: 500,
                ..config()
            },
            "grants",
        );
        refused(
            RevokeStormConfig {
                rate_per_unit: -1.0,
                ..config()
            },
            "rate",
        );
        refused(
            RevokeStormConfig {
                concurrency: 0,
                ..config()
            },
            "concurrency",
        );
        refused(
            RevokeStormConfig {
                concurrency: MAX_CONCURRENCY + 1,
                ..config()
            },
            "concurrency",
        );
        refused(
            RevokeStormConfig {
                settle: Duration::ZERO,
                ..config()
            },
            "settle",
        );
        refused(
            RevokeStormConfig {
                delivery_timeout: MAX_DELIVERY_TIMEOUT * 2,
                ..config()
            },
            "delivery timeout",
        );
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            RevokeStormConfig { run, ..config() }.validate()
        });
    }

    #[tokio::test]
    async fn unreachable_gateway_is_an_error_not_a_report() {
        let config = RevokeStormConfig::for_target(Target::closed());
        let error = run_revoke_storm(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
