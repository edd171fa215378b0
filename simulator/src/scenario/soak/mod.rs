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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fleet::{
    connect_units_with, create_managed_account, disconnect_all, new_run_id, provision_with,
};
use super::measure::{verify_storage, wait_for_count, VerifyTarget};
use super::publish::{drive_unit, PublishPlan, UnitJob, UnitOutcome};
use super::{check_run_id, progress_bar, ErrorLog, ScenarioError};
use crate::api::Capabilities;
use crate::scenario::Target;
use crate::stats::Percentiles;
use crate::unit::{BrokerAddr, KeyHolder, SimUnit, UnitOptions};
use admin::{churn, clean_up, AdminPlan, AdminTarget};
use window::{follow_stream, sample_windows, Meter, MAX_WINDOWS};

pub use admin::AdminKind;
pub use drift::{
    creep_check, latency_creep, least_squares, memory_check, memory_trend, Check, Creep,
    MemoryTrend, Outcome,
};
pub use page::soak_page;
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
    /// API calls and connection attempts in flight at once during setup and checking.
    pub parallelism: usize,
    /// How long to wait for acknowledgements, live delivery and history to catch up.
    pub settle_timeout: Duration,
    /// No progress bar.
    pub quiet: bool,
    /// Names the run's accounts, devices and assets; random when `None`.
    pub run_id: Option<String>,
    /// The gateway's process id when it runs on this machine: its resident memory is read
    /// from `/proc/<pid>/status` at every window. `None`: memory is not measured or judged.
    pub gateway_pid: Option<u32>,
}

