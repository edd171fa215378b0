//! The soak's live bookkeeping: a `Meter` every task of the run records into (units count
//! acknowledgements, the SSE follower deliveries and their latency, the admin loop its
//! calls), and the window sampler that cuts it into fixed windows, each with the gateway's
//! memory. The windows are what the drift checks judge and the page draws: totals alone
//! would hide a gateway that was fast for an hour and then slowed down.
//!
//! Only the current window's histograms and the run's totals are kept while the run goes;
//! a finished window keeps a handful of numbers, and the number of windows is capped, so a
//! 24-hour soak holds as little as a one-minute one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::admin::AdminKind;
use crate::api::SseStream;
use crate::scenario::timeline::read_rss_kib;
use crate::scenario::ErrorLog;
use crate::stats::{LatencyRecorder, Percentiles};
use crate::telemetry::{now_us, whole_number, SENT_US_SENSOR};

/// Bounds the series (and the report): a 24-hour soak with 10 s windows is 8,640.
pub const MAX_WINDOWS: usize = 10_000;

/// One window of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoakWindow {
    pub index: u32,
    /// Seconds from the first scheduled send to the end of this window.
    pub t_end_s: f64,
    /// Its length in seconds (the last one may be partial).
    pub span_s: f64,
    /// Points the broker acknowledged in this window.
    pub acked: u64,
    pub acked_per_s: f64,
    /// Points that arrived on the account's live stream in this window.
    pub delivered: u64,
    pub delivered_per_s: f64,
    /// Send → arrival on the live stream, of the points that arrived in this window.
    pub publish_to_sse: Percentiles,
    /// Admin calls answered in this window, all kinds together.
    pub admin_calls: u64,
    pub admin_failures: u64,
    pub admin: Percentiles,
    /// The gateway's resident set at the end of the window, KiB; `None` when not measured.
    pub gateway_rss_kib: Option<u64>,
}

/// Running totals of one kind of admin call.
#[derive(Debug, Clone, Default)]
pub(super) struct AdminTotals {
    pub(super) calls: u64,
    pub(super) failures: u64,
    pub(super) latency: LatencyRecorder,
}

#[derive(Debug, Default)]
struct MeterState {
    window_sse: LatencyRecorder,
    window_admin: LatencyRecorder,
    window_admin_calls: u64,
    window_admin_failures: u64,
    total_sse: LatencyRecorder,
    admin: [AdminTotals; AdminKind::ALL.len()],
}

/// What the run's tasks record into. The counters are atomics because the units bump them
/// on every acknowledgement; the histograms sit behind one lock that is held only to add a
/// value or to swap a window out.
#[derive(Debug, Default)]
pub(super) struct Meter {
    /// Acknowledged points, bumped by every unit task (`UnitJob::acked`).
    pub(super) acked: Arc<AtomicU64>,
    /// `point` events on the account's live stream; `wait_for_count` watches it at the end.
    pub(super) delivered: Arc<AtomicU64>,
    state: Mutex<MeterState>,
}

impl Meter {
    fn state(&self) -> MutexGuard<'_, MeterState> {
        // Plain counters and histograms stay consistent between statements: keep going if a
        // holder of the lock panicked.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn record_delivery(&self, sent_us: Option<u64>, arrived_us: u64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(sent_us) = sent_us {
            let mut state = self.state();
            state.window_sse.record_between(sent_us, arrived_us);
            state.total_sse.record_between(sent_us, arrived_us);
        }
    }

    /// One admin call: its round trip when it succeeded, `None` when it failed.
    pub(super) fn record_admin(&self, kind: AdminKind, micros: Option<u64>) {
        let mut guard = self.state();
        let state = &mut *guard;
        let totals = &mut state.admin[kind.index()];
        totals.calls += 1;
        match micros {
            Some(micros) => {
                let micros = i64::try_from(micros).unwrap_or(i64::MAX);
                totals.latency.record_us(micros);
                state.window_admin.record_us(micros);
            }
            None => {
                totals.failures += 1;
                state.window_admin_failures += 1;
            }
        }
        state.window_admin_calls += 1;
    }

    /// The current window's latencies and admin counts; starts the next window.
    fn take_window(&self) -> (Percentiles, Percentiles, u64, u64) {
        let mut state = self.state();
        let sse = std::mem::take(&mut state.window_sse).percentiles();
        let admin = std::mem::take(&mut state.window_admin).percentiles();
        let calls = std::mem::take(&mut state.window_admin_calls);
        let failures = std::mem::take(&mut state.window_admin_failures);
        (sse, admin, calls, failures)
    }

    /// The run's publish→SSE latency and each admin kind's totals, in `AdminKind::ALL`
    /// order.
    pub(super) fn totals(&self) -> (Percentiles, Vec<AdminTotals>) {
        let state = self.state();
        (state.total_sse.percentiles(), state.admin.to_vec())
    }
}

