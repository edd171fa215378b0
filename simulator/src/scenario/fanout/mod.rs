//! The fan-out scenario: an owner's units stream telemetry while every asset is shared
//! with many accounts, each holding a live stream, and the run checks from outside what a
//! fleet operator relies on: every acknowledged point reaches every grantee exactly once,
//! and never an account that holds no grant. It measures the cost of sharing: per-delivery
//! latency, how far apart the first and last grantee get the same point, deliveries per
//! second, and the gateway's memory while it fans out.
//!
//! Order of a run: provision the owner's fleet, create the grantee sub-accounts and one
//! sub-account granted nothing (the outsider), grant every asset to every grantee (one
//! bulk call each, reusing the visibility scenario's setup), check the grantees' listings,
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

use super::fleet::{connect_fleet, disconnect_all, new_run_id};
use super::measure::{verify_storage, VerifyTarget};
use super::publish::{drive_unit, PublishPlan, UnitJob, UnitOutcome};
use super::sharing_load::{
    check_count, check_duration, check_rate, create_outsider, expect_history_refused, open_streams,
    wait_until_zero, watch_stream, MAX_PARALLELISM,
};
use super::timeline::{sample_timeline, SAMPLE_INTERVAL};
use super::visibility::setup::{share_fleet, Grantee, SharedFleet};
use super::{check_run_id, ErrorLog, ScenarioError};
use crate::scenario::Target;
use crate::unit::BrokerAddr;
use ledger::FanoutLedger;

pub use report::{fanout_page, write_fanout_report, FanoutReport};

pub const MAX_UNITS: usize = 1_000;
pub const MAX_GRANTEES: usize = 500;
/// Bounds the grants (and the setup's bulk calls) one run creates.
pub const MAX_PAIRS: usize = 10_000;
pub const MAX_RATE_PER_UNIT: f64 = 100.0;
pub const MAX_DURATION: Duration = Duration::from_secs(600);
pub const MAX_SETTLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Bounds the ledger: one byte per (grantee, point).
pub const MAX_DELIVERIES: u64 = 50_000_000;
/// Gives every unit task time to be scheduled before the first tick.
const START_DELAY: Duration = Duration::from_millis(100);
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
    /// API calls and connection attempts in flight at once during setup and checks.
    pub parallelism: usize,
    /// No progress bar (the run shows none; kept for the command line's symmetry).
    pub quiet: bool,
    /// Names the run's accounts, devices and assets; random when `None`.
    pub run_id: Option<String>,
    /// The gateway's process id on this machine: its memory is then sampled each second.
    pub gateway_pid: Option<u32>,
}

