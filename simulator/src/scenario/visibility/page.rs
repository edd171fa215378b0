//! The HTML page of a visibility run, built with the shared `report::html::Page` frame so
//! it looks like every other scenario's report: the verdict, the figures, the removal and
//! delivery latencies, each removal's round trip in the order they were sent (a slow
//! removal or a trend over the run shows there, not in the percentiles), delivery to the
//! grantees per second, the gateway's memory, and the errors.

use super::report::VisibilityReport;
use crate::report::html::{
    memory_chart, percentile_chart, rate_chart, timeline_rows, Page, MEMORY_CAPTION,
};
use crate::report::svg::{self, Series, PALETTE};
use crate::stats::format_us;

/// The whole page for a visibility run.
pub fn visibility_page(report: &VisibilityReport) -> String {
    let (clean, verdict) = if report.is_clean() {
        (
            true,
            "clean: every removal answered 204 and no point sent after an answer reached \
             the removed grantee",
        )
    } else {
        (false, "NOT clean: see the figures and errors below")
    };
    let mut page = Page::new(
        &format!("Fleetgate visibility run {}", report.run_id),
        clean,
        verdict,
    );
    page.section("Figures")
        .row("owner account", &report.account_id)
        .row("removal order seed", report.seed)
        .row("units", report.units)
        .row("grantees", report.grantees)
        .row("grants live at start", report.grants_live_at_start)
        .row("removals sent", report.removals.len())
        .row("removals answered 204", report.removals_answered_204())
        .row("violations (points past a cut-off)", report.violations)
        .row("points sent", report.points_sent)
        .row("points acknowledged", report.points_acked)
        .row("points delivered to grantees", report.points_delivered);
    timeline_rows(&mut page, &report.timeline, "points delivered");
    if !report.violation_examples.is_empty() {
        page.section("Violations");
        for violation in &report.violation_examples {
            page.row(
                &format!("{} got {}", violation.grantee, violation.asset_id),
                format!(
                    "sent {} after the removal answered",
                    format_us(
                        violation
                            .sent_us
                            .saturating_sub(violation.removal_answered_us)
                    )
                ),
            );
        }
    }
    let latencies = [
        ("removal round trip", &report.removal_latency),
        ("send→grantee stream", &report.delivery_latency),
    ];
    page.section("Latency")
        .percentile_table(&latencies)
        .figure(
            &percentile_chart("Latency percentiles", &latencies),
            "A removal's DELETE round trip (the grantee is cut off when it answers), and a \
             point's way from the unit to a grantee's live stream.",
        )
        .figure(
            &removal_chart(report),
            "Each removal's round trip in the order the removals were sent; removals without \
             an answer are left out.",
        );
    page.section("Over time")
        .figure(
            &rate_chart(
                "Points delivered to grantees per second",
                "delivered/s",
                &report.timeline,
            ),
            "Points on the grantees' live streams, counted by the stream readers once a \
             second from the units' first tick until the streams close; it falls as the \
             grants are removed.",
        )
        .figure(&memory_chart(&report.timeline), MEMORY_CAPTION);
    if report.timeline.truncated {
        page.note("The series were cut at their sample limit; later seconds are not shown.");
    }
    page.finish(&report.errors)
}

/// Each answered removal's round trip (ms) against its place in the removal order.
fn removal_chart(report: &VisibilityReport) -> String {
    let title = "Removal round trip, in removal order";
    let points: Vec<(f64, f64)> = report
        .removals
        .iter()
        .enumerate()
        .filter_map(|(index, removal)| {
            removal
                .latency_us()
                .map(|micros| ((index + 1) as f64, micros as f64 / 1_000.0))
        })
        .collect();
    if points.is_empty() {
        return svg::placeholder(title, "no removal was answered");
    }
    svg::line_chart(
        title,
        "removal number",
        "milliseconds",
        &[Series {
            name: "DELETE round trip".to_owned(),
            color: PALETTE[1],
            points,
        }],
        &svg::short_number,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Timeline, TimelineSample};
    use crate::stats::Percentiles;

    use super::super::report::tests::{removal, report};

    fn measured(gateway_pid: Option<u32>) -> VisibilityReport {
        let percentiles = Percentiles {
            samples: 3,
            p50_us: 2_000,
            p90_us: 3_000,
            p99_us: 4_000,
            p999_us: 4_000,
            max_us: 4_000,
        };
        let samples = (0..4)
            .map(|second| TimelineSample {
                t_s: second as f64,
                acked_total: second * 50,
                acked_per_s: if second == 0 { 0.0 } else { 50.0 },
                gateway_rss_kib: gateway_pid.map(|_| 40_000 + second * 10),
            })
            .collect();
        VisibilityReport {
            removals: vec![removal(Some(204)), removal(None), removal(Some(204))],
            removal_latency: percentiles,
            delivery_latency: percentiles,
            timeline: Timeline {
                interval_s: 1.0,
                gateway_pid,
                samples,
                truncated: false,
                memory_error: None,
            },
            errors: vec!["grantee <acc2> said \"no\"".into()],
            ..report()
        }
    }

    #[test]
    fn page_is_self_contained_and_escapes_errors() {
        for page in [
            visibility_page(&measured(None)),
            visibility_page(&measured(Some(7))),
        ] {
            let lower = page.to_ascii_lowercase();
            assert!(!lower.contains("http://") && !lower.contains("https://"));
            assert!(!lower.contains("<script") && !lower.contains("src="));
            assert!(!lower.contains("url("));
            assert!(page.contains("grantee &lt;acc2&gt; said &quot;no&quot;"));
            assert!(!page.contains("<acc2>"));
        }
    }

    #[test]
    fn page_has_its_charts() {
        let page = visibility_page(&measured(Some(7)));
        assert!(page.contains("Fleetgate visibility run abc"));
        assert!(page.contains("NOT clean"));
        assert_eq!(
            page.matches("<svg").count(),
            4,
            "percentiles, removals, rate, memory"
        );
        assert_eq!(
            page.matches("<polyline").count(),
            3,
            "removals in order, delivery rate, memory"
        );
        assert!(page.contains("removal round trip") && page.contains("send→grantee stream"));
        assert!(page.contains("VmRSS of pid 7"));
    }

    #[test]
    fn memory_without_a_pid_is_not_measured() {
        let page = visibility_page(&measured(None));
        assert!(page.contains("not measured (no --gateway-pid given)"));
        assert_eq!(page.matches("<polyline").count(), 2);
    }

    #[test]
    fn a_run_without_answers_says_so() {
        let page = visibility_page(&VisibilityReport {
            removals: vec![removal(None)],
            ..report()
        });
        assert!(page.contains("no removal was answered"));
        assert!(page.contains("no latency samples"));
    }
}
