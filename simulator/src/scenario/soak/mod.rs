//! The soak scenario: does the gateway hold steady for a long time under a realistic mixed
//! load — no memory growth, no latency creep, nothing lost? Units stream telemetry at a
//! moderate fixed rate for a bounded time while an admin tool churns the control plane at
//! a fixed rate (`admin.rs`: grants, keys, history reads) and one live stream follows the
//! account; the run is cut into windows (`window.rs`) and judged on them (`drift.rs`).
//!
//! Order of a run: provision the fleet (units with keypads, so keys can be made for them)
//! and a sub-account to grant to, open the account's live stream, connect the units and
//! give each a key holder (so a key change is acknowledged as real firmware would), then
//! publish, churn and cut windows until the duration is over. Afterwards: wait for live
//! delivery to catch up, take back leftover grants and keys, read every asset's history and
//! compare sequence numbers with what the broker acknowledged (the ingest check), and judge.

mod admin;
mod drift;
mod page;
mod report;
mod window;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::fleet::{
    connect_fleet_with, create_managed_account, disconnect_all, provision_with, Fleet,
};
use super::measure::{delivery_checks, verify_storage, wait_for_count, VerifyTarget};
use super::publish::{acked_total, join_units, spawn_units, Drive, PublishPlan, UnitOutcome};
use super::runner::{self, Run, Scenario};
use super::{progress_bar, ErrorLog, RunOptions, ScenarioError};
use crate::api::{AccountId, Capabilities};
use crate::scenario::Target;
use crate::stats::{Percentiles, SeqTally};
use crate::unit::{KeyHolder, SimUnit, UnitOptions};
use admin::{churn, clean_up, AdminPlan, AdminTarget};
use window::{follow_stream, sample_windows, Meter, MAX_WINDOWS};

pub use admin::AdminKind;
pub use drift::{
    creep_check, latency_creep, least_squares, memory_check, memory_trend, Check, Creep,
    MemoryTrend, Outcome,
};
pub use report::{AdminFigures, SoakReport};
pub use window::SoakWindow;

pub const MAX_UNITS: usize = 10_000;
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// A soak is a moderate load held for long; flooding is the ingest scenario's job.
pub const MAX_RATE_PER_UNIT: f64 = 100.0;
pub const MAX_ADMIN_RATE: f64 = 50.0;
/// The final check reads each asset's whole history; the API client follows at most
/// 1,000 pages of 1,000 points.
pub const MAX_POINTS_PER_UNIT: u64 = 1_000_000;
/// Bounds memory: one flag per point is kept until the final check.
pub const MAX_TOTAL_POINTS: u64 = 50_000_000;
pub const MAX_MEMORY_GROWTH_LIMIT: f64 = 100_000.0;
pub const MAX_CREEP_LIMIT: f64 = 1_000.0;
pub const MAX_SETTLE: Duration = Duration::from_secs(600);
const MAX_PARALLELISM: usize = 1024;
/// Gives every unit task time to be scheduled before the first tick.
const START_DELAY: Duration = Duration::from_millis(200);

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// The gateway, and the platform administrator's token the run sets itself up with.
    pub target: Target,
    pub units: usize,
    /// Points per second per unit.
    pub rate_per_unit: f64,
    /// How long the units publish and the admin loop churns.
    pub duration: Duration,
    /// The length of one window of figures.
    pub window: Duration,
    /// Admin calls per second (one after another).
    pub admin_rate: f64,
    /// The memory check fails when the second half's slope exceeds this, MiB per hour.
    pub max_memory_growth_mib_per_h: f64,
    /// The creep checks fail when the last windows' p99 exceeds this × the first windows'.
    pub max_latency_creep: f64,
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
    /// How long to wait for acknowledgements, live delivery and history to catch up.
    pub settle_timeout: Duration,
}

