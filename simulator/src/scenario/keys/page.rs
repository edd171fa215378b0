//! The HTML page of a key run, built with the shared `report::html::Page` frame so it
//! looks like every other scenario's report: the verdict, the figures, propagation to the
//! units (over the run, and per change in the order the changes were made: one slow change
//! shows there, not in the run's percentiles), the expiry lag, each change's table row,
//! the unit changes per second, the gateway's memory, the failed checks and the errors.

use super::report::KeysReport;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_rows, Page, MEMORY_CAPTION,
};
use crate::report::svg::{self, Series, PALETTE};
use crate::stats::{format_us, LatencyRecorder, Percentiles};

/// The whole page for a key run.
pub fn keys_page(report: &KeysReport) -> String {
    let (clean, verdict) = if report.is_clean() {
        (
            true,
            "clean: every change reached the units as answered, and their decisions and \
             events agree with the key API",
        )
    } else {
        (false, "NOT clean: see the failed checks and errors below")
    };
    let mut page = Page::new(
        &format!("Fleetgate keys run {}", report.run_id),
        clean,
        verdict,
    );
    let account = report
        .account_id
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string);
    page.section("Figures")
        .row("account", account)
        .row("units", report.units)
        .row("keys created", report.keys_created)
        .row("changes", report.changes.len())
        .row(
            "unit-changes held before the answer",
            report.held_before_answer,
        )
        .row("unit-changes never held", report.never_held)
        .row("distribution mismatches", report.distribution_mismatches)
        .row("held set mismatches", report.set_mismatches)
        .row("device status mismatches", report.status_mismatches)
        .row("access attempts", report.access.attempts)
        .row("decision mismatches", report.access.decision_mismatches)
        .row(
            "events reported / stored / live",
            format!(
                "{} / {} / {}",
                report.access.events_reported,
                report.access.events_stored,
                report.access.events_live
            ),
        )
        .row("key sets taken by units", report.holders.sets_taken)
        .row("key-set acks sent", report.holders.acks_sent);
    if let Some(reconnect) = &report.reconnect {
        page.row(
            &format!("unit {} after reconnecting", reconnect.device_id),
            format!(
                "listed pending: {}; took the retained set after {}",
                reconnect.listed_pending,
                reconnect
                    .held_after_us
                    .map_or_else(|| "never".to_owned(), format_us)
            ),
        );
    }
    timeline_rows(&mut page, &report.timeline, "unit changes");
    let calls = call_round_trips(report);
    let latencies = [
        ("propagation from request", &report.propagation_from_request),
        ("propagation after answer", &report.propagation_after_answer),
        ("expiry lag", &report.expiry_lag),
        ("change call round trip", &calls),
    ];
    page.section("Latency")
        .percentile_table(&latencies)
        .figure(
            &percentile_chart("Latency percentiles", &latencies),
            "Request start → the unit took the key set showing the change; answer → taken, \
             for units that took it only after the answer (the contract expects none); a \
             short-lived key's valid_to → the unit took a set without it; the key call's \
             round trip.",
        )
        .figure(
            &propagation_chart(report),
            "Per change, in the order they were made: request start → the slowest and the \
             median unit holding it, and the call's round trip.",
        );
    page.section("Changes");
    for change in &report.changes {
        let outcome = match &change.error {
            Some(error) => format!("failed: {error}"),
            None => format!(
                "call {}, {}/{} delivered, {} pending, held by {} ({} before the answer), \
                 from request max {}",
                change.call_us.map_or_else(|| "-".to_owned(), format_us),
                change.delivered,
                change.units_affected,
                change.pending,
                change.held,
                change.held_before_answer,
                if change.from_request.samples == 0 {
                    "-".to_owned()
                } else {
                    format_us(change.from_request.max_us)
                }
            ),
        };
        page.row(&change.change, outcome);
    }
    page.section("Over time")
        .figure(
            &rate_chart(
                "Unit key-set changes per second",
                "unit changes/s",
                &report.timeline,
            ),
            "Each time the run saw a unit take a key set showing a change it waited for \
             (created, edited, deleted, the retained set after reconnecting, the \
             short-lived key gone), counted when seen: right after the answer for units \
             that took it before.",
        )
        .figure(&memory_chart(&report.timeline), MEMORY_CAPTION);
    if report.timeline.truncated {
        page.note("The series were cut at their sample limit; later seconds are not shown.");
    }
    if !report.checks_failed.is_empty() {
        page.section("Checks failed");
        for (index, check) in report.checks_failed.iter().enumerate() {
            page.row(&format!("{}", index + 1), check);
        }
    }
    page.finish(&report.errors)
}

/// The answered changes' call round trips as percentiles.
fn call_round_trips(report: &KeysReport) -> Percentiles {
    let mut recorder = LatencyRecorder::new();
    for micros in report.changes.iter().filter_map(|change| change.call_us) {
        recorder.record_us(i64::try_from(micros).unwrap_or(i64::MAX));
    }
    recorder.percentiles()
}

