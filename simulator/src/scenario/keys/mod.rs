//! The key scenario: an owner creates, edits and deletes access keys while its units hold
//! their key sets, and the run checks from outside that each change reached the units as
//! the answer said (DESIGN.md rule 6: "a change reaches the unit's retained key set before
//! the HTTP answer returns, or the answer says which units are pending"), that units decide
//! access exactly as the keys the API shows imply, and that every attempt they report is
//! stored and streamed to the owner. It also measures key propagation: from the request
//! start and from the answer to each unit holding the change.
//!
//! Order of a run: provision the fleet with keypad, DualID and Bluetooth capabilities
//! (shared with the other scenarios), create an operator, connect the units with a
//! `KeyHolder` each, switch one unit off, create the planned keys (`plan.rs`) one at a time
//! (the unit that is off must be listed pending, then reconnect and get the retained set),
//! edit one key, bulk-edit two (dry run first), delete one, wait for the short-lived key to
//! drop off, compare every unit's held set and status with the API, try access with valid,
//! future, expired, deleted and unknown credentials (`access.rs`), find the events again,
//! and bulk-delete the rest (dry run first). How each change is measured is in
//! `propagation.rs`, how it is judged in `verdict.rs`.
//!
//! From the first change to the last, `timeline.rs` samples the unit changes per second:
//! each time the run sees a unit take a key set showing a change it waits for (a created,
//! edited or deleted key, the retained set after reconnecting, the short-lived key gone),
//! counted when the run sees it, which is right after the answer for units that took it
//! before. Given the gateway's pid it also samples its memory; `page.rs` draws the report.

mod access;
mod plan;
mod propagation;
mod report;
mod verdict;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::time::Instant;

use super::fleet::{connect_units_with, provision_with, SimMachine};
use super::runner::{self, Run, Scenario};
use super::timeline::{Sampler, Timeline};
use super::{ErrorLog, RunOptions, ScenarioError};
use crate::api::{
    AccessType, ApiClient, AssetId, Capabilities, KeyEdit, KeyId, KeyView, NewOperator, Operator,
};
use crate::scenario::Target;
use crate::stats::LatencyRecorder;
use crate::telemetry::{now_ms, rfc3339_from_ms};
use crate::unit::{HolderStats, KeyHolder, SimUnit, UnitOptions};
use plan::{plan_keys, Role};

pub use report::{AccessTally, ChangeRecord, KeysReport, ReconnectRecord};

pub const MAX_UNITS: usize = 10_000;
pub const MAX_PROPAGATION_TIMEOUT: Duration = Duration::from_secs(600);
pub const MAX_EVENT_TIMEOUT: Duration = Duration::from_secs(600);
/// The short-lived key must outlast its own creation, and the run waits for it to end.
pub const MIN_SHORT_LIVED: Duration = Duration::from_secs(2);
pub const MAX_SHORT_LIVED: Duration = Duration::from_secs(300);
const MAX_PARALLELISM: usize = 1024;
const HOUR_MS: u64 = 3_600_000;

/// What to run and against which gateway.
#[derive(Clone, Debug)]
pub struct KeysConfig {
    /// The gateway, and the platform administrator's token the run sets itself up with.
    pub target: Target,
    pub units: usize,
    /// Parallelism, progress, run id and the gateway's pid, as every scenario takes them.
    pub run: RunOptions,
    /// How long a change may take to reach every online unit.
    pub propagation_timeout: Duration,
    /// How long the short-lived key lasts.
    pub short_lived: Duration,
    /// How long reported attempts may take to show up in history and on the live stream.
    pub event_timeout: Duration,
    /// Keep the last unit off while the first keys are created (needs 2 units or more).
    pub offline_unit: bool,
}

impl KeysConfig {
    /// Defaults: 5 units, one kept offline at first, 30 s timeouts, a 5 s short-lived key,
    /// plain MQTT, quiet; against
    /// `target`, which may use TLS.
    pub fn for_target(target: Target) -> Self {
        Self {
            target,
            units: 5,
            run: RunOptions::default(),
            propagation_timeout: Duration::from_secs(30),
            short_lived: Duration::from_secs(5),
            event_timeout: Duration::from_secs(30),
            offline_unit: true,
        }
    }

