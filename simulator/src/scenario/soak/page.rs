//! The sections of a soak report and their charts: the series over time that show drift —
//! throughput, latency per window (the creep chart), memory with its fitted slope — and the
//! admin calls by kind. The checks, verdict and frame are the report model's.

use crate::report::html::percentile_chart;
use crate::report::svg::{Series, PALETTE};
use crate::report::{Chart, Section};

use super::report::SoakReport;
use super::window::SoakWindow;
use crate::stats::Percentiles;

/// The figures, the series over time and the admin calls of a soak run.
pub(super) fn sections(report: &SoakReport) -> Vec<Section> {
    let throughput = Section::new("Throughput over time").chart(
        throughput_chart(&report.windows),
        &format!(
            "Points acknowledged by the broker and points arriving on the account's live \
             stream, per second of each {} s window.",
            report.window.as_secs_f64()
        ),
    );
    let latency = Section::new("Latency over time")
        .chart(
            latency_chart(&report.windows),
            &format!(
                "p50 and p99 of publish→SSE and p99 of the admin calls, per window: a rising \
                 line is creep. {}",
                creep_caption(report)
            ),
        )
        .latencies(&[("publish→SSE (whole run)", &report.publish_to_sse)]);
    let memory =
        Section::new("Memory over time").chart(memory_chart(report), &memory_caption(report));
    let names: Vec<String> = report
        .admin
        .iter()
        .map(|figures| figures.kind.as_str().to_owned())
        .collect();
    let rows: Vec<(&str, &Percentiles)> = names
        .iter()
        .zip(&report.admin)
        .map(|(name, figures)| (name.as_str(), &figures.latency))
        .collect();
    let admin = Section::new("Admin calls by kind")
        .chart(
            percentile_chart("Admin call latency by kind", &rows),
            "Round trip of each successful admin call, from request to answer.",
        )
        .latencies(&rows);
    let counts = report
        .admin
        .iter()
        .fold(Section::new("Admin call counts"), |section, figures| {
            section.figure(
                figures.kind.as_str(),
                format!("{} calls, {} failed", figures.calls, figures.failures),
            )
        })
        .note_if(
            report.windows_truncated,
            "The windows were cut at their limit; later windows are not shown.",
        );
    vec![figures(report), throughput, latency, memory, admin, counts]
}

fn figures(report: &SoakReport) -> Section {
    let section = Section::new("Figures")
        .figure("account", &report.account_id)
        .figure("grantee sub-account", &report.grantee_account_id)
        .figure("units", report.units)
        .figure(
            "rate",
            format!("{} points/s per unit", report.rate_per_unit),
        )
        .figure("admin rate", format!("{} calls/s", report.admin_rate))
        .figure("duration", format!("{} s", report.duration.as_secs()))
        .figure(
            "windows",
            format!(
                "{} of {} s",
                report.windows.len(),
                report.window.as_secs_f64()
            ),
        )
        .figure("points sent", report.points_sent)
        .figure("points acknowledged", report.points_acked)
        .figure("points stored (rows)", report.points_stored)
        .figure("missing", report.missing)
        .figure("duplicates", report.duplicates)
        .figure("delivered via SSE", report.sse_received);
    let memory = &report.memory;
    [
        ("gateway memory before the load", memory.baseline_mib),
        ("gateway memory at the end", memory.end_mib),
        ("gateway memory (peak RSS)", memory.peak_mib),
    ]
    .into_iter()
    .fold(section, |section, (name, value)| {
        section.figure_if(name, value.map(|mib| format!("{mib:.1} MiB")))
    })
}

/// `(window end, value)` for every window where `value` has something.
fn series_of(
    windows: &[SoakWindow],
    value: impl Fn(&SoakWindow) -> Option<f64>,
) -> Vec<(f64, f64)> {
    windows
        .iter()
        .filter_map(|window| value(window).map(|y| (window.t_end_s, y)))
        .collect()
}

fn throughput_chart(windows: &[SoakWindow]) -> Chart {
    let title = "Throughput: points per second";
    if windows.is_empty() {
        return Chart::missing(title, "no window was recorded");
    }
    Chart::lines(
        title,
        "seconds since the start",
        "per second",
        vec![
            Series::new(
                "acknowledged/s",
                PALETTE[0],
                series_of(windows, |window| Some(window.acked_per_s)),
            ),
            Series::new(
                "delivered live/s",
                PALETTE[3],
                series_of(windows, |window| Some(window.delivered_per_s)),
            ),
        ],
    )
}

fn ms_if_measured(percentiles: &Percentiles, micros: u64) -> Option<f64> {
    (percentiles.samples > 0).then_some(micros as f64 / 1_000.0)
}

fn latency_chart(windows: &[SoakWindow]) -> Chart {
    let title = "Latency per window";
    let lines = [
        (
            "publish→SSE p50",
            PALETTE[0],
            series_of(windows, |w| {
                ms_if_measured(&w.publish_to_sse, w.publish_to_sse.p50_us)
            }),
        ),
        (
            "publish→SSE p99",
            PALETTE[1],
            series_of(windows, |w| {
                ms_if_measured(&w.publish_to_sse, w.publish_to_sse.p99_us)
            }),
        ),
        (
            "admin p99",
            PALETTE[2],
            series_of(windows, |w| ms_if_measured(&w.admin, w.admin.p99_us)),
        ),
    ];
    let series = Series::drawn(lines);
    if series.is_empty() {
        return Chart::missing(title, "no latency samples");
    }
    Chart::lines(title, "seconds since the start", "milliseconds", series)
}

