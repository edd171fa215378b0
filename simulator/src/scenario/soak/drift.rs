//! The soak's judgement, as pure functions over the recorded windows so every verdict can
//! be tested exactly: a least-squares memory slope over the second half of the run, and
//! latency creep (the last windows' p99 against the first windows'). A soak exists to catch
//! slow drift that a short load run cannot see; these functions decide what counts as drift
//! and say, in words, which check failed and why.

use serde::Serialize;

use super::window::SoakWindow;
use crate::stats::format_us;

/// Fewer memory samples than this in the second half give no slope worth judging.
pub const MIN_FIT_SAMPLES: usize = 3;
/// A slope in MiB per hour extrapolated from a few seconds is mostly start-up noise
/// (allocator arenas, TLS sessions, caches filling): below this span of the fitted half the
/// slope is reported but not judged.
pub const MIN_FIT_SPAN_S: f64 = 60.0;
/// At most this many windows at each end are compared for creep; a quarter of the windows
/// otherwise, at least one.
pub const MAX_CREEP_WINDOWS: usize = 30;

pub use crate::report::{Check, Outcome};

/// The least-squares line `y = slope × x + intercept` through `points`; `None` with fewer
/// than two points, when every x is the same, or when a figure is not finite.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < 2
        || points
            .iter()
            .any(|(x, y)| !(x.is_finite() && y.is_finite()))
    {
        return None;
    }
    let count = points.len() as f64;
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / count;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / count;
    let spread: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if spread <= f64::EPSILON {
        return None;
    }
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let slope = covariance / spread;
    Some((slope, mean_y - slope * mean_x))
}

/// The gateway's memory over the run and the trend of its second half.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryTrend {
    /// The process whose memory was read; `None`: not measured.
    pub gateway_pid: Option<u32>,
    /// Resident set before the load started, in MiB.
    pub baseline_mib: Option<f64>,
    /// At the last window.
    pub end_mib: Option<f64>,
    pub peak_mib: Option<f64>,
    /// Windows that carry a memory figure.
    pub samples: usize,
    /// Of those, the ones in the second half of the run, which the slope is fitted to.
    pub fitted_samples: usize,
    /// Seconds between the first and the last fitted sample.
    pub fitted_span_s: f64,
    /// Least-squares slope of the second half, MiB per hour.
    pub slope_mib_per_h: Option<f64>,
    /// Intercept of that line (MiB at t = 0), so the page can draw it.
    pub intercept_mib: Option<f64>,
    pub limit_mib_per_h: f64,
    /// Why memory figures are missing although a pid was given (first failure only).
    pub memory_error: Option<String>,
}

/// Fits the memory of the windows in the second half of the run (by time).
pub fn memory_trend(
    windows: &[SoakWindow],
    gateway_pid: Option<u32>,
    baseline_kib: Option<u64>,
    limit_mib_per_h: f64,
    memory_error: Option<String>,
) -> MemoryTrend {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let measured: Vec<(f64, f64)> = windows
        .iter()
        .filter_map(|window| window.gateway_rss_kib.map(|kib| (window.t_end_s, mib(kib))))
        .collect();
    let half = windows.last().map_or(0.0, |last| last.t_end_s / 2.0);
    let fitted: Vec<(f64, f64)> = measured
        .iter()
        .copied()
        .filter(|(t_s, _)| *t_s >= half)
        .collect();
    let line = if fitted.len() >= MIN_FIT_SAMPLES {
        least_squares(&fitted)
    } else {
        None
    };
    let fitted_span_s = match (fitted.first(), fitted.last()) {
        (Some(first), Some(last)) => last.0 - first.0,
        _ => 0.0,
    };
    MemoryTrend {
        gateway_pid,
        baseline_mib: baseline_kib.map(mib),
        end_mib: measured.last().map(|(_, value)| *value),
        peak_mib: measured.iter().map(|(_, value)| *value).reduce(f64::max),
        samples: measured.len(),
        fitted_samples: fitted.len(),
        fitted_span_s,
        // Per second of run time, times 3600.
        slope_mib_per_h: line.map(|(slope, _)| slope * 3600.0),
        intercept_mib: line.map(|(_, intercept)| intercept),
        limit_mib_per_h,
        memory_error,
    }
}

