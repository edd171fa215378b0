//! The measuring half of the ingest scenario: live delivery over SSE, time until a point
//! is readable from history, and the final "stored exactly once" check.
//!
//! # How publish→stored latency is measured
//!
//! One probe task runs while the units publish. It picks units round-robin and asks each,
//! through a `SampleSlot`, to report its *next* point (sequence number, `ts`, send time) the
//! moment that point is handed to MQTT. The probe then polls
//! `GET /v1/assets/{x}/telemetry?from=<ts - 1 ms>&limit=10` until a returned point carries
//! that sequence number, and records "send time → answer containing it". So a sample is an
//! upper bound that includes one history round trip, with a resolution of one poll (a short
//! pause plus a request). The probe runs one sample at a time, so it adds at most one HTTP
//! request in flight to the load, and the number of samples depends on how fast points
//! become readable. `from` is assumed to be inclusive (points at exactly `from` are
//! returned); starting one millisecond early makes the probe work even if it is not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::publish::{fill_slot, take_slot, SampleSlot, SentPoint};
use super::ErrorLog;
use crate::api::{ApiClient, AssetId, HistoryQuery, SseStream};
use crate::report::Check;
use crate::stats::{LatencyRecorder, SeqTally};
use crate::telemetry::{now_us, rfc3339_from_ms, whole_number, SENT_US_SENSOR};

/// Pause between two history polls of the probe.
const PROBE_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Pause before re-reading the history of an asset that still misses points.
const VERIFY_RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// The largest page the API serves.
const HISTORY_PAGE_LIMIT: u32 = 1000;

