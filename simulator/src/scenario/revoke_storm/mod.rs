//! The revoke-storm scenario: many grants live while the units stream and every grantee
//! holds a live stream, then all of them are taken back at once with many removal calls in
//! flight. The visibility scenario removes grants one at a time; this one asks whether the
//! cut-off promise (DESIGN.md section 2: when a removal answers, no later point reaches the
//! removed account) still holds when the gateway has thousands of audience changes to apply
//! together, and what that costs: removal latency under load, removals per second, memory.
//!
//! Order of a run: provision the owner's fleet and the grantee sub-accounts, grant every
//! asset to every grantee (the visibility scenario's setup), open the grantees' streams,
//! connect the units and let them stream, wait until every grantee has received every
//! asset, check the listing, run the storm (`storm.rs`), keep streaming for the settle
//! period, stop, then check that no grant is listed, that every grantee's history of every
//! asset answers 404, and that the owner's history holds every acknowledged point once.

mod report;
mod storm;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::fleet::{connect_fleet, disconnect_all, new_run_id};
use super::measure::{verify_storage, VerifyTarget};
use super::publish::{drive_unit, PublishPlan, UnitJob, UnitOutcome};
use super::sharing_load::{
    check_count, check_duration, check_rate, expect_history_refused, open_streams, wait_until_zero,
    watch_stream, MAX_PARALLELISM,
};
use super::timeline::{sample_timeline, SAMPLE_INTERVAL};
use super::visibility::cutoff::{plan_removals, CutoffLedger};
use super::visibility::setup::{count_live_grants, share_fleet, SharedFleet};
use super::{check_run_id, ErrorLog, ScenarioError};
use crate::api::AssetId;
use crate::scenario::Target;
use crate::telemetry::SENT_US_SENSOR;
use crate::unit::BrokerAddr;
use storm::Storm;

pub use report::{revoke_storm_page, write_revoke_storm_report, RevokeStormReport};
pub use storm::{RemovalCall, RevokeMode};

pub const MAX_UNITS: usize = 1_000;
pub const MAX_GRANTEES: usize = 500;
/// "Up to a few thousand" grants: each is one removal and one history check.
pub const MAX_GRANTS: usize = 5_000;
pub const MAX_RATE_PER_UNIT: f64 = 100.0;
pub const MAX_CONCURRENCY: usize = 256;
pub const MAX_SETTLE: Duration = Duration::from_secs(600);
pub const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest the units stream; it caps each unit's points, so a storm that takes longer
/// than this reports it instead of streaming forever.
pub const MAX_STREAMING: Duration = Duration::from_secs(3600);
/// Bounds memory (one flag per point is kept until the end) over all units.
pub const MAX_TOTAL_POINTS: u64 = 50_000_000;
/// Gives every unit task time to be scheduled before the first tick.
const START_DELAY: Duration = Duration::from_millis(100);
/// How long the streams stay open after the units stopped, for points still on the way.
const STREAM_DRAIN: Duration = Duration::from_secs(1);

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
    /// API calls and connection attempts in flight at once during setup and checks.
    pub parallelism: usize,
    /// No progress bar (the run shows none; kept for the command line's symmetry).
    pub quiet: bool,
    /// Names the run's accounts, devices and assets; random when `None`.
    pub run_id: Option<String>,
    /// Seeds the removal order; random when `None`, and reported either way.
    pub seed: Option<u64>,
    /// The gateway's process id on this machine: its memory is then sampled each second.
    pub gateway_pid: Option<u32>,
}

impl RevokeStormConfig {
    /// Defaults: 10 units, 20 grantees (200 grants), 5 points/s each, 32 `DELETE`s in
    /// flight, 2 s settle, plain MQTT, quiet.
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
            grantees: 20,
            rate_per_unit: 5.0,
            concurrency: 32,
            mode: RevokeMode::Individual,
            settle: Duration::from_secs(2),
            delivery_timeout: Duration::from_secs(30),
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
        check_count("parallelism", self.parallelism, MAX_PARALLELISM)?;
        check_run_id(self.run_id.as_deref())
    }
}