impl SoakConfig {
    /// Defaults: 10 units at 1 point/s for 5 minutes, 10 s windows, 2 admin calls/s,
    /// 50 MiB/h memory growth and ×3 latency creep allowed, plain MQTT, quiet.
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
            duration: Duration::from_secs(300),
            window: Duration::from_secs(10),
            admin_rate: 2.0,
            max_memory_growth_mib_per_h: 50.0,
            max_latency_creep: 3.0,
            parallelism: 32,
            settle_timeout: Duration::from_secs(30),
            quiet: true,
            run_id: None,
            gateway_pid: None,
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
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return invalid(format!(
                "parallelism must be 1..={MAX_PARALLELISM}, got {}",
                self.parallelism
            ));
        }
        if self.settle_timeout.is_zero() || self.settle_timeout > MAX_SETTLE {
            return invalid(format!(
                "settle timeout must be more than 0 and at most {} s, got {:?}",
                MAX_SETTLE.as_secs(),
                self.settle_timeout
            ));
        }
        check_run_id(self.run_id.as_deref())
    }
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no unit connected); everything else is in the report.
pub async fn run_soak(config: &SoakConfig) -> Result<SoakReport, ScenarioError> {
    config.validate()?;
    let run_id = config.run_id.clone().unwrap_or_else(new_run_id);
    let platform_admin = config
        .target
        .platform_admin()
        .map_err(ScenarioError::api("gateway URL"))?;
    let keypads = Capabilities {
        keypad: true,
        ..Capabilities::default()
    };
    let fleet = provision_with(
        &platform_admin,
        &run_id,
        config.units,
        config.parallelism,
        keypads,
    )
    .await?;
    let grantee = create_managed_account(
        &platform_admin,
        &format!("sim-{run_id}-sub"),
        Some(&fleet.account.id),
        "sim-grantee-admin",
    )
    .await?
    .account;
    let errors = Arc::new(ErrorLog::default());
    let meter = Arc::new(Meter::default());

    let sse = fleet
        .client
        .stream("/v1/stream")
        .await
        .map_err(ScenarioError::api("open the account's live stream"))?;
    let (stop_sse, stop_sse_rx) = watch::channel(false);
    // The follower's own bound: the whole run and every wait after it, with room to spare.
    let follow_until =
        Instant::now() + config.duration + config.settle_timeout * 3 + Duration::from_secs(60);
    let sse_task = tokio::spawn(follow_stream(
        sse,
        meter.clone(),
        stop_sse_rx,
        follow_until,
        errors.clone(),
    ));

    let connected = connect_units_with(
        &fleet.machines,
        &config.target.mqtt,
        config.target.tls_server_name.as_deref(),
        config.parallelism,
        &errors,
        no_delay,
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
    let holders = start_holders(&units, config.parallelism, &errors).await;
    let targets = units
        .iter()
        .zip(&holders)
        .map(|((machine, _), holder)| AdminTarget {
            asset_id: fleet.machines[*machine].asset_id.clone(),
            device_id: fleet.machines[*machine].device.id.clone(),
            holds_keys: holder.is_some(),
        })
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
    let (windows_done, windows_done_rx) = watch::channel(false);
    let window_task = tokio::spawn(sample_windows(
        meter.clone(),
        config.gateway_pid,
        plan.start,
        config.window,
        MAX_WINDOWS,
        windows_done_rx,
    ));
    let admin_task = tokio::spawn(churn(
        AdminPlan {
            owner: fleet.client.clone(),
            grantee: grantee.id.clone(),
            targets,
            start: plan.start,
            end: plan.start + config.duration,
            interval: Duration::from_secs_f64(1.0 / config.admin_rate),
        },
        meter.clone(),
        errors.clone(),
    ));
    let unit_tasks: Vec<_> = units
        .iter()
        .enumerate()
        .map(|(position, (machine, unit))| {
            tokio::spawn(drive_unit(UnitJob {
                unit: unit.clone(),
                position,
                seed: *machine as u64,
                plan,
                // The soak samples latency from the live stream, not by polling history.
                sample_slot: Arc::new(Mutex::new(None)),
                progress: progress.clone(),
                errors: errors.clone(),
                stop: None,
                acked: Some(meter.acked.clone()),
                ack_latency: None,
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
    let leftovers = admin_task.await.unwrap_or_else(|error| {
        errors.push(format!("the admin loop failed: {error}"));
        admin::Leftovers::default()
    });
    let _ = windows_done.send(true);
    let series = window_task.await.unwrap_or_else(|error| {
        errors.push(format!("the window sampler failed: {error}"));
        window::WindowSeries::default()
    });
    progress.finish_and_clear();

    let points_sent: u64 = outcomes.iter().map(|outcome| outcome.sent).sum();
    let points_acked: u64 = outcomes
        .iter()
        .map(|outcome| outcome.acknowledged.iter().filter(|acked| **acked).count() as u64)
        .sum();
    let sse_deadline = Instant::now() + config.settle_timeout;
    if !wait_for_count(&meter.delivered, points_acked, sse_deadline).await {
        errors.push(format!(
            "SSE delivered {} of {points_acked} acknowledged points within {:?}",
            meter.delivered.load(Ordering::Relaxed),
            config.settle_timeout
        ));
    }
    let _ = stop_sse.send(true);
    if let Err(error) = sse_task.await {
        errors.push(format!("the SSE follower failed: {error}"));
    }
    let sse_received = meter.delivered.load(Ordering::Relaxed);

    clean_up(&fleet.client, &grantee.id, leftovers, &errors).await;
    for holder in holders.into_iter().flatten() {
        holder.stop().await;
    }
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
    let unit_count = units.len();
    disconnect_all(units, config.parallelism, &errors).await;

    let (publish_to_sse, admin_totals) = meter.totals();
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
    let errors = ErrorLog::finish(errors);
    let memory = memory_trend(
        &series.windows,
        config.gateway_pid,
        series.baseline_rss_kib,
        config.max_memory_growth_mib_per_h,
        series.memory_error,
    );
    let sse_creep = latency_creep(
        "publish→SSE",
        &p99s(&series.windows, |window| &window.publish_to_sse),
        config.max_latency_creep,
    );
    let admin_creep = latency_creep(
        "admin call",
        &p99s(&series.windows, |window| &window.admin),
        config.max_latency_creep,
    );
    let mut checks = report::delivery_checks(
        points_sent,
        points_acked,
        tally.missing,
        tally.duplicates,
        sse_received,
        errors.len(),
    );
    checks.push(memory_check(&memory));
    checks.push(creep_check(&sse_creep));
    checks.push(creep_check(&admin_creep));
    Ok(SoakReport {
        run_id,
        account_id: fleet.account.id,
        grantee_account_id: grantee.id,
        units: unit_count,
        rate_per_unit: config.rate_per_unit,
        admin_rate: config.admin_rate,
        duration: config.duration,
        window: config.window,
        points_sent,
        points_acked,
        points_stored: tally.stored_rows,
        missing: tally.missing,
        duplicates: tally.duplicates,
        sse_received,
        publish_to_sse,
        admin,
        windows: series.windows,
        windows_truncated: series.truncated,
        memory,
        sse_creep,
        admin_creep,
        checks,
        errors,
    })
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

    fn config() -> SoakConfig {
        SoakConfig::new(
            "http://127.0.0.1:1",
            "127.0.0.1:1883".parse().expect("addr"),
            "token",
        )
    }

    fn refused(config: SoakConfig, setting: &str) {
        let error = config.validate().expect_err("refused");
        assert!(error.to_string().contains(setting), "{error}");
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
        refused(
            SoakConfig {
                parallelism: 0,
                ..config()
            },
            "parallelism",
        );
        refused(
            SoakConfig {
                settle_timeout: MAX_SETTLE * 2,
                ..config()
            },
            "settle timeout",
        );
        refused(
            SoakConfig {
                run_id: Some("Has-Dash".into()),
                ..config()
            },
            "run id",
        );
    }
}