/// The memory check: the second half's slope under the limit. Not measured, too few
/// samples or too short a span are said, and never fail the run.
pub fn memory_check(trend: &MemoryTrend) -> Check {
    const NAME: &str = "memory growth";
    let Some(pid) = trend.gateway_pid else {
        return Check::new(
            NAME,
            Outcome::NotJudged,
            "memory not measured (no gateway pid given)",
        );
    };
    if trend.samples == 0 {
        let why = trend
            .memory_error
            .as_deref()
            .unwrap_or("no sample was taken");
        return Check::new(
            NAME,
            Outcome::NotJudged,
            format!("memory of pid {pid} not measured: {why}"),
        );
    }
    let Some(slope) = trend.slope_mib_per_h else {
        return Check::new(
            NAME,
            Outcome::NotJudged,
            format!(
                "{} memory samples in the second half, at least {MIN_FIT_SAMPLES} needed for a slope",
                trend.fitted_samples
            ),
        );
    };
    if trend.fitted_span_s < MIN_FIT_SPAN_S {
        return Check::new(
            NAME,
            Outcome::NotJudged,
            format!(
                "second-half slope {slope:+.1} MiB/h over only {:.0} s; at least {MIN_FIT_SPAN_S:.0} s \
                 are needed before an hourly slope means anything",
                trend.fitted_span_s
            ),
        );
    }
    Check::holds(
        NAME,
        slope <= trend.limit_mib_per_h,
        format!(
            "second-half slope {slope:+.1} MiB/h over {:.0} s ({} samples), limit {:.1} MiB/h",
            trend.fitted_span_s, trend.fitted_samples, trend.limit_mib_per_h
        ),
    )
}

/// The first and last windows' p99 compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Creep {
    /// What was compared, e.g. `publish→SSE`.
    pub measure: String,
    /// Windows compared at each end.
    pub windows_compared: usize,
    /// Median of the per-window p99 of the first windows, µs.
    pub head_p99_us: Option<u64>,
    /// Median of the per-window p99 of the last windows, µs.
    pub tail_p99_us: Option<u64>,
    /// `tail / head`.
    pub ratio: Option<f64>,
    pub limit: f64,
}

/// Compares the median p99 of the last windows with that of the first ones. `p99s` holds
/// one entry per window in order, `None` for a window without samples (left out). The
/// median rather than a merged histogram, so one stalled window at either end (start-up,
/// a neighbour's compile) does not decide the verdict alone.
pub fn latency_creep(measure: &str, p99s: &[Option<u64>], limit: f64) -> Creep {
    let measured: Vec<u64> = p99s.iter().flatten().copied().collect();
    let compared = (measured.len() / 4).clamp(1, MAX_CREEP_WINDOWS);
    let mut creep = Creep {
        measure: measure.to_owned(),
        windows_compared: 0,
        head_p99_us: None,
        tail_p99_us: None,
        ratio: None,
        limit,
    };
    if measured.len() < 2 {
        return creep;
    }
    let head = median(&measured[..compared]);
    let tail = median(&measured[measured.len() - compared..]);
    creep.windows_compared = compared;
    creep.head_p99_us = Some(head);
    creep.tail_p99_us = Some(tail);
    creep.ratio = Some(tail as f64 / head.max(1) as f64);
    creep
}

/// The creep check of one measure.
pub fn creep_check(creep: &Creep) -> Check {
    let name = format!("{} latency creep", creep.measure);
    match (creep.head_p99_us, creep.tail_p99_us, creep.ratio) {
        (Some(head), Some(tail), Some(ratio)) => Check::holds(
            &name,
            ratio <= creep.limit,
            format!(
                "p99 of the last {n} windows {tail} vs the first {n} {head}: ×{ratio:.2}, limit ×{limit:.2}",
                n = creep.windows_compared,
                tail = format_us(tail),
                head = format_us(head),
                limit = creep.limit
            ),
        ),
        _ => Check::new(
            &name,
            Outcome::NotJudged,
            "fewer than 2 windows with latency samples",
        ),
    }
}

