//! The changing half of a key run: each key call (create, edit, delete, bulk edit and
//! delete, with their dry runs), then how the change reached the units, judged against the
//! answer's `distribution`.
//!
//! # How propagation is measured
//!
//! Each unit's `KeyHolder` notes the moment (simulator clock) it took every key set. After
//! a call, the run asks each affected online unit for the first set taken at or after the
//! request started that shows the change (the key there with the answer's fields, or gone),
//! waiting up to the propagation timeout. "From request" is request start → that moment;
//! "after answer" is answer → that moment, for units that took it only after the answer
//! (the contract expects online units to have it before). Units and the run share one
//! clock, so no skew enters the figures.
//!
//! How an answer's `distribution` and the units' sets are judged is in `verdict.rs`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::join_all;

use super::plan::{check_created, PlannedKey, Role};
use super::report::{ChangeRecord, ReconnectRecord};
use super::verdict::{distribution_problems, push_summary, Expect, UnitSeen};
use super::{ids_of, KeyRun};
use crate::api::{ApiError, Distribution, KeyEdit, KeyId, KeyQuery, KeyView, OperatorId};
use crate::scenario::fleet::connect_units_with;
use crate::stats::LatencyRecorder;
use crate::telemetry::now_us;
use crate::unit::{HeldKey, KeyHolder, TakenSet};

/// How long the units are watched after a dry run, to see that it sent nothing.
const DRY_RUN_QUIET: Duration = Duration::from_millis(300);

/// Runs an API call and notes when it started and when it answered (µs since the epoch).
async fn timed<T>(
    call: impl Future<Output = Result<T, ApiError>>,
) -> (u64, u64, Result<T, ApiError>) {
    let started_us = now_us();
    let outcome = call.await;
    (started_us, now_us(), outcome)
}

impl KeyRun {
    /// For each online unit among `machines`: the first set taken at or after `since_us`
    /// that `expect` accepts, waiting up to `timeout` in all. Each one found counts as a
    /// unit change in the timeline's series the moment it is found.
    pub(super) async fn wait_on_units(
        &self,
        machines: &[usize],
        since_us: u64,
        expect: &Expect,
        timeout: Duration,
    ) -> HashMap<usize, Option<TakenSet>> {
        let waits = machines.iter().filter_map(|&machine| {
            let holder = self.holders.get(machine)?.as_ref()?;
            Some(async move {
                let taken = holder
                    .wait_for_set(since_us, |set| expect.accepts(set), timeout)
                    .await;
                if taken.is_some() {
                    self.unit_changes.fetch_add(1, Ordering::Relaxed);
                }
                (machine, taken)
            })
        });
        join_all(waits).await.into_iter().collect()
    }

    /// Measures how an answered change reached the units and judges its distribution.
    #[allow(clippy::too_many_arguments)]
    async fn measure(
        &mut self,
        change: String,
        key_ids: Vec<KeyId>,
        machines: &[usize],
        expect: Expect,
        (started_us, answered_us): (u64, u64),
        distribution: &Distribution,
    ) {
        let taken = self
            .wait_on_units(
                machines,
                started_us,
                &expect,
                self.config.propagation_timeout,
            )
            .await;
        let mut record = ChangeRecord {
            change,
            key_ids,
            call_us: Some(answered_us.saturating_sub(started_us)),
            units_affected: machines.len(),
            delivered: distribution.delivered.len(),
            pending: distribution.pending.len(),
            ..ChangeRecord::default()
        };
        let mut from_request = LatencyRecorder::new();
        let mut after_answer = LatencyRecorder::new();
        let mut content = Vec::new();
        let mut seen = Vec::with_capacity(machines.len());
        for &machine in machines {
            let device = self.machines[machine].device.id.clone();
            let online = self.holders[machine].is_some();
            let taken = taken.get(&machine).cloned().flatten();
            match &taken {
                Some(taken) => {
                    record.held += 1;
                    from_request.record_between(started_us, taken.taken_us);
                    if taken.taken_us <= answered_us {
                        record.held_before_answer += 1;
                    } else {
                        after_answer.record_between(answered_us, taken.taken_us);
                    }
                    for problem in expect.content_problems(&taken.set) {
                        content.push(format!("unit {device} {problem}"));
                    }
                }
                None if online => record.never_held += 1,
                None => {}
            }
            if let Some((offline, listed_pending)) = &mut self.offline {
                if *offline == machine && !online && !distribution.pending.contains(&device) {
                    *listed_pending = false;
                }
            }
            seen.push(UnitSeen {
                device,
                online,
                taken_us: taken.map(|taken| taken.taken_us),
            });
        }
        let problems = distribution_problems(distribution, &seen, answered_us);
        record.distribution_mismatches = problems.len() as u64;
        self.check_change(&record, &problems, &content);
        record.from_request = from_request.percentiles();
        record.after_answer = after_answer.percentiles();
        self.from_request.merge(&from_request);
        self.after_answer.merge(&after_answer);
        self.report.held_before_answer += record.held_before_answer as u64;
        self.report.never_held += record.never_held as u64;
        self.report.distribution_mismatches += record.distribution_mismatches;
        self.report.changes.push(record);
    }

