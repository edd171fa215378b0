//! The soak's background admin: while the units stream, one admin tool works through a
//! fixed cycle at a fixed rate — grant an asset to the sub-account, read a history page,
//! create an access key, read, remove the grant, read, delete the key, read — so the
//! gateway's control plane (durable transactions, actor re-binding, key distribution to
//! the units) runs the whole time next to ingest, as it does in production. Each call's
//! round trip goes into the meter under its kind.
//!
//! Calls are made one after another, never in parallel: the rate is what an operator's
//! tooling plausibly does, and a slow answer delays the next call (missed ticks are not
//! made up) instead of piling calls onto a struggling gateway. Refusals and answers that
//! break the contract are errors of the run; the cycle goes on regardless.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use super::window::Meter;
use crate::api::{
    AccessType, AccountId, ApiClient, ApiError, AssetId, DeviceId, GrantRemoval, HistoryQuery,
    KeyId, NewGrants, NewKey,
};
use crate::scenario::ErrorLog;
use crate::telemetry::{now_ms, now_us, rfc3339_from_ms};

/// How far back a history read looks, and how many points it asks for: one page of the
/// recent past, as a dashboard would read it.
const HISTORY_LOOKBACK_MS: u64 = 60_000;
const HISTORY_PAGE: u32 = 100;
/// How long a churned key is valid; it is deleted long before.
const KEY_VALIDITY_MS: u64 = 3_600_000;

/// The kinds of admin call the soak makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminKind {
    Grant,
    Remove,
    KeyCreate,
    KeyDelete,
    History,
}

impl AdminKind {
    pub const ALL: [AdminKind; 5] = [
        AdminKind::Grant,
        AdminKind::Remove,
        AdminKind::KeyCreate,
        AdminKind::KeyDelete,
        AdminKind::History,
    ];

    /// Its place in `ALL` (and in the meter's totals).
    pub fn index(self) -> usize {
        match self {
            AdminKind::Grant => 0,
            AdminKind::Remove => 1,
            AdminKind::KeyCreate => 2,
            AdminKind::KeyDelete => 3,
            AdminKind::History => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AdminKind::Grant => "grant visibility",
            AdminKind::Remove => "remove visibility",
            AdminKind::KeyCreate => "create key",
            AdminKind::KeyDelete => "delete key",
            AdminKind::History => "history page",
        }
    }
}

impl fmt::Display for AdminKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One pass of the admin cycle; reads sit between the changes as a dashboard's would.
const CYCLE: [AdminKind; 8] = [
    AdminKind::Grant,
    AdminKind::History,
    AdminKind::KeyCreate,
    AdminKind::History,
    AdminKind::Remove,
    AdminKind::History,
    AdminKind::KeyDelete,
    AdminKind::History,
];

/// A machine the admin may grant and key: its asset and the unit that must get the key.
#[derive(Debug, Clone)]
pub(super) struct AdminTarget {
    pub(super) asset_id: AssetId,
    pub(super) device_id: DeviceId,
    /// Whether the unit runs a key holder that acknowledges key sets; only then may the
    /// gateway be held to listing it `delivered`.
    pub(super) holds_keys: bool,
}

/// What the admin loop works with.
pub(super) struct AdminPlan {
    /// The owner account's admin.
    pub(super) owner: ApiClient,
    /// The sub-account that receives and loses grants.
    pub(super) grantee: AccountId,
    pub(super) targets: Vec<AdminTarget>,
    pub(super) start: Instant,
    /// No call starts at or after this instant.
    pub(super) end: Instant,
    pub(super) interval: Duration,
}

/// Grants and keys the loop made and did not take back (a failed removal, or the run
/// ending in between); the run removes them after the measured part.
#[derive(Debug, Default)]
pub(super) struct Leftovers {
    pub(super) grants: Vec<AssetId>,
    pub(super) keys: Vec<KeyId>,
}

/// Runs the cycle from `plan.start` until `plan.end`, at most one call per interval.
pub(super) async fn churn(plan: AdminPlan, meter: Arc<Meter>, errors: Arc<ErrorLog>) -> Leftovers {
    let mut leftovers = Leftovers::default();
    if plan.targets.is_empty() || plan.end <= plan.start {
        return leftovers;
    }
    let mut state = Churn {
        plan: &plan,
        meter: &meter,
        errors: &errors,
        granted: VecDeque::new(),
        keys: VecDeque::new(),
        next_grant: 0,
        next_key: 0,
        next_read: 0,
    };
    let span = plan.end.duration_since(plan.start);
    // The loop's own bound: one call per interval fits in the span, plus the first.
    let max_calls = (span.as_secs_f64() / plan.interval.as_secs_f64()).ceil() as u64 + 1;
    let mut ticker = tokio::time::interval_at(plan.start, plan.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for call in 0..max_calls {
        ticker.tick().await;
        if Instant::now() >= plan.end {
            break;
        }
        let kind = CYCLE[(call % CYCLE.len() as u64) as usize];
        state.step(kind).await;
    }
    leftovers.grants = state.granted.into_iter().collect();
    leftovers.keys = state.keys.into_iter().collect();
    leftovers
}

struct Churn<'a> {
    plan: &'a AdminPlan,
    meter: &'a Meter,
    errors: &'a ErrorLog,
    /// Granted assets, oldest first; `Remove` takes the oldest back.
    granted: VecDeque<AssetId>,
    /// Live keys, oldest first; `KeyDelete` deletes the oldest.
    keys: VecDeque<KeyId>,
    next_grant: usize,
    next_key: usize,
    next_read: usize,
}

