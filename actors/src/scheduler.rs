//! The scheduler: applies grant starts and ends, and support access expiry, at their
//! instants, through the same store
//! operation and the same re-binding an HTTP removal uses, so an expiry cuts a grantee off
//! exactly like `DELETE` does. At start it first applies everything that fell due while
//! the gateway was down.
//!
//! It sleeps until the next deadline (read from the store), at most `max_nap`, and wakes
//! early when told a deadline may have moved (every grant mutation tells it). Time comes
//! from the shared `Clock`, so tests move time instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use storage::Store;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::usecases::UseCases;

/// Lets others wake the scheduler; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SchedulerHandle {
    /// A notification means "a deadline may be earlier than the one you sleep towards".
    wake: Arc<Notify>,
}

impl SchedulerHandle {
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Runs until the actix system stops. Applies deadlines through
/// [`UseCases::apply_due`] and sleeps on the use cases' own [`SchedulerHandle`], which
/// every grant, key and support mutation wakes. Counts its runs and what they applied in
/// `metrics`.
pub fn spawn(store: Store, usecases: UseCases, metrics: Arc<Metrics>, max_nap: Duration) {
    let wake = usecases.scheduler.wake.clone();
    actix::spawn(async move {
        loop {
            if let Err(err) = tick(&store, &usecases, &metrics).await {
                metrics.scheduler_failures.inc();
                tracing::error!(%err, "scheduler tick failed; retrying");
            }
            let now = usecases.clock.now();
            let next = next_deadline(&store).ok().flatten();
            let next_s = next.map_or(0, |at| i64::try_from(at.0 / 1000).unwrap_or(i64::MAX));
            metrics.scheduler_next_deadline.set(next_s);
            let nap = match next {
                Some(at) => Duration::from_millis(at.0.saturating_sub(now.0)).min(max_nap),
                None => max_nap,
            };
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                _ = wake.notified() => {}
            }
        }
    });
}

/// The earliest pending deadline of grants, support access and keys.
fn next_deadline(store: &Store) -> Result<Option<storage::time::Timestamp>, storage::StoreError> {
    let rtx = store.begin_read()?;
    let grants = storage::sharing::next_deadline(&rtx)?;
    let support = storage::support::next_deadline(&rtx)?;
    let keys = storage::keys::next_deadline(&rtx)?;
    Ok(grants.into_iter().chain(support).chain(keys).min())
}

async fn tick(
    store: &Store,
    usecases: &UseCases,
    metrics: &Metrics,
) -> Result<(), storage::OpError> {
    let now = usecases.clock.now();
    if next_deadline(store)?.is_none_or(|at| at > now) {
        return Ok(());
    }
    let applied = usecases.apply_due().await?;
    metrics.scheduler_runs.inc();
    metrics.scheduler_fired("grant", applied.grants.len());
    metrics.scheduler_fired("support", applied.support.len());
    metrics.scheduler_fired("key_set", applied.keys);
    if !applied.support.is_empty() {
        tracing::info!(
            ended = applied.support.len(),
            "scheduler expired support access"
        );
    }
    if !applied.grants.is_empty() {
        tracing::info!(
            grants = applied.grants.len(),
            "scheduler applied grant deadlines"
        );
    }
    Ok(())
}
