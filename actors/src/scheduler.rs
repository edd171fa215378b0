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

use storage::{OpError, Store};
use tokio::sync::Notify;

use crate::directory::Directory;
use crate::writer::WriterHandle;
use crate::Context as Shared;

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

/// Runs until the actix system stops.
pub fn spawn(
    store: Store,
    shared: Shared,
    directory: Arc<Directory>,
    max_nap: Duration,
) -> SchedulerHandle {
    let handle = SchedulerHandle::default();
    let wake = handle.wake.clone();
    actix::spawn(async move {
        loop {
            if let Err(err) = tick(&store, &shared.writer, &shared, &directory).await {
                tracing::error!(%err, "scheduler tick failed; retrying");
            }
            let now = shared.clock.now();
            let next = next_deadline(&store).ok().flatten();
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
    handle
}

/// The earliest pending deadline of grants and support access.
fn next_deadline(store: &Store) -> Result<Option<storage::time::Timestamp>, storage::StoreError> {
    let rtx = store.begin_read()?;
    let grants = storage::sharing::next_deadline(&rtx)?;
    let support = storage::support::next_deadline(&rtx)?;
    let keys = storage::keys::next_deadline(&rtx)?;
    Ok(grants.into_iter().chain(support).chain(keys).min())
}

async fn tick(
    store: &Store,
    writer: &WriterHandle,
    shared: &Shared,
    directory: &Arc<Directory>,
) -> Result<(), OpError> {
    let now = shared.clock.now();
    if next_deadline(store)?.is_none_or(|at| at > now) {
        return Ok(());
    }
    let (grants, support, keys) = writer
        .execute(move |tx| {
            let grants = storage::sharing::apply_due(tx, now)?;
            let support = storage::support::apply_due(tx, now)?;
            let keys = storage::keys::apply_due(tx, now)?;
            Ok((grants, support, keys))
        })
        .await?;
    if !keys.is_empty() {
        // Expired keys drop off the units; nobody waits for the acknowledgements here.
        directory.push_keys(&keys, Duration::ZERO).await?;
    }
    if !support.is_empty() {
        tracing::info!(ended = support.len(), "scheduler expired support access");
    }
    if !grants.is_empty() {
        tracing::info!(grants = grants.len(), "scheduler applied grant deadlines");
        directory.rebind_grants(&grants).await?;
    }
    Ok(())
}
