//! Retention: an account's own telemetry setting, the prune that deletes what is older
//! than its retention, the seal that moves quiet telemetry into compact chunks, and the
//! compaction that gives the freed space back to the disk.
//!
//! A prune is many small transactions, not one: each deletes at most
//! [`PruneLimits::batch_rows`] rows through the store writer, and the next is sent only
//! after the previous committed and a pause, so the writer's telemetry group commits run
//! in between and a unit's PUBACK never waits behind more than one batch.

use std::time::Duration;

use storage::model::Principal;
use storage::retention::{self, AccountRetention, Batch, Plan};
use storage::time::Timestamp;
use storage::{AccountId, OpError, Store};

use super::UseCases;
use crate::metrics::Metrics;

/// How a prune paces itself.
#[derive(Debug, Clone, Copy)]
pub struct PruneLimits {
    /// Most rows one transaction deletes.
    pub batch_rows: usize,
    /// Wait between two batches (real time), so live telemetry commits run between them.
    pub pause: Duration,
}

impl Default for PruneLimits {
    fn default() -> Self {
        PruneLimits {
            batch_rows: 5_000,
            pause: Duration::from_millis(20),
        }
    }
}

/// Rows one prune deleted, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub telemetry: usize,
    pub access_events: usize,
    pub audit: usize,
}

/// Which rows a batch deletes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Telemetry,
    AccessEvents,
    Audit,
}

impl Kind {
    /// The `kind` label of `fleetgate_retention_deleted_total`.
    fn label(self) -> &'static str {
        match self {
            Kind::Telemetry => "telemetry",
            Kind::AccessEvents => "access_events",
            Kind::Audit => "audit",
        }
    }
}

impl UseCases {
    /// Sets (`Some(days)`) or clears (`None`) `account`'s own telemetry retention; audited.
    /// Refused: not the account's admin or a platform admin, days not 1..=3650.
    pub async fn set_account_retention(
        &self,
        who: Principal,
        account: AccountId,
        days: Option<i64>,
    ) -> Result<AccountRetention, OpError> {
        let (now, default_days) = (self.now(), self.retention.telemetry_days);
        let set = self
            .commit(false, move |tx| {
                retention::set_account_retention(tx, &who, &account, days, default_days, now)
            })
            .await?;
        self.directory.horizon().set(&set.account_id, set.own_days);
        Ok(set)
    }

    /// Deletes everything older than its retention at `now`, in bounded batches through
    /// the store writer, counting each batch into `metrics` as it commits. The plan (who
    /// keeps how long) is read once from `store` at the start.
    pub async fn prune(
        &self,
        store: &Store,
        now: Timestamp,
        limits: PruneLimits,
        metrics: &Metrics,
    ) -> Result<Pruned, OpError> {
        let plan = retention::plan(&store.begin_read()?, self.retention, now)?;
        let plan = std::sync::Arc::new(plan);
        let pruned = Pruned {
            telemetry: self
                .prune_kind(&plan, Kind::Telemetry, limits, metrics)
                .await?,
            access_events: self
                .prune_kind(&plan, Kind::AccessEvents, limits, metrics)
                .await?,
            audit: self.prune_kind(&plan, Kind::Audit, limits, metrics).await?,
        };
        // Deleted assets whose history is now gone to the end are forgotten.
        self.writer
            .execute(move |tx| Ok(storage::retire::forget_pruned(tx, &plan)?))
            .await?;
        Ok(pruned)
    }

    /// One kind's batches until none is left; answers the rows deleted.
    async fn prune_kind(
        &self,
        plan: &std::sync::Arc<Plan>,
        kind: Kind,
        limits: PruneLimits,
        metrics: &Metrics,
    ) -> Result<usize, OpError> {
        let mut total = 0;
        let mut start = Some(0);
        while let Some(from) = start {
            let plan = plan.clone();
            let rows = limits.batch_rows;
            let batch = self
                .writer
                .execute(move |tx| Ok(prune_batch(tx, &plan, kind, from, rows)?))
                .await?;
            metrics.retention_deleted(kind.label(), batch.deleted);
            total += batch.deleted;
            start = batch.resume;
            if start.is_some() {
                tokio::time::sleep(limits.pause).await;
            }
        }
        Ok(total)
    }

    /// Seals every bucket of telemetry due at `now` into its compact chunk, in bounded
    /// batches through the store writer paced like a prune's, counting each into
    /// `metrics`; answers the readings sealed.
    pub async fn seal(
        &self,
        now: Timestamp,
        limits: PruneLimits,
        metrics: &Metrics,
    ) -> Result<usize, OpError> {
        let (mut total, mut start) = (0, Some((0, 0)));
        while let Some(from) = start {
            let rows = limits.batch_rows;
            let batch = self
                .writer
                .execute(move |tx| Ok(storage::telemetry::seal::seal(tx, now, from, rows)?))
                .await?;
            metrics.telemetry_sealed.inc_by(batch.readings as u64);
            total += batch.readings;
            start = batch.resume;
            if start.is_some() {
                tokio::time::sleep(limits.pause).await;
            }
        }
        Ok(total)
    }

    /// Compacts the database file on the store writer's thread (no transaction open;
    /// telemetry waits meanwhile). Answers whether anything was compacted; a refusal
    /// because a reader still holds a transaction is an error the caller retries later.
    pub async fn compact(&self, store: &Store) -> Result<bool, OpError> {
        let store = store.clone();
        self.writer.exclusive(move || Ok(store.compact()?)).await
    }
}

/// One batch of `kind` from `start`, in the writer's transaction.
fn prune_batch(
    tx: &storage::redb::WriteTransaction,
    plan: &Plan,
    kind: Kind,
    start: usize,
    rows: usize,
) -> Result<Batch, storage::StoreError> {
    match kind {
        Kind::Telemetry => retention::prune_telemetry(tx, &plan.telemetry, start, rows),
        Kind::AccessEvents => retention::prune_access_events(tx, &plan.access_events, start, rows),
        Kind::Audit => match plan.audit {
            Some(before) => retention::prune_audit(tx, before, rows),
            None => Ok(Batch {
                deleted: 0,
                resume: None,
            }),
        },
    }
}