impl Churn<'_> {
    async fn step(&mut self, kind: AdminKind) {
        match kind {
            AdminKind::Grant => self.grant().await,
            AdminKind::Remove => self.remove().await,
            AdminKind::KeyCreate => self.create_key().await,
            AdminKind::KeyDelete => self.delete_key().await,
            AdminKind::History => self.read_history().await,
        }
    }

    fn target(&self, counter: usize) -> &AdminTarget {
        &self.plan.targets[counter % self.plan.targets.len()]
    }

    /// Records the call; on failure also logs `what` with the error.
    fn record<T>(
        &self,
        kind: AdminKind,
        started_us: u64,
        outcome: &Result<T, ApiError>,
        what: &str,
    ) {
        match outcome {
            Ok(_) => self
                .meter
                .record_admin(kind, Some(now_us().saturating_sub(started_us))),
            Err(error) => {
                self.meter.record_admin(kind, None);
                self.errors.push(format!("admin: {what}: {error}"));
            }
        }
    }

    async fn grant(&mut self) {
        let asset_id = self.target(self.next_grant).asset_id.clone();
        self.next_grant += 1;
        let request = NewGrants::permanent(self.plan.grantee.clone(), vec![asset_id.clone()]);
        let started_us = now_us();
        let outcome = self.plan.owner.grant_visibility(&request, false).await;
        let what = format!("granting {asset_id} to {}", self.plan.grantee);
        self.record(AdminKind::Grant, started_us, &outcome, &what);
        let Ok(batch) = outcome else { return };
        let granted = batch.items.iter().any(|grant| {
            grant.asset_id == asset_id && grant.account_id == self.plan.grantee && grant.active
        });
        if granted && !batch.dry_run {
            self.granted.push_back(asset_id);
        } else {
            self.errors.push(format!(
                "admin: {what} answered no active grant for it (dry_run {}, {} items)",
                batch.dry_run,
                batch.items.len()
            ));
        }
    }

    async fn remove(&mut self) {
        let Some(asset_id) = self.granted.pop_front() else {
            return;
        };
        let request = GrantRemoval {
            account_id: self.plan.grantee.clone(),
            asset_ids: vec![asset_id.clone()],
        };
        let started_us = now_us();
        let outcome = self.plan.owner.remove_visibility(&request, false).await;
        let what = format!("removing the grant of {asset_id} to {}", self.plan.grantee);
        self.record(AdminKind::Remove, started_us, &outcome, &what);
        match outcome {
            Ok(batch) if batch.items.iter().any(|grant| grant.asset_id == asset_id) => {}
            Ok(batch) => self.errors.push(format!(
                "admin: {what} answered {} removed grants, none for it",
                batch.items.len()
            )),
            // Still granted as far as the run knows: removed again at the end.
            Err(_) => self.granted.push_back(asset_id),
        }
    }

    async fn create_key(&mut self) {
        let target = self.target(self.next_key).clone();
        self.next_key += 1;
        let now = now_ms();
        let (Some(valid_from), Some(valid_to)) =
            (rfc3339_from_ms(now), rfc3339_from_ms(now + KEY_VALIDITY_MS))
        else {
            self.errors
                .push("admin: the clock cannot be written as RFC 3339".to_owned());
            return;
        };
        let key = NewKey::shared(
            vec![target.asset_id.clone()],
            AccessType::KeypadPin,
            valid_from,
            valid_to,
        )
        .with_description("fleetgate-sim soak churn");
        let started_us = now_us();
        let outcome = self.plan.owner.create_key(&key).await;
        let what = format!("creating a key for {}", target.asset_id);
        self.record(AdminKind::KeyCreate, started_us, &outcome, &what);
        let Ok(change) = outcome else { return };
        self.keys.push_back(change.key.id.clone());
        let delivered = change.distribution.delivered.contains(&target.device_id);
        if target.holds_keys && !delivered {
            self.errors.push(format!(
                "admin: key {} for {}: unit {} is online and acknowledges key sets, but the \
                 answer lists it {}",
                change.key.id,
                target.asset_id,
                target.device_id,
                if change.distribution.pending.contains(&target.device_id) {
                    "pending"
                } else {
                    "nowhere"
                }
            ));
        }
    }

    async fn delete_key(&mut self) {
        let Some(key_id) = self.keys.pop_front() else {
            return;
        };
        let started_us = now_us();
        let outcome = self.plan.owner.delete_key(&key_id).await;
        let what = format!("deleting key {key_id}");
        self.record(AdminKind::KeyDelete, started_us, &outcome, &what);
        if outcome.is_err() {
            self.keys.push_back(key_id);
        }
    }

    async fn read_history(&mut self) {
        let asset_id = self.target(self.next_read).asset_id.clone();
        self.next_read += 1;
        let query = HistoryQuery {
            from: rfc3339_from_ms(now_ms().saturating_sub(HISTORY_LOOKBACK_MS)),
            limit: Some(HISTORY_PAGE),
            ..HistoryQuery::default()
        };
        let started_us = now_us();
        let outcome = self.plan.owner.telemetry_page(&asset_id, &query).await;
        let what = format!("reading history of {asset_id}");
        self.record(AdminKind::History, started_us, &outcome, &what);
        if let Ok(page) = outcome {
            let foreign = page
                .items
                .iter()
                .filter(|point| point.asset_id != asset_id)
                .count();
            if foreign > 0 || page.items.len() > HISTORY_PAGE as usize {
                self.errors.push(format!(
                    "admin: {what}: {} points for limit {HISTORY_PAGE}, {foreign} of another asset",
                    page.items.len()
                ));
            }
        }
    }
}