/// The windows of one run.
#[derive(Debug, Clone, Default)]
pub(super) struct WindowSeries {
    pub(super) windows: Vec<SoakWindow>,
    /// The run outlasted `MAX_WINDOWS`; later windows are not recorded.
    pub(super) truncated: bool,
    /// The gateway's resident set before the load, KiB.
    pub(super) baseline_rss_kib: Option<u64>,
    pub(super) memory_error: Option<String>,
}

/// Cuts the run into windows of `window` from `start` until `done` turns `true` (or its
/// sender is gone), then records the partial last window if anything was counted in it or
/// it is at least a tenth of a window long, so the windows add up to the run's totals. At
/// most `max_windows` are recorded.
pub(super) async fn sample_windows(
    meter: Arc<Meter>,
    gateway_pid: Option<u32>,
    start: Instant,
    window: Duration,
    max_windows: usize,
    mut done: watch::Receiver<bool>,
) -> WindowSeries {
    let mut series = WindowSeries::default();
    series.baseline_rss_kib = read_memory(gateway_pid, &mut series);
    let mut ticker = tokio::time::interval_at(start + window, window);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut previous = (start, meter.acked.load(Ordering::Relaxed), 0u64);
    // Whatever was recorded before the first send (nothing, normally) is not a window's.
    let _ = meter.take_window();
    loop {
        let finished = tokio::select! {
            _ = ticker.tick() => false,
            _ = done.wait_for(|done| *done) => true,
        };
        if series.windows.len() >= max_windows {
            series.truncated = true;
            break;
        }
        let now = Instant::now();
        let counted_since = meter.acked.load(Ordering::Relaxed) != previous.1
            || meter.delivered.load(Ordering::Relaxed) != previous.2;
        if !finished || counted_since || now.duration_since(previous.0) >= window / 10 {
            let rss = read_memory(gateway_pid, &mut series);
            push_window(&mut series, &meter, start, now, &mut previous, rss);
        }
        if finished {
            break;
        }
    }
    if series.truncated {
        // Past the cap nothing more is recorded, but the caller still decides when the run
        // is over.
        let _ = done.wait_for(|done| *done).await;
    }
    series
}

/// The gateway's memory now, or `None` (the first failure is kept in the series).
fn read_memory(gateway_pid: Option<u32>, series: &mut WindowSeries) -> Option<u64> {
    let pid = gateway_pid?;
    match read_rss_kib(pid) {
        Ok(kib) => Some(kib),
        Err(error) => {
            series.memory_error.get_or_insert(error);
            None
        }
    }
}

fn push_window(
    series: &mut WindowSeries,
    meter: &Meter,
    start: Instant,
    now: Instant,
    previous: &mut (Instant, u64, u64),
    gateway_rss_kib: Option<u64>,
) {
    let acked_total = meter.acked.load(Ordering::Relaxed);
    let delivered_total = meter.delivered.load(Ordering::Relaxed);
    let (publish_to_sse, admin, admin_calls, admin_failures) = meter.take_window();
    let span_s = now.duration_since(previous.0).as_secs_f64();
    let per_s = |count: u64| {
        if span_s > 0.0 {
            count as f64 / span_s
        } else {
            0.0
        }
    };
    let acked = acked_total.saturating_sub(previous.1);
    let delivered = delivered_total.saturating_sub(previous.2);
    series.windows.push(SoakWindow {
        index: u32::try_from(series.windows.len()).unwrap_or(u32::MAX),
        t_end_s: now.duration_since(start).as_secs_f64(),
        span_s,
        acked,
        acked_per_s: per_s(acked),
        delivered,
        delivered_per_s: per_s(delivered),
        publish_to_sse,
        admin_calls,
        admin_failures,
        admin,
        gateway_rss_kib,
    });
    *previous = (now, acked_total, delivered_total);
}