    /// The change's checks: its distribution list against what the units saw, the keys the
    /// units hold, and the online units that never took it.
    fn check_change(&self, record: &ChangeRecord, problems: &[String], content: &[String]) {
        let change = &record.change;
        push_summary(&self.checks, &format!("{change}: distribution"), problems);
        push_summary(&self.checks, &format!("{change}: held keys"), content);
        if record.never_held > 0 {
            self.checks.push(format!(
                "{change}: {} online units did not take the change within {:?}",
                record.never_held, self.config.propagation_timeout
            ));
        }
    }

    /// Records a change whose call failed.
    fn failed(&mut self, change: String, key_ids: Vec<KeyId>, error: ApiError) {
        self.errors.push(format!("{change}: {error}"));
        self.report.changes.push(ChangeRecord {
            change,
            key_ids,
            error: Some(error.to_string()),
            ..ChangeRecord::default()
        });
    }

    /// The keys' API view as a unit must hold them; `None` (and an error) if the API wrote
    /// a time that is not RFC 3339.
    fn held(&self, keys: &[KeyView]) -> Option<Vec<HeldKey>> {
        let held: Option<Vec<HeldKey>> = keys.iter().map(HeldKey::from_view).collect();
        if held.is_none() {
            self.checks.push(format!(
                "a key of {:?} has a time that is not RFC 3339",
                ids_of(keys)
            ));
        }
        held
    }

    /// Machine indices of any of the keys' assets, each once, in order.
    fn machines_of_all(&self, keys: &[KeyView]) -> Vec<usize> {
        let mut machines: Vec<usize> = keys.iter().flat_map(|key| self.machines_of(key)).collect();
        machines.sort_unstable();
        machines.dedup();
        machines
    }

    pub(super) async fn create(&mut self, planned: &PlannedKey, operator: Option<&OperatorId>) {
        let label = format!("create {} {}", planned.role.label(), planned.access_type);
        let Some(request) = planned.request(&self.assets, operator, &self.run_id) else {
            self.errors.push(format!("{label}: skipped (no operator)"));
            return;
        };
        let (started, answered, outcome) = timed(self.admin.create_key(&request)).await;
        let change = match outcome {
            Ok(change) => change,
            Err(error) => return self.failed(label, Vec::new(), error),
        };
        let key = change.key;
        let problems: Vec<String> = check_created(planned, &request, &key);
        push_summary(&self.checks, &format!("{label} ({})", key.id), &problems);
        self.created_us.insert(key.id.clone(), started);
        self.keys.push((planned.role, key.clone()));
        let Some(held) = self.held(std::slice::from_ref(&key)) else {
            return;
        };
        let machines = self.machines_of(&key);
        let ids = vec![key.id];
        let expect = Expect::Present(held);
        self.measure(
            label,
            ids,
            &machines,
            expect,
            (started, answered),
            &change.distribution,
        )
        .await;
    }

    /// `PATCH` of the key with `role`: the answer must show the edit and nothing else
    /// changed, and the units must get the new end.
    pub(super) async fn edit(&mut self, before: &KeyView, edit: &KeyEdit) {
        let label = "edit personal (PATCH valid_to, description)".to_owned();
        let (started, answered, outcome) = timed(self.admin.edit_key(&before.id, edit)).await;
        let change = match outcome {
            Ok(change) => change,
            Err(error) => return self.failed(label, vec![before.id.clone()], error),
        };
        let after = change.key;
        let unchanged = KeyView {
            valid_to: after.valid_to.clone(),
            description: after.description.clone(),
            ..before.clone()
        };
        if after != unchanged {
            self.checks.push(format!(
                "{label}: fields other than valid_to and description changed: {after:?}"
            ));
        }
        let asked_to = edit
            .valid_to
            .as_deref()
            .and_then(crate::telemetry::ms_from_rfc3339);
        if after.valid_to_ms() != asked_to || after.description != edit.description {
            self.checks.push(format!(
                "{label}: answered valid_to {} and description {:?}, asked {:?} and {:?}",
                after.valid_to, after.description, edit.valid_to, edit.description
            ));
        }
        self.replace(&after);
        let Some(held) = self.held(std::slice::from_ref(&after)) else {
            return;
        };
        let machines = self.machines_of(&after);
        let expect = Expect::Present(held);
        let ids = vec![after.id];
        self.measure(
            label,
            ids,
            &machines,
            expect,
            (started, answered),
            &change.distribution,
        )
        .await;
    }

