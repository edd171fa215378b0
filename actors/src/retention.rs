//! The retention task: prunes and seals telemetry (`storage::telemetry::seal`) at start and
//! then every [`Schedule::prune_every`], compacts
//! the database file every [`Schedule::compact_every`], and keeps `fleetgate_store_bytes`
//! current.
//!
//! Its turns come from the shared `Clock` (tests move a manual clock instead of waiting);
//! between turns it naps for [`Schedule::nap`] of real time, which bounds how late a turn
//! that fell due is noticed.

use std::sync::Arc;
use std::time::Duration;

use storage::time::Timestamp;
use storage::Store;

use crate::metrics::Metrics;
use crate::usecases::retention::PruneLimits;
use crate::usecases::UseCases;

/// When the task works.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Clock time between two prunes.
    pub prune_every: Duration,
    /// Clock time between two compactions; `None` never compacts.
    pub compact_every: Option<Duration>,
    /// Real time between two looks at the clock.
    pub nap: Duration,
    pub limits: PruneLimits,
}

/// Runs until the actix system stops.
pub fn spawn(store: Store, usecases: UseCases, metrics: Arc<Metrics>, schedule: Schedule) {
    actix::spawn(async move {
        let start = usecases.clock.now();
        let mut next_prune = start;
        let mut next_compact = schedule.compact_every.map(|every| later(start, every));
        loop {
            let now = usecases.clock.now();
            if now >= next_prune {
                prune(&store, &usecases, &metrics, now, schedule.limits).await;
                seal(&usecases, &metrics, now, schedule.limits).await;
                next_prune = later(now, schedule.prune_every);
            }
            if let (Some(at), Some(every)) = (next_compact, schedule.compact_every) {
                if now >= at {
                    // A refused compaction (a reader held a transaction) is tried again at
                    // the next prune's turn rather than a whole interval later.
                    let retry = match compact(&store, &usecases, &metrics).await {
                        true => every,
                        false => every.min(schedule.prune_every),
                    };
                    next_compact = Some(later(now, retry));
                }
            }
            if let Ok(bytes) = store.file_bytes() {
                metrics
                    .store_bytes
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            tokio::time::sleep(schedule.nap).await;
        }
    });
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    Timestamp(
        now.0
            .saturating_add(u64::try_from(by.as_millis()).unwrap_or(u64::MAX)),
    )
}

async fn prune(
    store: &Store,
    usecases: &UseCases,
    metrics: &Metrics,
    now: Timestamp,
    limits: PruneLimits,
) {
    match usecases.prune(store, now, limits, metrics).await {
        Ok(pruned) if pruned != Default::default() => tracing::info!(
            telemetry = pruned.telemetry,
            access_events = pruned.access_events,
            audit = pruned.audit,
            "retention deleted expired rows"
        ),
        Ok(_) => {}
        // Retried at the next turn; what a failed batch did not delete is still due then.
        Err(err) => tracing::warn!(%err, "retention prune failed; retrying at its next turn"),
    }
}

async fn seal(usecases: &UseCases, metrics: &Metrics, now: Timestamp, limits: PruneLimits) {
    match usecases.seal(now, limits, metrics).await {
        Ok(0) => {}
        Ok(readings) => tracing::info!(readings, "sealed telemetry into chunks"),
        // What a failed batch did not seal is still due at the next turn.
        Err(err) => tracing::warn!(%err, "sealing telemetry failed; retrying at its next turn"),
    }
}

/// Whether the compaction ran.
async fn compact(store: &Store, usecases: &UseCases, metrics: &Metrics) -> bool {
    match usecases.compact(store).await {
        Ok(compacted) => {
            metrics.store_compactions.inc();
            tracing::info!(compacted, "compacted the database file");
            true
        }
        Err(err) => {
            tracing::warn!(%err, "compaction refused; retrying later");
            false
        }
    }
}