/// Takes back what the loop left granted or keyed, so a soak leaves its account as it
/// found it apart from the telemetry. Not measured; failures are errors of the run.
pub(super) async fn clean_up(
    owner: &ApiClient,
    grantee: &AccountId,
    leftovers: Leftovers,
    errors: &ErrorLog,
) {
    if !leftovers.grants.is_empty() {
        let request = GrantRemoval {
            account_id: grantee.clone(),
            asset_ids: leftovers.grants,
        };
        if let Err(error) = owner.remove_visibility(&request, false).await {
            errors.push(format!(
                "clean-up: removing {} remaining grants: {error}",
                request.asset_ids.len()
            ));
        }
    }
    for key_id in leftovers.keys {
        if let Err(error) = owner.delete_key(&key_id).await {
            errors.push(format!("clean-up: deleting key {key_id}: {error}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_place_and_the_cycle_uses_every_kind() {
        for (position, kind) in AdminKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position);
            assert!(CYCLE.contains(kind), "{kind} is never called");
        }
        assert_eq!(
            serde_json::to_value(AdminKind::KeyCreate).expect("json"),
            "key_create"
        );
        // Each change is taken back within the same cycle.
        let count = |kind| CYCLE.iter().filter(|k| **k == kind).count();
        assert_eq!(count(AdminKind::Grant), count(AdminKind::Remove));
        assert_eq!(count(AdminKind::KeyCreate), count(AdminKind::KeyDelete));
    }

    /// Runs the loop over `targets` for `run_for` against a gateway that is not there, so
    /// every call fails: what it left, its meter and its error log.
    async fn churn_unreachable(
        targets: Vec<AdminTarget>,
        run_for: Duration,
        interval: Duration,
    ) -> (Leftovers, Arc<Meter>, Arc<ErrorLog>) {
        let meter = Arc::new(Meter::default());
        let errors = Arc::new(ErrorLog::default());
        let now = Instant::now();
        let plan = AdminPlan {
            owner: ApiClient::new("http://127.0.0.1:1", "t").expect("client"),
            grantee: AccountId::new("g"),
            targets,
            start: now,
            end: now + run_for,
            interval,
        };
        let leftovers = churn(plan, meter.clone(), errors.clone()).await;
        (leftovers, meter, errors)
    }

    #[tokio::test]
    async fn without_targets_or_time_the_loop_calls_nothing() {
        let (leftovers, meter, _) = churn_unreachable(
            Vec::new(),
            Duration::from_secs(60),
            Duration::from_millis(10),
        )
        .await;
        assert!(leftovers.grants.is_empty() && leftovers.keys.is_empty());
        let (_, totals) = meter.totals();
        assert!(totals.iter().all(|kind| kind.calls == 0));
    }

    #[tokio::test]
    async fn refused_calls_are_counted_and_nothing_is_taken_back_that_was_not_made() {
        let target = AdminTarget {
            asset_id: AssetId::new("a1"),
            device_id: DeviceId::new("d1"),
            holds_keys: true,
        };
        let run_for = Duration::from_millis(300);
        let (leftovers, meter, errors) =
            churn_unreachable(vec![target], run_for, Duration::from_millis(30)).await;
        assert!(leftovers.grants.is_empty() && leftovers.keys.is_empty());
        let (_, totals) = meter.totals();
        let grant = &totals[AdminKind::Grant.index()];
        assert!(
            grant.calls >= 1 && grant.failures == grant.calls,
            "{grant:?}"
        );
        assert!(totals.iter().all(|kind| kind.failures == kind.calls));
        assert_eq!(totals[AdminKind::Remove.index()].calls, 0);
        assert_eq!(totals[AdminKind::KeyDelete.index()].calls, 0);
        let logged = ErrorLog::finish(errors);
        assert!(
            logged[0].starts_with("admin: granting a1 to g"),
            "{logged:?}"
        );
    }
}