    /// Bulk edit of `targets`: a dry run that must change nothing, then the real one.
    pub(super) async fn bulk_edit(&mut self, targets: &[KeyView], edit: &KeyEdit) {
        let ids = ids_of(targets);
        let label = format!("bulk-edit {} keys (valid_to)", ids.len());
        let asked_to = edit
            .valid_to
            .as_deref()
            .and_then(crate::telemetry::ms_from_rfc3339);
        let dry_started = now_us();
        match self.admin.bulk_edit_keys(&ids, edit, true).await {
            Ok(batch) => {
                let shows_edit = batch.items.len() == ids.len()
                    && batch.items.iter().all(|key| key.valid_to_ms() == asked_to);
                if !batch.dry_run || !shows_edit {
                    self.checks.push(format!(
                        "{label}, dry run: answered dry_run {} with {} items, not the {} keys \
                         as they would be",
                        batch.dry_run,
                        batch.items.len(),
                        ids.len()
                    ));
                }
                if let Some(held) = self.held(&batch.items) {
                    self.dry_run_changed_nothing(
                        &label,
                        targets,
                        Expect::Present(held),
                        dry_started,
                    )
                    .await;
                }
            }
            Err(error) => self.errors.push(format!("{label}, dry run: {error}")),
        }
        let (started, answered, outcome) =
            timed(self.admin.bulk_edit_keys(&ids, edit, false)).await;
        let batch = match outcome {
            Ok(batch) => batch,
            Err(error) => return self.failed(label, ids, error),
        };
        let returned: HashSet<&KeyId> = batch.items.iter().map(|key| &key.id).collect();
        let all_edited = batch.items.iter().all(|key| key.valid_to_ms() == asked_to);
        if batch.dry_run || returned != ids.iter().collect() || !all_edited {
            self.checks.push(format!(
                "{label}: answered dry_run {} and {} items, not the {} edited keys",
                batch.dry_run,
                batch.items.len(),
                ids.len()
            ));
        }
        for key in &batch.items {
            self.replace(key);
        }
        let Some(held) = self.held(&batch.items) else {
            return;
        };
        let machines = self.machines_of_all(targets);
        let expect = Expect::Present(held);
        self.measure(
            label,
            ids,
            &machines,
            expect,
            (started, answered),
            &batch.distribution,
        )
        .await;
    }

    /// `DELETE` of one key.
    pub(super) async fn delete(&mut self, key: &KeyView) {
        let label = format!("delete {} (DELETE)", key.access_type);
        let ids = vec![key.id.clone()];
        let (started, answered, outcome) = timed(self.admin.delete_key(&key.id)).await;
        let removal = match outcome {
            Ok(removal) => removal,
            Err(error) => return self.failed(label, ids, error),
        };
        self.forget(&ids);
        let machines = self.machines_of(key);
        let expect = Expect::Absent(ids.clone());
        self.measure(
            label,
            ids,
            &machines,
            expect,
            (started, answered),
            &removal.distribution,
        )
        .await;
    }

    /// Bulk delete of `keys`: a dry run that must change nothing, then the real one.
    pub(super) async fn bulk_delete(&mut self, keys: &[KeyView]) {
        let ids = ids_of(keys);
        let label = format!("bulk-delete {} keys", ids.len());
        let wanted: HashSet<&KeyId> = ids.iter().collect();
        let dry_started = now_us();
        match self.admin.bulk_delete_keys(&ids, true).await {
            Ok(batch) => {
                let listed: HashSet<&KeyId> = batch.items.iter().map(|key| &key.id).collect();
                if !batch.dry_run || listed != wanted {
                    self.checks.push(format!(
                        "{label}, dry run: answered dry_run {} with {} of the {} keys",
                        batch.dry_run,
                        listed.intersection(&wanted).count(),
                        ids.len()
                    ));
                }
                let expect = Expect::Absent(ids.clone());
                self.dry_run_changed_nothing(&label, keys, expect, dry_started)
                    .await;
            }
            Err(error) => self.errors.push(format!("{label}, dry run: {error}")),
        }
        let (started, answered, outcome) = timed(self.admin.bulk_delete_keys(&ids, false)).await;
        let batch = match outcome {
            Ok(batch) => batch,
            Err(error) => return self.failed(label, ids, error),
        };
        let listed: HashSet<&KeyId> = batch.items.iter().map(|key| &key.id).collect();
        if batch.dry_run || listed != wanted {
            self.checks.push(format!(
                "{label}: answered dry_run {} and {} of the {} deleted keys",
                batch.dry_run,
                listed.intersection(&wanted).count(),
                ids.len()
            ));
        }
        self.forget(&ids);
        let machines = self.machines_of_all(keys);
        let expect = Expect::Absent(ids.clone());
        self.measure(
            label,
            ids,
            &machines,
            expect,
            (started, answered),
            &batch.distribution,
        )
        .await;
    }

