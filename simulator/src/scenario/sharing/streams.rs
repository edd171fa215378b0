//! The live side of the sharing scenarios: an account that must see nothing, live streams
//! read into any accounting through one callback, waiting for the first deliveries, and the
//! "this account gets 404 for these assets" check.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::setup::Grantee;
use crate::api::{AccountId, ApiClient, ApiError, AssetId, HistoryQuery, Point, SseStream};
use crate::scenario::fleet::create_managed_account;
use crate::scenario::{ErrorLog, ScenarioError};
use crate::telemetry::{now_us, whole_number, SENT_US_SENSOR};

/// How often a waiting run looks at its counters again.
pub(crate) const POLL: Duration = Duration::from_millis(20);
/// Most API calls or streams any of these runs keeps in flight at once.
pub(crate) const MAX_PARALLELISM: usize = 1024;

/// Creates a sub-account of `owner` that is granted nothing, with its admin: it sits in the
/// same organization as the grantees, so a point that reaches it shows a fan-out that
/// ignored the grants rather than an account far away.
pub(crate) async fn create_outsider(
    platform_admin: &ApiClient,
    owner: &AccountId,
    run_id: &str,
) -> Result<Grantee, ScenarioError> {
    let managed = create_managed_account(
        platform_admin,
        &format!("sim-{run_id}-outsider"),
        Some(owner),
        "sim-outsider-admin",
    )
    .await?;
    Ok(Grantee {
        account: managed.account,
        client: managed.client,
    })
}

/// Opens `GET /v1/stream` for every account, `parallelism` at a time, in the accounts'
/// order. A stream that cannot open ends the run: its account's deliveries could not be
/// judged.
pub(crate) async fn open_streams(
    accounts: &[&Grantee],
    parallelism: usize,
) -> Result<Vec<SseStream>, ScenarioError> {
    stream::iter(accounts)
        .map(|account| async move {
            account
                .client
                .stream("/v1/stream")
                .await
                .map_err(ScenarioError::api(format!(
                    "open the live stream of account {}",
                    account.account.id
                )))
        })
        .buffered(parallelism.max(1))
        .try_collect()
        .await
}

/// The tasks reading the accounts' live streams and the switch that stops them all.
pub(crate) struct StreamReaders {
    /// Flipping it ends every reader; a run that fails after opening its streams flips it
    /// before it returns so no reader outlives the run.
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) readers: Vec<tokio::task::JoinHandle<()>>,
}

impl StreamReaders {
    /// Stops every reader and waits for them; a reader that failed is an error of the run.
    pub(crate) async fn close(&mut self, errors: &ErrorLog) {
        self.stop.send_replace(true);
        for reader in self.readers.drain(..) {
            if let Err(error) = reader.await {
                errors.push(format!("a stream reader failed: {error}"));
            }
        }
    }
}

/// One point as a stream reader saw it: the point, its `sensors.sent_us` when readable, and
/// the reader's clock when it arrived (read before any lock the callback takes, so the
/// cut-off ledger's ordering argument holds).
pub(crate) struct Arrival<'a> {
    pub(crate) point: &'a Point,
    pub(crate) sent_us: Option<u64>,
    pub(crate) received_us: u64,
}

/// Reads one account's live stream until `stop` flips, handing every `point` event to
/// `on_point`. The stream ending or breaking early is an error of the run; an event that
/// cannot be read is reported once per stream and skipped.
pub(crate) async fn watch_stream(
    account_id: AccountId,
    mut stream: SseStream,
    mut stop: watch::Receiver<bool>,
    errors: Arc<ErrorLog>,
    mut on_point: impl FnMut(Arrival<'_>),
) {
    let mut unreadable = 0u64;
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let decoded = match event {
            None => {
                errors.push(format!(
                    "the live stream of account {account_id} ended before the run did"
                ));
                return;
            }
            Some(Ok(event)) => match event.point() {
                None => continue,
                Some(point) => point.map_err(|error| error.to_string()),
            },
            Some(Err(error @ ApiError::Decode { .. })) => Err(error.to_string()),
            Some(Err(error)) => {
                errors.push(format!(
                    "the live stream of account {account_id} broke: {error}"
                ));
                return;
            }
        };
        match decoded {
            Ok(point) => {
                let received_us = now_us();
                let sent_us = point.sensor(SENT_US_SENSOR).and_then(whole_number);
                on_point(Arrival {
                    point: &point,
                    sent_us,
                    received_us,
                });
            }
            Err(problem) => {
                unreadable += 1;
                if unreadable == 1 {
                    errors.push(format!(
                        "account {account_id}: a live event could not be read: {problem}"
                    ));
                }
            }
        }
    }
}

/// Polls `remaining` until it answers zero or `timeout` passes; returns the last answer, so
/// the caller can name what never arrived.
pub(crate) async fn wait_until_zero(timeout: Duration, mut remaining: impl FnMut() -> u64) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let left = remaining();
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How an account's history requests for assets it must not see were answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RefusalTally {
    /// Answered 404, as the contract says for what the caller may not see.
    pub(crate) refused: u64,
    /// Answered with history (or any other status): a leak, or a broken answer.
    pub(crate) not_refused: u64,
}

/// `GET /v1/assets/{x}/telemetry` for each asset as `client`; each must answer 404. Other
/// answers are counted and the first few named in `errors`.
pub(crate) async fn expect_history_refused(
    who: &AccountId,
    client: &ApiClient,
    assets: &[AssetId],
    parallelism: usize,
    errors: &ErrorLog,
) -> RefusalTally {
    let query = HistoryQuery {
        limit: Some(1),
        ..HistoryQuery::default()
    };
    let query = &query;
    let outcomes: Vec<bool> = stream::iter(assets)
        .map(|asset| async move {
            match client.telemetry_page(asset, query).await {
                Err(error) if error.status() == Some(404) => true,
                Err(error) => {
                    errors.push(format!(
                        "account {who} reading the history of {asset}: {error}, not 404"
                    ));
                    false
                }
                Ok(page) => {
                    errors.push(format!(
                        "account {who} may read the history of {asset} ({} points on the \
                         first page) although it holds no grant",
                        page.items.len()
                    ));
                    false
                }
            }
        })
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    let refused = outcomes.iter().filter(|refused| **refused).count() as u64;
    RefusalTally {
        refused,
        not_refused: outcomes.len() as u64 - refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_stops_at_zero_or_at_the_timeout() {
        let mut left = 3u64;
        let answer = wait_until_zero(Duration::from_secs(5), || {
            left = left.saturating_sub(1);
            left
        })
        .await;
        assert_eq!(answer, 0);
        let stuck = wait_until_zero(Duration::from_millis(30), || 7).await;
        assert_eq!(stuck, 7);
    }
}
