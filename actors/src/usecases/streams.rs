//! Live streams that resume: before a stream that reconnected with `Last-Event-ID` goes
//! live, it is replayed what arrived after that id and its caller may see now (DESIGN 5.4).
//! The stream subscribes first; this then waits for the store writer to commit what was
//! accepted (see `crate::arrival`: anything an account actor handled before the
//! subscription is queued at the writer already) and reads the replay.

use std::time::Duration;

use storage::arrivals::ArrivalId;
use storage::model::Principal;
use storage::resume::{Resume, Scope};
use storage::{AccountId, AssetId, OpError, Store, StoreError};

use super::UseCases;
use crate::arrival::Arrivals;

/// How long a resume waits for the store writer to commit what is queued; past it (the
/// store is recovering from a disk failure) it replays what is committed.
pub const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Where a live stream resumes from.
#[derive(Debug, Clone)]
pub struct ResumeFrom {
    pub who: Principal,
    /// The account whose stream it is.
    pub account: AccountId,
    /// For an asset's stream, the asset id as the caller named it.
    pub asset: Option<AssetId>,
    /// The last event id the client saw.
    pub last: ArrivalId,
}

impl UseCases {
    /// The replay for a stream resuming `from`, read after everything accepted so far is
    /// committed (at most [`FLUSH_LIMIT`] of waiting). Call it after subscribing.
    ///
    /// Errors: what the visibility rule refuses (404), the store's failure.
    pub async fn resume_stream(
        &self,
        store: &Store,
        arrivals: &Arrivals,
        from: ResumeFrom,
    ) -> Result<Resume, OpError> {
        if tokio::time::timeout(FLUSH_LIMIT, self.writer.flush())
            .await
            .is_err()
        {
            tracing::warn!("resume: the store writer did not commit within 5 s");
        }
        let (store, issued, now) = (store.clone(), arrivals.issued(), self.now());
        tokio::task::spawn_blocking(move || {
            let scope = from.asset.as_ref().map_or(Scope::Account, Scope::Asset);
            let rtx = store.begin_read()?;
            let asked = (from.last, issued);
            storage::resume::resume(&rtx, &from.who, &from.account, scope, asked, now)
        })
        .await
        .unwrap_or(Err(OpError::Store(StoreError::Interrupted)))
    }
}
