//! When each principal's token last authenticated a request. Every authenticated request
//! notes it in memory (a map lookup, no write); a flusher stores the instants every
//! [`FLUSH_EVERY`] and once more at shutdown, so a crash loses at most one interval. The
//! users list shows the newer of the stored and the noted instant.
//!
//! The map holds at most one entry per principal that authenticated since the last flush
//! (only valid tokens reach it), and a flush removes what it stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::usecases::UseCases;
use storage::time::Timestamp;
use storage::PrincipalId;

/// How often noted instants are stored.
pub const FLUSH_EVERY: Duration = Duration::from_secs(30);

/// The in-memory side: principal -> the last instant its token authenticated a request.
#[derive(Debug, Default)]
pub struct LastUsed {
    noted: Mutex<HashMap<PrincipalId, Timestamp>>,
}

impl LastUsed {
    /// Notes that `id`'s token authenticated a request at `at`.
    pub fn note(&self, id: &PrincipalId, at: Timestamp) {
        if let Ok(mut noted) = self.noted.lock() {
            let entry = noted.entry(id.clone()).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    /// The instant noted since the last flush, if any.
    pub fn noted(&self, id: &PrincipalId) -> Option<Timestamp> {
        self.noted.lock().ok()?.get(id).copied()
    }

    /// Stores what is noted, then forgets the entries that did not move meanwhile (a
    /// request during the commit keeps its newer instant for the next flush).
    pub async fn flush(&self, usecases: &UseCases) -> Result<(), storage::OpError> {
        let snapshot: Vec<(PrincipalId, Timestamp)> = match self.noted.lock() {
            Ok(noted) => noted.iter().map(|(id, at)| (id.clone(), *at)).collect(),
            Err(_) => return Ok(()),
        };
        if snapshot.is_empty() {
            return Ok(());
        }
        usecases.record_last_used(snapshot.clone()).await?;
        if let Ok(mut noted) = self.noted.lock() {
            for (id, at) in snapshot {
                if noted.get(&id) == Some(&at) {
                    noted.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Flushes every [`FLUSH_EVERY`] until the actix system stops.
    pub fn spawn_flusher(self: &Arc<Self>, usecases: UseCases) {
        let this = self.clone();
        actix::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                if let Err(err) = this.flush(&usecases).await {
                    tracing::warn!(%err, "storing last-used instants failed; retrying");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_keep_the_latest_instant_per_principal() {
        let tracker = LastUsed::default();
        let id = PrincipalId::parse("u1").expect("id");
        tracker.note(&id, Timestamp(20));
        tracker.note(&id, Timestamp(10));
        assert_eq!(tracker.noted(&id), Some(Timestamp(20)));
        assert_eq!(tracker.noted(&PrincipalId::parse("u2").expect("id")), None);
    }
}
