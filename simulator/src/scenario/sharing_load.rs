//! What the two sharing load scenarios (`fanout` and `revoke-storm`) have in common and the
//! visibility scenario does not offer: an account that must see nothing, live streams read
//! into any accounting through one callback, waiting for the first deliveries, and the "this
//! account gets 404 for these assets" check. Both scenarios reuse the visibility scenario's
//! grantee setup (`visibility::setup`) and cut-off ledger (`visibility::cutoff`) as they are.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fleet::create_managed_account;
use super::visibility::setup::Grantee;
use super::{ErrorLog, ScenarioError};
use crate::api::{AccountId, ApiClient, ApiError, AssetId, HistoryQuery, Point, SseStream};
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

/// Refuses a duration outside `(0, max]` (or `[0, max]` when zero is meaningful), naming
/// the setting.
pub(crate) fn check_duration(
    name: &str,
    value: Duration,
    max: Duration,
    zero_ok: bool,
) -> Result<(), ScenarioError> {
    if (value.is_zero() && !zero_ok) || value > max {
        let lower = if zero_ok { "at least 0" } else { "more than 0" };
        Err(ScenarioError::InvalidConfig(format!(
            "{name} must be {lower} and at most {max:?}, got {value:?}"
        )))
    } else {
        Ok(())
    }
}

/// Refuses a count outside `1..=max`, naming the setting.
pub(crate) fn check_count(name: &str, value: usize, max: usize) -> Result<(), ScenarioError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(ScenarioError::InvalidConfig(format!(
            "{name} must be 1..={max}, got {value}"
        )))
    }
}

/// Refuses a rate that is not a finite number in `(0, max]`, naming the setting.
pub(crate) fn check_rate(value: f64, max: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(())
    } else {
        Err(ScenarioError::InvalidConfig(format!(
            "rate must be more than 0 and at most {max} points/s per unit, got {value}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_setting() {
        let message = |result: Result<(), ScenarioError>| result.expect_err("refused").to_string();
        assert!(message(check_count("grantees", 0, 5)).contains("grantees"));
        assert!(message(check_count("grantees", 6, 5)).contains("1..=5"));
        assert!(check_count("grantees", 5, 5).is_ok());
        assert!(message(check_rate(f64::NAN, 10.0)).contains("rate"));
        assert!(message(check_rate(0.0, 10.0)).contains("rate"));
        assert!(check_rate(10.0, 10.0).is_ok());
        let max = Duration::from_secs(5);
        assert!(message(check_duration("settle", Duration::ZERO, max, false)).contains("settle"));
        assert!(check_duration("pause", Duration::ZERO, max, true).is_ok());
        assert!(message(check_duration("pause", max * 2, max, true)).contains("pause"));
    }

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
