//! The storm itself: every grant of the run taken back at once, with a fixed number of
//! removal calls in flight, either one `DELETE /v1/visibility/grants/{id}` per grant or one
//! bulk `POST /v1/visibility/remove` per grantee (all of its assets). Each call marks its
//! pairs in the visibility scenario's cut-off ledger around the round trip (request stamp
//! under the ledger's lock, answer stamp right after the answer), which is what lets the
//! run judge, per pair, that nothing published after the answer reached the grantee.
//!
//! Concurrency does not weaken the ledger's argument: its state is per (grantee, asset)
//! pair, and each pair is removed by exactly one call.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use futures_util::{stream, StreamExt};
use serde::Serialize;

use crate::api::{AccountId, ApiClient, AssetId, GrantId, GrantRemoval};
use crate::scenario::sharing::cutoff::{CutoffLedger, PlannedRemoval};
use crate::scenario::sharing::cutoff_run::lock;
use crate::scenario::sharing::setup::Grantee;
use crate::scenario::ErrorLog;
use crate::stats::LatencyRecorder;
use crate::telemetry::now_us;

/// Which endpoint the storm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeMode {
    /// `DELETE /v1/visibility/grants/{id}`, one call per grant.
    Individual,
    /// `POST /v1/visibility/remove`, one all-or-nothing call per grantee.
    Bulk,
}

impl fmt::Display for RevokeMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RevokeMode::Individual => "one DELETE per grant",
            RevokeMode::Bulk => "one bulk remove per grantee",
        })
    }
}

/// One removal call of the storm, in the order the answers came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovalCall {
    pub grantee: AccountId,
    /// The grant a `DELETE` removed; `None` for a bulk call.
    pub grant_id: Option<GrantId>,
    /// Grants the call takes back (1 for a `DELETE`).
    pub grants: usize,
    /// When the request was sent, µs since the epoch.
    pub requested_us: u64,
    /// When the answer arrived, µs since the epoch; `None` when none did.
    pub answered_us: Option<u64>,
    /// Whether the gateway accepted it as the contract says (204 for a `DELETE`, every
    /// named asset listed as removed for a bulk call).
    pub succeeded: bool,
    /// The HTTP status when an error answer or a `DELETE` answer carried one.
    pub status: Option<u16>,
}

/// What the storm did.
#[derive(Debug)]
pub(crate) struct StormOutcome {
    pub(crate) calls: Vec<RemovalCall>,
    /// Round trips of the calls that were answered successfully.
    pub(crate) latency: LatencyRecorder,
    /// From the first request to the last answer, in seconds.
    pub(crate) elapsed_s: f64,
}

/// Everything a storm needs, borrowed from the run.
pub(crate) struct Storm<'a> {
    pub(crate) owner_admin: &'a ApiClient,
    pub(crate) grantees: &'a [Grantee],
    pub(crate) ledger: &'a Mutex<CutoffLedger>,
    /// Bumped by the grants each successful call removed: the timeline's series.
    pub(crate) removed: &'a AtomicU64,
    pub(crate) errors: &'a ErrorLog,
}

/// One call's worth of removals: a grantee and the pairs it takes back.
struct Batch {
    grantee: usize,
    grant_id: Option<GrantId>,
    assets: Vec<AssetId>,
}

/// Groups the plan into calls: one per grant, or one per grantee (in the order each
/// grantee first appears in the shuffled plan).
fn batches(plan: Vec<PlannedRemoval>, mode: RevokeMode) -> Vec<Batch> {
    match mode {
        RevokeMode::Individual => plan
            .into_iter()
            .map(|step| Batch {
                grantee: step.grantee,
                grant_id: Some(step.grant_id),
                assets: vec![step.asset_id],
            })
            .collect(),
        RevokeMode::Bulk => {
            let mut batches: Vec<Batch> = Vec::new();
            for step in plan {
                match batches
                    .iter_mut()
                    .find(|batch| batch.grantee == step.grantee)
                {
                    Some(batch) => batch.assets.push(step.asset_id),
                    None => batches.push(Batch {
                        grantee: step.grantee,
                        grant_id: None,
                        assets: vec![step.asset_id],
                    }),
                }
            }
            batches
        }
    }
}