impl FanoutConfig {
    /// Defaults: 5 units, 20 grantees, 2 points/s each for 10 s, history of 3 grantees,
    /// plain MQTT, quiet.
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
            grantees: 20,
            rate_per_unit: 2.0,
            duration: Duration::from_secs(10),
            history_sample: 3,
            settle_timeout: Duration::from_secs(30),
            parallelism: 32,
            quiet: true,
            run_id: None,
            gateway_pid: None,
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
        check_count("parallelism", self.parallelism, MAX_PARALLELISM)?;
        check_run_id(self.run_id.as_deref())
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
    config.validate()?;
    let run_id = config.run_id.clone().unwrap_or_else(new_run_id);
    let parallelism = config.parallelism;
    let points_per_unit = config.points_per_unit();
    let errors = Arc::new(ErrorLog::default());
    let SharedFleet {
        platform_admin,
        fleet,
        grantees,
        assets,
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
    let outsider = create_outsider(&platform_admin, &fleet.account.id, &run_id).await?;

    let ledger = Arc::new(Mutex::new(FanoutLedger::new(
        grantees
            .iter()
            .map(|grantee| grantee.account.id.clone())
            .collect(),
        &assets,
        points_per_unit,
    )));
    let deliveries = Arc::new(AtomicU64::new(0));
    // Streams open before any unit publishes, so every point has all its subscribers; the
    // outsider's is last.
    let mut accounts: Vec<&Grantee> = grantees.iter().collect();
    accounts.push(&outsider);
    let streams = open_streams(&accounts, parallelism).await?;
    let (stop_streams, stop_streams_rx) = watch::channel(false);
    let watchers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(index, stream)| {
            let ledger = ledger.clone();
            let deliveries = deliveries.clone();
            let account_id = accounts[index].account.id.clone();
            let is_outsider = index == grantees.len();
            let outsider_id = account_id.clone();
            tokio::spawn(watch_stream(
                account_id,
                stream,
                stop_streams_rx.clone(),
                errors.clone(),
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

    let units = match connect_fleet(&fleet, &config.target, parallelism, &errors).await {
        Ok(units) => units,
        Err(error) => {
            stop_streams.send_replace(true);
            return Err(error);
        }
    };

    let plan = PublishPlan {
        points_per_unit,
        period: Duration::from_secs_f64(1.0 / config.rate_per_unit),
        start: Instant::now() + START_DELAY,
        units: units.len(),
        ack_timeout: config.settle_timeout,
    };
    let (sampling_done, sampling_done_rx) = watch::channel(false);
    let sampler = tokio::spawn(sample_timeline(
        deliveries.clone(),
        config.gateway_pid,
        Some(config.target.http_base.clone()),
        plan.start,
        SAMPLE_INTERVAL,
        sampling_done_rx,
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
                sample_slot: Arc::new(Mutex::new(None)),
                progress: indicatif::ProgressBar::hidden(),
                errors: errors.clone(),
                stop: None,
                acked: None,
                ack_latency: None,
            }))
        })
        .collect();
    // Outcomes by machine index, so acknowledgements line up with the ledger's assets.
    let mut acknowledged: Vec<Vec<bool>> = vec![Vec::new(); assets.len()];
    let mut points_sent = 0u64;
    for (task, (machine, _)) in unit_tasks.into_iter().zip(&units) {
        match task.await {
            Ok(UnitOutcome {
                sent,
                acknowledged: acked,
                ..
            }) => {
                points_sent += sent;
                acknowledged[*machine] = acked;
            }
            Err(error) => errors.push(format!("a unit task failed: {error}")),
        }
    }
    let points_acked: u64 = acknowledged
        .iter()
        .map(|acked| acked.iter().filter(|acked| **acked).count() as u64)
        .sum();
    let deliveries_expected = points_acked * grantees.len() as u64;
    let short = wait_until_zero(config.settle_timeout, || {
        deliveries_expected.saturating_sub(lock(&ledger).delivered())
    })
    .await;
    let elapsed_s = plan.start.elapsed().as_secs_f64();
    if short > 0 {
        errors.push(format!(
            "{short} of {deliveries_expected} expected deliveries had not arrived \
             {:?} after the last acknowledgement",
            config.settle_timeout
        ));
    }
    tokio::time::sleep(STREAM_DRAIN).await;
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

    // History: the first grantees of the sample read every asset back; the outsider gets
    // 404 for each.
    let history_deadline = Instant::now() + config.settle_timeout;
    let mut history_missing = 0;
    let mut history_duplicates = 0;
    for grantee in grantees.iter().take(config.history_sample) {
        let targets = assets
            .iter()
            .zip(&acknowledged)
            .map(|(asset_id, acked)| VerifyTarget {
                asset_id: asset_id.clone(),
                acknowledged: acked.clone(),
            })
            .collect();
        let tally = verify_storage(
            &grantee.client,
            targets,
            parallelism,
            history_deadline,
            &errors,
        )
        .await;
        if tally.missing > 0 || tally.duplicates > 0 {
            errors.push(format!(
                "grantee {}: history lacks {} acknowledged points and repeats {}",
                grantee.account.id, tally.missing, tally.duplicates
            ));
        }
        history_missing += tally.missing;
        history_duplicates += tally.duplicates;
    }
    let refusals = expect_history_refused(
        &outsider.account.id,
        &outsider.client,
        &assets,
        parallelism,
        &errors,
    )
    .await;
    let units_connected = units.len();
    disconnect_all(units, parallelism, &errors).await;

    let tally = std::mem::replace(&mut *lock(&ledger), FanoutLedger::new(Vec::new(), &[], 0))
        .finish(&acknowledged);
    for example in &tally.examples {
        errors.push(example.clone());
    }
    if tally.duplicates > 0 {
        errors.push(format!(
            "{} deliveries repeated a point a grantee had already received",
            tally.duplicates
        ));
    }
    if points_sent == 0 {
        errors.push("no unit sent a point".to_owned());
    }
    Ok(FanoutReport {
        run_id,
        account_id: fleet.account.id,
        outsider_id: outsider.account.id,
        units: units_connected,
        grantees: grantees.len(),
        points_sent,
        points_acked,
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
        history_grantees: config.history_sample,
        history_missing,
        history_duplicates,
        outsider_refused: refusals.refused,
        outsider_not_refused: refusals.not_refused,
        timeline,
        errors: ErrorLog::finish(errors),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FanoutConfig {
        FanoutConfig::new(
            "http://127.0.0.1:1",
            "127.0.0.1:1883".parse().expect("addr"),
            "token",
        )
    }

    #[test]
    fn defaults_are_valid() {
        assert!(config().validate().is_ok());
        assert_eq!(config().points_per_unit(), 20);
    }

    #[test]
    fn bounds_are_enforced_and_named() {
        let refused = |config: FanoutConfig, word: &str| {
            let error = config.validate().expect_err("refused");
            assert!(error.to_string().contains(word), "{error}");
        };
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
        refused(
            FanoutConfig {
                parallelism: 0,
                ..config()
            },
            "parallelism",
        );
        refused(
            FanoutConfig {
                run_id: Some("Bad!".into()),
                ..config()
            },
            "run id",
        );
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let config = FanoutConfig::new(
            format!("http://{address}"),
            "127.0.0.1:1".parse().expect("addr"),
            "token",
        );
        let error = run_fanout(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