/// The median of a non-empty slice (the lower middle for an even count); 0 when empty.
fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;

    fn window(t_end_s: f64, rss_kib: Option<u64>) -> SoakWindow {
        SoakWindow {
            index: 0,
            t_end_s,
            span_s: 1.0,
            acked: 0,
            acked_per_s: 0.0,
            delivered: 0,
            delivered_per_s: 0.0,
            publish_to_sse: Percentiles::default(),
            admin_calls: 0,
            admin_failures: 0,
            admin: Percentiles::default(),
            gateway_rss_kib: rss_kib,
        }
    }

    #[test]
    fn least_squares_finds_an_exact_line_and_refuses_degenerate_input() {
        let points = [(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)];
        let (slope, intercept) = least_squares(&points).expect("a line");
        assert!((slope - 2.0).abs() < 1e-12 && (intercept - 1.0).abs() < 1e-12);
        assert_eq!(least_squares(&[(1.0, 1.0)]), None);
        assert_eq!(least_squares(&[(1.0, 1.0), (1.0, 5.0)]), None);
        assert_eq!(least_squares(&[(0.0, 1.0), (1.0, f64::NAN)]), None);
        // Noise around a flat line gives a slope near zero.
        let flat = [(0.0, 10.0), (1.0, 11.0), (2.0, 9.0), (3.0, 10.0)];
        let (slope, _) = least_squares(&flat).expect("a line");
        assert!(slope.abs() < 0.5, "{slope}");
    }

    /// Ten minutes of 10 s windows; memory grows by `mib_per_h` from 100 MiB, but the first
    /// half starts 50 MiB higher (a start-up spike the fit must ignore).
    fn growing(mib_per_h: f64) -> Vec<SoakWindow> {
        (1..=60)
            .map(|index| {
                let t_s = index as f64 * 10.0;
                let spike = if t_s < 300.0 { 50.0 } else { 0.0 };
                let mib = 100.0 + spike + mib_per_h * t_s / 3600.0;
                window(t_s, Some((mib * 1024.0) as u64))
            })
            .collect()
    }

    #[test]
    fn memory_slope_is_fitted_to_the_second_half_in_mib_per_hour() {
        let trend = memory_trend(&growing(120.0), Some(7), Some(90 * 1024), 50.0, None);
        assert_eq!(trend.samples, 60);
        assert_eq!(trend.fitted_samples, 31);
        assert!((trend.fitted_span_s - 300.0).abs() < 1e-9);
        let slope = trend.slope_mib_per_h.expect("slope");
        assert!((slope - 120.0).abs() < 1.0, "{slope}");
        assert_eq!(trend.baseline_mib, Some(90.0));
        let check = memory_check(&trend);
        assert_eq!(check.outcome, Outcome::Failed, "{check:?}");
        assert!(check.detail.contains("limit 50.0 MiB/h"), "{check:?}");

        let steady = memory_trend(&growing(10.0), Some(7), None, 50.0, None);
        assert_eq!(memory_check(&steady).outcome, Outcome::Passed);
        let shrinking = memory_trend(&growing(-30.0), Some(7), None, 50.0, None);
        assert_eq!(memory_check(&shrinking).outcome, Outcome::Passed);
    }

    #[test]
    fn memory_that_was_not_measured_or_too_short_is_not_judged() {
        let unmeasured = memory_trend(&growing(500.0)[..0], None, None, 50.0, None);
        let check = memory_check(&unmeasured);
        assert_eq!(check.outcome, Outcome::NotJudged);
        assert!(check.detail.contains("no gateway pid"), "{check:?}");

        let blank: Vec<SoakWindow> = (1..=5).map(|i| window(i as f64, None)).collect();
        let unreadable = memory_trend(&blank, Some(9), None, 50.0, Some("/proc/9: gone".into()));
        let check = memory_check(&unreadable);
        assert_eq!(check.outcome, Outcome::NotJudged);
        assert!(check.detail.contains("/proc/9: gone"), "{check:?}");

        // Growing fast, but over six seconds: reported, not judged.
        let short: Vec<SoakWindow> = (1..=6)
            .map(|i| window(i as f64 * 2.0, Some(100_000 + i * 5_000)))
            .collect();
        let trend = memory_trend(&short, Some(9), None, 50.0, None);
        assert!(trend.slope_mib_per_h.is_some_and(|slope| slope > 50.0));
        let check = memory_check(&trend);
        assert_eq!(check.outcome, Outcome::NotJudged, "{check:?}");
        assert!(check.detail.contains("over only"), "{check:?}");

        let two = memory_trend(&short[4..], Some(9), None, 50.0, None);
        assert_eq!(memory_check(&two).outcome, Outcome::NotJudged);
        assert_eq!(two.slope_mib_per_h, None);
    }

    #[test]
    fn creep_compares_the_median_p99_of_both_ends() {
        // Eleven measured windows: two compared at each end; a stalled first window is outvoted.
        let mut p99s: Vec<Option<u64>> = vec![Some(90_000), Some(10_000), Some(10_000)];
        p99s.extend([Some(12_000), None, Some(11_000), Some(13_000), Some(12_000)]);
        p99s.extend([Some(14_000), Some(25_000), Some(28_000), Some(26_000)]);
        let creep = latency_creep("publish→SSE", &p99s, 3.0);
        assert_eq!(creep.windows_compared, 2);
        assert_eq!(creep.head_p99_us, Some(10_000));
        assert_eq!(creep.tail_p99_us, Some(26_000));
        let check = creep_check(&creep);
        assert_eq!(check.outcome, Outcome::Passed, "{check:?}");
        assert_eq!(check.name, "publish→SSE latency creep");

        let tight = latency_creep("publish→SSE", &p99s, 2.0);
        let check = creep_check(&tight);
        assert_eq!(check.outcome, Outcome::Failed, "{check:?}");
        assert!(check.detail.contains("×2.60"), "{check:?}");
    }

    #[test]
    fn creep_needs_two_measured_windows_and_caps_the_compared_ones() {
        let check = creep_check(&latency_creep("admin", &[None, Some(5), None], 3.0));
        assert_eq!(check.outcome, Outcome::NotJudged);
        let two = latency_creep("admin", &[Some(1_000), Some(4_000)], 3.0);
        assert_eq!(two.windows_compared, 1);
        assert_eq!(creep_check(&two).outcome, Outcome::Failed);
        let many: Vec<Option<u64>> = (0..1_000).map(|_| Some(1_000)).collect();
        let creep = latency_creep("admin", &many, 3.0);
        assert_eq!(creep.windows_compared, MAX_CREEP_WINDOWS);
        assert_eq!(creep.ratio, Some(1.0));
        // A zero head cannot divide by zero.
        let zero = latency_creep("admin", &[Some(0), Some(0)], 3.0);
        assert_eq!(zero.ratio, Some(0.0));
    }
}