impl Storm<'_> {
    /// Sends every removal of `plan`, `concurrency` calls in flight at once, and waits for
    /// every answer (each call is bounded by the HTTP client's timeout).
    pub(crate) async fn run(
        &self,
        plan: Vec<PlannedRemoval>,
        mode: RevokeMode,
        concurrency: usize,
    ) -> StormOutcome {
        let started_us = now_us();
        let calls: Vec<RemovalCall> = stream::iter(batches(plan, mode))
            .map(|batch| self.call(batch))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let elapsed_s = now_us().saturating_sub(started_us) as f64 / 1e6;
        let mut latency = LatencyRecorder::new();
        for call in calls.iter().filter(|call| call.succeeded) {
            if let Some(answered_us) = call.answered_us {
                latency.record_between(call.requested_us, answered_us);
            }
        }
        StormOutcome {
            calls,
            latency,
            elapsed_s,
        }
    }

    async fn call(&self, batch: Batch) -> RemovalCall {
        let grantee = &self.grantees[batch.grantee].account.id;
        let requested_us = {
            let mut ledger = lock(self.ledger);
            let requested_us = now_us();
            for asset in &batch.assets {
                ledger.removal_requested(batch.grantee, asset, requested_us);
            }
            requested_us
        };
        let (succeeded, status, answered) = match &batch.grant_id {
            Some(grant_id) => self.remove_one(grant_id).await,
            None => self.remove_bulk(grantee, &batch.assets).await,
        };
        let answered_us = now_us();
        {
            let mut ledger = lock(self.ledger);
            for asset in &batch.assets {
                if succeeded {
                    ledger.removal_answered(batch.grantee, asset, answered_us);
                } else {
                    ledger.removal_failed(batch.grantee, asset);
                }
            }
        }
        if succeeded {
            self.removed
                .fetch_add(batch.assets.len() as u64, Ordering::Relaxed);
        }
        RemovalCall {
            grantee: grantee.clone(),
            grant_id: batch.grant_id,
            grants: batch.assets.len(),
            requested_us,
            answered_us: answered.then_some(answered_us),
            succeeded,
            status,
        }
    }

    /// Removes one grant by id: (succeeded, HTTP status, answered at all).
    async fn remove_one(&self, grant_id: &GrantId) -> (bool, Option<u16>, bool) {
        match self.owner_admin.delete_grant(grant_id).await {
            Ok(status) => {
                if status != 204 {
                    self.errors.push(format!(
                        "removing grant {grant_id} answered {status}, not 204"
                    ));
                }
                (status == 204, Some(status), true)
            }
            Err(error) => {
                self.errors
                    .push(format!("removing grant {grant_id}: {error}"));
                (false, error.status(), error.status().is_some())
            }
        }
    }

    /// Removes `assets`' grants to `grantee` in one bulk call; it succeeds only when the
    /// answer lists each asset once: (succeeded, HTTP status, answered at all).
    async fn remove_bulk(
        &self,
        grantee: &AccountId,
        assets: &[AssetId],
    ) -> (bool, Option<u16>, bool) {
        let removal = GrantRemoval {
            account_id: grantee.clone(),
            asset_ids: assets.to_vec(),
        };
        match self.owner_admin.remove_visibility(&removal, false).await {
            Ok(answer) => {
                let all_listed = !answer.dry_run
                    && answer.items.len() == assets.len()
                    && assets.iter().all(|asset| {
                        answer
                            .items
                            .iter()
                            .any(|grant| &grant.asset_id == asset && &grant.account_id == grantee)
                    });
                if !all_listed {
                    self.errors.push(format!(
                        "bulk removal of {} grants of {grantee} answered {} items \
                         (dry_run {}), not each asset once",
                        assets.len(),
                        answer.items.len(),
                        answer.dry_run
                    ));
                }
                (all_listed, None, true)
            }
            Err(error) => {
                self.errors.push(format!(
                    "bulk removal of {} grants of {grantee}: {error}",
                    assets.len()
                ));
                (false, error.status(), error.status().is_some())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn plan() -> Vec<PlannedRemoval> {
        [(1, "a0"), (0, "a0"), (1, "a1"), (0, "a1"), (2, "a0")]
            .into_iter()
            .enumerate()
            .map(|(index, (grantee, asset))| PlannedRemoval {
                grantee,
                asset_id: AssetId::new(asset),
                grant_id: GrantId::new(format!("g{index}")),
                pause: Duration::ZERO,
            })
            .collect()
    }

    #[test]
    fn individual_mode_is_one_call_per_grant_in_plan_order() {
        let calls = batches(plan(), RevokeMode::Individual);
        assert_eq!(calls.len(), 5);
        assert!(calls.iter().all(|call| call.assets.len() == 1));
        assert_eq!(calls[0].grant_id, Some(GrantId::new("g0")));
        assert_eq!(calls[4].grantee, 2);
    }

    #[test]
    fn bulk_mode_is_one_call_per_grantee_with_all_its_assets() {
        let calls = batches(plan(), RevokeMode::Bulk);
        let shape: Vec<(usize, usize)> = calls
            .iter()
            .map(|call| (call.grantee, call.assets.len()))
            .collect();
        assert_eq!(shape, vec![(1, 2), (0, 2), (2, 1)]);
        assert!(calls.iter().all(|call| call.grant_id.is_none()));
        assert_eq!(calls.iter().map(|call| call.assets.len()).sum::<usize>(), 5);
    }
}