impl SoakConfig {
    /// Defaults: 10 units at 1 point/s for 5 minutes, 10 s windows, 2 admin calls/s,
    /// 50 MiB/h memory growth and ×3 latency creep allowed, plain MQTT, quiet; against
    /// `target`, which may use TLS.
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 10,
            rate_per_unit: 1.0,
            duration: Duration::from_secs(300),
            window: Duration::from_secs(10),
            admin_rate: 2.0,
            max_memory_growth_mib_per_h: 50.0,
            max_latency_creep: 3.0,
            run: RunOptions::default(),
            settle_timeout: Duration::from_secs(30),
        }
    }

    /// `rate × duration`, rounded: the exact number of points each unit sends.
    pub fn points_per_unit(&self) -> u64 {
        (self.rate_per_unit * self.duration.as_secs_f64()).round() as u64
    }

    /// Refuses settings that would run unbounded or judge nothing, with a message that
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
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&self.window) || self.window > self.duration {
            return invalid(format!(
                "window must be {} s..={} s and no longer than the duration, got {:?}",
                MIN_WINDOW.as_secs(),
                MAX_WINDOW.as_secs(),
                self.window
            ));
        }
        let windows = self.duration.as_secs_f64() / self.window.as_secs_f64();
        if windows > MAX_WINDOWS as f64 {
            return invalid(format!(
                "duration / window = {windows:.0} windows, more than the {MAX_WINDOWS} a run \
                 records; use a longer window"
            ));
        }
        for (name, value, max) in [
            ("rate", self.rate_per_unit, MAX_RATE_PER_UNIT),
            ("admin rate", self.admin_rate, MAX_ADMIN_RATE),
            (
                "max memory growth",
                self.max_memory_growth_mib_per_h,
                MAX_MEMORY_GROWTH_LIMIT,
            ),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= max) {
                return invalid(format!(
                    "{name} must be more than 0 and at most {max}, got {value}"
                ));
            }
        }
        if !(self.max_latency_creep.is_finite()
            && (1.0..=MAX_CREEP_LIMIT).contains(&self.max_latency_creep))
        {
            return invalid(format!(
                "max latency creep must be 1..={MAX_CREEP_LIMIT} (a factor), got {}",
                self.max_latency_creep
            ));
        }
        let per_unit = self.points_per_unit();
        if per_unit == 0 || per_unit > MAX_POINTS_PER_UNIT {
            return invalid(format!(
                "rate × duration must give 1..={MAX_POINTS_PER_UNIT} points per unit, got {per_unit}"
            ));
        }
        let total = per_unit.saturating_mul(self.units as u64);
        if total > MAX_TOTAL_POINTS {
            return invalid(format!(
                "units × rate × duration = {total} points, more than the {MAX_TOTAL_POINTS} one run may send"
            ));
        }
        if self.settle_timeout.is_zero() || self.settle_timeout > MAX_SETTLE {
            return invalid(format!(
                "settle timeout must be more than 0 and at most {} s, got {:?}",
                MAX_SETTLE.as_secs(),
                self.settle_timeout
            ));
        }
        self.run.validate(MAX_PARALLELISM)
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no unit connected); everything else is in the report.
pub async fn run_soak(config: &SoakConfig) -> Result<SoakReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

/// What setup made: the fleet and its grantee, the live stream follower, the units with
/// their key holders.
pub(crate) struct SoakSetup {
    fleet: Fleet,
    grantee: AccountId,
    meter: Arc<Meter>,
    stop_sse: watch::Sender<bool>,
    sse_task: Option<JoinHandle<()>>,
    units: Vec<(usize, Arc<SimUnit>)>,
    holders: Vec<Option<KeyHolder>>,
}

/// What the load did, and the live stream's count after settle.
pub(crate) struct SoakLoad {
    outcomes: Vec<UnitOutcome>,
    leftovers: admin::Leftovers,
    series: window::WindowSeries,
    sse_received: u64,
}

impl Scenario for SoakConfig {
    type Setup = SoakSetup;
    type Load = SoakLoad;
    type Report = SoakReport;

    /// The fleet (with keypads), a grantee sub-account, the account's live stream followed
    /// before any unit connects, the units and their key holders.
    async fn setup(&self, run: &Run) -> Result<SoakSetup, ScenarioError> {
        let platform_admin = self
            .target
            .platform_admin()
            .map_err(ScenarioError::api("gateway URL"))?;
        let keypads = Capabilities {
            keypad: true,
            ..Capabilities::default()
        };
        let parallelism = self.run.parallelism;
        let fleet =
            provision_with(&platform_admin, &run.id, self.units, parallelism, keypads).await?;
        let sub_account = format!("sim-{}-sub", run.id);
        let grantee = create_managed_account(
            &platform_admin,
            &sub_account,
            Some(&fleet.account.id),
            "sim-grantee-admin",
        )
        .await?
        .account;
        let meter = Arc::new(Meter::default());
        let (stop_sse, sse_task) = self.follow(&fleet, &meter, run).await?;
        let connected =
            connect_fleet_with(&fleet, &self.target, parallelism, &run.errors, no_delay);
        let units = match connected.await {
            Ok(units) => units,
            Err(error) => {
                let _ = stop_sse.send(true);
                return Err(error);
            }
        };
        let holders = start_holders(&units, parallelism, &run.errors).await;
        Ok(SoakSetup {
            fleet,
            grantee: grantee.id,
            meter,
            stop_sse,
            sse_task: Some(sse_task),
            units,
            holders,
        })
    }