    /// Refuses settings that would run unbounded or check nothing, naming the setting.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let invalid = |message: String| Err(ScenarioError::InvalidConfig(message));
        if !(1..=MAX_UNITS).contains(&self.units) {
            return invalid(format!("units must be 1..={MAX_UNITS}, got {}", self.units));
        }
        for (name, value, max) in [
            (
                "propagation timeout",
                self.propagation_timeout,
                MAX_PROPAGATION_TIMEOUT,
            ),
            ("event timeout", self.event_timeout, MAX_EVENT_TIMEOUT),
        ] {
            if value.is_zero() || value > max {
                return invalid(format!(
                    "{name} must be more than 0 and at most {max:?}, got {value:?}"
                ));
            }
        }
        if !(MIN_SHORT_LIVED..=MAX_SHORT_LIVED).contains(&self.short_lived) {
            return invalid(format!(
                "short-lived key duration must be {MIN_SHORT_LIVED:?}..={MAX_SHORT_LIVED:?}, \
                 got {:?}",
                self.short_lived
            ));
        }
        self.run.validate(MAX_PARALLELISM)
    }
}

/// A run in progress: the fleet, its units' key holders and everything measured so far.
/// The change-making half lives in `propagation.rs`, the checking half in `access.rs`.
pub(crate) struct KeyRun {
    config: KeysConfig,
    run_id: String,
    /// The owner account's admin.
    admin: ApiClient,
    machines: Vec<SimMachine>,
    assets: Vec<AssetId>,
    /// By machine index; `None` while a unit is off (or could not connect).
    holders: Vec<Option<KeyHolder>>,
    /// The keys created so far, current as of the last change, with why they exist.
    keys: Vec<(Role, KeyView)>,
    deleted: Vec<(Role, KeyView)>,
    /// When each key's create request started (µs since the epoch).
    created_us: HashMap<KeyId, u64>,
    /// Contract violations.
    checks: ErrorLog,
    /// Problems that kept something from being checked: the run's own error log.
    errors: Arc<ErrorLog>,
    report: KeysReport,
    from_request: LatencyRecorder,
    after_answer: LatencyRecorder,
    expiry_lag: LatencyRecorder,
    /// The unit kept off, and whether every key created meanwhile listed it pending.
    offline: Option<(usize, bool)>,
    /// Key-set changes the run saw units take; the timeline samples it.
    unit_changes: Arc<AtomicU64>,
}

/// Runs the scenario. `Err` only when the run could not take place at all (bad settings,
/// setup refused, no unit connected); everything else is in the report.
pub async fn run_keys(config: &KeysConfig) -> Result<KeysReport, ScenarioError> {
    runner::run(config, &config.run, config.validate()).await
}

/// The timeline of unit key-set changes, sampled from the load's start until check.
pub(crate) struct KeysLoad {
    sampler: Option<Sampler>,
}

impl Scenario for KeysConfig {
    type Setup = KeyRun;
    type Load = KeysLoad;
    type Report = KeysReport;