/// Follows the account's live stream until `stop` flips or `until` passes, recording each
/// point's arrival and its latency from `sensors.sent_us`.
pub(super) async fn follow_stream(
    mut stream: SseStream,
    meter: Arc<Meter>,
    mut stop: watch::Receiver<bool>,
    until: Instant,
    errors: Arc<ErrorLog>,
) {
    let mut unreadable = 0u64;
    let deadline = tokio::time::sleep_until(until);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(event)) if event.event == "point" => {
                    let arrived_us = now_us();
                    let sent_us = event.data["sensors"][SENT_US_SENSOR]
                        .as_f64()
                        .and_then(whole_number);
                    meter.record_delivery(sent_us, arrived_us);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) if error.status().is_none()
                    && !matches!(error, crate::api::ApiError::Decode { .. }) =>
                {
                    errors.push(format!("SSE stream broke: {error}"));
                    break;
                }
                Some(Err(error)) => {
                    unreadable += 1;
                    if unreadable == 1 {
                        errors.push(format!("SSE event could not be read: {error}"));
                    }
                }
                None => {
                    errors.push("SSE stream ended before the run did".to_owned());
                    break;
                }
            },
            _ = stop.wait_for(|stop| *stop) => break,
            () = &mut deadline => {
                errors.push("the SSE follower outlived the run's time bound".to_owned());
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_cuts_windows_and_keeps_totals() {
        let meter = Meter::default();
        meter.record_delivery(Some(1_000), 3_000);
        meter.record_delivery(None, 3_000);
        meter.record_admin(AdminKind::Grant, Some(5_000));
        meter.record_admin(AdminKind::History, None);
        let (sse, admin, calls, failures) = meter.take_window();
        assert_eq!((sse.samples, sse.p50_us), (1, 2_000));
        assert_eq!((admin.samples, calls, failures), (1, 2, 1));
        let (sse, admin, calls, failures) = meter.take_window();
        assert_eq!((sse.samples, admin.samples, calls, failures), (0, 0, 0, 0));
        assert_eq!(meter.delivered.load(Ordering::Relaxed), 2);
        let (total_sse, admin_totals) = meter.totals();
        assert_eq!(total_sse.samples, 1);
        assert_eq!(admin_totals.len(), AdminKind::ALL.len());
        let grant = &admin_totals[AdminKind::Grant.index()];
        assert_eq!(
            (grant.calls, grant.failures, grant.latency.len()),
            (1, 0, 1)
        );
        let history = &admin_totals[AdminKind::History.index()];
        assert_eq!((history.calls, history.failures), (1, 1));
    }

    #[tokio::test]
    async fn windows_are_cut_each_interval_and_capped() {
        let meter = Arc::new(Meter::default());
        let window = Duration::from_millis(100);
        let (done, done_rx) = watch::channel(false);
        let task = tokio::spawn(sample_windows(
            meter.clone(),
            Some(std::process::id()),
            Instant::now(),
            window,
            3,
            done_rx,
        ));
        for _ in 0..5 {
            meter.acked.fetch_add(10, Ordering::Relaxed);
            tokio::time::sleep(window).await;
        }
        done.send_replace(true);
        let series = task.await.expect("sampler");
        assert!(series.truncated);
        assert_eq!(series.windows.len(), 3);
        assert!(series
            .windows
            .windows(2)
            .all(|pair| pair[0].t_end_s < pair[1].t_end_s && pair[1].index == pair[0].index + 1));
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(series.baseline_rss_kib.is_some());
            assert!(series.windows.iter().all(|w| w.gateway_rss_kib.is_some()));
        }
    }

    #[tokio::test]
    async fn the_partial_last_window_counts_what_is_left() {
        let meter = Arc::new(Meter::default());
        let (done, done_rx) = watch::channel(false);
        let task = tokio::spawn(sample_windows(
            meter.clone(),
            Some(u32::MAX),
            Instant::now(),
            Duration::from_millis(200),
            MAX_WINDOWS,
            done_rx,
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
        meter.acked.fetch_add(7, Ordering::Relaxed);
        done.send_replace(true);
        let series = task.await.expect("sampler");
        assert!(!series.truncated);
        assert!(!series.windows.is_empty());
        let acked: u64 = series.windows.iter().map(|window| window.acked).sum();
        assert_eq!(acked, 7, "{series:?}");
        assert!(
            series.memory_error.is_some(),
            "an unreadable pid is reported"
        );
        assert!(series.windows.iter().all(|w| w.gateway_rss_kib.is_none()));
        assert_eq!(series.baseline_rss_kib, None);
    }
}