    /// Steady telemetry from every unit while the admin loop churns and the windows are
    /// cut.
    async fn load(&self, run: &Run, setup: &mut SoakSetup) -> SoakLoad {
        let plan = PublishPlan {
            start: Instant::now() + START_DELAY,
            ..PublishPlan::new(
                self.points_per_unit(),
                self.rate_per_unit,
                setup.units.len(),
                self.settle_timeout,
            )
        };
        let total = plan.points_per_unit * setup.units.len() as u64;
        let progress = progress_bar(total, "acknowledged", self.run.quiet);
        let (windows_done, windows_done_rx) = watch::channel(false);
        let window_task = tokio::spawn(sample_windows(
            setup.meter.clone(),
            self.run.gateway_pid,
            plan.start,
            self.window,
            MAX_WINDOWS,
            windows_done_rx,
        ));
        let admin_task = tokio::spawn(churn(
            self.admin_plan(setup, plan.start),
            setup.meter.clone(),
            run.errors.clone(),
        ));
        // The soak samples latency from the live stream, not by polling history.
        let drive = Drive {
            progress: Some(progress.clone()),
            acked: Some(setup.meter.acked.clone()),
            ..Drive::default()
        };
        let tasks = spawn_units(&setup.units, plan, drive, &run.errors);
        let outcomes = join_units(tasks, &run.errors)
            .await
            .into_iter()
            .flatten()
            .collect();
        let leftovers = admin_task.await.unwrap_or_else(|error| {
            run.errors.push(format!("the admin loop failed: {error}"));
            admin::Leftovers::default()
        });
        let _ = windows_done.send(true);
        let series = window_task.await.unwrap_or_else(|error| {
            run.errors
                .push(format!("the window sampler failed: {error}"));
            window::WindowSeries::default()
        });
        progress.finish_and_clear();
        SoakLoad {
            outcomes,
            leftovers,
            series,
            sse_received: 0,
        }
    }

    /// Until the live stream delivered every acknowledged point (or the settle timeout).
    async fn settle(&self, run: &Run, setup: &mut SoakSetup, load: &mut SoakLoad) {
        let points_acked = acked_total(&load.outcomes);
        let deadline = Instant::now() + self.settle_timeout;
        let delivered = &setup.meter.delivered;
        if !wait_for_count(delivered, points_acked, deadline).await {
            run.errors.push(format!(
                "SSE delivered {} of {points_acked} acknowledged points within {:?}",
                delivered.load(Ordering::Relaxed),
                self.settle_timeout
            ));
        }
        let _ = setup.stop_sse.send(true);
        if let Some(Err(error)) = match setup.sse_task.take() {
            Some(task) => Some(task.await),
            None => None,
        } {
            run.errors.push(format!("the SSE follower failed: {error}"));
        }
        load.sse_received = delivered.load(Ordering::Relaxed);
    }

    /// Cleans up what the admin loop left, reads every asset's history back, and judges
    /// delivery, memory growth and latency creep.
    async fn check(&self, run: Run, setup: SoakSetup, load: SoakLoad) -> SoakReport {
        clean_up(
            &setup.fleet.client,
            &setup.grantee,
            load.leftovers,
            &run.errors,
        )
        .await;
        for holder in setup.holders.into_iter().flatten() {
            holder.stop().await;
        }
        let points_sent: u64 = load.outcomes.iter().map(|outcome| outcome.sent).sum();
        let points_acked = acked_total(&load.outcomes);
        let machines = &setup.fleet.machines;
        let verify_targets = load
            .outcomes
            .into_iter()
            .map(|outcome| VerifyTarget {
                asset_id: machines[setup.units[outcome.position].0].asset_id.clone(),
                acknowledged: outcome.acknowledged,
            })
            .collect();
        let deadline = Instant::now() + self.settle_timeout;
        let tally = verify_storage(
            &setup.fleet.client,
            verify_targets,
            self.run.parallelism,
            deadline,
            &run.errors,
        )
        .await;
        let unit_count = setup.units.len();
        disconnect_all(setup.units, self.run.parallelism, &run.errors).await;
        let run_id = run.id.clone();
        let errors = run.finish_errors();
        let judged = Judged {
            points_sent,
            points_acked,
            tally,
            sse_received: load.sse_received,
            errors: errors.len(),
        };
        let checks = self.judge(&load.series, &judged);
        let (publish_to_sse, admin_totals) = setup.meter.totals();
        let admin = AdminKind::ALL
            .iter()
            .zip(admin_totals)
            .map(|(kind, totals)| AdminFigures {
                kind: *kind,
                calls: totals.calls,
                failures: totals.failures,
                latency: totals.latency.percentiles(),
            })
            .collect();
        SoakReport {
            run_id,
            account_id: setup.fleet.account.id,
            grantee_account_id: setup.grantee,
            units: unit_count,
            rate_per_unit: self.rate_per_unit,
            admin_rate: self.admin_rate,
            duration: self.duration,
            window: self.window,
            points_sent,
            points_acked,
            points_stored: judged.tally.stored_rows,
            missing: judged.tally.missing,
            duplicates: judged.tally.duplicates,
            sse_received: load.sse_received,
            publish_to_sse,
            admin,
            windows_truncated: load.series.truncated,
            memory: checks.memory,
            sse_creep: checks.sse_creep,
            admin_creep: checks.admin_creep,
            checks: checks.checks,
            windows: load.series.windows,
            errors,
        }
    }
}