fn lock(ledger: &Mutex<CutoffLedger>) -> MutexGuard<'_, CutoffLedger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no stream or unit could start); everything else is in the report.
pub async fn run_revoke_storm(
    config: &RevokeStormConfig,
) -> Result<RevokeStormReport, ScenarioError> {
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
    let streams = open_streams(&grantees.iter().collect::<Vec<_>>(), parallelism).await?;
    let (stop_streams, stop_streams_rx) = watch::channel(false);
    let watchers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(index, stream)| {
            let ledger = ledger.clone();
            tokio::spawn(watch_stream(
                grantees[index].account.id.clone(),
                stream,
                stop_streams_rx.clone(),
                errors.clone(),
                move |arrival| {
                    lock(&ledger).observe(
                        index,
                        &arrival.point.asset_id,
                        arrival.sent_us,
                        arrival.received_us,
                    )
                },
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
    let removed = Arc::new(AtomicU64::new(0));
    let (sampling_done, sampling_done_rx) = watch::channel(false);
    let sampler = tokio::spawn(sample_timeline(
        removed.clone(),
        config.gateway_pid,
        Some(config.target.http_base.clone()),
        plan.start,
        SAMPLE_INTERVAL,
        sampling_done_rx,
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

    // A cut-off of a delivery that never started proves nothing: wait for every pair.
    let dark = wait_until_zero(config.delivery_timeout, || {
        lock(&ledger).undelivered(&streaming_assets).0 as u64
    })
    .await;
    if dark > 0 {
        errors.push(format!(
            "{dark} granted pairs saw no point within {:?}, so their cut-off proves little",
            config.delivery_timeout
        ));
    }
    let grants_expected = (grantees.len() * assets.len()) as u64;
    let grants_live_at_start =
        count_live_grants(&owner_admin, &grantees, &assets, parallelism, &errors).await;
    if grants_live_at_start != grants_expected {
        errors.push(format!(
            "{grants_live_at_start} of {grants_expected} grants listed as active before the storm"
        ));
    }

    let storm = Storm {
        owner_admin: &owner_admin,
        grantees: &grantees,
        ledger: &ledger,
        removed: &removed,
        errors: &errors,
    };
    let outcome = storm
        .run(
            plan_removals(granted, seed, Duration::ZERO),
            config.mode,
            config.concurrency,
        )
        .await;

    tokio::time::sleep(config.settle).await;
    stop_units.send_replace(true);
    let mut acknowledged: Vec<Vec<bool>> = vec![Vec::new(); assets.len()];
    let mut points_sent = 0u64;
    for (task, (machine, _)) in unit_tasks.into_iter().zip(&units) {
        match task.await {
            Ok(UnitOutcome {
                sent,
                acknowledged: acked,
                ..
            }) => {
                if sent >= plan.points_per_unit {
                    errors.push(format!(
                        "unit {machine} reached its cap of {sent} points before the run ended"
                    ));
                }
                points_sent += sent;
                acknowledged[*machine] = acked;
            }
            Err(error) => errors.push(format!("a unit task failed: {error}")),
        }
    }
    tokio::time::sleep(STREAM_DRAIN.min(config.settle)).await;
    stop_streams.send_replace(true);
    sampling_done.send_replace(true);
    for watcher in watchers {
        if let Err(error) = watcher.await {
            errors.push(format!("a stream reader failed: {error}"));
        }
    }
    let timeline = match sampler.await {
        Ok(timeline) => timeline,
        Err(error) => {
            errors.push(format!("the timeline sampler failed: {error}"));
            Default::default()
        }
    };

    let grants_live_after =
        count_live_grants(&owner_admin, &grantees, &assets, parallelism, &errors).await;
    if grants_live_after > 0 {
        errors.push(format!(
            "{grants_live_after} grants still listed as active after the storm"
        ));
    }
    let mut history_refused = 0;
    let mut history_not_refused = 0;
    for grantee in &grantees {
        let tally = expect_history_refused(
            &grantee.account.id,
            &grantee.client,
            &assets,
            parallelism,
            &errors,
        )
        .await;
        history_refused += tally.refused;
        history_not_refused += tally.not_refused;
    }
    let targets = assets
        .iter()
        .zip(&acknowledged)
        .map(|(asset_id, acked)| VerifyTarget {
            asset_id: asset_id.clone(),
            acknowledged: acked.clone(),
        })
        .collect();
    let owner = verify_storage(
        &owner_admin,
        targets,
        parallelism,
        Instant::now() + config.delivery_timeout,
        &errors,
    )
    .await;
    if owner.missing > 0 || owner.duplicates > 0 {
        errors.push(format!(
            "the owner's history lacks {} acknowledged points and repeats {}",
            owner.missing, owner.duplicates
        ));
    }
    let units_connected = units.len();
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
    let points_acked = acknowledged
        .iter()
        .map(|acked| acked.iter().filter(|acked| **acked).count() as u64)
        .sum();
    let grants_removed = outcome
        .calls
        .iter()
        .filter(|call| call.succeeded)
        .map(|call| call.grants as u64)
        .sum();
    Ok(RevokeStormReport {
        run_id,
        account_id: fleet.account.id,
        seed,
        mode: config.mode,
        concurrency: config.concurrency,
        units: units_connected,
        grantees: grantees.len(),
        grants_expected,
        grants_live_at_start,
        grants_removed,
        grants_live_after,
        removal_latency: outcome.latency.percentiles(),
        calls: outcome.calls,
        storm_s: outcome.elapsed_s,
        removals_per_sec: if outcome.elapsed_s > 0.0 {
            grants_removed as f64 / outcome.elapsed_s
        } else {
            0.0
        },
        violations: tally.violations,
        violation_examples: tally.examples,
        points_sent,
        points_acked,
        points_delivered: tally.delivered,
        history_refused,
        history_not_refused,
        owner_missing: owner.missing,
        owner_duplicates: owner.duplicates,
        timeline,
        errors: ErrorLog::finish(errors),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RevokeStormConfig {
        RevokeStormConfig::new(
            "http://127.0.0.1:1",
            "127.0.0.1:1883".parse().expect("addr"),
            "token",
        )
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
        let refused = |config: RevokeStormConfig, word: &str| {
            let error = config.validate().expect_err("refused");
            assert!(error.to_string().contains(word), "{error}");
        };
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
        refused(
            RevokeStormConfig {
                parallelism: MAX_PARALLELISM + 1,
                ..config()
            },
            "parallelism",
        );
        refused(
            RevokeStormConfig {
                run_id: Some(String::new()),
                ..config()
            },
            "run id",
        );
    }

    #[tokio::test]
    async fn unreachable_gateway_is_an_error_not_a_report() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let config = RevokeStormConfig::new(
            format!("http://{address}"),
            "127.0.0.1:1".parse().expect("addr"),
            "token",
        );
        let error = run_revoke_storm(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