    /// After a dry run: the API still shows `keys` (those not ended) as they were, and no
    /// unit took a set
    /// that `would_be` accepts.
    async fn dry_run_changed_nothing(
        &self,
        label: &str,
        keys: &[KeyView],
        would_be: Expect,
        since_us: u64,
    ) {
        let machines = self.machines_of_all(keys);
        if let Some(&first) = machines.first() {
            let query = KeyQuery {
                asset_id: Some(self.assets[first].clone()),
            };
            match self.admin.list_keys(&query).await {
                Ok(listed) => {
                    // Ended keys are left out: whether listings show them is not the
                    // dry run's business.
                    let now = crate::telemetry::now_ms();
                    let changed = keys
                        .iter()
                        .filter(|key| key.valid_to_ms().is_some_and(|to| to > now))
                        .filter(|key| self.machines_of(key).contains(&first))
                        .filter(|key| !listed.contains(key))
                        .count();
                    if changed > 0 {
                        self.checks.push(format!(
                            "{label}, dry run: {changed} keys of {} changed or went away",
                            self.assets[first]
                        ));
                    }
                }
                Err(error) => self
                    .errors
                    .push(format!("{label}, dry run: listing the keys: {error}")),
            }
        }
        let taken = self
            .wait_on_units(&machines, since_us, &would_be, DRY_RUN_QUIET)
            .await;
        let moved = taken.values().filter(|taken| taken.is_some()).count();
        if moved > 0 {
            self.checks.push(format!(
                "{label}, dry run: {moved} units received the change it only previewed"
            ));
        }
    }

    fn replace(&mut self, key: &KeyView) {
        if let Some((_, held)) = self.keys.iter_mut().find(|(_, held)| held.id == key.id) {
            *held = key.clone();
        }
    }

    fn forget(&mut self, ids: &[KeyId]) {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.keys)
            .into_iter()
            .partition(|(_, key)| ids.contains(&key.id));
        self.keys = kept;
        self.deleted.extend(gone);
    }

    /// Switches one unit off cleanly before keys are created, so they are pending for it.
    pub(super) async fn switch_off(&mut self, machine: usize) {
        let Some(holder) = self.holders.get_mut(machine).and_then(Option::take) else {
            return;
        };
        let unit = holder.stop().await;
        match std::sync::Arc::try_unwrap(unit) {
            Ok(unit) => {
                if let Err(error) = unit.disconnect().await {
                    self.errors
                        .push(format!("switching off unit {machine}: {error}"));
                }
            }
            Err(unit) => drop(unit),
        }
        self.offline = Some((machine, true));
    }

    /// Brings the switched-off unit back; it must receive the retained set with the
    /// fleet-wide key created while it was off.
    pub(super) async fn reconnect_offline(&mut self) {
        let Some((machine, _)) = self.offline else {
            return;
        };
        let Some(fleet) = self.key(Role::FleetWide).cloned() else {
            return;
        };
        let machine_slice = std::slice::from_ref(&self.machines[machine]);
        let device_id = machine_slice[0].device.id.clone();
        let started = now_us();
        let connected = connect_units_with(
            machine_slice,
            &self.config.target.mqtt,
            self.config.target.tls_server_name.as_deref(),
            1,
            &self.errors,
            super::no_delay,
        )
        .await;
        let Some((_, unit)) = connected.into_iter().next() else {
            return;
        };
        let holder = match KeyHolder::start(std::sync::Arc::new(unit)).await {
            Ok(holder) => holder,
            Err(error) => {
                self.errors.push(format!(
                    "unit {device_id}: subscribing after reconnect: {error}"
                ));
                return;
            }
        };
        let taken = match self.held(std::slice::from_ref(&fleet)) {
            Some(held) => {
                let expect = Expect::Present(held);
                let timeout = self.config.propagation_timeout;
                holder
                    .wait_for_set(started, |set| expect.accepts(set), timeout)
                    .await
            }
            None => None,
        };
        if taken.is_some() {
            self.unit_changes.fetch_add(1, Ordering::Relaxed);
        }
        if taken.is_none() {
            self.checks.push(format!(
                "unit {device_id} did not receive the retained set with key {} within {:?} \
                 of reconnecting",
                fleet.id, self.config.propagation_timeout
            ));
        }
        self.holders[machine] = Some(holder);
        self.report.reconnect = Some(ReconnectRecord {
            device_id,
            listed_pending: true,
            held_after_us: taken.map(|taken| taken.taken_us.saturating_sub(started)),
        });
    }
}