/// The figures the soak's verdict needs besides its windows.
struct Judged {
    points_sent: u64,
    points_acked: u64,
    tally: SeqTally,
    sse_received: u64,
    errors: usize,
}

/// The soak's verdict: the trends it judged and the checks they made.
struct Verdict {
    memory: MemoryTrend,
    sse_creep: Creep,
    admin_creep: Creep,
    checks: Vec<Check>,
}

impl SoakConfig {
    /// Follows the account's live stream on a task of its own, bounded by the whole run and
    /// every wait after it, with room to spare.
    async fn follow(
        &self,
        fleet: &Fleet,
        meter: &Arc<Meter>,
        run: &Run,
    ) -> Result<(watch::Sender<bool>, JoinHandle<()>), ScenarioError> {
        let sse = fleet
            .client
            .stream("/v1/stream")
            .await
            .map_err(ScenarioError::api("open the account's live stream"))?;
        let (stop_sse, stop_sse_rx) = watch::channel(false);
        let follow_until =
            Instant::now() + self.duration + self.settle_timeout * 3 + Duration::from_secs(60);
        let task = tokio::spawn(follow_stream(
            sse,
            meter.clone(),
            stop_sse_rx,
            follow_until,
            run.errors.clone(),
        ));
        Ok((stop_sse, task))
    }

    /// The admin loop's plan: grants to the grantee and back, keys on the units that hold
    /// their key set, history reads, from the load's start for its duration.
    fn admin_plan(&self, setup: &SoakSetup, start: Instant) -> AdminPlan {
        let machines = &setup.fleet.machines;
        let targets = setup
            .units
            .iter()
            .zip(&setup.holders)
            .map(|((machine, _), holder)| AdminTarget {
                asset_id: machines[*machine].asset_id.clone(),
                device_id: machines[*machine].device.id.clone(),
                holds_keys: holder.is_some(),
            })
            .collect();
        AdminPlan {
            owner: setup.fleet.client.clone(),
            grantee: setup.grantee.clone(),
            targets,
            start,
            end: start + self.duration,
            interval: Duration::from_secs_f64(1.0 / self.admin_rate),
        }
    }

    /// Delivery, memory growth over the second half, and latency creep of the live stream
    /// and the admin calls.
    fn judge(&self, series: &window::WindowSeries, judged: &Judged) -> Verdict {
        let memory = memory_trend(
            &series.windows,
            self.run.gateway_pid,
            series.baseline_rss_kib,
            self.max_memory_growth_mib_per_h,
            series.memory_error.clone(),
        );
        let p99s_of = |pick: fn(&SoakWindow) -> &Percentiles| p99s(&series.windows, pick);
        let sse_creep = latency_creep(
            "publish→SSE",
            &p99s_of(|w| &w.publish_to_sse),
            self.max_latency_creep,
        );
        let admin_creep =
            latency_creep("admin call", &p99s_of(|w| &w.admin), self.max_latency_creep);
        let mut checks = delivery_checks(
            judged.points_sent,
            judged.points_acked,
            judged.tally.missing,
            judged.tally.duplicates,
            judged.sse_received,
            judged.errors,
        );
        checks.push(memory_check(&memory));
        checks.push(creep_check(&sse_creep));
        checks.push(creep_check(&admin_creep));
        Verdict {
            memory,
            sse_creep,
            admin_creep,
            checks,
        }
    }
}

