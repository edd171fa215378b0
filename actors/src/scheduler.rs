//! The scheduler: applies grant starts and ends at their instants, through the same store
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
            let next = store
                .begin_read()
                .ok()
                .and_then(|rtx| storage::sharing::next_deadline(&rtx).ok().flatten());
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

async fn tick(
    store: &Store,
    writer: &WriterHandle,
    shared: &Shared,
    directory: &Directory,
) -> Result<(), OpError> {
    let now = shared.clock.now();
    let due = {
        let rtx = store.begin_read()?;
        storage::sharing::next_deadline(&rtx)?.is_some_and(|at| at <= now)
    };
    if !due {
        return Ok(());
    }
    let changed = writer
        .execute(move |tx| Ok(storage::sharing::apply_due(tx, now)?))
        .await?;
    if !changed.is_empty() {
        tracing::info!(grants = changed.len(), "scheduler applied grant deadlines");
        directory.rebind_grants(&changed).await?;
    }
    Ok(())
}