/// Reads the account's live stream until `stop` flips, returning each point's latency
/// from its `sensors.sent_us`, and counting points in `received` (read live by the caller
/// to know when delivery has caught up).
pub(crate) async fn consume_sse(
    mut stream: SseStream,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    errors: Arc<ErrorLog>,
) -> LatencyRecorder {
    let mut latency = LatencyRecorder::new();
    let mut decode_errors = 0u64;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(event)) if event.event == "point" => {
                    let arrived_us = now_us();
                    received.fetch_add(1, Ordering::Relaxed);
                    let sent_us = event.data["sensors"][SENT_US_SENSOR]
                        .as_f64()
                        .and_then(whole_number);
                    if let Some(sent_us) = sent_us {
                        latency.record_between(sent_us, arrived_us);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) if error.status().is_none() && !is_decode(&error) => {
                    errors.push(format!("SSE stream broke: {error}"));
                    break;
                }
                Some(Err(error)) => {
                    decode_errors += 1;
                    if decode_errors == 1 {
                        errors.push(format!("SSE event could not be read: {error}"));
                    }
                }
                None => {
                    errors.push("SSE stream ended before the run did".to_owned());
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    latency
}

fn is_decode(error: &crate::api::ApiError) -> bool {
    matches!(error, crate::api::ApiError::Decode { .. })
}

/// Waits until `received` reaches `target` or `deadline` passes; true if it got there.
pub(crate) async fn wait_for_count(received: &AtomicU64, target: u64, deadline: Instant) -> bool {
    loop {
        if received.load(Ordering::Relaxed) >= target {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One unit the probe can sample: its slot and the asset its points land on.
pub(crate) struct ProbeTarget {
    pub(crate) slot: SampleSlot,
    pub(crate) asset_id: AssetId,
}

/// Samples publish→stored latency while `sending_done` is false (see the module doc).
pub(crate) async fn probe_storage(
    client: ApiClient,
    targets: Vec<ProbeTarget>,
    mut sending_done: watch::Receiver<bool>,
    sample_wait: Duration,
    store_timeout: Duration,
    errors: Arc<ErrorLog>,
) -> LatencyRecorder {
    let mut recorder = LatencyRecorder::new();
    if targets.is_empty() {
        return recorder;
    }
    for target in targets.iter().cycle() {
        if *sending_done.borrow() {
            break;
        }
        let (sender, receiver) = oneshot::channel();
        fill_slot(&target.slot, sender);
        let sample = tokio::select! {
            sample = tokio::time::timeout(sample_wait, receiver) => match sample {
                Ok(Ok(sample)) => sample,
                // The unit stopped or is behind schedule: try the next one.
                _ => {
                    take_slot(&target.slot);
                    continue;
                }
            },
            _ = sending_done.changed() => {
                take_slot(&target.slot);
                break;
            }
        };
        match wait_until_stored(&client, &target.asset_id, sample, store_timeout).await {
            Ok(seen_us) => recorder.record_between(sample.sent_us, seen_us),
            Err(problem) => errors.push(problem),
        }
    }
    recorder
}

async fn wait_until_stored(
    client: &ApiClient,
    asset_id: &AssetId,
    sample: SentPoint,
    timeout: Duration,
) -> Result<u64, String> {
    let query = HistoryQuery {
        from: rfc3339_from_ms(sample.ts_ms.saturating_sub(1)),
        limit: Some(10),
        ..HistoryQuery::default()
    };
    let deadline = Instant::now() + timeout;
    loop {
        match client.telemetry_page(asset_id, &query).await {
            Ok(page)
                if page
                    .items
                    .iter()
                    .any(|point| point.seq() == Some(sample.seq)) =>
            {
                return Ok(now_us());
            }
            Ok(_) => {}
            Err(error) => {
                return Err(format!(
                    "storage probe: reading history of {asset_id} failed: {error}"
                ))
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "storage probe: point {} of {asset_id} not readable {timeout:?} after it was sent",
                sample.seq
            ));
        }
        tokio::time::sleep(PROBE_POLL_INTERVAL).await;
    }
}

/// The per-asset input of the final check.
pub(crate) struct VerifyTarget {
    pub(crate) asset_id: AssetId,
    pub(crate) acknowledged: Vec<bool>,
}

/// Reads every asset's whole history and compares it with what was acknowledged. An asset
/// still missing points is read again until `deadline`, because points the broker
/// acknowledged may sit in the gateway's commit window for a moment.
pub(crate) async fn verify_storage(
    client: &ApiClient,
    targets: Vec<VerifyTarget>,
    parallelism: usize,
    deadline: Instant,
    errors: &ErrorLog,
) -> SeqTally {
    let tallies: Vec<SeqTally> = stream::iter(targets)
        .map(|target| verify_asset(client, target, deadline, errors))
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    let mut total = SeqTally::default();
    for tally in tallies {
        total.acknowledged += tally.acknowledged;
        total.stored_rows += tally.stored_rows;
        total.missing += tally.missing;
        total.duplicates += tally.duplicates;
        total.unacknowledged_stored += tally.unacknowledged_stored;
    }
    total
}

async fn verify_asset(
    client: &ApiClient,
    target: VerifyTarget,
    deadline: Instant,
    errors: &ErrorLog,
) -> SeqTally {
    let query = HistoryQuery {
        limit: Some(HISTORY_PAGE_LIMIT),
        ..HistoryQuery::default()
    };
    loop {
        let points = match client.telemetry_all(&target.asset_id, &query).await {
            Ok(points) => points,
            Err(error) => {
                errors.push(format!(
                    "history of {} unreadable: {error}",
                    target.asset_id
                ));
                // Nothing could be confirmed, so everything acknowledged counts as missing.
                return SeqTally::compare(&target.acknowledged, []);
            }
        };
        let untracked = points.iter().filter(|point| point.seq().is_none()).count();
        let tally = SeqTally::compare(
            &target.acknowledged,
            points.iter().filter_map(|point| point.seq()),
        );
        if tally.missing == 0 || Instant::now() >= deadline {
            if untracked > 0 {
                errors.push(format!(
                    "{}: {untracked} stored points carry no sensors.seq",
                    target.asset_id
                ));
            }
            if tally.missing > 0 {
                errors.push(format!(
                    "{}: {} acknowledged points missing from history (e.g. seq {:?})",
                    target.asset_id, tally.missing, tally.missing_examples
                ));
            }
            if tally.duplicates > 0 {
                errors.push(format!(
                    "{}: {} duplicate points in history",
                    target.asset_id, tally.duplicates
                ));
            }
            return tally;
        }
        tokio::time::sleep(VERIFY_RETRY_INTERVAL).await;
    }
}
/// The checks of every run that stores and streams what its units sent: every point
/// acknowledged and stored exactly once, the live stream delivered them all, and no error
/// on the way.
pub(crate) fn delivery_checks(
    points_sent: u64,
    points_acked: u64,
    missing: u64,
    duplicates: u64,
    sse_received: u64,
    errors: usize,
) -> Vec<Check> {
    vec![
        Check::holds(
            "stored exactly once",
            missing == 0 && duplicates == 0 && points_acked == points_sent,
            format!(
                "{points_sent} sent, {points_acked} acknowledged, {missing} missing, \
                 {duplicates} duplicates"
            ),
        ),
        Check::holds(
            "delivered live",
            sse_received >= points_acked,
            format!("{sse_received} of {points_acked} acknowledged points on the live stream"),
        ),
        Check::holds("no errors", errors == 0, format!("{errors} errors")),
    ]
}