/// Each window's p99 of the latency `pick` chooses; `None` for a window without samples.
fn p99s(windows: &[SoakWindow], pick: impl Fn(&SoakWindow) -> &Percentiles) -> Vec<Option<u64>> {
    windows
        .iter()
        .map(|window| {
            let percentiles = pick(window);
            (percentiles.samples > 0).then_some(percentiles.p99_us)
        })
        .collect()
}

/// A key holder on every connected unit, in the same order; `None` where it could not
/// subscribe (that unit's keys are then not held to `delivered`).
async fn start_holders(
    units: &[(usize, Arc<SimUnit>)],
    parallelism: usize,
    errors: &ErrorLog,
) -> Vec<Option<KeyHolder>> {
    stream::iter(units)
        .map(|(_, unit)| async move {
            let device = unit.client_id().to_owned();
            match KeyHolder::start(unit.clone()).await {
                Ok(holder) => Some(holder),
                Err(error) => {
                    errors.push(format!("unit {device}: subscribing to its keys: {error}"));
                    None
                }
            }
        })
        .buffered(parallelism.max(1))
        .collect()
        .await
}

/// The units send each packet at once: with Nagle on, a unit's key-set acknowledgement
/// could wait behind its own telemetry, and the figures are about the gateway.
fn no_delay(options: UnitOptions) -> UnitOptions {
    options.with_tcp_nodelay(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::options::{assert_refused, assert_run_options_checked};

    fn config() -> SoakConfig {
        SoakConfig::for_target(Target::unreachable())
    }

    fn refused(config: SoakConfig, setting: &str) {
        assert_refused(config.validate(), setting);
    }

    #[test]
    fn defaults_are_valid() {
        assert!(config().validate().is_ok());
        assert_eq!(config().points_per_unit(), 300);
        let day = SoakConfig {
            duration: MAX_DURATION,
            ..config()
        };
        assert!(day.validate().is_ok(), "a day of 10 s windows fits");
    }

    #[test]
    fn every_bound_is_enforced_and_named() {
        refused(
            SoakConfig {
                units: 0,
                ..config()
            },
            "units",
        );
        refused(
            SoakConfig {
                units: MAX_UNITS + 1,
                ..config()
            },
            "units",
        );
        refused(
            SoakConfig {
                duration: MAX_DURATION + Duration::from_secs(1),
                ..config()
            },
            "duration",
        );
        refused(
            SoakConfig {
                duration: Duration::ZERO,
                ..config()
            },
            "duration",
        );
        refused(
            SoakConfig {
                window: Duration::from_millis(500),
                ..config()
            },
            "window",
        );
        refused(
            SoakConfig {
                window: Duration::from_secs(301),
                ..config()
            },
            "window",
        );
        refused(
            SoakConfig {
                duration: MAX_DURATION,
                window: Duration::from_secs(1),
                ..config()
            },
            "windows",
        );
        refused(
            SoakConfig {
                rate_per_unit: 0.0,
                ..config()
            },
            "rate",
        );
        refused(
            SoakConfig {
                rate_per_unit: f64::NAN,
                ..config()
            },
            "rate",
        );
        refused(
            SoakConfig {
                rate_per_unit: MAX_RATE_PER_UNIT + 1.0,
                ..config()
            },
            "rate",
        );
        refused(
            SoakConfig {
                admin_rate: MAX_ADMIN_RATE * 2.0,
                ..config()
            },
            "admin rate",
        );
        refused(
            SoakConfig {
                max_memory_growth_mib_per_h: -1.0,
                ..config()
            },
            "max memory growth",
        );
        refused(
            SoakConfig {
                max_latency_creep: 0.5,
                ..config()
            },
            "max latency creep",
        );
        refused(
            SoakConfig {
                max_latency_creep: f64::INFINITY,
                ..config()
            },
            "max latency creep",
        );
        refused(
            SoakConfig {
                rate_per_unit: 0.001,
                duration: Duration::from_secs(10),
                window: Duration::from_secs(1),
                ..config()
            },
            "points per unit",
        );
        refused(
            SoakConfig {
                rate_per_unit: 50.0,
                duration: MAX_DURATION,
                ..config()
            },
            "points per unit",
        );
        refused(
            SoakConfig {
                units: MAX_UNITS,
                rate_per_unit: 10.0,
                duration: Duration::from_secs(3600),
                ..config()
            },
            "one run may send",
        );
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            SoakConfig { run, ..config() }.validate()
        });
        refused(
            SoakConfig {
                settle_timeout: MAX_SETTLE * 2,
                ..config()
            },
            "settle timeout",
        );
    }
}