/// Milliseconds per change (x: the change's number in the run's order).
fn propagation_chart(report: &KeysReport) -> String {
    let title = "Propagation per change, in change order";
    let mut slowest = Vec::new();
    let mut median = Vec::new();
    let mut call = Vec::new();
    for (index, change) in report.changes.iter().enumerate() {
        let x = (index + 1) as f64;
        if change.from_request.samples > 0 {
            slowest.push((x, change.from_request.max_us as f64 / 1_000.0));
            median.push((x, change.from_request.p50_us as f64 / 1_000.0));
        }
        if let Some(micros) = change.call_us {
            call.push((x, micros as f64 / 1_000.0));
        }
    }
    if slowest.is_empty() && call.is_empty() {
        return svg::placeholder(title, "no change was answered");
    }
    let series: Vec<Series> = [
        ("slowest unit (from request)", PALETTE[1], slowest),
        ("median unit (from request)", PALETTE[0], median),
        ("call round trip", PALETTE[3], call),
    ]
    .into_iter()
    .filter(|(_, _, points)| !points.is_empty())
    .map(|(name, color, points)| Series {
        name: name.to_owned(),
        color,
        points,
    })
    .collect();
    svg::line_chart(
        title,
        "change number",
        "milliseconds",
        &series,
        &svg::short_number,
    )
}

#[cfg(test)]
mod tests {
    use super::super::report::tests::{change, report};
    use super::super::report::ChangeRecord;
    use super::*;
    use crate::scenario::{Timeline, TimelineSample};

    fn measured(gateway_pid: Option<u32>) -> KeysReport {
        let percentiles = Percentiles {
            samples: 2,
            p50_us: 3_000,
            p90_us: 5_000,
            p99_us: 5_000,
            p999_us: 5_000,
            max_us: 5_000,
        };
        let propagated = ChangeRecord {
            from_request: percentiles,
            ..change()
        };
        let failed = ChangeRecord {
            error: Some("HTTP 500 <internal>".into()),
            call_us: None,
            ..change()
        };
        let samples = (0..3)
            .map(|second| TimelineSample {
                t_s: second as f64,
                acked_total: second * 4,
                acked_per_s: if second == 0 { 0.0 } else { 4.0 },
                gateway_rss_kib: gateway_pid.map(|_| 20_000 + second),
            })
            .collect();
        KeysReport {
            changes: vec![propagated.clone(), failed, propagated],
            propagation_from_request: percentiles,
            expiry_lag: percentiles,
            checks_failed: vec!["unit <u1> held \"k9\"".into()],
            errors: vec!["a <b>broken</b> call".into()],
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid,
                samples,
                truncated: false,
                memory_error: None,
            },
            ..report()
        }
    }

    #[test]
    fn page_is_self_contained_and_escapes_what_it_quotes() {
        for page in [keys_page(&measured(None)), keys_page(&measured(Some(5)))] {
            let lower = page.to_ascii_lowercase();
            assert!(!lower.contains("http://") && !lower.contains("https://"));
            assert!(!lower.contains("<script") && !lower.contains("src="));
            assert!(!lower.contains("url("));
            assert!(page.contains("a &lt;b&gt;broken&lt;/b&gt; call"));
            assert!(page.contains("unit &lt;u1&gt; held &quot;k9&quot;"));
            assert!(page.contains("failed: HTTP 500 &lt;internal&gt;"));
            assert!(!page.contains("<internal>") && !page.contains("<u1>"));
        }
    }

    #[test]
    fn page_has_its_charts() {
        let page = keys_page(&measured(Some(5)));
        assert!(page.contains("Fleetgate keys run abc"));
        assert!(page.contains("NOT clean"));
        assert_eq!(
            page.matches("<svg").count(),
            4,
            "percentiles, per change, rate, memory"
        );
        assert_eq!(
            page.matches("<polyline").count(),
            5,
            "slowest, median, call, rate, memory"
        );
        assert!(page.contains("slowest unit (from request)"));
        assert!(page.contains("expiry lag") && page.contains("change call round trip"));
        assert!(page.contains("VmRSS of pid 5"));
    }

    #[test]
    fn memory_without_a_pid_is_not_measured() {
        let page = keys_page(&measured(None));
        assert!(page.contains("not measured (no --gateway-pid given)"));
        assert_eq!(page.matches("<polyline").count(), 4);
        assert!(keys_page(&report()).contains("clean: every change reached"));
    }

    #[test]
    fn call_round_trips_skip_failed_calls() {
        let percentiles = call_round_trips(&measured(None));
        assert_eq!(percentiles.samples, 2);
        assert!(percentiles.max_us >= 2_500);
    }
}