fn creep_caption(report: &SoakReport) -> String {
    report
        .checks
        .iter()
        .filter(|check| check.name.ends_with("latency creep"))
        .map(|check| format!("{}: {}, {}.", check.name, check.outcome, check.detail))
        .collect::<Vec<_>>()
        .join(" ")
}

fn memory_chart(report: &SoakReport) -> Chart {
    let title = "Gateway memory (resident set)";
    let memory = &report.memory;
    let Some(pid) = memory.gateway_pid else {
        return Chart::missing(title, "not measured (no --gateway-pid given)");
    };
    let points = series_of(&report.windows, |window| {
        window.gateway_rss_kib.map(|kib| kib as f64 / 1024.0)
    });
    if points.is_empty() {
        let why = memory
            .memory_error
            .as_deref()
            .unwrap_or("no sample was taken");
        return Chart::missing(title, &format!("not measured: {why}"));
    }
    let mut series = vec![Series::new(
        format!("VmRSS of pid {pid}"),
        PALETTE[2],
        points.clone(),
    )];
    if let (Some(slope_per_h), Some(intercept)) = (memory.slope_mib_per_h, memory.intercept_mib) {
        let half = points.last().map_or(0.0, |last| last.0 / 2.0);
        let fitted: Vec<(f64, f64)> = points
            .iter()
            .filter(|(t_s, _)| *t_s >= half)
            .map(|(t_s, _)| (*t_s, intercept + slope_per_h / 3600.0 * t_s))
            .collect();
        if let (Some(first), Some(last)) = (fitted.first(), fitted.last()) {
            let ends = vec![*first, *last];
            series.push(Series::new("fitted (second half)", PALETTE[1], ends));
        }
    }
    Chart::lines(title, "seconds since the start", "MiB", series)
}

fn memory_caption(report: &SoakReport) -> String {
    let memory = &report.memory;
    let slope = match memory.slope_mib_per_h {
        Some(slope) => format!(
            "Least-squares slope over the second half: {slope:+.1} MiB/h ({} samples over {:.0} s; \
             limit {:.1} MiB/h).",
            memory.fitted_samples, memory.fitted_span_s, memory.limit_mib_per_h
        ),
        None => "No slope: too few samples in the second half.".to_owned(),
    };
    let verdict = report
        .checks
        .iter()
        .find(|check| check.name == "memory growth")
        .map(|check| format!(" Check {}: {}.", check.outcome, check.detail))
        .unwrap_or_default();
    format!(
        "{slope}{verdict} VmRSS from /proc/<pid>/status, read at the end of every window; only \
         when the gateway runs on this machine and its pid was given."
    )
}

#[cfg(test)]
mod tests {
    use crate::report::assert_self_contained;
    use crate::scenario::soak::drift::Outcome;
    use crate::scenario::soak::report::tests::report;

    #[test]
    fn page_is_self_contained_with_and_without_memory() {
        assert_self_contained(&crate::report::page(&report(Some(42))));
        assert_self_contained(&crate::report::page(&report(None)));
    }

    #[test]
    fn page_has_the_charts_and_the_checks() {
        let page = crate::report::page(&report(Some(42)));
        // Throughput, latency, memory, admin bars.
        assert_eq!(page.matches("<svg").count(), 4, "{page}");
        // Two throughput lines, three latency lines, memory and its fitted line.
        assert_eq!(page.matches("<polyline").count(), 7);
        assert!(page.contains("VmRSS of pid 42"));
        assert!(page.contains("fitted (second half)"));
        assert!(page.contains("Least-squares slope over the second half: +0.0 MiB/h"));
        assert!(page.contains("publish→SSE latency creep"));
        assert!(page.contains("create key"));
        assert!(page.contains("class=\"verdict clean\""));
    }

    #[test]
    fn page_escapes_errors_and_names_the_failed_check() {
        let mut dirty = report(Some(7));
        dirty.errors.push("unit <u1> said \"no\" & left".into());
        if let Some(check) = dirty.checks.iter_mut().find(|c| c.name == "memory growth") {
            check.outcome = Outcome::Failed;
        }
        let page = crate::report::page(&dirty);
        assert_self_contained(&page);
        assert!(page.contains("unit &lt;u1&gt; said &quot;no&quot; &amp; left"));
        assert!(!page.contains("<u1>"));
        assert!(page.contains("class=\"verdict dirty\""));
        assert!(page.contains("NOT clean: memory growth"));
    }

    #[test]
    fn memory_without_a_pid_is_not_measured() {
        let page = crate::report::page(&report(None));
        assert!(page.contains("not measured (no --gateway-pid given)"));
        assert!(page.contains("memory not measured"));
        assert_eq!(
            page.matches("<polyline").count(),
            5,
            "throughput and latency"
        );
        let mut unreadable = report(Some(9));
        unreadable.memory.samples = 0;
        unreadable.memory.memory_error = Some("/proc/9/status: gone".into());
        for window in &mut unreadable.windows {
            window.gateway_rss_kib = None;
        }
        assert!(crate::report::page(&unreadable).contains("not measured: /proc/9/status: gone"));
    }
}