    /// The fleet (every reader kind), its units connected with their key holders.
    async fn setup(&self, run: &Run) -> Result<KeyRun, ScenarioError> {
        let platform_admin = self
            .target
            .platform_admin()
            .map_err(ScenarioError::api("gateway URL"))?;
        let every_reader = Capabilities {
            bluetooth_relay: true,
            keypad: true,
            dualid: true,
        };
        let parallelism = self.run.parallelism;
        let fleet = provision_with(
            &platform_admin,
            &run.id,
            self.units,
            parallelism,
            every_reader,
        )
        .await?;
        let connected = connect_units_with(
            &fleet.machines,
            &self.target.mqtt,
            self.target.tls_server_name.as_deref(),
            parallelism,
            &run.errors,
            no_delay,
        )
        .await;
        let holders =
            start_holders(connected, fleet.machines.len(), parallelism, &run.errors).await;
        if holders.iter().all(Option::is_none) {
            let first = run.errors.first();
            return Err(ScenarioError::NoUnits(
                first.unwrap_or_else(|| "no unit to connect".to_owned()),
            ));
        }
        let units = holders.iter().flatten().count();
        Ok(KeyRun {
            config: self.clone(),
            assets: fleet.machines.iter().map(|m| m.asset_id.clone()).collect(),
            machines: fleet.machines,
            admin: fleet.client,
            holders,
            keys: Vec::new(),
            deleted: Vec::new(),
            created_us: HashMap::new(),
            checks: ErrorLog::default(),
            errors: run.errors.clone(),
            report: KeysReport {
                run_id: run.id.clone(),
                account_id: Some(fleet.account.id),
                units,
                ..KeysReport::default()
            },
            run_id: run.id.clone(),
            from_request: LatencyRecorder::new(),
            after_answer: LatencyRecorder::new(),
            expiry_lag: LatencyRecorder::new(),
            offline: None,
            unit_changes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Creates, edits and deletes keys, each change followed to the units.
    async fn load(&self, _run: &Run, keys: &mut KeyRun) -> KeysLoad {
        let sampler = Sampler::start(
            keys.unit_changes.clone(),
            self.run.gateway_pid,
            Some(self.target.http_base.clone()),
            Instant::now(),
        );
        keys.change_keys().await;
        KeysLoad {
            sampler: Some(sampler),
        }
    }

    /// Until the short-lived key ended and the units dropped it.
    async fn settle(&self, _run: &Run, keys: &mut KeyRun, _load: &mut KeysLoad) {
        keys.wait_for_expiry().await;
    }

    /// The listings, held sets, statuses and access decisions against the API, then the
    /// rest of the keys deleted and the units switched off.
    async fn check(&self, run: Run, mut keys: KeyRun, mut load: KeysLoad) -> KeysReport {
        keys.check_everything().await;
        let timeline = match load.sampler.take() {
            Some(sampler) => sampler.finish(&run.errors).await,
            None => Timeline::default(),
        };
        let mut report = keys.finish().await;
        report.timeline = timeline;
        report.errors = run.finish_errors();
        report
    }
}

impl KeyRun {
    /// Every change of the load, in order; each step records its own failures and the
    /// run goes on with what it can still check.
    async fn change_keys(&mut self) {
        let operator = self.create_operator().await;
        if self.config.offline_unit && self.machines.len() >= 2 {
            self.switch_off(self.machines.len() - 1).await;
        }
        let plan = plan_keys(
            &self.run_id,
            self.machines.len(),
            now_ms(),
            self.config.short_lived,
        );
        for planned in &plan {
            self.create(planned, operator.as_ref().map(|op| &op.id))
                .await;
            if planned.role == Role::FleetWide {
                self.reconnect_offline().await;
            }
        }
        self.report.keys_created = self.keys.len();
        self.edit_personal().await;
        self.bulk_edit_long_keys().await;
        if let Some(tag) = self.key(Role::Tag).cloned() {
            self.delete(&tag).await;
        }
    }

    /// Every check after the load, in order, and the rest of the keys bulk-deleted.
    async fn check_everything(&mut self) {
        let listings = self.listings().await;
        self.check_listings(&listings);
        self.check_held_sets(&listings);
        self.check_statuses().await;
        self.try_access_everywhere(&listings).await;
        self.bulk_delete_the_rest().await;
    }

    fn key(&self, role: Role) -> Option<&KeyView> {
        self.keys
            .iter()
            .find(|(key_role, _)| *key_role == role)
            .map(|(_, key)| key)
    }

    /// Machine indices of a key's assets (the run's own assets only).
    fn machines_of(&self, key: &KeyView) -> Vec<usize> {
        self.assets
            .iter()
            .enumerate()
            .filter(|(_, asset)| key.asset_ids.contains(asset))
            .map(|(machine, _)| machine)
            .collect()
    }

    /// An operator for the personal key; without one the personal key is skipped.
    async fn create_operator(&self) -> Option<Operator> {
        let request = NewOperator {
            name: format!("Sim operator {}", self.run_id),
            phone: Some("+41446681800".to_owned()),
            access_type: Some(AccessType::DigitalKey),
        };
        match self.admin.create_operator(&request).await {
            Ok(operator) => {
                if operator.name != request.name {
                    self.checks.push(format!(
                        "creating operator {:?} answered name {:?}",
                        request.name, operator.name
                    ));
                }
                Some(operator)
            }
            Err(error) => {
                self.errors.push(format!(
                    "creating an operator: {error}; the personal key is skipped"
                ));
                None
            }
        }
    }

    /// Edits the personal key's end and description (`PATCH`).
    async fn edit_personal(&mut self) {
        let Some(personal) = self.key(Role::Personal).cloned() else {
            return;
        };
        let base = personal.valid_from_ms().unwrap_or_else(now_ms);
        let edit = KeyEdit {
            valid_to: rfc3339_from_ms(base + 12 * HOUR_MS),
            description: Some(format!("sim {} personal, edited", self.run_id)),
        };
        self.edit(&personal, &edit).await;
    }

    /// Moves the fleet-wide and future keys' end by bulk edit, after a dry run that must
    /// change nothing.
    async fn bulk_edit_long_keys(&mut self) {
        let targets: Vec<KeyView> = [Role::FleetWide, Role::Future]
            .into_iter()
            .filter_map(|role| self.key(role).cloned())
            .collect();
        let Some(latest_end) = targets.iter().filter_map(KeyView::valid_to_ms).max() else {
            return;
        };
        let edit = KeyEdit {
            valid_to: rfc3339_from_ms(latest_end + HOUR_MS),
            description: None,
        };
        self.bulk_edit(&targets, &edit).await;
    }

    /// Bulk-deletes every key still there, after a dry run that must change nothing.
    async fn bulk_delete_the_rest(&mut self) {
        let rest: Vec<KeyView> = self.keys.iter().map(|(_, key)| key.clone()).collect();
        if !rest.is_empty() {
            self.bulk_delete(&rest).await;
        }
    }

    /// Waits until the short-lived key ended and measures how long after `valid_to` each
    /// unit took a set without it (the gateway's scheduler drops it). Units that never held
    /// it (the one that was off, if it came back too late) are left out.
    async fn wait_for_expiry(&mut self) {
        let Some(short) = self.key(Role::ShortLived).cloned() else {
            return;
        };
        let (Some(valid_to_ms), Some(&created_us)) =
            (short.valid_to_ms(), self.created_us.get(&short.id))
        else {
            return;
        };
        let valid_to_us = valid_to_ms.saturating_mul(1000);
        tokio::time::sleep(Duration::from_millis(valid_to_ms.saturating_sub(now_ms()))).await;
        let timeout = self.config.propagation_timeout;
        let waits = self.machines_of(&short).into_iter().filter_map(|machine| {
            let holder = self.holders.get(machine)?.as_ref()?;
            let id = &short.id;
            Some(async move {
                let held = holder
                    .wait_for_set(created_us, |set| set.contains(id), Duration::ZERO)
                    .await?;
                let gone = holder
                    .wait_for_set(held.taken_us, |set| !set.contains(id), timeout)
                    .await;
                Some((machine, gone))
            })
        });
        let outcomes = futures_util::future::join_all(waits).await;
        let mut never = 0;
        for (machine, gone) in outcomes.into_iter().flatten() {
            match gone {
                Some(gone) if gone.taken_us < valid_to_us => self.checks.push(format!(
                    "unit {} dropped the short-lived key {} {} ms before its valid_to",
                    self.machines[machine].device.id,
                    short.id,
                    (valid_to_us - gone.taken_us) / 1000
                )),
                Some(gone) => {
                    self.unit_changes.fetch_add(1, Ordering::Relaxed);
                    self.expiry_lag.record_between(valid_to_us, gone.taken_us);
                }
                None => never += 1,
            }
        }
        if never > 0 {
            self.checks.push(format!(
                "{never} units still held the short-lived key {} {timeout:?} after its valid_to",
                short.id
            ));
        }
    }

    /// Turns in what was measured, and switches the units off cleanly.
    async fn finish(mut self) -> KeysReport {
        let mut totals = HolderStats::default();
        let mut units = Vec::new();
        for holder in self.holders.iter_mut().filter_map(Option::take) {
            let stats = holder.stats();
            totals.sets_received += stats.sets_received;
            totals.sets_taken += stats.sets_taken;
            totals.sets_not_newer += stats.sets_not_newer;
            totals.sets_malformed += stats.sets_malformed;
            totals.acks_sent += stats.acks_sent;
            totals.ack_failures += stats.ack_failures;
            totals.other_messages += stats.other_messages;
            if stats.sets_malformed > 0 {
                if let Some(error) = holder.last_error() {
                    self.checks.push(error);
                }
            }
            units.push(holder.stop().await);
        }
        switch_off_all(units, self.config.run.parallelism, &self.errors).await;
        let mut report = self.report;
        report.holders = totals;
        report.propagation_from_request = self.from_request.percentiles();
        report.propagation_after_answer = self.after_answer.percentiles();
        report.expiry_lag = self.expiry_lag.percentiles();
        if let (Some(reconnect), Some((_, listed_pending))) = (&mut report.reconnect, self.offline)
        {
            reconnect.listed_pending = listed_pending;
        }
        report.checks_failed = self.checks.into_entries();
        // The run's error log goes into the report once this holder of it is gone.
        drop(self.errors);
        report
    }
}

/// Starts a key holder on every connected unit; by machine index, `None` where a unit did
/// not connect or its holder could not subscribe.
async fn start_holders(
    connected: Vec<(usize, SimUnit)>,
    machines: usize,
    parallelism: usize,
    errors: &ErrorLog,
) -> Vec<Option<KeyHolder>> {
    let started: Vec<(usize, Option<KeyHolder>)> = stream::iter(connected)
        .map(|(machine, unit)| async move {
            let unit = std::sync::Arc::new(unit);
            let device = unit.client_id().to_owned();
            match KeyHolder::start(unit).await {
                Ok(holder) => (machine, Some(holder)),
                Err(error) => {
                    errors.push(format!("unit {device}: subscribing to its keys: {error}"));
                    (machine, None)
                }
            }
        })
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    let mut holders: Vec<Option<KeyHolder>> = (0..machines).map(|_| None).collect();
    for (machine, holder) in started {
        if let Some(slot) = holders.get_mut(machine) {
            *slot = holder;
        }
    }
    holders
}

/// Ends every session cleanly (`offline` status, then DISCONNECT), as units switching off.
async fn switch_off_all(
    units: Vec<std::sync::Arc<SimUnit>>,
    parallelism: usize,
    errors: &ErrorLog,
) {
    let units = units.into_iter().enumerate().collect();
    super::fleet::disconnect_all(units, parallelism, errors).await;
}

/// The run's units send each packet at once: the figures are about the gateway, and with
/// Nagle on, a unit's ack would wait behind its own PUBACK (see `UnitOptions::tcp_nodelay`).
fn no_delay(options: UnitOptions) -> UnitOptions {
    options.with_tcp_nodelay(true)
}

/// The ids of keys, for messages and records.
fn ids_of(keys: &[KeyView]) -> Vec<KeyId> {
    keys.iter().map(|key| key.id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::options::{assert_refused, assert_run_options_checked};

    fn config() -> KeysConfig {
        KeysConfig::for_target(Target::unreachable())
    }

    #[test]
    fn defaults_are_valid_and_bounds_are_named() {
        assert!(config().validate().is_ok());
        let refused = |config: KeysConfig, word: &str| assert_refused(config.validate(), word);
        refused(
            KeysConfig {
                units: 0,
                ..config()
            },
            "units",
        );
        refused(
            KeysConfig {
                units: MAX_UNITS + 1,
                ..config()
            },
            "units",
        );
        assert_run_options_checked(MAX_PARALLELISM, |run| {
            KeysConfig { run, ..config() }.validate()
        });
        refused(
            KeysConfig {
                propagation_timeout: Duration::ZERO,
                ..config()
            },
            "propagation timeout",
        );
        refused(
            KeysConfig {
                event_timeout: MAX_EVENT_TIMEOUT + Duration::from_secs(1),
                ..config()
            },
            "event timeout",
        );
        refused(
            KeysConfig {
                short_lived: Duration::from_secs(1),
                ..config()
            },
            "short-lived",
        );
    }

    #[tokio::test]
    async fn unreachable_gateway_is_an_error_not_a_report() {
        let config = KeysConfig::for_target(Target::closed());
        let error = run_keys(&config).await.expect_err("no gateway");
        assert!(matches!(error, ScenarioError::Api { .. }), "{error}");
    }
}
